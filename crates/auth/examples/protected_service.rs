//! A separate actix-web service that accepts access tokens issued by the SecureCRUD api.
//!
//! With the api signing with a key pair (`JWT_ALGORITHM=EdDSA` or `ES256`), this service holds no secret: it
//! verifies tokens with the keys the api publishes.
//!
//! ```sh
//! JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json \
//! FEED_URL=http://127.0.0.1:8080/api/v1/auth/revocations \
//! CHECK_URL=http://127.0.0.1:8080/api/v1/auth/check BIND_ADDR=127.0.0.1:8081 \
//!   cargo run -p securecrud-auth --features actix,jwks --example protected_service
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/whoami     # any valid token
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/admin      # admins only (403 otherwise)
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/sensitive  # and the session still live
//! ```
//!
//! Environment: `JWKS_URL` (the api's `jwks_uri`), or instead `JWT_SECRET` (an HS256 api's secret) and
//! `JWT_PREVIOUS_SECRETS` (optional, comma-separated); `FEED_URL` (optional: the api's
//! `/api/v1/auth/revocations`; every route then refuses a logged-out session within a second, with no call
//! to the api per request, and answers `503` while the feed is over 15 s behind); `CHECK_URL` (optional: the api's `/api/v1/auth/check`,
//! which `/sensitive` needs); `JWT_ISSUER` (`http://127.0.0.1:8080`, the api's default `PUBLIC_BASE_URL`),
//! `JWT_AUDIENCE` (`securecrud-api`), `BIND_ADDR` (`127.0.0.1:8081`).

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};
use secrecy::SecretSlice;
use securecrud_auth::{
    JwtVerifier,
    actix::{AdminOnly, Authenticated, Guard, LiveSessionOnly},
    feed::RevocationFeed,
    remote::{JwksVerifier, SessionCheck},
};

/// `GET /whoami`: who the token says the caller is.
async fn whoami(auth: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": auth.user_id().to_string(),
        "session_id": auth.session_id().to_string(),
        "role": auth.claims.role,
    }))
}

/// `GET /admin`: only for tokens with the `admin` role.
async fn admin(AdminOnly(auth): AdminOnly) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "admin": auth.user_id().to_string() }))
}

/// `GET /sensitive`: only while the api says the token's session is live (a logout is seen at once).
async fn sensitive(live: LiveSessionOnly) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": live.session.user_id,
        "role_now": live.session.role,
    }))
}

/// The service's routes; a `web::Data<Guard>` must be registered as app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/whoami", web::get().to(whoami))
        .route("/admin", web::get().to(admin))
        .route("/sensitive", web::get().to(sensitive));
}

/// Serves the example on `listener`, checking tokens with `guard`.
pub fn server(guard: Guard, listener: TcpListener) -> std::io::Result<Server> {
    let guard = web::Data::new(guard);
    Ok(
        HttpServer::new(move || App::new().app_data(guard.clone()).configure(configure))
            .workers(1)
            .listen(listener)?
            .run(),
    )
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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let guard = guard_from_env()?;
    let addr = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".to_owned());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("protected_service listening on http://{addr}");
    server(guard, listener)?.await
}
