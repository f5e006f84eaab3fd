//! The passkeys repository: registered credentials, and the state of WebAuthn ceremonies in flight. Taking a
//! ceremony is one conditional write whose returned row says whether this caller won it, so of concurrent
//! attempts to finish one ceremony exactly one goes on.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict},
};
use securecrud_domain::{ConflictField, UserId};
use securecrud_migration::PASSKEYS_CREDENTIAL_UNIQUE;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Conn, Database, RepoError, Transaction,
    connect::Effect,
    entity::{mfa_recovery_codes, passkeys, user_mfa, webauthn_ceremonies},
    error::unique_conflict,
};

/// A registered passkey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: Uuid,
    pub user: UserId,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    pub name: String,
    /// The relying party's record of the credential (JSON): public key, signature counter, flags.
    pub credential: String,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<passkeys::Model> for StoredPasskey {
    fn from(row: passkeys::Model) -> Self {
        Self {
            id: row.id,
            user: UserId::from_uuid(row.user_id),
            credential_id: row.credential_id,
            name: row.name,
            credential: row.credential,
            backup_eligible: row.backup_eligible,
            backed_up: row.backed_up,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// What a WebAuthn ceremony in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// A signed-in user registering a passkey.
    Registration,
    /// A passwordless login (discoverable credentials: no user is known until the assertion names one).
    Login,
    /// The second step of a password login (keyed by its `mfa_token`).
    SecondStep,
}

impl CeremonyKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Login => "login",
            Self::SecondStep => "second_step",
        }
    }
}

/// A ceremony taken by [`Database::take_ceremony`]: the user it was started for, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenCeremony {
    pub user: Option<UserId>,
    pub state: String,
}

