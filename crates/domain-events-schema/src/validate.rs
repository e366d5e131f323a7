//! Raw files → [`Catalog`]: every rule of the schema language, every problem reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use toml::Spanned;

use crate::diag::{Diagnostics, SourceFile, did_you_mean};
use crate::ident;
use crate::load::LoadedFile;
use crate::model::{
    Catalog, Category, Constraints, Event, EventVersion, Field, FieldType, KeyPart, KeyTemplate,
    NamedKind, NamedType, Number,
};
use crate::raw::{Ordered, RawEvent, RawField, RawFieldTable, RawFile, RawNumber, RawType};

const BUILTIN_TYPES: &[&str] = &[
    "string",
    "int",
    "uint",
    "float",
    "bool",
    "timestamp",
    "date",
    "uuid",
    "url",
    "email",
    "enum",
    "list<T>",
    "map<T>",
];

/// Checks every loaded file and builds the catalog. Returns `None` when any problem was found
/// (all of them are in `diags`).
pub fn validate(files: &[LoadedFile], diags: &mut Diagnostics) -> Option<Catalog> {
    let before = diags.items().len();
    let mut cx = Context {
        diags,
        names: HashMap::new(),
        named: BTreeMap::new(),
        types: Vec::new(),
    };

    // Pass 1: the names of every named type, so fields in any file can refer to them.
    for file in files {
        if let Some(raw) = &file.raw {
            cx.declare_types(&file.source, raw);
        }
    }
    // Pass 2: categories, events and the bodies of named types.
    let mut categories = Vec::new();
    for file in files {
        if let Some(raw) = &file.raw
            && let Some(category) = cx.category(&file.source, raw)
        {
            categories.push(category);
        }
    }
    cx.check_type_cycles(files);

    let failed = cx.diags.items().len() > before || files.iter().any(|f| f.raw.is_none());
    if failed {
        return None;
    }
    let mut types = cx.types;
    types.sort_by(|a, b| a.name.cmp(&b.name));
    categories.sort_by(|a: &Category, b| a.name.cmp(&b.name));
    Some(Catalog {
        categories,
        types,
        files: files.iter().map(|f| f.source.path.clone()).collect(),
    })
}

/// The fields of an event version or object type: those that passed every check, and the names
/// of those that did not (already reported, so references to them are not).
#[derive(Default)]
struct Fields {
    parsed: Vec<Field>,
    broken: BTreeSet<String>,
}

impl Fields {
    /// The fields, when every one of them passed.
    fn complete(self) -> Option<Vec<Field>> {
        self.broken.is_empty().then_some(self.parsed)
    }
}

struct Context<'d> {
    diags: &'d mut Diagnostics,
    /// Every generated Rust type name, with where it was declared, to report collisions.
    names: HashMap<String, (String, usize, usize)>,
    /// Named types by name: (file display, is_enum).
    named: BTreeMap<String, (String, bool)>,
    types: Vec<NamedType>,
}

/// Where an item comes from, for messages.
struct At<'a> {
    file: &'a SourceFile,
    span: Range<usize>,
}

