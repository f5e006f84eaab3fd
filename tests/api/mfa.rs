//! Two-factor authentication (TOTP, RFC 6238): enrolment, confirmation, the login's second step, replay,
//! recovery codes, the lockout, disabling and the admin reset. Codes come from `totp-rs` fed the secret the
//! api returned, computed here independently of the server's code path.

use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use securecrud_persistence::Clock;
use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields, text};
use serde_json::{Value, json};
use totp_rs::{Algorithm, Secret, TOTP};

/// An authenticator app: the secret, and the last time step it gave a code for (the server refuses a code
/// of a step not after the last one used). It keeps its own time, the system's plus how far it has moved
/// the api's clock: where a real user would wait for the next step, it moves both on by a step.
struct Authenticator {
    totp: TOTP,
    last_step: Option<u64>,
    api_clock: Clock,
    ahead_secs: u64,
}

impl Authenticator {
    fn new(app: &TestApp, secret_base32: &str) -> Self {
        let bytes = Secret::Encoded(secret_base32.to_owned())
            .to_bytes()
            .expect("the secret is base32");
        assert!(bytes.len() >= 20, "at least 160 bits");
        Self {
            totp: TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new()).unwrap(),
            last_step: None,
            api_clock: app.services.database().clock().clone(),
            ahead_secs: 0,
        }
    }

    /// Unix time as this authenticator reads it.
    fn unix_now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + self.ahead_secs
    }

    /// The code of the current step, or of the next one when the current one was used (both within the
    /// server's ±1 step); when both were, the api's clock moves on by a step.
    fn next_code(&mut self) -> String {
        loop {
            let now = self.unix_now() / 30;
            let step = self.last_step.map_or(now, |last| now.max(last + 1));
            if step <= now + 1 {
                self.last_step = Some(step);
                return self.totp.generate(step * 30);
            }
            self.wait(30);
        }
    }

    /// Lets `secs` seconds pass, for the api and for this authenticator.
    fn wait(&mut self, secs: u64) {
        self.api_clock.advance(std::time::Duration::from_secs(secs));
        self.ahead_secs += secs;
    }

    /// The last code given again (a replay).
    fn last_code(&self) -> String {
        self.totp
            .generate(self.last_step.expect("a code was given") * 30)
    }

    /// A code that is wrong now: the one of ten steps ago.
    fn wrong_code(&self) -> String {
        let now = self.unix_now();
        let code = self.totp.generate(now - 300);
        let current: Vec<String> = (0..3)
            .map(|i| self.totp.generate(now + 30 - i * 30))
            .collect();
        if current.contains(&code) {
            "000000".into()
        } else {
            code
        }
    }
}

/// A user with TOTP on: their access token (of the session that enrolled), authenticator and recovery codes.
async fn enrolled(app: &TestApp, username: &str) -> (String, Authenticator, Vec<String>) {
    let access = app.access_token(username).await;
    let enrolment = app.start_totp(&access).await;
    let mut authenticator = Authenticator::new(app, &text(&enrolment, "secret"));
    let code = authenticator.next_code();
    let response = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &access,
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (access, authenticator, codes)
}

/// Logs in with the password; the `401 mfa_required` answer's `mfa_token`.
async fn mfa_token(app: &TestApp, login: &str) -> String {
    let response = app.login(login, PASSWORD).await;
    assert!(response.headers().contains_key("www-authenticate"));
    let problem = assert_problem(response, 401, "mfa_required").await;
    assert!(problem.get("access_token").is_none() && problem.get("refresh_token").is_none());
    assert_eq!(problem["mfa_token_expires_in"], 300);
    text(&problem, "mfa_token")
}

async fn verify(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/mfa/verify",
        &json!({ "mfa_token": mfa_token, "code": code }),
    )
    .await
}

