//! SecureCRUD persistence: the only crate that speaks SQL.
//!
//! Job: open the database ([`connect`]) for SQLite or PostgreSQL, run migrations, and offer repository methods
//! on [`Database`] that take and return domain types.
//!
//! Atomicity: [`Database::begin`] gives a [`Transaction`] (the same repository over one open transaction), so
//! a use case can make several changes and record the audit event of them in one commit. Writes that are only
//! correct as a whole (refresh rotation, password change, account change) exist only on [`Transaction`].
//!
//! Rules:
//! - SeaORM entities (`entity`) never leave this crate: every method converts to domain types.
//! - Database errors are classified here ([`RepoError`]): an unreachable database becomes
//!   [`RepoError::Unavailable`]; a write that can collide on a unique index a client can act on (a user's
//!   username or email) maps that index's violation, by the index's name or columns shared with the
//!   migrations, to [`RepoError::Conflict`] naming the field (the database, not a read-then-insert check,
//!   decides); anything else, any other unique violation included, is [`RepoError::Unexpected`] with its
//!   cause chain.
//! - The connection is reached only through `Database::read` and `Database::write` (`connect/access.rs`): a
//!   write takes its turn (a queue on SQLite, which has one writer at a time, nothing on PostgreSQL; a
//!   [`Transaction`] holds one turn from begin to end) and says what it does to the session cache, which marks
//!   a changed check stale however the write ends. A statement that writes through `read`, or writes users or
//!   sessions without saying so, fails: the rule holds by construction, not by habit.
//! - Timestamps are UTC with microsecond precision, so SQLite and PostgreSQL return the same values.

mod audit;
mod clock;
mod connect;
mod entity;
mod error;
mod import;
mod mail;
mod mfa;
mod oidc;
mod passkeys;
mod protection;
mod revocations;
mod session_cache;
mod sessions;
mod signing_keys;
mod tasks;
mod users;

pub use audit::NewAuditEvent;
pub use clock::Clock;
pub use connect::{
    Conn, ConnectOptions, Database, DatabaseUrl, MigrationStatus, PoolStatus, Transaction,
    WAIT_BUCKETS,
};
pub use error::RepoError;
pub use mail::{OutboxBody, OutboxMail, TokenKind, TokenOwner};
pub use mfa::{SecondFactorClaim, StoredTotp};
pub use oidc::{
    FlowPurpose, FlowStage, LoginCodeBinding, NewFlow, StoredIdentity, TakenFlow, TakenLoginCode,
};
pub use passkeys::{CeremonyKind, StoredPasskey, TakenCeremony};
pub use protection::{AttemptClaim, Swept};
pub use revocations::SessionEnding;
pub use sessions::{NewSession, PastRefresh, RotatedSession, SessionUser};
pub use signing_keys::StoredSigningKey;
pub use users::{AccountChanged, NewUserRecord, ProfileChange, UserCredentials};
