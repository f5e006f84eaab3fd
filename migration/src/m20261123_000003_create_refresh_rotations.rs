//! `refresh_rotations`: the SHA-256 of every refresh token a session rotated away from, with when. A token
//! found here is a repeat: within the grace window it gets the same successor again (concurrent tabs), after
//! it the session is revoked (reuse detection). Rows go with their session.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshRotations::Table)
                    .col(string_len(RefreshRotations::RefreshHash, 64).primary_key())
                    .col(uuid(RefreshRotations::SessionId))
                    .col(timestamp_with_time_zone(RefreshRotations::RotatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_rotations_session_id")
                            .from(RefreshRotations::Table, RefreshRotations::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_rotations_session_id")
                    .table(RefreshRotations::Table)
                    .col(RefreshRotations::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshRotations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RefreshRotations {
    Table,
    RefreshHash,
    SessionId,
    RotatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
}
