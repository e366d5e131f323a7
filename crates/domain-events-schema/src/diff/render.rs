//! The two forms of a diff: JSON for machines, a table for people.

use serde_json::{Value, json};

use super::model::Diff;

impl Diff {
    /// The machine-readable form: `{"ok", "violations", "breaking", "changes": [..]}`, each change
    /// with `event`, `version`, `fromVersion`, `field`, `kind`, `oldReaders`, `newReaders`,
    /// `violation` and `detail`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": !self.has_violations(),
            "violations": self.violations().count(),
            "breaking": self.changes.iter().filter(|c| c.is_breaking()).count(),
            "changes": self.changes,
        })
    }

    /// The table for people, one change a line, followed by a legend and a summary line that
    /// starts with `ok:` or `error:`.
    pub fn table(&self) -> String {
        let mut text = String::new();
        if self.changes.is_empty() {
            text.push_str("ok: no changes\n");
            return text;
        }
        let header = [
            "EVENT",
            "VERSION",
            "FIELD",
            "CHANGE",
            "OLD READERS",
            "NEW READERS",
            "VERDICT",
            "DETAIL",
        ];
        let rows: Vec<[String; 8]> = self
            .changes
            .iter()
            .map(|c| {
                [
                    c.event.clone(),
                    c.version_label(),
                    c.field.clone().unwrap_or_else(|| "-".into()),
                    c.kind.label().into(),
                    c.old_readers.as_str().into(),
                    c.new_readers.as_str().into(),
                    c.verdict().into(),
                    c.detail.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[&str]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(out.trim_end());
            text.push('\n');
        };
        line(&header);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&cells);
        }
        text.push_str(
            "\nold readers: consumers built from the old schemas, reading events emitted under the new ones\n\
             new readers: consumers built from the new schemas, reading events emitted under the old ones\n",
        );
        let violations = self.violations().count();
        let breaking = self.changes.iter().filter(|c| c.is_breaking()).count();
        let changes = plural(self.changes.len(), "change", "changes");
        if violations == 0 {
            text.push_str(&format!(
                "ok: {changes}, {breaking} breaking, none without a new version\n"
            ));
        } else {
            text.push_str(&format!(
                "error: {changes}, {} of an event without a new version\n  \
                 help: bump the event's `version` and keep the old fields under \
                 `[events.<name>.versions.<old>]` until every consumer reads the new version \
                 (docs/compatibility.md)\n",
                plural(violations, "breaking change", "breaking changes"),
            ));
        }
        text
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use serde_json::json;

    #[test]
    fn json_and_table() {
        let old = catalog("", r#"a = "uint""#);
        let new = catalog("", r#"a = "uint", b = "string", c = "string?""#);
        let d = diff(&old, &new);
        let json = d.to_json();
        assert_eq!(json["ok"], false);
        assert_eq!(json["violations"], 1);
        assert_eq!(json["breaking"], 1);
        assert_eq!(
            json["changes"][0],
            json!({
                "event": "image:thing", "version": 1, "fromVersion": null, "field": "b",
                "kind": "field-added-required", "oldReaders": "compatible", "newReaders": "breaking",
                "violation": true, "detail": "required string added: new readers reject old events without it",
            })
        );
        let table = d.table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("EVENT        VERSION  FIELD  CHANGE"),
            "{table}"
        );
        assert!(lines[1].starts_with("image:thing  1        b      field added (required)  compatible   breaking     VIOLATION"), "{table}");
        assert!(
            lines[2].contains("field added (optional)") && lines[2].contains(" ok "),
            "{table}"
        );
        assert!(
            table.contains("error: 2 changes, 1 breaking change of an event without a new version"),
            "{table}"
        );
        assert!(
            table.contains("help: bump the event's `version`"),
            "{table}"
        );

        let ok = diff(&old, &catalog("", r#"a = "uint", c = "string?""#)).table();
        assert!(
            ok.ends_with("ok: 1 change, 0 breaking, none without a new version\n"),
            "{ok}"
        );
    }
}
