use futures_util::future::join_all;
use securecrud_tests::{TestApp, assert_problem, error_fields, text};
use serde_json::{Value, json};

#[actix_web::test]
async fn refresh_rotates_the_refresh_token() {
    let app = TestApp::spawn().await;
    let (_, first) = app.signed_up("ada_l").await;
    let old = first.refresh_token.clone();

    let response = app.refresh(&old).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: Value = response.json().await.unwrap();
    let new = text(&second, "refresh_token");
    assert_ne!(new, old);
    assert!(new.len() >= 43);
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["refresh_expires_in"], 604_800);
    let me = app
        .get_authed("/api/v1/users/me", &text(&second, "access_token"))
        .await;
    assert_eq!(me.status(), 200, "the new access token works");
    assert_eq!(
        app.refresh(&new).await.status(),
        200,
        "the new refresh token works"
    );
}

#[actix_web::test]
async fn ten_concurrent_refreshes_with_one_token_all_get_the_same_new_token() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let token = pair.refresh_token.clone();

    let responses = join_all((0..10).map(|_| app.refresh(&token))).await;

    let mut successors = Vec::new();
    for response in responses {
        assert_eq!(
            response.status(),
            200,
            "never a 401 or 5xx for a concurrent tab"
        );
        let body: Value = response.json().await.unwrap();
        successors.push(text(&body, "refresh_token"));
    }
    successors.dedup();
    assert_eq!(
        successors.len(),
        1,
        "one and the same successor: {successors:?}"
    );
    assert_ne!(successors[0], token);
    let after = app.refresh(&successors[0]).await;
    assert_eq!(
        after.status(),
        200,
        "exactly that successor works afterwards"
    );
}

#[actix_web::test]
async fn a_repeat_within_the_grace_window_gets_the_same_successor() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let token = pair.refresh_token.clone();

    let first: Value = app.refresh(&token).await.json().await.unwrap();
    let repeat = app.refresh(&token).await;

    assert_eq!(repeat.status(), 200);
    let repeat: Value = repeat.json().await.unwrap();
    assert_eq!(
        text(&repeat, "refresh_token"),
        text(&first, "refresh_token")
    );
}

#[actix_web::test]
async fn a_replay_after_the_grace_window_revokes_the_session_and_its_access_tokens() {
    let app = TestApp::spawn_with(&[("REFRESH_GRACE_SECS", "0")]).await;
    let (_, pair) = app.signed_up("ada_l").await;
    let stolen = pair.refresh_token.clone();
    let rotated: Value = app.refresh(&stolen).await.json().await.unwrap();
    let access = text(&rotated, "access_token");
    assert_eq!(
        app.get_authed("/api/v1/users/me", &access).await.status(),
        200
    );

    let replay = app.refresh(&stolen).await;

    let replayed = assert_problem(replay, 401, "invalid_token").await;
    assert!(
        replayed["detail"]
            .as_str()
            .unwrap()
            .starts_with("the refresh token "),
        "{replayed}"
    );
    let me = app.get_authed("/api/v1/users/me", &access).await;
    let me = assert_problem(me, 401, "invalid_token").await;
    assert!(
        me["detail"]
            .as_str()
            .unwrap()
            .starts_with("the access token "),
        "{me}"
    );
    let legit = app.refresh(&text(&rotated, "refresh_token")).await;
    assert_problem(legit, 401, "invalid_token").await;
}

#[actix_web::test]
async fn a_token_rotated_twice_is_a_replay_even_within_the_grace_window() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let t0 = pair.refresh_token.clone();
    let t1 = text(
        &app.refresh(&t0).await.json::<Value>().await.unwrap(),
        "refresh_token",
    );
    let p2: Value = app.refresh(&t1).await.json().await.unwrap();

    assert_problem(app.refresh(&t0).await, 401, "invalid_token").await;

    let me = app
        .get_authed("/api/v1/users/me", &text(&p2, "access_token"))
        .await;
    assert_problem(me, 401, "invalid_token").await;
}

#[actix_web::test]
async fn a_replay_revokes_only_that_session() {
    let app = TestApp::spawn_with(&[("REFRESH_GRACE_SECS", "0")]).await;
    let (_, laptop) = app.signed_up("ada_l").await;
    let phone = app.tokens("ada_l").await;
    let stolen = laptop.refresh_token.clone();
    app.refresh(&stolen).await;

    app.refresh(&stolen).await;

    let me = app
        .get_authed("/api/v1/users/me", &phone.access_token.clone())
        .await;
    assert_eq!(me.status(), 200, "the other session is untouched");
}

#[actix_web::test]
async fn an_access_token_is_never_a_refresh_token() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;

    let response = app.refresh(&pair.access_token.clone()).await;

    assert_problem(response, 401, "invalid_token").await;
}

#[actix_web::test]
async fn unknown_and_missing_refresh_tokens_are_refused() {
    let app = TestApp::spawn().await;

    assert_problem(app.refresh("not-a-token").await, 401, "invalid_token").await;
    let missing = app.post_json("/api/v1/auth/refresh", &json!({})).await;
    let problem = assert_problem(missing, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["refresh_token"]);
    let empty = app.refresh("").await;
    assert_problem(empty, 422, "validation_failed").await;
}

#[actix_web::test]
async fn refresh_refuses_a_deactivated_user() {
    let app = TestApp::spawn().await;
    let (user, pair) = app.signed_up("ada_l").await;
    app.deactivate(user.id.as_str()).await;

    let response = app.refresh(&pair.refresh_token.clone()).await;

    assert_problem(response, 401, "invalid_token").await;
}

#[actix_web::test]
async fn refresh_and_authenticated_requests_record_the_last_use_of_the_session() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let an_hour = time::Duration::hours(1);
    let recent = |used: Vec<time::OffsetDateTime>| {
        used.iter()
            .all(|at| time::OffsetDateTime::now_utc() - *at < time::Duration::minutes(1))
    };

    app.age_sessions(an_hour).await;
    app.get_authed("/api/v1/users/me", &pair.access_token.clone())
        .await;
    assert!(
        recent(app.sessions_last_used().await),
        "a request touches a stale session"
    );

    app.age_sessions(an_hour).await;
    let pair: Value = app
        .refresh(&pair.refresh_token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert!(
        recent(app.sessions_last_used().await),
        "a refresh touches the session"
    );
    assert!(pair["refresh_token"].is_string());
}

#[actix_web::test]
async fn refresh_stores_only_hashes_and_remembers_the_rotated_one() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let before = app.query_strings("SELECT refresh_hash FROM sessions").await;

    app.refresh(&pair.refresh_token.clone()).await;

    let after = app.query_strings("SELECT refresh_hash FROM sessions").await;
    assert_ne!(before, after, "the stored hash rotated");
    assert_eq!(after[0].len(), 64, "a SHA-256, not the token");
    let rotated = app
        .query_strings("SELECT refresh_hash FROM refresh_rotations")
        .await;
    assert_eq!(
        rotated, before,
        "the old hash is remembered for reuse detection"
    );
}
