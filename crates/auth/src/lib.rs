//! SecureCRUD auth: the cryptographic pieces of accounts and sessions, usable on their own.
//!
//! Job:
//! - [`password`]: bcrypt hashing with a configurable cost, verification that never truncates, a dummy
//!   verification for unknown users (same timing), and re-hash detection when the cost changes.
//! - [`jwt`]: access tokens: issue, and verify with the algorithm pinned per key (a token's `alg` header never
//!   chooses it), `iss`, `aud`, `exp` (small leeway) and `typ` checked.
//! - [`token`]: opaque random tokens (refresh, one-time) and their SHA-256 digests, the only form stored.
//! - [`problem`]: the problem `code`s ([`ErrorCode`]) and `X-Request-Id` rules, shared by the api and by the
//!   guards below so that both answer alike.
//!
//! - [`mfa`]: two-factor authentication: TOTP codes (RFC 6238, with `totp-rs`), TOTP secrets sealed for storage
//!   (XChaCha20-Poly1305, HKDF-SHA256 key), recovery codes.
//! - [`seal`]: values that wait in a database sealed with a key from settings (XChaCha20-Poly1305, HKDF-SHA256
//!   key per purpose), bound to a context; the TOTP secrets and the pending mail of the api use it.
//! - [`keys`]: signing keys: HS256 secrets, Ed25519 / P-256 key pairs (PEM, generation, JWKs).
//! - [`guard`]: the checks behind the framework guards, written once: read the bearer token, verify it,
//!   consult the revocation feed and the role, and render a refusal as the api's problem+json.
//! - `actix` (feature): [`actix::Authenticated`] and [`actix::AdminOnly`] extractors that let another actix-web
//!   service accept this api's access tokens, answering the api's own problem+json (401, 403, 503).
//! - `axum` (feature): the same extractors for axum 0.8, and `axum::AuthLayer`, a tower layer that guards a
//!   whole router.
//! - `jwks` (feature): `remote::JwksVerifier` (verify from the api's published keys, no secret),
//!   `remote::SessionCheck` (ask the api whether a session is still live) and `feed::RevocationFeed` (follow
//!   the api's revocation feed, so that the guards refuse an ended session's tokens within a second with no
//!   call per request); the `LiveSessionOnly` extractor. Brings an HTTP client (reqwest, rustls) and Tokio.
//!
//! Rules: with default features, no database, no web framework, no async runtime: everything is pure CPU work
//! (the guard's methods are `async` only so that a remote verifier can fetch keys; with a local verifier they
//! never wait), so any Rust service can use it. Callers run bcrypt off their async executor's threads. Secrets are held in
//! `secrecy` types and never printed; errors never carry secret material.

#![warn(missing_docs)]

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "jwks")]
pub mod feed;
pub mod guard;
pub mod jwt;
pub mod keys;
pub mod mfa;
pub mod password;
pub mod problem;
#[cfg(feature = "jwks")]
pub mod remote;
pub mod seal;
pub mod token;

pub use jwt::{
    ACCESS_TOKEN_TYPE, AccessClaims, IssuedToken, JwtKeys, JwtVerifier, Role, TokenError,
    UnknownRole, token_kid,
};
pub use keys::{KeyAlgorithm, KeyError, PublicJwk, SigningKey, VerifyingKey};
pub use password::{PasswordError, PasswordHasher};
pub use problem::ErrorCode;
pub use token::{SuccessorKey, generate_token, hash_token};
