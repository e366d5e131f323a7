// A `crate` that is not a Rust path is an error, not a silent fallback to `::domain_events`.
#[derive(domain_events::Emitter)]
#[emitter(
    catalog = domain_events_catalog,
    events("image:variation_started"),
    crate = "domain-events"
)]
struct ImageEvents {
    emitter: domain_events::Emitter,
}

fn main() {}
