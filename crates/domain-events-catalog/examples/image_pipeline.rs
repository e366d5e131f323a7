//! The platform's image-generation pipeline, end to end, on the embedded in-memory bus:
//!
//! ```text
//! image-generator ── variation_queued → variation_started → 9 × family_completed → variation_completed
//!                      │
//!                      ├─► admin-panel     (every image event: updates the status board)
//!                      ├─► analytics       (family and variation completions: generation metrics)
//!                      └─► notifications   (variation completed: tells the user)
//! ```
//!
//! The generator then emits `image:variation_completed` a second time, as a retried job would:
//! the emitter reports it as a duplicate and no consumer sees it twice.
//!
//! Run it with `cargo run -p domain-events-catalog --example image_pipeline`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain_events::{
    ConsumerStats, EmitError, Emitted, Emitter, Envelope, HandlerError, Handlers, MemoryBus,
    Timestamp, Url,
};
use domain_events_catalog::{
    DomainEvent, ImageFamilyCompletedPayload, ImageVariationCompletedPayload,
    ImageVariationQueuedPayload, ImageVariationStartedPayload,
};

/// The events the image generator emits, as typed methods (`emit_image_variation_started`, ...).
#[derive(domain_events::Emitter)]
#[emitter(
    catalog = domain_events_catalog,
    events(
        "image:variation_queued",
        "image:variation_started",
        "image:family_completed",
        "image:variation_completed"
    )
)]
struct ImageGeneratorEvents {
    emitter: Emitter,
}

const FAMILIES: [&str; 9] = [
    "portrait",
    "landscape",
    "square",
    "banner",
    "thumbnail",
    "story",
    "poster",
    "avatar",
    "cover",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(env_filter())
        .with_target(false)
        .init();

    let bus = MemoryBus::new();
    let consumers = [
        (
            "admin-panel",
            bus.consumer("admin-panel", admin_panel()).spawn(),
        ),
        ("analytics", bus.consumer("analytics", analytics()).spawn()),
        (
            "notifications",
            bus.consumer("notifications", notifications()).spawn(),
        ),
    ];

    let events = ImageGeneratorEvents {
        emitter: Emitter::builder("image-generator", bus.clone())
            .timeout(Duration::from_secs(2))
            .build(),
    };
    generate_variation(&events, "var-123", "Autumn").await?;

    // A retried job emits the completion again: same payload, same idempotency key.
    let again = events
        .emit_image_variation_completed(completed("var-123", "Autumn"))
        .await?;
    println!(
        "image-generator: second `image:variation_completed` (key {}) was a duplicate: {} (first event {})",
        again.idempotency_key,
        again.duplicate,
        again
            .existing_event_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    );

    // Let the consumers drain, then stop them gracefully (in-flight handlers finish first).
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!();
    for (name, handle) in consumers {
        let ConsumerStats {
            received,
            handled,
            duplicates,
            ..
        } = handle.shutdown().await;
        println!(
            "{name:>14}: received {received}, handled {handled}, duplicates skipped {duplicates}"
        );
    }
    let stats = events.emitter.stats();
    println!(
        "{:>14}: emitted {}, duplicates {}, failed {}",
        "image-generator", stats.emitted, stats.duplicates, stats.failed
    );
    Ok(())
}

/// What the generator does for one variation: queued, started, each family, completed.
async fn generate_variation(
    events: &ImageGeneratorEvents,
    id: &str,
    name: &str,
) -> Result<(), EmitError> {
    let queued = events
        .emit_image_variation_queued(ImageVariationQueuedPayload {
            variation_id: id.into(),
            variation_name: name.into(),
            family_count: FAMILIES.len() as u64,
            queued_at: Timestamp::now(),
            priority: Some(1),
        })
        .await?;
    report(&queued);

    // Everything that follows was caused by the queued event.
    let caused = ImageGeneratorEvents {
        emitter: events.emitter.with_causation(queued.event_id),
    };
    report(
        &caused
            .emit_image_variation_started(ImageVariationStartedPayload {
                variation_id: id.into(),
                variation_name: name.into(),
                family_count: FAMILIES.len() as u64,
                started_at: Timestamp::now(),
            })
            .await?,
    );
    for (index, family) in FAMILIES.iter().enumerate() {
        report(
            &caused
                .emit_image_family_completed(ImageFamilyCompletedPayload {
                    variation_id: id.into(),
                    variation_name: name.into(),
                    family_name: (*family).into(),
                    family_index: index as u64,
                    public_url: family_url(id, index),
                    generation_time_ms: 8_000 + 500 * index as u64,
                })
                .await?,
        );
    }
    report(
        &caused
            .emit_image_variation_completed(completed(id, name))
            .await?,
    );
    Ok(())
}

