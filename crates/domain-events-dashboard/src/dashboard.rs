//! [`Dashboard`]: what the pages and the API read from (Redis, the catalog) and the settings
//! that say what they may do, built with [`DashboardBuilder`].

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use domain_events_redis::{DeadLetters, Inspector, RedisConfig};
use domain_events_schema::Catalog;

use crate::error::Error;
use crate::throughput::Throughput;

/// How often the streams' `entries-added` counters are sampled for the throughput charts.
pub const DEFAULT_SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How far back the throughput charts go.
pub const DEFAULT_HISTORY: Duration = Duration::from_secs(15 * 60);

/// What `/metrics` answers instead of the dashboard's own gauges: e.g. the `render` of a
/// `metrics-exporter-prometheus` `PrometheusHandle`, `Arc::new(move || handle.render())`.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// The dashboard's state: cheap to clone, shared by every request. Build it with
/// [`Dashboard::builder`] inside a Tokio runtime, then serve it with [`crate::router`] or
/// [`crate::serve`].
#[derive(Clone)]
pub struct Dashboard {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) inspector: Inspector,
    pub(crate) letters: DeadLetters,
    pub(crate) prefix: String,
    pub(crate) catalog: Option<Catalog>,
    pub(crate) allow_actions: bool,
    pub(crate) token: Option<String>,
    /// The token a replay or delete must carry in `x-csrf-token`; random per process.
    pub(crate) csrf: String,
    pub(crate) metrics: Option<MetricsRender>,
    pub(crate) throughput: Throughput,
}

impl Dashboard {
    /// A builder for a dashboard of the streams under `config` (its URL and key prefix).
    pub fn builder(config: RedisConfig) -> DashboardBuilder {
        DashboardBuilder {
            config,
            catalog: None,
            allow_actions: false,
            token: None,
            metrics: None,
            sample_every: DEFAULT_SAMPLE_EVERY,
            history: DEFAULT_HISTORY,
        }
    }

    /// Whether replay and delete are allowed.
    pub fn actions_allowed(&self) -> bool {
        self.inner.allow_actions
    }
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("prefix", &self.inner.prefix)
            .field("allow_actions", &self.inner.allow_actions)
            .field("token", &self.inner.token.as_ref().map(|_| "***"))
            .field("catalog", &self.inner.catalog.is_some())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Dashboard`]; every one has a safe default.
pub struct DashboardBuilder {
    config: RedisConfig,
    catalog: Option<Catalog>,
    allow_actions: bool,
    token: Option<String>,
    metrics: Option<MetricsRender>,
    sample_every: Duration,
    history: Duration,
}

impl DashboardBuilder {
    /// The event catalog: shown on the catalog page, and what says which payload fields are
    /// sensitive. Without one, no payload is shown at all.
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Allow replaying and deleting dead letters (default: read-only).
    pub fn allow_actions(mut self, allow: bool) -> Self {
        self.allow_actions = allow;
        self
    }

    /// Require `Authorization: Bearer <token>` on the API and `/metrics`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// What `/metrics` answers; by default the dashboard's own gauges (stream length, entries
    /// added, lag, pending and dead letters per group).
    pub fn metrics(mut self, render: MetricsRender) -> Self {
        self.metrics = Some(render);
        self
    }

    /// How often the throughput is sampled (default [`DEFAULT_SAMPLE_EVERY`], at least 100 ms).
    pub fn sample_every(mut self, every: Duration) -> Self {
        self.sample_every = every.max(Duration::from_millis(100));
        self
    }

    /// How far back the throughput is kept (default [`DEFAULT_HISTORY`]).
    pub fn history(mut self, history: Duration) -> Self {
        self.history = history;
        self
    }

    /// The dashboard. Must be called inside a Tokio runtime: it starts the task that samples the
    /// throughput, which ends when the last clone of the dashboard is dropped. Does not connect
    /// to Redis yet.
    pub fn build(self) -> Result<Dashboard, Error> {
        if self.token.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config("the bearer token must not be empty".into()));
        }
        let samples = (self.history.as_millis() / self.sample_every.as_millis()).max(2) as usize;
        let inner = Arc::new(Inner {
            inspector: Inspector::new(self.config.clone())?,
            letters: DeadLetters::new(self.config.clone())?,
            prefix: self.config.key_prefix_value().to_owned(),
            catalog: self.catalog,
            allow_actions: self.allow_actions,
            token: self.token,
            csrf: random_token()?,
            metrics: self.metrics,
            throughput: Throughput::new(self.sample_every, samples),
        });
        tokio::spawn(sample(Arc::downgrade(&inner), self.sample_every));
        Ok(Dashboard { inner })
    }
}

/// Samples the streams' counters every `every` while the dashboard lives.
async fn sample(inner: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.inspector.status().await {
            Ok(status) => inner.throughput.record(&status),
            Err(error) => tracing::warn!(%error, "dashboard: cannot sample the streams"),
        }
    }
}

/// 32 random bytes as hex.
fn random_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Config(format!("no random numbers for the CSRF token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
