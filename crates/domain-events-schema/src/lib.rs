//! The schema core of domain-events: load TOML event schemas, validate them (reporting every
//! problem with file, line and column), and turn them into Rust code and JSON Schema.
//!
//! The proc macro, the command-line tool, the xtask and the tests all call this crate; nothing
//! else parses or validates schema files.
//!
//! ```
//! use domain_events_schema::{Catalog, CodegenSettings};
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
//! let catalog = Catalog::load(dir.path()).unwrap();
//! assert_eq!(catalog.events().next().unwrap().type_string, "image:variation_started");
//! let tokens = catalog.generate(&CodegenSettings::new()); // Rust code: a TokenStream
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

pub use codegen::{CodegenSettings, DEFAULT_CRATE_PATH};
pub use export::{
    DEFAULT_API_VERSION, DEFAULT_BULLMQ_PREFIX, DEFAULT_BULLMQ_QUEUE, DEFAULT_KEY_PREFIX,
    DEFAULT_REDIS_HOST, DEFAULT_SCHEMA_ID_BASE, DEFAULT_TITLE, ExportSettings,
};

impl Catalog {
    /// Loads and validates every `*.toml` file in `dir`. All problems of all files are returned at
    /// once; nothing is generated from a folder with problems. Messages name files by `dir` as
    /// given.
    pub fn load(dir: &Path) -> Result<Catalog, Diagnostics> {
        Self::load_as(dir, dir)
    }

    /// [`load`](Self::load), naming the folder `display_dir` in messages (e.g. the path relative
    /// to the manifest: `schemas/image.toml:3:7: error: ...`).
    pub fn load_as(dir: &Path, display_dir: &Path) -> Result<Catalog, Diagnostics> {
        let mut diags = Diagnostics::new();
        let files = load::load_dir(dir, display_dir, &mut diags);
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
    pub fn generate(&self, settings: &CodegenSettings) -> proc_macro2::TokenStream {
        codegen::generate(self, settings)
    }
}
