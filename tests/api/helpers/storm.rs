//! An emit storm through several instances, and tabs on each that read everything it delivers:
//! what a failover test needs to say that every acknowledged event reached every tab, or that
//! the tab was told `resync{restart}`, once.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;

use super::{BOTH, Subscriber, TestApp, WAIT, eventually};

/// Held by a storm test from start to end: each storm takes both cores, and one test's timings
/// must not be starved by another's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until no other storm test runs.
pub async fn one_storm_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// An emit the service answered `202`, and when that answer arrived.
pub struct Ack {
    pub id: String,
    pub at: Instant,
}

/// One emitter per instance, each emitting unkeyed `order.updated` events one after another until
/// stopped, recording every `202` and counting the refusals (`503`/`504`); anything else fails.
pub struct Storm {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    refused: Arc<AtomicUsize>,
    emitters: Vec<tokio::task::JoinHandle<()>>,
}

impl Storm {
    /// Starts emitting through every one of `apps`, and returns once the storm is under way.
    pub async fn start(apps: &[Arc<TestApp>]) -> Self {
        let storm = Self {
            stop: Arc::new(AtomicBool::new(false)),
            acks: Arc::new(Mutex::new(Vec::new())),
            refused: Arc::new(AtomicUsize::new(0)),
            emitters: Vec::new(),
        };
        let emitters = apps
            .iter()
            .enumerate()
            .map(|(n, app)| {
                let (app, stop, acks, refused) = (
                    Arc::clone(app),
                    Arc::clone(&storm.stop),
                    Arc::clone(&storm.acks),
                    Arc::clone(&storm.refused),
                );
                tokio::spawn(async move { emit(&app, n, &stop, &acks, &refused).await })
            })
            .collect();
        let storm = Self { emitters, ..storm };
        eventually("the storm to get going", || async {
            storm.acks.lock().expect("acks").len() >= 200
        })
        .await;
        storm
    }

    /// Waits until an emit answered after `at` was acknowledged.
    pub async fn acknowledged_after(&self, what: &str, at: Instant) {
        eventually(what, || async {
            let acks = self.acks.lock().expect("acks");
            acks.last().is_some_and(|ack| ack.at > at)
        })
        .await;
    }

    /// Stops every emitter: what was acknowledged, and how many attempts were refused.
    pub async fn stop(self) -> (Vec<Ack>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for emitter in self.emitters {
            emitter.await.expect("emitter");
        }
        let acks = std::mem::take(&mut *self.acks.lock().expect("acks"));
        (acks, self.refused.load(Ordering::Relaxed))
    }
}

async fn emit(
    app: &TestApp,
    n: usize,
    stop: &AtomicBool,
    acks: &Mutex<Vec<Ack>>,
    refused: &AtomicUsize,
) {
    let mut count = 0;
    while !stop.load(Ordering::Relaxed) {
        count += 1;
        let body = json!({ "event": "order.updated", "data": { "id": format!("{n}-{count}") } });
        let response = app.emit(&body).await;
        match response.status().as_u16() {
            202 => {
                let at = Instant::now();
                let answer: serde_json::Value = response.json().await.expect("json");
                let id = answer["id"].as_str().expect("id").to_owned();
                acks.lock().expect("acks").push(Ack { id, at });
            }
            503 | 504 => {
                refused.fetch_add(1, Ordering::Relaxed);
            }
            other => panic!("unexpected {other} during the storm"),
        }
    }
}

/// The `product.updated` id that ends a storm test: every tab reads until it.
const MARKER: &str = "marker";

/// What a tab received: the storm's event ids, and the reason of every `resync`.
#[derive(Default)]
struct Received {
    delivered: HashSet<String>,
    resyncs: Vec<String>,
}

/// One tab, read on a task of its own until the [`MARKER`].
struct Tab {
    name: String,
    received: Arc<Mutex<Received>>,
    reader: tokio::task::JoinHandle<()>,
}

/// A WebSocket and an SSE tab on every instance, each read as events arrive (a tab that fell
/// behind the storm would earn a `resync{lagged}`).
pub struct Tabs(Vec<Tab>);

