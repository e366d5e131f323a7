//! Code generation timings: `Catalog::load` + `generate` in process, and the `cargo build` of
//! scratch crates that `include_events!` 30, 300 and 3,000 generated events.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, ensure};

use super::results::{Codegen, CodegenSize};
use super::run::Env;
use super::stats::{median, round3};

/// Schema sizes of the code generation timings.
const CODEGEN_SIZES: [usize; 3] = [30, 300, 3000];
/// Events per generated schema file.
const EVENTS_PER_FILE: usize = 10;
/// Timed builds per size, `[full, quick]`; the fastest counts. The 300-event build is short
/// enough that one slow build moves the 3,000 ÷ 300 ratio by 20 %, so a full run takes three.
const CODEGEN_BUILDS: [usize; 2] = [3, 1];

/// Times the expansion (`Catalog::load` + `generate`, what the macro runs) in process, and the
/// `cargo build` (dev profile) of a scratch crate per size, its dependencies built beforehand.
pub(super) fn codegen(env: &Env) -> anyhow::Result<Codegen> {
    let dir = env.target.join("bench").join("codegen");
    let root = std::env::current_dir()?;
    write_codegen_workspace(&dir, &root)?;
    let mut sizes = Vec::new();
    for events in CODEGEN_SIZES {
        let schemas = dir.join(format!("gen{events}")).join("schemas");
        let settings = domain_events_schema::CodegenSettings::new();
        let mut runs = Vec::new();
        let mut generated = 0;
        for run in 0..if env.quick { 1 } else { 3 } {
            let started = Instant::now();
            let catalog = domain_events_schema::Catalog::load(&schemas).map_err(|diagnostics| {
                anyhow::anyhow!("generated schemas are invalid:\n{diagnostics}")
            })?;
            let tokens = catalog.generate(&settings);
            runs.push(started.elapsed().as_secs_f64());
            if run == 0 {
                generated = tokens.to_string().len();
            }
        }
        let expand = median(&runs).unwrap_or(f64::NAN);
        eprintln!(
            "  codegen {events:>5} events: load + generate {expand:.3} s ({} KiB of code)",
            generated / 1024
        );
        sizes.push(CodegenSize {
            events,
            expand_seconds: Some(round3(expand)).filter(|x| x.is_finite()),
            generated_bytes: generated,
            compile_seconds: None,
        });
    }

    let compiled: &[usize] = if env.quick {
        &[30, 300]
    } else {
        &CODEGEN_SIZES
    };
    let codegen_target = dir.join("target");
    let cargo = |args: &[&str]| -> anyhow::Result<()> {
        let status = Command::new(&env.cargo)
            .args(args)
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &codegen_target)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
        ensure!(
            status.status.success(),
            "cargo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&status.stderr)
        );
        Ok(())
    };
    eprintln!("  codegen: building the dependencies of the scratch crates (untimed)");
    cargo(&["build", "--offline", "--quiet", "-p", "domain-events"])?;
    for size in sizes.iter_mut() {
        let events = size.events;
        if !compiled.contains(&events) {
            continue;
        }
        let lib = dir.join(format!("gen{events}")).join("src").join("lib.rs");
        // Noise only ever adds time: keep the fastest of the builds.
        let mut seconds = f64::INFINITY;
        for _ in 0..CODEGEN_BUILDS[usize::from(env.quick)] {
            std::fs::write(&lib, lib_rs(events))?;
            let started = Instant::now();
            cargo(&[
                "build",
                "--offline",
                "--quiet",
                "-p",
                &format!("codegen-{events}"),
            ])?;
            seconds = seconds.min(started.elapsed().as_secs_f64());
        }
        eprintln!("  codegen {events:>5} events: cargo build {seconds:.1} s");
        size.compile_seconds = Some(round3(seconds));
    }
    let seconds = |events: usize, of: fn(&CodegenSize) -> Option<f64>| {
        sizes.iter().find(|s| s.events == events).and_then(of)
    };
    let compile = |events| seconds(events, |s| s.compile_seconds);
    let expand = |events| seconds(events, |s| s.expand_seconds);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(round3(a / b)),
        _ => None,
    };
    let compile_ratio = ratio(compile(3000), compile(300));
    let expand_ratio = ratio(expand(3000), expand(300));
    let compile_ratio_300_30 = ratio(compile(300), compile(30));
    Ok(Codegen {
        sizes,
        events_per_file: EVENTS_PER_FILE,
        profile: "dev".to_owned(),
        builds: Some(CODEGEN_BUILDS[usize::from(env.quick)] as u64),
        compile_ratio_3000_300: compile_ratio,
        compile_ratio_300_30,
        expand_ratio_3000_300: expand_ratio,
        goal: "3,000 events within 12× the cost of 300".to_owned(),
        met: compile_ratio
            .map(|r| r <= 12.0)
            .or(expand_ratio.map(|r| r <= 12.0)),
    })
}

