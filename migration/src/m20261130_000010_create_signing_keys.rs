//! `signing_keys`: the public halves of the key pairs that sign access tokens (EdDSA / ES256), shared by
//! every api instance so that each verifies tokens signed by any other and publishes the same JWKS. The
//! private keys never enter the database: each lives only in its `JWT_PRIVATE_KEY_FILE`.
//!
//! A key is current while `retired_at` is null; a rotation retires the current one, which stays published
//! and accepted until `retired_at + JWT_KEY_RETIRE_SECS`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(string_len(SigningKeys::Kid, 64).primary_key())
                    .col(string_len(SigningKeys::Alg, 16))
                    .col(text(SigningKeys::PublicJwk))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    PublicJwk,
    CreatedAt,
    RetiredAt,
}
