//! Routing and the server: [`configure`] registers every documented route; [`Application`] binds a listener
//! and runs the app, for the `api` binary and the black-box tests alike.

use std::net::TcpListener;

use actix_cors::Cors;
use actix_web::{
    App, HttpResponse, HttpServer,
    dev::Server,
    http::{Method, header},
    middleware::{Condition, from_fn},
    web as aweb,
};
use anyhow::Context;
use paperclip::{
    actix::{OpenApiExt, web},
    v2::models::DefaultApiRaw,
};
use securecrud_service::{Services, Settings};

use crate::{
    client_ip::TrustedProxies,
    docs::{self, OpenApiDocument},
    error::ApiError,
    extract::{form_config, json_config, path_config, query_config},
    handlers::{admin, auth, health, tasks, users},
    middleware::{api_rate_limit, auth_rate_limit, observe},
};

/// Registers every documented route (OpenAPI is generated from these).
pub fn configure(cfg: &mut web::ServiceConfig<'_>) {
    cfg.service(
        web::resource("/health")
            .route(web::get().to(health::health))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::scope("/api/v1")
            .service(
                web::resource("/auth/register")
                    .route(web::post().to(auth::register))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/auth/login")
                    .route(web::post().to(auth::login))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/auth/token")
                    .route(web::post().to(auth::token))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/auth/refresh")
                    .route(web::post().to(auth::refresh))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/auth/verify-email")
                    .route(web::post().to(auth::verify_email))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/auth/verify-email/resend")
                    .route(web::post().to(auth::resend_verification))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/auth/password-reset/request")
                    .route(web::post().to(auth::request_password_reset))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/auth/password-reset/confirm")
                    .route(web::post().to(auth::confirm_password_reset))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/auth/logout")
                    .route(web::post().to(auth::logout))
                    .default_service(method_not_allowed("POST")),
            )
            .service(
                web::resource("/auth/logout-all")
                    .route(web::post().to(auth::logout_all))
                    .default_service(method_not_allowed("POST")),
            )
            .service(
                web::resource("/users/me")
                    .route(web::get().to(users::me))
                    .route(web::patch().to(users::update_me))
                    .route(web::delete().to(users::delete_me))
                    .default_service(method_not_allowed("GET, PATCH, DELETE"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/users/me/password")
                    .route(web::post().to(users::change_password))
                    .default_service(method_not_allowed("POST"))
                    .wrap(from_fn(auth_rate_limit)),
            )
            .service(
                web::resource("/users/me/sessions")
                    .route(web::get().to(users::sessions))
                    .default_service(method_not_allowed("GET")),
            )
            .service(
                web::resource("/users/me/sessions/{id}")
                    .route(web::delete().to(users::revoke_session))
                    .default_service(method_not_allowed("DELETE")),
            )
            .service(
                web::resource("/tasks")
                    .route(web::get().to(tasks::list))
                    .route(web::post().to(tasks::create))
                    .default_service(method_not_allowed("GET, POST")),
            )
            .service(
                web::resource("/tasks/{id}")
                    .route(web::get().to(tasks::get))
                    .route(web::put().to(tasks::put))
                    .route(web::patch().to(tasks::update))
                    .route(web::delete().to(tasks::delete))
                    .default_service(method_not_allowed("GET, PUT, PATCH, DELETE")),
            )
            .service(
                web::resource("/tasks/{id}/complete")
                    .route(web::patch().to(tasks::complete))
                    .default_service(method_not_allowed("PATCH")),
            )
            .service(
                web::resource("/admin/users")
                    .route(web::get().to(admin::list_users))
                    .default_service(method_not_allowed("GET")),
            )
            .service(
                web::resource("/admin/users/{id}")
                    .route(web::patch().to(admin::update_user))
                    .default_service(method_not_allowed("PATCH")),
            )
            .service(
                web::resource("/admin/users/{id}/unlock")
                    .route(web::post().to(admin::unlock_user))
                    .default_service(method_not_allowed("POST")),
            )
            .service(
                web::resource("/admin/users/{id}/sessions")
                    .route(web::delete().to(admin::revoke_user_sessions))
                    .default_service(method_not_allowed("DELETE")),
            )
            .service(
                web::resource("/admin/tasks")
                    .route(web::get().to(admin::list_tasks))
                    .default_service(method_not_allowed("GET")),
            )
            .service(
                web::resource("/admin/audit")
                    .route(web::get().to(admin::audit))
                    .default_service(method_not_allowed("GET")),
            )
            .wrap(from_fn(api_rate_limit)),
    );
}

/// The fallback of a resource for methods it does not serve: 405 with `Allow`.
fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    aweb::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) })
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .allowed_header("x-request-id")
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
        ])
        .expose_headers(["x-request-id"])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        return cors.allow_any_origin();
    }
    origins
        .iter()
        .fold(cors, |cors, origin| cors.allowed_origin(origin))
}

