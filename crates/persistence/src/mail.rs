//! One-time tokens (email verification, password reset) and the mail outbox.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, ExprTrait, QueryFilter,
    sea_query::{Expr, LockBehavior, LockType, Order, Query},
};
use securecrud_domain::{Mail, SealedMail, User, UserId};
use time::{Duration, OffsetDateTime};

use crate::{
    Conn, Database, RepoError,
    connect::Effect,
    entity::{mail_outbox, one_time_tokens, users},
    session_cache::Stale,
    users::to_user,
};

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    VerifyEmail,
    ResetPassword,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// The owner of a live one-time token and the address it was sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: UserId,
    pub email: String,
}

/// What a sent or dead message's bodies become.
const ERASED_BODY: &str = "";

/// A claimed message's contents.
#[derive(Debug, Clone)]
pub enum OutboxBody {
    Sealed(SealedMail),
    /// Written by an instance of the previous release (during a rolling upgrade), which did not seal.
    Plain(Mail),
}

/// The `next_attempt_at` of a sealed row: a time the previous release's sender, which claims by that column,
/// never reaches (see the migration `m20261206_000014_seal_outbox_bodies`).
fn out_of_reach() -> OffsetDateTime {
    time::macros::datetime!(9999-12-31 0:00 UTC)
}

/// A message claimed from the outbox for sending.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub id: i64,
    pub body: OutboxBody,
    /// Attempts so far, this one included.
    pub attempts: u32,
}

