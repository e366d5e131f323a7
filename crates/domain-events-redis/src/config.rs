//! [`RedisConfig`]: how to reach Redis (a [`ConnectionConfig`]), how the Redis Streams layout names
//! its keys there and how long its records live.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use domain_events::{EventInfo, EventSet};

use crate::connection_config::ConnectionConfig;
use crate::durability::ReplicaWait;
use crate::error::Error;
use crate::keys::Keys;

/// The key prefix unless configured otherwise: `domain-events` (docs/contract.md section 4.1),
/// defined once in [`domain_events::wire`].
pub const DEFAULT_KEY_PREFIX: &str = domain_events::wire::REDIS_KEY_PREFIX;
/// The approximate length a category stream is trimmed to (`XADD ... MAXLEN ~`), unless
/// configured otherwise: 1,000,000 entries.
pub const DEFAULT_STREAM_MAX_LEN: usize = 1_000_000;
/// How long a producer-side idempotency claim lives unless configured otherwise: 24 hours.
pub const DEFAULT_CLAIM_TTL: Duration = domain_events::DEFAULT_CLAIM_TTL;
/// How long a consumer-side done record lives unless configured otherwise: 7 days.
pub const DEFAULT_DONE_TTL: Duration = domain_events::DEFAULT_DONE_TTL;

/// The most partitions a category may have ([`RedisConfig::partitions`]).
pub const MAX_PARTITIONS: u32 = 1024;

/// How to reach Redis and how this crate lays out its keys there.
///
/// ```
/// use std::time::Duration;
/// use domain_events_redis::RedisConfig;
///
/// let config = RedisConfig::new("redis://app:s3cret@127.0.0.1:6379/0")
///     .unwrap()
///     .key_prefix("events")
///     .stream_max_len(10_000)
///     .response_timeout(Duration::from_millis(500));
/// assert_eq!(config.redacted_url(), "redis://app:***@127.0.0.1:6379/0");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// assert_eq!(config.key_prefix_value(), "events");
/// assert_eq!(config.keys().stream("image"), "events:{image}");
/// assert_eq!(config.connection().response_timeout_value(), Duration::from_millis(500));
/// ```
///
/// The URL forms, TLS, the timeouts and the password's redaction are those of
/// [`ConnectionConfig`]: `redis://host:port/db`, `rediss://` for TLS, `redis://user:password@host`
/// for an ACL user, `redis+unix:///path` for a Unix socket. The password never appears in `Debug`
/// output, logs or errors.
#[derive(Clone)]
pub struct RedisConfig {
    connection: ConnectionConfig,
    key_prefix: String,
    stream_max_len: usize,
    claim_ttl: Duration,
    done_ttl: Duration,
    idempotency_claims: bool,
    replica_wait: Option<ReplicaWait>,
    /// Categories split into more than one partition, with their counts.
    partitions: Arc<BTreeMap<String, u32>>,
}

impl RedisConfig {
    /// Parses `url` (see [`ConnectionConfig`] for the forms) with defaults for everything else.
    /// The error shows the URL redacted.
    pub fn new(url: &str) -> Result<Self, Error> {
        Ok(Self::from_connection(ConnectionConfig::new(url)?))
    }

    /// The Redis Streams settings for `connection`, with defaults for everything else.
    pub fn from_connection(connection: ConnectionConfig) -> Self {
        Self {
            connection,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            stream_max_len: DEFAULT_STREAM_MAX_LEN,
            claim_ttl: DEFAULT_CLAIM_TTL,
            done_ttl: DEFAULT_DONE_TTL,
            idempotency_claims: true,
            replica_wait: None,
            partitions: Arc::default(),
        }
    }

    /// Sets the key prefix; default [`DEFAULT_KEY_PREFIX`].
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the approximate length category streams are trimmed to on every append (`MAXLEN ~`);
    /// default [`DEFAULT_STREAM_MAX_LEN`]. Dead-letter streams use the same bound. Trimming is
    /// approximate: Redis removes whole internal nodes, so a stream may hold somewhat more.
    pub fn stream_max_len(mut self, max_len: usize) -> Self {
        self.stream_max_len = max_len.max(1);
        self
    }

