//! The request middleware: request id, access log, security headers, and the problem+json safety net.
//!
//! One `from_fn` middleware, outermost, so that it sees every response, including errors raised by other
//! middleware (CORS) and by routing:
//! - `X-Request-Id`: the client's value when it is 1–128 characters of `[A-Za-z0-9._:-]`, else a new UUID.
//!   It is set as a task-local for the request so that error bodies can carry it.
//! - Errors that reach here as `Err`, or as a non-problem error response, are turned into problem+json.
//! - Security headers on every response; `Cache-Control: no-store` unless a handler chose a policy.
//! - One access-log line: method, path (no query string), status, duration, request id, user id if known.
//!   Never headers or bodies, so no token or password reaches the log.
//!
//! Beside it, the rate limiters: [`api_rate_limit`] on `/api/v1` (in memory) and [`auth_rate_limit`] on the
//! auth endpoints (in the database).

use std::time::Instant;

use actix_web::{
    Error, HttpMessage, HttpResponse, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    error::InternalError,
    http::header::{self, HeaderName, HeaderValue},
    http::{ConnectionType, Method},
    middleware::Next,
    web,
};
use securecrud_service::Services;

use securecrud_auth::problem::request_id;

use crate::{
    client_ip::client_ip,
    error::{ApiError, OAuthError, PROBLEM_JSON},
    request::{LoggedUser, REQUEST_ID},
};

/// The CSP of every non-HTML response: nothing may be loaded, nothing may frame it.
const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let request_id = request_id::from_header(
        req.headers()
            .get(request_id::HEADER)
            .and_then(|value| value.to_str().ok()),
    );
    let method = req.method().clone();
    let path = req.path().to_owned();
    let services = req.app_data::<web::Data<Services>>().cloned();

    // No clone of the request may be held across `next.call`: actix needs it unshared for routing.
    let result = REQUEST_ID.scope(request_id.clone(), next.call(req)).await;
    let mut outcome: Outcome = REQUEST_ID.sync_scope(request_id.clone(), || match result {
        Ok(response) => Ok(ensure_problem(response.map_into_boxed_body())),
        Err(err) => Err(Box::new((problem_from_error(&err), err.to_string()))),
    });

    let draining = services
        .as_ref()
        .is_some_and(|services| services.is_draining());
    let (status, user_id, route) = stamp(&mut outcome, &request_id, draining);
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(services) = services {
        services.metrics().observe_request(
            route.as_deref().unwrap_or(UNMATCHED_ROUTE),
            metric_method(&method),
            status,
            elapsed,
        );
    }
    let duration_ms = (elapsed * 10_000.0).round() / 10.0;
    log::info!(
        target: "securecrud::access",
        method = method.as_str(), path = path.as_str(), status, duration_ms,
        request_id = request_id.as_str(), user_id = user_id.as_str();
        "request"
    );
    // An error that escaped the app (the request is gone) leaves as an error carrying the finished response.
    outcome.map_err(|escaped| {
        let (response, cause) = *escaped;
        InternalError::from_response(cause, response).into()
    })
}

/// What [`observe`] answers: a response, or an error that escaped the app with the response made of it
/// and its message.
type Outcome = Result<ServiceResponse<BoxBody>, Box<(HttpResponse, String)>>;

/// Sets the request id and the security headers on the answer (and, while `draining`, closes its
/// connection); returns its status, the user it was for (if known) and the route's template.
fn stamp(outcome: &mut Outcome, request_id: &str, draining: bool) -> (u16, String, Option<String>) {
    let (headers, status, user_id, route) = match outcome {
        Ok(response) => {
            let user_id = response
                .request()
                .extensions()
                .get::<LoggedUser>()
                .map(|u| u.0.to_string())
                .unwrap_or_default();
            // The route's template (`/api/v1/tasks/{id}`), never the path: ids must not become labels.
            let route = response.request().match_pattern();
            let status = response.status().as_u16();
            // While stopping, every answer closes its connection: a proxy's kept-alive connection then
            // moves to another instance instead of meeting this one's closed listener mid-request.
            if draining {
                response
                    .response_mut()
                    .head_mut()
                    .set_connection_type(ConnectionType::Close);
            }
            (response.headers_mut(), status, user_id, route)
        }
        Err(escaped) => {
            let response = &mut escaped.0;
            let status = response.status().as_u16();
            (response.headers_mut(), status, String::new(), None)
        }
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(request_id::HEADER), value);
    }
    set_security_headers(headers);
    (status, user_id, route)
}

