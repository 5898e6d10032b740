//! `agora up` as a user runs it: the real binary creates its own PostgreSQL cluster
//! (dropping to the `postgres` user when run as root), serves the API, stops cleanly on
//! SIGTERM, and keeps its data for the next run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{TestPlatform, me_status, post_json, register};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts `agora up` and waits for its "Agora is up" line.
fn agora_up(state_dir: &Path, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args([
            "up",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
        ])
        .arg(state_dir)
        .env_remove("AGORA_DATABASE_URL")
        .env("LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run agora: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Agora is up") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(90)).is_err() {
        let _ = child.kill();
        panic!("agora up did not come up within 90 s");
    }
    child
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("agora up did not stop within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn as_platform(port: u16, state_dir: &Path) -> TestPlatform {
    TestPlatform {
        platform: None,
        base: format!("http://127.0.0.1:{port}"),
        state_dir: state_dir.to_owned(),
        config: support::config(),
    }
}

#[actix_web::test]
async fn up_serves_stops_cleanly_and_keeps_data() {
    let state_dir = std::env::temp_dir().join(agora_common::testing::unique_prefix("agora_up"));
    let port = free_port();
    let child = agora_up(&state_dir, port);
    let p = as_platform(port, &state_dir);
    let session = register(&p, "quinn").await;
    assert_eq!(me_status(&p, &session).await, 200);

    // The cluster asks for a password (kept private under the state dir); it does not
    // trust every local user.
    let hba = std::fs::read_to_string(state_dir.join("postgres/data/pg_hba.conf")).unwrap();
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(!rules.is_empty());
    assert!(
        rules.iter().all(|l| l.ends_with("scram-sha-256")),
        "{rules:?}"
    );
    let secret = state_dir.join("postgres/superuser-password");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the password file is private");

    // A second `agora up` on the same state dir refuses to start.
    let second = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args([
            "up",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--state-dir",
        ])
        .arg(&state_dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already using"));

    let status = terminate(child);
    assert!(status.success(), "agora up exited with {status}");
    // PostgreSQL went down with it.
    assert!(
        !state_dir.join("postgres/data/postmaster.pid").exists(),
        "PostgreSQL still running"
    );

    // The next run finds the account and the signing key.
    let child = agora_up(&state_dir, port);
    let login = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "quinn", "password": "password-quinn"}),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(me_status(&p, &session).await, 200);
    assert!(terminate(child).success());
    let _ = std::fs::remove_dir_all(&state_dir);
}
