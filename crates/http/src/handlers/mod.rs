//! Handlers: extract → call one use case → respond. Nothing else happens here.

pub mod auth;
pub mod health;
pub mod users;
