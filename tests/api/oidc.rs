//! Sign in with an OpenID Connect provider: the flows (first sign-in, the next ones, linking, unlinking,
//! two-factor after the provider, cookie mode, two instances) and the attacks on them, against the test
//! provider of `securecrud_tests::oidc` (a real HTTP server the api discovers and calls).

use std::collections::HashMap;

use futures_util::future::join_all;
use securecrud_tests::{
    PASSWORD, TestApp, assert_problem,
    oidc::{Account, Tamper, TestProvider},
    text,
};
use serde_json::{Value, json};

/// The app URL results go to (on the allowlist).
const APP: &str = "http://localhost:3000/signed-in";

async fn setup(extra: &[(&str, &str)]) -> (TestApp, TestProvider) {
    let provider = TestProvider::start().await;
    let app = TestApp::spawn_with(&vars(&provider, extra)).await;
    (app, provider)
}

pub(crate) fn vars<'a>(
    provider: &TestProvider,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut owned: Vec<(String, String)> = provider.vars("corp");
    owned.extend(
        [
            ("OIDC_PROVIDERS", "corp"),
            ("OIDC_CORP_DISPLAY_NAME", "Corp SSO"),
            ("OIDC_REDIRECT_ALLOWLIST", APP),
            ("OIDC_TIMEOUT_MS", "1500"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    // Leaked for the test's lifetime: `spawn_with` takes string slices.
    let mut vars: Vec<(&'a str, &'a str)> = owned
        .into_iter()
        .map(|(k, v)| (&*k.leak(), &*v.leak()))
        .collect();
    vars.extend_from_slice(extra);
    vars
}

fn authorize_path(redirect_uri: &str) -> String {
    format!(
        "/api/v1/auth/oidc/corp/authorize?redirect_uri={}",
        url::form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect::<String>()
    )
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 302, "a redirect");
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_owned()
}

/// The name of the cookie that ties a sign-in to its browser.
const BINDING: &str = "__Host-securecrud_oidc";

/// A started sign-in: the provider's authorization URL, and the browser's binding cookie.
struct Started {
    authorize_url: String,
    cookie: String,
}

/// Starts a sign-in in a new browser.
async fn start(app: &TestApp) -> Started {
    start_at(app, &authorize_path(APP)).await
}

/// Starts a sign-in in a new browser at `path` (an authorize URL).
async fn start_at(app: &TestApp, path: &str) -> Started {
    let response = app.get(path).await;
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a binding cookie")
        .to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let cookie = set_cookie
        .split(';')
        .next()
        .filter(|pair| pair.starts_with(&format!("{BINDING}=")))
        .expect("the binding cookie")
        .to_owned();
    Started {
        authorize_url: location(&response),
        cookie,
    }
}

/// The browser at the provider: where the provider sends it back, as a path and query on `app` (the api's
/// public URL in the tests is another address; a proxy would map it so).
async fn at_provider(app: &TestApp, authorize_url: &str) -> String {
    let callback = location(
        &app.client
            .get(authorize_url)
            .send()
            .await
            .expect("provider"),
    );
    let url = url::Url::parse(&callback).expect("callback URL");
    assert_eq!(url.path(), "/api/v1/auth/oidc/corp/callback");
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

/// The browser (with `cookie`, if any) back at the api's callback: the fragment the app gets.
async fn callback(app: &TestApp, callback: &str, cookie: Option<&str>) -> HashMap<String, String> {
    let mut request = app.client.get(app.url(callback));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.expect("callback");
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let to_app = location(&response);
    let (base, fragment) = to_app.split_once('#').expect("a fragment");
    assert_eq!(base, APP, "the result goes to the allowlisted app URL");
    let mut fragment: HashMap<String, String> = url::form_urlencoded::parse(fragment.as_bytes())
        .into_owned()
        .collect();
    if let Some(cookie) = cookie {
        fragment.insert(COOKIE.to_owned(), cookie.to_owned());
    }
    fragment
}

/// A whole sign-in as `account`: the fragment the app gets.
async fn sign_in(
    app: &TestApp,
    provider: &TestProvider,
    account: &Account,
) -> HashMap<String, String> {
    provider.sign_in_as(account);
    let started = start(app).await;
    let back = at_provider(app, &started.authorize_url).await;
    callback(app, &back, Some(&started.cookie)).await
}

/// Links `account` at the provider to the account of `access`: the link's fragment (to confirm).
async fn link_flow(
    app: &TestApp,
    provider: &TestProvider,
    access: &str,
    password: Option<&str>,
    account: &Account,
) -> HashMap<String, String> {
    let mut body = json!({ "redirect_uri": APP });
    if let Some(password) = password {
        body["current_password"] = json!(password);
    }
    let response = app
        .post_json_authed("/api/v1/users/me/identities/corp", access, &body)
        .await;
    assert_eq!(response.status(), 200, "start a link");
    let authorize_url = text(&response.json().await.unwrap(), "authorize_url");
    provider.sign_in_as(account);
    let back = at_provider(app, &authorize_url).await;
    callback(app, &back, None).await
}

async fn confirm(
    app: &TestApp,
    access: &str,
    fragment: &HashMap<String, String>,
) -> reqwest::Response {
    let code = fragment
        .get("link_code")
        .unwrap_or_else(|| panic!("no link_code in {fragment:?}"));
    app.post_json_authed(
        "/api/v1/users/me/identities",
        access,
        &json!({ "link_code": code }),
    )
    .await
}

/// Links `account` to the account of `access` and confirms it.
async fn link(
    app: &TestApp,
    provider: &TestProvider,
    access: &str,
    password: Option<&str>,
    account: &Account,
) {
    let fragment = link_flow(app, provider, access, password, account).await;
    let response = confirm(app, access, &fragment).await;
    assert_eq!(response.status(), 200, "confirm the link");
}

/// Where the helpers keep, beside the fragment's parameters, the binding cookie of the browser it came to.
const COOKIE: &str = "(cookie)";

/// A login code, and the cookie of the browser that got it.
#[derive(Debug, Clone)]
struct Code {
    code: String,
    cookie: Option<String>,
}

fn login_code(fragment: &HashMap<String, String>) -> Code {
    Code {
        code: fragment
            .get("login_code")
            .unwrap_or_else(|| panic!("no login_code in {fragment:?}"))
            .clone(),
        cookie: fragment.get(COOKIE).cloned(),
    }
}

fn refused(fragment: &HashMap<String, String>, error: &str) {
    assert_eq!(
        fragment.get("error").map(String::as_str),
        Some(error),
        "{fragment:?}"
    );
    assert!(fragment.contains_key("error_description"), "{fragment:?}");
    assert!(!fragment.contains_key("login_code"), "{fragment:?}");
}

/// `POST /auth/oidc/exchange` from the browser that got the code (with its cookie).
async fn exchange(app: &TestApp, code: &Code) -> reqwest::Response {
    exchange_with(app, code, code.cookie.as_deref(), json!({})).await
}

/// `POST /auth/oidc/exchange` with `cookie` and the body's other fields.
async fn exchange_with(
    app: &TestApp,
    code: &Code,
    cookie: Option<&str>,
    mut body: Value,
) -> reqwest::Response {
    body["login_code"] = json!(code.code);
    let mut request = app
        .client
        .post(app.url("/api/v1/auth/oidc/exchange"))
        .header("X-Requested-With", "securecrud")
        .json(&body);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    request.send().await.expect("exchange")
}

pub(crate) async fn tokens_for(app: &TestApp, provider: &TestProvider, account: &Account) -> Value {
    let code = login_code(&sign_in(app, provider, account).await);
    let response = exchange(app, &code).await;
    assert_eq!(response.status(), 200, "exchange");
    response.json().await.expect("tokens")
}

async fn user_count(app: &TestApp) -> usize {
    app.query_strings("SELECT CAST(COUNT(*) AS TEXT) FROM users")
        .await[0]
        .parse()
        .expect("a count")
}

async fn audit_reasons(app: &TestApp, kind: &str) -> Vec<String> {
    let rows = app
        .query_strings(&format!(
            "SELECT CAST(details AS TEXT) FROM audit_events WHERE type = '{kind}' ORDER BY id"
        ))
        .await;
    rows.iter()
        .map(|details| {
            let details: Value = serde_json::from_str(details).expect("details json");
            details["reason"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_first_sign_in_makes_an_account_and_the_next_one_finds_it() {
    let (app, provider) = setup(&[]).await;
    let providers: Value = app
        .get("/api/v1/auth/oidc/providers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        providers,
        json!({ "items": [{ "name": "corp", "display_name": "Corp SSO" }] })
    );
    let ann = Account {
        preferred_username: Some("ann.lee".into()),
        ..Account::verified("sub-ann", "Ann.Lee@Example.com")
    };
    let tokens = tokens_for(&app, &provider, &ann).await;
    let me: Value = app
        .get_authed("/api/v1/users/me", &text(&tokens, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "ann.lee");
    assert_eq!(me["email"], "ann.lee@example.com");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["has_password"], false);
    // No password: a password login is refused whatever is typed.
    for password in ["", "!", PASSWORD] {
        let response = app.login("ann.lee", password).await;
        assert!(
            matches!(response.status().as_u16(), 401 | 422),
            "{password:?}"
        );
    }

    let again = tokens_for(&app, &provider, &ann).await;
    let me_again: Value = app
        .get_authed("/api/v1/users/me", &text(&again, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me_again["id"], me["id"], "the same account");
    assert_eq!(user_count(&app).await, 1);
    let identities: Value = app
        .get_authed("/api/v1/users/me/identities", &text(&again, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    let items = identities["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["provider"], "corp");
    assert_eq!(items[0]["subject"], "sub-ann");
    assert!(items[0]["last_used_at"].is_string());
    assert_eq!(
        app.query_strings("SELECT type FROM audit_events WHERE type LIKE 'oidc%' OR type = 'identity_linked' ORDER BY id")
            .await,
        ["identity_linked", "oidc_login", "oidc_login"]
    );
    // A taken username gets a suffix; an unverified email makes an unverified account.
    let other = Account {
        preferred_username: Some("ann.lee".into()),
        email_verified: Some(false),
        ..Account::verified("sub-other", "other@example.com")
    };
    let tokens = tokens_for(&app, &provider, &other).await;
    let user = app.me(&text(&tokens, "access_token")).await;
    assert!(user.username.starts_with("ann.lee-"), "{}", user.username);
    assert!(!user.email_verified);
}

#[tokio::test]
async fn an_email_that_exists_here_is_never_linked_by_itself_and_its_owner_links_it() {
    let (app, provider) = setup(&[]).await;
    let (alice, alice_tokens) = app.signed_up("alice").await;
    let users = user_count(&app).await;
    for verified in [Some(true), Some(false), None] {
        let takeover = Account {
            email_verified: verified,
            ..Account::verified("attacker-sub", "ALICE@example.com")
        };
        refused(&sign_in(&app, &provider, &takeover).await, "account_exists");
    }
    assert_eq!(
        user_count(&app).await,
        users,
        "nobody was made or signed in"
    );
    assert_eq!(
        audit_reasons(&app, "oidc_failed").await,
        ["account_exists", "account_exists", "account_exists"]
    );

    // Alice links her own identity from her account, with her password.
    let access = alice_tokens.access_token.clone();
    let response = app
        .post_json_authed(
            "/api/v1/users/me/identities/corp",
            &access,
            &json!({ "redirect_uri": APP }),
        )
        .await;
    assert_problem(response, 422, "validation_failed").await;
    let response = app
        .post_json_authed(
            "/api/v1/users/me/identities/corp",
            &access,
            &json!({ "current_password": "wrong password", "redirect_uri": APP }),
        )
        .await;
    assert_problem(response, 401, "invalid_credentials").await;
    let alice_at_corp = Account::verified("alice-sub", "alice@example.com");
    let fragment = link_flow(&app, &provider, &access, Some(PASSWORD), &alice_at_corp).await;
    // Sent to someone else (or read by an attacker), the code links nothing for them.
    let (_, mallory) = app.signed_up("mallory").await;
    assert_problem(
        confirm(&app, &mallory.access_token, &fragment).await,
        400,
        "invalid_token",
    )
    .await;
    let fragment = link_flow(&app, &provider, &access, Some(PASSWORD), &alice_at_corp).await;
    let response = confirm(&app, &access, &fragment).await;
    assert_eq!(response.status(), 200);
    let identity: Value = response.json().await.unwrap();
    assert_eq!(identity["subject"], "alice-sub");
    assert_problem(
        confirm(&app, &access, &fragment).await,
        400,
        "invalid_token",
    )
    .await;

    let tokens = tokens_for(
        &app,
        &provider,
        &Account::verified("alice-sub", "alice@example.com"),
    )
    .await;
    assert_eq!(app.me(&text(&tokens, "access_token")).await.id, alice.id);

    // Bob cannot link the identity Alice has.
    let (_, bob) = app.signed_up("bob").await;
    let response = app
        .post_json_authed(
            "/api/v1/users/me/identities/corp",
            &bob.access_token,
            &json!({ "current_password": PASSWORD, "redirect_uri": APP }),
        )
        .await;
    let authorize_url = text(&response.json().await.unwrap(), "authorize_url");
    let back = at_provider(&app, &authorize_url).await;
    refused(&callback(&app, &back, None).await, "identity_taken");
}

#[tokio::test]
async fn unlinking_keeps_a_way_in_even_when_two_unlinks_race() {
    let (app, provider) = setup(&[]).await;
    let tokens = tokens_for(
        &app,
        &provider,
        &Account::verified("sub-1", "solo@example.com"),
    )
    .await;
    let access = text(&tokens, "access_token");
    let first: Value = app
        .get_authed("/api/v1/users/me/identities", &access)
        .await
        .json()
        .await
        .unwrap();
    let first_id = text(&first["items"][0], "id");
    let unlink = |id: String| {
        let app = &app;
        let access = access.clone();
        async move {
            app.send_json(
                reqwest::Method::DELETE,
                &format!("/api/v1/users/me/identities/{id}"),
                &access,
                &json!({}),
            )
            .await
        }
    };
    // Its only way in: no password, no other identity, no passkey.
    assert_problem(unlink(first_id.clone()).await, 409, "last_sign_in_method").await;

    // A second identity (a fresh session stands in for the password this account does not have).
    link(
        &app,
        &provider,
        &access,
        None,
        &Account::verified("sub-2", "solo2@example.com"),
    )
    .await;
    let both: Value = app
        .get_authed("/api/v1/users/me/identities", &access)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = both["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| text(item, "id"))
        .collect();
    assert_eq!(ids.len(), 2);

    // Both unlinked at once: exactly one goes.
    let answers = join_all(ids.iter().cloned().map(unlink)).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 409]);
    let left: Value = app
        .get_authed("/api/v1/users/me/identities", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(left["items"].as_array().unwrap().len(), 1);

    // A session older than ten minutes no longer stands in for a password.
    app.services
        .advance_clock(std::time::Duration::from_secs(11 * 60));
    let response = app
        .post_json_authed(
            "/api/v1/users/me/identities/corp",
            &access,
            &json!({ "redirect_uri": APP }),
        )
        .await;
    assert_problem(response, 401, "reauthentication_required").await;
    // An account with a password may unlink its only identity (the password is a way in).
    let (_, carol) = app.signed_up("carol").await;
    link(
        &app,
        &provider,
        &carol.access_token,
        Some(PASSWORD),
        &Account::verified("carol-sub", "carol@example.com"),
    )
    .await;
    let listed: Value = app
        .get_authed("/api/v1/users/me/identities", &carol.access_token)
        .await
        .json()
        .await
        .unwrap();
    let carol_identity = text(&listed["items"][0], "id");
    let response = app
        .send_json(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/me/identities/{carol_identity}"),
            &carol.access_token,
            &json!({ "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.query_strings("SELECT type FROM audit_events WHERE type = 'identity_unlinked'")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn local_rules_apply_after_the_provider() {
    let (app, provider) = setup(&[]).await;
    // Two-factor: the exchange answers mfa_required; a code completes it.
    let (alice, alice_tokens) = app.signed_up("alice").await;
    let alice_at_corp = Account::verified("alice-sub", "alice@example.com");
    link(
        &app,
        &provider,
        &alice_tokens.access_token,
        Some(PASSWORD),
        &alice_at_corp,
    )
    .await;
    let enrolment = app.start_totp(&alice_tokens.access_token).await;
    let totp = totp(&text(&enrolment, "secret"));
    let now = unix_now();
    let response = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &alice_tokens.access_token,
            &json!({ "code": totp.generate(now) }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let code = login_code(&sign_in(&app, &provider, &alice_at_corp).await);
    let problem = assert_problem(exchange(&app, &code).await, 401, "mfa_required").await;
    let response = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({ "mfa_token": text(&problem, "mfa_token"), "code": totp.generate(now + 30) }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(app.me(&text(&tokens, "access_token")).await.id, alice.id);

    // Deactivated: refused at the callback, no login code.
    let bob_at_corp = Account::verified("bob-sub", "bob@example.com");
    let bob = tokens_for(&app, &provider, &bob_at_corp).await;
    let bob_id = app.me(&text(&bob, "access_token")).await.id;
    app.deactivate(&bob_id).await;
    refused(
        &sign_in(&app, &provider, &bob_at_corp).await,
        "account_disabled",
    );
}

#[tokio::test]
async fn sign_up_off_and_verified_email_required_are_kept() {
    let (app, provider) = setup(&[
        ("OIDC_CORP_SIGNUP", "false"),
        ("REQUIRE_VERIFIED_EMAIL", "true"),
    ])
    .await;
    refused(
        &sign_in(
            &app,
            &provider,
            &Account::verified("new", "new@example.com"),
        )
        .await,
        "signup_disabled",
    );
    assert_eq!(user_count(&app).await, 0);

    let (app, provider) = setup(&[("REQUIRE_VERIFIED_EMAIL", "true")]).await;
    let unverified = Account {
        email_verified: Some(false),
        ..Account::verified("u", "unverified@example.com")
    };
    let code = login_code(&sign_in(&app, &provider, &unverified).await);
    assert_problem(exchange(&app, &code).await, 403, "email_not_verified").await;
    let nameless = Account {
        email: None,
        ..Account::verified("n", "x@example.com")
    };
    refused(&sign_in(&app, &provider, &nameless).await, "email_required");
}

#[tokio::test]
async fn cookie_mode_and_a_flow_finished_on_another_instance() {
    let (app, provider) = setup(&[]).await;
    let other = app.sibling(&vars(&provider, &[])).await;
    provider.sign_in_as(&Account::verified("sub-c", "cookie@example.com"));
    // Started on one instance, back at the other, exchanged at the first.
    let started = start(&app).await;
    let back = at_provider(&app, &started.authorize_url).await;
    let code = login_code(&callback(&other, &back, Some(&started.cookie)).await);
    // Cookie mode without the CSRF header: refused, and the code is not spent.
    let body = json!({ "login_code": code.code, "session": "cookie" });
    let response = app.post_json("/api/v1/auth/oidc/exchange", &body).await;
    assert_problem(response, 403, "forbidden").await;
    let response = exchange_with(
        &app,
        &code,
        code.cookie.as_deref(),
        json!({ "session": "cookie" }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cookie.starts_with("__Host-securecrud_refresh="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens.get("refresh_token").is_none());
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
async fn a_redirect_uri_off_the_allowlist_is_refused_in_every_disguise() {
    let (app, _provider) = setup(&[]).await;
    for redirect_uri in [
        "https://evil.example.com/signed-in",
        "http://localhost:3001/signed-in",
        "http://localhost:3000/signed-in/extra",
        "http://localhost:3000/signed-in/",
        "http://localhost:3000/signed-in?next=https://evil.example.com",
        "http://evil@localhost:3000/signed-in",
        "http://localhost:3000@evil.example.com/signed-in",
        "http://LOCALHOST:3000/signed-in",
        "//evil.example.com/signed-in",
        "",
    ] {
        let response = app.get(&authorize_path(redirect_uri)).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(
            problem["errors"][0]["field"], "redirect_uri",
            "{redirect_uri}"
        );
    }
    assert_problem(
        app.get("/api/v1/auth/oidc/corp/authorize").await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.get(&authorize_path(APP).replace("/corp/", "/nope/"))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn forged_replayed_and_crossed_states_sign_nobody_in() {
    let (app, provider) = setup(&[]).await;
    provider.sign_in_as(&Account::verified("sub-s", "state@example.com"));
    // Forged: no app to go back to.
    for query in ["state=made-up&code=x", "code=x", ""] {
        let response = app
            .get(&format!("/api/v1/auth/oidc/corp/callback?{query}"))
            .await;
        assert_problem(response, 400, "bad_request").await;
    }
    // Replayed: the first use signs in, the second does not.
    let started = start(&app).await;
    let back = at_provider(&app, &started.authorize_url).await;
    login_code(&callback(&app, &back, Some(&started.cookie)).await);
    refused(
        &callback(&app, &back, Some(&started.cookie)).await,
        "invalid_state",
    );
    // From another browser (an attacker's flow sent to a victim: login CSRF), without the binding cookie
    // or with another one: refused, and the flow is spent.
    let attackers = start(&app).await;
    let back = at_provider(&app, &attackers.authorize_url).await;
    let victims = start(&app).await;
    refused(&callback(&app, &back, None).await, "invalid_state");
    let attackers = start(&app).await;
    let back = at_provider(&app, &attackers.authorize_url).await;
    refused(
        &callback(&app, &back, Some(&victims.cookie)).await,
        "invalid_state",
    );
    refused(
        &callback(&app, &back, Some(&attackers.cookie)).await,
        "invalid_state",
    );
    assert_eq!(
        audit_reasons(&app, "oidc_failed").await,
        [
            "invalid_state",
            "other_browser",
            "other_browser",
            "invalid_state"
        ]
    );
    // Crossed: the code of flow B with the state of flow A (PKCE and nonce are A's): the provider refuses.
    let browser = start(&app).await;
    let a = at_provider(&app, &browser.authorize_url).await;
    let other_browser = start(&app).await;
    let b = at_provider(&app, &other_browser.authorize_url).await;
    let param = |query: &str, name: &str| {
        url::form_urlencoded::parse(query.split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let crossed = format!(
        "/api/v1/auth/oidc/corp/callback?state={}&code={}",
        param(&a, "state"),
        param(&b, "code")
    );
    refused(
        &callback(&app, &crossed, Some(&browser.cookie)).await,
        "provider_error",
    );
    // The provider spent B's code on the refused exchange (as providers must): B fails too.
    refused(
        &callback(&app, &b, Some(&other_browser.cookie)).await,
        "provider_error",
    );
    // Expired: ten minutes later a state is refused.
    let late = start(&app).await;
    let back = at_provider(&app, &late.authorize_url).await;
    app.services
        .advance_clock(std::time::Duration::from_secs(601));
    refused(
        &callback(&app, &back, Some(&late.cookie)).await,
        "invalid_state",
    );
    assert_eq!(
        user_count(&app).await,
        1,
        "only the honest sign-ins made an account"
    );
}

#[tokio::test]
async fn every_bad_id_token_and_provider_failure_is_refused() {
    let (app, provider) = setup(&[]).await;
    let victim = Account::verified("sub-v", "victim@example.com");
    for (tamper, error) in [
        (Tamper::WrongNonce, "invalid_id_token"),
        (Tamper::WrongIssuer, "invalid_id_token"),
        (Tamper::WrongAudience, "invalid_id_token"),
        (Tamper::Expired, "invalid_id_token"),
        (Tamper::AlgNone, "invalid_id_token"),
        (Tamper::Hs256WithPublicKey, "invalid_id_token"),
        (Tamper::Hs256WithClientSecret, "invalid_id_token"),
        (Tamper::ForeignKey, "invalid_id_token"),
        (Tamper::RefuseCode, "provider_error"),
        (Tamper::Slow, "temporarily_unavailable"),
    ] {
        provider.tamper(tamper);
        let fragment = sign_in(&app, &provider, &victim).await;
        assert_eq!(
            fragment.get("error").map(String::as_str),
            Some(error),
            "{tamper:?}: {fragment:?}"
        );
        assert!(!fragment.contains_key("login_code"), "{tamper:?}");
    }
    provider.tamper(Tamper::None);
    provider.refuse_with(Some("access_denied"));
    let fragment = sign_in(&app, &provider, &victim).await;
    refused(&fragment, "access_denied");
    assert!(
        !fragment["error_description"].contains('<'),
        "the provider's text is not passed on"
    );
    provider.refuse_with(Some("<script>alert(1)</script>"));
    refused(&sign_in(&app, &provider, &victim).await, "provider_error");
    provider.refuse_with(None);
    assert_eq!(user_count(&app).await, 0, "nobody signed in");
    let reasons = audit_reasons(&app, "oidc_failed").await;
    assert_eq!(reasons.len(), 12, "{reasons:?}");
    assert_eq!(reasons[0], "invalid_id_token");
    // The honest provider still works afterwards.
    login_code(&sign_in(&app, &provider, &victim).await);
}

#[tokio::test]
async fn a_login_code_works_once_within_a_minute_however_many_try() {
    let (app, provider) = setup(&[]).await;
    let account = Account::verified("sub-l", "code@example.com");
    let code = login_code(&sign_in(&app, &provider, &account).await);
    assert_eq!(exchange(&app, &code).await.status(), 200);
    assert_problem(exchange(&app, &code).await, 400, "invalid_token").await;
    let made_up = Code {
        code: "made-up".to_owned(),
        cookie: code.cookie.clone(),
    };
    assert_problem(exchange(&app, &made_up).await, 400, "invalid_token").await;

    let code = login_code(&sign_in(&app, &provider, &account).await);
    app.services
        .advance_clock(std::time::Duration::from_secs(61));
    assert_problem(exchange(&app, &code).await, 400, "invalid_token").await;

    let code = login_code(&sign_in(&app, &provider, &account).await);
    let answers = join_all((0..8).map(|_| exchange(&app, &code))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 400]);
    assert_eq!(
        app.query_strings("SELECT type FROM audit_events WHERE type = 'oidc_login'")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn a_provider_that_is_down_leaves_the_rest_up_until_it_is_back() {
    // A port nobody listens on, taken and let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[
        ("OIDC_PROVIDERS", "corp"),
        ("OIDC_CORP_ISSUER", &issuer),
        ("OIDC_CORP_CLIENT_ID", securecrud_tests::oidc::CLIENT_ID),
        (
            "OIDC_CORP_CLIENT_SECRET",
            securecrud_tests::oidc::CLIENT_SECRET,
        ),
        ("OIDC_REDIRECT_ALLOWLIST", APP),
        ("OIDC_TIMEOUT_MS", "1500"),
    ])
    .await;
    assert_eq!(app.get("/health").await.status(), 200);
    let response = app.get(&authorize_path(APP)).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 503, "unavailable").await;
    let (_, tokens) = app.signed_up("still_works").await;
    assert_eq!(
        app.get_authed("/api/v1/users/me", &tokens.access_token)
            .await
            .status(),
        200
    );
    let providers: Value = app
        .get("/api/v1/auth/oidc/providers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(providers["items"][0]["name"], "corp");

    // The provider comes up: within a retry period (5 s), sign-ins work.
    let provider = TestProvider::start_on(port).await;
    provider.sign_in_as(&Account::verified("late", "late@example.com"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut answer = 503;
    while answer != 302 && std::time::Instant::now() < deadline {
        answer = app.get(&authorize_path(APP)).await.status().as_u16();
        if answer != 302 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(answer, 302, "the provider was discovered once it was back");
}

fn totp(secret: &str) -> totp_rs::TOTP {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
    .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_link_finished_in_someone_elses_browser_links_nothing() {
    let (app, provider) = setup(&[]).await;
    // Mallory starts a link to her account and sends the provider URL to Victor, who is signed in at the
    // provider: his browser comes back with a link code, which only Mallory's account could confirm, and
    // Mallory never sees it (it is in Victor's address bar).
    let (_, mallory) = app.signed_up("mallory").await;
    let (_, victor) = app.signed_up("victor").await;
    let victor_at_corp = Account::verified("victor-sub", "victor@example.com");
    let fragment = link_flow(
        &app,
        &provider,
        &mallory.access_token,
        Some(PASSWORD),
        &victor_at_corp,
    )
    .await;
    // Victor's app, signed in as Victor, cannot confirm it either.
    assert_problem(
        confirm(&app, &victor.access_token, &fragment).await,
        400,
        "invalid_token",
    )
    .await;
    assert!(
        app.query_strings("SELECT subject FROM oidc_identities")
            .await
            .is_empty()
    );
    // A link whose session ended before the confirmation (a password change, a logout) is not made.
    let fragment = link_flow(
        &app,
        &provider,
        &mallory.access_token,
        Some(PASSWORD),
        &Account::verified("mallory-sub", "mallory@example.com"),
    )
    .await;
    app.logout(&mallory).await;
    assert_problem(
        confirm(&app, &mallory.access_token, &fragment).await,
        401,
        "invalid_token",
    )
    .await;
    // And a link code is good for 60 seconds.
    let (_, alice) = app.signed_up("alice").await;
    let alice_at_corp = Account::verified("alice-sub", "alice@example.com");
    let fragment = link_flow(
        &app,
        &provider,
        &alice.access_token,
        Some(PASSWORD),
        &alice_at_corp,
    )
    .await;
    app.services
        .advance_clock(std::time::Duration::from_secs(61));
    assert_problem(
        confirm(&app, &alice.access_token, &fragment).await,
        400,
        "invalid_token",
    )
    .await;
    assert!(
        app.query_strings("SELECT subject FROM oidc_identities")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn whoever_signed_up_first_with_an_unproven_email_loses_the_account_to_its_owner() {
    let (app, provider) = setup(&[]).await;
    // Mallory signs up through a provider that did not verify the address she gave: victim@example.com.
    let squatter = Account {
        email_verified: Some(false),
        ..Account::verified("mallory-sub", "victim@example.com")
    };
    let tokens = tokens_for(&app, &provider, &squatter).await;
    let access = text(&tokens, "access_token");
    assert!(!app.me(&access).await.email_verified);
    // She cannot add a way in that would outlive the owner's reset (a second factor, a password, a link):
    // her session stands in for no password while the address is not verified.
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/api/v1/users/me/mfa/totp",
            json!({}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/users/me/password",
            json!({ "new_password": "a squatter's passphrase" }),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/users/me/identities/corp",
            json!({ "redirect_uri": APP }),
        ),
    ] {
        let response = app.send_json(method, path, &access, &body).await;
        assert_problem(response, 403, "email_not_verified").await;
    }
    // The address's owner resets the password (proving the mailbox): Mallory's identity is unlinked.
    let response = app
        .post_json(
            "/api/v1/auth/password-reset/request",
            &json!({ "email": "victim@example.com" }),
        )
        .await;
    assert_eq!(response.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let token = loop {
        let found = app
            .mailed()
            .iter()
            .find_map(|m| securecrud_tests::smtp::link_token(m, "/reset-password?token="));
        if let Some(token) = found {
            break token;
        }
        assert!(std::time::Instant::now() < deadline, "the reset mail");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let response = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": token, "new_password": "the owner's own passphrase" }),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert!(
        app.query_strings("SELECT subject FROM oidc_identities")
            .await
            .is_empty()
    );
    assert_eq!(
        audit_reasons(&app, "identity_unlinked").await,
        ["password_reset"]
    );

    // Mallory's next sign-in finds no identity, and the email is an account's: refused.
    refused(&sign_in(&app, &provider, &squatter).await, "account_exists");
    assert_eq!(
        app.login("victim@example.com", "the owner's own passphrase")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_account_without_a_password_reauthenticates_with_a_fresh_session() {
    let (app, provider) = setup(&[]).await;
    let account = Account::verified("np-sub", "nopass@example.com");
    let access = text(&tokens_for(&app, &provider, &account).await, "access_token");
    // Where a password is asked, a session opened in the last ten minutes stands in for it.
    let response = app
        .post_json_authed("/api/v1/users/me/mfa/totp", &access, &json!({}))
        .await;
    assert_eq!(
        response.status(),
        200,
        "TOTP enrolment from a fresh session"
    );
    app.services
        .advance_clock(std::time::Duration::from_secs(11 * 60));
    let response = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &access,
            &json!({ "email": "elsewhere@example.com" }),
        )
        .await;
    assert_problem(response, 401, "reauthentication_required").await;
    let response = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/users/me",
            &access,
            &json!({}),
        )
        .await;
    assert_problem(response, 401, "reauthentication_required").await;
    // Signed in again, the user sets a first password without a current one; password logins then work.
    let access = text(&tokens_for(&app, &provider, &account).await, "access_token");
    let response = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &access,
            &json!({ "new_password": "a first passphrase of mine" }),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.login("nopass", "a first passphrase of mine")
            .await
            .status(),
        200
    );
    // From now on the password is asked for, as of any account.
    let response = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &access,
            &json!({ "new_password": "yet another passphrase" }),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "current_password");
}

#[tokio::test]
async fn a_login_code_carried_into_another_app_or_browser_signs_nobody_in() {
    let (app, provider) = setup(&[]).await;
    // Mallory signs in with her own account and carries the code into Victor's app (`https://app/#login_code=…`):
    // Victor's browser has no binding cookie, or its own.
    let mallory = Account::verified("mallory-sub", "mallory@example.com");
    let code = login_code(&sign_in(&app, &provider, &mallory).await);
    assert_problem(
        exchange_with(&app, &code, None, json!({})).await,
        400,
        "invalid_token",
    )
    .await;
    let code = login_code(&sign_in(&app, &provider, &mallory).await);
    let victors = start(&app).await;
    assert_problem(
        exchange_with(&app, &code, Some(&victors.cookie), json!({})).await,
        400,
        "invalid_token",
    )
    .await;
    // The code is spent by the refusal.
    assert_problem(exchange(&app, &code).await, 400, "invalid_token").await;

    // An app on another site (no cookie of the api reaches it) proves itself with its own PKCE pair.
    let verifier = "a-verifier-the-app-keeps-to-itself-0123456789abcdef";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
    };
    let with_challenge =
        |challenge: &str| format!("{}&code_challenge={challenge}", authorize_path(APP));
    let bad = app.get(&with_challenge("short")).await;
    let problem = assert_problem(bad, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "code_challenge");
    let signed_in = |challenge: String| {
        let app = &app;
        let provider = &provider;
        async move {
            provider.sign_in_as(&Account::verified("far-sub", "far@example.com"));
            // The browser goes to the api and back (its cookie rides along on those navigations); the
            // exchange is the app's own request, from its site: no cookie of the api.
            let started = start_at(app, &with_challenge(&challenge)).await;
            let back = at_provider(app, &started.authorize_url).await;
            login_code(&callback(app, &back, Some(&started.cookie)).await)
        }
    };
    let code = signed_in(challenge.clone()).await;
    let wrong = exchange_with(
        &app,
        &code,
        None,
        json!({ "code_verifier": "another-verifier-of-someone-else-0123456789abcdef" }),
    )
    .await;
    assert_problem(wrong, 400, "invalid_token").await;
    let code = signed_in(challenge.clone()).await;
    // With a challenge, even the browser's own cookie does not stand in for the verifier.
    assert_problem(
        exchange_with(&app, &code, code.cookie.as_deref(), json!({})).await,
        400,
        "invalid_token",
    )
    .await;
    let code = signed_in(challenge).await;
    let response = exchange_with(&app, &code, None, json!({ "code_verifier": verifier })).await;
    assert_eq!(response.status(), 200);
}
