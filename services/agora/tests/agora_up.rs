//! `agora up` as a user runs it: the real binary creates its own PostgreSQL cluster
//! (dropping to the `postgres` user when run as root), serves the API, stops cleanly on
//! SIGTERM, and keeps its data for the next run; `agora backup` and `agora restore`
//! carry a platform to a new state dir.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;
use support::s3_var;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Person, TestPlatform, me_status, ok, png, post_json, register, send, token, upload};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts `agora up` and waits for its "Agora is up" line.
fn agora_up(state_dir: &Path, port: u16) -> Child {
    agora_up_with(state_dir, port, &[])
}

fn agora_up_with(state_dir: &Path, port: u16, extra: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args([
            "up",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
        ])
        .arg(state_dir)
        .args(extra)
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

/// Runs the `agora` binary; the tests' S3 server (versitygw, `hack/s3-server.sh`) is
/// reachable through the standard AWS variables.
fn agora(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(args)
        .env_remove("AGORA_DATABASE_URL")
        .env("LOG_FORMAT", "text")
        .env("AWS_ACCESS_KEY_ID", s3_var("AGORA_TEST_S3_ACCESS_KEY"))
        .env("AWS_SECRET_ACCESS_KEY", s3_var("AGORA_TEST_S3_SECRET_KEY"))
        .env("AWS_ENDPOINT_URL", s3_var("AGORA_TEST_S3_ENDPOINT"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run agora: {e}"))
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Kills an `agora up` still running when a test ends early (a failed assertion).
struct Running(Option<Child>);

impl Running {
    fn stop(mut self) -> std::process::ExitStatus {
        terminate(self.0.take().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[actix_web::test]
async fn a_backup_taken_while_up_restores_into_a_new_state_dir() {
    let root = std::env::temp_dir().join(agora_common::testing::unique_prefix("agora_backup"));
    let path = |name: &str| root.join(name).to_str().unwrap().to_owned();
    let (state, restored, key_file) = (path("state"), path("restored"), path("backup.key"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(&key_file, format!("{}\n", "7f".repeat(32))).unwrap();
    let wrong_key = path("wrong.key");
    std::fs::write(&wrong_key, "3c".repeat(32)).unwrap();
    // The backup taken while up goes to the S3 server, whose posix backend keeps each
    // object as a file under <root>/root/<bucket>/<key>.
    let bucket = s3_var("AGORA_TEST_S3_BUCKET");
    let prefix = agora_common::testing::unique_prefix("backup");
    let s3 = format!("s3://{bucket}/{prefix}");
    let in_bucket = std::path::PathBuf::from(s3_var("AGORA_TEST_S3_ROOT"))
        .join("root")
        .join(&bucket)
        .join(&prefix);

    // Erasures are logged beside the backups.
    let erasure_log = path("erasure-log");
    let port = free_port();
    let child = Running(Some(agora_up_with(
        Path::new(&state),
        port,
        &["--erasure-log", &erasure_log],
    )));
    let p = as_platform(port, Path::new(&state));
    let session = register(&p, "rhea").await;
    // Sten is in the backup, and erased after it.
    let sten = register(&p, "sten").await;
    let sten = Person {
        id: sten["user"]["id"].as_str().unwrap().to_owned(),
        name: "sten".into(),
        token: token(&sten, "access_token"),
    };
    ok(
        &p,
        &sten,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "sten's"})),
    )
    .await;
    let rhea = Person {
        id: session["user"]["id"].as_str().unwrap().to_owned(),
        name: "rhea".into(),
        token: token(&session, "access_token"),
    };
    let photo = upload(&p, &rhea, &png(7), "public", "sea").await;
    let photo_id = photo["id"].as_str().unwrap().to_owned();
    let content_path = format!("/api/v1/photos/{photo_id}/content");
    let content = send("GET", &p.url(&content_path), Some(&rhea.token), &[], None).await;
    assert_eq!(content.status, 200);
    let post =
        json!({"text": "before the backup", "visibility": "public", "photo_ids": [photo_id]});
    ok(&p, &rhea, "POST", "/api/v1/posts", Some(post)).await;

    // While `agora up` runs, into a bucket, with the keys sealed.
    let made = agora(&[
        "backup",
        "--state-dir",
        &state,
        "--to",
        &s3,
        "--encryption-key-file",
        &key_file,
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(in_bucket.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "agora-backup/1");
    assert_eq!(manifest["keys"]["encryption"], "aes-256-gcm");
    let databases = manifest["databases"].as_array().unwrap();
    let services: Vec<&str> = databases
        .iter()
        .map(|d| d["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        [
            "notifications",
            "auth",
            "users",
            "events",
            "relations",
            "photos"
        ]
    );
    assert!(
        databases.iter().all(|d| d["migration"].is_string()),
        "{databases:?}"
    );
    let signing_key = std::fs::read(Path::new(&state).join("keys/auth-signing-key.pem")).unwrap();
    let sealed = std::fs::read(in_bucket.join("keys.sealed")).unwrap();
    assert!(
        !sealed
            .windows(32)
            .any(|w| signing_key.windows(32).any(|k| k == w)),
        "the signing key is in the clear"
    );
    // A prefix that holds a backup is not written over (nor cleared).
    let again = agora(&["backup", "--state-dir", &state, "--to", &s3]);
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
    assert!(in_bucket.join("manifest.json").is_file());
    // Sten leaves after the backup: his erasure is logged (the account and the time).
    let deleted = send(
        "DELETE",
        &p.url("/api/v1/auth/me"),
        Some(&sten.token),
        &[],
        Some((
            "application/json",
            json!({"password": "password-sten"})
                .to_string()
                .into_bytes(),
        )),
    )
    .await;
    assert_eq!(deleted.status, 202, "{}", deleted.body);
    let logged = Path::new(&erasure_log).join("erasures");
    let started = std::time::Instant::now();
    while std::fs::read_dir(&logged).map_or(0, |d| d.count()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no erasure logged"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let record = std::fs::read_dir(&logged)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    assert_eq!(record["account_id"], sten.id.as_str());
    assert_eq!(
        record.as_object().unwrap().len(),
        2,
        "the account and the time only"
    );
    assert!(child.stop().success());

    // Stopped, into a directory: it starts the cluster itself, and stops it again.
    let directory = path("backup");
    let made = agora(&["backup", "--state-dir", &state, "--to", &directory]);
    assert!(made.status.success(), "{}", stderr(&made));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&directory).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the backup directory is private");
    assert!(Path::new(&directory).join("keys.json").is_file());
    assert!(
        !Path::new(&state)
            .join("postgres/data/postmaster.pid")
            .exists(),
        "PostgreSQL left running"
    );

    // Damaged, missing its key, or into a state dir with data: refused, nothing written.
    let damaged = path("backup-damaged");
    assert!(
        Command::new("cp")
            .args(["-r", &directory, &damaged])
            .status()
            .unwrap()
            .success()
    );
    let dump = Path::new(&damaged).join("databases/users.dump");
    let bytes = std::fs::read(&dump).unwrap();
    std::fs::write(&dump, &bytes[..bytes.len() - 10]).unwrap();
    let target = path("restored-damaged");
    let refused = agora(&["restore", "--from", &damaged, "--state-dir", &target]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("databases/users.dump"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !Path::new(&target).exists(),
        "a refused restore wrote {target}"
    );
    let refused = agora(&["restore", "--from", &s3, "--state-dir", &target]);
    assert!(
        stderr(&refused).contains("--encryption-key-file"),
        "{}",
        stderr(&refused)
    );
    assert!(!Path::new(&target).exists());
    // With another key, the manifest is not authenticated: nothing is trusted.
    let refused = agora(&[
        "restore",
        "--from",
        &s3,
        "--state-dir",
        &target,
        "--encryption-key-file",
        &wrong_key,
    ]);
    assert!(
        stderr(&refused).contains("not made with this encryption key"),
        "{}",
        stderr(&refused)
    );
    assert!(!Path::new(&target).exists());
    let refused = agora(&["restore", "--from", &directory, "--state-dir", &state]);
    assert!(
        stderr(&refused).contains("not empty"),
        "{}",
        stderr(&refused)
    );

    // Restored from the bucket: the same person signs in with the same password, her
    // old token verifies (the signing key came back), her post and photo are there.
    let done = agora(&[
        "restore",
        "--from",
        &s3,
        "--state-dir",
        &restored,
        "--encryption-key-file",
        &key_file,
        "--erasure-log",
        &erasure_log,
    ]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(
        stderr(&done).contains("applied again 1 erasure(s)"),
        "{}",
        stderr(&done)
    );
    let port = free_port();
    let child = Running(Some(agora_up(Path::new(&restored), port)));
    let q = as_platform(port, Path::new(&restored));
    let login = post_json(
        &q.url("/api/v1/auth/login"),
        None,
        json!({"login": "rhea", "password": "password-rhea"}),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(me_status(&q, &session).await, 200);
    let again = send("GET", &q.url(&content_path), Some(&rhea.token), &[], None).await;
    assert_eq!(again.status, 200);
    assert_eq!(sha256(&again.raw), sha256(&content.raw));
    let posts_path = format!("/api/v1/users/{}/posts", rhea.id);
    let posts = send("GET", &q.url(&posts_path), Some(&rhea.token), &[], None).await;
    assert_eq!(posts.status, 200, "{}", posts.body);
    assert!(
        posts.body.to_string().contains("before the backup"),
        "{}",
        posts.body
    );
    // The backup held Sten; the restore erased him again before serving.
    let sten_login = post_json(
        &q.url("/api/v1/auth/login"),
        None,
        json!({"login": "sten", "password": "password-sten"}),
    )
    .await;
    assert_eq!(sten_login.status, 401, "{}", sten_login.body);
    let profile = send(
        "GET",
        &q.url(&format!("/api/v1/users/{}", sten.id)),
        Some(&rhea.token),
        &[],
        None,
    )
    .await;
    assert_eq!(profile.status, 404, "{}", profile.body);
    let feed = send(
        "GET",
        &q.url(&format!("/api/v1/users/{}/posts", sten.id)),
        Some(&rhea.token),
        &[],
        None,
    )
    .await;
    assert!(
        !feed.raw.windows(6).any(|w| w == b"sten's"),
        "{}",
        feed.body
    );
    assert_eq!(
        send("GET", &q.url("/api/v1/feed"), Some(&sten.token), &[], None)
            .await
            .status,
        401
    );
    assert!(child.stop().success());
    let _ = std::fs::remove_dir_all(&root);
}
