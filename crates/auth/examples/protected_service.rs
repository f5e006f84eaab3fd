//! A separate actix-web service that accepts access tokens issued by the SecureCRUD api.
//!
//! ```sh
//! JWT_SECRET=<the api's secret> BIND_ADDR=127.0.0.1:8081 \
//!   cargo run -p securecrud-auth --features actix --example protected_service
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/whoami   # any valid token
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/admin    # admins only (403 otherwise)
//! ```
//!
//! Environment: `JWT_SECRET` (required, the api's), `JWT_PREVIOUS_SECRETS` (optional, comma-separated),
//! `JWT_ISSUER` (`securecrud`), `JWT_AUDIENCE` (`securecrud-api`), `BIND_ADDR` (`127.0.0.1:8081`).

use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};
use secrecy::SecretSlice;
use securecrud_auth::{
    JwtVerifier,
    actix::{AdminOnly, Authenticated},
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

/// The service's routes; the verifier must be registered as `web::Data<JwtVerifier>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/whoami", web::get().to(whoami))
        .route("/admin", web::get().to(admin));
}

/// Serves the example on `listener` with `verifier`.
pub fn server(verifier: JwtVerifier, listener: TcpListener) -> std::io::Result<Server> {
    let verifier = web::Data::new(verifier);
    Ok(
        HttpServer::new(move || App::new().app_data(verifier.clone()).configure(configure))
            .workers(1)
            .listen(listener)?
            .run(),
    )
}

fn secret(raw: &str) -> SecretSlice<u8> {
    SecretSlice::from(raw.as_bytes().to_vec())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let Ok(current) = std::env::var("JWT_SECRET") else {
        eprintln!("JWT_SECRET must be set to the api's secret");
        std::process::exit(2);
    };
    let previous: Vec<SecretSlice<u8>> = var("JWT_PREVIOUS_SECRETS", "")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| secret(s.trim()))
        .collect();
    let verifier = JwtVerifier::new(
        &secret(&current),
        &previous,
        &var("JWT_ISSUER", "securecrud"),
        &var("JWT_AUDIENCE", "securecrud-api"),
    );
    let addr = var("BIND_ADDR", "127.0.0.1:8081");
    let listener = TcpListener::bind(&addr)?;
    eprintln!("protected_service listening on http://{addr}");
    server(verifier, listener)?.await
}
