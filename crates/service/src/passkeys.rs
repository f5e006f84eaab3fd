//! Passkeys (WebAuthn Level 3): registration by a signed-in user (after their password), listing, renaming
//! and deleting, a passwordless login with discoverable credentials, and a passkey as the second step of a
//! password login.
//!
//! Rules:
//! - Every ceremony's state (its challenge) is kept in the database under the SHA-256 of the id the client
//!   gets (`registration_id`, `challenge_id`, or the login's `mfa_token` for the second step), for 5 minutes,
//!   and is taken by one conditional write before anything is verified: whichever instance receives the
//!   answer can finish it, and of concurrent answers to one challenge exactly one goes on.
//! - User verification is required in every ceremony (a passkey is two factors on its own: something held,
//!   and a PIN or biometric); the signature counter must grow when the authenticator keeps one.
//! - A passwordless login starts with no user (empty `allowCredentials`: nothing to enumerate); the
//!   assertion names its credential and user handle, and both must agree with what is stored.
//! - A passkey counts as a second factor: an account with one has `mfa_enabled`. The first second factor of
//!   an account brings ten recovery codes (shown once), and ends the account's other sessions.

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use securecrud_auth::{generate_token, hash_token, mfa};
use securecrud_domain::{AuditKind, LoginPassword, User, UserId, ValidationErrors};
use securecrud_persistence::{CeremonyKind, StoredPasskey};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Webauthn, WebauthnBuilder,
};

use crate::{
    ClientInfo, CurrentSession, SecondFactor, ServiceError, Services, TokenPair, WebauthnSettings,
    audit::{event, own_event},
    error::CredentialKind,
    users::{ensure_live, lockout_keys},
};

/// How long a started ceremony may be finished.
const CEREMONY_TTL: Duration = Duration::minutes(5);
/// How many recovery codes the first second factor brings.
const RECOVERY_CODES: usize = 10;
/// The name of a passkey registered without one.
pub const DEFAULT_PASSKEY_NAME: &str = "Passkey";

/// The relying party, from the settings (checked already: the RP ID suits every origin); `None` when
/// passkeys are off.
pub(crate) fn relying_party(
    settings: &WebauthnSettings,
    name: &str,
) -> anyhow::Result<Option<Webauthn>> {
    let Some(rp_id) = settings.rp_id.as_deref() else {
        log::warn!(
            "passkeys are off: the host of PUBLIC_BASE_URL is an IP address, which cannot be a WebAuthn RP \
             ID; set WEBAUTHN_RP_ID (and WEBAUTHN_ORIGINS) to offer them"
        );
        return Ok(None);
    };
    let (first, others) = settings
        .origins
        .split_first()
        .context("no WebAuthn origin is configured")?;
    let mut builder = WebauthnBuilder::new(rp_id, first)
        .context("the WebAuthn RP ID does not suit the origin")?
        .rp_name(name);
    for origin in others {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map(Some)
        .context("building the WebAuthn relying party failed")
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub backup_eligible: bool,
    pub backed_up: bool,
}

impl From<&StoredPasskey> for PasskeyInfo {
    fn from(stored: &StoredPasskey) -> Self {
        Self {
            id: stored.id,
            name: stored.name.clone(),
            created_at: stored.created_at,
            last_used_at: stored.last_used_at,
            backup_eligible: stored.backup_eligible,
            backed_up: stored.backed_up,
        }
    }
}

/// A started ceremony: the id to finish it with, and the options for the browser
/// (`PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`).
#[derive(Debug, Clone)]
pub struct CeremonyOptions {
    pub id: String,
    pub public_key: Value,
}

/// A registered passkey, and the recovery codes when it was the account's first second factor.
pub struct RegisteredPasskey {
    pub passkey: PasskeyInfo,
    pub recovery_codes: Option<Vec<String>>,
}

impl std::fmt::Debug for RegisteredPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredPasskey")
            .field("passkey", &self.passkey)
            .finish_non_exhaustive()
    }
}

/// Why an assertion was refused: the `reason` of `passkey_failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    UnknownCredential,
    WrongUser,
    Verification(&'static str),
}

