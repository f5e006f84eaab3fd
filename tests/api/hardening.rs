//! What an attacker tries against account state, with real concurrent requests: the lockout under a burst,
//! re-authentication routes, the hashing queue, session lifetime, the last admin.

use std::time::Duration;

use futures_util::future::join_all;
use securecrud_tests::{PASSWORD, TestApp, assert_problem, text};
use serde_json::{Value, json};

const WRONG: &str = "not the password at all";
const HOUR_WINDOW: (&str, &str) = ("RATE_LIMIT_AUTH_WINDOW_SECS", "3600");

/// Sorted statuses of `n` concurrent requests made by `request(i)`.
async fn burst<F, Fut>(n: usize, request: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut statuses: Vec<u16> = join_all((0..n).map(request))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    statuses.sort_unstable();
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn audit_types(app: &TestApp, admin: &str, kind: &str) -> usize {
    let page: Value = app
        .get_authed(&format!("/api/v1/admin/audit?type={kind}&limit=100"), admin)
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().len()
}

#[actix_web::test]
async fn of_30_concurrent_wrong_logins_at_most_the_limit_are_checked() {
    let app = TestApp::spawn().await;
    app.signed_up("ada_l").await;
    let admin = app.admin_token("root").await;

    let statuses = burst(30, |_| app.login("ada_l", WRONG)).await;

    assert_eq!(count(&statuses, 401), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 25, "{statuses:?}");
    assert_eq!(
        audit_types(&app, &admin, "login_failed").await,
        5,
        "five password checks"
    );
    assert_eq!(audit_types(&app, &admin, "login_locked").await, 1);
    assert_problem(app.login("ada_l", PASSWORD).await, 429, "rate_limited").await;
}

#[actix_web::test]
async fn a_lock_holds_against_the_right_password_until_a_password_reset() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    app.signed_up("ada_l").await;
    for _ in 0..3 {
        assert_eq!(app.login("ada_l", WRONG).await.status(), 401);
    }
    assert_problem(app.login("ada_l", PASSWORD).await, 429, "rate_limited").await;

    app.post_json(
        "/api/v1/auth/password-reset/request",
        &json!({"email": "ada_l@example.com"}),
    )
    .await;
    let token = reset_token(&app).await;
    let confirmed = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "a fresh new passphrase"}),
        )
        .await;
    assert_eq!(confirmed.status(), 204);

    assert_eq!(
        app.login("ada_l", "a fresh new passphrase").await.status(),
        200,
        "the reset ended the lock"
    );
}

/// The token of the newest reset link the file mailer wrote.
async fn reset_token(app: &TestApp) -> String {
    for _ in 0..800 {
        let found = app
            .mailed()
            .into_iter()
            .find_map(|m| securecrud_tests::smtp::link_token(&m, "/reset-password?token="));
        if let Some(token) = found {
            return token;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no reset message was written");
}

async fn delete_me(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.client
        .delete(app.url("/api/v1/users/me"))
        .bearer_auth(token)
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn wrong_passwords_on_account_routes_count_toward_the_lockout_under_concurrency() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let statuses = burst(20, |_| delete_me(&app, &token, WRONG)).await;

    assert_eq!(count(&statuses, 401), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 15, "{statuses:?}");
    // The account's logins are locked: by username and by email, even with the right password.
    assert_problem(app.login("ada_l", PASSWORD).await, 429, "rate_limited").await;
    assert_problem(
        app.login("ada_l@example.com", PASSWORD).await,
        429,
        "rate_limited",
    )
    .await;
    let change = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &token,
            &json!({"current_password": PASSWORD, "new_password": "a fresh new passphrase"}),
        )
        .await;
    assert_problem(change, 429, "rate_limited").await;
    assert_eq!(
        app.me(&token).await.username,
        "ada_l",
        "the account itself is untouched"
    );
}

#[actix_web::test]
async fn account_routes_that_check_a_password_are_under_the_per_ip_limit() {
    let app = TestApp::spawn_with(&[
        ("RATE_LIMIT_AUTH_PER_MIN", "6"),
        HOUR_WINDOW,
        ("LOGIN_MAX_FAILURES", "1000"),
    ])
    .await;
    app.start_a_fresh_window(3600);
    // Registration and login use 2 of the 6.
    let token = app.access_token("ada_l").await;

    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(delete_me(&app, &token, WRONG).await.status().as_u16());
        let patch = app
            .send_json(
                reqwest::Method::PATCH,
                "/api/v1/users/me",
                &token,
                &json!({"email": "new@example.com", "current_password": WRONG}),
            )
            .await;
        statuses.push(patch.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401]);
    let limited = delete_me(&app, &token, WRONG).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_problem(limited, 429, "rate_limited").await;
    assert_eq!(
        app.get_authed("/api/v1/users/me", &token).await.status(),
        200,
        "reads are not counted"
    );
}

