//! `/api/v1/users/*`.

use paperclip::actix::{api_v2_operation, web};

use crate::{
    dto::UserResponse,
    error::{Problem, error_set},
    extract::Authenticated,
};

error_set!(
    /// What an authenticated read can answer besides 200.
    AuthenticatedError {
        401 => "No, an invalid, an expired or a revoked access token",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// The current user
#[api_v2_operation(tags(Users), operation_id = "getMe")]
pub async fn me(auth: Authenticated) -> Result<web::Json<UserResponse>, AuthenticatedError> {
    Ok(web::Json(auth.0.into()))
}
