//! Account use cases: register and login (the account's own changes are in `account`).

use crate::error::CredentialKind;
use std::net::IpAddr;

use securecrud_auth::{generate_token, hash_token};
use securecrud_domain::{
    AuditKind, Email, LoginPassword, NewUser, Password, Role, SessionId, User, Username,
};
use securecrud_persistence::{NewSession, NewUserRecord, Transaction};
use serde_json::json;

use crate::{
    CurrentSession, ServiceError, Services,
    audit::{event, own_event},
    protection::Claim,
};

/// A login waiting for its second factor: the `mfa_token` to present with a code, and its lifetime.
pub struct MfaChallenge {
    pub mfa_token: String,
    /// Seconds until the `mfa_token` expires.
    pub expires_in: i64,
    /// The second factors the account has, of `totp`, `passkey` and `recovery_code`.
    pub methods: Vec<&'static str>,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// How a login with a right password ends: with a session's tokens, or, with two-factor authentication on,
/// waiting for a code (no token is issued until it is verified with the challenge's `mfa_token`). A wrong
/// password, a lock or a deactivated account is an error.
#[derive(Debug)]
pub enum LoginOutcome {
    Tokens(TokenPair),
    MfaRequired(MfaChallenge),
}

/// A password change: the current password (checked) and a new one that passed the rules.
#[derive(Debug)]
pub struct PasswordChange {
    /// Required when the account has a password (one without sets its first from a fresh session).
    pub current_password: Option<LoginPassword>,
    pub new_password: Password,
}

/// A change to one's own profile; `None` leaves a field as it is. Changing the email needs the current
/// password.
#[derive(Debug, Default)]
pub struct ProfileUpdate {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub current_password: Option<LoginPassword>,
    /// With two-factor on, the second factor an email change needs besides the password.
    pub second_factor: Option<crate::SecondFactor>,
}

/// Who is calling, as far as the HTTP layer can tell; stored on sessions and audit events.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address (behind trusted proxies, the one they report).
    pub ip: Option<IpAddr>,
    /// At most [`MAX_USER_AGENT_CHARS`] characters (what sessions and audit events keep).
    pub user_agent: Option<String>,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
}

impl ClientInfo {
    /// The caller's details, with the user agent cut to [`MAX_USER_AGENT_CHARS`] characters.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>, request_id: Option<String>) -> Self {
        Self {
            ip,
            user_agent: user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
            request_id,
        }
    }
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

/// A session opened by [`Services::open_session_in`], not yet committed.
pub(crate) struct OpenedSession {
    pub(crate) id: SessionId,
    pub(crate) refresh_token: String,
    pub(crate) expires_at: time::OffsetDateTime,
}

/// The longest lockout identifier (the longest login): lower-casing can lengthen a few characters
/// (`İ` → `i̇`), so the key is cut to the column's size; no account's login is that long.
const LOCKOUT_KEY_CHARS: usize = 254;

/// Fails unless the caller's session is still live, holding its row for the rest of `tx`: the re-check,
/// inside the write, that a concurrent revocation (a password reset, logout-all) has not ended it since the
/// request was authenticated.
pub(crate) async fn ensure_live(
    tx: &Transaction,
    current: &CurrentSession,
) -> Result<(), ServiceError> {
    if tx
        .lock_live_session(current.user.id, current.session_id)
        .await?
    {
        Ok(())
    } else {
        Err(ServiceError::InvalidToken(CredentialKind::Access))
    }
}

pub(crate) fn lockout_key(login: &str) -> String {
    login.chars().take(LOCKOUT_KEY_CHARS).collect()
}

/// The login lockout keys of `user`: their username and their email, as a login by either counts.
pub(crate) fn lockout_keys(user: &User) -> Vec<String> {
    vec![
        lockout_key(&user.username.normalized()),
        lockout_key(user.email.as_str()),
    ]
}

/// The longest user agent kept on a session or an audit event.
pub const MAX_USER_AGENT_CHARS: usize = 512;

impl Services {
    /// Registers a user with the `user` role.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] when the username or email is taken.
    pub async fn register(&self, new: NewUser, client: &ClientInfo) -> Result<User, ServiceError> {
        let user = self.insert_user(new, Role::User, client, json!({})).await?;
        log::info!(user_id:% = user.id; "user registered");
        Ok(user)
    }

