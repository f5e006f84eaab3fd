//! `tasks`: per-user tasks. `title_search` and `description_search` hold the Unicode lower case of title and
//! description, written by the application, so that search (`LIKE` on them) and title order behave the same
//! on SQLite and PostgreSQL: on PostgreSQL `title_search` uses the "C" collation (code-point order, as SQLite's
//! BINARY). Indexed on `(owner_id, created_at)` for a user's list.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut title_search = text(Tasks::TitleSearch);
        if manager.get_database_backend() == DbBackend::Postgres {
            title_search.extra("COLLATE \"C\"");
        }
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(big_pk_auto(Tasks::Id))
                    .col(uuid(Tasks::OwnerId))
                    .col(text(Tasks::Title))
                    .col(title_search)
                    .col(text_null(Tasks::Description))
                    .col(text_null(Tasks::DescriptionSearch))
                    .col(boolean(Tasks::Completed).default(false))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tasks_owner_id")
                            .from(Tasks::Table, Tasks::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_owner_id_created_at")
                    .table(Tasks::Table)
                    .col(Tasks::OwnerId)
                    .col(Tasks::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tasks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    OwnerId,
    Title,
    TitleSearch,
    Description,
    DescriptionSearch,
    Completed,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
