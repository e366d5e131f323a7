//! Running the programs: one side of a scenario in a fresh process, the private Redis, the
//! allocation counts, the machine description, and the process helpers they share.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};

use super::PEER_DIR;
use super::limits;
use super::results::{Allocation, Machine};
use super::scenarios::{EVENT_TYPE, Metric, Side};

/// How long one run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// One run's result.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    /// Events timed.
    pub(super) n: u64,
    /// Seconds timed; NaN when the run printed none.
    pub(super) seconds: f64,
    /// Events per second.
    pub(super) per_sec: f64,
    /// Peak resident set size, for the memory scenario.
    pub(super) peak_rss_bytes: Option<f64>,
    /// Redis CPU seconds per event the run cost (warm-up included in the count), for the sides
    /// that use Redis.
    pub(super) redis_cpu: Option<f64>,
}

impl Sample {
    pub(super) fn value(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Throughput => self.per_sec,
            Metric::PeakRss => self.peak_rss_bytes.unwrap_or(f64::NAN),
        }
    }
}

/// The paths and programs of a run.
pub(super) struct Env {
    /// The cargo that runs the xtask.
    pub(super) cargo: OsString,
    /// The target folder.
    pub(super) target: PathBuf,
    /// `domain-events-bench`, built in release.
    pub(super) bench_bin: PathBuf,
    /// A `--quick` run.
    pub(super) quick: bool,
    /// Untimed events before each run.
    pub(super) warmup: u64,
    /// The envelope JSON `redis-benchmark` appends.
    pub(super) envelope: String,
}

/// One run of one side, in a fresh process, with the Redis CPU time it cost per event.
pub(super) fn measure(env: &Env, redis: &Redis, side: Side, n: u64) -> anyhow::Result<Sample> {
    // Events the run sends to Redis: the warm-up's too (`redis-benchmark` has none).
    let events = match side {
        Side::Bench { redis: false, .. } => None,
        Side::Bench { .. } | Side::Node { .. } => Some(n + env.warmup.min(n)),
        Side::RedisBenchmark => Some(n),
    };
    let cpu = |events: Option<u64>| {
        events
            .map(|_| limits::redis_cpu_seconds(&redis.host, redis.port))
            .transpose()
    };
    let before = cpu(events)?;
    let mut sample = run_side(env, redis, side, n)?;
    let after = cpu(events)?;
    sample.redis_cpu = match (before, after, events) {
        (Some(before), Some(after), Some(events)) if events > 0 => {
            Some((after - before).max(0.0) / events as f64)
        }
        _ => None,
    };
    Ok(sample)
}

/// Runs one side and reads the line it printed.
fn run_side(env: &Env, redis: &Redis, side: Side, n: u64) -> anyhow::Result<Sample> {
    let warmup = env.warmup.min(n).to_string();
    let line = match side {
        Side::Bench {
            command,
            redis: uses_redis,
        } => {
            let mut cmd = Command::new(&env.bench_bin);
            cmd.arg(command);
            if uses_redis {
                cmd.args(["--url", &redis.url]);
            }
            cmd.args(["--n", &n.to_string(), "--warmup", &warmup]);
            last_json_line(&capture(&mut cmd)?)?
        }
        Side::Node { scenario } => {
            let mut cmd = Command::new("node");
            cmd.arg(Path::new(PEER_DIR).join("peer.mjs")).args([
                scenario,
                &redis.url,
                &n.to_string(),
                "--warmup",
                &warmup,
            ]);
            last_json_line(&capture(&mut cmd)?)?
        }
        Side::RedisBenchmark => {
            let mut cmd = Command::new("redis-benchmark");
            cmd.args(["-h", &redis.host, "-p", &redis.port.to_string()])
                .args(["-n", &n.to_string(), "-P", "64", "--csv"])
                .args([
                    "XADD",
                    "bench:redis-benchmark",
                    "MAXLEN",
                    "~",
                    "1000000",
                    "*",
                ])
                .args(["type", EVENT_TYPE, "event", &env.envelope]);
            let per_sec = redis_benchmark_rps(&capture(&mut cmd)?)?;
            json!({"n": n, "seconds": n as f64 / per_sec, "per_sec": per_sec})
        }
    };
    let number = |key: &str| line.get(key).and_then(Value::as_f64);
    Ok(Sample {
        n: line.get("n").and_then(Value::as_u64).unwrap_or(n),
        seconds: number("seconds").unwrap_or(f64::NAN),
        per_sec: number("per_sec").context("the run printed no per_sec")?,
        peak_rss_bytes: number("peak_rss_bytes"),
        redis_cpu: None,
    })
}

