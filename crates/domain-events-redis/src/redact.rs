//! Keeping passwords out of sight: [`redact_url`], which every log line and error uses to show a
//! connection URL, and the scrubbing of messages that might quote a password.

/// What the replaced password reads as in URLs and messages.
const MASK: &str = "***";

/// `url` with the password of its user-info part and of a `pass` / `password` query parameter
/// replaced by `***`. Anything that does not parse as a URL is shown up to the user-info only.
///
/// When the URL holds an `@`, its user-info is everything between `://` and the last `@`, even
/// where a `/`, `?` or `#` of an unencoded password would end the authority of a strict parser:
/// over-masking beats showing a password. All of the user-info after its first `:` is masked; a
/// user-info without `:` that holds `/`, `?` or `#` is masked whole.
///
/// ```
/// use domain_events_redis::redact_url;
///
/// assert_eq!(redact_url("rediss://app:s3cret@cache:6380/1"), "rediss://app:***@cache:6380/1");
/// assert_eq!(redact_url("redis://:s3cret@cache"), "redis://:***@cache");
/// assert_eq!(redact_url("redis://:Pa/ss?w#rd@cache:6379/0"), "redis://:***@cache:6379/0");
/// assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
/// assert_eq!(redact_url("redis+unix:///run/redis.sock?pass=s3cret"), "redis+unix:///run/redis.sock?pass=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL; hide anything that looks like credentials.
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("{MASK}@{host}"),
            None => url.to_owned(),
        };
    };
    let Some((user_info, after)) = rest.rsplit_once('@') else {
        return format!("{scheme}://{}", redact_query(rest));
    };
    let user_info = match user_info.split_once(':') {
        Some((user, _password)) if !user.contains(['/', '?', '#']) => format!("{user}:{MASK}"),
        Some(_) => MASK.to_owned(),
        None if user_info.contains(['/', '?', '#']) => MASK.to_owned(),
        None => user_info.to_owned(),
    };
    format!("{scheme}://{user_info}@{}", redact_query(after))
}

/// The host, path, query and fragment of a URL with secret query parameters masked.
fn redact_query(rest: &str) -> String {
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (rest, None),
    };
    let mut out = match before_fragment.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret_param(name) => format!("{name}={MASK}"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => before_fragment.to_owned(),
    };
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "pass" | "password")
}

/// Every form of the URL's secrets to scrub from messages: the password of the user-info as
/// [`redact_url`] delimits it (everything after the first `:` up to the last `@`, or the whole
/// user-info where it holds `/`, `?` or `#`), also as a strict parser would delimit it (up to the
/// first `/`, `?` or `#`), and the values of `pass` / `password` query parameters; each raw,
/// percent-decoded and percent-encoded.
pub(crate) fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let mut add = |secret: &str| {
        let decoded = percent_decode(secret);
        secrets.extend([
            percent_encode(&decoded, |b| {
                b.is_ascii_alphanumeric() || b"-._~".contains(&b)
            }),
            // As a WHATWG URL serializer writes a user-info.
            percent_encode(&decoded, |b| {
                b.is_ascii_graphic() && !b"\"#<>?`{}/:;=@[\\]^|".contains(&b)
            }),
            secret.to_owned(),
            decoded,
        ]);
    };
    if let Some((_, rest)) = url.split_once("://") {
        if let Some((user_info, _)) = rest.rsplit_once('@') {
            match user_info.split_once(':') {
                Some((user, password)) => {
                    add(password);
                    if user.contains(['/', '?', '#']) {
                        add(user_info);
                    }
                    // What a strict parser takes for the password (or a port), should it
                    // report it; too short a piece would mask unrelated text.
                    let strict = password.split(['/', '?', '#']).next().unwrap_or_default();
                    if strict.chars().count() >= 3 {
                        add(strict);
                    }
                }
                None if user_info.contains(['/', '?', '#']) => add(user_info),
                None => {}
            }
        }
        // Query parameters anywhere in the URL (inside an over-long user-info too).
        let before_fragment = rest.split('#').next().unwrap_or(rest);
        if let Some((_, query)) = before_fragment.split_once('?') {
            for pair in query.split(['&', '@']) {
                if let Some((name, value)) = pair.split_once('=')
                    && is_secret_param(name)
                {
                    add(value);
                }
            }
        }
    } else if let Some((credentials, _)) = url.rsplit_once('@') {
        add(credentials);
    }
    secrets.retain(|secret| !secret.is_empty());
    // Longest first, so that no shorter form leaves a piece of a longer one.
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    secrets
}

/// Decodes `%XX` escapes; invalid escapes and invalid UTF-8 are kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// `text` with every byte that `keep` refuses written as `%XX`.
pub(crate) fn percent_encode(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if keep(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` with each of `secrets` replaced by `***`.
pub(crate) fn scrub_with(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_passwords_in_every_form() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://user:pw@host:1/2", "redis://user:***@host:1/2"),
            ("redis://:pw@host", "redis://:***@host"),
            (
                "rediss://user:p%40ss:w@host/#insecure",
                "rediss://user:***@host/#insecure",
            ),
            ("redis://user@host", "redis://user@host"),
            ("rediss://app@cache:6380/1", "rediss://app@cache:6380/1"),
            (
                "redis+unix:///tmp/r.sock?db=1&pass=pw",
                "redis+unix:///tmp/r.sock?db=1&pass=***",
            ),
            (
                "unix:///tmp/r.sock?PASSWORD=pw#x",
                "unix:///tmp/r.sock?PASSWORD=***#x",
            ),
            ("user:pw@host:6379", "***@host:6379"),
            ("", ""),
            // The user-info runs to the last `@`, past any `/ ? # :` of an unencoded password.
            ("redis://u:p@ss@host", "redis://u:***@host"),
            (
                "redis://:Pa/ssWORD@127.0.0.1:6379",
                "redis://:***@127.0.0.1:6379",
            ),
            ("redis://user:Lim1ted:Pw@/#x@host", "redis://user:***@host"),
            (
                "redis://u:p?x=1@host:1/2?a=b#f",
                "redis://u:***@host:1/2?a=b#f",
            ),
            ("redis://host/0?x=a@b", "redis://***@b"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn every_form_of_a_password_is_scrubbed_longest_first() {
        let secrets = url_secrets("redis://app:p%2Fw:x@host?pass=q%40r");
        let scrubbed = scrub_with(
            "auth p%2Fw:x, p/w:x, p%2Fw%3Ax, q%40r and q@r failed",
            &secrets,
        );
        assert_eq!(scrubbed, "auth ***, ***, ***, *** and *** failed");
        assert!(url_secrets("redis://app@host/0").is_empty());
        assert_eq!(
            scrub_with("nothing secret", &[String::new()]),
            "nothing secret"
        );
    }
}
