//! Sign in with an OpenID Connect provider:
//! - `oidc_identities`: one row per (provider, subject) → user, unique on the pair (an identity belongs to one
//!   account), with the email the provider gave and whether it said it was verified.
//! - `oidc_flows`: a started authorization (sign-in, or linking to `user_id`), keyed by the SHA-256 of its
//!   `state`; the nonce and PKCE verifier are sealed (they must stay secret until the flow ends), the app URL
//!   the result goes to is plain, and a sign-in holds the SHA-256 of the browser binding (a cookie set when
//!   it started). Single use (`used_at` set by the one write that wins), ten minutes. A finished link waits
//!   here too (`link_result`, keyed by its `link_code`, the verified identity sealed) until the signed-in
//!   user confirms it, for 60 s.
//! - `oidc_login_codes`: the single-use code handed to the app after a sign-in, keyed by its SHA-256, 60 s,
//!   with what ties it to the app that started the sign-in (the browser binding's hash, or the app's own PKCE
//!   challenge), so that a code injected into someone else's app signs nobody in.
//!
//! An account made by a provider has no password: `users.password_hash` holds `!` (as a locked entry in
//! `/etc/shadow`), which no bcrypt hash can be; the persistence layer reads it as "no password". SQLite cannot
//! drop a column's `NOT NULL` without rebuilding `users`, whose rows a dozen tables reference.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{OIDC_IDENTITIES_SUBJECT_UNIQUE, m20261123_000001_create_users::Users};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_identities(manager).await?;
        create_flows(manager).await?;
        create_login_codes(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OidcLoginCodes::Table.into_iden(),
            OidcFlows::Table.into_iden(),
            OidcIdentities::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn create_identities(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OidcIdentities::Table)
                .col(uuid(OidcIdentities::Id).primary_key())
                .col(uuid(OidcIdentities::UserId))
                .col(string_len(OidcIdentities::Provider, 32))
                .col(string_len(OidcIdentities::Subject, 255))
                .col(text_null(OidcIdentities::Email))
                .col(boolean(OidcIdentities::EmailVerified))
                .col(timestamp_with_time_zone(OidcIdentities::LinkedAt))
                .col(timestamp_with_time_zone_null(OidcIdentities::LastUsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_oidc_identities_user_id")
                        .from(OidcIdentities::Table, OidcIdentities::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name(OIDC_IDENTITIES_SUBJECT_UNIQUE.name)
                .table(OidcIdentities::Table)
                .col(OidcIdentities::Provider)
                .col(OidcIdentities::Subject)
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_oidc_identities_user_id")
                .table(OidcIdentities::Table)
                .col(OidcIdentities::UserId)
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_flows(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OidcFlows::Table)
                .col(string_len(OidcFlows::StateHash, 64).primary_key())
                .col(string_len(OidcFlows::Provider, 32))
                .col(string_len(OidcFlows::Purpose, 16))
                .col(uuid_null(OidcFlows::UserId))
                .col(text(OidcFlows::Secrets))
                .col(text(OidcFlows::RedirectUri))
                .col(string_len_null(OidcFlows::BrowserHash, 64))
                .col(string_len_null(OidcFlows::AppChallenge, 64))
                .col(timestamp_with_time_zone(OidcFlows::CreatedAt))
                .col(timestamp_with_time_zone(OidcFlows::ExpiresAt))
                .col(timestamp_with_time_zone_null(OidcFlows::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_oidc_flows_user_id")
                        .from(OidcFlows::Table, OidcFlows::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_oidc_flows_expires_at")
                .table(OidcFlows::Table)
                .col(OidcFlows::ExpiresAt)
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_login_codes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OidcLoginCodes::Table)
                .col(string_len(OidcLoginCodes::CodeHash, 64).primary_key())
                .col(uuid(OidcLoginCodes::UserId))
                .col(uuid(OidcLoginCodes::IdentityId))
                .col(string_len_null(OidcLoginCodes::BrowserHash, 64))
                .col(string_len_null(OidcLoginCodes::AppChallenge, 64))
                .col(timestamp_with_time_zone(OidcLoginCodes::CreatedAt))
                .col(timestamp_with_time_zone(OidcLoginCodes::ExpiresAt))
                .col(timestamp_with_time_zone_null(OidcLoginCodes::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_oidc_login_codes_user_id")
                        .from(OidcLoginCodes::Table, OidcLoginCodes::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_oidc_login_codes_identity_id")
                        .from(OidcLoginCodes::Table, OidcLoginCodes::IdentityId)
                        .to(OidcIdentities::Table, OidcIdentities::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_oidc_login_codes_expires_at")
                .table(OidcLoginCodes::Table)
                .col(OidcLoginCodes::ExpiresAt)
                .to_owned(),
        )
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum OidcIdentities {
    Table,
    Id,
    UserId,
    Provider,
    Subject,
    Email,
    EmailVerified,
    LinkedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum OidcFlows {
    Table,
    StateHash,
    Provider,
    Purpose,
    UserId,
    Secrets,
    RedirectUri,
    BrowserHash,
    AppChallenge,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum OidcLoginCodes {
    Table,
    CodeHash,
    UserId,
    IdentityId,
    BrowserHash,
    AppChallenge,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}
