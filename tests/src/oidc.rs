//! An OpenID Connect provider for the tests, served on a free port: discovery, keys (ES256), an
//! authorization endpoint that signs in whoever the test says (as a browser's session at the provider would),
//! and a token endpoint that checks the client, the PKCE verifier and the redirect URI, and issues an
//! `id_token`. Unlike a certified provider, it can also misbehave on purpose ([`Tamper`]): the attacks on the
//! relying party need an `id_token` from another issuer, for another audience, with `alg: none`, and so on.
//! (The tests also run against a certified provider, panva's `oidc-provider`: see tests/oidc/.)

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, web};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use securecrud_auth::{KeyAlgorithm, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The client the api is registered as.
pub const CLIENT_ID: &str = "securecrud-test";
pub const CLIENT_SECRET: &str = "test-client-secret-0123456789";

/// Who is signed in at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub preferred_username: Option<String>,
}

impl Account {
    /// A user with a verified email.
    pub fn verified(sub: &str, email: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            email: Some(email.to_owned()),
            email_verified: Some(true),
            preferred_username: None,
        }
    }
}

/// How the provider misbehaves (from the next authorization on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// A proper `id_token`.
    None,
    /// The `nonce` of another sign-in.
    WrongNonce,
    /// `iss` of another provider.
    WrongIssuer,
    /// `aud` of another client.
    WrongAudience,
    /// `exp` an hour ago.
    Expired,
    /// Unsigned: `alg: none`.
    AlgNone,
    /// HS256 with the provider's public key (JWK JSON) as the HMAC secret: the classic key confusion.
    Hs256WithPublicKey,
    /// HS256 with the client secret (OpenID Connect allows it; the api pins asymmetric algorithms, so that
    /// whoever learns the client secret cannot mint `id_token`s).
    Hs256WithClientSecret,
    /// Signed by a key that is not in the provider's key set (an attacker's), under the provider's `kid`.
    ForeignKey,
    /// The token endpoint refuses every code (`400 invalid_grant`).
    RefuseCode,
    /// The token endpoint never answers (the api gives up after `OIDC_TIMEOUT_MS`).
    Slow,
}

struct Grant {
    account: Account,
    nonce: Option<String>,
    code_challenge: Option<String>,
    redirect_uri: String,
    tamper: Tamper,
}

struct State {
    issuer: String,
    signed_in: Option<Account>,
    tamper: Tamper,
    /// Answer the next authorizations with this `error` instead of a code.
    error: Option<String>,
    codes: HashMap<String, Grant>,
    key_pem: String,
    jwk: Value,
    /// Another key, of nobody the api trusts.
    foreign_pem: String,
    /// How many code exchanges were made (refused ones too).
    exchanges: usize,
}

