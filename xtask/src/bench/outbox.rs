//! The outbox part of `cargo xtask bench` (`--only outbox` runs it alone): on a private PostgreSQL
//! with its default durability (`fsync`, `synchronous_commit` on; the test harness's, through
//! `domain-events-bench postgres_server`) and the run's Redis, three measurements per round:
//!
//! - **commit**: a transaction inserting a business row with its outbox event ÷ the same
//!   transaction without it (median time; goal ≤ 1.25), beside the same transaction with an empty
//!   statement (`SELECT 1`) instead of the event: one more round trip and nothing else, the least
//!   a second statement costs;
//! - **relay**: a committed backlog relayed to Redis Streams ÷ `Emitter::emit_batch` of the same
//!   events straight to the same Redis, in batches of the relay's size (events/s; goal ≥ 0.5);
//! - **latency**: commit → entry read from the stream, writers paced at 1,000 transactions/s,
//!   the relay woken by `LISTEN/NOTIFY` (goal p50 ≤ 5 ms, p99 ≤ 25 ms).

use std::fmt::Write as _;
use std::process::Command;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::process::{Redis, Server, capture};
use super::report::thousands;
use super::results::BenchResults;
use super::run::{Env, last_json_line};
use super::stats::{median, round3};

/// The id of the outbox part for `--only`.
pub(super) const ID: &str = "outbox";

/// Goal of the commit ratio (with ÷ without the event, median time).
const COMMIT_GOAL: f64 = 1.25;
/// Goal of the relay ratio (relay ÷ `emit_batch`, events/s).
const RELAY_GOAL: f64 = 0.5;
/// Goals of the latency, milliseconds.
const P50_GOAL_MS: f64 = 5.0;
const P99_GOAL_MS: f64 = 25.0;
/// Transactions per second of the latency writers.
const RATE: u64 = 1_000;

/// The outbox measurements of a run, as recorded in `results.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboxResult {
    /// Rounds run.
    pub rounds: usize,
    /// Business transaction with ÷ without its event.
    pub commit: CommitResult,
    /// Relay ÷ `emit_batch`.
    pub relay: RelayResult,
    /// Commit → stream entry.
    pub latency: LatencyResult,
}

/// The commit measurement: medians over the rounds of each run's median and p99.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommitResult {
    /// Transactions of each shape per run.
    pub n: Option<u64>,
    /// Median microseconds with the event.
    pub with_median_us: Option<f64>,
    /// p99 microseconds with the event.
    pub with_p99_us: Option<f64>,
    /// Median microseconds without it.
    pub without_median_us: Option<f64>,
    /// p99 microseconds without it.
    pub without_p99_us: Option<f64>,
    /// Median microseconds with `SELECT 1` instead of the event.
    pub round_trip_median_us: Option<f64>,
    /// With ÷ without (medians), median over the rounds.
    pub ratio: Option<f64>,
    /// The ratio of every round.
    pub ratio_runs: Vec<f64>,
    /// `SELECT 1` ÷ without: the least one more statement costs.
    pub round_trip_ratio: Option<f64>,
    /// `≤ 1.25`.
    pub goal: String,
    /// Whether the ratio meets it.
    pub met: Option<bool>,
}

/// The relay measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayResult {
    /// Events per run.
    pub n: Option<u64>,
    /// The relay's median events/s.
    pub ours_per_sec: Option<f64>,
    /// `emit_batch`'s median events/s.
    pub peer_per_sec: Option<f64>,
    /// Ours ÷ peer of the medians.
    pub ratio: Option<f64>,
    /// Every run of the relay.
    pub ours_runs: Vec<f64>,
    /// Every run of `emit_batch`.
    pub peer_runs: Vec<f64>,
    /// `≥ 0.5`.
    pub goal: String,
    /// Whether the ratio meets it.
    pub met: Option<bool>,
}

/// The latency measurement: medians over the rounds of each run's percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyResult {
    /// Transactions (one event each) per second offered.
    pub rate: u64,
    /// Seconds timed per run.
    pub seconds: f64,
    /// Median p50, milliseconds.
    pub p50_ms: Option<f64>,
    /// Median p99, milliseconds.
    pub p99_ms: Option<f64>,
    /// Highest max of the runs, milliseconds.
    pub max_ms: Option<f64>,
    /// p50 of every run.
    pub p50_runs: Vec<f64>,
    /// p99 of every run.
    pub p99_runs: Vec<f64>,
    /// `p50 ≤ 5 ms, p99 ≤ 25 ms`.
    pub goal: String,
    /// Whether both percentiles meet it.
    pub met: Option<bool>,
}

