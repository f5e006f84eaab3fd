use securecrud_tests::{TestApp, assert_problem};
use serde_json::Value;

#[actix_web::test]
async fn health_reports_ok_database_and_version() {
    let app = TestApp::spawn().await;

    let response = app.get("/health").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[actix_web::test]
async fn health_is_503_with_retry_after_when_the_database_is_down() {
    let app = TestApp::spawn().await;
    app.services.database().close().await.unwrap();

    let response = app.get("/health").await;

    assert!(response.headers().get("retry-after").is_some());
    assert_problem(response, 503, "unavailable").await;
}

#[actix_web::test]
async fn routes_needing_the_database_are_503_not_500_when_it_is_down() {
    let app = TestApp::spawn().await;
    app.services.database().close().await.unwrap();

    let response = app.login("ada_l", "whatever-password").await;

    assert_problem(response, 503, "unavailable").await;
}

#[actix_web::test]
async fn liveness_never_touches_the_database() {
    let app = TestApp::spawn().await;
    app.services.database().close().await.unwrap();

    let response = app.get("/health/live").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[actix_web::test]
async fn readiness_needs_the_database_and_every_migration() {
    let app = TestApp::spawn().await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["migrations"], "current");

    app.services.database().migrate_down(1).await.unwrap();
    let pending = app.get("/health/ready").await;
    assert!(pending.headers().get("retry-after").is_some());
    assert_problem(pending, 503, "unavailable").await;
    assert_eq!(app.get("/health/live").await.status(), 200);

    app.services.database().migrate_up().await.unwrap();
    assert_eq!(app.get("/health/ready").await.status(), 200);

    // A newer version of the api applied a migration this one does not know (a rolling upgrade): this
    // instance still serves on the newer schema.
    app.execute(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_from_a_newer_version', 0)",
    )
    .await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    app.services.database().close().await.unwrap();
    assert_problem(app.get("/health/ready").await, 503, "unavailable").await;
}
