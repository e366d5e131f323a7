//! Without the `opentelemetry` feature: no trace context is read or followed.

use tracing::Span;

/// None: the spans carry no trace context.
pub(crate) fn current_traceparent() -> Option<String> {
    None
}

/// Does nothing.
pub(crate) fn continue_trace(_span: &Span, _traceparent: Option<&str>) {}
