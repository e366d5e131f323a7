//! Once per catalog: `DomainEventType`, `DomainEvent` and `EVENTS`.

use proc_macro2::TokenStream;
use quote::quote;

use super::types::{Cx, ident};

pub(crate) fn event_set(cx: &Cx<'_>) -> TokenStream {
    let rt = &cx.rt;
    let p = &cx.private;
    let events: Vec<_> = cx.catalog.events().collect();

    // DomainEventType: one variant per event type.
    let variants: Vec<syn::Ident> = events.iter().map(|e| ident(&e.variant)).collect();
    let type_strings: Vec<&str> = events.iter().map(|e| e.type_string.as_str()).collect();
    let categories: Vec<&str> = events.iter().map(|e| e.category.as_str()).collect();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    let latest: Vec<u32> = events.iter().map(|e| e.latest().version).collect();
    let type_docs = events.iter().map(|e| {
        let first = e
            .description
            .as_deref()
            .and_then(|d| d.lines().next())
            .unwrap_or("");
        format!(" `{}`: {first}", e.type_string)
    });
    let deprecated = events
        .iter()
        .map(|e| e.deprecated.then(|| quote!(#[deprecated])));

    // DomainEvent and EVENTS: one entry per event version.
    let versions: Vec<_> = events
        .iter()
        .flat_map(|e| e.versions.iter().map(move |v| (*e, v)))
        .collect();
    let version_variants: Vec<syn::Ident> = versions
        .iter()
        .map(|(e, v)| ident(&e.version_prefix(v)))
        .collect();
    let aliases: Vec<syn::Ident> = versions
        .iter()
        .map(|(e, v)| ident(&e.envelope_name(v)))
        .collect();
    let payloads: Vec<syn::Ident> = versions
        .iter()
        .map(|(e, v)| ident(&e.payload_name(v)))
        .collect();
    let version_types: Vec<&str> = versions
        .iter()
        .map(|(e, _)| e.type_string.as_str())
        .collect();
    let version_numbers: Vec<u32> = versions.iter().map(|(_, v)| v.version).collect();
    let version_kinds: Vec<syn::Ident> = versions.iter().map(|(e, _)| ident(&e.variant)).collect();
    let indices = 0..versions.len();
    let variant_names = version_variants.iter().map(ToString::to_string);
    // The decoders, sorted by (type string, version) for a binary search.
    let mut sorted: Vec<usize> = (0..versions.len()).collect();
    sorted.sort_by(|&a, &b| {
        (version_types[a], version_numbers[a]).cmp(&(version_types[b], version_numbers[b]))
    });
    let sorted_types = sorted.iter().map(|&i| version_types[i]);
    let sorted_numbers = sorted.iter().map(|&i| version_numbers[i]);
    let sorted_payloads = sorted.iter().map(|&i| &payloads[i]);
    let sorted_variants = sorted.iter().map(|&i| &version_variants[i]);
    let version_docs = versions
        .iter()
        .map(|(e, v)| format!(" `{}` version {}.", e.type_string, v.version));
    let infos = versions.iter().map(|(e, v)| {
        let (t, c, n, ver, is_latest, key, corr, dep) = (
            &e.type_string,
            &e.category,
            &e.name,
            v.version,
            v.latest,
            &v.key.source,
            &v.correlation,
            e.deprecated,
        );
        let desc = v.description.clone().unwrap_or_default();
        quote!(#rt::EventInfo {
            event_type: #t, category: #c, name: #n, version: #ver, latest: #is_latest,
            key_template: #key, correlation_field: #corr, deprecated: #dep, description: #desc,
        })
    });

    quote! {
        /// Every event type of this catalog. Its string form is the type string
        /// (`Display`, `FromStr` and serde all use it).
        #[allow(deprecated)]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq, ::core::cmp::Eq,
                 ::core::hash::Hash, ::core::cmp::PartialOrd, ::core::cmp::Ord, ::core::fmt::Debug)]
        pub enum DomainEventType {
            #(#[doc = #type_docs] #deprecated #variants,)*
        }

        #[allow(deprecated)]
        impl DomainEventType {
            /// Every event type, in schema order.
            pub const ALL: &'static [Self] = &[#(Self::#variants),*];

            /// The type string, `<category>:<name>`.
            pub const fn as_str(self) -> &'static str {
                match self { #(Self::#variants => #type_strings,)* }
            }

            /// The category.
            pub const fn category(self) -> &'static str {
                match self { #(Self::#variants => #categories,)* }
            }

            /// The event name within its category.
            pub const fn name(self) -> &'static str {
                match self { #(Self::#variants => #names,)* }
            }

            /// The version emitters produce.
            pub const fn version(self) -> u32 {
                match self { #(Self::#variants => #latest,)* }
            }

            /// Everything known about the version emitters produce.
            pub fn info(self) -> &'static #rt::EventInfo {
                let (t, v) = (self.as_str(), self.version());
                // Every type has an entry for its latest version.
                EVENTS.iter().find(|e| e.event_type == t && e.version == v).unwrap_or(&EVENTS[0])
            }
        }

        #[allow(deprecated)]
        const _: () = {
            #[automatically_derived]
            impl ::core::fmt::Display for DomainEventType {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(self.as_str())
                }
            }

            #[automatically_derived]
            impl ::core::str::FromStr for DomainEventType {
                type Err = #rt::UnknownValue;
                fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                    match s {
                        #(#type_strings => ::core::result::Result::Ok(Self::#variants),)*
                        other => ::core::result::Result::Err(#rt::UnknownValue::new(other, "a type string of this catalog")),
                    }
                }
            }

            #[automatically_derived]
            impl #p::serde::Serialize for DomainEventType {
                fn serialize<S: #p::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                    s.serialize_str(self.as_str())
                }
            }

            #[automatically_derived]
            impl<'de> #p::serde::Deserialize<'de> for DomainEventType {
                fn deserialize<D: #p::serde::Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                    #p::from_str_deserialize(d)
                }
            }
        };

        /// Every event version of this catalog, decoded and checked.
        #[allow(deprecated, clippy::large_enum_variant)]
        pub enum DomainEvent {
            #(#[doc = #version_docs] #version_variants(#aliases),)*
        }

        #[allow(deprecated)]
        impl DomainEvent {
            /// Decodes envelope JSON, checking type, version and payload.
            pub fn from_json(bytes: &[u8]) -> ::core::result::Result<Self, #rt::DecodeError> {
                <Self as #rt::EventSet>::decode(&#rt::RawEnvelope::from_slice(bytes)?)
            }

            /// The event type.
            pub fn kind(&self) -> DomainEventType {
                match self { #(Self::#version_variants(_) => DomainEventType::#version_kinds,)* }
            }

            /// The schema version of the payload.
            pub fn version(&self) -> u32 {
                match self { #(Self::#version_variants(_) => #version_numbers,)* }
            }

            /// The variant's position in declaration order: the index of the tables below.
            const fn variant_index(&self) -> usize {
                match self { #(Self::#version_variants(_) => #indices,)* }
            }
        }

        // `Clone`, `Debug` and `PartialEq` as derived, but through one small function per
        // variant, found by `variant_index`: the derived forms are one `match` with an arm per
        // variant binding the payload, whose compile time grows faster than the arm count
        // (the same reason `decode` uses a table). The `_` arms cannot match: each function is
        // called only for its own variant.
        #[allow(deprecated, unreachable_patterns)]
        const _: () = {
            #[automatically_derived]
            impl ::core::clone::Clone for DomainEvent {
                fn clone(&self) -> Self {
                    const CLONE: &[fn(&DomainEvent) -> DomainEvent] = &[
                        #(|e| match e {
                            DomainEvent::#version_variants(p) => DomainEvent::#version_variants(::core::clone::Clone::clone(p)),
                            _ => ::core::unreachable!(),
                        },)*
                    ];
                    CLONE[self.variant_index()](self)
                }
            }

            #[automatically_derived]
            impl ::core::fmt::Debug for DomainEvent {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    const DEBUG: &[fn(&DomainEvent, &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result] = &[
                        #(|e, f| match e {
                            DomainEvent::#version_variants(p) => f.debug_tuple(#variant_names).field(p).finish(),
                            _ => ::core::unreachable!(),
                        },)*
                    ];
                    DEBUG[self.variant_index()](self, f)
                }
            }

            #[automatically_derived]
            impl ::core::cmp::PartialEq for DomainEvent {
                fn eq(&self, other: &Self) -> bool {
                    const EQ: &[fn(&DomainEvent, &DomainEvent) -> bool] = &[
                        #(|a, b| match (a, b) {
                            (DomainEvent::#version_variants(a), DomainEvent::#version_variants(b)) => a == b,
                            _ => false,
                        },)*
                    ];
                    let index = self.variant_index();
                    index == other.variant_index() && EQ[index](self, other)
                }
            }
        };

        #[allow(deprecated)]
        #[automatically_derived]
        impl #rt::EventSet for DomainEvent {
            const EVENTS: &'static [#rt::EventInfo] = EVENTS;

            fn decode(raw: &#rt::RawEnvelope) -> ::core::result::Result<Self, #rt::DecodeError> {
                type Decoder = fn(&#rt::RawEnvelope) -> ::core::result::Result<DomainEvent, #rt::DecodeError>;
                // One small function per version, found by binary search: a table instead of one
                // `match` with an arm per version keeps large catalogs cheap to compile and look up.
                const DECODERS: &[(&str, u32, Decoder)] = &[
                    #((#sorted_types, #sorted_numbers, |raw| raw.decode::<#sorted_payloads>().map(DomainEvent::#sorted_variants)),)*
                ];
                let key = (raw.event_type.as_str(), raw.version);
                match DECODERS.binary_search_by(|(t, v, _)| (*t, *v).cmp(&key)) {
                    ::core::result::Result::Ok(i) => (DECODERS[i].2)(raw),
                    ::core::result::Result::Err(_) => ::core::result::Result::Err(#p::unknown_event::<Self>(key.0, key.1)),
                }
            }

            fn event_type(&self) -> &'static str {
                self.kind().as_str()
            }
        }

        /// Every event version of this catalog, with its key template, correlation field and flags.
        pub const EVENTS: &[#rt::EventInfo] = &[#(#infos),*];
    }
}
