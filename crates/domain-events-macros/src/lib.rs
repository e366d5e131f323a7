//! Proc macros of [domain-events](https://docs.rs/domain-events). Use them through the
//! `domain-events` crate, which re-exports them; all the work happens in `domain-events-schema`.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::LitStr;
use syn::parse::{Parse, ParseStream};

use domain_events_schema::{Catalog, CodegenSettings};

/// Generates the Rust types of a folder of TOML event schemas.
///
/// ```ignore
/// domain_events::include_events!("schemas");
/// // or, with every option:
/// domain_events::include_events!(
///     path = "schemas",            // folder of `*.toml` files, relative to the crate's Cargo.toml
///     crate = "::domain_events",   // how generated code names the runtime crate
/// );
/// ```
///
/// - `path`: the schema folder, relative to `CARGO_MANIFEST_DIR`; absolute paths are rejected.
/// - `crate`: the path to the `domain-events` crate, for crates that rename or re-export it.
///
/// Expands to a payload struct, an `EventPayload` impl and an envelope alias per event version,
/// the `DomainEventType` and `DomainEvent` enums and the `EVENTS` table. Every problem in every
/// schema file is a compile error naming the file, line and column. Editing a schema file rebuilds
/// the crate; a new file needs a `build.rs` with `cargo:rerun-if-changed=<folder>`.
#[proc_macro]
pub fn include_events(input: TokenStream) -> TokenStream {
    expand_include(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives typed `emit_<category>_<name>` methods (and `..._or_log` fire-and-forget variants) for
/// the events a type emits.
///
/// ```ignore
/// #[derive(domain_events::Emitter)]
/// #[emitter(
///     catalog = domain_events_catalog,                       // where `include_events!` put the types
///     events("image:variation_started", "image:variation_completed"),
///     // crate = "::domain_events",                          // optional, as for `include_events!`
/// )]
/// struct ImageEvents {
///     emitter: domain_events::Emitter,                       // the only field, or one marked #[emitter]
/// }
/// ```
///
/// Every problem with the attributes is reported at once. `catalog` must name the module or crate
/// where `include_events!` expanded: the derive reads the declared events from the
/// `__emitter_events!` macro generated there, so an event the catalog does not declare is an error
/// at its name, with the closest declared one ("did you mean `image:variation_completed`?").
#[proc_macro_derive(Emitter, attributes(emitter))]
pub fn derive_emitter(input: TokenStream) -> TokenStream {
    syn::parse::<syn::DeriveInput>(input)
        .and_then(domain_events_schema::codegen::expand_derive_emitter)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The second half of `#[derive(Emitter)]`: called back by the `__emitter_events!` macro
/// that `include_events!` generates, with the event types the catalog declares. Not for direct
/// use.
#[doc(hidden)]
#[proc_macro]
pub fn __emitter_with_events(input: TokenStream) -> TokenStream {
    domain_events_schema::codegen::expand_emitter_with_events(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

struct IncludeArgs {
    path: LitStr,
    crate_path: Option<LitStr>,
}

impl Parse for IncludeArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            let path = input.parse()?;
            let _: Option<syn::Token![,]> = input.parse()?;
            return Ok(Self {
                path,
                crate_path: None,
            });
        }
        let mut path = None;
        let mut crate_path = None;
        while !input.is_empty() {
            let key: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
            let _: syn::Token![=] = input.parse()?;
            let value: LitStr = input.parse()?;
            match key.to_string().as_str() {
                "path" => path = Some(value),
                "crate" => crate_path = Some(value),
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown argument `{key}`; expected `path` or `crate`"),
                    ));
                }
            }
            if !input.is_empty() {
                let _: syn::Token![,] = input.parse()?;
            }
        }
        let path = path.ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "missing the schema folder: `include_events!(\"schemas\")`",
            )
        })?;
        Ok(Self { path, crate_path })
    }
}

fn expand_include(input: TokenStream2) -> syn::Result<TokenStream2> {
    let args: IncludeArgs = syn::parse2(input)?;
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            syn::Error::new(
                args.path.span(),
                "`CARGO_MANIFEST_DIR` is not set; build with cargo",
            )
        })?;
    expand_in(&manifest_dir, args)
}

