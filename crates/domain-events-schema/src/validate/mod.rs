//! Raw files → [`Catalog`]: every rule of the schema language, every problem reported.
//!
//! One `Context` collects problems and what later checks need (claimed Rust names, named
//! types); its checks are split by responsibility: `names` (generated Rust names, type
//! declarations), `events` (categories, events, versions), `fields` (field names and
//! constraints), `types` (type expressions, enums, named types), `keys` (idempotency keys and
//! correlation fields) and `cycles` (recursive named types). A check that fails reports and lets
//! the others go on; what depends on a broken item (a field whose type is unknown) is skipped
//! rather than reported again.

mod cycles;
mod events;
mod fields;
mod keys;
mod names;
mod types;

pub use types::type_label;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use crate::diag::{Diagnostics, SourceFile};
use crate::load::LoadedFile;
use crate::model::{Catalog, Category, Field, NamedType};

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

#[cfg(test)]
pub(super) mod test_support {
    use crate::Catalog;

    /// The rendered diagnostics of `sources` (`(file name, text)`), or "" when they are valid.
    pub fn errors(sources: &[(&str, &str)]) -> String {
        match Catalog::from_sources(sources) {
            Ok(_) => String::new(),
            Err(d) => d.to_string(),
        }
    }

    /// The catalog of valid `sources`.
    pub fn catalog(sources: &[(&str, &str)]) -> Catalog {
        Catalog::from_sources(sources).unwrap_or_else(|d| panic!("{d}"))
    }

    /// A file of category `category` with one event `happened` whose fields are `fields`.
    pub fn event_file(category: &str, fields: &str) -> String {
        format!(
            "category = \"{category}\"\ncorrelation = \"id\"\n[events.happened]\n\
             idempotency_key = \"{category}:{{id}}\"\nfields = {{ {fields} }}\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

    #[test]
    fn a_valid_folder_becomes_a_sorted_catalog() {
        let b = event_file("beta", "id = \"string\"");
        let a = event_file(
            "alpha",
            "id = \"string\", tier = { type = \"enum\", values = [\"x\"] }",
        );
        let catalog = catalog(&[("beta.toml", &b), ("alpha.toml", &a)]);
        let names: Vec<_> = catalog.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["alpha", "beta"]);
        assert_eq!(catalog.types.len(), 1);
        assert_eq!(catalog.types[0].name, "AlphaHappenedTier");
    }

    #[test]
    fn a_file_that_does_not_parse_fails_the_catalog_and_the_others_are_still_checked() {
        let good = event_file("beta", "id = \"strin\"");
        let out = errors(&[("alpha.toml", "category = "), ("beta.toml", &good)]);
        assert!(out.contains("alpha.toml:1:"), "{out}");
        assert!(
            out.contains("beta.toml:5:17: error: unknown type `strin`"),
            "{out}"
        );
    }
}
