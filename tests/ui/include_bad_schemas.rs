// Two files, four problems: all reported at once, each naming file, line and column.
// `ui-schemas/bad_schemas` is `tests/ui/bad_schemas`, copied next to the crate trybuild builds
// (see tests/compile_fail.rs).
domain_events::include_events!("ui-schemas/bad_schemas");

fn main() {}
