//! The auth crate's `RevocationFeed` in the example actix service, against a real api signing with an
//! Ed25519 key (the service holds no secret): a session ended any way is refused within a second with no call
//! to the api per request; endings while the api was down arrive once it is back; a feed behind for longer
//! than its lag fails closed (or open, if the service chose that).

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use securecrud_auth::{
    feed::{FeedOptions, OnLag, RevocationFeed},
    remote::JwksVerifier,
};
use securecrud_tests::{FreshDatabase, PASSWORD, TestApp, Tokens, assert_problem, eventually};
use serde_json::json;

use crate::auth_crate::protected_service;

/// The contract's bound, from the ending's answer to the service's refusal.
const WITHIN: Duration = Duration::from_secs(1);

struct Service {
    address: String,
    feed: RevocationFeed,
    handle: actix_web::dev::ServerHandle,
    client: reqwest::Client,
}

impl Drop for Service {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl Service {
    /// The example service verifying `api`'s tokens from its JWKS and following its feed.
    async fn start(api: &TestApp, options: FeedOptions) -> Self {
        let jwks = JwksVerifier::new(
            &api.url("/.well-known/jwks.json"),
            api.services.issuer(),
            "securecrud-api",
        )
        .unwrap();
        let feed =
            RevocationFeed::follow_with(&api.url("/api/v1/auth/revocations"), options).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let server = protected_service::server(
            protected_service::Verifier::Jwks(jwks),
            Some(feed.clone()),
            None,
            listener,
        )
        .unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let service = Self {
            address,
            feed,
            handle,
            client: reqwest::Client::new(),
        };
        service.until_current().await;
        service
    }

    async fn until_current(&self) {
        eventually("the feed is current", Duration::from_secs(10), || async {
            self.feed.status().current
        })
        .await;
    }

    async fn whoami(&self, tokens: &Tokens) -> reqwest::Response {
        self.client
            .get(format!("{}/whoami", self.address))
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .unwrap()
    }

