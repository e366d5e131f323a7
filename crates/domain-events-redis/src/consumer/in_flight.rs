//! The entries a consumer holds: read ahead and waiting for a handler slot, or being processed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};

use tokio::time::Instant;

use super::{Delivery, Inner};

/// The entries this consumer holds: read ahead and waiting for a slot, or being processed.
#[derive(Default)]
pub(super) struct InFlight {
    /// `(stream, entry id)`: never claimed again while held here.
    pub(super) entries: HashSet<(Arc<str>, String)>,
    /// The done record keys of the held entries.
    keys: HashMap<String, KeyState>,
}

/// The held entries of one done record key.
#[derive(Default)]
struct KeyState {
    /// How many are held. An entry read while another of its key is held has its done record
    /// checked again just before it runs.
    held: usize,
    /// Whether one of them is running: the next waits until it settled, so its check sees the
    /// done record.
    running: bool,
}

impl InFlight {
    /// Holds `delivery`: `None` if it is held already, else whether another entry held has the
    /// same done record key.
    pub(super) fn hold(&mut self, delivery: &Delivery) -> Option<bool> {
        if !self
            .entries
            .insert((delivery.stream.clone(), delivery.entry.id.clone()))
        {
            return None;
        }
        let Some(checked) = &delivery.checked else {
            return Some(false);
        };
        let state = self.keys.entry(checked.done_key.clone()).or_default();
        state.held += 1;
        Some(state.held > 1)
    }

    /// Whether an entry of `done_key` is running.
    pub(super) fn is_running(&self, done_key: &str) -> bool {
        self.keys.get(done_key).is_some_and(|state| state.running)
    }

    /// Marks the held entry of `done_key` that starts as running.
    pub(super) fn start(&mut self, done_key: &str) {
        if let Some(state) = self.keys.get_mut(done_key) {
            state.running = true;
        }
    }

    /// Lets go of an entry held by [`hold`](Self::hold): one that `ran`, or one released unrun.
    pub(super) fn release(
        &mut self,
        stream: &Arc<str>,
        entry_id: &str,
        done_key: Option<&str>,
        ran: bool,
    ) {
        self.entries.remove(&(stream.clone(), entry_id.to_owned()));
        let Some(done_key) = done_key else {
            return;
        };
        if let Some(state) = self.keys.get_mut(done_key) {
            state.running &= !ran;
            state.held -= 1;
            if state.held == 0 {
                self.keys.remove(done_key);
            }
        }
    }
}

/// An entry being processed; lets go of it in [`InFlight`] when dropped.
pub(super) struct Held {
    pub(super) inner: Arc<Inner>,
    pub(super) stream: Arc<str>,
    pub(super) entry_id: String,
    pub(super) done_key: Option<String>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.inner.lock_in_flight().release(
            &self.stream,
            &self.entry_id,
            self.done_key.as_deref(),
            true,
        );
    }
}

/// An entry read ahead, waiting for a handler slot since `since`.
pub(super) struct Waiting {
    pub(super) delivery: Delivery,
    pub(super) since: Instant,
}

impl Inner {
    pub(super) fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
