//! Browser sessions: `session: "cookie"` puts the refresh token only in an `HttpOnly; Secure;
//! SameSite=Strict` cookie; refresh and logout take it from there under the CSRF rules; `/auth/check` reads
//! it without rotating it.

use reqwest::{RequestBuilder, Response};
use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields, text};
use serde_json::{Value, json};

const COOKIE: &str = "__Host-securecrud_refresh";
/// The test app's own origin (`PUBLIC_BASE_URL`'s default).
const OWN_ORIGIN: &str = "http://127.0.0.1:8080";

/// The session cookie a response sets: its value and full `Set-Cookie` line.
fn set_cookie(response: &Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|line| line.starts_with(&format!("{name}=")))
        .map(|line| {
            let value = line
                .split(';')
                .next()
                .and_then(|pair| pair.split_once('='))
                .map(|(_, v)| v.to_owned())
                .unwrap_or_default();
            (value, line.to_owned())
        })
}

fn browser(request: RequestBuilder, cookie: Option<&str>) -> RequestBuilder {
    let request = request
        .header("x-requested-with", "securecrud")
        .header("origin", OWN_ORIGIN);
    match cookie {
        Some(value) => request.header("cookie", format!("{COOKIE}={value}")),
        None => request,
    }
}

async fn cookie_login(app: &TestApp, login: &str) -> (Value, String) {
    let response = browser(app.client.post(app.url("/api/v1/auth/login")), None)
        .json(&json!({ "login": login, "password": PASSWORD, "session": "cookie" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (value, _) = set_cookie(&response, COOKIE).expect("the session cookie");
    (response.json().await.unwrap(), value)
}

async fn cookie_refresh(app: &TestApp, cookie: &str) -> Response {
    browser(
        app.client.post(app.url("/api/v1/auth/refresh")),
        Some(cookie),
    )
    .json(&json!({}))
    .send()
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_cookie_login_keeps_the_refresh_token_out_of_the_body() {
    let app = TestApp::spawn().await;
    app.signed_up("ada_l").await;
    let response = browser(app.client.post(app.url("/api/v1/auth/login")), None)
        .json(&json!({ "login": "ada_l", "password": PASSWORD, "session": "cookie" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (value, line) = set_cookie(&response, COOKIE).expect("the session cookie");
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(value.len() >= 43, "a 256-bit token");
    let max_age = body["refresh_expires_in"].as_i64().unwrap();
    assert_eq!(
        line,
        format!("{COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=Strict")
    );
    assert!(max_age > 604_000 && max_age <= 604_800, "{max_age}");
    assert_eq!(app.me(&text(&body, "access_token")).await.username, "ada_l");
    // A token login is unchanged: the refresh token in the body, no cookie.
    let response = app.login("ada_l", PASSWORD).await;
    assert!(set_cookie(&response, COOKIE).is_none());
    let body: Value = response.json().await.unwrap();
    assert!(body["refresh_token"].is_string());
}

#[actix_web::test]
async fn a_cookie_login_needs_the_header_and_an_allowed_origin() {
    let app = TestApp::spawn_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com, *")]).await;
    app.signed_up("ada_l").await;
    let body = json!({ "login": "ada_l", "password": PASSWORD, "session": "cookie" });
    let login = || app.client.post(app.url("/api/v1/auth/login")).json(&body);
    assert_problem(login().send().await.unwrap(), 403, "forbidden").await;
    for (origin, status) in [
        ("https://evil.example", 403),
        ("null", 403),
        ("https://app.example.com", 200),
        (OWN_ORIGIN, 200),
    ] {
        let response = login()
            .header("x-requested-with", "securecrud")
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{origin}");
    }
    let no_origin = login()
        .header("x-requested-with", "securecrud")
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_origin.status(),
        200,
        "same-origin requests may omit Origin"
    );
}

#[actix_web::test]
async fn refresh_and_logout_use_the_cookie_under_the_csrf_rules() {
    let app = TestApp::spawn_with(&[("REFRESH_GRACE_SECS", "0")]).await;
    app.signed_up("ada_l").await;
    let (_, cookie) = cookie_login(&app, "ada_l").await;

    // Without the header, or from another origin, the cookie is refused and nothing rotates.
    let bare = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("{COOKIE}={cookie}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(bare, 403, "forbidden").await;
    let foreign = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("{COOKIE}={cookie}"))
        .header("x-requested-with", "securecrud")
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(foreign, 403, "forbidden").await;

    let response = cookie_refresh(&app, &cookie).await;
    assert_eq!(response.status(), 200);
    let (rotated, _) = set_cookie(&response, COOKIE).expect("a new cookie");
    assert_ne!(rotated, cookie);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    let access = text(&body, "access_token");
    assert_eq!(app.me(&access).await.username, "ada_l");

    // The old cookie after the grace window is a replay: the session ends (reuse detection unchanged).
    assert_problem(cookie_refresh(&app, &cookie).await, 401, "invalid_token").await;
    assert_problem(
        app.get_authed("/api/v1/users/me", &access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(cookie_refresh(&app, &rotated).await, 401, "invalid_token").await;

    // No cookie: a browser client is told its session is over; any other client that the field is missing.
    let gone = browser(app.client.post(app.url("/api/v1/auth/refresh")), None)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(gone, 401, "invalid_token").await;
    let problem = assert_problem(
        app.post_json("/api/v1/auth/refresh", &json!({})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["refresh_token"]);

    // Logout with the cookie ends the session and clears the cookie.
    let (body, cookie) = cookie_login(&app, "ada_l").await;
    let access = text(&body, "access_token");
    let response = browser(
        app.client.post(app.url("/api/v1/auth/logout")),
        Some(&cookie),
    )
    .json(&json!({}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 204);
    let (value, line) = set_cookie(&response, COOKIE).expect("the cookie is cleared");
    assert_eq!(value, "");
    assert!(line.contains("Max-Age=0"), "{line}");
    assert_problem(
        app.get_authed("/api/v1/users/me", &access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(cookie_refresh(&app, &cookie).await, 401, "invalid_token").await;
    let csrf = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", format!("{COOKIE}={cookie}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(csrf, 403, "forbidden").await;
}

#[actix_web::test]
async fn the_forward_auth_check_reads_the_cookie_without_rotating_it() {
    let app = TestApp::spawn().await;
    let (user, _) = app.signed_up("ada_l").await;
    let (_, cookie) = cookie_login(&app, "ada_l").await;
    let check = |cookie: String| {
        app.client
            .get(app.url("/api/v1/auth/check"))
            .header("cookie", format!("{COOKIE}={cookie}"))
            .send()
    };
    for _ in 0..2 {
        let response = check(cookie.clone()).await.unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["x-auth-user-id"], user.id.clone());
        assert_eq!(response.headers()["x-auth-username"], "ada_l");
        assert!(set_cookie(&response, COOKIE).is_none(), "never rotated");
    }
    assert_problem(check("forged".into()).await.unwrap(), 401, "invalid_token").await;
    // The cookie still refreshes: the checks did not touch it.
    let response = cookie_refresh(&app, &cookie).await;
    assert_eq!(response.status(), 200);
    let (rotated, _) = set_cookie(&response, COOKIE).unwrap();
    assert_eq!(check(rotated.clone()).await.unwrap().status(), 204);
    let logout = browser(
        app.client.post(app.url("/api/v1/auth/logout")),
        Some(&rotated),
    )
    .json(&json!({}))
    .send()
    .await
    .unwrap();
    assert_eq!(logout.status(), 204);
    assert_problem(check(rotated).await.unwrap(), 401, "invalid_token").await;
    assert_problem(app.get("/api/v1/auth/check").await, 401, "unauthorized").await;
}

#[actix_web::test]
async fn cross_origin_reads_never_carry_credentials() {
    let app = TestApp::spawn_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/refresh"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, x-requested-with",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("x-requested-with"), "{allowed}");
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-credentials")
    );
    let evil = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/refresh"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        !evil
            .headers()
            .contains_key("access-control-allow-credentials")
    );
    assert!(!evil.headers().contains_key("access-control-allow-origin"));
}

#[actix_web::test]
async fn a_two_factor_login_can_end_in_a_cookie_session() {
    let app = TestApp::spawn().await;
    let access = app.access_token("ada_l").await;
    let enrolment = app.start_totp(&access).await;
    let secret =
        securecrud_auth::mfa::TotpSecret::from_base32(&text(&enrolment, "secret")).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let confirm = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &access,
            &json!({ "code": secret.code_at(now) }),
        )
        .await;
    assert_eq!(confirm.status(), 200);
    let recovery: Value = confirm.json().await.unwrap();
    let login = browser(app.client.post(app.url("/api/v1/auth/login")), None)
        .json(&json!({ "login": "ada_l", "password": PASSWORD, "session": "cookie" }))
        .send()
        .await
        .unwrap();
    assert!(
        set_cookie(&login, COOKIE).is_none(),
        "no session before the code"
    );
    let problem = assert_problem(login, 401, "mfa_required").await;
    let verify = browser(app.client.post(app.url("/api/v1/auth/mfa/verify")), None)
        .json(&json!({
            "mfa_token": text(&problem, "mfa_token"),
            "code": recovery["recovery_codes"][0],
            "session": "cookie",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(verify.status(), 200);
    let (cookie, _) = set_cookie(&verify, COOKIE).expect("the session cookie");
    let body: Value = verify.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_eq!(cookie_refresh(&app, &cookie).await.status(), 200);
}

#[actix_web::test]
async fn without_secure_cookies_the_cookie_drops_the_host_prefix() {
    let app = TestApp::spawn_with(&[("COOKIE_SECURE", "false")]).await;
    app.signed_up("ada_l").await;
    let response = browser(app.client.post(app.url("/api/v1/auth/login")), None)
        .json(&json!({ "login": "ada_l", "password": PASSWORD, "session": "cookie" }))
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&response, COOKIE).is_none());
    let (value, line) = set_cookie(&response, "securecrud_refresh").expect("the plain cookie");
    assert!(!line.contains("Secure"), "{line}");
    assert!(line.contains("HttpOnly") && line.contains("SameSite=Strict"));
    let refreshed = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("x-requested-with", "securecrud")
        .header("cookie", format!("securecrud_refresh={value}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
}
