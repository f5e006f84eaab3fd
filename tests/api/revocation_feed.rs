//! The revocation feed (`GET /api/v1/auth/revocations`): every way a session ends reaches a subscriber
//! within a second, on either database and across instances; a subscriber resumes after its last event
//! with nothing skipped; bad cursors and too many streams are refused.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use securecrud_tests::{
    Backend, PASSWORD, TestApp, Tokens, assert_problem, error_fields, jwt_claims,
    sse::{Feed, Revoked, Said},
};
use serde_json::json;

/// What the contract promises: a revocation reaches a connected subscriber within a second.
const WITHIN: Duration = Duration::from_secs(1);

/// How long a test waits to be sure nothing more comes.
const QUIET: Duration = Duration::from_millis(700);

fn sid(tokens: &Tokens) -> String {
    jwt_claims(&tokens.access_token)["sid"]
        .as_str()
        .expect("sid")
        .to_owned()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The next event, which must come within [`WITHIN`] and name `sid`.
async fn expect_revoked(feed: &mut Feed, sid: &str) -> Revoked {
    let revoked = feed
        .revoked_within(WITHIN)
        .await
        .unwrap_or_else(|| panic!("no event for {sid} within {WITHIN:?}"));
    assert_eq!(revoked.sid, sid);
    revoked
}

/// The sids of every event until the feed is quiet.
async fn sids_until_quiet(feed: &mut Feed) -> BTreeSet<String> {
    feed.revoked_until_quiet(QUIET)
        .await
        .into_iter()
        .map(|revoked| revoked.sid)
        .collect()
}

#[actix_web::test]
async fn a_logout_reaches_a_subscriber_within_a_second_with_its_until() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up("ada_l").await;
    let mut feed = app.feed("", None).await;

    let started = Instant::now();
    app.logout(&tokens).await;
    let revoked = expect_revoked(&mut feed, &sid(&tokens)).await;

    assert!(started.elapsed() < WITHIN, "{:?}", started.elapsed());
    // The access token's lifetime (15 minutes), the verifiers' 5 s leeway and a minute's margin for clocks.
    let until = revoked.until - unix_now();
    assert!((960..=967).contains(&until), "until is now + {until} s");
    let exp = jwt_claims(&tokens.access_token)["exp"].as_i64().unwrap();
    assert!(
        revoked.until >= exp + 5,
        "no token of it verifies after until"
    );
    assert!(revoked.cursor > 0);
}