fn expand_in(manifest_dir: &Path, args: IncludeArgs) -> syn::Result<TokenStream2> {
    let rel = PathBuf::from(args.path.value());
    if rel.is_absolute() {
        return Err(syn::Error::new(
            args.path.span(),
            "absolute paths only work on this machine; give the schema folder relative to the crate's Cargo.toml",
        ));
    }
    let mut settings = CodegenSettings::new();
    if let Some(c) = &args.crate_path {
        if let Err(e) = syn::parse_str::<syn::Path>(&c.value()) {
            return Err(syn::Error::new(
                c.span(),
                format!(
                    "`crate = \"{}\"` is not a Rust path ({e}); write the path to the `domain-events` crate, e.g. `crate = \"::domain_events\"`",
                    c.value()
                ),
            ));
        }
        settings = settings.with_crate_path(c.value());
    }
    let catalog = Catalog::load_as(&manifest_dir.join(&rel), &rel).map_err(|diags| {
        let mut errors = diags
            .items()
            .iter()
            .map(|d| syn::Error::new(args.path.span(), d.located()));
        let mut first = errors
            .next()
            .unwrap_or_else(|| syn::Error::new(args.path.span(), "invalid schemas"));
        for e in errors {
            first.combine(e);
        }
        first
    })?;
    // Rebuild when a schema file changes: the compiler tracks files read by `include_bytes!`.
    let tracked = catalog.files.iter().map(|f| {
        let path = f.to_string_lossy();
        quote!(
            const _: &[u8] = ::core::include_bytes!(#path);
        )
    });
    let code = catalog.generate(&settings);
    Ok(quote! {
        #(#tracked)*
        #code
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tokens: TokenStream2) -> IncludeArgs {
        syn::parse2(tokens).unwrap()
    }

    #[test]
    fn rejects_absolute_paths() {
        let err = expand_in(Path::new("/tmp"), args(quote!("/etc/schemas")))
            .err()
            .unwrap();
        assert!(err.to_string().contains("absolute paths"), "{err}");
    }

    #[test]
    fn a_crate_argument_that_is_not_a_path_is_an_error() {
        let err = expand_in(
            Path::new("/tmp"),
            args(quote!(path = "schemas", crate = "not a path!")),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("is not a Rust path"), "{err}");
    }

    #[test]
    fn keyed_arguments() {
        let a = args(quote!(path = "schemas", crate = "::my_events"));
        assert_eq!(a.path.value(), "schemas");
        assert_eq!(a.crate_path.unwrap().value(), "::my_events");
        assert!(syn::parse2::<IncludeArgs>(quote!(folder = "x")).is_err());
    }

    #[test]
    fn every_schema_file_read_is_tracked_for_rebuilds() {
        let dir = std::env::temp_dir().join(format!("domain-events-macros-{}", std::process::id()));
        let schemas = dir.join("schemas");
        std::fs::create_dir_all(&schemas).unwrap();
        for category in ["alpha", "beta"] {
            let text = format!(
                "category = \"{category}\"\ncorrelation = \"id\"\n[events.happened]\n\
                 idempotency_key = \"{category}:{{id}}\"\nfields = {{ id = \"string\" }}\n"
            );
            std::fs::write(schemas.join(format!("{category}.toml")), text).unwrap();
        }
        let code = expand_in(&dir, args(quote!("schemas")))
            .unwrap()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        for category in ["alpha", "beta"] {
            let path = schemas
                .join(format!("{category}.toml"))
                .to_string_lossy()
                .into_owned();
            assert!(
                code.contains(&format!("include_bytes ! ({path:?})")),
                "{path} not tracked in:\n{code}"
            );
        }
        assert!(code.contains("AlphaHappenedPayload"));
    }

    #[test]
    fn missing_folder_is_an_error_naming_it() {
        let err = expand_in(Path::new("/nonexistent-dir"), args(quote!("schemas")))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("cannot read the schema folder"),
            "{err}"
        );
    }
}
