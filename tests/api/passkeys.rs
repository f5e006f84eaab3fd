//! Passkeys (WebAuthn): every ceremony driven by a software authenticator and WebAuthn client (1Password's
//! `passkey` crates), which build the client data, sign with their own keys and encode the JSON a browser's
//! `credential.toJSON()` gives, independently of the server's relying-party library. The api runs as
//! `https://app.example.com` with the RP ID `example.com`.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use futures_util::future::join_all;
use passkey::{
    authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod},
    client::{Client, DefaultClientData},
    crypto::AvailableBackend,
};
use passkey_types::{
    Passkey,
    ctap2::{Aaguid, Ctap2Error},
    webauthn::{
        CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialCreationOptions,
        PublicKeyCredentialRequestOptions,
    },
};
use public_suffix::PublicSuffixList;
use securecrud_tests::{PASSWORD, TestApp, Tokens, assert_problem, error_fields, text};
use serde_json::{Value, json};
use url::Url;

/// The api's public origin in these tests, and the RP ID passkeys are bound to.
const ORIGIN: &str = "https://app.example.com";
const RP_ID: &str = "example.com";

/// An app whose passkeys belong to `example.com`, served to browsers as `https://app.example.com`.
async fn app() -> TestApp {
    TestApp::spawn_with(&[("PUBLIC_BASE_URL", ORIGIN), ("WEBAUTHN_RP_ID", RP_ID)]).await
}

/// The person holding the device: present, and verified (PIN or biometric) unless told otherwise.
#[derive(Clone)]
struct Person {
    verifies: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl UserValidationMethod for Person {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: self.verifies.load(Ordering::SeqCst),
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// A device with one discoverable credential slot (a phone's passkey, say), and the browser it is used from.
struct Device {
    client: Client<Option<Passkey>, Person, AvailableBackend, PublicSuffixList, ()>,
    person: Person,
    origin: Url,
}

impl Device {
    fn new() -> Self {
        Self::at(ORIGIN)
    }

    /// A device whose browser is on `origin`.
    fn at(origin: &str) -> Self {
        let person = Person {
            verifies: Arc::new(AtomicBool::new(true)),
        };
        let mut authenticator =
            Authenticator::new(Aaguid::new_empty(), None, person.clone(), AvailableBackend);
        authenticator.set_make_credentials_with_signature_counter(true);
        Self {
            client: Client::new(authenticator),
            person,
            origin: Url::parse(origin).expect("origin"),
        }
    }

    /// Without user verification from now on (presence only: a touch, no PIN). The authenticator refuses to
    /// skip a verification the options require, so its client (a modified one, or a browser bug) asks for
    /// none: what reaches the api is then a credential without the UV flag.
    fn without_verification(&self) {
        self.person.verifies.store(false, Ordering::SeqCst);
    }

    fn verifies(&self) -> bool {
        self.person.verifies.load(Ordering::SeqCst)
    }

    /// `navigator.credentials.create` with the api's `publicKey` options: `credential.toJSON()`.
    async fn create(&mut self, public_key: &Value) -> Value {
        let mut public_key = public_key.clone();
        if !self.verifies() {
            public_key["authenticatorSelection"]["userVerification"] = json!("discouraged");
        }
        let public_key: PublicKeyCredentialCreationOptions =
            serde_json::from_value(public_key).expect("creation options a client reads");
        let created = self
            .client
            .register(
                &self.origin,
                CredentialCreationOptions { public_key },
                DefaultClientData,
            )
            .await
            .expect("the authenticator makes a credential");
        serde_json::to_value(created).expect("credential json")
    }

    /// `navigator.credentials.get` with the api's `publicKey` options: `credential.toJSON()`.
    async fn get(&mut self, public_key: &Value) -> Value {
        let mut public_key = public_key.clone();
        if !self.verifies() {
            public_key["userVerification"] = json!("discouraged");
        }
        let public_key: PublicKeyCredentialRequestOptions =
            serde_json::from_value(public_key).expect("request options a client reads");
        let asserted = self
            .client
            .authenticate(
                &self.origin,
                CredentialRequestOptions { public_key },
                DefaultClientData,
            )
            .await
            .expect("the authenticator signs");
        serde_json::to_value(asserted).expect("assertion json")
    }

    /// The passkey this device holds.
    fn passkey(&mut self) -> &mut Passkey {
        self.client
            .authenticator_mut()
            .store_mut()
            .as_mut()
            .expect("a passkey was made")
    }
}

/// `POST /users/me/passkeys/options` with the password: the options (with `registration_id`).
async fn registration_options(app: &TestApp, tokens: &Tokens) -> Value {
    registration_options_with(app, tokens, json!({"current_password": PASSWORD})).await
}

/// `POST /users/me/passkeys/options` with `body`, which must succeed.
async fn registration_options_with(app: &TestApp, tokens: &Tokens, body: Value) -> Value {
    let response = app
        .post_json_authed(
            "/api/v1/users/me/passkeys/options",
            &tokens.access_token,
            &body,
        )
        .await;
    assert_eq!(response.status(), 200, "registration options");
    response.json().await.expect("options json")
}

/// Registers a passkey of `device` for the signed-in user (the first: no second factor is asked): the `201`
/// body.
async fn register(app: &TestApp, tokens: &Tokens, device: &mut Device) -> Value {
    register_with(app, tokens, device, json!({"current_password": PASSWORD})).await
}

/// Registers a passkey of `device`, the options asked for with `body`: the `201` body.
async fn register_with(app: &TestApp, tokens: &Tokens, device: &mut Device, body: Value) -> Value {
    let options = registration_options_with(app, tokens, body).await;
    let credential = device.create(&options["publicKey"]).await;
    let response = app
        .post_json_authed(
            "/api/v1/users/me/passkeys",
            &tokens.access_token,
            &json!({"registration_id": options["registration_id"], "credential": credential}),
        )
        .await;
    assert_eq!(response.status(), 201, "register a passkey");
    response.json().await.expect("passkey json")
}

/// `POST /auth/passkey/options`: `{challenge_id, publicKey}`.
async fn login_options(app: &TestApp) -> Value {
    let response = app
        .post_json("/api/v1/auth/passkey/options", &json!({}))
        .await;
    assert_eq!(response.status(), 200, "login options");
    response.json().await.expect("options json")
}

async fn passkey_login(
    app: &TestApp,
    challenge_id: &Value,
    credential: &Value,
) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/passkey/verify",
        &json!({"challenge_id": challenge_id, "credential": credential}),
    )
    .await
}

