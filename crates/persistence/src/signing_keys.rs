//! The public halves of the token-signing key pairs, shared by every instance (see the migration
//! `m20261130_000010_create_signing_keys`). Nothing here is secret.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};
use time::OffsetDateTime;

use crate::{Database, RepoError, connect::Effect, entity::signing_keys};

/// The PostgreSQL advisory lock key that serialises key installations.
const KEYRING_LOCK: i64 = 0x5EC0_C7D1;

/// A stored public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// The JWK, as JSON.
    pub public_jwk: String,
    pub created_at: OffsetDateTime,
    /// When a rotation made another key current; `None` while this one is current.
    pub retired_at: Option<OffsetDateTime>,
    /// When the key was revoked (it leaked): refused from then on by every instance, whatever its
    /// retirement window. `None` unless revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<signing_keys::Model> for StoredSigningKey {
    fn from(row: signing_keys::Model) -> Self {
        Self {
            kid: row.kid,
            alg: row.alg,
            public_jwk: row.public_jwk,
            created_at: row.created_at,
            retired_at: row.retired_at,
            revoked_at: row.revoked_at,
        }
    }
}

impl Database {
    /// Every stored key, the newest first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, RepoError> {
        Ok(signing_keys::Entity::find()
            .order_by_desc(signing_keys::Column::CreatedAt)
            .order_by_desc(signing_keys::Column::Kid)
            .all(&self.read())
            .await?
            .into_iter()
            .map(StoredSigningKey::from)
            .collect())
    }

    /// Makes a key current unless it is already known: a new key is stored and every other current key is
    /// retired now, in one transaction. A known key is left as it is (current, or retired by a later
    /// rotation: an old key file never takes over again). Returns the key's row afterwards.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a query fails.
    pub async fn install_signing_key(
        &self,
        kid: &str,
        alg: &str,
        public_jwk: &str,
    ) -> Result<StoredSigningKey, RepoError> {
        let tx = self.begin().await?;
        // Installations queue (SQLite's write transaction does that already): two instances installing two
        // different new keys at once leave one current key, the later one.
        let write = tx.write(Effect::Elsewhere).await?;
        if tx.backend() == sea_orm::DbBackend::Postgres {
            write
                .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({KEYRING_LOCK})"))
                .await?;
        }
        if let Some(known) = signing_keys::Entity::find_by_id(kid.to_owned())
            .one(&tx.read())
            .await?
        {
            return Ok(known.into());
        }
        let at = self.now();
        signing_keys::Entity::update_many()
            .col_expr(
                signing_keys::Column::RetiredAt,
                sea_orm::sea_query::Expr::value(at),
            )
            .filter(signing_keys::Column::RetiredAt.is_null())
            .exec(&write)
            .await?;
        // Another instance may install the same new key at the same moment: the first insert wins and
        // the other is a no-op, both leaving the same state.
        signing_keys::Entity::insert(signing_keys::ActiveModel {
            kid: Set(kid.to_owned()),
            alg: Set(alg.to_owned()),
            public_jwk: Set(public_jwk.to_owned()),
            created_at: Set(at),
            retired_at: Set(None),
            revoked_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(signing_keys::Column::Kid)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&write)
        .await?;
        let row = signing_keys::Entity::find_by_id(kid.to_owned())
            .one(&tx.read())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the signing key just stored is missing"))?;
        drop(write);
        tx.commit().await?;
        Ok(row.into())
    }

    /// Revokes a retired key as of `at`: it is refused from then on by every instance (a key revoked before
    /// keeps its first revocation time). Returns the key's row afterwards, `None` when there is no such key.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a query fails.
    pub async fn revoke_signing_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
    ) -> Result<Option<StoredSigningKey>, RepoError> {
        {
            let write = self.write(Effect::Elsewhere).await?;
            signing_keys::Entity::update_many()
                .col_expr(
                    signing_keys::Column::RevokedAt,
                    sea_orm::sea_query::Expr::value(at),
                )
                .filter(signing_keys::Column::Kid.eq(kid))
                .filter(signing_keys::Column::RevokedAt.is_null())
                .exec(&write)
                .await?;
        }
        Ok(signing_keys::Entity::find_by_id(kid.to_owned())
            .one(&self.read())
            .await?
            .map(StoredSigningKey::from))
    }
}
