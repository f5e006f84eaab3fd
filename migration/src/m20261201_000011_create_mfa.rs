//! Two-factor authentication (TOTP, RFC 6238):
//! - `users.mfa_enabled`: whether a login needs a second factor (kept with the user, so that every read of a
//!   user, cached ones included, knows it).
//! - `user_mfa`: one row per user with a TOTP secret, sealed (XChaCha20-Poly1305, never in clear); pending
//!   while `enabled_at` is null (enrolment started, not confirmed). `last_used_step` is the latest 30-second
//!   step whose code was accepted: a code of that step or an earlier one is refused (no replay).
//! - `mfa_recovery_codes`: SHA-256 of each recovery code; `used_at` set once, atomically.
//! - `mfa_challenges`: the `mfa_token`s of logins waiting for a code (SHA-256 only), single use.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261123_000001_create_users::Users;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(MfaUsers::MfaEnabled).default(false))
                    .to_owned(),
            )
            .await?;
        create_user_mfa(manager).await?;
        create_recovery_codes(manager).await?;
        create_challenges(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MfaChallenges::Table.into_iden(),
            MfaRecoveryCodes::Table.into_iden(),
            UserMfa::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(MfaUsers::MfaEnabled)
                    .to_owned(),
            )
            .await
    }
}

/// `user_mfa`: the sealed TOTP secret of each user who has one.
async fn create_user_mfa(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(UserMfa::Table)
                .col(uuid(UserMfa::UserId).primary_key())
                .col(text(UserMfa::SecretSealed))
                .col(timestamp_with_time_zone(UserMfa::CreatedAt))
                .col(timestamp_with_time_zone_null(UserMfa::EnabledAt))
                .col(big_integer_null(UserMfa::LastUsedStep))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_user_mfa_user_id")
                        .from(UserMfa::Table, UserMfa::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    Ok(())
}

/// `mfa_recovery_codes`: hashed, each usable once, unique per user.
async fn create_recovery_codes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(MfaRecoveryCodes::Table)
                .col(pk_auto(MfaRecoveryCodes::Id).big_integer())
                .col(uuid(MfaRecoveryCodes::UserId))
                .col(string_len(MfaRecoveryCodes::CodeHash, 64))
                .col(timestamp_with_time_zone(MfaRecoveryCodes::CreatedAt))
                .col(timestamp_with_time_zone_null(MfaRecoveryCodes::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_mfa_recovery_codes_user_id")
                        .from(MfaRecoveryCodes::Table, MfaRecoveryCodes::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_mfa_recovery_codes_user_code")
                .table(MfaRecoveryCodes::Table)
                .col(MfaRecoveryCodes::UserId)
                .col(MfaRecoveryCodes::CodeHash)
                .unique()
                .to_owned(),
        )
        .await?;
    Ok(())
}

/// `mfa_challenges`: the hashed `mfa_token`s of logins waiting for a code.
async fn create_challenges(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(MfaChallenges::Table)
                .col(string_len(MfaChallenges::TokenHash, 64).primary_key())
                .col(uuid(MfaChallenges::UserId))
                .col(timestamp_with_time_zone(MfaChallenges::CreatedAt))
                .col(timestamp_with_time_zone(MfaChallenges::ExpiresAt))
                .col(timestamp_with_time_zone_null(MfaChallenges::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_mfa_challenges_user_id")
                        .from(MfaChallenges::Table, MfaChallenges::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_mfa_challenges_user_id")
                .table(MfaChallenges::Table)
                .col(MfaChallenges::UserId)
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_mfa_challenges_expires_at")
                .table(MfaChallenges::Table)
                .col(MfaChallenges::ExpiresAt)
                .to_owned(),
        )
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum MfaUsers {
    MfaEnabled,
}

#[derive(DeriveIden)]
enum UserMfa {
    Table,
    UserId,
    SecretSealed,
    CreatedAt,
    EnabledAt,
    LastUsedStep,
}

#[derive(DeriveIden)]
enum MfaRecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum MfaChallenges {
    Table,
    TokenHash,
    UserId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}