impl Context<'_> {
    /// Reserves a generated Rust name; reports a collision with an earlier one.
    fn claim_name(
        &mut self,
        name: &str,
        file: &SourceFile,
        span: Range<usize>,
        what: &str,
    ) -> bool {
        let (line, column) = file.line_col(span.start);
        if let Some((other_file, l, c)) = self.names.get(name) {
            let msg = format!(
                "{what} becomes the Rust type `{name}`, which {other_file}:{l}:{c} already defines"
            );
            self.diags.error_help(
                file,
                span,
                msg,
                "rename one of the two so their Rust names differ",
            );
            return false;
        }
        self.names
            .insert(name.to_owned(), (file.display.clone(), line, column));
        true
    }

    fn declare_types(&mut self, file: &SourceFile, raw: &RawFile) {
        for (name, ty) in &raw.types.0 {
            let span = name.span();
            if !ident::is_upper_camel_case(name.get_ref()) {
                self.diags.error_help(
                    file,
                    span,
                    format!("type name `{}` is not UpperCamelCase", name.get_ref()),
                    format!("name it like `{}`", ident::upper_camel(name.get_ref())),
                );
                continue;
            }
            if !self.claim_name(
                name.get_ref(),
                file,
                span.clone(),
                &format!("type `{}`", name.get_ref()),
            ) {
                continue;
            }
            let is_enum = ty.values.is_some();
            self.named
                .insert(name.get_ref().clone(), (file.display.clone(), is_enum));
        }
    }

    fn category(&mut self, file: &SourceFile, raw: &RawFile) -> Option<Category> {
        let stem = file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Without a usable `category`, checking goes on with the file name's.
        let (name, category_span) = match &raw.category {
            Some(category) => (category.get_ref().clone(), category.span()),
            None => {
                self.diags.error_help(
                    file,
                    0..0,
                    "the file declares no `category`",
                    format!("add `category = \"{stem}\"` at the top of the file"),
                );
                (stem.clone(), 0..0)
            }
        };
        let name = &name;
        if raw.category.is_none() {
            // Reported above.
        } else if !ident::is_snake_case(name) {
            self.diags.error_help(
                file,
                category_span.clone(),
                format!("category `{name}` is not lower snake_case"),
                "use lowercase letters, digits and single underscores, starting with a letter",
            );
        } else if *name != stem {
            self.diags.error_help(
                file,
                category_span.clone(),
                format!("category `{name}` does not match the file name `{stem}.toml`"),
                format!("rename the file to `{name}.toml` or set `category = \"{stem}\"`"),
            );
        }
        // A bad version is reported; checking goes on with version 1 to find the other problems.
        let default_version = raw
            .version
            .as_ref()
            .map_or(Some(1), |v| self.version_number(file, v))
            .unwrap_or(1);

        // Named types declared in this file.
        for (type_name, ty) in &raw.types.0 {
            if self
                .named
                .get(type_name.get_ref())
                .is_some_and(|(f, _)| *f == file.display)
            {
                self.named_type(file, name, type_name, ty);
            }
        }

        let Some(events) = &raw.events else {
            self.diags.error_help(
                file,
                category_span,
                format!("category `{name}` declares no events"),
                "add an `[events.<name>]` table with its `fields`",
            );
            return None;
        };
        if events.get_ref().0.is_empty() {
            self.diags.error_help(
                file,
                events.span(),
                "the `events` table is empty",
                "declare at least one event",
            );
        }
        let mut out = Vec::new();
        for (event_name, event) in &events.get_ref().0 {
            if let Some(e) = self.event(file, raw, name, default_version, event_name, event) {
                out.push(e);
            }
        }
        Some(Category {
            name: name.clone(),
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
            file: file.path.clone(),
            events: out,
        })
    }

    fn version_number(&mut self, file: &SourceFile, v: &Spanned<i64>) -> Option<u32> {
        match u32::try_from(*v.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.diags.error_help(
                    file,
                    v.span(),
                    format!("version {} is not a positive integer", v.get_ref()),
                    "versions start at 1 and grow by one with every breaking change",
                );
                None
            }
        }
    }

    fn event(
        &mut self,
        file: &SourceFile,
        raw_file: &RawFile,
        category: &str,
        default_version: u32,
        name: &Spanned<String>,
        raw: &RawEvent,
    ) -> Option<Event> {
        let event_at = At {
            file,
            span: name.span(),
        };
        // A bad name or version is reported; the event's body is still checked.
        let name_ok = ident::is_snake_case(name.get_ref());
        if !name_ok {
            self.diags.error_help(
                file,
                name.span(),
                format!("event name `{}` is not lower snake_case", name.get_ref()),
                format!("name it like `{}`", heck_snake(name.get_ref())),
            );
        }
        let variant = format!(
            "{}{}",
            ident::upper_camel(category),
            ident::upper_camel(name.get_ref())
        );
        let type_string = format!("{category}:{}", name.get_ref());
        let latest_version = match &raw.version {
            Some(v) => self.version_number(file, v).unwrap_or(default_version),
            None => default_version,
        };
        let mut ok = name_ok
            && self.claim_name(
                &format!("{variant}Payload"),
                file,
                name.span(),
                &format!("event `{type_string}`"),
            );

        let correlation = raw.correlation.as_ref().or(raw_file.correlation.as_ref());
        let mut versions = Vec::new();
        let latest = self.event_version(
            &event_at,
            &variant,
            latest_version,
            true,
            raw.description.as_ref(),
            raw.fields.as_ref(),
            raw.idempotency_key.as_ref(),
            correlation,
        );
        for (number, old) in &raw.versions.0 {
            let parsed = number
                .get_ref()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1 && *n < latest_version);
            let Some(n) = parsed else {
                self.diags.error_help(
                    file,
                    number.span(),
                    format!("older version `{}` must be a whole number from 1 to {}", number.get_ref(), latest_version - 1),
                    format!("the event's current version is {latest_version}; list only earlier versions under `versions`"),
                );
                ok = false;
                continue;
            };
            let prefix = format!("{variant}V{n}");
            ok &= self.claim_name(
                &format!("{prefix}Payload"),
                file,
                number.span(),
                &format!("version {n} of `{type_string}`"),
            );
            let version = self.event_version(
                &At {
                    file,
                    span: number.span(),
                },
                &prefix,
                n,
                false,
                old.description.as_ref().or(raw.description.as_ref()),
                old.fields.as_ref(),
                old.idempotency_key
                    .as_ref()
                    .or(raw.idempotency_key.as_ref()),
                old.correlation.as_ref().or(correlation),
            );
            match version {
                Some(v) => versions.push(v),
                None => ok = false,
            }
        }
        let latest = latest?;
        versions.push(latest);
        versions.sort_by_key(|v| v.version);
        if !ok {
            return None;
        }
        Some(Event {
            category: category.to_owned(),
            name: name.get_ref().clone(),
            type_string,
            variant,
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
            deprecated: raw.deprecated,
            versions,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn event_version(
        &mut self,
        at: &At<'_>,
        prefix: &str,
        version: u32,
        latest: bool,
        description: Option<&Spanned<String>>,
        fields: Option<&Spanned<Ordered<Spanned<RawField>>>>,
        key: Option<&Spanned<String>>,
        correlation: Option<&Spanned<String>>,
    ) -> Option<EventVersion> {
        let file = at.file;
        let Some(raw_fields) = fields else {
            self.diags.error_help(
                file,
                at.span.clone(),
                "event declares no `fields`",
                "add a `fields` table; an event needs at least the fields its idempotency key uses",
            );
            return None;
        };
        let category = file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fields = self.fields(file, &category, prefix, raw_fields);
        let key = match key {
            Some(k) => self.key_template(file, k, &fields),
            None => {
                self.diags.error_help(
                    file,
                    at.span.clone(),
                    "event declares no `idempotency_key`",
                    "add e.g. `idempotency_key = \"<prefix>:{<id field>}\"` naming the fields that make an emission unique",
                );
                None
            }
        };
        let correlation = match correlation {
            Some(c) => self.correlation(file, c, &fields),
            None => {
                self.diags.error_help(
                    file,
                    at.span.clone(),
                    "event has no correlation field",
                    "set `correlation = \"<field>\"` on the event, or once at the top of the file for all its events",
                );
                None
            }
        };
        Some(EventVersion {
            version,
            latest,
            description: description.map(|d| d.get_ref().clone()),
            fields: fields.complete()?,
            key: key?,
            correlation: correlation?,
        })
    }

    fn fields(
        &mut self,
        file: &SourceFile,
        category: &str,
        prefix: &str,
        raw: &Spanned<Ordered<Spanned<RawField>>>,
    ) -> Fields {
        let mut out = Fields::default();
        let mut rust_names: HashMap<String, String> = HashMap::new();
        for (name, field) in &raw.get_ref().0 {
            let wire = name.get_ref();
            // A bad name is reported and the field's type is still checked; references to the
            // field are not reported again.
            let mut name_ok = true;
            if !ident::is_lower_camel_case(wire) {
                self.diags.error_help(
                    file,
                    name.span(),
                    format!("field name `{wire}` is not lowerCamelCase"),
                    format!("name it like `{}`", heck_lower_camel(wire)),
                );
                name_ok = false;
            }
            let rust_name = ident::rust_field_name(wire);
            if name_ok && let Some(other) = rust_names.insert(rust_name.clone(), wire.clone()) {
                self.diags.error_help(
                    file,
                    name.span(),
                    format!(
                        "fields `{other}` and `{wire}` both become the Rust field `{rust_name}`"
                    ),
                    "rename one of them",
                );
                name_ok = false;
            }
            match self.field(file, category, prefix, name, field) {
                Some(f) if name_ok => out.parsed.push(Field { rust_name, ..f }),
                _ => {
                    out.broken.insert(wire.clone());
                }
            }
        }
        out
    }

    fn field(
        &mut self,
        file: &SourceFile,
        category: &str,
        prefix: &str,
        name: &Spanned<String>,
        raw: &Spanned<RawField>,
    ) -> Option<Field> {
        let empty = RawFieldTable::empty();
        let (ty_text, ty_span, table) = match raw.get_ref() {
            RawField::Short(ty) => (ty.clone(), raw.span(), &empty),
            RawField::Table(t) => match &t.ty {
                Some(ty) => (ty.get_ref().clone(), ty.span(), t.as_ref()),
                None => {
                    self.diags.error_help(
                        file,
                        raw.span(),
                        format!("field `{}` has no `type`", name.get_ref()),
                        "add e.g. `type = \"string\"`",
                    );
                    return None;
                }
            },
        };
        let (text, optional) = match ty_text.trim().strip_suffix('?') {
            Some(t) => (t.trim().to_owned(), true),
            None => (ty_text.trim().to_owned(), false),
        };
        let enum_name = format!("{prefix}{}", ident::upper_camel(name.get_ref()));
        let ty = self.type_expr(file, &text, ty_span.clone(), table, &enum_name, category)?;
        let constraints = self.constraints(file, name.get_ref(), &ty, table)?;
        if table.values.is_some() && !matches!(ty.element(), FieldType::Named(n) if *n == enum_name)
        {
            self.diags.error_help(
                file,
                table.values.as_ref().map_or(ty_span.clone(), |v| v.span()),
                format!(
                    "`values` only applies to `enum` fields, but `{}` is `{text}`",
                    name.get_ref()
                ),
                "remove `values`, or set `type = \"enum\"`",
            );
            return None;
        }
        Some(Field {
            name: name.get_ref().clone(),
            rust_name: String::new(),
            ty,
            optional,
            description: table.description.as_ref().map(|d| d.get_ref().clone()),
            deprecated: table.deprecated,
            sensitive: table.sensitive,
            constraints,
        })
    }

    fn type_expr(
        &mut self,
        file: &SourceFile,
        text: &str,
        span: Range<usize>,
        table: &RawFieldTable,
        enum_name: &str,
        category: &str,
    ) -> Option<FieldType> {
        let text = text.trim();
        for (wrapper, make) in [
            ("list<", FieldType::List as fn(Box<FieldType>) -> FieldType),
            ("map<", FieldType::Map),
        ] {
            if let Some(rest) = text.strip_prefix(wrapper) {
                let Some(inner) = rest.strip_suffix('>') else {
                    self.diags.error_help(
                        file,
                        span,
                        format!("type `{text}` is missing its closing `>`"),
                        format!("write it like `{wrapper}string>`"),
                    );
                    return None;
                };
                if inner.trim().ends_with('?') {
                    self.diags.error_help(
                        file,
                        span,
                        format!("elements of `{text}` cannot be optional"),
                        "only a whole field can be optional: put the `?` after the `>`",
                    );
                    return None;
                }
                let inner = self.type_expr(file, inner, span, table, enum_name, category)?;
                return Some(make(Box::new(inner)));
            }
        }
        let ty = match text {
            "string" => FieldType::String,
            "int" => FieldType::Int,
            "uint" => FieldType::UInt,
            "float" => FieldType::Float,
            "bool" => FieldType::Bool,
            "timestamp" => FieldType::Timestamp,
            "date" => FieldType::Date,
            "uuid" => FieldType::Uuid,
            "url" => FieldType::Url,
            "email" => FieldType::Email,
            "enum" => return self.inline_enum(file, span, table, enum_name, category),
            named if self.named.contains_key(named) => FieldType::Named(named.to_owned()),
            unknown => {
                let candidates: Vec<&str> = BUILTIN_TYPES
                    .iter()
                    .copied()
                    .chain(self.named.keys().map(String::as_str))
                    .collect();
                let help = match did_you_mean(unknown, candidates) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "use one of {}, or a type declared under `[types]`",
                        BUILTIN_TYPES
                            .iter()
                            .map(|t| format!("`{t}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.diags
                    .error_help(file, span, format!("unknown type `{unknown}`"), help);
                return None;
            }
        };
        Some(ty)
    }

    fn inline_enum(
        &mut self,
        file: &SourceFile,
        span: Range<usize>,
        table: &RawFieldTable,
        enum_name: &str,
        category: &str,
    ) -> Option<FieldType> {
        let Some(values) = &table.values else {
            self.diags.error_help(
                file,
                span,
                "an `enum` field needs its `values`",
                "add e.g. `values = [\"email\", \"google\"]` to the field's table",
            );
            return None;
        };
        let values = self.enum_values(file, values)?;
        if !self.claim_name(enum_name, file, span, "this inline enum") {
            return None;
        }
        if !self.types.iter().any(|t| t.name == enum_name) {
            self.types.push(NamedType {
                name: enum_name.to_owned(),
                category: category.to_owned(),
                description: None,
                kind: NamedKind::Enum(values),
            });
        }
        self.named
            .insert(enum_name.to_owned(), (file.display.clone(), true));
        Some(FieldType::Named(enum_name.to_owned()))
    }

    fn enum_values(
        &mut self,
        file: &SourceFile,
        values: &Spanned<Vec<Spanned<String>>>,
    ) -> Option<Vec<String>> {
        if values.get_ref().is_empty() {
            self.diags.error_help(
                file,
                values.span(),
                "an enum needs at least one value",
                "list the allowed strings",
            );
            return None;
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut ok = true;
        for v in values.get_ref() {
            let Some(variant) = ident::rust_variant_name(v.get_ref()) else {
                self.diags.error_help(
                    file,
                    v.span(),
                    format!(
                        "enum value `{}` has no letters or digits to name a Rust variant",
                        v.get_ref()
                    ),
                    "use values made of letters, digits, `_` or `-`",
                );
                ok = false;
                continue;
            };
            if let Some(other) = seen.insert(variant.clone(), v.get_ref().clone()) {
                let message = if other == *v.get_ref() {
                    format!("enum value `{other}` is listed twice")
                } else {
                    format!(
                        "enum values `{other}` and `{}` both become the Rust variant `{variant}`",
                        v.get_ref()
                    )
                };
                self.diags
                    .error_help(file, v.span(), message, "remove or rename one of them");
                ok = false;
            }
        }
        ok.then(|| {
            values
                .get_ref()
                .iter()
                .map(|v| v.get_ref().clone())
                .collect()
        })
    }

    fn named_type(
        &mut self,
        file: &SourceFile,
        category: &str,
        name: &Spanned<String>,
        raw: &RawType,
    ) {
        let kind = match (&raw.fields, &raw.values) {
            (Some(_), Some(values)) => {
                self.diags.error_help(
                    file,
                    values.span(),
                    format!("type `{}` has both `fields` and `values`", name.get_ref()),
                    "an object type has `fields`, an enum type has `values`; keep one",
                );
                return;
            }
            (None, None) => {
                self.diags.error_help(
                    file,
                    name.span(),
                    format!(
                        "type `{}` has neither `fields` nor `values`",
                        name.get_ref()
                    ),
                    "give an object type a `fields` table or an enum type a `values` list",
                );
                return;
            }
            (None, Some(values)) => match self.enum_values(file, values) {
                Some(v) => NamedKind::Enum(v),
                None => return,
            },
            // Pushed even with broken fields, so the cycle check sees the fields that parsed.
            (Some(fields), None) => {
                NamedKind::Object(self.fields(file, category, name.get_ref(), fields).parsed)
            }
        };
        self.types.push(NamedType {
            name: name.get_ref().clone(),
            category: category.to_owned(),
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
            kind,
        });
    }

    fn constraints(
        &mut self,
        file: &SourceFile,
        field: &str,
        ty: &FieldType,
        t: &RawFieldTable,
    ) -> Option<Constraints> {
        let element = ty.element();
        let numeric = matches!(element, FieldType::Int | FieldType::UInt | FieldType::Float);
        let stringy = matches!(
            element,
            FieldType::String
                | FieldType::Timestamp
                | FieldType::Date
                | FieldType::Url
                | FieldType::Email
                | FieldType::Uuid
        );
        let is_list = matches!(ty, FieldType::List(_));
        let kind = type_label(ty);
        let mut ok = true;
        let mut wrong = |diags: &mut Diagnostics, key: &str, span: Range<usize>, applies: &str| {
            diags.error_help(
                file,
                span,
                format!("`{key}` does not apply to `{field}`, whose type is `{kind}`"),
                format!("`{key}` applies to {applies}"),
            );
            ok = false;
        };
        for (key, value) in [("min", &t.min), ("max", &t.max)] {
            if let Some(v) = value
                && !numeric
            {
                wrong(
                    self.diags,
                    key,
                    v.span(),
                    "`int`, `uint` and `float` fields (and lists of them)",
                );
            }
        }
        for (key, value) in [("min_length", &t.min_length), ("max_length", &t.max_length)] {
            if let Some(v) = value
                && !stringy
            {
                wrong(
                    self.diags,
                    key,
                    v.span(),
                    "string fields (and lists of them)",
                );
            }
        }
        if let Some(p) = &t.pattern
            && !stringy
        {
            wrong(
                self.diags,
                "pattern",
                p.span(),
                "string fields (and lists of them)",
            );
        }
        for (key, value) in [("min_items", &t.min_items), ("max_items", &t.max_items)] {
            if let Some(v) = value
                && !is_list
            {
                wrong(self.diags, key, v.span(), "`list<..>` fields");
            }
        }
        if !ok {
            return None;
        }

        let integer = matches!(element, FieldType::Int | FieldType::UInt);
        let number = |cx: &mut Self,
                      v: &Option<Spanned<RawNumber>>,
                      key: &str|
         -> Result<Option<Number>, ()> {
            let Some(v) = v else { return Ok(None) };
            let n = match *v.get_ref() {
                RawNumber::Int(i) => Number::Int(i),
                RawNumber::Float(x) if integer => {
                    cx.diags.error_help(
                        file,
                        v.span(),
                        format!(
                            "`{key}` of the integer field `{field}` is not a whole number: {x}"
                        ),
                        "use a whole number",
                    );
                    return Err(());
                }
                RawNumber::Float(x) if !x.is_finite() => {
                    cx.diags.error_help(
                        file,
                        v.span(),
                        format!("`{key}` must be a finite number"),
                        "use a finite number",
                    );
                    return Err(());
                }
                RawNumber::Float(x) => Number::Float(x),
            };
            if matches!(element, FieldType::UInt) && n.as_f64() < 0.0 {
                cx.diags.error_help(
                    file,
                    v.span(),
                    format!("`{key}` of `{field}` is negative, but `uint` values never are"),
                    "use a bound of 0 or more, or make the field `int`",
                );
                return Err(());
            }
            Ok(Some(n))
        };
        // Every constraint is checked; a bad one is reported and does not stop the others.
        let mut ok = true;
        let min = number(self, &t.min, "min").unwrap_or_else(|()| {
            ok = false;
            None
        });
        let max = number(self, &t.max, "max").unwrap_or_else(|()| {
            ok = false;
            None
        });
        if let (Some(lo), Some(hi), Some(span)) = (min, max, t.min.as_ref().map(|m| m.span()))
            && lo.as_f64() > hi.as_f64()
        {
            self.bad_range(file, span, "min", "max", field);
            ok = false;
        }
        let mut count = |cx: &mut Self, v: &Option<Spanned<i64>>, key: &str| {
            cx.count(file, v, key).unwrap_or_else(|| {
                ok = false;
                None
            })
        };
        let min_length = count(self, &t.min_length, "min_length");
        let max_length = count(self, &t.max_length, "max_length");
        let min_items = count(self, &t.min_items, "min_items");
        let max_items = count(self, &t.max_items, "max_items");
        for (lo, hi, lo_key, hi_key, span) in [
            (
                min_length,
                max_length,
                "min_length",
                "max_length",
                t.min_length.as_ref().map(|v| v.span()),
            ),
            (
                min_items,
                max_items,
                "min_items",
                "max_items",
                t.min_items.as_ref().map(|v| v.span()),
            ),
        ] {
            if let (Some(lo), Some(hi), Some(span)) = (lo, hi, span)
                && lo > hi
            {
                self.bad_range(file, span, lo_key, hi_key, field);
                ok = false;
            }
        }
        let pattern = match &t.pattern {
            Some(p) => match regex::Regex::new(p.get_ref()) {
                Ok(_) => Some(p.get_ref().clone()),
                Err(e) => {
                    let detail = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("invalid")
                        .trim()
                        .to_owned();
                    self.diags.error_help(
                        file,
                        p.span(),
                        format!(
                            "`pattern` of `{field}` is not a valid regular expression: {detail}"
                        ),
                        "patterns use the Rust `regex` syntax (no look-around or back-references)",
                    );
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if !ok {
            return None;
        }
        Some(Constraints {
            min,
            max,
            min_length,
            max_length,
            pattern,
            min_items,
            max_items,
        })
    }

    fn count(
        &mut self,
        file: &SourceFile,
        v: &Option<Spanned<i64>>,
        key: &str,
    ) -> Option<Option<u64>> {
        match v {
            None => Some(None),
            Some(v) => match u64::try_from(*v.get_ref()) {
                Ok(n) => Some(Some(n)),
                Err(_) => {
                    self.diags.error_help(
                        file,
                        v.span(),
                        format!("`{key}` is negative: {}", v.get_ref()),
                        "lengths and item counts are 0 or more",
                    );
                    None
                }
            },
        }
    }

    fn bad_range(
        &mut self,
        file: &SourceFile,
        span: Range<usize>,
        lo: &str,
        hi: &str,
        field: &str,
    ) {
        self.diags.error_help(
            file,
            span,
            format!("`{lo}` of `{field}` is greater than its `{hi}`, so no value can pass"),
            format!("make `{lo}` less than or equal to `{hi}`"),
        );
    }

    fn key_template(
        &mut self,
        file: &SourceFile,
        raw: &Spanned<String>,
        fields: &Fields,
    ) -> Option<KeyTemplate> {
        let text = raw.get_ref();
        // Offsets inside the string: the span includes the opening quote.
        let base = raw.span().start + 1;
        let at = |i: usize| base + i..base + i + 1;
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut refs: Vec<(String, usize)> = Vec::new();
        // Whether the literal text since the last reference holds a `:`, and whether every two
        // references are separated by one: only then does a key split back into its values.
        let mut colon_since_ref = false;
        let mut separated = true;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    literal.push('{');
                    i += 2;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    literal.push('}');
                    i += 2;
                }
                b'{' => {
                    let Some(len) = text[i + 1..].find('}') else {
                        self.diags.error_help(
                            file,
                            at(i),
                            "`{` in the idempotency key is never closed",
                            "close the field reference with `}`, or write `{{` for a literal brace",
                        );
                        return None;
                    };
                    let name = &text[i + 1..i + 1 + len];
                    if name.is_empty() || name.contains('{') {
                        self.diags.error_help(
                            file,
                            at(i),
                            "the idempotency key has an empty or malformed `{...}` reference",
                            "put a payload field name between the braces, e.g. `{variationId}`",
                        );
                        return None;
                    }
                    if let Some((previous, start)) = refs.last().filter(|_| !colon_since_ref) {
                        self.diags.error_help(
                            file,
                            base + start..base + i + len + 2,
                            format!(
                                "the idempotency key's `{{{previous}}}` and `{{{name}}}` are not \
                                 separated by a `:`, so the key cannot show where one value ends \
                                 and two different payloads could get the same key"
                            ),
                            format!(
                                "put literal text containing `:` between the two references, e.g. \
                                 `{{{previous}}}:{{{name}}}`; values are written with `:` escaped \
                                 as `%3A`, so a literal `:` always marks the boundary"
                            ),
                        );
                        separated = false;
                    }
                    colon_since_ref = false;
                    if !literal.is_empty() {
                        parts.push(KeyPart::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(KeyPart::Field(name.to_owned()));
                    refs.push((name.to_owned(), i));
                    i += len + 2;
                }
                b'}' => {
                    self.diags.error_help(
                        file,
                        at(i),
                        "unmatched `}` in the idempotency key",
                        "write `}}` for a literal brace",
                    );
                    return None;
                }
                _ => {
                    let ch = text[i..].chars().next().unwrap_or_default();
                    colon_since_ref |= ch == ':';
                    literal.push(ch);
                    i += ch.len_utf8().max(1);
                }
            }
        }
        if !literal.is_empty() {
            parts.push(KeyPart::Literal(literal));
        }
        if refs.is_empty() {
            self.diags.error_help(
                file,
                raw.span(),
                "the idempotency key references no field, so every emission after the first would be dropped as a duplicate",
                "add the fields that make an emission unique, e.g. `image_complete:{variationId}`",
            );
            return None;
        }
        let mut ok = separated;
        for (name, offset) in refs {
            let span = base + offset..base + offset + name.len() + 2;
            ok &= self.scalar_field_ref(file, span, &name, fields, "the idempotency key");
        }
        ok.then(|| KeyTemplate {
            source: text.clone(),
            parts,
        })
    }

    fn correlation(
        &mut self,
        file: &SourceFile,
        raw: &Spanned<String>,
        fields: &Fields,
    ) -> Option<String> {
        self.scalar_field_ref(
            file,
            raw.span(),
            raw.get_ref(),
            fields,
            "the correlation field",
        )
        .then(|| raw.get_ref().clone())
    }

    /// Checks that `name` is a required scalar field; `what` names the referrer in messages.
    fn scalar_field_ref(
        &mut self,
        file: &SourceFile,
        span: Range<usize>,
        name: &str,
        fields: &Fields,
        what: &str,
    ) -> bool {
        if fields.broken.contains(name) {
            // Already reported where the field is declared.
            return false;
        }
        let all: Vec<&str> = fields
            .parsed
            .iter()
            .map(|f| f.name.as_str())
            .chain(fields.broken.iter().map(String::as_str))
            .collect();
        let fields = &fields.parsed;
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            let help = match did_you_mean(name, all.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "the payload fields are {}",
                    all.iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.diags.error_help(
                file,
                span,
                format!("{what} references `{name}`, which is not a payload field"),
                help,
            );
            return false;
        };
        if field.optional {
            self.diags.error_help(
                file,
                span,
                format!("{what} references `{name}`, which is optional"),
                "only required fields always have a value; make the field required or use another one",
            );
            return false;
        }
        if !field.ty.is_key_scalar(&self.types) && !self.is_enum_name(&field.ty) {
            self.diags.error_help(
                file,
                span,
                format!(
                    "{what} references `{name}`, whose type `{}` has no single text form",
                    type_label(&field.ty)
                ),
                "use a string, integer, boolean, timestamp, date, uuid, url, email or enum field",
            );
            return false;
        }
        true
    }

    fn is_enum_name(&self, ty: &FieldType) -> bool {
        matches!(ty, FieldType::Named(n) if self.named.get(n).is_some_and(|(_, is_enum)| *is_enum))
    }

    /// Named object types may not contain themselves: their JSON Schema is inlined.
    fn check_type_cycles(&mut self, files: &[LoadedFile]) {
        let edges: BTreeMap<&str, BTreeSet<&str>> = self
            .types
            .iter()
            .filter_map(|t| match &t.kind {
                NamedKind::Object(fields) => Some((
                    t.name.as_str(),
                    fields
                        .iter()
                        .filter_map(|f| match f.ty.element() {
                            FieldType::Named(n) => Some(n.as_str()),
                            _ => None,
                        })
                        .collect(),
                )),
                NamedKind::Enum(_) => None,
            })
            .collect();
        let mut reported = BTreeSet::new();
        let mut cycles = Vec::new();
        for start in edges.keys() {
            let mut stack = vec![(*start, vec![*start])];
            let mut seen = BTreeSet::new();
            while let Some((node, path)) = stack.pop() {
                for next in edges.get(node).into_iter().flatten() {
                    if next == start {
                        let cycle: BTreeSet<&str> = path.iter().copied().collect();
                        if reported.insert(cycle) {
                            let chain = path
                                .iter()
                                .chain([start])
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(" → ");
                            cycles.push((start.to_string(), chain));
                        }
                    } else if seen.insert(*next) {
                        let mut p = path.clone();
                        p.push(next);
                        stack.push((next, p));
                    }
                }
            }
        }
        for (name, chain) in cycles {
            self.report_cycle(files, &name, &chain);
        }
    }

    fn report_cycle(&mut self, files: &[LoadedFile], name: &str, chain: &str) {
        for file in files {
            let Some(raw) = &file.raw else { continue };
            if let Some((key, _)) = raw.types.0.iter().find(|(k, _)| k.get_ref() == name) {
                self.diags.error_help(
                    &file.source,
                    key.span(),
                    format!("type `{name}` contains itself ({chain})"),
                    "named types are inlined into the JSON Schema, so they cannot be recursive",
                );
                return;
            }
        }
    }
}

impl RawFieldTable {
    fn empty() -> Self {
        RawFieldTable {
            ty: None,
            description: None,
            deprecated: false,
            sensitive: false,
            values: None,
            min: None,
            max: None,
            min_length: None,
            max_length: None,
            pattern: None,
            min_items: None,
            max_items: None,
        }
    }
}

/// The schema-language spelling of a type, for messages.
pub fn type_label(ty: &FieldType) -> String {
    match ty {
        FieldType::String => "string".into(),
        FieldType::Int => "int".into(),
        FieldType::UInt => "uint".into(),
        FieldType::Float => "float".into(),
        FieldType::Bool => "bool".into(),
        FieldType::Timestamp => "timestamp".into(),
        FieldType::Date => "date".into(),
        FieldType::Uuid => "uuid".into(),
        FieldType::Url => "url".into(),
        FieldType::Email => "email".into(),
        FieldType::List(inner) => format!("list<{}>", type_label(inner)),
        FieldType::Map(inner) => format!("map<{}>", type_label(inner)),
        FieldType::Named(n) => n.clone(),
    }
}

fn heck_snake(name: &str) -> String {
    heck::ToSnakeCase::to_snake_case(name)
}

fn heck_lower_camel(name: &str) -> String {
    heck::ToLowerCamelCase::to_lower_camel_case(name)
}
