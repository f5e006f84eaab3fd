//! The auth crate's example service, run against tokens from a real api instance.

use std::net::TcpListener;

use secrecy::SecretSlice;
use securecrud_auth::{
    JwtVerifier,
    guard::Guard,
    remote::{JwksVerifier, SessionCheck},
};
use securecrud_tests::{TEST_JWT_SECRET, TestApp, assert_problem};
use serde_json::Value;

#[allow(
    dead_code,
    reason = "only some of the example's items are used here; which depends on the build (check or clippy)"
)]
#[path = "../../crates/auth/examples/protected_service.rs"]
pub(crate) mod protected_service;

#[allow(
    dead_code,
    reason = "only some of the example's items are used here; which depends on the build (check or clippy)"
)]
#[path = "../../crates/auth/examples/axum_service.rs"]
pub(crate) mod axum_service;

/// The two example services: the same routes, one on each framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framework {
    Actix,
    Axum,
}

pub(crate) const FRAMEWORKS: [Framework; 2] = [Framework::Actix, Framework::Axum];

enum Running {
    Actix(actix_web::dev::ServerHandle),
    Axum(tokio::task::JoinHandle<std::io::Result<()>>),
}

/// An example service, running until dropped.
pub(crate) struct Example {
    pub(crate) address: String,
    running: Running,
}

impl Drop for Example {
    fn drop(&mut self) {
        match &self.running {
            Running::Actix(handle) => drop(handle.stop(false)),
            Running::Axum(task) => task.abort(),
        }
    }
}

impl Example {
    /// The `framework`'s example service, checking tokens with `guard`, on a port of its own.
    pub(crate) fn start(framework: Framework, guard: Guard) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let running = match framework {
            Framework::Actix => {
                let server = protected_service::server(guard, listener).unwrap();
                let handle = server.handle();
                actix_web::rt::spawn(server);
                Running::Actix(handle)
            }
            Framework::Axum => {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                Running::Axum(tokio::spawn(axum_service::serve(guard, listener)))
            }
        };
        Self { address, running }
    }
}

fn start_example(secret: &str) -> Example {
    start_secret_example(Framework::Actix, secret)
}

/// A verifier of `api`'s tokens with the keys it publishes (no secret).
pub(crate) fn jwks_verifier(api: &TestApp) -> JwksVerifier {
    JwksVerifier::new(
        &api.url("/.well-known/jwks.json"),
        api.services.issuer(),
        "securecrud-api",
    )
    .unwrap()
}

/// `token` with its header's `kid` replaced by `kid` (its signature no longer matches, and the key is unknown).
fn with_kid(token: &str, kid: &str) -> String {
    let mut header = securecrud_tests::jwt_header(token);
    header["kid"] = kid.into();
    format!(
        "{}.{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            header.to_string()
        ),
        token.split_once('.').unwrap().1
    )
}

fn start_secret_example(framework: Framework, secret: &str) -> Example {
    let verifier = JwtVerifier::new(
        &SecretSlice::from(secret.as_bytes().to_vec()),
        &[],
        "http://127.0.0.1:8080",
        "securecrud-api",
    );
    Example::start(framework, Guard::new(verifier))
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
async fn both_example_services_answer_the_apis_problems() {
    let api = TestApp::spawn().await;
    let token = api.access_token("ada_l").await;
    for framework in FRAMEWORKS {
        let example = start_secret_example(framework, TEST_JWT_SECRET);
        let get = |path: &'static str, token: Option<String>| {
            let mut request = api.client.get(format!("{}{path}", example.address));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };

        let missing = get("/whoami", None).await.unwrap();
        assert_eq!(
            missing.headers()["www-authenticate"],
            "Bearer realm=\"securecrud\"",
            "{framework:?}"
        );
        assert_problem(missing, 401, "unauthorized").await;
        let garbage = get("/whoami", Some("garbage".into())).await.unwrap();
        assert!(
            garbage.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\""),
            "{framework:?}"
        );
        assert_problem(garbage, 401, "invalid_token").await;
        assert_problem(
            get("/admin", Some(token.clone())).await.unwrap(),
            403,
            "forbidden",
        )
        .await;
        let report = get("/admin-area/report", Some(token.clone()))
            .await
            .unwrap();
        if framework == Framework::Axum {
            assert_problem(report, 403, "forbidden").await;
        } else {
            assert_eq!(
                report.status(),
                404,
                "only the axum example has the admin area"
            );
        }
    }
}

