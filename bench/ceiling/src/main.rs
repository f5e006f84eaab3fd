//! `ceiling BODY_FILE ADDR [DATABASE_URL]`: serves `GET /` with the JSON in `BODY_FILE`, from memory, on `ADDR`.
//!
//! The benchmark measures this beside the api, on the same machine in the same run: what a bare actix-web
//! endpoint returning the same 20-task page can do at all, so every api figure reads as a share of it.
//!
//! With `DATABASE_URL` (SQLite or PostgreSQL), `GET /db/{n}` also runs `n` prepared `SELECT ?` (`$1`)
//! statements one after another through a sea-orm/sqlx pool of the api's size and settings, and answers with
//! the same body: the floor that any request needing `n` statements meets on this stack before it does any
//! work of its own.

use std::process::ExitCode;

use actix_web::{App, HttpResponse, HttpServer, web};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

/// The api's default pool size (`DATABASE_MAX_CONNECTIONS`).
const POOL_SIZE: u32 = 20;
/// More statements than any api route runs.
const MAX_STATEMENTS: u32 = 8;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(addr)) = (args.next(), args.next()) else {
        eprintln!("usage: ceiling BODY_FILE ADDR [DATABASE_URL]");
        return ExitCode::from(2);
    };
    let database_url = args.next();
    let body = match std::fs::read(&file) {
        Ok(body) => web::Bytes::from(body),
        Err(err) => {
            eprintln!("cannot read {file}: {err}");
            return ExitCode::from(2);
        }
    };
    let served = actix_web::rt::System::new().block_on(async move {
        let db = match database_url {
            Some(url) => {
                let mut options = ConnectOptions::new(url);
                // As the api's SQLite pool (`securecrud_persistence::Database::connect`).
                options
                    .max_connections(POOL_SIZE)
                    .min_connections(1)
                    .test_before_acquire(false)
                    .sqlx_logging(false);
                Some(
                    sea_orm::Database::connect(options)
                        .await
                        .map_err(std::io::Error::other)?,
                )
            }
            None => None,
        };
        HttpServer::new(move || {
            let app = App::new()
                .app_data(web::Data::new(body.clone()))
                .route("/", web::get().to(page));
            match &db {
                Some(db) => app
                    .app_data(web::Data::new(db.clone()))
                    .route("/db/{n}", web::get().to(statements_then_page)),
                None => app,
            }
        })
        .bind(&addr)?
        .run()
        .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ceiling failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn page(body: web::Data<web::Bytes>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.get_ref().clone())
}

async fn statements_then_page(
    n: web::Path<u32>,
    db: web::Data<DatabaseConnection>,
    body: web::Data<web::Bytes>,
) -> HttpResponse {
    let n = n.into_inner();
    if n > MAX_STATEMENTS {
        return HttpResponse::NotFound().finish();
    }
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => "SELECT $1::int",
        _ => "SELECT ?",
    };
    for i in 0..n {
        let statement = Statement::from_sql_and_values(backend, sql, [i.into()]);
        if let Err(err) = db.query_one_raw(statement).await {
            return HttpResponse::ServiceUnavailable().body(err.to_string());
        }
    }
    page(body).await
}
