//! `GET /health`, and the probes `GET /health/live` and `GET /health/ready`.

use paperclip::actix::{api_v2_operation, web};
use securecrud_service::Services;

use crate::{
    dto::{HealthResponse, LiveResponse, ReadyResponse},
    error::{Problem, error_set},
    handlers::resource,
};

/// `/health`.
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/health", [GET => health]);
    resource!(cfg, "/health/live", [GET => live]);
    resource!(cfg, "/health/ready", [GET => ready]);
}

error_set!(
    /// What the health check can answer besides 200.
    HealthError {
        500 => "Unexpected server error",
        503 => "The database does not answer",
    }
);

/// Health check
///
/// 200 when the api and its database answer; 503 (with `Retry-After`) when the database does not.
#[api_v2_operation(tags(Health), operation_id = "health")]
pub async fn health(
    services: web::Data<Services>,
) -> Result<web::Json<HealthResponse>, HealthError> {
    services.health().await?;
    Ok(web::Json(HealthResponse {
        status: "ok",
        database: "ok",
        version: env!("CARGO_PKG_VERSION"),
    }))
}

error_set!(
    /// What the liveness probe can answer besides 200.
    LiveError {
        500 => "Unexpected server error",
    }
);

/// Liveness probe
///
/// 200 while the process serves requests. Never touches the database: a database outage is not a reason
/// to restart the api (see `/health/ready`).
#[api_v2_operation(tags(Health), operation_id = "live")]
pub async fn live() -> Result<web::Json<LiveResponse>, LiveError> {
    Ok(web::Json(LiveResponse {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    }))
}

error_set!(
    /// What the readiness probe can answer besides 200.
    ReadyError {
        500 => "Unexpected server error",
        503 => "Not ready: the database does not answer, or a migration is pending",
    }
);

/// Readiness probe
///
/// 200 when this instance can serve: the database answers and every migration it knows is applied; else
/// 503 (with `Retry-After`), so a load balancer sends its traffic elsewhere.
#[api_v2_operation(tags(Health), operation_id = "ready")]
pub async fn ready(services: web::Data<Services>) -> Result<web::Json<ReadyResponse>, ReadyError> {
    services.readiness().await?;
    Ok(web::Json(ReadyResponse {
        status: "ok",
        database: "ok",
        migrations: "current",
    }))
}
