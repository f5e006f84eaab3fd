//! Two-factor authentication (TOTP, RFC 6238): enrolment, confirmation, the login's second step, disabling
//! and the admin reset.
//!
//! Rules:
//! - A login whose password is right ends in [`crate::LoginOutcome::MfaRequired`] with a single-use `mfa_token`
//!   (5 minutes); [`Services::verify_mfa`] spends it with a code. A wrong code leaves the token usable (until
//!   it expires or the account locks) and counts toward the login lockout of the account (its username and
//!   email), like a wrong password: the claim is taken before the code is checked.
//! - Every "once" is one conditional write in the transaction that issues the session: the token is spent,
//!   the TOTP step is recorded only if later than the last one used (no replay, RFC 6238 §5.2), a recovery
//!   code is marked used only if it was not. Concurrent requests with one token or code: one wins.
//! - Secrets are sealed (auth crate, `mfa::SecretSealer`) bound to the user's id; recovery codes are stored
//!   as SHA-256 only and shown once.

use crate::error::CredentialKind;
use anyhow::Context;
use securecrud_auth::{
    generate_token, hash_token,
    mfa::{self, TotpSecret},
};
use securecrud_domain::{AuditKind, LoginPassword, User, UserId};
use securecrud_persistence::{SecondFactorClaim, StoredTotp, Transaction};
use serde_json::json;
use time::Duration;

use crate::{
    ClientInfo, CurrentSession, MfaChallenge, ServiceError, Services, TokenPair,
    audit::{event, own_event},
    protection::Claim,
    users::{ensure_live, lockout_keys},
};

mod off;
mod second_factor;

const MFA_NOT_ON: &str = "two-factor authentication is not on";

/// How long an `mfa_token` may be used.
const MFA_TOKEN_TTL: Duration = Duration::minutes(5);
/// How many recovery codes an enrolment gives.
const RECOVERY_CODES: usize = 10;

/// A started enrolment: the secret for the authenticator app, as base32 text and as an `otpauth://` URI.
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([REDACTED])")
    }
}

/// A demo account's two-factor set-up made by `seed --mfa-demo`: the secret (base32 and `otpauth://` URI)
/// and the recovery codes, to print once.
pub struct SeededMfa {
    pub enrolment: TotpEnrolment,
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for SeededMfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeededMfa([REDACTED])")
    }
}

/// A second factor as typed: a 6-digit TOTP code or a recovery code (normalised).
pub enum MfaCode {
    Totp(String),
    Recovery(String),
}

impl std::fmt::Debug for MfaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "Totp([REDACTED])",
            Self::Recovery(_) => "Recovery([REDACTED])",
        })
    }
}

impl MfaCode {
    /// `input` as a TOTP code (6 digits, spaces ignored) or a recovery code (16 characters of Crockford's
    /// base32, dashes, spaces and case ignored); `None` when it can be neither.
    pub fn parse(input: &str) -> Option<Self> {
        mfa::looks_like_totp_code(input)
            .map(Self::Totp)
            .or_else(|| mfa::normalize_recovery_code(input).map(Self::Recovery))
    }

    fn method(&self) -> &'static str {
        match self {
            Self::Totp(_) => "totp",
            Self::Recovery(_) => "recovery_code",
        }
    }
}

/// A second factor as sent with a login's second step or a step-up: a code, or a passkey's assertion.
pub enum SecondFactor {
    Code(MfaCode),
    Passkey(Box<webauthn_rs::prelude::PublicKeyCredential>),
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(code) => code.fmt(f),
            Self::Passkey(_) => f.write_str("Passkey([assertion])"),
        }
    }
}

/// What is stored of new recovery codes: their hashes.
pub(crate) fn recovery_hashes(codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|code| mfa::normalize_recovery_code(code))
        .map(|code| mfa::hash_recovery_code(&code))
        .collect()
}

