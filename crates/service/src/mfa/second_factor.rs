//! The second factor's own count and cap, and step-up: every code, at login or for a sensitive change, is
//! claimed against the login lockout and the account's cap before it is compared, and settled after.

use super::*;
use crate::SecondFactor;

impl Services {
    /// Counts a second-factor attempt against the account's own cap ([`Database::claim_second_factor_attempt`])
    /// after the login-lockout claim, before any code is compared. At the cap, nothing is compared: the
    /// login claim is given back and the answer is [`ServiceError::SecondFactorLocked`].
    pub(super) async fn claim_second_factor(
        &self,
        claim: Claim,
        user: UserId,
    ) -> Result<CodeClaim, ServiceError> {
        let counted = match self
            .db
            .claim_second_factor_attempt(user, self.inner.mfa_max_failures)
            .await
        {
            Ok(SecondFactorClaim::Counted(failures)) => Some(failures),
            Ok(SecondFactorClaim::NotEnrolled) => None,
            Ok(SecondFactorClaim::Capped) => {
                self.release_claim(claim).await;
                return Err(ServiceError::SecondFactorLocked);
            }
            Err(err) => {
                self.release_claim(claim).await;
                return Err(err.into());
            }
        };
        Ok(CodeClaim {
            login: claim,
            counted,
        })
    }

    /// Step-up: with two-factor on, an account change only its owner may make (the email, deleting the
    /// account) needs a second factor besides the password. A code is checked and spent like a login's
    /// (counted toward both the lockout and the account's cap; a TOTP step or a recovery code works once); a
    /// passkey's assertion must answer a challenge of `POST /auth/passkey/options` with one of the user's
    /// passkeys (counted toward the lockout when refused). Without two-factor on, nothing is asked.
    ///
    /// # Errors
    /// [`ServiceError::SecondFactorRequired`] without a second factor; [`ServiceError::InvalidMfaCode`] for
    /// a wrong, replayed or used code; [`ServiceError::InvalidCredentials`] for a passkey that does not
    /// verify; [`ServiceError::InvalidCeremony`] for an unknown, used or expired challenge;
    /// [`ServiceError::RateLimited`] or [`ServiceError::SecondFactorLocked`] while locked.
    pub(crate) async fn step_up(
        &self,
        current: &CurrentSession,
        second_factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = &current.user;
        if !user.mfa_enabled {
            return Ok(());
        }
        let identifiers = lockout_keys(user);
        let code = match second_factor {
            None => return Err(ServiceError::SecondFactorRequired),
            Some(SecondFactor::Passkey(assertion)) => {
                let claim = self
                    .claim_password_check(&identifiers, Some(user.id), client)
                    .await?;
                return self
                    .step_up_with_passkey(current, assertion, claim, client)
                    .await;
            }
            Some(SecondFactor::Code(code)) => code,
        };
        let claim = self
            .claim_password_check(&identifiers, Some(user.id), client)
            .await?;
        let second = self.claim_second_factor(claim, user.id).await?;
        let checked = self.step_up_claimed(current, code).await;
        self.settle_code_claim(second, user, client, "wrong_code_at_step_up", checked)
            .await
    }

    /// [`Services::step_up`] once its attempt is claimed: `None` for a wrong code.
    pub(super) async fn step_up_claimed(
        &self,
        current: &CurrentSession,
        code: &MfaCode,
    ) -> Result<Option<()>, ServiceError> {
        let user = &current.user;
        let stored = self.db.find_totp(user.id).await?.filter(|s| s.enabled);
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        if !tx.has_second_factor(user.id).await? {
            // Turned off meanwhile: there is no second factor to ask for.
            return Ok(Some(()));
        }
        if !self
            .use_second_factor(&tx, user.id, stored.as_ref(), code)
            .await?
        {
            return Ok(None);
        }
        tx.clear_second_factor_failures(user.id).await?;
        tx.commit().await?;
        Ok(Some(()))
    }

    /// The end of a claimed code check: a wrong code (`Ok(None)`) is recorded as a failure (`mfa_failed`,
    /// with `reason`), may lock the login identifiers, and stays counted against the account's cap (the
    /// owner is told when it is reached); a success cleared both counts already; any other failure (no code
    /// was compared, or a right one could not be used) gives both attempts back.
    pub(super) async fn settle_code_claim<T>(
        &self,
        claim: CodeClaim,
        user: &User,
        client: &ClientInfo,
        reason: &str,
        checked: Result<Option<T>, ServiceError>,
    ) -> Result<T, ServiceError> {
        match checked {
            Ok(Some(done)) => Ok(done),
            Ok(None) => {
                if let Some(failures) = claim.counted
                    && failures >= self.inner.mfa_max_failures
                {
                    self.second_factor_capped(user, client, failures).await;
                }
                self.code_check_failed(claim.login, user.id, client, reason)
                    .await?;
                Err(ServiceError::InvalidMfaCode)
            }
            Err(err) => {
                self.release_claim(claim.login).await;
                if claim.counted.is_some()
                    && let Err(release) = self.db.release_second_factor_attempt(user.id).await
                {
                    log::warn!("giving back a second-factor attempt failed: {release:#}");
                }
                Err(err)
            }
        }
    }

    /// The account's cap on wrong second factors was just reached: the owner is told (a notice by mail) and
    /// it is recorded (`mfa_failed` with `locked: true`). Failing to record it does not change the answer.
    pub(super) async fn second_factor_capped(
        &self,
        user: &User,
        client: &ClientInfo,
        failures: u32,
    ) {
        let recorded = async {
            let tx = self.db.begin().await?;
            self.enqueue_mail(
                &tx,
                securecrud_mail::templates::second_factor_locked(
                    user.email.as_str(),
                    user.username.as_str(),
                    failures,
                ),
            )
            .await?;
            tx.record_audit(own_event(
                AuditKind::MfaFailed,
                client,
                user.id,
                json!({ "reason": "second_factor_locked", "failures": failures, "locked": true }),
            ))
            .await?;
            tx.commit().await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        log::warn!(
            user_id:% = user.id, failures = failures;
            "two-factor codes locked after too many wrong ones: refused until an admin reset"
        );
        if let Err(err) = recorded {
            log::error!("recording a second-factor lock failed: {err:#}");
        }
    }

    /// Uses `code` in `tx`: a TOTP code of a step later than the last one used (with TOTP enabled: `stored`),
    /// or an unused recovery code. `false` when it is wrong, replayed or used concurrently.
    pub(super) async fn use_second_factor(
        &self,
        tx: &Transaction,
        user: UserId,
        stored: Option<&StoredTotp>,
        code: &MfaCode,
    ) -> Result<bool, ServiceError> {
        match code {
            MfaCode::Totp(code) => {
                let Some(stored) = stored else {
                    return Ok(false);
                };
                let secret = self.open_secret(user, stored)?;
                let Some(step) = secret
                    .matching_step(code, self.db.clock().unix_now())
                    .and_then(|step| i64::try_from(step).ok())
                else {
                    return Ok(false);
                };
                Ok(tx.use_totp_step(user, step).await?)
            }
            MfaCode::Recovery(code) => Ok(tx
                .use_recovery_code(user, &mfa::hash_recovery_code(code))
                .await?),
        }
    }
}
