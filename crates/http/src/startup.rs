//! Routing and the server: [`configure`] registers every documented route; [`Application`] binds a listener
//! and runs the app, for the `api` binary and the black-box tests alike.

use std::{
    net::TcpListener,
    pin::Pin,
    task::{self, Poll},
};

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
use securecrud_service::{KEYRING_REFRESH, ServerSettings, Services, Settings};

use crate::{
    browser::BrowserSessions,
    client_ip::TrustedProxies,
    docs::{self, OpenApiDocument},
    error::ApiError,
    extract::{form_config, json_config, path_config, query_config},
    framing::ProblemIo,
    handlers::{admin, auth, health, tasks, users, wellknown},
    middleware::{api_rate_limit, fail_fast_without_database, head_as_get, observe},
    stop::stop_on_signal,
};

/// Registers every documented route (OpenAPI is generated from these): each resource module registers its
/// own, under `/api/v1` with the general per-IP limit.
pub fn configure(cfg: &mut web::ServiceConfig<'_>) {
    health::routes(cfg);
    wellknown::routes(cfg);
    cfg.service(
        web::scope("/api/v1")
            .configure(auth::routes)
            .configure(users::routes)
            .configure(tasks::routes)
            .configure(admin::routes)
            .wrap(from_fn(api_rate_limit)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .allowed_header("x-request-id")
        .allowed_header(crate::browser::CSRF_HEADER)
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
    /// The listening socket (a second handle to it), closed first on SIGTERM (see [`crate::stop::stop_on_signal`]).
    listener: TcpListener,
    /// The descriptor actix's accept loop watches that socket through (see `stop.rs`).
    accept_fd: Option<i32>,
    services: Services,
    /// The `METRICS_ADDR` listener's port and server, when metrics are on.
    metrics: Option<(u16, Server)>,
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
        services.refresh_keys().await?;
        Self::with_services(&settings.server, services)
    }

    /// Binds `settings.bind_addr` (port 0 picks a free port) and prepares the server over `services`.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub fn with_services(settings: &ServerSettings, services: Services) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind_addr)
            .with_context(|| format!("could not bind {}", settings.bind_addr))?;
        let port = listener.local_addr().context("no local address")?.port();
        // Bound before anything runs, so that a bad METRICS_ADDR stops start-up cleanly.
        let metrics_listener = settings
            .metrics_addr
            .map(|addr| {
                TcpListener::bind(addr)
                    .with_context(|| format!("could not bind METRICS_ADDR {addr}"))
            })
            .transpose()?;
        let own_listener = listener
            .try_clone()
            .context("could not keep a handle to the listener")?;
        #[cfg(unix)]
        let accept_fd = Some(std::os::fd::AsRawFd::as_raw_fd(&listener));
        #[cfg(not(unix))]
        let accept_fd = None;
        let origins = settings.cors_allowed_origins.clone();
        let sweeper = services.clone();
        // Each worker's requests use a PostgreSQL pool of their own (see `Services::for_this_runtime`): the
        // pool size is shared out among the workers.
        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let per_worker = services
            .pool_size()
            .div_ceil(u32::try_from(workers).unwrap_or(u32::MAX).max(1))
            .max(2);
        let trusted_proxies =
            aweb::Data::new(TrustedProxies::new(settings.trusted_proxies.clone()));
        let browser_sessions = aweb::Data::new(BrowserSessions::new(settings));
        let local_addr = listener.local_addr().context("no local address")?;
        let app = move || {
            // Called on each worker's own runtime, once.
            let services = aweb::Data::new(services.for_this_runtime(per_worker));
            App::new()
                .wrap(from_fn(fail_fast_without_database))
                .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
                .wrap(from_fn(head_as_get))
                .wrap(from_fn(observe))
                .app_data(services.clone())
                .app_data(trusted_proxies.clone())
                .app_data(browser_sessions.clone())
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
        };
        // What actix-web's `HttpServer` assembles, with one difference: each connection's stream is wrapped
        // in `ProblemIo`, so that the answers actix-http gives itself are problem+json too.
        let builder = actix_server::Server::build();
        let shutdown_signal = builder.graceful_shutdown_signal();
        let server = builder
            .workers(workers)
            .shutdown_timeout(settings.shutdown_timeout_secs)
            // SIGTERM and SIGINT are handled by `stop_on_signal`, which refuses new connections first.
            .disable_signals()
            .listen("securecrud-api", listener, move || {
                let signal = shutdown_signal.clone();
                let http = actix_http::HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let signal = signal.clone();
                        async move { signal.notified().await }
                    })
                    // actix-web's defaults.
                    .keep_alive(actix_http::KeepAlive::default())
                    .client_request_timeout(std::time::Duration::from_secs(5))
                    .client_disconnect_timeout(std::time::Duration::from_secs(1))
                    .h1_allow_half_closed(true)
                    .local_addr(local_addr)
                    .finish(actix_service::map_config(
                        actix_service::ServiceFactoryExt::map_err(
                            actix_service::IntoServiceFactory::into_factory(app()),
                            |err: actix_web::Error| err.error_response(),
                        ),
                        // HttpServer would give the listener's address as the host (used only to build URLs
                        // for requests without a Host header, which the api never does); its constructor is
                        // not public.
                        |()| actix_web::dev::AppConfig::default(),
                    ));
                actix_service::ServiceFactoryExt::and_then(
                    actix_service::fn_service(|io: actix_rt::net::TcpStream| async move {
                        let peer = io.peer_addr().ok();
                        Ok((ProblemIo::new(io), actix_http::Protocol::Http1, peer))
                    }),
                    http,
                )
            })
            .context("could not listen")?
            .run();
        let metrics = metrics_listener
            .map(|listener| metrics_server(listener, &sweeper))
            .transpose()?;
        Ok(Self {
            port,
            server,
            listener: own_listener,
            accept_fd,
            services: sweeper,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `GET /metrics` is served on, when `METRICS_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM or SIGINT stop it gracefully: in-flight requests finish, within
    /// `SHUTDOWN_TIMEOUT_SECS`),
    /// with the sweeper, the session-change watcher (PostgreSQL) and the outbox mail sender beside it.
    ///
    /// # Errors
    /// If the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = actix_web::rt::spawn(Background::new(sweep(self.services.clone())));
        let keyring = actix_web::rt::spawn(Background::new(refresh_keys(self.services.clone())));
        // Stops the mail sender between two messages: at the signal, or when the server stops otherwise.
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        let stop_sender = std::sync::Arc::new(stop_sender);
        let draining = actix_web::rt::spawn(Background::new(stop_on_signal(
            self.services.clone(),
            (self.listener, self.accept_fd),
            self.server.handle(),
            std::sync::Arc::clone(&stop_sender),
        )));
        let probe = self.services.clone();
        let availability = actix_web::rt::spawn(Background::new(async move {
            probe.watch_database().await;
        }));
        let listener = self.services.clone();
        let watcher = actix_web::rt::spawn(Background::new(async move {
            listener.watch_session_changes().await;
        }));
        let services = self.services;
        let sender = actix_web::rt::spawn(Background::new(async move {
            services.run_mail_sender(stop).await;
        }));
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, actix_web::rt::spawn(server))
        });
        let served = self.server.await;
        if let Some((handle, server)) = metrics {
            handle.stop(false).await;
            server.abort();
        }
        sweeper.abort();
        keyring.abort();
        draining.abort();
        watcher.abort();
        availability.abort();
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

/// The `METRICS_ADDR` listener: `GET /metrics` in Prometheus's text format, on one worker, apart from the
/// api so that it is never exposed with it.
fn metrics_server(listener: TcpListener, services: &Services) -> anyhow::Result<(u16, Server)> {
    let port = listener.local_addr().context("no local address")?.port();
    let services = services.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(head_as_get))
            .app_data(aweb::Data::new(services.for_this_runtime(1)))
            .route("/metrics", aweb::get().to(metrics))
    })
    .workers(1)
    .shutdown_timeout(1)
    // Never its own signal handling: actix's would stop the whole actix system, the api's workers with
    // it, at SIGTERM, cutting their in-flight requests (the api's `stop_on_signal` stops this server last).
    .disable_signals()
    .listen(listener)
    .context("could not listen on METRICS_ADDR")?
    .run();
    Ok((port, server))
}

/// `GET /metrics`.
async fn metrics(services: aweb::Data<Services>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(services.render_metrics().await)
}

/// A background task's future: dropped as usual inside a Tokio runtime, leaked outside one. The database
/// connections a task may hold give themselves back by spawning a task when dropped, which panics (and
/// aborts the process) when the runtime is being torn down with the task still running, as at the end of a
/// test; leaking them then is harmless, the process or test is ending.
struct Background<F>(Option<Pin<Box<F>>>);

impl<F: Future> Background<F> {
    fn new(future: F) -> Self {
        Self(Some(Box::pin(future)))
    }
}

impl<F: Future> Future for Background<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            Some(future) => future.as_mut().poll(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}

impl<F> Drop for Background<F> {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err()
            && let Some(future) = self.0.take()
        {
            std::mem::forget(future);
        }
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

/// Every [`KEYRING_REFRESH`], takes a new key from `JWT_PRIVATE_KEY_FILE` and accepts the keys other
/// instances installed (EdDSA / ES256 only; nothing to do with HS256).
async fn refresh_keys(services: Services) {
    let mut interval = actix_web::rt::time::interval(KEYRING_REFRESH);
    interval.tick().await;
    loop {
        interval.tick().await;
        match services.refresh_keys().await {
            Ok(false) => return,
            Ok(true) => {}
            Err(err) => log::warn!("refreshing the signing keys failed: {err:#}"),
        }
    }
}
