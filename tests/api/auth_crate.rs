//! The auth crate's example service, run against tokens from a real api instance.

use std::net::TcpListener;

use secrecy::SecretSlice;
use securecrud_auth::{
    JwtVerifier,
    remote::{JwksVerifier, SessionCheck},
};
use securecrud_tests::{TEST_JWT_SECRET, TestApp, assert_problem};
use serde_json::{Value, json};

#[allow(
    dead_code,
    reason = "only some of the example's items are used here; which depends on the build (check or clippy)"
)]
#[path = "../../crates/auth/examples/protected_service.rs"]
pub(crate) mod protected_service;

struct Example {
    address: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Example {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

fn start_example(secret: &str) -> Example {
    let verifier = JwtVerifier::new(
        &SecretSlice::from(secret.as_bytes().to_vec()),
        &[],
        "http://127.0.0.1:8080",
        "securecrud-api",
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = protected_service::server(
        protected_service::Verifier::Secret(verifier),
        None,
        None,
        listener,
    )
    .unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Example { address, handle }
}

#[actix_web::test]
async fn the_example_service_accepts_tokens_issued_by_the_api() {
    let api = TestApp::spawn().await;
    let example = start_example(TEST_JWT_SECRET);
    let (user, pair) = api.signed_up("ada_l").await;
    let token = pair.access_token.clone();

    let whoami = api
        .client
        .get(format!("{}/whoami", example.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(whoami.status(), 200);
    let body: Value = whoami.json().await.unwrap();
    assert_eq!(body["user_id"], user.id.as_str());
    assert_eq!(body["role"], "user");
}

#[actix_web::test]
async fn the_example_service_answers_the_apis_problems() {
    let api = TestApp::spawn().await;
    let example = start_example(TEST_JWT_SECRET);
    let token = api.access_token("ada_l").await;
    let get = |path: &'static str, token: Option<String>| {
        let mut request = api.client.get(format!("{}{path}", example.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    assert_problem(get("/whoami", None).await.unwrap(), 401, "unauthorized").await;
    assert_problem(
        get("/whoami", Some("garbage".into())).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;
    assert_problem(get("/admin", Some(token)).await.unwrap(), 403, "forbidden").await;
}

#[actix_web::test]
async fn the_example_service_lets_admins_through() {
    let api = TestApp::spawn().await;
    let example = start_example(TEST_JWT_SECRET);
    let admin_token = api.admin_token("root").await;

    let response = api
        .client
        .get(format!("{}/admin", example.address))
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn a_service_with_another_secret_refuses_the_apis_tokens() {
    let api = TestApp::spawn().await;
    let example = start_example("some-other-secret-some-other-secret-0123");
    let token = api.access_token("ada_l").await;

    let response = api
        .client
        .get(format!("{}/whoami", example.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();

    assert_problem(response, 401, "invalid_token").await;
}

#[actix_web::test]
async fn a_stateless_verifier_still_accepts_a_revoked_sessions_token_until_it_expires() {
    let api = TestApp::spawn().await;
    let example = start_example(TEST_JWT_SECRET);
    let (_, pair) = api.signed_up("ada_l").await;
    let token = pair.access_token.clone();
    api.post_json(
        "/api/v1/auth/logout",
        &json!({"refresh_token": pair.refresh_token.clone()}),
    )
    .await;

    let at_api = api.get_authed("/api/v1/users/me", &token).await;
    let at_example = api
        .client
        .get(format!("{}/whoami", example.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_problem(at_api, 401, "invalid_token").await;
    assert_eq!(
        at_example.status(),
        200,
        "documented limit: see docs/AUTH-CRATE.md"
    );
}

/// The example with no secret at all: the api's JWKS and, for `/sensitive`, its session check.
fn start_jwks_example(api: &TestApp) -> Example {
    let jwks = JwksVerifier::new(
        &api.url("/.well-known/jwks.json"),
        api.services.issuer(),
        "securecrud-api",
    )
    .unwrap()
    .min_refetch_interval(std::time::Duration::from_millis(200));
    let check = SessionCheck::new(&api.url("/api/v1/auth/check"))
        .unwrap()
        .remember_for(std::time::Duration::ZERO);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = protected_service::server(
        protected_service::Verifier::Jwks(jwks),
        None,
        Some(check),
        listener,
    )
    .unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Example { address, handle }
}

async fn eddsa_api() -> (TestApp, tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = securecrud_tests::key_file(securecrud_auth::KeyAlgorithm::EdDsa);
    let key_file = path.display().to_string();
    let api = TestApp::spawn_with(&[
        ("JWT_ALGORITHM", "EdDSA"),
        ("JWT_PRIVATE_KEY_FILE", &key_file),
        ("JWT_KEY_RETIRE_SECS", "2"),
    ])
    .await;
    (api, dir, path)
}

#[actix_web::test]
async fn the_example_verifies_eddsa_tokens_from_the_jwks_holding_no_secret() {
    let (api, _dir, _) = eddsa_api().await;
    let example = start_jwks_example(&api);
    let (user, pair) = api.signed_up("ada_l").await;
    let token = pair.access_token.clone();
    let get = |path: &str, token: &str| {
        api.client
            .get(format!("{}{path}", example.address))
            .bearer_auth(token.to_owned())
            .send()
    };

    let whoami = get("/whoami", &token).await.unwrap();
    assert_eq!(whoami.status(), 200);
    let body: Value = whoami.json().await.unwrap();
    assert_eq!(body["user_id"], user.id.as_str());
    assert_problem(get("/admin", &token).await.unwrap(), 403, "forbidden").await;
    let sensitive = get("/sensitive", &token).await.unwrap();
    assert_eq!(sensitive.status(), 200);

    // An HS256 token made with the api's JWT_SECRET (which, with a key pair, signs nothing): refused.
    let mut claims = securecrud_tests::jwt_claims(&token);
    claims["role"] = "admin".into();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_problem(get("/admin", &forged).await.unwrap(), 401, "invalid_token").await;

    // Logged out: the stateless route still accepts the token (until it expires); the checked one does not.
    api.post_json(
        "/api/v1/auth/logout",
        &json!({"refresh_token": pair.refresh_token.clone()}),
    )
    .await;
    assert_eq!(get("/whoami", &token).await.unwrap().status(), 200);
    assert_problem(
        get("/sensitive", &token).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;
}

#[actix_web::test]
async fn the_jwks_verifier_follows_a_rotation_and_drops_the_retired_key() {
    let (api, _dir, _) = eddsa_api().await;
    let example = start_jwks_example(&api);
    api.signed_up("ada_l").await;
    let old = api.tokens("ada_l").await.access_token.clone();
    let whoami = |token: String| {
        api.client
            .get(format!("{}/whoami", example.address))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(whoami(old.clone()).await.unwrap().status(), 200);

    let rotated = std::time::Instant::now();
    api.services.rotate_key(false).await.unwrap();
    let new = api.tokens("ada_l").await.access_token.clone();
    // The new kid is unknown to the cached set: the verifier fetches again and accepts it (once its least
    // interval between early fetches, 200 ms here, has passed since its first fetch).
    securecrud_tests::eventually(
        "the new key is fetched",
        std::time::Duration::from_secs(10),
        || async { whoami(new.clone()).await.unwrap().status() == 200 },
    )
    .await;
    assert_eq!(whoami(old.clone()).await.unwrap().status(), 200);
    // The JWKS was served with a max-age that ends at the old key's retirement (2 s after the rotation): the
    // example's verifier refuses the old key from then on (within a second of it).
    securecrud_tests::eventually(
        "the retired key is refused",
        std::time::Duration::from_secs(3).saturating_sub(rotated.elapsed()),
        || async { whoami(old.clone()).await.unwrap().status() == 401 },
    )
    .await;
    assert_problem(whoami(old).await.unwrap(), 401, "invalid_token").await;
    assert_eq!(whoami(new).await.unwrap().status(), 200);
}

#[actix_web::test]
async fn unknown_kids_cannot_make_the_verifier_flood_the_api() {
    let (api, _dir, _) = eddsa_api().await;
    let jwks = JwksVerifier::new(
        &api.url("/.well-known/jwks.json"),
        api.services.issuer(),
        "securecrud-api",
    )
    .unwrap();
    let token = api.signed_up("ada_l").await.1.access_token.clone();
    assert!(jwks.verify(&token).await.is_ok());
    assert_eq!(jwks.fetch_count(), 1);

    let mut header = securecrud_tests::jwt_header(&token);
    let started = std::time::Instant::now();
    for i in 0..50 {
        header["kid"] = format!("made-up-{i}").into();
        let forged = format!(
            "{}.{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                header.to_string()
            ),
            token.split_once('.').unwrap().1
        );
        assert!(jwks.verify(&forged).await.is_err());
    }

    // One early fetch per started 5 s interval at most (the default), not one per token.
    let intervals = started.elapsed().as_secs() / 5 + 1;
    assert!(
        jwks.fetch_count() <= 1 + intervals,
        "{} fetches for 50 unknown kids",
        jwks.fetch_count()
    );
}