/// The JSON lines of every round.
#[derive(Default)]
struct Runs {
    commit: Vec<Value>,
    relay: Vec<f64>,
    peer: Vec<f64>,
    latency: Vec<Value>,
}

/// Runs the outbox part for `rounds` rounds; a failure is recorded in `failures` and ends it.
pub(super) fn measure(
    env: &Env,
    redis: &Redis,
    rounds: usize,
    failures: &mut Vec<(String, String)>,
) -> Option<OutboxResult> {
    let sizes = Sizes::of(env.quick);
    let mut runs = Runs::default();
    let measured = Server::start(&env.bench_bin, "postgres_server").and_then(|postgres| {
        eprintln!("bench: PostgreSQL (fsync on) at {}", postgres.url);
        for round in 0..rounds {
            one_round(env, redis, &postgres.url, &sizes, round, rounds, &mut runs)?;
        }
        Ok(())
    });
    if let Err(error) = measured {
        eprintln!("  {ID}: FAILED: {error:#}");
        failures.push((ID.to_owned(), format!("{error:#}")));
        if runs.commit.is_empty() && runs.relay.is_empty() && runs.latency.is_empty() {
            return None;
        }
    }
    Some(result(&runs, rounds, &sizes))
}

/// How much each run does.
struct Sizes {
    commit_n: u64,
    commit_warmup: u64,
    relay_n: u64,
    warmup: u64,
    latency_seconds: f64,
}

impl Sizes {
    fn of(quick: bool) -> Self {
        if quick {
            Sizes {
                commit_n: 1_000,
                commit_warmup: 100,
                relay_n: 5_000,
                warmup: 200,
                latency_seconds: 4.0,
            }
        } else {
            Sizes {
                commit_n: 3_000,
                commit_warmup: 300,
                relay_n: 20_000,
                warmup: 500,
                latency_seconds: 10.0,
            }
        }
    }
}

fn one_round(
    env: &Env,
    redis: &Redis,
    database_url: &str,
    sizes: &Sizes,
    round: usize,
    rounds: usize,
    runs: &mut Runs,
) -> anyhow::Result<()> {
    let bench = |args: &[&str]| -> anyhow::Result<Value> {
        redis.flush()?;
        last_json_line(&capture(Command::new(&env.bench_bin).args(args))?)
    };
    let progress = |what: &str, value: String| {
        eprintln!("  round {}/{rounds} {ID} {what:<9} {value}", round + 1);
    };
    let number = |line: &Value, key: &str| line.get(key).and_then(Value::as_f64);

    let line = bench(&[
        "outbox_commit",
        "--database-url",
        database_url,
        "--n",
        &sizes.commit_n.to_string(),
        "--warmup",
        &sizes.commit_warmup.to_string(),
    ])?;
    progress(
        "commit",
        format!(
            "{} µs with, {} µs without, ratio {}",
            number(&line, "with_median_us").unwrap_or(f64::NAN),
            number(&line, "without_median_us").unwrap_or(f64::NAN),
            number(&line, "ratio").unwrap_or(f64::NAN),
        ),
    );
    runs.commit.push(line);

    let (n, warmup) = (sizes.relay_n.to_string(), sizes.warmup.to_string());
    let ours = [
        "outbox_relay",
        "--url",
        &redis.url,
        "--database-url",
        database_url,
        "--n",
        &n,
        "--warmup",
        &warmup,
    ];
    let peer = [
        "outbox_emit_batch",
        "--url",
        &redis.url,
        "--n",
        &n,
        "--warmup",
        &warmup,
    ];
    // Ours first in odd rounds, the peer first in even ones.
    let order: [(&str, &[&str]); 2] = if round.is_multiple_of(2) {
        [("relay", &ours), ("emit_batch", &peer)]
    } else {
        [("emit_batch", &peer), ("relay", &ours)]
    };
    for (what, args) in order {
        let line = bench(args)?;
        let per_sec = number(&line, "per_sec").context("the run printed no per_sec")?;
        progress(what, format!("{}/s", thousands(per_sec)));
        if what == "relay" {
            runs.relay.push(per_sec);
        } else {
            runs.peer.push(per_sec);
        }
    }

    let line = bench(&[
        "outbox_latency",
        "--url",
        &redis.url,
        "--database-url",
        database_url,
        "--rate",
        &RATE.to_string(),
        "--seconds",
        &sizes.latency_seconds.to_string(),
    ])?;
    progress(
        "latency",
        format!(
            "p50 {} ms, p99 {} ms",
            number(&line, "p50_ms").unwrap_or(f64::NAN),
            number(&line, "p99_ms").unwrap_or(f64::NAN),
        ),
    );
    runs.latency.push(line);
    Ok(())
}

