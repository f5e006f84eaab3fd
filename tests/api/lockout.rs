//! Login lockout per identifier, per-IP rate limits, and client IP resolution behind trusted proxies.

use std::time::Duration;

use reqwest::Response;
use securecrud_tests::{PASSWORD, TestApp, assert_problem, text};
use serde_json::{Value, json};

const WRONG: &str = "not the password at all";
/// Limiter windows are aligned to the clock; an hour-long one keeps a test from straddling two.
const HOUR_WINDOW: (&str, &str) = ("RATE_LIMIT_AUTH_WINDOW_SECS", "3600");

fn retry_after(response: &Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in whole seconds")
}

/// A login that must be refused as locked; returns its body without the request id, and its Retry-After.
async fn locked(app: &TestApp, login: &str, password: &str) -> (Value, u64) {
    let response = app.login(login, password).await;
    let wait = retry_after(&response);
    let mut body = assert_problem(response, 429, "rate_limited").await;
    body.as_object_mut().expect("object").remove("request_id");
    (body, wait)
}

async fn fail(app: &TestApp, login: &str, times: usize) {
    for _ in 0..times {
        assert_problem(app.login(login, WRONG).await, 401, "invalid_credentials").await;
    }
}

#[actix_web::test]
async fn a_login_locks_after_the_configured_failures_and_not_before() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    app.signed_up("ada_l").await;

    fail(&app, "ada_l", 2).await;
    // Two failures in a row: not locked yet; this success resets the count.
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);
    fail(&app, "ada_l", 2).await;
    assert_eq!(app.login("ADA_L", PASSWORD).await.status(), 200);

    // Three in a row lock it: even the right password is refused, before any bcrypt work.
    fail(&app, "ada_l", 3).await;
    let (_, wait) = locked(&app, "ada_l", PASSWORD).await;
    assert!((55..=60).contains(&wait), "Retry-After {wait}");
    // The identifier is normalised, and the OAuth2 token form honours the same lock.
    locked(&app, "Ada_L", PASSWORD).await;
    let token = app.password_grant("ada_l", PASSWORD).await;
    assert!(retry_after(&token) > 0);
    assert_problem(token, 429, "rate_limited").await;
    // The lock is per identifier: the email still logs in.
    assert_eq!(app.login("ada_l@example.com", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn a_locked_existing_and_a_locked_unknown_identifier_look_the_same() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "2")]).await;
    app.signed_up("ada_l").await;

    let existing = app.login("ada_l", WRONG).await;
    let unknown = app.login("nobody", WRONG).await;
    let mut existing = assert_problem(existing, 401, "invalid_credentials").await;
    let mut unknown = assert_problem(unknown, 401, "invalid_credentials").await;
    existing.as_object_mut().unwrap().remove("request_id");
    unknown.as_object_mut().unwrap().remove("request_id");
    assert_eq!(existing, unknown);

    fail(&app, "ada_l", 1).await;
    fail(&app, "nobody", 1).await;
    let (existing, existing_wait) = locked(&app, "ada_l", WRONG).await;
    let (unknown, unknown_wait) = locked(&app, "nobody", WRONG).await;
    assert_eq!(existing, unknown);
    assert!(existing_wait.abs_diff(unknown_wait) <= 1);
}

#[actix_web::test]
async fn a_lock_expires_and_the_next_one_lasts_twice_as_long() {
    let app = TestApp::spawn_with(&[
        ("LOGIN_MAX_FAILURES", "2"),
        ("LOGIN_LOCKOUT_SECS", "1"),
        ("LOGIN_LOCKOUT_MAX_SECS", "2"),
    ])
    .await;
    app.signed_up("ada_l").await;

    fail(&app, "ada_l", 2).await;
    let (_, first) = locked(&app, "ada_l", PASSWORD).await;
    assert_eq!(first, 1);
    app.services.advance_clock(Duration::from_millis(1_100));

    fail(&app, "ada_l", 2).await;
    let (_, second) = locked(&app, "ada_l", PASSWORD).await;
    assert_eq!(second, 2, "the second lock doubles");
    app.services.advance_clock(Duration::from_millis(1_100));
    assert_eq!(
        locked(&app, "ada_l", PASSWORD).await.1,
        1,
        "a second later, one second is left"
    );
    app.services.advance_clock(Duration::from_millis(1_000));

    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn an_admin_unlock_starts_the_count_from_zero() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "2")]).await;
    let admin = app.admin_token("root").await;
    let (user, _) = app.signed_up("ada_l").await;
    let id = user.id.clone();
    fail(&app, "ada_l", 2).await;
    fail(&app, "ada_l@example.com", 2).await;
    locked(&app, "ada_l", PASSWORD).await;
    locked(&app, "ada_l@example.com", PASSWORD).await;

    let ada = app.access_token("grace_h").await;
    let path = format!("/api/v1/admin/users/{id}/unlock");
    let forbidden = app.post_json_authed(&path, &ada, &json!({})).await;
    assert_problem(forbidden, 403, "forbidden").await;
    let missing = app
        .post_json_authed(
            &format!("/api/v1/admin/users/{}/unlock", uuid::Uuid::new_v4()),
            &admin,
            &json!({}),
        )
        .await;
    assert_problem(missing, 404, "not_found").await;

    let unlocked = app.post_json_authed(&path, &admin, &json!({})).await;
    assert_eq!(unlocked.status(), 204);
    // Both identifiers work again, and each needs the full count to lock again.
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);
    fail(&app, "ada_l@example.com", 1).await;
    assert_eq!(app.login("ada_l@example.com", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn two_instances_on_one_database_share_the_lockout() {
    let vars = [("LOGIN_MAX_FAILURES", "4")];
    let first = TestApp::spawn_with(&vars).await;
    let second = first.sibling(&vars).await;
    first.signed_up("ada_l").await;

    fail(&first, "ada_l", 2).await;
    fail(&second, "ada_l", 2).await;

    locked(&first, "ada_l", PASSWORD).await;
    locked(&second, "ada_l", PASSWORD).await;
}

#[actix_web::test]
async fn the_auth_endpoints_are_rate_limited_per_client_ip() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_AUTH_PER_MIN", "4"), HOUR_WINDOW]).await;
    app.start_a_fresh_window(3600);

    // Every request counts, well-formed or not.
    for _ in 0..3 {
        let response = app.post_json("/api/v1/auth/register", &json!({})).await;
        assert_eq!(response.status(), 422);
    }
    assert_eq!(app.refresh("no-such-token").await.status(), 401);
    let limited = app.login("ada_l", PASSWORD).await;
    let wait = retry_after(&limited);
    assert!(
        (3500..=3600).contains(&wait),
        "the rest of a fresh hour: Retry-After {wait}"
    );
    assert_problem(limited, 429, "rate_limited").await;
    let limited = app.refresh("no-such-token").await;
    assert_problem(limited, 429, "rate_limited").await;
    // Other routes are not limited by it.
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get("/api/v1/tasks").await.status(), 401);
}

