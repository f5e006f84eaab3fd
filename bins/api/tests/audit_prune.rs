//! `api audit prune --older-than AGE`, run as a process against a fresh database (SQLite, or PostgreSQL with
//! `TEST_DATABASE=postgres`), then checked through the HTTP api.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Output;

use securecrud_tests::{FreshDatabase, TestApp, binary};
use serde_json::Value;

fn api(database: &FreshDatabase, args: &[&str]) -> Output {
    binary(
        env!("CARGO_BIN_EXE_api"),
        env!("CARGO_TARGET_TMPDIR"),
        database,
    )
    .args(args)
    .env("JWT_SECRET", securecrud_tests::TEST_JWT_SECRET)
    .env("RUST_LOG", "warn")
    .output()
    .expect("run api")
}

async fn event_types(app: &TestApp, admin: &str) -> Vec<String> {
    let page: Value = app
        .get_authed("/api/v1/admin/audit?limit=100", admin)
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn prune_deletes_only_events_older_than_the_age() {
    let database = FreshDatabase::create().await;
    let app = TestApp::spawn_on(&database).await;
    let admin = app.admin_token("root").await;
    app.signed_up("ada_l").await;
    // Past the API on purpose: events age only with time.
    app.execute(
        "UPDATE audit_events SET at = '2000-01-01T00:00:00+00:00' WHERE type = 'user_registered'",
    )
    .await;
    let before = event_types(&app, &admin).await;

    let output = api(&database, &["audit", "prune", "--older-than", "90d"]);

    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("pruned 2 audit events older than 20")
    );
    let after = event_types(&app, &admin).await;
    assert_eq!(after.len(), before.len() - 2);
    assert!(!after.iter().any(|t| t == "user_registered"));
}

#[actix_web::test]
async fn a_bad_age_is_refused_with_a_usage_error() {
    let database = FreshDatabase::create().await;
    let output = api(
        &database,
        &["audit", "prune", "--older-than", "ninety days"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an age like 90d"));
}
