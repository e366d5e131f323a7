//! One event version: its payload struct, `EventPayload` impl and envelope alias.

use proc_macro2::TokenStream;
use quote::quote;

use super::types::{Cx, docs, ident, object};
use crate::json_schema;
use crate::model::{Event, EventVersion, KeyPart};

pub(crate) fn payload(cx: &Cx<'_>, event: &Event, version: &EventVersion) -> TokenStream {
    let rt = &cx.rt;
    let p = &cx.private;
    let name = ident(&event.payload_name(version));
    let alias = ident(&event.envelope_name(version));
    let type_string = &event.type_string;
    let fallback = format!("Payload of `{type_string}` version {}.", version.version);
    let doc = docs(version.description.as_deref(), &fallback);
    let schema = serde_json::Value::Object(json_schema::payload_body(cx.catalog, event, version))
        .to_string();
    let body = object(
        cx,
        &name,
        doc,
        &version.fields,
        event.deprecated,
        schema,
        true,
    );

    let (category, event_name, v) = (&event.category, &event.name, version.version);
    let key_template = &version.key.source;
    let correlation = &version.correlation;
    let literal_len: usize = version
        .key
        .parts
        .iter()
        .map(|part| {
            if let KeyPart::Literal(l) = part {
                l.len()
            } else {
                16
            }
        })
        .sum();
    let key_parts = version.key.parts.iter().map(|part| match part {
        KeyPart::Literal(text) => match text.chars().collect::<Vec<_>>().as_slice() {
            [one] => quote!(__key.push(#one);),
            _ => quote!(__key.push_str(#text);),
        },
        KeyPart::Field(field) => {
            let field = version.field(field).map(|f| ident(&f.rust_name));
            quote!(#p::key_part(&self.#field, &mut __key);)
        }
    });
    let correlation_field = version.field(correlation).map(|f| ident(&f.rust_name));
    let alias_doc = format!(" The envelope of `{type_string}` version {v}.");

    quote! {
        #body

        #[allow(deprecated)]
        impl #name {
            /// The type string of this event.
            pub const TYPE: &'static str = #type_string;
            /// The schema version of this payload.
            pub const VERSION: u32 = #v;
        }

        #[allow(deprecated)]
        #[automatically_derived]
        impl #rt::EventPayload for #name {
            const TYPE: &'static str = #type_string;
            const CATEGORY: &'static str = #category;
            const NAME: &'static str = #event_name;
            const VERSION: u32 = #v;
            const KEY_TEMPLATE: &'static str = #key_template;
            const CORRELATION_FIELD: &'static str = #correlation;

            fn idempotency_key(&self) -> ::std::string::String {
                let mut __key = ::std::string::String::with_capacity(#literal_len);
                #(#key_parts)*
                __key
            }

            fn correlation_id(&self) -> ::std::string::String {
                #p::correlation(&self.#correlation_field)
            }
        }

        #[doc = #alias_doc]
        #[allow(deprecated)]
        pub type #alias = #rt::Envelope<#name>;
    }
}
