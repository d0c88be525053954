//! The hub's resume and catch-up logic, against the in-memory broker. A relay between broker and
//! hub lets a test hold a notice back, to resume from an id the hub has not taken in yet.

use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::{
    broker::memory::MemoryBroker, catalog::Catalog, idempotency::IdempotencyKey,
    idempotency::MemoryAnswers,
};

fn pending(n: usize) -> Vec<PendingEvent> {
    let catalog = Catalog::new(&[], 100, 100);
    let body = format!(
        "[{}]",
        vec![r#"{"event":"product.updated","data":{"id":"p"}}"#; n].join(",")
    );
    catalog
        .parse_body(body.as_bytes())
        .expect("valid batch")
        .events
}

fn memory_broker() -> (Broker, Notices) {
    let (broker, notices) = MemoryBroker::new(MemoryAnswers::new(Duration::from_secs(60), 100));
    (Broker::Memory(broker), notices)
}

fn memory_hub(history: usize, buffer: usize) -> Hub {
    let (broker, notices) = memory_broker();
    Hub::start(broker, notices, history, buffer)
}

/// A hub whose notices pass through the returned relay: nothing reaches it until forwarded.
fn relayed_hub() -> (Hub, Notices, mpsc::Sender<Notice>) {
    let (broker, from_broker) = memory_broker();
    let (to_hub, relayed) = mpsc::channel(16);
    (Hub::start(broker, relayed, 10, 16), from_broker, to_hub)
}

/// Publishes one event through a [`relayed_hub`] and hands its notice on to the hub.
async fn publish_relayed(
    hub: &Hub,
    from_broker: &mut Notices,
    to_hub: &mpsc::Sender<Notice>,
) -> Vec<EventId> {
    let ids = hub
        .publish(pending(1), PublishOptions::default())
        .await
        .expect("published")
        .ids;
    to_hub
        .send(from_broker.recv().await.expect("notice"))
        .await
        .expect("hub runs");
    ids
}

/// Publishes `n` events and returns their ids once the hub has taken them in.
async fn publish(hub: &Hub, n: usize) -> Vec<EventId> {
    let ids = hub
        .publish(pending(n), PublishOptions::default())
        .await
        .expect("memory never fails")
        .ids;
    let last = *ids.last().expect("at least one");
    let mut head = hub.inner.head.subscribe();
    head.wait_for(|head| *head >= last).await.expect("hub runs");
    ids
}

fn replayed(sub: &Subscription) -> Vec<EventId> {
    match &sub.start {
        Start::Replay(events) => events.iter().map(|e| e.id).collect(),
        other => panic!("expected a replay, got {other:?}"),
    }
}

async fn next_event(sub: &mut Subscription) -> EventId {
    match sub.receiver.recv().await.expect("open") {
        HubMessage::Event(event) => event.id,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn resume_replays_exactly_what_followed_the_id() {
    let hub = memory_hub(10, 16);
    let ids = publish(&hub, 5).await;
    let sub = hub.subscribe(Some(&ids[1].to_string())).await;
    assert_eq!(replayed(&sub), ids[2..]);
    assert_eq!(sub.resume_point, ids[1]);
}

#[tokio::test]
async fn the_ready_id_of_an_empty_hub_resumes_everything() {
    let hub = memory_hub(10, 16);
    let before = hub.subscribe(None).await.resume_point;
    let ids = publish(&hub, 3).await;
    assert_eq!(
        replayed(&hub.subscribe(Some(&before.to_string())).await),
        ids
    );
}

#[tokio::test]
async fn ids_outside_the_window_are_gaps() {
    let hub = memory_hub(3, 16);
    let ids = publish(&hub, 6).await;
    // The window holds ids[3..]; ids[2] is its floor and still resumable.
    assert_eq!(
        replayed(&hub.subscribe(Some(&ids[2].to_string())).await),
        ids[3..]
    );
    for gone in [
        ids[1].to_string(),
        "1-1".into(),
        "junk".into(),
        "99999999999999-1".into(),
    ] {
        assert!(
            matches!(hub.subscribe(Some(&gone)).await.start, Start::Gap),
            "{gone}"
        );
    }
}

#[tokio::test]
async fn live_events_continue_exactly_where_the_replay_ends() {
    let hub = memory_hub(100, 16);
    let first = publish(&hub, 2).await;
    let mut sub = hub.subscribe(Some(&first[0].to_string())).await;
    let later = publish(&hub, 2).await;
    assert_eq!(replayed(&sub), first[1..]);
    for id in later {
        assert_eq!(next_event(&mut sub).await, id);
    }
}

#[tokio::test]
async fn a_resume_from_an_id_still_on_its_way_waits_for_it_instead_of_a_gap() {
    let (hub, mut from_broker, to_hub) = relayed_hub();
    let ids = hub
        .publish(pending(3), PublishOptions::default())
        .await
        .expect("published")
        .ids;
    let resume = ids[0].to_string();
    let subscribing = hub.subscribe(Some(&resume));
    let mut subscribing = std::pin::pin!(subscribing);
    assert!(
        subscribing.as_mut().now_or_never().is_none(),
        "waits for the id to arrive"
    );
    let notice = from_broker.recv().await.expect("the publish's notice");
    to_hub.send(notice).await.expect("hub runs");
    assert_eq!(replayed(&subscribing.await), ids[1..]);
}

#[tokio::test]
async fn an_id_the_broker_never_issued_is_a_gap_without_waiting() {
    let hub = memory_hub(10, 16);
    let ids = publish(&hub, 1).await;
    let unissued = EventId::new(ids[0].ms, ids[0].seq + 100).to_string();
    let sub = hub
        .subscribe(Some(&unissued))
        .now_or_never()
        .expect("answers at once");
    assert!(matches!(sub.start, Start::Gap));
}

#[tokio::test]
async fn a_reset_replaces_the_history_and_tells_live_subscribers_to_resync() {
    let (hub, mut from_broker, to_hub) = relayed_hub();
    let old = publish_relayed(&hub, &mut from_broker, &to_hub).await;
    let mut live = hub.subscribe(Some(&old[0].to_string())).await;

    let floor = EventId::new(old[0].ms + 1, 0);
    let reloaded = EventId::new(old[0].ms + 1, 1);
    let (applied, done) = oneshot::channel();
    let events = pending(1)
        .into_iter()
        .map(|event| Committed {
            id: reloaded,
            event,
        })
        .collect();
    let reset = Notice::Reset {
        floor,
        events,
        reason: Some(ResyncReason::Restart),
        applied,
    };
    to_hub.send(reset).await.expect("hub runs");
    done.await.expect("the hub applied it");

    assert!(matches!(
        live.receiver.recv().await,
        Ok(HubMessage::Reset(ResyncReason::Restart))
    ));
    assert!(matches!(
        hub.subscribe(Some(&old[0].to_string())).await.start,
        Start::Gap
    ));
    assert_eq!(
        replayed(&hub.subscribe(Some(&floor.to_string())).await),
        [reloaded]
    );
}

#[tokio::test]
async fn re_read_events_are_taken_in_once() {
    let (hub, mut from_broker, to_hub) = relayed_hub();
    let mut sub = hub.subscribe(None).await;
    let ids = hub
        .publish(pending(2), PublishOptions::default())
        .await
        .expect("published")
        .ids;
    let Some(Notice::Committed(committed)) = from_broker.recv().await else {
        panic!("expected the committed events");
    };
    let again = committed
        .iter()
        .map(|c| Committed {
            id: c.id,
            event: c.event.clone(),
        })
        .collect();
    to_hub
        .send(Notice::Committed(committed))
        .await
        .expect("hub runs");
    to_hub
        .send(Notice::Committed(again))
        .await
        .expect("hub runs");
    let later = publish_relayed(&hub, &mut from_broker, &to_hub).await;
    for id in ids.iter().chain(&later) {
        assert_eq!(next_event(&mut sub).await, *id);
    }
}

#[tokio::test]
async fn a_repeated_idempotency_key_publishes_once_and_returns_the_first_ids() {
    let hub = memory_hub(10, 16);
    let mut sub = hub.subscribe(None).await;
    let keyed = || PublishOptions {
        idempotency_key: Some(IdempotencyKey::parse(b"order_1-placed").expect("valid")),
    };
    let first = hub.publish(pending(2), keyed()).await.expect("published");
    let repeat = hub.publish(pending(2), keyed()).await.expect("answered");
    assert!(first.appended);
    assert_eq!(
        repeat,
        Published {
            ids: first.ids.clone(),
            appended: false
        }
    );
    let after = publish(&hub, 1).await;
    for id in first.ids.iter().chain(&after) {
        assert_eq!(next_event(&mut sub).await, *id);
    }
}

/// Runs `test` where connections live: on a thread with a `LocalSet`, as actix's workers are.
async fn on_a_worker<F: Future<Output = ()>>(test: F) {
    tokio::task::LocalSet::new().run_until(test).await;
}

#[tokio::test]
async fn a_waiting_live_feed_is_woken_for_the_next_event() {
    on_a_worker(async {
        let hub = memory_hub(10, 16);
        let mut live = hub.live(hub.subscribe(None).await.receiver);
        let waiting = std::future::poll_fn(|cx| live.poll_recv(cx));
        let publish = async {
            tokio::task::yield_now().await;
            hub.publish(pending(1), PublishOptions::default())
                .await
                .expect("published");
        };
        let (message, ()) = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::join!(waiting, publish)
        })
        .await
        .expect("the doorbell woke the feed");
        assert!(matches!(message, Some(Ok(HubMessage::Event(_)))));
    })
    .await;
}

#[tokio::test]
async fn a_dropped_live_feed_lets_go_of_its_waker_at_once() {
    struct Counted;
    impl std::task::Wake for Counted {
        fn wake(self: Arc<Self>) {}
    }
    on_a_worker(async {
        let hub = memory_hub(10, 16);
        let mut live = hub.live(hub.subscribe(None).await.receiver);
        let counted = Arc::new(Counted);
        let waker = std::task::Waker::from(Arc::clone(&counted));
        let pending = live.poll_recv(&mut std::task::Context::from_waker(&waker));
        assert!(pending.is_pending());
        drop(waker);
        assert_eq!(
            Arc::strong_count(&counted),
            2,
            "the doorbell holds the waker"
        );
        drop(live);
        assert_eq!(
            Arc::strong_count(&counted),
            1,
            "a closed feed's waker waits for no ring"
        );
    })
    .await;
}
