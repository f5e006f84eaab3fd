use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub attempts: i32,
    pub next_attempt_at: TimeDateTimeWithTimeZone,
    pub claimed_until: Option<TimeDateTimeWithTimeZone>,
    pub sent_at: Option<TimeDateTimeWithTimeZone>,
    pub dead_at: Option<TimeDateTimeWithTimeZone>,
    pub last_error: Option<String>,
    /// The bodies are sealed (every row this release writes); false for a row written by the previous one.
    pub sealed: bool,
    /// When a sealed row is next due (its `next_attempt_at` is out of the previous release's reach).
    pub due_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
