domain_events::include_events!(folder = "schemas");

fn main() {}
