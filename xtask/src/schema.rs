//! `cargo xtask schema export|check`: the committed JSON Schema export of `schemas/`.
//!
//! Both call the schema library directly, with the same settings as `domain-events export`, so the
//! committed folder is byte for byte what the command-line tool writes.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use domain_events_schema::{Catalog, Diagnostics, ExportSettings, export};

/// The platform's schema folder, relative to the workspace root.
pub const SCHEMA_DIR: &str = "schemas";

/// Where the export is committed, relative to the workspace root.
pub const EXPORT_DIR: &str = "schemas/json";

/// The command that brings the committed export up to date.
pub const EXPORT_COMMAND: &str = "cargo xtask schema export";

/// Why a schema task failed.
#[derive(Debug)]
pub enum Error {
    /// The schemas have errors (every one of them, `file:line:col: error: ...`).
    Schema(Diagnostics),
    /// The export folder is not what the export would write: each file is `missing`, `differs`
    /// or `stale` (written by an earlier export, no longer produced).
    OutOfDate {
        /// The export folder.
        out: PathBuf,
        /// The files that are not up to date, with the reason.
        problems: Vec<(PathBuf, &'static str)>,
    },
    /// The output folder holds JSON files but no `index.json`; exporting would delete them.
    NotAnExport {
        /// The output folder.
        out: PathBuf,
        /// One of the files that exporting would delete.
        example: PathBuf,
    },
    /// Reading or writing the export folder failed.
    Io {
        /// The export folder.
        out: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Schema(diagnostics) => {
                let n = diagnostics.items().len();
                write!(
                    f,
                    "{n} {} in `{SCHEMA_DIR}`",
                    if n == 1 { "error" } else { "errors" }
                )
            }
            Error::OutOfDate { out, problems } => {
                write!(f, "`{}` is not up to date:", out.display())?;
                for (path, reason) in problems {
                    write!(f, "\n  {}: {reason}", path.display())?;
                }
                write!(f, "\n  help: run `{EXPORT_COMMAND}` to update it")
            }
            Error::NotAnExport { out, example } => write!(
                f,
                "`{}` is not an export folder: it has no index.json but holds other JSON files, \
                 such as `{}`; export into a new or empty folder",
                out.display(),
                example.display()
            ),
            Error::Io { out, source } => {
                write!(f, "cannot read or write `{}`: {source}", out.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Loads and validates `schemas` (named as given in messages).
pub fn load(schemas: &Path) -> Result<Catalog, Error> {
    Catalog::load(schemas).map_err(Error::Schema)
}

/// The export settings: the library defaults, as the command-line tool uses them.
fn settings() -> ExportSettings {
    ExportSettings::new()
}

/// Writes the export of `schemas` into `out`, removing files no longer produced. Returns how many
/// files the export has.
pub fn export(schemas: &Path, out: &Path) -> Result<usize, Error> {
    let catalog = load(schemas)?;
    let io = |source| Error::Io {
        out: out.to_path_buf(),
        source,
    };
    // `export::write` deletes the files of export kinds (`*.json`, `catalog.md`, `typescript/*`)
    // it would not write: only do that in a folder an export wrote before.
    if !out.join("index.json").is_file() {
        let problems = export::check(&catalog, &settings(), out).map_err(io)?;
        if let Some((example, _)) = problems.into_iter().find(|(_, r)| *r == "stale") {
            return Err(Error::NotAnExport {
                out: out.to_path_buf(),
                example,
            });
        }
    }
    let written = export::write(&catalog, &settings(), out).map_err(io)?;
    Ok(written.len())
}

/// Checks that `out` is exactly what [`export()`] would write: no file missing, different or stale,
/// and no schema errors. Returns how many files the export has.
pub fn check(schemas: &Path, out: &Path) -> Result<usize, Error> {
    let catalog = load(schemas)?;
    let problems = export::check(&catalog, &settings(), out).map_err(|source| Error::Io {
        out: out.to_path_buf(),
        source,
    })?;
    if problems.is_empty() {
        Ok(export::render(&catalog, &settings()).len())
    } else {
        Err(Error::OutOfDate {
            out: out.to_path_buf(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        category = "image"
        correlation = "variationId"

        [events.variation_started]
        description = "A worker began a variation."
        idempotency_key = "image_started:{variationId}"

        [events.variation_started.fields]
        variationId = { type = "string", min_length = 1 }

        [events.variation_completed]
        idempotency_key = "image_complete:{variationId}"

        [events.variation_completed.fields]
        variationId = { type = "string", min_length = 1 }
        publicUrls = "list<url>"
    "#;

    /// The files of the export of `SCHEMA`: index.json; per event a payload and an envelope schema,
    /// each also at its versioned path (`.v1.`); asyncapi.json, catalog.md and
    /// typescript/{index.d.ts, index.js, package.json}.
    const FILES: usize = 1 + 2 * 4 + 2 + 3;

    /// A workspace-like folder: `schemas/image.toml`, export in `schemas/json`.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let schemas = root.path().join("schemas");
        std::fs::create_dir(&schemas).unwrap();
        std::fs::write(schemas.join("image.toml"), SCHEMA).unwrap();
        let out = schemas.join("json");
        (root, schemas, out)
    }

    fn problems(result: Result<usize, Error>) -> Vec<(PathBuf, &'static str)> {
        match result {
            Err(Error::OutOfDate { problems, .. }) => problems,
            other => panic!("expected an out-of-date error, got {other:?}"),
        }
    }

    #[test]
    fn a_fresh_export_passes_the_check() {
        let (_root, schemas, out) = setup();
        assert_eq!(export(&schemas, &out).unwrap(), FILES);
        assert_eq!(check(&schemas, &out).unwrap(), FILES);
        assert!(
            out.join("image/variation_started.payload.schema.json")
                .is_file()
        );
    }

    #[test]
    fn a_missing_export_lists_every_file() {
        let (_root, schemas, out) = setup();
        let problems = problems(check(&schemas, &out));
        assert_eq!(problems.len(), FILES);
        assert!(problems.iter().all(|(_, reason)| *reason == "missing"));
        assert!(problems.contains(&(out.join("index.json"), "missing")));
    }

    #[test]
    fn a_changed_schema_makes_the_export_stale() {
        let (_root, schemas, out) = setup();
        export(&schemas, &out).unwrap();

        // An edited description changes one event's two files; a removed event leaves two stale
        // files and changes the index.
        let edited = SCHEMA
            .replace("A worker began a variation.", "A worker started.")
            .replace("[events.variation_completed]", "[events.variation_done]")
            .replace(
                "[events.variation_completed.fields]",
                "[events.variation_done.fields]",
            );
        std::fs::write(schemas.join("image.toml"), edited).unwrap();
        let mut found = problems(check(&schemas, &out));
        found.sort();
        let file = |name: &str| out.join("image").join(name);
        let mut expected = Vec::new();
        for (event, reason) in [
            ("variation_completed", "stale"),
            ("variation_done", "missing"),
            ("variation_started", "differs"),
        ] {
            for kind in ["event", "payload"] {
                expected.push((file(&format!("{event}.{kind}.schema.json")), reason));
                expected.push((file(&format!("{event}.v1.{kind}.schema.json")), reason));
            }
        }
        // Every event is listed in the index, the AsyncAPI document, the catalog and the
        // TypeScript files.
        for rel in [
            "index.json",
            "asyncapi.json",
            "catalog.md",
            "typescript/index.d.ts",
            "typescript/index.js",
        ] {
            expected.push((out.join(rel), "differs"));
        }
        expected.sort();
        assert_eq!(found, expected);

        // The message names every file and the command that fixes it.
        let message = check(&schemas, &out).unwrap_err().to_string();
        for (path, reason) in &expected {
            assert!(
                message.contains(&format!("{}: {reason}", path.display())),
                "{message}"
            );
        }
        assert!(
            message.contains("run `cargo xtask schema export`"),
            "{message}"
        );

        // Exporting again brings the folder up to date and removes the stale files.
        export(&schemas, &out).unwrap();
        assert_eq!(check(&schemas, &out).unwrap(), FILES);
        assert!(!file("variation_completed.event.schema.json").exists());
    }

    #[test]
    fn hand_edits_and_extra_files_are_caught() {
        let (_root, schemas, out) = setup();
        export(&schemas, &out).unwrap();
        let payload = out.join("image/variation_started.payload.schema.json");
        let text = std::fs::read_to_string(&payload).unwrap();
        std::fs::write(&payload, text.replace("minLength", "maxLength")).unwrap();
        std::fs::write(out.join("image/old.event.schema.json"), "{}").unwrap();
        // Files that are not JSON are left alone.
        std::fs::write(out.join("README.md"), "generated").unwrap();

        let mut found = problems(check(&schemas, &out));
        found.sort();
        assert_eq!(
            found,
            vec![
                (out.join("image/old.event.schema.json"), "stale"),
                (payload, "differs"),
            ]
        );
    }

    #[test]
    fn schema_errors_fail_the_check() {
        let (_root, schemas, out) = setup();
        export(&schemas, &out).unwrap();
        std::fs::write(
            schemas.join("image.toml"),
            SCHEMA.replace("publicUrls = \"list<url>\"", "publicUrls = \"list<uri>\""),
        )
        .unwrap();
        match check(&schemas, &out) {
            Err(Error::Schema(diagnostics)) => {
                let text = diagnostics.to_string();
                assert!(text.contains("image.toml:17:"), "{text}");
                assert!(text.contains("error: unknown type `uri`"), "{text}");
            }
            other => panic!("expected schema errors, got {other:?}"),
        }
    }

    #[test]
    fn export_refuses_a_folder_that_is_not_an_export() {
        let (root, schemas, _) = setup();
        let out = root.path().join("web");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("package.json"), "{}").unwrap();
        match export(&schemas, &out) {
            Err(Error::NotAnExport { example, .. }) => {
                assert_eq!(example, out.join("package.json"))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(out.join("package.json").is_file());
    }
}
