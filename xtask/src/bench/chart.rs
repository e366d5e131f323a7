//! `ratios.svg`: the ratio of every scenario as a bar, with its goal and bound.

use std::fmt::Write as _;

use super::report::{fmt_ratio, trim_float};
use super::results::BenchResults;

/// `ratios.svg`: one bar per scenario on a log axis from parity (1×) to the ratio, green when the
/// goal is met, red when not, with the goal as a black marker.
pub(super) fn chart(results: &BenchResults) -> String {
    let rows = &results.scenarios;
    let (left, right, top, row_h) = (200.0, 720.0, 60.0, 34.0);
    let width = 800.0;
    let height = top + row_h * rows.len() as f64 + 60.0;
    let (lo, hi) = (-2.0_f64, 2.0_f64); // log10 of 0.01 .. 100
    let x = |ratio: f64| left + (ratio.clamp(1e-2, 1e2).log10() - lo) / (hi - lo) * (right - left);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="24" font-size="15" font-weight="bold">domain-events ÷ peer ({}), log scale</text>"##,
        left - 180.0,
        escape(&results.command)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="42" fill="#555">bar: median ratio; black: goal; dashed blue: best ratio possible here; green: met, red: not (memory: lower is better)</text>"##,
        left - 180.0
    );
    let bottom = top + row_h * rows.len() as f64;
    for tick in [0.01, 0.1, 1.0, 10.0, 100.0] {
        let tx = x(tick);
        let stroke = if tick == 1.0 { "#333" } else { "#ddd" };
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{top}" x2="{tx:.1}" y2="{bottom}" stroke="{stroke}"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}×</text>"##,
            bottom + 16.0,
            trim_float(tick)
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left - 8.0,
            y + row_h / 2.0 + 4.0,
            escape(&row.title)
        );
        let Some(ratio) = row.ratio else {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#999">n/a</text>"##,
                x(1.0) + 6.0,
                y + row_h / 2.0 + 4.0
            );
            continue;
        };
        let met = row.met.unwrap_or(false);
        let color = if met { "#2e7d32" } else { "#c62828" };
        let (x0, x1) = (x(1.0), x(ratio));
        let (bx, bw) = if x1 >= x0 {
            (x0, x1 - x0)
        } else {
            (x1, x0 - x1)
        };
        let _ = writeln!(
            svg,
            r##"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}" opacity="0.85"/>"##,
            y + 7.0,
            bw.max(1.0),
            row_h - 14.0
        );
        let goal = row.goal.value;
        let gx = x(goal);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{:.1}" stroke="black" stroke-width="3"/>"##,
            y + 3.0,
            y + row_h - 3.0
        );
        let best = row.limit.best_ratio;
        let mut right_edge = x0.max(x1).max(gx);
        if let Some(best) = best {
            let bx = x(best);
            right_edge = right_edge.max(bx);
            let _ = writeln!(
                svg,
                r##"<line x1="{bx:.1}" y1="{:.1}" x2="{bx:.1}" y2="{:.1}" stroke="#1565c0" stroke-width="2" stroke-dasharray="3 2"/>"##,
                y + 1.0,
                y + row_h - 1.0
            );
        }
        let label = format!(
            "{}× (goal {}{})",
            fmt_ratio(ratio),
            row.goal.text,
            best.map_or(String::new(), |b| format!(
                ", at most {}× here",
                fmt_ratio(b)
            ))
        );
        // Right of everything drawn in the row, so it never runs into the row's title.
        let (lx, anchor) = (right_edge + 6.0, "start");
        let _ = writeln!(
            svg,
            r##"<text x="{lx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"##,
            y + row_h / 2.0 + 4.0,
            escape(&label)
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

/// `text` safe inside SVG text.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chart of `testdata/results.json` is the one the `serde_json::Value` code drew.
    #[test]
    fn chart_of_the_fixture_is_unchanged() {
        let results: BenchResults =
            serde_json::from_str(include_str!("testdata/results.json")).expect("typed");
        assert_eq!(chart(&results), include_str!("testdata/ratios.svg"));
        assert_eq!(escape("a<b & c>"), "a&lt;b &amp; c&gt;");
    }
}
