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
//! 5. measures the outbox (`outbox.rs`) on a private PostgreSQL with default durability
//!    (`--only outbox` runs that part alone);
//! 6. measures batch emit and consume on a private three-master Redis Cluster, the category in 1
//!    and in 6 partitions (`cluster.rs`; `--only cluster` runs that part alone);
//! 7. times code generation (`Catalog::load` + `generate`) and the `cargo build` of scratch crates
//!    that `include_events!` 30, 300 and 3,000 generated events (`--quick`: compiles 30 and 300);
//! 8. writes `target/bench/results.json`, `target/bench/report.md` and `target/bench/ratios.svg`.
//!
//! Benchmarks are not tests: nothing here fails because a goal is missed, only when a run fails.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

mod chart;
mod cluster;
mod codegen;
mod limits;
mod machine;
mod outbox;
mod process;
mod report;
mod results;
mod run;
mod scenarios;
mod stats;

use process::{Redis, capture, npm_install_needed, step, which};
use results::{BenchResults, Failure};
use run::Env;
use scenarios::{SCENARIOS, Scenario};

/// The peer harness, relative to the workspace root.
const PEER_DIR: &str = "bench/peer";

/// What `cargo xtask bench` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Fewer rounds and smaller counts: done in under 3 minutes once everything is built.
    pub quick: bool,
    /// Rounds per scenario (default 5, `--quick` 3).
    pub rounds: Option<usize>,
    /// Only these scenario ids, `outbox` for the outbox part, `cluster` for the Redis Cluster part
    /// (all when empty).
    pub only: Vec<String>,
    /// Skip the code generation timings.
    pub no_codegen: bool,
}

impl Options {
    fn rounds(&self) -> usize {
        self.rounds.unwrap_or(if self.quick { 3 } else { 5 }).max(1)
    }
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
    if let Some(unknown) = options.only.iter().find(|id| {
        *id != outbox::ID && *id != cluster::ID && !SCENARIOS.iter().any(|s| s.id == *id)
    }) {
        let known: Vec<&str> = SCENARIOS
            .iter()
            .map(|s| s.id)
            .chain([outbox::ID, cluster::ID])
            .collect();
        bail!("unknown scenario `{unknown}`; known: {}", known.join(", "));
    }
    let with_outbox = options.only.is_empty() || options.only.iter().any(|id| id == outbox::ID);
    let with_cluster = options.only.is_empty() || options.only.iter().any(|id| id == cluster::ID);

