//! `domain-events diff`, run as a user would, on schema folders in temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_domain-events"))
        .args(args)
        .current_dir(dir)
        .env_remove("CLICOLOR_FORCE")
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// `shop.toml` with `order_placed` at `version`, its fields, and extra TOML after the event.
fn shop(version: u32, fields: &str, extra: &str) -> String {
    format!(
        r#"category = "shop"
correlation = "orderId"

[events.order_placed]
version = {version}
idempotency_key = "order_placed:{{orderId}}"
fields = {{ {fields} }}
{extra}
[events.order_cancelled]
idempotency_key = "order_cancelled:{{orderId}}"
fields = {{ orderId = "string" }}
"#
    )
}

const V1_FIELDS: &str = r#"orderId = "string", totalCents = "uint""#;

/// A temporary directory with `old/shop.toml` and `new/shop.toml`.
fn folders(old: &str, new: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("old", old), ("new", new)] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("shop.toml"), text).unwrap();
    }
    let root = dir.path().to_path_buf();
    (dir, root)
}

#[test]
fn identical_folders_have_no_changes() {
    let text = shop(1, V1_FIELDS, "");
    let (_dir, root) = folders(&text, &text);
    let output = run_in(&root, &["diff", "--old", "old", "--new", "new"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ok: no changes\n");
}

#[test]
fn a_breaking_change_in_place_fails_with_a_table() {
    let old = shop(1, V1_FIELDS, "");
    let new = shop(
        1,
        r#"orderId = "string", totalCents = "int", note = "string?""#,
        "",
    );
    let (_dir, root) = folders(&old, &new);
    let output = run_in(&root, &["diff", "--old", "old", "--new", "new"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("EVENT"), "{out}");
    let row = |field: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().nth(2) == Some(field))
            .unwrap_or_else(|| panic!("no row for {field}:\n{out}"))
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("totalCents")[..7],
        [
            "shop:order_placed",
            "1",
            "totalCents",
            "type changed",
            "breaking",
            "breaking",
            "VIOLATION"
        ]
    );
    assert_eq!(
        row("note")[..7],
        [
            "shop:order_placed",
            "1",
            "note",
            "field added (optional)",
            "compatible",
            "compatible",
            "ok"
        ]
    );
    assert!(
        out.contains("error: 2 changes, 1 breaking change of an event without a new version"),
        "{out}"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_breaking_change_with_a_new_version_passes() {
    let old = shop(1, V1_FIELDS, "");
    let new = shop(
        2,
        r#"orderId = "string", totalCents = "uint", channel = { type = "enum", values = ["web", "app"] }"#,
        "[events.order_placed.versions.1]\nfields = { orderId = \"string\", totalCents = \"uint\" }\n",
    );
    let (_dir, root) = folders(&old, &new);
    let output = run_in(&root, &["diff", "--old", "old", "--new", "new"]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("version added"), "{out}");
    assert!(out.contains("1->2"), "{out}");
    assert!(out.contains("ok: new version"), "{out}");
    assert!(
        out.contains("ok: 2 changes, 2 breaking, none without a new version"),
        "{out}"
    );

    // Retiring version 1 later is reported, and allowed.
    let (_dir, root) = folders(
        &new,
        &shop(
            2,
            r#"orderId = "string", totalCents = "uint", channel = { type = "enum", values = ["web", "app"] }"#,
            "",
        ),
    );
    let output = run_in(&root, &["diff", "--old", "old", "--new", "new"]);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("version retired"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn json_output_for_machines() {
    let old = shop(1, V1_FIELDS, "");
    let new = shop(1, r#"orderId = "string""#, "");
    let (_dir, root) = folders(&old, &new);
    let output = run_in(&root, &["diff", "--old", "old", "--new", "new", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let value: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(value["ok"], false);
    assert_eq!(value["violations"], 1);
    assert_eq!(value["changes"].as_array().map(Vec::len), Some(1));
    let change = &value["changes"][0];
    assert_eq!(change["event"], "shop:order_placed");
    assert_eq!(change["field"], "totalCents");
    assert_eq!(change["kind"], "field-removed-required");
    assert_eq!(change["oldReaders"], "breaking");
    assert_eq!(change["newReaders"], "compatible");
    assert_eq!(change["violation"], true);

    let (_dir, root) = folders(&old, &old);
    let output = run_in(&root, &["diff", "--old", "old", "--new", "new", "--json"]);
    assert!(output.status.success());
    let value: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(
        value,
        serde_json::json!({"ok": true, "violations": 0, "breaking": 0, "changes": []})
    );
}

#[test]
fn schema_errors_are_reported_per_folder() {
    let (_dir, root) = folders(
        &shop(1, V1_FIELDS, ""),
        &shop(1, r#"orderId = "strng""#, ""),
    );
    let output = run_in(&root, &["diff", "--old", "old", "--new", "new"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(err.contains("new/shop.toml:"), "{err}");
    assert!(err.contains("unknown type `strng`"), "{err}");
    assert!(
        err.contains("error: 1 error in the schema folder `new`"),
        "{err}"
    );

    let output = run_in(&root, &["diff", "--old", "missing", "--new", "new"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("missing"), "{}", stderr(&output));
}

#[test]
fn the_platform_schemas_are_compatible_with_themselves() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = run_in(&workspace, &["diff", "--old", "schemas"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ok: no changes\n");
}
