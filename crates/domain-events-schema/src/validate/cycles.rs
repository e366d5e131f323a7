//! Named object types may not contain themselves: their JSON Schema is inlined.

use std::collections::{BTreeMap, BTreeSet};

use super::Context;
use crate::load::LoadedFile;
use crate::model::{FieldType, NamedKind};

impl Context<'_> {
    /// Named object types may not contain themselves: their JSON Schema is inlined.
    pub(super) fn check_type_cycles(&mut self, files: &[LoadedFile]) {
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

    pub(super) fn report_cycle(&mut self, files: &[LoadedFile], name: &str, chain: &str) {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn every_cycle_is_reported_once() {
        let text = format!(
            "{}[types.Node]\nfields = {{ next = \"Node?\" }}\n[types.A]\nfields = {{ b = \"list<B>\" }}\n\
             [types.B]\nfields = {{ a = \"map<A>\" }}\n[types.Leaf]\nfields = {{ n = \"Node\" }}\n",
            event_file("a", "id = \"string\"")
        );
        let out = errors(&[("a.toml", &text)]);
        assert!(
            out.contains("type `Node` contains itself (`Node` → `Node`)"),
            "{out}"
        );
        assert!(
            out.contains("type `A` contains itself (`A` → `B` → `A`)"),
            "{out}"
        );
        assert!(!out.contains("type `B` contains itself"), "{out}");
        assert!(!out.contains("type `Leaf` contains itself"), "{out}");
    }

    #[test]
    fn enums_and_acyclic_types_pass() {
        let text = format!(
            "{}[types.Tier]\nvalues = [\"x\"]\n[types.Customer]\nfields = {{ tier = \"Tier\" }}\n",
            event_file("a", "id = \"string\", c = \"Customer\"")
        );
        assert_eq!(errors(&[("a.toml", &text)]), "");
    }
}
