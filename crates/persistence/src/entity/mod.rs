//! SeaORM entities, one module per table. Read-only mirrors of the migrations; queries live beside them in
//! the repository modules.

pub(crate) mod audit_events;
pub(crate) mod login_lockouts;
pub(crate) mod mail_outbox;
pub(crate) mod mfa_challenges;
pub(crate) mod mfa_recovery_codes;
pub(crate) mod oidc_flows;
pub(crate) mod oidc_identities;
pub(crate) mod oidc_login_codes;
pub(crate) mod one_time_tokens;
pub(crate) mod passkeys;
pub(crate) mod rate_limits;
pub(crate) mod refresh_rotations;
pub(crate) mod session_endings;
pub(crate) mod sessions;
pub(crate) mod signing_keys;
pub(crate) mod tasks;
pub(crate) mod user_mfa;
pub(crate) mod users;
pub(crate) mod webauthn_ceremonies;
