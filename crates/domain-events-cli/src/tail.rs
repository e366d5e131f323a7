//! `domain-events tail`: consume the events of some categories as a consumer group and print them.
//!
//! The events go through the Redis consumer runtime like any service's: a raw handler
//! ([`Handlers::on_raw`]) prints each one, and the runtime acknowledges it and writes the group's
//! done record only after the line was written, so an event that could not be printed stays
//! pending for the group.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::builder::NonEmptyStringValueParser;
use domain_events::{ConsumerStats, EventInfo, HandlerError, Handlers, RawEnvelope, Shutdown};
use domain_events_redis::{RedisConsumer, RedisTransport, StartFrom};
use tokio::sync::{mpsc, oneshot};

use crate::payload_check::Checker;
use crate::redis_args::{block_on, compact_json, event_infos, parse_category};
use crate::{Error, RedisArgs, SchemaArgs, TransportArgs};

/// The options of `domain-events tail` (its help text is on [`crate::Command::Tail`]).
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// Where the streams are.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Redis Streams or BullMQ.
    #[command(flatten)]
    pub transport: TransportArgs,

    /// Consumer group to read as
    #[arg(long, value_name = "GROUP", value_parser = NonEmptyStringValueParser::new())]
    pub group: String,

    /// Category to read (repeat for several); default: every category of `--schemas`
    #[arg(long = "category", value_name = "CATEGORY", value_parser = parse_category)]
    pub categories: Vec<String>,

    /// The schema folder, read only for its categories when no `--category` is given.
    #[command(flatten)]
    pub schema: SchemaArgs,

    /// Exit after printing this many events; default: run until interrupted
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Where a group that does not exist yet starts reading
    #[arg(long, value_name = "WHERE", value_enum, default_value_t = TailFrom::Beginning)]
    pub from: TailFrom,

    /// Consumer name within the group; default: HOSTNAME-PID-RANDOM
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub consumer: Option<String>,

    /// Print the values of fields the schemas mark sensitive; default: `"[redacted]"`
    #[arg(long)]
    pub show_sensitive: bool,
}

/// Where `tail` creates a consumer group that does not exist yet. A group that exists keeps its
/// position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TailFrom {
    /// At the first entry still in each stream, as the runtime's consumers do
    Beginning,
    /// After the last entry: only events appended from now on
    New,
}

impl From<TailFrom> for StartFrom {
    fn from(from: TailFrom) -> Self {
        match from {
            TailFrom::Beginning => StartFrom::Beginning,
            TailFrom::New => StartFrom::NewOnly,
        }
    }
}

/// One event's line, handed from the handler to the printer, with the channel on which the
/// printer says whether it was written.
pub(crate) struct Line {
    text: String,
    written: oneshot::Sender<bool>,
}

pub(crate) fn run(args: &TailArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    // Everything about the schemas is settled before anything touches Redis.
    let plan = Plan::new(args)?;
    if args.transport.selects_bullmq()? {
        return crate::bullmq::tail(args, plan, out);
    }
    let config = args.redis.config()?;
    block_on(tail(args, config, plan, out))?
}

/// What `tail` reads and how it checks it: the categories (those given, each declared by the
/// schema folder; else all of them) and the folder's event schemas.
pub(crate) struct Plan {
    pub(crate) categories: Vec<String>,
    /// Every version of the events of those categories: what the partition counts Redis records
    /// for them are checked against.
    events: Vec<EventInfo>,
    checker: Arc<Checker>,
    show_sensitive: bool,
}

impl Plan {
    pub(crate) fn new(args: &TailArgs) -> Result<Self, Error> {
        let catalog = args.schema.load()?;
        let declared: Vec<String> = catalog.categories.iter().map(|c| c.name.clone()).collect();
        let categories = if args.categories.is_empty() {
            declared
        } else {
            let mut given = args.categories.clone();
            given.sort();
            given.dedup();
            if let Some(unknown) = given.iter().find(|c| !declared.contains(c)) {
                return Err(Error::UnknownCategory {
                    category: unknown.clone(),
                    dir: args.schema.schemas.clone(),
                    declared,
                });
            }
            given
        };
        Ok(Self {
            events: event_infos(&catalog, &categories),
            categories,
            checker: Arc::new(Checker::new(catalog)),
            show_sensitive: args.show_sensitive,
        })
    }
}

