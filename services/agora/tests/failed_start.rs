//! A platform that fails half-way through starting stops what it had already started:
//! no server is left listening. (Its own test binary, so no other test's listeners
//! come and go meanwhile.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use std::collections::BTreeSet;

/// The loopback TCP ports in LISTEN state (from /proc: no tool needed).
fn listening_ports() -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if fields.get(3) == Some(&"0A")
                && let Some(port) = fields
                    .get(1)
                    .and_then(|a| a.rsplit_once(':'))
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

#[actix_web::test]
async fn a_failed_start_leaves_no_server_running() {
    // The gateway's address is taken, so the start fails after auth is already up.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = support::config();
    config.listen = taken.local_addr().unwrap();
    let before = listening_ports();
    let outcome = agora::Platform::start(config.clone()).await;
    let err = outcome
        .err()
        .expect("the start must fail: the gateway's port is taken");
    assert!(err.to_string().contains("listen"), "{err}");
    // Give the stopped servers' sockets a moment to close.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = listening_ports();
    let left: Vec<u16> = after.difference(&before).copied().collect();
    assert!(
        left.is_empty(),
        "still listening after a failed start: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&config.state_dir);
}
