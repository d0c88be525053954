//! `admin-push top`: an operator's live view of one instance, read from its own `/metrics`.
//!
//! Every `--interval` it scrapes the exposition and shows what happened since the previous
//! scrape: per event name, the events accepted per second and how long screens took to refresh
//! (p50/p95 of the tabs' receipts, per transport); the service's own delivery latency (p50/p99);
//! open connections; records with presence; refused receipts and presence reports per second.
//!
//! Quantiles come from the histograms' bucket deltas between two scrapes, interpolated within a
//! bucket exactly as Prometheus' `histogram_quantile` does, so the figures match what the Grafana
//! dashboard shows for the same window.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    io::IsTerminal,
    time::{Duration, Instant},
};

use admin_push::Settings;
use prometheus_parse::{Scrape, Value};
use reqwest::Url;

use crate::remote::base_url;

/// The longest a scrape may take before the service counts as unreachable.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

const TRANSPORTS: [&str; 2] = ["ws", "sse"];

#[derive(Debug, clap::Args)]
pub(crate) struct TopArgs {
    /// Base URL of the listener serving `/metrics` [default: the configured `server.emit_url`,
    /// else http://<server.internal_bind or server.bind>].
    #[arg(long, env = "ADMIN_PUSH_URL", value_parser = base_url)]
    url: Option<Url>,
    /// Seconds between two scrapes; each figure covers the last interval, e.g. `0.5` or `5`.
    #[arg(long, default_value = "1", value_parser = interval)]
    interval: Duration,
    /// Print one sample (two scrapes --interval apart) and exit, instead of redrawing until
    /// interrupted.
    #[arg(long)]
    once: bool,
}

fn interval(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.05..=3600.0).contains(&seconds) {
        return Err("the interval must be between 0.05 and 3600 seconds".to_owned());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Scrapes until interrupted (or twice, with `--once`); an error says which URL failed and how.
pub(crate) async fn run(settings: &Settings, args: TopArgs) -> Result<(), String> {
    let base = match args.url {
        Some(url) => url,
        None => base_url(&settings.emit_url()).map_err(|e| format!("server.emit_url: {e}"))?,
    };
    let url = base
        .join("metrics")
        .map_err(|e| format!("--url {base}: {e}"))?;
    let http = reqwest::Client::builder()
        .timeout(SCRAPE_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let terminal = std::io::stdout().is_terminal();
    let mut before = scrape(&http, &url).await?;
    let mut taken = Instant::now();
    if !terminal {
        eprintln!(
            "admin-push top: sampling {url} for {}",
            seconds(args.interval)
        );
    }
    loop {
        tokio::time::sleep(args.interval).await;
        let after = scrape(&http, &url).await?;
        let now = Instant::now();
        let view = render(&url, &Window::between(&before, &after, now - taken));
        if terminal {
            // Home, then clear: the table is redrawn in place.
            print!("\x1b[H\x1b[2J{view}");
        } else {
            print!("{view}");
        }
        if args.once {
            return Ok(());
        }
        before = after;
        taken = now;
    }
}

async fn scrape(http: &reqwest::Client, url: &Url) -> Result<Snapshot, String> {
    let response = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {}", crate::error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "{url} answered {status}; is this the listener serving /metrics \
             (server.internal_bind when set)?"
        ));
    }
    let text = response
        .text()
        .await
        .map_err(|e| format!("{url}: {}", crate::error_chain(&e)))?;
    Snapshot::parse(&text).ok_or_else(|| format!("{url} does not look like admin-push's metrics"))
}

/// A histogram's cumulative buckets: (upper bound, observations at or below it), by bound.
type Buckets = Vec<(f64, f64)>;

/// The series `top` reads from one scrape.
#[derive(Debug, Default, Clone, PartialEq)]
struct Snapshot {
    events: BTreeMap<String, f64>,
    screen_refresh: BTreeMap<(String, String), Buckets>,
    delivery: Buckets,
    deliveries: BTreeMap<String, f64>,
    connections: BTreeMap<String, f64>,
    presence_records: f64,
    presence_refused: BTreeMap<String, f64>,
    receipts_refused: BTreeMap<String, f64>,
}

