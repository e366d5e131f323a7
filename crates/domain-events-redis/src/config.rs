//! [`RedisConfig`]: where Redis is, how keys are named and how long records live; plus
//! [`redact_url`], which every log line and error uses to show a connection URL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};

use crate::connection::Connection;
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
/// How long one command may wait for Redis's answer unless configured otherwise: 2 seconds.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one connection attempt may take unless configured otherwise: 2 seconds.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// What the replaced password reads as in URLs and messages.
const MASK: &str = "***";

/// How to reach Redis and how this crate lays out its keys there.
///
/// ```
/// use std::time::Duration;
/// use domain_events_redis::RedisConfig;
///
/// let config = RedisConfig::new("redis://app:s3cret@127.0.0.1:6379/0")
///     .unwrap()
///     .key_prefix("events")
///     .stream_max_len(10_000);
/// assert_eq!(config.redacted_url(), "redis://app:***@127.0.0.1:6379/0");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// assert_eq!(config.keys().stream("image"), "events:{image}");
/// ```
///
/// URL forms: `redis://host:port/db`, `rediss://` for TLS (server certificates are checked
/// against the bundled web PKI roots, or against [`tls_root_cert`](Self::tls_root_cert)),
/// `redis://user:password@host` for an ACL user and `redis://:password@host` for the default user.
/// The password never appears in `Debug` output, logs or errors.
#[derive(Clone)]
pub struct RedisConfig {
    /// The URL with the password replaced; the only form that is ever shown.
    redacted: Arc<str>,
    info: ConnectionInfo,
    /// Forms of the password to scrub from messages of the Redis client.
    secrets: Arc<[String]>,
    prefix: String,
    stream_max_len: usize,
    claim_ttl: Duration,
    done_ttl: Duration,
    response_timeout: Duration,
    connection_timeout: Duration,
    tls_root_cert: Option<Arc<[u8]>>,
    idempotency_claims: bool,
}

impl RedisConfig {
    /// Parses `url` (see the type's documentation for the forms) with defaults for everything
    /// else. The error shows the URL redacted.
    pub fn new(url: &str) -> Result<Self, Error> {
        let redacted: Arc<str> = redact_url(url).into();
        let mut secrets = Vec::new();
        let info = url
            .into_connection_info()
            .map_err(|error| Error::InvalidUrl {
                url: redacted.to_string(),
                reason: scrub_with(&error.to_string(), &url_secrets(url)),
            })?;
        if let Some(password) = info.redis_settings().password() {
            secrets.push(password.to_owned());
        }
        secrets.extend(url_secrets(url));
        secrets.retain(|secret| !secret.is_empty());
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Ok(Self {
            redacted,
            info,
            secrets: secrets.into(),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            stream_max_len: DEFAULT_STREAM_MAX_LEN,
            claim_ttl: DEFAULT_CLAIM_TTL,
            done_ttl: DEFAULT_DONE_TTL,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            tls_root_cert: None,
            idempotency_claims: true,
        })
    }

    /// Sets the key prefix; default [`DEFAULT_KEY_PREFIX`].
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
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

    /// Sets how long one command may wait for an answer; default [`DEFAULT_RESPONSE_TIMEOUT`].
    /// A consumer's blocking reads wait this long on top of their block time.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets how long one connection attempt may take; default [`DEFAULT_CONNECTION_TIMEOUT`].
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Trusts the certificate authorities of `pem` (PEM, one or more certificates) instead of the
    /// bundled web PKI roots for a `rediss://` URL, e.g. a private CA.
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_cert = Some(pem.into().into());
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

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// Whether the URL asks for TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        matches!(self.info.addr(), ConnectionAddr::TcpTls { .. })
    }

    /// The key layout under the configured prefix.
    pub fn keys(&self) -> Keys {
        Keys::new(&self.prefix)
    }

    /// The configured key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
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

    /// `text` with every form of the password replaced by `***`: for messages that come from the
    /// Redis client and might quote what they were given.
    pub fn scrub(&self, text: &str) -> String {
        scrub_with(text, &self.secrets)
    }

    /// A Redis client for this configuration.
    pub(crate) fn client(&self) -> Result<Client, Error> {
        let result = match &self.tls_root_cert {
            Some(pem) if self.is_tls() => {
                install_crypto_provider();
                Client::build_with_tls(
                    self.info.clone(),
                    TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem.to_vec()),
                    },
                )
            }
            _ => {
                if self.is_tls() {
                    install_crypto_provider();
                }
                Client::open(self.info.clone())
            }
        };
        result.map_err(|error| Error::InvalidUrl {
            url: self.redacted.to_string(),
            reason: self.scrub(&error.to_string()),
        })
    }

    /// A connection manager that reconnects by itself, without connecting yet. Commands on it
    /// time out after `response_timeout` (`None`: the configured one).
    pub(crate) fn connection(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<Connection, Error> {
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(response_timeout.unwrap_or(self.response_timeout)))
            // Fail fast and let the caller's loop (or the emitter's timeout) decide what to do.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        ConnectionManager::new_lazy_with_config(self.client()?, manager_config)
            .map(Connection::new)
            .map_err(|error| self.error(&error))
    }

    /// A crate error from a Redis client error, classified and scrubbed.
    /// Classifies an error of the Redis client ([`Error::Unavailable`] when Redis could not be
    /// reached, [`Error::Protocol`] for an answer that did not parse, [`Error::Server`] for a
    /// refused command), with the password scrubbed from its message.
    pub fn error(&self, error: &redis::RedisError) -> Error {
        Error::from_redis(error, self)
    }

    pub(crate) fn response_timeout_value(&self) -> Duration {
        self.response_timeout
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted)
            .field("key_prefix", &self.prefix)
            .field("stream_max_len", &self.stream_max_len)
            .field("claim_ttl", &self.claim_ttl)
            .field("done_ttl", &self.done_ttl)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("tls_root_cert", &self.tls_root_cert.as_ref().map(|_| "set"))
            .field("idempotency_claims", &self.idempotency_claims)
            .finish()
    }
}