impl Refused {
    fn reason(self) -> &'static str {
        match self {
            Self::UnknownCredential => "unknown_credential",
            Self::WrongUser => "credential_of_another_user",
            Self::Verification(reason) => reason,
        }
    }
}

/// The audit reason for a WebAuthn error (never its text: it can quote client data).
fn verification_reason(err: &webauthn_rs::prelude::WebauthnError) -> &'static str {
    use webauthn_rs::prelude::WebauthnError as E;
    match err {
        E::InvalidRPOrigin => "wrong_origin",
        E::InvalidRPIDHash => "wrong_rp_id",
        E::MismatchedChallenge => "wrong_challenge",
        E::UserNotVerified => "user_not_verified",
        E::UserNotPresent => "user_not_present",
        E::CredentialPossibleCompromise => "counter_went_backwards",
        E::InvalidClientDataType => "wrong_ceremony_type",
        E::AuthenticationFailure => "bad_signature",
        E::CredentialNotFound | E::CredentialExcludedFromRequest => "credential_not_allowed",
        E::CredentialCrossOrigin => "cross_origin",
        _ => "invalid_credential",
    }
}

fn credential_id(passkey: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode(passkey.cred_id())
}

/// A new passkey's record as stored (JSON), and its backup flags (`BE`, `BS`) read from it.
fn record_of(passkey: &Passkey) -> Result<(String, bool, bool), ServiceError> {
    let record = serde_json::to_value(passkey).context("serialising a passkey failed")?;
    let flag = |name: &str| record["cred"][name].as_bool();
    match (flag("backup_eligible"), flag("backup_state")) {
        (Some(eligible), Some(state)) => Ok((record.to_string(), eligible, state)),
        _ => Err(ServiceError::Unexpected(anyhow::anyhow!(
            "a passkey's record has no backup flags"
        ))),
    }
}

/// The signature counter a stored passkey has reached.
fn stored_counter(stored: &StoredPasskey) -> Result<u32, ServiceError> {
    let record: Value = serde_json::from_str(&stored.credential)
        .with_context(|| format!("the stored passkey {} cannot be read", stored.id))?;
    record["cred"]["counter"]
        .as_u64()
        .and_then(|counter| u32::try_from(counter).ok())
        .with_context(|| format!("the stored passkey {} has no signature counter", stored.id))
        .map_err(ServiceError::Unexpected)
}

fn decode_passkey(stored: &StoredPasskey) -> Result<Passkey, ServiceError> {
    serde_json::from_str(&stored.credential)
        .with_context(|| format!("the stored passkey {} cannot be read", stored.id))
        .map_err(ServiceError::Unexpected)
}

fn encode<T: serde::Serialize>(value: &T, what: &str) -> Result<String, ServiceError> {
    serde_json::to_string(value)
        .with_context(|| format!("serialising {what} failed"))
        .map_err(ServiceError::Unexpected)
}

/// A ceremony's stored state, read back.
fn decode_state<T: serde::de::DeserializeOwned>(state: &str) -> Result<T, ServiceError> {
    serde_json::from_str(state)
        .context("a stored WebAuthn ceremony cannot be read")
        .map_err(ServiceError::Unexpected)
}

impl Services {
    /// Stores a started ceremony's state under `id_hash` for [`CEREMONY_TTL`].
    async fn store_ceremony<T: serde::Serialize>(
        &self,
        id_hash: String,
        kind: CeremonyKind,
        user: Option<UserId>,
        state: &T,
        what: &str,
    ) -> Result<(), ServiceError> {
        let state = encode(state, what)?;
        self.db
            .insert_ceremony(id_hash, kind, user, state, self.db.now() + CEREMONY_TTL)
            .await?;
        Ok(())
    }

    /// The relying party, unless passkeys are off (no usable RP ID: see [`WebauthnSettings`]).
    fn webauthn(&self) -> Result<&Webauthn, ServiceError> {
        self.inner
            .webauthn
            .as_ref()
            .ok_or(ServiceError::PasskeysOff)
    }

