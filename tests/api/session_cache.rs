//! The per-instance session cache (`SESSION_CACHE_MAX_AGE_MS`) never makes a revocation late: this instance's
//! own revocations are seen by the very next request, other writers' within the bound the cache promises
//! (notifications on PostgreSQL, the max age on SQLite), and a listener that may have missed a notification
//! sends every check to the database.

use std::time::{Duration, Instant};

use reqwest::Method;
use securecrud_tests::{Backend, PASSWORD, TestApp, Tokens, User, assert_problem};
use serde_json::{Value, json};

/// Long enough that only an invalidation, never the entry's age, can explain a refusal in these tests.
const LONG: &[(&str, &str)] = &[("SESSION_CACHE_MAX_AGE_MS", "60000")];

/// Signs up `username` on `app` and uses the access token once, so that its session check is cached.
async fn cached_session(app: &TestApp, username: &str) -> (User, Tokens) {
    wait_until_serving(app).await;
    let (user, pair) = app.signed_up(username).await;
    let token = pair.access_token.clone();
    assert_eq!(
        app.get_authed("/api/v1/users/me", &token).await.status(),
        200
    );
    (user, pair)
}

/// On PostgreSQL the cache answers only once the listener has confirmed it receives notifications.
async fn wait_until_serving(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.services.database().session_cache_serving() {
        assert!(
            Instant::now() < deadline,
            "the session cache never started answering"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn refused(app: &TestApp, token: &str) {
    let response = app.get_authed("/api/v1/users/me", token).await;
    assert_problem(response, 401, "invalid_token").await;
}

#[actix_web::test]
async fn every_revocation_through_this_instance_is_seen_by_the_next_request() {
    let app = TestApp::spawn_with(LONG).await;
    wait_until_serving(&app).await;
    let admin = app.admin_token("root_admin").await;

    // Logout.
    let (_, pair) = cached_session(&app, "logs_out").await;
    let body = json!({"refresh_token": pair.refresh_token.clone()});
    assert_eq!(
        app.post_json("/api/v1/auth/logout", &body).await.status(),
        204
    );
    refused(&app, &pair.access_token.clone()).await;

    // Logout everywhere, from another session of the same user.
    let (_, first) = cached_session(&app, "everywhere").await;
    let second = app.tokens("everywhere").await;
    let response = app
        .post_json_authed(
            "/api/v1/auth/logout-all",
            &second.access_token.clone(),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 204);
    refused(&app, &first.access_token.clone()).await;

    // A password change ends the user's other sessions.
    let (_, other) = cached_session(&app, "changes_pw").await;
    let current = app.tokens("changes_pw").await;
    let response = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &current.access_token.clone(),
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    refused(&app, &other.access_token.clone()).await;

    // An admin deactivates the user.
    let (user, pair) = cached_session(&app, "deactivated").await;
    app.deactivate(&user.id.clone()).await;
    refused(&app, &pair.access_token.clone()).await;

    // An admin ends the user's sessions.
    let (user, pair) = cached_session(&app, "ended_by_admin").await;
    let response = app
        .send_json(
            Method::DELETE,
            &format!("/api/v1/admin/users/{}/sessions", user.id.clone()),
            &admin,
            &Value::Null,
        )
        .await;
    assert_eq!(response.status(), 204);
    refused(&app, &pair.access_token.clone()).await;

    // A replayed refresh token revokes its session.
    let (_, pair) = cached_session(&app, "replayed").await;
    let old = pair.refresh_token.clone();
    assert_eq!(app.refresh(&old).await.status(), 200);
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        "UPDATE refresh_rotations SET rotated_at = '2000-01-01T00:00:00+00:00'",
    )
    .await
    .unwrap();
    assert_eq!(app.refresh(&old).await.status(), 401);
    refused(&app, &pair.access_token.clone()).await;

    // The user deletes their account.
    let (_, pair) = cached_session(&app, "deletes_me").await;
    let response = app
        .send_json(
            Method::DELETE,
            "/api/v1/users/me",
            &pair.access_token.clone(),
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 204);
    refused(&app, &pair.access_token.clone()).await;
}

#[actix_web::test]
async fn a_role_change_is_seen_by_the_next_request() {
    let app = TestApp::spawn_with(LONG).await;
    wait_until_serving(&app).await;
    let (user, pair) = cached_session(&app, "promoted").await;
    let token = pair.access_token.clone();
    assert_eq!(
        app.get_authed("/api/v1/admin/users", &token).await.status(),
        403
    );

    let response = app
        .admin_change(&user.id.clone(), &json!({"role": "admin"}))
        .await;
    assert_eq!(response.status(), 200);

    assert_eq!(
        app.get_authed("/api/v1/admin/users", &token).await.status(),
        200
    );
    assert_eq!(app.me(&token).await.role, "admin");
}

#[actix_web::test]
async fn a_revocation_past_the_api_is_seen_at_once_with_the_cache_off() {
    let app = TestApp::spawn_with(&[("SESSION_CACHE_MAX_AGE_MS", "0")]).await;
    assert!(!app.services.database().session_cache_serving());
    let token = app.access_token("ada_l").await;
    assert_eq!(
        app.get_authed("/api/v1/users/me", &token).await.status(),
        200
    );

    // Past the API and its process on purpose (as another program writing the database would).
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        "UPDATE sessions SET revoked_at = created_at",
    )
    .await
    .unwrap();

    refused(&app, &token).await;
}

#[actix_web::test]
async fn a_revocation_past_the_api_is_seen_once_the_max_age_has_passed() {
    let max_age = Duration::from_millis(300);
    let app = TestApp::spawn_with(&[("SESSION_CACHE_MAX_AGE_MS", "300")]).await;
    let (_, pair) = cached_session(&app, "ada_l").await;
    let token = pair.access_token.clone();

    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        "UPDATE sessions SET revoked_at = created_at",
    )
    .await
    .unwrap();
    let revoked = Instant::now();

    // However the cache heard of it (a notification on PostgreSQL, nothing on SQLite), once every entry
    // is older than the max age the database answers.
    securecrud_tests::eventually(
        "the revocation is seen",
        (max_age + Duration::from_secs(1)).saturating_sub(revoked.elapsed()),
        || async { app.get_authed("/api/v1/users/me", &token).await.status() == 401 },
    )
    .await;
    refused(&app, &token).await;
}

