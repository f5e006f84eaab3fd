//! Extractors: JSON bodies that report every bad field, the bearer-token guard, and the error handlers that
//! make actix's own extractor failures problem+json.

use std::{
    any::TypeId,
    collections::{BTreeSet, HashMap},
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock, PoisonError, RwLock},
};

use actix_web::{
    FromRequest, HttpRequest,
    dev::{Payload, UrlEncoded},
    error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError},
    http::header,
    web,
};
use paperclip::{
    actix::OperationModifier,
    v2::{
        models::{DefaultOperationRaw, DefaultSchemaRaw, Either, Parameter, ParameterIn},
        schema::Apiv2Schema,
    },
};
use securecrud_domain::ValidationErrors;
use securecrud_service::ClientInfo;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{
    client_ip::client_ip,
    error::{ApiError, OAuthError},
    request::current_request_id,
    schema::RequestBody,
};

mod auth;
mod unique_keys;

pub use auth::{AdminUser, SignedIn, SignedInOrCookie};
use unique_keys::{UniqueKeys, duplicate_key};

/// The largest request body accepted (JSON or form).
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// A JSON request body of type `T`.
///
/// Failures: wrong or missing `Content-Type` → 415; over 64 KiB → 413; not JSON → 400; not an object, unknown
/// fields or fields of the wrong type → 422 listing every such field (not only the first).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: RequestBody + DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<UniqueKeys>::from_request(req, payload);
        Box::pin(async move {
            let UniqueKeys(value) = json.await?.into_inner();
            Ok(Self(from_body(value)?))
        })
    }
}

/// Deserialises a request body into `T`. Fields `T` does not know are set aside first, in one pass (each
/// refused with 422, or ignored where `T` ignores them), so that the per-field retries below only ever see
/// `T`'s own few fields: the cost is linear in the body's size, however many unknown keys it holds.
fn from_body<T: RequestBody + DeserializeOwned + 'static>(value: Value) -> Result<T, ApiError> {
    let Value::Object(map) = value else {
        return Err(ValidationErrors::single("body", "must be a JSON object").into());
    };
    let known = known_fields::<T>();
    let mut errors = ValidationErrors::default();
    let map: Map<String, Value> = map
        .into_iter()
        .filter(|(key, _)| {
            let is_known = known.contains(key);
            if !is_known && T::REFUSES_UNKNOWN_FIELDS {
                errors.push(key.clone(), "is not a known field");
            }
            is_known
        })
        .collect();
    deserialize_fields(map, errors)
}

/// The field names of `T`'s schema (what a body or query string may hold), built once per type: the schema
/// is assembled from every field's rules, too much work to repeat on each request.
fn known_fields<T: Apiv2Schema + 'static>() -> Arc<BTreeSet<String>> {
    static KNOWN: OnceLock<RwLock<HashMap<TypeId, Arc<BTreeSet<String>>>>> = OnceLock::new();
    let cache = KNOWN.get_or_init(RwLock::default);
    let id = TypeId::of::<T>();
    if let Some(known) = cache
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
    {
        return Arc::clone(known);
    }
    let known: Arc<BTreeSet<String>> = Arc::new(T::raw_schema().properties.into_keys().collect());
    cache
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, Arc::clone(&known));
    known
}

/// Deserialises `value` into `T`, collecting one error per offending top-level field.
fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let Value::Object(map) = value else {
        return Err(ValidationErrors::single("body", "must be a JSON object").into());
    };
    deserialize_fields(map, ValidationErrors::default())
}

/// Each failing field is recorded and removed, and deserialisation retried, until it succeeds or no field
/// is left to blame (at most one retry per field).
fn deserialize_fields<T: DeserializeOwned>(
    mut map: Map<String, Value>,
    mut errors: ValidationErrors,
) -> Result<T, ApiError> {
    loop {
        match serde_path_to_error::deserialize::<_, T>(Value::Object(map.clone())) {
            Ok(parsed) if errors.is_empty() => return Ok(parsed),
            Ok(_) => return Err(errors.into()),
            Err(err) => {
                let field = blamed_field(&err, &map);
                errors.push(
                    field.clone().unwrap_or_else(|| "body".to_owned()),
                    describe(err.inner()),
                );
                match field {
                    Some(field) if map.remove(&field).is_some() => {}
                    _ => return Err(errors.into()),
                }
            }
        }
    }
}

