domain_events::include_events!("/etc/schemas");

fn main() {}
