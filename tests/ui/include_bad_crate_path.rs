// A `crate` that is not a Rust path is an error, not a silent fallback to `::domain_events`.
domain_events::include_events!(path = "ui-schemas/good_schemas", crate = "::domain events");

fn main() {}
