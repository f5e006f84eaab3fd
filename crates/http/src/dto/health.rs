//! The probes' answers.

use super::*;

/// The service's health.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: &'static str,
    /// `ok` when the database answered.
    pub database: &'static str,
    /// The api's version.
    pub version: &'static str,
}

/// The liveness probe's answer.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct LiveResponse {
    /// `ok`.
    pub status: &'static str,
    /// The api's version.
    pub version: &'static str,
}

/// The readiness probe's answer.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ReadyResponse {
    /// `ok`.
    pub status: &'static str,
    /// `ok`: the database answered.
    pub database: &'static str,
    /// `current`: every migration this version knows is applied.
    pub migrations: &'static str,
}
