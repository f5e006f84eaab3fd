//! The OpenID Connect repository: identities linked to accounts, sign-in flows in flight and the login codes
//! they end with. Taking a flow or a code is one conditional write whose returned row says whether this
//! caller won it, so of concurrent attempts exactly one goes on.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use securecrud_domain::{ConflictField, UserId};
use securecrud_migration::OIDC_IDENTITIES_SUBJECT_UNIQUE;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Conn, Database, RepoError, Transaction,
    connect::Effect,
    entity::{oidc_flows, oidc_identities, oidc_login_codes, passkeys, users},
    error::unique_conflict,
};

/// An identity at a provider, linked to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIdentity {
    pub id: Uuid,
    pub user: UserId,
    pub provider: String,
    pub subject: String,
    /// The email the provider gave at the last sign-in, if any.
    pub email: Option<String>,
    pub email_verified: bool,
    pub linked_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<oidc_identities::Model> for StoredIdentity {
    fn from(row: oidc_identities::Model) -> Self {
        Self {
            id: row.id,
            user: UserId::from_uuid(row.user_id),
            provider: row.provider,
            subject: row.subject,
            email: row.email,
            email_verified: row.email_verified,
            linked_at: row.linked_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// What a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowPurpose {
    /// Sign in (or sign up) with the provider.
    SignIn,
    /// Link the provider's identity to the account that started the flow.
    Link(UserId),
    /// A link whose identity verified, waiting for the account's owner to confirm it (keyed by its
    /// `link_code`).
    LinkResult(UserId),
}

impl FlowPurpose {
    fn columns(self) -> (&'static str, Option<Uuid>) {
        match self {
            Self::SignIn => ("sign_in", None),
            Self::Link(user) => ("link", Some(user.as_uuid())),
            Self::LinkResult(user) => ("link_result", Some(user.as_uuid())),
        }
    }

    fn from_columns(purpose: &str, user: Option<Uuid>) -> Option<Self> {
        match (purpose, user) {
            ("sign_in", None) => Some(Self::SignIn),
            ("link", Some(user)) => Some(Self::Link(UserId::from_uuid(user))),
            ("link_result", Some(user)) => Some(Self::LinkResult(UserId::from_uuid(user))),
            _ => None,
        }
    }
}

/// Which flows [`Database::take_flow`] may take: those a provider's callback finishes, or finished links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowStage {
    /// A sign-in or a link, at the provider's callback.
    Started,
    /// A finished link, at its confirmation.
    Finished,
}

impl FlowStage {
    fn purposes(self) -> &'static [&'static str] {
        match self {
            Self::Started => &["sign_in", "link"],
            Self::Finished => &["link_result"],
        }
    }
}

/// A started authorization flow, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlow {
    /// SHA-256 (hex) of the `state` sent to the provider.
    pub state_hash: String,
    pub provider: String,
    pub purpose: FlowPurpose,
    /// The nonce and PKCE verifier, sealed.
    pub secrets: String,
    /// The app URL the result goes to (on the allowlist).
    pub redirect_uri: String,
    /// SHA-256 (hex) of the browser binding of a sign-in.
    pub browser_hash: Option<String>,
    /// The app's own PKCE challenge (S256, base64url) of a sign-in, if it sent one.
    pub app_challenge: Option<String>,
    pub expires_at: OffsetDateTime,
}

/// A flow taken by [`Database::take_flow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenFlow {
    pub provider: String,
    pub purpose: FlowPurpose,
    pub secrets: String,
    pub redirect_uri: String,
    pub browser_hash: Option<String>,
    pub app_challenge: Option<String>,
}

/// A login code taken by [`Database::take_login_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenLoginCode {
    pub user: UserId,
    pub identity: Uuid,
    /// What ties the code to the app that started the sign-in (see [`LoginCodeBinding`]).
    pub binding: LoginCodeBinding,
}

/// What ties a login code to the app that started its sign-in: the browser binding's hash (an app on the
/// api's site, whose requests carry the api's cookies) and the app's own PKCE challenge, when it sent one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginCodeBinding {
    pub browser_hash: Option<String>,
    pub app_challenge: Option<String>,
}