async fn audit_types(app: &TestApp, user_id: &str) -> Vec<String> {
    let admin = app.admin_token("mfa_auditor").await;
    let page: Value = app
        .get_authed(
            &format!("/api/v1/admin/audit?limit=100&user_id={user_id}"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| text(e, "type"))
        .collect()
}

#[actix_web::test]
async fn enrolment_confirmation_and_a_login_with_a_code() {
    let app = TestApp::spawn().await;
    let (user, tokens) = app.signed_up("ada_l").await;
    let access = tokens.access_token.clone();
    let wrong = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp",
            &access,
            &json!({ "current_password": "not the password" }),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;

    let enrolment = app.start_totp(&access).await;
    let secret = text(&enrolment, "secret");
    let uri = text(&enrolment, "otpauth_uri");
    assert!(uri.starts_with("otpauth://totp/SecureCRUD:ada_l?"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=SecureCRUD"), "{uri}");
    // Pending: not on yet, and a login still needs no code.
    let me: Value = app
        .get_authed("/api/v1/users/me", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa_enabled"], false);
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);

    let mut authenticator = Authenticator::new(&app, &secret);
    let wrong = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &access,
            &json!({ "code": authenticator.wrong_code() }),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    let code = authenticator.next_code();
    let response = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &access,
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        codes.iter().collect::<std::collections::HashSet<_>>().len(),
        10
    );
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 19 && c.matches('-').count() == 3)
    );
    let me: Value = app
        .get_authed("/api/v1/users/me", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa_enabled"], true);
    // The session that enrolled goes on.
    assert_eq!(app.get_authed("/api/v1/tasks", &access).await.status(), 200);

    // Login: the password alone issues nothing.
    let token = mfa_token(&app, "ada_l@example.com").await;
    assert_problem(
        app.get_authed("/api/v1/users/me", &token).await,
        401,
        "invalid_token",
    )
    .await;
    let code = authenticator.next_code();
    let response = verify(&app, &token, &code).await;
    assert_eq!(response.status(), 200);
    let pair: Value = response.json().await.unwrap();
    let access = text(&pair, "access_token");
    assert!(pair["refresh_token"].is_string());
    assert_eq!(app.me(&access).await.username, "ada_l");
    let refreshed = app.refresh(&text(&pair, "refresh_token")).await;
    assert_eq!(
        refreshed.status(),
        200,
        "the session refreshes as any other"
    );

    // The token endpoint answers the same challenge, with RFC 6749's error member.
    let response = app.password_grant("ada_l", PASSWORD).await;
    let problem = assert_problem(response, 401, "mfa_required").await;
    assert_eq!(problem["error"], "mfa_required");
    assert!(problem["mfa_token"].is_string());

    let types = audit_types(&app, &user.id.clone()).await;
    for kind in [
        "mfa_enabled",
        "mfa_verified",
        "mfa_failed",
        "login_succeeded",
    ] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
}

#[actix_web::test]
async fn a_code_is_refused_the_second_time_and_the_mfa_token_works_once() {
    let app = TestApp::spawn().await;
    let (_, mut authenticator, _) = enrolled(&app, "ada_l").await;
    let first = mfa_token(&app, "ada_l").await;
    let code = authenticator.next_code();
    assert_eq!(verify(&app, &first, &code).await.status(), 200);

    // The same code (same step) with a new login: a replay.
    let second = mfa_token(&app, "ada_l").await;
    let replayed = verify(&app, &second, &authenticator.last_code()).await;
    let problem = assert_problem(replayed, 401, "invalid_credentials").await;
    assert!(text(&problem, "detail").contains("already used"));
    // The mfa_token survives a wrong code; the next code works with it.
    let code = authenticator.next_code();
    assert_eq!(verify(&app, &second, &code).await.status(), 200);
    // A spent mfa_token is refused, whatever the code.
    let code = authenticator.next_code();
    let spent = assert_problem(verify(&app, &first, &code).await, 401, "invalid_token").await;
    assert!(
        spent["detail"]
            .as_str()
            .unwrap()
            .starts_with("the mfa_token "),
        "names the token the client sent: {spent}"
    );
    assert_problem(
        verify(&app, "not-a-token", &code).await,
        401,
        "invalid_token",
    )
    .await;
}

#[actix_web::test]
async fn an_expired_mfa_token_is_refused() {
    let app = TestApp::spawn().await;
    let (_, mut authenticator, _) = enrolled(&app, "ada_l").await;
    let token = mfa_token(&app, "ada_l").await;
    // Past the mfa_token's 5 minutes.
    authenticator.wait(5 * 60 + 1);
    let code = authenticator.next_code();
    assert_problem(verify(&app, &token, &code).await, 401, "invalid_token").await;
}

#[actix_web::test]
async fn concurrent_verifications_of_one_mfa_token_give_one_session() {
    // A quota above the race's size: more concurrent attempts than LOGIN_MAX_FAILURES lock the account
    // (see the lockout tests), which is not what this test is about.
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "20")]).await;
    let (_, mut authenticator, _) = enrolled(&app, "ada_l").await;
    let token = mfa_token(&app, "ada_l").await;
    let code = authenticator.next_code();
    let statuses: Vec<u16> = join_all((0..8).map(|_| verify(&app, &token, &code)))
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );

    // One code with several logins at once: one session, the others are replays.
    let tokens = join_all((0..4).map(|_| mfa_token(&app, "ada_l"))).await;
    let code = authenticator.next_code();
    let statuses: Vec<u16> = join_all(tokens.iter().map(|t| verify(&app, t, &code)))
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    let sessions = app.query_strings("SELECT refresh_hash FROM sessions").await;
    assert_eq!(sessions.len(), 3, "the enrolling session and one per race");
}

