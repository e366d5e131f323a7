//! `domain-events outbox migrate | status | relay | dead list | dead retry`: the PostgreSQL outbox
//! of `domain-events-outbox`, at `--postgres URL` (or `$DOMAIN_EVENTS_POSTGRES_URL`).

use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use domain_events::{Transport, Uuid};
use domain_events_outbox::{
    DeadSelection, OutboxStatus, OutboxTable, Relay, dead_rows, migrate, retry_dead, status,
};
use domain_events_redis::redact_url;
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::redis_args::block_on;
use crate::tail::interrupted;
use crate::{Error, RedisArgs, TransportArgs, say};

/// The environment variable `--postgres` falls back to. Prefer it to the option: a command line is
/// visible to every user of the machine, and the URL may hold a password.
pub const POSTGRES_URL_ENV: &str = "DOMAIN_EVENTS_POSTGRES_URL";

/// `outbox` and what to do with it.
#[derive(Debug, clap::Args)]
pub struct OutboxArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: OutboxAction,
}

/// The `outbox` commands.
#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Create the outbox table, its indexes, trigger and relays table where missing
    ///
    /// Idempotent, and safe while services write: what exists is left alone.
    #[command(verbatim_doc_comment)]
    Migrate(PostgresArgs),

    /// Show pending rows, the age of the oldest, dead rows and the relays seen
    #[command(verbatim_doc_comment)]
    Status(OutboxStatusArgs),

    /// Publish committed outbox rows to Redis Streams (or BullMQ) until Ctrl-C or SIGTERM
    ///
    /// Wakes on the table's LISTEN/NOTIFY channel and polls besides. Any number of relays may
    /// run at once: they take turns batch by batch, each event is published once, and events
    /// of one correlation id in commit order. A row the transport rejects for good is marked
    /// dead (see `outbox dead list`); transient failures are retried. On Ctrl-C or SIGTERM
    /// the batch in flight is finished, then one JSON line with the counts is printed.
    #[command(verbatim_doc_comment)]
    Relay(OutboxRelayArgs),

    /// List or retry the rows the transport rejected for good
    #[command(subcommand)]
    Dead(OutboxDeadAction),
}

/// `outbox dead list | retry`.
#[derive(Debug, Subcommand)]
pub enum OutboxDeadAction {
    /// Print the dead rows as JSON lines, oldest first
    List(OutboxDeadListArgs),
    /// Make dead rows pending again (they keep their place in the sequence)
    Retry(OutboxDeadRetryArgs),
}

/// Where PostgreSQL and the outbox table are; flattened into every `outbox` command.
///
/// `Debug` shows the URL with its password replaced by `***`.
#[derive(Clone, clap::Args)]
pub struct PostgresArgs {
    /// PostgreSQL URL, like postgres://user:password@host:5432/database
    #[arg(
        long = "postgres",
        value_name = "URL",
        env = POSTGRES_URL_ENV,
        hide_env_values = true
    )]
    pub postgres_url: String,

    /// Schema of the outbox table
    #[arg(long, value_name = "NAME", default_value = domain_events_outbox::DEFAULT_SCHEMA)]
    pub schema: String,

    /// Name of the outbox table
    #[arg(long, value_name = "NAME", default_value = domain_events_outbox::DEFAULT_TABLE)]
    pub table: String,
}

/// `outbox status`.
#[derive(Debug, clap::Args)]
pub struct OutboxStatusArgs {
    /// Where the outbox is.
    #[command(flatten)]
    pub postgres: PostgresArgs,

    /// Print one JSON object instead of lines for people
    #[arg(long)]
    pub json: bool,
}

/// `outbox relay`.
#[derive(Debug, clap::Args)]
pub struct OutboxRelayArgs {
    /// Where the outbox is.
    #[command(flatten)]
    pub postgres: PostgresArgs,

    /// Where to publish.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Redis Streams or BullMQ.
    #[command(flatten)]
    pub transport: TransportArgs,

    /// Rows per batch (one transaction, one transport call)
    #[arg(long, value_name = "N", default_value_t = domain_events_outbox::relay::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,

    /// How often to look for rows without a notification, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub poll_interval_ms: u64,

    /// How long published rows are kept, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub retention_secs: u64,
}

/// `outbox dead list`.
#[derive(Debug, clap::Args)]
pub struct OutboxDeadListArgs {
    /// Where the outbox is.
    #[command(flatten)]
    pub postgres: PostgresArgs,

    /// Print at most this many rows
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: i64,
}

/// `outbox dead retry`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
pub struct OutboxDeadRetryArgs {
    /// Where the outbox is.
    #[command(flatten)]
    pub postgres: PostgresArgs,

    /// The eventId of a dead row to retry (repeatable)
    #[arg(long, value_name = "EVENT_ID")]
    pub id: Vec<Uuid>,

    /// Retry every dead row
    #[arg(long)]
    pub all: bool,
}

impl PostgresArgs {
    fn table(&self) -> Result<OutboxTable, Error> {
        Ok(OutboxTable::new(&self.schema, &self.table)?)
    }

    /// A small pool: the commands are one-shot, the relay needs one connection to LISTEN and one
    /// per batch. An invalid URL is an error that shows the URL redacted.
    async fn pool(&self, size: u32) -> Result<PgPool, Error> {
        let options =
            PgConnectOptions::from_str(&self.postgres_url).map_err(|error| Error::PostgresUrl {
                url: redact_url(&self.postgres_url),
                reason: error.to_string(),
            })?;
        Ok(PgPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(domain_events_outbox::Error::from)?)
    }
}

