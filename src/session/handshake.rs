//! The subscribe handshake both transports share: query, credentials, admission, subscription.
//!
//! Everything that can refuse does so here, as an ordinary status code and JSON body, before a
//! WebSocket upgrade or an SSE stream begins; and everything that can refuse without spending a
//! single-use ticket goes first.

use std::sync::Arc;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::admission::{Admission, Slot};
use crate::{
    auth::{self, AuthError, Principal, Verifier},
    catalog::{Catalog, EventName},
    hub::{Hub, Live, Start, Subscription},
    metrics::Metrics,
    problem,
    protocol::{Event, EventId},
    tickets::Tickets,
};

/// The query string both transports accept.
#[derive(Debug, Deserialize)]
struct SubscribeQuery {
    ticket: Option<String>,
    last_event_id: Option<String>,
    events: Option<String>,
    // Named only to refuse them: a token in a URL lands in access logs.
    token: Option<String>,
    access_token: Option<String>,
    jwt: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SubscribeError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    BadRequest(String),
    #[error("the server is at its connection limit; retry later")]
    Full,
    #[error("too many open connections for this admin; close some tabs")]
    TooManyForActor,
    #[error("the server is shutting down; reconnect elsewhere")]
    Draining,
}

impl ResponseError for SubscribeError {
    fn status_code(&self) -> StatusCode {
        match self {
            SubscribeError::Auth(e) => e.status_code(),
            SubscribeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            SubscribeError::TooManyForActor => StatusCode::TOO_MANY_REQUESTS,
            SubscribeError::Full | SubscribeError::Draining => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            SubscribeError::Auth(e) => e.error_response(),
            SubscribeError::BadRequest(message) => {
                problem::respond(StatusCode::BAD_REQUEST, "bad_request", message)
            }
            SubscribeError::Full | SubscribeError::Draining | SubscribeError::TooManyForActor => {
                let mut builder = problem::builder(self.status_code());
                builder.insert_header((header::RETRY_AFTER, "2"));
                let code = if self.status_code() == StatusCode::TOO_MANY_REQUESTS {
                    "too_many_connections"
                } else {
                    "unavailable"
                };
                problem::finish(builder, code, &self.to_string())
            }
        }
    }
}

/// What the handshake needs, and nothing else.
#[derive(Debug)]
pub(crate) struct Handshake {
    pub(crate) hub: Hub,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) tickets: Arc<Tickets>,
    pub(crate) catalog: Catalog,
    pub(crate) admission: Arc<Admission>,
    pub(crate) metrics: Metrics,
    /// `auth.allowed_origins`.
    pub(crate) allowed_origins: Vec<String>,
    /// Cancelled at shutdown: new subscribers are refused from then on.
    pub(crate) shutdown: CancellationToken,
}

/// An authenticated, admitted subscriber, ready to be handed to a transport.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(super) principal: Arc<Principal>,
    /// The hub's live broadcast, from the moment of subscribing.
    pub(super) live: Live,
    pub(super) start: Start,
    pub(super) resume_point: EventId,
    filter: Option<Vec<EventName>>,
    _slot: Slot,
}

impl Subscriber {
    /// Whether this connection's `?events=` filter lets `event` through (replayed or live).
    pub(super) fn wants(&self, event: &Event) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|names| names.contains(&event.name))
    }
}

impl Handshake {
    /// Authenticates and admits a subscriber. `resume_header` is SSE's `Last-Event-ID`, fresher
    /// than the query's when a browser reconnects on its own, so it wins.
    pub(crate) async fn admit(
        &self,
        req: &HttpRequest,
        resume_header: Option<&str>,
    ) -> Result<Subscriber, SubscribeError> {
        if self.shutdown.is_cancelled() {
            return Err(SubscribeError::Draining);
        }
        let query = parse_query(req)?;
        // Everything that can refuse without spending a single-use ticket goes first.
        let filter = self.parse_filter(query.events.as_deref())?;
        let principal = self.authenticate(req, &query).await.inspect_err(|e| {
            if let SubscribeError::Auth(e) = e {
                self.metrics.auth_failed(e.reason());
            }
        })?;
        let principal = Arc::new(principal);
        let slot = self.admission.enter(&principal)?;
        // An empty id is no id: a fresh start rather than a gap.
        let resume = resume_header
            .filter(|id| !id.is_empty())
            .or(query.last_event_id.as_deref().filter(|id| !id.is_empty()));
        let Subscription {
            receiver,
            start,
            resume_point,
        } = self.hub.subscribe(resume).await;
        Ok(Subscriber {
            principal,
            live: self.hub.live(receiver),
            start,
            resume_point,
            filter,
            _slot: slot,
        })
    }

    /// `?events=a,b` as known names; absent or empty means every event. An empty name in a
    /// list (`a,`, `a,,b`) is a mistake in the client's list, refused like an unknown one.
    fn parse_filter(&self, names: Option<&str>) -> Result<Option<Vec<EventName>>, SubscribeError> {
        let Some(names) = names.filter(|names| !names.is_empty()) else {
            return Ok(None);
        };
        names
            .split(',')
            .map(|n| {
                self.catalog.name(n).ok_or_else(|| {
                    SubscribeError::BadRequest(if n.is_empty() {
                        "events: empty event name in the list".to_owned()
                    } else {
                        format!("events: unknown event {n:?}")
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Origin, then credentials: a bearer token, else a ticket. A token in the URL is refused.
    async fn authenticate(
        &self,
        req: &HttpRequest,
        query: &SubscribeQuery,
    ) -> Result<Principal, SubscribeError> {
        auth::check_origin(req, &self.allowed_origins)?;
        if query.token.is_some() || query.access_token.is_some() || query.jwt.is_some() {
            return Err(AuthError::TokenInUrl.into());
        }
        Ok(match (auth::bearer_token(req)?, &query.ticket) {
            (Some(token), _) => self.verifier.verify(&token)?,
            (None, Some(ticket)) => self.tickets.redeem(ticket).await?,
            (None, None) => return Err(AuthError::Missing.into()),
        })
    }
}

fn parse_query(req: &HttpRequest) -> Result<SubscribeQuery, SubscribeError> {
    Ok(
        actix_web::web::Query::<SubscribeQuery>::from_query(req.query_string())
            .map_err(|e| SubscribeError::BadRequest(format!("query string: {e}")))?
            .into_inner(),
    )
}