    /// Starts registering a passkey for the signed-in user after checking their password (counted like a
    /// login) and, with two-factor on, a second factor (see [`Services::step_up`]). The options exclude the
    /// user's passkeys and ask for a discoverable credential with user verification.
    ///
    /// # Errors
    /// [`ServiceError::InvalidCredentials`] for a wrong password; [`ServiceError::SecondFactorRequired`] and
    /// the other refusals of a step-up; [`ServiceError::RateLimited`] while locked.
    pub async fn start_passkey_registration(
        &self,
        current: &CurrentSession,
        current_password: Option<LoginPassword>,
        second_factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<CeremonyOptions, ServiceError> {
        let user = &current.user;
        self.webauthn()?;
        self.reauthenticate(current, current_password, client)
            .await?;
        // With two-factor on, a stolen session and password must not attach the thief's passkey.
        self.step_up(current, second_factor, client).await?;
        let mut excluded = Vec::new();
        for stored in self.db.passkeys_of(user.id).await? {
            excluded.push(decode_passkey(&stored)?.cred_id().clone());
        }
        let (options, state) = self
            .webauthn()?
            .start_passkey_registration(
                user.id.as_uuid(),
                user.username.as_str(),
                user.username.as_str(),
                Some(excluded),
            )
            .context("starting a passkey registration failed")?;
        let mut public_key = serde_json::to_value(&options.public_key)
            .context("serialising the creation options failed")?;
        // A passkey is a discoverable credential: it is what lets a login start without a username.
        public_key["authenticatorSelection"]["residentKey"] = json!("required");
        public_key["authenticatorSelection"]["requireResidentKey"] = json!(true);
        let id = generate_token();
        self.store_ceremony(
            hash_token(&id),
            CeremonyKind::Registration,
            Some(user.id),
            &state,
            "a registration state",
        )
        .await?;
        Ok(CeremonyOptions { id, public_key })
    }

    /// Finishes a registration: the credential must answer this user's ceremony (its challenge, origin,
    /// RP ID, with user verification). The first second factor of the account brings recovery codes and ends
    /// the account's other sessions.
    ///
    /// # Errors
    /// [`ServiceError::InvalidCeremony`] for an unknown, used or expired `registration_id` (or another
    /// user's); [`ServiceError::Validation`] naming `credential` when it does not verify;
    /// [`ServiceError::Conflict`] when the credential is registered already.
    pub async fn finish_passkey_registration(
        &self,
        current: &CurrentSession,
        registration_id: &str,
        credential: &RegisterPublicKeyCredential,
        name: Option<String>,
        client: &ClientInfo,
    ) -> Result<RegisteredPasskey, ServiceError> {
        let user = &current.user;
        let taken = self
            .db
            .take_ceremony(&hash_token(registration_id), CeremonyKind::Registration)
            .await?
            .filter(|taken| taken.user == Some(user.id))
            .ok_or(ServiceError::InvalidCeremony)?;
        let state: PasskeyRegistration = decode_state(&taken.state)?;
        let passkey = match self
            .webauthn()?
            .finish_passkey_registration(credential, &state)
        {
            Ok(passkey) => passkey,
            Err(err) => {
                let reason = verification_reason(&err);
                self.record_passkey_failure(client, Some(user.id), "registration", reason)
                    .await;
                return Err(ValidationErrors::single(
                    "credential",
                    format!("did not verify ({reason}): register again"),
                )
                .into());
            }
        };
        let (credential, backup_eligible, backed_up) = record_of(&passkey)?;
        let stored = StoredPasskey {
            id: Uuid::now_v7(),
            user: user.id,
            credential_id: credential_id(&passkey),
            name: name.unwrap_or_else(|| DEFAULT_PASSKEY_NAME.to_owned()),
            credential,
            backup_eligible,
            backed_up,
            created_at: self.db.now(),
            last_used_at: None,
        };
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        tx.lock_user(user.id).await?;
        let first = !tx.has_second_factor(user.id).await?;
        tx.insert_passkey(stored.clone()).await?;
        let mut recovery_codes = None;
        let mut ended = 0;
        if first {
            let codes = mfa::generate_recovery_codes(RECOVERY_CODES);
            tx.replace_recovery_codes(user.id, crate::mfa::recovery_hashes(&codes))
                .await?;
            tx.mark_mfa_enabled(user.id).await?;
            // As when TOTP is turned on: the sessions opened with the password alone end now.
            ended = tx
                .revoke_user_sessions(user.id, Some(current.session_id))
                .await?;
            recovery_codes = Some(codes);
        }
        tx.record_audit(own_event(
            AuditKind::PasskeyAdded,
            client,
            user.id,
            json!({
                "passkey_id": stored.id.to_string(),
                "name": stored.name,
                "first_second_factor": first,
                "other_sessions_ended": ended,
            }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id, first_second_factor = first; "passkey registered");
        Ok(RegisteredPasskey {
            passkey: PasskeyInfo::from(&stored),
            recovery_codes,
        })
    }

    /// The signed-in user's passkeys, oldest first.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] when the database is.
    pub async fn passkeys(&self, user: UserId) -> Result<Vec<PasskeyInfo>, ServiceError> {
        Ok(self
            .db
            .passkeys_of(user)
            .await?
            .iter()
            .map(PasskeyInfo::from)
            .collect())
    }

    /// How many passkeys the user has. A passkey turns two-factor on in the transaction that adds it, so an
    /// account without it has none: the common case answers from the (cached) user alone, with no query.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] when the database is.
    pub async fn passkey_count(&self, user: &User) -> Result<u64, ServiceError> {
        if !user.mfa_enabled {
            return Ok(0);
        }
        Ok(self.db.count_passkeys(user.id).await?)
    }

    /// Renames one of the signed-in user's passkeys.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when the user has no such passkey.
    pub async fn rename_passkey(
        &self,
        current: &CurrentSession,
        id: Uuid,
        name: &str,
    ) -> Result<PasskeyInfo, ServiceError> {
        self.db
            .rename_passkey(current.user.id, id, name)
            .await?
            .as_ref()
            .map(PasskeyInfo::from)
            .ok_or(ServiceError::NotFound)
    }

    /// Deletes one of the signed-in user's passkeys after checking their password and a second factor (a
    /// code, or a passkey: this one too). Removing the last second factor turns two-factor authentication off
    /// (the recovery codes go with it).
    ///
    /// # Errors
    /// [`ServiceError::InvalidCredentials`] for a wrong password; [`ServiceError::SecondFactorRequired`] and
    /// the other refusals of a step-up; [`ServiceError::NotFound`] when the user has no such passkey.
    pub async fn delete_passkey(
        &self,
        current: &CurrentSession,
        id: Uuid,
        current_password: Option<LoginPassword>,
        second_factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = &current.user;
        self.reauthenticate(current, current_password, client)
            .await?;
        // A passkey is a second factor: removing one (the last turns two-factor off) takes one too.
        self.step_up(current, second_factor, client).await?;
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        tx.lock_user(user.id).await?;
        if !tx.delete_passkey(user.id, id).await? {
            return Err(ServiceError::NotFound);
        }
        // An account without a password keeps a way in (an identity, another passkey); the transaction,
        // which holds the user's row, is dropped (rolled back) otherwise.
        if tx.other_sign_in_methods(user.id, Uuid::nil()).await? == Some(0) {
            return Err(ServiceError::LastSignInMethod);
        }
        let mfa_off = !tx.has_second_factor(user.id).await?;
        if mfa_off {
            tx.disable_mfa(user.id).await?;
        }
        tx.record_audit(own_event(
            AuditKind::PasskeyRemoved,
            client,
            user.id,
            json!({ "passkey_id": id.to_string(), "mfa_disabled": mfa_off }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id, mfa_disabled = mfa_off; "passkey removed");
        Ok(())
    }

    /// Starts a passwordless login: a challenge for any discoverable credential of this site (no user is
    /// named, so nothing can be enumerated).
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] when the database is.
    pub async fn start_passkey_login(&self) -> Result<CeremonyOptions, ServiceError> {
        let (options, state) = self
            .webauthn()?
            .start_discoverable_authentication()
            .context("starting a passkey login failed")?;
        let public_key = serde_json::to_value(&options.public_key)
            .context("serialising the request options failed")?;
        // The challenge itself is the ceremony's id: public like the options, and what lets a step-up find
        // the ceremony from the assertion alone (its client data names the challenge it signed).
        let id = public_key["challenge"]
            .as_str()
            .context("the request options have no challenge")?
            .to_owned();
        self.store_ceremony(
            hash_token(&id),
            CeremonyKind::Login,
            None,
            &state,
            "a login state",
        )
        .await?;
        Ok(CeremonyOptions { id, public_key })
    }

    /// Finishes a passwordless login: the assertion must answer this challenge with a passkey of the user it
    /// names, with user verification and a signature counter that did not go back. A lock from failed
    /// passwords does not apply (a password guesser cannot lock a passkey user out).
    ///
    /// # Errors
    /// [`ServiceError::InvalidCeremony`] for an unknown, used or expired `challenge_id`;
    /// [`ServiceError::InvalidPasskey`] when the assertion does not verify;
    /// [`ServiceError::AccountDisabled`]; [`ServiceError::EmailNotVerified`].
    pub async fn finish_passkey_login(
        &self,
        challenge_id: &str,
        assertion: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let taken = self
            .db
            .take_ceremony(&hash_token(challenge_id), CeremonyKind::Login)
            .await?
            .ok_or(ServiceError::InvalidCeremony)?;
        let state: DiscoverableAuthentication = decode_state(&taken.state)?;
        let (user, stored, verified) = match self.verify_discoverable(assertion, state).await? {
            Ok(found) => found,
            Err((user, refused)) => {
                self.record_passkey_failure(client, user, "login", refused.reason())
                    .await;
                return Err(ServiceError::InvalidPasskey);
            }
        };
        if !user.is_active {
            self.record_passkey_failure(client, Some(user.id), "login", "account_deactivated")
                .await;
            return Err(ServiceError::AccountDisabled);
        }
        if self.inner.mail.require_verified_email && !user.email_verified {
            return Err(ServiceError::EmailNotVerified);
        }
        self.record_passkey_use(&stored, verified).await?;
        let tx = self.db.begin().await?;
        let opened = self.open_session_in(&tx, &user, client, &[]).await?;
        tx.record_audit(own_event(
            AuditKind::PasskeyLogin,
            client,
            user.id,
            json!({ "session_id": opened.id.to_string(), "passkey_id": stored.id.to_string() }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id; "login succeeded with a passkey");
        self.token_pair(&user, opened.id, opened.refresh_token, opened.expires_at)
    }

    /// The user and passkey a discoverable assertion names, once it verifies; else who it named (if anyone
    /// real) and why it was refused.
    #[allow(clippy::type_complexity)]
    async fn verify_discoverable(
        &self,
        assertion: &PublicKeyCredential,
        state: DiscoverableAuthentication,
    ) -> Result<
        Result<
            (
                User,
                StoredPasskey,
                webauthn_rs::prelude::AuthenticationResult,
            ),
            (Option<UserId>, Refused),
        >,
        ServiceError,
    > {
        let Ok((handle, raw_id)) = self
            .webauthn()?
            .identify_discoverable_authentication(assertion)
        else {
            return Ok(Err((None, Refused::Verification("no_user_handle"))));
        };
        let Some(stored) = self
            .db
            .find_passkey_by_credential(&URL_SAFE_NO_PAD.encode(raw_id))
            .await?
        else {
            return Ok(Err((None, Refused::UnknownCredential)));
        };
        if stored.user.as_uuid() != handle {
            // Nobody is named before a signature verified: credential ids are no secret, and whoever has one
            // must not write refusals into its owner's audit trail.
            return Ok(Err((None, Refused::WrongUser)));
        }
        let Some(user) = self.db.find_user(stored.user).await? else {
            return Ok(Err((None, Refused::UnknownCredential)));
        };
        let passkey = decode_passkey(&stored)?;
        match self
            .webauthn()?
            .finish_discoverable_authentication_v2(assertion, state, &passkey)
        {
            Ok(verified) => Ok(Ok((user, stored, verified))),
            Err(err) => Ok(Err((
                Some(user.id),
                Refused::Verification(verification_reason(&err)),
            ))),
        }
    }

    /// Keeps what a verified assertion changed: the signature counter, the backup state, when it was used.
    async fn record_passkey_use(
        &self,
        stored: &StoredPasskey,
        verified: webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<(), ServiceError> {
        let mut passkey = decode_passkey(stored)?;
        let changed = passkey.update_credential(&verified) == Some(true);
        let credential = if changed {
            Some(encode(&passkey, "a passkey")?)
        } else {
            None
        };
        self.db
            .record_passkey_use(stored.id, credential, verified.backup_state())
            .await?;
        Ok(())
    }

    /// Records a refused passkey (`passkey_failed`, with the ceremony and the reason). Failing to record it
    /// does not change the answer.
    async fn record_passkey_failure(
        &self,
        client: &ClientInfo,
        user: Option<UserId>,
        ceremony: &str,
        reason: &str,
    ) {
        let recorded = async {
            let tx = self.db.begin().await?;
            tx.record_audit(event(
                AuditKind::PasskeyFailed,
                client,
                None,
                user,
                json!({ "ceremony": ceremony, "reason": reason }),
            ))
            .await?;
            tx.commit().await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        log::info!(ceremony = ceremony, reason = reason; "passkey refused");
        if let Err(err) = recorded {
            log::error!("recording a refused passkey failed: {err:#}");
        }
    }

    /// The options of a password login's second step with a passkey: that user's passkeys are allowed. Asking
    /// again replaces the challenge.
    ///
    /// # Errors
    /// [`ServiceError::InvalidToken`] for an unknown, expired or spent `mfa_token`;
    /// [`ServiceError::MfaState`] when the account has no passkey.
    pub async fn start_passkey_second_step(&self, mfa_token: &str) -> Result<Value, ServiceError> {
        let token_hash = hash_token(mfa_token);
        let Some(user) = self.db.find_mfa_challenge(&token_hash).await? else {
            return Err(ServiceError::InvalidToken(CredentialKind::Mfa));
        };
        let mut passkeys = Vec::new();
        for stored in self.db.passkeys_of(user).await? {
            passkeys.push(decode_passkey(&stored)?);
        }
        if passkeys.is_empty() {
            return Err(ServiceError::MfaState(
                "this account has no passkey: use a code from the authenticator app or a recovery code",
            ));
        }
        let (options, state) = self
            .webauthn()?
            .start_passkey_authentication(&passkeys)
            .context("starting a passkey second step failed")?;
        self.store_ceremony(
            token_hash,
            CeremonyKind::SecondStep,
            Some(user),
            &state,
            "a second-step state",
        )
        .await?;
        Ok(serde_json::to_value(&options.public_key)
            .context("serialising the request options failed")?)
    }

    /// The second step of a password login with a passkey: spends the `mfa_token` and opens the session. A
    /// refused assertion counts toward the account's login lockout like a wrong code (and leaves the
    /// `mfa_token` usable: ask for new options); the cap on wrong codes does not apply to passkeys.
    ///
    /// # Errors
    /// [`ServiceError::InvalidToken`] for an unknown, expired or spent `mfa_token`;
    /// [`ServiceError::InvalidCeremony`] when no passkey challenge waits for it;
    /// [`ServiceError::InvalidPasskey`] when the assertion does not verify;
    /// [`ServiceError::RateLimited`] while the account is locked; [`ServiceError::AccountDisabled`].
    pub async fn verify_mfa_passkey(
        &self,
        mfa_token: &str,
        assertion: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let token_hash = hash_token(mfa_token);
        let user = self.user_of_mfa_token(&token_hash).await?;
        let identifiers = lockout_keys(&user);
        let claim = self
            .claim_password_check(&identifiers, Some(user.id), client)
            .await?;
        let taken = match self
            .db
            .take_ceremony(&token_hash, CeremonyKind::SecondStep)
            .await
        {
            Ok(Some(taken)) if taken.user == Some(user.id) => taken,
            Ok(_) => {
                self.release_claim(claim).await;
                return Err(ServiceError::InvalidCeremony);
            }
            Err(err) => {
                self.release_claim(claim).await;
                return Err(err.into());
            }
        };
        let checked = async {
            let state: PasskeyAuthentication = decode_state(&taken.state)?;
            Ok::<_, ServiceError>(
                self.webauthn()?
                    .finish_passkey_authentication(assertion, &state),
            )
        }
        .await;
        let verified = match checked {
            Ok(Ok(verified)) => verified,
            Ok(Err(err)) => {
                let reason = verification_reason(&err);
                self.record_passkey_failure(client, Some(user.id), "second_step", reason)
                    .await;
                self.code_check_failed(claim, user.id, client, "wrong_passkey")
                    .await?;
                return Err(ServiceError::InvalidPasskey);
            }
            Err(err) => {
                self.release_claim(claim).await;
                return Err(err);
            }
        };
        let opened = async {
            let credential = URL_SAFE_NO_PAD.encode(verified.cred_id());
            let stored = self
                .db
                .find_passkey_by_credential(&credential)
                .await?
                .filter(|stored| stored.user == user.id)
                .ok_or(ServiceError::InvalidPasskey)?;
            // The options carried the passkey as it was then: its counter is checked again against the one
            // stored now (another sign-in may have moved it on since, and a clone would be behind it).
            let now = stored_counter(&stored)?;
            if (now > 0 || verified.counter() > 0) && verified.counter() <= now {
                self.record_passkey_failure(
                    client,
                    Some(user.id),
                    "second_step",
                    "counter_went_backwards",
                )
                .await;
                return Err(ServiceError::InvalidPasskey);
            }
            self.record_passkey_use(&stored, verified).await?;
            let tx = self.db.begin().await?;
            if tx.consume_mfa_challenge(&token_hash).await? != Some(user.id) {
                return Err(ServiceError::InvalidToken(CredentialKind::Mfa));
            }
            // The cap on wrong codes stays as it is: only an admin's reset lifts it (API.md).
            let opened = self
                .open_session_in(&tx, &user, client, &identifiers)
                .await?;
            tx.record_audit(own_event(
                AuditKind::MfaVerified,
                client,
                user.id,
                json!({
                    "session_id": opened.id.to_string(),
                    "method": "passkey",
                    "passkey_id": stored.id.to_string(),
                }),
            ))
            .await?;
            tx.commit().await?;
            Ok(opened)
        }
        .await;
        let opened = match opened {
            Ok(opened) => opened,
            Err(err) => {
                self.release_claim(claim).await;
                return Err(err);
            }
        };
        log::info!(user_id:% = user.id, method = "passkey"; "login succeeded with a second factor");
        self.token_pair(&user, opened.id, opened.refresh_token, opened.expires_at)
    }

    /// Step-up with a passkey (see [`Services::step_up`]), once the attempt is claimed against the lockout:
    /// the assertion must answer a live challenge of `POST /auth/passkey/options` with a passkey of this
    /// user. A refusal is counted like a wrong code.
    pub(crate) async fn step_up_with_passkey(
        &self,
        current: &CurrentSession,
        assertion: &PublicKeyCredential,
        claim: crate::protection::Claim,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = &current.user;
        let taken = match signed_challenge(assertion) {
            Some(challenge) => {
                self.db
                    .take_ceremony(&hash_token(&challenge), CeremonyKind::Login)
                    .await
            }
            None => Ok(None),
        };
        let taken = match taken {
            Ok(Some(taken)) => taken,
            Ok(None) => {
                self.release_claim(claim).await;
                return Err(ServiceError::InvalidCeremony);
            }
            Err(err) => {
                self.release_claim(claim).await;
                return Err(err.into());
            }
        };
        let checked = async {
            let state: DiscoverableAuthentication = decode_state(&taken.state)?;
            self.verify_discoverable(assertion, state).await
        }
        .await;
        let (stored, verified) = match checked {
            Ok(Ok((owner, stored, verified))) if owner.id == user.id => (stored, verified),
            Ok(found) => {
                let reason = match found {
                    Ok(_) => Refused::WrongUser.reason(),
                    Err((_, refused)) => refused.reason(),
                };
                self.record_passkey_failure(client, Some(user.id), "step_up", reason)
                    .await;
                self.code_check_failed(claim, user.id, client, "wrong_passkey_at_step_up")
                    .await?;
                return Err(ServiceError::InvalidPasskey);
            }
            Err(err) => {
                self.release_claim(claim).await;
                return Err(err);
            }
        };
        self.record_passkey_use(&stored, verified).await?;
        let tx = self.db.begin().await?;
        ensure_live(&tx, current).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The challenge an assertion signed, as its client data names it (base64url).
fn signed_challenge(assertion: &PublicKeyCredential) -> Option<String> {
    let data: Value = serde_json::from_slice(&assertion.response.client_data_json).ok()?;
    data.get("challenge")?.as_str().map(str::to_owned)
}