#[actix_web::test]
async fn another_postgres_instance_sees_a_logout_through_its_notification() {
    if Backend::current() != Backend::Postgres {
        return;
    }
    let app = TestApp::spawn_with(LONG).await;
    let other = app.sibling(LONG).await;
    let (_, pair) = cached_session(&app, "ada_l").await;
    let token = pair.access_token.clone();

    let response = other
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": pair.refresh_token.clone()}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let logged_out = Instant::now();

    // The entry is 60 s fresh, so only the notification can end it.
    let deadline = logged_out + Duration::from_secs(10);
    loop {
        let status = app.get_authed("/api/v1/users/me", &token).await.status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "the other instance never saw the logout"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    eprintln!(
        "logout on one instance refused by the other after {:?}",
        logged_out.elapsed()
    );
}

#[actix_web::test]
async fn a_postgres_listener_that_may_have_missed_a_notification_sends_checks_to_the_database() {
    if Backend::current() != Backend::Postgres {
        return;
    }
    let app = TestApp::spawn_with(LONG).await;
    let (_, pair) = cached_session(&app, "ada_l").await;
    let token = pair.access_token.clone();
    let database: String = app
        .query_strings("SELECT current_database()::text")
        .await
        .remove(0);
    let admin = sea_orm::Database::connect(std::env::var("TEST_POSTGRES_URL").unwrap())
        .await
        .unwrap();

    // The listener's connection goes, and it cannot come back: new connections to the database are refused
    // (the app's pool keeps the ones it has, so requests still reach the database).
    sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false"),
    )
    .await
    .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND query LIKE 'LISTEN%'"
        ),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.services.database().session_cache_serving() {
        assert!(Instant::now() < deadline, "the cache kept answering");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A revocation whose notification nobody hears.
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        "UPDATE sessions SET revoked_at = created_at",
    )
    .await
    .unwrap();
    refused(&app, &token).await;

    // Connections come back; so does the listener, with nothing stale kept from before.
    sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true"),
    )
    .await
    .unwrap();
    admin.close().await.ok();
    wait_until_serving(&app).await;
    refused(&app, &token).await;
    let (_, fresh) = cached_session(&app, "grace_h").await;
    assert_eq!(
        app.get_authed("/api/v1/users/me", &fresh.access_token.clone())
            .await
            .status(),
        200
    );
}