impl<C: Conn> Database<C> {
    /// The identity (provider, subject), whoever it belongs to.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<StoredIdentity>, RepoError> {
        Ok(oidc_identities::Entity::find()
            .filter(oidc_identities::Column::Provider.eq(provider))
            .filter(oidc_identities::Column::Subject.eq(subject))
            .one(&self.read())
            .await?
            .map(StoredIdentity::from))
    }

    /// The user's identities, oldest link first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn identities_of(&self, user: UserId) -> Result<Vec<StoredIdentity>, RepoError> {
        Ok(oidc_identities::Entity::find()
            .filter(oidc_identities::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(oidc_identities::Column::LinkedAt)
            .order_by_asc(oidc_identities::Column::Id)
            .all(&self.read())
            .await?
            .into_iter()
            .map(StoredIdentity::from)
            .collect())
    }

    /// Records a sign-in with `identity`: when, and the email the provider gave this time (a provider that
    /// gives none this time leaves the one it gave before).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn record_identity_use(
        &self,
        identity: Uuid,
        email: Option<String>,
        email_verified: bool,
    ) -> Result<(), RepoError> {
        let mut update = oidc_identities::Entity::update_many()
            .col_expr(oidc_identities::Column::LastUsedAt, Expr::value(self.now()));
        if let Some(email) = email {
            update = update
                .col_expr(oidc_identities::Column::Email, Expr::value(email))
                .col_expr(
                    oidc_identities::Column::EmailVerified,
                    Expr::value(email_verified),
                );
        }
        update
            .filter(oidc_identities::Column::Id.eq(identity))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        Ok(())
    }

    /// Stores a started flow.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn insert_flow(&self, flow: NewFlow) -> Result<(), RepoError> {
        let (purpose, user) = flow.purpose.columns();
        oidc_flows::Entity::insert(oidc_flows::ActiveModel {
            state_hash: Set(flow.state_hash),
            provider: Set(flow.provider),
            purpose: Set(purpose.to_owned()),
            user_id: Set(user),
            secrets: Set(flow.secrets),
            redirect_uri: Set(flow.redirect_uri),
            browser_hash: Set(flow.browser_hash),
            app_challenge: Set(flow.app_challenge),
            created_at: Set(self.now()),
            expires_at: Set(flow.expires_at),
            used_at: Set(None),
        })
        .exec_without_returning(&self.write(Effect::Elsewhere).await?)
        .await?;
        Ok(())
    }

    /// Takes the live (unused, unexpired) flow of `stage` stored under `state_hash`, marking it used in the
    /// same statement: `None` when there is none (unknown, expired, of the other stage, or taken already, by
    /// a concurrent request too).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails; a stored purpose
    /// that is none of [`FlowPurpose`] is corrupt data ([`RepoError::Unexpected`]).
    pub async fn take_flow(
        &self,
        state_hash: &str,
        stage: FlowStage,
    ) -> Result<Option<TakenFlow>, RepoError> {
        let at = self.now();
        let Some(row) = oidc_flows::Entity::update_many()
            .col_expr(oidc_flows::Column::UsedAt, Expr::value(at))
            .filter(oidc_flows::Column::StateHash.eq(state_hash))
            .filter(oidc_flows::Column::Purpose.is_in(stage.purposes().iter().copied()))
            .filter(oidc_flows::Column::UsedAt.is_null())
            .filter(oidc_flows::Column::ExpiresAt.gt(at))
            .exec_with_returning(&self.write(Effect::Elsewhere).await?)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let purpose = FlowPurpose::from_columns(&row.purpose, row.user_id).ok_or_else(|| {
            RepoError::Unexpected(anyhow::anyhow!(
                "an OpenID Connect flow has the purpose {:?}",
                row.purpose
            ))
        })?;
        Ok(Some(TakenFlow {
            provider: row.provider,
            purpose,
            secrets: row.secrets,
            redirect_uri: row.redirect_uri,
            browser_hash: row.browser_hash,
            app_challenge: row.app_challenge,
        }))
    }

    /// The app URL of the flow stored under `state_hash`, live or not (a callback with a spent or expired
    /// `state` still tells that app that it failed).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn flow_redirect_uri(&self, state_hash: &str) -> Result<Option<String>, RepoError> {
        Ok(oidc_flows::Entity::find_by_id(state_hash.to_owned())
            .filter(
                oidc_flows::Column::Purpose.is_in(FlowStage::Started.purposes().iter().copied()),
            )
            .one(&self.read())
            .await?
            .map(|row| row.redirect_uri))
    }

    /// Stores a login code (its SHA-256) for `user`, signed in with `identity`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn insert_login_code(
        &self,
        code_hash: String,
        user: UserId,
        identity: Uuid,
        binding: LoginCodeBinding,
        expires_at: OffsetDateTime,
    ) -> Result<(), RepoError> {
        oidc_login_codes::Entity::insert(oidc_login_codes::ActiveModel {
            code_hash: Set(code_hash),
            user_id: Set(user.as_uuid()),
            identity_id: Set(identity),
            browser_hash: Set(binding.browser_hash),
            app_challenge: Set(binding.app_challenge),
            created_at: Set(self.now()),
            expires_at: Set(expires_at),
            used_at: Set(None),
        })
        .exec_without_returning(&self.write(Effect::Elsewhere).await?)
        .await?;
        Ok(())
    }

    /// Takes the live login code stored under `code_hash`, marking it used in the same statement.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn take_login_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<TakenLoginCode>, RepoError> {
        let at = self.now();
        Ok(oidc_login_codes::Entity::update_many()
            .col_expr(oidc_login_codes::Column::UsedAt, Expr::value(at))
            .filter(oidc_login_codes::Column::CodeHash.eq(code_hash))
            .filter(oidc_login_codes::Column::UsedAt.is_null())
            .filter(oidc_login_codes::Column::ExpiresAt.gt(at))
            .exec_with_returning(&self.write(Effect::Elsewhere).await?)
            .await?
            .into_iter()
            .next()
            .map(|row| TakenLoginCode {
                user: UserId::from_uuid(row.user_id),
                identity: row.identity_id,
                binding: LoginCodeBinding {
                    browser_hash: row.browser_hash,
                    app_challenge: row.app_challenge,
                },
            }))
    }
}

