//! The export folder other teams use (CONTRACT.md section 3): `index.json` plus a payload and an
//! envelope schema per event version.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::Settings;
use crate::json_schema;
use crate::model::Catalog;

/// Every file of the export, by path relative to the export folder, with its contents.
/// Deterministic: the same catalog always gives the same bytes.
pub fn render(catalog: &Catalog, settings: &Settings) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut index = Vec::new();
    for event in catalog.events() {
        for version in &event.versions {
            let payload_path = json_schema::payload_path(event, version);
            let event_path = json_schema::event_path(event, version);
            let sensitive: Vec<&str> = version
                .fields
                .iter()
                .filter(|f| f.sensitive)
                .map(|f| f.name.as_str())
                .collect();
            index.push(json!({
                "type": event.type_string,
                "category": event.category,
                "name": event.name,
                "version": version.version,
                "latest": version.latest,
                "deprecated": event.deprecated,
                "idempotencyKey": version.key.source,
                "correlationField": version.correlation,
                "sensitiveFields": sensitive,
                "payloadSchema": payload_path,
                "eventSchema": event_path,
            }));
            let payload = pretty(&json_schema::payload_schema(catalog, settings, event, version));
            let envelope = pretty(&json_schema::event_schema(catalog, settings, event, version));
            // The latest version is also at its versioned path, which its `$id` names.
            files.insert(json_schema::versioned_path(event, version, "payload"), payload.clone());
            files.insert(json_schema::versioned_path(event, version, "event"), envelope.clone());
            files.insert(payload_path, payload);
            files.insert(event_path, envelope);
        }
    }
    files.insert("index.json".into(), pretty(&json!({ "events": index })));
    files
}

fn pretty(value: &Value) -> String {
    // Serializing a `Value` cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes the export into `out` (created if missing). Files of earlier exports that the catalog no
/// longer produces are removed, so the folder always matches the schemas.
pub fn write(catalog: &Catalog, settings: &Settings, out: &Path) -> io::Result<Vec<PathBuf>> {
    let files = render(catalog, settings);
    for stale in stale_files(&files, out)? {
        std::fs::remove_file(stale)?;
    }
    let mut written = Vec::new();
    for (rel, text) in &files {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// Compares `out` with what [`write`] would produce; returns the differences as paths with a
/// reason (`missing`, `differs`, `stale`). Empty means up to date.
pub fn check(
    catalog: &Catalog,
    settings: &Settings,
    out: &Path,
) -> io::Result<Vec<(PathBuf, &'static str)>> {
    let files = render(catalog, settings);
    let mut problems = Vec::new();
    for (rel, text) in &files {
        let path = out.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == *text => {}
            Ok(_) => problems.push((path, "differs")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => problems.push((path, "missing")),
            Err(e) => return Err(e),
        }
    }
    problems.extend(stale_files(&files, out)?.into_iter().map(|p| (p, "stale")));
    Ok(problems)
}

/// `*.json` files under `out` that the export would not write.
fn stale_files(files: &BTreeMap<String, String>, out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    if !out.exists() {
        return Ok(stale);
    }
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let rel = path
                    .strip_prefix(out)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                if !files.contains_key(&rel) {
                    stale.push(path);
                }
            }
        }
    }
    stale.sort();
    Ok(stale)
}
