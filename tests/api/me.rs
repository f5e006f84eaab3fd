use secrecy::SecretSlice;
use securecrud_auth::{JwtKeys, Role};
use securecrud_tests::{TEST_JWT_SECRET, TestApp, User, assert_problem};
use serde_json::{Value, json};
use time::Duration;

fn keys(secret: &str, ttl: Duration) -> JwtKeys {
    JwtKeys::new(
        &SecretSlice::from(secret.as_bytes().to_vec()),
        &[],
        "securecrud",
        "securecrud-api",
        ttl,
    )
}

fn user_id(user: &User) -> uuid::Uuid {
    user.id.parse().unwrap()
}

#[actix_web::test]
async fn me_without_a_token_is_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;

    let response = app.get("/api/v1/users/me").await;

    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_problem(response, 401, "unauthorized").await;
}

#[actix_web::test]
async fn the_auth_scheme_name_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
}

#[actix_web::test]
async fn malformed_or_foreign_tokens_are_401_invalid_token() {
    let app = TestApp::spawn().await;
    let (user, pair) = app.signed_up("ada_l").await;
    let token = pair.access_token.as_str();
    let foreign = keys(
        "another-secret-another-secret-0123456789",
        Duration::minutes(5),
    )
    .issue(user_id(&user), uuid::Uuid::now_v7(), Role::Admin)
    .unwrap()
    .token;
    let cases = [
        ("garbage".to_owned(), "not a JWT"),
        (format!("{token}x"), "tampered signature"),
        (foreign, "signed with another secret"),
        (pair.refresh_token.clone(), "a refresh token"),
    ];
    for (bad, why) in cases {
        let response = app.get_authed("/api/v1/users/me", &bad).await;
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{why}"
        );
        assert_problem(response, 401, "invalid_token").await;
    }
}

#[actix_web::test]
async fn a_validly_signed_token_for_a_session_that_does_not_exist_is_rejected() {
    let app = TestApp::spawn().await;
    let (user, _) = app.signed_up("ada_l").await;
    let forged = keys(TEST_JWT_SECRET, Duration::minutes(5))
        .issue(user_id(&user), uuid::Uuid::now_v7(), Role::User)
        .unwrap();

    let response = app.get_authed("/api/v1/users/me", &forged.token).await;

    assert_problem(response, 401, "invalid_token").await;
}

#[actix_web::test]
async fn an_expired_token_is_401_token_expired() {
    let app = TestApp::spawn().await;
    let (user, _) = app.signed_up("ada_l").await;
    let expired = keys(TEST_JWT_SECRET, Duration::minutes(-5))
        .issue(user_id(&user), uuid::Uuid::now_v7(), Role::User)
        .unwrap();

    let response = app.get_authed("/api/v1/users/me", &expired.token).await;

    assert_problem(response, 401, "token_expired").await;
}

#[actix_web::test]
async fn a_deactivated_users_token_stops_working() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    app.deactivate(&app.me(&token).await.id).await;

    let response = app.get_authed("/api/v1/users/me", &token).await;
    assert_problem(response, 401, "invalid_token").await;
}

#[actix_web::test]
async fn the_role_comes_from_the_database_not_the_token() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let id = app.me(&token).await.id;
    let promoted = app.admin_change(&id, &json!({"role": "admin"})).await;
    assert_eq!(promoted.status(), 200);

    let me: Value = app
        .get_authed("/api/v1/users/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
}
