//! Type strings and categories read back from rows, as the `&'static str` that
//! [`OutgoingEvent`](domain_events::OutgoingEvent) names them with (generated payloads have them
//! as constants). Each distinct name is leaked once and then reused, so a relay running for
//! months holds one copy of each of the few names its table holds.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};

static NAMES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);

/// The one `&'static` copy of `name`.
pub(crate) fn intern(name: &str) -> &'static str {
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_name_is_leaked_once() {
        let a = super::intern("image:variation_completed");
        let b = super::intern(&String::from("image:variation_completed"));
        assert!(std::ptr::eq(a, b));
    }
}