#[actix_web::test]
async fn a_full_hashing_queue_answers_503_with_retry_after_and_other_requests_go_on() {
    let app =
        TestApp::spawn_with(&[("BCRYPT_COST", "13"), ("PASSWORD_QUEUE_TIMEOUT_MS", "50")]).await;

    let names: Vec<String> = (0..6).map(|i| format!("nobody_{i}")).collect();
    let logins = join_all(names.iter().map(|name| app.login(name, WRONG)));
    let health = async {
        // Once a login holds the hasher (each hashes far longer than this takes, at cost 13).
        securecrud_tests::eventually("a login is hashing", Duration::from_secs(10), || async {
            app.services
                .render_metrics()
                .await
                .lines()
                .filter_map(|line| {
                    line.strip_prefix("securecrud_password_queue_wait_seconds_count ")
                })
                .any(|count| count != "0")
        })
        .await;
        app.get("/health").await.status().as_u16()
    };
    let (responses, health) = tokio::join!(logins, health);

    assert_eq!(health, 200, "a request that hashes nothing is served");
    let busy: Vec<&reqwest::Response> = responses.iter().filter(|r| r.status() == 503).collect();
    assert!(
        !busy.is_empty(),
        "some logins waited past the queue timeout"
    );
    assert!(busy.iter().all(|r| r.headers().contains_key("retry-after")));
    assert!(
        responses
            .iter()
            .all(|r| [401, 503].contains(&r.status().as_u16())),
        "nothing else"
    );
}

#[actix_web::test]
async fn a_session_ends_at_its_maximum_lifetime_however_often_it_is_refreshed() {
    let app = TestApp::spawn_with(&[("SESSION_MAX_LIFETIME_SECS", "3600")]).await;
    let (_, pair) = app.signed_up("ada_l").await;
    let refreshed: Value = app
        .refresh(&pair.refresh_token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert!(
        refreshed["refresh_expires_in"].as_i64().unwrap() <= 3600,
        "capped by the session's start: {refreshed}"
    );

    // Past the session's maximum lifetime (an hour here).
    app.services.advance_clock(Duration::from_secs(3601));

    assert_problem(
        app.refresh(&text(&refreshed, "refresh_token")).await,
        401,
        "invalid_token",
    )
    .await;
}

async fn patch_user(app: &TestApp, token: &str, id: &Value, body: &Value) -> reqwest::Response {
    app.send_json(
        reqwest::Method::PATCH,
        &format!("/api/v1/admin/users/{}", id.as_str().unwrap()),
        token,
        body,
    )
    .await
}

async fn user_id(app: &TestApp, token: &str) -> Value {
    Value::String(app.me(token).await.id)
}

#[actix_web::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    for change in [json!({"role": "user"}), json!({"is_active": false})] {
        for _ in 0..3 {
            let app = TestApp::spawn().await;
            let root = app.admin_token("root").await;
            let ada = app.admin_token("ada_l").await;
            let (root_id, ada_id) = (user_id(&app, &root).await, user_id(&app, &ada).await);

            let (a, b) = tokio::join!(
                patch_user(&app, &root, &ada_id, &change),
                patch_user(&app, &ada, &root_id, &change),
            );

            // One wins. The other either saw the winner's change (no longer an admin: 403; deactivated, its
            // session ended: 401) or ran beside it and found itself about to remove the last admin (409
            // last_admin): never two 200s.
            let mut statuses = [a.status().as_u16(), b.status().as_u16()];
            statuses.sort_unstable();
            assert!(
                [[200, 401], [200, 403], [200, 409]].contains(&statuses),
                "{change}: {statuses:?}"
            );
            let refused = if a.status() == 200 { b } else { a };
            if refused.status() == 409 {
                assert_problem(refused, 409, "last_admin").await;
            }
            assert_eq!(
                app.query_strings(
                    "SELECT username FROM users WHERE role = 'admin' AND is_active = true"
                )
                .await
                .len(),
                1,
                "{change}"
            );
        }
    }
}

