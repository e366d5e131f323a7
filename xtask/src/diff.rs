//! `cargo xtask schema diff --against GIT_REF`: the compatibility check of `schemas/` against the
//! schema files of a commit, e.g. `HEAD~1` in CI.
//!
//! The schema files at the ref are read with `git ls-tree` and `git show` and validated in memory
//! (`Catalog::from_sources`), so nothing is checked out and the work tree is left alone; messages
//! name them `REF:schemas/<file>.toml`. The working tree's `schemas/` is the new side.

use std::path::Path;
use std::process::Command;

use domain_events_schema::diff::{Diff, diff};
use domain_events_schema::{Catalog, Diagnostics};

use crate::schema::SCHEMA_DIR;

/// Why the diff could not be made (a breaking change is not an error: see [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `git` could not be started or failed.
    #[error("`git {args}` failed: {message}")]
    Git {
        /// The arguments given to git.
        args: String,
        /// What git (or starting it) said.
        message: String,
    },
    /// The ref does not name a commit.
    #[error("`{0}` is not a commit of this repository")]
    UnknownRef(String),
    /// A schema file at the ref is not UTF-8 text.
    #[error("`{0}` is not UTF-8 text")]
    NotText(String),
    /// The schema files at the ref have errors.
    #[error("{} in the schema files at `{git_ref}`", count(diagnostics))]
    OldSchemas {
        /// The ref.
        git_ref: String,
        /// Every problem.
        #[source]
        diagnostics: Diagnostics,
    },
    /// The working tree's schema files have errors.
    #[error("{} in `{SCHEMA_DIR}`", count(.0))]
    NewSchemas(#[source] Diagnostics),
}

impl Error {
    /// The schema diagnostics to print before the error line, if any.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            Error::OldSchemas { diagnostics, .. } | Error::NewSchemas(diagnostics) => {
                Some(diagnostics)
            }
            _ => None,
        }
    }
}

fn count(diagnostics: &Diagnostics) -> String {
    match diagnostics.items().len() {
        1 => "1 error".into(),
        n => format!("{n} errors"),
    }
}

/// What the comparison found.
#[derive(Debug)]
pub enum Outcome {
    /// The ref has no `schemas/*.toml` (e.g. a commit from before the catalog): nothing to compare.
    NoSchemas,
    /// The changes from the ref's schemas to the working tree's.
    Compared(Diff),
}

/// Compares the schema files of `git_ref` with the working tree's `schemas/`, in the git
/// repository at `repo`.
pub fn against(repo: &Path, git_ref: &str) -> Result<Outcome, Error> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{git_ref}^{{commit}}"),
        ],
    )
    .map_err(|_| Error::UnknownRef(git_ref.to_owned()))?;
    let listing = git(
        repo,
        &["ls-tree", "--name-only", git_ref, &format!("{SCHEMA_DIR}/")],
    )?;
    let listing = String::from_utf8_lossy(&listing);
    let files: Vec<&str> = listing
        .lines()
        .filter(|path| path.ends_with(".toml"))
        .collect();
    if files.is_empty() {
        return Ok(Outcome::NoSchemas);
    }
    let mut sources = Vec::new();
    for path in files {
        let spec = format!("{git_ref}:{path}");
        let bytes = git(repo, &["show", &spec])?;
        let text = String::from_utf8(bytes).map_err(|_| Error::NotText(spec.clone()))?;
        sources.push((spec, text));
    }
    let sources: Vec<(&str, &str)> = sources
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let old = Catalog::from_sources(&sources).map_err(|diagnostics| Error::OldSchemas {
        git_ref: git_ref.to_owned(),
        diagnostics,
    })?;
    let new = Catalog::load_as(&repo.join(SCHEMA_DIR), Path::new(SCHEMA_DIR))
        .map_err(Error::NewSchemas)?;
    Ok(Outcome::Compared(diff(&old, &new)))
}