fn completed(id: &str, name: &str) -> ImageVariationCompletedPayload {
    ImageVariationCompletedPayload {
        variation_id: id.into(),
        variation_name: name.into(),
        families_completed: FAMILIES.len() as u64,
        total_generation_time_ms: (0..FAMILIES.len() as u64).map(|i| 8_000 + 500 * i).sum(),
        public_urls: (0..FAMILIES.len()).map(|i| family_url(id, i)).collect(),
    }
}

fn family_url(id: &str, index: usize) -> Url {
    // The text is a valid absolute URL by construction; `parse` checks it all the same.
    Url::parse(format!("https://cdn.example/{id}/{index}.png")).unwrap_or_else(|e| panic!("{e}"))
}

fn report(emitted: &Emitted) {
    println!(
        "image-generator: emitted {} ({})",
        emitted.event_type, emitted.idempotency_key
    );
}

/// The admin panel follows every image event to keep its status board current.
fn admin_panel() -> Handlers {
    Handlers::new()
        .knowing::<DomainEvent>()
        .on_category::<DomainEvent, _, _>("image", |event| async move {
            let status = match &event {
                DomainEvent::ImageVariationQueued(e) => {
                    format!("{} queued", e.payload.variation_id)
                }
                DomainEvent::ImageVariationStarted(e) => {
                    format!("{} generating", e.payload.variation_id)
                }
                DomainEvent::ImageFamilyCompleted(e) => {
                    format!(
                        "{} family {}/9 done",
                        e.payload.variation_id,
                        e.payload.family_index + 1
                    )
                }
                DomainEvent::ImageVariationCompleted(e) => {
                    format!("{} complete", e.payload.variation_id)
                }
                other => format!("{} (not shown on the board)", other.kind()),
            };
            println!("   admin-panel: {status}");
            Ok(())
        })
}

/// Analytics counts generation time per family and per variation.
fn analytics() -> Handlers {
    let family_ms = Arc::new(AtomicU64::new(0));
    let total = Arc::clone(&family_ms);
    Handlers::new()
        .knowing::<DomainEvent>()
        .on(move |event: Envelope<ImageFamilyCompletedPayload>| {
            let family_ms = Arc::clone(&family_ms);
            async move {
                family_ms.fetch_add(event.payload.generation_time_ms, Ordering::Relaxed);
                Ok(())
            }
        })
        .on(move |event: Envelope<ImageVariationCompletedPayload>| {
            let seen = total.load(Ordering::Relaxed);
            async move {
                println!(
                    "     analytics: {} took {} ms over {} families ({} ms summed from family events)",
                    event.payload.variation_id,
                    event.payload.total_generation_time_ms,
                    event.payload.families_completed,
                    seen
                );
                Ok::<(), HandlerError>(())
            }
        })
}

/// Notifications tell the user when their variation is ready.
fn notifications() -> Handlers {
    Handlers::new().knowing::<DomainEvent>().on(
        |event: Envelope<ImageVariationCompletedPayload>| async move {
            println!(
                " notifications: \"{}\" is ready: {} images (correlation {}, caused by {})",
                event.payload.variation_name,
                event.payload.public_urls.len(),
                event.correlation_id,
                event
                    .causation_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "nothing".into()),
            );
            Ok(())
        },
    )
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())
}
