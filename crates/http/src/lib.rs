//! SecureCRUD HTTP layer: actix-web handlers, DTOs, problem+json errors, middleware, OpenAPI and Swagger UI.
//!
//! Job: turn HTTP into use-case calls and use-case results into HTTP, to the letter of docs/API.md (and of
//! the OpenAPI document this crate serves).
//!
//! Rules:
//! - Handlers are thin: extract → call one `Services` method → respond. Login required is an extractor
//!   ([`extract::SignedIn`]) in the handler's signature.
//! - Wire types ([`dto`]) are separate from domain types; domain types never serialise directly.
//! - Every failure, from routing, extraction, middleware, a use case or a panic-free bug, leaves as RFC 9457
//!   problem+json through [`error::ApiError`]; 5xx bodies are opaque and their causes logged with the request
//!   id ([`middleware`]).
//! - This crate reaches the database only through `securecrud-service`.

pub mod browser;
pub mod client_ip;
pub mod docs;
pub mod dto;
pub mod error;
pub mod extract;
mod framing;
pub mod handlers;
pub mod middleware;
pub mod request;
pub mod respond;
pub mod schema;
mod startup;

pub use startup::{Application, configure};