#[actix_web::test]
async fn a_recovery_code_works_once_in_any_case_and_with_or_without_dashes() {
    let app = TestApp::spawn().await;
    let (user_access, _, codes) = enrolled(&app, "ada_l").await;
    let me = app.me(&user_access).await;
    let token = mfa_token(&app, "ada_l").await;
    assert_eq!(verify(&app, &token, &codes[0]).await.status(), 200);
    let again = mfa_token(&app, "ada_l").await;
    assert_problem(
        verify(&app, &again, &codes[0]).await,
        401,
        "invalid_credentials",
    )
    .await;
    let typed = codes[1].to_uppercase().replace('-', " ");
    assert_eq!(verify(&app, &again, &typed).await.status(), 200);

    let admin = app.admin_token("mfa_admin").await;
    let page: Value = app
        .get_authed(
            &format!(
                "/api/v1/admin/audit?type=mfa_recovery_code_used&user_id={}",
                me.id
            ),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["details"]["remaining"], 8);
    let stored = app
        .query_strings("SELECT code_hash FROM mfa_recovery_codes")
        .await;
    assert_eq!(stored.len(), 10);
    for code in &codes {
        let plain = code.replace('-', "");
        assert!(stored.iter().all(|h| !h.contains(&plain)), "only hashes");
    }
}

#[actix_web::test]
async fn the_secret_is_stored_sealed() {
    let app = TestApp::spawn().await;
    let access = app.access_token("ada_l").await;
    let enrolment = app.start_totp(&access).await;
    let secret = text(&enrolment, "secret");
    let stored = app
        .query_strings("SELECT secret_sealed FROM user_mfa")
        .await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("v1."), "{}", stored[0]);
    assert!(!stored[0].contains(&secret) && !stored[0].contains(&secret.to_lowercase()));
}

