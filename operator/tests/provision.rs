//! The managed database's provisioning script and SQL, exactly as the Job runs them,
//! against the real PostgreSQL of `hack/test.sh`: one role and database per service,
//! idempotent, passwords following the Secrets, and no service reaching another's data.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_operator::database::{PROVISION_SCRIPT, PROVISION_SQL, READER_SQL};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `psql` and `pg_isready` from PATH or the Debian layout.
fn pg_bin() -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("psql").is_file() && dir.join("pg_isready").is_file() {
                return dir;
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .filter(|d| d.join("psql").is_file())
        .unwrap_or_else(|| panic!("psql is missing: install the postgresql-client package"))
}

/// (host, port, user) of `AGORA_TEST_DATABASE_URL` (`postgres://user@host:port/db`).
fn server() -> (String, String, String) {
    let url = agora_common_url();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .unwrap();
    let (auth, rest) = rest.split_once('@').unwrap();
    let user = auth.split(':').next().unwrap().to_owned();
    let hostport = rest.split('/').next().unwrap();
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    (host.to_owned(), port.to_owned(), user)
}

fn agora_common_url() -> String {
    std::env::var("AGORA_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            panic!("AGORA_TEST_DATABASE_URL is not set: run the tests with hack/test.sh")
        })
}

fn run(
    dir: &Path,
    services: &str,
    reader: &str,
    superuser: &(String, String, String),
) -> std::process::Output {
    let bin = pg_bin();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("/bin/sh")
        .arg(dir.join("provision.sh"))
        .env("PATH", path)
        .env("SERVICES", services)
        .env("READER", reader)
        .env("PROVISION_DIR", dir)
        .env("SECRETS_DIR", dir.join("secrets"))
        .env("PGHOST", &superuser.0)
        .env("PGPORT", &superuser.1)
        .env("PGUSER", &superuser.2)
        .env("PGDATABASE", "postgres")
        .output()
        .unwrap()
}

fn psql(as_user: &str, database: &str, sql: &str) -> Result<String, String> {
    let (host, port, _) = server();
    let out = Command::new(pg_bin().join("psql"))
        .args([
            "-h", &host, "-p", &port, "-U", as_user, "-d", database, "-XAtqc", sql,
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn set_password(dir: &Path, service: &str, password: &str) {
    let secret = dir.join("secrets").join(service);
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("password"), password).unwrap();
}

#[test]
fn provisioning_creates_a_private_database_per_service_idempotently() {
    let dir = std::env::temp_dir().join(format!("agora-provision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("provision.sh"), PROVISION_SCRIPT).unwrap();
    std::fs::write(dir.join("provision.sql"), PROVISION_SQL).unwrap();
    std::fs::write(dir.join("reader.sql"), READER_SQL).unwrap();
    // Unique names: the test cluster is shared by every test of the run.
    let tag = format!("{:x}", std::process::id());
    let (a, b) = (format!("prov_a_{tag}"), format!("prov_b_{tag}"));
    let reader = format!("prov_reader_{tag}");
    set_password(&dir, &reader, "reader");
    set_password(&dir, &a, "first'password");
    set_password(&dir, &b, "other");
    let superuser = server();

    let first = run(&dir, &a, &reader, &superuser);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Again, with a second service added and a's password changed: a keeps its
    // database, b gets one, a's role now has the new password.
    set_password(&dir, &a, "second");
    let second = run(&dir, &format!("{a} {b}"), &reader, &superuser);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    let owner = |db: &str| {
        psql(
            &superuser.2,
            "postgres",
            &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'"),
        )
        .unwrap()
    };
    assert_eq!(owner(&a), a);
    assert_eq!(owner(&b), b);
    let verifier = psql(
        &superuser.2,
        "postgres",
        &format!(
            "SELECT rolpassword IS NOT NULL AND NOT rolsuper AND NOT rolcreatedb FROM pg_authid WHERE rolname = '{a}'"
        ),
    );
    assert_eq!(verifier.unwrap(), "t", "a plain login role with a password");
    // Each role owns its database and can create tables there, and cannot even
    // connect to the other one.
    psql(&a, &a, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)").unwrap();
    let refused = psql(&a, &b, "SELECT 1").unwrap_err();
    assert!(refused.contains("permission denied"), "{refused}");
    // Idempotent: a third run changes nothing and keeps the data.
    let third = run(&dir, &format!("{a} {b}"), &reader, &superuser);
    assert!(third.status.success());
    assert_eq!(psql(&a, &a, "SELECT count(*) FROM t").unwrap(), "1");
    // The backups' role reads every service's data and writes none.
    assert_eq!(psql(&reader, &a, "SELECT count(*) FROM t").unwrap(), "1");
    assert!(psql(&reader, &b, "SELECT 1").is_ok(), "CONNECT on b too");
    let write = psql(&reader, &a, "INSERT INTO t VALUES (2)").unwrap_err();
    assert!(write.contains("permission denied"), "{write}");
    let create = psql(&reader, &a, "CREATE TABLE r (x int)").unwrap_err();
    assert!(create.contains("permission denied"), "{create}");

    for db in [&a, &b] {
        psql(&superuser.2, "postgres", &format!("DROP DATABASE {db}")).unwrap();
        psql(&superuser.2, "postgres", &format!("DROP ROLE {db}")).unwrap();
    }
    psql(&superuser.2, "postgres", &format!("DROP ROLE {reader}")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