async fn tail(
    args: &TailArgs,
    config: domain_events_redis::RedisConfig,
    plan: Plan,
    out: &mut dyn Write,
) -> Result<ExitCode, Error> {
    // The consumer waits for an unreachable Redis; a command-line tool had better say so at once.
    RedisTransport::new(config.clone())?.ping().await?;
    // A partitioned category is read on every partition, as the services' consumers read it.
    let config = config.with_recorded_partitions(&plan.events).await?;

    let (handlers, mut printer) = printing_handlers(plan);
    let mut builder = RedisConsumer::builder(config, args.group.clone(), handlers)
        // One event at a time: lines come out in stream order, and `--count` stops exactly.
        .concurrency(1)
        .start_from(args.from.into());
    if let Some(name) = &args.consumer {
        builder = builder.consumer_name(name.clone());
    }
    let consumer = builder.build()?;
    let stop = consumer.shutdown_handle();
    // Stopping: an event not printed yet stays pending for the group.
    let stats =
        print_until_done(consumer.run(), &mut printer, out, args.count, &stop, false).await?;
    let dead = stats.poison + stats.failed;
    if dead > 0 {
        eprintln!(
            "note: {dead} {} of group `{}` could not be handled and went to its dead letters; \
             see `domain-events dlq list --group {}`",
            if dead == 1 { "entry" } else { "entries" },
            args.group,
            args.group
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Handlers that pass every event of the plan's categories to the printer, as one compact JSON
/// line, and succeed only once the printer wrote it: so the consumer acknowledges exactly what was
/// printed. An event the schema folder does not declare, or whose payload breaks its schema, is
/// poison, as for a service's consumer: it goes to the group's dead letters (a failed job on
/// BullMQ), and a line on stderr says so.
pub(crate) fn printing_handlers(plan: Plan) -> (Handlers, mpsc::Receiver<Line>) {
    let Plan {
        categories,
        checker,
        show_sensitive,
        events: _,
    } = plan;
    // Handlers name their categories as `&'static str`, as generated code has them. This process
    // runs one consumer and exits, so leaking a few short names costs nothing.
    let categories = categories
        .into_iter()
        .map(|name| &*Box::leak(name.into_boxed_str()));
    let (lines, printer) = mpsc::channel::<Line>(1);
    let check = checker.clone();
    let handlers = Handlers::new()
        .checking(move |raw| {
            check.check(raw).inspect_err(|error| {
                eprintln!(
                    "tail: event {} ({}) is poison, not printed, dead-lettered: {error}",
                    raw.event_id, raw.event_type
                );
            })
        })
        .on_raw(categories, move |event: Arc<RawEnvelope>| {
            let lines = lines.clone();
            let checker = checker.clone();
            async move {
                let text = if show_sensitive {
                    // The payload stays as received; the envelope's fields in contract order.
                    serde_json::to_string(&*event)
                } else {
                    redacted(&checker, &event)
                }
                .map_err(HandlerError::from_error)?;
                let (written, confirmed) = oneshot::channel();
                let line = Line {
                    text: compact_json(&text),
                    written,
                };
                lines
                    .send(line)
                    .await
                    .map_err(|_| HandlerError::msg("tail is stopping"))?;
                match confirmed.await {
                    Ok(true) => Ok(()),
                    _ => Err(HandlerError::msg("the event was not printed")),
                }
            }
        });
    (handlers, printer)
}

/// `event` as JSON with the values of its sensitive fields replaced. An event without sensitive
/// fields is written as received; one with them has its payload written again (its keys sorted).
fn redacted(checker: &Checker, event: &RawEnvelope) -> Result<String, serde_json::Error> {
    let mut payload: serde_json::Value = serde_json::from_str(event.payload.get())?;
    let before = payload.clone();
    checker.redact(event, &mut payload);
    if payload == before {
        return serde_json::to_string(event);
    }
    let payload = serde_json::value::to_raw_value(&payload)?;
    serde_json::to_string(&event.with_payload(payload))
}

/// Prints the lines of a running consumer until it ends: after `count` lines, on Ctrl-C or
/// `SIGTERM`, or when writing fails. `print_while_stopping` says whether a line that arrives
/// after the stop was asked for is still printed (or refused, so its event stays pending).
pub(crate) async fn print_until_done<E>(
    run: impl Future<Output = Result<ConsumerStats, E>>,
    printer: &mut mpsc::Receiver<Line>,
    out: &mut dyn Write,
    count: Option<u64>,
    stop: &Shutdown,
    print_while_stopping: bool,
) -> Result<ConsumerStats, Error>
where
    Error: From<E>,
{
    tokio::pin!(run);
    let interrupted = interrupted();
    tokio::pin!(interrupted);
    let mut printed = 0u64;
    let mut failure = None;
    let mut open = true;
    let stats = loop {
        tokio::select! {
            result = &mut run => break result?,
            line = printer.recv(), if open => {
                let Some(Line { text, written }) = line else {
                    open = false;
                    continue;
                };
                if stop.is_triggered() && !print_while_stopping {
                    let _ = written.send(false);
                    continue;
                }
                match writeln!(out, "{text}").and_then(|()| out.flush()) {
                    Ok(()) => {
                        let _ = written.send(true);
                        printed += 1;
                        if count.is_some_and(|count| printed >= count) {
                            stop.trigger();
                        }
                    }
                    Err(error) => {
                        let _ = written.send(false);
                        failure = Some(error);
                        stop.trigger();
                    }
                }
            }
            () = &mut interrupted, if !stop.is_triggered() => stop.trigger(),
        }
    };
    match failure {
        Some(error) => Err(Error::Output(error)),
        None => Ok(stats),
    }
}

/// Completes on Ctrl-C or, on Unix, `SIGTERM`; never if the signals cannot be watched.
pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    watched = tokio::signal::ctrl_c() => {
                        if watched.is_err() {
                            terminate.recv().await;
                        }
                    }
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
