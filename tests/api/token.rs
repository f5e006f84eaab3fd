use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields};
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
async fn wrong_credentials_on_the_token_route_are_401() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;

    let response = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "ada_l"),
            ("password", "nope nope"),
        ],
    )
    .await;

    assert_problem(response, 401, "invalid_credentials").await;
}

#[actix_web::test]
async fn another_grant_type_and_missing_fields_are_422() {
    let app = TestApp::spawn().await;

    let response = token(&app, &[("grant_type", "client_credentials")]).await;

    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        error_fields(&problem),
        ["grant_type", "username", "password"]
    );
}

#[actix_web::test]
async fn a_json_body_on_the_token_route_is_415() {
    let app = TestApp::spawn().await;

    let response = app
        .post_json(
            "/api/v1/auth/token",
            &json!({"username": "ada_l", "password": PASSWORD}),
        )
        .await;

    assert_problem(response, 415, "unsupported_media_type").await;
}
