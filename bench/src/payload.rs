//! The benchmark event: `image:variation_completed` with nine public URLs, field for field the
//! payload `bench/peer/peer.mjs` gives BullMQ (385 bytes of JSON), so both sides move the same data.

use domain_events::Url;
use domain_events_catalog::ImageVariationCompletedPayload;

/// Indices of warm-up events start here, so they never share a key with a timed event (and still
/// print as five base-36 digits, like the timed ones).
pub const WARM_BASE: u64 = 50_000_000;

/// `i` in base 36, at least five digits: `var_00000`, `var_00001`, ...
pub fn id36(mut i: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(8);
    loop {
        out.push(DIGITS[(i % 36) as usize]);
        i /= 36;
        if i == 0 {
            break;
        }
    }
    while out.len() < 5 {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The payload of event `i`; its idempotency key is `image_complete:var_<id36(i)>`.
pub fn payload(i: u64) -> ImageVariationCompletedPayload {
    let id = id36(i);
    ImageVariationCompletedPayload {
        variation_id: format!("var_{id}"),
        variation_name: "warm-sunset".to_owned(),
        families_completed: 9,
        total_generation_time_ms: 40_000 + (i % 10_000),
        public_urls: (0..9)
            .map(|k| Url::parse(format!("https://cdn.io/{id}/{k}.png")).expect("a valid URL"))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_peer_harness() {
        assert_eq!(id36(0), "00000");
        assert_eq!(id36(35), "0000z");
        assert_eq!(id36(36), "00010");
        assert_eq!(id36(WARM_BASE).len(), 5);
        let json = serde_json::to_string(&payload(0)).expect("serializes");
        assert_eq!(json.len(), 385, "{json}");
    }
}
