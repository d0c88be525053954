//! The publisher: `events` bench events at `rate` per second through `POST /internal/emit` (or Nchan's
//! `/pub/<channel>`), from `concurrency` keep-alive connections. Each event's `data.id` carries its
//! sequence number and the wall-clock send time, so subscribers can compute delivery latency.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

use crate::proto::{Target, marker, new_histogram, unix_ns};

/// What to publish and where.
#[derive(Debug, Clone)]
pub(crate) struct EmitPlan {
    pub(crate) target: Target,
    pub(crate) port: u16,
    pub(crate) internal_secret: String,
    pub(crate) nchan_channel: String,
    pub(crate) events: u64,
    /// Events per second; 0 = as fast as the connections go.
    pub(crate) rate: f64,
    pub(crate) concurrency: usize,
}

/// What the publisher saw.
#[derive(Debug)]
pub(crate) struct Emitted {
    /// Send time (unix ns) per sequence number; 0 when the emit failed.
    pub(crate) sent_ns: Vec<u64>,
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) first_error: Option<String>,
    /// Emit answer latency, µs.
    pub(crate) answer_us: Histogram<u64>,
    /// From the first send to the last answer.
    pub(crate) wall: Duration,
}

/// Publishes the plan and returns once every request has been answered.
pub(crate) async fn run(plan: EmitPlan) -> Result<Emitted, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(plan.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let url = match plan.target {
        Target::AdminPush => format!("http://127.0.0.1:{}/internal/emit", plan.port),
        Target::Nchan => format!("http://127.0.0.1:{}/pub/{}", plan.port, plan.nchan_channel),
    };
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicU64::new(0));
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..plan.events).map(|_| AtomicU64::new(0)).collect());
    let start = Instant::now() + Duration::from_millis(10);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency.max(1) {
        let (client, url, plan, next, sent) = (
            client.clone(),
            url.clone(),
            plan.clone(),
            next.clone(),
            sent.clone(),
        );
        tasks.spawn(async move {
            let mut answers = new_histogram();
            let (mut ok, mut failed, mut first_error) = (0u64, 0u64, None);
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= plan.events {
                    break;
                }
                if plan.rate > 0.0 {
                    let due = start + Duration::from_secs_f64(seq as f64 / plan.rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let sent_ns = unix_ns();
                let body = format!(
                    r#"{{"event":"product.updated","data":{{"id":"{}"}}}}"#,
                    marker(seq, sent_ns)
                );
                let began = Instant::now();
                let answer = client
                    .post(&url)
                    .bearer_auth(&plan.internal_secret)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let outcome = match answer {
                    Ok(response) if response.status().is_success() => {
                        // Read the body so the connection goes back to the pool.
                        response
                            .bytes()
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    Ok(response) => Err(format!("status {}", response.status())),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        answers.saturating_record(
                            u64::try_from(began.elapsed().as_micros())
                                .unwrap_or(u64::MAX)
                                .max(1),
                        );
                        if let Some(slot) = usize::try_from(seq).ok().and_then(|i| sent.get(i)) {
                            slot.store(sent_ns, Ordering::Relaxed);
                        }
                        ok += 1;
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (answers, ok, failed, first_error)
        });
    }
    let mut emitted = Emitted {
        sent_ns: Vec::new(),
        ok: 0,
        failed: 0,
        first_error: None,
        answer_us: new_histogram(),
        wall: Duration::ZERO,
    };
    while let Some(joined) = tasks.join_next().await {
        let (answers, ok, failed, first_error) =
            joined.map_err(|e| format!("emitter task: {e}"))?;
        emitted
            .answer_us
            .add(&answers)
            .map_err(|e| format!("histogram: {e}"))?;
        emitted.ok += ok;
        emitted.failed += failed;
        if emitted.first_error.is_none() {
            emitted.first_error = first_error;
        }
    }
    emitted.wall = start.elapsed();
    emitted.sent_ns = sent.iter().map(|t| t.load(Ordering::Relaxed)).collect();
    Ok(emitted)
}
