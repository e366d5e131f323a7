//! `cargo xtask bench [--quick] [--rounds N] [--only ID,ID] [--no-codegen]`: this library against
//! BullMQ on Node.js, raw Redis and a bare Tokio channel, measured in one run on one private Redis.
//!
//! 1. builds `domain-events-bench` in release and installs the peer harness (`npm ci --prefix
//!    bench/peer`) when its lock file is newer than its install;
//! 2. starts a private `redis-server` (the test harness's, through `domain-events-bench
//!    redis_server`) and flushes it before every run;
//! 3. runs every scenario for our side and for the peer, alternating which goes first, for several
//!    rounds, each run a fresh process printing one JSON line;
//! 4. counts allocations per event on the hot paths (`domain-events-bench allocs`);
//! 5. times code generation (`Catalog::load` + `generate`) and the `cargo build` of scratch crates
//!    that `include_events!` 30, 300 and 3,000 generated events (`--quick`: compiles 30 and 300);
//! 6. writes `target/bench/results.json`, `target/bench/report.md` and `target/bench/ratios.svg`.
//!
//! Benchmarks are not tests: nothing here fails because a goal is missed, only when a run fails.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};

mod limits;

use limits::{Floor, Limit};

/// The peer harness, relative to the workspace root.
pub const PEER_DIR: &str = "bench/peer";
/// How long one run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// The type string of the benchmark event.
const EVENT_TYPE: &str = "image:variation_completed";

/// What `cargo xtask bench` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Fewer rounds and smaller counts: done in under 3 minutes once everything is built.
    pub quick: bool,
    /// Rounds per scenario (default 5, `--quick` 3).
    pub rounds: Option<usize>,
    /// Only these scenario ids (all when empty).
    pub only: Vec<String>,
    /// Skip the code generation timings.
    pub no_codegen: bool,
}

impl Options {
    fn rounds(&self) -> usize {
        self.rounds.unwrap_or(if self.quick { 3 } else { 5 }).max(1)
    }
}

/// Which program measures one side of a scenario.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// `domain-events-bench <subcommand> [--url URL] --n N --warmup W`.
    Bench { command: &'static str, redis: bool },
    /// `node bench/peer/peer.mjs <scenario> <url> <n> --warmup W`.
    Node { scenario: &'static str },
    /// `redis-benchmark -P 64 ... XADD <stream> MAXLEN ~ 1000000 * type .. event <envelope>`.
    RedisBenchmark,
}

/// What a scenario compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    /// Events per second; higher is better.
    Throughput,
    /// Peak resident set size; lower is better.
    PeakRss,
}

/// The goal for ours ÷ peer.
#[derive(Debug, Clone, Copy)]
enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtLeast(goal) => ratio >= goal,
            Goal::AtMost(goal) => ratio <= goal,
        }
    }

    fn value(self) -> f64 {
        match self {
            Goal::AtLeast(goal) | Goal::AtMost(goal) => goal,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::AtLeast(goal) => format!("≥ {}", trim_float(goal)),
            Goal::AtMost(goal) => format!("≤ {}", trim_float(goal)),
        }
    }
}

/// One row of the comparison.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    id: &'static str,
    title: &'static str,
    ours_text: &'static str,
    peer_text: &'static str,
    ours: Side,
    peer: Side,
    /// Events per run: `[full, quick]`, ours then peer.
    ours_n: [u64; 2],
    peer_n: [u64; 2],
    metric: Metric,
    goal: Goal,
    /// The upper bound this machine sets on our side.
    limit: Limit,
}

const fn bench(command: &'static str) -> Side {
    Side::Bench {
        command,
        redis: true,
    }
}

const fn node(scenario: &'static str) -> Side {
    Side::Node { scenario }
}

