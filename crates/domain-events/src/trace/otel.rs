//! With the `opentelemetry` feature: the W3C `traceparent` of the current span, and a span's
//! parent from a `traceparent`, through the `tracing-opentelemetry` layer.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::envelope::is_valid_traceparent;

/// The `traceparent` of the current span, when it belongs to an OpenTelemetry trace (a
/// `tracing-opentelemetry` layer is installed and the span is enabled).
pub(crate) fn current_traceparent() -> Option<String> {
    let context = Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8() & 1,
        )
    })
}

/// Makes the remote span of `traceparent` the OpenTelemetry parent of `span`, which must not
/// have been entered yet. An absent or invalid `traceparent` leaves the span's parent alone.
pub(crate) fn continue_trace(span: &Span, traceparent: Option<&str>) {
    let Some(parent) = traceparent.and_then(span_context) else {
        return;
    };
    let context = opentelemetry::Context::new().with_remote_span_context(parent);
    if let Err(error) = span.set_parent(context) {
        // No OpenTelemetry layer (or the span is disabled): nothing to continue.
        tracing::trace!(%error, "handle span not joined to the event's trace");
    }
}

/// The remote span context of a valid version-00 `traceparent`.
fn span_context(traceparent: &str) -> Option<SpanContext> {
    if !is_valid_traceparent(traceparent) {
        return None;
    }
    let mut parts = traceparent.split('-').skip(1);
    let trace_id = TraceId::from_hex(parts.next()?).ok()?;
    let span_id = SpanId::from_hex(parts.next()?).ok()?;
    let flags = u8::from_str_radix(parts.next()?, 16).ok()?;
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & 1),
        true,
        TraceState::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_becomes_a_remote_span_context() {
        let context =
            span_context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").expect("valid");
        assert_eq!(
            context.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            context.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        assert!(context.is_sampled());
        assert!(context.is_remote());
        assert!(span_context("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(span_context("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
    }
}