impl Snapshot {
    /// `None` when the text has none of admin-push's series (another service's metrics).
    fn parse(text: &str) -> Option<Self> {
        let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).ok()?;
        let mut snapshot = Self::default();
        let mut ours = false;
        for sample in scrape.samples {
            let label = |name: &str| sample.labels.get(name).unwrap_or_default().to_owned();
            ours |= sample.metric.starts_with("admin_push_");
            match (sample.metric.as_str(), &sample.value) {
                ("admin_push_events_total", Value::Counter(n)) => {
                    snapshot.events.insert(label("event"), *n);
                }
                ("admin_push_deliveries_total", Value::Counter(n)) => {
                    snapshot.deliveries.insert(label("transport"), *n);
                }
                ("admin_push_connections", Value::Gauge(n)) => {
                    snapshot.connections.insert(label("transport"), *n);
                }
                ("admin_push_presence_records", Value::Gauge(n)) => {
                    snapshot.presence_records = *n;
                }
                ("admin_push_presence_refused_total", Value::Counter(n)) => {
                    snapshot.presence_refused.insert(label("reason"), *n);
                }
                ("admin_push_receipts_refused_total", Value::Counter(n)) => {
                    snapshot.receipts_refused.insert(label("reason"), *n);
                }
                ("admin_push_delivery_seconds", Value::Histogram(counts)) => {
                    snapshot.delivery = buckets(counts);
                }
                ("admin_push_screen_refresh_seconds", Value::Histogram(counts)) => {
                    let key = (label("event"), label("transport"));
                    snapshot.screen_refresh.insert(key, buckets(counts));
                }
                _ => {}
            }
        }
        ours.then_some(snapshot)
    }
}

fn buckets(counts: &[prometheus_parse::HistogramCount]) -> Buckets {
    let mut buckets: Buckets = counts.iter().map(|c| (c.less_than, c.count)).collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// What one counter did between two scrapes; a counter that went down was reset (the service
/// restarted), so all of its current value is new.
fn increase(before: Option<f64>, after: f64) -> f64 {
    match before {
        Some(before) if before <= after => after - before,
        _ => after,
    }
}

/// A histogram's observations between two scrapes, bucket by bucket (a reset, as for counters).
fn bucket_increase(before: Option<&Buckets>, after: &Buckets) -> Buckets {
    let reset = before.is_some_and(|before| {
        after
            .iter()
            .any(|(le, n)| bound(before, *le).is_some_and(|then| then > *n))
    });
    after
        .iter()
        .map(|&(le, n)| {
            let then = if reset {
                None
            } else {
                before.and_then(|b| bound(b, le))
            };
            (le, increase(then, n))
        })
        .collect()
}

fn bound(buckets: &Buckets, le: f64) -> Option<f64> {
    buckets.iter().find(|(at, _)| *at == le).map(|(_, n)| *n)
}

/// The `q` quantile of cumulative `buckets` (sorted by upper bound, the last `+Inf`), as
/// Prometheus' `histogram_quantile` computes it: find the bucket holding the rank, and
/// interpolate linearly within it (from 0 for the first bucket). A rank in the `+Inf` bucket is
/// the highest finite bound. `None` without observations.
fn quantile(q: f64, buckets: &Buckets) -> Option<f64> {
    let (&(last_bound, observations), finite) = buckets.split_last()?;
    if finite.is_empty() || last_bound != f64::INFINITY || observations <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * observations;
    // Buckets are cumulative; a scrape taken mid-update can be off by one, so keep them
    // non-decreasing as Prometheus does.
    let mut monotonic = Vec::with_capacity(buckets.len());
    let mut highest = 0.0_f64;
    for &(le, n) in buckets {
        highest = highest.max(n);
        monotonic.push((le, highest));
    }
    let at = monotonic
        .iter()
        .position(|&(_, n)| n >= rank)
        .unwrap_or(monotonic.len() - 1);
    if at == monotonic.len() - 1 {
        return Some(finite[finite.len() - 1].0);
    }
    let (end, count) = monotonic[at];
    if at == 0 && end <= 0.0 {
        return Some(end);
    }
    let (start, below) = if at == 0 {
        (0.0, 0.0)
    } else {
        monotonic[at - 1]
    };
    let in_bucket = count - below;
    if in_bucket <= 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * ((rank - below) / in_bucket))
}

/// The screen-refresh quantiles of one event on one transport over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Refresh {
    p50: f64,
    p95: f64,
}

/// What happened between two scrapes, per second where it is a rate.
#[derive(Debug, PartialEq)]
struct Window {
    seconds: f64,
    /// Every event name either scrape knows, with its accepted events per second.
    events: BTreeMap<String, f64>,
    refresh: BTreeMap<(String, String), Refresh>,
    delivery: Option<(f64, f64)>,
    deliveries_per_sec: f64,
    connections: BTreeMap<String, f64>,
    presence_records: f64,
    receipts_refused: BTreeMap<String, f64>,
    presence_refused: BTreeMap<String, f64>,
}

