//! The schema core of domain-events: load TOML event schemas, validate them (reporting every
//! problem with file, line and column), and turn them into Rust code and JSON Schema.
//!
//! The proc macro, the command-line tool, the xtask and the tests all call this crate; nothing
//! else parses or validates schema files.
//!
//! ```
//! use domain_events_schema::{Catalog, Settings};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("image.toml"), r#"
//!     category = "image"
//!     correlation = "variationId"
//!     [events.variation_started]
//!     idempotency_key = "image_started:{variationId}"
//!     [events.variation_started.fields]
//!     variationId = { type = "string", min_length = 1 }
//! "#).unwrap();
//! let catalog = Catalog::load(dir.path(), &Settings::new()).unwrap();
//! assert_eq!(catalog.events().next().unwrap().type_string, "image:variation_started");
//! let tokens = catalog.generate(&Settings::new()); // Rust code, as `proc_macro2::TokenStream`
//! assert!(!tokens.is_empty());
//! ```
#![deny(missing_docs)]

pub(crate) mod asyncapi;
pub(crate) mod catalog_doc;
pub mod codegen;
pub mod diag;
pub mod diff;
pub mod export;
pub(crate) mod ident;
pub mod json_schema;
pub(crate) mod load;
pub mod model;
mod naming;
pub(crate) mod raw;
pub mod redact;
mod shape;
pub(crate) mod typescript;
pub(crate) mod validate;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};
pub use model::Catalog;

/// Options shared by code generation and export.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The path generated code uses to reach the runtime crate (default `::domain_events`).
    pub crate_path: String,
    /// How the schema folder is named in messages (default: the folder as given).
    pub display_dir: Option<PathBuf>,
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

impl Default for Settings {
    fn default() -> Self {
        Self {
            crate_path: "::domain_events".into(),
            display_dir: None,
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

impl Settings {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Generated code reaches the runtime through `path` (like `#[serde(crate = "...")]`).
    pub fn with_crate_path(mut self, path: impl Into<String>) -> Self {
        self.crate_path = path.into();
        self
    }

    /// Names the schema folder `dir` in messages, e.g. the path relative to the manifest.
    pub fn with_display_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.display_dir = Some(dir.into());
        self
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

impl Catalog {
    /// Loads and validates every `*.toml` file in `dir`. All problems of all files are returned at
    /// once; nothing is generated from a folder with problems.
    pub fn load(dir: &Path, settings: &Settings) -> Result<Catalog, Diagnostics> {
        let mut diags = Diagnostics::new();
        let display = settings
            .display_dir
            .clone()
            .unwrap_or_else(|| dir.to_path_buf());
        let files = load::load_dir(dir, &display, &mut diags);
        let catalog = validate::validate(&files, &mut diags);
        diags.finish()?;
        // `validate` returns `None` only after reporting a problem, which `finish` turned into `Err`.
        catalog.ok_or_else(Diagnostics::new)
    }

    /// Validates schema files given as text (`(display name, contents)`), for tests and tools
    /// that do not read from disk. Names must end in `<category>.toml`.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Catalog, Diagnostics> {
        let mut diags = Diagnostics::new();
        let files: Vec<_> = sources
            .iter()
            .map(|(name, text)| {
                let source = diag::SourceFile::new(
                    PathBuf::from(name),
                    (*name).to_owned(),
                    (*text).to_owned(),
                );
                load::parse_source(source, &mut diags)
            })
            .collect();
        let catalog = validate::validate(&files, &mut diags);
        diags.finish()?;
        catalog.ok_or_else(Diagnostics::new)
    }

    /// The Rust code for this catalog (see [`codegen`]).
    pub fn generate(&self, settings: &Settings) -> proc_macro2::TokenStream {
        codegen::generate(self, settings)
    }
}