    /// Sets how long a producer-side idempotency claim lives; default [`DEFAULT_CLAIM_TTL`].
    /// At least one millisecond.
    pub fn claim_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl;
        self
    }

    /// Sets how long a consumer-side done record lives; default [`DEFAULT_DONE_TTL`]. At least
    /// one millisecond.
    pub fn done_ttl(mut self, ttl: Duration) -> Self {
        self.done_ttl = ttl;
        self
    }

    /// Sets how long one command may wait for an answer
    /// ([`ConnectionConfig::response_timeout`]); default
    /// [`DEFAULT_RESPONSE_TIMEOUT`](crate::DEFAULT_RESPONSE_TIMEOUT). A consumer's blocking reads
    /// wait this long on top of their block time.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.response_timeout(timeout);
        self
    }

    /// Sets how long one connection attempt may take ([`ConnectionConfig::connect_timeout`]);
    /// default [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connection = self.connection.connect_timeout(timeout);
        self
    }

    /// Trusts the certificate authorities of `pem` for a `rediss://` URL
    /// ([`ConnectionConfig::tls_root_cert`]).
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.connection = self.connection.tls_root_cert(pem);
        self
    }

    /// Whether [`RedisTransport`](crate::RedisTransport) takes a producer-side idempotency claim
    /// for every event it appends; default `true`.
    ///
    /// With `false` the transport appends with a plain pipelined `XADD` (no Lua script, no claim
    /// key): every emission is [`PublishOutcome::Published`](domain_events::PublishOutcome), a
    /// second emission of a key becomes a second entry, and nothing is written besides the stream
    /// entry. For producers that never emit a key twice or that rely on the consumers' done
    /// records alone (consumers still skip an idempotency key their group already handled). The
    /// entries are the same, so consumers cannot tell the modes apart.
    ///
    /// ```
    /// use domain_events_redis::RedisConfig;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1:6379").unwrap().idempotency_claims(false);
    /// assert!(!config.idempotency_claims_enabled());
    /// ```
    pub fn idempotency_claims(mut self, on: bool) -> Self {
        self.idempotency_claims = on;
        self
    }

    /// Whether the transport takes producer-side idempotency claims (see
    /// [`idempotency_claims`](Self::idempotency_claims)).
    pub fn idempotency_claims_enabled(&self) -> bool {
        self.idempotency_claims
    }

    /// Makes every emit of [`RedisTransport`](crate::RedisTransport) wait, after its write, until
    /// `replicas` replicas acknowledged it (`WAIT <replicas> <timeout>`), at most `timeout`;
    /// default: no waiting (Redis replicates asynchronously, so an emit acknowledged just before
    /// its master fails can be lost with it).
    ///
    /// On a Redis Cluster the `WAIT` goes to the master of each slot a call wrote (one per
    /// category of a batch, sent at once). When fewer replicas acknowledge within `timeout`, the
    /// events of that slot fail with [`Error::NotReplicated`]: they may be on the stream already,
    /// and emitting them again with the same idempotency key is safe (the claim reports the
    /// first emission, and the retry waits for the replicas again). `timeout` must be below the
    /// response timeout, and `replicas` at least 1: otherwise building a transport fails with
    /// [`Error::Config`]. The consumers' writes (done records, acknowledgements) do not wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// use domain_events_redis::{RedisConfig, ReplicaWait};
    ///
    /// let config = RedisConfig::new("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
    ///     .unwrap()
    ///     .wait_for_replicas(1, Duration::from_millis(500));
    /// assert_eq!(
    ///     config.replica_wait(),
    ///     Some(ReplicaWait { replicas: 1, timeout: Duration::from_millis(500) })
    /// );
    /// ```
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replica_wait = Some(ReplicaWait { replicas, timeout });
        self
    }

    /// How many replicas an emit waits for, and how long (see
    /// [`wait_for_replicas`](Self::wait_for_replicas)); `None` when emits do not wait.
    pub fn replica_wait(&self) -> Option<ReplicaWait> {
        self.replica_wait
    }

    /// How to reach Redis: the URL, TLS and timeouts.
    pub fn connection(&self) -> &ConnectionConfig {
        &self.connection
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        self.connection.redacted_url()
    }

    /// Whether the URL asks for TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.connection.is_tls()
    }

    /// The key layout under the configured prefix.
    pub fn keys(&self) -> Keys {
        Keys::new(&self.key_prefix)
    }

    /// The configured key prefix.
    pub fn key_prefix_value(&self) -> &str {
        &self.key_prefix
    }

    /// The approximate maximum length of a stream.
    pub fn max_len(&self) -> usize {
        self.stream_max_len
    }

    /// How long a producer-side claim lives.
    pub fn claim_ttl_value(&self) -> Duration {
        self.claim_ttl
    }

    /// How long a done record lives.
    pub fn done_ttl_value(&self) -> Duration {
        self.done_ttl
    }

    /// `text` with every form of the password replaced by `***` ([`ConnectionConfig::scrub`]).
    pub fn scrub(&self, text: &str) -> String {
        self.connection.scrub(text)
    }

    /// Classifies an error of the Redis client, with the password scrubbed from its message
    /// ([`ConnectionConfig::error`]).
    pub fn error(&self, error: &redis::RedisError) -> Error {
        self.connection.error(error)
    }

    /// Splits `category` into `partitions` streams (docs/contract.md section 4.1), checked against
    /// the event set `E` (the generated `DomainEvent`): every version of every event of the
    /// category must have its correlation field in its idempotency-key template, so that one key
    /// always lands in the same partition and duplicate detection stays exact. Every producer and
    /// consumer of the category must use the same count; Redis records it on first use, and a
    /// process configured with another count is refused ([`Error::PartitionsChanged`]).
    ///
    /// `1` is today's single stream. Errors: a count of 0 or more than [`MAX_PARTITIONS`], a
    /// category `E` does not declare, a key template without the correlation field.
    ///
    /// A process that should follow whatever the services use (a tool, a one-off script) reads
    /// the recorded counts instead:
    /// [`with_recorded_partitions`](Self::with_recorded_partitions).
    pub fn partitions<E: EventSet>(self, category: &str, partitions: u32) -> Result<Self, Error> {
        self.partitions_checked(
            category,
            partitions,
            E::EVENTS,
            &format!("the event set {}", std::any::type_name::<E>()),
        )
    }

    /// [`partitions`](Self::partitions) with the event set given as its events (`set` names it in
    /// errors): for callers that know their events at run time only, like
    /// [`with_recorded_partitions`](Self::with_recorded_partitions).
    pub(crate) fn partitions_checked(
        mut self,
        category: &str,
        partitions: u32,
        events: &[EventInfo],
        set: &str,
    ) -> Result<Self, Error> {
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return Err(Error::Config(format!(
                "category `{category}`: {partitions} partitions; the count must be between 1 and \
                 {MAX_PARTITIONS}"
            )));
        }
        let mut events = events
            .iter()
            .filter(|info| info.category == category)
            .peekable();
        if events.peek().is_none() {
            return Err(Error::Config(format!(
                "category `{category}` is not declared by {set}"
            )));
        }
        for info in events {
            let field = format!("{{{}}}", info.correlation_field);
            if partitions > 1 && !info.key_template.contains(&field) {
                return Err(Error::Config(format!(
                    "category `{category}` cannot be partitioned: {} v{} has the idempotency-key \
                     template `{}`, which does not contain its correlation field `{}`; the same key \
                     could then land in two partitions, and a duplicate would not be detected. Add \
                     `{field}` to the template (a new event version) or keep the category in one \
                     partition",
                    info.event_type, info.version, info.key_template, info.correlation_field
                )));
            }
        }
        let mut map = (*self.partitions).clone();
        if partitions == 1 {
            map.remove(category);
        } else {
            map.insert(category.to_owned(), partitions);
        }
        self.partitions = Arc::new(map);
        Ok(self)
    }

    /// The partition count of `category`: 1 unless set with [`partitions`](Self::partitions).
    pub fn partitions_of(&self, category: &str) -> u32 {
        self.partitions.get(category).copied().unwrap_or(1)
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("connection", &self.connection)
            .field("key_prefix", &self.key_prefix)
            .field("stream_max_len", &self.stream_max_len)
            .field("claim_ttl", &self.claim_ttl)
            .field("done_ttl", &self.done_ttl)
            .field("idempotency_claims", &self.idempotency_claims)
            .field("replica_wait", &self.replica_wait)
            .field("partitions", &self.partitions)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let config = RedisConfig::new("rediss://cache.example:6380").expect("valid");
        assert!(config.is_tls());
        assert_eq!(config.key_prefix_value(), DEFAULT_KEY_PREFIX);
        assert_eq!(config.key_prefix_value(), "domain-events");
        assert_eq!(config.max_len(), DEFAULT_STREAM_MAX_LEN);
        assert_eq!(config.claim_ttl_value(), Duration::from_secs(86_400));
        assert_eq!(config.done_ttl_value(), Duration::from_secs(7 * 86_400));
        assert!(config.idempotency_claims_enabled());
        assert_eq!(config.replica_wait(), None);
        assert!(!RedisConfig::new("redis://cache").expect("valid").is_tls());
        assert!(RedisConfig::new("http://cache").is_err());
    }

    #[test]
    fn connection_settings_reach_the_connection() {
        let config = RedisConfig::new("redis://cache")
            .expect("valid")
            .connect_timeout(Duration::from_millis(700))
            .response_timeout(Duration::from_millis(300))
            .tls_root_cert(b"pem".to_vec());
        let connection = config.connection();
        assert_eq!(
            connection.connect_timeout_value(),
            Duration::from_millis(700)
        );
        assert_eq!(
            connection.response_timeout_value(),
            Duration::from_millis(300)
        );
        assert_eq!(connection.tls_root_cert_value(), Some(&b"pem"[..]));
        let built = RedisConfig::from_connection(connection.clone());
        assert_eq!(
            built.connection().connect_timeout_value(),
            Duration::from_millis(700)
        );
        assert_eq!(built.key_prefix_value(), DEFAULT_KEY_PREFIX);
    }

    #[test]
    fn the_password_never_shows_in_debug_or_errors() {
        let config = RedisConfig::new("redis://alice:t0p%2Fsecret@127.0.0.1:1/0").expect("valid");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("t0p") && debug.contains("alice:***@127.0.0.1:1/0"),
            "{debug}"
        );
        assert_eq!(config.scrub("auth t0p/secret"), "auth ***");
        let error = RedisConfig::new("redis://:Pa/ssWORD@127.0.0.1:6379").expect_err("invalid");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("ssWORD"), "{shown}");
    }
}