impl Window {
    fn between(before: &Snapshot, after: &Snapshot, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        let rates = |before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>| {
            after
                .iter()
                .map(|(name, &n)| {
                    let rate = increase(before.get(name).copied(), n) / seconds;
                    (name.clone(), rate)
                })
                .collect::<BTreeMap<_, _>>()
        };
        let mut events = rates(&before.events, &after.events);
        for (event, _) in after.screen_refresh.keys() {
            events.entry(event.clone()).or_insert(0.0);
        }
        let refresh = after
            .screen_refresh
            .iter()
            .filter_map(|(key, buckets)| {
                let new = bucket_increase(before.screen_refresh.get(key), buckets);
                let p50 = quantile(0.5, &new)?;
                let p95 = quantile(0.95, &new)?;
                Some((key.clone(), Refresh { p50, p95 }))
            })
            .collect();
        let delivered = bucket_increase(Some(&before.delivery), &after.delivery);
        let delivery = quantile(0.5, &delivered).zip(quantile(0.99, &delivered));
        let deliveries_per_sec = total(&rates(&before.deliveries, &after.deliveries));
        Self {
            seconds,
            events,
            refresh,
            delivery,
            deliveries_per_sec,
            connections: after.connections.clone(),
            presence_records: after.presence_records,
            receipts_refused: rates(&before.receipts_refused, &after.receipts_refused),
            presence_refused: rates(&before.presence_refused, &after.presence_refused),
        }
    }
}

