//! Two-factor authentication turned off: by its user (with their password and a code), or by an admin.

use securecrud_domain::{AuditKind, LoginPassword, UserId};
use serde_json::json;

use super::{MFA_NOT_ON, MfaCode};

const TOTP_NOT_ON: &str = "TOTP is not on for this account: a passkey is removed with \
     DELETE /api/v1/users/me/passkeys/{id}";
use crate::{
    ClientInfo, CurrentSession, ServiceError, Services,
    audit::{event, own_event},
    users::{ensure_live, lockout_keys},
};

impl Services {
    /// Turns TOTP off after checking the current password and a code (or a recovery code), both counted
    /// toward the lockout as one attempt: the secret is deleted, and, unless the account keeps a passkey, the
    /// recovery codes too (two-factor is then off).
    ///
    /// # Errors
    /// [`ServiceError::MfaState`] when it is not on; [`ServiceError::InvalidCredentials`] for a wrong
    /// password, [`ServiceError::InvalidMfaCode`] for a wrong code; [`ServiceError::RateLimited`] while
    /// locked.
    pub async fn disable_mfa(
        &self,
        current: &CurrentSession,
        current_password: LoginPassword,
        code: &MfaCode,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = &current.user;
        if !user.mfa_enabled {
            return Err(ServiceError::MfaState(MFA_NOT_ON));
        }
        let identifiers = lockout_keys(user);
        let claim = self
            .claim_and_verify_password(user, current_password, client)
            .await?;
        let second = self.claim_second_factor(claim, user.id).await?;
        let checked = self
            .disable_claimed(current, code, &identifiers, client)
            .await;
        self.settle_code_claim(second, user, client, "wrong_code_to_disable", checked)
            .await?;
        log::info!(user_id:% = user.id; "two-factor authentication disabled");
        Ok(())
    }

    /// [`Services::disable_mfa`] once the password is checked: `None` for a wrong code (nothing changed).
    async fn disable_claimed(
        &self,
        current: &CurrentSession,
        code: &MfaCode,
        identifiers: &[String],
        client: &ClientInfo,
    ) -> Result<Option<()>, ServiceError> {
        let user = &current.user;
        let Some(stored) = self.db.find_totp(user.id).await?.filter(|s| s.enabled) else {
            return Err(ServiceError::MfaState(TOTP_NOT_ON));
        };
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        tx.lock_user(user.id).await?;
        self.ensure_unlocked(&tx, identifiers).await?;
        if !self
            .use_second_factor(&tx, user.id, Some(&stored), code)
            .await?
        {
            return Ok(None);
        }
        // TOTP goes; passkeys stay (each is removed on its own), and with them two-factor stays on.
        tx.remove_totp(user.id).await?;
        if !tx.has_second_factor(user.id).await? {
            tx.disable_mfa(user.id).await?;
        }
        tx.clear_login_failures(identifiers).await?;
        tx.record_audit(own_event(
            AuditKind::MfaDisabled,
            client,
            user.id,
            json!({ "method": code.method() }),
        ))
        .await?;
        tx.commit().await?;
        Ok(Some(()))
    }

    /// An admin turns a user's two-factor authentication off (a lost authenticator and recovery codes) and
    /// ends every session of that user.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when there is no such user.
    pub async fn reset_mfa(
        &self,
        admin: &CurrentSession,
        user: UserId,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let tx = self.db.begin().await?;
        tx.lock_user(user).await?;
        if tx.find_user(user).await?.is_none() {
            return Err(ServiceError::NotFound);
        }
        let was_enabled = tx.disable_mfa(user).await?;
        let ended = tx.revoke_user_sessions(user, None).await?;
        tx.record_audit(event(
            AuditKind::MfaReset,
            client,
            Some(admin.user.id),
            Some(user),
            json!({ "was_enabled": was_enabled, "sessions_ended": ended }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user, admin_id:% = admin.user.id; "two-factor authentication reset by an admin");
        Ok(())
    }
}
