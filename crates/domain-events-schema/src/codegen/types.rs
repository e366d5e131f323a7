//! Rust types of fields, and the structs and enums of named types.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::CodegenSettings;
use crate::json_schema;
use crate::model::{Catalog, Field, FieldType, NamedKind, NamedType, Number};

/// What every generator needs: the catalog and the path to the runtime.
pub(crate) struct Cx<'a> {
    pub catalog: &'a Catalog,
    /// `::domain_events` (or the configured path).
    pub rt: TokenStream,
    /// `::domain_events::__private`.
    pub private: TokenStream,
    /// The same paths as strings, for `#[serde(crate = "...")]`.
    pub serde_path: String,
}

impl<'a> Cx<'a> {
    pub fn new(catalog: &'a Catalog, settings: &'a CodegenSettings) -> Self {
        // `generate` has checked that the crate path is a path.
        let rt: TokenStream = settings.crate_path.parse().unwrap_or_default();
        let private = quote!(#rt::__private);
        let serde_path = format!("{}::__private::serde", settings.crate_path);
        Self {
            catalog,
            rt,
            private,
            serde_path,
        }
    }
}

/// An identifier that may be a raw identifier (`r#type`).
pub(crate) fn ident(name: &str) -> syn::Ident {
    match name.strip_prefix("r#") {
        Some(raw) => syn::Ident::new_raw(raw, Span::call_site()),
        None => syn::Ident::new(name, Span::call_site()),
    }
}

/// The Rust type of a field's value (without `Option`).
pub(crate) fn rust_type(cx: &Cx<'_>, ty: &FieldType) -> TokenStream {
    let rt = &cx.rt;
    match ty {
        FieldType::String => quote!(::std::string::String),
        FieldType::Int => quote!(i64),
        FieldType::UInt => quote!(u64),
        FieldType::Float => quote!(f64),
        FieldType::Bool => quote!(bool),
        FieldType::Timestamp => quote!(#rt::Timestamp),
        FieldType::Date => quote!(#rt::Date),
        FieldType::Uuid => quote!(#rt::Uuid),
        FieldType::Url => quote!(#rt::Url),
        FieldType::Email => quote!(#rt::Email),
        FieldType::List(inner) => {
            let inner = rust_type(cx, inner);
            quote!(::std::vec::Vec<#inner>)
        }
        FieldType::Map(inner) => {
            let inner = rust_type(cx, inner);
            quote!(::std::collections::BTreeMap<::std::string::String, #inner>)
        }
        FieldType::Named(name) => {
            let name = ident(name);
            quote!(#name)
        }
    }
}

fn field_type(cx: &Cx<'_>, f: &Field) -> TokenStream {
    let ty = rust_type(cx, &f.ty);
    if f.optional {
        quote!(::core::option::Option<#ty>)
    } else {
        ty
    }
}

/// `#[doc = "..."]` lines for an optional description.
pub(crate) fn docs(description: Option<&str>, fallback: &str) -> TokenStream {
    let text = description.unwrap_or(fallback);
    let lines = text.lines().map(|l| format!(" {}", l.trim_end()));
    quote!(#(#[doc = #lines])*)
}

/// A struct with the runtime's traits: serde, `JsonSchema` (the exported schema), a redacting
/// `Debug`, a `Deserialize` that checks constraints, `Validate` and `Check`.
///
/// Payloads check their constraints when read (`check_on_read`); named objects inside them do not,
/// so that the payload reports every violation with its full path (`lines[0].quantity`).
pub(crate) fn object(
    cx: &Cx<'_>,
    name: &syn::Ident,
    doc: TokenStream,
    fields: &[Field],
    deprecated: bool,
    schema: String,
    check_on_read: bool,
) -> TokenStream {
    let rt = &cx.rt;
    let p = &cx.private;
    let serde_path = &cx.serde_path;
    let name_str = name.to_string();

    let decls = fields.iter().map(|f| {
        let ident = ident(&f.rust_name);
        let ty = field_type(cx, f);
        let wire = &f.name;
        let doc = docs(f.description.as_deref(), &format!("`{wire}`"));
        let deprecated = f.deprecated.then(|| quote!(#[deprecated]));
        let serde = if f.optional {
            quote!(#[serde(rename = #wire, default, skip_serializing_if = "::core::option::Option::is_none")])
        } else {
            quote!(#[serde(rename = #wire)])
        };
        quote!(#doc #deprecated #serde pub #ident: #ty,)
    });
    let raw_decls = fields.iter().map(|f| {
        let ident = ident(&f.rust_name);
        let ty = field_type(cx, f);
        let wire = &f.name;
        if f.optional {
            quote!(#[serde(rename = #wire, default)] #ident: #ty,)
        } else {
            quote!(#[serde(rename = #wire)] #ident: #ty,)
        }
    });
    let moves = fields.iter().map(|f| {
        let ident = ident(&f.rust_name);
        quote!(#ident: __raw.#ident,)
    });
    let debug_fields = fields.iter().map(|f| {
        let ident = ident(&f.rust_name);
        let label = f.rust_name.trim_start_matches("r#");
        if f.sensitive {
            quote!(.field(#label, &#p::Redacted))
        } else {
            quote!(.field(#label, &self.#ident))
        }
    });
    let checks = fields.iter().filter_map(|f| check_field(cx, f));
    let deprecated_attr = deprecated.then(|| quote!(#[deprecated]));
    let read = if check_on_read {
        quote!(#p::checked::<D, Self>(Self { #(#moves)* }))
    } else {
        quote!(::core::result::Result::Ok(Self { #(#moves)* }))
    };

    quote! {
        #doc
        #deprecated_attr
        #[derive(::core::clone::Clone, ::core::cmp::PartialEq, #p::serde::Serialize)]
        #[serde(crate = #serde_path)]
        pub struct #name {
            #(#decls)*
        }

        #[allow(deprecated)]
        const _: () = {
            #[automatically_derived]
            impl ::core::fmt::Debug for #name {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(#name_str)#(#debug_fields)*.finish()
                }
            }

            #[automatically_derived]
            impl<'de> #p::serde::Deserialize<'de> for #name {
                fn deserialize<D: #p::serde::Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                    #[derive(#p::serde::Deserialize)]
                    #[serde(crate = #serde_path)]
                    struct __Raw {
                        #(#raw_decls)*
                    }
                    let __raw = <__Raw as #p::serde::Deserialize>::deserialize(d)?;
                    #read
                }
            }

            #[automatically_derived]
            impl #rt::Validate for #name {
                #[allow(unused_variables)]
                fn validate_into(&self, __v: &mut #p::Validator, __path: &#p::Path<'_>) {
                    #(#checks)*
                }
            }

            #[automatically_derived]
            impl #p::Check for #name {
                fn check(&self, v: &mut #p::Validator, path: &#p::Path<'_>, _: &#p::Constraints) {
                    #rt::Validate::validate_into(self, v, path);
                }
            }

            #[automatically_derived]
            impl #p::schemars::JsonSchema for #name {
                fn schema_name() -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed(#name_str)
                }
                fn json_schema(_: &mut #p::schemars::SchemaGenerator) -> #p::schemars::Schema {
                    #p::schema_from_json(#name_str, #schema)
                }
            }
        };
    }
}

/// The constraint check of one field, or nothing when its type and constraints need none.
fn check_field(cx: &Cx<'_>, f: &Field) -> Option<TokenStream> {
    let p = &cx.private;
    let needs = !f.constraints.is_empty() || needs_check(cx.catalog, &f.ty);
    if !needs {
        return None;
    }
    let ident = ident(&f.rust_name);
    let wire = &f.name;
    let c = &f.constraints;
    let opt_u64 = |v: Option<u64>| match v {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let bound = |v: Option<Number>| match v {
        Some(Number::Int(i)) => {
            let i = i128::from(i);
            quote!(::core::option::Option::Some(#p::Bound::Int(#i)))
        }
        Some(Number::Float(x)) => quote!(::core::option::Option::Some(#p::Bound::Float(#x))),
        None => quote!(::core::option::Option::None),
    };
    let (pattern_static, pattern) = match &c.pattern {
        Some(source) => (
            quote!(static __P: #p::Pattern = #p::Pattern::new(#source);),
            quote!(::core::option::Option::Some(&__P)),
        ),
        None => (quote!(), quote!(::core::option::Option::None)),
    };
    let (min, max) = (bound(c.min), bound(c.max));
    let (min_length, max_length) = (opt_u64(c.min_length), opt_u64(c.max_length));
    let (min_items, max_items) = (opt_u64(c.min_items), opt_u64(c.max_items));
    let constraints = if c.is_empty() {
        quote!(&#p::Constraints::NONE)
    } else {
        quote!({
            #pattern_static
            static __C: #p::Constraints = #p::Constraints {
                min: #min, max: #max, min_length: #min_length, max_length: #max_length,
                pattern: #pattern, min_items: #min_items, max_items: #max_items,
            };
            &__C
        })
    };
    Some(quote! {
        #p::Check::check(&self.#ident, __v, &__path.field(#wire), #constraints);
    })
}

/// Whether values of `ty` carry checks of their own (floats must be finite; objects have fields).
fn needs_check(catalog: &Catalog, ty: &FieldType) -> bool {
    match ty.element() {
        FieldType::Float => true,
        FieldType::Named(n) => catalog
            .named(n)
            .is_some_and(|t| matches!(t.kind, NamedKind::Object(_))),
        _ => false,
    }
}

/// A named object or enum type.
pub(crate) fn named_type(cx: &Cx<'_>, t: &NamedType) -> TokenStream {
    let name = ident(&t.name);
    let schema =
        serde_json::Value::Object(json_schema::named_schema(cx.catalog, &t.name)).to_string();
    match &t.kind {
        NamedKind::Object(fields) => {
            let doc = docs(
                t.description.as_deref(),
                &format!("The `{}` object of the `{}` schema.", t.name, t.category),
            );
            object(cx, &name, doc, fields, false, schema, false)
        }
        NamedKind::Enum(values) => {
            let doc = docs(
                t.description.as_deref(),
                &format!(
                    "The allowed values of `{}` (`{}` schema).",
                    t.name, t.category
                ),
            );
            enumeration(cx, &name, doc, values, schema)
        }
    }
}

fn enumeration(
    cx: &Cx<'_>,
    name: &syn::Ident,
    doc: TokenStream,
    values: &[String],
    schema: String,
) -> TokenStream {
    let p = &cx.private;
    let rt = &cx.rt;
    let serde_path = &cx.serde_path;
    let name_str = name.to_string();
    let variants: Vec<syn::Ident> = values
        .iter()
        .map(|v| ident(&crate::ident::rust_variant_name(v).unwrap_or_else(|| "Invalid".into())))
        .collect();
    let docs = values.iter().map(|v| format!(" `{v}`"));
    let expected = format!(
        "one of {}",
        values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    quote! {
        #doc
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq, ::core::cmp::Eq,
                 ::core::hash::Hash, ::core::cmp::PartialOrd, ::core::cmp::Ord, ::core::fmt::Debug,
                 #p::serde::Serialize, #p::serde::Deserialize)]
        #[serde(crate = #serde_path)]
        pub enum #name {
            #(#[doc = #docs] #[serde(rename = #values)] #variants,)*
        }

        impl #name {
            /// Every value, in schema order.
            pub const ALL: &'static [Self] = &[#(Self::#variants),*];

            /// The value as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    #(Self::#variants => #values,)*
                }
            }
        }

        const _: () = {
            #[automatically_derived]
            impl ::core::fmt::Display for #name {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.write_str(self.as_str())
                }
            }

            #[automatically_derived]
            impl ::core::str::FromStr for #name {
                type Err = #rt::UnknownValue;
                fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                    match s {
                        #(#values => ::core::result::Result::Ok(Self::#variants),)*
                        other => ::core::result::Result::Err(#rt::UnknownValue::new(other, #expected)),
                    }
                }
            }

            #[automatically_derived]
            impl #p::KeyPart for #name {
                fn write_key(&self, out: &mut ::std::string::String) {
                    out.push_str(self.as_str());
                }
            }

            #[automatically_derived]
            impl #p::Check for #name {}

            #[automatically_derived]
            impl #p::schemars::JsonSchema for #name {
                fn schema_name() -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed(#name_str)
                }
                fn json_schema(_: &mut #p::schemars::SchemaGenerator) -> #p::schemars::Schema {
                    #p::schema_from_json(#name_str, #schema)
                }
            }
        };
    }
}
