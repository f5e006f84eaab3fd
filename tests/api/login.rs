use reqwest::Response;
use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields};
use serde_json::{Value, json};

async fn problem_without_request_id(response: Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut body: Value = response.json().await.unwrap();
    body.as_object_mut().unwrap().remove("request_id");
    (status, challenge, body)
}

#[actix_web::test]
async fn login_by_username_returns_a_token_pair() {
    let app = TestApp::spawn().await;
    app.register("Ada_L", "ada@example.com", PASSWORD).await;

    let response = app.login("ada_l", PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let pair: Value = response.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(pair["refresh_expires_in"], 604_800);
    assert_eq!(
        pair["access_token"].as_str().unwrap().split('.').count(),
        3,
        "a JWT"
    );
    assert!(
        pair["refresh_token"].as_str().unwrap().len() >= 43,
        "at least 256 bits"
    );
    assert!(!pair.to_string().contains(PASSWORD));
}

#[actix_web::test]
async fn login_by_email_is_case_insensitive() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;

    let response = app.login("  ADA@Example.com ", PASSWORD).await;

    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn a_login_opens_a_session_that_authenticates() {
    let app = TestApp::spawn().await;
    let (user, pair) = app.signed_up("ada_l").await;

    let response = app
        .get_authed("/api/v1/users/me", pair.access_token.as_str())
        .await;

    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["id"], user.id.as_str());
}

#[actix_web::test]
async fn unknown_user_and_wrong_password_get_identical_401s() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;

    let wrong_password =
        problem_without_request_id(app.login("ada_l", "not the password").await).await;
    let unknown_user =
        problem_without_request_id(app.login("nobody", "not the password").await).await;
    let unknown_email =
        problem_without_request_id(app.login("nobody@example.com", PASSWORD).await).await;

    assert_eq!(wrong_password.0, 401);
    assert_eq!(wrong_password.2["code"], "invalid_credentials");
    assert!(wrong_password.1.unwrap().starts_with("Bearer"));
    assert_eq!(wrong_password.2, unknown_user.2);
    assert_eq!(wrong_password.2, unknown_email.2);
}

#[actix_web::test]
async fn a_password_over_72_bytes_is_a_wrong_password_not_a_truncated_match() {
    let app = TestApp::spawn().await;
    let password = "p".repeat(72);
    app.register("ada_l", "ada@example.com", &password).await;

    let longer = app.login("ada_l", &format!("{password}x")).await;

    assert_problem(longer, 401, "invalid_credentials").await;
    assert_eq!(app.login("ada_l", &password).await.status(), 200);
}

#[actix_web::test]
async fn a_deactivated_account_with_the_right_password_is_403() {
    let app = TestApp::spawn().await;
    let user: Value = app
        .register("ada_l", "ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    app.deactivate(user["id"].as_str().unwrap()).await;

    assert_problem(app.login("ada_l", PASSWORD).await, 403, "forbidden").await;
    assert_problem(
        app.login("ada_l", "wrong password").await,
        401,
        "invalid_credentials",
    )
    .await;
}

#[actix_web::test]
async fn a_login_missing_fields_is_422_naming_them() {
    let app = TestApp::spawn().await;

    let response = app
        .post_json("/api/v1/auth/login", &json!({"login": "", "extra": 1}))
        .await;

    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["extra"]);
    let response = app
        .post_json("/api/v1/auth/login", &json!({"login": " "}))
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["login", "password"]);
}

#[actix_web::test]
async fn a_hash_of_an_older_cost_is_upgraded_at_the_next_login() {
    let app = TestApp::spawn_with(&[("BCRYPT_COST", "5")]).await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;
    let old = securecrud_auth::PasswordHasher::new(4)
        .unwrap()
        .hash(PASSWORD)
        .unwrap();
    // Past the API on purpose: a hash of an older cost, as an account made before the cost rose has.
    app.execute(&format!("UPDATE users SET password_hash = '{old}'"))
        .await;

    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);

    let stored = app.query_strings("SELECT password_hash FROM users").await;
    assert!(
        stored[0].starts_with("$2b$05$"),
        "re-hashed at cost 5: {}",
        stored[0]
    );
    assert_eq!(
        app.login("ada_l", PASSWORD).await.status(),
        200,
        "the new hash verifies"
    );
}

#[actix_web::test]
async fn only_a_hash_of_the_password_is_stored() {
    let app = TestApp::spawn().await;
    app.signed_up("ada_l").await;

    let stored = app.query_strings("SELECT password_hash FROM users").await;
    let sessions = app.query_strings("SELECT refresh_hash FROM sessions").await;

    assert!(stored[0].starts_with("$2b$04$") && !stored[0].contains(PASSWORD));
    assert_eq!(sessions.len(), 1, "one session per login");
    assert_eq!(sessions[0].len(), 64, "SHA-256 hex of the refresh token");
}