/// A whole passwordless login with `device`: the answer to the assertion.
async fn log_in_with(app: &TestApp, device: &mut Device) -> reqwest::Response {
    let options = login_options(app).await;
    let assertion = device.get(&options["publicKey"]).await;
    passkey_login(app, &options["challenge_id"], &assertion).await
}

/// A user with a passkey on `device`, and the tokens of the session that registered it.
async fn user_with_passkey(app: &TestApp, name: &str, device: &mut Device) -> (String, Tokens) {
    let (user, tokens) = app.signed_up(name).await;
    register(app, &tokens, device).await;
    (user.id, tokens)
}

/// The reason of the latest refused passkey (`passkey_failed`), as the audit trail has it.
async fn last_refusal(app: &TestApp) -> String {
    let events = audit(app, "passkey_failed", "").await;
    text(&events[0]["details"], "reason")
}

/// Refused with `401 invalid_credentials` for `reason`.
async fn assert_refused(app: &TestApp, response: reqwest::Response, reason: &str) {
    // Every refusal answers the same, whatever the reason: the reason is only in the audit trail.
    assert_problem(response, 401, "invalid_credentials").await;
    assert_eq!(last_refusal(app).await, reason);
}

/// The audit events of `kind` (about `user`, unless empty), newest first, as an admin reads them.
async fn audit(app: &TestApp, kind: &str, user: &str) -> Vec<Value> {
    let signed_in = app.login("auditor", PASSWORD).await;
    let admin = if signed_in.status() == 200 {
        signed_in.json::<Tokens>().await.unwrap().access_token
    } else {
        app.admin_token("auditor").await
    };
    let response = app
        .get_authed(
            &if user.is_empty() {
                format!("/api/v1/admin/audit?type={kind}")
            } else {
                format!("/api/v1/admin/audit?type={kind}&user_id={user}")
            },
            &admin,
        )
        .await;
    assert_eq!(response.status(), 200, "audit");
    let page: Value = response.json().await.expect("audit json");
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_registered_passkey_signs_in_with_nothing_else() {
    let app = app().await;
    let (user, tokens) = app.signed_up("pia").await;
    let mut device = Device::new();

    let options = registration_options(&app, &tokens).await;
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], RP_ID);
    assert_eq!(public_key["attestation"], "none");
    assert_eq!(
        public_key["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(
        public_key["authenticatorSelection"]["residentKey"],
        "required"
    );
    let credential = device.create(public_key).await;
    let response = app
        .post_json_authed(
            "/api/v1/users/me/passkeys",
            &tokens.access_token,
            &json!({"registration_id": options["registration_id"], "credential": credential, "name": " Phone "}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let registered: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!(
            "/api/v1/users/me/passkeys/{}",
            registered["id"].as_str().unwrap()
        )
    );
    assert_eq!(registered["name"], "Phone");
    assert_eq!(registered["last_used_at"], Value::Null);
    assert_eq!(
        registered["recovery_codes"].as_array().map(Vec::len),
        Some(10),
        "the first second factor brings recovery codes: {registered}"
    );
    let me: Value = app
        .get_authed("/api/v1/users/me", &tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa_enabled"], true);
    assert_eq!(me["passkeys"], 1);

    // Signed out, with no username typed: the options name no credential.
    app.logout(&tokens).await;
    let options = login_options(&app).await;
    assert_eq!(options["publicKey"]["rpId"], RP_ID);
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .map_or(0, Vec::len),
        0
    );
    let assertion = device.get(&options["publicKey"]).await;
    let response = passkey_login(&app, &options["challenge_id"], &assertion).await;
    assert_eq!(response.status(), 200);
    let signed_in: Tokens = response.json().await.unwrap();
    assert_eq!(app.me(&signed_in.access_token).await.id, user.id);

    let listed: Value = app
        .get_authed("/api/v1/users/me/passkeys", &signed_in.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert!(listed["items"][0]["last_used_at"].is_string(), "{listed}");
    assert_eq!(audit(&app, "passkey_added", &user.id).await.len(), 1);
    assert_eq!(audit(&app, "passkey_login", &user.id).await.len(), 1);
}

#[tokio::test]
async fn a_passkey_completes_the_second_step_of_a_password_login() {
    let app = app().await;
    let mut device = Device::new();
    let (user, _) = user_with_passkey(&app, "sam", &mut device).await;

    let challenge = assert_problem(app.login("sam", PASSWORD).await, 401, "mfa_required").await;
    assert_eq!(
        challenge["mfa_methods"],
        json!(["passkey", "recovery_code"])
    );
    let mfa_token = text(&challenge, "mfa_token");
    let response = app
        .post_json(
            "/api/v1/auth/mfa/passkey/options",
            &json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let options: Value = response.json().await.unwrap();
    assert_eq!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the account's passkey: {options}"
    );
    let assertion = device.get(&options["publicKey"]).await;
    let response = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({"mfa_token": mfa_token, "passkey": assertion}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Tokens = response.json().await.unwrap();
    assert_eq!(app.me(&tokens.access_token).await.id, user);

    // The mfa_token was spent.
    let again = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({"mfa_token": mfa_token, "passkey": assertion}),
        )
        .await;
    assert_problem(again, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_recovery_code_stands_in_for_a_passkey_and_code_and_passkey_together_are_refused() {
    let app = app().await;
    let mut device = Device::new();
    let (_, tokens) = app.signed_up("rhea").await;
    let registered = register(&app, &tokens, &mut device).await;
    let code = registered["recovery_codes"][0].as_str().unwrap().to_owned();

    let challenge = assert_problem(app.login("rhea", PASSWORD).await, 401, "mfa_required").await;
    let mfa_token = text(&challenge, "mfa_token");
    let both = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({"mfa_token": mfa_token, "code": code, "passkey": {}}),
        )
        .await;
    let problem = assert_problem(both, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["passkey"]);
    // A TOTP-looking code cannot match: the account has no TOTP.
    let totp = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({"mfa_token": mfa_token, "code": "123456"}),
        )
        .await;
    assert_problem(totp, 401, "invalid_credentials").await;
    let response = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({"mfa_token": mfa_token, "code": code}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn passkeys_are_renamed_and_deleting_the_last_turns_two_factor_off() {
    let app = app().await;
    let mut phone = Device::new();
    let mut laptop = Device::new();
    let (_, tokens) = app.signed_up("ravi").await;
    let first = register(&app, &tokens, &mut phone).await;
    let codes = first["recovery_codes"].clone();
    // With two-factor on, another passkey takes a second factor besides the password: a stolen session and
    // password must not attach the thief's passkey.
    let without = app
        .post_json_authed(
            "/api/v1/users/me/passkeys/options",
            &tokens.access_token,
            &json!({"current_password": PASSWORD}),
        )
        .await;
    assert_problem(without, 401, "mfa_required").await;
    // Registering the first one ended the other sessions, not this one.
    let second = register_with(
        &app,
        &tokens,
        &mut laptop,
        json!({"current_password": PASSWORD, "code": codes[0]}),
    )
    .await;
    assert!(second.get("recovery_codes").is_none(), "{second}");
    // TOTP cannot be added beside them with the password alone either.
    let totp = app
        .post_json_authed(
            "/api/v1/users/me/mfa/totp",
            &tokens.access_token,
            &json!({"current_password": PASSWORD}),
        )
        .await;
    assert_problem(totp, 409, "conflict").await;
    let first_id = text(&first, "id");

    let path = format!("/api/v1/users/me/passkeys/{first_id}");
    let renamed = app
        .send_json(
            reqwest::Method::PATCH,
            &path,
            &tokens.access_token,
            &json!({"name": "Work phone"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "Work phone");
    for bad in [
        json!({"name": "  "}),
        json!({"name": "x".repeat(65)}),
        json!({}),
    ] {
        let response = app
            .send_json(reqwest::Method::PATCH, &path, &tokens.access_token, &bad)
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), ["name"], "{bad}");
    }
    let other = format!("/api/v1/users/me/passkeys/{}", uuid::Uuid::now_v7());
    let missing = app
        .send_json(
            reqwest::Method::PATCH,
            &other,
            &tokens.access_token,
            &json!({"name": "x"}),
        )
        .await;
    assert_problem(missing, 404, "not_found").await;

    let wrong = app
        .send_json(
            reqwest::Method::DELETE,
            &path,
            &tokens.access_token,
            &json!({"current_password": "wrong password"}),
        )
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    // Deleting takes a second factor too: without one, nothing is removed.
    let path = format!("/api/v1/users/me/passkeys/{first_id}");
    let without = app
        .send_json(
            reqwest::Method::DELETE,
            &path,
            &tokens.access_token,
            &json!({"current_password": PASSWORD}),
        )
        .await;
    assert_problem(without, 401, "mfa_required").await;
    // A recovery code for the first; the passkey itself for the last.
    let deleted = app
        .send_json(
            reqwest::Method::DELETE,
            &path,
            &tokens.access_token,
            &json!({"current_password": PASSWORD, "code": codes[1]}),
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let options = login_options(&app).await;
    let assertion = laptop.get(&options["publicKey"]).await;
    let path = format!("/api/v1/users/me/passkeys/{}", text(&second, "id"));
    let deleted = app
        .send_json(
            reqwest::Method::DELETE,
            &path,
            &tokens.access_token,
            &json!({"current_password": PASSWORD, "passkey": assertion}),
        )
        .await;
    assert_eq!(deleted.status(), 204);

    assert!(!app.me(&tokens.access_token).await.mfa_enabled);
    // A password alone signs in again, and the deleted passkey does not.
    assert_eq!(app.login("ravi", PASSWORD).await.status(), 200);
    assert_problem(
        log_in_with(&app, &mut phone).await,
        401,
        "invalid_credentials",
    )
    .await;
}

#[tokio::test]
async fn an_admin_mfa_reset_removes_every_passkey() {
    let app = app().await;
    let mut device = Device::new();
    let (user, _) = user_with_passkey(&app, "ali", &mut device).await;
    let admin = app.admin_token("boss").await;
    let response = app
        .post_json_authed(
            &format!("/api/v1/admin/users/{user}/mfa/reset"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_problem(
        log_in_with(&app, &mut device).await,
        401,
        "invalid_credentials",
    )
    .await;
    let tokens = app.tokens("ali").await;
    let me: Value = app
        .get_authed("/api/v1/users/me", &tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa_enabled"], false);
    assert_eq!(me["passkeys"], 0);
}

#[tokio::test]
async fn a_registration_that_does_not_verify_is_refused_naming_the_credential() {
    let app = app().await;
    let (_, tokens) = app.signed_up("uma").await;
    // A page of a sibling site (an origin the api does not accept), a touch without user verification,
    // and options whose RP ID was changed to one the browser allows on this origin but the api does not
    // use.
    let mut elsewhere = Device::at("https://evil.example.com");
    let mut untouched = Device::new();
    untouched.without_verification();
    let mut renamed_rp = Device::new();
    let cases = [
        (&mut elsewhere, None, "wrong_origin"),
        (&mut untouched, None, "user_not_verified"),
        (&mut renamed_rp, Some("app.example.com"), "wrong_rp_id"),
    ];
    for (device, rp_id, reason) in cases {
        let options = registration_options(&app, &tokens).await;
        let mut public_key = options["publicKey"].clone();
        if let Some(rp_id) = rp_id {
            public_key["rp"]["id"] = json!(rp_id);
        }
        let credential = device.create(&public_key).await;
        let response = app
            .post_json_authed(
                "/api/v1/users/me/passkeys",
                &tokens.access_token,
                &json!({"registration_id": options["registration_id"], "credential": credential}),
            )
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), ["credential"]);
        assert_eq!(last_refusal(&app).await, reason);
        // The ceremony is spent: the same id works no more.
        let again = app
            .post_json_authed(
                "/api/v1/users/me/passkeys",
                &tokens.access_token,
                &json!({"registration_id": options["registration_id"], "credential": credential}),
            )
            .await;
        assert_problem(again, 400, "invalid_token").await;
    }
    let malformed = app
        .post_json_authed(
            "/api/v1/users/me/passkeys",
            &tokens.access_token,
            &json!({"registration_id": "x", "credential": {"id": 1}}),
        )
        .await;
    let problem = assert_problem(malformed, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["credential"]);
    let wrong_password = app
        .post_json_authed(
            "/api/v1/users/me/passkeys/options",
            &tokens.access_token,
            &json!({"current_password": "not my password"}),
        )
        .await;
    assert_problem(wrong_password, 401, "invalid_credentials").await;
    assert!(!app.me(&tokens.access_token).await.mfa_enabled);
}

#[tokio::test]
async fn assertions_that_do_not_verify_issue_nothing() {
    let app = app().await;
    let mut device = Device::new();
    let (user, _) = user_with_passkey(&app, "zed", &mut device).await;

    // A wrong origin: the passkey used from a page of a sibling site the api does not accept (a browser
    // lets any page of `example.com` ask for it).
    device.origin = Url::parse("https://other.example.com").unwrap();
    assert_refused(&app, log_in_with(&app, &mut device).await, "wrong_origin").await;
    device.origin = Url::parse(ORIGIN).unwrap();

    // No user verification.
    device.without_verification();
    assert_refused(
        &app,
        log_in_with(&app, &mut device).await,
        "user_not_verified",
    )
    .await;
    device.person.verifies.store(true, Ordering::SeqCst);

    // An unknown credential: a device never registered here.
    let mut stranger = Device::new();
    let (_, other) = app.signed_up("stranger").await;
    let options = registration_options(&app, &other).await;
    stranger.create(&options["publicKey"]).await;
    assert_refused(
        &app,
        log_in_with(&app, &mut stranger).await,
        "unknown_credential",
    )
    .await;

    // Still works when everything is right; every refusal was recorded with its reason.
    assert_eq!(log_in_with(&app, &mut device).await.status(), 200);
    let reasons: Vec<String> = audit(&app, "passkey_failed", &user)
        .await
        .iter()
        .map(|event| text(&event["details"], "reason"))
        .collect();
    assert!(
        reasons.contains(&"user_not_verified".to_owned()),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_wrong_rp_id_is_refused() {
    let app = app().await;
    let mut device = Device::new();
    user_with_passkey(&app, "rio", &mut device).await;
    // The options say `app.example.com` (a name the browser accepts on this origin), but the passkey
    // is bound to `example.com`: the signed RP ID hash does not match.
    let options = login_options(&app).await;
    let mut public_key = options["publicKey"].clone();
    public_key["rpId"] = json!("app.example.com");
    let assertion = device.get(&public_key).await;
    let response = passkey_login(&app, &options["challenge_id"], &assertion).await;
    assert_refused(&app, response, "wrong_rp_id").await;
}

#[tokio::test]
async fn a_challenge_works_once_and_for_five_minutes() {
    let app = app().await;
    let mut device = Device::new();
    user_with_passkey(&app, "kai", &mut device).await;

    let options = login_options(&app).await;
    let assertion = device.get(&options["publicKey"]).await;
    assert_eq!(
        passkey_login(&app, &options["challenge_id"], &assertion)
            .await
            .status(),
        200
    );
    // Replayed with its own challenge: used.
    assert_problem(
        passkey_login(&app, &options["challenge_id"], &assertion).await,
        400,
        "invalid_token",
    )
    .await;
    // Replayed against a fresh challenge: it signed another one.
    let fresh = login_options(&app).await;
    let response = passkey_login(&app, &fresh["challenge_id"], &assertion).await;
    assert_refused(&app, response, "wrong_challenge").await;

    // Expired.
    let options = login_options(&app).await;
    let assertion = device.get(&options["publicKey"]).await;
    app.services
        .database()
        .clock()
        .advance(std::time::Duration::from_secs(301));
    assert_problem(
        passkey_login(&app, &options["challenge_id"], &assertion).await,
        400,
        "invalid_token",
    )
    .await;
    assert_problem(
        passkey_login(&app, &json!("made-up"), &assertion).await,
        400,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn concurrent_verifies_of_one_challenge_open_one_session() {
    let app = app().await;
    let mut device = Device::new();
    let (user, tokens) = user_with_passkey(&app, "ada", &mut device).await;
    app.logout(&tokens).await;
    let options = login_options(&app).await;
    let assertion = device.get(&options["publicKey"]).await;
    let answers =
        join_all((0..8).map(|_| passkey_login(&app, &options["challenge_id"], &assertion))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    assert_eq!(audit(&app, "passkey_login", &user).await.len(), 1);
}

#[tokio::test]
async fn a_signature_counter_that_went_backwards_is_refused() {
    let app = app().await;
    let mut device = Device::new();
    user_with_passkey(&app, "cloe", &mut device).await;
    assert_eq!(log_in_with(&app, &mut device).await.status(), 200);
    // A clone of the key, copied before the last use: its counter is behind the one the api saw.
    let counter = device.passkey().counter.expect("the authenticator counts");
    device.passkey().counter = Some(counter - 1);
    assert_refused(
        &app,
        log_in_with(&app, &mut device).await,
        "counter_went_backwards",
    )
    .await;
}

#[tokio::test]
async fn another_users_passkey_cannot_complete_a_second_step() {
    let app = app().await;
    let mut mallory_device = Device::new();
    let mut bob_device = Device::new();
    user_with_passkey(&app, "mallory", &mut mallory_device).await;
    user_with_passkey(&app, "bob", &mut bob_device).await;
    // Mallory knows Bob's password, and signs Bob's challenge with her own passkey.
    let challenge = assert_problem(app.login("bob", PASSWORD).await, 401, "mfa_required").await;
    let mfa_token = text(&challenge, "mfa_token");
    let options: Value = app
        .post_json(
            "/api/v1/auth/mfa/passkey/options",
            &json!({"mfa_token": mfa_token}),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut public_key = options["publicKey"].clone();
    public_key["allowCredentials"] = json!([]);
    let assertion = mallory_device.get(&public_key).await;
    let response = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({"mfa_token": mfa_token, "passkey": assertion}),
        )
        .await;
    assert_refused(&app, response, "credential_not_allowed").await;
    // The challenge is spent, the mfa_token is not: Bob can still finish with new options.
    let options: Value = app
        .post_json(
            "/api/v1/auth/mfa/passkey/options",
            &json!({"mfa_token": mfa_token}),
        )
        .await
        .json()
        .await
        .unwrap();
    let assertion = bob_device.get(&options["publicKey"]).await;
    let response = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({"mfa_token": mfa_token, "passkey": assertion}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_deactivated_account_cannot_sign_in_with_its_passkey() {
    let app = app().await;
    let mut device = Device::new();
    let (user, _) = user_with_passkey(&app, "dee", &mut device).await;
    app.deactivate(&user).await;
    assert_problem(log_in_with(&app, &mut device).await, 403, "forbidden").await;
}

#[tokio::test]
async fn failed_passwords_do_not_lock_a_passkey_user_out() {
    let app = TestApp::spawn_with(&[
        ("PUBLIC_BASE_URL", ORIGIN),
        ("WEBAUTHN_RP_ID", RP_ID),
        ("LOGIN_MAX_FAILURES", "3"),
    ])
    .await;
    let mut device = Device::new();
    user_with_passkey(&app, "lou", &mut device).await;
    for _ in 0..3 {
        app.login("lou", "a guess").await;
    }
    assert_problem(app.login("lou", PASSWORD).await, 429, "rate_limited").await;
    assert_eq!(log_in_with(&app, &mut device).await.status(), 200);
}

#[tokio::test]
async fn passkey_login_sets_the_cookie_session_with_the_csrf_header() {
    let app = app().await;
    let mut device = Device::new();
    user_with_passkey(&app, "coco", &mut device).await;
    let options = login_options(&app).await;
    let assertion = device.get(&options["publicKey"]).await;
    let body = json!({"challenge_id": options["challenge_id"], "credential": assertion, "session": "cookie"});
    let without_header = app.post_json("/api/v1/auth/passkey/verify", &body).await;
    assert_problem(without_header, 403, "forbidden").await;
    let options = login_options(&app).await;
    let assertion = device.get(&options["publicKey"]).await;
    let body = json!({"challenge_id": options["challenge_id"], "credential": assertion, "session": "cookie"});
    let response = app
        .client
        .post(app.url("/api/v1/auth/passkey/verify"))
        .header("X-Requested-With", "securecrud")
        .header("Origin", ORIGIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-securecrud_refresh="), "{cookie}");
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}

#[tokio::test]
async fn a_passkey_is_the_second_factor_of_an_email_change_and_of_deleting_the_account() {
    let app = app().await;
    let mut device = Device::new();
    let mut stranger = Device::new();
    let (_, tokens) = app.signed_up("eve").await;
    register(&app, &tokens, &mut device).await;
    let (_, other) = app.signed_up("other").await;
    register(&app, &other, &mut stranger).await;

    let change = json!({"email": "eve2@example.com", "current_password": PASSWORD});
    let without = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &tokens.access_token,
            &change,
        )
        .await;
    assert_problem(without, 401, "mfa_required").await;
    // Another user's passkey is no second factor of this account.
    let options = login_options(&app).await;
    let mut with_other = change.clone();
    with_other["passkey"] = stranger.get(&options["publicKey"]).await;
    let refused = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &tokens.access_token,
            &with_other,
        )
        .await;
    assert_refused(&app, refused, "credential_of_another_user").await;

    let options = login_options(&app).await;
    let mut with_passkey = change.clone();
    with_passkey["passkey"] = device.get(&options["publicKey"]).await;
    let changed = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &tokens.access_token,
            &with_passkey,
        )
        .await;
    assert_eq!(changed.status(), 200);
    // The challenge it signed is spent.
    let replayed = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &tokens.access_token,
            &with_passkey,
        )
        .await;
    assert_problem(replayed, 400, "invalid_token").await;

    let options = login_options(&app).await;
    let assertion = device.get(&options["publicKey"]).await;
    let deleted = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/users/me",
            &tokens.access_token,
            &json!({"password": PASSWORD, "passkey": assertion}),
        )
        .await;
    assert_eq!(deleted.status(), 204);
    assert_problem(
        log_in_with(&app, &mut device).await,
        401,
        "invalid_credentials",
    )
    .await;
}

#[tokio::test]
async fn turning_totp_off_leaves_passkeys_and_two_factor_on() {
    let app = app().await;
    let mut device = Device::new();
    let (_, tokens) = app.signed_up("tess").await;
    let registered = register(&app, &tokens, &mut device).await;
    // No TOTP to turn off: the passkey stays (it is removed on its own, with a second factor).
    let off = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/users/me/mfa",
            &tokens.access_token,
            &json!({"current_password": PASSWORD, "code": registered["recovery_codes"][0]}),
        )
        .await;
    assert_problem(off, 409, "conflict").await;
    assert!(app.me(&tokens.access_token).await.mfa_enabled);
    assert_eq!(log_in_with(&app, &mut device).await.status(), 200);
}

#[tokio::test]
async fn a_credential_is_registered_once_across_all_users() {
    // A real authenticator never makes one credential id twice; a forged registration could try to claim
    // another user's. The unique index refuses it on both engines, as the `409 conflict` of API.md.
    let app = app().await;
    let mut device = Device::new();
    let (alice, _) = user_with_passkey(&app, "alice", &mut device).await;
    let (bob, _) = app.signed_up("bob").await;
    let db = app.services.database();
    let taken = db
        .passkeys_of(securecrud_domain::UserId::from_uuid(alice.parse().unwrap()))
        .await
        .unwrap()
        .remove(0);
    let copy = securecrud_persistence::StoredPasskey {
        id: uuid::Uuid::now_v7(),
        user: securecrud_domain::UserId::from_uuid(bob.id.parse().unwrap()),
        ..taken
    };
    let tx = db.begin().await.unwrap();
    let refused = tx.insert_passkey(copy).await;
    assert!(
        matches!(
            refused,
            Err(securecrud_persistence::RepoError::Conflict(
                securecrud_domain::ConflictField::Credential
            ))
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_ceremony_started_on_one_instance_is_finished_on_another() {
    let app = app().await;
    let other = app
        .sibling(&[("PUBLIC_BASE_URL", ORIGIN), ("WEBAUTHN_RP_ID", RP_ID)])
        .await;
    let mut device = Device::new();
    let (_, tokens) = app.signed_up("nina").await;
    // Registration: options from one instance, the credential to the other.
    let options = registration_options(&app, &tokens).await;
    let credential = device.create(&options["publicKey"]).await;
    let registered = other
        .post_json_authed(
            "/api/v1/users/me/passkeys",
            &tokens.access_token,
            &json!({"registration_id": options["registration_id"], "credential": credential}),
        )
        .await;
    assert_eq!(registered.status(), 201);
    // Login: the same, the other way round; then the challenge is spent on both.
    let options = login_options(&other).await;
    let assertion = device.get(&options["publicKey"]).await;
    assert_eq!(
        passkey_login(&app, &options["challenge_id"], &assertion)
            .await
            .status(),
        200
    );
    let again = passkey_login(&other, &options["challenge_id"], &assertion).await;
    assert_problem(again, 400, "invalid_token").await;
}

#[tokio::test]
async fn an_unverified_email_keeps_a_passkey_out_when_verification_is_required() {
    let app = TestApp::spawn_with(&[
        ("PUBLIC_BASE_URL", ORIGIN),
        ("WEBAUTHN_RP_ID", RP_ID),
        ("REQUIRE_VERIFIED_EMAIL", "true"),
    ])
    .await;
    let mut device = Device::new();
    // Signed in before the rule applied to this account: its session registers a passkey.
    let email = "vera@example.com";
    assert_eq!(app.register("vera", email, PASSWORD).await.status(), 201);
    app.verify_email(email).await;
    let tokens = app.tokens("vera").await;
    register(&app, &tokens, &mut device).await;
    app.execute("UPDATE users SET email_verified = false WHERE username = 'vera'")
        .await;
    let refused = log_in_with(&app, &mut device).await;
    assert_problem(refused, 403, "email_not_verified").await;
}

#[tokio::test]
async fn with_an_ip_address_as_public_host_and_no_rp_id_passkeys_are_off() {
    let app = TestApp::spawn_with(&[("PUBLIC_BASE_URL", "https://10.0.0.5")]).await;
    let response = app
        .post_json("/api/v1/auth/passkey/options", &json!({}))
        .await;
    let problem = assert_problem(response, 404, "not_found").await;
    assert!(
        text(&problem, "detail").contains("WEBAUTHN_RP_ID"),
        "{problem}"
    );
    // Everything else works as before.
    assert_eq!(app.signed_up("ivan").await.0.username, "ivan");
}

#[tokio::test]
async fn an_account_without_a_password_keeps_a_way_in_when_it_deletes_a_passkey() {
    let provider = securecrud_tests::oidc::TestProvider::start().await;
    let app = TestApp::spawn_with(&crate::oidc::vars(
        &provider,
        &[("PUBLIC_BASE_URL", ORIGIN), ("WEBAUTHN_RP_ID", RP_ID)],
    ))
    .await;
    // An account a provider made (no password) adds a passkey: a fresh session stands in for the password.
    let signed_in = crate::oidc::tokens_for(
        &app,
        &provider,
        &securecrud_tests::oidc::Account::verified("pk-sub", "pk@example.com"),
    )
    .await;
    let tokens: Tokens = serde_json::from_value(signed_in).expect("tokens");
    let mut phone = Device::new();
    let passkey = register_with(&app, &tokens, &mut phone, json!({})).await;
    let codes = passkey["recovery_codes"].clone();
    // The passkey is a way in: the identity may go.
    let identities: Value = app
        .get_authed("/api/v1/users/me/identities", &tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    let identity = text(&identities["items"][0], "id");
    let response = app
        .send_json(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/me/identities/{identity}"),
            &tokens.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 204);
    // Now the passkey is the only way in: it stays.
    let response = app
        .send_json(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/me/passkeys/{}", text(&passkey, "id")),
            &tokens.access_token,
            &json!({ "code": codes[0] }),
        )
        .await;
    assert_problem(response, 409, "last_sign_in_method").await;
    assert_eq!(log_in_with(&app, &mut phone).await.status(), 200);
}