#[actix_web::test]
async fn an_admin_ends_every_session_of_a_user_who_stays_active() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let (user, laptop) = app.signed_up("ada_l").await;
    let phone = app.tokens("ada_l").await;
    let path = format!("/api/v1/admin/users/{}/sessions", user.id.as_str());

    let forbidden = app
        .client
        .delete(app.url(&path))
        .bearer_auth(phone.access_token.clone())
        .send()
        .await
        .unwrap();
    assert_problem(forbidden, 403, "forbidden").await;
    let ended = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);

    for pair in [&laptop, &phone] {
        let me = app
            .get_authed("/api/v1/users/me", &pair.access_token.clone())
            .await;
        assert_problem(me, 401, "invalid_token").await;
        let refresh = app.refresh(&pair.refresh_token.clone()).await;
        assert_problem(refresh, 401, "invalid_token").await;
    }
    assert_eq!(
        app.login("ada_l", PASSWORD).await.status(),
        200,
        "still active"
    );
    assert_eq!(audit_types(&app, &admin, "sessions_revoked").await, 1);
    let unknown = app
        .client
        .delete(app.url(&format!(
            "/api/v1/admin/users/{}/sessions",
            uuid::Uuid::new_v4()
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_problem(unknown, 404, "not_found").await;
}

#[actix_web::test]
async fn an_email_change_racing_a_reset_never_lets_the_old_link_work_afterwards() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let access = pair.access_token.clone();
    app.post_json(
        "/api/v1/auth/password-reset/request",
        &json!({"email": "ada_l@example.com"}),
    )
    .await;
    let token = reset_token(&app).await;

    let change_body = json!({"email": "ada@example.org", "current_password": PASSWORD});
    let reset_body = json!({"token": token, "new_password": "a fresh new passphrase"});
    let (change, reset) = tokio::join!(
        app.send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &access,
            &change_body,
        ),
        app.post_json("/api/v1/auth/password-reset/confirm", &reset_body),
    );
    let outcome = (change.status().as_u16(), reset.status().as_u16());

    // Either the change came first (the link died with it) or the reset did (it ended the session the
    // change was made with, and the password it was checked against): never both.
    assert!([(200, 400), (401, 204)].contains(&outcome), "{outcome:?}");
    let again = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "yet another passphrase"}),
        )
        .await;
    assert_problem(again, 400, "invalid_token").await;
}

#[actix_web::test]
async fn the_last_active_admin_cannot_delete_themself() {
    let app = TestApp::spawn().await;
    let root = app.admin_token("root").await;

    let refused = delete_me(&app, &root, PASSWORD).await;
    assert_problem(refused, 409, "last_admin").await;

    let ada = app.admin_token("ada_l").await;
    assert_eq!(delete_me(&app, &root, PASSWORD).await.status(), 204);
    assert_eq!(
        app.get_authed("/api/v1/admin/users", &ada).await.status(),
        200,
        "one admin is left"
    );
}

#[actix_web::test]
async fn an_email_given_unchanged_still_needs_the_right_password() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let wrong = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &token,
            &json!({"email": "ADA_L@example.com", "current_password": WRONG}),
        )
        .await;

    assert_problem(wrong, 401, "invalid_credentials").await;
}

#[actix_web::test]
async fn a_timestamp_past_the_encodable_years_is_a_422_not_a_crash() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;

    for query in [
        "until=9999-12-31T23:59:59-01:00",
        "since=0000-01-01T00:00:00%2B01:00",
    ] {
        let response = app
            .get_authed(&format!("/api/v1/admin/audit?{query}"), &admin)
            .await;
        assert_problem(response, 422, "validation_failed").await;
    }
    assert_eq!(
        app.get_authed("/api/v1/admin/audit?until=9999-12-31T23:59:59Z", &admin)
            .await
            .status(),
        200
    );
}
