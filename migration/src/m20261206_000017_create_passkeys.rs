//! Passkeys (WebAuthn):
//! - `passkeys`: one row per registered credential. `credential_id` (base64url) is unique across all users, so
//!   a credential can never be registered twice, nor moved to another account. `credential` is the relying
//!   party's record of it as JSON (public key, signature counter, flags): nothing secret, but it is what a
//!   signature is checked against, so only the api writes it.
//! - `webauthn_ceremonies`: the state of a started ceremony (registration, passwordless login, or a login's
//!   second step), keyed by the SHA-256 of the id given to the client; single use (`used_at` is set by the one
//!   write that wins) and short-lived, so that any instance can finish a ceremony another one started.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{PASSKEYS_CREDENTIAL_UNIQUE, m20261123_000001_create_users::Users};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_passkeys(manager).await?;
        create_ceremonies(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebauthnCeremonies::Table.into_iden(),
            Passkeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn create_passkeys(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Passkeys::Table)
                .col(uuid(Passkeys::Id).primary_key())
                .col(uuid(Passkeys::UserId))
                .col(text(Passkeys::CredentialId))
                .col(string_len(Passkeys::Name, 256))
                .col(text(Passkeys::Credential))
                .col(boolean(Passkeys::BackupEligible))
                .col(boolean(Passkeys::BackedUp))
                .col(timestamp_with_time_zone(Passkeys::CreatedAt))
                .col(timestamp_with_time_zone_null(Passkeys::LastUsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_passkeys_user_id")
                        .from(Passkeys::Table, Passkeys::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name(PASSKEYS_CREDENTIAL_UNIQUE.name)
                .table(Passkeys::Table)
                .col(Passkeys::CredentialId)
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_passkeys_user_id")
                .table(Passkeys::Table)
                .col(Passkeys::UserId)
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_ceremonies(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(WebauthnCeremonies::Table)
                .col(string_len(WebauthnCeremonies::IdHash, 64).primary_key())
                .col(string_len(WebauthnCeremonies::Kind, 16))
                .col(uuid_null(WebauthnCeremonies::UserId))
                .col(text(WebauthnCeremonies::State))
                .col(timestamp_with_time_zone(WebauthnCeremonies::CreatedAt))
                .col(timestamp_with_time_zone(WebauthnCeremonies::ExpiresAt))
                .col(timestamp_with_time_zone_null(WebauthnCeremonies::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webauthn_ceremonies_user_id")
                        .from(WebauthnCeremonies::Table, WebauthnCeremonies::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_webauthn_ceremonies_expires_at")
                .table(WebauthnCeremonies::Table)
                .col(WebauthnCeremonies::ExpiresAt)
                .to_owned(),
        )
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    UserId,
    CredentialId,
    Name,
    Credential,
    BackupEligible,
    BackedUp,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum WebauthnCeremonies {
    Table,
    IdHash,
    Kind,
    UserId,
    State,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}