impl Transaction {
    /// Links a new identity.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] ([`ConflictField::Identity`]) when (provider, subject) is linked already (to
    /// any account); [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn insert_identity(&self, identity: StoredIdentity) -> Result<(), RepoError> {
        oidc_identities::Entity::insert(oidc_identities::ActiveModel {
            id: Set(identity.id),
            user_id: Set(identity.user.as_uuid()),
            provider: Set(identity.provider),
            subject: Set(identity.subject),
            email: Set(identity.email),
            email_verified: Set(identity.email_verified),
            linked_at: Set(identity.linked_at),
            last_used_at: Set(identity.last_used_at),
        })
        .exec_without_returning(&self.write(Effect::Elsewhere).await?)
        .await
        .map_err(|err| {
            unique_conflict(
                err,
                &[(OIDC_IDENTITIES_SUBJECT_UNIQUE, ConflictField::Identity)],
            )
        })?;
        Ok(())
    }

    /// How many ways into the account `user` has besides the identity `except`: a password, other
    /// identities, passkeys. The user's row is locked until this transaction ends (PostgreSQL `FOR UPDATE`;
    /// on SQLite the transaction holds the write lock), so that two concurrent unlinks cannot each see the
    /// other's identity as the remaining way in. `None`: no such user.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a query fails.
    pub async fn other_sign_in_methods(
        &self,
        user: UserId,
        except: Uuid,
    ) -> Result<Option<u64>, RepoError> {
        let Some(row) = users::Entity::find_by_id(user.as_uuid())
            .lock_exclusive()
            .one(&self.read())
            .await?
        else {
            return Ok(None);
        };
        let password = u64::from(row.password_hash != crate::users::NO_PASSWORD);
        let identities = oidc_identities::Entity::find()
            .filter(oidc_identities::Column::UserId.eq(user.as_uuid()))
            .filter(oidc_identities::Column::Id.ne(except))
            .count(&self.read())
            .await?;
        let passkeys = passkeys::Entity::find()
            .filter(passkeys::Column::UserId.eq(user.as_uuid()))
            .count(&self.read())
            .await?;
        Ok(Some(password + identities + passkeys))
    }

    /// Unlinks the user's identities whose provider did not say the account's current email was verified
    /// (any of them may be someone else's, who signed up with this address first); their ids.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn delete_unproven_identities(
        &self,
        user: UserId,
        email: &str,
    ) -> Result<Vec<Uuid>, RepoError> {
        let unproven: Vec<Uuid> = oidc_identities::Entity::find()
            .select_only()
            .column(oidc_identities::Column::Id)
            .filter(oidc_identities::Column::UserId.eq(user.as_uuid()))
            .filter(
                oidc_identities::Column::EmailVerified
                    .eq(false)
                    .or(oidc_identities::Column::Email.ne(email))
                    .or(oidc_identities::Column::Email.is_null()),
            )
            .into_tuple()
            .all(&self.read())
            .await?;
        if !unproven.is_empty() {
            oidc_identities::Entity::delete_many()
                .filter(oidc_identities::Column::Id.is_in(unproven.clone()))
                .exec(&self.write(Effect::Elsewhere).await?)
                .await?;
        }
        Ok(unproven)
    }

    /// Unlinks the user's identity `id`: `false` when the user has no such identity.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn delete_identity(&self, user: UserId, id: Uuid) -> Result<bool, RepoError> {
        Ok(oidc_identities::Entity::delete_many()
            .filter(oidc_identities::Column::Id.eq(id))
            .filter(oidc_identities::Column::UserId.eq(user.as_uuid()))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?
            .rows_affected
            == 1)
    }
}