impl<C: Conn> Database<C> {
    /// The user's passkeys, oldest first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn passkeys_of(&self, user: UserId) -> Result<Vec<StoredPasskey>, RepoError> {
        Ok(passkeys::Entity::find()
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(passkeys::Column::CreatedAt)
            .order_by_asc(passkeys::Column::Id)
            .all(&self.read())
            .await?
            .into_iter()
            .map(StoredPasskey::from)
            .collect())
    }

    /// How many passkeys the user has.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn count_passkeys(&self, user: UserId) -> Result<u64, RepoError> {
        Ok(passkeys::Entity::find()
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .count(&self.read())
            .await?)
    }

    /// The passkey with this credential id (base64url), whoever it belongs to.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<StoredPasskey>, RepoError> {
        Ok(passkeys::Entity::find()
            .filter(passkeys::Column::CredentialId.eq(credential_id))
            .one(&self.read())
            .await?
            .map(StoredPasskey::from))
    }

    /// Renames the user's passkey `id`: the passkey renamed, or `None` when the user has no such passkey.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: &str,
    ) -> Result<Option<StoredPasskey>, RepoError> {
        Ok(passkeys::Entity::update_many()
            .col_expr(passkeys::Column::Name, Expr::value(name))
            .filter(passkeys::Column::Id.eq(id))
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .exec_with_returning(&self.write(Effect::Elsewhere).await?)
            .await?
            .into_iter()
            .next()
            .map(StoredPasskey::from))
    }

    /// Records a verified use of the passkey `id`: its updated record (the signature counter, the backup
    /// state) and when.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn record_passkey_use(
        &self,
        id: Uuid,
        credential: Option<String>,
        backed_up: bool,
    ) -> Result<(), RepoError> {
        let mut update = passkeys::Entity::update_many()
            .col_expr(passkeys::Column::LastUsedAt, Expr::value(self.now()))
            .col_expr(passkeys::Column::BackedUp, Expr::value(backed_up));
        if let Some(credential) = credential {
            update = update.col_expr(passkeys::Column::Credential, Expr::value(credential));
        }
        update
            .filter(passkeys::Column::Id.eq(id))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        Ok(())
    }

    /// Stores the state of a started ceremony under the SHA-256 of its id, for `ttl`. A ceremony already
    /// stored under that id (a second step asked for its options again) is replaced.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn insert_ceremony(
        &self,
        id_hash: String,
        kind: CeremonyKind,
        user: Option<UserId>,
        state: String,
        expires_at: OffsetDateTime,
    ) -> Result<(), RepoError> {
        // One statement, so that concurrent requests for one id cannot collide on the key: the last one wins.
        webauthn_ceremonies::Entity::insert(webauthn_ceremonies::ActiveModel {
            id_hash: Set(id_hash),
            kind: Set(kind.as_str().to_owned()),
            user_id: Set(user.map(|user| user.as_uuid())),
            state: Set(state),
            created_at: Set(self.now()),
            expires_at: Set(expires_at),
            used_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(webauthn_ceremonies::Column::IdHash)
                .update_columns([
                    webauthn_ceremonies::Column::Kind,
                    webauthn_ceremonies::Column::UserId,
                    webauthn_ceremonies::Column::State,
                    webauthn_ceremonies::Column::CreatedAt,
                    webauthn_ceremonies::Column::ExpiresAt,
                    webauthn_ceremonies::Column::UsedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.write(Effect::Elsewhere).await?)
        .await?;
        Ok(())
    }

    /// Takes the live (unused, unexpired) ceremony of this kind stored under `id_hash`, marking it used in
    /// the same statement: `None` when there is none (unknown, expired, of another kind, or taken already,
    /// by a concurrent request too).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn take_ceremony(
        &self,
        id_hash: &str,
        kind: CeremonyKind,
    ) -> Result<Option<TakenCeremony>, RepoError> {
        let at = self.now();
        Ok(webauthn_ceremonies::Entity::update_many()
            .col_expr(webauthn_ceremonies::Column::UsedAt, Expr::value(at))
            .filter(webauthn_ceremonies::Column::IdHash.eq(id_hash))
            .filter(webauthn_ceremonies::Column::Kind.eq(kind.as_str()))
            .filter(webauthn_ceremonies::Column::UsedAt.is_null())
            .filter(webauthn_ceremonies::Column::ExpiresAt.gt(at))
            .exec_with_returning(&self.write(Effect::Elsewhere).await?)
            .await?
            .into_iter()
            .next()
            .map(|row| TakenCeremony {
                user: row.user_id.map(UserId::from_uuid),
                state: row.state,
            }))
    }
}

impl Transaction {
    /// Stores a new passkey.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] ([`ConflictField::Credential`]) when its credential id is registered already;
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn insert_passkey(&self, passkey: StoredPasskey) -> Result<(), RepoError> {
        passkeys::Entity::insert(passkeys::ActiveModel {
            id: Set(passkey.id),
            user_id: Set(passkey.user.as_uuid()),
            credential_id: Set(passkey.credential_id),
            name: Set(passkey.name),
            credential: Set(passkey.credential),
            backup_eligible: Set(passkey.backup_eligible),
            backed_up: Set(passkey.backed_up),
            created_at: Set(passkey.created_at),
            last_used_at: Set(None),
        })
        .exec_without_returning(&self.write(Effect::Elsewhere).await?)
        .await
        .map_err(|err| {
            unique_conflict(
                err,
                &[(PASSKEYS_CREDENTIAL_UNIQUE, ConflictField::Credential)],
            )
        })?;
        Ok(())
    }

    /// Deletes the user's passkey `id`: `false` when the user has no such passkey.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn delete_passkey(&self, user: UserId, id: Uuid) -> Result<bool, RepoError> {
        Ok(passkeys::Entity::delete_many()
            .filter(passkeys::Column::Id.eq(id))
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?
            .rows_affected
            == 1)
    }

    /// Deletes every passkey of the user; how many there were.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn delete_passkeys(&self, user: UserId) -> Result<u64, RepoError> {
        Ok(passkeys::Entity::delete_many()
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?
            .rows_affected)
    }

    /// Removes the user's TOTP (enabled or pending), leaving passkeys and recovery codes: `false` when there
    /// was none enabled.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn remove_totp(&self, user: UserId) -> Result<bool, RepoError> {
        let enabled = self.find_totp(user).await?.is_some_and(|totp| totp.enabled);
        user_mfa::Entity::delete_by_id(user.as_uuid())
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        Ok(enabled)
    }

    /// Whether the user still has a second factor: an enabled TOTP or a passkey.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a query fails.
    pub async fn has_second_factor(&self, user: UserId) -> Result<bool, RepoError> {
        if self.count_passkeys(user).await? > 0 {
            return Ok(true);
        }
        Ok(user_mfa::Entity::find_by_id(user.as_uuid())
            .filter(user_mfa::Column::EnabledAt.is_not_null())
            .one(&self.read())
            .await?
            .is_some())
    }

    /// Whether the user has recovery codes (used or not): a first second factor makes them.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn has_recovery_codes(&self, user: UserId) -> Result<bool, RepoError> {
        Ok(mfa_recovery_codes::Entity::find()
            .filter(mfa_recovery_codes::Column::UserId.eq(user.as_uuid()))
            .count(&self.read())
            .await?
            > 0)
    }
}
