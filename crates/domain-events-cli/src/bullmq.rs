//! `--transport bullmq` for `emit` and `tail`: the events as BullMQ jobs (docs/contract.md section 5)
//! in the queue the platform's Node.js services consume, instead of Redis streams.
//!
//! `emit` adds one job through [`BullmqTransport`]; `tail` consumes the queue as a Rust BullMQ
//! worker ([`BullmqConsumer`]) and prints each job's envelope as one JSON line.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use domain_events::Transport;
use domain_events_bullmq::{
    BullmqConfig, BullmqConsumer, BullmqTransport, DEFAULT_BULLMQ_PREFIX, DEFAULT_QUEUE,
};
use domain_events_redis::{RedisConfig, RedisTransport};

use crate::redis_args::block_on;
use crate::tail::{Plan, print_until_done, printing_handlers};
use crate::{Error, RedisArgs, TailArgs};

/// Where `emit` publishes and `tail` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TransportKind {
    /// Redis Streams, one stream per category
    #[default]
    Redis,
    /// BullMQ jobs for Node.js services: name = type, data = envelope
    Bullmq,
}

/// The transport options of `emit` and `tail`, flattened into both.
///
/// `tail --transport bullmq` is a worker of the queue: BullMQ gives each job to one worker, so
/// the jobs it prints are taken from the services that consume the queue.
#[derive(Debug, Clone, clap::Args)]
pub struct TransportArgs {
    /// Where events go (`emit`) or come from (`tail`)
    #[arg(long, value_name = "TRANSPORT", value_enum, default_value_t = TransportKind::Redis)]
    pub transport: TransportKind,

    /// BullMQ queue (with --transport bullmq) [default: DOMAIN_EVENTS]
    #[arg(long, value_name = "NAME")]
    pub queue: Option<String>,

    /// BullMQ key prefix; a hash tag like {bull} on Redis Cluster [default: bull]
    #[arg(long, value_name = "PREFIX")]
    pub bullmq_prefix: Option<String>,
}

impl TransportArgs {
    /// Whether BullMQ is selected; an error when BullMQ options come with another transport.
    pub(crate) fn selects_bullmq(&self) -> Result<bool, Error> {
        match self.transport {
            TransportKind::Bullmq => Ok(true),
            TransportKind::Redis if self.queue.is_some() || self.bullmq_prefix.is_some() => {
                Err(domain_events_bullmq::Error::Config(
                    "`--queue` and `--bullmq-prefix` apply only with `--transport bullmq`".into(),
                )
                .into())
            }
            TransportKind::Redis => Ok(false),
        }
    }

    /// The BullMQ configuration: the connection of `redis`, the queue and BullMQ prefix given (or
    /// the contract's defaults); the consumer's done records under `--key-prefix`.
    pub(crate) fn bullmq_config(&self, redis: &RedisArgs) -> Result<BullmqConfig, Error> {
        Ok(BullmqConfig::from_redis(redis.config()?)
            .queue(self.queue.as_deref().unwrap_or(DEFAULT_QUEUE))
            .bullmq_prefix(
                self.bullmq_prefix
                    .as_deref()
                    .unwrap_or(DEFAULT_BULLMQ_PREFIX),
            ))
    }

    /// The selected transport; `redis_config` is the Redis Streams configuration of `redis`.
    /// Call inside the Tokio runtime.
    pub(crate) fn transport(
        &self,
        redis: &RedisArgs,
        redis_config: RedisConfig,
    ) -> Result<Box<dyn Transport>, Error> {
        if self.selects_bullmq()? {
            Ok(Box::new(BullmqTransport::new(self.bullmq_config(redis)?)?))
        } else {
            Ok(Box::new(RedisTransport::new(redis_config)?))
        }
    }
}

/// `tail --transport bullmq`.
pub(crate) fn tail(args: &TailArgs, plan: Plan, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let config = args.transport.bullmq_config(&args.redis)?;
    block_on(tail_jobs(args, config, plan, out))?
}

async fn tail_jobs(
    args: &TailArgs,
    config: BullmqConfig,
    plan: Plan,
    out: &mut dyn Write,
) -> Result<ExitCode, Error> {
    // The consumer waits for an unreachable Redis; a command-line tool had better say so at once.
    BullmqTransport::new(config.clone())?.connect().await?;
    let queue = config.queue_key();

    let (handlers, mut printer) = printing_handlers(plan);
    let mut builder = BullmqConsumer::builder(config, args.group.clone(), handlers)
        // One job at a time: lines come out in queue order, and `--count` stops exactly (a job
        // BullMQ hands over while stopping goes back to the queue unstarted).
        .concurrency(1)
        .drain_delay(Duration::from_secs(1));
    if let Some(name) = &args.consumer {
        builder = builder.worker_name(name.clone());
    }
    let consumer = builder.build()?;
    let stop = consumer.shutdown_handle();
    // A job in flight is printed even while stopping: failing it would cost one of its attempts.
    let stats =
        print_until_done(consumer.run(), &mut printer, out, args.count, &stop, true).await?;
    let dead = stats.poison + stats.failed;
    if dead > 0 {
        eprintln!(
            "note: {dead} {} of queue `{queue}` could not be handled and {} failed in BullMQ; \
             see the queue's failed jobs",
            if dead == 1 { "job" } else { "jobs" },
            if dead == 1 { "was" } else { "were" },
        );
    }
    if stats.unhandled > 0 {
        eprintln!(
            "note: {} {} of other categories {} taken from queue `{queue}` and completed without \
             being printed",
            stats.unhandled,
            if stats.unhandled == 1 { "job" } else { "jobs" },
            if stats.unhandled == 1 { "was" } else { "were" },
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(transport: TransportKind, queue: Option<&str>) -> TransportArgs {
        TransportArgs {
            transport,
            queue: queue.map(str::to_owned),
            bullmq_prefix: None,
        }
    }

    #[test]
    fn bullmq_options_need_the_bullmq_transport() {
        assert!(
            !args(TransportKind::Redis, None)
                .selects_bullmq()
                .expect("ok")
        );
        assert!(
            args(TransportKind::Bullmq, Some("Q"))
                .selects_bullmq()
                .expect("ok")
        );
        let error = args(TransportKind::Redis, Some("Q"))
            .selects_bullmq()
            .expect_err("queue without bullmq");
        assert!(error.to_string().contains("--transport bullmq"), "{error}");
    }

    #[test]
    fn the_contract_defaults_apply() {
        let redis = RedisArgs {
            url: "redis://app:s3cret@127.0.0.1:6379".into(),
            key_prefix: "events".into(),
        };
        let config = args(TransportKind::Bullmq, None)
            .bullmq_config(&redis)
            .expect("valid");
        assert_eq!(config.queue_key(), "bull:DOMAIN_EVENTS");
        assert_eq!(config.done_key("shop", "g", "k"), "events:{shop}:done:g:k");
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
