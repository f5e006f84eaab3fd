use securecrud_tests::{TestApp, assert_problem, text};
use serde_json::{Value, json};

#[actix_web::test]
async fn logout_ends_that_session_and_leaves_the_others_working() {
    let app = TestApp::spawn().await;
    let (_, laptop) = app.signed_up("ada_l").await;
    let phone = app.tokens("ada_l").await;

    let response = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": laptop.refresh_token.clone()}),
        )
        .await;

    assert_eq!(response.status(), 204);
    let laptop_me = app
        .get_authed("/api/v1/users/me", &laptop.access_token.clone())
        .await;
    assert_problem(laptop_me, 401, "invalid_token").await;
    assert_problem(
        app.refresh(&laptop.refresh_token.clone()).await,
        401,
        "invalid_token",
    )
    .await;
    let phone_me = app
        .get_authed("/api/v1/users/me", &phone.access_token.clone())
        .await;
    assert_eq!(phone_me.status(), 200);
}

#[actix_web::test]
async fn logging_out_twice_or_with_an_unknown_token_is_not_an_error() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let body = json!({"refresh_token": pair.refresh_token.clone()});

    assert_eq!(
        app.post_json("/api/v1/auth/logout", &body).await.status(),
        204
    );
    assert_eq!(
        app.post_json("/api/v1/auth/logout", &body).await.status(),
        204
    );
    let unknown = json!({"refresh_token": "unknown"});
    assert_eq!(
        app.post_json("/api/v1/auth/logout", &unknown)
            .await
            .status(),
        204
    );
}

#[actix_web::test]
async fn logout_with_a_just_rotated_token_ends_the_session() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let old = pair.refresh_token.clone();
    let rotated: Value = app.refresh(&old).await.json().await.unwrap();

    let response = app
        .post_json("/api/v1/auth/logout", &json!({"refresh_token": old}))
        .await;

    assert_eq!(response.status(), 204);
    let me = app
        .get_authed("/api/v1/users/me", &text(&rotated, "access_token"))
        .await;
    assert_problem(me, 401, "invalid_token").await;
}

#[actix_web::test]
async fn logout_all_ends_every_session_of_the_user_only() {
    let app = TestApp::spawn().await;
    let (_, laptop) = app.signed_up("ada_l").await;
    let phone = app.tokens("ada_l").await;
    let (_, grace) = app.signed_up("grace").await;

    let response = app
        .post_json_authed(
            "/api/v1/auth/logout-all",
            &laptop.access_token.clone(),
            &json!({}),
        )
        .await;

    assert_eq!(response.status(), 204);
    for pair in [&laptop, &phone] {
        let me = app
            .get_authed("/api/v1/users/me", &pair.access_token.clone())
            .await;
        assert_problem(me, 401, "invalid_token").await;
        assert_problem(
            app.refresh(&pair.refresh_token.clone()).await,
            401,
            "invalid_token",
        )
        .await;
    }
    let other = app
        .get_authed("/api/v1/users/me", &grace.access_token.clone())
        .await;
    assert_eq!(other.status(), 200, "another user's sessions are untouched");
}

#[actix_web::test]
async fn logout_all_needs_a_bearer_token() {
    let app = TestApp::spawn().await;

    let response = app.post_json("/api/v1/auth/logout-all", &json!({})).await;

    assert_problem(response, 401, "unauthorized").await;
}
