//! `GET /metrics`: the Prometheus text exposition (on the internal listener when there is one).

use actix_web::{HttpResponse, web};

use crate::metrics::Metrics;

pub(super) async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
