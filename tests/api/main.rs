//! Black-box tests of the SecureCRUD api over HTTP. Each test starts the real app on port 0 against its own
//! database (SQLite by default, PostgreSQL with `TEST_DATABASE=postgres`). See `securecrud_tests`.

// Helpers in a test binary are test code: a failed step must fail the test at once.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod account;
mod admin;
mod audit;
mod auth_crate;
mod auth_crate_feed;
mod browser_session;
mod contract;
mod docs;
mod email;
mod errors;
mod hardening;
mod health;
mod key_rotation;
mod lockout;
mod login;
mod logout;
mod me;
mod metrics;
mod mfa;
mod migrations;
mod oauth;
mod oidc;
mod passkeys;
mod refresh;
mod register;
mod revocation_feed;
mod session_cache;
mod signing_keys;
mod task_list;
mod tasks;
mod third_party;
mod token;
