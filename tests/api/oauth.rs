//! The OAuth 2.0 surface besides the token endpoint (tests/api/token.rs): revocation (RFC 7009), server
//! metadata (RFC 8414) and the forward-auth check for proxies.

use securecrud_tests::{PASSWORD, TestApp, assert_problem};
use serde_json::Value;

async fn revoke(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/revoke"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn check(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let request = app.client.get(app.url("/api/v1/auth/check"));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

#[actix_web::test]
async fn revoking_a_refresh_token_ends_its_session() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let (access, refresh) = (pair.access_token.clone(), pair.refresh_token.clone());
    let other = app.tokens("ada_l").await;

    let response = revoke(
        &app,
        &[("token", &refresh), ("token_type_hint", "refresh_token")],
    )
    .await;

    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_problem(
        app.get_authed("/api/v1/users/me", &access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(app.refresh(&refresh).await.status(), 401);
    let untouched = app
        .get_authed("/api/v1/users/me", &other.access_token.clone())
        .await;
    assert_eq!(untouched.status(), 200, "only that session ends");
}

#[actix_web::test]
async fn revoking_an_access_token_ends_its_session_whatever_the_hint() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let (access, refresh) = (pair.access_token.clone(), pair.refresh_token.clone());

    // A wrong hint does not stop the server from recognising the token (RFC 7009 §2.1).
    let response = revoke(
        &app,
        &[("token", &access), ("token_type_hint", "refresh_token")],
    )
    .await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        app.get_authed("/api/v1/users/me", &access).await.status(),
        401
    );
    assert_eq!(
        app.refresh(&refresh).await.status(),
        401,
        "the whole session"
    );
    let audit = app
        .query_strings("SELECT type FROM audit_events WHERE type = 'logout'")
        .await;
    assert_eq!(audit.len(), 1, "one logout event: {audit:?}");
}

#[actix_web::test]
async fn unknown_revoked_and_foreign_tokens_all_answer_200() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let refresh = pair.refresh_token.clone();
    assert_eq!(revoke(&app, &[("token", &refresh)]).await.status(), 200);

    for token in [
        refresh.as_str(),
        "no-such-token",
        "eyJhbGciOiJIUzI1NiJ9.e30.bm90LWEtc2lnbmF0dXJl",
    ] {
        let response = revoke(
            &app,
            &[("token", token), ("token_type_hint", "access_token")],
        )
        .await;
        assert_eq!(response.status(), 200, "{token}");
    }
}

#[actix_web::test]
async fn a_revocation_without_a_token_is_invalid_request() {
    let app = TestApp::spawn().await;

    for form in [
        &[][..],
        &[("token", "")][..],
        &[("token_type_hint", "refresh_token")][..],
    ] {
        let problem = assert_problem(revoke(&app, form).await, 400, "invalid_request").await;
        assert_eq!(problem["error"], "invalid_request", "{form:?}");
    }
}

#[actix_web::test]
async fn the_metadata_names_the_endpoints_under_the_public_url() {
    let app = TestApp::spawn_with(&[("PUBLIC_BASE_URL", "https://auth.example.com/")]).await;

    let response = app.get("/.well-known/oauth-authorization-server").await;

    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let metadata: Value = response.json().await.unwrap();
    assert_eq!(metadata["issuer"], "https://auth.example.com");
    assert_eq!(
        metadata["token_endpoint"],
        "https://auth.example.com/api/v1/auth/token"
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        "https://auth.example.com/api/v1/auth/revoke"
    );
    assert_eq!(
        metadata["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["password", "refresh_token"])
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none"])
    );
    // The tokens' `iss` is the metadata's `issuer` (RFC 9068).
    let pair = { app.signed_up("ada_l").await.1 };
    let claims = securecrud_tests::jwt_claims(&pair.access_token.clone());
    assert_eq!(claims["iss"], metadata["issuer"]);
}

#[actix_web::test]
async fn an_explicit_issuer_is_used_by_tokens_and_metadata() {
    let app = TestApp::spawn_with(&[("JWT_ISSUER", "https://issuer.example.com")]).await;
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let (_, pair) = app.signed_up("ada_l").await;

    assert_eq!(metadata["issuer"], "https://issuer.example.com");
    let claims = securecrud_tests::jwt_claims(&pair.access_token.clone());
    assert_eq!(claims["iss"], "https://issuer.example.com");
}

#[actix_web::test]
async fn the_hs256_jwks_is_empty() {
    let app = TestApp::spawn().await;

    let response = app.get("/.well-known/jwks.json").await;

    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("cache-control"));
    let jwks: Value = response.json().await.unwrap();
    assert_eq!(jwks, serde_json::json!({"keys": []}));
}