impl Services {
    /// A new `mfa_token` for `user`, for the [`crate::LoginOutcome::MfaRequired`] a login ends in.
    pub(crate) async fn mfa_challenge(&self, user: &User) -> Result<MfaChallenge, ServiceError> {
        let token = generate_token();
        self.db
            .insert_mfa_challenge(hash_token(&token), user.id, self.db.now() + MFA_TOKEN_TTL)
            .await?;
        log::info!(user_id:% = user.id; "password accepted; waiting for the second factor");
        let mut methods = Vec::with_capacity(3);
        if self.db.find_totp(user.id).await?.is_some_and(|s| s.enabled) {
            methods.push("totp");
        }
        if self.db.count_passkeys(user.id).await? > 0 {
            methods.push("passkey");
        }
        if self.db.unused_recovery_codes(user.id).await? > 0 {
            methods.push("recovery_code");
        }
        Ok(MfaChallenge {
            mfa_token: token,
            expires_in: MFA_TOKEN_TTL.whole_seconds(),
            methods,
        })
    }

    /// The active user whose live `mfa_token` has this SHA-256.
    ///
    /// # Errors
    /// [`ServiceError::InvalidToken`] for an unknown, expired or spent token (or a deleted user);
    /// [`ServiceError::AccountDisabled`].
    pub(crate) async fn user_of_mfa_token(&self, token_hash: &str) -> Result<User, ServiceError> {
        let Some(user_id) = self.db.find_mfa_challenge(token_hash).await? else {
            return Err(ServiceError::InvalidToken(CredentialKind::Mfa));
        };
        let Some(user) = self.db.find_user(user_id).await? else {
            return Err(ServiceError::InvalidToken(CredentialKind::Mfa));
        };
        if !user.is_active {
            return Err(ServiceError::AccountDisabled);
        }
        Ok(user)
    }

    fn sealing_context(user: UserId) -> Vec<u8> {
        user.as_uuid().as_bytes().to_vec()
    }

    /// A new TOTP secret for `user`: the secret, its sealed form and its `otpauth://` URI.
    fn new_secret(&self, user: &User) -> Result<(TotpSecret, String, String), ServiceError> {
        let secret = TotpSecret::generate();
        let sealed = self
            .inner
            .sealer
            .seal(&secret, &Self::sealing_context(user.id))
            .context("sealing a TOTP secret failed")?;
        let otpauth_uri = secret
            .otpauth_uri(&self.inner.mfa_issuer, user.username.as_str())
            .context("making the otpauth URI failed")?;
        Ok((secret, sealed, otpauth_uri))
    }

    fn open_secret(&self, user: UserId, stored: &StoredTotp) -> Result<TotpSecret, ServiceError> {
        self.inner
            .sealer
            .open(&stored.secret_sealed, &Self::sealing_context(user))
            .with_context(|| {
                format!(
                    "the TOTP secret of user {user} cannot be opened: MFA_ENCRYPTION_KEY (or JWT_SECRET in \
                     development) differs from the one it was sealed with"
                )
            })
            .map_err(ServiceError::Unexpected)
    }

    /// Starts a TOTP enrolment after checking the current password (counted like a login): a new secret,
    /// pending until [`Services::confirm_totp`]. A pending enrolment is replaced.
    ///
    /// # Errors
    /// [`ServiceError::MfaState`] when two-factor authentication is on already (TOTP or a passkey);
    /// [`ServiceError::InvalidCredentials`] for a wrong password.
    pub async fn start_totp_enrolment(
        &self,
        current: &CurrentSession,
        current_password: Option<LoginPassword>,
        client: &ClientInfo,
    ) -> Result<TotpEnrolment, ServiceError> {
        let user = &current.user;
        // With a second factor on (TOTP or a passkey), a password alone must not attach another
        // authenticator, nor replace the recovery codes: turn two-factor off first (which takes a code).
        if user.mfa_enabled {
            return Err(ServiceError::MfaState(
                "two-factor authentication is already on; turn it off first to enrol again",
            ));
        }
        self.reauthenticate(current, current_password, client)
            .await?;
        let (secret, sealed, otpauth_uri) = self.new_secret(user)?;
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        if !tx.start_totp_enrolment(user.id, sealed).await? {
            return Err(ServiceError::MfaState(
                "two-factor authentication is already on; turn it off first to enrol again",
            ));
        }
        tx.commit().await?;
        Ok(TotpEnrolment {
            secret: secret.base32(),
            otpauth_uri,
        })
    }