impl fmt::Debug for PostgresArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresArgs")
            .field("url", &redact_url(&self.postgres_url))
            .field("schema", &self.schema)
            .field("table", &self.table)
            .finish()
    }
}

/// Runs an `outbox` command.
pub(crate) fn run(args: &OutboxArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    block_on(async {
        match &args.action {
            OutboxAction::Migrate(pg) => {
                let table = pg.table()?;
                migrate(&pg.pool(1).await?, &table).await?;
                say(out, format_args!("ok: outbox {table} is migrated"))?;
            }
            OutboxAction::Status(args) => {
                let table = args.postgres.table()?;
                let state = status(&args.postgres.pool(1).await?, &table).await?;
                print_status(out, &table, &state, args.json)?;
            }
            OutboxAction::Relay(args) => relay(args, out).await?,
            OutboxAction::Dead(OutboxDeadAction::List(args)) => {
                let table = args.postgres.table()?;
                for row in dead_rows(&args.postgres.pool(1).await?, &table, args.limit).await? {
                    let line = DeadLine {
                        sequence: row.sequence,
                        event_id: row.event_id,
                        event_type: &row.event_type,
                        idempotency_key: &row.idempotency_key,
                        correlation_id: &row.correlation_id,
                        attempts: row.attempts,
                        reason: &row.reason,
                        dead_at: &row.dead_at,
                    };
                    say(out, format_args!("{}", json(&line)?))?;
                }
            }
            OutboxAction::Dead(OutboxDeadAction::Retry(args)) => {
                let table = args.postgres.table()?;
                let which = if args.all {
                    DeadSelection::All
                } else {
                    DeadSelection::Events(args.id.clone())
                };
                let revived = retry_dead(&args.postgres.pool(1).await?, &table, &which).await?;
                say(
                    out,
                    format_args!("ok: {revived} dead rows are pending again"),
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })?
}

async fn relay(args: &OutboxRelayArgs, out: &mut dyn Write) -> Result<(), Error> {
    let table = args.postgres.table()?;
    let pool = args.postgres.pool(3).await?;
    let transport: Arc<dyn Transport> = args
        .transport
        .transport(&args.redis, args.redis.config()?)?
        .into();
    let relay = Relay::builder(pool, transport)
        .table(table.clone())
        .batch_size(args.batch_size)
        .poll_interval(Duration::from_millis(args.poll_interval_ms))
        .retention(Duration::from_secs(args.retention_secs))
        .build();
    eprintln!(
        "relay {} publishing outbox {table}; Ctrl-C or SIGTERM stops it",
        relay.relay_id()
    );
    let stats = relay.run_until(interrupted()).await;
    let line = StatsLine {
        published: stats.published,
        duplicates: stats.duplicates,
        dead: stats.dead,
        transport_errors: stats.transport_errors,
        database_errors: stats.database_errors,
    };
    say(out, format_args!("{}", json(&line)?))
}

fn print_status(
    out: &mut dyn Write,
    table: &OutboxTable,
    state: &OutboxStatus,
    as_json: bool,
) -> Result<(), Error> {
    if as_json {
        let status = StatusJson {
            table: table.to_string(),
            pending: state.pending,
            oldest_pending_age_secs: state.oldest_pending_age.map(|age| age.as_secs_f64()),
            dead: state.dead,
            published: state.published,
            relays: state
                .relays
                .iter()
                .map(|r| RelayJson {
                    relay_id: &r.relay_id,
                    host: &r.host,
                    pid: r.pid,
                    last_seen_secs: r.last_seen.as_secs_f64(),
                    stopped: r.stopped,
                })
                .collect(),
        };
        return say(out, format_args!("{}", json(&status)?));
    }
    say(out, format_args!("outbox: {table}"))?;
    say(out, format_args!("pending: {}", state.pending))?;
    match state.oldest_pending_age {
        Some(age) => say(
            out,
            format_args!("oldest pending: {:.1} s", age.as_secs_f64()),
        )?,
        None => say(out, format_args!("oldest pending: none"))?,
    }
    say(out, format_args!("dead: {}", state.dead))?;
    say(out, format_args!("published (kept): {}", state.published))?;
    say(out, format_args!("relays seen: {}", state.relays.len()))?;
    for r in &state.relays {
        say(
            out,
            format_args!(
                "  {} (host {}, pid {}): last seen {:.1} s ago, {}",
                r.relay_id,
                r.host,
                r.pid,
                r.last_seen.as_secs_f64(),
                if r.stopped { "stopped" } else { "running" }
            ),
        )?;
    }
    Ok(())
}

fn json(value: &impl Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Output(e.into()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadLine<'a> {
    sequence: i64,
    event_id: Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    idempotency_key: &'a str,
    correlation_id: &'a str,
    attempts: i32,
    reason: &'a str,
    dead_at: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsLine {
    published: u64,
    duplicates: u64,
    dead: u64,
    transport_errors: u64,
    database_errors: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson<'a> {
    table: String,
    pending: i64,
    oldest_pending_age_secs: Option<f64>,
    dead: i64,
    published: i64,
    relays: Vec<RelayJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RelayJson<'a> {
    relay_id: &'a str,
    host: &'a str,
    pid: i32,
    last_seen_secs: f64,
    stopped: bool,
}
