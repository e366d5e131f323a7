//! Generated Rust names: every type a catalog generates is claimed once, and named types are
//! declared (with their UpperCamelCase check) before any field refers to them.

use std::ops::Range;

use super::Context;
use crate::diag::SourceFile;
use crate::ident;
use crate::raw::RawFile;

impl Context<'_> {
    /// Reserves a generated Rust name; reports a collision with an earlier one.
    pub(super) fn claim_name(
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

    pub(super) fn declare_types(&mut self, file: &SourceFile, raw: &RawFile) {
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
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn a_rust_name_claimed_twice_names_the_first_place() {
        let a = format!(
            "{}[types.Customer]\nfields = {{ id = \"string\" }}\n",
            event_file("alpha", "id = \"string\"")
        );
        let b = format!(
            "{}[types.Customer]\nvalues = [\"x\"]\n",
            event_file("beta", "id = \"string\"")
        );
        let out = errors(&[("alpha.toml", &a), ("beta.toml", &b)]);
        assert!(
            out.contains("beta.toml:6:8: error: type `Customer` becomes the Rust type `Customer`, which alpha.toml:6:8 already defines"),
            "{out}"
        );
    }

    #[test]
    fn a_type_name_must_be_upper_camel_case() {
        let a = format!(
            "{}[types.customer_info]\nfields = {{ id = \"string\" }}\n",
            event_file("alpha", "id = \"string\"")
        );
        let out = errors(&[("alpha.toml", &a)]);
        assert!(
            out.contains("type name `customer_info` is not UpperCamelCase"),
            "{out}"
        );
        assert!(out.contains("name it like `CustomerInfo`"), "{out}");
    }
}