    /// Hashes the password and stores the user with `role`, recording `user_registered` with `details`.
    pub(crate) async fn insert_user(
        &self,
        new: NewUser,
        role: Role,
        client: &ClientInfo,
        details: serde_json::Value,
    ) -> Result<User, ServiceError> {
        let password_hash = self.inner.passwords.hash(new.password).await?;
        let tx = self.db.begin().await?;
        let user = tx
            .insert_user(NewUserRecord {
                username: new.username,
                email: new.email,
                password_hash: Some(password_hash),
                role,
            })
            .await?;
        tx.record_audit(own_event(
            AuditKind::UserRegistered,
            client,
            user.id,
            details,
        ))
        .await?;
        self.send_verification(&tx, &user, client).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Checks a username-or-email and password and opens a session.
    ///
    /// An unknown login, a wrong password and a password bcrypt cannot verify all cost one bcrypt
    /// verification and give [`ServiceError::InvalidCredentials`], so neither timing nor answer tells whether
    /// the account exists.
    ///
    /// Lockout: the attempt is claimed from the normalised identifier's quota (lower-cased login, whether or
    /// not such a user exists) atomically, before any bcrypt work, so that of any number of concurrent wrong
    /// attempts at most `LOGIN_MAX_FAILURES` are checked; the lock is checked again before tokens are issued,
    /// and a success clears the count (see [`crate::ProtectionSettings`]).
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] while the identifier is locked or its quota is used up;
    /// [`ServiceError::InvalidCredentials`]; [`ServiceError::AccountDisabled`] for a deactivated account
    /// with the right password.
    pub async fn login(
        &self,
        input: LoginInput,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, ServiceError> {
        let result = self.check_login(input, client).await;
        self.inner
            .metrics
            .login(crate::metrics::login_outcome(&result));
        result
    }

    /// [`Services::login`] before its outcome is counted.
    async fn check_login(
        &self,
        input: LoginInput,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, ServiceError> {
        let db = &self.db;
        let login = input.login.to_lowercase();
        let identifier = lockout_key(&login);
        let claim = self
            .claim_password_check(std::slice::from_ref(&identifier), None, client)
            .await?;
        let checked = async {
            let credentials = db.find_credentials_by_login(&login).await?;
            let hash = credentials.as_ref().and_then(|c| c.password_hash.clone());
            let verified = self.inner.passwords.verify(input.password, hash).await?;
            Ok::<_, ServiceError>((credentials, verified))
        }
        .await;
        let (credentials, verified) = match checked {
            Ok(checked) => checked,
            Err(err) => {
                // No password was checked (hashing at capacity, the database failing): not an attempt.
                self.release_claim(claim).await;
                return Err(err);
            }
        };
        let known = credentials.as_ref().map(|c| c.user.id);
        let Some(credentials) = credentials.filter(|_| verified.matches) else {
            self.password_check_failed(claim, known, client, "invalid_credentials")
                .await?;
            return Err(ServiceError::InvalidCredentials);
        };
        let user = credentials.user;
        if !user.is_active {
            self.record_deactivated_login(&user, &identifier, client)
                .await?;
            return Err(ServiceError::AccountDisabled);
        }
        if self.inner.mail.require_verified_email && !user.email_verified {
            return Err(ServiceError::EmailNotVerified);
        }
        if verified.needs_rehash {
            self.rehash(&user, verified.password).await;
        }
        if user.mfa_enabled {
            // The password alone proves nothing yet: the attempt is given back (it was no failure), the
            // failures counted so far stay (only a verified second factor clears them), and no token is
            // issued until a code is verified with the challenge's `mfa_token`.
            self.release_claim(claim).await;
            let challenge = self.mfa_challenge(&user).await?;
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        let pair = self.open_session(&user, client, &claim).await?;
        log::info!(user_id:% = user.id; "login succeeded");
        Ok(LoginOutcome::Tokens(pair))
    }

    /// Audits the right password of a deactivated account (refused).
    async fn record_deactivated_login(
        &self,
        user: &User,
        identifier: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let tx = self.db.begin().await?;
        tx.record_audit(event(
            AuditKind::LoginFailed,
            client,
            None,
            Some(user.id),
            json!({ "login": identifier, "reason": "account_deactivated" }),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-hashes at the current cost after a successful login. A failure is logged, not fatal: the old hash
    /// still works.
    async fn rehash(&self, user: &User, password: LoginPassword) {
        let result = async {
            let hash = self.inner.passwords.rehash(password).await?;
            self.db.update_password_hash(user.id, hash).await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(err) = result {
            log::warn!(user_id:% = user.id; "re-hashing the password at the new cost failed: {err:#}");
        }
    }

    /// Opens a session and records `login_succeeded`, unless a concurrent attempt locked the login meanwhile;
    /// the claimed identifiers have their failures cleared in the same transaction.
    async fn open_session(
        &self,
        user: &User,
        client: &ClientInfo,
        claim: &Claim,
    ) -> Result<TokenPair, ServiceError> {
        let tx = self.db.begin().await?;
        let opened = self
            .open_session_in(&tx, user, client, &claim.identifiers())
            .await?;
        tx.commit().await?;
        self.token_pair(user, opened.id, opened.refresh_token, opened.expires_at)
    }

    /// Opens a session in `tx` and records `login_succeeded`, unless one of `identifiers` was locked
    /// meanwhile; their failures are cleared.
    pub(crate) async fn open_session_in(
        &self,
        tx: &Transaction,
        user: &User,
        client: &ClientInfo,
        identifiers: &[String],
    ) -> Result<OpenedSession, ServiceError> {
        let session = SessionId::new();
        let refresh_token = generate_token();
        let expires_at = self.refresh_expiry(self.db.now());
        self.ensure_unlocked(tx, identifiers).await?;
        tx.insert_session(NewSession {
            id: session,
            user_id: user.id,
            refresh_hash: hash_token(&refresh_token),
            user_agent: client.user_agent.clone(),
            ip: client.ip.map(|ip| ip.to_string()),
            expires_at,
        })
        .await?;
        tx.clear_login_failures(identifiers).await?;
        tx.record_audit(own_event(
            AuditKind::LoginSucceeded,
            client,
            user.id,
            json!({ "session_id": session.to_string() }),
        ))
        .await?;
        Ok(OpenedSession {
            id: session,
            refresh_token,
            expires_at,
        })
    }
}
