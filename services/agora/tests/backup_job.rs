//! `agora backup` as a cluster's backup Job runs it: databases named one by one
//! (`--database SERVICE=env:VAR`, the password from `PGPASSWORD`-less URLs or the
//! variable), the keys from a Secret's mount (links into `..data`, as the kubelet
//! writes them), the photo directory, `--resume` and the outcome in `--report-file`;
//! against the real PostgreSQL of `hack/test.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;
use support::s3_var;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::path::Path;
use std::process::Command;

fn agora(args: &[&str], database_url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(args)
        .env("USERS_DATABASE", database_url)
        .env(
            "AGORA_BACKUP_PLATFORM",
            r#"{"name": "demo", "namespace": "social"}"#,
        )
        .output()
        .unwrap()
}

fn agora_owned(args: &[String], database_url: &str) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    agora(&args, database_url)
}

/// A Secret's volume: files in a timestamped directory, reached by `..data` and links.
fn secret_mount(dir: &Path, files: &[(&str, &str)]) {
    let data = dir.join("..2026_12_06_00_00_00.000000000");
    std::fs::create_dir_all(&data).unwrap();
    for (name, content) in files {
        std::fs::write(data.join(name), content).unwrap();
    }
    std::os::unix::fs::symlink("..2026_12_06_00_00_00.000000000", dir.join("..data")).unwrap();
    for (name, _) in files {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
}

#[tokio::test]
async fn a_backup_job_backs_up_what_it_is_given_and_resumes_cleanly() {
    let url = agora_common::testing::fresh_database("backup_job").await;
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    for sql in [
        "CREATE TABLE __diesel_schema_migrations (version varchar PRIMARY KEY)",
        "INSERT INTO __diesel_schema_migrations VALUES ('20261201000000')",
        "CREATE TABLE posts (id int PRIMARY KEY, text text)",
        "INSERT INTO posts VALUES (1, 'kept')",
    ] {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
    let root = std::env::temp_dir().join(agora_common::testing::unique_prefix("backup_job"));
    let (keys, photos, to) = (root.join("keys"), root.join("photos"), root.join("to"));
    secret_mount(
        &keys,
        &[
            ("auth-signing-key", "-----BEGIN PRIVATE KEY-----\nx\n"),
            ("share-link-key", "ab"),
            ("internal-token", "cd"),
        ],
    );
    std::fs::create_dir_all(photos.join("content/ab")).unwrap();
    std::fs::write(photos.join("content/ab/photo"), b"jpeg bytes").unwrap();
    let report = root.join("report.json");
    let key_file = root.join("backup.key");
    std::fs::write(&key_file, "5e".repeat(32)).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let args = [
        "backup".to_owned(),
        "--database".to_owned(),
        "users=env:USERS_DATABASE".to_owned(),
        "--keys-dir".to_owned(),
        s(&keys),
        "--photos-dir".to_owned(),
        s(&photos),
        "--to".to_owned(),
        s(&to),
        "--encryption-key-file".to_owned(),
        s(&key_file),
        "--resume".to_owned(),
        "--report-file".to_owned(),
        s(&report),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let made = agora(&args, &url);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&made.stderr).contains(&url),
        "the URL (and its password) is never printed"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["source"], "cluster");
    assert_eq!(manifest["platform"]["name"], "demo");
    assert_eq!(manifest["databases"][0]["service"], "users");
    assert_eq!(manifest["databases"][0]["migration"], "20261201000000");
    assert_eq!(manifest["photos"]["objects"], 1);
    assert!(to.join("photos/content/ab/photo").is_file());
    assert!(to.join("keys.sealed").is_file() && !to.join("keys.json").exists());
    let sizes: u64 = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(outcome["size_bytes"], sizes);

    // A retried Job finds the backup complete: kept as it is.
    let before = std::fs::read(to.join("manifest.json")).unwrap();
    let again = agora(&args, &url);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(to.join("manifest.json")).unwrap(), before);
    // An attempt killed halfway (no manifest) is cleared and redone.
    std::fs::remove_file(to.join("manifest.json")).unwrap();
    std::fs::write(to.join("databases/half-written.dump"), b"partial").unwrap();
    let redone = agora(&args, &url);
    assert!(
        redone.status.success(),
        "{}",
        String::from_utf8_lossy(&redone.stderr)
    );
    assert!(to.join("manifest.json").is_file());
    assert!(!to.join("databases/half-written.dump").exists());
    // Without --resume a non-empty destination is refused.
    let refused = agora(&args[..args.len() - 3], &url);
    assert!(!refused.status.success());

    // A database that does not exist: the report says why, nothing is left behind.
    let missing = root.join("missing");
    let bad_url = format!("{}_absent", url);
    let mut bad_args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    bad_args[8] = s(&missing);
    let bad: Vec<&str> = bad_args.iter().map(String::as_str).collect();
    let failed = agora(&bad, &bad_url);
    assert!(!failed.status.success());
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{outcome}"
    );
    assert!(std::fs::read_dir(&missing).map(|d| d.count()).unwrap_or(0) == 0);

    // What a restore Job runs: into an empty database, photo directory and keys dir.
    let target = agora_common::testing::fresh_database("restore_job").await;
    let (keys_out, photos_out) = (root.join("keys-out"), root.join("photos-out"));
    std::fs::create_dir_all(photos_out.join("lost+found")).unwrap();
    let restore = |report: &Path| {
        vec![
            "restore".to_owned(),
            "--from".to_owned(),
            s(&to),
            "--database".to_owned(),
            "users=env:USERS_DATABASE".to_owned(),
            "--keys-dir".to_owned(),
            s(&keys_out),
            "--photos-dir".to_owned(),
            s(&photos_out),
            "--encryption-key-file".to_owned(),
            s(&key_file),
            "--report-file".to_owned(),
            s(report),
        ]
    };
    let restored = agora_owned(&restore(&report), &target);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let mut conn = AsyncPgConnection::establish(&target).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    let rows: Vec<Text> = diesel::sql_query("SELECT text FROM posts")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].text, "kept");
    assert_eq!(
        std::fs::read(photos_out.join("content/ab/photo")).unwrap(),
        b"jpeg bytes"
    );
    assert_eq!(
        std::fs::read_to_string(keys_out.join("share-link-key")).unwrap(),
        "ab"
    );
    assert_eq!(
        std::fs::read_to_string(keys_out.join("internal-token")).unwrap(),
        "cd"
    );
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(outcome["restored"], true);
    // Again: the database is not empty now, and nothing is touched.
    let again = agora_owned(&restore(&report), &target);
    assert!(!again.status.success());
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(
        outcome["error"].as_str().unwrap().contains("not empty"),
        "{outcome}"
    );
    let rows: Vec<Text> = diesel::sql_query("SELECT text FROM posts")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    // A damaged dump is found before anything is written.
    let fresh = agora_common::testing::fresh_database("restore_damaged").await;
    let dump = to.join("databases/users.dump");
    let bytes = std::fs::read(&dump).unwrap();
    std::fs::write(&dump, &bytes[..bytes.len() / 2]).unwrap();
    let photos_fresh = root.join("photos-fresh");
    let mut damaged = restore(&report);
    damaged[8] = s(&photos_fresh);
    let refused = agora_owned(&damaged, &fresh);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("databases/users.dump"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!photos_fresh.exists(), "nothing written");
    let mut fresh_conn = AsyncPgConnection::establish(&fresh).await.unwrap();
    let tables: Vec<Text> =
        diesel::sql_query("SELECT tablename AS text FROM pg_tables WHERE schemaname = 'public'")
            .load(&mut fresh_conn)
            .await
            .unwrap();
    assert!(
        tables.is_empty(),
        "nothing restored into the fresh database"
    );
    std::fs::write(&dump, &bytes).unwrap();

    // What a deletion Job runs: the backup's directory goes; again is fine.
    for _ in 0..2 {
        let deleted = agora(&["delete-backup", &s(&to)], &url);
        assert!(
            deleted.status.success(),
            "{}",
            String::from_utf8_lossy(&deleted.stderr)
        );
        assert!(!to.exists());
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn copy_binary_brings_the_ca_bundle_along() {
    let root = std::env::temp_dir().join(agora_common::testing::unique_prefix("copy_binary"));
    std::fs::create_dir_all(&root).unwrap();
    let bundle = root.join("bundle.pem");
    std::fs::write(&bundle, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let dest = root.join("tools");
    std::fs::create_dir_all(&dest).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["copy-binary", dest.join("agora").to_str().unwrap()])
        .env("SSL_CERT_FILE", &bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = std::fs::metadata(dest.join("agora")).unwrap();
    assert_eq!(
        copied.len(),
        std::fs::metadata(env!("CARGO_BIN_EXE_agora"))
            .unwrap()
            .len()
    );
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&copied.permissions()) & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("ca-certificates.crt")).unwrap(),
        "-----BEGIN CERTIFICATE-----\n"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Photos kept in a bucket stay there: a backup Job lists their objects (not the export
/// archives beside them) with the photos' own credentials, and a restore refuses,
/// before it writes anything, once one of them is gone from the bucket or when the new
/// platform keeps its photos elsewhere.
#[tokio::test]
async fn photos_in_a_bucket_are_listed_and_checked_before_a_restore() {
    let url = agora_common::testing::fresh_database("backup_bucket").await;
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    for sql in [
        "CREATE TABLE __diesel_schema_migrations (version varchar PRIMARY KEY)",
        "CREATE TABLE photos (id int PRIMARY KEY, sha256 text)",
        "INSERT INTO photos VALUES (1, 'c0ffee')",
    ] {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
    // The S3 server's posix backend keeps each object as <root>/root/<bucket>/<key>.
    let bucket = s3_var("AGORA_TEST_S3_BUCKET");
    let prefix = agora_common::testing::unique_prefix("photos");
    let objects = std::path::PathBuf::from(s3_var("AGORA_TEST_S3_ROOT"))
        .join("root")
        .join(&bucket)
        .join(&prefix);
    for (key, bytes) in [
        ("content/c0ffee", &b"jpeg bytes"[..]),
        ("thumbnails/c0ffee", b"thumb"),
        ("exports/u1/e1.zip", b"an export"),
    ] {
        let path = objects.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let root = std::env::temp_dir().join(agora_common::testing::unique_prefix("backup_bucket"));
    let (keys, to) = (root.join("keys"), root.join("to"));
    secret_mount(
        &keys,
        &[
            ("auth-signing-key", "-----BEGIN PRIVATE KEY-----\nx\n"),
            ("share-link-key", "ab"),
            ("internal-token", "cd"),
        ],
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let photos_bucket = format!("s3://{bucket}/{prefix}");
    // The photos' credentials under their own names; none for the destination (a dir).
    let run = |args: &[String], database: &str| {
        Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(args)
            .env("USERS_DATABASE", database)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env(
                "PHOTOS_AWS_ACCESS_KEY_ID",
                s3_var("AGORA_TEST_S3_ACCESS_KEY"),
            )
            .env(
                "PHOTOS_AWS_SECRET_ACCESS_KEY",
                s3_var("AGORA_TEST_S3_SECRET_KEY"),
            )
            .env("PHOTOS_AWS_ENDPOINT_URL", s3_var("AGORA_TEST_S3_ENDPOINT"))
            .output()
            .unwrap()
    };
    let made = run(
        &[
            "backup".to_owned(),
            "--database".to_owned(),
            "photos=env:USERS_DATABASE".to_owned(),
            "--keys-dir".to_owned(),
            s(&keys),
            "--photos-bucket".to_owned(),
            photos_bucket.clone(),
            "--to".to_owned(),
            s(&to),
        ],
        &url,
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["photos"]["objects"], 2, "{manifest}");
    assert_eq!(manifest["photos"]["bytes"], 15);
    assert_eq!(
        manifest["photos"]["bucket"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        photos_bucket
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join("photos-bucket.json")).unwrap()).unwrap();
    let keys_listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys_listed, ["content/c0ffee", "thumbnails/c0ffee"]);
    assert!(!to.join("photos").exists(), "no bytes copied");

    let restore = |photos: [String; 2]| {
        let mut args = vec![
            "restore".to_owned(),
            "--from".to_owned(),
            s(&to),
            "--database".to_owned(),
            "photos=env:USERS_DATABASE".to_owned(),
            "--keys-dir".to_owned(),
            s(&root.join("keys-out")),
        ];
        args.extend(photos);
        args
    };
    let in_bucket = || ["--photos-bucket".to_owned(), photos_bucket.clone()];
    let into = agora_common::testing::fresh_database("restore_bucket").await;
    let restored = run(&restore(in_bucket()), &into);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );

    // A platform with a photo volume: refused, nothing written.
    let fresh = agora_common::testing::fresh_database("restore_bucket_refused").await;
    let onto_volume = ["--photos-dir".to_owned(), s(&root.join("photos-out"))];
    let refused = run(&restore(onto_volume), &fresh);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("stayed in"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // A thumbnail gone from the bucket since: refused, naming it, nothing written.
    std::fs::remove_file(objects.join("thumbnails/c0ffee")).unwrap();
    let refused = run(&restore(in_bucket()), &fresh);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("thumbnails/c0ffee is missing"), "{said}");
    let mut fresh_conn = AsyncPgConnection::establish(&fresh).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let tables: Vec<Count> =
        diesel::sql_query("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")
            .load(&mut fresh_conn)
            .await
            .unwrap();
    assert_eq!(tables[0].n, 0, "nothing restored");
    let _ = std::fs::remove_dir_all(&objects);
    let _ = std::fs::remove_dir_all(&root);
}
