//! [`ConnectionConfig`]: how to reach Redis, shared by every crate that talks to it (Redis Streams
//! here, BullMQ in `domain-events-bullmq`): the URL and its forms, the password kept out of sight,
//! TLS, the timeouts with their defaults, the reachability probe and the wait before reaching Redis
//! again.

use std::fmt;
use std::sync::{Arc, Once};
use std::time::Duration;

use domain_events::RetryPolicy;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use crate::connection::Connection;
use crate::error::Error;
use crate::redact::{redact_url, scrub_with, url_secrets};

/// How long one connection attempt may take unless configured otherwise: 2 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for Redis's answer unless configured otherwise: 2 seconds.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The wait before reaching Redis again: 100 ms, doubling per failure in a row, at most 500 ms;
/// short, so a consumer resumes within half a second of Redis being back (an attempt against a
/// Redis that is down costs it nothing: the connection is refused).
const RECONNECT: RetryPolicy = RetryPolicy {
    max_retries: u32::MAX,
    initial_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_millis(500),
};

/// How long a consumer waits before trying to reach Redis again after `failures` failed tries in a
/// row (counted from 1): [`RetryPolicy::backoff`] from 100 ms, doubling, at most 500 ms. The Redis
/// Streams and the BullMQ consumers both wait this long.
///
/// ```
/// use std::time::Duration;
/// use domain_events_redis::reconnect_backoff;
///
/// assert_eq!(reconnect_backoff(1), Duration::from_millis(100));
/// assert_eq!(reconnect_backoff(3), Duration::from_millis(400));
/// assert_eq!(reconnect_backoff(40), Duration::from_millis(500));
/// ```
pub fn reconnect_backoff(failures: u32) -> Duration {
    RECONNECT.backoff(failures.max(1))
}

/// Where Redis is and how to reach it: one set of connection settings for every client of this
/// workspace ([`RedisConfig`](crate::RedisConfig) owns one, and so does the BullMQ crate's
/// configuration).
///
/// URL forms:
///
/// - `redis://host:port/db`, port and database optional;
/// - `rediss://host:port/db` for TLS: server certificates are checked against the bundled web
///   PKI roots, or against [`tls_root_cert`](Self::tls_root_cert);
/// - `redis://user:password@host` for an ACL user, `redis://:password@host` for the default user;
///   a password with characters that delimit URL parts (`/ ? # @ : %`) must be percent-encoded to
///   connect, but is hidden either way;
/// - `redis+unix:///path/to/redis.sock?db=1&pass=password` (or `unix://`) for a Unix socket;
/// - `redis+cluster://host:port,host:port` (and `rediss+cluster://`, with `user:password@` as
///   above) for a Redis Cluster reached from those seed nodes; or [`cluster`](Self::cluster) with
///   one `redis://` URL per seed node. A cluster has no database number.
///
/// The password never appears in `Debug` output, logs or errors: URLs are shown through
/// [`redact_url`], and messages of the Redis client through [`scrub`](Self::scrub).
///
/// ```
/// use std::time::Duration;
/// use domain_events_redis::{ConnectionConfig, DEFAULT_RESPONSE_TIMEOUT};
///
/// let connection = ConnectionConfig::new("rediss://app:s3cr%2Ft@cache.internal:6380/0")
///     .unwrap()
///     .connect_timeout(Duration::from_secs(5));
/// assert_eq!(connection.redacted_url(), "rediss://app:***@cache.internal:6380/0");
/// assert!(connection.is_tls());
/// assert_eq!(connection.connect_timeout_value(), Duration::from_secs(5));
/// assert_eq!(connection.response_timeout_value(), DEFAULT_RESPONSE_TIMEOUT);
/// assert!(!format!("{connection:?}").contains("s3cr"));
/// assert_eq!(connection.scrub("AUTH s3cr/t failed"), "AUTH *** failed");
/// ```
#[derive(Clone)]
pub struct ConnectionConfig {
    /// The URL as given, password included: handed to clients only, never shown.
    url: Arc<str>,
    /// The URL with the password replaced; the only form that is ever shown.
    redacted: Arc<str>,
    target: Target,
    /// Forms of the password to scrub from messages of the Redis client, longest first.
    secrets: Arc<[String]>,
    connect_timeout: Duration,
    response_timeout: Duration,
    tls_root_cert: Option<Arc<[u8]>>,
}

