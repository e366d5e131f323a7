#[derive(domain_events::Emitter)]
struct ImageEvents {
    emitter: domain_events::Emitter,
    name: String,
}

fn main() {}
