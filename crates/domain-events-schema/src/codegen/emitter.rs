//! `#[derive(Emitter)]`: typed `emit_<category>_<name>` methods on a struct that holds an
//! `Emitter`, for the events a crate emits, and `emit_<category>_<name>_into(&mut sink, ..)` for
//! any other `EventSink` (the PostgreSQL outbox in the caller's transaction).
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

use crate::model::Catalog;
use crate::{ident, naming};

struct Args {
    catalog: Path,
    events: Vec<LitStr>,
    crate_path: Path,
}

/// Collects errors so that every problem of the attributes is reported at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Reads every `#[emitter(...)]` attribute of the type. Each problem (an unknown argument, a bad
/// `crate` path, a malformed type string, a missing argument) is reported; all of them at once.
fn parse_args(input: &DeriveInput, errors: &mut Errors) -> Option<Args> {
    let mut catalog: Option<Path> = None;
    let mut events: Vec<LitStr> = Vec::new();
    let mut crate_path: Path = syn::parse_quote!(::domain_events);
    let mut seen = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("emitter")) {
        seen = true;
        // `catalog = path, events("a:b", "c:d"), crate = "::path"`
        let parsed = attr.parse_args_with(|stream: syn::parse::ParseStream<'_>| {
            while !stream.is_empty() {
                let key: syn::Ident = stream.call(syn::ext::IdentExt::parse_any)?;
                if key == "events" {
                    let content;
                    syn::parenthesized!(content in stream);
                    for lit in content.parse_terminated(<LitStr as syn::parse::Parse>::parse, syn::Token![,])? {
                        match check_type_string(&lit) {
                            Ok(()) => events.push(lit),
                            Err(e) => errors.push(e),
                        }
                    }
                } else if key == "catalog" {
                    let _: syn::Token![=] = stream.parse()?;
                    catalog = Some(stream.call(Path::parse_mod_style)?);
                } else if key == "crate" {
                    let _: syn::Token![=] = stream.parse()?;
                    let lit: LitStr = stream.parse()?;
                    match lit.parse::<Path>() {
                        Ok(path) => crate_path = path,
                        Err(e) => errors.push(syn::Error::new(
                            lit.span(),
                            format!(
                                "`crate = \"{}\"` is not a Rust path ({e}); write the path to the `domain-events` crate, e.g. `crate = \"::domain_events\"`",
                                lit.value()
                            ),
                        )),
                    }
                } else {
                    let help = match crate::diag::did_you_mean(&key.to_string(), ["catalog", "events", "crate"]) {
                        Some(s) => format!("; did you mean `{s}`?"),
                        None => "; expected `catalog`, `events` or `crate`".into(),
                    };
                    errors.push(syn::Error::new(
                        key.span(),
                        format!("unknown `emitter` argument `{key}`{help}"),
                    ));
                    // Skip its value and go on with the next argument.
                    while !stream.is_empty() && !stream.peek(syn::Token![,]) {
                        stream.parse::<proc_macro2::TokenTree>()?;
                    }
                }
                if !stream.is_empty() {
                    let _: syn::Token![,] = stream.parse()?;
                }
            }
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    if !seen {
        errors.push(syn::Error::new(
            input.ident.span(),
            "missing `#[emitter(catalog = <path>, events(\"<category>:<name>\", ...))]`",
        ));
        return None;
    }
    if catalog.is_none() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "missing `catalog = <path>`: the module or crate where `include_events!` generated the payload types",
        ));
    }
    if events.is_empty() && errors.0.is_none() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "missing `events(\"<category>:<name>\", ...)`: the events this type emits",
        ));
    }
    Some(Args {
        catalog: catalog?,
        events,
        crate_path,
    })
}

