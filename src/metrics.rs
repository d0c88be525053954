//! Prometheus metrics, served at `GET /metrics` (on the internal listener when there is one).
//!
//! Label sets are small and fixed, so every per-delivery handle is resolved once at start-up: on
//! the fan-out path counting is an atomic add and a histogram bucket increment, never a lookup or an
//! allocation.

use std::{sync::OnceLock, time::Duration};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::protocol::{ResyncReason, TransportKind};

/// Connections actix-http refused or dropped because of what the peer sent, by reason (counted from
/// its log lines, see `telemetry`). Process-wide like the log itself: every registry exposes this
/// one counter.
static HTTP_REFUSED: OnceLock<IntCounterVec> = OnceLock::new();

/// Counts one connection refused or dropped by actix-http (before any route saw a request).
pub(crate) fn http_refused(reason: &str) {
    if let Some(counter) = HTTP_REFUSED.get() {
        counter.with_label_values(&[reason]).inc();
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    connections: [IntGauge; 2],
    deliveries: [IntCounter; 2],
    resyncs: [IntCounter; 3],
    events: IntCounterVec,
    emit_rejected: IntCounterVec,
    auth_failures: IntCounterVec,
    delivery_seconds: Histogram,
    presence_records: IntGauge,
    presence_refused: IntCounterVec,
    screen_refresh_seconds: HistogramVec,
    receipts_refused: IntCounterVec,
}

fn index(transport: TransportKind) -> usize {
    match transport {
        TransportKind::Ws => 0,
        TransportKind::Sse => 1,
    }
}

impl Metrics {
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let connections = IntGaugeVec::new(
            Opts::new("admin_push_connections", "Open subscriber connections"),
            &["transport"],
        )?;
        let deliveries = IntCounterVec::new(
            Opts::new(
                "admin_push_deliveries_total",
                "Events handed to subscriber sockets",
            ),
            &["transport"],
        )?;
        let resyncs = IntCounterVec::new(
            Opts::new(
                "admin_push_resyncs_total",
                "resync messages sent, by reason",
            ),
            &["reason"],
        )?;
        let events = IntCounterVec::new(
            Opts::new("admin_push_events_total", "Events accepted for publishing"),
            &["event"],
        )?;
        let emit_rejected = IntCounterVec::new(
            Opts::new(
                "admin_push_emit_rejected_total",
                "Refused emit requests, by reason",
            ),
            &["reason"],
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "admin_push_auth_failures_total",
                "Refused subscriber credentials, by reason",
            ),
            &["reason"],
        )?;
        let http_refused = match HTTP_REFUSED.get() {
            Some(counter) => counter.clone(),
            None => {
                let counter = IntCounterVec::new(
                    Opts::new(
                        "admin_push_http_refused_total",
                        "Connections refused or dropped before routing (malformed or unfinished \
                         requests), by reason",
                    ),
                    &["reason"],
                )?;
                HTTP_REFUSED.get_or_init(|| counter).clone()
            }
        };
        let delivery_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "admin_push_delivery_seconds",
                "From the hub taking an event in to its frame being handed to a socket",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
        )?;
        let presence_records = IntGauge::new(
            "admin_push_presence_records",
            "Records someone has open, on this instance or, as far as it knows, another",
        )?;
        let presence_refused = IntCounterVec::new(
            Opts::new(
                "admin_push_presence_refused_total",
                "Refused presence reports, by reason",
            ),
            &["reason"],
        )?;
        let screen_refresh_seconds = HistogramVec::new(
            HistogramOpts::new(
                "admin_push_screen_refresh_seconds",
                "From the hub taking an event in to a tab's receipt that its screen shows it, by \
                 event and transport (a sample of tabs: receipts.sample_tabs)",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["event", "transport"],
        )?;
        let receipts_refused = IntCounterVec::new(
            Opts::new(
                "admin_push_receipts_refused_total",
                "Screen-refresh receipts not counted, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(screen_refresh_seconds.clone()))?;
        registry.register(Box::new(receipts_refused.clone()))?;
        registry.register(Box::new(presence_records.clone()))?;
        registry.register(Box::new(presence_refused.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(resyncs.clone()))?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(emit_rejected.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(delivery_seconds.clone()))?;
        registry.register(Box::new(http_refused))?;
        let by_transport = |t: TransportKind| t.as_str();
        Ok(Self {
            connections: [TransportKind::Ws, TransportKind::Sse]
                .map(|t| connections.with_label_values(&[by_transport(t)])),
            deliveries: [TransportKind::Ws, TransportKind::Sse]
                .map(|t| deliveries.with_label_values(&[by_transport(t)])),
            resyncs: [
                ResyncReason::Gap,
                ResyncReason::Lagged,
                ResyncReason::Restart,
            ]
            .map(|r| resyncs.with_label_values(&[r.as_str()])),
            registry,
            events,
            emit_rejected,
            auth_failures,
            delivery_seconds,
            presence_records,
            presence_refused,
            screen_refresh_seconds,
            receipts_refused,
        })
    }

    pub(crate) fn connection_opened(&self, transport: TransportKind) {
        self.connections[index(transport)].inc();
    }

    pub(crate) fn connection_closed(&self, transport: TransportKind) {
        self.connections[index(transport)].dec();
    }

    pub(crate) fn delivered(&self, transport: TransportKind, latency: Duration) {
        self.deliveries[index(transport)].inc();
        self.delivery_seconds.observe(latency.as_secs_f64());
    }

    pub(crate) fn resync(&self, reason: ResyncReason) {
        let at = match reason {
            ResyncReason::Gap => 0,
            ResyncReason::Lagged => 1,
            ResyncReason::Restart => 2,
        };
        self.resyncs[at].inc();
    }

    pub(crate) fn published(&self, event: &str) {
        self.events.with_label_values(&[event]).inc();
    }

    pub(crate) fn emit_rejected(&self, reason: &str) {
        self.emit_rejected.with_label_values(&[reason]).inc();
    }

    pub(crate) fn auth_failed(&self, reason: &str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// Open subscriber connections, both transports.
    pub(crate) fn open_connections(&self) -> i64 {
        self.connections.iter().map(IntGauge::get).sum()
    }

    /// `event` is a name the hub rendered (from the catalog), never one a client sent.
    pub(crate) fn screen_refreshed(&self, event: &str, transport: TransportKind, after: Duration) {
        self.screen_refresh_seconds
            .with_label_values(&[event, transport.as_str()])
            .observe(after.as_secs_f64());
    }

    /// `reason` is one of the receipt refusals' fixed codes.
    pub(crate) fn receipt_refused(&self, reason: &str) {
        self.receipts_refused.with_label_values(&[reason]).inc();
    }

    pub(crate) fn presence_records(&self, records: usize) {
        self.presence_records.set(records as i64);
    }

    /// `reason` is one of the presence refusals' fixed codes.
    pub(crate) fn presence_refused(&self, reason: &str) {
        self.presence_refused.with_label_values(&[reason]).inc();
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> Vec<u8> {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        buffer
    }
}