#[actix_web::test]
async fn the_check_answers_204_with_who_is_calling() {
    let app = TestApp::spawn().await;
    let (user, pair) = app.signed_up("ada_l").await;
    let access = pair.access_token.clone();

    let response = check(&app, Some(&access)).await;

    assert_eq!(response.status(), 204);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-auth-user-id"), user.id.clone());
    assert_eq!(header("x-auth-username"), "ada_l");
    assert_eq!(header("x-auth-role"), "user");
    let sid = securecrud_tests::jwt_claims(&access)["sid"].clone();
    assert_eq!(header("x-auth-session-id"), sid.as_str().unwrap());
    assert!(response.bytes().await.unwrap().is_empty());
}

#[actix_web::test]
async fn the_check_refuses_missing_bad_and_revoked_tokens_at_once() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let access = pair.access_token.clone();
    assert_eq!(check(&app, Some(&access)).await.status(), 204);

    let missing = check(&app, None).await;
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_problem(missing, 401, "unauthorized").await;
    assert_problem(check(&app, Some("garbage")).await, 401, "invalid_token").await;

    let logout = app
        .post_json(
            "/api/v1/auth/logout",
            &serde_json::json!({"refresh_token": pair.refresh_token.clone()}),
        )
        .await;
    assert_eq!(logout.status(), 204);
    let after = check(&app, Some(&access)).await;
    assert!(after.headers().get("x-auth-user-id").is_none());
    assert_problem(after, 401, "invalid_token").await;
}

#[actix_web::test]
async fn the_check_reports_the_role_as_it_is_now_and_writes_no_audit() {
    let app = TestApp::spawn().await;
    let (user, pair) = app.signed_up("ada_l").await;
    let access = pair.access_token.clone();
    let promoted = app
        .admin_change(&user.id.clone(), &serde_json::json!({"role": "admin"}))
        .await;
    assert_eq!(promoted.status(), 200);
    let before = app.query_strings("SELECT type FROM audit_events").await;

    let response = check(&app, Some(&access)).await;
    for _ in 0..3 {
        assert_eq!(check(&app, Some(&access)).await.status(), 204);
    }

    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["x-auth-role"], "admin");
    let after = app.query_strings("SELECT type FROM audit_events").await;
    assert_eq!(after, before, "checks write no audit events");
}

#[actix_web::test]
async fn swagger_authorize_still_uses_the_password_grant() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let flows = &document["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"];
    assert_eq!(flows["password"]["tokenUrl"], "/api/v1/auth/token");
}

#[actix_web::test]
async fn unknown_hints_and_repeated_unknown_parameters_are_ignored() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let refresh = pair.refresh_token.clone();

    let response = app
        .client
        .post(app.url("/api/v1/auth/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={refresh}&token_type_hint=id_token&client_id=a&client_id=b"
        ))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(
        app.refresh(&refresh).await.status(),
        401,
        "revoked all the same"
    );
}

#[actix_web::test]
async fn the_check_is_not_held_to_the_per_ip_api_limit() {
    // A proxy calls the check for every client behind it, from one address. Five a minute: registration
    // and login take two, /users/me gets the other three.
    let app = TestApp::spawn_with(&[("RATE_LIMIT_API_PER_MIN", "5")]).await;
    app.start_a_fresh_window(60);
    let (_, pair) = app.signed_up("ada_l").await;
    let access = pair.access_token.clone();

    for _ in 0..10 {
        assert_eq!(check(&app, Some(&access)).await.status(), 204);
    }
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            app.get_authed("/api/v1/users/me", &access)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429],
        "other routes keep their limit"
    );
}
