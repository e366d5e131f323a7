//! [`BullmqConfig`]: how to reach Redis (the Redis crate's [`ConnectionConfig`], shared with Redis
//! Streams), which BullMQ queue events go to, and the job options that make BullMQ's duplicate-id
//! rule an idempotency window.

use std::fmt;
use std::time::Duration;

use bullmq::options::{RedisConnectionOptions, TlsCerts};
use bullmq::types::{BackoffStrategy, KeepJobs, RemoveOnFinish};
use domain_events_redis::{ConnectionConfig, RedisConfig};

use crate::error::Error;

/// The queue unless configured otherwise: `DOMAIN_EVENTS` (docs/contract.md section 5.1), the
/// queue of the platform's `@Processor('DOMAIN_EVENTS')` consumers; defined once in
/// [`domain_events::wire`].
pub const DEFAULT_QUEUE: &str = domain_events::wire::BULLMQ_QUEUE;
/// The BullMQ key prefix unless configured otherwise: `bull`, BullMQ's own default
/// (docs/contract.md section 5.1); defined once in [`domain_events::wire`].
pub const DEFAULT_BULLMQ_PREFIX: &str = domain_events::wire::BULLMQ_PREFIX;
/// Attempts per job (the first one included) unless configured otherwise: 5.
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// The backoff between attempts unless configured otherwise: exponential from 1 second.
pub const DEFAULT_BACKOFF: Backoff = Backoff::Exponential(Duration::from_secs(1));
/// How long finished jobs are kept unless configured otherwise: 24 hours, the dedup window of
/// docs/contract.md section 5 (the same as the Redis Streams claim TTL).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// How long BullMQ waits before retrying a failed job (the job option `backoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Retry at once.
    None,
    /// Wait the same time before every retry (`{type: "fixed", delay}`).
    Fixed(Duration),
    /// Wait `delay × 2^(attempt−1)` (`{type: "exponential", delay}`).
    Exponential(Duration),
}

impl Backoff {
    fn strategy(self) -> Option<BackoffStrategy> {
        match self {
            Backoff::None => None,
            Backoff::Fixed(delay) => Some(BackoffStrategy::Fixed(millis(delay))),
            Backoff::Exponential(delay) => Some(BackoffStrategy::Exponential(millis(delay))),
        }
    }
}

/// How long BullMQ keeps a finished job (the job options `removeOnComplete` / `removeOnFail`).
///
/// A job's id blocks a second job with the same id only while the job's hash exists, so the
/// retention of finished jobs **is** the producer-side dedup window: an emission of the same
/// idempotency key after its job was removed adds a new job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep finished jobs this long (`{age: <seconds>}`); removal happens lazily, when later jobs
    /// finish. The default, for [`DEFAULT_RETENTION`].
    For(Duration),
    /// Keep the newest `n` finished jobs (`<n>`); the dedup window then depends on the traffic.
    Newest(usize),
    /// Remove a job as soon as it finished (`true`): the dedup window ends at completion.
    Nothing,
    /// Never remove finished jobs (`false`): the dedup window never ends and Redis grows.
    Forever,
}

impl Retention {
    pub(crate) fn policy(self) -> RemoveOnFinish {
        match self {
            // BullMQ's `age` is in seconds (moveToFinished: `timestamp - maxAge * 1000`).
            Retention::For(age) => RemoveOnFinish::Options(KeepJobs {
                age: Some(age.as_secs().max(1)),
                count: None,
                limit: None,
            }),
            Retention::Newest(count) => RemoveOnFinish::Count(count),
            Retention::Nothing => RemoveOnFinish::Bool(true),
            Retention::Forever => RemoveOnFinish::Bool(false),
        }
    }
}