#[actix_web::test]
async fn every_way_a_session_ends_is_in_the_feed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let mut feed = app.feed("", None).await;

    // logout-all
    let (_, a1) = app.signed_up("ada_l").await;
    let a2 = app.tokens("ada_l").await;
    let response = app
        .post_json_authed("/api/v1/auth/logout-all", &a1.access_token, &json!({}))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        sids_until_quiet(&mut feed).await,
        [sid(&a1), sid(&a2)].into()
    );

    // a password change ends the other sessions
    let (_, b1) = app.signed_up("grace_h").await;
    let b2 = app.tokens("grace_h").await;
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    let response = app
        .post_json_authed("/api/v1/users/me/password", &b1.access_token, &change)
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(sids_until_quiet(&mut feed).await, [sid(&b2)].into());

    // a replayed refresh token ends its session
    let (_, c1) = app.signed_up("alan_t").await;
    let rotated: Tokens = app.refresh(&c1.refresh_token).await.json().await.unwrap();
    let again = app.refresh(&rotated.refresh_token).await;
    assert_eq!(again.status(), 200);
    assert_problem(app.refresh(&c1.refresh_token).await, 401, "invalid_token").await;
    assert_eq!(sids_until_quiet(&mut feed).await, [sid(&c1)].into());

    // revoking one of my sessions, and an admin ending all of a user's sessions
    let (user, d1) = app.signed_up("edsger_d").await;
    let d2 = app.tokens("edsger_d").await;
    let one = app
        .client
        .delete(app.url(&format!("/api/v1/users/me/sessions/{}", sid(&d2))))
        .bearer_auth(&d1.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 204);
    expect_revoked(&mut feed, &sid(&d2)).await;
    let all = app
        .client
        .delete(app.url(&format!("/api/v1/admin/users/{}/sessions", user.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 204);
    assert_eq!(sids_until_quiet(&mut feed).await, [sid(&d1)].into());

    // deactivation
    let (user, e1) = app.signed_up("barbara_l").await;
    app.deactivate(&user.id).await;
    assert_eq!(sids_until_quiet(&mut feed).await, [sid(&e1)].into());

    // deleting the account
    let (_, f1) = app.signed_up("ken_t").await;
    let f2 = app.tokens("ken_t").await;
    let deleted = app
        .client
        .delete(app.url("/api/v1/users/me"))
        .bearer_auth(&f1.access_token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        sids_until_quiet(&mut feed).await,
        [sid(&f1), sid(&f2)].into()
    );

    // the OAuth 2.0 revocation endpoint
    let (_, g1) = app.signed_up("frances_a").await;
    let revoke = app
        .client
        .post(app.url("/api/v1/auth/revoke"))
        .form(&[("token", g1.refresh_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    expect_revoked(&mut feed, &sid(&g1)).await;

    // past the api: plain SQL
    let (_, h1) = app.signed_up("donald_k").await;
    app.execute(
        "UPDATE sessions SET revoked_at = last_used_at WHERE user_id = \
         (SELECT id FROM users WHERE username_normalized = 'donald_k')",
    )
    .await;
    expect_revoked(&mut feed, &sid(&h1)).await;
}

#[actix_web::test]
async fn a_subscriber_resumes_after_its_last_event_with_nothing_skipped() {
    let app = TestApp::spawn().await;
    let (_, first) = app.signed_up("ada_l").await;
    let mut feed = app.feed("", None).await;
    app.logout(&first).await;
    let seen = expect_revoked(&mut feed, &sid(&first)).await;
    drop(feed);

    // While it is away: two more endings.
    let missed: Vec<Tokens> = vec![app.tokens("ada_l").await, app.tokens("ada_l").await];
    for tokens in &missed {
        app.logout(tokens).await;
    }

    // What it missed comes before the stream's first comment, which says it is up to date.
    let mut resumed = app.feed("", Some(seen.cursor)).await;
    let mut got = Vec::new();
    loop {
        match resumed.next_within(WITHIN).await {
            Some(Said::Revoked(revoked)) => got.push(revoked),
            Some(Said::Comment(_)) => break,
            None => panic!("no comment after the missed endings"),
        }
    }
    let sids: Vec<&str> = got.iter().map(|r| r.sid.as_str()).collect();
    assert_eq!(sids, [sid(&missed[0]), sid(&missed[1])]);
    assert!(got[0].cursor > seen.cursor && got[1].cursor > got[0].cursor);

    // `?since=` does the same; `Last-Event-ID` wins over it (a reconnecting EventSource sends both).
    let mut by_query = app.feed(&format!("?since={}", got[0].cursor), None).await;
    let sids: Vec<String> = by_query
        .revoked_until_quiet(QUIET)
        .await
        .into_iter()
        .map(|r| r.sid)
        .collect();
    assert_eq!(sids, [sid(&missed[1])]);
    let mut both = app.feed("?since=0", Some(got[1].cursor)).await;
    assert_eq!(both.revoked_within(QUIET).await, None);
}

#[actix_web::test]
async fn without_a_cursor_the_feed_starts_with_endings_whose_tokens_could_still_verify() {
    let app = TestApp::spawn().await;
    let (_, old) = app.signed_up("ada_l").await;
    app.logout(&old).await;
    // The access-token lifetime (15 minutes) and the leeway pass: no token of `old` verifies any more.
    app.services
        .advance_clock(Duration::from_secs(15 * 60 + 10));
    let recent = app.tokens("ada_l").await;
    app.logout(&recent).await;

    let mut feed = app.feed("", None).await;
    assert_eq!(sids_until_quiet(&mut feed).await, [sid(&recent)].into());

    // A cursor beyond any the feed gave (another database's) counts as none.
    let mut foreign = app.feed("?since=999999999", None).await;
    assert_eq!(sids_until_quiet(&mut foreign).await, [sid(&recent)].into());
}

#[actix_web::test]
async fn a_malformed_cursor_is_422_naming_where_it_came_from() {
    let app = TestApp::spawn().await;
    for query in [
        "?since=abc",
        "?since=-1",
        "?since=99999999999999999999",
        "?since=",
    ] {
        let response = app.open_feed(query, None).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), ["since"], "{query}");
    }
    let response = app
        .client
        .get(app.url("/api/v1/auth/revocations"))
        .header("last-event-id", "1; DROP TABLE sessions")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["Last-Event-ID"]);
    let unknown = app.open_feed("?cursor=1", None).await;
    assert_problem(unknown, 422, "validation_failed").await;
}

#[actix_web::test]
async fn streams_per_client_ip_are_bounded_and_given_back_when_closed() {
    let app = TestApp::spawn_with(&[("REVOCATION_FEED_MAX_STREAMS_PER_IP", "2")]).await;
    let first = app.feed("", None).await;
    let _second = app.feed("", None).await;

    let refused = app.open_feed("", None).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 429, "rate_limited").await;

    drop(first);
    // The server sees the closed connection when its keep-alive comments (every 5 s) fail, and gives
    // its place back.
    securecrud_tests::eventually(
        "the closed stream's slot came back",
        Duration::from_secs(15),
        || async { app.open_feed("", None).await.status() == 200 },
    )
    .await;
}

