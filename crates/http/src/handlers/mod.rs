//! Handlers: extract → call one use case → respond. Nothing else happens here.
//!
//! Each resource module registers its own routes (`routes`), with [`resource!`]: one line per path, its
//! methods and handlers, and whether the per-IP auth limit guards it. A request with another method gets
//! `405` with an `Allow` listing exactly the methods registered there.

pub mod admin;
pub mod auth;
pub mod health;
pub mod oidc;
pub mod passkeys;
pub mod tasks;
pub mod users;
pub mod wellknown;

use actix_web::HttpResponse;

use crate::error::ApiError;

/// Registers `$path` on `$cfg`: `METHOD => handler` for each route, a `405` with `Allow` (the methods
/// given) for any other method, and with `limited` the per-IP auth limit (see
/// [`crate::middleware::auth_rate_limit`]).
macro_rules! resource {
    ($cfg:expr, $path:literal, [$($method:ident => $handler:path),+ $(,)?]) => {
        $cfg.service(resource!(@build $path, [$($method => $handler),+]))
    };
    ($cfg:expr, $path:literal, limited, [$($method:ident => $handler:path),+ $(,)?]) => {
        $cfg.service(
            resource!(@build $path, [$($method => $handler),+])
                .wrap(actix_web::middleware::from_fn($crate::middleware::auth_rate_limit)),
        )
    };
    (@build $path:literal, [$($method:ident => $handler:path),+]) => {
        paperclip::actix::web::resource($path)
            $(.route(
                paperclip::actix::web::method(actix_web::http::Method::$method).to($handler),
            ))+
            .default_service($crate::handlers::method_not_allowed(&[$(stringify!($method)),+]))
    };
}

pub(crate) use resource;

/// The fallback of a resource for methods it does not serve: `405` with `Allow`.
pub(crate) fn method_not_allowed(allow: &'static [&'static str]) -> actix_web::Route {
    actix_web::web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    })
}
