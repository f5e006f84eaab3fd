//! Brute-force protection state, shared by every api instance through the database:
//! - `login_lockouts`: consecutive failed logins per normalised login identifier (whether or not such a user
//!   exists), how many locks it has had (each doubles the next), and until when it is locked.
//! - `rate_limits`: one fixed-window counter per limiter key (e.g. `auth:203.0.113.9`); a request costs one
//!   upsert. Old windows are swept by the api.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginLockouts::Table)
                    .col(string_len(LoginLockouts::Identifier, 254).primary_key())
                    .col(integer(LoginLockouts::Failures))
                    .col(integer(LoginLockouts::Locks))
                    .col(timestamp_with_time_zone_null(LoginLockouts::LockedUntil))
                    .col(timestamp_with_time_zone(LoginLockouts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_lockouts_updated_at")
                    .table(LoginLockouts::Table)
                    .col(LoginLockouts::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RateLimits::Table)
                    .col(string_len(RateLimits::Key, 80).primary_key())
                    .col(big_integer(RateLimits::WindowStart))
                    .col(integer(RateLimits::Count))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rate_limits_window_start")
                    .table(RateLimits::Table)
                    .col(RateLimits::WindowStart)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(LoginLockouts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LoginLockouts {
    Table,
    Identifier,
    Failures,
    Locks,
    LockedUntil,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    WindowStart,
    Count,
}
