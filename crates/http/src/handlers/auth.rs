//! `/api/v1/auth/*`: register, login, OAuth2 token, refresh, logout, logout-all, email verification and
//! password reset.

use actix_web::HttpRequest;
use paperclip::actix::{NoContent, api_v2_operation, web};
use securecrud_domain::{NewUser, ValidationErrors};
use securecrud_service::{LoginOutcome, SecondFactor, ServiceError, Services};

use crate::{
    browser::{BrowserSessions, SessionMode},
    client_ip::client_ip,
    dto::{
        LoginRequest, MfaVerifyRequest, PasswordResetConfirm, PasswordResetRequest, RefreshRequest,
        RegisterRequest, RevocationFeedParams, RevokeForm, TokenForm, TokenGrant,
        TokenPairResponse, UserResponse, VerifyEmailRequest,
    },
    error::{ApiError, OAuthError, Problem, error_set},
    events::EventStream,
    extract::{ApiForm, ApiJson, Client, SignedIn, SignedInOrCookie, StrictQuery},
    handlers::resource,
    handlers::users::SignedInError,
    respond::{Accepted, AuthChecked, Created, EmptyOk, LoggedOut, Tokens},
};

/// `/api/v1/auth/*`.
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/auth/register", limited, [POST => register]);
    resource!(cfg, "/auth/login", limited, [POST => login]);
    resource!(cfg, "/auth/mfa/verify", limited, [POST => verify_mfa]);
    resource!(cfg, "/auth/token", limited, [POST => token]);
    resource!(cfg, "/auth/revoke", limited, [POST => revoke]);
    resource!(cfg, "/auth/check", [GET => check]);
    resource!(cfg, "/auth/revocations", [GET => revocations]);
    resource!(cfg, "/auth/refresh", limited, [POST => refresh]);
    resource!(cfg, "/auth/verify-email", limited, [POST => verify_email]);
    resource!(cfg, "/auth/verify-email/resend", limited, [POST => resend_verification]);
    resource!(cfg, "/auth/password-reset/request", limited, [POST => request_password_reset]);
    resource!(cfg, "/auth/password-reset/confirm", limited, [POST => confirm_password_reset]);
    resource!(cfg, "/auth/logout", [POST => logout]);
    resource!(cfg, "/auth/logout-all", [POST => logout_all]);
}

