//! `results.json`: what a run measured, as `cargo xtask bench` writes it and `--render` reads it.
//!
//! The layout is the one of earlier runs: fields keep their names and `null`s, and
//! [`BenchResults::to_json`] sorts keys as `serde_json::Value` always has. Every field has a default
//! so that files of earlier runs that lack one still render.

use serde::{Deserialize, Serialize};

/// A whole run: `target/bench/results.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchResults {
    /// The command that measured it, e.g. `cargo xtask bench --quick`.
    pub command: String,
    /// Whether it was a `--quick` run.
    pub quick: bool,
    /// Rounds per scenario.
    pub rounds: usize,
    /// Wall time of the whole run, to a tenth of a second.
    pub wall_seconds: f64,
    /// What it was measured on.
    pub machine: Machine,
    /// The round-trip floor of the private Redis.
    pub round_trip_floor: RoundTripFloor,
    /// One record per scenario, in report order.
    pub scenarios: Vec<ScenarioResult>,
    /// Allocations per event on the hot paths.
    pub allocations: Vec<Allocation>,
    /// Code generation timings; `null` with `--no-codegen` or when they failed.
    pub codegen: Option<Codegen>,
    /// The outbox measurements; absent when the run had none (`--only` without `outbox`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox: Option<super::outbox::OutboxResult>,
    /// The Redis Cluster measurements; absent when the run had none (`--only` without `cluster`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::cluster::ClusterResult>,
    /// The parts of the run that failed.
    pub failures: Vec<Failure>,
}

impl BenchResults {
    /// The text of `results.json`: pretty JSON with sorted keys and a final newline.
    pub fn to_json(&self) -> serde_json::Result<String> {
        // Through `Value`, whose maps sort their keys: the layout of earlier runs.
        Ok(serde_json::to_string_pretty(&serde_json::to_value(self)?)? + "\n")
    }
}

/// The machine and software versions of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Machine {
    /// CPU model name.
    pub cpu: Option<String>,
    /// Cores available to the run.
    pub cores: Option<usize>,
    /// Total memory in GiB.
    pub memory_gib: Option<f64>,
    /// Linux kernel release.
    pub kernel: Option<String>,
    /// `rustc --version`.
    pub rustc: Option<String>,
    /// `redis-server --version`.
    pub redis_server: Option<String>,
    /// Node.js version of the peer harness.
    pub node: Option<String>,
    /// BullMQ version of the peer harness.
    pub bullmq: Option<String>,
    /// ioredis version of the peer harness.
    pub ioredis: Option<String>,
    /// Load average when the run started.
    pub load_at_start: Option<String>,
    /// Load average when it ended.
    pub load_at_end: Option<String>,
}

/// `redis-benchmark -c 1 -P 1 SET`: the fastest an awaited command can be here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoundTripFloor {
    /// What was measured.
    pub what: String,
    /// Median `SET`s per second.
    pub per_sec: Option<f64>,
    /// `SET`s per second of every round.
    pub runs: Vec<f64>,
    /// Median Redis CPU microseconds per `SET`.
    pub redis_cpu_us_per_op: Option<f64>,
}

/// One scenario: both sides, their ratio, its goal and the bound this machine sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScenarioResult {
    /// Scenario id, as given to `--only`.
    pub id: String,
    /// Title in the report and chart.
    pub title: String,
    /// `events/s` or `bytes` (peak RSS).
    pub unit: String,
    /// Our side.
    pub ours: SideResult,
    /// The peer's side.
    pub peer: SideResult,
    /// Our median throughput, rounded; `null` for memory.
    pub ours_per_sec: Option<f64>,
    /// The peer's median throughput, rounded; `null` for memory.
    pub peer_per_sec: Option<f64>,
    /// Ours ÷ peer of the medians.
    pub ratio: Option<f64>,
    /// Lowest and highest ratio of one round's pair.
    pub ratio_range: Option<[f64; 2]>,
    /// Rounds both sides completed.
    pub rounds: usize,
    /// The spread of each side.
    pub spread: Spreads,
    /// The goal for the ratio.
    pub goal: GoalRecord,
    /// Whether the ratio meets the goal.
    pub met: Option<bool>,
    /// The bound this machine sets on our side.
    pub limit: LimitRecord,
    /// Why the scenario failed, if it did.
    pub error: Option<String>,
}

impl ScenarioResult {
    /// Whether the values are peak RSS in bytes rather than events per second.
    pub fn is_memory(&self) -> bool {
        self.unit == "bytes"
    }
}