/// `include_events!` on the crate's schema folder; the size in a comment makes each write a
/// change, so every timed build compiles the crate again.
fn lib_rs(events: usize) -> String {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "//! {events} generated events (benchmark of code generation, build {stamp}).\n\
         #![allow(missing_docs)]\n\
         domain_events::include_events!(\"schemas\");\n"
    )
}

/// A scratch workspace with one crate per size, `gen<N>/schemas/*.toml` holding N events.
fn write_codegen_workspace(dir: &Path, root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let members: Vec<String> = CODEGEN_SIZES
        .iter()
        .map(|n| format!("\"gen{n}\""))
        .collect();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )?;
    if !dir.join("Cargo.lock").exists() {
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))
            .context("cannot copy Cargo.lock")?;
    }
    let runtime = root.join("crates").join("domain-events");
    for events in CODEGEN_SIZES {
        let krate = dir.join(format!("gen{events}"));
        let schemas = krate.join("schemas");
        if schemas.exists() {
            std::fs::remove_dir_all(&schemas)?;
        }
        std::fs::create_dir_all(&schemas)?;
        std::fs::create_dir_all(krate.join("src"))?;
        std::fs::write(
            krate.join("Cargo.toml"),
            format!(
                "[package]\nname = \"codegen-{events}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [dependencies]\ndomain-events = {{ path = {:?} }}\n",
                runtime.display().to_string()
            ),
        )?;
        std::fs::write(krate.join("src").join("lib.rs"), lib_rs(events))?;
        for file in 0..events.div_ceil(EVENTS_PER_FILE) {
            let count = EVENTS_PER_FILE.min(events - file * EVENTS_PER_FILE);
            std::fs::write(
                schemas.join(format!("c{file:04}.toml")),
                schema_file(file, count),
            )?;
        }
    }
    Ok(())
}

/// One category `c<file>` of `count` events with the field types of the real catalog.
fn schema_file(file: usize, count: usize) -> String {
    let category = format!("c{file:04}");
    let mut text = format!(
        "category = \"{category}\"\ndescription = \"Generated category {file}.\"\ncorrelation = \"entityId\"\nversion = 1\n"
    );
    for event in 0..count {
        let name = format!("event_{event:02}");
        let _ = write!(
            text,
            "\n[events.{name}]\n\
             description = \"Generated event {event} of category {file}.\"\n\
             idempotency_key = \"{category}_{name}:{{entityId}}:{{sequence}}\"\n\n\
             [events.{name}.fields]\n\
             entityId   = {{ type = \"string\", min_length = 1, description = \"Id of the entity.\" }}\n\
             sequence   = {{ type = \"uint\", description = \"Sequence number.\" }}\n\
             label      = {{ type = \"string\", description = \"Display name.\" }}\n\
             happenedAt = {{ type = \"timestamp\", description = \"When it happened.\" }}\n\
             link       = {{ type = \"url\", description = \"Where to look.\" }}\n\
             tags       = {{ type = \"list<string>\", description = \"Tags.\" }}\n\
             score      = {{ type = \"int?\", description = \"Score, when known.\" }}\n\
             active     = {{ type = \"bool\", description = \"Whether it is active.\" }}\n"
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_schemas_are_valid_at_every_size() {
        let sources: Vec<(String, String)> = (0..3)
            .map(|file| {
                (
                    format!("c{file:04}.toml"),
                    schema_file(file, EVENTS_PER_FILE),
                )
            })
            .collect();
        let borrowed: Vec<(&str, &str)> = sources
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let catalog =
            domain_events_schema::Catalog::from_sources(&borrowed).expect("valid schemas");
        assert_eq!(catalog.events().count(), 3 * EVENTS_PER_FILE);
    }
}