/// The top-level key an error is about: the first path segment, or for `unknown field` the named key.
fn blamed_field(
    err: &serde_path_to_error::Error<serde_json::Error>,
    map: &Map<String, Value>,
) -> Option<String> {
    let message = err.inner().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        return Some(name.to_owned());
    }
    let path = err.path().to_string();
    let first = path.split(['.', '[']).next().unwrap_or_default();
    map.contains_key(first).then(|| first.to_owned())
}

/// A client-facing message for a serde error, without serde's position suffix.
fn describe(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if message.starts_with("unknown field") {
        return "is not a known field".to_owned();
    }
    let message = message.split(" at line ").next().unwrap_or(&message);
    match message.split_once(", expected ") {
        Some((_, expected)) => format!("must be {expected}"),
        None => message.to_owned(),
    }
}

impl<T: RequestBody> Apiv2Schema for ApiJson<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::body_schema()
    }
}

impl<T: RequestBody> OperationModifier for ApiJson<T> {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        body_parameter::<Self>(op);
    }
}

/// A required body of schema `B` (a reference to its definition).
fn body_parameter<B: Apiv2Schema>(op: &mut DefaultOperationRaw) {
    op.parameters.push(Either::Right(Parameter {
        in_: ParameterIn::Body,
        name: "body".into(),
        required: true,
        schema: Some({
            let mut def = B::schema_with_ref();
            def.retain_ref();
            def
        }),
        ..Parameter::default()
    }));
}

/// A form body (`application/x-www-form-urlencoded`) of type `T`.
///
/// Failures: wrong content type → 415; over 64 KiB → 413; undecodable → 400; a parameter given twice or
/// a field breaking its type (a NUL character included) → 422 listing each. Parameters `T` does not know are
/// ignored, as RFC 6749 requires of the token endpoint. For an OAuth form ([`RequestBody::OAUTH`]) every
/// such failure is answered as RFC 6749 §5.2 says instead ([`crate::error::OAuthError`]).
#[derive(Debug)]
pub struct ApiForm<T>(pub T);

impl<T: RequestBody + DeserializeOwned + 'static> FromRequest for ApiForm<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = UrlEncoded::<Vec<(String, String)>>::new(req, payload).limit(BODY_LIMIT_BYTES);
        Box::pin(async move {
            let parsed = match form.await {
                Ok(mut pairs) => {
                    if !T::REFUSES_UNKNOWN_FIELDS {
                        // Ignored parameters are not checked at all: only `T`'s own may not repeat.
                        let known = known_fields::<T>();
                        pairs.retain(|(name, _)| known.contains(name));
                    }
                    distinct_pairs(pairs, |_| true)
                        .and_then(|values| from_body::<T>(Value::Object(values)))
                }
                Err(err) => Err(form_error(err)),
            };
            parsed.map(Self).map_err(|err| {
                if T::OAUTH {
                    OAuthError(err).into()
                } else {
                    err.into()
                }
            })
        })
    }
}

impl<T: RequestBody> Apiv2Schema for ApiForm<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::body_schema()
    }
}

/// Documented as a body parameter; [`crate::schema::move_form_bodies`] files it under the form media type.
impl<T: RequestBody> OperationModifier for ApiForm<T> {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        body_parameter::<Self>(op);
    }
}

/// A form body that could not be read, as a problem.
fn form_error(err: UrlencodedError) -> ApiError {
    match err {
        UrlencodedError::Overflow { .. } => ApiError::PayloadTooLarge,
        UrlencodedError::ContentType => {
            ApiError::UnsupportedMediaType("application/x-www-form-urlencoded")
        }
        UrlencodedError::Parse(_) => {
            ApiError::BadRequest("the form could not be parsed".to_owned())
        }
        _ => ApiError::BadRequest("the request body could not be read".to_owned()),
    }
}

/// The pairs of a query string or form as a JSON object of strings. A name given twice is refused (422),
/// and so is one that `known` does not accept.
fn distinct_pairs(
    pairs: Vec<(String, String)>,
    known: impl Fn(&str) -> bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut errors = ValidationErrors::default();
    let mut values = Map::new();
    for (name, value) in pairs {
        if !known(&name) {
            errors.push(name, "is not a known parameter");
        } else if values.contains_key(&name) {
            errors.push(name, "is given more than once");
        } else {
            values.insert(name, Value::String(value));
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors.into())
    }
}

