//! `GET /health`.

use paperclip::actix::{api_v2_operation, web};
use securecrud_service::Services;

use crate::{
    dto::HealthResponse,
    error::{Problem, error_set},
    handlers::resource,
};

/// `/health`.
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/health", [GET => health]);
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
