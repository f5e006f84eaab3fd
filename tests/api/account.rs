use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn patch_me(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .patch(app.url("/api/v1/users/me"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn delete_me(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .delete(app.url("/api/v1/users/me"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> reqwest::Response {
    app.post_json_authed(
        "/api/v1/users/me/password",
        token,
        &json!({"current_password": current, "new_password": new}),
    )
    .await
}

#[actix_web::test]
async fn changing_the_password_ends_every_other_session() {
    let app = TestApp::spawn().await;
    let (_, here) = app.signed_up("ada_l").await;
    let elsewhere = app.tokens("ada_l").await;

    let response = change_password(&app, &here.access_token.clone(), PASSWORD, NEW_PASSWORD).await;

    assert_eq!(response.status(), 204);
    let me_here = app
        .get_authed("/api/v1/users/me", &here.access_token.clone())
        .await;
    assert_eq!(me_here.status(), 200, "this session stays");
    let me_elsewhere = app
        .get_authed("/api/v1/users/me", &elsewhere.access_token.clone())
        .await;
    assert_problem(me_elsewhere, 401, "invalid_token").await;
    assert_problem(
        app.refresh(&elsewhere.refresh_token.clone()).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.login("ada_l", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.login("ada_l", NEW_PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn a_wrong_current_password_is_401_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let response = change_password(&app, &token, "not my password", NEW_PASSWORD).await;

    assert_problem(response, 401, "invalid_credentials").await;
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn a_new_password_must_follow_the_rules() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let cases = [
        (
            json!({"current_password": PASSWORD, "new_password": "short"}),
            vec!["new_password"],
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "password123"}),
            vec!["new_password"],
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "ADA_L@example.com"}),
            vec!["new_password"],
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "Ada_L"}),
            vec!["new_password"],
        ),
        (json!({}), vec!["current_password", "new_password"]),
        (
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "x": 1}),
            vec!["x"],
        ),
    ];
    for (body, fields) in cases {
        let response = app
            .post_json_authed("/api/v1/users/me/password", &token, &body)
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), fields, "{body}");
    }
    assert_eq!(
        app.login("ada_l", PASSWORD).await.status(),
        200,
        "nothing changed"
    );
}

#[actix_web::test]
async fn changing_the_email_unverifies_it_and_moves_updated_at() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    app.verify_email("ada_l@example.com").await;
    let user = app.me(&pair.access_token.clone()).await;

    let response = patch_me(
        &app,
        &pair.access_token.clone(),
        &json!({"email": "Ada.New@Example.com", "current_password": PASSWORD}),
    )
    .await;

    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["email"], "ada.new@example.com");
    assert_eq!(updated["email_verified"], false);
    assert_ne!(updated["updated_at"], user.updated_at.as_str());
    assert_eq!(updated["created_at"], user.created_at.as_str());
    assert_eq!(
        app.login("ada.new@example.com", PASSWORD).await.status(),
        200
    );
}

#[actix_web::test]
async fn the_same_email_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    app.verify_email("ada_l@example.com").await;
    let user = app.me(&pair.access_token.clone()).await;

    let response = patch_me(
        &app,
        &pair.access_token.clone(),
        &json!({"email": "ADA_L@example.com", "current_password": PASSWORD}),
    )
    .await;

    let same: Value = response.json().await.unwrap();
    assert_eq!(same["email_verified"], true);
    assert_eq!(same["updated_at"], user.updated_at.as_str());
}

#[actix_web::test]
async fn an_email_of_another_user_is_409() {
    let app = TestApp::spawn().await;
    app.signed_up("grace").await;
    let token = app.access_token("ada_l").await;

    let response = patch_me(
        &app,
        &token,
        &json!({"email": "GRACE@example.com", "current_password": PASSWORD}),
    )
    .await;

    assert_problem(response, 409, "email_taken").await;
}

