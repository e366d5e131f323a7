//! Without the `metrics` feature: the same calls, doing nothing.

use super::Outcome;
use crate::handlers::Handlers;

/// Records nothing.
pub(crate) struct EmitMetrics;

impl EmitMetrics {
    pub(crate) fn new(_transport: &'static str) -> Self {
        Self
    }

    pub(crate) fn published(&self, _event_type: &'static str) {}

    pub(crate) fn duplicate(&self, _event_type: &'static str) {}

    pub(crate) fn failed(&self, _types: &[&'static str], _unknown: bool) {}
}

/// Records nothing.
pub(crate) struct PipelineMetrics;

/// No clock is read.
pub(crate) struct Started;

impl PipelineMetrics {
    pub(crate) fn new(_group: &str) -> Self {
        Self
    }

    pub(crate) fn outcome(&self, _: &Handlers, _: &str, _: Outcome, _dead_lettered: bool) {}

    pub(crate) fn retry(&self, _: &Handlers, _: &str) {}

    pub(crate) fn start(&self) -> Started {
        Started
    }

    pub(crate) fn handlers_ran(&self, _: &Handlers, _: &str, _: Started) {}
}
