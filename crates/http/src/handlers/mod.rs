//! Handlers: extract → call one use case → respond. Nothing else happens here.

pub mod admin;
pub mod auth;
pub mod health;
pub mod tasks;
pub mod users;
