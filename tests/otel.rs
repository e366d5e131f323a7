//! OpenTelemetry in tests: [`Traces`] routes the `tracing` spans of the current thread through a
//! `tracing-opentelemetry` layer into the SDK's in-memory span exporter, and reads them back.
//!
//! The subscriber is the thread's default, so a test using it runs on a current-thread tokio
//! runtime (`#[tokio::test]`): the consumers it spawns run on the same thread and their spans are
//! recorded too, while tests running in parallel on other threads are not.

use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// The spans finished on this thread since [`Traces::install`].
pub struct Traces {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _guard: DefaultGuard,
}

impl Traces {
    /// Installs the in-memory exporter behind a `tracing-opentelemetry` layer as this thread's
    /// default subscriber, until the value is dropped.
    pub fn install() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("domain-events-tests");
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(tracing_opentelemetry::layer().with_tracer(tracer));
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            exporter,
            provider,
            _guard: guard,
        }
    }

    /// Every span finished so far.
    pub fn spans(&self) -> Vec<SpanData> {
        let _ = self.provider.force_flush();
        self.exporter
            .get_finished_spans()
            .expect("the in-memory exporter answers")
    }

    /// The finished spans named `name` whose attribute `key` is `value`.
    pub fn find(&self, name: &str, key: &str, value: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|span| span.name == name && attribute(span, key).as_deref() == Some(value))
            .collect()
    }

    /// The one finished span named `name` whose attribute `key` is `value`, waiting for it up to
    /// `timeout` (a consumer's span finishes after its handler ran).
    pub async fn wait_for(
        &self,
        name: &str,
        key: &str,
        value: &str,
        timeout: Duration,
    ) -> SpanData {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut found = self.find(name, key, value);
            if found.len() > 1 {
                panic!("{} spans `{name}` with {key} = {value}", found.len());
            }
            if let Some(span) = found.pop() {
                return span;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "no span `{name}` with {key} = {value} within {timeout:?}: {:#?}",
                    self.spans().iter().map(|s| &s.name).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The string form of the attribute `key` of `span`.
pub fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The W3C `traceparent` naming `span` (sampled).
pub fn traceparent_of(span: &SpanData) -> String {
    format!(
        "00-{:032x}-{:016x}-01",
        span.span_context.trace_id(),
        span.span_context.span_id()
    )
}

/// The trace id and parent id of a `traceparent`.
pub fn ids_of(traceparent: &str) -> (TraceId, SpanId) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "a traceparent: {traceparent}");
    (
        TraceId::from_hex(parts[1]).expect("a trace id"),
        SpanId::from_hex(parts[2]).expect("a span id"),
    )
}
