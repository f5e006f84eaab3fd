//! The OpenAPI document and the offline Swagger UI.
//!
//! paperclip builds the document from the documented routes (OpenAPI 2 internally, converted to 3.0). It
//! cannot express two things the contract needs, so [`finish_document`] adds them to the generated JSON:
//! an HTTP bearer scheme beside the OAuth2 password flow (OpenAPI 2 has none), and the
//! `application/problem+json` media type of error responses. Swagger UI (vendored `swagger-ui-dist`, see
//! `assets/swagger-ui/README.md`) is served from the binary: paperclip's own bundled UI panics on unknown
//! file names and needs an inline script, which the `/docs` Content-Security-Policy forbids.

use actix_web::{
    HttpResponse,
    http::header::{self, HeaderValue},
    web,
};
use serde_json::{Value, json};

use crate::error::ApiError;

/// The finished OpenAPI document, serialised once per worker at start-up.
#[derive(Debug, Clone)]
pub struct OpenApiDocument(pub web::Bytes);

/// The CSP of the docs pages: scripts, styles and images from this origin only (Swagger UI sets inline
/// `style` attributes, and uses `data:` images for its icons).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// (file name, content type, bytes) of every file under `/docs/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/swagger-ui/index.html"),
    ),
    (
        "swagger-initializer.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/swagger-ui/swagger-initializer.js"),
    ),
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "favicon-32x32.png",
        "image/png",
        include_bytes!("../assets/swagger-ui/favicon-32x32.png"),
    ),
];

/// Request fields the contract requires. The DTOs declare them `Option` so that validation can report every
/// missing field at once, which makes paperclip call them optional; the document states the contract.
const REQUIRED_FIELDS: &[(&str, &[&str])] = &[
    ("RegisterRequest", &["username", "email", "password"]),
    ("LoginRequest", &["login", "password"]),
    ("RefreshRequest", &["refresh_token"]),
    (
        "ChangePasswordRequest",
        &["current_password", "new_password"],
    ),
    ("DeleteMeRequest", &["password"]),
    ("VerifyEmailRequest", &["token"]),
    ("PasswordResetRequest", &["email"]),
    ("PasswordResetConfirm", &["token", "new_password"]),
    ("CreateTaskRequest", &["title"]),
    ("CompleteTaskRequest", &["completed"]),
];
/// Fields that may be `null` (OpenAPI 2, paperclip's model, cannot say so).
const NULLABLE_FIELDS: &[(&str, &str)] = &[
    ("TaskResponse", "description"),
    ("CreateTaskRequest", "description"),
    ("UpdateTaskRequest", "description"),
    ("SessionResponse", "ip"),
    ("SessionResponse", "user_agent"),
    ("AuditEventResponse", "actor_id"),
    ("AuditEventResponse", "subject_id"),
    ("AuditEventResponse", "ip"),
    ("AuditEventResponse", "user_agent"),
    ("AuditEventResponse", "request_id"),
    ("AuditPageResponse", "next_cursor"),
];
/// The token route's form is inlined by the v2→v3 conversion, so its required fields are set on the route.
const TOKEN_FORM_SCHEMA: &str = "/paths/~1api~1v1~1auth~1token/post/requestBody/content/application~1x-www-form-urlencoded/schema";

/// Adds what paperclip cannot express to its generated OpenAPI 3 document.
pub fn finish_document(mut doc: Value) -> Value {
    doc["info"] = json!({
        "title": "SecureCRUD API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Accounts, sessions and per-user tasks. Errors are RFC 9457 `application/problem+json`. \
            Authorize with the OAuth2 password form (username or email and password) or paste an access token \
            as `bearerAuth`.",
    });
    doc["components"]["securitySchemes"]["bearerAuth"] = json!({
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An `access_token` from login, sent as `Authorization: Bearer <token>`."
    });
    for (name, fields) in REQUIRED_FIELDS {
        if let Some(schema) = doc
            .pointer_mut(&format!("/components/schemas/{name}"))
            .and_then(Value::as_object_mut)
        {
            schema.insert("required".to_owned(), json!(fields));
        }
    }
    for (name, field) in NULLABLE_FIELDS {
        if let Some(property) = doc
            .pointer_mut(&format!("/components/schemas/{name}/properties/{field}"))
            .and_then(Value::as_object_mut)
        {
            property.insert("nullable".to_owned(), Value::Bool(true));
        }
    }
    if let Some(form) = doc
        .pointer_mut(TOKEN_FORM_SCHEMA)
        .and_then(Value::as_object_mut)
    {
        form.insert(
            "required".to_owned(),
            json!(["grant_type", "username", "password"]),
        );
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            finish_operation(operation);
        }
    }
    doc
}

fn finish_operation(operation: &mut Value) {
    if let Some(security) = operation.get_mut("security").and_then(Value::as_array_mut)
        && !security.is_empty()
    {
        security.push(json!({ "bearerAuth": [] }));
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        if !status.starts_with(['4', '5']) {
            continue;
        }
        if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut)
            && let Some(media) = content.remove("application/json")
        {
            content.insert("application/problem+json".to_owned(), media);
        }
    }
}

/// `GET /openapi.json`.
pub async fn openapi_json(doc: web::Data<OpenApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(doc.0.clone())
}

/// `GET /docs`: to `/docs/`, so that the page's relative asset paths resolve.
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// `GET /docs/{file}`: a Swagger UI file, `index.html` for the folder itself; 404 problem for anything else.
pub async fn docs_asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = match file.as_str() {
        "" => "index.html",
        other => other,
    };
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(asset, _, _)| *asset == name)
        .ok_or(ApiError::NotFound)?;
    let cache = if name == "index.html" || name == "swagger-initializer.js" {
        "no-cache"
    } else {
        "public, max-age=86400"
    };
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        ))
        .body(*bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_operations_also_accept_a_pasted_bearer_token() {
        let doc = finish_document(json!({
            "paths": {"/me": {"get": {
                "security": [{"OAuth2PasswordBearer": []}],
                "responses": {"200": {"content": {"application/json": {}}}, "401": {"content": {"application/json": {}}}}
            }}}
        }));
        let op = &doc["paths"]["/me"]["get"];
        assert_eq!(op["security"][1], json!({"bearerAuth": []}));
        assert!(op["responses"]["401"]["content"]["application/problem+json"].is_object());
        assert!(op["responses"]["200"]["content"]["application/json"].is_object());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );
    }
}
