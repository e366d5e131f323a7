//! Passwords with the characters that end or split a URL's parts (`/ ? # @ : %`, non-ASCII) never
//! show in errors or `Debug` output, against a real `redis-server` that asks for such a password.

use domain_events_redis::{RedisConfig, RedisTransport};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::secrets::{PASSWORD, WRONG, assert_clean, encode};

/// Connects with `url` and sends `PING`: the error's `Display` and `Debug`, or `None`.
async fn ping(url: &str) -> Option<String> {
    let config = match RedisConfig::new(url) {
        Ok(config) => config,
        Err(error) => return Some(format!("{error}\n{error:?}")),
    };
    assert_clean(&format!("{config:?}"), url);
    let transport = match RedisTransport::new(config) {
        Ok(transport) => transport,
        Err(error) => return Some(format!("{error}\n{error:?}")),
    };
    match transport.ping().await {
        Ok(()) => None,
        Err(error) => Some(format!("{error}\n{error:?}")),
    }
}

#[tokio::test]
async fn passwords_never_show_with_a_server_that_asks_for_one() {
    let server = RedisServer::start_with_args(false, &["--requirepass", PASSWORD]);
    let port = server.port();

    // The right password, percent-encoded as URLs want it: connects.
    for scheme_user in ["redis://", "redis://default"] {
        let url = format!("{scheme_user}:{}@127.0.0.1:{port}/0", encode(PASSWORD));
        assert_eq!(ping(&url).await, None, "{url}");
    }

    // Wrong or unencoded passwords, with or without a user, valid or invalid URLs, plain or TLS:
    // every one fails, and nothing of either password shows.
    let mut urls = Vec::new();
    for scheme in ["redis", "rediss"] {
        for user in ["", "default", "app"] {
            for secret in [PASSWORD.to_owned(), WRONG.to_owned(), encode(WRONG)] {
                for host in [format!("127.0.0.1:{port}/0"), "127.0.0.1:badport".into()] {
                    urls.push(format!("{scheme}://{user}:{secret}@{host}"));
                }
            }
        }
    }
    for url in urls {
        let shown = ping(&url)
            .await
            .unwrap_or_else(|| panic!("{url} should fail"));
        assert_clean(&shown, &url);
    }
}
