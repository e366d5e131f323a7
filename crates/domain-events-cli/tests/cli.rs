//! The `domain-events` binary, run as a user would.
//!
//! Update the help snapshot with `EXPECTORATE=overwrite cargo test -p domain-events-cli` and review
//! the diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The workspace root, which holds the platform's `schemas/`.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary in `dir` with `args`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_domain-events"))
        .args(args)
        .current_dir(dir)
        // Plain text whatever the environment asks for.
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

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, relative to it, with `/` separators.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                files.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files
}

#[test]
fn check_passes_on_the_platform_schemas() {
    // `--schemas` defaults to `schemas`, relative to where the tool runs.
    let output = run_in(&workspace(), &["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ok: 30 events in 6 categories\n");
    assert_eq!(stderr(&output), "");
}

const BROKEN_ALPHA: &str = r#"category = "alpha"
correlation = "itemId"

[events.item_created]
idempotency_key = "alpha_created:{itemId}"

[events.item_created.fields]
itemId = { type = "strng" }
count  = { type = "uint", min_length = 3 }

[events.item_deleted]
idempotency_key = "alpha_deleted:{itemId}:{reason}"

[events.item_deleted.fields]
itemId = "string"
"#;

const BROKEN_BETA: &str = r#"category = "beta"

[events.thing_done
idempotency_key = "beta_done:{thingId}"
"#;

#[test]
fn check_reports_every_error_of_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("schemas");
    std::fs::create_dir(&schemas).unwrap();
    std::fs::write(schemas.join("alpha.toml"), BROKEN_ALPHA).unwrap();
    std::fs::write(schemas.join("beta.toml"), BROKEN_BETA).unwrap();

    let output = run_in(dir.path(), &["check", "--schemas", "schemas"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    let positions: Vec<&str> = err
        .lines()
        .filter_map(|line| line.split_once(": error: ").map(|(at, _)| at))
        .collect();
    assert_eq!(
        positions,
        [
            "schemas/alpha.toml:8:19",  // unknown type `strng`
            "schemas/alpha.toml:9:40",  // `min_length` on a uint
            "schemas/alpha.toml:12:43", // key references a missing field
            "schemas/beta.toml:3:19",   // TOML syntax
        ],
        "{err}"
    );
    assert!(err.contains("unknown type `strng`"), "{err}");
    assert!(err.contains("  help: did you mean `string`?"), "{err}");
    assert!(
        err.ends_with("error: 4 errors in the schema folder `schemas`\n"),
        "{err}"
    );

    // `export` validates the same way and writes nothing.
    let output = run_in(dir.path(), &["export", "--out", "out"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), err);
    assert!(!dir.path().join("out").exists());
}

#[test]
fn check_reports_every_mistake_of_the_many_mistakes_fixture_in_one_run() {
    // The schema crate's fixture of 21 independent mistakes over two files: one run of
    // `domain-events check` shows all of them, as the library reports them.
    let fixture = workspace().join("crates/domain-events-schema/tests/fixtures/bad/many_mistakes");
    let output = run_in(&fixture, &["check", "--schemas", "."]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.matches(": error: ").count(), 21, "{err}");
    assert!(err.contains("did you mean `idempotency_key`?"), "{err}");
    assert!(
        err.ends_with("error: 21 errors in the schema folder `.`\n"),
        "{err}"
    );
}

#[test]
fn check_reports_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(dir.path(), &["check", "--schemas", "nowhere"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with("nowhere:1:1: error: cannot read the schema folder"),
        "{err}"
    );
}

#[test]
fn export_writes_an_index_that_matches_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let schemas = workspace().join("schemas");
    let args = [
        "export",
        "--schemas",
        schemas.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let output = run_in(dir.path(), &args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "exported 30 events in 6 categories to {}: 126 files (126 created, 0 updated, 0 unchanged, 0 stale removed)\n",
            out.display()
        )
    );

    let index = read_json(&out.join("index.json"));
    let events = index["events"].as_array().unwrap();
    assert_eq!(events.len(), 30);
    // Besides the schemas: the AsyncAPI document, the Markdown catalog and the TypeScript files.
    let mut listed = BTreeSet::from(
        [
            "index.json",
            "asyncapi.json",
            "catalog.md",
            "typescript/index.d.ts",
            "typescript/index.js",
            "typescript/package.json",
        ]
        .map(str::to_owned),
    );
    for event in events {
        let ty = event["type"].as_str().unwrap();
        for key in [
            "category",
            "name",
            "version",
            "idempotencyKey",
            "correlationField",
        ] {
            assert!(!event[key].is_null(), "{ty} has no `{key}`");
        }
        let payload_path = event["payloadSchema"].as_str().unwrap();
        let event_path = event["eventSchema"].as_str().unwrap();
        listed.insert(payload_path.to_owned());
        listed.insert(event_path.to_owned());
        // Every version is also at its versioned path, which its `$id` names.
        let name = event["name"].as_str().unwrap();
        let category = event["category"].as_str().unwrap();
        let version = event["version"].as_u64().unwrap();
        for kind in ["payload", "event"] {
            listed.insert(format!("{category}/{name}.v{version}.{kind}.schema.json"));
        }

        let payload = read_json(&out.join(payload_path));
        assert_eq!(
            payload["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert!(
            payload["$id"]
                .as_str()
                .unwrap()
                .starts_with("https://schemas.domain-events.dev/")
        );
        let envelope = read_json(&out.join(event_path));
        assert_eq!(envelope["properties"]["type"]["const"], event["type"]);
        assert_eq!(envelope["properties"]["version"]["const"], event["version"]);
    }
    assert_eq!(files_under(&out), listed);

    // A second run changes nothing, and `--check` agrees.
    let output = run_in(dir.path(), &args);
    assert!(stdout(&output).contains("(0 created, 0 updated, 126 unchanged, 0 stale removed)"));
    let mut check = args.to_vec();
    check.push("--check");
    let output = run_in(dir.path(), &check);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "ok: the export in {} is up to date (126 files)\n",
            out.display()
        )
    );

    // An edited file and a leftover file make `--check` fail, naming both.
    let edited = out.join("image/variation_completed.payload.schema.json");
    std::fs::write(&edited, "{}\n").unwrap();
    let leftover = out.join("image/variation_gone.event.schema.json");
    std::fs::write(&leftover, "{}\n").unwrap();
    let output = run_in(dir.path(), &check);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("  {}: differs\n", edited.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("  {}: stale\n", leftover.display())),
        "{err}"
    );
    assert!(err.contains("help: run `domain-events export"), "{err}");

    // Exporting again repairs both.
    let output = run_in(dir.path(), &args);
    assert!(
        stdout(&output).contains("(0 created, 1 updated, 125 unchanged, 1 stale removed)"),
        "{}",
        stdout(&output)
    );
    assert!(!leftover.exists());
}

