//! Integration-test support: a fresh database per test on the throwaway PostgreSQL
//! cluster that `hack/test.sh` starts (`AGORA_TEST_DATABASE_URL`).

/// The server-level URL of the test cluster. Panics with instructions when unset:
/// tests never silently skip.
pub fn server_url() -> String {
    match std::env::var("AGORA_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AGORA_TEST_DATABASE_URL is not set: run the tests with `hack/test.sh`, which starts \
             a throwaway PostgreSQL cluster (or point it at a server where you may create databases)"
        ),
    }
}

/// A unique database-name prefix for one test.
pub fn unique_prefix(name: &str) -> String {
    format!(
        "t_{name}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database(name: &str) -> String {
    let db = unique_prefix(name);
    match crate::db::ensure_database(&server_url(), &db).await {
        Ok(url) => url,
        Err(e) => panic!("cannot create test database {db}: {e}"),
    }
}
