//! The platform's image-generation pipeline, end to end:
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
//! - `cargo run -p domain-events-catalog --example image_pipeline`: everything in one process, on
//!   the embedded in-memory bus.
//! - `cargo run -p domain-events-catalog --example image_pipeline -- --redis redis://127.0.0.1:6379`:
//!   the three consumers run as separate processes (this program started with `--role <name>`), the
//!   generator in this one, all talking through Redis Streams.

use std::process::{Child, Command, ExitCode, Stdio};
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
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport};
use tokio::sync::Notify;

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

/// The consuming services, with how many events of one variation each of them handles.
const ROLES: [(&str, u64); 3] = [("admin-panel", 12), ("analytics", 10), ("notifications", 1)];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    redis: Option<String>,
    role: Option<String>,
    variation: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        redis: None,
        role: None,
        variation: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("`{arg}` needs a value"));
        match arg.as_str() {
            "--redis" => args.redis = Some(value()?),
            "--role" => args.role = Some(value()?),
            "--variation" => args.variation = value()?,
            "-h" | "--help" => return Err("usage: image_pipeline [--redis URL]".into()),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: image_pipeline [--redis URL]"
                ));
            }
        }
    }
    if args.variation.is_empty() && args.redis.is_none() {
        args.variation = "var-123".into();
    } else if args.variation.is_empty() {
        // Redis keeps idempotency claims for 24 hours: every run gets a variation of its own.
        let id = uuid::Uuid::now_v7().simple().to_string();
        args.variation = format!("var-{}", &id[id.len() - 8..]);
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_target(false)
        .init();
    let result = match parse_args() {
        Err(message) => Err(message.into()),
        Ok(args) => match (&args.redis, &args.role) {
            (None, _) => in_memory(&args.variation).await,
            (Some(url), None) => over_redis(url, &args.variation).await,
            (Some(url), Some(role)) => consumer_process(url, role, &args.variation).await,
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything in this process, on the embedded bus.
async fn in_memory(variation: &str) -> Result<(), BoxError> {
    let bus = MemoryBus::new();
    let mut consumers = Vec::new();
    for (role, expected) in ROLES {
        let progress = Progress::new(variation, expected);
        let handle = bus
            .consumer(role, handlers(role, &progress))
            .build()
            .spawn();
        consumers.push((role, progress, handle));
    }
    let events = ImageGeneratorEvents {
        emitter: Emitter::builder("image-generator", bus.clone())
            .timeout(Duration::from_secs(2))
            .build(),
    };
    generate_variation(&events, variation, "Autumn").await?;

    println!();
    for (role, progress, handle) in consumers {
        progress.wait(Duration::from_secs(10)).await?;
        let ConsumerStats {
            received,
            handled,
            duplicates,
            ..
        } = handle.shutdown().await?;
        println!(
            "{role:>15}: received {received}, handled {handled}, duplicates skipped {duplicates}"
        );
    }
    print_emitter_stats(&events.emitter);
    Ok(())
}

/// The generator here, each consumer in a process of its own, all through Redis.
async fn over_redis(url: &str, variation: &str) -> Result<(), BoxError> {
    let config = RedisConfig::new(url)?;
    let transport = RedisTransport::new(config.clone())?;
    transport.ping().await?;

    let exe = std::env::current_exe()?;
    let mut children: Vec<(&str, Child)> = Vec::new();
    for (role, _) in ROLES {
        let child = Command::new(&exe)
            .args(["--redis", url, "--role", role, "--variation", variation])
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .spawn()?;
        println!(
            "{:>15}: started {role} as process {}",
            "image-generator",
            child.id()
        );
        children.push((role, child));
    }

    let events = ImageGeneratorEvents {
        emitter: Emitter::builder("image-generator", transport)
            .timeout(Duration::from_secs(2))
            .build(),
    };
    generate_variation(&events, variation, "Autumn").await?;
    print_emitter_stats(&events.emitter);

    let mut failed = Vec::new();
    for (role, mut child) in children {
        let status = tokio::task::spawn_blocking(move || child.wait()).await??;
        if !status.success() {
            failed.push(role);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("consumers failed: {}", failed.join(", ")).into())
    }
}

/// One consuming service, as its own process: reads its group until it has handled its events.
async fn consumer_process(url: &str, role: &str, variation: &str) -> Result<(), BoxError> {
    let expected = ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, n)| *n)
        .ok_or("unknown role")?;
    let progress = Progress::new(variation, expected);
    // The status board shows events in stream order, so the admin panel handles one at a time;
    // the others may work on several at once.
    let concurrency = if role == "admin-panel" { 1 } else { 8 };
    let consumer = RedisConsumer::builder(RedisConfig::new(url)?, role, handlers(role, &progress))
        .consumer_name(format!("{role}-{}", std::process::id()))
        .concurrency(concurrency)
        .build()?
        .spawn();
    let waited = progress.wait(Duration::from_secs(30)).await;
    let ConsumerStats {
        received,
        handled,
        duplicates,
        ..
    } = consumer.shutdown().await?;
    println!("{role:>15}: received {received}, handled {handled}, duplicates skipped {duplicates}");
    waited
}

/// What the generator does for one variation: queued, started, each family, completed, and the
/// completion once more, as a retried job would.
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
                    public_url: family_url(id, index)?,
                    generation_time_ms: 8_000 + 500 * index as u64,
                })
                .await?,
        );
    }
    report(
        &caused
            .emit_image_variation_completed(completed(id, name)?)
            .await?,
    );

    let again = caused
        .emit_image_variation_completed(completed(id, name)?)
        .await?;
    println!(
        "{:>15}: `image:variation_completed` again (key {}): duplicate = {}, first event {}",
        "image-generator",
        again.idempotency_key,
        again.duplicate,
        again
            .existing_event_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    );
    Ok(())
}

