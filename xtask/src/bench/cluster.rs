//! The Redis Cluster part of `cargo xtask bench` (`--only cluster` runs it alone): on a private
//! cluster of three masters with a replica each (the test harness's `tests/redis_cluster.rs`,
//! through `domain-events-bench redis_cluster`), the category `image` in 1 and in 6 partitions,
//! each round (each run a fresh process, `bench/src/cluster.rs`):
//!
//! - **emit**: `emit_batch` of 500 events from 50 tasks at once;
//! - **consume**: a consumer group at concurrency 50 draining a backlog, the handler only counting.
//!
//! Recorded per run: events/s; for every master the partitions it holds, the Redis CPU
//! (`used_cpu_sys + used_cpu_user`) per event and its share of the masters' CPU and commands
//! (`total_commands_processed`); the replicas' CPU and the client's CPU per event. Two cores
//! cannot show the cluster scaling, so the result also projects it: per-master events/s (events
//! the masters holding the category handled ÷ their CPU seconds: what one master does with a core
//! of its own) × those masters, and the bound of the busiest master with this spread
//! (1 ÷ its CPU per event).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::process::{Server, capture};
use super::report::thousands;
use super::results::BenchResults;
use super::run::{Env, last_json_line};
use super::stats::{median, round3};

/// The id of the cluster part for `--only`.
pub(super) const ID: &str = "cluster";
/// Rounds at most, whatever `--rounds` says: the part stays near two minutes.
const MAX_ROUNDS: usize = 3;
/// The partition counts compared.
const PARTITIONS: [u32; 2] = [1, 6];
/// The scenarios: bench command and what it does.
const SCENARIOS: [(&str, &str); 2] = [
    (
        "cluster_emit",
        "`emit_batch` of 500 from 50 tasks at once (claims on)",
    ),
    (
        "cluster_consume",
        "consumer group at concurrency 50, handler only counting (done record + ack)",
    ),
];

/// The cluster measurements of a run, as recorded in `results.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterResult {
    /// Rounds run.
    pub rounds: usize,
    /// Wall time of the part (cluster start included), to a tenth of a second.
    pub wall_seconds: f64,
    /// Masters of the cluster.
    pub masters: usize,
    /// One record per scenario and partition count.
    pub runs: Vec<ClusterRun>,
}

/// One scenario at one partition count: medians over the rounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterRun {
    /// `cluster_emit` or `cluster_consume`.
    pub scenario: String,
    /// What it does.
    pub what: String,
    /// Streams of the category.
    pub partitions: u32,
    /// Events per run.
    pub n: Option<u64>,
    /// Median events/s.
    pub per_sec: Option<f64>,
    /// Events/s of every round.
    pub per_sec_runs: Vec<f64>,
    /// Median CPU microseconds of the client process per event.
    pub client_cpu_us_per_event: Option<f64>,
    /// Median CPU microseconds of the three replicas together per event.
    pub replicas_cpu_us_per_event: Option<f64>,
    /// Every master, by port.
    pub masters: Vec<MasterResult>,
    /// Highest CPU share of a master × masters: 1 when even, 3 when one master does all.
    pub cpu_imbalance: Option<f64>,
    /// What the cluster would do with a core per master.
    pub projection: Projection,
}

/// One master in one scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MasterResult {
    /// Its port.
    pub port: u16,
    /// The partitions of the category whose streams it holds.
    pub partitions: Vec<u32>,
    /// Timed events in those partitions.
    pub events: u64,
    /// Median Redis CPU microseconds per event of the run (all events, not only its own).
    pub cpu_us_per_event: Option<f64>,
    /// Median share of the masters' CPU.
    pub cpu_share: Option<f64>,
    /// Median share of the masters' commands.
    pub commands_share: Option<f64>,
    /// Its events ÷ its CPU seconds: events/s with a core of its own.
    pub per_core_per_sec: Option<f64>,
}