#[actix_web::test]
async fn wrong_codes_count_toward_the_lockout_and_a_password_alone_clears_nothing() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    let (_, mut authenticator, _) = enrolled(&app, "ada_l").await;
    let token = mfa_token(&app, "ada_l").await;
    for _ in 0..2 {
        assert_problem(
            verify(&app, &token, &authenticator.wrong_code()).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    // A right password again gives a new challenge but does not reset the count.
    let token = mfa_token(&app, "ada_l").await;
    assert_problem(
        verify(&app, &token, &authenticator.wrong_code()).await,
        401,
        "invalid_credentials",
    )
    .await;
    let code = authenticator.next_code();
    let locked = verify(&app, &token, &code).await;
    assert!(locked.headers().contains_key("retry-after"));
    assert_problem(locked, 429, "rate_limited").await;
    assert_problem(app.login("ada_l", PASSWORD).await, 429, "rate_limited").await;
    assert_problem(
        app.login("ada_l@example.com", PASSWORD).await,
        429,
        "rate_limited",
    )
    .await;
}

#[actix_web::test]
async fn concurrent_wrong_codes_check_at_most_the_quota() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    let (_, authenticator, _) = enrolled(&app, "ada_l").await;
    let token = mfa_token(&app, "ada_l").await;
    let wrong = authenticator.wrong_code();
    let statuses: Vec<u16> = join_all((0..10).map(|_| verify(&app, &token, &wrong)))
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(
        statuses.iter().filter(|s| **s == 401).count() <= 3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
}

#[actix_web::test]
async fn enrolment_and_confirmation_may_come_from_two_sessions_of_the_user() {
    let app = TestApp::spawn().await;
    let first = app.access_token("ada_l").await;
    let second = app.tokens("ada_l").await.access_token.clone();
    let none_pending = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &second,
            &json!({ "code": "123456" }),
        )
        .await;
    assert_problem(none_pending, 409, "conflict").await;
    let enrolment = app.start_totp(&first).await;
    let mut authenticator = Authenticator::new(&app, &text(&enrolment, "secret"));
    let code = authenticator.next_code();
    let response = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &second,
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(app.me(&second).await.mfa_enabled);
    // The session that started it was another session: it ended with the confirmation.
    assert_problem(
        app.get_authed("/api/v1/users/me", &first).await,
        401,
        "invalid_token",
    )
    .await;
    let again = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp",
            &second,
            &json!({ "current_password": PASSWORD }),
        )
        .await;
    assert_problem(again, 409, "conflict").await;
    // Another user's session cannot confirm it.
    let other = app.access_token("grace_h").await;
    let response = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &other,
            &json!({ "code": authenticator.next_code() }),
        )
        .await;
    assert_problem(response, 409, "conflict").await;
}

#[actix_web::test]
async fn disabling_needs_the_password_and_a_code_then_login_needs_no_code() {
    let app = TestApp::spawn().await;
    let (access, mut authenticator, codes) = enrolled(&app, "ada_l").await;
    let me = app.me(&access).await;
    let code = authenticator.next_code();
    let wrong_password = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/users/me/mfa",
            &access,
            &json!({ "current_password": "nope nope", "code": code }),
        )
        .await;
    assert_problem(wrong_password, 401, "invalid_credentials").await;
    let wrong_code = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/users/me/mfa",
            &access,
            &json!({ "current_password": PASSWORD, "code": authenticator.wrong_code() }),
        )
        .await;
    assert_problem(wrong_code, 401, "invalid_credentials").await;
    let missing = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/users/me/mfa",
            &access,
            &json!({}),
        )
        .await;
    let problem = assert_problem(missing, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["current_password", "code"]);
    let response = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/users/me/mfa",
            &access,
            &json!({ "current_password": PASSWORD, "code": codes[3] }),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert!(!app.me(&access).await.mfa_enabled);
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);
    assert!(
        app.query_strings("SELECT code_hash FROM mfa_recovery_codes")
            .await
            .is_empty()
    );
    let again = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/users/me/mfa",
            &access,
            &json!({ "current_password": PASSWORD, "code": "123456" }),
        )
        .await;
    assert_problem(again, 409, "conflict").await;
    let types = audit_types(&app, &me.id.to_string()).await;
    assert!(types.iter().any(|t| t == "mfa_disabled"), "{types:?}");
}

