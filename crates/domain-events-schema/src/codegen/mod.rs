//! Rust code for a catalog, as tokens: what `include_events!` expands to.
//!
//! Generated code reaches the runtime only through the configured crate path (default
//! `::domain_events`), its public API and its `__private` module. Logic lives in runtime helpers;
//! the code here only calls them.

mod emitter;
mod event_set;
mod payload;
mod types;

pub use emitter::{expand_derive_emitter, expand_emitter_with_events};

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::Catalog;

/// The path generated code reaches the runtime crate by, unless configured otherwise.
pub const DEFAULT_CRATE_PATH: &str = "::domain_events";

/// How code is generated: the one setting code generation reads (export settings are
/// [`ExportSettings`](crate::ExportSettings)).
#[derive(Debug, Clone)]
pub struct CodegenSettings {
    /// The path generated code uses to reach the runtime crate (default [`DEFAULT_CRATE_PATH`]).
    pub crate_path: String,
}

impl Default for CodegenSettings {
    fn default() -> Self {
        Self {
            crate_path: DEFAULT_CRATE_PATH.into(),
        }
    }
}

impl CodegenSettings {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Generated code reaches the runtime through `path` (like `#[serde(crate = "...")]`).
    pub fn with_crate_path(mut self, path: impl Into<String>) -> Self {
        self.crate_path = path.into();
        self
    }
}

/// Everything generated for `catalog`: named types, payload structs with their trait impls and
/// envelope aliases, `DomainEventType`, `DomainEvent` and `EVENTS`.
///
/// A `settings.crate_path` that is not a Rust path gives a `compile_error!`, never a silent
/// fallback to `::domain_events`.
pub fn generate(catalog: &Catalog, settings: &CodegenSettings) -> TokenStream {
    if let Err(e) = syn::parse_str::<syn::Path>(&settings.crate_path) {
        let message = format!(
            "the crate path `{}` is not a Rust path ({e}); write the path to the `domain-events` crate, e.g. `::domain_events`",
            settings.crate_path
        );
        return quote!(::core::compile_error!(#message););
    }
    let cx = &types::Cx::new(catalog, settings);
    let named = catalog.types.iter().map(|t| types::named_type(cx, t));
    let payloads = catalog
        .events()
        .flat_map(|e| e.versions.iter().map(move |v| payload::payload(cx, e, v)));
    let set = event_set::event_set(cx);
    let callback = emitter::catalog_callback(catalog);
    quote! {
        #(#named)*
        #(#payloads)*
        #set
        #callback
    }
}