    let node = if scenarios.is_empty() {
        &[][..]
    } else {
        &["node", "npm"][..]
    };
    for tool in node
        .iter()
        .chain(&["redis-server", "redis-cli", "redis-benchmark"])
    {
        which(tool).with_context(|| {
            format!("`{tool}` is not on PATH; the benchmark needs Node.js >= 20 with npm and Redis (Debian: redis-server, redis-tools)")
        })?;
    }
    step(
        cargo,
        ["build", "--release", "--quiet", "-p", "domain-events-bench"],
        None,
    )?;
    if !scenarios.is_empty()
        && let Some(args) = npm_install_needed(Path::new(PEER_DIR))
    {
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

    let machine = machine::machine();
    eprintln!(
        "bench: {} rounds{}, {} on {} cores, load {}",
        options.rounds(),
        if options.quick { " (quick)" } else { "" },
        machine.cpu.as_deref().unwrap_or("?"),
        serde_json::Value::from(machine.cores),
        machine.load_at_start.as_deref().unwrap_or("?"),
    );

    let redis = Redis::start(&env.bench_bin)?;
    let rounds = options.rounds();
    let mut failures: Vec<(String, String)> = Vec::new();
    let run::Measured { samples, floors } = if scenarios.is_empty() {
        run::Measured {
            samples: Vec::new(),
            floors: Vec::new(),
        }
    } else {
        run::rounds(&env, &redis, &scenarios, rounds, &mut failures)?
    };

    redis.flush()?;
    let allocations = if scenarios.is_empty() {
        Vec::new()
    } else {
        match run::allocations(&env, &redis) {
            Ok(lines) => lines,
            Err(error) => {
                eprintln!("  allocations: FAILED: {error:#}");
                failures.push(("allocations".to_owned(), format!("{error:#}")));
                Vec::new()
            }
        }
    };
    let outbox = if with_outbox {
        outbox::measure(&env, &redis, rounds, &mut failures)
    } else {
        None
    };
    drop(redis);
    let cluster = if with_cluster {
        cluster::measure(&env, rounds, &mut failures)
    } else {
        None
    };

    let codegen = if options.no_codegen {
        None
    } else {
        match codegen::codegen(&env) {
            Ok(codegen) => Some(codegen),
            Err(error) => {
                eprintln!("  codegen: FAILED: {error:#}");
                failures.push(("codegen".to_owned(), format!("{error:#}")));
                None
            }
        }
    };

    let floor = limits::floor_record(&floors);
    let records = scenarios
        .iter()
        .zip(&samples)
        .map(|(scenario, [ours, peer])| {
            let failure = failures
                .iter()
                .find(|(id, _)| id == scenario.id)
                .map(|(_, e)| e.as_str());
            stats::record(scenario, ours, peer, &floor, failure)
        })
        .collect();
    let mut machine = machine;
    machine.load_at_end = Some(machine::load_average());
    let wall = started.elapsed().as_secs_f64();
    let results = BenchResults {
        command: if options.quick {
            "cargo xtask bench --quick"
        } else {
            "cargo xtask bench"
        }
        .to_owned(),
        quick: options.quick,
        rounds,
        wall_seconds: (wall * 10.0).round() / 10.0,
        machine,
        round_trip_floor: floor,
        scenarios: records,
        allocations,
        codegen,
        outbox,
        cluster,
        failures: failures
            .iter()
            .map(|(id, error)| Failure {
                id: id.clone(),
                error: error.clone(),
            })
            .collect(),
    };
    let results_path = out_dir.join("results.json");
    std::fs::write(&results_path, results.to_json()?)?;
    let report_path = out_dir.join("report.md");
    std::fs::write(&report_path, report::report(&results))?;
    let chart_path = out_dir.join("ratios.svg");
    std::fs::write(&chart_path, chart::chart(&results))?;
    print!("{}", report::report(&results));
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
    // Two steps, so that text that is not JSON at all is told as before.
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", results_path.display()))?;
    let results: BenchResults = serde_json::from_value(value).with_context(|| {
        format!(
            "{} is not a results.json of `cargo xtask bench`",
            results_path.display()
        )
    })?;
    let dir = results_path.parent().unwrap_or(Path::new("."));
    let (report_path, chart_path) = (dir.join("report.md"), dir.join("ratios.svg"));
    std::fs::write(&report_path, report::report(&results))?;
    std::fs::write(&chart_path, chart::chart(&results))?;
    eprintln!(
        "wrote {} and {}",
        report_path.display(),
        chart_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use limits::Floor;
    use results::{Allocation, Codegen, CodegenSize, Machine, RoundTripFloor};
    use run::Sample;
    use scenarios::Metric;

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

    /// `testdata/results.json` was written by the `serde_json::Value` code from these inputs;
    /// the typed writer writes it byte for byte.
    #[test]
    fn the_typed_writer_writes_the_fixture() {
        let floor = limits::floor_record(&[
            Floor {
                per_sec: 10_512.3,
                redis_cpu: 6.2e-6,
            },
            Floor {
                per_sec: 9_994.0,
                redis_cpu: 5.9e-6,
            },
        ]);
        let error = "consume_c50 ours: the run printed no per_sec\nmore";
        let scenarios = SCENARIOS
            .iter()
            .map(|s| {
                if s.id == "consume_c50" {
                    stats::record(s, &[], &[], &floor, Some(error))
                } else {
                    let [ours, peer] = fixture_samples(s.metric);
                    stats::record(s, &ours, &peer, &floor, None)
                }
            })
            .collect();
        let size = |events, expand: f64, generated_bytes, compile: Option<f64>| CodegenSize {
            events,
            expand_seconds: Some(stats::round3(expand)).filter(|x| x.is_finite()),
            generated_bytes,
            compile_seconds: compile.map(stats::round3),
        };
        let allocation = |path: &str, what: &str, allocs_per_event, bytes_per_event| Allocation {
            scenario: "allocs".to_owned(),
            path: path.to_owned(),
            what: what.to_owned(),
            n: 20_000,
            allocs_per_event,
            bytes_per_event,
        };
        let text = |s: &str| Some(s.to_owned());
        let results = BenchResults {
            command: "cargo xtask bench".to_owned(),
            quick: false,
            rounds: 2,
            wall_seconds: 572.3,
            machine: Machine {
                cpu: text("AMD EPYC 7B13"),
                cores: Some(2),
                memory_gib: Some(23.5),
                kernel: text("6.18.0"),
                rustc: text("rustc 1.95.0 (2026-01-01)"),
                redis_server: text(
                    "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=0",
                ),
                node: text("v20.20.2"),
                bullmq: text("5.81.5"),
                ioredis: text("5.11.1"),
                load_at_start: text("1.02 1.10 1.21"),
                load_at_end: text("1.71 1.40 1.30"),
            },
            round_trip_floor: floor,
            scenarios,
            allocations: vec![
                allocation("emit_serial", "typed emit", 31.4, 4096.0),
                allocation("consume", "typed handler", 12.0, 1875.0),
            ],
            codegen: Some(Codegen {
                sizes: vec![
                    size(30, 0.004_21, 131_072, Some(3.412_6)),
                    size(300, 0.041_9, 1_310_720, Some(9.871)),
                    size(3000, f64::NAN, 13_107_200, None),
                ],
                events_per_file: 10,
                profile: "dev".to_owned(),
                builds: Some(3),
                compile_ratio_3000_300: None,
                compile_ratio_300_30: Some(stats::round3(9.871 / 3.413)),
                expand_ratio_3000_300: None,
                goal: "3,000 events within 12× the cost of 300".to_owned(),
                met: Some(true),
            }),
            outbox: None,
            cluster: None,
            failures: vec![Failure {
                id: "consume_c50".to_owned(),
                error: error.to_owned(),
            }],
        };
        assert_eq!(
            results.to_json().expect("serialized"),
            include_str!("testdata/results.json")
        );
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
        let floor = RoundTripFloor {
            per_sec: Some(20.0),
            redis_cpu_us_per_op: Some(10_000.0),
            ..RoundTripFloor::default()
        };
        let scenarios = SCENARIOS
            .iter()
            .map(|s| stats::record(s, &ours, &peer, &floor, None))
            .collect();
        let results = BenchResults {
            command: "cargo xtask bench".to_owned(),
            rounds: 1,
            round_trip_floor: floor,
            scenarios,
            ..BenchResults::default()
        };
        let md = report::report(&results);
        let svg = chart::chart(&results);
        for scenario in SCENARIOS {
            assert!(md.contains(scenario.title), "{}", scenario.title);
            assert!(
                svg.contains(&chart::escape(scenario.title)),
                "{}",
                scenario.title
            );
        }
        // The bound of a Redis scenario is drawn and named; the in-memory bus has none.
        assert!(
            svg.contains("2.00× (goal ≥ 2.5, at most 4.99× here)"),
            "{svg}"
        );
        assert!(svg.contains("2.00× (goal ≥ 0.5)<"), "{svg}");
        assert!(svg.contains("stroke-dasharray"), "{svg}");

        // `--render` writes the same report and chart from the results file.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("results.json");
        std::fs::write(&path, results.to_json().expect("serialized")).expect("written");
        render(&path).expect("rendered");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect(name);
        assert_eq!(read("report.md"), md);
        assert_eq!(read("ratios.svg"), svg);
        assert!(render(&dir.path().join("missing.json")).is_err());
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "not json").expect("written");
        let error = format!("{:#}", render(&bad).expect_err("not JSON"));
        assert!(error.contains("bad.json is not JSON"), "{error}");
        std::fs::write(&bad, r#"{"scenarios": 3}"#).expect("written");
        let error = format!("{:#}", render(&bad).expect_err("not a results.json"));
        assert!(error.contains("is not a results.json"), "{error}");
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

    /// `--render` of a `results.json` written before the results were typed writes the report and
    /// chart that code wrote.
    #[test]
    fn render_of_an_old_results_json_is_unchanged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("results.json");
        std::fs::write(&path, include_str!("testdata/results.json")).expect("written");
        render(&path).expect("rendered");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect(name);
        assert_eq!(read("report.md"), include_str!("testdata/report.md"));
        assert_eq!(read("ratios.svg"), include_str!("testdata/ratios.svg"));
    }
}
