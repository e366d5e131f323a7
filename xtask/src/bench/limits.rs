//! What this machine allows: upper bounds on our throughput, measured in the same run as the
//! scenarios, so that a goal no client could reach here is told apart from one we fall short of.
//!
//! Two bounds, both optimistic (a client that costs nothing):
//!
//! - **round trip**: a scenario that awaits each event is at best one round trip per event. The
//!   round-trip floor is `redis-benchmark -c 1 -P 1 SET` (one C client, one command at a time).
//!   Our event costs Redis more than a `SET`, so its bound is the floor's round trip with the
//!   `SET`'s Redis CPU replaced by ours: `1 / (1/floor − floor_cpu + ours_cpu)`.
//! - **Redis CPU**: a scenario that keeps Redis busy is at best Redis at 100 % of one core:
//!   `1 / ours_cpu`, where `ours_cpu` is the Redis CPU time (`INFO cpu`, user + system) our run
//!   cost per event: claim, append, script, network reads and writes.
//!
//! The best ratio is the bound ÷ the peer's median; a goal above it is out of reach on this
//! machine for this amount of Redis work per event.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::Context as _;

use super::process::capture;
use super::report::thousands;
use super::results::{BenchResults, LimitRecord, RoundTripFloor};
use super::run::redis_benchmark_rps;
use super::stats::{median, round3};

/// Which bound applies to a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    /// None worth stating (memory, in-process, or one already met by far).
    None,
    /// Each event is awaited before the next: at best one round trip per event.
    RoundTrip,
    /// Events are in flight together or in batches: at best Redis busy all the time.
    RedisCpu,
}

impl Limit {
    fn id(self) -> &'static str {
        match self {
            Limit::None => "none",
            Limit::RoundTrip => "round_trip",
            Limit::RedisCpu => "redis_cpu",
        }
    }
}

/// One measurement of the round-trip floor.
#[derive(Debug, Clone, Copy)]
pub(super) struct Floor {
    /// `SET`s per second, one at a time.
    pub per_sec: f64,
    /// Redis CPU seconds per `SET`.
    pub redis_cpu: f64,
}

/// The Redis CPU time so far (user + system seconds) of the server at `host:port`.
pub(super) fn redis_cpu_seconds(host: &str, port: u16) -> anyhow::Result<f64> {
    let info = capture(Command::new("redis-cli").args([
        "-h",
        host,
        "-p",
        &port.to_string(),
        "INFO",
        "cpu",
    ]))?;
    parse_cpu(&info).context("INFO cpu has no used_cpu_user / used_cpu_sys")
}

/// `used_cpu_user + used_cpu_sys` of an `INFO cpu` answer.
fn parse_cpu(info: &str) -> Option<f64> {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.trim().parse::<f64>().ok())
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// Measures the round-trip floor: `n` `SET`s by one `redis-benchmark` client, one at a time.
pub(super) fn measure_floor(host: &str, port: u16, n: u64) -> anyhow::Result<Floor> {
    let before = redis_cpu_seconds(host, port)?;
    let output = capture(
        Command::new("redis-benchmark")
            .args(["-h", host, "-p", &port.to_string()])
            .args(["-c", "1", "-P", "1", "-n", &n.to_string(), "--csv"])
            .args(["SET", "bench:floor", "x"]),
    )?;
    let after = redis_cpu_seconds(host, port)?;
    Ok(Floor {
        per_sec: redis_benchmark_rps(&output)?,
        redis_cpu: (after - before).max(0.0) / n as f64,
    })
}

/// The floor's medians over the rounds, as recorded in `results.json`.
pub(super) fn floor_record(floors: &[Floor]) -> RoundTripFloor {
    let per_sec: Vec<f64> = floors.iter().map(|f| f.per_sec).collect();
    let cpu: Vec<f64> = floors.iter().map(|f| f.redis_cpu).collect();
    RoundTripFloor {
        what: "redis-benchmark -c 1 -P 1 SET: one client, one command at a time".to_owned(),
        per_sec: median(&per_sec).map(f64::round),
        runs: per_sec.iter().copied().map(f64::round).collect(),
        redis_cpu_us_per_op: median(&cpu).map(|c| round3(c * 1e6)),
    }
}

