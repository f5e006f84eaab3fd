//! The auth crate's `RevocationFeed` in both example services (actix-web and axum), against a real api signing with an
//! Ed25519 key (the service holds no secret): a session ended any way is refused within a second with no call
//! to the api per request; endings while the api was down arrive once it is back; a feed behind for longer
//! than its lag fails closed (or open, if the service chose that).

use std::time::{Duration, Instant};

use securecrud_auth::{
    feed::{FeedOptions, OnLag, RevocationFeed},
    guard::Guard,
};
use securecrud_tests::{FreshDatabase, PASSWORD, TestApp, Tokens, assert_problem, eventually};
use serde_json::json;

use crate::auth_crate::{Example, FRAMEWORKS, Framework, jwks_verifier};

/// The contract's bound, from the ending's answer to the service's refusal.
const WITHIN: Duration = Duration::from_secs(1);

struct Service {
    framework: Framework,
    example: Example,
    feed: RevocationFeed,
    client: reqwest::Client,
}

impl Service {
    /// The `framework`'s example service verifying `api`'s tokens from its JWKS and following its feed.
    async fn start(framework: Framework, api: &TestApp, options: FeedOptions) -> Self {
        let jwks = jwks_verifier(api);
        let feed =
            RevocationFeed::follow_with(&api.url("/api/v1/auth/revocations"), options).unwrap();
        let example = Example::start(framework, Guard::new(jwks).with_feed(feed.clone()));
        let service = Self {
            framework,
            example,
            feed,
            client: reqwest::Client::new(),
        };
        service.until_current().await;
        service
    }

    /// One service of each framework.
    async fn both(api: &TestApp, options: FeedOptions) -> [Self; 2] {
        [
            Self::start(FRAMEWORKS[0], api, options).await,
            Self::start(FRAMEWORKS[1], api, options).await,
        ]
    }

    async fn until_current(&self) {
        eventually("the feed is current", Duration::from_secs(10), || async {
            self.feed.status().current
        })
        .await;
    }