/// How to reach Redis and which BullMQ queue events go to, with the options of every job.
///
/// ```
/// use std::time::Duration;
/// use domain_events_bullmq::{Backoff, BullmqConfig, Retention};
///
/// let config = BullmqConfig::new("redis://app:s3cret@127.0.0.1:6379/0")
///     .unwrap()
///     .bullmq_prefix("{bull}") // a hash tag, for Redis Cluster
///     .attempts(3)
///     .backoff(Backoff::Fixed(Duration::from_secs(2)))
///     .remove_on_complete(Retention::For(Duration::from_secs(48 * 3600)))
///     .connect_timeout(Duration::from_secs(5));
/// assert_eq!(config.queue_name(), "DOMAIN_EVENTS");
/// assert_eq!(config.bullmq_prefix_value(), "{bull}");
/// assert_eq!(config.queue_key(), "{bull}:DOMAIN_EVENTS");
/// assert_eq!(config.key_prefix_value(), "domain-events"); // of the done records
/// assert_eq!(config.redacted_url(), "redis://app:***@127.0.0.1:6379/0");
/// assert_eq!(config.connection().connect_timeout_value(), Duration::from_secs(5));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
///
/// The connection (URL forms, TLS, timeouts and their defaults, redaction, the reachability
/// probe) is the Redis crate's [`ConnectionConfig`], the same as for Redis Streams:
/// `redis://host:port/db`, `rediss://` for TLS, `redis://user:password@host`, `redis+unix:///path`.
/// The password never appears in `Debug` output, logs or errors.
///
/// Two prefixes: BullMQ's ([`bullmq_prefix`](Self::bullmq_prefix), default `bull`) names the keys
/// of the queue; the key prefix of the Redis Streams layout ([`key_prefix`](Self::key_prefix),
/// default `domain-events`) names the consumer's done records (one per consuming service and
/// idempotency key), which live outside the queue at the key of docs/contract.md section 4,
/// `<key prefix>:{<category>}:done:<group>:<key>`, so a service that consumes the same events over
/// Redis Streams and over BullMQ with one group name handles each key once.
#[derive(Clone)]
pub struct BullmqConfig {
    /// The connection, shared with Redis Streams; the done-record layout and TTL.
    redis: RedisConfig,
    queue: String,
    bullmq_prefix: String,
    attempts: u32,
    backoff: Backoff,
    on_complete: Retention,
    on_fail: Retention,
    v5_pause_guard: bool,
}

impl BullmqConfig {
    /// Parses `url` (see [`ConnectionConfig`] for the forms) with defaults for everything else.
    /// The error shows the URL redacted.
    pub fn new(url: &str) -> Result<Self, Error> {
        Ok(Self::from_redis(RedisConfig::new(url)?))
    }

    /// The BullMQ settings on `redis`'s connection, with its key prefix and done TTL for the
    /// consumer's done records, and defaults for everything else.
    ///
    /// ```
    /// use std::time::Duration;
    /// use domain_events_bullmq::BullmqConfig;
    /// use domain_events_redis::RedisConfig;
    ///
    /// let redis = RedisConfig::new("redis://127.0.0.1:6379")
    ///     .unwrap()
    ///     .key_prefix("events")
    ///     .connect_timeout(Duration::from_secs(1));
    /// let config = BullmqConfig::from_redis(redis);
    /// assert_eq!(config.done_key("image", "crm", "k"), "events:{image}:done:crm:k");
    /// assert_eq!(config.connection().connect_timeout_value(), Duration::from_secs(1));
    /// assert_eq!(config.queue_key(), "bull:DOMAIN_EVENTS");
    /// ```
    pub fn from_redis(redis: RedisConfig) -> Self {
        Self {
            redis,
            queue: DEFAULT_QUEUE.to_owned(),
            bullmq_prefix: DEFAULT_BULLMQ_PREFIX.to_owned(),
            attempts: DEFAULT_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
            on_complete: Retention::For(DEFAULT_RETENTION),
            on_fail: Retention::For(DEFAULT_RETENTION),
            v5_pause_guard: true,
        }
    }

