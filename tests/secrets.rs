//! Passwords with the characters that end or split a URL's parts (`/ ? # @ : %`, non-ASCII), and
//! the check that none of their forms shows in a text: shared by the tests that start a Redis
//! asking for such a password (`tests/redis_secrets.rs`, the CLI's `tests/secrets.rs`).

/// The test server's password.
pub const PASSWORD: &str = "pä/ss?w#o@r:d%";
/// A password that is not the server's.
pub const WRONG: &str = "wr/ong?pä#ss@x:y%";

/// `text` percent-encoded except for unreserved characters, as a URL's user-info carries it.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Panics when `shown` holds either password, raw or encoded, or a piece of one between its
/// special characters; `what` names the case in the message.
pub fn assert_clean(shown: &str, what: &str) {
    for secret in [PASSWORD, WRONG] {
        for form in [secret.to_owned(), encode(secret)] {
            assert!(!shown.contains(&form), "`{form}` shows for {what}: {shown}");
        }
    }
    for piece in ["ss?w", "r:d", "wr/ong", "ong?p", "#ss", "x:y"] {
        assert!(
            !shown.contains(piece),
            "`{piece}` shows for {what}: {shown}"
        );
    }
}