/// `<category>:<name>`, both lower snake_case.
fn check_type_string(lit: &LitStr) -> syn::Result<()> {
    let text = lit.value();
    match text.split_once(':') {
        Some((c, n)) if ident::is_snake_case(c) && ident::is_snake_case(n) => Ok(()),
        _ => Err(syn::Error::new(
            lit.span(),
            format!(
                "`{text}` is not a type string of the form `<category>:<name>` in lower snake_case"
            ),
        )),
    }
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

/// Expands `#[derive(Emitter)]`: checks the attributes (reporting every problem at once), then
/// hands the type to the catalog's `__emitter_events!` (generated by `include_events!`),
/// which calls [`expand_emitter_with_events`] back with the event types the catalog declares.
pub fn expand_derive_emitter(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = parse_args(&input, &mut errors);
    if let Err(e) = emitter_field(&input) {
        errors.push(e);
    }
    errors.finish()?;
    let Some(Args {
        catalog,
        crate_path: rt,
        ..
    }) = args
    else {
        // `parse_args` returns `None` only after reporting an error.
        return Err(syn::Error::new(
            input.ident.span(),
            "invalid `#[emitter]` attributes",
        ));
    };
    Ok(quote! {
        #catalog::__emitter_events! {
            { #rt::__private::emitter_with_events }
            #input
        }
    })
}

/// The second half of `#[derive(Emitter)]`: `input` is `[<declared event types>] <the type>`.
/// Every event the type names must be declared; an unknown one is reported at its literal with
/// the closest declared name.
pub fn expand_emitter_with_events(input: TokenStream) -> syn::Result<TokenStream> {
    let (declared, input) = syn::parse::Parser::parse2(
        |stream: syn::parse::ParseStream<'_>| {
            let content;
            syn::bracketed!(content in stream);
            let declared: Vec<String> = content
                .parse_terminated(<LitStr as syn::parse::Parse>::parse, syn::Token![,])?
                .iter()
                .map(LitStr::value)
                .collect();
            let input: DeriveInput = stream.parse()?;
            Ok((declared, input))
        },
        input,
    )?;
    let mut errors = Errors::default();
    let args = parse_args(&input, &mut errors);
    let field = emitter_field(&input).map_err(|e| errors.push(e)).ok();
    for lit in args.iter().flat_map(|a| &a.events) {
        let text = lit.value();
        if !declared.contains(&text) {
            let help = match crate::diag::did_you_mean(&text, declared.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "the catalog declares {}",
                    declared
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            errors.push(syn::Error::new(
                lit.span(),
                format!("unknown event `{text}`; {help}"),
            ));
        }
    }
    errors.finish()?;
    let (Some(args), Some(field)) = (args, field) else {
        return Err(syn::Error::new(
            input.ident.span(),
            "invalid `#[emitter]` attributes",
        ));
    };
    Ok(methods(&input, &args, &field))
}

fn methods(input: &DeriveInput, args: &Args, field: &TokenStream) -> TokenStream {
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let rt = &args.crate_path;
    let catalog = &args.catalog;

    let mut methods = Vec::new();
    for lit in &args.events {
        let text = lit.value();
        let Some((category, event)) = text.split_once(':') else {
            continue;
        };
        let payload_name = naming::payload_struct(&naming::event_variant(category, event));
        let payload = syn::Ident::new(&payload_name, lit.span());
        let method = syn::Ident::new(&naming::emitter_method(category, event), lit.span());
        let or_log = syn::Ident::new(&naming::emitter_method_or_log(category, event), lit.span());
        let into = syn::Ident::new(&naming::emitter_method_into(category, event), lit.span());
        let doc = format!(
            " Emits `{text}`: builds the envelope, checks the payload and publishes it within the emitter's timeout."
        );
        let doc_or_log = format!(
            " Emits `{text}` without returning errors: a failure is logged and counted (fire and forget)."
        );
        let doc_into = format!(
            " Emits `{text}` into `sink` (e.g. the outbox in a database transaction), which builds the envelope with its own source and context."
        );
        let mismatch = format!(
            "`{catalog_str}::{payload_name}` is not the payload of `{text}`",
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

            #[doc = #doc_into]
            pub async fn #into<S: #rt::EventSink>(&self, sink: &mut S, payload: #catalog::#payload) -> ::core::result::Result<S::Output, S::Error> {
                #rt::EventSink::emit(sink, payload).await
            }
        });
    }
    quote! {
        #[automatically_derived]
        impl #impl_generics #name #ty_generics #where_clause {
            #(#methods)*
        }
    }
}

/// What `include_events!` adds for `#[derive(Emitter)]`: `__emitter_events!`, which passes
/// the derive's input back to `expand_emitter_with_events` with the declared event types, so the
/// derive can check the names it is given. The macro is exported under a name unique to the
/// catalog's events and re-exported next to the generated types as `__emitter_events`.
pub(crate) fn catalog_callback(catalog: &Catalog) -> TokenStream {
    let types: Vec<&str> = catalog.events().map(|e| e.type_string.as_str()).collect();
    // FNV-1a over the event types: stable across builds and toolchains.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in types.iter().flat_map(|t| t.bytes().chain([0])) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let exported = syn::Ident::new(
        &format!("__emitter_events_{hash:016x}"),
        proc_macro2::Span::call_site(),
    );
    quote! {
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #exported {
            ({ $($expand:tt)* } $($input:tt)*) => {
                $($expand)*! { [#(#types),*] $($input)* }
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports)]
        pub use #exported as __emitter_events;
    }
}
