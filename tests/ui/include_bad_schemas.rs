// Two files, three problems: all reported at once, each naming file, line and column.
// trybuild builds this file in target/tests/trybuild/<crate>/, hence the relative path.
domain_events::include_events!("../../../../tests/ui/bad_schemas");

fn main() {}