/// The table for one window, ending in a newline.
fn render(url: &Url, window: &Window) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "admin-push top  {url}  last {}",
        seconds(Duration::from_secs_f64(window.seconds))
    );
    let connections = TRANSPORTS
        .iter()
        .map(|t| format!("{t} {}", window.connections.get(*t).copied().unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .join("  ");
    let _ = writeln!(
        out,
        "connections  {connections}    presence records {}",
        window.presence_records
    );
    let delivery = match window.delivery {
        Some((p50, p99)) => format!("p50 {}  p99 {}", latency(p50), latency(p99)),
        None => "p50 -  p99 -".to_owned(),
    };
    let _ = writeln!(
        out,
        "delivery     {delivery}    {:.1} deliveries/s",
        window.deliveries_per_sec
    );
    let _ = writeln!(
        out,
        "refused/s    receipts {}    presence {}",
        refusals(&window.receipts_refused),
        refusals(&window.presence_refused)
    );
    out.push('\n');
    let width = window
        .events
        .keys()
        .map(String::len)
        .chain(["event".len()])
        .max()
        .unwrap_or(0);
    let _ = write!(out, "{:<width$}  {:>8}", "event", "events/s");
    for transport in TRANSPORTS {
        let _ = write!(
            out,
            "  {:>8}  {:>8}",
            format!("{transport} p50"),
            format!("{transport} p95")
        );
    }
    out.push('\n');
    let shown: BTreeSet<&String> = window.events.keys().collect();
    for event in shown {
        let rate = window.events.get(event).copied().unwrap_or(0.0);
        let _ = write!(out, "{event:<width$}  {rate:>8.1}");
        for transport in TRANSPORTS {
            let key = (event.clone(), transport.to_owned());
            let (p50, p95) = match window.refresh.get(&key) {
                Some(refresh) => (latency(refresh.p50), latency(refresh.p95)),
                None => ("-".to_owned(), "-".to_owned()),
            };
            let _ = write!(out, "  {p50:>8}  {p95:>8}");
        }
        out.push('\n');
    }
    if window.events.is_empty() {
        out.push_str("(no event accepted yet)\n");
    }
    out
}

/// A total per second, and its reasons when there are any: `0.5 (too_many_receipts 0.5)`.
fn refusals(by_reason: &BTreeMap<String, f64>) -> String {
    let total = total(by_reason);
    let reasons = by_reason
        .iter()
        .filter(|(_, rate)| **rate > 0.0)
        .map(|(reason, rate)| format!("{reason} {rate:.1}"))
        .collect::<Vec<_>>();
    if reasons.is_empty() {
        format!("{total:.1}")
    } else {
        format!("{total:.1} ({})", reasons.join(", "))
    }
}

/// The sum of the values (`Iterator::sum` of no floats is -0.0, which would print as `-0.0`).
fn total(by_name: &BTreeMap<String, f64>) -> f64 {
    by_name.values().fold(0.0, |sum, n| sum + n)
}

/// A latency in one word: `0.42ms`, `35ms`, `1.25s`.
fn latency(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2}ms")
    } else if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{seconds:.2}s")
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn the_median_of_bucket_deltas_is_interpolated_within_its_bucket() {
        // Before: 10 observations ≤ 0.1 s. After: 10 more, 4 of them ≤ 0.1 s and 6 in (0.1, 0.5].
        let before = vec![(0.1, 10.0), (0.5, 10.0), (1.0, 10.0), (INF, 10.0)];
        let after = vec![(0.1, 14.0), (0.5, 20.0), (1.0, 20.0), (INF, 20.0)];
        let window = bucket_increase(Some(&before), &after);
        assert_eq!(
            window,
            vec![(0.1, 4.0), (0.5, 10.0), (1.0, 10.0), (INF, 10.0)]
        );
        // Rank 5 is the first of the 6 in (0.1, 0.5]: 0.1 + 0.4 × 1/6.
        let p50 = quantile(0.5, &window).expect("observations");
        assert!((p50 - (0.1 + 0.4 / 6.0)).abs() < 1e-12, "{p50}");
    }

    #[test]
    fn the_first_bucket_interpolates_from_zero_and_the_last_stops_at_the_highest_bound() {
        let first = vec![(0.2, 4.0), (1.0, 4.0), (INF, 4.0)];
        assert_eq!(quantile(0.5, &first), Some(0.1));
        let beyond = vec![(0.2, 0.0), (1.0, 1.0), (INF, 10.0)];
        assert_eq!(quantile(0.95, &beyond), Some(1.0));
    }

    #[test]
    fn no_observation_in_the_window_has_no_quantile() {
        let same = vec![(0.1, 3.0), (INF, 3.0)];
        assert_eq!(quantile(0.5, &bucket_increase(Some(&same), &same)), None);
        assert_eq!(quantile(0.5, &vec![(0.1, 3.0)]), None, "no +Inf bucket");
    }

    #[test]
    fn a_restarted_service_counts_everything_it_has_as_new() {
        let before = vec![(0.1, 50.0), (INF, 60.0)];
        let after = vec![(0.1, 2.0), (INF, 2.0)];
        assert_eq!(bucket_increase(Some(&before), &after), after);
        assert_eq!(increase(Some(60.0), 2.0), 2.0);
    }

    #[test]
    fn a_window_names_each_event_with_its_rate_and_screen_refresh_by_transport() {
        let exposition = |events: u32, fast: u32, slow: u32| {
            format!(
                "# TYPE admin_push_events_total counter\n\
                 admin_push_events_total{{event=\"product.updated\"}} {events}\n\
                 # TYPE admin_push_screen_refresh_seconds histogram\n\
                 admin_push_screen_refresh_seconds_bucket{{event=\"product.updated\",transport=\"ws\",le=\"0.05\"}} {fast}\n\
                 admin_push_screen_refresh_seconds_bucket{{event=\"product.updated\",transport=\"ws\",le=\"0.1\"}} {}\n\
                 admin_push_screen_refresh_seconds_bucket{{event=\"product.updated\",transport=\"ws\",le=\"+Inf\"}} {}\n\
                 admin_push_screen_refresh_seconds_sum{{event=\"product.updated\",transport=\"ws\"}} 1\n\
                 admin_push_screen_refresh_seconds_count{{event=\"product.updated\",transport=\"ws\"}} {}\n\
                 # TYPE admin_push_presence_records gauge\n\
                 admin_push_presence_records 3\n",
                fast + slow,
                fast + slow,
                fast + slow
            )
        };
        let before = Snapshot::parse(&exposition(10, 5, 0)).expect("ours");
        let after = Snapshot::parse(&exposition(30, 5, 4)).expect("ours");
        let window = Window::between(&before, &after, Duration::from_secs(2));
        assert_eq!(window.events["product.updated"], 10.0);
        let refresh = window.refresh[&("product.updated".to_owned(), "ws".to_owned())];
        // All 4 new receipts fell in (0.05, 0.1]: the median is halfway through it.
        assert!((refresh.p50 - 0.075).abs() < 1e-12, "{refresh:?}");
        let url = Url::parse("http://127.0.0.1:9090/metrics").expect("url");
        let table = render(&url, &window);
        let row = table
            .lines()
            .find(|line| line.starts_with("product.updated"))
            .expect("a row for the event");
        let p95 = latency(refresh.p95);
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["product.updated", "10.0", "75ms", p95.as_str(), "-", "-"]
        );
        assert!(table.contains("presence records 3"), "{table}");
    }

    #[test]
    fn another_services_metrics_are_not_taken_for_ours() {
        assert_eq!(Snapshot::parse("# TYPE up gauge\nup 1\n"), None);
    }
}
