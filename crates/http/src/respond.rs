//! Response wrappers that paperclip can document: `201 Created` with a `Location`, `202 Accepted`.

use actix_web::{HttpRequest, HttpResponse, Responder, body::BoxBody, http::header};
use paperclip::{
    actix::OperationModifier,
    v2::{
        models::{DefaultOperationRaw, DefaultSchemaRaw, Either, Response},
        schema::Apiv2Schema,
    },
};
use serde::Serialize;

/// `201 Created` with a JSON body and a `Location` header.
#[derive(Debug)]
pub struct Created<T> {
    location: String,
    body: T,
}

impl<T> Created<T> {
    pub fn at(location: impl Into<String>, body: T) -> Self {
        Self {
            location: location.into(),
            body,
        }
    }
}

impl<T: Serialize> Responder for Created<T> {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        HttpResponse::Created()
            .insert_header((header::LOCATION, self.location))
            .json(self.body)
    }
}

impl<T: Apiv2Schema> Apiv2Schema for Created<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: Apiv2Schema> OperationModifier for Created<T> {
    fn update_response(op: &mut DefaultOperationRaw) {
        let mut schema = T::schema_with_ref();
        schema.retain_ref();
        op.responses.insert(
            "201".into(),
            Either::Right(Response {
                description: Some("Created; `Location` names the new resource".into()),
                schema: Some(schema),
                ..Default::default()
            }),
        );
    }
}

/// `202 Accepted` without a body: the request was taken and will be acted on (e.g. an email sent).
#[derive(Debug)]
pub struct Accepted;

impl Responder for Accepted {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        HttpResponse::Accepted().finish()
    }
}

impl Apiv2Schema for Accepted {}

impl OperationModifier for Accepted {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.responses.insert(
            "202".into(),
            Either::Right(Response {
                description: Some("Accepted; an email will be sent when it applies".into()),
                ..Default::default()
            }),
        );
    }
}

/// `200 OK` without a body (RFC 7009's answer to a revocation).
#[derive(Debug)]
pub struct EmptyOk;

impl Responder for EmptyOk {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        HttpResponse::Ok().finish()
    }
}

impl Apiv2Schema for EmptyOk {}

impl OperationModifier for EmptyOk {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.responses.insert(
            "200".into(),
            Either::Right(Response {
                description: Some(
                    "Done, or nothing to do: the answer is the same for any token".into(),
                ),
                ..Default::default()
            }),
        );
    }
}

/// `204 No Content` with the `X-Auth-*` headers of a forward-auth check.
#[derive(Debug)]
pub struct AuthChecked {
    user_id: String,
    username: String,
    role: &'static str,
    session_id: String,
}

/// The headers of [`AuthChecked`], with what each holds.
const AUTH_HEADERS: [(&str, &str); 4] = [
    ("X-Auth-User-Id", "The user's id (UUID)"),
    ("X-Auth-Username", "The user's username"),
    (
        "X-Auth-Role",
        "`user` or `admin`, as the database has it now",
    ),
    ("X-Auth-Session-Id", "The session's id (UUID)"),
];

impl From<&securecrud_service::CurrentSession> for AuthChecked {
    fn from(current: &securecrud_service::CurrentSession) -> Self {
        Self {
            user_id: current.user.id.to_string(),
            username: current.user.username.as_str().to_owned(),
            role: current.user.role.as_str(),
            session_id: current.session_id.to_string(),
        }
    }
}

impl Responder for AuthChecked {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        let values = [
            self.user_id,
            self.username,
            self.role.to_owned(),
            self.session_id,
        ];
        let mut response = HttpResponse::NoContent();
        for ((name, _), value) in AUTH_HEADERS.iter().zip(values) {
            response.insert_header((*name, value));
        }
        response.finish()
    }
}

impl Apiv2Schema for AuthChecked {}

impl OperationModifier for AuthChecked {
    fn update_response(op: &mut DefaultOperationRaw) {
        let headers = AUTH_HEADERS
            .iter()
            .map(|(name, description)| {
                (
                    (*name).to_owned(),
                    paperclip::v2::models::Header {
                        description: Some((*description).to_owned()),
                        data_type: Some(paperclip::v2::models::DataType::String),
                        ..Default::default()
                    },
                )
            })
            .collect();
        op.responses.insert(
            "204".into(),
            Either::Right(Response {
                description: Some("The token is valid and its session live".into()),
                headers,
                ..Default::default()
            }),
        );
    }
}

/// `200 OK` with a JSON body that clients and caches may keep for `max_age` seconds.
#[derive(Debug)]
pub struct Cached<T> {
    max_age_secs: u32,
    body: T,
}

impl<T> Cached<T> {
    pub fn for_secs(max_age_secs: u32, body: T) -> Self {
        Self { max_age_secs, body }
    }
}

impl<T: Serialize> Responder for Cached<T> {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        HttpResponse::Ok()
            .insert_header((
                header::CACHE_CONTROL,
                format!("public, max-age={}", self.max_age_secs),
            ))
            .json(self.body)
    }
}

impl<T: Apiv2Schema> Apiv2Schema for Cached<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: Apiv2Schema> OperationModifier for Cached<T> {
    fn update_response(op: &mut DefaultOperationRaw) {
        let mut schema = T::schema_with_ref();
        schema.retain_ref();
        op.responses.insert(
            "200".into(),
            Either::Right(Response {
                description: Some("OK; `Cache-Control: public, max-age=…`".into()),
                schema: Some(schema),
                ..Default::default()
            }),
        );
    }
}
