//! The macros' compile errors, as users see them (`tests/ui/*.stderr`). Create or update the
//! expected output with `TRYBUILD=overwrite cargo test -p domain-events-tests --test compile_fail`
//! and review the diff. Detailed schema errors are covered in-process by the schema crate's
//! diagnostics snapshots; these cases check that the macro carries them to rustc intact.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder of schema fixtures that cases include, as they name it: relative to the crate
/// trybuild builds them in.
const FIXTURES: &str = "ui-schemas";

#[test]
fn ui() {
    copy_fixtures();
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}

/// trybuild builds every case as one crate in `<target>/tests/trybuild/domain-events-tests/`, and
/// `include_events!` reads schema folders relative to the including crate's manifest (absolute
/// paths are refused). So the schema folders of `tests/ui/` are copied there first, and the cases
/// name them `ui-schemas/<folder>`: a path that holds wherever cargo puts its target folder
/// (`CARGO_TARGET_DIR`, `build.target-dir`).
fn copy_fixtures() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let target = metadata["target_directory"]
        .as_str()
        .expect("cargo metadata names the target directory");
    let project = PathBuf::from(target).join("tests/trybuild/domain-events-tests");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    for entry in std::fs::read_dir(&source).expect("tests/ui is readable") {
        let entry = entry.expect("a folder entry");
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(
                &entry.path(),
                &project.join(FIXTURES).join(entry.file_name()),
            );
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("the fixture folder can be created");
    for entry in std::fs::read_dir(from).expect("a fixture folder is readable") {
        let entry = entry.expect("a folder entry");
        let path = entry.path();
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("a fixture file is copied");
        }
    }
}