impl<C: Conn> Database<C> {
    /// Stores a new one-time token (its SHA-256) for `user`, sent to `email`; every older unused token of the
    /// same kind of that user stops working (superseded).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn issue_one_time_token(
        &self,
        kind: TokenKind,
        user: UserId,
        email: &str,
        hash: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        let at = self.now();
        // On the writer this method holds: asking for another turn while holding one would wait for itself.
        revoke_tokens(&write, user, kind, self.now()).await?;
        one_time_tokens::ActiveModel {
            token_hash: Set(hash.to_owned()),
            kind: Set(kind.as_str().to_owned()),
            user_id: Set(user.as_uuid()),
            email: Set(email.to_owned()),
            created_at: Set(at),
            expires_at: Set(expires_at),
            consumed_at: Set(None),
        }
        .insert(&write)
        .await?;
        Ok(())
    }

    /// Uses up a live token of `kind` with one atomic update: of two concurrent uses exactly one gets the
    /// owner. `None` for an unknown, expired, used or superseded token.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn consume_one_time_token(
        &self,
        kind: TokenKind,
        hash: &str,
    ) -> Result<Option<TokenOwner>, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        let at = self.now();
        let consumed = one_time_tokens::Entity::update_many()
            .col_expr(one_time_tokens::Column::ConsumedAt, Expr::value(Some(at)))
            .filter(one_time_tokens::Column::TokenHash.eq(hash))
            .filter(one_time_tokens::Column::Kind.eq(kind.as_str()))
            .filter(one_time_tokens::Column::ConsumedAt.is_null())
            .filter(one_time_tokens::Column::ExpiresAt.gt(at))
            .exec_with_returning(&write)
            .await?;
        Ok(consumed.first().map(|row| TokenOwner {
            user_id: UserId::from_uuid(row.user_id),
            email: row.email.clone(),
        }))
    }

    /// The owner of a live token of `kind`, without using it up.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_one_time_token(
        &self,
        kind: TokenKind,
        hash: &str,
    ) -> Result<Option<TokenOwner>, RepoError> {
        Ok(one_time_tokens::Entity::find_by_id(hash.to_owned())
            .filter(one_time_tokens::Column::Kind.eq(kind.as_str()))
            .filter(one_time_tokens::Column::ConsumedAt.is_null())
            .filter(one_time_tokens::Column::ExpiresAt.gt(self.now()))
            .one(&self.read())
            .await?
            .map(|row| TokenOwner {
                user_id: UserId::from_uuid(row.user_id),
                email: row.email,
            }))
    }

    /// Ends every unused token of `kind` of a user (a new one supersedes them; a password change kills reset
    /// tokens). Returns how many.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn revoke_one_time_tokens(
        &self,
        user: UserId,
        kind: TokenKind,
    ) -> Result<u64, RepoError> {
        revoke_tokens(
            &self.write(Effect::Elsewhere).await?,
            user,
            kind,
            self.now(),
        )
        .await
    }

    /// Marks a user's email verified, if it is still `email`. `None` if the user or that address is gone.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn mark_email_verified(
        &self,
        user: UserId,
        email: &str,
    ) -> Result<Option<User>, RepoError> {
        let write = self.write(Effect::Stale(Stale::User(user))).await?;
        let mut updated = users::Entity::update_many()
            .col_expr(users::Column::EmailVerified, Expr::value(true))
            .col_expr(users::Column::UpdatedAt, Expr::value(self.now()))
            .filter(users::Column::Id.eq(user.as_uuid()))
            .filter(users::Column::Email.eq(email))
            .exec_with_returning(&write)
            .await?;
        updated.pop().map(to_user).transpose()
    }

    /// Puts a message in the outbox, due now. Call it on the transaction that makes its token.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn enqueue_mail(&self, mail: SealedMail) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        let at = self.now();
        mail_outbox::ActiveModel {
            recipient: Set(mail.to),
            subject: Set(mail.subject),
            text_body: Set(mail.sealed_text),
            html_body: Set(mail.sealed_html),
            sealed: Set(true),
            due_at: Set(Some(at)),
            created_at: Set(at),
            attempts: Set(0),
            next_attempt_at: Set(out_of_reach()),
            claimed_until: Set(None),
            sent_at: Set(None),
            dead_at: Set(None),
            last_error: Set(None),
            ..Default::default()
        }
        .insert(&write)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` due messages for `lease` (others skip them until it runs out) and counts the
    /// attempt. One statement: on PostgreSQL the candidates are locked `FOR UPDATE SKIP LOCKED`, so several
    /// senders never claim one message twice; on SQLite the update itself is atomic.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn claim_mail(
        &self,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<OutboxMail>, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        use mail_outbox::Column;
        let at = self.now();
        let mut due = Query::select();
        due.column(Column::Id)
            .from(mail_outbox::Entity)
            .and_where(Expr::col(Column::SentAt).is_null())
            .and_where(Expr::col(Column::DeadAt).is_null())
            .and_where(
                Expr::col(Column::Sealed)
                    .eq(true)
                    .and(Expr::col(Column::DueAt).lte(at))
                    .or(Expr::col(Column::Sealed)
                        .eq(false)
                        .and(Expr::col(Column::NextAttemptAt).lte(at))),
            )
            .and_where(
                Expr::col(Column::ClaimedUntil)
                    .is_null()
                    .or(Expr::col(Column::ClaimedUntil).lt(at)),
            )
            .order_by(Column::Id, Order::Asc)
            .limit(limit);
        if self.backend() == DbBackend::Postgres {
            due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let claimed = mail_outbox::Entity::update_many()
            .col_expr(Column::ClaimedUntil, Expr::value(Some(at + lease)))
            .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
            .filter(Column::Id.in_subquery(due))
            .exec_with_returning(&write)
            .await?;
        let mut claimed: Vec<OutboxMail> = claimed.into_iter().map(OutboxMail::from).collect();
        claimed.sort_by_key(|mail| mail.id);
        Ok(claimed)
    }

    /// How many messages wait to be sent (due or retrying) and how many are dead (given up, kept until
    /// pruned).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the count fails.
    pub async fn outbox_counts(&self) -> Result<(u64, u64), RepoError> {
        use sea_orm::PaginatorTrait;
        let pending = mail_outbox::Entity::find()
            .filter(mail_outbox::Column::SentAt.is_null())
            .filter(mail_outbox::Column::DeadAt.is_null())
            .count(&self.read())
            .await?;
        let dead = mail_outbox::Entity::find()
            .filter(mail_outbox::Column::DeadAt.is_not_null())
            .count(&self.read())
            .await?;
        Ok((pending, dead))
    }

    /// Marks a claimed message sent and erases its bodies: sealed, they are unreadable without the key, and
    /// once the message has left nothing of its link stays in the row at all.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn mark_mail_sent(&self, id: i64) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::SentAt, Expr::value(Some(self.now())))
            .col_expr(mail_outbox::Column::TextBody, Expr::value(ERASED_BODY))
            .col_expr(mail_outbox::Column::HtmlBody, Expr::value(ERASED_BODY))
            .col_expr(
                mail_outbox::Column::ClaimedUntil,
                Expr::value(Option::<OffsetDateTime>::None),
            )
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(&write)
            .await?;
        Ok(())
    }

    /// Records a failed attempt: due again at `retry_at`, or dead (never retried, its bodies erased as for a
    /// sent message) when `None`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn mark_mail_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        let at = self.now();
        let mut update = mail_outbox::Entity::update_many()
            .col_expr(
                mail_outbox::Column::ClaimedUntil,
                Expr::value(Option::<OffsetDateTime>::None),
            )
            .col_expr(
                mail_outbox::Column::LastError,
                Expr::value(Some(error.chars().take(1000).collect::<String>())),
            )
            .filter(mail_outbox::Column::Id.eq(id));
        update = match retry_at {
            // A sealed row is due by `due_at`; a plain one (the previous release's) by `next_attempt_at`.
            Some(retry_at) => update
                .col_expr(mail_outbox::Column::DueAt, Expr::value(Some(retry_at)))
                .col_expr(
                    mail_outbox::Column::NextAttemptAt,
                    Expr::case(
                        Expr::col(mail_outbox::Column::Sealed).eq(true),
                        Expr::col(mail_outbox::Column::NextAttemptAt),
                    )
                    .finally(Expr::value(retry_at))
                    .into(),
                ),
            None => update
                .col_expr(mail_outbox::Column::DeadAt, Expr::value(Some(at)))
                .col_expr(mail_outbox::Column::TextBody, Expr::value(ERASED_BODY))
                .col_expr(mail_outbox::Column::HtmlBody, Expr::value(ERASED_BODY)),
        };
        update.exec(&write).await?;
        Ok(())
    }

    /// Records why a claimed message was not sent, leaving its claim and its due time as they are.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn note_mail_error(&self, id: i64, error: &str) -> Result<(), RepoError> {
        mail_outbox::Entity::update_many()
            .col_expr(
                mail_outbox::Column::LastError,
                Expr::value(Some(error.to_owned())),
            )
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        Ok(())
    }

    /// Deletes messages sent or given up before `before` (`MAIL_KEEP_SENT_SECS` ago). Returns how many.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the delete fails.
    pub async fn prune_sent_mail(&self, before: OffsetDateTime) -> Result<u64, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        Ok(mail_outbox::Entity::delete_many()
            .filter(
                mail_outbox::Column::SentAt
                    .lt(before)
                    .or(mail_outbox::Column::DeadAt.lt(before)),
            )
            .exec(&write)
            .await?
            .rows_affected)
    }

    /// Gives back a claimed message untried (the sender is stopping or the breaker is open): due again now,
    /// and the attempt does not count.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn release_mail(&self, id: i64) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        mail_outbox::Entity::update_many()
            .col_expr(
                mail_outbox::Column::ClaimedUntil,
                Expr::value(Option::<OffsetDateTime>::None),
            )
            .col_expr(
                mail_outbox::Column::Attempts,
                Expr::col(mail_outbox::Column::Attempts).sub(1),
            )
            .filter(mail_outbox::Column::Id.eq(id))
            .exec(&write)
            .await?;
        Ok(())
    }
}

impl From<mail_outbox::Model> for OutboxMail {
    fn from(row: mail_outbox::Model) -> Self {
        Self {
            id: row.id,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            body: if row.sealed {
                OutboxBody::Sealed(SealedMail {
                    to: row.recipient,
                    subject: row.subject,
                    sealed_text: row.text_body,
                    sealed_html: row.html_body,
                })
            } else {
                OutboxBody::Plain(Mail {
                    to: row.recipient,
                    subject: row.subject,
                    text: row.text_body,
                    html: row.html_body,
                })
            },
        }
    }
}

/// Ends every unused token of `kind` of a user, on a connection the caller holds for writing.
async fn revoke_tokens(
    conn: &impl ConnectionTrait,
    user: UserId,
    kind: TokenKind,
    at: OffsetDateTime,
) -> Result<u64, RepoError> {
    Ok(one_time_tokens::Entity::update_many()
        .col_expr(one_time_tokens::Column::ConsumedAt, Expr::value(Some(at)))
        .filter(one_time_tokens::Column::UserId.eq(user.as_uuid()))
        .filter(one_time_tokens::Column::Kind.eq(kind.as_str()))
        .filter(one_time_tokens::Column::ConsumedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}