    /// Sets the queue name; default [`DEFAULT_QUEUE`]. It must not contain `:`.
    pub fn queue(mut self, name: impl Into<String>) -> Self {
        self.queue = name.into();
        self
    }

    /// Sets BullMQ's key prefix; default [`DEFAULT_BULLMQ_PREFIX`]. It must not contain `:`; on
    /// Redis Cluster it must hold a hash tag such as `{bull}` (or the queue name must), so that all
    /// keys of the queue share a slot: a cluster URL without one is refused with
    /// [`Error::Config`] when the transport or consumer is built. Node.js consumers must use the same prefix (NestJS: `BullModule.forRoot({ prefix })`).
    pub fn bullmq_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.bullmq_prefix = prefix.into();
        self
    }

    /// Sets how many times a job is tried (the first attempt included) before it stays failed;
    /// default [`DEFAULT_ATTEMPTS`], at least 1. Stored in each job, so Node.js workers honour it.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Sets the wait between attempts; default [`DEFAULT_BACKOFF`]. Stored in each job.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets how long completed jobs are kept; default 24 hours ([`DEFAULT_RETENTION`]). This is
    /// the dedup window: see [`Retention`].
    pub fn remove_on_complete(mut self, retention: Retention) -> Self {
        self.on_complete = retention;
        self
    }

    /// Sets how long failed jobs are kept; default 24 hours ([`DEFAULT_RETENTION`]). A failed job
    /// also blocks its id while it is kept.
    pub fn remove_on_fail(mut self, retention: Retention) -> Self {
        self.on_fail = retention;
        self
    }

    /// Whether the transport refuses to add jobs while the queue holds a BullMQ 5 `paused` list;
    /// default `true`.
    ///
    /// BullMQ 5 pauses a queue by renaming its `wait` list to `paused` and resumes it by renaming
    /// `paused` back to `wait`. The BullMQ Rust port runs BullMQ 6 scripts, which always push new
    /// jobs to `wait`; while a BullMQ 5 client holds the queue paused with jobs in its `paused`
    /// list, such a job would be overwritten from the `wait` list at resume and never run (its
    /// hash stays and blocks its id). With the guard, such a batch fails with
    /// [`Error::NotReady`] (a transient error: retry after the queue was resumed). A pause by a
    /// BullMQ 6 client, or a BullMQ 5 pause of an empty queue, leaves no `paused` list and adds
    /// go on.
    ///
    /// The check (`EXISTS` of the `paused` list) travels with the adds, in the same round trip:
    /// it is sent right after them on the same connection, with the read-back of the jobs. When
    /// it finds the list, the jobs the batch stored are removed again (only those whose data is
    /// one of the batch's own events, never a job another emission holds) before the error is
    /// returned. Checking after the adds sees a pause that lands before or between them; what it
    /// cannot see is a pause and its resume both landing between the adds and the check, which
    /// would already have dropped the job.
    pub fn v5_pause_guard(mut self, on: bool) -> Self {
        self.v5_pause_guard = on;
        self
    }

    /// Sets how long connecting may take ([`ConnectionConfig::connect_timeout`]); default
    /// [`DEFAULT_CONNECT_TIMEOUT`](domain_events_redis::DEFAULT_CONNECT_TIMEOUT), as for Redis
    /// Streams.
    ///
    /// The transport and the consumer first check the server with one plain connection and
    /// `PING` ([`ConnectionConfig::probe`]: so a wrong address or password fails fast, with
    /// Redis's reason), then open the BullMQ client's connections within this time again. (The
    /// BullMQ Rust port itself retries a failing first connection 10 times, about 26 seconds, and
    /// does not let that be configured.)
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.redis = self.redis.connect_timeout(timeout);
        self
    }

    /// Sets how long the probe's `PING` may wait for its answer
    /// ([`ConnectionConfig::response_timeout`]); default
    /// [`DEFAULT_RESPONSE_TIMEOUT`](domain_events_redis::DEFAULT_RESPONSE_TIMEOUT), as for Redis
    /// Streams. The BullMQ client's own commands wait up to its fixed 10 seconds.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.redis = self.redis.response_timeout(timeout);
        self
    }

    /// Sets the key prefix of the consumer's done records; default `domain-events`, the key prefix
    /// of the Redis Streams layout (docs/contract.md section 4,
    /// [`DEFAULT_KEY_PREFIX`](domain_events_redis::DEFAULT_KEY_PREFIX)).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis = self.redis.key_prefix(prefix);
        self
    }

    /// Sets how long a consumer's done record lives; default 7 days
    /// ([`domain_events::DEFAULT_DONE_TTL`]). At least one millisecond.
    pub fn done_ttl(mut self, ttl: Duration) -> Self {
        self.redis = self.redis.done_ttl(ttl);
        self
    }

    /// Trusts the certificate authorities of `pem` (PEM, one or more certificates) instead of the
    /// bundled web PKI roots for a `rediss://` URL.
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.redis = self.redis.tls_root_cert(pem);
        self
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        self.redis.redacted_url()
    }

    /// The queue name.
    pub fn queue_name(&self) -> &str {
        &self.queue
    }

    /// BullMQ's key prefix.
    pub fn bullmq_prefix_value(&self) -> &str {
        &self.bullmq_prefix
    }

    /// The key prefix of the consumer's done records.
    pub fn key_prefix_value(&self) -> &str {
        self.redis.key_prefix_value()
    }

    /// The base of every key of the queue: `<bullmq prefix>:<queue>`.
    pub fn queue_key(&self) -> String {
        format!("{}:{}", self.bullmq_prefix, self.queue)
    }

    /// The key of a job's hash: `<bullmq prefix>:<queue>:<job id>`.
    pub fn job_key(&self, job_id: &str) -> String {
        format!("{}:{job_id}", self.queue_key())
    }

    /// Attempts per job.
    pub fn job_attempts(&self) -> u32 {
        self.attempts
    }

    /// The backoff between attempts.
    pub fn job_backoff(&self) -> Backoff {
        self.backoff
    }

    /// How long completed jobs are kept.
    pub fn completed_retention(&self) -> Retention {
        self.on_complete
    }

    /// How long failed jobs are kept.
    pub fn failed_retention(&self) -> Retention {
        self.on_fail
    }

    /// Whether the BullMQ 5 pause guard is on.
    pub fn v5_pause_guard_enabled(&self) -> bool {
        self.v5_pause_guard
    }

    /// The done record of consumer group `group` for `idempotency_key` of an event of
    /// `category`: `<key prefix>:{<category>}:done:<group>:<key>`.
    pub fn done_key(&self, category: &str, group: &str, idempotency_key: &str) -> String {
        self.redis.keys().done(category, group, idempotency_key)
    }

    /// How long done records live.
    pub fn done_ttl_value(&self) -> Duration {
        self.redis.done_ttl_value()
    }

    /// How to reach Redis: the URL, TLS and timeouts, as for Redis Streams.
    pub fn connection(&self) -> &ConnectionConfig {
        self.redis.connection()
    }

    /// The Redis Streams settings behind this configuration: the connection and the done-record
    /// layout and TTL.
    pub fn redis_config(&self) -> &RedisConfig {
        &self.redis
    }

    /// `text` with every form of the password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        self.redis.scrub(text)
    }

    /// Checks the queue name and prefix as BullMQ would, with a clear message.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.queue.is_empty() || self.queue.contains(':') {
            return Err(Error::Config(format!(
                "the BullMQ queue name `{}` must be non-empty and free of `:`",
                self.queue
            )));
        }
        if self.bullmq_prefix.is_empty() || self.bullmq_prefix.contains(':') {
            return Err(Error::Config(format!(
                "the BullMQ key prefix `{}` must be non-empty and free of `:`",
                self.bullmq_prefix
            )));
        }
        if self.connection().is_cluster() && !self.shares_one_slot() {
            return Err(Error::Config(format!(
                "on Redis Cluster every key of a BullMQ queue must hash to one slot: put a hash tag \
                 in the BullMQ prefix (`{{bull}}`) or the queue name (`{{{}}}`); `{}` has none",
                self.queue,
                self.queue_key()
            )));
        }
        Ok(())
    }

    /// Whether every key of the queue (`<bullmq prefix>:<queue>:<suffix>`) hashes to one slot:
    /// the base `<bullmq prefix>:<queue>:` holds a hash tag, a `{` followed by a `}` with
    /// something between them (Redis hashes only the first such tag of a key).
    fn shares_one_slot(&self) -> bool {
        let base = format!("{}:", self.queue_key());
        base.find('{')
            .is_some_and(|open| base[open + 1..].find('}').is_some_and(|length| length > 0))
    }

    /// The job options every emitted job carries (the job id is added per job).
    pub(crate) fn job_options(&self) -> bullmq::JobOptions {
        bullmq::JobOptions {
            attempts: Some(self.attempts),
            backoff: self.backoff.strategy(),
            remove_on_complete: Some(self.on_complete.policy()),
            remove_on_fail: Some(self.on_fail.policy()),
            ..bullmq::JobOptions::default()
        }
    }

    /// Checks that Redis answers ([`ConnectionConfig::probe`]): a fast check with Redis's own
    /// reason, before the BullMQ client (which retries for long) connects.
    pub(crate) async fn probe(&self) -> Result<(), Error> {
        Ok(self.connection().probe().await?)
    }

    /// Runs `connect` (a BullMQ client connecting) within the connect timeout.
    pub(crate) async fn within_connect_timeout<T>(
        &self,
        connect: impl std::future::Future<Output = Result<T, bullmq::Error>>,
    ) -> Result<T, Error> {
        let limit = self.connection().connect_timeout_value();
        match tokio::time::timeout(limit, connect).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Error::from_bullmq(&error, self)),
            Err(_) => Err(self
                .connection()
                .unavailable(format!(
                    "the BullMQ client did not connect within {limit:?}"
                ))
                .into()),
        }
    }

    /// The connection options of the BullMQ client (they hold the password; their `Debug`
    /// redacts it).
    pub(crate) fn connection_options(&self) -> RedisConnectionOptions {
        let connection = self.connection();
        connection.install_tls_provider();
        let options = if connection.is_cluster() {
            RedisConnectionOptions::new().cluster_nodes(connection.seed_urls_with_password())
        } else {
            RedisConnectionOptions::new().url(connection.url_with_password())
        };
        match connection.tls_root_cert_value() {
            Some(pem) => options.tls_certs(TlsCerts {
                root_cert: Some(pem.to_vec()),
                client_cert: None,
                client_key: None,
            }),
            None => options,
        }
    }
}

