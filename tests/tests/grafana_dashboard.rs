//! The Grafana dashboard shipped in docs/grafana: well-formed, every metric it queries one the
//! code records (`domain_events::metrics::ALL`), with labels that metric has, and every recorded
//! metric on it.

use std::collections::BTreeSet;

use domain_events::metrics::{ALL, Kind, Metric, by_name};
use serde_json::Value;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/grafana/domain-events.json"
);

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).expect("the dashboard file");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every query in `value`, depth first: the strings under `expr` (panel targets), `query` and
/// `definition` (template variables).
fn queries<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(s) if ["expr", "query", "definition"].contains(&key.as_str()) => {
                        out.push(s);
                    }
                    _ => queries(value, out),
                }
            }
        }
        _ => {}
    }
}

/// The metric a series name belongs to: itself, or the histogram of a `_bucket`, `_sum` or
/// `_count` series.
fn metric_of(series: &str) -> Option<&'static Metric> {
    by_name(series).or_else(|| {
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let metric = by_name(series.strip_suffix(suffix)?)?;
            (metric.kind == Kind::Histogram).then_some(metric)
        })
    })
}

/// Each `domain_events_*` series named in `query`, with the label names of its selector.
fn series_in(query: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("domain_events_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let mut labels = Vec::new();
        if let Some(selector) = tail[end..].strip_prefix('{') {
            let selector = &selector[..selector.find('}').expect("a closed selector")];
            for matcher in selector.split(',') {
                let label = matcher
                    .split(['=', '!'])
                    .next()
                    .expect("a label name")
                    .trim();
                labels.push(label.to_owned());
            }
        }
        found.push((name.to_owned(), labels));
        rest = &tail[end..];
    }
    found
}

#[test]
fn the_dashboard_queries_only_metrics_the_code_records_and_shows_them_all() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "domain-events");
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<_> = panels
        .iter()
        .map(|p| p["id"].as_u64().expect("an id"))
        .collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            assert!(target["expr"].is_string(), "{}", panel["title"]);
        }
    }

    let mut texts = Vec::new();
    queries(&dashboard, &mut texts);
    let mut shown = BTreeSet::new();
    for text in texts {
        for (series, labels) in series_in(text) {
            let metric = metric_of(&series)
                .unwrap_or_else(|| panic!("`{series}` in `{text}` is no metric of the code"));
            for label in &labels {
                assert!(
                    metric.labels.contains(&label.as_str())
                        || (label == "le" && series.ends_with("_bucket")),
                    "`{series}` has no label `{label}` (in `{text}`)"
                );
            }
            shown.insert(metric.name);
        }
    }
    let recorded: BTreeSet<_> = ALL.iter().map(|m| m.name).collect();
    assert_eq!(shown, recorded, "every recorded metric is on the dashboard");
}

#[test]
fn series_names_and_selector_labels_are_read_from_queries() {
    assert_eq!(
        series_in(
            r#"histogram_quantile(0.5, sum by (le) (rate(domain_events_handler_duration_seconds_bucket{group=~"$group",type!="x"}[5m]))) / domain_events_consumed_total"#
        ),
        vec![
            (
                "domain_events_handler_duration_seconds_bucket".to_owned(),
                vec!["group".to_owned(), "type".to_owned()]
            ),
            ("domain_events_consumed_total".to_owned(), vec![]),
        ]
    );
    assert!(metric_of("domain_events_handler_duration_seconds_count").is_some());
    assert!(metric_of("domain_events_consumed_total_count").is_none());
}
