//! The defaults of the wire contract (`docs/contract.md`) that more than one crate of
//! domain-events needs, each defined once here: the runtime (`domain-events` re-exports this crate
//! as `domain_events::wire`), the transports and the schema library (its export describes the same
//! keys and queues) all use these. No dependencies, so every crate can depend on it, the schema
//! library included (which the runtime's macros depend on, so it cannot depend on the runtime).
#![no_std]

/// The `$id` base of exported JSON Schemas unless configured otherwise
/// (`--id-base`): a payload schema's `$id` is this followed by
/// `<category>/<name>.v<N>.payload.schema.json` (docs/contract.md section 3.5), which is also the
/// CloudEvents `dataschema` (docs/contract.md section 8).
pub const SCHEMA_ID_BASE: &str = "https://schemas.domain-events.dev/";

/// The prefix of every Redis key unless configured otherwise: a category's stream is
/// `domain-events:{<category>}` (docs/contract.md section 4.1).
pub const REDIS_KEY_PREFIX: &str = "domain-events";

/// The BullMQ queue jobs are added to unless configured otherwise, the queue of the platform's
/// `@Processor('DOMAIN_EVENTS')` consumers (docs/contract.md section 5.1).
pub const BULLMQ_QUEUE: &str = "DOMAIN_EVENTS";

/// BullMQ's key prefix unless configured otherwise: `bull`, BullMQ's own default
/// (docs/contract.md section 5.1).
pub const BULLMQ_PREFIX: &str = "bull";

/// The FNV-1a 32-bit hash of `bytes` (offset basis `0x811c9dc5`, prime `0x01000193`): the stable
/// hash the contract uses wherever processes in different languages must agree on a number drawn
/// from a text, such as the Redis partition of a correlation id (docs/contract.md section 4.1) and
/// the outbox's advisory-lock keys (section 10.2).
pub const fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u32).wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_contracts() {
        // docs/contract.md sections 3.5, 4.1 and 5.1 spell these out; changing one breaks every
        // consumer in other languages.
        assert_eq!(SCHEMA_ID_BASE, "https://schemas.domain-events.dev/");
        assert!(SCHEMA_ID_BASE.ends_with('/'));
        assert_eq!(REDIS_KEY_PREFIX, "domain-events");
        assert_eq!(BULLMQ_QUEUE, "DOMAIN_EVENTS");
        assert_eq!(BULLMQ_PREFIX, "bull");
    }

    #[test]
    fn fnv1a32_matches_the_reference_vectors() {
        // The published FNV-1a test vectors; docs/contract.md section 4.1 repeats some.
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }
}