/// Installs the `ring` crypto provider as the process default for TLS, unless one is installed.
fn install_crypto_provider() {
    // An error means another provider is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `url` with the password of its user-info part and of a `pass` / `password` query parameter
/// replaced by `***`. Anything that does not parse as a URL is shown up to the user-info only.
///
/// When the URL holds an `@`, its user-info is everything between `://` and the last `@`, even
/// where a `/`, `?` or `#` of an unencoded password would end the authority of a strict parser:
/// over-masking beats showing a password. All of the user-info after its first `:` is masked; a
/// user-info without `:` that holds `/`, `?` or `#` is masked whole.
///
/// ```
/// use domain_events_redis::redact_url;
///
/// assert_eq!(redact_url("rediss://app:s3cret@cache:6380/1"), "rediss://app:***@cache:6380/1");
/// assert_eq!(redact_url("redis://:s3cret@cache"), "redis://:***@cache");
/// assert_eq!(redact_url("redis://:Pa/ss?w#rd@cache:6379/0"), "redis://:***@cache:6379/0");
/// assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
/// assert_eq!(redact_url("redis+unix:///run/redis.sock?pass=s3cret"), "redis+unix:///run/redis.sock?pass=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL; hide anything that looks like credentials.
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("{MASK}@{host}"),
            None => url.to_owned(),
        };
    };
    let Some((user_info, after)) = rest.rsplit_once('@') else {
        return format!("{scheme}://{}", redact_query(rest));
    };
    let user_info = match user_info.split_once(':') {
        Some((user, _password)) if !user.contains(['/', '?', '#']) => format!("{user}:{MASK}"),
        Some(_) => MASK.to_owned(),
        None if user_info.contains(['/', '?', '#']) => MASK.to_owned(),
        None => user_info.to_owned(),
    };
    format!("{scheme}://{user_info}@{}", redact_query(after))
}

/// The host, path, query and fragment of a URL with secret query parameters masked.
fn redact_query(rest: &str) -> String {
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (rest, None),
    };
    let mut out = match before_fragment.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret_param(name) => format!("{name}={MASK}"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => before_fragment.to_owned(),
    };
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "pass" | "password")
}

/// Every form of the URL's secrets to scrub from messages: the password of the user-info as
/// [`redact_url`] delimits it (everything after the first `:` up to the last `@`, or the whole
/// user-info where it holds `/`, `?` or `#`), also as a strict parser would delimit it (up to the
/// first `/`, `?` or `#`), and the values of `pass` / `password` query parameters; each raw,
/// percent-decoded and percent-encoded.
fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let mut add = |secret: &str| {
        let decoded = percent_decode(secret);
        secrets.extend([
            percent_encode(&decoded, |b| {
                b.is_ascii_alphanumeric() || b"-._~".contains(&b)
            }),
            // As a WHATWG URL serializer writes a user-info.
            percent_encode(&decoded, |b| {
                b.is_ascii_graphic() && !b"\"#<>?`{}/:;=@[\\]^|".contains(&b)
            }),
            secret.to_owned(),
            decoded,
        ]);
    };
    if let Some((_, rest)) = url.split_once("://") {
        if let Some((user_info, _)) = rest.rsplit_once('@') {
            match user_info.split_once(':') {
                Some((user, password)) => {
                    add(password);
                    if user.contains(['/', '?', '#']) {
                        add(user_info);
                    }
                    // What a strict parser takes for the password (or a port), should it
                    // report it; too short a piece would mask unrelated text.
                    let strict = password.split(['/', '?', '#']).next().unwrap_or_default();
                    if strict.chars().count() >= 3 {
                        add(strict);
                    }
                }
                None if user_info.contains(['/', '?', '#']) => add(user_info),
                None => {}
            }
        }
        // Query parameters anywhere in the URL (inside an over-long user-info too).
        let before_fragment = rest.split('#').next().unwrap_or(rest);
        if let Some((_, query)) = before_fragment.split_once('?') {
            for pair in query.split(['&', '@']) {
                if let Some((name, value)) = pair.split_once('=')
                    && is_secret_param(name)
                {
                    add(value);
                }
            }
        }
    } else if let Some((credentials, _)) = url.rsplit_once('@') {
        add(credentials);
    }
    secrets.retain(|secret| !secret.is_empty());
    // Longest first, so that no shorter form leaves a piece of a longer one.
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    secrets
}