impl Tabs {
    pub async fn open(apps: &[Arc<TestApp>]) -> Self {
        let mut tabs = Vec::new();
        for (n, app) in apps.iter().enumerate() {
            for transport in BOTH {
                let mut tab = app.subscribe(transport, "").await;
                tab.ready().await;
                let name = format!("instance {n} {transport:?}");
                let received = Arc::new(Mutex::new(Received::default()));
                let reader = tokio::spawn(receive(name.clone(), tab, Arc::clone(&received)));
                tabs.push(Tab {
                    name,
                    received,
                    reader,
                });
            }
        }
        Self(tabs)
    }

    /// Waits until every tab was told to resync.
    pub async fn resynced(&self) {
        eventually("every tab to be told to resync", || async {
            self.0
                .iter()
                .all(|tab| !tab.received.lock().expect("received").resyncs.is_empty())
        })
        .await;
    }

    /// Ends every tab with a marker emitted through `app`, and checks that each one got every
    /// `acknowledged` event or was told to refetch: never silence. The new master may lack what
    /// the old one acknowledged, so one failover tells every tab `resync{restart}`, and only once.
    pub async fn assert_every_tab_resynced_once(
        self,
        app: &TestApp,
        acknowledged: &HashSet<String>,
        label: &str,
    ) {
        // A reload under way takes a marker into the history with its resync instead of
        // delivering it live: markers until every tab has read one.
        let deadline = Instant::now() + WAIT;
        while !self.0.iter().all(|tab| tab.reader.is_finished()) {
            assert!(
                Instant::now() < deadline,
                "{label}: a tab never got a marker"
            );
            app.emit_product(MARKER).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for Tab {
            name,
            received,
            reader,
        } in self.0
        {
            reader.await.expect("the tab's reader");
            let Received { delivered, resyncs } =
                std::mem::take(&mut *received.lock().expect("received"));
            let missing = acknowledged.difference(&delivered).count();
            eprintln!(
                "{label}, {name}: delivered {}, missing {missing}, resyncs {resyncs:?}",
                delivered.len()
            );
            assert_eq!(
                resyncs,
                ["restart"],
                "{label}, {name}: one failover, one resync"
            );
        }
    }
}

/// Reads `tab` into `received` until the [`MARKER`] event.
async fn receive(name: String, mut tab: Subscriber, received: Arc<Mutex<Received>>) {
    loop {
        let message = tab.next().await.expect("the tab stays connected");
        let mut received = received.lock().expect("received");
        match message.event.as_str() {
            "resync" => received
                .resyncs
                .push(message.data["reason"].as_str().unwrap_or("?").to_owned()),
            "order.updated" => {
                let id = message.id.expect("an event");
                assert!(received.delivered.insert(id.clone()), "{name}: {id} twice");
            }
            _ if message.data["id"] == MARKER => return,
            _ => {}
        }
    }
}

/// Emits through `app` until the new master acknowledges one (a promoted replica takes the node
/// timeout and a vote, or the sentinels' down-after and theirs); meanwhile every refusal must
/// be a plain `503`/`504`.
pub async fn emit_until_acknowledged(app: &TestApp) {
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "emits did not recover after the failover"
        );
        let response = app
            .emit(&json!({ "event": "product.updated", "data": { "id": "after" } }))
            .await;
        if response.status() == 202 {
            return;
        }
        assert!(
            [503, 504].contains(&response.status().as_u16()),
            "an emit during the failover is refused plainly: {response:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Emits through `app` until `tab` gets one as an event. Until the new master has settled, a
/// reload (its id may change once more) can take an event into the history with a `resync`
/// instead, so it may take more than one.
pub async fn delivered_again(app: &TestApp, tab: &mut Subscriber) {
    let deadline = Instant::now() + WAIT;
    for attempt in 0.. {
        assert!(Instant::now() < deadline, "emits are not delivered again");
        let live = app.emit_product(&format!("live-{attempt}")).await;
        while let Ok(message) = tokio::time::timeout(Duration::from_millis(500), tab.next()).await {
            let message = message.expect("still open");
            if message.id.as_ref() == Some(&live) {
                return;
            }
            assert!(
                message.event == "resync" || message.event == "product.updated",
                "unexpected {message:?}"
            );
        }
    }
}
