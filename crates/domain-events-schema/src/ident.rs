//! Names: what the schema language accepts and how names become Rust identifiers.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// lower snake_case ASCII starting with a letter (`variation_completed`).
pub fn is_snake_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
}

/// lowerCamelCase ASCII starting with a letter (`variationId`).
pub fn is_lower_camel_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// UpperCamelCase ASCII starting with a letter (`Address`).
pub fn is_upper_camel_case(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// `variation_completed` → `VariationCompleted`.
pub fn upper_camel(name: &str) -> String {
    name.to_upper_camel_case()
}

/// The Rust field name of a wire name: snake_case, keywords escaped (`type` → `r#type`).
pub fn rust_field_name(wire: &str) -> String {
    sanitize(&wire.to_snake_case())
}

/// The Rust variant name of an enum value (`hard` → `Hard`, `2fa` → `_2fa`).
pub fn rust_variant_name(value: &str) -> Option<String> {
    let camel = value.to_upper_camel_case();
    if camel.is_empty() {
        return None;
    }
    let ident = if camel.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{camel}")
    } else {
        camel
    };
    Some(ident)
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Escapes Rust keywords as raw identifiers; `self`, `super`, `crate` and `Self` cannot be raw and
/// get a trailing underscore.
pub fn sanitize(ident: &str) -> String {
    match ident {
        "self" | "super" | "crate" | "Self" => format!("{ident}_"),
        _ if KEYWORDS.contains(&ident) => format!("r#{ident}"),
        _ => ident.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(is_snake_case("variation_completed"));
        assert!(is_snake_case("v2"));
        assert!(!is_snake_case("VariationCompleted"));
        assert!(!is_snake_case("variation-completed"));
        assert!(!is_snake_case("_x"));
        assert!(!is_snake_case("x__y"));
        assert!(is_lower_camel_case("variationId"));
        assert!(!is_lower_camel_case("variation_id"));
        assert!(!is_lower_camel_case("VariationId"));
        assert!(is_upper_camel_case("Address"));
        assert!(!is_upper_camel_case("address"));
    }

    #[test]
    fn rust_names() {
        assert_eq!(rust_field_name("variationId"), "variation_id");
        assert_eq!(rust_field_name("type"), "r#type");
        assert_eq!(rust_field_name("self"), "self_");
        assert_eq!(upper_camel("variation_completed"), "VariationCompleted");
        assert_eq!(rust_variant_name("hard").as_deref(), Some("Hard"));
        assert_eq!(rust_variant_name("2fa").as_deref(), Some("V2fa"));
        assert_eq!(rust_variant_name("--"), None);
    }
}
