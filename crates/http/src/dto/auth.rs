//! Registration, login, the OAuth 2.0 token and revocation forms, refresh, and the token pair.

use super::*;

/// A registration.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterRequest {
    /// 3–32 characters of `[A-Za-z0-9_.-]`; unique case-insensitively.
    pub username: Required<Text<Username>>,
    /// A valid address of at most 254 characters; stored lower-cased; unique.
    pub email: Required<Text<Email>>,
    /// At least 8 characters and at most 72 bytes of UTF-8; not the username or email; not a common
    /// password.
    pub password: Required<Text<NewPassword>>,
}

impl RequestBody for RegisterRequest {}

impl TryFrom<RegisterRequest> for NewUser {
    type Error = ValidationErrors;

    fn try_from(body: RegisterRequest) -> Result<Self, Self::Error> {
        NewUser::parse(
            body.username.as_deref(),
            body.email.as_deref(),
            body.password.as_deref(),
        )
    }
}

/// A login by username or email.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct LoginRequest {
    /// A username or an email address (case-insensitive; surrounding spaces are ignored).
    pub login: Required<Text<LoginId>>,
    pub password: Required<Text<CurrentPassword>>,
    /// `token` (default): the refresh token in the body. `cookie`, for a browser app on the api's site: the
    /// refresh token only in the `HttpOnly` cookie `__Host-securecrud_refresh`, never in the body.
    pub session: Optional<Text<SessionModeRule>>,
}

impl RequestBody for LoginRequest {}

impl LoginRequest {
    /// The login and how its session is handed over.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(self) -> Result<(LoginInput, SessionMode), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let input = login_fields(&mut errors, &self.login, &self.password, "login");
        let mode = session_mode(&mut errors, &self.session);
        errors.finish(|| Some((input?, mode?)))
    }
}

/// `session`: `token` (the default) or `cookie`.
pub(super) fn session_mode(
    errors: &mut ValidationErrors,
    session: &Optional<Text<SessionModeRule>>,
) -> Option<SessionMode> {
    match session.as_deref() {
        None | Some("token") => Some(SessionMode::Token),
        Some("cookie") => Some(SessionMode::Cookie),
        Some(_) => {
            errors.push("session", "must be `token` or `cookie`");
            None
        }
    }
}

/// A request to the OAuth 2.0 token endpoint (RFC 6749): the password grant (§4.3, as Swagger UI's
/// "Authorize" sends it) or the refresh-token grant (§6). Other parameters (`scope`, `client_id`,
/// `client_secret`) are ignored, as the RFC requires of unknown ones.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct TokenForm {
    /// `password` or `refresh_token`.
    pub grant_type: Required<Text<GrantType>>,
    /// `password` grant: a username or an email address.
    pub username: Optional<Text<LoginId>>,
    /// `password` grant.
    pub password: Optional<Text<CurrentPassword>>,
    /// `refresh_token` grant: the refresh token of the latest token pair; rotated as by `/auth/refresh`.
    pub refresh_token: Optional<Text<OpaqueToken>>,
}

impl RequestBody for TokenForm {
    const MEDIA_TYPE: &'static str = "application/x-www-form-urlencoded";
    const REFUSES_UNKNOWN_FIELDS: bool = false;
    const OAUTH: bool = true;

    fn body_rules() -> serde_json::Value {
        serde_json::json!({
            "oneOf": [
                { "properties": { "grant_type": { "enum": ["password"] } },
                  "required": ["username", "password"] },
                { "properties": { "grant_type": { "enum": ["refresh_token"] } },
                  "required": ["refresh_token"] }
            ]
        })
    }
}

/// What a token request asks for. Its `Debug` never shows the refresh token.
pub enum TokenGrant {
    Password(LoginInput),
    RefreshToken(String),
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(input) => f.debug_tuple("Password").field(input).finish(),
            Self::RefreshToken(_) => f.write_str("RefreshToken([REDACTED])"),
        }
    }
}

impl TokenForm {
    /// The grant, with its parameters.
    ///
    /// # Errors
    /// `400 unsupported_grant_type` for another `grant_type`; `400 invalid_request` listing every missing
    /// or empty parameter.
    pub fn grant(self) -> Result<TokenGrant, OAuthError> {
        let mut errors = ValidationErrors::default();
        match self.grant_type.as_deref() {
            Some("password") => {
                let input = login_fields(
                    &mut errors,
                    &Required(self.username.0),
                    &Required(self.password.0),
                    "username",
                );
                errors
                    .finish(|| input)
                    .map(TokenGrant::Password)
                    .map_err(ApiError::from)
            }
            Some("refresh_token") => {
                let token =
                    errors.required("refresh_token", self.refresh_token.as_deref(), non_empty);
                errors
                    .finish(|| token)
                    .map(TokenGrant::RefreshToken)
                    .map_err(ApiError::from)
            }
            Some(_) => Err(ApiError::UnsupportedGrantType),
            None => Err(ValidationErrors::single("grant_type", "is required").into()),
        }
        .map_err(OAuthError)
    }
}

