//! Email verification and password reset:
//! - `one_time_tokens`: SHA-256 of each emailed token with its kind (`verify_email`, `reset_password`), user,
//!   the address it was sent to, expiry and consumption time. Rows go with their user.
//! - `mail_outbox`: messages written in the same transaction as their token; a background sender claims due
//!   rows (a lease in `claimed_until`), sends, and marks them sent, or schedules a retry, or dead.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_one_time_tokens(manager).await?;
        create_outbox(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailOutbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OneTimeTokens::Table).to_owned())
            .await
    }
}

/// `one_time_tokens`: the hashed tokens of emailed links.
async fn create_one_time_tokens(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(OneTimeTokens::Table)
                .col(string_len(OneTimeTokens::TokenHash, 64).primary_key())
                .col(string_len(OneTimeTokens::Kind, 20))
                .col(uuid(OneTimeTokens::UserId))
                .col(string_len(OneTimeTokens::Email, 254))
                .col(timestamp_with_time_zone(OneTimeTokens::CreatedAt))
                .col(timestamp_with_time_zone(OneTimeTokens::ExpiresAt))
                .col(timestamp_with_time_zone_null(OneTimeTokens::ConsumedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_one_time_tokens_user_id")
                        .from(OneTimeTokens::Table, OneTimeTokens::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_one_time_tokens_user_id_kind")
                .table(OneTimeTokens::Table)
                .col(OneTimeTokens::UserId)
                .col(OneTimeTokens::Kind)
                .to_owned(),
        )
        .await?;
    Ok(())
}

/// `mail_outbox`: messages waiting to be sent, sent, or given up.
async fn create_outbox(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(MailOutbox::Table)
                .col(big_pk_auto(MailOutbox::Id))
                .col(string_len(MailOutbox::Recipient, 254))
                .col(string_len(MailOutbox::Subject, 200))
                .col(text(MailOutbox::TextBody))
                .col(text(MailOutbox::HtmlBody))
                .col(timestamp_with_time_zone(MailOutbox::CreatedAt))
                .col(integer(MailOutbox::Attempts))
                .col(timestamp_with_time_zone(MailOutbox::NextAttemptAt))
                .col(timestamp_with_time_zone_null(MailOutbox::ClaimedUntil))
                .col(timestamp_with_time_zone_null(MailOutbox::SentAt))
                .col(timestamp_with_time_zone_null(MailOutbox::DeadAt))
                .col(text_null(MailOutbox::LastError))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_mail_outbox_next_attempt_at")
                .table(MailOutbox::Table)
                .col(MailOutbox::NextAttemptAt)
                .to_owned(),
        )
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum OneTimeTokens {
    Table,
    TokenHash,
    Kind,
    UserId,
    Email,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    Recipient,
    Subject,
    TextBody,
    HtmlBody,
    CreatedAt,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    SentAt,
    DeadAt,
    LastError,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
