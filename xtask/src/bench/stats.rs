//! From the runs of a scenario to its record: medians, spreads, the ratio and its range, the goal
//! and the bound.

use super::limits;
use super::results::{GoalRecord, RoundTripFloor, ScenarioResult, SideResult, Spread, Spreads};
use super::run::Sample;
use super::scenarios::{Goal, Metric, Scenario, program_name};

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
pub(super) fn record(
    scenario: &Scenario,
    ours: &[Sample],
    peer: &[Sample],
    floor: &RoundTripFloor,
    failure: Option<&str>,
) -> ScenarioResult {
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
    let side = |values: &[f64], median: Option<f64>, samples: &[Sample], text: &str, program| {
        SideResult {
            what: text.to_owned(),
            program,
            n: samples.first().map(|s| s.n),
            median: median.map(round3),
            runs: values.iter().copied().map(round3).collect(),
            // A run without a time records `null`.
            seconds: samples
                .iter()
                .map(|s| Some(round3(s.seconds)).filter(|x| x.is_finite()))
                .collect(),
            spread: spread(values, median),
        }
    };
    let unit = match metric {
        Metric::Throughput => "events/s",
        Metric::PeakRss => "bytes",
    };
    let throughput = |median: Option<f64>| {
        (metric == Metric::Throughput)
            .then_some(median)
            .flatten()
            .map(f64::round)
    };
    ScenarioResult {
        id: scenario.id.to_owned(),
        title: scenario.title.to_owned(),
        unit: unit.to_owned(),
        ours: side(
            &ours_values,
            ours_median,
            ours,
            scenario.ours_text,
            program_name(scenario.ours),
        ),
        peer: side(
            &peer_values,
            peer_median,
            peer,
            scenario.peer_text,
            program_name(scenario.peer),
        ),
        ours_per_sec: throughput(ours_median),
        peer_per_sec: throughput(peer_median),
        ratio: ratio.map(round3),
        ratio_range: (!pair_ratios.is_empty())
            .then(|| [round3(min(&pair_ratios)), round3(max(&pair_ratios))]),
        rounds: ours_values.len().min(peer_values.len()),
        spread: Spreads {
            ours: spread(&ours_values, ours_median),
            peer: spread(&peer_values, peer_median),
        },
        goal: GoalRecord {
            text: scenario.goal.text(),
            value: scenario.goal.value(),
            direction: match scenario.goal {
                Goal::AtLeast(_) => "at_least",
                Goal::AtMost(_) => "at_most",
            }
            .to_owned(),
        },
        met: ratio.map(|r| scenario.goal.met(r)),
        limit: limits::bound(
            scenario.limit,
            redis_cpu(ours),
            redis_cpu(peer),
            floor,
            (metric == Metric::Throughput)
                .then_some(peer_median)
                .flatten(),
        ),
        error: failure.map(str::to_owned),
    }
}

/// `{min, max, relative}`: relative = (max − min) / median.
pub(super) fn spread(values: &[f64], median: Option<f64>) -> Option<Spread> {
    match median {
        Some(m) if !values.is_empty() && m > 0.0 => Some(Spread {
            min: round3(min(values)),
            max: round3(max(values)),
            relative: round3((max(values) - min(values)) / m),
        }),
        _ => None,
    }
}

/// The median; `None` when there are no values.
pub(super) fn median(values: &[f64]) -> Option<f64> {
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

/// Three decimals, or none from 1,000 on: what `results.json` keeps.
pub(super) fn round3(x: f64) -> f64 {
    if x.abs() >= 1000.0 {
        x.round()
    } else {
        (x * 1000.0).round() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(
            spread(&[90.0, 110.0, 100.0], Some(100.0)).map(|s| s.relative),
            Some(0.2)
        );
        assert_eq!(spread(&[], None), None);
        assert_eq!((round3(0.123_45), round3(1234.5)), (0.123, 1235.0));
    }
}
