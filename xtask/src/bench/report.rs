//! `report.md`: the comparison table, the bounds, the allocations and the code generation timings,
//! and the number formats they share with the chart and the progress lines.

use std::fmt::Write as _;

use serde::Serialize;

use super::limits;
use super::results::{BenchResults, Codegen, ScenarioResult};
use super::scenarios::Metric;

/// `report.md` of `results`.
pub(super) fn report(results: &BenchResults) -> String {
    let mut md = String::new();
    let machine = &results.machine;
    let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "?".to_owned());
    let _ = writeln!(md, "# domain-events vs BullMQ / Redis: benchmark report\n");
    let _ = writeln!(
        md,
        "`{}` — {} round(s), {:.0} s wall time. Machine: {} ({} cores, {} GiB), Linux {}; {}; {}; Node.js {}, BullMQ {}, ioredis {}. Load average at start {}, at end {}.\n",
        results.command,
        results.rounds,
        results.wall_seconds,
        text(&machine.cpu),
        json_text(&machine.cores),
        json_text(&machine.memory_gib),
        text(&machine.kernel),
        text(&machine.rustc),
        text(&machine.redis_server),
        text(&machine.node),
        text(&machine.bullmq),
        text(&machine.ioredis),
        text(&machine.load_at_start),
        text(&machine.load_at_end),
    );
    // `--only outbox` or `--only cluster` runs no scenario of the comparison.
    if !results.scenarios.is_empty() {
        let _ = writeln!(
            md,
            "Medians over the rounds; ratio = ours ÷ peer (memory: peak RSS, lower is better); spread = (max − min) ÷ median of each side.\n"
        );
        let _ = writeln!(
            md,
            "| scenario | ours | peer | ratio (range) | goal | met | spread ours / peer | ours: what | peer: what |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|:---:|---:|---|---|");
        for s in &results.scenarios {
            scenario_row(&mut md, s);
        }
    }
    md.push_str(&limits::section(results));
    md.push_str(&super::outbox::section(results));
    md.push_str(&super::cluster::section(results));
    if !results.allocations.is_empty() {
        let _ = writeln!(md, "\n## Allocations per event\n");
        let _ = writeln!(
            md,
            "Counted by the global allocator of `domain-events-bench` over every thread (Redis client included), payload construction excluded.\n"
        );
        let _ = writeln!(md, "| path | allocations / event | bytes / event | what |");
        let _ = writeln!(md, "|---|---:|---:|---|");
        for a in &results.allocations {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                a.path,
                json_text(&a.allocs_per_event),
                json_text(&a.bytes_per_event),
                a.what
            );
        }
    }
    if let Some(codegen) = &results.codegen {
        codegen_section(&mut md, codegen);
    }
    if !results.failures.is_empty() {
        let _ = writeln!(md, "\n## Failures\n");
        for f in &results.failures {
            let _ = writeln!(md, "- {}: {}", f.id, f.error.lines().next().unwrap_or(""));
        }
    }
    md
}

/// The row of one scenario in the comparison table.
fn scenario_row(md: &mut String, s: &ScenarioResult) {
    let value = |v: Option<f64>| match v {
        Some(x) if s.is_memory() => format!("{:.1} MiB", x / 1_048_576.0),
        Some(x) => format!("{}/s", thousands(x)),
        None => "n/a".to_owned(),
    };
    let ratio = match (s.ratio, s.ratio_range) {
        (Some(r), Some([lo, hi])) => {
            format!("{}× ({}–{})", fmt_ratio(r), fmt_ratio(lo), fmt_ratio(hi))
        }
        (Some(r), None) => format!("{}×", fmt_ratio(r)),
        _ => "n/a".to_owned(),
    };
    let met = match s.met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "n/a",
    };
    let rel = |spread: Option<super::results::Spread>| {
        spread.map_or("n/a".to_owned(), |s| format!("{:.0}%", s.relative * 100.0))
    };
    let _ = writeln!(
        md,
        "| {}{} | {} | {} | {} | {} | {} | {} / {} | {} (n={}) | {} (n={}) |",
        s.title,
        if s.error.is_none() { "" } else { " (failed)" },
        value(s.ours.median),
        value(s.peer.median),
        ratio,
        s.goal.text,
        met,
        rel(s.spread.ours),
        rel(s.spread.peer),
        s.ours.what,
        json_text(&s.ours.n),
        s.peer.what,
        json_text(&s.peer.n),
    );
}

/// The code generation section.
fn codegen_section(md: &mut String, codegen: &Codegen) {
    let _ = writeln!(md, "\n## Code generation\n");
    let _ = writeln!(
        md,
        "Generated schemas ({} events per file, eight fields each). Expansion: `Catalog::load` + `generate` in the xtask process (what `include_events!` runs; dev profile, as proc macros are built), median. Build: `cargo build` ({} profile) of a crate that `include_events!` them, dependencies already built ({}).\n",
        codegen.events_per_file,
        if codegen.profile.is_empty() {
            "dev"
        } else {
            &codegen.profile
        },
        // Runs before this field was written took two.
        match codegen.builds.unwrap_or(2) {
            1 => "one build".to_owned(),
            builds => format!("fastest of {builds} builds"),
        }
    );
    let _ = writeln!(md, "| events | expansion | generated | cargo build |");
    let _ = writeln!(md, "|---:|---:|---:|---:|");
    for size in &codegen.sizes {
        let _ = writeln!(
            md,
            "| {} | {:.3} s | {} KiB | {} |",
            size.events,
            size.expand_seconds.unwrap_or(f64::NAN),
            size.generated_bytes / 1024,
            size.compile_seconds
                .map_or("not built (--quick)".to_owned(), |s| format!("{s:.1} s"))
        );
    }
    let ratio = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.1}×"));
    let _ = writeln!(
        md,
        "\nBuild 3,000 ÷ 300: {}; build 300 ÷ 30: {}; expansion 3,000 ÷ 300: {}. Goal: {} — {}.",
        ratio(codegen.compile_ratio_3000_300),
        ratio(codegen.compile_ratio_300_30),
        ratio(codegen.expand_ratio_3000_300),
        codegen.goal,
        match codegen.met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "n/a",
        }
    );
}

/// A value as JSON text (`null`, `2`, `12.0`): how the report showed numbers read from
/// `results.json`.
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A ratio with two significant digits or so.
pub(super) fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "n/a".to_owned()
    } else if r >= 10.0 {
        format!("{r:.0}")
    } else if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("{r:.3}")
    }
}

/// At most two decimals, without trailing zeros: `2.5`, `4`.
pub(super) fn trim_float(x: f64) -> String {
    let text = format!("{x:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `12,345/s` or `8.1 MiB`.
pub(super) fn show(metric: Metric, value: f64) -> String {
    match metric {
        Metric::Throughput => format!("{}/s", thousands(value)),
        Metric::PeakRss => format!("{:.1} MiB", value / 1_048_576.0),
    }
}

/// A whole number with thousands separators: `1,234,567`.
pub(super) fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_shown_as_before() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(f64::NAN), "n/a");
        assert_eq!(trim_float(2.5), "2.5");
        assert_eq!(fmt_ratio(12.34), "12");
        assert_eq!(json_text(&Some(12.0)), "12.0");
        assert_eq!(json_text(&None::<u64>), "null");
    }

    /// The report of `testdata/results.json` is the one the `serde_json::Value` code rendered.
    #[test]
    fn report_of_the_fixture_is_unchanged() {
        let results: BenchResults =
            serde_json::from_str(include_str!("testdata/results.json")).expect("typed");
        assert_eq!(report(&results), include_str!("testdata/report.md"));
    }
}
