//! The result of one scenario: the JSON line (stable field names, one object) and the human summary.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Quantiles of a µs histogram, in milliseconds.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(crate) struct Quantiles {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) samples: u64,
}

impl Quantiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            samples: h.len(),
        }
    }
}

/// What the server's processes cost (summed), when their pids are known.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct ServerUsage {
    pub(crate) pids: Vec<u32>,
    pub(crate) rss_before_kb: Option<u64>,
    pub(crate) rss_idle_kb: Option<u64>,
    pub(crate) rss_after_kb: Option<u64>,
    pub(crate) rss_peak_kb: Option<u64>,
    /// (RSS with the subscribers connected and idle − RSS before) / connected subscribers.
    pub(crate) bytes_per_idle_conn: Option<f64>,
    /// Server CPU while events flowed, in % of one core.
    pub(crate) cpu_pct: Option<f64>,
    /// Server CPU time per 1000 deliveries, ms.
    pub(crate) cpu_ms_per_1k_deliveries: Option<f64>,
}

/// One scenario's measurements; serialised as the tool's JSON line.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct ScenarioResult {
    pub(crate) scenario: String,
    pub(crate) target: String,
    pub(crate) subscribers: usize,
    pub(crate) ws: usize,
    pub(crate) sse: usize,
    pub(crate) procs: usize,
    pub(crate) sources: usize,
    pub(crate) connected: usize,
    pub(crate) connect_failed: usize,
    pub(crate) connect_errors: Vec<String>,
    pub(crate) connect_ms: Quantiles,
    pub(crate) connect_wall_s: f64,
    pub(crate) events: u64,
    pub(crate) emitted_ok: u64,
    pub(crate) emit_failed: u64,
    pub(crate) emit_error: Option<String>,
    pub(crate) rate_requested: f64,
    pub(crate) rate_achieved: f64,
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) unexpected: u64,
    pub(crate) resyncs: u64,
    pub(crate) closed_early: u64,
    pub(crate) latency_ms: Quantiles,
    pub(crate) fanout_ms: Quantiles,
    pub(crate) emit_ms: Quantiles,
    pub(crate) server: ServerUsage,
    /// CPU the bench itself used (coordinator + workers) while running, in % of one core.
    pub(crate) client_cpu_pct: f64,
    pub(crate) wall_s: f64,
}

impl ScenarioResult {
    /// Zero loss, no resync, no duplicate, every subscriber connected, every emit accepted.
    pub(crate) fn clean(&self) -> bool {
        self.lost == 0
            && self.resyncs == 0
            && self.duplicates == 0
            && self.connect_failed == 0
            && self.emit_failed == 0
            && self.closed_early == 0
    }

    /// Human summary, for stderr.
    pub(crate) fn summary(&self) -> String {
        let q = |q: &Quantiles| {
            format!(
                "p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3} ms  (n={})",
                q.p50, q.p90, q.p99, q.max, q.samples
            )
        };
        let kb = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v} KiB"));
        let mut out = format!(
            "== {} ({}) ==\n\
             subscribers  {} ws + {} sse over {} proc(s), {} source IP(s): {} connected, {} failed in {:.2} s\n\
             connect      {}\n\
             events       {} emitted ok, {} failed; rate {:.0}/s requested, {:.0}/s achieved\n\
             deliveries   {} expected, {} delivered, {} lost, {} duplicate, {} resync, {} closed early\n\
             latency      {}\n\
             fan-out      {}\n\
             emit answer  {}\n\
             server       rss before {}, idle {}, after {}, peak {}; {} B/idle conn; cpu {}\n\
             client cpu   {:.0}% of one core; wall {:.1} s\n",
            self.scenario,
            self.target,
            self.ws,
            self.sse,
            self.procs,
            self.sources,
            self.connected,
            self.connect_failed,
            self.connect_wall_s,
            q(&self.connect_ms),
            self.emitted_ok,
            self.emit_failed,
            self.rate_requested,
            self.rate_achieved,
            self.expected,
            self.delivered,
            self.lost,
            self.duplicates,
            self.resyncs,
            self.closed_early,
            q(&self.latency_ms),
            q(&self.fanout_ms),
            q(&self.emit_ms),
            kb(self.server.rss_before_kb),
            kb(self.server.rss_idle_kb),
            kb(self.server.rss_after_kb),
            kb(self.server.rss_peak_kb),
            self.server
                .bytes_per_idle_conn
                .map_or("-".to_owned(), |b| format!("{b:.0}")),
            self.server
                .cpu_pct
                .map_or("-".to_owned(), |c| format!("{c:.0}% of one core")),
            self.client_cpu_pct,
            self.wall_s,
        );
        for e in &self.connect_errors {
            out.push_str(&format!("connect error: {e}\n"));
        }
        if let Some(e) = &self.emit_error {
            out.push_str(&format!("emit error: {e}\n"));
        }
        out
    }
}
