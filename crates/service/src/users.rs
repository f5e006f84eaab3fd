//! Account use cases: register, login, authenticate.

use anyhow::Context;
use securecrud_auth::{TokenError, generate_token, hash_token};
use securecrud_domain::{LoginPassword, NewUser, Role, SessionId, User};
use securecrud_persistence::{NewSession, NewUserRecord, now};

use crate::{ServiceError, Services};

/// Who is calling, as far as the HTTP layer can tell; stored on the session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A login attempt: a username or email, and a password.
#[derive(Debug)]
pub struct LoginInput {
    pub login: String,
    pub password: LoginPassword,
}

/// What a successful login returns.
pub struct TokenPair {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

/// The longest user agent kept on a session.
const MAX_USER_AGENT_CHARS: usize = 512;

impl Services {
    /// Registers a user with the `user` role.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] when the username or email is taken.
    pub async fn register(&self, new: NewUser) -> Result<User, ServiceError> {
        let password_hash = self.inner.passwords.hash(new.password).await?;
        let user = self
            .inner
            .db
            .insert_user(NewUserRecord {
                username: new.username,
                email: new.email,
                password_hash,
                role: Role::User,
            })
            .await?;
        log::info!(user_id:% = user.id; "user registered");
        Ok(user)
    }

    /// Checks a username-or-email and password and opens a session.
    ///
    /// An unknown login, a wrong password and a password bcrypt cannot verify all cost one bcrypt
    /// verification and give [`ServiceError::InvalidCredentials`], so neither timing nor answer tells whether
    /// the account exists.
    ///
    /// # Errors
    /// [`ServiceError::InvalidCredentials`]; [`ServiceError::AccountDisabled`] for a deactivated account with
    /// the right password.
    pub async fn login(
        &self,
        input: LoginInput,
        client: ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let credentials = self
            .inner
            .db
            .find_credentials_by_login(&input.login)
            .await?;
        let hash = credentials.as_ref().map(|c| c.password_hash.clone());
        let verified = self.inner.passwords.verify(input.password, hash).await?;
        let Some(credentials) = credentials.filter(|_| verified.matches) else {
            return Err(ServiceError::InvalidCredentials);
        };
        let user = credentials.user;
        if !user.is_active {
            return Err(ServiceError::AccountDisabled);
        }
        if verified.needs_rehash {
            self.rehash(&user, verified.password).await;
        }
        let pair = self.open_session(&user, client).await?;
        log::info!(user_id:% = user.id; "login succeeded");
        Ok(pair)
    }

    /// Re-hashes at the current cost after a successful login. A failure is logged, not fatal: the old hash
    /// still works.
    async fn rehash(&self, user: &User, password: LoginPassword) {
        let result = async {
            let hash = self.inner.passwords.rehash(password).await?;
            self.inner.db.update_password_hash(user.id, hash).await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(err) = result {
            log::warn!(user_id:% = user.id; "re-hashing the password at the new cost failed: {err:#}");
        }
    }

    async fn open_session(
        &self,
        user: &User,
        client: ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let session = SessionId::new();
        let refresh_token = generate_token();
        let refresh_ttl = self.inner.refresh_ttl;
        self.inner
            .db
            .insert_session(NewSession {
                id: session,
                user_id: user.id,
                refresh_hash: hash_token(&refresh_token),
                user_agent: client
                    .user_agent
                    .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
                ip: client.ip,
                expires_at: now() + refresh_ttl,
            })
            .await?;
        let access = self
            .inner
            .jwt
            .issue(user.id, session, user.role)
            .context("signing an access token failed")?;
        Ok(TokenPair {
            access_token: access.token,
            expires_in: access.expires_in.whole_seconds(),
            refresh_token,
            refresh_expires_in: refresh_ttl.whole_seconds(),
        })
    }

    /// The user behind a bearer access token, checked against the database in one query: the token must be
    /// valid, its session live and its user active. The role comes from the database, not the token.
    ///
    /// # Errors
    /// [`ServiceError::TokenExpired`] or [`ServiceError::InvalidToken`].
    pub async fn authenticate(&self, access_token: &str) -> Result<User, ServiceError> {
        let claims = self
            .inner
            .jwt
            .verify(access_token)
            .map_err(|err| match err {
                TokenError::Expired => ServiceError::TokenExpired,
                TokenError::Invalid => ServiceError::InvalidToken,
            })?;
        self.inner
            .db
            .find_session_user(claims.session_id(), claims.user_id())
            .await?
            .ok_or(ServiceError::InvalidToken)
    }
}
