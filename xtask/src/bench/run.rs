//! The measuring: the rounds of every scenario, one side of a scenario in a fresh process, and the
//! allocation counts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use super::PEER_DIR;
use super::limits::{self, Floor};
use super::process::{Redis, capture};
use super::report::{show, thousands};
use super::results::Allocation;
use super::scenarios::{EVENT_TYPE, Metric, Scenario, Side};

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

/// What the rounds measured.
pub(super) struct Measured {
    /// The runs of each scenario, `[ours, peer]`, in the order of the scenarios.
    pub(super) samples: Vec<[Vec<Sample>; 2]>,
    /// The round-trip floor of each round.
    pub(super) floors: Vec<Floor>,
}

/// Runs every scenario for both sides, `rounds` times, ours first in odd rounds and the peer first
/// in even ones, with the round-trip floor first in each round. A side that fails is recorded in
/// `failures` and its scenario not run again.
pub(super) fn rounds(
    env: &Env,
    redis: &Redis,
    scenarios: &[&Scenario],
    rounds: usize,
    failures: &mut Vec<(String, String)>,
) -> anyhow::Result<Measured> {
    let mut samples: Vec<[Vec<Sample>; 2]> = vec![[Vec::new(), Vec::new()]; scenarios.len()];
    let mut floors: Vec<Floor> = Vec::new();
    let floor_n = if env.quick { 20_000 } else { 50_000 };
    for round in 0..rounds {
        redis.flush()?;
        match limits::measure_floor(&redis.host, redis.port, floor_n) {
            Ok(floor) => {
                eprintln!(
                    "  round {}/{rounds} round-trip floor {}/s",
                    round + 1,
                    thousands(floor.per_sec)
                );
                floors.push(floor);
            }
            Err(error) => eprintln!("  round-trip floor: FAILED: {error:#}"),
        }
        for (index, scenario) in scenarios.iter().enumerate() {
            if failures.iter().any(|(id, _)| id == scenario.id) {
                continue;
            }
            // Memory is stable and slow to measure: fewer rounds.
            if scenario.metric == Metric::PeakRss && round >= rounds.div_ceil(2) {
                continue;
            }
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let (which_side, n) = if side == 0 {
                    (scenario.ours, scenario.ours_n[usize::from(env.quick)])
                } else {
                    (scenario.peer, scenario.peer_n[usize::from(env.quick)])
                };
                redis.flush()?;
                match measure(env, redis, which_side, n) {
                    Ok(sample) => {
                        eprintln!(
                            "  round {}/{rounds} {:<16} {:<4} {}",
                            round + 1,
                            scenario.id,
                            if side == 0 { "ours" } else { "peer" },
                            show(scenario.metric, sample.value(scenario.metric))
                        );
                        samples[index][side].push(sample);
                    }
                    Err(error) => {
                        eprintln!(
                            "  {} {}: FAILED: {error:#}",
                            scenario.id,
                            if side == 0 { "ours" } else { "peer" }
                        );
                        failures.push((scenario.id.to_owned(), format!("{error:#}")));
                        break;
                    }
                }
            }
        }
    }

    Ok(Measured { samples, floors })
}

/// One run of one side, in a fresh process, with the Redis CPU time it cost per event.
fn measure(env: &Env, redis: &Redis, side: Side, n: u64) -> anyhow::Result<Sample> {
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
pub(super) fn last_json_line(output: &str) -> anyhow::Result<Value> {
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