    async fn whoami(&self, tokens: &Tokens) -> reqwest::Response {
        self.client
            .get(format!("{}/whoami", self.example.address))
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
            assert_eq!(response.status(), 200, "{:?}", self.framework);
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "{:?} never refused",
                self.framework
            );
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

/// Each service's answers to `tokens`.
async fn statuses(services: &[Service], tokens: &Tokens) -> Vec<u16> {
    let mut statuses = Vec::new();
    for service in services {
        statuses.push(service.whoami(tokens).await.status().as_u16());
    }
    statuses
}

/// Asserts that every one of `services` refused `tokens` within [`WITHIN`] of `since`, when `what` ended
/// their session.
async fn refused_by_all_within_a_second(
    services: &[Service],
    tokens: &Tokens,
    since: Instant,
    what: &str,
) {
    for service in services {
        let took = service.refused_after(tokens, since).await;
        assert!(
            took < WITHIN,
            "{:?}: {what} refused after {took:?}",
            service.framework
        );
    }
}

#[actix_web::test]
async fn every_kind_of_ending_is_refused_within_a_second_with_no_call_to_the_api_per_request() {
    let (api, _dir) = eddsa_api(&[]).await;
    let services = Service::both(&api, FeedOptions::default()).await;
    let admin = api.admin_token("root").await;
    let (user, first) = api.signed_up("ada_l").await;
    let others: Vec<Tokens> = vec![
        api.tokens("ada_l").await,
        api.tokens("ada_l").await,
        api.tokens("ada_l").await,
    ];

    // Verified on its own: fifty requests, not one to the api.
    assert_eq!(statuses(&services, &first).await, [200, 200]);
    let before = answered(&api).await;
    for _ in 0..50 {
        assert_eq!(statuses(&services, &first).await, [200, 200]);
    }
    assert_eq!(answered(&api).await, before, "no request reached the api");

    // A logout.
    let ended = Instant::now();
    api.logout(&first).await;
    refused_by_all_within_a_second(&services, &first, ended, "logout").await;
    assert_eq!(
        statuses(&services, &others[0]).await,
        [200, 200],
        "the others live"
    );

    // The user ending one of their sessions from another (`DELETE /users/me/sessions/{id}`).
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
    refused_by_all_within_a_second(&services, &others[0], ended, "a revoked session").await;

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
    refused_by_all_within_a_second(&services, &others[2], ended, "a password change").await;
    assert_eq!(
        statuses(&services, &others[1]).await,
        [200, 200],
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
    refused_by_all_within_a_second(&services, &others[1], ended, "an admin revoke").await;

    // logout-all
    let (_, mine) = api.signed_up("grace_h").await;
    let also = api.tokens("grace_h").await;
    assert_eq!(statuses(&services, &also).await, [200, 200]);
    let ended = Instant::now();
    let response = api
        .post_json_authed("/api/v1/auth/logout-all", &mine.access_token, &json!({}))
        .await;
    assert_eq!(response.status(), 204);
    refused_by_all_within_a_second(&services, &also, ended, "logout-all").await;
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
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
    let services = Service::both(&api, options).await;
    let (_, tokens) = api.signed_up("ada_l").await;
    assert_eq!(statuses(&services, &tokens).await, [200, 200]);
    let connections: Vec<u64> = services
        .iter()
        .map(|service| service.feed.status().connections)
        .collect();

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
    other.logout(&tokens).await;
    assert_eq!(
        statuses(&services, &tokens).await,
        [200, 200],
        "not heard of yet"
    );

    // The api is back on its address: the service reconnects with its last event id and hears of it.
    let _api = TestApp::spawn_on_with(&database, &vars).await;
    eventually(
        "the ending is heard of",
        Duration::from_secs(10),
        || async { statuses(&services, &tokens).await == [401, 401] },
    )
    .await;
    for (service, before) in services.iter().zip(connections) {
        assert!(
            service.feed.status().connections > before,
            "{:?} reconnected",
            service.framework
        );
    }
}

#[actix_web::test]
async fn a_feed_behind_for_longer_than_its_lag_fails_closed_or_open_as_chosen() {
    let (api, _dir) = eddsa_api(&[]).await;
    // Longer than stopping the api takes (its database is dropped with it), so that the check just after the
    // stop falls within it.
    let lag = Duration::from_secs(3);
    let closed = Service::both(
        &api,
        FeedOptions {
            max_lag: lag,
            on_lag: OnLag::Refuse,
        },
    )
    .await;
    let open = Service::start(
        Framework::Axum,
        &api,
        FeedOptions {
            max_lag: lag,
            on_lag: OnLag::AcceptStateless,
        },
    )
    .await;
    let (_, tokens) = api.signed_up("ada_l").await;
    assert_eq!(statuses(&closed, &tokens).await, [200, 200]);
    assert_eq!(open.whoami(&tokens).await.status(), 200);

    // The api goes away (the feed is cut); within the lag all still accept, past it the ones that chose to
    // fail closed refuse.
    drop(api);
    assert_eq!(
        statuses(&closed, &tokens).await,
        [200, 200],
        "within the lag"
    );
    for service in &closed {
        eventually("the feed is behind", Duration::from_secs(10), || async {
            !service.feed.status().current
        })
        .await;
        let refused = service.whoami(&tokens).await;
        assert_eq!(
            refused.headers()["retry-after"],
            "5",
            "{:?}",
            service.framework
        );
        assert_problem(refused, 503, "unavailable").await;
        assert!(!service.feed.status().current);
    }
    assert_eq!(
        open.whoami(&tokens).await.status(),
        200,
        "stateless by choice"
    );
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// 100 sessions of `api`, ended one by one at `ending` while `service` (following a feed) is under load from
/// four clients: how long after each logout's answer the service first refused the session's token.
async fn logout_latencies(
    ending: &TestApp,
    service: &Service,
    sessions: Vec<Tokens>,
) -> Vec<Duration> {
    let live = ending.tokens("load_l").await;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let measure = async {
        let mut latencies = Vec::new();
        for tokens in &sessions {
            let ended = Instant::now();
            ending.logout(tokens).await;
            latencies.push(service.refused_after(tokens, ended).await);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        latencies
    };
    let (latencies, a, b, c, d) = tokio::join!(
        measure,
        hammer(service, &live, &stop),
        hammer(service, &live, &stop),
        hammer(service, &live, &stop),
        hammer(service, &live, &stop)
    );
    assert!(
        a + b + c + d > 400,
        "the service was under load: {} requests",
        a + b + c + d
    );
    latencies
}

/// Asks `service` with `live` until `stop`; how many times.
async fn hammer(service: &Service, live: &Tokens, stop: &std::sync::atomic::AtomicBool) -> u32 {
    let mut answered = 0_u32;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let response = service.whoami(live).await;
        let status = response.status();
        assert_eq!(
            status,
            200,
            "the load's own session lives: {}",
            response.text().await.unwrap()
        );
        answered += 1;
    }
    answered
}

/// p50 / p99 / max of `latencies`, asserting the contract's bound on p99.
fn report(what: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let (p50, p99, max) = (
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0),
    );
    eprintln!(
        "revocation-to-refusal, {what}, {} logouts ({:?}): p50 {p50:?}, p99 {p99:?}, max {max:?}",
        latencies.len(),
        securecrud_tests::Backend::current(),
    );
    assert!(p99 <= WITHIN, "{what}: p99 {p99:?} over {WITHIN:?}");
}

#[actix_web::test]
async fn a_hundred_logouts_under_load_are_refused_within_a_second_at_p99_on_one_instance_and_across_two()
 {
    let database = FreshDatabase::create().await;
    let (_dir, path) = securecrud_tests::key_file(securecrud_auth::KeyAlgorithm::EdDsa);
    let key_file = path.display().to_string();
    let vars = [
        ("JWT_ALGORITHM", "EdDSA"),
        ("JWT_PRIVATE_KEY_FILE", key_file.as_str()),
    ];
    let first = TestApp::spawn_on_with(&database, &vars).await;
    let second = TestApp::spawn_on_with(&database, &vars).await;
    first.signed_up("ada_l").await;
    first.signed_up("load_l").await;
    let mut sessions = Vec::new();
    for _ in 0..200 {
        sessions.push(first.tokens("ada_l").await);
    }
    let across = sessions.split_off(100);

    // The service follows the feed of the instance where the sessions end.
    let service = Service::start(Framework::Axum, &first, FeedOptions::default()).await;
    report(
        "one instance",
        logout_latencies(&first, &service, sessions).await,
    );
    drop(service);

    // The service follows the other instance: endings reach it through the database.
    let service = Service::start(Framework::Axum, &second, FeedOptions::default()).await;
    report(
        "ended on one instance, fed by another",
        logout_latencies(&first, &service, across).await,
    );
}