/// What the URL names: one server, or the seed nodes of a Redis Cluster.
#[derive(Clone)]
enum Target {
    /// One server, over TCP, TLS or a Unix socket.
    Server(Box<ConnectionInfo>),
    /// Seed nodes of a Redis Cluster (at least one), all with the same scheme and credentials.
    Cluster(Vec<ConnectionInfo>),
}

impl ConnectionConfig {
    /// Parses `url` (see the type's documentation for the forms) with the default timeouts. The
    /// error shows the URL redacted.
    pub fn new(url: &str) -> Result<Self, Error> {
        let redacted: Arc<str> = redact_url(url).into();
        let mut secrets = url_secrets(url);
        let invalid = |reason: String, secrets: &[String]| Error::InvalidUrl {
            url: redacted.to_string(),
            reason: scrub_with(&reason, secrets),
        };
        let target = match cluster_seed_urls(url) {
            Some(seeds) => {
                let seeds = seeds.map_err(|reason| invalid(reason, &secrets))?;
                let infos = seeds
                    .iter()
                    .map(|seed| seed.as_str().into_connection_info())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|error| invalid(error.to_string(), &secrets))?;
                Target::Cluster(infos)
            }
            None => Target::Server(Box::new(
                url.into_connection_info()
                    .map_err(|error| invalid(error.to_string(), &secrets))?,
            )),
        };
        for info in target.infos() {
            if let Some(password) = info.redis_settings().password()
                && !password.is_empty()
                && !secrets.iter().any(|secret| secret == password)
            {
                secrets.push(password.to_owned());
                secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
            }
        }
        Ok(Self {
            url: url.into(),
            redacted,
            target,
            secrets: secrets.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            tls_root_cert: None,
        })
    }

    /// A Redis Cluster reached from `seeds`, each a `redis://` (or `rediss://`) URL of one node,
    /// with the same scheme and credentials: the same as
    /// `redis+cluster://user:password@host:port,host:port`.
    ///
    /// ```
    /// use domain_events_redis::ConnectionConfig;
    ///
    /// let cluster = ConnectionConfig::cluster(["redis://app:pw@10.0.0.1:7000", "redis://app:pw@10.0.0.2:7000"])
    ///     .unwrap();
    /// assert!(cluster.is_cluster());
    /// assert_eq!(cluster.redacted_url(), "redis+cluster://app:***@10.0.0.1:7000,10.0.0.2:7000");
    /// ```
    pub fn cluster<S: AsRef<str>>(seeds: impl IntoIterator<Item = S>) -> Result<Self, Error> {
        let seeds: Vec<String> = seeds.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let mut scheme_and_user = None;
        let mut hosts = Vec::with_capacity(seeds.len());
        for seed in &seeds {
            let invalid = |reason: &str| Error::InvalidUrl {
                url: redact_url(seed),
                reason: reason.to_owned(),
            };
            let (scheme, rest) = seed
                .split_once("://")
                .filter(|(scheme, _)| matches!(*scheme, "redis" | "rediss"))
                .ok_or_else(|| invalid("a cluster seed must be a redis:// or rediss:// URL"))?;
            let (user, host) = match rest.rsplit_once('@') {
                Some((user, host)) => (Some(user), host),
                None => (None, rest),
            };
            let host = host.trim_end_matches('/');
            if host.is_empty() || host.contains(['/', '?', '#', ',']) {
                return Err(invalid(
                    "a cluster seed is host:port, with no database or options",
                ));
            }
            match &scheme_and_user {
                None => scheme_and_user = Some((scheme, user)),
                Some(first) if *first != (scheme, user) => {
                    return Err(invalid(
                        "every cluster seed must have the same scheme and credentials",
                    ));
                }
                Some(_) => {}
            }
            hosts.push(host);
        }
        let Some((scheme, user)) = scheme_and_user else {
            return Err(Error::Config(
                "a Redis Cluster needs at least one seed node".into(),
            ));
        };
        let user = user.map(|user| format!("{user}@")).unwrap_or_default();
        Self::new(&format!("{scheme}+cluster://{user}{}", hosts.join(",")))
    }

    /// Sets how long one connection attempt may take; default [`DEFAULT_CONNECT_TIMEOUT`], at
    /// least 1 ms.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets how long one command may wait for an answer; default [`DEFAULT_RESPONSE_TIMEOUT`], at
    /// least 1 ms.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Trusts the certificate authorities of `pem` (PEM, one or more certificates) instead of the
    /// bundled web PKI roots for a `rediss://` URL, e.g. a private CA.
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_cert = Some(pem.into().into());
        self
    }

    /// How long one connection attempt may take.
    pub fn connect_timeout_value(&self) -> Duration {
        self.connect_timeout
    }

    /// How long one command may wait for an answer.
    pub fn response_timeout_value(&self) -> Duration {
        self.response_timeout
    }

    /// The PEM of the trusted certificate authorities, if set with
    /// [`tls_root_cert`](Self::tls_root_cert).
    pub fn tls_root_cert_value(&self) -> Option<&[u8]> {
        self.tls_root_cert.as_deref()
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// The URL as given, password included, for handing to another Redis client (BullMQ's);
    /// never log or show it: [`redacted_url`](Self::redacted_url) is the form to show. For a
    /// `rediss://` URL, call [`install_tls_provider`](Self::install_tls_provider) first.
    pub fn url_with_password(&self) -> &str {
        &self.url
    }

    /// For a Redis Cluster, one `redis://` (or `rediss://`) URL per seed node, with the
    /// credentials, for handing to another Redis client (BullMQ's); empty for one server. Never
    /// log or show them.
    pub fn seed_urls_with_password(&self) -> Vec<String> {
        cluster_seed_urls(&self.url)
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    /// Whether the URL asks for TLS (`rediss://` or `rediss+cluster://`).
    pub fn is_tls(&self) -> bool {
        self.target
            .infos()
            .any(|info| matches!(info.addr(), ConnectionAddr::TcpTls { .. }))
    }

    /// Whether this names a Redis Cluster (`redis+cluster://`, or made by
    /// [`cluster`](Self::cluster)).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// Installs the TLS crypto provider the clients of this workspace use (`ring`) as the process
    /// default, when the URL asks for TLS and no provider is installed yet. This crate's clients
    /// do it themselves; another client handed [`url_with_password`](Self::url_with_password)
    /// needs it first.
    pub fn install_tls_provider(&self) {
        static INSTALL: Once = Once::new();
        if self.is_tls() {
            INSTALL.call_once(|| {
                // An error means another provider is already installed, which is as good.
                let _ = rustls::crypto::ring::default_provider().install_default();
            });
        }
    }

    /// `text` with every form of the password replaced by `***`: for messages that come from the
    /// Redis client and might quote what they were given.
    pub fn scrub(&self, text: &str) -> String {
        scrub_with(text, &self.secrets)
    }

    /// Classifies an error of the Redis client ([`Error::Unavailable`] when Redis could not be
    /// reached, [`Error::Timeout`] when it did not answer in time, [`Error::Protocol`] for an
    /// answer that did not parse, [`Error::Server`] for a refused command), with the password
    /// scrubbed from its message.
    pub fn error(&self, error: &redis::RedisError) -> Error {
        Error::from_redis(error, self)
    }

    /// [`Error::Unavailable`] at this URL, for `message` (which must hold no secret).
    pub fn unavailable(&self, message: impl Into<String>) -> Error {
        Error::Unavailable {
            url: self.redacted.to_string(),
            message: message.into(),
        }
    }

    /// Checks that Redis can be reached with these settings: connects once with a connection of
    /// its own and sends `PING`, within the connect timeout for connecting and the response
    /// timeout for the answer. A wrong address, password or certificate fails fast with Redis's
    /// reason, as an [`Error::Unavailable`] (or [`Error::InvalidUrl`] for a URL this build cannot
    /// connect to).
    pub async fn probe(&self) -> Result<(), Error> {
        let check = async {
            match &self.target {
                Target::Server(_) => {
                    let settings = AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(self.connect_timeout))
                        .set_response_timeout(Some(self.response_timeout));
                    let mut conn = self
                        .client()?
                        .get_multiplexed_async_connection_with_config(&settings)
                        .await
                        .map_err(|error| self.error(&error))?;
                    self.ping(&mut conn).await
                }
                Target::Cluster(_) => {
                    let mut conn = self
                        .cluster_client()?
                        .get_async_connection_with_config(self.cluster_settings(None))
                        .await
                        .map_err(|error| self.error(&error))?;
                    self.ping(&mut conn).await
                }
            }
        };
        let limit = self.connect_timeout.saturating_add(self.response_timeout);
        match tokio::time::timeout(limit, check).await {
            Ok(result) => result,
            Err(_) => Err(self.unavailable(format!("no answer within {limit:?}"))),
        }
    }

    /// `PING` on `conn`.
    async fn ping(&self, conn: &mut (impl redis::aio::ConnectionLike + Send)) -> Result<(), Error> {
        redis::cmd("PING")
            .query_async::<()>(conn)
            .await
            .map_err(|error| self.error(&error))
    }

    /// A Redis client for these settings (one server).
    pub(crate) fn client(&self) -> Result<Client, Error> {
        self.install_tls_provider();
        let Target::Server(info) = &self.target else {
            return Err(Error::Config(format!(
                "{} names a Redis Cluster, not one server",
                self.redacted
            )));
        };
        let result = match &self.tls_root_cert {
            Some(pem) if self.is_tls() => Client::build_with_tls(
                (**info).clone(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
            _ => Client::open((**info).clone()),
        };
        result.map_err(|error| Error::InvalidUrl {
            url: self.redacted.to_string(),
            reason: self.scrub(&error.to_string()),
        })
    }

    /// A Redis Cluster client for these settings: the seeds' credentials, TLS and CA.
    fn cluster_client(&self) -> Result<ClusterClient, Error> {
        self.install_tls_provider();
        let Target::Cluster(seeds) = &self.target else {
            return Err(Error::Config(format!(
                "{} names one server, not a Redis Cluster",
                self.redacted
            )));
        };
        let mut builder = ClusterClientBuilder::new(seeds.clone());
        if let Some(pem) = &self.tls_root_cert
            && self.is_tls()
        {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            });
        }
        builder.build().map_err(|error| Error::InvalidUrl {
            url: self.redacted.to_string(),
            reason: self.scrub(&error.to_string()),
        })
    }

    /// The timeouts of a cluster connection; commands time out after `response_timeout` (`None`:
    /// the configured one).
    fn cluster_settings(&self, response_timeout: Option<Duration>) -> ClusterConfig {
        ClusterConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(response_timeout.unwrap_or(self.response_timeout))
    }

    /// A connection that reconnects by itself, without connecting yet. Commands on it time out
    /// after `response_timeout` (`None`: the configured one). A cluster connection needs a Tokio
    /// runtime.
    pub(crate) fn open(&self, response_timeout: Option<Duration>) -> Result<Connection, Error> {
        if self.is_cluster() {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(Error::Config(
                    "a Redis Cluster connection must be opened inside a Tokio runtime".into(),
                ));
            }
            let client = self.cluster_client()?;
            return Ok(Connection::cluster(
                client.get_pending_async_connection_with_config(
                    self.cluster_settings(response_timeout),
                ),
            ));
        }
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(response_timeout.unwrap_or(self.response_timeout)))
            // Fail fast and let the caller's loop (or the emitter's timeout) decide what to do.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        ConnectionManager::new_lazy_with_config(self.client()?, manager_config)
            .map(Connection::server)
            .map_err(|error| self.error(&error))
    }
}