#[actix_web::test]
async fn a_quiet_stream_sends_a_comment_at_least_every_15_seconds() {
    let app = TestApp::spawn().await;
    let mut feed = app.feed("", None).await;
    let first = feed.next_within(Duration::from_secs(15)).await;
    assert!(
        matches!(first, Some(securecrud_tests::sse::Said::Comment(_))),
        "{first:?}"
    );
    let second = feed.next_within(Duration::from_secs(15)).await;
    assert!(
        matches!(second, Some(securecrud_tests::sse::Said::Comment(_))),
        "{second:?}"
    );
}

#[actix_web::test]
async fn an_ending_on_another_instance_reaches_this_ones_subscribers_within_a_second() {
    let app = TestApp::spawn().await;
    let other = app.sibling(&[]).await;
    let mut feed = other.feed("", None).await;
    let (_, tokens) = app.signed_up("ada_l").await;

    let started = Instant::now();
    app.logout(&tokens).await;
    expect_revoked(&mut feed, &sid(&tokens)).await;
    assert!(started.elapsed() < WITHIN, "{:?}", started.elapsed());
}

#[actix_web::test]
async fn a_reader_far_behind_gets_every_ending_in_order() {
    let app = TestApp::spawn().await;
    let mut feed = app.feed("", None).await;
    app.signed_up("ada_l").await;
    // 1,200 more live sessions of ada_l (past the api, which would take a login each, copying the
    // sign-up's), then all ended at once, while the subscriber reads nothing.
    let new_id = match Backend::current() {
        Backend::Sqlite => "randomblob(16)",
        Backend::Postgres => "gen_random_uuid()",
    };
    app.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) \
         INSERT INTO sessions (id, user_id, refresh_hash, created_at, last_used_at, expires_at) \
         SELECT {new_id}, s.user_id, 'copy' || n.i, s.created_at, s.last_used_at, s.expires_at \
         FROM sessions s, n"
    ))
    .await;
    let response = app
        .post_json_authed(
            "/api/v1/auth/logout-all",
            &app.access_token("grace_h").await,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 204);
    app.execute("UPDATE sessions SET revoked_at = last_used_at WHERE revoked_at IS NULL")
        .await;

    let got = feed.revoked_until_quiet(Duration::from_secs(2)).await;
    // grace_h's session and ada_l's 1,201 (the sign-up's and the 1,200).
    assert_eq!(got.len(), 1 + 1_201, "every ending, once");
    assert!(
        got.windows(2).all(|pair| pair[0].cursor < pair[1].cursor),
        "in cursor order"
    );
    let sids: BTreeSet<&str> = got.iter().map(|r| r.sid.as_str()).collect();
    assert_eq!(sids.len(), got.len(), "no ending twice");
}

#[actix_web::test]
async fn no_access_token_outlives_its_session() {
    // A session may last two minutes from its start; access tokens 15 minutes.
    let app = TestApp::spawn_with(&[("SESSION_MAX_LIFETIME_SECS", "120")]).await;
    let (_, tokens) = app.signed_up("ada_l").await;

    let claims = jwt_claims(&tokens.access_token);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(
        (118..=120).contains(&lifetime),
        "the token lives {lifetime} s"
    );
    assert!(
        (118..=120).contains(&tokens.expires_in),
        "{}",
        tokens.expires_in
    );
    assert!(tokens.expires_in <= tokens.refresh_expires_in);
}

