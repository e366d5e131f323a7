//! `#[derive(Emitter)]`: typed `emit_<category>_<name>` methods on a struct that holds an
//! `Emitter`, for the events a crate emits.
//!
//! ```text
//! #[derive(domain_events::Emitter)]
//! #[emitter(catalog = domain_events_catalog, events("image:variation_started", "image:variation_completed"))]
//! struct ImageEvents { emitter: domain_events::Emitter }
//! ```

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr, Path};

use crate::ident;

struct Args {
    catalog: Path,
    events: Vec<LitStr>,
    crate_path: Path,
}

fn parse_args(input: &DeriveInput) -> syn::Result<Args> {
    let mut catalog: Option<Path> = None;
    let mut events: Vec<LitStr> = Vec::new();
    let mut crate_path: Path = syn::parse_quote!(::domain_events);
    let mut seen = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("emitter")) {
        seen = true;
        // `catalog = path, events("a:b", "c:d"), crate = "::path"`
        attr.parse_args_with(|stream: syn::parse::ParseStream<'_>| {
            while !stream.is_empty() {
                let key: syn::Ident = stream.call(syn::ext::IdentExt::parse_any)?;
                if key == "events" {
                    let content;
                    syn::parenthesized!(content in stream);
                    events.extend(content.parse_terminated(<LitStr as syn::parse::Parse>::parse, syn::Token![,])?);
                } else if key == "catalog" {
                    let _: syn::Token![=] = stream.parse()?;
                    catalog = Some(stream.call(Path::parse_mod_style)?);
                } else if key == "crate" {
                    let _: syn::Token![=] = stream.parse()?;
                    let lit: LitStr = stream.parse()?;
                    crate_path = lit.parse()?;
                } else {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown `emitter` argument `{key}`; expected `catalog`, `events` or `crate`"),
                    ));
                }
                if !stream.is_empty() {
                    let _: syn::Token![,] = stream.parse()?;
                }
            }
            Ok(())
        })?;
    }
    if !seen {
        return Err(syn::Error::new(
            input.ident.span(),
            "missing `#[emitter(catalog = <path>, events(\"<category>:<name>\", ...))]`",
        ));
    }
    let catalog = catalog.ok_or_else(|| {
        syn::Error::new(
            input.ident.span(),
            "missing `catalog = <path>`: the module or crate where `include_events!` generated the payload types",
        )
    })?;
    if events.is_empty() {
        return Err(syn::Error::new(
            input.ident.span(),
            "missing `events(\"<category>:<name>\", ...)`: the events this type emits",
        ));
    }
    Ok(Args {
        catalog,
        events,
        crate_path,
    })
}

/// The field holding the `Emitter`: the only field, or the one marked `#[emitter]`.
fn emitter_field(input: &DeriveInput) -> syn::Result<TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "`Emitter` can only be derived for a struct",
        ));
    };
    let fields: Vec<_> = match &data.fields {
        Fields::Named(f) => f.named.iter().collect(),
        Fields::Unnamed(f) => f.unnamed.iter().collect(),
        Fields::Unit => Vec::new(),
    };
    let marked: Vec<_> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.attrs.iter().any(|a| a.path().is_ident("emitter")))
        .collect();
    let (index, field) = match (marked.as_slice(), fields.as_slice()) {
        ([one], _) => *one,
        ([], [only]) => (0, only),
        ([], _) => {
            return Err(syn::Error::new(
                input.ident.span(),
                "mark the field that holds the `domain_events::Emitter` with `#[emitter]`",
            ));
        }
        ([_, second, ..], _) => {
            return Err(syn::Error::new(
                second.1.span(),
                "only one field can be `#[emitter]`",
            ));
        }
    };
    Ok(match &field.ident {
        Some(name) => quote!(#name),
        None => {
            let index = syn::Index::from(index);
            quote!(#index)
        }
    })
}

/// Expands `#[derive(Emitter)]`.
pub fn expand_derive_emitter(input: DeriveInput) -> syn::Result<TokenStream> {
    let args = parse_args(&input)?;
    let field = emitter_field(&input)?;
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let rt = &args.crate_path;
    let catalog = &args.catalog;

    let mut methods = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for lit in &args.events {
        let text = lit.value();
        let parts = text
            .split_once(':')
            .filter(|(c, n)| ident::is_snake_case(c) && ident::is_snake_case(n));
        let Some((category, event)) = parts else {
            let e = syn::Error::new(
                lit.span(),
                format!(
                    "`{text}` is not a type string of the form `<category>:<name>` in lower snake_case"
                ),
            );
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
            continue;
        };
        let variant = format!(
            "{}{}",
            ident::upper_camel(category),
            ident::upper_camel(event)
        );
        let payload = syn::Ident::new(&format!("{variant}Payload"), lit.span());
        let method = syn::Ident::new(&format!("emit_{category}_{event}"), lit.span());
        let or_log = syn::Ident::new(&format!("emit_{category}_{event}_or_log"), lit.span());
        let doc = format!(
            " Emits `{text}`: builds the envelope, checks the payload and publishes it within the emitter's timeout."
        );
        let doc_or_log = format!(
            " Emits `{text}` without returning errors: a failure is logged and counted (fire and forget)."
        );
        let mismatch = format!(
            "`{catalog_str}::{variant}Payload` is not the payload of `{text}`",
            catalog_str = quote!(#catalog)
        );
        methods.push(quote! {
            #[doc = #doc]
            pub async fn #method(&self, payload: #catalog::#payload) -> ::core::result::Result<#rt::Emitted, #rt::EmitError> {
                const _: () = ::core::assert!(
                    #rt::__private::str_eq(<#catalog::#payload as #rt::EventPayload>::TYPE, #text),
                    #mismatch
                );
                self.#field.emit(payload).await
            }

            #[doc = #doc_or_log]
            pub async fn #or_log(&self, payload: #catalog::#payload) -> ::core::option::Option<#rt::Emitted> {
                self.#field.emit_or_log(payload).await
            }
        });
    }
    if let Some(e) = errors {
        return Err(e);
    }
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #name #ty_generics #where_clause {
            #(#methods)*
        }
    })
}
