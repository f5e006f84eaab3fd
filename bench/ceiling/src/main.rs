//! `ceiling BODY_FILE ADDR`: serves `GET /` with the JSON in `BODY_FILE`, from memory, on `ADDR`.
//!
//! The benchmark measures this beside the api, on the same machine in the same run: what a bare actix-web
//! endpoint returning the same 20-task page can do at all, so every api figure reads as a share of it.

use std::process::ExitCode;

use actix_web::{App, HttpResponse, HttpServer, web};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(addr)) = (args.next(), args.next()) else {
        eprintln!("usage: ceiling BODY_FILE ADDR");
        return ExitCode::from(2);
    };
    let body = match std::fs::read(&file) {
        Ok(body) => web::Bytes::from(body),
        Err(err) => {
            eprintln!("cannot read {file}: {err}");
            return ExitCode::from(2);
        }
    };
    let served = actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let body = body.clone();
            App::new().route(
                "/",
                web::get().to(move || {
                    let body = body.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body)
                    }
                }),
            )
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