/// The runs of one side of a scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SideResult {
    /// What it does.
    pub what: String,
    /// The program that measured it.
    pub program: String,
    /// Events per run.
    pub n: Option<u64>,
    /// Median over the runs.
    pub median: Option<f64>,
    /// The value of every run.
    pub runs: Vec<f64>,
    /// The timed seconds of every run (`null` when the run printed none).
    pub seconds: Vec<Option<f64>>,
    /// Spread of the runs.
    pub spread: Option<Spread>,
}

/// The spread of each side of a scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spreads {
    /// Our side's.
    pub ours: Option<Spread>,
    /// The peer's.
    pub peer: Option<Spread>,
}

/// How far the runs of one side lie apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spread {
    /// Lowest run.
    pub min: f64,
    /// Highest run.
    pub max: f64,
    /// (max − min) ÷ median.
    pub relative: f64,
}

/// The goal of a scenario as recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GoalRecord {
    /// `≥ 2.5` or `≤ 0.2`.
    pub text: String,
    /// The bound of the goal.
    pub value: f64,
    /// `at_least` or `at_most`.
    pub direction: String,
}

/// The bound this machine sets on our side of a scenario (`limits.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitRecord {
    /// `none`, `round_trip` or `redis_cpu`.
    pub kind: String,
    /// Median Redis CPU microseconds per event of our side.
    pub ours_redis_cpu_us_per_event: Option<f64>,
    /// Median Redis CPU microseconds per event of the peer.
    pub peer_redis_cpu_us_per_event: Option<f64>,
    /// The bound on our throughput, events per second.
    pub ceiling_per_sec: Option<f64>,
    /// The bound ÷ the peer's median.
    pub best_ratio: Option<f64>,
}

/// One line of `domain-events-bench allocs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Allocation {
    /// Always `allocs`.
    pub scenario: String,
    /// The hot path counted.
    pub path: String,
    /// What it does.
    pub what: String,
    /// Events counted.
    pub n: u64,
    /// Allocations per event.
    pub allocs_per_event: f64,
    /// Bytes allocated per event.
    pub bytes_per_event: f64,
}

/// The code generation timings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Codegen {
    /// One record per schema size.
    pub sizes: Vec<CodegenSize>,
    /// Events per generated schema file.
    pub events_per_file: usize,
    /// Cargo profile of the timed builds.
    pub profile: String,
    /// Timed builds per size (the fastest counts); absent in runs that took two.
    pub builds: Option<u64>,
    /// Build time of 3,000 events ÷ 300.
    pub compile_ratio_3000_300: Option<f64>,
    /// Build time of 300 events ÷ 30.
    pub compile_ratio_300_30: Option<f64>,
    /// Expansion time of 3,000 events ÷ 300.
    pub expand_ratio_3000_300: Option<f64>,
    /// The goal, in words.
    pub goal: String,
    /// Whether the goal is met.
    pub met: Option<bool>,
}

/// The code generation timings of one schema size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CodegenSize {
    /// Events in the schemas.
    pub events: usize,
    /// Median seconds of `Catalog::load` + `generate`.
    pub expand_seconds: Option<f64>,
    /// Bytes of generated code.
    pub generated_bytes: usize,
    /// Fastest `cargo build`; absent when the size was not built (`--quick`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile_seconds: Option<f64>,
}

/// A part of the run that failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Failure {
    /// Scenario id, `allocations` or `codegen`.
    pub id: String,
    /// The error, with its causes.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `results.json` written before the results were typed (`testdata/results.json`, by the
    /// `serde_json::Value` writer) reads into these types and writes back byte for byte.
    #[test]
    fn results_json_of_the_value_writer_round_trips_unchanged() {
        let text = include_str!("testdata/results.json");
        let results: BenchResults = serde_json::from_str(text).expect("typed");
        assert_eq!(results.to_json().expect("serialized"), text);
        assert_eq!(results.scenarios.len(), 10);
        assert_eq!(results.allocations.len(), 2);
        assert!(results.codegen.is_some());
    }

    /// Files of earlier runs may lack fields; they read with defaults.
    #[test]
    fn missing_fields_read_as_defaults() {
        let results: BenchResults =
            serde_json::from_str(r#"{"command": "cargo xtask bench", "codegen": null}"#)
                .expect("typed");
        assert_eq!(results.command, "cargo xtask bench");
        assert!(results.scenarios.is_empty() && results.codegen.is_none());
    }
}