/// Runs git in `repo`; its stdout on success.
fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let failed = |message: String| Error::Git {
        args: args.join(" "),
        message,
    };
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(failed(if stderr.is_empty() {
            output.status.to_string()
        } else {
            stderr
        }));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"
        category = "shop"
        correlation = "orderId"
        [events.order_placed]
        idempotency_key = "order_placed:{orderId}"
        fields = { orderId = "string", totalCents = "uint" }
    "#;

    fn run(repo: &Path, args: &[&str]) {
        let output = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A repository whose first commit has a README only and whose second has `schemas/shop.toml`.
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        run(root, &["init", "--quiet"]);
        for (key, value) in [
            ("user.name", "xtask tests"),
            ("user.email", "xtask@example.com"),
            ("commit.gpgsign", "false"),
        ] {
            run(root, &["config", key, value]);
        }
        std::fs::write(root.join("README.md"), "shop\n").unwrap();
        run(root, &["add", "."]);
        run(root, &["commit", "--quiet", "-m", "start"]);
        std::fs::create_dir(root.join("schemas")).unwrap();
        std::fs::write(root.join("schemas/shop.toml"), V1).unwrap();
        // Not a schema file: ignored on both sides.
        std::fs::create_dir(root.join("schemas/json")).unwrap();
        std::fs::write(root.join("schemas/json/index.json"), "{}").unwrap();
        run(root, &["add", "."]);
        run(root, &["commit", "--quiet", "-m", "schemas"]);
        dir
    }

    fn compared(outcome: Result<Outcome, Error>) -> Diff {
        match outcome {
            Ok(Outcome::Compared(diff)) => diff,
            other => panic!("expected a comparison, got {other:?}"),
        }
    }

    #[test]
    fn an_unchanged_work_tree_has_no_changes() {
        let dir = repo();
        assert!(compared(against(dir.path(), "HEAD")).is_empty());
    }

    #[test]
    fn a_ref_without_schemas_is_nothing_to_compare() {
        let dir = repo();
        assert!(matches!(
            against(dir.path(), "HEAD~1"),
            Ok(Outcome::NoSchemas)
        ));
    }

    #[test]
    fn edits_in_the_work_tree_are_compared_with_the_ref() {
        let dir = repo();
        let edited = V1.replace(
            "totalCents = \"uint\"",
            "totalCents = \"uint\", note = \"string\"",
        );
        std::fs::write(dir.path().join("schemas/shop.toml"), edited).unwrap();
        let diff = compared(against(dir.path(), "HEAD"));
        assert!(diff.has_violations());
        let change = &diff.changes[0];
        assert_eq!(
            (change.event.as_str(), change.field.as_deref()),
            ("shop:order_placed", Some("note"))
        );
        assert!(diff.table().contains("VIOLATION"));
    }

    #[test]
    fn errors_name_the_ref_and_the_file() {
        let dir = repo();
        assert!(matches!(
            against(dir.path(), "no-such-branch"),
            Err(Error::UnknownRef(r)) if r == "no-such-branch"
        ));

        // Broken schemas committed at HEAD are reported as the ref's files.
        std::fs::write(
            dir.path().join("schemas/shop.toml"),
            V1.replace("uint", "unit"),
        )
        .unwrap();
        run(dir.path(), &["commit", "--quiet", "-am", "broken"]);
        let err = against(dir.path(), "HEAD").unwrap_err();
        let text = err
            .diagnostics()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(text.contains("HEAD:schemas/shop.toml:"), "{text}");
        assert!(
            err.to_string().contains("in the schema files at `HEAD`"),
            "{err}"
        );

        // Broken schemas in the work tree are reported as such.
        std::fs::write(
            dir.path().join("schemas/shop.toml"),
            V1.replace("uint", "unit"),
        )
        .unwrap();
        let err = against(dir.path(), "HEAD~1").unwrap_err();
        assert!(matches!(err, Error::NewSchemas(_)), "{err:?}");
    }
}