/// A token revocation (RFC 7009).
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct RevokeForm {
    /// A refresh token or an access token. Unknown, expired and already revoked tokens are accepted too.
    pub token: Required<Text<OpaqueToken>>,
    /// A hint only (RFC 7009 §2.1), e.g. `refresh_token` or `access_token`: both kinds are recognised
    /// whatever it says, and an unknown hint is ignored.
    pub token_type_hint: Optional<Text<TokenTypeHint>>,
}

impl RequestBody for RevokeForm {
    const MEDIA_TYPE: &'static str = "application/x-www-form-urlencoded";
    const REFUSES_UNKNOWN_FIELDS: bool = false;
    const OAUTH: bool = true;
}

impl RevokeForm {
    /// The token to revoke.
    ///
    /// # Errors
    /// `400 invalid_request` when it is missing or empty.
    pub fn token(self) -> Result<String, OAuthError> {
        let mut errors = ValidationErrors::default();
        let token = errors.required("token", self.token.as_deref(), non_empty);
        errors.finish(|| token).map_err(OAuthError::from)
    }
}

/// The login identifier (trimmed, 1–254 characters) and password (non-empty) of a login request.
pub(super) fn login_fields(
    errors: &mut ValidationErrors,
    login: &Required<Text<LoginId>>,
    password: &Required<Text<CurrentPassword>>,
    login_field: &str,
) -> Option<LoginInput> {
    let login = errors.required(login_field, login.as_deref(), |raw| match raw.trim() {
        "" => Err(Invalid::new("must not be empty")),
        trimmed if trimmed.chars().count() > MAX_LOGIN_CHARS => Err(Invalid::new(format!(
            "must be at most {MAX_LOGIN_CHARS} characters"
        ))),
        trimmed => Ok(trimmed.to_owned()),
    });
    let password = errors.required("password", password.as_deref(), |raw| {
        non_empty(raw).map(|raw| LoginPassword::new(&raw))
    });
    Some(LoginInput {
        login: login?,
        password: password?,
    })
}

/// A refresh token, to rotate or to end its session.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshRequest {
    /// The `refresh_token` of the latest token pair. Left out (`{}`) by a browser session, whose token is
    /// in its cookie.
    pub refresh_token: Optional<Text<OpaqueToken>>,
}

impl RequestBody for RefreshRequest {}

impl RefreshRequest {
    /// The token, when given: non-empty.
    ///
    /// # Errors
    /// When it is empty.
    pub fn token(self) -> Result<Option<String>, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let token = match self.refresh_token.as_deref() {
            None => return Ok(None),
            Some(raw) => errors.check("refresh_token", non_empty(raw)),
        };
        errors.finish(|| token.map(Some))
    }
}

/// An access token and a refresh token.
#[derive(Serialize, Apiv2Schema)]
pub struct TokenPairResponse {
    /// A JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// An opaque token for `POST /api/v1/auth/refresh`. Absent for a browser session (`session: "cookie"`),
    /// whose refresh token is only in its `HttpOnly` cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
}

impl std::fmt::Debug for TokenPairResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPairResponse")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

impl From<TokenPair> for TokenPairResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
            refresh_token: Some(pair.refresh_token),
            refresh_expires_in: pair.refresh_expires_in,
        }
    }
}

/// Query parameters of `GET /api/v1/auth/revocations`.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct RevocationFeedParams {
    /// Resume after this cursor (the `id` of the last event seen), as the `Last-Event-ID` header does; the
    /// header wins when both are given (a reconnecting `EventSource` sends it on the first URL).
    pub since: Optional<Text<FeedCursor>>,
}

impl RevocationFeedParams {
    /// Where the stream starts: after the cursor of `Last-Event-ID` (`last_event_id`) or of `since`, or
    /// `None` (every ending whose tokens could still verify).
    ///
    /// # Errors
    /// A cursor that is not a non-negative integer, naming where it came from.
    pub fn start(&self, last_event_id: Option<&[u8]>) -> Result<Option<i64>, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let start = match last_event_id {
            Some(raw) => errors.check("Last-Event-ID", feed_cursor(raw)),
            None => self
                .since
                .as_deref()
                .and_then(|raw| errors.check("since", feed_cursor(raw.as_bytes()))),
        };
        errors.finish(|| Some(start))
    }
}

/// A feed cursor: decimal digits only, at most `i64::MAX`.
fn feed_cursor(raw: &[u8]) -> Result<i64, Invalid> {
    std::str::from_utf8(raw)
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<i64>().ok())
        .ok_or_else(|| Invalid::new("must be the id of an event this feed sent (digits)"))
}
