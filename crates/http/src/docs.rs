//! The OpenAPI document and the offline Swagger UI.
//!
//! paperclip builds the document from the documented routes (OpenAPI 2 internally, converted to 3.0). What
//! it cannot express, [`finish_document`] adds to the generated JSON in one step: the rules that field types
//! carry (lengths, patterns, formats, bounds, `nullable`, `additionalProperties: false`; see
//! [`crate::schema`]), an HTTP bearer scheme beside the OAuth2 password flow (OpenAPI 2 has none), and the
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
    crate::schema::apply_rules(&mut doc);
    crate::schema::move_form_bodies(&mut doc);
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
