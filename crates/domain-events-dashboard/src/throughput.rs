//! Throughput over the last minutes: the `entries-added` counter of every stream (`XINFO
//! STREAM`), sampled at a fixed interval into a ring buffer; the rate between two samples is the
//! stream's throughput then. Trimming does not disturb it: the counter counts every entry ever
//! added.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use domain_events::Timestamp;
use domain_events_redis::Status;
use serde::Serialize;

/// The samples of the last minutes.
pub(crate) struct Throughput {
    every: Duration,
    capacity: usize,
    samples: Mutex<VecDeque<Sample>>,
}

struct Sample {
    at: time::OffsetDateTime,
    /// `entries-added` by stream key, with the category.
    added: BTreeMap<String, (String, u64)>,
}

/// The throughput of every stream, for the API.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ThroughputView {
    /// Milliseconds between samples.
    interval_ms: u64,
    /// Milliseconds of history kept (the oldest point is at most this old).
    history_ms: u64,
    streams: Vec<StreamRate>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StreamRate {
    stream: String,
    category: String,
    /// Entries added per second between each sample and the one before, oldest first.
    points: Vec<RatePoint>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RatePoint {
    /// The end of the interval.
    at: Timestamp,
    per_second: f64,
}

impl Throughput {
    pub(crate) fn new(every: Duration, capacity: usize) -> Self {
        Self {
            every,
            capacity,
            samples: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Keeps the counters of `status` (streams whose Redis does not count are left out).
    pub(crate) fn record(&self, status: &Status) {
        let added = status
            .streams
            .iter()
            .filter_map(|s| Some((s.stream.clone(), (s.category.clone(), s.entries_added?))))
            .collect();
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == self.capacity {
            samples.pop_front();
        }
        samples.push_back(Sample {
            at: time::OffsetDateTime::now_utc(),
            added,
        });
    }

    pub(crate) fn view(&self) -> ThroughputView {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let mut streams: BTreeMap<&str, StreamRate> = BTreeMap::new();
        for (before, after) in samples.iter().zip(samples.iter().skip(1)) {
            let seconds = (after.at - before.at).as_seconds_f64();
            if seconds <= 0.0 {
                continue;
            }
            for (stream, (category, added)) in &after.added {
                let Some((_, earlier)) = before.added.get(stream) else {
                    continue;
                };
                let rate = streams.entry(stream).or_insert_with(|| StreamRate {
                    stream: stream.clone(),
                    category: category.clone(),
                    points: Vec::new(),
                });
                rate.points.push(RatePoint {
                    at: Timestamp::from_datetime(after.at),
                    // A stream deleted and made again starts counting anew.
                    per_second: added.saturating_sub(*earlier) as f64 / seconds,
                });
            }
        }
        ThroughputView {
            interval_ms: u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX),
            history_ms: u64::try_from(self.every.as_millis() * self.capacity as u128)
                .unwrap_or(u64::MAX),
            streams: streams.into_values().collect(),
        }
    }
}