error_set!(
    /// What registration can answer besides 201.
    RegisterError {
        400 => "The body is not valid JSON",
        409 => "`username_taken` or `email_taken`",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field breaks its rule (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP (or, for login, failures of this login); see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

error_set!(
    /// What login can answer besides 200.
    LoginError {
        400 => "The body could not be parsed",
        401 => "`invalid_credentials`: wrong login or password (the same for unknown users); `mfa_required`: the password is right and the account has two-factor authentication on: the problem carries the `mfa_token` for `POST /api/v1/auth/mfa/verify`",
        403 => "`forbidden`: the account is deactivated; with `session: \"cookie\"`, no `X-Requested-With: securecrud` or an origin that is not allowed. `email_not_verified`: the email is not verified yet (`REQUIRE_VERIFIED_EMAIL=true`)",
        413 => "The body is larger than 64 KiB",
        415 => "Wrong content type",
        422 => "A field is missing or empty (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP (or, for login, failures of this login); see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

error_set!(
    /// What refresh and logout can answer besides success.
    RefreshError {
        400 => "The body is not valid JSON",
        401 => "`invalid_token`: unknown, expired, revoked or replayed refresh token (or, with `X-Requested-With: securecrud` and no cookie, no browser session)",
        403 => "`forbidden`: the session cookie was sent without `X-Requested-With: securecrud`, or from an origin that is not allowed",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "`refresh_token` is missing (and there is no session cookie) or empty",
        429 => "`rate_limited`: too many requests from this IP (or, for login, failures of this login); see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Register an account
///
/// Creates a user with the `user` role. `Location` points at `/api/v1/users/me`.
#[api_v2_operation(tags(Auth), operation_id = "register")]
pub async fn register(
    services: web::Data<Services>,
    client: Client,
    body: ApiJson<RegisterRequest>,
) -> Result<Created<UserResponse>, RegisterError> {
    let new_user = NewUser::try_from(body.0)?;
    let user = services.register(new_user, &client.0).await?;
    Ok(Created::at("/api/v1/users/me", user.into()))
}

/// Log in
///
/// `login` is a username or an email, matched case-insensitively. Opens a session and returns its tokens.
/// After `LOGIN_MAX_FAILURES` failures in a row for one login (existing or not), it is locked: 429 with
/// `Retry-After`, for 1 minute doubling up to 15. Rate limited per client IP.
///
/// With two-factor authentication on, a right password answers `401 mfa_required` with an `mfa_token`
/// (single use, 5 minutes): send it with a code to `POST /api/v1/auth/mfa/verify`.
///
/// `session: "cookie"` (a browser app on this site): the refresh token is set only in the cookie
/// `__Host-securecrud_refresh` (`HttpOnly; Secure; SameSite=Strict; Path=/`), never in the body; the
/// request must carry `X-Requested-With: securecrud` and, if the browser sends `Origin`, an allowed one.
#[api_v2_operation(tags(Auth), operation_id = "login")]
pub async fn login(
    services: web::Data<Services>,
    browser: web::Data<BrowserSessions>,
    req: HttpRequest,
    client: Client,
    body: ApiJson<LoginRequest>,
) -> Result<Tokens, LoginError> {
    let (input, mode) = body.0.parse()?;
    if mode == SessionMode::Cookie {
        browser.check_csrf(&req)?;
    }
    match services.login(input, &client.0).await? {
        LoginOutcome::Tokens(pair) => Ok(Tokens::new(pair, mode)),
        LoginOutcome::MfaRequired(challenge) => Err(ApiError::MfaRequired(challenge).into()),
    }
}

error_set!(
    /// What the second step of a two-factor login can answer besides 200.
    MfaVerifyError {
        400 => "The body is not valid JSON; `invalid_token`: with `passkey`, no passkey challenge waits for this `mfa_token` (ask `POST /api/v1/auth/mfa/passkey/options`), or it was used or expired",
        401 => "`invalid_token`: the `mfa_token` is unknown, expired or already used; `invalid_credentials`: the code is wrong or was already used, or the passkey's assertion did not verify (the `mfa_token` stays usable)",
        403 => "The account is deactivated; with `session: \"cookie\"`, no `X-Requested-With: securecrud` or an origin that is not allowed",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP, or the account is locked after failed passwords or codes; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Verify the second factor of a login
///
/// With the `mfa_token` of the login's `401 mfa_required` answer and a 6-digit code from the authenticator
/// app (30 s steps, ±1 step of drift; a code already used for the account is refused) or a recovery code
/// (each works once). Opens the session: the tokens, as login gives them (`session: "cookie"` too). A
/// wrong code counts toward the account's login lockout; the `mfa_token` works until it is spent by a
/// right code or expires. Rate limited per client IP.
#[api_v2_operation(tags(Auth), operation_id = "verifyMfa")]
pub async fn verify_mfa(
    services: web::Data<Services>,
    browser: web::Data<BrowserSessions>,
    req: HttpRequest,
    client: Client,
    body: ApiJson<MfaVerifyRequest>,
) -> Result<Tokens, MfaVerifyError> {
    let (mfa_token, factor, mode) = body.0.parse()?;
    if mode == SessionMode::Cookie {
        browser.check_csrf(&req)?;
    }
    let pair = match factor {
        SecondFactor::Code(code) => services.verify_mfa(&mfa_token, &code, &client.0).await?,
        SecondFactor::Passkey(assertion) => {
            services
                .verify_mfa_passkey(&mfa_token, &assertion, &client.0)
                .await?
        }
    };
    Ok(Tokens::new(pair, mode))
}

error_set!(
    /// What the OAuth 2.0 token and revocation endpoints can answer besides 200. Every problem also carries
    /// RFC 6749 §5.2's `error` and `error_description`.
    TokenEndpointError(OAuthError) {
        400 => "`invalid_grant`: wrong username or password, an account that may not log in, or an unknown, expired, revoked or replayed refresh token; `invalid_request`: a parameter is missing, empty or repeated (listed in `errors`), or the form is unreadable; `unsupported_grant_type`",
        413 => "The body is larger than 64 KiB (`error: invalid_request`)",
        415 => "The body is not `application/x-www-form-urlencoded` (`error: invalid_request`)",
        429 => "`rate_limited` (`error: temporarily_unavailable`): too many requests from this IP, or this login is locked after failures; see `Retry-After`",
        500 => "Unexpected server error (`error: server_error`)",
        503 => "The database or the password checker is unavailable (`error: temporarily_unavailable`); see `Retry-After`",
    }
);

/// OAuth 2.0 token endpoint
///
/// RFC 6749, form-encoded: the password grant (`grant_type=password&username=…&password=…`, §4.3;
/// `username` may also be an email; same rules and lockout as `login`) and the refresh-token grant
/// (`grant_type=refresh_token&refresh_token=…`, §6; same rotation, grace window and reuse detection as
/// `refresh`). Unknown parameters (`scope`, `client_id`) are ignored. Failures are problem+json with RFC
/// 6749's `error` and `error_description` members as well. Rate limited per client IP.
#[api_v2_operation(
    tags(Auth),
    operation_id = "token",
    consumes = "application/x-www-form-urlencoded"
)]
pub async fn token(
    services: web::Data<Services>,
    client: Client,
    form: ApiForm<TokenForm>,
) -> Result<web::Json<TokenPairResponse>, TokenEndpointError> {
    let pair = match form.0.grant()? {
        TokenGrant::Password(input) => match services.login(input, &client.0).await? {
            LoginOutcome::Tokens(pair) => pair,
            LoginOutcome::MfaRequired(challenge) => {
                return Err(ApiError::MfaRequired(challenge).into());
            }
        },
        TokenGrant::RefreshToken(token) => services.refresh(&token, &client.0).await?,
    };
    Ok(web::Json(pair.into()))
}

/// OAuth 2.0 token revocation
///
/// RFC 7009, form-encoded `token=…` (`token_type_hint` is optional and only a hint). A refresh token, or a
/// valid access token, ends its session: every token of that session stops working at once. Answers `200`
/// for any token, unknown and already revoked ones included, so the answer tells nothing about the token.
/// Rate limited per client IP.
#[api_v2_operation(
    tags(Auth),
    operation_id = "revokeToken",
    consumes = "application/x-www-form-urlencoded"
)]
pub async fn revoke(
    services: web::Data<Services>,
    client: Client,
    form: ApiForm<RevokeForm>,
) -> Result<EmptyOk, TokenEndpointError> {
    let token = form.0.token()?;
    services.revoke(&token, &client.0).await?;
    Ok(EmptyOk)
}

error_set!(
    /// What the revocation feed can answer besides its stream.
    FeedError {
        400 => "The query string could not be decoded",
        422 => "`since` or `Last-Event-ID` is not a cursor (digits), or an unknown parameter was given",
        429 => "`rate_limited`: this client has `REVOCATION_FEED_MAX_STREAMS_PER_IP` streams open (or too many requests from this IP); see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Revocation feed
///
/// Server-Sent Events of ended sessions, for services that verify access tokens themselves (from the
/// JWKS): each event `revoked` names a session whose tokens must no longer be accepted, `until` the
/// Unix time after which none of them verifies anyway. Every ending counts: logout, logout-all, a password
/// change or reset, refresh-token reuse, deactivation, an admin's revoke, a second-factor reset, deletion.
/// With `Last-Event-ID` (or `since`) the stream resumes after that event with nothing skipped, across
/// reconnections and api restarts; without, it starts with every ending whose tokens could still verify.
/// Public, like the JWKS (it names only session ids); at most `REVOCATION_FEED_MAX_STREAMS_PER_IP` open
/// streams per client IP on each instance.
#[api_v2_operation(
    tags(Auth),
    operation_id = "revocationFeed",
    produces = "text/event-stream"
)]
pub async fn revocations(
    services: web::Data<Services>,
    req: HttpRequest,
    query: StrictQuery<RevocationFeedParams>,
) -> Result<EventStream, FeedError> {
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .map(actix_web::http::header::HeaderValue::as_bytes);
    let since = query.0.start(last_event_id).map_err(ApiError::Validation)?;
    let stream = services.revocation_stream(since, client_ip(&req)).await?;
    Ok(EventStream::new(stream))
}

/// Forward-auth check
///
/// For a reverse proxy in front of other upstreams (nginx `auth_request`, Traefik `forwardAuth`, Caddy
/// `forward_auth`): `204` with `X-Auth-User-Id`, `X-Auth-Username`, `X-Auth-Role` and `X-Auth-Session-Id`
/// when the bearer access token is valid and its session live (revocation is seen at once), else `401`.
/// Without a bearer token, the browser session's cookie (`__Host-securecrud_refresh`) is accepted for a
/// proxy in front of the same site: its session must be live; it is only read, never rotated.
/// No body and no audit event; cheap enough to call on every request.
#[api_v2_operation(tags(Auth), operation_id = "checkAuth")]
pub async fn check(auth: SignedInOrCookie) -> Result<AuthChecked, SignedInError> {
    Ok(AuthChecked::from(&auth.0))
}

/// Refresh the tokens
///
/// Rotates the refresh token: the old one stops working. Repeating the just-rotated token within the grace
/// window (`REFRESH_GRACE_SECS`, 10 s) returns the same new refresh token (concurrent tabs); presenting it
/// later is a replay and revokes the whole session.
///
/// A browser session sends `{}`: the refresh token is read from its cookie (with `X-Requested-With:
/// securecrud`, from an allowed origin) and the new one replaces the cookie; the body has none.
#[api_v2_operation(tags(Auth), operation_id = "refresh")]
pub async fn refresh(
    services: web::Data<Services>,
    browser: web::Data<BrowserSessions>,
    req: HttpRequest,
    client: Client,
    body: ApiJson<RefreshRequest>,
) -> Result<Tokens, RefreshError> {
    let (token, mode) = refresh_token(&browser, &req, body.0)?;
    let pair = services.refresh(&token, &client.0).await?;
    Ok(Tokens::new(pair, mode))
}

/// The refresh token of a refresh or logout: the body's, else the session cookie's (CSRF-checked).
fn refresh_token(
    browser: &BrowserSessions,
    req: &HttpRequest,
    body: RefreshRequest,
) -> Result<(String, SessionMode), ApiError> {
    if let Some(token) = body.token()? {
        return Ok((token, SessionMode::Token));
    }
    match browser.use_cookie(req)? {
        Some(token) => Ok((token, SessionMode::Cookie)),
        // A browser client whose cookie is gone (expired, cleared): its session is over.
        None if BrowserSessions::announced(req) => {
            Err(ServiceError::InvalidToken(securecrud_service::CredentialKind::Refresh).into())
        }
        None => Err(ValidationErrors::single("refresh_token", "is required").into()),
    }
}

/// Log out
///
/// Ends the session of the given refresh token; its access tokens stop working at once. An unknown token is
/// accepted too (RFC 7009): logging out twice is not an error. A browser session sends `{}` (with
/// `X-Requested-With: securecrud`): the cookie's session ends and the cookie is cleared (`Max-Age=0`).
#[api_v2_operation(tags(Auth), operation_id = "logout")]
pub async fn logout(
    services: web::Data<Services>,
    browser: web::Data<BrowserSessions>,
    req: HttpRequest,
    client: Client,
    body: ApiJson<RefreshRequest>,
) -> Result<LoggedOut, RefreshError> {
    let (token, mode) = refresh_token(&browser, &req, body.0)?;
    services.logout(&token, &client.0).await?;
    Ok(LoggedOut {
        clear_cookie: mode == SessionMode::Cookie,
    })
}

/// Log out everywhere
///
/// Ends every session of the current user, this one included.
#[api_v2_operation(tags(Auth), operation_id = "logoutAll")]
pub async fn logout_all(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
) -> Result<NoContent, SignedInError> {
    services.logout_all(&auth.0, &client.0).await?;
    Ok(NoContent)
}

error_set!(
    /// What the email-token routes can answer besides success.
    EmailTokenError {
        400 => "The body is not valid JSON (`bad_request`), or `invalid_token`: the link's token is unknown, used, superseded or expired",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid; `new_password` breaks the password rules",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

error_set!(
    /// What resending the verification email can answer besides 202.
    ResendError {
        401 => "No, an invalid, an expired or a revoked access token",
        409 => "`conflict`: the email address is already verified",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Verify the email address
///
/// With the `token` of the link sent at registration or after an email change. A token works once, until it
/// expires (`VERIFY_TOKEN_TTL_SECS`), and only while it is the latest one sent and the address is unchanged.
#[api_v2_operation(tags(Auth), operation_id = "verifyEmail")]
pub async fn verify_email(
    services: web::Data<Services>,
    client: Client,
    body: ApiJson<VerifyEmailRequest>,
) -> Result<web::Json<UserResponse>, EmailTokenError> {
    let token = body.0.token()?;
    let user = services.verify_email(&token, &client.0).await?;
    Ok(web::Json(user.into()))
}

/// Send the verification email again
///
/// A new link; the previous one stops working.
#[api_v2_operation(tags(Auth), operation_id = "resendVerification")]
pub async fn resend_verification(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
) -> Result<Accepted, ResendError> {
    services.resend_verification(&auth.0, &client.0).await?;
    Ok(Accepted)
}

/// Ask for a password reset
///
/// Always `202`, whether or not an account has this address, and in the same time: the email (a link that
/// works once, for `RESET_TOKEN_TTL_SECS`) is only sent to an existing, active account.
#[api_v2_operation(tags(Auth), operation_id = "requestPasswordReset")]
pub async fn request_password_reset(
    services: web::Data<Services>,
    client: Client,
    body: ApiJson<PasswordResetRequest>,
) -> Result<Accepted, EmailTokenError> {
    let email = body.0.email()?;
    services.request_password_reset(email, client.0);
    Ok(Accepted)
}

/// Set a new password with a reset link
///
/// Ends every session of the user. The token works once.
#[api_v2_operation(tags(Auth), operation_id = "confirmPasswordReset")]
pub async fn confirm_password_reset(
    services: web::Data<Services>,
    client: Client,
    body: ApiJson<PasswordResetConfirm>,
) -> Result<NoContent, EmailTokenError> {
    let (token, new_password) = body.0.parts()?;
    services
        .confirm_password_reset(&token, &new_password, &client.0)
        .await?;
    Ok(NoContent)
}
