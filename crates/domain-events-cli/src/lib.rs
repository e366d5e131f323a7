//! The `domain-events` command-line tool, as a library.
//!
//! `main.rs` only parses [`Cli`], calls [`run`] and prints the [`Error`] report; every command lives
//! here, so tests and other tools can drive it in-process. Schema work goes through
//! `domain-events-schema`, the same library the proc macro and the xtask use, so the tool reports
//! the same errors and writes the same export as they do.
//!
//! ```
//! use clap::Parser;
//! use domain_events_cli::{Cli, run};
//!
//! let cli = Cli::parse_from(["domain-events", "check", "--schemas", "../../schemas"]);
//! let mut out = Vec::new();
//! run(cli, &mut out)?;
//! assert!(String::from_utf8(out).unwrap().starts_with("ok: "));
//! # Ok::<(), domain_events_cli::Error>(())
//! ```
//!
//! # Adding a command
//!
//! Each command is a module with an `Args` struct (its doc comments are the `--help` text) and a
//! `run(args, out) -> Result<ExitCode, Error>`:
//!
//! 1. add `src/<command>.rs` with `<Command>Args` and `run`;
//! 2. add a variant to [`Command`] and an arm to [`run`];
//! 3. add new kinds of failure as variants of [`Error`] (it is `#[non_exhaustive]`) and say in
//!    [`Error::report`] how they are shown;
//! 4. run `EXPECTORATE=overwrite cargo test -p domain-events-cli` and review the help snapshot.
//!
//! Commands that read schemas flatten [`SchemaArgs`], so `--schemas` means the same everywhere.
//! Commands that talk to Redis (`emit`, `tail`, `dlq`) live in this same binary; they should share
//! one flattened `RedisArgs` struct for the connection options, and a command that streams
//! (`tail`) writes to `out` as it goes. A command whose result is a verdict (`diff` finding
//! breaking changes) returns `Ok` with a non-zero [`ExitCode`].
#![deny(missing_docs)]

mod check;
mod error;
mod export;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use domain_events_schema::{Catalog, Settings};

pub use check::CheckArgs;
pub use error::Error;
pub use export::ExportArgs;

/// Check domain event schemas and export them as JSON Schema
///
/// Event schemas are TOML files, one per category, in a schema folder (`schemas` unless
/// `--schemas DIR` says otherwise); docs/schema-language.md describes them.
///
/// Schema errors are printed to stderr as `file:line:column: error: message`, one line per
/// problem, each followed by a `help:` line when there is advice. Every problem of every file
/// is reported at once.
///
/// Exit status: 0 on success; 1 when the schemas have errors, an export is not up to date, or
/// a file cannot be read or written; 2 when the command line is wrong.
#[derive(Debug, Parser)]
#[command(
    name = "domain-events",
    bin_name = "domain-events",
    version,
    verbatim_doc_comment
)]
#[command(after_help = "\
Examples:
  domain-events check
  domain-events check --schemas path/to/schemas
  domain-events export --out schemas/json
  domain-events export --out schemas/json --check")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of the tool. The doc comment of each variant is its `--help` text.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Validate a schema folder, reporting every error
    ///
    /// Reads every `*.toml` file directly inside the schema folder and checks it against the
    /// schema language (docs/schema-language.md). On success prints
    /// `ok: N events in M categories`.
    ///
    /// Otherwise every problem of every file is printed to stderr as
    /// `file:line:column: error: message` and the exit status is 1. Nothing is written.
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),

    /// Write the JSON Schema export of a schema folder
    ///
    /// The export folder holds:
    ///   index.json                             every event version: type, category, name,
    ///                                          version, idempotencyKey (the key template),
    ///                                          correlationField, payloadSchema, eventSchema
    ///   <category>/<name>.payload.schema.json  the payload (JSON Schema draft 2020-12)
    ///   <category>/<name>.event.schema.json    the whole envelope, payload included
    /// Older versions that are still declared get `<name>.v<N>.payload.schema.json` and
    /// `<name>.v<N>.event.schema.json`.
    ///
    /// The schemas are validated first: when anything is wrong nothing is written, and the
    /// errors are printed as by `check`. Files are rewritten only when their contents change,
    /// and `*.json` files in the output folder that the export no longer produces are deleted.
    /// An output folder that holds JSON files but no index.json is refused, so that files
    /// which are not part of an export are never deleted.
    ///
    /// With `--check` nothing is written: every file that is missing, differs or is no longer
    /// produced is listed and the exit status is 1. Run it in CI to keep a committed export in
    /// step with its schemas.
    #[command(verbatim_doc_comment)]
    Export(ExportArgs),
}

/// The schema folder option, shared by every command that reads schemas.
#[derive(Debug, Clone, clap::Args)]
pub struct SchemaArgs {
    /// Folder of `*.toml` schema files, one per category
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub schemas: PathBuf,
}

impl SchemaArgs {
    /// Loads and validates the folder. Messages name files by the folder as given on the command
    /// line (`schemas/image.toml:3:7: error: ...`).
    pub fn load(&self, settings: &Settings) -> Result<Catalog, Error> {
        let settings = settings.clone().with_display_dir(&self.schemas);
        Catalog::load(&self.schemas, &settings).map_err(|diagnostics| Error::Schema {
            dir: self.schemas.clone(),
            diagnostics,
        })
    }
}

/// Runs a parsed command line, writing its normal output to `out`.
///
/// Returns the exit status to end with. Failures are returned as [`Error`]; print
/// [`Error::report`] to stderr and exit with [`Error::exit_code`].
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Check(args) => check::run(&args, out),
        Command::Export(args) => export::run(&args, out),
    }
}

/// Writes one line of output, turning a closed stdout into an [`Error`].
pub(crate) fn say(out: &mut dyn Write, line: std::fmt::Arguments<'_>) -> Result<(), Error> {
    writeln!(out, "{line}").map_err(Error::Output)
}
