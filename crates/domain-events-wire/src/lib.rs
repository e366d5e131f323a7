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
}
