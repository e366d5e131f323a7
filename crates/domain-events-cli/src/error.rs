//! Why a command failed, and how that is shown.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use domain_events_schema::Diagnostics;

/// A failed command. [`Error::report`] is the text for stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema folder has errors; `diagnostics` holds every one of them.
    #[error("{} in the schema folder `{}`", count(diagnostics), dir.display())]
    Schema {
        /// The folder as given on the command line.
        dir: PathBuf,
        /// Every problem found, sorted by file and position.
        #[source]
        diagnostics: Diagnostics,
    },

    /// `export --check` found files that differ from what `export` would write.
    #[error("the export in `{}` is not up to date", out.display())]
    OutOfDate {
        /// The export folder.
        out: PathBuf,
        /// Each file that is `missing`, `differs` or `stale` (no longer produced).
        problems: Vec<(PathBuf, &'static str)>,
        /// The command that brings the folder up to date.
        fix: String,
    },

    /// The output folder holds JSON files and no `index.json`: it does not look like an export,
    /// and exporting would delete those files.
    #[error(
        "`{}` is not an export folder: it has no index.json but holds other JSON files, such as `{}`",
        out.display(),
        example.display()
    )]
    NotAnExport {
        /// The output folder.
        out: PathBuf,
        /// One of the JSON files that exporting would delete.
        example: PathBuf,
    },

    /// Reading or writing the export folder failed.
    #[error("cannot {action} the export in `{}`", out.display())]
    Export {
        /// `read` or `write`.
        action: &'static str,
        /// The export folder.
        out: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },

    /// Writing to stdout failed.
    #[error("cannot write the output")]
    Output(#[source] io::Error),
}

impl Error {
    /// The full text to print to stderr: every schema diagnostic (`file:line:col: error: ...`),
    /// the list of out-of-date files, then an `error:` line saying what failed.
    pub fn report(&self) -> String {
        let mut text = String::new();
        match self {
            Error::Schema { diagnostics, .. } => {
                let _ = write!(text, "{diagnostics}\nerror: {self}");
            }
            Error::OutOfDate { problems, fix, .. } => {
                let _ = write!(text, "error: {self}:");
                for (path, reason) in problems {
                    let _ = write!(text, "\n  {}: {reason}", path.display());
                }
                let _ = write!(text, "\n  help: run `{fix}` to update it");
            }
            Error::NotAnExport { .. } => {
                let _ = write!(
                    text,
                    "error: {self}\n  help: export into a new or empty folder, or one written by `domain-events export`"
                );
            }
            Error::Export { source, .. } | Error::Output(source) => {
                let _ = write!(text, "error: {self}: {source}");
            }
        }
        text
    }

    /// The exit status for this failure: 1 for every failure. (Command-line mistakes exit with 2,
    /// from clap, before any command runs.)
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::FAILURE
    }
}

fn count(diagnostics: &Diagnostics) -> String {
    match diagnostics.items().len() {
        1 => "1 error".into(),
        n => format!("{n} errors"),
    }
}
