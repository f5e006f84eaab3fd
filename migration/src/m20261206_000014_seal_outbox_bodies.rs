//! The outbox keeps message bodies sealed (see the service crate's `outbox`): `sealed` marks such a row, and
//! `due_at` is when it is next due.
//!
//! Written for a rolling upgrade, in which instances of the previous release still send mail on this schema:
//! they claim rows by `next_attempt_at`, so a sealed row carries a `next_attempt_at` they never reach (the
//! year 9999) and its real due time in `due_at`, and they never mail its ciphertext. Rows they write (plain,
//! `sealed` false) are sent by either release. A later release, once no instance of the previous one runs,
//! can stop reading plain rows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(MailOutbox::Table)
                    .add_column(boolean(MailOutbox::Sealed).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MailOutbox::Table)
                    .add_column(timestamp_with_time_zone_null(MailOutbox::DueAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_due_at")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_mail_outbox_due_at")
                    .table(MailOutbox::Table)
                    .to_owned(),
            )
            .await?;
        for column in [MailOutbox::DueAt, MailOutbox::Sealed] {
            manager
                .alter_table(
                    Table::alter()
                        .table(MailOutbox::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Sealed,
    DueAt,
}
