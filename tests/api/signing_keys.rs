//! Access tokens signed with key pairs (EdDSA, ES256), the JWKS, and key rotation across instances.

use std::path::Path;

use securecrud_auth::{JwtVerifier, KeyAlgorithm, PublicJwk, VerifyingKey};
use securecrud_tests::{
    TEST_JWT_SECRET, TestApp, assert_problem, jwt_claims, jwt_header, key_file, text,
};
use serde_json::Value;

fn key_env(alg: KeyAlgorithm, path: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("JWT_ALGORITHM", alg.as_str().to_owned()),
        ("JWT_PRIVATE_KEY_FILE", path.display().to_string()),
    ]
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn jwks(app: &TestApp) -> (Vec<PublicJwk>, u32) {
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    let max_age = cache
        .strip_prefix("public, max-age=")
        .and_then(|age| age.parse().ok())
        .unwrap_or_else(|| panic!("Cache-Control: {cache}"));
    let set: Value = response.json().await.unwrap();
    (
        serde_json::from_value(set["keys"].clone()).unwrap(),
        max_age,
    )
}

/// A verifier holding nothing but the published keys, as another service would build it.
fn verifier_from(keys: &[PublicJwk], issuer: &str) -> JwtVerifier {
    let keys = keys
        .iter()
        .map(|jwk| VerifyingKey::from_jwk(jwk).unwrap())
        .collect();
    JwtVerifier::with_keys(keys, issuer, "securecrud-api")
}

#[actix_web::test]
async fn key_pair_tokens_verify_from_the_jwks_alone() {
    for alg in [KeyAlgorithm::EdDsa, KeyAlgorithm::Es256] {
        let (_dir, path) = key_file(alg);
        let app = TestApp::spawn_with(&borrowed(&key_env(alg, &path))).await;
        let (_, pair) = app.signed_up("ada_l").await;
        let access = pair.access_token.clone();

        let (keys, max_age) = jwks(&app).await;

        assert_eq!(keys.len(), 1, "{alg}");
        assert!(max_age > 0 && max_age <= 300, "{max_age}");
        let header = jwt_header(&access);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["kid"], keys[0].kid.as_str());
        assert_eq!(keys[0].alg, alg.as_str());
        assert_eq!(keys[0].use_, "sig");
        let issuer = jwt_claims(&access)["iss"].as_str().unwrap().to_owned();
        let claims = verifier_from(&keys, &issuer).verify(&access).unwrap();
        assert_eq!(claims.typ, "access");
        assert_eq!(
            app.get_authed("/api/v1/users/me", &access).await.status(),
            200
        );
    }
}

