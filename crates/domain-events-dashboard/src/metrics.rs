//! `/metrics`: the caller's render function when given ([`crate::DashboardBuilder::metrics`]),
//! else the dashboard's own gauges in Prometheus's text format (version 0.0.4), read from Redis
//! at each scrape.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use domain_events_redis::{Keys, Status};

use crate::dashboard::Dashboard;
use crate::error::ApiError;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET metrics`.
pub(crate) async fn metrics(
    State(dashboard): State<Dashboard>,
) -> Result<impl IntoResponse, ApiError> {
    let text = match &dashboard.inner.metrics {
        Some(render) => render(),
        None => exposition(&dashboard.inner.inspector.status().await?),
    };
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text))
}

/// The gauges of `status`: per stream its length and entries ever added, per group its lag,
/// pending entries and consumers, per dead-letter stream its length.
pub(crate) fn exposition(status: &Status) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let stream = |s: &domain_events_redis::StreamStatus| {
        format!("stream=\"{}\",{}", escape(&s.stream), category(&s.category))
    };
    let groups = || {
        status.streams.iter().flat_map(move |s| {
            s.groups
                .iter()
                .map(move |g| (format!("{},group=\"{}\"", stream(s), escape(&g.group)), g))
        })
    };
    family(
        "domain_events_stream_length",
        "gauge",
        "Entries in the category stream.",
        status
            .streams
            .iter()
            .map(|s| (stream(s), s.length))
            .collect(),
    );
    family(
        "domain_events_stream_entries_added_total",
        "counter",
        "Entries ever added to the category stream (Redis 7.0 and later).",
        status
            .streams
            .iter()
            .filter_map(|s| Some((stream(s), s.entries_added?)))
            .collect(),
    );
    family(
        "domain_events_group_lag",
        "gauge",
        "Entries of the stream not yet delivered to the consumer group (absent when Redis cannot tell).",
        groups().filter_map(|(l, g)| Some((l, g.lag?))).collect(),
    );
    family(
        "domain_events_group_pending",
        "gauge",
        "Entries delivered to the consumer group and not yet acknowledged.",
        groups().map(|(l, g)| (l, g.pending)).collect(),
    );
    family(
        "domain_events_group_consumers",
        "gauge",
        "Consumers registered in the consumer group.",
        groups()
            .map(|(l, g)| (l, g.consumers.len() as u64))
            .collect(),
    );
    family(
        "domain_events_dead_letters",
        "gauge",
        "Dead letters of the consumer group in the category.",
        status
            .dead_letters
            .iter()
            .map(|d| {
                (
                    format!("{},group=\"{}\"", category(&d.category), escape(&d.group)),
                    d.length,
                )
            })
            .collect(),
    );
    out
}

/// The labels of the category of hash tag `tag` (what [`Status`] calls a stream's category):
/// `category`, the category's name also for a partition's stream, and `partition`, for a
/// partition's stream only, as the Redis collector labels them.
fn category(tag: &str) -> String {
    match Keys::split_tag(tag) {
        (category, Some(partition)) => {
            format!(
                "category=\"{}\",partition=\"{partition}\"",
                escape(category)
            )
        }
        (category, None) => format!("category=\"{}\"", escape(category)),
    }
}

/// A label value as the text format wants it: `\`, `"` and line feeds escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partitions_stream_is_labelled_with_its_category_and_partition() {
        assert_eq!(category("image#2"), r#"category="image",partition="2""#);
        assert_eq!(category("image"), r#"category="image""#);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