/// The record of the runs: medians over the rounds.
fn result(runs: &Runs, rounds: usize, sizes: &Sizes) -> OutboxResult {
    let of = |lines: &[Value], key: &str| -> Vec<f64> {
        lines
            .iter()
            .filter_map(|line| line.get(key).and_then(Value::as_f64))
            .collect()
    };
    let med = |values: &[f64]| median(values).map(round3);
    let commit_ratios = of(&runs.commit, "ratio");
    let commit_ratio = med(&commit_ratios);
    let (ours, peer) = (median(&runs.relay), median(&runs.peer));
    let relay_ratio = match (ours, peer) {
        (Some(o), Some(p)) if p > 0.0 => Some(round3(o / p)),
        _ => None,
    };
    let (p50s, p99s) = (of(&runs.latency, "p50_ms"), of(&runs.latency, "p99_ms"));
    let (p50, p99) = (med(&p50s), med(&p99s));
    OutboxResult {
        rounds,
        commit: CommitResult {
            n: (!runs.commit.is_empty()).then_some(sizes.commit_n),
            with_median_us: med(&of(&runs.commit, "with_median_us")),
            with_p99_us: med(&of(&runs.commit, "with_p99_us")),
            without_median_us: med(&of(&runs.commit, "without_median_us")),
            without_p99_us: med(&of(&runs.commit, "without_p99_us")),
            round_trip_median_us: med(&of(&runs.commit, "round_trip_median_us")),
            ratio: commit_ratio,
            ratio_runs: commit_ratios,
            round_trip_ratio: med(&of(&runs.commit, "round_trip_ratio")),
            goal: format!("≤ {COMMIT_GOAL}"),
            met: commit_ratio.map(|r| r <= COMMIT_GOAL),
        },
        relay: RelayResult {
            n: (!runs.relay.is_empty()).then_some(sizes.relay_n),
            ours_per_sec: ours.map(f64::round),
            peer_per_sec: peer.map(f64::round),
            ratio: relay_ratio,
            ours_runs: runs.relay.clone(),
            peer_runs: runs.peer.clone(),
            goal: format!("≥ {RELAY_GOAL}"),
            met: relay_ratio.map(|r| r >= RELAY_GOAL),
        },
        latency: LatencyResult {
            rate: RATE,
            seconds: sizes.latency_seconds,
            p50_ms: p50,
            p99_ms: p99,
            max_ms: of(&runs.latency, "max_ms").into_iter().reduce(f64::max),
            p50_runs: p50s,
            p99_runs: p99s,
            goal: format!("p50 ≤ {P50_GOAL_MS} ms, p99 ≤ {P99_GOAL_MS} ms"),
            met: p50
                .zip(p99)
                .map(|(p50, p99)| p50 <= P50_GOAL_MS && p99 <= P99_GOAL_MS),
        },
    }
}