/// `HEAD` is answered as `GET` would be, without the body (RFC 9110 §9.3.2): the request is routed as a
/// `GET`, and the HTTP layer, which saw the `HEAD`, sends the response's head only (its `Content-Length`
/// that of the body it leaves out). Runs inside [`observe`], so the access log and the metrics keep `HEAD`.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// The route label of a request no route matched (a 404, or a method a path does not have).
const UNMATCHED_ROUTE: &str = "unmatched";

/// The method label: the standard methods by name, any other as `other` (a client may send any token).
fn metric_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The general per-IP limit of `/api/v1` (in this instance's memory): 429 with `Retry-After` past it.
pub async fn api_rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // The forward-auth check is called by proxies and services on behalf of every client behind them, from
    // a few addresses: a per-IP limit would refuse them all at once.
    let exempt = req.path() == FORWARD_AUTH_PATH;
    if let Some(services) = req.app_data::<web::Data<Services>>().filter(|_| !exempt) {
        let ip = client_ip(req.request());
        if let Err(err) = services.check_api_rate(ip) {
            return Ok(refuse(req, err.into()));
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// While the database does not answer (its last probe failed: see `Services::watch_database`), every
/// request that needs it is answered `503 unavailable` with `Retry-After` at once, instead of each waiting
/// out the pool's timeout and piling up. What never touches the database is served as usual: the liveness
/// probe, the API document and its UI, and the published keys and metadata.
pub async fn fail_fast_without_database(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let down = req
        .app_data::<web::Data<Services>>()
        .is_some_and(|services| !services.database_available());
    if down && needs_database(req.path()) {
        return Ok(refuse(req, ApiError::DatabaseDown));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// Whether a request to `path` may touch the database.
fn needs_database(path: &str) -> bool {
    !(path == "/health/live"
        || path == "/openapi.json"
        || path == "/docs"
        || path.starts_with("/docs/")
        || path.starts_with("/.well-known/"))
}

/// A middleware's refusal of `req`: at the OAuth 2.0 endpoints in RFC 6749's terms, as their handlers answer.
fn refuse(req: ServiceRequest, err: ApiError) -> ServiceResponse<BoxBody> {
    if OAUTH_PATHS.contains(&req.path()) {
        req.error_response(OAuthError(err))
    } else {
        req.error_response(err)
    }
}

/// The forward-auth route, exempt from the per-IP api limit.
const FORWARD_AUTH_PATH: &str = "/api/v1/auth/check";
/// The OAuth 2.0 token and revocation endpoints, whose errors carry RFC 6749's members.
const OAUTH_PATHS: [&str; 2] = ["/api/v1/auth/token", "/api/v1/auth/revoke"];

/// The per-IP limit of the auth endpoints, shared by every instance through the database; it runs before the
/// handler reads the body, so every request counts, well-formed or not. Reads (`GET`, `HEAD`) of a wrapped
/// resource are not counted: only what can check a password or send mail is (`PATCH`/`DELETE /users/me`).
pub async fn auth_rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let counted = !matches!(*req.method(), Method::GET | Method::HEAD);
    if let Some(services) = req
        .app_data::<web::Data<Services>>()
        .cloned()
        .filter(|_| counted)
    {
        let ip = client_ip(req.request());
        if let Err(err) = services.check_auth_rate(ip).await {
            return Ok(refuse(req, err.into()));
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// An error that escaped as `Err`: answered with its own problem if it is one of ours, else by status.
fn problem_from_error(err: &Error) -> HttpResponse {
    let response = err.error_response();
    if is_problem(&response) {
        return response;
    }
    ApiError::Other(response.status()).error_response()
}

/// Replaces the body of an error response that is not problem+json (a middleware's or the router's) by a
/// problem with the same status, keeping its headers (e.g. `Allow`).
fn ensure_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    if !(response.status().is_client_error() || response.status().is_server_error())
        || is_problem(response.response())
    {
        return response;
    }
    let status = response.status();
    let (request, original) = response.into_parts();
    let mut replacement = ApiError::Other(status).error_response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement
                .headers_mut()
                .insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(request, replacement)
}

fn is_problem<B>(response: &HttpResponse<B>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

pub(crate) fn set_security_headers(headers: &mut actix_web::http::header::HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