/// Query parameters of type `T` (a struct of `Option<String>` fields, whose names are the parameters).
///
/// Failures: a query string that cannot be decoded → 400; an unknown parameter or one given twice → 422
/// naming each. Values are parsed (and refused with 422 naming the parameter) by the caller's conversion.
#[derive(Debug)]
pub struct StrictQuery<T>(pub T);

impl<T: DeserializeOwned + Apiv2Schema + 'static> FromRequest for StrictQuery<T> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            parse_query::<T>(req.query_string())
                .map(Self)
                .map_err(Into::into),
        )
    }
}

fn parse_query<T: DeserializeOwned + Apiv2Schema + 'static>(query: &str) -> Result<T, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::BadRequest("the query string could not be decoded".to_owned()))?;
    let known = known_fields::<T>();
    let values = distinct_pairs(pairs, |name| known.contains(name))?;
    from_value(Value::Object(values))
}

impl<T: Apiv2Schema> Apiv2Schema for StrictQuery<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: Apiv2Schema + DeserializeOwned> OperationModifier for StrictQuery<T> {
    fn update_parameter(op: &mut DefaultOperationRaw) {
        crate::schema::query_parameters::<T>(op);
    }

    fn update_definitions(_: &mut std::collections::BTreeMap<String, DefaultSchemaRaw>) {}
}

/// JSON extraction errors as problems.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(BODY_LIMIT_BYTES)
        .error_handler(|err, _| {
            match err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge,
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType("application/json"),
                // The body is read as a JSON value ([`UniqueKeys`]): only syntax errors and a key given
                // twice reach here.
                JsonPayloadError::Deserialize(err) => match duplicate_key(&err) {
                    Some(key) => ValidationErrors::single(key, "is given more than once").into(),
                    None => ApiError::BadRequest(format!("the body is not valid JSON: {err}")),
                },
                _ => ApiError::BadRequest("the request body could not be read".to_owned()),
            }
            .into()
        })
}

/// Form extraction errors as problems.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(BODY_LIMIT_BYTES)
        .error_handler(|err, _| form_error(err).into())
}

/// Query-string errors as 400 problems.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _| {
        ApiError::BadRequest(format!("bad query string: {err}")).into()
    })
}

/// Path-parameter errors (e.g. a non-numeric id) as 404 problems: no such resource.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_: PathError, _| ApiError::NotFound.into())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "the fields are only deserialised into")]
    struct Sample {
        name: Option<String>,
        age: Option<u32>,
    }

    fn fields(result: Result<Sample, ApiError>) -> Vec<(String, String)> {
        match result {
            Err(ApiError::Validation(errors)) => errors
                .errors()
                .iter()
                .map(|e| (e.field.clone(), e.message.clone()))
                .collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_unknown_and_mistyped_field_is_reported() {
        let found = fields(from_value(
            json!({"name": 5, "age": "x", "nmae": "a", "extra": 1}),
        ));
        let names: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names.len(), 4, "{found:?}");
        for expected in ["name", "age", "nmae", "extra"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {found:?}"
            );
        }
        assert!(
            found
                .iter()
                .any(|(f, m)| f == "nmae" && m == "is not a known field")
        );
        assert!(
            found
                .iter()
                .any(|(f, m)| f == "name" && m == "must be a string")
        );
    }

    #[test]
    fn a_non_object_body_is_refused() {
        assert_eq!(
            fields(from_value(json!([1, 2]))),
            [("body".to_owned(), "must be a JSON object".to_owned())]
        );
    }

    #[test]
    fn a_valid_body_parses() {
        let sample: Sample = from_value(json!({"name": "ada"})).unwrap();
        assert_eq!(sample.name.as_deref(), Some("ada"));
    }
}

/// The caller: address (through `TRUSTED_PROXIES`), user agent and request id, recorded on sessions and audit
/// events.
#[derive(Debug)]
pub struct Client(pub ClientInfo);

impl Client {
    pub(crate) fn of(req: &HttpRequest) -> ClientInfo {
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|ua| ua.to_str().ok());
        ClientInfo::new(client_ip(req), user_agent, current_request_id())
    }
}

impl FromRequest for Client {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self(Self::of(req))))
    }
}

impl Apiv2Schema for Client {}
impl OperationModifier for Client {}
