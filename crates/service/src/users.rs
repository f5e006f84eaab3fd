//! Account use cases: register, login, change password, update profile, delete account.

use anyhow::Context;
use securecrud_auth::{generate_token, hash_token};
use securecrud_domain::{
    LoginPassword, NewUser, Password, Role, SessionId, User, UserId, ValidationErrors,
};
use securecrud_persistence::{NewSession, NewUserRecord, ProfileChange, now};

use crate::{CurrentSession, ServiceError, Services};

/// A password change: the current password (checked) and a new one that passed the rules.
#[derive(Debug)]
pub struct PasswordChange {
    pub current_password: LoginPassword,
    pub new_password: Password,
}

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
        let user = self.insert_user(new, Role::User).await?;
        log::info!(user_id:% = user.id; "user registered");
        Ok(user)
    }

    /// Hashes the password and stores the user with `role`.
    pub(crate) async fn insert_user(&self, new: NewUser, role: Role) -> Result<User, ServiceError> {
        let password_hash = self.inner.passwords.hash(new.password).await?;
        Ok(self
            .inner
            .db
            .insert_user(NewUserRecord {
                username: new.username,
                email: new.email,
                password_hash,
                role,
            })
            .await?)
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

    /// Changes the current user's password after checking the current one, and ends every other session.
    ///
    /// # Errors
    /// [`ServiceError::InvalidCredentials`] when `current_password` is wrong.
    pub async fn change_password(
        &self,
        current: &CurrentSession,
        change: PasswordChange,
    ) -> Result<(), ServiceError> {
        self.check_password(current.user.id, change.current_password)
            .await?;
        let hash = self.inner.passwords.hash(change.new_password).await?;
        self.inner
            .db
            .change_password(current.user.id, hash, Some(current.session_id))
            .await?;
        log::info!(user_id:% = current.user.id; "password changed; other sessions ended");
        Ok(())
    }

    /// Changes the current user's username (case only) or email; a new email is unverified.
    ///
    /// # Errors
    /// [`ServiceError::Validation`] for a username that is not a case change of the current one;
    /// [`ServiceError::Conflict`] for an email that belongs to someone else.
    pub async fn update_profile(
        &self,
        current: &CurrentSession,
        change: ProfileChange,
    ) -> Result<User, ServiceError> {
        if let Some(username) = &change.username
            && username.normalized() != current.user.username.normalized()
        {
            return Err(ValidationErrors::single(
                "username",
                "may only change in letter case; usernames are permanent",
            )
            .into());
        }
        Ok(self
            .inner
            .db
            .update_profile(current.user.id, change)
            .await?)
    }

    /// Deletes the current user, their sessions and their data, after checking their password.
    ///
    /// # Errors
    /// [`ServiceError::InvalidCredentials`] when `password` is wrong.
    pub async fn delete_account(
        &self,
        current: &CurrentSession,
        password: LoginPassword,
    ) -> Result<(), ServiceError> {
        self.check_password(current.user.id, password).await?;
        self.inner.db.delete_user(current.user.id).await?;
        log::info!(user_id:% = current.user.id; "account deleted");
        Ok(())
    }

    /// Verifies a user's password (bcrypt, off the async threads).
    async fn check_password(
        &self,
        user_id: UserId,
        password: LoginPassword,
    ) -> Result<(), ServiceError> {
        let hash = self
            .inner
            .db
            .find_credentials_by_id(user_id)
            .await?
            .map(|c| c.password_hash);
        let verified = self.inner.passwords.verify(password, hash).await?;
        if verified.matches {
            Ok(())
        } else {
            Err(ServiceError::InvalidCredentials)
        }
    }
}
