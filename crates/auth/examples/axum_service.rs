//! A separate axum service that accepts access tokens issued by the SecureCRUD api: the axum twin of the
//! `protected_service` example (same routes, same answers), plus a part of the router guarded as a whole by
//! a tower layer.
//!
//! With the api signing with a key pair (`JWT_ALGORITHM=EdDSA` or `ES256`), this service holds no secret: it
//! verifies tokens with the keys the api publishes, and with `FEED_URL` it refuses a logged-out session
//! within a second without asking the api per request.
//!
//! ```sh
//! JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json \
//! FEED_URL=http://127.0.0.1:8080/api/v1/auth/revocations \
//! CHECK_URL=http://127.0.0.1:8080/api/v1/auth/check BIND_ADDR=127.0.0.1:8082 \
//!   cargo run -p securecrud-auth --features axum,jwks --example axum_service
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8082/whoami        # any valid token
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8082/admin         # admins only (403 otherwise)
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8082/sensitive     # and the session still live
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8082/admin-area/report  # the layer: admins only
//! ```
//!
//! Environment: as `protected_service` (`JWKS_URL` or `JWT_SECRET` / `JWT_PREVIOUS_SECRETS`, `FEED_URL`,
//! `CHECK_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`), and `BIND_ADDR` (`127.0.0.1:8082`).

use axum::{Json, Router, routing::get};
use secrecy::SecretSlice;
use securecrud_auth::{
    JwtVerifier,
    axum::{AdminOnly, AuthLayer, Authenticated, Guard, LiveSessionOnly},
    feed::RevocationFeed,
    remote::{JwksVerifier, SessionCheck},
};
use serde_json::{Value, json};

/// `GET /whoami`: who the token says the caller is.
async fn whoami(auth: Authenticated) -> Json<Value> {
    Json(json!({
        "user_id": auth.user_id().to_string(),
        "session_id": auth.session_id().to_string(),
        "role": auth.claims.role,
    }))
}

/// `GET /admin`: only for tokens with the `admin` role.
async fn admin(AdminOnly(auth): AdminOnly) -> Json<Value> {
    Json(json!({ "admin": auth.user_id().to_string() }))
}

/// `GET /sensitive`: only while the api says the token's session is live (a logout is seen at once).
async fn sensitive(live: LiveSessionOnly) -> Json<Value> {
    Json(json!({
        "user_id": live.session.user_id,
        "role_now": live.session.role,
    }))
}

/// `GET /admin-area/report`: the layer let only admins in; the handler reads who, verified once.
async fn report(auth: Authenticated) -> Json<Value> {
    Json(json!({ "report_for": auth.user_id().to_string() }))
}

/// The service's routes, checking tokens with `guard`.
pub fn router(guard: Guard) -> Router {
    let admin_area = Router::new()
        .route("/admin-area/report", get(report))
        .layer(AuthLayer::require_admin(guard.clone()));
    Router::new()
        .route("/whoami", get(whoami))
        .route("/admin", get(admin))
        .route("/sensitive", get(sensitive))
        .merge(admin_area)
        .layer(AuthLayer::new(guard))
}

/// Serves the example on `listener` until the task is dropped.
pub async fn serve(guard: Guard, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router(guard)).await
}

fn secret(raw: &str) -> SecretSlice<u8> {
    SecretSlice::from(raw.as_bytes().to_vec())
}

/// The guard the environment describes (see the module).
fn guard_from_env() -> std::io::Result<Guard> {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let (issuer, audience) = (
        var("JWT_ISSUER", "http://127.0.0.1:8080"),
        var("JWT_AUDIENCE", "securecrud-api"),
    );
    let mut guard = if let Ok(url) = std::env::var("JWKS_URL") {
        Guard::new(JwksVerifier::new(&url, &issuer, &audience).map_err(std::io::Error::other)?)
    } else if let Ok(current) = std::env::var("JWT_SECRET") {
        let previous: Vec<SecretSlice<u8>> = var("JWT_PREVIOUS_SECRETS", "")
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| secret(s.trim()))
            .collect();
        Guard::new(JwtVerifier::new(
            &secret(&current),
            &previous,
            &issuer,
            &audience,
        ))
    } else {
        return Err(std::io::Error::other(
            "set JWKS_URL to the api's jwks_uri (or JWT_SECRET to an HS256 api's secret)",
        ));
    };
    if let Ok(url) = std::env::var("FEED_URL") {
        guard = guard.with_feed(RevocationFeed::follow(&url).map_err(std::io::Error::other)?);
    }
    if let Ok(url) = std::env::var("CHECK_URL") {
        guard = guard.with_session_check(SessionCheck::new(&url).map_err(std::io::Error::other)?);
    }
    Ok(guard)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let guard = guard_from_env()?;
    let addr = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:8082".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("axum_service listening on http://{addr}");
    serve(guard, listener).await
}
