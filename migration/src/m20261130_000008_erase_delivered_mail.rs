//! Erases the bodies of messages already sent or given up: their links carry live tokens, which must not stay
//! readable in the database once a message has left (the sender erases them from now on).
//!
//! `down` has nothing to restore (the bodies are gone by design) and leaves the data as it is.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let erase = Query::update()
            .table(MailOutbox::Table)
            .value(MailOutbox::TextBody, "")
            .value(MailOutbox::HtmlBody, "")
            .cond_where(
                Cond::any()
                    .add(Expr::col(MailOutbox::SentAt).is_not_null())
                    .add(Expr::col(MailOutbox::DeadAt).is_not_null()),
            )
            .to_owned();
        manager.exec_stmt(erase).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    TextBody,
    HtmlBody,
    SentAt,
    DeadAt,
}