/// The report's outbox section; empty when the run had none.
pub(super) fn section(results: &BenchResults) -> String {
    let mut md = String::new();
    let Some(outbox) = &results.outbox else {
        return md;
    };
    let text = |v: Option<f64>, unit: &str| v.map_or("n/a".to_owned(), |v| format!("{v}{unit}"));
    let met = |met: Option<bool>| match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "n/a",
    };
    let _ = writeln!(md, "\n## The outbox\n");
    let _ = writeln!(
        md,
        "PostgreSQL with its default durability (`fsync`, `synchronous_commit` on), {} round(s), medians over the rounds (see `xtask/src/bench/outbox.rs`).\n",
        outbox.rounds
    );
    let _ = writeln!(
        md,
        "| measurement | ours | compared with | result | goal | met |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|:---:|");
    let c = &outbox.commit;
    let _ = writeln!(
        md,
        "| business row + event ÷ business row alone (n={}) | {} (p99 {}) | {} (p99 {}) | {}× (with `SELECT 1` instead: {}×) | {} | {} |",
        c.n.map_or("n/a".to_owned(), |n| n.to_string()),
        text(c.with_median_us, " µs"),
        text(c.with_p99_us, " µs"),
        text(c.without_median_us, " µs"),
        text(c.without_p99_us, " µs"),
        text(c.ratio, ""),
        text(c.round_trip_ratio, ""),
        c.goal,
        met(c.met),
    );
    let r = &outbox.relay;
    let _ = writeln!(
        md,
        "| relay: committed rows → stream ÷ `emit_batch` (n={}) | {} | {} | {}× | {} | {} |",
        r.n.map_or("n/a".to_owned(), |n| n.to_string()),
        r.ours_per_sec
            .map_or("n/a".to_owned(), |v| format!("{}/s", thousands(v))),
        r.peer_per_sec
            .map_or("n/a".to_owned(), |v| format!("{}/s", thousands(v))),
        text(r.ratio, ""),
        r.goal,
        met(r.met),
    );
    let l = &outbox.latency;
    let _ = writeln!(
        md,
        "| commit → stream entry at {}/s for {} s | p50 {}, p99 {} (max {}) | | | {} | {} |",
        thousands(l.rate as f64),
        l.seconds,
        text(l.p50_ms, " ms"),
        text(l.p99_ms, " ms"),
        text(l.max_ms, " ms"),
        l.goal,
        met(l.met),
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_runs_become_medians_and_goals() {
        let runs = Runs {
            commit: vec![
                json!({"with_median_us": 800.0, "without_median_us": 600.0, "ratio": 1.333,
                       "round_trip_ratio": 1.15, "with_p99_us": 1500.0}),
                json!({"with_median_us": 700.0, "without_median_us": 600.0, "ratio": 1.167,
                       "round_trip_ratio": 1.1, "with_p99_us": 1400.0}),
                json!({"with_median_us": 720.0, "without_median_us": 600.0, "ratio": 1.2,
                       "round_trip_ratio": 1.12, "with_p99_us": 1300.0}),
            ],
            relay: vec![9_000.0, 10_000.0, 11_000.0],
            peer: vec![15_000.0, 16_000.0, 30_000.0],
            latency: vec![
                json!({"p50_ms": 3.0, "p99_ms": 20.0, "max_ms": 40.0}),
                json!({"p50_ms": 4.0, "p99_ms": 30.0, "max_ms": 90.0}),
                json!({"p50_ms": 2.0, "p99_ms": 10.0, "max_ms": 30.0}),
            ],
        };
        let result = result(&runs, 3, &Sizes::of(true));
        assert_eq!(result.commit.ratio, Some(1.2));
        assert_eq!(result.commit.met, Some(true));
        assert_eq!(result.commit.with_median_us, Some(720.0));
        assert_eq!(result.commit.round_trip_ratio, Some(1.12));
        assert_eq!(result.relay.ratio, Some(0.625));
        assert_eq!(result.relay.met, Some(true));
        assert_eq!(result.latency.p50_ms, Some(3.0));
        assert_eq!(result.latency.p99_ms, Some(20.0));
        assert_eq!(result.latency.max_ms, Some(90.0));
        assert_eq!(result.latency.met, Some(true));

        let results = BenchResults {
            outbox: Some(result),
            ..BenchResults::default()
        };
        let md = section(&results);
        assert!(
            md.contains("| 720 µs (p99 1400 µs) | 600 µs (p99 n/a) | 1.2× (with `SELECT 1` instead: 1.12×) | ≤ 1.25 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| 10,000/s | 16,000/s | 0.625× | ≥ 0.5 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| p50 3 ms, p99 20 ms (max 90 ms) | | | p50 ≤ 5 ms, p99 ≤ 25 ms | yes |"),
            "{md}"
        );
        // A run without the outbox part has no section, and its results.json no field.
        assert!(section(&BenchResults::default()).is_empty());
        let json = BenchResults::default().to_json().expect("serialized");
        assert!(!json.contains("outbox"), "{json}");
    }

    #[test]
    fn a_missed_goal_is_told() {
        let runs = Runs {
            commit: vec![json!({"ratio": 1.5})],
            relay: vec![4_000.0],
            peer: vec![10_000.0],
            latency: vec![json!({"p50_ms": 3.0, "p99_ms": 60.0})],
        };
        let result = result(&runs, 1, &Sizes::of(false));
        assert_eq!(result.commit.met, Some(false));
        assert_eq!(result.relay.met, Some(false));
        assert_eq!(result.latency.met, Some(false));
    }
}