#[actix_web::test]
async fn with_a_key_pair_the_shared_secret_can_mint_nothing() {
    let (_dir, path) = key_file(KeyAlgorithm::EdDsa);
    // The test defaults also set JWT_SECRET: with a key pair it only keys refresh rotation.
    let app = TestApp::spawn_with(&borrowed(&key_env(KeyAlgorithm::EdDsa, &path))).await;
    let (_, pair) = app.signed_up("ada_l").await;
    let claims = jwt_claims(&pair.access_token.clone());
    let (keys, _) = jwks(&app).await;

    let hs256 = |kid: Option<&str>| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = kid.map(str::to_owned);
        let mut forged = claims.clone();
        forged["role"] = "admin".into();
        jsonwebtoken::encode(
            &header,
            &forged,
            &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    for forged in [hs256(None), hs256(Some(&keys[0].kid))] {
        let refused = app.get_authed("/api/v1/users/me", &forged).await;
        assert_problem(refused, 401, "invalid_token").await;
    }
    let (_, pair) = (0, app.tokens("ada_l").await);
    let refreshed = app.refresh(&pair.refresh_token.clone()).await;
    assert_eq!(refreshed.status(), 200, "refresh rotation still works");
}

#[actix_web::test]
async fn development_with_a_key_pair_and_no_file_works_with_no_set_up() {
    let app = TestApp::spawn_with(&[("JWT_ALGORITHM", "EdDSA")]).await;
    let (_, pair) = app.signed_up("ada_l").await;

    let (keys, _) = jwks(&app).await;

    assert_eq!(keys.len(), 1);
    assert_eq!(
        jwt_header(&pair.access_token.clone())["kid"],
        keys[0].kid.as_str()
    );
}

#[actix_web::test]
async fn a_rotation_keeps_old_tokens_until_retired_then_refuses_them() {
    let (_dir, path) = key_file(KeyAlgorithm::EdDsa);
    let mut vars = key_env(KeyAlgorithm::EdDsa, &path);
    vars.push(("JWT_KEY_RETIRE_SECS", "3".to_owned()));
    let app = TestApp::spawn_with(&borrowed(&vars)).await;
    app.signed_up("ada_l").await;
    let old = app.tokens("ada_l").await.access_token.clone();
    let (before, _) = jwks(&app).await;

    let rotated = std::time::Instant::now();
    let (new_kid, previous) = app.services.rotate_key(false).await.unwrap();

    assert_eq!(previous.as_deref(), Some(before[0].kid.as_str()));
    let new = app.tokens("ada_l").await.access_token.clone();
    assert_eq!(jwt_header(&new)["kid"], new_kid.as_str());
    let (during, max_age) = jwks(&app).await;
    let kids: Vec<&str> = during.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(
        kids,
        [new_kid.as_str(), before[0].kid.as_str()],
        "current first"
    );
    assert!(max_age <= 3, "not cached past the retirement: {max_age}");
    assert_eq!(app.get_authed("/api/v1/users/me", &old).await.status(), 200);
    assert_eq!(app.get_authed("/api/v1/users/me", &new).await.status(), 200);
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(
        file.starts_with("-----BEGIN PRIVATE KEY-----"),
        "the file holds the new key"
    );

    // The verifier compares a key's end with the system's clock: the retirement (3 s after the rotation) is
    // waited for, and must come within a second of its time.
    securecrud_tests::eventually(
        "the old key is retired",
        std::time::Duration::from_secs(4).saturating_sub(rotated.elapsed()),
        || async { app.get_authed("/api/v1/users/me", &old).await.status() == 401 },
    )
    .await;
    assert_problem(
        app.get_authed("/api/v1/users/me", &old).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(app.get_authed("/api/v1/users/me", &new).await.status(), 200);
    let (after, _) = jwks(&app).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].kid, new_kid);
}

#[actix_web::test]
async fn instances_sharing_a_database_follow_a_rotation() {
    let (_dir, path) = key_file(KeyAlgorithm::Es256);
    let vars = key_env(KeyAlgorithm::Es256, &path);
    let one = TestApp::spawn_with(&borrowed(&vars)).await;
    let two = one.sibling(&borrowed(&vars)).await;
    one.signed_up("ada_l").await;
    let old = two.tokens("ada_l").await.access_token.clone();

    let (new_kid, _) = one.services.rotate_key(false).await.unwrap();
    let new = one.tokens("ada_l").await.access_token.clone();

    // The other instance accepts the new key at once (an unknown kid makes it look in the database) ...
    assert_eq!(two.get_authed("/api/v1/users/me", &new).await.status(), 200);
    assert_eq!(two.get_authed("/api/v1/users/me", &old).await.status(), 200);
    // ... and signs with it after its next look at the shared key file.
    two.services.refresh_keys().await.unwrap();
    let from_two = two.tokens("ada_l").await.access_token.clone();
    assert_eq!(jwt_header(&from_two)["kid"], new_kid.as_str());
    let (published, _) = jwks(&two).await;
    assert_eq!(published.len(), 2);
}

#[actix_web::test]
async fn an_old_key_file_never_takes_over_again() {
    let (_dir, path) = key_file(KeyAlgorithm::EdDsa);
    let old_copy = path.with_extension("old.pem");
    std::fs::copy(&path, &old_copy).unwrap();
    let vars = key_env(KeyAlgorithm::EdDsa, &path);
    let app = TestApp::spawn_with(&borrowed(&vars)).await;
    let (new_kid, _) = app.services.rotate_key(false).await.unwrap();

    let stale = app
        .sibling(&borrowed(&key_env(KeyAlgorithm::EdDsa, &old_copy)))
        .await;
    stale.signed_up("ada_l").await;

    let listed = app.services.list_keys().await.unwrap();
    let current: Vec<&str> = listed
        .iter()
        .filter(|key| key.retired_at.is_none())
        .map(|key| key.kid.as_str())
        .collect();
    assert_eq!(current, [new_kid.as_str()]);
    // Its tokens are still accepted everywhere while the old key is.
    let token = stale.tokens("ada_l").await.access_token.clone();
    assert_eq!(
        app.get_authed("/api/v1/users/me", &token).await.status(),
        200
    );
}

