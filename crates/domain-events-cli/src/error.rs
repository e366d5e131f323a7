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

    /// `emit --type` names no event of the schema folder.
    #[error("unknown event type `{event_type}` in the schema folder `{}`", dir.display())]
    UnknownEventType {
        /// The type as given.
        event_type: String,
        /// The schema folder as given on the command line.
        dir: PathBuf,
        /// Declared types close to it, best first (may be empty).
        suggestions: Vec<String>,
        /// How many event types the folder declares.
        declared: usize,
    },

    /// `tail --category` names no category of the schema folder.
    #[error("unknown category `{category}` in the schema folder `{}`", dir.display())]
    UnknownCategory {
        /// The category as given.
        category: String,
        /// The schema folder as given on the command line.
        dir: PathBuf,
        /// The categories the folder declares.
        declared: Vec<String>,
    },

    /// `emit --payload-file` could not be read.
    #[error("cannot read the payload from {from}")]
    PayloadFile {
        /// The file, quoted, or `standard input`.
        from: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },

    /// `emit --payload` is not JSON.
    #[error("the payload is not valid JSON")]
    PayloadNotJson(#[source] serde_json::Error),

    /// `emit --payload` does not match the payload schema of its event type.
    #[error("the payload does not match the schema of `{event_type}` version {version}")]
    InvalidPayload {
        /// The event type.
        event_type: String,
        /// The version whose schema was used (the latest).
        version: u32,
        /// Every problem, as `at payload/<JSON pointer>: message`.
        problems: Vec<String>,
    },

    /// The payload schema of an event type could not be compiled for validation.
    #[error("cannot validate payloads of `{event_type}`: {message}")]
    UnusableSchema {
        /// The event type.
        event_type: String,
        /// What the JSON Schema validator said.
        message: String,
    },

    /// Talking to Redis failed (unreachable, refused, invalid URL). The message never shows the
    /// password.
    #[error(transparent)]
    Redis(#[from] domain_events_redis::Error),

    /// Talking to Redis through BullMQ failed, or a BullMQ option is unusable (`--transport
    /// bullmq`). The message never shows the password.
    #[error(transparent)]
    Bullmq(#[from] domain_events_bullmq::Error),

    /// The transport did not take the event; nothing was appended unless the message says the
    /// outcome is unknown.
    #[error("cannot emit `{event_type}`")]
    Publish {
        /// The event type.
        event_type: String,
        /// What the transport said.
        #[source]
        source: domain_events::TransportError,
    },

    /// `dlq replay --id` or `dlq delete --id` names a dead letter that is not there, cannot be
    /// replayed, or is found in several categories.
    #[error("dead letter `{id}` of group `{group}` {problem}")]
    DeadLetter {
        /// The dead letter's id.
        id: String,
        /// The consumer group.
        group: String,
        /// `does not exist in ...` or `holds no event envelope ...`.
        problem: String,
    },

    /// `dlq purge` without `--yes` found dead letters to delete; nothing was deleted.
    #[error(
        "not purging {} dead letters of group `{group}` without --yes",
        counts.iter().map(|(_, count)| count).sum::<u64>()
    )]
    PurgeUnconfirmed {
        /// The consumer group.
        group: String,
        /// How many dead letters each category holds.
        counts: Vec<(String, u64)>,
    },

    /// The PostgreSQL outbox failed (unreachable, refused, invalid table name). The message never
    /// shows the password.
    #[error("outbox: {0}")]
    Outbox(#[from] domain_events_outbox::Error),

    /// `--postgres` is not a PostgreSQL URL; shown with its password replaced.
    #[error("invalid PostgreSQL URL `{url}`: {reason}")]
    PostgresUrl {
        /// The redacted URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The dashboard could not start or stopped serving.
    #[error(transparent)]
    Dashboard(#[from] domain_events_dashboard::Error),

    /// The options ask for something unsafe (e.g. actions on a public address without a token).
    #[error("{0}")]
    Unsafe(String),

    /// The async runtime for the Redis commands could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
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
            Error::Runtime(source) => {
                let _ = write!(text, "error: {self}: {source}");
            }
            Error::Dashboard(error) => {
                let _ = write!(text, "error: {error}");
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    let _ = write!(text, ": {cause}");
                    source = cause.source();
                }
            }
            Error::PayloadFile { source, .. } => {
                let _ = write!(text, "error: {self}: {source}");
            }
            Error::PayloadNotJson(source) => {
                let _ = write!(text, "error: {self}: {source}");
            }
            Error::Publish { source, .. } => {
                let _ = write!(text, "error: {self}: {source}");
            }
            Error::UnknownEventType {
                suggestions,
                declared,
                ..
            } => {
                let _ = write!(text, "error: {self}");
                let quoted: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
                match quoted.as_slice() {
                    [] => {
                        let _ = write!(
                            text,
                            "\n  help: the folder declares {declared} event types, named `<category>:<name>`"
                        );
                    }
                    [one] => {
                        let _ = write!(text, "\n  help: did you mean {one}?");
                    }
                    many => {
                        let _ = write!(text, "\n  help: did you mean one of {}?", many.join(", "));
                    }
                }
            }
            Error::UnknownCategory {
                category, declared, ..
            } => {
                let _ = write!(text, "error: {self}");
                let closest = declared.iter().max_by(|a, b| {
                    let score = |c: &String| {
                        strsim::normalized_damerau_levenshtein(&category.to_lowercase(), c)
                    };
                    score(a).total_cmp(&score(b))
                });
                if let Some(closest) = closest.filter(|c| {
                    strsim::normalized_damerau_levenshtein(&category.to_lowercase(), c) >= 0.6
                }) {
                    let _ = write!(text, "\n  help: did you mean `{closest}`?");
                }
                let _ = write!(text, "\n  declared: {}", declared.join(", "));
                let _ = write!(text, "\n  nothing was read");
            }
            Error::InvalidPayload { problems, .. } => {
                let _ = write!(text, "error: {self}:");
                for problem in problems {
                    let _ = write!(text, "\n  {problem}");
                }
                let _ = write!(text, "\n  nothing was emitted");
            }
            Error::PurgeUnconfirmed { counts, .. } => {
                let _ = write!(text, "error: {self}:");
                for (category, count) in counts {
                    let _ = write!(text, "\n  {category}: {count}");
                }
                let _ = write!(
                    text,
                    "\n  help: nothing was deleted; `dlq list` shows them, the same command with --yes deletes them"
                );
            }
            Error::UnusableSchema { .. }
            | Error::Redis(_)
            | Error::Bullmq(_)
            | Error::DeadLetter { .. }
            | Error::Outbox(_)
            | Error::PostgresUrl { .. }
            | Error::Unsafe(_) => {
                let _ = write!(text, "error: {self}");
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
