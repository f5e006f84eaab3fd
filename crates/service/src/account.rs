//! The account's own changes: its password, its name and email, its deletion, and the re-authentication
//! they need.

use securecrud_domain::{AuditKind, LoginPassword, Role, User};
use securecrud_persistence::{ProfileChange, TokenKind};
use serde_json::json;

use crate::{
    ClientInfo, CurrentSession, PasswordChange, ProfileUpdate, ServiceError, Services,
    audit::own_event,
    error::CredentialKind,
    mfa::SecondFactor,
    protection::Claim,
    users::{ensure_live, lockout_keys},
};

impl Services {
    /// Changes the current user's password after checking the current one, and ends every other session.
    ///
    /// # Errors
    /// [`ServiceError::InvalidCredentials`] when `current_password` is wrong.
    pub async fn change_password(
        &self,
        current: &CurrentSession,
        change: PasswordChange,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        self.reauthenticate(current, change.current_password, client)
            .await?;
        let hash = self.inner.passwords.hash(change.new_password).await?;
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        let ended = tx
            .change_password(current.user.id, hash, Some(current.session_id))
            .await?;
        tx.revoke_one_time_tokens(current.user.id, TokenKind::ResetPassword)
            .await?;
        tx.record_audit(own_event(
            AuditKind::PasswordChanged,
            client,
            current.user.id,
            json!({ "sessions_ended": ended }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = current.user.id; "password changed; other sessions ended");
        Ok(())
    }

    /// Renames the current user and/or changes their email.
    ///
    /// A new username must be free case-insensitively (one's own name may change letter case); the old
    /// name stops working for login. A new email needs the current password; it is then unverified, a
    /// verification link goes to it, a notice to the old address, and every unused reset token ends (a link
    /// already sent to the old mailbox stops working).
    ///
    /// # Errors
    /// [`ServiceError::Validation`] when an email change comes without `current_password`;
    /// [`ServiceError::InvalidCredentials`] when that password is wrong; [`ServiceError::Conflict`] for a
    /// username or email that belongs to someone else (nothing is changed).
    pub async fn update_profile(
        &self,
        current: &CurrentSession,
        update: ProfileUpdate,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        let user = &current.user;
        let username = update
            .username
            .filter(|u| u.as_str() != user.username.as_str());
        if update.email.is_some() {
            // Checked whenever an email is given, changed or not: a wrong password is never a 200.
            self.reauthenticate_with(
                current,
                update.current_password,
                (
                    "current_password",
                    "is required to change the email address",
                ),
                client,
            )
            .await?;
            self.step_up(current, update.second_factor.as_ref(), client)
                .await?;
        }
        let email = update.email.filter(|e| e.as_str() != user.email.as_str());
        let mut fields = Vec::new();
        if username.is_some() {
            fields.push("username");
        }
        if email.is_some() {
            fields.push("email");
        }
        if fields.is_empty() {
            return Ok(user.clone());
        }
        let old_email = user.email.clone();
        let email_changes = email.is_some();
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        let updated = tx
            .update_profile(user.id, ProfileChange { username, email })
            .await?;
        tx.record_audit(own_event(
            AuditKind::UserUpdated,
            client,
            user.id,
            json!({ "fields": fields }),
        ))
        .await?;
        if email_changes {
            tx.revoke_one_time_tokens(user.id, TokenKind::ResetPassword)
                .await?;
            self.send_verification(&tx, &updated, client).await?;
            self.send_email_changed_notice(&tx, &updated, &old_email)
                .await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes the current user, their sessions and their data, after checking their password (and, with
    /// two-factor on, a second factor: see [`Services::step_up`]).
    ///
    /// # Errors
    /// [`ServiceError::InvalidCredentials`] when `password` is wrong; [`ServiceError::SecondFactorRequired`]
    /// or [`ServiceError::InvalidMfaCode`]; [`ServiceError::LastAdmin`] for the last active admin.
    pub async fn delete_account(
        &self,
        current: &CurrentSession,
        password: Option<LoginPassword>,
        second_factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        self.reauthenticate_with(current, password, ("password", "is required"), client)
            .await?;
        self.step_up(current, second_factor, client).await?;
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        if current.user.role == Role::Admin && tx.is_last_active_admin(current.user.id).await? {
            return Err(ServiceError::LastAdmin);
        }
        if !tx.delete_user(current.user.id).await? {
            return Err(ServiceError::InvalidToken(CredentialKind::Access));
        }
        tx.record_audit(own_event(
            AuditKind::UserDeleted,
            client,
            current.user.id,
            json!({ "username": current.user.username.as_str() }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = current.user.id; "account deleted");
        Ok(())
    }

    /// Claims a check of `user`'s password under the login lockout of their username and email (like a
    /// login, before bcrypt runs) and verifies `password`: the claim when it is right, for the caller to
    /// settle; a wrong one counts as a failed login; any failure gives the claim back.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] while locked; [`ServiceError::InvalidCredentials`] for a wrong password.
    pub(crate) async fn claim_and_verify_password(
        &self,
        user: &User,
        password: LoginPassword,
        client: &ClientInfo,
    ) -> Result<Claim, ServiceError> {
        let claim = self
            .claim_password_check(&lockout_keys(user), Some(user.id), client)
            .await?;
        let checked = async {
            let hash = self
                .db
                .find_credentials_by_id(user.id)
                .await?
                .and_then(|c| c.password_hash);
            self.inner.passwords.verify(password, hash).await
        }
        .await;
        match checked {
            Ok(verified) if verified.matches => Ok(claim),
            Ok(_) => {
                self.password_check_failed(claim, Some(user.id), client, "wrong_current_password")
                    .await?;
                Err(ServiceError::InvalidCredentials)
            }
            Err(err) => {
                self.release_claim(claim).await;
                Err(err)
            }
        }
    }

    /// Re-authentication: verifies the current user's password (bcrypt, off the async threads) under the
    /// login lockout of both their username and email, claimed before the check like a login; a wrong
    /// password counts like a failed login, a right one clears the count.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] while locked; [`ServiceError::InvalidCredentials`] for a wrong password.
    pub(crate) async fn check_password(
        &self,
        user: &User,
        password: LoginPassword,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let claim = self
            .claim_and_verify_password(user, password, client)
            .await?;
        let tx = self.db.begin().await?;
        self.ensure_unlocked(&tx, &claim.identifiers()).await?;
        if user.mfa_enabled {
            // With two-factor authentication on, a right password alone clears nothing (otherwise whoever
            // knows it could reset the count between guesses at the second factor): the attempt, which was
            // no failure, is only given back.
            tx.commit().await?;
            self.release_claim(claim).await;
            return Ok(());
        }
        tx.clear_login_failures(&claim.identifiers()).await?;
        tx.commit().await?;
        Ok(())
    }
}
