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