#[actix_web::test]
async fn the_general_limit_counts_every_api_route_in_memory() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_API_PER_MIN", "3")]).await;
    app.start_a_fresh_window(60);
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/tasks").await.status(), 401);
    }
    let limited = app.get("/api/v1/users/me").await;
    assert!(retry_after(&limited) <= 60);
    assert_problem(limited, 429, "rate_limited").await;
    assert_eq!(
        app.get("/health").await.status(),
        200,
        "health is never limited"
    );
}

async fn login_from(app: &TestApp, forwarded_for: &str) -> Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"login": "ada_l", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

async fn session_ips(app: &TestApp, access_token: &str) -> Vec<String> {
    let sessions: Value = app
        .get_authed("/api/v1/users/me/sessions", access_token)
        .await
        .json()
        .await
        .unwrap();
    sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ip"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // 127.0.0.1 is not a trusted proxy here: the header is the client's own claim.
    let app = TestApp::spawn_with(&[("RATE_LIMIT_AUTH_PER_MIN", "3"), HOUR_WINDOW]).await;
    app.start_a_fresh_window(3600);
    let (_, tokens) = app.signed_up("ada_l").await;

    assert_eq!(login_from(&app, "198.51.100.7").await.status(), 200);
    // A new made-up address per request does not escape the limit (register + login + this one = 3).
    let limited = login_from(&app, "198.51.100.8").await;
    assert_problem(limited, 429, "rate_limited").await;
    let ips = session_ips(&app, &tokens.access_token.clone()).await;
    assert_eq!(ips, ["127.0.0.1", "127.0.0.1"]);
}

#[actix_web::test]
async fn a_chain_through_a_trusted_proxy_gives_the_real_client() {
    let app = TestApp::spawn_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
        ("RATE_LIMIT_AUTH_PER_MIN", "3"),
        HOUR_WINDOW,
    ])
    .await;
    app.start_a_fresh_window(3600);
    app.signed_up("ada_l").await; // register and login from 127.0.0.1 itself (no header)

    // The client forged the first entry; our proxies appended the real address and each other.
    let first = login_from(&app, "6.6.6.6, 198.51.100.7, 10.1.2.3").await;
    assert_eq!(first.status(), 200);
    let tokens: Value = first.json().await.unwrap();
    for _ in 0..2 {
        assert_eq!(login_from(&app, "198.51.100.7").await.status(), 200);
    }
    // That client has used its 3; another client behind the same proxy has not.
    assert_problem(login_from(&app, "198.51.100.7").await, 429, "rate_limited").await;
    assert_eq!(login_from(&app, "203.0.113.5").await.status(), 200);

    let ips = session_ips(&app, &text(&tokens, "access_token")).await;
    assert!(
        ips.iter().filter(|ip| *ip == "198.51.100.7").count() == 3,
        "{ips:?}"
    );
    assert!(ips.contains(&"203.0.113.5".to_owned()), "{ips:?}");
    assert!(!ips.contains(&"6.6.6.6".to_owned()), "{ips:?}");
}

#[actix_web::test]
async fn the_sweep_deletes_expired_counters_and_keeps_current_ones() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_AUTH_PER_MIN", "100")]).await;
    app.start_a_fresh_window(60); // the sign-up's counter must still be current at the sweep
    app.signed_up("ada_l").await;
    // Past the API on purpose: a counter of a window long gone, which no request can make now.
    app.execute(
        "INSERT INTO rate_limits (key, window_start, count) VALUES ('auth:192.0.2.1', 60, 7)",
    )
    .await;

    let swept = app.services.sweep().await.unwrap();

    assert_eq!(swept.rate_limit_counters, 1);
    let keys = app.query_strings("SELECT key FROM rate_limits").await;
    assert_eq!(keys, ["auth:127.0.0.1"]);
}

#[actix_web::test]
async fn an_overlong_login_is_refused_as_invalid_input_before_anything_is_counted() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(255);
    let response = app.login(&long, WRONG).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(securecrud_tests::error_fields(&problem), ["login"]);
    let at_most = app.login(&"b".repeat(254), WRONG).await;
    assert_problem(at_most, 401, "invalid_credentials").await;
}
