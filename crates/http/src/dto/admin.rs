//! Admin wire types.

use paperclip::actix::Apiv2Schema;
use securecrud_domain::{
    AccountChange, Page, Role, SearchText, User, UserFilter, ValidationErrors,
};
use serde::{Deserialize, Serialize};

use super::UserResponse;
use crate::schema::{Limit, Offset, Optional, RequestBody, Text};

/// One page of users.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct UserPageResponse {
    pub items: Vec<UserResponse>,
    /// How many users match in all.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

impl From<Page<User>> for UserPageResponse {
    fn from(page: Page<User>) -> Self {
        Self {
            items: page.items.into_iter().map(Into::into).collect(),
            total: page.total,
            limit: page.limit,
            offset: page.offset,
        }
    }
}

/// Query parameters of `GET /api/v1/admin/users`.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct UserListParams {
    /// A case-insensitive substring of the username or email.
    pub q: Optional<Text<SearchText>>,
    /// `user` or `admin`.
    pub role: Optional<Text<Role>>,
    /// 1–100, default 20.
    pub limit: Optional<Text<Limit>>,
    /// ≥ 0, default 0.
    pub offset: Optional<Text<Offset>>,
}

impl TryFrom<UserListParams> for UserFilter {
    type Error = ValidationErrors;

    fn try_from(params: UserListParams) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let filter = UserFilter {
            q: params
                .q
                .as_deref()
                .and_then(|raw| errors.check("q", SearchText::parse(raw))),
            role: params
                .role
                .as_deref()
                .and_then(|raw| errors.check("role", raw.parse::<Role>())),
            paging: super::paging(&mut errors, &params.limit, &params.offset),
        };
        errors.finish(|| Some(filter))
    }
}

/// An admin's change to a user; fields left out keep their value.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminUserUpdate {
    /// `user` or `admin`.
    pub role: Optional<Text<Role>>,
    /// `false` deactivates the user and ends all their sessions at once.
    pub is_active: Optional<bool>,
}

impl RequestBody for AdminUserUpdate {}

impl TryFrom<AdminUserUpdate> for AccountChange {
    type Error = ValidationErrors;

    fn try_from(body: AdminUserUpdate) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let role = body
            .role
            .as_deref()
            .and_then(|raw| errors.check("role", raw.parse::<Role>()));
        errors.finish(|| {
            Some(AccountChange {
                role,
                is_active: body.is_active.into_option(),
            })
        })
    }
}
