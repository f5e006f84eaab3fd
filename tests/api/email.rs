//! Email verification and password reset, with mail going through a real SMTP server (aiosmtpd) or the
//! file mailer, and the outbox surviving an SMTP outage.

use std::time::Duration;

use futures_util::future::join_all;
use securecrud_tests::{
    PASSWORD, TestApp, assert_problem, error_fields,
    smtp::{SmtpServer, decoded, link_token},
};
use serde_json::{Value, json};

const BASE: &str = "https://app.example.com";
const NEW_PASSWORD: &str = "a completely new passphrase";

async fn smtp_app(smtp: &SmtpServer, extra: &[(&str, &str)]) -> TestApp {
    let url = smtp.url();
    let mut vars = vec![("SMTP_URL", url.as_str()), ("PUBLIC_BASE_URL", BASE)];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(&vars).await
}

/// Waits for the file mailer to have written `count` messages.
async fn wait_for_files(app: &TestApp, count: usize) -> Vec<String> {
    // Bounded generously: six tests run at once on two cores.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let files = app.mailed();
        if files.len() >= count || std::time::Instant::now() >= deadline {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn token_for(messages: &[String], to: &str, path: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.contains(&format!("To: {to}")))
        .filter_map(|m| link_token(m, path))
        .collect()
}

async fn verify(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await
}

async fn confirm_reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/password-reset/confirm",
        &json!({ "token": token, "new_password": password }),
    )
    .await
}

/// A link token that is unknown, used, superseded or expired: `400 invalid_token`, no bearer challenge.
async fn assert_invalid_link(response: reqwest::Response) {
    assert!(
        !response.headers().contains_key("www-authenticate"),
        "a link token is not an authentication failure"
    );
    assert_problem(response, 400, "invalid_token").await;
}

