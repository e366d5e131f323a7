//! Passwords with the characters that end or split a URL's parts (`/ ? # @ : %`, non-ASCII) never
//! show on stderr, against a private `redis-server` that asks for such a password.

mod support;

use domain_events_tests::secrets::{PASSWORD, WRONG, assert_clean, encode};
use support::{SHOP, Setup, finish, stderr, stdout};

#[test]
fn passwords_never_show_on_stderr() {
    let setup = Setup::with_redis_args(SHOP, &["--requirepass", PASSWORD]);
    let port = setup.redis.port();
    let emit = |transport: &'static str| -> Vec<&'static str> {
        vec![
            "emit",
            "--transport",
            transport,
            "--source",
            "cli-test",
            "--type",
            "shop:order_placed",
            "--payload",
            r#"{"orderId":"o-1","total":1}"#,
        ]
    };

    // The right password, percent-encoded: the event is emitted.
    let right = format!("redis://:{}@127.0.0.1:{port}/0", encode(PASSWORD));
    let mut command = setup.command(&emit("redis"));
    command.env("DOMAIN_EVENTS_REDIS_URL", &right);
    let output = finish(command.spawn().expect("the binary starts"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_clean(&format!("{}{}", stdout(&output), stderr(&output)), &right);

    // Wrong or unencoded passwords, valid or invalid URLs: each run fails without a trace.
    let mut urls = Vec::new();
    for user in ["", "app"] {
        for secret in [PASSWORD.to_owned(), WRONG.to_owned(), encode(WRONG)] {
            for host in [format!("127.0.0.1:{port}/0"), "127.0.0.1:badport".into()] {
                urls.push(format!("redis://{user}:{secret}@{host}"));
            }
        }
    }
    let commands = [
        emit("redis"),
        emit("bullmq"),
        vec!["tail", "--group", "g", "--count", "1"],
    ];
    for url in &urls {
        for args in &commands {
            for from_env in [true, false] {
                let output = setup.run_at(args, url, from_env);
                let what = format!("{args:?} with {url}");
                assert_eq!(output.status.code(), Some(1), "{what}: {}", stderr(&output));
                assert_clean(&format!("{}{}", stdout(&output), stderr(&output)), &what);
            }
        }
    }
}
