//! `install_recorder`: the global recorder without a listener, rendered by the service itself;
//! a second install is refused.

use domain_events::{Emitter, MemoryBus, Url};
use domain_events_catalog::ImageFamilyCompletedPayload;

#[tokio::test]
async fn the_installed_recorder_renders_what_the_emitter_recorded_and_cannot_be_installed_twice() {
    let handle = domain_events_prometheus::install_recorder().unwrap();
    let emitter = Emitter::new("svc", MemoryBus::new());
    emitter
        .emit(ImageFamilyCompletedPayload {
            variation_id: "v".into(),
            variation_name: "Autumn".into(),
            family_name: "f".into(),
            family_index: 1,
            public_url: Url::parse("https://cdn.example/v/1.png").unwrap(),
            generation_time_ms: 1,
        })
        .await
        .unwrap();
    let text = handle.render();
    assert!(
        text.contains(
            "domain_events_emitted_total{type=\"image:family_completed\",transport=\"memory\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("# HELP domain_events_emitted_total Events published by the emitter."),
        "{text}"
    );
    assert!(matches!(
        domain_events_prometheus::install_recorder(),
        Err(domain_events_prometheus::Error::Build(_))
    ));
}
