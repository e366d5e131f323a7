//! The Rust names generated for schema items. Each rule is spelled here once and used by
//! validation (to report collisions), code generation, `#[derive(Emitter)]` and the catalog
//! document, so they can never disagree.

use crate::ident::upper_camel;

/// `ImageVariationCompleted` for `image:variation_completed`: the `DomainEventType` variant, and
/// the prefix of the latest version's types.
pub(crate) fn event_variant(category: &str, event: &str) -> String {
    format!("{}{}", upper_camel(category), upper_camel(event))
}

/// The prefix of a version's types: the event's variant for the latest version, `<variant>V<n>`
/// for older ones (`ImageVariationCompletedV1`); also the version's `DomainEvent` variant.
pub(crate) fn version_prefix(variant: &str, version: u32, latest: bool) -> String {
    if latest {
        variant.to_owned()
    } else {
        format!("{variant}V{version}")
    }
}

/// `<prefix>Payload`: a version's payload struct.
pub(crate) fn payload_struct(prefix: &str) -> String {
    format!("{prefix}Payload")
}

/// `<prefix>Event`: a version's envelope alias.
pub(crate) fn envelope_alias(prefix: &str) -> String {
    format!("{prefix}Event")
}

/// `emit_image_variation_completed`: the method `#[derive(Emitter)]` generates for an event.
pub(crate) fn emitter_method(category: &str, event: &str) -> String {
    format!("emit_{category}_{event}")
}

/// `emit_image_variation_completed_or_log`: its fire-and-forget twin.
pub(crate) fn emitter_method_or_log(category: &str, event: &str) -> String {
    format!("{}_or_log", emitter_method(category, event))
}

/// `emit_image_variation_completed_into`: its twin for any `EventSink` (the outbox).
pub(crate) fn emitter_method_into(category: &str, event: &str) -> String {
    format!("{}_into", emitter_method(category, event))
}

/// `<prefix><Field>`: the enum generated for an inline `enum` field (`ShopOrderPlacedChannel`).
pub(crate) fn inline_enum(prefix: &str, field: &str) -> String {
    format!("{prefix}{}", upper_camel(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_names() {
        let variant = event_variant("image", "variation_completed");
        assert_eq!(variant, "ImageVariationCompleted");
        assert_eq!(version_prefix(&variant, 3, true), "ImageVariationCompleted");
        let v1 = version_prefix(&variant, 1, false);
        assert_eq!(v1, "ImageVariationCompletedV1");
        assert_eq!(payload_struct(&v1), "ImageVariationCompletedV1Payload");
        assert_eq!(envelope_alias(&variant), "ImageVariationCompletedEvent");
        assert_eq!(
            emitter_method("image", "variation_completed"),
            "emit_image_variation_completed"
        );
        assert_eq!(
            emitter_method_or_log("image", "variation_completed"),
            "emit_image_variation_completed_or_log"
        );
        assert_eq!(
            emitter_method_into("image", "variation_completed"),
            "emit_image_variation_completed_into"
        );
        assert_eq!(
            inline_enum("ShopOrderPlaced", "channel"),
            "ShopOrderPlacedChannel"
        );
    }
}