    /// How long after `since` the service refused `tokens` (polling every 10 ms, for at most 5 s).
    async fn refused_after(&self, tokens: &Tokens, since: Instant) -> Duration {
        loop {
            let response = self.whoami(tokens).await;
            if response.status() == 401 {
                assert_problem(response, 401, "invalid_token").await;
                return since.elapsed();
            }
            assert_eq!(response.status(), 200);
            assert!(since.elapsed() < Duration::from_secs(5), "never refused");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn eddsa_api(extra: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let (dir, path) = securecrud_tests::key_file(securecrud_auth::KeyAlgorithm::EdDsa);
    let key_file = path.display().to_string();
    let mut vars = vec![
        ("JWT_ALGORITHM", "EdDSA"),
        ("JWT_PRIVATE_KEY_FILE", key_file.as_str()),
        ("METRICS_ADDR", "127.0.0.1:0"),
    ];
    vars.extend_from_slice(extra);
    (TestApp::spawn_with(&vars).await, dir)
}

/// Every request the api has answered so far, from its metrics.
async fn answered(api: &TestApp) -> f64 {
    let address = api.metrics_address.as_ref().expect("METRICS_ADDR is set");
    let text = api
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("securecrud_http_request_duration_seconds_count"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn every_kind_of_ending_is_refused_within_a_second_with_no_call_to_the_api_per_request() {
    let (api, _dir) = eddsa_api(&[]).await;
    let service = Service::start(&api, FeedOptions::default()).await;
    let admin = api.admin_token("root").await;
    let (user, first) = api.signed_up("ada_l").await;
    let others: Vec<Tokens> = vec![
        api.tokens("ada_l").await,
        api.tokens("ada_l").await,
        api.tokens("ada_l").await,
    ];

    // Verified on its own: fifty requests, not one to the api.
    assert_eq!(service.whoami(&first).await.status(), 200);
    let before = answered(&api).await;
    for _ in 0..50 {
        assert_eq!(service.whoami(&first).await.status(), 200);
    }
    assert_eq!(answered(&api).await, before, "no request reached the api");

    // A logout.
    let ended = Instant::now();
    let response = api
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": first.refresh_token.clone()}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let took = service.refused_after(&first, ended).await;
    assert!(took < WITHIN, "logout refused after {took:?}");
    assert_eq!(
        service.whoami(&others[0]).await.status(),
        200,
        "the others live"
    );

    // An admin ending a session of the user (the api's own revoke of one session).
    let ended = Instant::now();
    let response = api
        .client
        .delete(api.url(&format!(
            "/api/v1/users/me/sessions/{}",
            securecrud_tests::jwt_claims(&others[0].access_token)["sid"]
                .as_str()
                .unwrap()
        )))
        .bearer_auth(&others[1].access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let took = service.refused_after(&others[0], ended).await;
    assert!(took < WITHIN, "a revoked session refused after {took:?}");

    // A password change ends the other sessions.
    let ended = Instant::now();
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    let response = api
        .post_json_authed(
            "/api/v1/users/me/password",
            &others[1].access_token,
            &change,
        )
        .await;
    assert_eq!(response.status(), 204);
    let took = service.refused_after(&others[2], ended).await;
    assert!(took < WITHIN, "a password change refused after {took:?}");
    assert_eq!(
        service.whoami(&others[1]).await.status(),
        200,
        "the changer's own lives"
    );

    // An admin ending every session of the user.
    let ended = Instant::now();
    let response = api
        .client
        .delete(api.url(&format!("/api/v1/admin/users/{}/sessions", user.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let took = service.refused_after(&others[1], ended).await;
    assert!(took < WITHIN, "an admin revoke refused after {took:?}");

    // logout-all
    let (_, mine) = api.signed_up("grace_h").await;
    let also = api.tokens("grace_h").await;
    assert_eq!(service.whoami(&also).await.status(), 200);
    let ended = Instant::now();
    let response = api
        .post_json_authed("/api/v1/auth/logout-all", &mine.access_token, &json!({}))
        .await;
    assert_eq!(response.status(), 204);
    let took = service.refused_after(&also, ended).await;
    assert!(took < WITHIN, "logout-all refused after {took:?}");
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn endings_while_the_api_was_down_arrive_once_it_is_back() {
    let database = FreshDatabase::create().await;
    let (_dir, path) = securecrud_tests::key_file(securecrud_auth::KeyAlgorithm::EdDsa);
    let key_file = path.display().to_string();
    let bind = format!("127.0.0.1:{}", free_port());
    let vars = [
        ("JWT_ALGORITHM", "EdDSA"),
        ("JWT_PRIVATE_KEY_FILE", key_file.as_str()),
        ("BIND_ADDR", bind.as_str()),
    ];
    let api = TestApp::spawn_on_with(&database, &vars).await;
    // A long lag: the restart must not make the service refuse meanwhile.
    let options = FeedOptions {
        max_lag: Duration::from_secs(60),
        on_lag: OnLag::Refuse,
    };
    let service = Service::start(&api, options).await;
    let (_, tokens) = api.signed_up("ada_l").await;
    assert_eq!(service.whoami(&tokens).await.status(), 200);
    let connections = service.feed.status().connections;

    // The api stops; while it is down, the session ends (through another instance, or the command line).
    drop(api);
    let other = TestApp::spawn_on_with(
        &database,
        &[
            ("JWT_ALGORITHM", "EdDSA"),
            ("JWT_PRIVATE_KEY_FILE", key_file.as_str()),
        ],
    )
    .await;
    let response = other
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": tokens.refresh_token.clone()}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        service.whoami(&tokens).await.status(),
        200,
        "not heard of yet"
    );

    // The api is back on its address: the service reconnects with its last event id and hears of it.
    let _api = TestApp::spawn_on_with(&database, &vars).await;
    eventually(
        "the ending is heard of",
        Duration::from_secs(10),
        || async { service.whoami(&tokens).await.status() == 401 },
    )
    .await;
    assert!(
        service.feed.status().connections > connections,
        "it reconnected"
    );
}

#[actix_web::test]
async fn a_feed_behind_for_longer_than_its_lag_fails_closed_or_open_as_chosen() {
    let (api, _dir) = eddsa_api(&[]).await;
    // Longer than stopping the api takes (its database is dropped with it), so that the check just after the
    // stop falls within it.
    let lag = Duration::from_secs(3);
    let closed = Service::start(
        &api,
        FeedOptions {
            max_lag: lag,
            on_lag: OnLag::Refuse,
        },
    )
    .await;
    let open = Service::start(
        &api,
        FeedOptions {
            max_lag: lag,
            on_lag: OnLag::AcceptStateless,
        },
    )
    .await;
    let (_, tokens) = api.signed_up("ada_l").await;
    assert_eq!(closed.whoami(&tokens).await.status(), 200);
    assert_eq!(open.whoami(&tokens).await.status(), 200);

    // The api goes away (the feed is cut); within the lag both still accept, past it the one that chose to
    // fail closed refuses.
    drop(api);
    assert_eq!(closed.whoami(&tokens).await.status(), 200, "within the lag");
    eventually("the feed is behind", Duration::from_secs(10), || async {
        !closed.feed.status().current
    })
    .await;

    let refused = closed.whoami(&tokens).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 503, "unavailable").await;
    assert!(!closed.feed.status().current);
    assert_eq!(
        open.whoami(&tokens).await.status(),
        200,
        "stateless by choice"
    );
}
