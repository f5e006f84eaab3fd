//! SecureCRUD database migrations.
//!
//! Rules: every migration has a working `down`, runs on SQLite and PostgreSQL alike, and is never edited once
//! released (add a new one instead). Uniqueness that the application relies on (case-insensitive usernames,
//! emails, refresh-token hashes) is enforced here by unique indexes, never only by application checks.

// `MigrationTrait`'s async-trait signatures take `&SchemaManager` with an elided lifetime; naming it breaks
// the trait match, so this one idiom lint is off here.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_users;
mod m20261123_000002_create_sessions;
mod m20261123_000003_create_refresh_rotations;
mod m20261123_000004_create_tasks;
mod m20261123_000005_create_protection;
mod m20261123_000006_create_audit_events;
mod m20261123_000007_create_mail;
mod m20261130_000008_erase_delivered_mail;
mod m20261130_000009_notify_session_changes;
mod m20261130_000010_create_signing_keys;
mod m20261201_000011_create_mfa;
mod m20261206_000012_revoke_signing_keys;
mod m20261206_000013_count_second_factor_failures;
mod m20261206_000014_seal_outbox_bodies;
mod m20261206_000015_record_session_endings;
mod m20261206_000016_record_truncated_sessions;
mod m20261206_000017_create_passkeys;
mod m20261207_000018_create_oidc;

/// A unique index the application relies on: its name (what PostgreSQL reports) and its table and columns
/// (what SQLite reports: `UNIQUE constraint failed: users.email`). The persistence crate classifies a unique
/// violation by these, at the write that can cause it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqueIndex {
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static [&'static str],
}

/// Usernames, unique case-insensitively (on the lower-cased column).
pub const USERS_USERNAME_UNIQUE: UniqueIndex = UniqueIndex {
    name: "idx_users_username_normalized",
    table: "users",
    columns: &["username_normalized"],
};

/// Emails (stored lower-cased).
pub const USERS_EMAIL_UNIQUE: UniqueIndex = UniqueIndex {
    name: "idx_users_email",
    table: "users",
    columns: &["email"],
};

/// A passkey's credential id is unique across all users (`409 conflict` when it is registered again).
pub const PASSKEYS_CREDENTIAL_UNIQUE: UniqueIndex = UniqueIndex {
    name: "idx_passkeys_credential_id",
    table: "passkeys",
    columns: &["credential_id"],
};

/// An identity at an OpenID Connect provider, (provider, subject), belongs to one account.
pub const OIDC_IDENTITIES_SUBJECT_UNIQUE: UniqueIndex = UniqueIndex {
    name: "idx_oidc_identities_provider_subject",
    table: "oidc_identities",
    columns: &["provider", "subject"],
};

/// The PostgreSQL notification channel on which committed changes to users and sessions are announced (see
/// the migration `m20261130_000009_notify_session_changes`): payload `u:<user id>` or `s:<session id>`.
pub const SESSION_CHANGES_CHANNEL: &str = "securecrud_sessions";

/// The ordered list of SecureCRUD migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_users::Migration),
            Box::new(m20261123_000002_create_sessions::Migration),
            Box::new(m20261123_000003_create_refresh_rotations::Migration),
            Box::new(m20261123_000004_create_tasks::Migration),
            Box::new(m20261123_000005_create_protection::Migration),
            Box::new(m20261123_000006_create_audit_events::Migration),
            Box::new(m20261123_000007_create_mail::Migration),
            Box::new(m20261130_000008_erase_delivered_mail::Migration),
            Box::new(m20261130_000009_notify_session_changes::Migration),
            Box::new(m20261130_000010_create_signing_keys::Migration),
            Box::new(m20261201_000011_create_mfa::Migration),
            Box::new(m20261206_000012_revoke_signing_keys::Migration),
            Box::new(m20261206_000013_count_second_factor_failures::Migration),
            Box::new(m20261206_000014_seal_outbox_bodies::Migration),
            Box::new(m20261206_000015_record_session_endings::Migration),
            Box::new(m20261206_000016_record_truncated_sessions::Migration),
            Box::new(m20261206_000017_create_passkeys::Migration),
            Box::new(m20261207_000018_create_oidc::Migration),
        ]
    }
}