#[actix_web::test]
async fn a_leaked_key_can_be_revoked_at_rotation() {
    let (_dir, path) = key_file(KeyAlgorithm::EdDsa);
    let app = TestApp::spawn_with(&borrowed(&key_env(KeyAlgorithm::EdDsa, &path))).await;
    app.signed_up("ada_l").await;
    let pair = app.tokens("ada_l").await;
    let old = pair.access_token.clone();

    let (new_kid, _) = app.services.rotate_key(true).await.unwrap();

    assert_problem(
        app.get_authed("/api/v1/users/me", &old).await,
        401,
        "invalid_token",
    )
    .await;
    let (published, _) = jwks(&app).await;
    let kids: Vec<&str> = published.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(
        kids,
        [new_kid.as_str()],
        "the leaked key is no longer published"
    );
    let refreshed: Value = app
        .refresh(&pair.refresh_token.clone())
        .await
        .json()
        .await
        .unwrap();
    let fresh = text(&refreshed, "access_token");
    assert_eq!(
        app.get_authed("/api/v1/users/me", &fresh).await.status(),
        200,
        "sessions live on"
    );
}

#[actix_web::test]
async fn a_revoked_key_is_refused_even_by_an_instance_whose_file_still_holds_it() {
    let (_dir, path) = key_file(KeyAlgorithm::EdDsa);
    let stale_copy = path.with_extension("copy.pem");
    std::fs::copy(&path, &stale_copy).unwrap();
    let one = TestApp::spawn_with(&borrowed(&key_env(KeyAlgorithm::EdDsa, &path))).await;
    let two = one
        .sibling(&borrowed(&key_env(KeyAlgorithm::EdDsa, &stale_copy)))
        .await;
    one.signed_up("ada_l").await;
    let leaked = two.tokens("ada_l").await.access_token.clone();

    one.services.rotate_key(true).await.unwrap();
    let refreshed = two.services.refresh_keys().await;

    assert!(
        refreshed.is_err(),
        "its own key is revoked: an error to act on"
    );
    assert_problem(
        two.get_authed("/api/v1/users/me", &leaked).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        one.get_authed("/api/v1/users/me", &leaked).await,
        401,
        "invalid_token",
    )
    .await;
}

#[actix_web::test]
async fn instances_starting_at_once_with_different_new_keys_leave_one_current() {
    let database = securecrud_tests::FreshDatabase::create().await;
    let files: Vec<_> = (0..4).map(|_| key_file(KeyAlgorithm::EdDsa)).collect();
    let envs: Vec<_> = files
        .iter()
        .map(|(_, path)| key_env(KeyAlgorithm::EdDsa, path))
        .collect();
    let borrowed_envs: Vec<_> = envs.iter().map(|env| borrowed(env)).collect();

    let apps = futures_util::future::join_all(
        borrowed_envs
            .iter()
            .map(|env| TestApp::spawn_on_with(&database, env)),
    )
    .await;

    let keys = apps[0].services.list_keys().await.unwrap();
    assert_eq!(keys.len(), 4, "every instance's key is known");
    let current = keys.iter().filter(|key| key.retired_at.is_none()).count();
    assert_eq!(current, 1, "{keys:?}");
    // Every instance's tokens verify everywhere (the retired ones are still accepted).
    apps[0].signed_up("ada_l").await;
    for app in &apps {
        let token = app.tokens("ada_l").await.access_token.clone();
        for other in &apps {
            assert_eq!(
                other.get_authed("/api/v1/users/me", &token).await.status(),
                200
            );
        }
    }
}