/// Waits (up to 5 s) until `count` messages wait in the outbox.
async fn wait_until_unsent(app: &TestApp, count: usize) {
    for _ in 0..800 {
        if unsent(app).await == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn unsent(app: &TestApp) -> usize {
    app.query_strings("SELECT recipient FROM mail_outbox WHERE sent_at IS NULL")
        .await
        .len()
}

#[actix_web::test]
async fn a_registration_message_arrives_by_smtp_with_a_link_that_verifies_once() {
    let smtp = SmtpServer::start();
    let app = smtp_app(&smtp, &[]).await;
    let (user, tokens) = app.signed_up("ada_l").await;
    assert!(!user.email_verified);

    let messages = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(messages.len(), 1);
    let message = decoded(&messages[0]);
    assert!(message.contains("To: ada_l@example.com"), "{message}");
    assert!(message.contains("Subject: Verify your email address"));
    assert!(message.contains("text/plain") && message.contains("text/html"));
    assert!(message.contains(&format!("{BASE}/verify-email?token=")));
    let token = link_token(&messages[0], "/verify-email?token=").unwrap();
    assert!(token.len() >= 43, "a 256-bit token: {token}");
    assert!(
        messages[0].contains(&format!("{BASE}/verify-email?token={token}")),
        "the raw message holds the whole link, copyable as it is"
    );

    let verified = verify(&app, &token).await;
    assert_eq!(verified.status(), 200);
    let verified: Value = verified.json().await.unwrap();
    assert_eq!(verified["email_verified"], true);
    let me: Value = app
        .get_authed("/api/v1/users/me", &tokens.access_token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);

    assert_invalid_link(verify(&app, &token).await).await;
    let resend = app
        .post_json_authed(
            "/api/v1/auth/verify-email/resend",
            &tokens.access_token.clone(),
            &json!({}),
        )
        .await;
    assert_problem(resend, 409, "conflict").await;
}

#[actix_web::test]
async fn a_reset_link_works_once_ends_every_session_and_unknown_emails_look_the_same() {
    let smtp = SmtpServer::start();
    let app = smtp_app(&smtp, &[]).await;
    let (_, tokens) = app.signed_up("ada_l").await;
    smtp.wait_for(1, Duration::from_secs(10)).await;

    // The unknown address first: each request is handled in the background, and the unknown one's (a lookup
    // and nothing else) has long ended once the known one's message has been delivered.
    for email in ["nobody@example.com", "ada_l@example.com"] {
        let response = app
            .post_json(
                "/api/v1/auth/password-reset/request",
                &json!({ "email": email }),
            )
            .await;
        assert_eq!(response.status(), 202);
        assert!(response.text().await.unwrap().is_empty());
    }
    let messages = smtp.wait_for(2, Duration::from_secs(10)).await;
    let resets = token_for(&messages, "ada_l@example.com", "/reset-password?token=");
    assert_eq!(resets.len(), 1);
    let mut queued = app.query_strings("SELECT recipient FROM mail_outbox").await;
    queued.sort();
    assert_eq!(
        queued,
        ["ada_l@example.com", "ada_l@example.com"],
        "nothing is sent to an unknown address"
    );
    assert_eq!(smtp.messages().len(), 2);

    let weak = assert_problem(
        confirm_reset(&app, &resets[0], "ada_l").await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&weak), ["new_password"]);
    assert_eq!(
        confirm_reset(&app, &resets[0], NEW_PASSWORD).await.status(),
        204
    );

    let old = app
        .get_authed("/api/v1/users/me", &tokens.access_token.clone())
        .await;
    assert_problem(old, 401, "invalid_token").await;
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 401);
    assert_eq!(app.login("ada_l", NEW_PASSWORD).await.status(), 200);
    let reused = confirm_reset(&app, &resets[0], "yet another passphrase").await;
    assert_invalid_link(reused).await;

    let admin = app.admin_token("root").await;
    let audit: Value = app
        .get_authed("/api/v1/admin/audit?limit=100", &admin)
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for expected in [
        "email_verification_sent",
        "password_reset_requested",
        "password_reset",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
}

#[actix_web::test]
async fn expired_used_and_superseded_tokens_are_refused() {
    let app = TestApp::spawn_with(&[("VERIFY_TOKEN_TTL_SECS", "1")]).await;
    let (_, tokens) = app.signed_up("ada_l").await;
    let first = token_for(
        &wait_for_files(&app, 1).await,
        "ada_l@example.com",
        "/verify-email?token=",
    );
    app.services.advance_clock(Duration::from_millis(1_200));
    assert_invalid_link(verify(&app, &first[0]).await).await;

    let app = TestApp::spawn().await;
    let (_, tokens_b) = app.signed_up("ada_l").await;
    wait_for_files(&app, 1).await;
    let resend = app
        .post_json_authed(
            "/api/v1/auth/verify-email/resend",
            &tokens_b.access_token.clone(),
            &json!({}),
        )
        .await;
    assert_eq!(resend.status(), 202);
    let links = token_for(
        &wait_for_files(&app, 2).await,
        "ada_l@example.com",
        "/verify-email?token=",
    );
    assert_eq!(links.len(), 2);
    let mut outcomes = Vec::new();
    for token in &links {
        outcomes.push(verify(&app, token).await.status().as_u16());
    }
    outcomes.sort_unstable();
    assert_eq!(outcomes, [200, 400], "only the latest link works");
    assert_invalid_link(verify(&app, "not-a-token").await).await;
    drop(tokens);
}

#[actix_web::test]
async fn an_email_change_needs_a_new_verification_and_the_old_link_dies() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up("ada_l").await;
    let access = tokens.access_token.clone();
    let old = token_for(
        &wait_for_files(&app, 1).await,
        "ada_l@example.com",
        "/verify-email?token=",
    );

    let changed = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &access,
            &json!({"email": "ada@example.org", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let files = wait_for_files(&app, 3).await;
    let new = token_for(&files, "ada@example.org", "/verify-email?token=");
    assert_eq!(new.len(), 1);

    assert_invalid_link(verify(&app, &old[0]).await).await;
    let verified: Value = verify(&app, &new[0]).await.json().await.unwrap();
    assert_eq!(verified["email"], "ada@example.org");
    assert_eq!(verified["email_verified"], true);
}

#[actix_web::test]
async fn an_email_change_notifies_the_old_address_and_ends_unused_reset_links() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up("ada_l").await;
    app.post_json(
        "/api/v1/auth/password-reset/request",
        &json!({ "email": "ada_l@example.com" }),
    )
    .await;
    let reset = token_for(
        &wait_for_files(&app, 2).await,
        "ada_l@example.com",
        "/reset-password?token=",
    );
    assert_eq!(reset.len(), 1);

    let changed = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &tokens.access_token.clone(),
            &json!({"email": "ada@example.org", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(changed.status(), 200);

    let files = wait_for_files(&app, 4).await;
    let notices: Vec<&String> = files
        .iter()
        .filter(|m| {
            m.contains("To: ada_l@example.com") && m.contains("Your email address was changed")
        })
        .collect();
    assert_eq!(notices.len(), 1, "one notice to the old address");
    assert!(
        !notices[0].contains("token="),
        "the notice carries no link that could act on the account"
    );
    assert_invalid_link(confirm_reset(&app, &reset[0], NEW_PASSWORD).await).await;
    assert_eq!(app.login("ada@example.org", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn a_password_change_kills_reset_links_and_one_link_resets_once_under_concurrency() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up("ada_l").await;
    let request = json!({ "email": "ada_l@example.com" });
    app.post_json("/api/v1/auth/password-reset/request", &request)
        .await;
    let first = token_for(
        &wait_for_files(&app, 2).await,
        "ada_l@example.com",
        "/reset-password?token=",
    );
    let change = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &tokens.access_token.clone(),
            &json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(change.status(), 204);
    assert_invalid_link(confirm_reset(&app, &first[0], "yet another passphrase").await).await;

    app.post_json("/api/v1/auth/password-reset/request", &request)
        .await;
    let files = wait_for_files(&app, 3).await;
    let second: Vec<String> = token_for(&files, "ada_l@example.com", "/reset-password?token=")
        .into_iter()
        .filter(|t| t != &first[0])
        .collect();
    let attempts = join_all((0..5).map(|i| {
        let app = &app;
        let token = second[0].clone();
        async move {
            confirm_reset(app, &token, &format!("concurrent passphrase {i}"))
                .await
                .status()
                .as_u16()
        }
    }))
    .await;
    assert_eq!(
        attempts.iter().filter(|s| **s == 204).count(),
        1,
        "{attempts:?}"
    );
    assert_eq!(
        attempts.iter().filter(|s| **s == 400).count(),
        4,
        "{attempts:?}"
    );
}

#[actix_web::test]
async fn require_verified_email_refuses_login_until_verified() {
    let app = TestApp::spawn_with(&[("REQUIRE_VERIFIED_EMAIL", "true")]).await;
    let registered = app.register("ada_l", "ada_l@example.com", PASSWORD).await;
    assert_eq!(registered.status(), 201);
    assert_problem(
        app.login("ada_l", PASSWORD).await,
        403,
        "email_not_verified",
    )
    .await;
    // The token endpoint refuses the grant the OAuth 2.0 way.
    let grant = app.password_grant("ada_l", PASSWORD).await;
    let body = assert_problem(grant, 400, "invalid_grant").await;
    assert_eq!(body["error"], "invalid_grant");
    // A wrong password still says only "invalid credentials".
    assert_problem(
        app.login("ada_l", "wrong password!!").await,
        401,
        "invalid_credentials",
    )
    .await;

    let token = token_for(
        &wait_for_files(&app, 1).await,
        "ada_l@example.com",
        "/verify-email?token=",
    );
    assert_eq!(verify(&app, &token[0]).await.status(), 200);
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn bad_bodies_name_their_fields() {
    let app = TestApp::spawn().await;
    let empty = app.post_json("/api/v1/auth/verify-email", &json!({})).await;
    assert_eq!(
        error_fields(&assert_problem(empty, 422, "validation_failed").await),
        ["token"]
    );
    let bad = app
        .post_json(
            "/api/v1/auth/password-reset/request",
            &json!({"email": "nope"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(bad, 422, "validation_failed").await),
        ["email"]
    );
    let missing = app
        .post_json("/api/v1/auth/password-reset/confirm", &json!({}))
        .await;
    let mut fields = error_fields(&assert_problem(missing, 422, "validation_failed").await);
    fields.sort();
    assert_eq!(fields, ["new_password", "token"]);
    let unauthenticated = app
        .post_json("/api/v1/auth/verify-email/resend", &json!({}))
        .await;
    assert_problem(unauthenticated, 401, "unauthorized").await;
}

#[actix_web::test]
async fn mail_waits_out_an_smtp_outage_and_is_delivered_exactly_once() {
    let mut smtp = SmtpServer::start();
    let app = smtp_app(
        &smtp,
        &[
            ("MAIL_BREAKER_FAILURES", "2"),
            ("MAIL_BREAKER_COOLDOWN_SECS", "1"),
            ("MAIL_RETRY_BASE_SECS", "1"),
            ("MAIL_MAX_ATTEMPTS", "100"),
        ],
    )
    .await;
    smtp.stop();

    for name in ["ada_l", "grace_h", "alan_t"] {
        let response = app
            .register(name, &format!("{name}@example.com"), PASSWORD)
            .await;
        assert_eq!(response.status(), 201);
    }
    let mut opened = false;
    for _ in 0..800 {
        if app.services.mail_circuit_open() {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(opened, "the breaker opens while the server is down");
    assert_eq!(unsent(&app).await, 3, "every message waits in the outbox");
    assert!(smtp.messages().is_empty());

    smtp.resume();
    let messages = smtp.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 3);
    // Once every message is marked sent, none can be sent again: then count what arrived.
    securecrud_tests::eventually(
        "every message is marked sent",
        Duration::from_secs(20),
        || async { unsent(&app).await == 0 },
    )
    .await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 3, "nothing is delivered twice");
    for name in ["ada_l", "grace_h", "alan_t"] {
        let to = format!("To: {name}@example.com");
        assert_eq!(
            messages.iter().filter(|m| m.contains(&to)).count(),
            1,
            "{name}"
        );
    }
    assert_eq!(unsent(&app).await, 0);
    assert!(!app.services.mail_circuit_open());
}

#[actix_web::test]
async fn two_instances_share_one_outbox_and_send_each_message_once() {
    let smtp = SmtpServer::start();
    let first = smtp_app(&smtp, &[]).await;
    let url = smtp.url();
    let second = first
        .sibling(&[("SMTP_URL", url.as_str()), ("MAIL_POLL_MS", "10")])
        .await;

    let names: Vec<String> = (0..12).map(|i| format!("user_{i:02}")).collect();
    join_all(names.iter().enumerate().map(|(i, name)| {
        let app = if i % 2 == 0 { &first } else { &second };
        async move {
            let response = app
                .register(name, &format!("{name}@example.com"), PASSWORD)
                .await;
            assert_eq!(response.status(), 201);
        }
    }))
    .await;

    smtp.wait_for(12, Duration::from_secs(20)).await;
    // Once every message is marked sent, none can be sent again: then count what arrived.
    securecrud_tests::eventually(
        "every message is marked sent",
        Duration::from_secs(20),
        || async { unsent(&first).await == 0 },
    )
    .await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 12);
    for name in &names {
        let to = format!("To: {name}@example.com");
        assert_eq!(
            messages.iter().filter(|m| m.contains(&to)).count(),
            1,
            "{name}"
        );
    }
    assert_eq!(unsent(&first).await, 0);
}

#[actix_web::test]
async fn no_usable_token_stays_in_the_outbox_once_a_message_has_left() {
    let app = TestApp::spawn_with(&[("MAIL_KEEP_SENT_SECS", "3600")]).await;
    app.signed_up("ada_l").await;
    app.post_json(
        "/api/v1/auth/password-reset/request",
        &json!({ "email": "ada_l@example.com" }),
    )
    .await;
    let files = wait_for_files(&app, 2).await;
    let reset = token_for(&files, "ada_l@example.com", "/reset-password?token=");
    assert_eq!(reset.len(), 1);
    wait_until_unsent(&app, 0).await;

    let bodies = app
        .query_strings("SELECT text_body || html_body FROM mail_outbox")
        .await;
    assert_eq!(bodies.len(), 2, "both messages are still listed");
    assert!(
        bodies
            .iter()
            .all(|b| !b.contains("token=") && !b.contains(&reset[0])),
        "{bodies:?}"
    );
    assert_eq!(
        confirm_reset(&app, &reset[0], NEW_PASSWORD).await.status(),
        204,
        "the delivered link itself still works"
    );

    // Past MAIL_KEEP_SENT_SECS (7 days).
    app.services
        .advance_clock(Duration::from_secs(7 * 86_400 + 1));
    let swept = app.services.sweep().await.unwrap();
    assert_eq!(
        swept.sent_mail, 2,
        "sent messages go after MAIL_KEEP_SENT_SECS"
    );
}

/// Where in the database's files (see `TestApp::database_files`) any of `needles` can be read.
async fn found_at_rest(app: &TestApp, needles: &[&str]) -> Vec<String> {
    let files = app.database_files().await;
    assert!(!files.is_empty(), "the database has files");
    files
        .iter()
        .flat_map(|(path, bytes)| {
            needles
                .iter()
                .filter(|needle| memchr::memmem::find(bytes, needle.as_bytes()).is_some())
                .map(move |needle| format!("{needle:?} in {}", path.display()))
        })
        .collect()
}

/// SECURITY.md, "Tokens at rest": a message's bodies are sealed before they are written (a key from the
/// settings, never in the database), so no mailed link is readable in the database's files at any moment:
/// neither while its message waits (here: through an SMTP outage) nor after it has left. The files: SQLite's
/// database file, WAL and index (the documented `.backup` copies pages, each found in the file or the WAL);
/// PostgreSQL's files of the database after a checkpoint, dead row versions included. A logical dump
/// (`pg_dump`) holds the live rows, which are checked by query. Before the bodies were sealed, the waiting
/// link was in the WAL or the heap in every run.
#[actix_web::test]
async fn mailed_links_are_never_readable_in_the_database_files() {
    // Nothing listens on port 1: every attempt of this instance fails and the messages wait.
    let app = TestApp::spawn_with(&[
        ("SMTP_URL", "smtp://127.0.0.1:1"),
        ("MAIL_RETRY_BASE_SECS", "1"),
        ("MAIL_KEEP_SENT_SECS", "3600"),
    ])
    .await;
    app.signed_up("ada_l").await;
    let requested = app
        .post_json(
            "/api/v1/auth/password-reset/request",
            &json!({ "email": "ada_l@example.com" }),
        )
        .await;
    assert_eq!(requested.status(), 202);
    // The reset's message is written after the answer (its timing must not tell whether the address exists).
    wait_until_unsent(&app, 2).await;
    assert_eq!(unsent(&app).await, 2, "both messages wait");
    let rows = app
        .query_strings("SELECT text_body || html_body FROM mail_outbox")
        .await;
    assert!(rows.iter().all(|row| !row.contains("token=")), "{rows:?}");
    let waiting = found_at_rest(&app, &["token=", "/reset-password", "/verify-email"]).await;
    assert!(waiting.is_empty(), "readable while waiting: {waiting:?}");

    // Another instance, with a working mailer, sends them.
    let sender = app.sibling(&[]).await;
    let files = wait_for_files(&sender, 2).await;
    let verify_token = token_for(&files, "ada_l@example.com", "/verify-email?token=");
    let reset_token = token_for(&files, "ada_l@example.com", "/reset-password?token=");
    assert_eq!((verify_token.len(), reset_token.len()), (1, 1), "{files:?}");
    wait_until_unsent(&app, 0).await;
    assert_eq!(unsent(&app).await, 0, "both messages were marked sent");

    let sent = found_at_rest(
        &app,
        &["token=", verify_token[0].as_str(), reset_token[0].as_str()],
    )
    .await;
    assert!(sent.is_empty(), "readable after sending: {sent:?}");
    assert_eq!(
        confirm_reset(&app, &reset_token[0], NEW_PASSWORD)
            .await
            .status(),
        204,
        "the token looked for was live"
    );
}

/// A rolling upgrade: instances of the previous release still run beside this one on the same outbox. They
/// claim rows by `next_attempt_at` and send bodies as stored, so a sealed row must be out of their reach (they
/// would mail its ciphertext); and the plain rows they write must still be sent by this release.
#[actix_web::test]
async fn the_previous_releases_plain_mail_is_sent_and_its_sender_never_reaches_a_sealed_row() {
    let app = TestApp::spawn_with(&[
        ("SMTP_URL", "smtp://127.0.0.1:1"),
        ("MAIL_RETRY_BASE_SECS", "1"),
    ])
    .await;
    app.signed_up("ada_l").await;
    assert_eq!(unsent(&app).await, 1);
    // The previous release's claim: due by `next_attempt_at`, which a sealed row never reaches.
    let reachable = app
        .query_strings(
            "SELECT recipient FROM mail_outbox WHERE sent_at IS NULL AND dead_at IS NULL \
             AND next_attempt_at < '3000-01-01 00:00:00+00:00'",
        )
        .await;
    assert!(reachable.is_empty(), "{reachable:?}");
    // A row as the previous release writes it: plain bodies, due now.
    app.execute(
        "INSERT INTO mail_outbox (recipient, subject, text_body, html_body, created_at, attempts, \
         next_attempt_at) VALUES ('old@example.com', 'Written by the previous release', \
         'plain text body', '<p>plain html body</p>', '2026-01-01 00:00:00+00:00', 0, \
         '2026-01-01 00:00:00+00:00')",
    )
    .await;

    let sender = app.sibling(&[]).await;
    let files = wait_for_files(&sender, 2).await;
    let old = files
        .iter()
        .find(|m| m.contains("To: old@example.com"))
        .unwrap_or_else(|| panic!("the plain row is sent: {files:?}"));
    assert!(old.contains("plain text body"), "{old}");
    assert_eq!(
        token_for(&files, "ada_l@example.com", "/verify-email?token=").len(),
        1,
        "the sealed one is sent by this release: {files:?}"
    );
}

/// A sealed body that does not open here (altered: moved to another recipient's row, or sealed under another
/// key) is never sent, and not erased either: it waits out its claim for an instance that can open it, and is
/// given up after `MAIL_MAX_ATTEMPTS` like any failure.
#[actix_web::test]
async fn a_body_that_does_not_open_is_never_sent_and_is_given_up_after_the_last_attempt() {
    for max_attempts in ["5", "1"] {
        // The first instance's SMTP server is down: its one attempt fails and its breaker opens (it claims
        // nothing more in this test), leaving the message waiting, due in an hour.
        let app = TestApp::spawn_with(&[
            ("SMTP_URL", "smtp://127.0.0.1:1"),
            ("MAIL_BREAKER_FAILURES", "1"),
            ("MAIL_RETRY_BASE_SECS", "3600"),
        ])
        .await;
        app.signed_up("ada_l").await;
        for _ in 0..800 {
            if !app
                .query_strings("SELECT last_error FROM mail_outbox WHERE last_error IS NOT NULL")
                .await
                .is_empty()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // A reset link redirected to someone else's mailbox, past the api, and due now.
        app.execute(
            "UPDATE mail_outbox SET recipient = 'eve@example.com', attempts = 0, claimed_until = NULL, \
             last_error = NULL, due_at = '2000-01-01 00:00:00+00:00'",
        )
        .await;
        assert_eq!(unsent(&app).await, 1, "it waits, neither sent nor given up");
        let sender = app.sibling(&[("MAIL_MAX_ATTEMPTS", max_attempts)]).await;
        // The second instance claims it and finds it does not open: the row says why.
        let mut reasons = Vec::new();
        for _ in 0..800 {
            reasons = app
                .query_strings(
                    "SELECT last_error FROM mail_outbox WHERE last_error LIKE '%cannot be opened%'",
                )
                .await;
            if !reasons.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(reasons.len(), 1, "the row says why it was not sent");
        assert!(sender.mailed().is_empty(), "nothing is sent");
        let state = app
            .query_strings(
                "SELECT CASE WHEN dead_at IS NULL THEN 'waiting' ELSE 'dead' END || ' ' || \
                 CASE WHEN text_body = '' THEN 'erased' ELSE 'kept' END FROM mail_outbox",
            )
            .await;
        let expected = if max_attempts == "1" {
            "dead erased"
        } else {
            "waiting kept"
        };
        assert_eq!(state, [expected], "MAIL_MAX_ATTEMPTS={max_attempts}");
    }
}
