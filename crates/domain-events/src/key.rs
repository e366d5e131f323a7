//! How field values are written into idempotency keys and correlation ids.

use crate::formats::{Date, Email, Timestamp, Url};

/// A value that may appear in a key template (`{field}`): its canonical text form.
pub trait KeyPart {
    /// Appends the value's text to `out`.
    fn write_key(&self, out: &mut String);
}

impl KeyPart for String {
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl KeyPart for str {
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

macro_rules! key_as_str {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            fn write_key(&self, out: &mut String) {
                out.push_str(self.as_str());
            }
        }
    )*};
}
key_as_str!(Timestamp, Date, Url, Email);

macro_rules! key_display {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            fn write_key(&self, out: &mut String) {
                use std::fmt::Write as _;
                // Writing into a String cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
key_display!(i64, u64, bool, uuid::Uuid);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_canonically() {
        let mut s = String::new();
        "var-1".write_key(&mut s);
        s.push(':');
        7u64.write_key(&mut s);
        s.push(':');
        (-3i64).write_key(&mut s);
        s.push(':');
        true.write_key(&mut s);
        s.push(':');
        Timestamp::parse("2026-11-26T17:00:00Z")
            .unwrap()
            .write_key(&mut s);
        assert_eq!(s, "var-1:7:-3:true:2026-11-26T17:00:00Z");
    }
}
