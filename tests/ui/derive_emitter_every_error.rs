// Every problem of the `emitter` attributes is reported in one build: an unknown argument (with
// the closest known one), a `crate` that is not a path and a malformed type string.
#[derive(domain_events::Emitter)]
#[emitter(
    catalog = domain_events_catalog,
    evnets("image:variation_started"),
    crate = "::domain events",
    events("image:variation_completed", "Image-Variation"),
)]
struct ImageEvents {
    emitter: domain_events::Emitter,
}

fn main() {}