#[test]
fn export_uses_the_given_id_base() {
    let dir = tempfile::tempdir().unwrap();
    let schemas = workspace().join("schemas");
    let output = run_in(
        dir.path(),
        &[
            "export",
            "--schemas",
            schemas.to_str().unwrap(),
            "--out",
            "out",
            "--id-base",
            "https://example.com/events",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let payload = read_json(&dir.path().join("out/funnel/signup.payload.schema.json"));
    assert_eq!(
        payload["$id"],
        "https://example.com/events/funnel/signup.v1.payload.schema.json"
    );
}

#[test]
fn export_refuses_a_folder_that_is_not_an_export() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("package.json"), "{}").unwrap();
    let schemas = workspace().join("schemas");
    let output = run_in(
        dir.path(),
        &[
            "export",
            "--schemas",
            schemas.to_str().unwrap(),
            "--out",
            ".",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: `.` is not an export folder"),
        "{err}"
    );
    assert!(dir.path().join("package.json").is_file());
    assert!(!dir.path().join("index.json").exists());
}

/// The CLI and `cargo xtask schema export` write the same folder, so the committed export is what
/// the tool produces from `schemas/`.
#[test]
fn the_committed_export_is_up_to_date() {
    let output = run_in(
        &workspace(),
        &["export", "--out", "schemas/json", "--check"],
    );
    assert!(
        output.status.success(),
        "{}\nthe committed export is stale: run `cargo xtask schema export` and commit schemas/json",
        stderr(&output)
    );
}

#[test]
fn help() {
    let mut text = String::new();
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["export", "--help"],
        &["diff", "--help"],
        &["emit", "--help"],
        &["tail", "--help"],
        &["dlq", "--help"],
        &["dlq", "list", "--help"],
        &["dlq", "replay", "--help"],
        &["dlq", "delete", "--help"],
        &["dlq", "purge", "--help"],
        &["status", "--help"],
        &["completions", "--help"],
    ] {
        let output = run_in(&workspace(), args);
        assert!(output.status.success());
        text.push_str(&format!("$ domain-events {}\n", args.join(" ")));
        // clap indents the blank lines of long option help; trailing spaces do not survive editors.
        for line in stdout(&output).lines() {
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text.push('\n');
    }
    expectorate::assert_contents("tests/snapshots/help.txt", &text);
}

#[test]
fn emit_reports_invalid_values_without_showing_them() {
    // Validation comes before connecting: no Redis is needed, and nothing is emitted.
    let payloads = [
        r#"{"emailLogId":"log-1","templateId":"t-1","recipient":"not-an-email-SECRET123","queuedAt":"2026-11-26T17:04:05.123Z"}"#,
        r#"{"emailLogId":"log-1","templateId":"t-1","recipient":123456789123,"queuedAt":"not-a-time-SECRET123"}"#,
    ];
    for payload in payloads {
        let output = run_in(
            &workspace(),
            &[
                "emit",
                "--redis",
                "redis://127.0.0.1:1",
                "--source",
                "cli-test",
                "--type",
                "email:queued",
                "--payload",
                payload,
            ],
        );
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        assert!(err.contains("at payload/recipient"), "{err}");
        assert!(err.contains("nothing was emitted"), "{err}");
        for value in ["SECRET123", "123456789123"] {
            assert!(!err.contains(value), "{err}");
        }
    }
}