#[actix_web::test]
async fn a_user_can_rename_themself_and_the_old_name_stops_working() {
    let app = TestApp::spawn().await;
    let (user, pair) = app.signed_up("ada_l").await;

    let renamed = patch_me(
        &app,
        &pair.access_token.clone(),
        &json!({"username": "ada.lovelace"}),
    )
    .await;

    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["username"], "ada.lovelace");
    assert_eq!(renamed["id"], user.id.as_str());
    assert_ne!(renamed["updated_at"], user.updated_at.as_str());
    assert_problem(
        app.login("ada_l", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.login("ADA.LOVELACE", PASSWORD).await.status(), 200);
    assert_eq!(
        app.login("ada_l@example.com", PASSWORD).await.status(),
        200,
        "the email still logs in"
    );
}

#[actix_web::test]
async fn a_username_may_change_its_own_letter_case() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let recased = patch_me(&app, &token, &json!({"username": "Ada_L"})).await;

    assert_eq!(recased.status(), 200);
    assert_eq!(recased.json::<Value>().await.unwrap()["username"], "Ada_L");
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn renaming_to_a_taken_name_in_any_letter_case_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.signed_up("grace").await;
    let token = app.access_token("ada_l").await;

    for taken in ["grace", "GRACE", "Grace"] {
        let response = patch_me(
            &app,
            &token,
            &json!({"username": taken, "email": "ada.new@example.com", "current_password": PASSWORD}),
        )
        .await;
        assert_problem(response, 409, "username_taken").await;
    }

    let me = app.me(&token).await;
    assert_eq!(me.username, "ada_l");
    assert_eq!(me.email, "ada_l@example.com", "nothing changed");
    assert_eq!(app.login("grace", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn an_email_change_needs_the_current_password() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let missing = patch_me(&app, &token, &json!({"email": "ada.new@example.com"})).await;
    let problem = assert_problem(missing, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["current_password"]);

    let wrong = patch_me(
        &app,
        &token,
        &json!({"email": "ada.new@example.com", "current_password": "not my password"}),
    )
    .await;
    assert_problem(wrong, 401, "invalid_credentials").await;

    assert_eq!(
        app.me(&token).await.email,
        "ada_l@example.com",
        "nothing changed, and a wrong password does not end the session"
    );
}

#[actix_web::test]
async fn invalid_profile_changes_are_422_listing_every_field() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let response = patch_me(&app, &token, &json!({"username": "a b", "email": "nope"})).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        error_fields(&problem),
        ["username", "email", "current_password"]
    );

    let response = patch_me(&app, &token, &json!({"role": "admin"})).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["role"], "no self-promotion");
}

#[actix_web::test]
async fn deleting_the_account_needs_the_password_and_ends_everything() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let other = app.tokens("ada_l").await;
    let token = pair.access_token.clone();

    let wrong = delete_me(&app, &token, &json!({"password": "not it at all"})).await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    let missing = delete_me(&app, &token, &json!({})).await;
    assert_problem(missing, 422, "validation_failed").await;

    let response = delete_me(&app, &token, &json!({"password": PASSWORD})).await;

    assert_eq!(response.status(), 204);
    for pair in [&pair, &other] {
        let me = app
            .get_authed("/api/v1/users/me", &pair.access_token.clone())
            .await;
        assert_problem(me, 401, "invalid_token").await;
    }
    assert_problem(
        app.login("ada_l", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert!(
        app.query_strings("SELECT refresh_hash FROM sessions")
            .await
            .is_empty()
    );
    assert_eq!(
        app.register("ada_l", "ada_l@example.com", PASSWORD)
            .await
            .status(),
        201
    );
}

#[actix_web::test]
async fn concurrent_renames_to_one_free_name_give_one_200_and_409s() {
    let app = TestApp::spawn().await;
    let mut tokens = Vec::new();
    for name in ["ada_l", "grace", "linus", "barbara"] {
        tokens.push(app.access_token(name).await);
    }

    let statuses = futures_util::future::join_all(tokens.iter().map(|token| async {
        patch_me(&app, token, &json!({"username": "The.One"}))
            .await
            .status()
            .as_u16()
    }))
    .await;

    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 409, 409, 409], "{statuses:?}");
    assert_eq!(
        app.query_strings("SELECT username FROM users WHERE username_normalized = 'the.one'")
            .await,
        ["The.One"]
    );
}
