//! [`ByType`]: metric handles resolved once per event type.

use std::sync::{Arc, PoisonError, RwLock};

/// Handles of type `H` per event type, made on first use. A handful of types per emitter or
/// consumer group: a short list scanned under a read lock is cheaper than hashing the type.
pub(super) struct ByType<H> {
    entries: RwLock<Vec<(Box<str>, Arc<H>)>>,
}

impl<H> Default for ByType<H> {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
        }
    }
}

impl<H> ByType<H> {
    /// The handles of `event_type`, if made already.
    pub(super) fn get(&self, event_type: &str) -> Option<Arc<H>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|(t, _)| &**t == event_type)
            .map(|(_, handles)| Arc::clone(handles))
    }

    /// The handles of `event_type`, made by `make` unless another thread made them first.
    pub(super) fn insert(&self, event_type: &str, make: impl FnOnce() -> H) -> Arc<H> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, handles)) = entries.iter().find(|(t, _)| &**t == event_type) {
            return Arc::clone(handles);
        }
        let handles = Arc::new(make());
        entries.push((event_type.into(), Arc::clone(&handles)));
        handles
    }

    /// The handles of `event_type`, made by `make` on first use.
    pub(super) fn get_or_insert(&self, event_type: &str, make: impl FnOnce() -> H) -> Arc<H> {
        self.get(event_type)
            .unwrap_or_else(|| self.insert(event_type, make))
    }
}
