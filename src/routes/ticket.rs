//! `POST /admin-ws/ticket`: trades an admin JWT for a single-use ticket a browser can put in a URL.

use actix_web::{HttpRequest, HttpResponse, http::header, web};

use crate::{
    auth::{self, AuthError, Verifier},
    metrics::Metrics,
    settings::AuthSettings,
    tickets::Tickets,
};

pub(super) async fn ticket(
    req: HttpRequest,
    verifier: web::Data<Verifier>,
    tickets: web::Data<Tickets>,
    metrics: web::Data<Metrics>,
    settings: web::Data<AuthSettings>,
) -> Result<HttpResponse, AuthError> {
    let issued = async {
        auth::check_origin(&req, &settings.allowed_origins)?;
        let token = auth::bearer_token(&req)?.ok_or(AuthError::Missing)?;
        let (principal, token_left) = verifier.verify_with_expiry(&token)?;
        tickets.issue(principal, token_left).await
    };
    let (ticket, life) = issued
        .await
        .inspect_err(|e| metrics.auth_failed(e.reason()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "ticket": ticket,
            // Whole seconds, rounded down: a ticket is never said to live longer than it does.
            "expires_in": life.as_secs(),
        })))
}
