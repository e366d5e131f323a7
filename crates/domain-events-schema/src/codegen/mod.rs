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

use crate::Settings;
use crate::model::Catalog;

/// Everything generated for `catalog`: named types, payload structs with their trait impls and
/// envelope aliases, `DomainEventType`, `DomainEvent` and `EVENTS`.
///
/// A `settings.crate_path` that is not a Rust path gives a `compile_error!`, never a silent
/// fallback to `::domain_events`.
pub fn generate(catalog: &Catalog, settings: &Settings) -> TokenStream {
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