/// The requests per second of `redis-benchmark --csv`: the 7th field from the end of the data row
/// (the test name before it quotes the command, JSON quotes and all, unescaped).
pub(super) fn redis_benchmark_rps(output: &str) -> anyhow::Result<f64> {
    let row = output
        .lines()
        .rfind(|line| !line.trim().is_empty() && !line.starts_with("\"test\""))
        .context("redis-benchmark printed no result row")?;
    let fields: Vec<&str> = row.trim().trim_end_matches('"').split("\",\"").collect();
    ensure!(
        fields.len() >= 8,
        "unexpected redis-benchmark row: {row:.80}"
    );
    let rps = fields[fields.len() - 7];
    rps.parse()
        .with_context(|| format!("redis-benchmark rps `{rps}` is not a number"))
}

/// The last line of `output` that is a JSON object.
fn last_json_line(output: &str) -> anyhow::Result<Value> {
    output
        .lines()
        .rev()
        .find_map(|line| {
            serde_json::from_str::<Value>(line.trim())
                .ok()
                .filter(Value::is_object)
        })
        .with_context(|| format!("the run printed no JSON line; its output:\n{output}"))
}

/// `domain-events-bench allocs`: allocations per event on the hot paths.
pub(super) fn allocations(env: &Env, redis: &Redis) -> anyhow::Result<Vec<Allocation>> {
    let n = if env.quick { 5_000 } else { 20_000 };
    let output = capture(Command::new(&env.bench_bin).args([
        "allocs",
        "--url",
        &redis.url,
        "--n",
        &n.to_string(),
    ]))?;
    let lines: Vec<Allocation> = output
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    ensure!(
        !lines.is_empty(),
        "allocs printed nothing; its output:\n{output}"
    );
    for line in &lines {
        eprintln!(
            "  allocations {:<18} {:>6} per event, {:>6} bytes",
            line.path,
            Value::from(line.allocs_per_event),
            Value::from(line.bytes_per_event)
        );
    }
    Ok(lines)
}

/// The private Redis of the run: `domain-events-bench redis_server`, stopped when dropped.
pub(super) struct Redis {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `redis://host:port`.
    pub(super) url: String,
    /// Its host.
    pub(super) host: String,
    /// Its port.
    pub(super) port: u16,
}

impl Redis {
    /// Starts it and reads its URL.
    pub(super) fn start(bench_bin: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(bench_bin)
            .arg("redis_server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the benchmark's redis-server")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("no stdout")?;
        let mut url = String::new();
        BufReader::new(stdout).read_line(&mut url)?;
        let url = url.trim().to_owned();
        let address = url
            .strip_prefix("redis://")
            .with_context(|| format!("unexpected Redis URL `{url}`"))?;
        let (host, port) = address
            .rsplit_once(':')
            .context("no port in the Redis URL")?;
        let port: u16 = port
            .trim_end_matches('/')
            .parse()
            .context("bad Redis port")?;
        let redis = Redis {
            child,
            stdin,
            host: host.to_owned(),
            port,
            url,
        };
        eprintln!("bench: redis-server at {}", redis.url);
        Ok(redis)
    }