    /// Confirms the pending enrolment with a code of its secret: two-factor authentication is on from now,
    /// and ten recovery codes are returned (shown once; only their hashes are kept).
    ///
    /// # Errors
    /// [`ServiceError::MfaState`] when no enrolment is pending; [`ServiceError::InvalidMfaCode`] for a
    /// wrong code (counted toward the lockout); [`ServiceError::RateLimited`] while locked.
    pub async fn confirm_totp(
        &self,
        current: &CurrentSession,
        code: &MfaCode,
        client: &ClientInfo,
    ) -> Result<Vec<String>, ServiceError> {
        let user = &current.user;
        let identifiers = lockout_keys(user);
        let claim = self
            .claim_password_check(&identifiers, Some(user.id), client)
            .await?;
        let second = self.claim_second_factor(claim, user.id).await?;
        let checked = self
            .confirm_claimed(current, code, &identifiers, client)
            .await;
        self.settle_code_claim(second, user, client, "wrong_code_at_enrolment", checked)
            .await
    }

    /// [`Services::confirm_totp`] once its attempt is claimed: `None` for a wrong code (nothing changed).
    async fn confirm_claimed(
        &self,
        current: &CurrentSession,
        code: &MfaCode,
        identifiers: &[String],
        client: &ClientInfo,
    ) -> Result<Option<Vec<String>>, ServiceError> {
        const NOT_PENDING: &str =
            "no enrolment is waiting for its code: start one with POST /api/v1/users/me/mfa/totp";
        let user = &current.user;
        let pending = match self.db.find_totp(user.id).await? {
            Some(stored) if !stored.enabled => stored,
            _ => return Err(ServiceError::MfaState(NOT_PENDING)),
        };
        let secret = self.open_secret(user.id, &pending)?;
        let step = match code {
            MfaCode::Totp(code) => secret.matching_step(code, self.db.clock().unix_now()),
            MfaCode::Recovery(_) => None,
        };
        let Some(step) = step.and_then(|step| i64::try_from(step).ok()) else {
            return Ok(None);
        };
        let codes = mfa::generate_recovery_codes(RECOVERY_CODES);
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        self.ensure_unlocked(&tx, identifiers).await?;
        tx.lock_user(user.id).await?;
        if tx.has_second_factor(user.id).await? {
            // A passkey was added since the enrolment started: confirming would replace its recovery codes
            // with a password and a session alone.
            return Err(ServiceError::MfaState(
                "two-factor authentication was turned on meanwhile (a passkey): turn it off to enrol TOTP",
            ));
        }
        if !tx
            .enable_totp(user.id, &pending.secret_sealed, step)
            .await?
        {
            return Err(ServiceError::MfaState(NOT_PENDING));
        }
        tx.replace_recovery_codes(user.id, recovery_hashes(&codes))
            .await?;
        tx.clear_login_failures(identifiers).await?;
        tx.clear_second_factor_failures(user.id).await?;
        // Turning a second factor on is what a user does after a suspected compromise: every other session
        // (and its refresh chain), opened with the password alone, ends now.
        let ended = tx
            .revoke_user_sessions(user.id, Some(current.session_id))
            .await?;
        tx.record_audit(own_event(
            AuditKind::MfaEnabled,
            client,
            user.id,
            json!({
                "session_id": current.session_id.to_string(),
                "method": "totp",
                "other_sessions_ended": ended,
            }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id, other_sessions_ended = ended; "two-factor authentication enabled");
        Ok(Some(codes))
    }

    /// The second step of a login with two-factor authentication: spends the `mfa_token` with a code and
    /// opens the session.
    ///
    /// # Errors
    /// [`ServiceError::InvalidToken`] for an unknown, expired or spent `mfa_token`;
    /// [`ServiceError::InvalidMfaCode`] for a wrong, replayed or used code (counted toward the lockout;
    /// the token stays usable); [`ServiceError::RateLimited`] while the account is locked;
    /// [`ServiceError::AccountDisabled`].
    pub async fn verify_mfa(
        &self,
        mfa_token: &str,
        code: &MfaCode,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let token_hash = hash_token(mfa_token);
        let user = self.user_of_mfa_token(&token_hash).await?;
        let identifiers = lockout_keys(&user);
        let claim = self
            .claim_password_check(&identifiers, Some(user.id), client)
            .await?;
        let second = self.claim_second_factor(claim, user.id).await?;
        let checked = self
            .verify_claimed(&token_hash, &user, code, &identifiers, client)
            .await;
        let pair = self
            .settle_code_claim(second, &user, client, "wrong_code", checked)
            .await?;
        log::info!(user_id:% = user.id, method = code.method(); "login succeeded with a second factor");
        Ok(pair)
    }

    /// [`Services::verify_mfa`] once its attempt is claimed: `None` for a wrong code (rolled back: the
    /// token stays usable).
    async fn verify_claimed(
        &self,
        token_hash: &str,
        user: &User,
        code: &MfaCode,
        identifiers: &[String],
        client: &ClientInfo,
    ) -> Result<Option<TokenPair>, ServiceError> {
        let stored = self.db.find_totp(user.id).await?.filter(|s| s.enabled);
        let tx = self.db.begin().await?;
        if tx.consume_mfa_challenge(token_hash).await? != Some(user.id) {
            return Err(ServiceError::InvalidToken(CredentialKind::Mfa));
        }
        if !self
            .use_second_factor(&tx, user.id, stored.as_ref(), code)
            .await?
        {
            return Ok(None);
        }
        tx.clear_second_factor_failures(user.id).await?;
        let opened = self.open_session_in(&tx, user, client, identifiers).await?;
        let mut details = json!({ "session_id": opened.id.to_string() });
        let kind = match code {
            MfaCode::Totp(_) => AuditKind::MfaVerified,
            MfaCode::Recovery(_) => {
                details["remaining"] = json!(tx.unused_recovery_codes(user.id).await?);
                AuditKind::MfaRecoveryCodeUsed
            }
        };
        tx.record_audit(own_event(kind, client, user.id, details))
            .await?;
        tx.commit().await?;
        self.token_pair(user, opened.id, opened.refresh_token, opened.expires_at)
            .map(Some)
    }

    /// Turns TOTP on for `user` without a confirming code (`seed --mfa-demo`): a new secret, sealed as an
    /// enrolment seals it, and ten recovery codes. Recorded as `mfa_enabled` (by the seed).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when there is no such user; [`ServiceError::MfaState`] when TOTP is on
    /// already.
    pub async fn seed_mfa(&self, user: UserId) -> Result<SeededMfa, ServiceError> {
        let found = self
            .db
            .find_user(user)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let (secret, sealed, otpauth_uri) = self.new_secret(&found)?;
        let codes = mfa::generate_recovery_codes(RECOVERY_CODES);
        let tx = self.db.begin().await?;
        if !tx.start_totp_enrolment(user, sealed.clone()).await?
            || !tx.enable_totp(user, &sealed, 0).await?
        {
            return Err(ServiceError::MfaState(
                "two-factor authentication is already on",
            ));
        }
        tx.replace_recovery_codes(user, recovery_hashes(&codes))
            .await?;
        tx.record_audit(event(
            AuditKind::MfaEnabled,
            &ClientInfo::default(),
            None,
            Some(user),
            json!({ "method": "totp", "by": "seed" }),
        ))
        .await?;
        tx.commit().await?;
        Ok(SeededMfa {
            enrolment: TotpEnrolment {
                secret: secret.base32(),
                otpauth_uri,
            },
            recovery_codes: codes,
        })
    }
}

/// A code check's two claims: the login identifiers' lockout and, for an enrolled account, the account's own
/// count of wrong second factors (this attempt's number in it).
#[derive(Debug)]
struct CodeClaim {
    login: Claim,
    counted: Option<u32>,
}
