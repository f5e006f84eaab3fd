//! The OpenAPI document's side of the rules: request bodies' schemas ([`RequestBody`]), form bodies filed
//! under their media type, the carried rules moved into place, and query parameters built from them.

use paperclip::v2::{
    models::{
        DataType, DataTypeFormat, DefaultOperationRaw, DefaultSchemaRaw, Either, Parameter,
        ParameterIn,
    },
    schema::Apiv2Schema,
};
use serde_json::{Map, Value, json};

use super::{RULES_KEY, add_rules, data_type};

/// The key, in a request body's carried rules, of a media type other than JSON; [`move_form_bodies`]
/// files such a body under it.
const MEDIA_TYPE_KEY: &str = "x-securecrud-media-type";

/// The schema of a request body `T`: its fields' rules, unknown fields refused (the body extractors
/// enforce that) unless it is an OAuth form, and any rule across fields that `T` declares.
pub trait RequestBody: Apiv2Schema {
    /// The body's media type.
    const MEDIA_TYPE: &'static str = "application/json";
    /// Whether unknown fields are refused (`422`); RFC 6749 forms ignore them instead.
    const REFUSES_UNKNOWN_FIELDS: bool = true;
    /// Whether this is a form of the OAuth 2.0 token or revocation endpoint, whose failures carry RFC 6749
    /// §5.2's `error` member (see [`crate::error::OAuthError`]).
    const OAUTH: bool = false;

    /// JSON Schema keywords that involve several fields (e.g. "`email` needs `current_password`").
    fn body_rules() -> Value {
        json!({})
    }

    fn body_schema() -> DefaultSchemaRaw {
        let mut schema = Self::raw_schema();
        if Self::REFUSES_UNKNOWN_FIELDS {
            schema.extra_props = Some(Either::Left(false));
        }
        add_rules(&mut schema, Self::body_rules());
        if Self::MEDIA_TYPE != "application/json" {
            add_rules(&mut schema, json!({ MEDIA_TYPE_KEY: Self::MEDIA_TYPE }));
        }
        schema
    }
}

/// paperclip's OpenAPI 3 conversion files every body parameter under `application/json` (and keeps only the
/// first `required` of form parameters), so a form body is documented as a body parameter and moved here to
/// the media type its schema declares.
pub fn move_form_bodies(doc: &mut Value) {
    let mut media_types = Map::new();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if let Some(media) = schema
                .as_object_mut()
                .and_then(|s| s.remove(MEDIA_TYPE_KEY))
            {
                media_types.insert(format!("#/components/schemas/{name}"), media);
            }
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(content) = operation
            .pointer_mut("/requestBody/content")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let media = content
            .get("application/json")
            .and_then(|json| json.pointer("/schema/$ref"))
            .and_then(Value::as_str)
            .and_then(|reference| media_types.get(reference))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(media) = media
            && let Some(body) = content.remove("application/json")
        {
            content.clear();
            content.insert(media, body);
        }
    }
}

/// Moves every schema's carried rules (see [`RULES_KEY`]) into the schema itself, anywhere in `doc`.
pub fn apply_rules(doc: &mut Value) {
    match doc {
        Value::Object(map) => {
            if let Some(rules) = take_rules(map) {
                map.extend(rules);
            }
            map.values_mut().for_each(apply_rules);
        }
        Value::Array(items) => items.iter_mut().for_each(apply_rules),
        _ => {}
    }
}

fn take_rules(map: &mut Map<String, Value>) -> Option<Map<String, Value>> {
    let carried = map
        .get("example")
        .and_then(Value::as_object)
        .is_some_and(|example| example.contains_key(RULES_KEY));
    if !carried {
        return None;
    }
    match map.remove("example") {
        Some(Value::Object(mut example)) => match example.remove(RULES_KEY) {
            Some(Value::Object(rules)) => Some(rules),
            _ => None,
        },
        _ => None,
    }
}

/// The query parameters of `T` (a struct of [`Optional`]/[`Required`] [`Text`] fields), each with the
/// type and constraints of its rule.
pub fn query_parameters<T: Apiv2Schema>(op: &mut DefaultOperationRaw) {
    parameters::<T>(op, ParameterIn::Query);
}

fn parameters<T: Apiv2Schema>(op: &mut DefaultOperationRaw, in_: ParameterIn) {
    let schema = T::raw_schema();
    for (name, property) in schema.properties {
        let rules = property
            .example
            .as_ref()
            .and_then(|example| example.get(RULES_KEY))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "string" }));
        op.parameters.push(Either::Right(parameter(
            in_,
            &name,
            schema.required.contains(&name),
            property.description.clone(),
            &rules,
        )));
    }
}

fn parameter(
    in_: ParameterIn,
    name: &str,
    required: bool,
    description: Option<String>,
    rules: &Value,
) -> Parameter<DefaultSchemaRaw> {
    let number = |key: &str| rules.get(key).and_then(Value::as_f64).map(|n| n as f32);
    let length = |key: &str| {
        rules
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let data_type = data_type(rules);
    let format = match rules.get("format").and_then(Value::as_str) {
        Some("int64") => Some(DataTypeFormat::Int64),
        Some("uuid") => Some(DataTypeFormat::Uuid),
        Some("date-time") => Some(DataTypeFormat::DateTime),
        _ => None,
    };
    let enum_ = rules
        .get("enum")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pattern = match (data_type, &format, enum_.is_empty()) {
        (DataType::String, None, true) => rules
            .get("pattern")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    Parameter {
        description,
        in_,
        name: name.to_owned(),
        required,
        data_type: Some(data_type),
        format,
        enum_,
        minimum: number("minimum"),
        maximum: number("maximum"),
        min_length: length("minLength"),
        max_length: length("maxLength"),
        pattern,
        ..Parameter::default()
    }
}