/// The scenarios of the issue, in report order.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "emit_serial",
        title: "emit serial",
        ours_text: "typed emit, awaited one at a time, Redis Streams with the idempotency claim",
        peer_text: "BullMQ Queue.add serial with jobId",
        ours: bench("emit_serial"),
        peer: node("bullmq_add_serial"),
        ours_n: [20_000, 3_000],
        peer_n: [20_000, 3_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(2.5),
        limit: Limit::RoundTrip,
    },
    Scenario {
        id: "emit_concurrent",
        title: "emit concurrent",
        ours_text: "64 typed emits in flight",
        peer_text: "BullMQ 64 Queue.add in flight",
        ours: bench("emit_concurrent64"),
        peer: node("bullmq_add_concurrent64"),
        ours_n: [50_000, 10_000],
        peer_n: [50_000, 10_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(4.0),
        limit: Limit::RedisCpu,
    },
    Scenario {
        id: "emit_batch",
        title: "emit batch",
        ours_text: "EmitBatch of 1,000",
        peer_text: "BullMQ addBulk of 1,000",
        ours: bench("emit_batch1000"),
        peer: node("bullmq_addbulk_1000"),
        ours_n: [100_000, 20_000],
        peer_n: [50_000, 10_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(8.0),
        limit: Limit::RedisCpu,
    },
    Scenario {
        id: "emit_duplicates",
        title: "emit duplicates",
        ours_text: "every emit a duplicate of one of 100 keys",
        peer_text: "BullMQ Queue.add with an existing jobId",
        ours: bench("emit_duplicates"),
        peer: node("bullmq_add_duplicate"),
        ours_n: [20_000, 3_000],
        peer_n: [20_000, 3_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(2.5),
        limit: Limit::RoundTrip,
    },
    Scenario {
        id: "consume_c1",
        title: "consume c1",
        ours_text: "RedisConsumer, no-op typed handler, done record + ack, concurrency 1",
        peer_text: "BullMQ Worker, no-op processor, concurrency 1",
        ours: bench("consume_c1"),
        peer: node("bullmq_worker_c1"),
        ours_n: [20_000, 3_000],
        peer_n: [20_000, 3_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(3.0),
        limit: Limit::None,
    },
    Scenario {
        id: "consume_c50",
        title: "consume c50",
        ours_text: "RedisConsumer, no-op typed handler, done record + ack, concurrency 50",
        peer_text: "BullMQ Worker, no-op processor, concurrency 50",
        ours: bench("consume_c50"),
        peer: node("bullmq_worker_c50"),
        ours_n: [50_000, 10_000],
        peer_n: [50_000, 10_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(3.0),
        limit: Limit::None,
    },
    Scenario {
        id: "bullmq_transport",
        title: "BullMQ transport",
        ours_text: "typed emit through our BullmqTransport, serial",
        peer_text: "BullMQ Queue.add serial with jobId",
        ours: bench("bullmq_emit_serial"),
        peer: node("bullmq_add_serial"),
        ours_n: [10_000, 2_000],
        peer_n: [10_000, 2_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(1.2),
        limit: Limit::RoundTrip,
    },
    Scenario {
        id: "raw_limit",
        title: "raw limit",
        ours_text: "EmitBatch of 1,000 without the idempotency claim (pipelined XADD), payloads built before the clock starts",
        peer_text: "redis-benchmark XADD of the same entry, pipeline 64, 50 clients",
        ours: bench("emit_batch_unclaimed"),
        peer: Side::RedisBenchmark,
        ours_n: [200_000, 40_000],
        peer_n: [1_000_000, 200_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(0.4),
        limit: Limit::RedisCpu,
    },
    Scenario {
        id: "memory_bus",
        title: "in-memory bus",
        ours_text: "MemoryBus: emit → delivered to one typed subscriber",
        peer_text: "the same envelopes through a bare Tokio channel",
        ours: Side::Bench {
            command: "memory_bus",
            redis: false,
        },
        peer: Side::Bench {
            command: "tokio_channel",
            redis: false,
        },
        ours_n: [200_000, 50_000],
        peer_n: [200_000, 50_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(0.5),
        limit: Limit::None,
    },
    Scenario {
        id: "memory",
        title: "memory",
        ours_text: "peak RSS of a RedisConsumer (concurrency 50) working through a backlog",
        peer_text: "peak RSS of a BullMQ Worker (concurrency 50), same backlog",
        ours: bench("consume_memory"),
        peer: node("bullmq_worker_memory"),
        ours_n: [100_000, 20_000],
        peer_n: [100_000, 20_000],
        metric: Metric::PeakRss,
        goal: Goal::AtMost(0.2),
        limit: Limit::None,
    },
];

/// One run's result.
#[derive(Debug, Clone)]
struct Sample {
    n: u64,
    seconds: f64,
    per_sec: f64,
    peak_rss_bytes: Option<f64>,
    /// Redis CPU seconds per event the run cost (warm-up included in the count), for the sides
    /// that use Redis.
    redis_cpu: Option<f64>,
}

impl Sample {
    fn value(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Throughput => self.per_sec,
            Metric::PeakRss => self.peak_rss_bytes.unwrap_or(f64::NAN),
        }
    }
}

/// The paths and programs of a run.
struct Env {
    cargo: OsString,
    target: PathBuf,
    bench_bin: PathBuf,
    quick: bool,
    warmup: u64,
    /// The envelope JSON `redis-benchmark` appends.
    envelope: String,
}

/// `cargo xtask bench`.
pub fn run(cargo: &OsString, options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let scenarios: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| options.only.is_empty() || options.only.iter().any(|id| id == s.id))
        .collect();
    if let Some(unknown) = options
        .only
        .iter()
        .find(|id| !SCENARIOS.iter().any(|s| s.id == *id))
    {
        let known: Vec<&str> = SCENARIOS.iter().map(|s| s.id).collect();
        bail!("unknown scenario `{unknown}`; known: {}", known.join(", "));
    }

    for tool in [
        "node",
        "npm",
        "redis-server",
        "redis-cli",
        "redis-benchmark",
    ] {
        which(tool).with_context(|| {
            format!("`{tool}` is not on PATH; the benchmark needs Node.js >= 20 with npm and Redis (Debian: redis-server, redis-tools)")
        })?;
    }
    step(
        cargo,
        ["build", "--release", "--quiet", "-p", "domain-events-bench"],
        None,
    )?;
    if let Some(args) = npm_install_needed(Path::new(PEER_DIR)) {
        step("npm", args, None)?;
    }
    let bench_bin = target.join("release").join("domain-events-bench");
    let envelope = capture(Command::new(&bench_bin).arg("sample_envelope"))?
        .trim()
        .to_owned();
    let env = Env {
        cargo: cargo.clone(),
        target: target.clone(),
        bench_bin,
        quick: options.quick,
        warmup: if options.quick { 200 } else { 500 },
        envelope,
    };

    let machine = machine();
    eprintln!(
        "bench: {} rounds{}, {} on {} cores, load {}",
        options.rounds(),
        if options.quick { " (quick)" } else { "" },
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["load_at_start"].as_str().unwrap_or("?"),
    );

    let redis = Redis::start(&env.bench_bin)?;
    let rounds = options.rounds();
    let mut samples: Vec<[Vec<Sample>; 2]> = vec![[Vec::new(), Vec::new()]; scenarios.len()];
    let mut failures: Vec<(String, String)> = Vec::new();
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
                match measure(&env, &redis, which_side, n) {
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

    redis.flush()?;
    let allocations = match allocations(&env, &redis) {
        Ok(lines) => lines,
        Err(error) => {
            eprintln!("  allocations: FAILED: {error:#}");
            failures.push(("allocations".to_owned(), format!("{error:#}")));
            Vec::new()
        }
    };
    drop(redis);

    let codegen = if options.no_codegen {
        Value::Null
    } else {
        match codegen(&env) {
            Ok(codegen) => codegen,
            Err(error) => {
                eprintln!("  codegen: FAILED: {error:#}");
                failures.push(("codegen".to_owned(), format!("{error:#}")));
                Value::Null
            }
        }
    };

    let floor = limits::floor_record(&floors);
    let records: Vec<Value> = scenarios
        .iter()
        .zip(&samples)
        .map(|(scenario, [ours, peer])| {
            let failure = failures
                .iter()
                .find(|(id, _)| id == scenario.id)
                .map(|(_, e)| e.as_str());
            record(scenario, ours, peer, &floor, failure)
        })
        .collect();
    let mut machine = machine;
    machine["load_at_end"] = load_average().into();
    let wall = started.elapsed().as_secs_f64();
    let results = json!({
        "command": if options.quick { "cargo xtask bench --quick" } else { "cargo xtask bench" },
        "quick": options.quick,
        "rounds": rounds,
        "wall_seconds": (wall * 10.0).round() / 10.0,
        "machine": machine,
        "round_trip_floor": floor,
        "scenarios": records,
        "allocations": allocations,
        "codegen": codegen,
        "failures": failures.iter().map(|(id, e)| json!({"id": id, "error": e})).collect::<Vec<_>>(),
    });
    let results_path = out_dir.join("results.json");
    std::fs::write(
        &results_path,
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let report_path = out_dir.join("report.md");
    std::fs::write(&report_path, report(&results))?;
    let chart_path = out_dir.join("ratios.svg");
    std::fs::write(&chart_path, chart(&results))?;
    print!("{}", report(&results));
    eprintln!(
        "wrote {}, {} and {} in {wall:.0} s",
        results_path.display(),
        report_path.display(),
        chart_path.display()
    );
    if !failures.is_empty() {
        bail!(
            "{} part(s) of the benchmark failed: {}",
            failures.len(),
            failures
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// `cargo xtask bench --render FILE`: writes `report.md` and `ratios.svg` beside `FILE` (a
/// `results.json` of an earlier run) again, measuring nothing.
pub fn render(results_path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(results_path)
        .with_context(|| format!("cannot read {}", results_path.display()))?;
    let results: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", results_path.display()))?;
    let dir = results_path.parent().unwrap_or(Path::new("."));
    let (report_path, chart_path) = (dir.join("report.md"), dir.join("ratios.svg"));
    std::fs::write(&report_path, report(&results))?;
    std::fs::write(&chart_path, chart(&results))?;
    eprintln!(
        "wrote {} and {}",
        report_path.display(),
        chart_path.display()
    );
    Ok(())
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
fn redis_benchmark_rps(output: &str) -> anyhow::Result<f64> {
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
fn allocations(env: &Env, redis: &Redis) -> anyhow::Result<Vec<Value>> {
    let n = if env.quick { 5_000 } else { 20_000 };
    let output = capture(Command::new(&env.bench_bin).args([
        "allocs",
        "--url",
        &redis.url,
        "--n",
        &n.to_string(),
    ]))?;
    let lines: Vec<Value> = output
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
            line["path"].as_str().unwrap_or("?"),
            line["allocs_per_event"],
            line["bytes_per_event"]
        );
    }
    Ok(lines)
}

/// The median Redis CPU seconds per event of `samples`.
fn redis_cpu(samples: &[Sample]) -> Option<f64> {
    median(
        &samples
            .iter()
            .filter_map(|s| s.redis_cpu)
            .collect::<Vec<_>>(),
    )
}

/// Median, min and max of the round values and the ratio of the medians.
fn record(
    scenario: &Scenario,
    ours: &[Sample],
    peer: &[Sample],
    floor: &Value,
    failure: Option<&str>,
) -> Value {
    let metric = scenario.metric;
    let values = |samples: &[Sample]| {
        samples
            .iter()
            .map(|s| s.value(metric))
            .filter(|v| v.is_finite())
            .collect::<Vec<_>>()
    };
    let (ours_values, peer_values) = (values(ours), values(peer));
    let ours_median = median(&ours_values);
    let peer_median = median(&peer_values);
    let ratio = match (ours_median, peer_median) {
        (Some(o), Some(p)) if p > 0.0 => Some(o / p),
        _ => None,
    };
    // The ratio of each round's pair, for its range.
    let pair_ratios: Vec<f64> = ours_values
        .iter()
        .zip(&peer_values)
        .filter(|(_, p)| **p > 0.0)
        .map(|(o, p)| o / p)
        .collect();
    let side =
        |values: &[f64], median: Option<f64>, samples: &[Sample], text: &str, program: String| {
            json!({
                "what": text,
                "program": program,
                "n": samples.first().map(|s| s.n),
                "median": median.map(round3),
                "runs": values.iter().copied().map(round3).collect::<Vec<_>>(),
                "seconds": samples.iter().map(|s| round3(s.seconds)).collect::<Vec<_>>(),
                "spread": spread(values, median),
            })
        };
    let unit = match metric {
        Metric::Throughput => "events/s",
        Metric::PeakRss => "bytes",
    };
    json!({
        "id": scenario.id,
        "title": scenario.title,
        "unit": unit,
        "ours": side(&ours_values, ours_median, ours, scenario.ours_text, program_name(scenario.ours)),
        "peer": side(&peer_values, peer_median, peer, scenario.peer_text, program_name(scenario.peer)),
        "ours_per_sec": (metric == Metric::Throughput).then_some(ours_median).flatten().map(f64::round),
        "peer_per_sec": (metric == Metric::Throughput).then_some(peer_median).flatten().map(f64::round),
        "ratio": ratio.map(round3),
        "ratio_range": if pair_ratios.is_empty() { Value::Null } else {
            json!([round3(min(&pair_ratios)), round3(max(&pair_ratios))])
        },
        "rounds": ours_values.len().min(peer_values.len()),
        "spread": json!({
            "ours": spread(&ours_values, ours_median),
            "peer": spread(&peer_values, peer_median),
        }),
        "goal": json!({"text": scenario.goal.text(), "value": scenario.goal.value(),
            "direction": if matches!(scenario.goal, Goal::AtLeast(_)) { "at_least" } else { "at_most" }}),
        "met": ratio.map(|r| scenario.goal.met(r)),
        "limit": limits::bound(
            scenario.limit,
            redis_cpu(ours),
            redis_cpu(peer),
            floor,
            (metric == Metric::Throughput).then_some(peer_median).flatten(),
        ),
        "error": failure,
    })
}

fn program_name(side: Side) -> String {
    match side {
        Side::Bench { command, .. } => format!("domain-events-bench {command}"),
        Side::Node { scenario } => format!("node bench/peer/peer.mjs {scenario}"),
        Side::RedisBenchmark => "redis-benchmark -P 64 XADD".to_owned(),
    }
}

/// `{min, max, relative}`: relative = (max − min) / median.
fn spread(values: &[f64], median: Option<f64>) -> Value {
    match median {
        Some(m) if !values.is_empty() && m > 0.0 => json!({
            "min": round3(min(values)),
            "max": round3(max(values)),
            "relative": round3((max(values) - min(values)) / m),
        }),
        _ => Value::Null,
    }
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn round3(x: f64) -> f64 {
    if x.abs() >= 1000.0 {
        x.round()
    } else {
        (x * 1000.0).round() / 1000.0
    }
}

fn trim_float(x: f64) -> String {
    let text = format!("{x:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `12,345/s` or `8.1 MiB`.
fn show(metric: Metric, value: f64) -> String {
    match metric {
        Metric::Throughput => format!("{}/s", thousands(value)),
        Metric::PeakRss => format!("{:.1} MiB", value / 1_048_576.0),
    }
}

fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

/// The private Redis of the run: `domain-events-bench redis_server`, stopped when dropped.
struct Redis {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    host: String,
    port: u16,
}

impl Redis {
    fn start(bench_bin: &Path) -> anyhow::Result<Self> {
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

    fn flush(&self) -> anyhow::Result<()> {
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
fn capture(command: &mut Command) -> anyhow::Result<String> {
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
fn step<I, S>(
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
pub fn npm_install_needed(dir: &Path) -> Option<Vec<OsString>> {
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

fn which(tool: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("`{tool}` not found"))
}

fn load_average() -> String {
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
fn machine() -> Value {
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
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memory_gib": memory_gib,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "rustc": first_line(rustc),
        "redis_server": first_line(redis),
        "node": peer_versions.get("node"),
        "bullmq": peer_versions.get("bullmq"),
        "ioredis": peer_versions.get("ioredis"),
        "load_at_start": load_average(),
    })
}

/// Schema sizes of the code generation timings.
const CODEGEN_SIZES: [usize; 3] = [30, 300, 3000];
/// Events per generated schema file.
const EVENTS_PER_FILE: usize = 10;
/// Timed builds per size, `[full, quick]`; the fastest counts. The 300-event build is short
/// enough that one slow build moves the 3,000 ÷ 300 ratio by 20 %, so a full run takes three.
const CODEGEN_BUILDS: [usize; 2] = [3, 1];

/// Times the expansion (`Catalog::load` + `generate`, what the macro runs) in process, and the
/// `cargo build` (dev profile) of a scratch crate per size, its dependencies built beforehand.
fn codegen(env: &Env) -> anyhow::Result<Value> {
    let dir = env.target.join("bench").join("codegen");
    let root = std::env::current_dir()?;
    write_codegen_workspace(&dir, &root)?;
    let mut sizes = Vec::new();
    for events in CODEGEN_SIZES {
        let schemas = dir.join(format!("gen{events}")).join("schemas");
        let settings = domain_events_schema::Settings::new();
        let mut runs = Vec::new();
        let mut generated = 0;
        for run in 0..if env.quick { 1 } else { 3 } {
            let started = Instant::now();
            let catalog = domain_events_schema::Catalog::load(&schemas, &settings).map_err(
                |diagnostics| anyhow::anyhow!("generated schemas are invalid:\n{diagnostics}"),
            )?;
            let tokens = catalog.generate(&settings);
            runs.push(started.elapsed().as_secs_f64());
            if run == 0 {
                generated = tokens.to_string().len();
            }
        }
        let expand = median(&runs).unwrap_or(f64::NAN);
        eprintln!(
            "  codegen {events:>5} events: load + generate {expand:.3} s ({} KiB of code)",
            generated / 1024
        );
        sizes.push(json!({"events": events, "expand_seconds": round3(expand), "generated_bytes": generated}));
    }

    let compiled: &[usize] = if env.quick {
        &[30, 300]
    } else {
        &CODEGEN_SIZES
    };
    let codegen_target = dir.join("target");
    let cargo = |args: &[&str]| -> anyhow::Result<()> {
        let status = Command::new(&env.cargo)
            .args(args)
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &codegen_target)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
        ensure!(
            status.status.success(),
            "cargo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&status.stderr)
        );
        Ok(())
    };
    eprintln!("  codegen: building the dependencies of the scratch crates (untimed)");
    cargo(&["build", "--offline", "--quiet", "-p", "domain-events"])?;
    for size in sizes.iter_mut() {
        let events = size["events"].as_u64().unwrap_or(0) as usize;
        if !compiled.contains(&events) {
            continue;
        }
        let lib = dir.join(format!("gen{events}")).join("src").join("lib.rs");
        // Noise only ever adds time: keep the fastest of the builds.
        let mut seconds = f64::INFINITY;
        for _ in 0..CODEGEN_BUILDS[usize::from(env.quick)] {
            std::fs::write(&lib, lib_rs(events))?;
            let started = Instant::now();
            cargo(&[
                "build",
                "--offline",
                "--quiet",
                "-p",
                &format!("codegen-{events}"),
            ])?;
            seconds = seconds.min(started.elapsed().as_secs_f64());
        }
        eprintln!("  codegen {events:>5} events: cargo build {seconds:.1} s");
        size["compile_seconds"] = round3(seconds).into();
    }
    let compile = |events: usize| {
        sizes
            .iter()
            .find(|s| s["events"] == events)
            .and_then(|s| s["compile_seconds"].as_f64())
    };
    let expand = |events: usize| {
        sizes
            .iter()
            .find(|s| s["events"] == events)
            .and_then(|s| s["expand_seconds"].as_f64())
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(round3(a / b)),
        _ => None,
    };
    let compile_ratio = ratio(compile(3000), compile(300));
    let expand_ratio = ratio(expand(3000), expand(300));
    Ok(json!({
        "sizes": sizes,
        "events_per_file": EVENTS_PER_FILE,
        "profile": "dev",
        "builds": CODEGEN_BUILDS[usize::from(env.quick)],
        "compile_ratio_3000_300": compile_ratio,
        "compile_ratio_300_30": ratio(compile(300), compile(30)),
        "expand_ratio_3000_300": expand_ratio,
        "goal": "3,000 events within 12× the cost of 300",
        "met": compile_ratio.map(|r| r <= 12.0).or(expand_ratio.map(|r| r <= 12.0)),
    }))
}

/// `include_events!` on the crate's schema folder; the size in a comment makes each write a
/// change, so every timed build compiles the crate again.
fn lib_rs(events: usize) -> String {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "//! {events} generated events (benchmark of code generation, build {stamp}).\n\
         #![allow(missing_docs)]\n\
         domain_events::include_events!(\"schemas\");\n"
    )
}

/// A scratch workspace with one crate per size, `gen<N>/schemas/*.toml` holding N events.
fn write_codegen_workspace(dir: &Path, root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let members: Vec<String> = CODEGEN_SIZES
        .iter()
        .map(|n| format!("\"gen{n}\""))
        .collect();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )?;
    if !dir.join("Cargo.lock").exists() {
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))
            .context("cannot copy Cargo.lock")?;
    }
    let runtime = root.join("crates").join("domain-events");
    for events in CODEGEN_SIZES {
        let krate = dir.join(format!("gen{events}"));
        let schemas = krate.join("schemas");
        if schemas.exists() {
            std::fs::remove_dir_all(&schemas)?;
        }
        std::fs::create_dir_all(&schemas)?;
        std::fs::create_dir_all(krate.join("src"))?;
        std::fs::write(
            krate.join("Cargo.toml"),
            format!(
                "[package]\nname = \"codegen-{events}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [dependencies]\ndomain-events = {{ path = {:?} }}\n",
                runtime.display().to_string()
            ),
        )?;
        std::fs::write(krate.join("src").join("lib.rs"), lib_rs(events))?;
        for file in 0..events.div_ceil(EVENTS_PER_FILE) {
            let count = EVENTS_PER_FILE.min(events - file * EVENTS_PER_FILE);
            std::fs::write(
                schemas.join(format!("c{file:04}.toml")),
                schema_file(file, count),
            )?;
        }
    }
    Ok(())
}

/// One category `c<file>` of `count` events with the field types of the real catalog.
fn schema_file(file: usize, count: usize) -> String {
    let category = format!("c{file:04}");
    let mut text = format!(
        "category = \"{category}\"\ndescription = \"Generated category {file}.\"\ncorrelation = \"entityId\"\nversion = 1\n"
    );
    for event in 0..count {
        let name = format!("event_{event:02}");
        let _ = write!(
            text,
            "\n[events.{name}]\n\
             description = \"Generated event {event} of category {file}.\"\n\
             idempotency_key = \"{category}_{name}:{{entityId}}:{{sequence}}\"\n\n\
             [events.{name}.fields]\n\
             entityId   = {{ type = \"string\", min_length = 1, description = \"Id of the entity.\" }}\n\
             sequence   = {{ type = \"uint\", description = \"Sequence number.\" }}\n\
             label      = {{ type = \"string\", description = \"Display name.\" }}\n\
             happenedAt = {{ type = \"timestamp\", description = \"When it happened.\" }}\n\
             link       = {{ type = \"url\", description = \"Where to look.\" }}\n\
             tags       = {{ type = \"list<string>\", description = \"Tags.\" }}\n\
             score      = {{ type = \"int?\", description = \"Score, when known.\" }}\n\
             active     = {{ type = \"bool\", description = \"Whether it is active.\" }}\n"
        );
    }
    text
}

/// `report.md`: the table, the allocations, the code generation timings.
fn report(results: &Value) -> String {
    let mut md = String::new();
    let machine = &results["machine"];
    let _ = writeln!(md, "# domain-events vs BullMQ / Redis: benchmark report\n");
    let _ = writeln!(
        md,
        "`{}` — {} round(s), {:.0} s wall time. Machine: {} ({} cores, {} GiB), Linux {}; {}; {}; Node.js {}, BullMQ {}, ioredis {}. Load average at start {}, at end {}.\n",
        results["command"].as_str().unwrap_or(""),
        results["rounds"],
        results["wall_seconds"].as_f64().unwrap_or(0.0),
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["memory_gib"],
        machine["kernel"].as_str().unwrap_or("?"),
        machine["rustc"].as_str().unwrap_or("?"),
        machine["redis_server"].as_str().unwrap_or("?"),
        machine["node"].as_str().unwrap_or("?"),
        machine["bullmq"].as_str().unwrap_or("?"),
        machine["ioredis"].as_str().unwrap_or("?"),
        machine["load_at_start"].as_str().unwrap_or("?"),
        machine["load_at_end"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        md,
        "Medians over the rounds; ratio = ours ÷ peer (memory: peak RSS, lower is better); spread = (max − min) ÷ median of each side.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | ours | peer | ratio (range) | goal | met | spread ours / peer | ours: what | peer: what |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|:---:|---:|---|---|");
    for s in results["scenarios"].as_array().into_iter().flatten() {
        let rss = s["unit"] == "bytes";
        let value = |v: &Value| match v.as_f64() {
            Some(x) if rss => format!("{:.1} MiB", x / 1_048_576.0),
            Some(x) => format!("{}/s", thousands(x)),
            None => "n/a".to_owned(),
        };
        let ratio = match (s["ratio"].as_f64(), s["ratio_range"].as_array()) {
            (Some(r), Some(range)) if range.len() == 2 => format!(
                "{}× ({}–{})",
                fmt_ratio(r),
                fmt_ratio(range[0].as_f64().unwrap_or(f64::NAN)),
                fmt_ratio(range[1].as_f64().unwrap_or(f64::NAN))
            ),
            (Some(r), _) => format!("{}×", fmt_ratio(r)),
            _ => "n/a".to_owned(),
        };
        let met = match s["met"].as_bool() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let rel = |side: &str| {
            s["spread"][side]["relative"]
                .as_f64()
                .map_or("n/a".to_owned(), |r| format!("{:.0}%", r * 100.0))
        };
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {} | {} | {} | {} / {} | {} (n={}) | {} (n={}) |",
            s["title"].as_str().unwrap_or(""),
            if s["error"].is_null() {
                String::new()
            } else {
                " (failed)".to_owned()
            },
            value(&s["ours"]["median"]),
            value(&s["peer"]["median"]),
            ratio,
            s["goal"]["text"].as_str().unwrap_or(""),
            met,
            rel("ours"),
            rel("peer"),
            s["ours"]["what"].as_str().unwrap_or(""),
            s["ours"]["n"],
            s["peer"]["what"].as_str().unwrap_or(""),
            s["peer"]["n"],
        );
    }
    md.push_str(&limits::section(results));
    let allocations = results["allocations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !allocations.is_empty() {
        let _ = writeln!(md, "\n## Allocations per event\n");
        let _ = writeln!(
            md,
            "Counted by the global allocator of `domain-events-bench` over every thread (Redis client included), payload construction excluded.\n"
        );
        let _ = writeln!(md, "| path | allocations / event | bytes / event | what |");
        let _ = writeln!(md, "|---|---:|---:|---|");
        for a in allocations {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                a["path"].as_str().unwrap_or(""),
                a["allocs_per_event"],
                a["bytes_per_event"],
                a["what"].as_str().unwrap_or("")
            );
        }
    }
    let codegen = &results["codegen"];
    if let Some(sizes) = codegen["sizes"].as_array() {
        let _ = writeln!(md, "\n## Code generation\n");
        let _ = writeln!(
            md,
            "Generated schemas ({} events per file, eight fields each). Expansion: `Catalog::load` + `generate` in the xtask process (what `include_events!` runs; dev profile, as proc macros are built), median. Build: `cargo build` ({} profile) of a crate that `include_events!` them, dependencies already built ({}).\n",
            codegen["events_per_file"],
            codegen["profile"].as_str().unwrap_or("dev"),
            // Runs before this field was written took two.
            match codegen["builds"].as_u64().unwrap_or(2) {
                1 => "one build".to_owned(),
                builds => format!("fastest of {builds} builds"),
            }
        );
        let _ = writeln!(md, "| events | expansion | generated | cargo build |");
        let _ = writeln!(md, "|---:|---:|---:|---:|");
        for size in sizes {
            let _ = writeln!(
                md,
                "| {} | {:.3} s | {} KiB | {} |",
                size["events"],
                size["expand_seconds"].as_f64().unwrap_or(f64::NAN),
                size["generated_bytes"].as_u64().unwrap_or(0) / 1024,
                size["compile_seconds"]
                    .as_f64()
                    .map_or("not built (--quick)".to_owned(), |s| format!("{s:.1} s"))
            );
        }
        let ratio = |key: &str| {
            codegen[key]
                .as_f64()
                .map_or("n/a".to_owned(), |r| format!("{r:.1}×"))
        };
        let _ = writeln!(
            md,
            "\nBuild 3,000 ÷ 300: {}; build 300 ÷ 30: {}; expansion 3,000 ÷ 300: {}. Goal: {} — {}.",
            ratio("compile_ratio_3000_300"),
            ratio("compile_ratio_300_30"),
            ratio("expand_ratio_3000_300"),
            codegen["goal"].as_str().unwrap_or(""),
            match codegen["met"].as_bool() {
                Some(true) => "met",
                Some(false) => "**not met**",
                None => "n/a",
            }
        );
    }
    if let Some(failures) = results["failures"].as_array().filter(|f| !f.is_empty()) {
        let _ = writeln!(md, "\n## Failures\n");
        for f in failures {
            let _ = writeln!(
                md,
                "- {}: {}",
                f["id"].as_str().unwrap_or(""),
                f["error"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            );
        }
    }
    md
}

fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "n/a".to_owned()
    } else if r >= 10.0 {
        format!("{r:.0}")
    } else if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("{r:.3}")
    }
}

/// `ratios.svg`: one bar per scenario on a log axis from parity (1×) to the ratio, green when the
/// goal is met, red when not, with the goal as a black marker.
fn chart(results: &Value) -> String {
    let rows: Vec<&Value> = results["scenarios"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let (left, right, top, row_h) = (200.0, 720.0, 60.0, 34.0);
    let width = 800.0;
    let height = top + row_h * rows.len() as f64 + 60.0;
    let (lo, hi) = (-2.0_f64, 2.0_f64); // log10 of 0.01 .. 100
    let x = |ratio: f64| left + (ratio.clamp(1e-2, 1e2).log10() - lo) / (hi - lo) * (right - left);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="24" font-size="15" font-weight="bold">domain-events ÷ peer ({}), log scale</text>"##,
        left - 180.0,
        escape(results["command"].as_str().unwrap_or(""))
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="42" fill="#555">bar: median ratio; black: goal; dashed blue: best ratio possible here; green: met, red: not (memory: lower is better)</text>"##,
        left - 180.0
    );
    let bottom = top + row_h * rows.len() as f64;
    for tick in [0.01, 0.1, 1.0, 10.0, 100.0] {
        let tx = x(tick);
        let stroke = if tick == 1.0 { "#333" } else { "#ddd" };
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{top}" x2="{tx:.1}" y2="{bottom}" stroke="{stroke}"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}×</text>"##,
            bottom + 16.0,
            trim_float(tick)
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left - 8.0,
            y + row_h / 2.0 + 4.0,
            escape(row["title"].as_str().unwrap_or(""))
        );
        let Some(ratio) = row["ratio"].as_f64() else {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#999">n/a</text>"##,
                x(1.0) + 6.0,
                y + row_h / 2.0 + 4.0
            );
            continue;
        };
        let met = row["met"].as_bool().unwrap_or(false);
        let color = if met { "#2e7d32" } else { "#c62828" };
        let (x0, x1) = (x(1.0), x(ratio));
        let (bx, bw) = if x1 >= x0 {
            (x0, x1 - x0)
        } else {
            (x1, x0 - x1)
        };
        let _ = writeln!(
            svg,
            r##"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}" opacity="0.85"/>"##,
            y + 7.0,
            bw.max(1.0),
            row_h - 14.0
        );
        let goal = row["goal"]["value"].as_f64().unwrap_or(1.0);
        let gx = x(goal);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{:.1}" stroke="black" stroke-width="3"/>"##,
            y + 3.0,
            y + row_h - 3.0
        );
        let best = row["limit"]["best_ratio"].as_f64();
        let mut right_edge = x0.max(x1).max(gx);
        if let Some(best) = best {
            let bx = x(best);
            right_edge = right_edge.max(bx);
            let _ = writeln!(
                svg,
                r##"<line x1="{bx:.1}" y1="{:.1}" x2="{bx:.1}" y2="{:.1}" stroke="#1565c0" stroke-width="2" stroke-dasharray="3 2"/>"##,
                y + 1.0,
                y + row_h - 1.0
            );
        }
        let label = format!(
            "{}× (goal {}{})",
            fmt_ratio(ratio),
            row["goal"]["text"].as_str().unwrap_or(""),
            best.map_or(String::new(), |b| format!(
                ", at most {}× here",
                fmt_ratio(b)
            ))
        );
        // Right of everything drawn in the row, so it never runs into the row's title.
        let (lx, anchor) = (right_edge + 6.0, "start");
        let _ = writeln!(
            svg,
            r##"<text x="{lx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"##,
            y + row_h / 2.0 + 4.0,
            escape(&label)
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inputs of the `testdata/` fixture: two rounds per side (one with no time), a memory
    /// scenario and a failed one.
    fn fixture_samples(metric: Metric) -> [Vec<Sample>; 2] {
        let sample = |n, seconds, per_sec, rss, cpu| Sample {
            n,
            seconds,
            per_sec,
            peak_rss_bytes: (metric == Metric::PeakRss).then_some(rss),
            redis_cpu: cpu,
        };
        [
            vec![
                sample(20_000, 1.523_456, 13_128.4, 9_437_184.0, Some(2.5e-5)),
                sample(20_000, f64::NAN, 11_876.9, 10_485_760.0, Some(3.1e-5)),
            ],
            vec![
                sample(20_000, 4.812_3, 4_155.6, 62_914_560.0, None),
                sample(20_000, 5.001, 3_998.2, 67_108_864.0, None),
            ],
        ]
    }

    /// `results.json` as `run` writes it, from fixed inputs.
    fn fixture_results() -> Value {
        let floor = limits::floor_record(&[
            limits::Floor {
                per_sec: 10_512.3,
                redis_cpu: 6.2e-6,
            },
            limits::Floor {
                per_sec: 9_994.0,
                redis_cpu: 5.9e-6,
            },
        ]);
        let records: Vec<Value> = SCENARIOS
            .iter()
            .map(|s| {
                if s.id == "consume_c50" {
                    record(
                        s,
                        &[],
                        &[],
                        &floor,
                        Some("consume_c50 ours: the run printed no per_sec\nmore"),
                    )
                } else {
                    let [ours, peer] = fixture_samples(s.metric);
                    record(s, &ours, &peer, &floor, None)
                }
            })
            .collect();
        let sizes = vec![
            json!({"events": 30, "expand_seconds": round3(0.004_21), "generated_bytes": 131_072, "compile_seconds": round3(3.412_6)}),
            json!({"events": 300, "expand_seconds": round3(0.041_9), "generated_bytes": 1_310_720, "compile_seconds": round3(9.871)}),
            json!({"events": 3000, "expand_seconds": round3(f64::NAN), "generated_bytes": 13_107_200}),
        ];
        let codegen = json!({
            "sizes": sizes,
            "events_per_file": EVENTS_PER_FILE,
            "profile": "dev",
            "builds": CODEGEN_BUILDS[0],
            "compile_ratio_3000_300": None::<f64>,
            "compile_ratio_300_30": Some(round3(9.871 / 3.413)),
            "expand_ratio_3000_300": None::<f64>,
            "goal": "3,000 events within 12× the cost of 300",
            "met": None::<f64>.map(|r| r <= 12.0).or(Some(true)),
        });
        let allocations = [
            r#"{"scenario":"allocs","path":"emit_serial","what":"typed emit","n":20000,"allocs_per_event":31.4,"bytes_per_event":4096.0}"#,
            r#"{"scenario":"allocs","path":"consume","what":"typed handler","n":20000,"allocs_per_event":12.0,"bytes_per_event":1875.0}"#,
        ]
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect::<Vec<_>>();
        let failures = [(
            "consume_c50".to_owned(),
            "consume_c50 ours: the run printed no per_sec\nmore".to_owned(),
        )];
        let machine = json!({
            "cpu": "AMD EPYC 7B13",
            "cores": 2,
            "memory_gib": Some(23.5),
            "kernel": "6.18.0",
            "rustc": "rustc 1.95.0 (2026-01-01)",
            "redis_server": "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=0",
            "node": Some(json!("v20.20.2")),
            "bullmq": Some(json!("5.81.5")),
            "ioredis": Some(json!("5.11.1")),
            "load_at_start": "1.02 1.10 1.21",
            "load_at_end": "1.71 1.40 1.30",
        });
        let wall = 572.345_f64;
        json!({
            "command": "cargo xtask bench",
            "quick": false,
            "rounds": 2,
            "wall_seconds": (wall * 10.0).round() / 10.0,
            "machine": machine,
            "round_trip_floor": floor,
            "scenarios": records,
            "allocations": allocations,
            "codegen": codegen,
            "failures": failures.iter().map(|(id, e)| json!({"id": id, "error": e})).collect::<Vec<_>>(),
        })
    }

    /// `testdata/`: a `results.json` written by this code, and the report and chart rendered from
    /// it; `XTASK_WRITE_FIXTURE=1` writes them.
    #[test]
    fn results_fixture_is_what_the_writer_and_renderer_produce() {
        let results = fixture_results();
        let json = serde_json::to_string_pretty(&results).expect("serialized") + "\n";
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bench/testdata");
        if std::env::var_os("XTASK_WRITE_FIXTURE").is_some() {
            std::fs::create_dir_all(&dir).expect("testdata");
            std::fs::write(dir.join("results.json"), &json).expect("written");
            std::fs::write(dir.join("report.md"), report(&results)).expect("written");
            std::fs::write(dir.join("ratios.svg"), chart(&results)).expect("written");
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("fixture");
        assert_eq!(read("results.json"), json);
        assert_eq!(read("report.md"), report(&results));
        assert_eq!(read("ratios.svg"), chart(&results));
    }

    #[test]
    fn redis_benchmark_csv_rows_are_read_from_the_right() {
        let output = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
            \"XADD s * event {\"a\":\"b\",\"c\":[1]}\",\"133779.27\",\"9.638\",\"1.008\",\"9.335\",\"14.791\",\"19.055\",\"22.271\"\n";
        assert_eq!(redis_benchmark_rps(output).expect("parsed"), 133_779.27);
        assert!(redis_benchmark_rps("\"test\",\"rps\"\n").is_err());
    }

    #[test]
    fn medians_spreads_and_goals() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(spread(&[90.0, 110.0, 100.0], Some(100.0))["relative"], 0.2);
        assert!(Goal::AtLeast(2.5).met(2.5) && !Goal::AtLeast(2.5).met(2.4));
        assert!(Goal::AtMost(0.2).met(0.1) && !Goal::AtMost(0.2).met(0.3));
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(Goal::AtLeast(2.5).text(), "≥ 2.5");
    }

    #[test]
    fn generated_schemas_are_valid_at_every_size() {
        let sources: Vec<(String, String)> = (0..3)
            .map(|file| {
                (
                    format!("c{file:04}.toml"),
                    schema_file(file, EVENTS_PER_FILE),
                )
            })
            .collect();
        let borrowed: Vec<(&str, &str)> = sources
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let catalog =
            domain_events_schema::Catalog::from_sources(&borrowed).expect("valid schemas");
        assert_eq!(catalog.events().count(), 3 * EVENTS_PER_FILE);
    }

    #[test]
    fn the_report_and_chart_show_every_scenario() {
        let ours = vec![Sample {
            n: 10,
            seconds: 1.0,
            per_sec: 10.0,
            peak_rss_bytes: None,
            redis_cpu: Some(1e-4),
        }];
        let peer = vec![Sample {
            n: 10,
            seconds: 2.0,
            per_sec: 5.0,
            peak_rss_bytes: None,
            redis_cpu: None,
        }];
        // 20 SET/s at 10 ms of Redis CPU each; ours 100 µs per event.
        let floor = json!({"per_sec": 20.0, "redis_cpu_us_per_op": 10_000.0});
        let records: Vec<Value> = SCENARIOS
            .iter()
            .map(|s| record(s, &ours, &peer, &floor, None))
            .collect();
        let results = json!({"command": "cargo xtask bench", "rounds": 1, "machine": {},
            "round_trip_floor": floor, "scenarios": records,
            "allocations": [], "codegen": null, "failures": []});
        let md = report(&results);
        let svg = chart(&results);
        for scenario in SCENARIOS {
            assert!(md.contains(scenario.title), "{}", scenario.title);
            assert!(svg.contains(&escape(scenario.title)), "{}", scenario.title);
        }
        // The bound of a Redis scenario is drawn and named; the in-memory bus has none.
        assert!(
            svg.contains("2.00× (goal ≥ 2.5, at most 4.99× here)"),
            "{svg}"
        );
        assert!(svg.contains("2.00× (goal ≥ 0.5)<"), "{svg}");
        assert!(svg.contains("stroke-dasharray"), "{svg}");

        // `--render` writes the same report and chart from the results file.
        let dir = std::env::temp_dir().join(format!("xtask-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("results.json");
        std::fs::write(&path, results.to_string()).expect("written");
        render(&path).expect("rendered");
        assert_eq!(
            std::fs::read_to_string(dir.join("report.md")).expect("report"),
            md
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("ratios.svg")).expect("chart"),
            svg
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(render(&dir.join("missing.json")).is_err());
        assert!(
            md.contains("| emit serial | 10/s | 5/s | 2.00× (2.00–2.00) | ≥ 2.5 | **no** |"),
            "{md}"
        );
        // Round trip: 1 / (50 ms − 10 ms + 0.1 ms) = 24.94/s, 4.99× the peer's 5/s.
        assert!(
            md.contains(
                "| emit serial | round trip | 100.0 µs | n/a | 10/s | 25/s | 4.99× | ≥ 2.5 | yes |"
            ),
            "{md}"
        );
        // Redis CPU: 1 / 100 µs = 10,000/s, 2,000× the peer; memory has no bound.
        assert!(
            md.contains("| emit batch | Redis CPU | 100.0 µs | n/a | 10/s | 10,000/s | 2000.00× | ≥ 8 | yes |"),
            "{md}"
        );
        assert!(!md.contains("| memory | round trip") && !md.contains("| memory | Redis CPU"));
    }
}