/// How often the api deletes expired rate-limit counters, idle lockout state and long-ended sessions.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How long shutdown waits for a mail being sent.
const MAIL_SENDER_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// A bound, not yet running api server.
pub struct Application {
    port: u16,
    server: Server,
    services: Services,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects the database (running migrations) and binds `settings.bind_addr`.
    ///
    /// # Errors
    /// If the database cannot be reached or migrated, or the address cannot be bound.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let services = Services::connect(settings).await?;
        Self::with_services(settings, services)
    }

    /// Binds `settings.bind_addr` (port 0 picks a free port) and prepares the server over `services`.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub fn with_services(settings: &Settings, services: Services) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind_addr)
            .with_context(|| format!("could not bind {}", settings.bind_addr))?;
        let port = listener.local_addr().context("no local address")?.port();
        let origins = settings.cors_allowed_origins.clone();
        let sweeper = services.clone();
        let services = aweb::Data::new(services);
        let trusted_proxies = aweb::Data::new(TrustedProxies::new(
            settings.protection.trusted_proxies.clone(),
        ));
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
                .wrap(from_fn(observe))
                .app_data(services.clone())
                .app_data(trusted_proxies.clone())
                .app_data(json_config())
                .app_data(form_config())
                .app_data(query_config())
                .app_data(path_config())
                .route("/openapi.json", aweb::get().to(docs::openapi_json))
                .route("/docs", aweb::get().to(docs::docs_redirect))
                .route("/docs/{file:.*}", aweb::get().to(docs::docs_asset))
                .wrap_api_with_spec(DefaultApiRaw::default())
                .configure(configure)
                .with_raw_json_spec_v3(|app, spec| {
                    let document = docs::finish_document(spec);
                    let bytes = serde_json::to_vec(&document).unwrap_or_default();
                    app.app_data(aweb::Data::new(OpenApiDocument(bytes.into())))
                })
                .build()
                .default_service(aweb::to(not_found))
        })
        .shutdown_timeout(30);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener).context("could not listen")?.run();
        Ok(Self {
            port,
            server,
            services: sweeper,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM or SIGINT stop it gracefully: in-flight requests finish, within 30 s),
    /// with the sweeper and the outbox mail sender running beside it.
    ///
    /// # Errors
    /// If the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = actix_web::rt::spawn(sweep(self.services.clone()));
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        let services = self.services;
        let sender = actix_web::rt::spawn(async move { services.run_mail_sender(stop).await });
        let served = self.server.await;
        sweeper.abort();
        // The message being sent finishes; what is left of its claim goes back to the outbox.
        let _ = stop_sender.send(true);
        if tokio::time::timeout(MAIL_SENDER_GRACE, sender)
            .await
            .is_err()
        {
            log::warn!(
                "the mail sender did not stop in time; its claimed messages will be retried"
            );
        }
        served
    }
}

/// Every [`SWEEP_EVERY`], deletes protection state nobody needs any more (several instances may all sweep:
/// the deletes are idempotent).
async fn sweep(services: Services) {
    let mut interval = actix_web::rt::time::interval(SWEEP_EVERY);
    loop {
        interval.tick().await;
        match services.sweep().await {
            Ok(swept) if swept != Default::default() => log::info!(
                counters = swept.rate_limit_counters, lockouts = swept.login_lockouts,
                sessions = swept.ended_sessions, sent_mail = swept.sent_mail;
                "swept expired protection state and sent mail"
            ),
            Ok(_) => {}
            Err(err) => log::warn!("sweeping expired protection state failed: {err:#}"),
        }
    }
}
