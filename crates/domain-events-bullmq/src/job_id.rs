//! The BullMQ job id of an event, derived from its idempotency key (docs/contract.md section 5).

/// What every derived job id starts with: a non-digit, so no id is all digits.
pub const JOB_ID_PREFIX: &str = "ik-";

/// The job id of the event whose idempotency key is `idempotency_key`: `ik-` followed by the key
/// with `%` written as `%25` and `:` written as `%3A`.
///
/// BullMQ rejects custom ids that contain `:` or are all digits, and a job key
/// `<prefix>:<queue>:<id>` with a `:` in the id would collide with the queue's own keys. The
/// encoding is injective (`%` is escaped first), so two different keys never share a job id, and
/// BullMQ's own rule "an id whose job hash still exists is not added again" drops a duplicate
/// emission for as long as the job is retained.
///
/// ```
/// use domain_events_bullmq::job_id;
///
/// assert_eq!(job_id("image_complete:var-123"), "ik-image_complete%3Avar-123");
/// assert_eq!(job_id("a%3Ab"), "ik-a%253Ab");
/// ```
pub fn job_id(idempotency_key: &str) -> String {
    let mut id = String::with_capacity(JOB_ID_PREFIX.len() + idempotency_key.len() + 8);
    id.push_str(JOB_ID_PREFIX);
    // The same escaping as a key template's values: one rule for both.
    domain_events::escape_key_value(idempotency_key, &mut id);
    id
}

/// The idempotency key a job id was derived from by [`job_id`], or `None` for an id that is not
/// of that form (an id BullMQ generated, or one a Node.js producer chose).
///
/// ```
/// use domain_events_bullmq::idempotency_key_of;
///
/// assert_eq!(idempotency_key_of("ik-image_complete%3Avar-123").as_deref(), Some("image_complete:var-123"));
/// assert_eq!(idempotency_key_of("42"), None);
/// ```
pub fn idempotency_key_of(job_id: &str) -> Option<String> {
    let encoded = job_id.strip_prefix(JOB_ID_PREFIX)?;
    let mut key = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find('%') {
        let (plain, escape) = rest.split_at(at);
        if plain.contains(':') {
            return None;
        }
        key.push_str(plain);
        if let Some(after) = escape.strip_prefix("%25") {
            key.push('%');
            rest = after;
        } else if let Some(after) = escape.strip_prefix("%3A") {
            key.push(':');
            rest = after;
        } else {
            return None;
        }
    }
    if rest.contains(':') {
        return None;
    }
    key.push_str(rest);
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_example() {
        assert_eq!(
            job_id("image_complete:var-123"),
            "ik-image_complete%3Avar-123"
        );
    }

    #[test]
    fn ids_never_hold_a_colon_and_are_never_all_digits() {
        for key in [
            "",
            "1",
            "123",
            "a:b:c",
            ":",
            "::",
            "%",
            "%3A",
            "%25",
            "email_sending:log-1:2",
            "system_healthy:api:2026-11-26T17:04:05.123Z",
            "ünïcødé:✓",
        ] {
            let id = job_id(key);
            assert!(id.starts_with(JOB_ID_PREFIX), "{id}");
            assert!(!id.contains(':'), "{id}");
            assert!(!id.bytes().all(|b| b.is_ascii_digit()), "{id}");
            assert_eq!(idempotency_key_of(&id).as_deref(), Some(key), "{key}");
        }
    }

    #[test]
    fn the_encoding_is_injective() {
        // Keys that a naive encoding (only `:` escaped) would map to the same id.
        let pairs = [
            ("a:b", "a%3Ab"),
            ("%25", "%"),
            ("a%", "a%25"),
            ("x:%", "x%3A%"),
        ];
        for (one, other) in pairs {
            assert_ne!(job_id(one), job_id(other), "{one} vs {other}");
        }
        assert_eq!(job_id("a%3Ab"), "ik-a%253Ab");
        assert_eq!(job_id("100%:done"), "ik-100%25%3Adone");
    }

    #[test]
    fn ids_of_other_forms_have_no_key() {
        for id in [
            "42",
            "ik",
            "job-1",
            "ik-a:b",
            "ik-%",
            "ik-%3",
            "ik-%41",
            "ik-a%3Ab:",
        ] {
            assert_eq!(idempotency_key_of(id), None, "{id}");
        }
        assert_eq!(idempotency_key_of("ik-").as_deref(), Some(""));
    }
}