/// The provider, stopped when dropped.
pub struct TestProvider {
    pub issuer: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for TestProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestProvider")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TestProvider {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// A provider on `port` (0: any free one).
    pub async fn start_on(port: u16) -> Self {
        let (key, key_pem) = SigningKey::generate(KeyAlgorithm::Es256).expect("provider key");
        let (_, foreign_pem) = SigningKey::generate(KeyAlgorithm::Es256).expect("foreign key");
        let mut jwk = serde_json::to_value(key.public_jwk().expect("public key")).expect("jwk");
        jwk["use"] = json!("sig");
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the provider");
        let port = listener.local_addr().expect("address").port();
        let issuer = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            issuer: issuer.clone(),
            signed_in: None,
            tamper: Tamper::None,
            error: None,
            codes: HashMap::new(),
            key_pem: key_pem.expose_secret().to_owned(),
            jwk,
            foreign_pem: foreign_pem.expose_secret().to_owned(),
            exchanges: 0,
        }));
        let shared = Arc::clone(&state);
        let (ready, started) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("test-oidc-provider".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let data = web::Data::from(shared);
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .route(
                                "/.well-known/openid-configuration",
                                web::get().to(discovery),
                            )
                            .route("/jwks", web::get().to(jwks))
                            .route("/authorize", web::get().to(authorize))
                            .route("/token", web::post().to(token))
                    })
                    .workers(1)
                    .listen(listener)
                    .expect("listen")
                    .run();
                    let _ = ready.send(server.handle());
                    let _ = server.await;
                });
            })
            .expect("start the provider's thread");
        let handle = started.await.expect("the provider started");
        Self {
            issuer,
            state,
            handle,
            thread: Some(thread),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("provider state"))
    }

    /// Signs `account` in at the provider (the next authorizations are theirs).
    pub fn sign_in_as(&self, account: &Account) {
        self.with(|state| state.signed_in = Some(account.clone()));
    }

    /// From the next authorization on, misbehave this way.
    pub fn tamper(&self, tamper: Tamper) {
        self.with(|state| state.tamper = tamper);
    }

    /// Answer the next authorizations with `error` (e.g. `access_denied`), or stop doing so (`None`).
    pub fn refuse_with(&self, error: Option<&str>) {
        self.with(|state| state.error = error.map(str::to_owned));
    }

    /// How many code exchanges the api made.
    pub fn exchanges(&self) -> usize {
        self.with(|state| state.exchanges)
    }

    /// The api's variables for this provider under `name`.
    pub fn vars(&self, name: &str) -> Vec<(String, String)> {
        let upper = name.to_ascii_uppercase();
        vec![
            (format!("OIDC_{upper}_ISSUER"), self.issuer.clone()),
            (format!("OIDC_{upper}_CLIENT_ID"), CLIENT_ID.to_owned()),
            (
                format!("OIDC_{upper}_CLIENT_SECRET"),
                CLIENT_SECRET.to_owned(),
            ),
        ]
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

type Shared = web::Data<Mutex<State>>;

async fn discovery(state: Shared) -> HttpResponse {
    let issuer = state.lock().expect("state").issuer.clone();
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        // What a careless provider might list: the api must still refuse `none` and HS256.
        "id_token_signing_alg_values_supported": ["ES256", "HS256", "none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(state: Shared) -> HttpResponse {
    let jwk = state.lock().expect("state").jwk.clone();
    HttpResponse::Ok().json(json!({ "keys": [jwk] }))
}

async fn authorize(state: Shared, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let mut state = state.lock().expect("state");
    let (Some(redirect_uri), Some(client_state)) = (query.get("redirect_uri"), query.get("state"))
    else {
        return HttpResponse::BadRequest().body("redirect_uri and state are required");
    };
    let mut location = url::Url::parse(redirect_uri).expect("redirect_uri");
    if query.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || query.get("response_type").map(String::as_str) != Some("code")
        || query.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        location
            .query_pairs_mut()
            .append_pair("error", "invalid_request")
            .append_pair("state", client_state);
    } else if let Some(error) = state.error.clone() {
        location
            .query_pairs_mut()
            .append_pair("error", &error)
            .append_pair("error_description", "<b>the user said no</b>")
            .append_pair("state", client_state);
    } else {
        let Some(account) = state.signed_in.clone() else {
            return HttpResponse::Unauthorized().body("nobody is signed in at the provider");
        };
        let code = securecrud_auth::generate_token();
        let grant = Grant {
            account,
            nonce: query.get("nonce").cloned(),
            code_challenge: query.get("code_challenge").cloned(),
            redirect_uri: redirect_uri.clone(),
            tamper: state.tamper,
        };
        state.codes.insert(code.clone(), grant);
        location
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", client_state)
            .append_pair("iss", &state.issuer);
    }
    HttpResponse::Found()
        .insert_header(("Location", location.to_string()))
        .finish()
}

fn token_error(error: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": error }))
}

async fn token(
    state: Shared,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let (grant, issuer, key_pem, foreign_pem, jwk) = {
        let mut state = state.lock().expect("state");
        state.exchanges += 1;
        if !client_authenticated(&req, &form) {
            return HttpResponse::Unauthorized().json(json!({ "error": "invalid_client" }));
        }
        let Some(grant) = form.get("code").and_then(|code| state.codes.remove(code)) else {
            return token_error("invalid_grant");
        };
        (
            grant,
            state.issuer.clone(),
            state.key_pem.clone(),
            state.foreign_pem.clone(),
            state.jwk.clone(),
        )
    };
    if grant.tamper == Tamper::Slow {
        // Never answers: the api's own timeout (OIDC_TIMEOUT_MS) ends the wait; stopping the provider drops
        // this request.
        std::future::pending::<()>().await;
    }
    if grant.tamper == Tamper::RefuseCode
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
        || form.get("redirect_uri") != Some(&grant.redirect_uri)
    {
        return token_error("invalid_grant");
    }
    let verifier_matches = match (&grant.code_challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
        }
        _ => false,
    };
    if !verifier_matches {
        return token_error("invalid_grant");
    }
    let id_token = id_token(&grant, &issuer, &key_pem, &foreign_pem, &jwk);
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "access_token": securecrud_auth::generate_token(),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }))
}

fn client_authenticated(req: &HttpRequest, form: &HashMap<String, String>) -> bool {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let header = req
        .headers()
        .get("Authorization")
        .and_then(|value| value.to_str().ok());
    header == Some(basic.as_str())
        || (form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET))
}

/// The `id_token` of `grant`, as its tamper mode says.
fn id_token(grant: &Grant, issuer: &str, key_pem: &str, foreign_pem: &str, jwk: &Value) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let account = &grant.account;
    let mut claims = json!({
        "iss": issuer,
        "sub": account.sub,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": grant.nonce,
    });
    if let Some(email) = &account.email {
        claims["email"] = json!(email);
    }
    if let Some(verified) = account.email_verified {
        claims["email_verified"] = json!(verified);
    }
    if let Some(name) = &account.preferred_username {
        claims["preferred_username"] = json!(name);
    }
    match grant.tamper {
        Tamper::WrongNonce => claims["nonce"] = json!("a-nonce-of-another-sign-in"),
        Tamper::WrongIssuer => claims["iss"] = json!("https://other-provider.example.com"),
        Tamper::WrongAudience => claims["aud"] = json!("another-client"),
        Tamper::Expired => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        }
        _ => {}
    }
    let kid = jwk["kid"].as_str().map(str::to_owned);
    match grant.tamper {
        Tamper::AlgNone => {
            let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            format!("{header}.{payload}.")
        }
        Tamper::Hs256WithPublicKey => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = kid;
            let secret = jwk.to_string();
            jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .expect("sign HS256")
        }
        Tamper::Hs256WithClientSecret => {
            let header = Header::new(Algorithm::HS256);
            jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
            )
            .expect("sign HS256")
        }
        Tamper::ForeignKey => {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = kid;
            let key = es256_key(foreign_pem);
            jsonwebtoken::encode(&header, &claims, &key).expect("sign ES256")
        }
        _ => {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = kid;
            let key = es256_key(key_pem);
            jsonwebtoken::encode(&header, &claims, &key).expect("sign ES256")
        }
    }
}

/// The signing key of a PKCS#8 PEM P-256 key.
fn es256_key(pem: &str) -> EncodingKey {
    use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let key = p256::SecretKey::from_pkcs8_pem(pem).expect("a P-256 key");
    EncodingKey::from_ec_der(key.to_pkcs8_der().expect("DER").as_bytes())
}
