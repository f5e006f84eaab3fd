//! Email verification and password reset. Each token is 256 random bits; only its SHA-256 is stored, with
//! its message written to the outbox in the same transaction (the sender delivers it later, see
//! [`crate::outbox`]).

use securecrud_auth::{generate_token, hash_token};
use securecrud_domain::{AuditKind, Email, Password, User, ValidationErrors};
use securecrud_mail::templates;
use securecrud_persistence::{TokenKind, Transaction};
use serde_json::json;

use crate::{
    ClientInfo, CurrentSession, ServiceError, Services,
    audit::{event, own_event},
    users::lockout_key,
};

impl Services {
    /// Within `tx`: a verification token for `user`'s current address (superseding older ones), its message
    /// in the outbox, and `email_verification_sent`.
    pub(crate) async fn send_verification(
        &self,
        tx: &Transaction,
        user: &User,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let mail = &self.inner.mail;
        let token = generate_token();
        tx.issue_one_time_token(
            TokenKind::VerifyEmail,
            user.id,
            user.email.as_str(),
            &hash_token(&token),
            self.db.now() + mail.verify_ttl,
        )
        .await?;
        let link = format!("{}/verify-email?token={token}", mail.public_base_url);
        self.enqueue_mail(
            tx,
            templates::verify_email(
                user.email.as_str(),
                user.username.as_str(),
                &link,
                mail.verify_ttl.whole_hours(),
            ),
        )
        .await?;
        tx.record_audit(own_event(
            AuditKind::EmailVerificationSent,
            client,
            user.id,
            json!({ "email": user.email.as_str() }),
        ))
        .await?;
        Ok(())
    }

    /// Within `tx`: a message to `old_email` saying that `user`'s address changed (no link in it: if the change
    /// was not theirs, the owner must reach an administrator, since resets now go to the new address).
    pub(crate) async fn send_email_changed_notice(
        &self,
        tx: &Transaction,
        user: &User,
        old_email: &Email,
    ) -> Result<(), ServiceError> {
        self.enqueue_mail(
            tx,
            templates::email_changed(old_email.as_str(), user.username.as_str()),
        )
        .await?;
        Ok(())
    }

    /// Verifies the email a token was sent to, if it is still the user's address.
    ///
    /// # Errors
    /// [`ServiceError::InvalidLinkToken`] for an unknown, expired, used or superseded token, or one sent to
    /// an address the user no longer has.
    pub async fn verify_email(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        let tx = self.db.begin().await?;
        let owner = tx
            .consume_one_time_token(TokenKind::VerifyEmail, &hash_token(token))
            .await?
            .ok_or(ServiceError::InvalidLinkToken)?;
        let user = tx
            .mark_email_verified(owner.user_id, &owner.email)
            .await?
            .ok_or(ServiceError::InvalidLinkToken)?;
        tx.record_audit(own_event(
            AuditKind::EmailVerified,
            client,
            user.id,
            json!({ "email": owner.email }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id; "email verified");
        Ok(user)
    }

    /// Sends a new verification message (the old link stops working).
    ///
    /// # Errors
    /// [`ServiceError::AlreadyVerified`] when there is nothing to verify.
    pub async fn resend_verification(
        &self,
        current: &CurrentSession,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        if current.user.email_verified {
            return Err(ServiceError::AlreadyVerified);
        }
        let tx = self.db.begin().await?;
        self.send_verification(&tx, &current.user, client).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts a password reset for `email` in the background and returns at once, so that the answer and
    /// its timing are the same whether or not an (active) account has that address.
    pub fn request_password_reset(&self, email: Email, client: ClientInfo) {
        let services = self.clone();
        tokio::spawn(async move {
            if let Err(err) = services.issue_password_reset(&email, &client).await {
                log::warn!(
                    request_id = client.request_id.as_deref().unwrap_or_default();
                    "a password reset request could not be recorded: {err:#}"
                );
            }
        });
    }

    async fn issue_password_reset(
        &self,
        email: &Email,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let Some(user) = self
            .db
            .find_credentials_by_login(email.as_str())
            .await?
            .map(|c| c.user)
            .filter(|u| u.is_active)
        else {
            return Ok(());
        };
        let mail = &self.inner.mail;
        let token = generate_token();
        let link = format!("{}/reset-password?token={token}", mail.public_base_url);
        let minutes = mail.reset_ttl.whole_minutes();
        let tx = self.db.begin().await?;
        tx.issue_one_time_token(
            TokenKind::ResetPassword,
            user.id,
            user.email.as_str(),
            &hash_token(&token),
            self.db.now() + mail.reset_ttl,
        )
        .await?;
        self.enqueue_mail(
            &tx,
            templates::password_reset(user.email.as_str(), user.username.as_str(), &link, minutes),
        )
        .await?;
        tx.record_audit(event(
            AuditKind::PasswordResetRequested,
            client,
            None,
            Some(user.id),
            json!({}),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a new password with a reset token, ends every session of the user and every other reset token.
    ///
    /// # Errors
    /// [`ServiceError::InvalidLinkToken`] when the token is unknown, expired, used or superseded;
    /// [`ServiceError::Validation`] when `new_password` breaks the password rules.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let db = &self.db;
        let hash = hash_token(token);
        let owner = db
            .find_one_time_token(TokenKind::ResetPassword, &hash)
            .await?
            .ok_or(ServiceError::InvalidLinkToken)?;
        let user = db
            .find_user(owner.user_id)
            .await?
            .ok_or(ServiceError::InvalidLinkToken)?;
        let password =
            Password::parse(new_password, &[user.username.as_str(), user.email.as_str()])
                .map_err(|invalid| ValidationErrors::single("new_password", invalid.0))?;
        let password_hash = self.inner.passwords.hash(password).await?;
        let tx = db.begin().await?;
        // User row first, then its tokens: the order an email change takes, so the two queue (PostgreSQL
        // would otherwise pick one as a deadlock victim and it would answer 503).
        tx.lock_user(user.id).await?;
        if tx
            .consume_one_time_token(TokenKind::ResetPassword, &hash)
            .await?
            .is_none()
        {
            return Err(ServiceError::InvalidLinkToken);
        }
        let ended = tx.change_password(user.id, password_hash, None).await?;
        tx.revoke_one_time_tokens(user.id, TokenKind::ResetPassword)
            .await?;
        // Proof of the mailbox ends a lockout of the account's logins (API.md, "Account protection").
        tx.clear_login_failures(&[
            lockout_key(&user.username.normalized()),
            lockout_key(user.email.as_str()),
        ])
        .await?;
        // Whoever linked a provider identity whose email was not proven to be this one (they may have signed
        // up with the address before its owner) loses it: the reset proved the mailbox, nothing proved theirs.
        // (Such an account could add no other way in: without a password and a verified email, a fresh
        // session does not stand in for a password.)
        for identity in tx
            .delete_unproven_identities(user.id, user.email.as_str())
            .await?
        {
            tx.record_audit(own_event(
                AuditKind::IdentityUnlinked,
                client,
                user.id,
                json!({ "identity_id": identity.to_string(), "reason": "password_reset" }),
            ))
            .await?;
        }
        tx.record_audit(own_event(
            AuditKind::PasswordReset,
            client,
            user.id,
            json!({ "sessions_ended": ended }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id; "password reset; every session ended");
        Ok(())
    }
}
