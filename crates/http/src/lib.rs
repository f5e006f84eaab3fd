//! SecureCRUD HTTP layer: actix-web handlers, DTOs, problem+json errors, middleware, OpenAPI and Swagger UI.
//!
//! Job: turn HTTP into use-case calls and use-case results into HTTP, to the letter of docs/API.md (and of
//! the OpenAPI document this crate serves).
//!
//! Rules:
//! - Handlers are thin: extract → call one `Services` method → respond. Login required is an extractor
//!   (`extract::SignedIn`) in the handler's signature.
//! - Wire types (`dto`) are separate from domain types; domain types never serialise directly.
//! - Every failure, from routing, extraction, middleware, a use case or a panic-free bug, leaves as RFC 9457
//!   problem+json through `error::ApiError`; 5xx bodies are opaque and their causes logged with the request
//!   id (`middleware`).
//! - This crate reaches the database only through `securecrud-service`.
//! - Only [`Application`] leaves the crate: every module is private, so the compiler reports what is unused.

mod background;
mod browser;
mod client_ip;
mod docs;
mod dto;
mod error;
mod events;
mod extract;
mod framing;
mod handlers;
mod middleware;
mod request;
mod respond;
mod schema;
mod startup;
mod stop;

pub use startup::Application;
