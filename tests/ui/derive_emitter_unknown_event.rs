// An event the catalog does not declare: the payload type does not exist.
#[derive(domain_events::Emitter)]
#[emitter(catalog = domain_events_catalog, events("image:variation_exploded"))]
struct ImageEvents {
    emitter: domain_events::Emitter,
}

fn main() {}
