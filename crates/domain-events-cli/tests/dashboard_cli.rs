//! `domain-events dashboard` as a user starts it: it serves on the address it prints, and refuses
//! to allow actions on a public address without a token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use domain_events_tests::redis_server::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_domain-events");

#[test]
fn the_dashboard_serves_its_api_on_the_address_it_prints() {
    let server = RedisServer::start();
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas");
    let mut child = Command::new(BIN)
        .args([
            "dashboard",
            "--redis",
            &server.url(),
            "--listen",
            "127.0.0.1:0",
            "--schemas",
            schemas,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .strip_prefix("dashboard on http://")
        .and_then(|rest| rest.split_once('/'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));
    assert!(line.contains("(read-only)"), "{line}");

    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/session HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"actionsAllowed\":false"), "{answer}");
    assert!(answer.contains("\"catalogLoaded\":true"), "{answer}");
}

#[test]
fn actions_on_a_public_address_need_a_token() {
    let output = Command::new(BIN)
        .args([
            "dashboard",
            "--redis",
            "redis://127.0.0.1:1",
            "--listen",
            "0.0.0.0:0",
            "--allow-actions",
        ])
        .env_remove("DOMAIN_EVENTS_DASHBOARD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to allow actions on 0.0.0.0:0 without --token"),
        "{stderr}"
    );
}
