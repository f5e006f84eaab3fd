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
    actix::{AdminOnly, Authenticated, LiveSessionOnly},
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

/// The service's routes; a verifier must be registered as app data (see [`Verifier`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/whoami", web::get().to(whoami))
        .route("/admin", web::get().to(admin))
        .route("/sensitive", web::get().to(sensitive));
}

/// How this service verifies tokens.
#[derive(Debug)]
pub enum Verifier {
    /// The api's HS256 secret(s): whoever holds them can also mint tokens.
    Secret(JwtVerifier),
    /// The api's published keys: nothing here can mint a token.
    Jwks(JwksVerifier),
}

/// Serves the example on `listener` with `verifier`, `feed` (every route then refuses an ended session's
/// tokens) and, for `/sensitive`, `check`.
pub fn server(
    verifier: Verifier,
    feed: Option<RevocationFeed>,
    check: Option<SessionCheck>,
    listener: TcpListener,
) -> std::io::Result<Server> {
    let (secret, jwks) = match verifier {
        Verifier::Secret(verifier) => (Some(web::Data::new(verifier)), None),
        Verifier::Jwks(verifier) => (None, Some(web::Data::new(verifier))),
    };
    let feed = feed.map(web::Data::new);
    let check = check.map(web::Data::new);
    Ok(HttpServer::new(move || {
        let mut app = App::new();
        if let Some(verifier) = &secret {
            app = app.app_data(verifier.clone());
        }
        if let Some(verifier) = &jwks {
            app = app.app_data(verifier.clone());
        }
        if let Some(feed) = &feed {
            app = app.app_data(feed.clone());
        }
        if let Some(check) = &check {
            app = app.app_data(check.clone());
        }
        app.configure(configure)
    })
    .workers(1)
    .listen(listener)?
    .run())
}

fn secret(raw: &str) -> SecretSlice<u8> {
    SecretSlice::from(raw.as_bytes().to_vec())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let (issuer, audience) = (
        var("JWT_ISSUER", "http://127.0.0.1:8080"),
        var("JWT_AUDIENCE", "securecrud-api"),
    );
    let verifier = if let Ok(url) = std::env::var("JWKS_URL") {
        Verifier::Jwks(JwksVerifier::new(&url, &issuer, &audience).map_err(std::io::Error::other)?)
    } else if let Ok(current) = std::env::var("JWT_SECRET") {
        let previous: Vec<SecretSlice<u8>> = var("JWT_PREVIOUS_SECRETS", "")
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| secret(s.trim()))
            .collect();
        Verifier::Secret(JwtVerifier::new(
            &secret(&current),
            &previous,
            &issuer,
            &audience,
        ))
    } else {
        eprintln!("set JWKS_URL to the api's jwks_uri (or JWT_SECRET to an HS256 api's secret)");
        std::process::exit(2);
    };
    let feed = match std::env::var("FEED_URL") {
        Ok(url) => Some(RevocationFeed::follow(&url).map_err(std::io::Error::other)?),
        Err(_) => None,
    };
    let check = match std::env::var("CHECK_URL") {
        Ok(url) => Some(SessionCheck::new(&url).map_err(std::io::Error::other)?),
        Err(_) => None,
    };
    let addr = var("BIND_ADDR", "127.0.0.1:8081");
    let listener = TcpListener::bind(&addr)?;
    eprintln!("protected_service listening on http://{addr}");
    server(verifier, feed, check, listener)?.await
}
