//! The Prometheus exporter for the metrics of [`domain_events`]: install it once at start-up and
//! Prometheus scrapes `/metrics`.
//!
//! Depending on this crate turns on the `metrics` feature of `domain-events`, so the emitter and
//! every consumer record (see [`domain_events::metrics`] for the names and labels). The exporter
//! is [`metrics-exporter-prometheus`](https://docs.rs/metrics-exporter-prometheus), configured
//! here with the buckets of the histograms and the help texts of every metric:
//!
//! - [`install`] serves the metrics over HTTP with the exporter's own listener (every path but
//!   `/health` answers with the metrics, so `http://ADDR/metrics` works);
//! - [`install_recorder`] only records, for a service that serves
//!   [`PrometheusHandle::render`] from its own HTTP server;
//! - [`builder`] and [`describe`] are the parts, for a service that configures the exporter
//!   further (global labels, its own metrics' buckets, a local recorder in tests).
//!
//! Install before the first event is emitted or consumed: emitters and consumers resolve their
//! metric handles on first use.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let handle = domain_events_prometheus::install(([127, 0, 0, 1], 9464).into())?;
//! // ... build emitters and consumers; Prometheus scrapes http://127.0.0.1:9464/metrics
//! assert!(handle.render().is_empty() || handle.render().contains("# HELP"));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use domain_events::metrics::{ALL, HANDLER_DURATION, HANDLER_DURATION_BUCKETS, Kind};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
pub use metrics_exporter_prometheus::{
    BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// How often the recorder's upkeep runs (it drains histogram samples between scrapes): the
/// exporter's own default.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the exporter could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not called inside a Tokio runtime (the listener and the upkeep run on it).
    #[error("the Prometheus exporter must be installed inside a Tokio runtime")]
    NoRuntime,
    /// The exporter could not be built or installed: the address is taken, or a recorder is
    /// installed already.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// A [`PrometheusBuilder`] with the buckets of domain-events' histograms (so they are rendered as
/// Prometheus histograms, not summaries). Configure it further, then build or install it; call
/// [`describe`] once the recorder is in place.
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(HANDLER_DURATION.to_owned()),
            HANDLER_DURATION_BUCKETS,
        )
        .unwrap_or_else(|_| unreachable!("the buckets are not empty"))
}

/// Registers the help text (and unit) of every metric of [`domain_events::metrics::ALL`] with the
/// current recorder (the global one, or the local one of `metrics::with_local_recorder`).
pub fn describe() {
    for metric in ALL {
        let (name, help) = (metric.name, metric.help);
        match metric.kind {
            Kind::Counter => describe_counter!(name, Unit::Count, help),
            Kind::Gauge if name.ends_with("_seconds") => {
                describe_gauge!(name, Unit::Seconds, help);
            }
            Kind::Gauge => describe_gauge!(name, help),
            Kind::Histogram => describe_histogram!(name, Unit::Seconds, help),
        }
    }
}

/// Installs the Prometheus recorder globally and serves the metrics on `addr` with the
/// exporter's HTTP listener (`/metrics`, or any path but `/health`). Returns the handle, which
/// renders the same text. Call inside a Tokio runtime; the listener runs on it.
pub fn install(addr: SocketAddr) -> Result<PrometheusHandle, Error> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let (recorder, exporter) = {
        let _entered = runtime.enter();
        builder().with_http_listener(addr).build()?
    };
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(BuildError::from)?;
    runtime.spawn(async move {
        if let Err(error) = exporter.await {
            tracing::error!(?error, "the Prometheus listener stopped");
        }
    });
    describe();
    tracing::info!(%addr, "serving Prometheus metrics");
    Ok(handle)
}

/// Installs the Prometheus recorder globally without a listener: the service serves
/// [`PrometheusHandle::render`] itself. Call inside a Tokio runtime; the upkeep runs on it.
pub fn install_recorder() -> Result<PrometheusHandle, Error> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let handle = builder().install_recorder()?;
    let upkeep = handle.clone();
    runtime.spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    describe();
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_outside_a_runtime_is_an_error() {
        assert!(matches!(install_recorder(), Err(Error::NoRuntime)));
        assert!(matches!(
            install(([127, 0, 0, 1], 0).into()),
            Err(Error::NoRuntime)
        ));
    }

    #[test]
    fn the_handler_duration_is_a_histogram_with_help() {
        let recorder = builder().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            describe();
            metrics::histogram!(HANDLER_DURATION, "group" => "g", "type" => "a:b").record(0.003);
        });
        let text = recorder.handle().render();
        assert!(
            text.contains("# TYPE domain_events_handler_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(
                "domain_events_handler_duration_seconds_bucket{group=\"g\",type=\"a:b\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("# HELP domain_events_handler_duration_seconds Duration of one attempt"),
            "{text}"
        );
    }
}
