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

mod bullmq;
mod check;
mod completions;
mod dashboard;
mod diff;
mod dlq;
mod emit;
mod error;
mod export;
mod outbox;
mod payload_check;
mod redis_args;
mod status;
mod tail;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use domain_events_schema::Catalog;

pub use bullmq::{TransportArgs, TransportKind};
pub use check::CheckArgs;
pub use completions::CompletionsArgs;
pub use dashboard::{DASHBOARD_TOKEN_ENV, DashboardArgs};
pub use diff::DiffArgs;
pub use dlq::{
    DeadLetterArgs, DlqAction, DlqArgs, DlqDeleteArgs, DlqListArgs, DlqPurgeArgs, DlqReplayArgs,
};
pub use emit::EmitArgs;
pub use error::Error;
pub use export::ExportArgs;
pub use outbox::{
    OutboxAction, OutboxArgs, OutboxDeadAction, OutboxDeadListArgs, OutboxDeadRetryArgs,
    OutboxRelayArgs, OutboxStatusArgs, POSTGRES_URL_ENV, PostgresArgs,
};
pub use redis_args::{REDIS_URL_ENV, RedisArgs};
pub use status::StatusArgs;
pub use tail::{TailArgs, TailFrom};

/// Check domain event schemas and export them as JSON Schema; emit, tail and replay events
///
/// Event schemas are TOML files, one per category, in a schema folder (`schemas` unless
/// `--schemas DIR` says otherwise); docs/schema-language.md describes them.
///
/// `emit`, `tail`, `dlq` and `status` work on the Redis streams of the events, at
/// `--redis URL` or `$DOMAIN_EVENTS_REDIS_URL` (prefer the variable: a command line is
/// visible to every user of the machine). Passwords are never printed.
///
/// Schema errors are printed to stderr as `file:line:column: error: message`, one line per
/// problem, each followed by a `help:` line when there is advice. Every problem of every file
/// is reported at once.
///
/// Exit status: 0 on success; 1 when the schemas have errors, an export is not up to date, a
/// file cannot be read or written, a payload is invalid, Redis fails or a diff finds a
/// breaking change without a new version; 2 when the command line is wrong.
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
  domain-events export --out schemas/json --check
  domain-events diff --old old/schemas --new schemas
  domain-events emit --redis redis://127.0.0.1 --source crm --type funnel:signup --payload '{...}'
  domain-events emit --redis redis://127.0.0.1 --source crm --type funnel:signup --payload-file signup.json
  domain-events tail --redis redis://127.0.0.1 --group debug --category funnel --count 10
  domain-events dlq list --redis redis://127.0.0.1 --group crm
  domain-events outbox status --postgres postgres://app@127.0.0.1/app")]
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
    ///   CATEGORY/NAME.payload.schema.json      the payload (JSON Schema draft 2020-12)
    ///   CATEGORY/NAME.event.schema.json        the whole envelope, payload included
    /// Older versions that are still declared get `NAME.vN.payload.schema.json` and
    /// `NAME.vN.event.schema.json`.
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

    /// Compare two schema folders and report every change and its compatibility
    ///
    /// Compares every event, version and field of the `--old` folder with the `--new` one and
    /// prints one line per change: what changed (event added or removed, version added or
    /// retired, field added or removed, made optional or required, type changed, constraint
    /// tightened or loosened, enum value added or removed, key template or correlation
    /// changed), and whether it is compatible or breaking for
    ///   old readers   consumers built from the old schemas, reading events emitted under
    ///                 the new ones
    ///   new readers   consumers built from the new schemas, reading events emitted under
    ///                 the old ones (also every event still in a stream or a dead-letter queue)
    /// under the tolerant-reader rule: unknown fields are ignored, constraints are checked on
    /// read. docs/compatibility.md explains every verdict.
    ///
    /// A breaking change needs a new version of the event. The exit status is 1 when a version
    /// that both folders declare changed in a breaking way, when an event's newest version was
    /// removed, or when an event was removed without being deprecated first; such lines say
    /// VIOLATION. Retiring an older version is reported and allowed.
    ///
    /// With `--json` the result is printed as one JSON object: `ok`, `violations`, `breaking`
    /// and `changes`, each change with `event`, `version`, `fromVersion`, `field`, `kind`,
    /// `oldReaders`, `newReaders`, `violation` and `detail`.
    #[command(verbatim_doc_comment)]
    Diff(DiffArgs),

    /// Validate a JSON payload against its schema and publish the event to Redis
    ///
    /// Looks up `--type` in the schema folder (its latest version), checks the payload
    /// against that version's payload JSON Schema (the one `export` writes, formats
    /// included), fills the idempotency key and correlation id from the payload, and appends
    /// the envelope to the category's stream, `<prefix>:{<category>}`. A category the
    /// services split into partitions (Redis records the count at
    /// `<prefix>:{<category>}:partitions`) gets it on the stream of the partition of its
    /// correlation id, `<prefix>:{<category>#<p>}`, where the services' producers put it:
    /// the count is read from Redis, there is nothing to configure.
    ///
    /// The payload is `--payload JSON` on the command line, or read with `--payload-file
    /// PATH` from a file, or from standard input with `--payload-file -`: a command line
    /// holds about 128 KiB at most.
    ///
    /// Prints one JSON line:
    ///   {"eventId":"...","type":"...","idempotencyKey":"...","duplicate":false}
    /// When the key was emitted before (within its claim's lifetime, 24 hours by default),
    /// nothing is appended, `duplicate` is true and `existingEventId` names the event that
    /// holds the key.
    ///
    /// An unknown type, a payload that is not JSON or breaks its schema (every problem is
    /// listed with its path), or an unreachable Redis is reported on stderr with exit status
    /// 1, and nothing is emitted.
    ///
    /// With `--transport bullmq` the event becomes a job of the BullMQ queue `--queue` for
    /// the platform's Node.js services: name = the type, data = the envelope, job id =
    /// `ik-` + the idempotency key (`%` -> `%25`, `:` -> `%3A`). A key whose job is still
    /// kept (24 hours by default) is reported as a duplicate.
    #[command(verbatim_doc_comment)]
    Emit(EmitArgs),

    /// Print the events of some categories as a consumer group reads them
    ///
    /// Joins consumer group `--group` on the stream of each category (`--category`, or every
    /// category of `--schemas`) and prints each event as one JSON line: its envelope, the
    /// payload as received. A partitioned category is read on every partition (the count
    /// Redis records), shared with the group's other consumers as theirs are: one consumer
    /// per partition at a time. An event is acknowledged, and the group's done record written,
    /// only after its line was written, as the runtime's consumers do after a handler
    /// succeeded.
    ///
    /// A group that does not exist yet is created at the beginning of each stream, as the
    /// runtime's consumers create theirs, so events appended before are printed too;
    /// `--from new` creates it at the end instead. An existing group goes on where it is.
    ///
    /// Events the group has handled before are acknowledged without being printed; entries
    /// that are not readable events go to the group's dead letters (see `dlq`).
    ///
    /// Runs until Ctrl-C or SIGTERM, or until `--count` events were printed, then stops
    /// gracefully.
    ///
    /// With `--transport bullmq` it is a worker of the BullMQ queue `--queue` instead and
    /// prints each job's envelope before the job completes; poison jobs are failed in BullMQ.
    /// BullMQ gives each job to one worker, so the jobs it prints are taken from the services
    /// that consume the queue: point it at a queue of your own.
    #[command(verbatim_doc_comment)]
    Tail(TailArgs),

    /// List, replay and delete the dead letters of a consumer group
    ///
    /// A consumer moves an entry it cannot handle to its group's dead-letter stream,
    /// `<prefix>:{<category>}:dlq:<group>`: at once when the entry is not a readable event,
    /// after too many deliveries when its handler kept failing.
    ///
    /// A partitioned category has one dead-letter stream per partition,
    /// `<prefix>:{<category>#<p>}:dlq:<group>`; every `dlq` command covers all of them (the
    /// count Redis records), and `--category <category>#<p>` narrows it to one partition.
    #[command(verbatim_doc_comment)]
    Dlq(DlqArgs),

    /// Show every event stream, consumer group and dead-letter stream under the key prefix
    ///
    /// Finds the category streams `<prefix>:{<category>}` and the dead-letter streams
    /// `<prefix>:{<category>}:dlq:<group>` with SCAN (never KEYS) and prints:
    ///   streams     length, time of the first and the last entry
    ///   groups      consumers, lag (entries not yet delivered to the group; `?` when Redis
    ///               cannot tell), pending entries (delivered, not acknowledged), how long
    ///               the oldest pending entry has waited since its last delivery, and the
    ///               group's dead letters
    ///   consumers   pending entries and idle time of each consumer of each group
    /// and the dead letters of groups that are no longer on their stream.
    ///
    /// With `--json` the same is printed as one JSON object: `prefix`; `streams`, each with
    /// `stream`, `category`, `length`, `firstEntry` and `lastEntry` (`id`, `at`),
    /// `lastGeneratedId`, `entriesAdded` and `groups`, each with `group`, `lag` (null when
    /// unknown), `pending`, `oldestPending` (`id`, `consumer`, `idleMs`, `deliveries`),
    /// `lastDeliveredId`, `entriesRead`, `consumers` (`name`, `pending`, `idleMs`,
    /// `inactiveMs`) and `deadLetters`; and `deadLetters`, every dead-letter stream with
    /// `stream`, `category`, `group` and `length`.
    #[command(verbatim_doc_comment)]
    Status(StatusArgs),

    /// Serve the web dashboard: streams, groups, lag, dead letters, lookup, catalog, metrics
    ///
    /// Serves pages (no file is loaded from anywhere else: it works without internet) and
    /// their JSON API at http://ADDR/ (`--listen`, 127.0.0.1:7474 by default) until Ctrl-C
    /// or SIGTERM:
    ///   overview     streams, consumer groups, lag, pending, dead letters, throughput
    ///                over the last minutes, refreshed every 2 seconds
    ///   dead letters per group: reason, deliveries, the event with the fields the
    ///                schemas mark sensitive redacted; replay and delete with
    ///                --allow-actions
    ///   lookup       an event by event id or idempotency key: its entries, whether the
    ///                producer claim exists, which groups have a done record
    ///   catalog      the events of `--schemas`: types, fields, versions
    ///   /metrics     Prometheus gauges: stream length, lag, pending, dead letters
    ///
    /// Read-only unless `--allow-actions`. With `--token` (or the environment variable
    /// DOMAIN_EVENTS_DASHBOARD_TOKEN) the API and /metrics need `Authorization: Bearer
    /// TOKEN`; the page asks for it. Allowing actions on an address other than loopback
    /// without a token is refused. docs/dashboard.md documents the API.
    #[command(verbatim_doc_comment)]
    Dashboard(DashboardArgs),

    /// Print a shell completion script
    ///
    /// Install it where your shell looks for completions, e.g.
    ///   bash   domain-events completions bash > ~/.local/share/bash-completion/completions/domain-events
    ///   zsh    domain-events completions zsh > ~/.zfunc/_domain-events
    ///          (with `fpath+=~/.zfunc; autoload -Uz compinit; compinit` in ~/.zshrc)
    ///   fish   domain-events completions fish > ~/.config/fish/completions/domain-events.fish
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),

    /// The transactional outbox on PostgreSQL: migrate, status, relay, dead rows
    ///
    /// Services write events into an outbox table in the same transaction as their business
    /// change (crate domain-events-outbox); `outbox relay` publishes the committed rows. Every
    /// command takes `--postgres URL` or `$DOMAIN_EVENTS_POSTGRES_URL` (prefer the variable),
    /// and `--schema`/`--table` for a table other than public.domain_events_outbox. Passwords
    /// are never printed.
    #[command(verbatim_doc_comment)]
    Outbox(OutboxArgs),
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
    pub fn load(&self) -> Result<Catalog, Error> {
        Catalog::load(&self.schemas).map_err(|diagnostics| Error::Schema {
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
        Command::Diff(args) => diff::run(&args, out),
        Command::Emit(args) => emit::run(&args, out),
        Command::Tail(args) => tail::run(&args, out),
        Command::Dlq(args) => dlq::run(&args, out),
        Command::Status(args) => status::run(&args, out),
        Command::Dashboard(args) => dashboard::run(&args, out),
        Command::Completions(args) => completions::run(&args, out),
        Command::Outbox(args) => outbox::run(&args, out),
    }
}

/// Writes one line of output, turning a closed stdout into an [`Error`].
pub(crate) fn say(out: &mut dyn Write, line: std::fmt::Arguments<'_>) -> Result<(), Error> {
    writeln!(out, "{line}").map_err(Error::Output)
}
