domain_events::include_events!("no/such/folder");

fn main() {}
