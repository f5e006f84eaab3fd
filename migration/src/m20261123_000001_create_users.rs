//! `users`: accounts. `username_normalized` (lower-cased) and `email` (stored lower-cased) carry the unique
//! indexes, so two concurrent registrations differing only in case cannot both succeed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_len(Users::Username, 32))
                    .col(string_len(Users::UsernameNormalized, 32))
                    .col(string_len(Users::Email, 254))
                    .col(string_len(Users::PasswordHash, 128))
                    .col(string_len(Users::Role, 16))
                    .col(boolean(Users::EmailVerified).default(false))
                    .col(boolean(Users::IsActive).default(true))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(crate::USERS_USERNAME_UNIQUE.name)
                    .table(Users::Table)
                    .col(Users::UsernameNormalized)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(crate::USERS_EMAIL_UNIQUE.name)
                    .table(Users::Table)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Username,
    UsernameNormalized,
    Email,
    PasswordHash,
    Role,
    EmailVerified,
    IsActive,
    CreatedAt,
    UpdatedAt,
}