/// Decodes `%XX` escapes; invalid escapes and invalid UTF-8 are kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// `text` with every byte that `keep` refuses written as `%XX`.
fn percent_encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if keep(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` with each of `secrets` replaced by `***`.
fn scrub_with(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_passwords_in_every_form() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://user:pw@host:1/2", "redis://user:***@host:1/2"),
            ("redis://:pw@host", "redis://:***@host"),
            (
                "rediss://user:p%40ss:w@host/#insecure",
                "rediss://user:***@host/#insecure",
            ),
            ("redis://user@host", "redis://user@host"),
            ("redis://u:p@ss@host", "redis://u:***@host"),
            (
                "redis+unix:///tmp/r.sock?db=1&pass=pw",
                "redis+unix:///tmp/r.sock?db=1&pass=***",
            ),
            (
                "unix:///tmp/r.sock?PASSWORD=pw#x",
                "unix:///tmp/r.sock?PASSWORD=***#x",
            ),
            ("user:pw@host:6379", "***@host:6379"),
            ("", ""),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn the_password_never_shows_in_debug_or_errors() {
        let config = RedisConfig::new("redis://alice:t0p%2Fsecret@127.0.0.1:1/0").expect("valid");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("t0p") && debug.contains("alice:***@127.0.0.1:1/0"),
            "{debug}"
        );
        assert_eq!(
            config.scrub("auth t0p/secret failed, t0p%2Fsecret"),
            "auth *** failed, ***"
        );

        let err =
            RedisConfig::new("redis://alice:t0psecret@host:notaport").expect_err("invalid port");
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
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
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
    /// or percent-encoded, with a valid address or a bad port.
    fn urls(password: &str) -> Vec<String> {
        let mut urls = Vec::new();
        for scheme in ["redis", "rediss"] {
            for user in ["app", ""] {
                for secret in [password.to_owned(), encode(password)] {
                    for host in ["127.0.0.1:6379/0", "127.0.0.1:notaport", "cache"] {
                        urls.push(format!("{scheme}://{user}:{secret}@{host}"));
                    }
                }
            }
        }
        urls
    }

    #[test]
    fn passwords_with_url_delimiters_never_show() {
        for password in NASTY_PASSWORDS {
            for url in urls(password) {
                let redacted = redact_url(&url);
                assert_no_trace(&redacted, password, &format!("redact_url({url})"));
                assert!(redacted.contains(":***@"), "{url} -> {redacted}");
                match RedisConfig::new(&url) {
                    Ok(config) => {
                        assert_no_trace(&format!("{config:?}"), password, &url);
                        assert_no_trace(config.redacted_url(), password, &url);
                        let message =
                            format!("auth {password} / {} / {url} failed", encode(password));
                        assert_no_trace(&config.scrub(&message), password, &url);
                    }
                    Err(error) => {
                        assert_no_trace(&format!("{error} {error:?}"), password, &url);
                    }
                }
            }
        }
    }

    #[test]
    fn the_user_info_runs_to_the_last_at() {
        let cases = [
            (
                "redis://:Pa/ssWORD@127.0.0.1:6379",
                "redis://:***@127.0.0.1:6379",
            ),
            ("redis://user:Lim1ted:Pw@/#x@host", "redis://user:***@host"),
            (
                "redis://u:p?x=1@host:1/2?a=b#f",
                "redis://u:***@host:1/2?a=b#f",
            ),
            ("redis://host/0?x=a@b", "redis://***@b"),
            ("rediss://app@cache:6380/1", "rediss://app@cache:6380/1"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
        let error = RedisConfig::new("redis://:Pa/ssWORD@127.0.0.1:6379").expect_err("invalid");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("ssWORD"), "{shown}");
    }

    #[test]
    fn tls_urls_are_recognised_and_defaults_apply() {
        let config = RedisConfig::new("rediss://cache.example:6380").expect("valid");
        assert!(config.is_tls());
        assert!(config.client().is_ok());
        assert_eq!(config.prefix(), DEFAULT_KEY_PREFIX);
        assert_eq!(config.max_len(), DEFAULT_STREAM_MAX_LEN);
        assert_eq!(config.claim_ttl_value(), Duration::from_secs(86_400));
        assert_eq!(config.done_ttl_value(), Duration::from_secs(7 * 86_400));
        assert!(!RedisConfig::new("redis://cache").expect("valid").is_tls());
        assert!(RedisConfig::new("http://cache").is_err());
    }
}