#[actix_web::test]
async fn both_example_services_let_admins_through() {
    let api = TestApp::spawn().await;
    let admin_token = api.admin_token("root").await;
    for framework in FRAMEWORKS {
        let example = start_secret_example(framework, TEST_JWT_SECRET);
        let response = api
            .client
            .get(format!("{}/admin", example.address))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{framework:?}");
    }
    // The axum example's admin area, guarded by the layer for the whole router.
    let example = start_secret_example(Framework::Axum, TEST_JWT_SECRET);
    let get = |path: &'static str, token: Option<&str>| {
        let mut request = api.client.get(format!("{}{path}", example.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let report = get("/admin-area/report", Some(&admin_token)).await.unwrap();
    assert_eq!(report.status(), 200);
    let body: Value = report.json().await.unwrap();
    assert_eq!(
        body["report_for"],
        securecrud_tests::jwt_claims(&admin_token)["sub"]
    );
    assert_problem(
        get("/admin-area/report", None).await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
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
    api.logout(&pair).await;

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
    start_jwks_example_on(Framework::Actix, api)
}

fn start_jwks_example_on(framework: Framework, api: &TestApp) -> Example {
    let jwks = jwks_verifier(api).min_refetch_interval(std::time::Duration::from_millis(200));
    let check = SessionCheck::new(&api.url("/api/v1/auth/check"))
        .unwrap()
        .remember_for(std::time::Duration::ZERO);
    Example::start(framework, Guard::new(jwks).with_session_check(check))
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
async fn both_examples_verify_eddsa_tokens_from_the_jwks_holding_no_secret() {
    let (api, _dir, _) = eddsa_api().await;
    for framework in FRAMEWORKS {
        let example = start_jwks_example_on(framework, &api);
        let name = format!(
            "ada_{}",
            if framework == Framework::Axum {
                "x"
            } else {
                "a"
            }
        );
        let (user, pair) = api.signed_up(&name).await;
        let token = pair.access_token.clone();
        let get = |path: &str, token: &str| {
            api.client
                .get(format!("{}{path}", example.address))
                .bearer_auth(token.to_owned())
                .send()
        };

        let whoami = get("/whoami", &token).await.unwrap();
        assert_eq!(whoami.status(), 200, "{framework:?}");
        let body: Value = whoami.json().await.unwrap();
        assert_eq!(body["user_id"], user.id.as_str());
        assert_problem(get("/admin", &token).await.unwrap(), 403, "forbidden").await;
        let sensitive = get("/sensitive", &token).await.unwrap();
        assert_eq!(sensitive.status(), 200, "{framework:?}");

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

        // Logged out: the stateless route still accepts the token (until it expires); the checked one
        // does not.
        api.logout(&pair).await;
        assert_eq!(get("/whoami", &token).await.unwrap().status(), 200);
        assert_problem(
            get("/sensitive", &token).await.unwrap(),
            401,
            "invalid_token",
        )
        .await;
    }
}

#[actix_web::test]
async fn requests_that_arrive_while_the_first_key_fetch_is_under_way_wait_for_it() {
    let (api, _dir, _) = eddsa_api().await;
    let token = api.signed_up("ada_l").await.1.access_token;
    for framework in FRAMEWORKS {
        // A service that has not fetched the key set yet, asked by twenty clients at once.
        let example = start_jwks_example_on(framework, &api);
        let asks = (0..20).map(|_| {
            api.client
                .get(format!("{}/whoami", example.address))
                .bearer_auth(&token)
                .send()
        });
        for response in futures_util::future::join_all(asks).await {
            assert_eq!(response.unwrap().status(), 200, "{framework:?}");
        }
    }
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
    let jwks = jwks_verifier(&api);
    let token = api.signed_up("ada_l").await.1.access_token.clone();
    assert!(jwks.verify(&token).await.is_ok());
    assert_eq!(jwks.fetch_count(), 1);

    let started = std::time::Instant::now();
    for i in 0..50 {
        let forged = with_kid(&token, &format!("made-up-{i}"));
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

/// A key server that holds its answers while its gate is closed: serves `body` (a JWK Set) as
/// `/.well-known/jwks.json`, counting the requests it received.
struct GatedJwks {
    url: String,
    open: tokio::sync::watch::Sender<bool>,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl GatedJwks {
    async fn start(body: String) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let (open, gate) = tokio::sync::watch::channel(true);
        let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (body, mut gate, counter) = (body.clone(), gate.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut request = [0_u8; 4096];
                    let _ = stream.read(&mut request).await;
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=300\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self {
            url,
            open,
            received,
        }
    }

    fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[actix_web::test]
async fn a_caller_waits_for_one_key_fetch_at_most_however_many_queue_behind_a_slow_one() {
    let (api, _dir, _) = eddsa_api().await;
    let token = api.signed_up("ada_l").await.1.access_token;
    let body = api
        .client
        .get(api.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let server = GatedJwks::start(body).await;
    let jwks = std::sync::Arc::new(
        JwksVerifier::new(&server.url, api.services.issuer(), "securecrud-api")
            .unwrap()
            .min_refetch_interval(std::time::Duration::ZERO),
    );
    assert!(
        jwks.verify(&token).await.is_ok(),
        "the first fetch loads the keys"
    );

    // The key server stalls; twenty tokens naming made-up keys arrive at once, with no least interval
    // between fetches. One caller fetches; the others queue behind that fetch.
    server.open.send_replace(false);
    let fetches = jwks.fetch_count();
    let forged: Vec<String> = (0..20)
        .map(|i| with_kid(&token, &format!("made-up-{i}")))
        .collect();
    let verifier = jwks.clone();
    let verifying = tokio::spawn(async move {
        futures_util::future::join_all(forged.iter().map(|token| verifier.verify(token))).await
    });
    securecrud_tests::eventually(
        "the stalled fetch reached the key server",
        std::time::Duration::from_secs(5),
        || async { server.received() == 2 },
    )
    .await;

    // The server answers: every queued caller is refused after that one fetch, none fetches again.
    server.open.send_replace(true);
    let verdicts = verifying.await.unwrap();
    assert!(verdicts.iter().all(Result::is_err));
    assert_eq!(
        jwks.fetch_count() - fetches,
        1,
        "fetches for 20 queued callers"
    );
    assert_eq!(server.received(), 2);
    assert!(jwks.verify(&token).await.is_ok());
}

#[actix_web::test]
async fn an_outer_stateless_layer_cannot_vouch_for_a_session_the_inner_guards_feed_says_ended() {
    use axum::{Router, routing::get};
    use securecrud_auth::{
        axum::{AuthLayer, Authenticated},
        feed::RevocationFeed,
    };

    let (api, _dir, _) = eddsa_api().await;
    let jwks = || jwks_verifier(&api);
    let feed = RevocationFeed::follow(&api.url("/api/v1/auth/revocations")).unwrap();
    securecrud_tests::eventually(
        "the feed is current",
        std::time::Duration::from_secs(10),
        || async { feed.status().current },
    )
    .await;
    // Outermost: a stateless guard required for every route; inside it, the guard with the feed.
    let app = Router::new()
        .route(
            "/inner",
            get(|auth: Authenticated| async move { auth.user_id().to_string() }),
        )
        .layer(AuthLayer::new(Guard::new(jwks()).with_feed(feed)))
        .layer(AuthLayer::require_authenticated(Guard::new(jwks())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (_, tokens) = api.signed_up("ada_l").await;
    let ask = |token: Option<String>| {
        let mut request = api.client.get(format!("{address}/inner"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_problem(ask(None).await.unwrap(), 401, "unauthorized").await;
    assert_eq!(
        ask(Some(tokens.access_token.clone()))
            .await
            .unwrap()
            .status(),
        200
    );
    api.logout(&tokens).await;
    securecrud_tests::eventually(
        "the inner guard refuses the ended session",
        std::time::Duration::from_secs(1),
        || async {
            ask(Some(tokens.access_token.clone()))
                .await
                .unwrap()
                .status()
                == 401
        },
    )
    .await;
    assert_problem(
        ask(Some(tokens.access_token.clone())).await.unwrap(),
        401,
        "invalid_token",
    )
    .await;
    server.abort();
}

#[actix_web::test]
async fn a_feed_that_may_be_behind_does_not_block_the_routes_that_ask_the_api() {
    use securecrud_auth::feed::RevocationFeed;

    let (api, _dir, _) = eddsa_api().await;
    let (_, tokens) = api.signed_up("ada_l").await;
    for framework in FRAMEWORKS {
        let jwks = jwks_verifier(&api);
        // A feed that never gets current (nothing answers there): with the default options, fail closed.
        let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let feed = RevocationFeed::follow(&format!(
            "http://{}/api/v1/auth/revocations",
            nowhere.local_addr().unwrap()
        ))
        .unwrap();
        drop(nowhere);
        let check = SessionCheck::new(&api.url("/api/v1/auth/check"))
            .unwrap()
            .remember_for(std::time::Duration::ZERO);
        let example = Example::start(
            framework,
            Guard::new(jwks).with_feed(feed).with_session_check(check),
        );
        let get = |path: &str| {
            api.client
                .get(format!("{}{path}", example.address))
                .bearer_auth(&tokens.access_token)
                .send()
        };
        assert_problem(get("/whoami").await.unwrap(), 503, "unavailable").await;
        assert_eq!(
            get("/sensitive").await.unwrap().status(),
            200,
            "{framework:?}: the api was asked"
        );
    }
    api.logout(&tokens).await;
    let example = start_jwks_example_on(Framework::Axum, &api);
    assert_problem(
        api.client
            .get(format!("{}/sensitive", example.address))
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .unwrap(),
        401,
        "invalid_token",
    )
    .await;
}
