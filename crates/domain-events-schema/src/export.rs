//! The export folder other teams use (docs/contract.md section 3):
//!
//! ```text
//! index.json                                every event version and its schema files
//! <category>/<name>.payload.schema.json     JSON Schema 2020-12 of the latest payload
//! <category>/<name>.event.schema.json       ... and of the whole envelope
//! <category>/<name>.v<N>.{payload,event}.schema.json   every version, the latest too
//! asyncapi.json                             AsyncAPI 3.0.0: Redis streams, BullMQ queue, messages
//! catalog.md                                the catalog for people
//! typescript/index.d.ts                     TypeScript declarations (enum, payloads, envelopes)
//! typescript/index.js                       the runtime `DomainEventType` object (CommonJS)
//! typescript/package.json                   makes `typescript/` an importable CommonJS folder
//! ```

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::model::Catalog;
use crate::{asyncapi, catalog_doc, json_schema, typescript};

/// The default `$id` prefix of exported schemas (docs/contract.md section 3.5): the one
/// definition in `domain_events_wire`, shared with the runtime's CloudEvents `dataschema`.
pub const DEFAULT_SCHEMA_ID_BASE: &str = domain_events_wire::SCHEMA_ID_BASE;

/// The default catalog name in `asyncapi.json` and `catalog.md`.
pub const DEFAULT_TITLE: &str = "domain-events";

/// The default `info.version` of `asyncapi.json`.
pub const DEFAULT_API_VERSION: &str = "1.0.0";

/// The default Redis server named in `asyncapi.json`.
pub const DEFAULT_REDIS_HOST: &str = "localhost:6379";

/// The default Redis key prefix of the category streams (docs/contract.md section 4.1): the one
/// definition in `domain_events_wire`, shared with `domain-events-redis`.
pub const DEFAULT_KEY_PREFIX: &str = domain_events_wire::REDIS_KEY_PREFIX;

/// The default BullMQ queue (docs/contract.md section 5.1): the one definition in
/// `domain_events_wire`, shared with `domain-events-bullmq`.
pub const DEFAULT_BULLMQ_QUEUE: &str = domain_events_wire::BULLMQ_QUEUE;

/// The default BullMQ key prefix (docs/contract.md section 5.1): the one definition in
/// `domain_events_wire`, shared with `domain-events-bullmq`.
pub const DEFAULT_BULLMQ_PREFIX: &str = domain_events_wire::BULLMQ_PREFIX;

/// What an export says beyond the catalog: schema `$id`s, the catalog's name and version, and the
/// Redis and BullMQ addresses `asyncapi.json` and `catalog.md` name. Code generation never reads
/// these (it has [`CodegenSettings`](crate::CodegenSettings)).
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// The URI every exported schema `$id` starts with.
    pub schema_id_base: String,
    /// The name of the catalog in `asyncapi.json` (`info.title`) and `catalog.md`.
    pub title: String,
    /// The version of the catalog document in `asyncapi.json` (`info.version`).
    pub api_version: String,
    /// `host:port` of the Redis server named in `asyncapi.json`.
    pub redis_host: String,
    /// The Redis key prefix of the category streams (docs/contract.md section 4).
    pub key_prefix: String,
    /// The BullMQ queue events are added to (docs/contract.md section 5).
    pub bullmq_queue: String,
    /// The BullMQ key prefix (docs/contract.md section 5).
    pub bullmq_prefix: String,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            schema_id_base: DEFAULT_SCHEMA_ID_BASE.into(),
            title: DEFAULT_TITLE.into(),
            api_version: DEFAULT_API_VERSION.into(),
            redis_host: DEFAULT_REDIS_HOST.into(),
            key_prefix: DEFAULT_KEY_PREFIX.into(),
            bullmq_queue: DEFAULT_BULLMQ_QUEUE.into(),
            bullmq_prefix: DEFAULT_BULLMQ_PREFIX.into(),
        }
    }
}

impl ExportSettings {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `$id` prefix of exported schemas (it should end with `/`).
    pub fn with_schema_id_base(mut self, base: impl Into<String>) -> Self {
        self.schema_id_base = base.into();
        self
    }

    /// Names the catalog in `asyncapi.json` (`info.title`) and as the heading of `catalog.md`.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets `info.version` of `asyncapi.json`.
    pub fn with_api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// Names the Redis server (`host:port`) in `asyncapi.json`.
    pub fn with_redis_host(mut self, host: impl Into<String>) -> Self {
        self.redis_host = host.into();
        self
    }