/// The projection of one scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Projection {
    /// Masters holding partitions of the category.
    pub working_masters: usize,
    /// Events ÷ the CPU seconds of those masters together: events/s of one master with a core of
    /// its own.
    pub per_master_per_sec: Option<f64>,
    /// `per_master_per_sec` × `working_masters`: all of them at a core each, load even.
    pub projected_per_sec: Option<f64>,
    /// 1 ÷ the busiest master's CPU per event: where this spread saturates first.
    pub busiest_bound_per_sec: Option<f64>,
    /// 1 ÷ the client's CPU per event: one client core's events/s.
    pub client_per_core_per_sec: Option<f64>,
}

/// The JSON lines of every run, by scenario and partition count.
type Runs = BTreeMap<(&'static str, u32), Vec<Value>>;

/// Runs the cluster part for `rounds` rounds (at most [`MAX_ROUNDS`]); a failure is recorded in
/// `failures` and ends it.
pub(super) fn measure(
    env: &Env,
    rounds: usize,
    failures: &mut Vec<(String, String)>,
) -> Option<ClusterResult> {
    let started = std::time::Instant::now();
    let rounds = rounds.clamp(1, MAX_ROUNDS);
    let n = if env.quick { 25_000 } else { 50_000 };
    let mut runs = Runs::new();
    let measured = Server::start(&env.bench_bin, "redis_cluster").and_then(|cluster| {
        eprintln!(
            "bench: Redis Cluster (3 masters, 3 replicas) at {}",
            cluster.url
        );
        for round in 0..rounds {
            // 1 partition first in odd rounds, 6 first in even ones.
            let order = if round.is_multiple_of(2) {
                PARTITIONS
            } else {
                [PARTITIONS[1], PARTITIONS[0]]
            };
            for partitions in order {
                for (scenario, _) in SCENARIOS {
                    let line = last_json_line(&capture(Command::new(&env.bench_bin).args([
                        scenario,
                        "--url",
                        &cluster.url,
                        "--partitions",
                        &partitions.to_string(),
                        "--n",
                        &n.to_string(),
                        "--warmup",
                        &env.warmup.to_string(),
                    ]))?)?;
                    eprintln!(
                        "  round {}/{rounds} {scenario:<15} partitions {partitions} {}",
                        round + 1,
                        progress(&line)
                    );
                    runs.entry((scenario, partitions)).or_default().push(line);
                }
            }
        }
        Ok(())
    });
    if let Err(error) = measured {
        eprintln!("  {ID}: FAILED: {error:#}");
        failures.push((ID.to_owned(), format!("{error:#}")));
        if runs.is_empty() {
            return None;
        }
    }
    let mut result = result(&runs, rounds);
    result.wall_seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    eprintln!("bench: the cluster part took {:.0} s", result.wall_seconds);
    Some(result)
}

/// A run's progress line: events/s and each master's CPU per event.
fn progress(line: &Value) -> String {
    let n = line.get("n").and_then(Value::as_f64).unwrap_or(f64::NAN);
    let masters: Vec<String> = nodes(line)
        .iter()
        .filter(|node| is_master(node))
        .map(|node| format!("{:.1}", number(node, "cpu_seconds") / n * 1e6))
        .collect();
    format!(
        "{}/s, masters' CPU µs/event {}",
        thousands(number(line, "per_sec")),
        masters.join(" / ")
    )
}

fn number(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn nodes(line: &Value) -> &[Value] {
    line.get("nodes")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn is_master(node: &Value) -> bool {
    node.get("role").and_then(Value::as_str) == Some("master")
}

fn port(node: &Value) -> u16 {
    node.get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

/// The record of the runs: medians over the rounds.
fn result(runs: &Runs, rounds: usize) -> ClusterResult {
    let mut records = Vec::new();
    let mut masters_count = 0;
    for (scenario, what) in SCENARIOS {
        for partitions in PARTITIONS {
            let lines = runs
                .get(&(scenario, partitions))
                .map_or(&[][..], Vec::as_slice);
            let record = run_record(scenario, what, partitions, lines);
            masters_count = masters_count.max(record.masters.len());
            records.push(record);
        }
    }
    ClusterResult {
        rounds,
        masters: masters_count,
        runs: records,
        ..ClusterResult::default()
    }
}

/// One scenario at one partition count from its runs' lines.
fn run_record(scenario: &str, what: &str, partitions: u32, lines: &[Value]) -> ClusterRun {
    let med = |values: &[f64]| median(values).map(round3);
    let per_event_us = |line: &Value, seconds: f64| seconds / number(line, "n") * 1e6;
    let per_sec_runs: Vec<f64> = lines.iter().map(|l| number(l, "per_sec")).collect();
    let client: Vec<f64> = lines
        .iter()
        .map(|l| per_event_us(l, number(l, "client_cpu_seconds")))
        .collect();
    let replicas: Vec<f64> = lines
        .iter()
        .map(|l| {
            let cpu: f64 = nodes(l)
                .iter()
                .filter(|node| !is_master(node))
                .map(|node| number(node, "cpu_seconds"))
                .sum();
            per_event_us(l, cpu)
        })
        .collect();
    // The masters, by port, as the last run saw them (the layout is the same in every run).
    let last = lines.last();
    let mut masters: Vec<MasterResult> = last
        .map(nodes)
        .unwrap_or_default()
        .iter()
        .filter(|node| is_master(node))
        .map(|node| MasterResult {
            port: port(node),
            partitions: node
                .get("partitions")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
                        .collect()
                })
                .unwrap_or_default(),
            events: node.get("events").and_then(Value::as_u64).unwrap_or(0),
            ..MasterResult::default()
        })
        .collect();
    for master in &mut masters {
        let (mut cpu, mut cpu_share, mut commands_share) = (Vec::new(), Vec::new(), Vec::new());
        for line in lines {
            let masters_of_run: Vec<&Value> =
                nodes(line).iter().filter(|node| is_master(node)).collect();
            let total = |key: &str| -> f64 { masters_of_run.iter().map(|n| number(n, key)).sum() };
            let Some(node) = masters_of_run.iter().find(|node| port(node) == master.port) else {
                continue;
            };
            cpu.push(per_event_us(line, number(node, "cpu_seconds")));
            cpu_share.push(number(node, "cpu_seconds") / total("cpu_seconds"));
            commands_share.push(number(node, "commands") / total("commands"));
        }
        master.cpu_us_per_event = med(&cpu);
        master.cpu_share = med(&cpu_share);
        master.commands_share = med(&commands_share);
        let n = last.map_or(f64::NAN, |l| number(l, "n"));
        master.per_core_per_sec = master
            .cpu_us_per_event
            .filter(|_| master.events > 0)
            .map(|us| (master.events as f64 * 1e6 / (us * n)).round());
    }
    let cpu_imbalance = masters
        .iter()
        .filter_map(|m| m.cpu_share)
        .reduce(f64::max)
        .map(|share| round3(share * masters.len() as f64));
    let client_cpu = med(&client);
    ClusterRun {
        scenario: scenario.to_owned(),
        what: what.to_owned(),
        partitions,
        n: last.and_then(|l| l.get("n")).and_then(Value::as_u64),
        per_sec: median(&per_sec_runs).map(f64::round),
        per_sec_runs,
        client_cpu_us_per_event: client_cpu,
        replicas_cpu_us_per_event: med(&replicas),
        projection: projection(&masters, client_cpu),
        cpu_imbalance,
        masters,
    }
}

/// The projection from the masters' CPU per event: each master a core of its own.
fn projection(masters: &[MasterResult], client_cpu_us: Option<f64>) -> Projection {
    let working: Vec<&MasterResult> = masters.iter().filter(|m| m.events > 0).collect();
    // Every event is in a partition of a working master: events ÷ their CPU seconds together
    // = 1 ÷ their CPU per event together.
    let working_us: Option<f64> = working.iter().map(|m| m.cpu_us_per_event).sum();
    let per_master = working_us
        .filter(|us| *us > 0.0)
        .map(|us| (1e6 / us).round());
    let busiest = working
        .iter()
        .filter_map(|m| m.cpu_us_per_event)
        .reduce(f64::max)
        .filter(|us| *us > 0.0)
        .map(|us| (1e6 / us).round());
    Projection {
        working_masters: working.len(),
        per_master_per_sec: per_master,
        projected_per_sec: per_master.map(|p| p * working.len() as f64),
        busiest_bound_per_sec: busiest,
        client_per_core_per_sec: client_cpu_us
            .filter(|us| *us > 0.0)
            .map(|us| (1e6 / us).round()),
    }
}

/// The report's cluster section; empty when the run had none.
pub(super) fn section(results: &BenchResults) -> String {
    let mut md = String::new();
    let Some(cluster) = &results.cluster else {
        return md;
    };
    let us = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.1} µs"));
    let pct = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{:.0} %", v * 100.0));
    let per_sec = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{}/s", thousands(v)));
    let _ = writeln!(md, "\n## Redis Cluster\n");
    let _ = writeln!(
        md,
        "{} masters with a replica each, all on this machine; the category `image` in 1 or 6 partitions; {} round(s) in {:.0} s, medians over the rounds (see `xtask/src/bench/cluster.rs`). CPU per event: a node's `used_cpu_sys + used_cpu_user` over the timed part ÷ the run's events; shares are of the masters' CPU and commands.\n",
        cluster.masters, cluster.rounds, cluster.wall_seconds
    );
    let _ = writeln!(
        md,
        "| scenario | partitions | events/s (rounds) | client CPU / event | replicas' CPU / event | master | its partitions | its events | Redis CPU / event | CPU share | commands share |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    for run in &cluster.runs {
        for (i, master) in run.masters.iter().enumerate() {
            let head = if i == 0 {
                let rounds: Vec<String> = run.per_sec_runs.iter().map(|v| thousands(*v)).collect();
                format!(
                    "| {} | {} | {} ({}) | {} | {} |",
                    run.scenario,
                    run.partitions,
                    per_sec(run.per_sec),
                    rounds.join(", "),
                    us(run.client_cpu_us_per_event),
                    us(run.replicas_cpu_us_per_event),
                )
            } else {
                "| | | | | |".to_owned()
            };
            let held: Vec<String> = master.partitions.iter().map(u32::to_string).collect();
            let _ = writeln!(
                md,
                "{head} {} | {} | {} | {} | {} | {} |",
                master.port,
                if held.is_empty() {
                    "–".to_owned()
                } else {
                    held.join(", ")
                },
                thousands(master.events as f64),
                us(master.cpu_us_per_event),
                pct(master.cpu_share),
                pct(master.commands_share),
            );
        }
    }
    let _ = writeln!(
        md,
        "\nProjection with a core per master: per-master events/s = events ÷ the CPU seconds of the masters holding the category (1 ÷ their CPU per event together), × those masters; the busiest master's bound = 1 ÷ its CPU per event. The client's events/s per core = 1 ÷ its CPU per event.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | partitions | measured | per-master events/s | × masters | projection | busiest master's bound | CPU imbalance | client events/s per core |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in &cluster.runs {
        let p = &run.projection;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.scenario,
            run.partitions,
            per_sec(run.per_sec),
            per_sec(p.per_master_per_sec),
            p.working_masters,
            per_sec(p.projected_per_sec),
            per_sec(p.busiest_bound_per_sec),
            run.cpu_imbalance
                .map_or("n/a".to_owned(), |v| format!("{v:.2}")),
            per_sec(p.client_per_core_per_sec),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(per_sec: f64, cpus: [f64; 3], commands: [u64; 3]) -> Value {
        let master = |port: u16, partitions: Vec<u32>, events: u64, i: usize| {
            json!({"port": port, "role": "master", "partitions": partitions, "events": events,
                   "cpu_seconds": cpus[i], "commands": commands[i]})
        };
        json!({
            "scenario": "cluster_emit", "partitions": 6, "n": 10_000, "per_sec": per_sec,
            "client_cpu_seconds": 0.5,
            "nodes": [
                master(7001, vec![0, 3], 4_000, 0),
                master(7002, vec![1, 4], 3_000, 1),
                master(7003, vec![2, 5], 3_000, 2),
                {"port": 7004, "role": "replica", "partitions": [], "events": 0,
                 "cpu_seconds": 0.01, "commands": 10},
                {"port": 7005, "role": "replica", "partitions": [], "events": 0,
                 "cpu_seconds": 0.01, "commands": 10},
                {"port": 7006, "role": "replica", "partitions": [], "events": 0,
                 "cpu_seconds": 0.01, "commands": 10},
            ],
        })
    }

    #[test]
    fn the_runs_become_per_master_figures_and_a_projection() {
        let mut runs = Runs::new();
        runs.insert(
            ("cluster_emit", 6),
            vec![
                line(20_000.0, [0.04, 0.03, 0.03], [40, 30, 30]),
                line(30_000.0, [0.05, 0.03, 0.02], [50, 30, 20]),
                line(25_000.0, [0.04, 0.03, 0.03], [40, 30, 30]),
            ],
        );
        let result = result(&runs, 3);
        assert_eq!(result.masters, 3);
        assert_eq!(result.runs.len(), 4);
        let run = &result.runs[1];
        assert_eq!((run.scenario.as_str(), run.partitions), ("cluster_emit", 6));
        assert_eq!(run.per_sec, Some(25_000.0));
        // 0.5 s ÷ 10,000 events; three replicas at 0.01 s.
        assert_eq!(run.client_cpu_us_per_event, Some(50.0));
        assert_eq!(run.replicas_cpu_us_per_event, Some(3.0));
        let first = &run.masters[0];
        assert_eq!((first.port, first.events), (7001, 4_000));
        assert_eq!(first.partitions, vec![0, 3]);
        assert_eq!(first.cpu_us_per_event, Some(4.0));
        assert_eq!(first.cpu_share, Some(0.4));
        assert_eq!(first.commands_share, Some(0.4));
        // 4,000 events in 0.04 s of its CPU.
        assert_eq!(first.per_core_per_sec, Some(100_000.0));
        assert_eq!(run.cpu_imbalance, Some(1.2));
        // 4 + 3 + 3 = 10 µs per event over the masters: 100,000/s each, × 3.
        let p = &run.projection;
        assert_eq!(p.working_masters, 3);
        assert_eq!(p.per_master_per_sec, Some(100_000.0));
        assert_eq!(p.projected_per_sec, Some(300_000.0));
        assert_eq!(p.busiest_bound_per_sec, Some(250_000.0));
        assert_eq!(p.client_per_core_per_sec, Some(20_000.0));
        // A scenario without runs has no figures.
        assert_eq!(result.runs[0].per_sec, None);
        assert_eq!(result.runs[0].projection, Projection::default());

        let results = BenchResults {
            cluster: Some(result),
            ..BenchResults::default()
        };
        let md = section(&results);
        assert!(
            md.contains("| cluster_emit | 6 | 25,000/s (20,000, 30,000, 25,000) | 50.0 µs | 3.0 µs | 7001 | 0, 3 | 4,000 | 4.0 µs | 40 % | 40 % |"),
            "{md}"
        );
        assert!(
            md.contains("| cluster_emit | 6 | 25,000/s | 100,000/s | 3 | 300,000/s | 250,000/s | 1.20 | 20,000/s |"),
            "{md}"
        );
        // A run without the cluster part has no section, and its results.json no field.
        assert!(section(&BenchResults::default()).is_empty());
        let json = BenchResults::default().to_json().expect("serialized");
        assert!(!json.contains("cluster"), "{json}");
    }
}