/// The bound of one scenario: `limit` as recorded in its `results.json` record.
///
/// `ours_cpu` and `peer_cpu` are the medians of the Redis CPU seconds per event of each side;
/// `floor` the record of [`floor_record`]; `peer` the peer's median throughput.
pub(super) fn bound(
    limit: Limit,
    ours_cpu: Option<f64>,
    peer_cpu: Option<f64>,
    floor: &RoundTripFloor,
    peer: Option<f64>,
) -> LimitRecord {
    let us = |seconds: Option<f64>| seconds.map(|s| round3(s * 1e6));
    let ceiling = match (limit, ours_cpu) {
        (Limit::RoundTrip, Some(cpu)) => {
            let floor_rate = floor.per_sec;
            let floor_cpu = floor.redis_cpu_us_per_op.map(|us| us / 1e6);
            match (floor_rate, floor_cpu) {
                (Some(rate), Some(floor_cpu)) if rate > 0.0 => {
                    let seconds = 1.0 / rate - floor_cpu + cpu;
                    (seconds > 0.0).then(|| 1.0 / seconds)
                }
                _ => None,
            }
        }
        (Limit::RedisCpu, Some(cpu)) if cpu > 0.0 => Some(1.0 / cpu),
        _ => None,
    };
    let best_ratio = match (ceiling, peer) {
        (Some(c), Some(p)) if p > 0.0 => Some(c / p),
        _ => None,
    };
    LimitRecord {
        kind: limit.id().to_owned(),
        ours_redis_cpu_us_per_event: us(ours_cpu),
        peer_redis_cpu_us_per_event: us(peer_cpu),
        ceiling_per_sec: ceiling.map(f64::round),
        best_ratio: best_ratio.map(round3),
    }
}

/// The report's section on the bounds: one row per scenario that has one.
pub(super) fn section(results: &BenchResults) -> String {
    let mut md = String::new();
    let floor = &results.round_trip_floor;
    let rows: Vec<_> = results
        .scenarios
        .iter()
        .filter(|s| s.limit.ceiling_per_sec.is_some())
        .collect();
    if rows.is_empty() {
        return md;
    }
    let _ = writeln!(md, "\n## What this machine allows\n");
    let _ = writeln!(
        md,
        "Upper bounds measured in the same run, for a client that costs nothing (see `xtask/src/bench/limits.rs`). Round trip: the floor is `redis-benchmark -c 1 -P 1 SET` at {}/s ({} µs of Redis CPU per SET); an awaited event is at best that round trip with our Redis CPU per event in place of the SET's. Redis CPU: at best Redis busy all the time, 1 ÷ our Redis CPU per event (`INFO cpu`, user + system, over our run). Best ratio = bound ÷ the peer's median; a goal above it is out of reach here for this much Redis work per event.\n",
        floor.per_sec.map_or("n/a".to_owned(), thousands),
        floor
            .redis_cpu_us_per_op
            .map_or("n/a".to_owned(), |us| format!("{us:.1}")),
    );
    let _ = writeln!(
        md,
        "| scenario | bound | Redis CPU / event, ours | Redis CPU / event, peer | ours | bound | best ratio | goal | goal within the bound |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|:---:|");
    for s in rows {
        let limit = &s.limit;
        let us = |v: Option<f64>| v.map_or("n/a".to_owned(), |us| format!("{us:.1} µs"));
        let within = match limit.best_ratio {
            Some(best) if best >= s.goal.value => "yes",
            Some(_) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {}/s | {}/s | {} | {} | {} |",
            s.title,
            match limit.kind.as_str() {
                "round_trip" => "round trip",
                "redis_cpu" => "Redis CPU",
                _ => "",
            },
            us(limit.ours_redis_cpu_us_per_event),
            us(limit.peer_redis_cpu_us_per_event),
            s.ours_per_sec.map_or("n/a".to_owned(), thousands),
            limit.ceiling_per_sec.map_or("n/a".to_owned(), thousands),
            limit
                .best_ratio
                .map_or("n/a".to_owned(), |b| format!("{b:.2}×")),
            s.goal.text,
            within,
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_cpu_is_read() {
        let info = "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:9.0\r\n";
        assert_eq!(parse_cpu(info), Some(3.75));
        assert_eq!(parse_cpu("# CPU\r\n"), None);
    }

    #[test]
    fn bounds_follow_the_model() {
        // Floor: 20,000 SET/s, 5 µs of Redis CPU each; ours 10 µs per event.
        let floor = RoundTripFloor {
            per_sec: Some(20_000.0),
            redis_cpu_us_per_op: Some(5.0),
            ..RoundTripFloor::default()
        };
        let round_trip = bound(Limit::RoundTrip, Some(10e-6), None, &floor, Some(5_000.0));
        // 1 / (50 µs − 5 µs + 10 µs) = 18,182/s, 3.64× a peer at 5,000/s.
        assert_eq!(round_trip.ceiling_per_sec, Some(18_182.0));
        assert_eq!(round_trip.best_ratio, Some(3.636));
        let cpu = bound(
            Limit::RedisCpu,
            Some(5e-6),
            Some(1e-5),
            &floor,
            Some(25_000.0),
        );
        assert_eq!(cpu.ceiling_per_sec, Some(200_000.0));
        assert_eq!(cpu.best_ratio, Some(8.0));
        assert_eq!(cpu.peer_redis_cpu_us_per_event, Some(10.0));
        assert!(
            bound(Limit::None, Some(5e-6), None, &floor, Some(1.0))
                .ceiling_per_sec
                .is_none()
        );
        assert!(
            bound(Limit::RedisCpu, None, None, &floor, Some(1.0))
                .best_ratio
                .is_none()
        );
    }
}
