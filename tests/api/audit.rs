//! The audit trail and the sessions list: an event for every flow, written with the change or not at all,
//! and keyset pagination that neither repeats nor skips while events are added.

use std::collections::BTreeSet;

use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields, text};
use serde_json::{Value, json};

/// Every audit event, newest first.
async fn events(app: &TestApp, admin: &str, query: &str) -> Vec<Value> {
    let response = app
        .get_authed(&format!("/api/v1/admin/audit?limit=100&{query}"), admin)
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| text(e, "type")).collect()
}

#[actix_web::test]
async fn every_account_flow_leaves_its_event_with_who_where_and_which_request() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "2")]).await;
    let admin = app.admin_token("root").await;

    let registered = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("user-agent", "audit-test/1.0")
        .header("x-request-id", "audit-register-1")
        .json(&json!({"username": "ada_l", "email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let ada: Value = registered.json().await.unwrap();
    let ada_id = text(&ada, "id");

    let pair = app.tokens("ada_l").await;
    let access = pair.access_token.clone();
    assert_eq!(app.login("ada_l", "wrong password!").await.status(), 401);
    assert_eq!(app.login("ada_l", "wrong password!").await.status(), 401); // locks
    let refreshed: Value = app
        .refresh(&pair.refresh_token.clone())
        .await
        .json()
        .await
        .unwrap();
    let admin_session = app.tokens("root").await;
    let unlock = format!("/api/v1/admin/users/{ada_id}/unlock");
    assert_eq!(
        app.post_json_authed(&unlock, &admin, &json!({}))
            .await
            .status(),
        204
    );
    // A replay of the first refresh token after the grace window (REFRESH_GRACE_SECS, 10 s) is reuse.
    app.services
        .advance_clock(std::time::Duration::from_secs(11));
    assert_eq!(app.refresh(&pair.refresh_token.clone()).await.status(), 401);

    let second = app.tokens("ada_l").await;
    let patch = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &second.access_token.clone(),
            &json!({"email": "ada.l@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(patch.status(), 200);
    let third = app.tokens("ada_l").await;
    let sessions: Value = app
        .get_authed("/api/v1/users/me/sessions", &third.access_token.clone())
        .await
        .json()
        .await
        .unwrap();
    let other = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| text(s, "id"))
        .unwrap();
    let revoke = app
        .client
        .delete(app.url(&format!("/api/v1/users/me/sessions/{other}")))
        .bearer_auth(third.access_token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    let change = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &third.access_token.clone(),
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(change.status(), 204);
    let logout = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": third.refresh_token.clone()}),
        )
        .await;
    assert_eq!(logout.status(), 204);
    let fourth = app.login("ada_l", "a brand new passphrase").await;
    let fourth: Value = fourth.json().await.unwrap();
    let logout_all = app
        .post_json_authed(
            "/api/v1/auth/logout-all",
            &text(&fourth, "access_token"),
            &json!({}),
        )
        .await;
    assert_eq!(logout_all.status(), 204);
    let user_path = format!("/api/v1/admin/users/{ada_id}");
    for body in [
        json!({"role": "admin"}),
        json!({"is_active": false}),
        json!({"is_active": true}),
    ] {
        let changed = app
            .send_json(reqwest::Method::PATCH, &user_path, &admin, &body)
            .await;
        assert_eq!(changed.status(), 200);
    }
    let fifth = app.login("ada_l", "a brand new passphrase").await;
    let fifth: Value = fifth.json().await.unwrap();
    let deleted = app
        .client
        .delete(app.url("/api/v1/users/me"))
        .bearer_auth(text(&fifth, "access_token"))
        .json(&json!({"password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let all = events(&app, &admin, &format!("user_id={ada_id}")).await;
    let mut seen = types(&all);
    seen.reverse();
    assert_eq!(
        seen,
        [
            "user_registered",
            "email_verification_sent",
            "login_succeeded",
            "login_failed",
            "login_failed",
            "login_locked",
            "token_refreshed",
            "user_unlocked",
            "refresh_reuse_detected",
            "login_succeeded",
            "user_updated",
            "email_verification_sent",
            "login_succeeded",
            "session_revoked",
            "password_changed",
            "logout",
            "login_succeeded",
            "logout_all",
            "role_changed",
            "user_deactivated",
            "user_activated",
            "login_succeeded",
            "user_deleted",
        ]
    );
    let registered = all.last().unwrap();
    assert_eq!(registered["user_agent"], "audit-test/1.0");
    assert_eq!(registered["request_id"], "audit-register-1");
    assert_eq!(registered["ip"], "127.0.0.1");
    assert_eq!(registered["subject_id"], ada_id.as_str());
    let role_changed = all.iter().find(|e| e["type"] == "role_changed").unwrap();
    assert_eq!(
        role_changed["details"],
        json!({"from": "user", "to": "admin"})
    );
    assert_ne!(
        role_changed["actor_id"],
        ada_id.as_str(),
        "the admin did it"
    );
    let failed = all.iter().find(|e| e["type"] == "login_failed").unwrap();
    assert!(failed["actor_id"].is_null());
    let updated = all.iter().find(|e| e["type"] == "user_updated").unwrap();
    assert_eq!(updated["details"], json!({"fields": ["email"]}));

    // No event holds a password or a token.
    let everything = serde_json::to_string(&events(&app, &admin, "").await).unwrap();
    for secret in [
        PASSWORD.to_owned(),
        "a brand new passphrase".to_owned(),
        pair.refresh_token.clone(),
        text(&refreshed, "refresh_token"),
        admin_session.access_token.clone(),
        access,
    ] {
        assert!(!everything.contains(&secret));
    }
    // Filters: by type, and by time.
    let locked = events(&app, &admin, "type=login_locked").await;
    assert_eq!(locked.len(), 1);
    let future = events(&app, &admin, "since=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());
    let past = events(&app, &admin, "until=2000-01-01T00:00:00Z").await;
    assert!(past.is_empty());
}

#[actix_web::test]
async fn a_failed_change_leaves_no_event() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let (ada, pair) = app.signed_up("ada_l").await;
    app.signed_up("grace_h").await;
    let before = events(&app, &admin, "").await.len();

    // The insert fails on the unique email inside the transaction that would record it.
    let taken = app.register("ada_2", "grace_h@example.com", PASSWORD).await;
    assert_problem(taken, 409, "email_taken").await;
    // The email update fails on the unique index inside its transaction.
    let conflict = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &pair.access_token.clone(),
            &json!({"email": "grace_h@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_problem(conflict, 409, "email_taken").await;
    // Refused before any change: wrong current password (recorded as a failed login), an unknown session, an
    // unchanged profile.
    let wrong = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &pair.access_token.clone(),
            &json!({"current_password": "not my password", "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    let unknown = app
        .client
        .delete(app.url(&format!(
            "/api/v1/users/me/sessions/{}",
            uuid::Uuid::new_v4()
        )))
        .bearer_auth(pair.access_token.clone())
        .send()
        .await
        .unwrap();
    assert_problem(unknown, 404, "not_found").await;
    let same = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &pair.access_token.clone(),
            &json!({"email": ada.email.clone(), "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(same.status(), 200);
    let logout = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": "never-issued"}),
        )
        .await;
    assert_eq!(logout.status(), 204);

    // Only the wrong current password left a trace: it counts like a failed login.
    let after = events(&app, &admin, "").await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(text(&after[0], "type"), "login_failed");
    assert_eq!(after[0]["details"]["reason"], "wrong_current_password");
}

#[actix_web::test]
async fn another_users_session_cannot_be_seen_or_ended() {
    let app = TestApp::spawn().await;
    let (_, laptop) = app.signed_up("ada_l").await;
    let phone = app.tokens("ada_l").await;
    let (_, grace) = app.signed_up("grace_h").await;

    let listed: Value = app
        .get_authed("/api/v1/users/me/sessions", &laptop.access_token.clone())
        .await
        .json()
        .await
        .unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    for field in [
        "id",
        "created_at",
        "last_used_at",
        "expires_at",
        "ip",
        "user_agent",
        "current",
    ] {
        assert!(items[0].get(field).is_some(), "{field} in {}", items[0]);
    }
    let phone_session = items
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| text(s, "id"))
        .unwrap();

    let path = format!("/api/v1/users/me/sessions/{phone_session}");
    let by_grace = app
        .client
        .delete(app.url(&path))
        .bearer_auth(grace.access_token.clone())
        .send()
        .await
        .unwrap();
    assert_problem(by_grace, 404, "not_found").await;
    assert_eq!(
        app.get_authed("/api/v1/users/me", &phone.access_token.clone())
            .await
            .status(),
        200
    );

    let by_ada = app
        .client
        .delete(app.url(&path))
        .bearer_auth(laptop.access_token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(by_ada.status(), 204);
    let phone_me = app
        .get_authed("/api/v1/users/me", &phone.access_token.clone())
        .await;
    assert_problem(phone_me, 401, "invalid_token").await;
    assert_problem(
        app.refresh(&phone.refresh_token.clone()).await,
        401,
        "invalid_token",
    )
    .await;
    let listed: Value = app
        .get_authed("/api/v1/users/me/sessions", &laptop.access_token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn cursor_pages_neither_repeat_nor_skip_while_events_are_added() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    app.signed_up("ada_l").await;
    for _ in 0..12 {
        app.tokens("ada_l").await;
    }
    let existing: BTreeSet<i64> = events(&app, &admin, "")
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(existing.len() > 15);

    let mut collected = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/api/v1/admin/audit?limit=4&cursor={c}"),
            None => "/api/v1/admin/audit?limit=4".to_owned(),
        };
        let page: Value = app.get_authed(&query, &admin).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 4);
        collected.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
        // New events arrive between pages.
        app.tokens("ada_l").await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(
        collected.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {collected:?}"
    );
    let collected: BTreeSet<i64> = collected.into_iter().collect();
    assert_eq!(
        collected, existing,
        "every event that existed, and only those"
    );
}

#[actix_web::test]
async fn bad_audit_parameters_are_all_named() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let response = app
        .get_authed(
            "/api/v1/admin/audit?user_id=x&type=nope&since=yesterday&until=1&limit=0&cursor=abc",
            &admin,
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(
        fields,
        ["cursor", "limit", "since", "type", "until", "user_id"]
    );
    let user = app.access_token("ada_l").await;
    assert_problem(
        app.get_authed("/api/v1/admin/audit", &user).await,
        403,
        "forbidden",
    )
    .await;
}

#[actix_web::test]
async fn old_events_are_pruned_and_recent_ones_kept() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    app.signed_up("ada_l").await;
    let total = events(&app, &admin, "").await.len();
    // Past the API on purpose: events age only with time.
    app.execute(
        "UPDATE audit_events SET at = '2000-01-01T00:00:00+00:00' \
         WHERE type = 'user_registered'",
    )
    .await;

    let pruned = app
        .services
        .prune_audit(time::Duration::days(90))
        .await
        .unwrap();

    assert_eq!(pruned, 2);
    let left = events(&app, &admin, "").await;
    assert_eq!(left.len(), total - 2);
    assert!(left.iter().all(|e| e["type"] != "user_registered"));
}

#[actix_web::test]
async fn a_long_user_agent_is_kept_cut_short_on_sessions_and_events() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    app.register("ada_l", "ada_l@example.com", PASSWORD).await;
    let agent = "x".repeat(2_000);
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", agent.as_str())
        .json(&json!({"login": "ada_l", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let tokens: Value = login.json().await.unwrap();

    let sessions: Value = app
        .get_authed("/api/v1/users/me/sessions", &text(&tokens, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(text(&sessions["items"][0], "user_agent").len(), 512);
    let succeeded = events(&app, &admin, "type=login_succeeded").await;
    let ada = succeeded
        .iter()
        .find(|e| {
            e["user_agent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("xxx"))
        })
        .expect("ada's login event");
    assert_eq!(text(ada, "user_agent").len(), 512);
}