    /// Sets the Redis key prefix that the stream addresses in `asyncapi.json` start with.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the BullMQ queue name and key prefix named in `asyncapi.json`.
    pub fn with_bullmq(mut self, prefix: impl Into<String>, queue: impl Into<String>) -> Self {
        self.bullmq_prefix = prefix.into();
        self.bullmq_queue = queue.into();
        self
    }
}

/// The AsyncAPI document's path in the export folder.
pub const ASYNCAPI_FILE: &str = "asyncapi.json";

/// The Markdown catalog's path in the export folder.
pub const CATALOG_FILE: &str = "catalog.md";

/// Every file of the export, by path relative to the export folder, with its contents.
/// Deterministic: the same catalog always gives the same bytes.
pub fn render(catalog: &Catalog, settings: &ExportSettings) -> BTreeMap<String, String> {
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
            let payload = pretty(&json_schema::payload_schema(
                catalog, settings, event, version,
            ));
            let envelope = pretty(&json_schema::event_schema(
                catalog, settings, event, version,
            ));
            // The latest version is also at its versioned path, which its `$id` names.
            files.insert(
                json_schema::versioned_path(event, version, "payload"),
                payload.clone(),
            );
            files.insert(
                json_schema::versioned_path(event, version, "event"),
                envelope.clone(),
            );
            files.insert(payload_path, payload);
            files.insert(event_path, envelope);
        }
    }
    files.insert("index.json".into(), pretty(&json!({ "events": index })));
    files.insert(
        ASYNCAPI_FILE.into(),
        pretty(&asyncapi::document(catalog, settings)),
    );
    files.insert(CATALOG_FILE.into(), catalog_doc::render(catalog, settings));
    files.extend(typescript::files(catalog));
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
pub fn write(catalog: &Catalog, settings: &ExportSettings, out: &Path) -> io::Result<Vec<PathBuf>> {
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

/// Compares `out` with what [`write()`] would produce; returns the differences as paths with a
/// reason (`missing`, `differs`, `stale`). Empty means up to date.
pub fn check(
    catalog: &Catalog,
    settings: &ExportSettings,
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

/// Whether a file at `rel` (relative to the export folder, `/`-separated) is of a kind the
/// export writes, so that a leftover one is stale: any `*.json` file, the Markdown catalog at the
/// top, and `*.d.ts` / `*.js` files directly in `typescript/`. Other files (a README, notes, a
/// `.gitattributes`) are never touched.
pub fn is_export_kind(rel: &str) -> bool {
    if rel.ends_with(".json") {
        return true;
    }
    if rel == CATALOG_FILE {
        return true;
    }
    match rel
        .strip_prefix(typescript::DIR)
        .and_then(|r| r.strip_prefix('/'))
    {
        Some(name) => !name.contains('/') && (name.ends_with(".d.ts") || name.ends_with(".js")),
        None => false,
    }
}

/// Files under `out` of a kind the export writes ([`is_export_kind`]) that it would not write.
/// Folders named `node_modules` and hidden folders are not searched.
fn stale_files(files: &BTreeMap<String, String>, out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    if !out.exists() {
        return Ok(stale);
    }
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name != "node_modules" && !name.starts_with('.') {
                    dirs.push(path);
                }
                continue;
            }
            let Ok(rel) = path.strip_prefix(out) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if is_export_kind(&rel) && !files.contains_key(&rel) {
                stale.push(path);
            }
        }
    }
    stale.sort();
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_of_export_kinds_can_be_stale() {
        for rel in [
            "index.json",
            "image/old.event.schema.json",
            "catalog.md",
            "typescript/index.d.ts",
            "typescript/old.js",
            "typescript/package.json",
        ] {
            assert!(is_export_kind(rel), "{rel}");
        }
        for rel in [
            "README.md",
            "image/notes.md",
            "typescript/README.md",
            "typescript/lib/helper.js",
            "typescript.d.ts",
            "script.js",
            ".gitattributes",
        ] {
            assert!(!is_export_kind(rel), "{rel}");
        }
    }

    #[test]
    fn stale_files_leave_unrelated_files_and_node_modules_alone() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        for rel in [
            "README.md",
            "typescript/old.d.ts",
            "typescript/notes.txt",
            "typescript/node_modules/x/index.js",
            "typescript/node_modules/x/package.json",
            ".git/config.json",
            "image/gone.event.schema.json",
        ] {
            let path = out.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let stale = stale_files(&BTreeMap::new(), out).unwrap();
        assert_eq!(
            stale,
            vec![
                out.join("image/gone.event.schema.json"),
                out.join("typescript/old.d.ts"),
            ]
        );
    }
}
