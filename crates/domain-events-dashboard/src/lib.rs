//! A web dashboard of domain-events on Redis, served by the `domain-events dashboard` command or
//! nested in a service's own axum app: the streams, consumer groups, lag and pending entries at a
//! glance, refreshed live, with each stream's throughput over the last minutes; the dead letters
//! of every group (reason, deliveries, the event with its sensitive fields redacted), with replay
//! and delete when actions are allowed; an event looked up by event id or idempotency key; the
//! event catalog; `/metrics` for Prometheus; and the JSON API behind the pages
//! (docs/dashboard.md).
//!
//! The pages are plain HTML, CSS and JavaScript compiled into the binary: nothing is loaded from
//! anywhere else, so the dashboard works without internet.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use domain_events_dashboard::{Dashboard, router};
//! use domain_events_redis::RedisConfig;
//!
//! let dashboard = Dashboard::builder(RedisConfig::new("redis://127.0.0.1")?)
//!     .catalog(domain_events_schema::Catalog::load("schemas".as_ref())?)
//!     .build()?;
//! // In a service's own app, under a path of its choice:
//! let app: axum::Router = axum::Router::new().nest("/ops/events", router(dashboard));
//! # let _ = app; Ok(()) }
//! ```
//!
//! # Safety by default
//!
//! - **Read-only** unless built with [`DashboardBuilder::allow_actions`]: replay and delete answer
//!   403 otherwise.
//! - **Cross-site requests** cannot act: a replay or delete must carry the per-process token the
//!   page reads from `api/session` in the `x-csrf-token` header (a page of another site can
//!   neither read it nor send the header without a CORS preflight, which is never granted), and
//!   is refused when its `Origin` is not the dashboard's own host or the browser marks it
//!   `Sec-Fetch-Site: cross-site`.
//! - **A bearer token** ([`DashboardBuilder::token`]) guards the API and `/metrics` when given
//!   (`Authorization: Bearer <token>`); the page asks for it once per browser tab. The static
//!   files hold no data and are served to anyone.
//! - **Sensitive fields** are redacted as the schemas say; an event whose type and version the
//!   catalog does not declare (or every event, when no catalog is given) shows no payload at all.
//! - [`serve`] is given its listener: the command line binds to loopback unless told otherwise.
#![deny(missing_docs)]

mod api;
mod assets;
mod catalog;
mod dashboard;
mod error;
mod event_view;
mod guard;
mod metrics;
mod throughput;

use std::future::Future;

use axum::Router;
use axum::routing::{get, post};

pub use dashboard::{
    DEFAULT_HISTORY, DEFAULT_SAMPLE_EVERY, Dashboard, DashboardBuilder, MetricsRender,
};
pub use error::Error;

/// The dashboard's pages, its JSON API (`api/...`) and `metrics`, as a router to serve alone
/// ([`serve`]) or nest in a service's app (`Router::nest("/ops/events", router(dashboard))`).
/// Every path is relative, so the pages work under any prefix.
pub fn router(dashboard: Dashboard) -> Router {
    let api = Router::new()
        .route("/api/session", get(api::session))
        .route("/api/overview", get(api::overview))
        .route("/api/dead-letters", get(api::dead_letters))
        .route("/api/dead-letter", get(api::dead_letter))
        .route("/api/dead-letters/replay", post(api::replay))
        .route("/api/dead-letters/delete", post(api::delete))
        .route("/api/lookup", get(api::lookup))
        .route("/api/catalog", get(api::catalog))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            dashboard.clone(),
            guard::guard,
        ));
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::asset))
        .merge(api)
        .layer(axum::middleware::from_fn(guard::headers))
        .with_state(dashboard)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
///
/// ```no_run
/// # async fn demo(dashboard: domain_events_dashboard::Dashboard) -> Result<(), domain_events_dashboard::Error> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7474").await
///     .map_err(|source| domain_events_dashboard::Error::Bind { addr: "127.0.0.1:7474".into(), source })?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// # let _ = stop; // `stop.send(())` ends it
/// domain_events_dashboard::serve(listener, dashboard, async {
///     let _ = stopped.await;
/// }).await
/// # }
/// ```
pub async fn serve(
    listener: tokio::net::TcpListener,
    dashboard: Dashboard,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    axum::serve(listener, router(dashboard))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve)
}
