//! Replicas starting together: concurrent migration runs take turns under the advisory
//! lock, so the schema is created exactly once and every replica starts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::db::{advisory_lock_key, migrate};
use agora_common::testing::fresh_database;

#[actix_web::test]
async fn concurrent_starts_apply_each_migration_once() {
    let url = fresh_database("migrations").await;
    let runs = (0..4).map(|_| migrate(&url, agora_auth::MIGRATIONS, advisory_lock_key("auth")));
    let results = futures_util::future::join_all(runs).await;
    let applied: Vec<usize> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("migration failed: {e}")))
        .collect();
    // Every migration is applied by exactly one of the runs.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .map(|d| d.count())
        .unwrap();
    assert!(migrations >= 2);
    assert_eq!(applied.iter().sum::<usize>(), migrations, "{applied:?}");
    // A later start finds nothing to do.
    let again = migrate(&url, agora_auth::MIGRATIONS, advisory_lock_key("auth")).await;
    assert_eq!(again.ok(), Some(0));
}
