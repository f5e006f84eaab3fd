use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields, text};
use serde_json::{Value, json};

async fn token(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn the_password_grant_returns_a_token_pair() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;

    let response = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "ADA_L"),
            ("password", PASSWORD),
            ("scope", ""),
        ],
    )
    .await;

    assert_eq!(response.status(), 200);
    let pair: Value = response.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    let me = app
        .get_authed("/api/v1/users/me", pair["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
}

#[actix_web::test]
async fn the_password_grant_accepts_an_email_as_username() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;

    let response = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "ada@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;

    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn wrong_credentials_are_invalid_grant_with_the_oauth_members() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;

    for username in ["ada_l", "nobody"] {
        let response = token(
            &app,
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", "nope nope"),
            ],
        )
        .await;

        assert!(response.headers().get("www-authenticate").is_none());
        let problem = assert_problem(response, 400, "invalid_grant").await;
        assert_eq!(problem["error"], "invalid_grant", "{problem}");
        assert_eq!(problem["error_description"], problem["detail"]);
    }
}

#[actix_web::test]
async fn another_grant_type_is_unsupported_grant_type() {
    let app = TestApp::spawn().await;

    let response = token(&app, &[("grant_type", "client_credentials")]).await;

    let problem = assert_problem(response, 400, "unsupported_grant_type").await;
    assert_eq!(problem["error"], "unsupported_grant_type");
}

#[actix_web::test]
async fn missing_parameters_are_invalid_request_listing_each() {
    let app = TestApp::spawn().await;
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case<'_>; 4] = [
        (&[], &["grant_type"]),
        (&[("grant_type", "password")], &["username", "password"]),
        (
            &[
                ("grant_type", "password"),
                ("username", "ada_l"),
                ("password", ""),
            ],
            &["password"],
        ),
        (&[("grant_type", "refresh_token")], &["refresh_token"]),
    ];

    for (form, fields) in cases {
        let problem = assert_problem(token(&app, form).await, 400, "invalid_request").await;
        assert_eq!(problem["error"], "invalid_request", "{form:?}");
        assert_eq!(error_fields(&problem), fields, "{form:?}");
    }
    let repeated = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=refresh_token")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(repeated, 400, "invalid_request").await;
    assert_eq!(error_fields(&problem), ["grant_type"]);
}

#[actix_web::test]
async fn a_json_body_on_the_token_route_is_415_with_an_oauth_error() {
    let app = TestApp::spawn().await;

    let response = app
        .post_json(
            "/api/v1/auth/token",
            &json!({"username": "ada_l", "password": PASSWORD}),
        )
        .await;

    let problem = assert_problem(response, 415, "unsupported_media_type").await;
    assert_eq!(problem["error"], "invalid_request");
}

#[actix_web::test]
async fn the_refresh_token_grant_rotates_like_refresh() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;
    let first: Value = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "ada_l"),
            ("password", PASSWORD),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();

    let response = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("scope", "anything"),
            ("client_id", "some-client"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let me = app
        .get_authed("/api/v1/users/me", second["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);

    // Within the grace window, a repeat gets the same successor (concurrent tabs) ...
    let repeat: Value = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(repeat["refresh_token"], second["refresh_token"]);
    // ... and the same rules apply whichever route presents the token.
    let via_refresh: Value = app.refresh(refresh).await.json().await.unwrap();
    assert_eq!(via_refresh["refresh_token"], second["refresh_token"]);
}

#[actix_web::test]
async fn a_replayed_refresh_token_is_invalid_grant_and_ends_the_session() {
    let app = TestApp::spawn_with(&[("REFRESH_GRACE_SECS", "0")]).await;
    let (_, pair) = app.signed_up("ada_l").await;
    let refresh = pair.refresh_token.clone();
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let rotated: Value = token(&app, &grant).await.json().await.unwrap();

    let replay = token(&app, &grant).await;

    let problem = assert_problem(replay, 400, "invalid_grant").await;
    assert_eq!(problem["error"], "invalid_grant");
    let successor = text(&rotated, "refresh_token");
    let after = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &successor),
        ],
    )
    .await;
    assert_problem(after, 400, "invalid_grant").await;
    let unknown = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
    )
    .await;
    assert_problem(unknown, 400, "invalid_grant").await;
}

#[actix_web::test]
async fn a_locked_login_stays_429_on_the_token_route() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "2")]).await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;
    let wrong = [
        ("grant_type", "password"),
        ("username", "ada_l"),
        ("password", "wrong pass"),
    ];
    for _ in 0..2 {
        assert_problem(token(&app, &wrong).await, 400, "invalid_grant").await;
    }

    let right = [
        ("grant_type", "password"),
        ("username", "ada_l"),
        ("password", PASSWORD),
    ];
    let locked = token(&app, &right).await;

    assert!(locked.headers().contains_key("retry-after"));
    let problem = assert_problem(locked, 429, "rate_limited").await;
    assert_eq!(problem["error"], "temporarily_unavailable");
}

#[actix_web::test]
async fn a_deactivated_account_gets_invalid_grant() {
    let app = TestApp::spawn().await;
    let (user, _) = app.signed_up("ada_l").await;
    let changed = app
        .admin_change(&user.id.clone(), &json!({"is_active": false}))
        .await;
    assert_eq!(changed.status(), 200);

    let response = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "ada_l"),
            ("password", PASSWORD),
        ],
    )
    .await;

    assert_problem(response, 400, "invalid_grant").await;
}

/// Spends an api's per-IP limit of 2 on wrong password grants; returns the third grant's refusal, which must
/// be `429 rate_limited` with `Retry-After` and RFC 6749's `temporarily_unavailable`.
async fn third_grant_refused(app: &TestApp) -> Value {
    let form = [
        ("grant_type", "password"),
        ("username", "nobody"),
        ("password", "x"),
    ];
    for _ in 0..2 {
        assert_problem(token(app, &form).await, 400, "invalid_grant").await;
    }
    let limited = token(app, &form).await;
    assert!(limited.headers().contains_key("retry-after"));
    let problem = assert_problem(limited, 429, "rate_limited").await;
    assert_eq!(problem["error"], "temporarily_unavailable");
    assert_eq!(problem["error_description"], problem["detail"]);
    problem
}

#[actix_web::test]
async fn the_per_ip_limit_on_the_oauth_routes_answers_with_the_oauth_error() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_AUTH_PER_MIN", "2")]).await;
    app.start_a_fresh_window(60);
    third_grant_refused(&app).await;

    let revoke = app
        .client
        .post(app.url("/api/v1/auth/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    let problem = assert_problem(revoke, 429, "rate_limited").await;
    assert_eq!(problem["error"], "temporarily_unavailable");
}

#[actix_web::test]
async fn the_general_per_ip_limit_answers_the_oauth_routes_with_the_oauth_error_and_others_without()
{
    let app = TestApp::spawn_with(&[("RATE_LIMIT_API_PER_MIN", "2")]).await;
    app.start_a_fresh_window(60);
    third_grant_refused(&app).await;

    let plain = assert_problem(app.get("/api/v1/tasks").await, 429, "rate_limited").await;
    assert!(plain.get("error").is_none(), "{plain}");
}