impl Target {
    /// The address of the server, or of every seed node.
    fn infos(&self) -> impl Iterator<Item = &ConnectionInfo> {
        match self {
            Target::Server(info) => std::slice::from_ref(&**info).iter(),
            Target::Cluster(seeds) => seeds.iter(),
        }
    }
}

/// For a `redis+cluster://` or `rediss+cluster://` URL, one `redis://` (or `rediss://`) URL per
/// seed node, with the URL's credentials; `None` for any other scheme. A path other than `/` or
/// `/0` is refused: a cluster has only database 0.
fn cluster_seed_urls(url: &str) -> Option<Result<Vec<String>, String>> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return None,
    };
    let (user, after) = match rest.rsplit_once('@') {
        Some((user, after)) => (format!("{user}@"), after),
        None => (String::new(), rest),
    };
    let (hosts, path) = match after.split_once(['/', '?', '#']) {
        Some((hosts, _)) => (hosts, &after[hosts.len()..]),
        None => (after, ""),
    };
    if !matches!(path, "" | "/" | "/0") {
        return Some(Err(format!(
            "a Redis Cluster URL takes no database or options (`{path}`): a cluster has only database 0"
        )));
    }
    let seeds: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}://{user}{host}"))
        .collect();
    if seeds.is_empty() {
        return Some(Err(
            "a Redis Cluster URL needs at least one host:port".into()
        ));
    }
    Some(Ok(seeds))
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("url", &self.redacted)
            .field("cluster", &self.is_cluster())
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("tls_root_cert", &self.tls_root_cert.as_ref().map(|_| "set"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_form_parses_and_keeps_its_address() {
        let address = |url: &str| {
            let connection = ConnectionConfig::new(url).expect(url);
            let Target::Server(info) = &connection.target else {
                panic!("{url} is one server")
            };
            let settings = info.redis_settings();
            (
                info.addr().to_string(),
                settings.db(),
                settings.username().map(str::to_owned),
                settings.password().map(str::to_owned),
            )
        };
        assert_eq!(
            address("redis://cache:6380/2"),
            ("cache:6380".into(), 2, None, None)
        );
        assert_eq!(
            address("redis://cache"),
            ("cache:6379".into(), 0, None, None)
        );
        assert_eq!(
            address("redis://app:p%2Fw@cache/1"),
            (
                "cache:6379".into(),
                1,
                Some("app".into()),
                Some("p/w".into())
            )
        );
        assert_eq!(
            address("redis://:pw@cache"),
            ("cache:6379".into(), 0, None, Some("pw".into()))
        );
        assert_eq!(
            address("rediss://app:pw@cache:6380").0,
            "cache:6380",
            "TLS to the named host"
        );
        assert_eq!(
            address("redis+unix:///run/redis.sock?db=3&pass=pw"),
            ("/run/redis.sock".into(), 3, None, Some("pw".into()))
        );
        assert_eq!(
            address("unix:///run/redis.sock").0,
            "/run/redis.sock",
            "the short Unix socket form"
        );
        for url in ["http://cache", "cache:6379", "redis://cache:notaport", ""] {
            assert!(
                matches!(ConnectionConfig::new(url), Err(Error::InvalidUrl { .. })),
                "{url}"
            );
        }
    }

    /// The seeds of a cluster URL: address, user and password of each.
    fn seeds(connection: &ConnectionConfig) -> Vec<(String, Option<String>, Option<String>)> {
        let Target::Cluster(seeds) = &connection.target else {
            panic!("{} is a cluster", connection.redacted_url())
        };
        seeds
            .iter()
            .map(|info| {
                let settings = info.redis_settings();
                (
                    info.addr().to_string(),
                    settings.username().map(str::to_owned),
                    settings.password().map(str::to_owned),
                )
            })
            .collect()
    }

    #[test]
    fn cluster_urls_name_their_seed_nodes() {
        let plain = ConnectionConfig::new("redis+cluster://10.0.0.1:7000,10.0.0.2:7001").unwrap();
        assert!(plain.is_cluster() && !plain.is_tls());
        assert_eq!(
            plain.seed_urls_with_password(),
            ["redis://10.0.0.1:7000", "redis://10.0.0.2:7001"]
        );
        let secret = ConnectionConfig::new("rediss+cluster://app:pw@10.0.0.1:7000").unwrap();
        assert_eq!(
            secret.seed_urls_with_password(),
            ["rediss://app:pw@10.0.0.1:7000"]
        );
        assert!(
            ConnectionConfig::new("redis://10.0.0.1:7000")
                .unwrap()
                .seed_urls_with_password()
                .is_empty()
        );
        assert_eq!(
            seeds(&plain),
            vec![
                ("10.0.0.1:7000".into(), None, None),
                ("10.0.0.2:7001".into(), None, None)
            ]
        );
        let secured =
            ConnectionConfig::new("rediss+cluster://app:p%2Fw@a.internal:7000,b.internal/0")
                .unwrap();
        assert!(secured.is_cluster() && secured.is_tls());
        assert_eq!(
            seeds(&secured),
            vec![
                (
                    "a.internal:7000".into(),
                    Some("app".into()),
                    Some("p/w".into())
                ),
                (
                    "b.internal:6379".into(),
                    Some("app".into()),
                    Some("p/w".into())
                )
            ]
        );
        assert_eq!(
            secured.redacted_url(),
            "rediss+cluster://app:***@a.internal:7000,b.internal/0"
        );
        assert!(!format!("{secured:?}").contains("p%2Fw"));
        assert!(!ConnectionConfig::new("redis://cache").unwrap().is_cluster());

        for url in [
            "redis+cluster://",
            "redis+cluster://a:7000/2",
            "redis+cluster://a:7000?db=1",
            "redis+cluster://a:notaport",
        ] {
            assert!(
                matches!(ConnectionConfig::new(url), Err(Error::InvalidUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn a_cluster_from_seed_urls_is_the_same_as_its_cluster_url() {
        let cluster =
            ConnectionConfig::cluster(["rediss://app:pw@a:7000", "rediss://app:pw@b:7001/"])
                .unwrap();
        assert_eq!(
            cluster.redacted_url(),
            "rediss+cluster://app:***@a:7000,b:7001"
        );
        assert_eq!(
            seeds(&cluster),
            seeds(&ConnectionConfig::new("rediss+cluster://app:pw@a:7000,b:7001").unwrap())
        );
        let refused = [
            vec!["redis://a:7000", "rediss://b:7001"],
            vec!["redis://app:pw@a:7000", "redis://app:other@b:7001"],
            vec!["redis://a:7000/1"],
            vec!["redis+unix:///run/redis.sock"],
        ];
        for seeds in refused {
            let error = ConnectionConfig::cluster(&seeds).expect_err("refused");
            assert!(
                matches!(error, Error::InvalidUrl { .. }),
                "{seeds:?}: {error}"
            );
            assert!(!error.to_string().contains("other"), "{error}");
        }
        assert!(matches!(
            ConnectionConfig::cluster(Vec::<String>::new()),
            Err(Error::Config(_))
        ));
    }

    #[tokio::test]
    async fn a_cluster_connection_opens_lazily_and_needs_a_runtime_only() {
        let cluster = ConnectionConfig::new("redis+cluster://127.0.0.1:1").unwrap();
        assert!(cluster.open(None).unwrap().is_cluster());
        assert!(matches!(cluster.client(), Err(Error::Config(_))));
        let server = ConnectionConfig::new("redis://127.0.0.1:1").unwrap();
        assert!(!server.open(None).unwrap().is_cluster());
    }

    #[test]
    fn tls_is_what_the_scheme_asks_for_and_a_client_can_be_made() {
        for (url, tls) in [
            ("rediss://cache.example:6380", true),
            ("redis://cache.example", false),
            ("redis+unix:///run/redis.sock", false),
        ] {
            let connection = ConnectionConfig::new(url).expect(url);
            assert_eq!(connection.is_tls(), tls, "{url}");
            assert!(connection.client().is_ok(), "{url}");
            let with_ca = connection.tls_root_cert(b"not a certificate".to_vec());
            assert_eq!(
                with_ca.tls_root_cert_value(),
                Some(&b"not a certificate"[..])
            );
        }
    }

    #[test]
    fn defaults_and_settings() {
        let connection = ConnectionConfig::new("redis://cache").expect("valid");
        assert_eq!(connection.connect_timeout_value(), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(
            connection.response_timeout_value(),
            DEFAULT_RESPONSE_TIMEOUT
        );
        assert_eq!(connection.tls_root_cert_value(), None);
        let set = connection
            .connect_timeout(Duration::ZERO)
            .response_timeout(Duration::from_millis(300));
        assert_eq!(set.connect_timeout_value(), Duration::from_millis(1));
        assert_eq!(set.response_timeout_value(), Duration::from_millis(300));
        assert_eq!(set.url_with_password(), "redis://cache");
    }

    #[test]
    fn reconnecting_waits_doubling_up_to_half_a_second() {
        let waits: Vec<_> = (0..=6)
            .map(|failures| reconnect_backoff(failures).as_millis())
            .collect();
        assert_eq!(waits, vec![100, 100, 200, 400, 500, 500, 500]);
        assert_eq!(reconnect_backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn the_password_never_shows_in_debug_or_errors() {
        let connection =
            ConnectionConfig::new("redis://alice:t0p%2Fsecret@127.0.0.1:1/0").expect("valid");
        let debug = format!("{connection:?}");
        assert!(
            !debug.contains("t0p") && debug.contains("alice:***@127.0.0.1:1/0"),
            "{debug}"
        );
        assert_eq!(
            connection.scrub("auth t0p/secret failed, t0p%2Fsecret"),
            "auth *** failed, ***"
        );
        let unavailable = connection.unavailable("down");
        assert_eq!(
            unavailable.to_string(),
            "Redis unavailable at redis://alice:***@127.0.0.1:1/0: down"
        );

        let err = ConnectionConfig::new("redis://alice:t0psecret@host:notaport")
            .expect_err("invalid port");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("t0psecret"), "{shown}");
        assert!(shown.contains("alice:***@host:notaport"), "{shown}");
    }

    /// Passwords with every character that ends a URL's authority, or separates its parts.
    const NASTY_PASSWORDS: [&str; 4] = [
        "pä/ss?w#o@r:d%",
        "Pa/ssWORD",
        "Lim1ted:Pw@/#x",
        "Sä1/Sé2?S33#S44@S55:S66%S77",
    ];

    /// `text` percent-encoded except for unreserved characters.
    fn encode(text: &str) -> String {
        crate::redact::percent_encode(text, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    }

    /// What must not show of `password`: the whole of it raw and encoded, and each piece of three
    /// or more characters between its special characters.
    fn traces(password: &str) -> Vec<String> {
        let mut traces = vec![password.to_owned(), encode(password)];
        traces.extend(
            password
                .split(['/', '?', '#', '@', ':', '%'])
                .filter(|piece| piece.chars().count() >= 3)
                .map(str::to_owned),
        );
        traces
    }

    fn assert_no_trace(shown: &str, password: &str, what: &str) {
        for trace in traces(password) {
            assert!(
                !shown.contains(&trace),
                "{what} shows `{trace}` of the password `{password}`: {shown}"
            );
        }
    }

    /// Every URL form of `password`: `redis` / `rediss`, user and password or password only, raw
    /// or percent-encoded, with a valid address or a bad port; and as a Unix socket's `pass`.
    fn urls(password: &str) -> Vec<String> {
        let mut urls = Vec::new();
        for scheme in ["redis", "rediss", "redis+cluster", "rediss+cluster"] {
            for user in ["app", ""] {
                for secret in [password.to_owned(), encode(password)] {
                    for host in ["127.0.0.1:6379/0", "127.0.0.1:notaport", "cache"] {
                        urls.push(format!("{scheme}://{user}:{secret}@{host}"));
                    }
                }
            }
        }
        urls.push(format!(
            "redis+unix:///run/redis.sock?pass={}",
            encode(password)
        ));
        urls
    }

    #[test]
    fn passwords_with_url_delimiters_never_show() {
        for password in NASTY_PASSWORDS {
            for url in urls(password) {
                let redacted = redact_url(&url);
                assert_no_trace(&redacted, password, &format!("redact_url({url})"));
                assert!(
                    redacted.contains(":***@") || redacted.contains("pass=***"),
                    "{url} -> {redacted}"
                );
                match ConnectionConfig::new(&url) {
                    Ok(connection) => {
                        assert_no_trace(&format!("{connection:?}"), password, &url);
                        assert_no_trace(connection.redacted_url(), password, &url);
                        let message =
                            format!("auth {password} / {} / {url} failed", encode(password));
                        assert_no_trace(&connection.scrub(&message), password, &url);
                        let error = connection.unavailable(connection.scrub(&message));
                        assert_no_trace(&format!("{error} {error:?}"), password, &url);
                    }
                    Err(error) => {
                        assert_no_trace(&format!("{error} {error:?}"), password, &url);
                    }
                }
            }
        }
    }
}
