#[derive(domain_events::Emitter)]
#[emitter(catalog = domain_events_catalog, events("image:variation_completed", "Image-Variation"))]
struct ImageEvents {
    emitter: domain_events::Emitter,
}

fn main() {}