fn completed(id: &str, name: &str) -> Result<ImageVariationCompletedPayload, EmitError> {
    Ok(ImageVariationCompletedPayload {
        variation_id: id.into(),
        variation_name: name.into(),
        families_completed: FAMILIES.len() as u64,
        total_generation_time_ms: (0..FAMILIES.len() as u64).map(|i| 8_000 + 500 * i).sum(),
        public_urls: (0..FAMILIES.len())
            .map(|i| family_url(id, i))
            .collect::<Result<_, _>>()?,
    })
}

fn family_url(id: &str, index: usize) -> Result<Url, EmitError> {
    Url::parse(format!("https://cdn.example/{id}/{index}.png")).map_err(|e| {
        EmitError::Invalid(domain_events::ValidationError {
            violations: vec![domain_events::Violation {
                path: "publicUrl".into(),
                message: e.to_string(),
            }],
        })
    })
}

fn report(emitted: &Emitted) {
    println!(
        "{:>15}: emitted {} ({})",
        "image-generator", emitted.event_type, emitted.idempotency_key
    );
}

fn print_emitter_stats(emitter: &Emitter) {
    let stats = emitter.stats();
    println!(
        "{:>15}: emitted {}, duplicates {}, failed {}",
        "image-generator", stats.emitted, stats.duplicates, stats.failed
    );
}

/// Counts the events of this run's variation a consumer handled, so it knows when it is done.
/// (Over Redis a group also reads what earlier runs left in the stream; those are skipped.)
#[derive(Clone)]
struct Progress {
    variation: Arc<str>,
    expected: u64,
    handled: Arc<AtomicU64>,
    done: Arc<Notify>,
}

impl Progress {
    fn new(variation: &str, expected: u64) -> Self {
        Self {
            variation: variation.into(),
            expected,
            handled: Arc::default(),
            done: Arc::default(),
        }
    }