    /// `FLUSHALL`.
    pub(super) fn flush(&self) -> anyhow::Result<()> {
        let out = capture(Command::new("redis-cli").args([
            "-h",
            &self.host,
            "-p",
            &self.port.to_string(),
            "FLUSHALL",
        ]))?;
        ensure!(out.trim() == "OK", "FLUSHALL answered `{}`", out.trim());
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "stop");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` to completion (killed after [`RUN_TIMEOUT`]) and returns its stdout; fails
/// with its output when it fails.
pub(super) fn capture(command: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {shown:.200}"))?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown:.200} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        bail!("{shown:.200} failed ({status}):\n{stdout}{stderr}");
    }
    Ok(stdout)
}

/// Runs a preparation step with inherited output.
pub(super) fn step<I, S>(
    program: impl Into<OsString>,
    args: I,
    env: Option<(&str, &Path)>,
) -> anyhow::Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let program = program.into();
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Command::new(&program);
    command.args(&args);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let shown = std::iter::once(&program)
        .chain(&args)
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("bench: {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot run `{shown}`"))?;
    ensure!(status.success(), "`{shown}` failed ({status})");
    Ok(())
}

/// `npm ci --prefix <dir>` when `dir/node_modules` is missing or older than `package-lock.json`
/// (npm rewrites `node_modules/.package-lock.json` on every install).
pub(super) fn npm_install_needed(dir: &Path) -> Option<Vec<OsString>> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let lock = modified(&dir.join("package-lock.json"));
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let needed = match (installed, lock) {
        (None, _) => true,
        (Some(installed), Some(lock)) => installed < lock,
        (Some(_), None) => false,
    };
    needed.then(|| {
        ["ci", "--no-audit", "--no-fund", "--prefix"]
            .into_iter()
            .map(OsString::from)
            .chain([dir.as_os_str().to_owned()])
            .collect()
    })
}

pub(super) fn which(tool: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("`{tool}` not found"))
}

pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// What the numbers were measured on.
pub(super) fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| (kb / 1_048_576.0 * 10.0).round() / 10.0);
    let first_line = |mut command: Command| {
        capture(&mut command)
            .map(|out| out.lines().next().unwrap_or_default().trim().to_owned())
            .unwrap_or_default()
    };
    let mut rustc = Command::new("rustc");
    rustc.arg("--version");
    let mut redis = Command::new("redis-server");
    redis.arg("--version");
    let mut peer = Command::new("node");
    peer.arg(Path::new(PEER_DIR).join("peer.mjs"))
        .arg("versions");
    let peer_versions: Value = serde_json::from_str(&first_line(peer)).unwrap_or(Value::Null);
    let version = |name: &str| {
        peer_versions
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Machine {
        cpu: Some(cpu),
        cores: Some(std::thread::available_parallelism().map_or(1, |n| n.get())),
        memory_gib,
        kernel: Some(
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ),
        rustc: Some(first_line(rustc)),
        redis_server: Some(first_line(redis)),
        node: version("node"),
        bullmq: version("bullmq"),
        ioredis: version("ioredis"),
        load_at_start: Some(load_average()),
        load_at_end: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_csv_rows_are_read_from_the_right() {
        let output = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
            \"XADD s * event {\"a\":\"b\",\"c\":[1]}\",\"133779.27\",\"9.638\",\"1.008\",\"9.335\",\"14.791\",\"19.055\",\"22.271\"\n";
        assert_eq!(redis_benchmark_rps(output).expect("parsed"), 133_779.27);
        assert!(redis_benchmark_rps("\"test\",\"rps\"\n").is_err());
    }

    #[test]
    fn the_last_json_object_line_counts() {
        let line = last_json_line("warming up\n{\"per_sec\": 1}\n[1]\n{\"per_sec\": 2}\ndone\n")
            .expect("found");
        assert_eq!(line["per_sec"], 2);
        assert!(last_json_line("no json\n").is_err());
    }
}
