//! SecureCRUD auth: the cryptographic pieces of accounts and sessions, usable on their own.
//!
//! Job:
//! - [`password`]: bcrypt hashing with a configurable cost, verification that never truncates, a dummy
//!   verification for unknown users (same timing), and re-hash detection when the cost changes.
//! - [`jwt`]: HS256 access tokens: issue, and verify with the algorithm pinned (a token's `alg` header never
//!   chooses it), `iss`, `aud`, `exp` (small leeway) and `typ` checked.
//! - [`token`]: opaque random tokens (refresh, one-time) and their SHA-256 digests, the only form stored.
//!
//! Rules: no database, no actix, no async runtime: everything here is synchronous and pure CPU work, so any
//! Rust service can use it. Callers run bcrypt off their async executor's threads. Secrets are held in
//! `secrecy` types and never printed; errors never carry secret material.

pub mod jwt;
pub mod password;
pub mod token;

pub use jwt::{ACCESS_TOKEN_TYPE, AccessClaims, IssuedToken, JwtKeys, TokenError};
pub use password::{PasswordError, PasswordHasher};
pub use token::{generate_token, hash_token};