impl fmt::Debug for BullmqConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BullmqConfig")
            .field("connection", self.connection())
            .field("queue", &self.queue)
            .field("bullmq_prefix", &self.bullmq_prefix)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .field("remove_on_complete", &self.on_complete)
            .field("remove_on_fail", &self.on_fail)
            .field("v5_pause_guard", &self.v5_pause_guard)
            .field("key_prefix", &self.redis.key_prefix_value())
            .field("done_ttl", &self.redis.done_ttl_value())
            .finish()
    }
}

/// Whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let config = BullmqConfig::new("redis://127.0.0.1:6379").expect("valid");
        assert_eq!(config.queue_name(), "DOMAIN_EVENTS");
        assert_eq!(config.bullmq_prefix_value(), "bull");
        assert_eq!(config.key_prefix_value(), "domain-events");
        assert_eq!(config.queue_key(), "bull:DOMAIN_EVENTS");
        assert_eq!(config.job_key("ik-a%3Ab"), "bull:DOMAIN_EVENTS:ik-a%3Ab");
        assert_eq!(
            config.completed_retention(),
            Retention::For(DEFAULT_RETENTION)
        );
        assert_eq!(config.failed_retention(), Retention::For(DEFAULT_RETENTION));
        assert_eq!(DEFAULT_RETENTION, domain_events::DEFAULT_CLAIM_TTL);
        assert_eq!(config.job_attempts(), DEFAULT_ATTEMPTS);
        assert!(config.v5_pause_guard_enabled());
        assert_eq!(
            config.done_key("image", "crm", "image_complete:v1"),
            "domain-events:{image}:done:crm:image_complete:v1"
        );
        assert_eq!(config.done_ttl_value(), domain_events::DEFAULT_DONE_TTL);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_connection_and_its_defaults_are_those_of_redis_streams() {
        let url = "rediss://app:pw@cache.example:6380/2";
        let bullmq = BullmqConfig::new(url).expect("valid");
        let redis = RedisConfig::new(url).expect("valid");
        let (ours, theirs) = (bullmq.connection(), redis.connection());
        assert_eq!(
            format!("{ours:?}"),
            format!("{theirs:?}"),
            "same URL, timeouts, TLS"
        );
        assert_eq!(
            ours.connect_timeout_value(),
            domain_events_redis::DEFAULT_CONNECT_TIMEOUT
        );
        assert_eq!(
            ours.response_timeout_value(),
            domain_events_redis::DEFAULT_RESPONSE_TIMEOUT
        );
        assert_eq!(ours.url_with_password(), url);
        assert!(ours.is_tls());
        assert_eq!(bullmq.key_prefix_value(), redis.key_prefix_value());
        assert_eq!(bullmq.done_ttl_value(), redis.done_ttl_value());
        assert_eq!(format!("{:?}", bullmq.redis_config()), format!("{redis:?}"));
    }

    #[test]
    fn settings_land_where_they_belong() {
        let config = BullmqConfig::new("redis://127.0.0.1:6379")
            .expect("valid")
            .bullmq_prefix("{q}")
            .key_prefix("events")
            .done_ttl(Duration::from_secs(60))
            .connect_timeout(Duration::from_millis(700))
            .response_timeout(Duration::from_millis(300))
            .tls_root_cert(b"pem".to_vec());
        assert_eq!(config.queue_key(), "{q}:DOMAIN_EVENTS");
        assert_eq!(
            config.done_key("image", "crm", "k"),
            "events:{image}:done:crm:k"
        );
        assert_eq!(config.done_ttl_value(), Duration::from_secs(60));
        let redis = RedisConfig::new("redis://127.0.0.1:6379")
            .expect("valid")
            .connect_timeout(Duration::from_millis(700))
            .response_timeout(Duration::from_millis(300))
            .tls_root_cert(b"pem".to_vec());
        assert_eq!(
            format!("{:?}", config.connection()),
            format!("{:?}", redis.connection()),
            "the connection settings are those of Redis Streams"
        );
        let options = config.connection_options();
        assert_eq!(options.url, "redis://127.0.0.1:6379");
        assert_eq!(
            options.tls_certs.and_then(|certs| certs.root_cert),
            Some(b"pem".to_vec())
        );
        let from_redis = BullmqConfig::from_redis(
            RedisConfig::new("redis://127.0.0.1:6379")
                .expect("valid")
                .key_prefix("events"),
        );
        assert_eq!(
            from_redis.done_key("image", "crm", "k"),
            "events:{image}:done:crm:k"
        );
        assert_eq!(from_redis.queue_key(), "bull:DOMAIN_EVENTS");
    }

    #[test]
    fn job_options_carry_attempts_backoff_and_retention_in_seconds() {
        let config = BullmqConfig::new("redis://127.0.0.1:6379")
            .expect("valid")
            .attempts(0)
            .backoff(Backoff::Fixed(Duration::from_millis(250)))
            .remove_on_fail(Retention::Newest(100));
        let options = config.job_options();
        assert_eq!(options.attempts, Some(1), "at least one attempt");
        let json = serde_json::to_value(&options).expect("serializable");
        assert_eq!(
            json["backoff"],
            serde_json::json!({"type": "fixed", "delay": 250})
        );
        assert_eq!(json["removeOnComplete"], serde_json::json!({"age": 86_400}));
        assert_eq!(json["removeOnFail"], serde_json::json!(100));
        assert!(options.job_id.is_none());

        let none = config
            .backoff(Backoff::None)
            .remove_on_complete(Retention::Nothing);
        let options = none.job_options();
        assert!(options.backoff.is_none());
        assert_eq!(
            serde_json::to_value(&options).expect("ok")["removeOnComplete"],
            true
        );
        assert_eq!(
            serde_json::to_value(Retention::Forever.policy()).expect("ok"),
            false
        );
    }

    #[test]
    fn bad_names_are_refused_with_a_clear_message() {
        let config = BullmqConfig::new("redis://127.0.0.1:6379").expect("valid");
        let err = config.clone().queue("a:b").validate().expect_err("colon");
        assert!(err.to_string().contains("queue name `a:b`"), "{err}");
        assert!(config.clone().queue("").validate().is_err());
        assert!(config.clone().bullmq_prefix("bull:x").validate().is_err());
        assert!(config.clone().bullmq_prefix("{bull}").validate().is_ok());

        // On a cluster, the keys of the queue must share a hash tag.
        let cluster = BullmqConfig::new("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").unwrap();
        let refused = cluster.clone().validate().expect_err("no hash tag");
        assert!(
            matches!(&refused, Error::Config(message) if message.contains("hash tag") && message.contains("bull:DOMAIN_EVENTS")),
            "{refused}"
        );
        assert!(cluster.clone().bullmq_prefix("{}").validate().is_err());
        assert!(cluster.clone().bullmq_prefix("{bull").validate().is_err());
        assert!(cluster.clone().bullmq_prefix("{bull}").validate().is_ok());
        assert!(cluster.clone().queue("{events}").validate().is_ok());
        let options = cluster.bullmq_prefix("{bull}").connection_options();
        assert!(options.is_cluster());
        assert_eq!(
            options.cluster_nodes,
            ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
    }

    #[test]
    fn the_password_never_shows() {
        let config = BullmqConfig::new("redis://alice:t0psecret@127.0.0.1:1/0").expect("valid");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("t0psecret") && debug.contains("alice:***@"),
            "{debug}"
        );
        assert!(!format!("{:?}", config.connection_options()).contains("t0psecret"));
        assert_eq!(config.scrub("auth t0psecret"), "auth ***");
        let err = BullmqConfig::new("redis://alice:t0psecret@host:notaport").expect_err("bad port");
        assert!(!format!("{err} {err:?}").contains("t0psecret"));
    }

    #[test]
    fn passwords_with_url_delimiters_never_show() {
        for url in [
            "redis://:Pa/ssWORD@127.0.0.1:6379",
            "redis://app:pä/ss?w#o@r:d%@127.0.0.1:6379/0",
            "rediss://app:pä/ss?w#o@r:d%@127.0.0.1:badport",
            "redis://user:Lim1ted:Pw@/#x@host",
            "redis://app:p%C3%A4%2Fss%3Fw%23o%40r%3Ad%25@127.0.0.1:6379/0",
        ] {
            let shown = match BullmqConfig::new(url) {
                Ok(config) => format!(
                    "{config:?} {:?} {} {}",
                    config.connection_options(),
                    config.redacted_url(),
                    config.scrub("auth pä/ss?w#o@r:d% p%C3%A4%2Fss%3Fw%23o%40r%3Ad%25")
                ),
                Err(error) => format!("{error} {error:?}"),
            };
            for trace in ["ssWORD", "ss?w", "r:d", "Lim1ted", "Pw@", "#x", "%2Fss"] {
                assert!(!shown.contains(trace), "{url}: {shown}");
            }
        }
    }
}