#[actix_web::test]
async fn an_ending_committed_after_a_later_one_still_comes_after_it() {
    // PostgreSQL only: SQLite has one writer at a time, so endings commit in the order they are written.
    if Backend::current() != Backend::Postgres {
        return;
    }
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn().await;
    let (_, slow) = app.signed_up("ada_l").await;
    let (_, fast) = app.signed_up("grace_h").await;
    let mut feed = app.feed("", None).await;

    // `slow` ends first in a transaction that stays open (its row takes the lower id) ...
    let tx = app.db.begin().await.unwrap();
    tx.execute_unprepared(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = \
         (SELECT id FROM users WHERE username_normalized = 'ada_l')",
    )
    .await
    .unwrap();
    // ... `fast` ends and commits, and reaches the subscriber ...
    app.logout(&fast).await;
    let first = expect_revoked(&mut feed, &sid(&fast)).await;
    // ... then `slow` commits: it must come after, or a subscriber that resumes after `first` misses it.
    tx.commit().await.unwrap();
    let second = expect_revoked(&mut feed, &sid(&slow)).await;
    assert!(second.cursor > first.cursor, "{second:?} after {first:?}");
    let mut resumed = app.feed("", Some(first.cursor)).await;
    assert_eq!(sids_until_quiet(&mut resumed).await, [sid(&slow)].into());
}

#[actix_web::test]
async fn concurrent_endings_on_two_instances_reach_every_subscriber_once_in_order() {
    let app = TestApp::spawn().await;
    let other = app.sibling(&[]).await;
    let mut sessions = Vec::new();
    for i in 0..4 {
        let username = format!("user_{i}");
        sessions.push(app.signed_up(&username).await.1);
        for _ in 0..9 {
            sessions.push(app.tokens(&username).await);
        }
    }
    let mut here = app.feed("", None).await;
    let mut there = other.feed("", None).await;

    // 40 logouts at once, half through each instance.
    let logouts = sessions.iter().enumerate().map(|(i, tokens)| {
        let instance = if i % 2 == 0 { &app } else { &other };
        instance.logout(tokens)
    });
    futures_util::future::join_all(logouts).await;

    let expected: BTreeSet<String> = sessions.iter().map(sid).collect();
    for feed in [&mut here, &mut there] {
        let got = feed.revoked_until_quiet(QUIET).await;
        assert!(
            got.windows(2).all(|pair| pair[0].cursor < pair[1].cursor),
            "in cursor order"
        );
        let sids: BTreeSet<String> = got.iter().map(|r| r.sid.clone()).collect();
        assert_eq!(sids.len(), got.len(), "each once");
        assert_eq!(sids, expected);
    }
}

#[actix_web::test]
async fn streams_end_when_their_instance_cannot_look_for_endings() {
    let app = TestApp::spawn().await;
    let mut feed = app.feed("", None).await;
    assert!(matches!(
        feed.next_within(Duration::from_secs(5)).await,
        Some(Said::Comment(_))
    ));

    // The instance's database goes away: its poller cannot look, so its streams stop saying they are up to
    // date (a subscriber would take silence from a stuck instance for "nothing ended") and end instead.
    app.services.database().close().await.unwrap();
    assert!(
        feed.ends_within(Duration::from_secs(15)).await,
        "the stream ended"
    );
}

#[actix_web::test]
async fn a_truncation_of_every_session_is_in_the_feed() {
    // `TRUNCATE` is PostgreSQL's (SQLite's `DELETE` without `WHERE` fires the row triggers, tested above
    // through the account's deletion).
    if Backend::current() != Backend::Postgres {
        return;
    }
    let app = TestApp::spawn().await;
    let (_, ada) = app.signed_up("ada_l").await;
    let (_, grace) = app.signed_up("grace_h").await;
    let mut feed = app.feed("", None).await;

    app.execute("TRUNCATE users CASCADE").await;

    assert_eq!(
        sids_until_quiet(&mut feed).await,
        [sid(&ada), sid(&grace)].into()
    );
}
