//! Routing and the server: [`configure`] registers every documented route; [`Application`] binds a listener
//! and runs the app, for the `api` binary and the black-box tests alike.

use std::net::TcpListener;

use actix_cors::Cors;
use actix_web::{
    App, HttpResponse, HttpServer,
    body::MessageBody,
    dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::{Condition, from_fn},
    web as aweb,
};
use anyhow::Context;
use paperclip::{
    actix::{OpenApiExt, web},
    v2::models::DefaultApiRaw,
};
use securecrud_service::{ServerSettings, Services, Settings};

use crate::{
    background::Background,
    browser::BrowserSessions,
    client_ip::TrustedProxies,
    docs::{self, OpenApiDocument},
    error::ApiError,
    extract::{form_config, json_config, path_config, query_config},
    framing::ProblemIo,
    handlers::{admin, auth, health, oidc, passkeys, tasks, users, wellknown},
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
            .configure(passkeys::routes)
            .configure(oidc::routes)
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
        let server = api_server(listener, settings, services.clone())?;
        let metrics = metrics_listener
            .map(|listener| metrics_server(listener, &services))
            .transpose()?;
        Ok(Self {
            port,
            server,
            listener: own_listener,
            accept_fd,
            services,
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

    /// The services this api runs on (a clone shares everything with it: the pool, the caches, the
    /// clock).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM or SIGINT stop it gracefully: in-flight requests finish, within
    /// `SHUTDOWN_TIMEOUT_SECS`), with the background tasks beside it (see `background`), which are then
    /// stopped and awaited.
    ///
    /// # Errors
    /// If the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut background = Background::start(&self.services);
        let draining = stop_on_signal(
            self.services,
            (self.listener, self.accept_fd),
            self.server.handle(),
            background.mail_stopper(),
        );
        background.run("graceful stop", draining);
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, actix_web::rt::spawn(server))
        });
        let served = self.server.await;
        if let Some((handle, server)) = metrics {
            handle.stop(false).await;
            let _ = server.await;
        }
        // The message being sent finishes; what is left of its claim goes back to the outbox.
        background.stop().await;
        served
    }
}

/// The api's server on `listener`, not yet running: `services` shared out among its workers, each with a
/// PostgreSQL pool of its own (see `Services::for_this_runtime`).
fn api_server(
    listener: TcpListener,
    settings: &ServerSettings,
    services: Services,
) -> anyhow::Result<Server> {
    let (workers, per_worker) = workers(settings, &services);
    let shared = Shared {
        origins: settings.cors_allowed_origins.clone(),
        trusted_proxies: aweb::Data::new(TrustedProxies::new(settings.trusted_proxies.clone())),
        browser_sessions: aweb::Data::new(BrowserSessions::new(settings)),
    };
    let local_addr = listener.local_addr().context("no local address")?;
    // Called on each worker's own runtime, once.
    let app = move || app(services.for_this_runtime(per_worker), shared.clone());
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
    Ok(server)
}

/// How many workers (`WORKERS`, by default one a core), and how many PostgreSQL connections each worker's
/// pool may open: the pool size shared out among them.
fn workers(settings: &ServerSettings, services: &Services) -> (usize, u32) {
    let workers = settings
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let per_worker = services
        .pool_size()
        .div_ceil(u32::try_from(workers).unwrap_or(u32::MAX).max(1))
        .max(2);
    (workers, per_worker)
}

/// What every worker's app shares: the CORS origins, the trusted proxies, the browser-session settings.
#[derive(Clone)]
struct Shared {
    origins: Vec<String>,
    trusted_proxies: aweb::Data<TrustedProxies>,
    browser_sessions: aweb::Data<BrowserSessions>,
}

/// The api over one worker's `services`: the middleware, the app data, the documented routes (with the
/// OpenAPI document made from them) and the documentation.
fn app(
    services: Services,
    shared: Shared,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(from_fn(fail_fast_without_database))
        .wrap(Condition::new(
            !shared.origins.is_empty(),
            cors(&shared.origins),
        ))
        .wrap(from_fn(head_as_get))
        .wrap(from_fn(observe))
        .app_data(aweb::Data::new(services))
        .app_data(shared.trusted_proxies)
        .app_data(shared.browser_sessions)
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
