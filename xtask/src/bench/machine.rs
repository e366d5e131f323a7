//! What the numbers were measured on: CPU, memory, kernel, tool versions and load.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::PEER_DIR;
use super::process::capture;
use super::results::Machine;

/// The load averages of `/proc/loadavg` (1, 5 and 15 minutes); empty when unknown.
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
