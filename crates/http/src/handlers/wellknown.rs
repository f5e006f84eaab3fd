//! `/.well-known/*`: the OAuth 2.0 authorization server metadata (RFC 8414) and the signing keys (RFC 7517).

use paperclip::actix::{Apiv2Schema, api_v2_operation, web};
use securecrud_service::Services;
use serde::Serialize;

use crate::{
    error::{Problem, error_set},
    handlers::resource,
    respond::Cached,
};

/// How long clients may cache the metadata document.
const METADATA_MAX_AGE_SECS: u32 = 3600;

/// `/.well-known/*`.
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/.well-known/oauth-authorization-server", [GET => metadata]);
    resource!(cfg, "/.well-known/jwks.json", [GET => jwks]);
}

error_set!(
    /// What a well-known document can answer besides 200.
    WellKnownError {
        500 => "Unexpected server error",
    }
);

/// OAuth 2.0 authorization server metadata (RFC 8414).
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ServerMetadata {
    /// The `iss` of every access token (`JWT_ISSUER`, by default `PUBLIC_BASE_URL`).
    pub issuer: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    /// Where the public keys that verify access tokens are published.
    pub jwks_uri: String,
    /// `password` and `refresh_token`.
    pub grant_types_supported: Vec<&'static str>,
    /// Empty: there is no authorization endpoint.
    pub response_types_supported: Vec<&'static str>,
    /// `none`: public clients, no client authentication.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// `none`.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
}

/// Authorization server metadata
///
/// RFC 8414: where the token, revocation and key endpoints are, for OAuth 2.0 client libraries and for
/// services that verify our access tokens. Cacheable for an hour.
#[api_v2_operation(tags(OAuth), operation_id = "authorizationServerMetadata")]
pub async fn metadata(
    services: web::Data<Services>,
) -> Result<Cached<ServerMetadata>, WellKnownError> {
    let base = services.public_base_url();
    Ok(Cached::for_secs(
        METADATA_MAX_AGE_SECS,
        ServerMetadata {
            issuer: services.issuer().to_owned(),
            token_endpoint: format!("{base}/api/v1/auth/token"),
            revocation_endpoint: format!("{base}/api/v1/auth/revoke"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            grant_types_supported: vec!["password", "refresh_token"],
            response_types_supported: Vec::new(),
            token_endpoint_auth_methods_supported: vec!["none"],
            revocation_endpoint_auth_methods_supported: vec!["none"],
        },
    ))
}

/// A public key that verifies access tokens (RFC 7517).
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct JwkResponse {
    /// `OKP` (Ed25519) or `EC` (P-256).
    pub kty: String,
    /// `Ed25519` or `P-256`.
    pub crv: String,
    /// The public key (Ed25519) or its x coordinate (P-256), base64url.
    pub x: String,
    /// The y coordinate (P-256 only), base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The key's id (its RFC 7638 thumbprint), as in the tokens' `kid` header.
    pub kid: String,
    /// `EdDSA` or `ES256`: the only algorithm this key verifies.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JWK Set.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct JwkSetResponse {
    pub keys: Vec<JwkResponse>,
}

/// Signing keys (JWKS)
///
/// RFC 7517: the public keys that verify access tokens, the current one and those a rotation retired but
/// that are still accepted (`JWT_KEY_RETIRE_SECS`). Empty with HS256 (a shared secret is never published).
/// `Cache-Control: public, max-age` is at most five minutes and never runs past a key's retirement.
#[api_v2_operation(tags(OAuth), operation_id = "jwks")]
pub async fn jwks(services: web::Data<Services>) -> Result<Cached<JwkSetResponse>, WellKnownError> {
    let (keys, max_age) = services.jwks();
    let keys = keys
        .into_iter()
        .map(|jwk| JwkResponse {
            kty: jwk.kty,
            crv: jwk.crv,
            x: jwk.x,
            y: jwk.y,
            kid: jwk.kid,
            alg: jwk.alg,
            use_: jwk.use_,
        })
        .collect();
    Ok(Cached::for_secs(max_age, JwkSetResponse { keys }))
}
