//! `user_mfa.failures`: wrong second factors in a row for the account, on their own. Unlike the login
//! lockout (per identifier, ended by a password reset), nothing done with the password or the mailbox clears
//! it: only a second factor that verifies, or an admin's reset of two-factor authentication (which deletes
//! the row). At `MFA_MAX_FAILURES` codes are refused until that reset.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserMfa::Table)
                    .add_column(integer(UserMfa::Failures).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserMfa::Table)
                    .drop_column(UserMfa::Failures)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum UserMfa {
    Table,
    Failures,
}
