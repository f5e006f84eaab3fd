//! `GET /metrics` on `METRICS_ADDR` (API.md "Operations"): off unless configured, on its own listener, and
//! its figures move with what the api does.

use securecrud_tests::{PASSWORD, TestApp};

/// The value of the sample `name` (with its labels written exactly as rendered), or 0 when absent.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    let address = app.metrics_address.as_ref().expect("METRICS_ADDR is set");
    let response = app
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "Prometheus's text format"
    );
    response.text().await.unwrap()
}

#[actix_web::test]
async fn metrics_are_off_unless_metrics_addr_is_set_and_never_on_the_api_listener() {
    let app = TestApp::spawn().await;
    assert!(app.metrics_address.is_none());
    let on_api = app.get("/metrics").await;
    assert_eq!(on_api.status(), 404, "never served with the api");

    let with = TestApp::spawn_with(&[("METRICS_ADDR", "127.0.0.1:0")]).await;
    assert_eq!(
        with.get("/metrics").await.status(),
        404,
        "only on its own listener"
    );
    assert!(scrape(&with).await.contains("securecrud_db_up 1"));
}

#[actix_web::test]
async fn the_figures_move_with_requests_logins_lockouts_reuse_and_mail() {
    let app = TestApp::spawn_with(&[
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("LOGIN_MAX_FAILURES", "2"),
        ("REFRESH_GRACE_SECS", "0"),
    ])
    .await;
    let before = scrape(&app).await;
    for family in [
        "securecrud_logins_total",
        "securecrud_login_lockouts_total",
        "securecrud_refresh_reuse_detected_total",
        "securecrud_password_queue_wait_seconds",
        "securecrud_password_queue_rejected_total",
        "securecrud_mail_outbox_pending",
        "securecrud_mail_outbox_dead",
        "securecrud_mail_breaker_open",
        "securecrud_db_up",
        "securecrud_db_pool_connections",
        "securecrud_db_pool_max_connections",
        "securecrud_db_begin_wait_seconds",
    ] {
        assert!(
            before.contains(&format!("# TYPE {family} ")),
            "{family} is described before anything happened:\n{before}"
        );
    }
    // DB_MAX_CONNECTIONS=6 (the tests' default), plus on PostgreSQL the pools of the worker runtimes as they
    // start.
    let max = sample(&before, "securecrud_db_pool_max_connections");
    assert!(max >= 6.0, "pool max {max}");
    assert_eq!(sample(&before, "securecrud_mail_breaker_open"), 0.0);

    // A login, two failures that lock the name, a task fetched by id, and a refresh token reused.
    let (_, pair) = app.signed_up("ada_l").await;
    let token = pair.access_token.clone();
    for _ in 0..2 {
        assert_eq!(app.login("grace_h", "wrong password!").await.status(), 401);
    }
    assert_eq!(app.login("grace_h", PASSWORD).await.status(), 429);
    let task = app
        .create_task(&token, &serde_json::json!({"title": "count me"}))
        .await;
    let id = task["id"].as_i64().unwrap();
    let path = format!("/api/v1/tasks/{id}");
    assert_eq!(app.get_authed(&path, &token).await.status(), 200);
    assert_eq!(
        app.get_authed("/api/v1/tasks/999999", &token)
            .await
            .status(),
        404
    );
    let old = pair.refresh_token.clone();
    assert_eq!(app.refresh(&old).await.status(), 200);
    assert_eq!(app.refresh(&old).await.status(), 401, "reuse detected");
    assert_eq!(app.get("/no/such/route/42").await.status(), 404);

    let after = scrape(&app).await;
    assert!(after.contains("# TYPE securecrud_http_request_duration_seconds histogram"));
    assert_eq!(
        sample(&after, r#"securecrud_logins_total{outcome="succeeded"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"securecrud_logins_total{outcome="invalid_credentials"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(&after, r#"securecrud_logins_total{outcome="locked"}"#),
        1.0
    );
    assert_eq!(sample(&after, "securecrud_login_lockouts_total"), 1.0);
    assert_eq!(
        sample(&after, "securecrud_refresh_reuse_detected_total"),
        1.0
    );
    assert!(
        sample(&after, "securecrud_password_queue_wait_seconds_count") >= 4.0,
        "register and three logins hashed or verified a password"
    );
    assert!(sample(&after, "securecrud_db_begin_wait_seconds_count") >= 1.0);
    // Requests by route template, method and status: the id is never a label.
    assert_eq!(
        sample(
            &after,
            r#"securecrud_http_request_duration_seconds_count{method="GET",route="/api/v1/tasks/{id}",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"securecrud_http_request_duration_seconds_count{method="GET",route="/api/v1/tasks/{id}",status="404"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"securecrud_http_request_duration_seconds_count{method="POST",route="/api/v1/auth/login",status="401"}"#
        ),
        2.0
    );
    assert!(
        sample(
            &after,
            r#"securecrud_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}"#
        ) >= 1.0
    );
    assert!(
        !after.contains(&format!("/api/v1/tasks/{id}\""))
            && !after.contains("tasks/999999")
            && !after.contains("/no/such/route"),
        "no raw path reaches a label:\n{after}"
    );
    assert_eq!(sample(&after, "securecrud_db_up"), 1.0);
}