    /// Whether the event belongs to this run; counts it when it does.
    fn track(&self, correlation_id: &str) -> bool {
        if correlation_id != &*self.variation {
            return false;
        }
        if self.handled.fetch_add(1, Ordering::SeqCst) + 1 == self.expected {
            self.done.notify_one();
        }
        true
    }

    async fn wait(&self, limit: Duration) -> Result<(), BoxError> {
        let handled = || self.handled.load(Ordering::SeqCst);
        if handled() < self.expected
            && tokio::time::timeout(limit, self.done.notified())
                .await
                .is_err()
        {
            return Err(format!(
                "handled {} of {} events within {limit:?}",
                handled(),
                self.expected
            )
            .into());
        }
        Ok(())
    }
}

fn handlers(role: &str, progress: &Progress) -> Handlers {
    match role {
        "admin-panel" => admin_panel(progress.clone()),
        "analytics" => analytics(progress.clone()),
        _ => notifications(progress.clone()),
    }
}

/// The admin panel follows every image event to keep its status board current.
fn admin_panel(progress: Progress) -> Handlers {
    Handlers::new()
        .knowing::<DomainEvent>()
        .on_category::<DomainEvent, _, _>("image", move |event| {
            let progress = progress.clone();
            async move {
                let status = match &event {
                    DomainEvent::ImageVariationQueued(e) if progress.track(&e.correlation_id) => {
                        "queued".to_string()
                    }
                    DomainEvent::ImageVariationStarted(e) if progress.track(&e.correlation_id) => {
                        "generating".into()
                    }
                    DomainEvent::ImageFamilyCompleted(e) if progress.track(&e.correlation_id) => {
                        format!(
                            "family {}/{} done",
                            e.payload.family_index + 1,
                            FAMILIES.len()
                        )
                    }
                    DomainEvent::ImageVariationCompleted(e)
                        if progress.track(&e.correlation_id) =>
                    {
                        "complete".into()
                    }
                    _ => return Ok(()),
                };
                println!("{:>15}: {} {status}", "admin-panel", progress.variation);
                Ok(())
            }
        })
}

/// Analytics sums generation time per family and compares it with the variation's total.
fn analytics(progress: Progress) -> Handlers {
    let family_ms = Arc::new(AtomicU64::new(0));
    let summed = Arc::clone(&family_ms);
    let on_completed = progress.clone();
    Handlers::new()
        .knowing::<DomainEvent>()
        .on(move |event: Envelope<ImageFamilyCompletedPayload>| {
            let (family_ms, progress) = (Arc::clone(&family_ms), progress.clone());
            async move {
                if progress.track(&event.correlation_id) {
                    family_ms.fetch_add(event.payload.generation_time_ms, Ordering::SeqCst);
                }
                Ok(())
            }
        })
        .on(move |event: Envelope<ImageVariationCompletedPayload>| {
            let (summed, progress) = (Arc::clone(&summed), on_completed.clone());
            async move {
                if progress.track(&event.correlation_id) {
                    println!(
                        "{:>15}: {} took {} ms over {} families ({} ms summed from family events)",
                        "analytics",
                        event.payload.variation_id,
                        event.payload.total_generation_time_ms,
                        event.payload.families_completed,
                        summed.load(Ordering::SeqCst),
                    );
                }
                Ok::<(), HandlerError>(())
            }
        })
}

/// Notifications tell the user when their variation is ready.
fn notifications(progress: Progress) -> Handlers {
    Handlers::new().knowing::<DomainEvent>().on(
        move |event: Envelope<ImageVariationCompletedPayload>| {
            let progress = progress.clone();
            async move {
                if progress.track(&event.correlation_id) {
                    println!(
                        "{:>15}: \"{}\" is ready: {} images (caused by {})",
                        "notifications",
                        event.payload.variation_name,
                        event.payload.public_urls.len(),
                        event
                            .causation_id
                            .map(|id| id.to_string())
                            .unwrap_or_else(|| "nothing".into()),
                    );
                }
                Ok(())
            }
        },
    )
}