#[actix_web::test]
async fn an_admin_reset_turns_mfa_off_and_ends_the_sessions() {
    let app = TestApp::spawn().await;
    let (access, _, _) = enrolled(&app, "ada_l").await;
    let me = app.me(&access).await;
    let path = format!("/api/v1/admin/users/{}/mfa/reset", me.id);
    let user = app.access_token("grace_h").await;
    assert_problem(
        app.post_json_authed(&path, &user, &json!({})).await,
        403,
        "forbidden",
    )
    .await;
    let admin = app.admin_token("root_admin").await;
    let unknown = format!("/api/v1/admin/users/{}/mfa/reset", uuid::Uuid::new_v4());
    assert_problem(
        app.client
            .post(app.url(&unknown))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_problem(
        app.get_authed("/api/v1/users/me", &access).await,
        401,
        "invalid_token",
    )
    .await;
    let pair = app.tokens("ada_l").await;
    assert!(!app.me(&pair.access_token.clone()).await.mfa_enabled);
    let types = audit_types(&app, &me.id.to_string()).await;
    assert!(types.iter().any(|t| t == "mfa_reset"), "{types:?}");
}

#[actix_web::test]
async fn bad_mfa_bodies_are_422_naming_each_field() {
    let app = TestApp::spawn().await;
    let problem = assert_problem(
        app.post_json("/api/v1/auth/mfa/verify", &json!({})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["mfa_token", "code"]);
    let problem = assert_problem(
        app.post_json(
            "/api/v1/auth/mfa/verify",
            &json!({ "mfa_token": "x", "code": "12345", "session": "jar" }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["code", "session"]);
    let problem = assert_problem(
        app.post_json(
            "/api/v1/auth/login",
            &json!({ "login": "ada_l", "password": PASSWORD, "session": "jar" }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["session"]);
}

#[actix_web::test]
async fn right_passwords_never_lock_an_account_with_two_factor_on() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "3")]).await;
    let (access, _, _) = enrolled(&app, "ada_l").await;
    let passwords = [
        PASSWORD,
        "a second long passphrase",
        "a third long passphrase",
        "a fourth long passphrase",
        "a fifth long passphrase",
    ];
    for pair in passwords.windows(2) {
        let response = app
            .post_json_authed(
                "/api/v1/users/me/password",
                &access,
                &json!({ "current_password": pair[0], "new_password": pair[1] }),
            )
            .await;
        assert_eq!(response.status(), 204);
    }
    let response = app.login("ada_l", passwords[4]).await;
    assert_problem(response, 401, "mfa_required").await;
}

#[actix_web::test]
async fn a_waiting_mfa_token_dies_when_the_sessions_are_ended() {
    let app = TestApp::spawn().await;
    let (access, mut authenticator, _) = enrolled(&app, "ada_l").await;
    let token = mfa_token(&app, "ada_l").await;
    // The owner, alarmed, changes the password: every other session ends, and so does the half-done login.
    let response = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &access,
            &json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(response.status(), 204);
    let code = authenticator.next_code();
    assert_problem(verify(&app, &token, &code).await, 401, "invalid_token").await;
}

#[actix_web::test]
async fn a_secret_that_cannot_be_opened_is_a_server_fault_that_counts_no_attempt() {
    let app = TestApp::spawn_with(&[("LOGIN_MAX_FAILURES", "2")]).await;
    let (_, mut authenticator, _) = enrolled(&app, "ada_l").await;
    // As after a change of MFA_ENCRYPTION_KEY: the stored secret no longer opens.
    app.execute("UPDATE user_mfa SET secret_sealed = 'v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'")
        .await;
    let token = mfa_token(&app, "ada_l").await;
    for _ in 0..3 {
        let code = authenticator.next_code();
        assert_problem(verify(&app, &token, &code).await, 500, "internal").await;
        authenticator.last_step = None;
    }
    assert_problem(app.login("ada_l", PASSWORD).await, 401, "mfa_required").await;
}

/// Turning a second factor on is what a user does after a suspected compromise: the sessions opened with the
/// password alone (another device, or a thief's) end, refresh chains included; the one that confirmed stays.
#[actix_web::test]
async fn turning_two_factor_on_ends_every_other_session() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up("ada_l").await;
    let access = tokens.access_token.clone();
    let other: Value = app.login("ada_l", PASSWORD).await.json().await.unwrap();
    let (other_access, other_refresh) =
        (text(&other, "access_token"), text(&other, "refresh_token"));
    let enrolment = app.start_totp(&access).await;
    let mut authenticator = Authenticator::new(&app, &text(&enrolment, "secret"));
    let code = authenticator.next_code();

    let confirmed = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &access,
            &json!({ "code": code }),
        )
        .await;

    assert_eq!(confirmed.status(), 200);
    assert_eq!(
        app.get_authed("/api/v1/users/me", &access).await.status(),
        200
    );
    assert_problem(
        app.get_authed("/api/v1/users/me", &other_access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(app.refresh(&other_refresh).await, 401, "invalid_token").await;
}

/// Waits (bounded) for a message to `to` whose text holds `needle`; returns it.
async fn message_to(app: &TestApp, to: &str, needle: &str) -> String {
    for _ in 0..400 {
        if let Some(found) = app
            .mailed()
            .into_iter()
            .find(|m| m.contains(&format!("To: {to}")) && m.contains(needle))
        {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no message to {to} with {needle:?}");
}

/// Whoever controls the mailbox (not the authenticator) used to repeat: reset the password, log in, try codes
/// until the login lock, reset again (a reset ended the lock and restarted its count). Wrong second factors
/// now count per account on their own, and nothing done with the password or the mailbox clears them: at
/// `MFA_MAX_FAILURES` codes are refused (429), the owner is told, and only an admin reset reopens the step.
#[actix_web::test]
async fn wrong_codes_are_capped_per_account_and_a_password_reset_does_not_reopen_them() {
    let app = TestApp::spawn_with(&[("MFA_MAX_FAILURES", "3"), ("LOGIN_MAX_FAILURES", "2")]).await;
    let (_, mut authenticator, recovery) = enrolled(&app, "ada_l").await;
    let mut guessed = 0;
    for round in 0..3 {
        // Reset the password through the mailbox, then log in and guess until refused.
        if round > 0 {
            app.post_json(
                "/api/v1/auth/password-reset/request",
                &json!({ "email": "ada_l@example.com" }),
            )
            .await;
            let message = message_to(&app, "ada_l@example.com", "reset-password?token=").await;
            let token = message
                .split("reset-password?token=")
                .nth(1)
                .unwrap()
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .next()
                .unwrap()
                .to_owned();
            // The next round must find its own link.
            for entry in std::fs::read_dir(app.mail_dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if std::fs::read_to_string(&path).is_ok_and(|m| m.contains("reset-password?token="))
                {
                    std::fs::remove_file(path).unwrap();
                }
            }
            let reset = app
                .post_json(
                    "/api/v1/auth/password-reset/confirm",
                    &json!({ "token": token, "new_password": PASSWORD }),
                )
                .await;
            assert_eq!(reset.status(), 204, "round {round}");
        }
        let token = mfa_token(&app, "ada_l").await;
        loop {
            let answer = verify(&app, &token, &authenticator.wrong_code()).await;
            match answer.status().as_u16() {
                401 => guessed += 1,
                429 => break,
                other => panic!("round {round}: {other}"),
            }
        }
    }

    assert_eq!(guessed, 3, "three resets, one cap: codes compared in all");
    let message = message_to(&app, "ada_l@example.com", "Two-factor codes locked").await;
    assert!(message.contains("3 wrong two-factor codes"), "{message}");
    // The right code, a recovery code: refused too, with the reason.
    let token = mfa_token(&app, "ada_l").await;
    let right = authenticator.next_code();
    let refused = assert_problem(verify(&app, &token, &right).await, 429, "rate_limited").await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("administrator"),
        "{refused}"
    );
    assert_problem(
        verify(&app, &token, &recovery[0]).await,
        429,
        "rate_limited",
    )
    .await;

    let admin = app.admin_token("root_admin").await;
    let me = app
        .client
        .get(app.url("/api/v1/admin/users?q=ada_l"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let id = me["items"][0]["id"].as_str().unwrap().to_owned();
    let reset = app
        .client
        .post(app.url(&format!("/api/v1/admin/users/{id}/mfa/reset")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(app.login("ada_l", PASSWORD).await.status(), 200);
}

/// Of any number of concurrent wrong codes, at most `MFA_MAX_FAILURES` are compared; the others are refused
/// before a code is looked at.
#[actix_web::test]
async fn concurrent_wrong_codes_never_exceed_the_cap() {
    let app =
        TestApp::spawn_with(&[("MFA_MAX_FAILURES", "4"), ("LOGIN_MAX_FAILURES", "1000")]).await;
    let (access, authenticator, _) = enrolled(&app, "ada_l").await;
    let user_id = app.me(&access).await.id.to_string();
    let token = mfa_token(&app, "ada_l").await;
    let wrong = authenticator.wrong_code();

    let answers = join_all((0..16).map(|_| verify(&app, &token, &wrong))).await;

    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        12,
        "{statuses:?}"
    );
    let failed = audit_types(&app, &user_id)
        .await
        .into_iter()
        .filter(|t| t == "mfa_failed")
        .count();
    assert_eq!(failed, 5, "four wrong codes and the lock");
}

/// With two-factor on, the changes only the owner may make (the email, deleting the account) need a second
/// factor besides the password: whoever has the password (and a session) alone cannot make them.
#[actix_web::test]
async fn changing_the_email_or_deleting_the_account_needs_a_second_factor() {
    let app = TestApp::spawn().await;
    let (access, mut authenticator, recovery) = enrolled(&app, "ada_l").await;
    let delete = |body: Value| {
        app.client
            .delete(app.url("/api/v1/users/me"))
            .bearer_auth(&access)
            .json(&body)
            .send()
    };
    let change = |body: Value| {
        app.client
            .patch(app.url("/api/v1/users/me"))
            .bearer_auth(&access)
            .json(&body)
            .send()
    };

    let without = assert_problem(
        change(json!({ "email": "ada@example.org", "current_password": PASSWORD }))
            .await
            .unwrap(),
        401,
        "mfa_required",
    )
    .await;
    assert!(without.get("mfa_token").is_none(), "{without}");
    assert_problem(
        delete(json!({ "password": PASSWORD })).await.unwrap(),
        401,
        "mfa_required",
    )
    .await;
    assert_problem(
        delete(json!({ "password": PASSWORD, "code": authenticator.wrong_code() }))
            .await
            .unwrap(),
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.me(&access).await.email.as_str(), "ada_l@example.com");

    let changed = change(json!({
        "email": "ada@example.org",
        "current_password": PASSWORD,
        "code": recovery[0],
    }))
    .await
    .unwrap();
    assert_eq!(changed.status(), 200);
    // A recovery code works once.
    assert_problem(
        delete(json!({ "password": PASSWORD, "code": recovery[0] }))
            .await
            .unwrap(),
        401,
        "invalid_credentials",
    )
    .await;
    let code = authenticator.next_code();
    let deleted = delete(json!({ "password": PASSWORD, "code": code }))
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // A rename needs nothing more.
    let other = app.access_token("grace_h").await;
    let renamed = app
        .client
        .patch(app.url("/api/v1/users/me"))
        .bearer_auth(&other)
        .json(&json!({ "username": "grace.h" }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
}
