//! The live console page and the browser client, embedded in the binary, and the JSON 404.
//!
//! The client is the npm package's own module (`packages/client`), embedded as it is, so the file a
//! page imports from the service and the one a bundler installs cannot drift apart.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, http::header, web};

use crate::problem;

const CONSOLE_HTML: &str = include_str!("../../static/index.html");
const CLIENT_JS: &str = include_str!("../../packages/client/admin-push.js");

pub(super) async fn console() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(CONSOLE_HTML)
}

pub(super) async fn static_file(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    match file.as_str() {
        "admin-push.js" => HttpResponse::Ok()
            .content_type("text/javascript; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(CLIENT_JS),
        "index.html" => console().await,
        _ => not_found(req).await,
    }
}

pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    problem::respond(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no route for {} {}", req.method(), req.path()),
    )
}
