//! The auth crate's example service, run against tokens from a real api instance.

use std::net::TcpListener;

use secrecy::SecretSlice;
use securecrud_auth::JwtVerifier;
use securecrud_tests::{TEST_JWT_SECRET, TestApp, assert_problem, text};
use serde_json::{Value, json};

#[allow(
    dead_code,
    reason = "only some of the example's items are used here; which depends on the build (check or clippy)"
)]
#[path = "../../crates/auth/examples/protected_service.rs"]
mod protected_service;

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
        "securecrud",
        "securecrud-api",
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = protected_service::server(verifier, listener).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Example { address, handle }
}

#[actix_web::test]
async fn the_example_service_accepts_tokens_issued_by_the_api() {
    let api = TestApp::spawn().await;
    let example = start_example(TEST_JWT_SECRET);
    let (user, pair) = api.signed_up("ada_l").await;
    let token = text(&pair, "access_token");

    let whoami = api
        .client
        .get(format!("{}/whoami", example.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(whoami.status(), 200);
    let body: Value = whoami.json().await.unwrap();
    assert_eq!(body["user_id"], user["id"]);
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
    let token = text(&pair, "access_token");
    api.post_json(
        "/api/v1/auth/logout",
        &json!({"refresh_token": text(&pair, "refresh_token")}),
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
