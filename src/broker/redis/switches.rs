//! Following the sentinels' announcements of a new master (`+switch-master`), so that in Sentinel
//! mode an instance moves to the new master as soon as the sentinels name it. Without this it
//! would keep writing to the old master until Sentinel demotes it (seconds later, after a forced
//! failover about ten), and a failover loses every append acknowledged in between.
//!
//! Every sentinel is followed, not just one: the sentinel that leads a failover announces it at
//! once, the others only once they hear of it from each other. The first announcement of a new
//! address for our master makes the link forget the writer's connection and the reader reconnect,
//! and from then on the sentinel that made it is asked first when connecting: the others may still
//! name the old master, which claims the role until it is demoted. A subscription that drops is
//! renewed with backoff; everything ends with the shared shutdown token.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Link;

/// The channel on which a sentinel announces a new master:
/// `<master-name> <old-ip> <old-port> <new-ip> <new-port>`.
const CHANNEL: &str = "+switch-master";
/// How long subscribing to one sentinel may take: one that does not answer is tried again later.
const SUBSCRIBE_DEADLINE: Duration = Duration::from_secs(3);
/// Backoff between attempts to subscribe to one sentinel.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// In Sentinel mode, starts following every sentinel until `shutdown`; otherwise does nothing.
pub(super) fn follow(link: &Link, shutdown: &CancellationToken) {
    let Some(sentinel) = link.connector().sentinel() else {
        return;
    };
    // The address of the master last announced, so that the same switch heard from every
    // sentinel is acted on once.
    let announced = Arc::new(Mutex::new(None));
    let listeners: Vec<_> = (0..sentinel.count())
        .map(|index| {
            listen(
                link.clone(),
                index,
                Arc::clone(&announced),
                shutdown.clone(),
            )
        })
        .collect();
    tokio::spawn(futures_util::future::join_all(listeners));
}

/// Subscribes to the `index`th sentinel's announcements, and acts on those for our master.
async fn listen(
    link: Link,
    index: usize,
    announced: Arc<Mutex<Option<String>>>,
    shutdown: CancellationToken,
) {
    let Some(sentinel) = link.connector().sentinel() else {
        return;
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let subscribe =
            tokio::time::timeout(SUBSCRIBE_DEADLINE, sentinel.subscribe(index, CHANNEL));
        let subscribed = tokio::select! {
            () = shutdown.cancelled() => return,
            subscribed = subscribe => subscribed,
        };
        match subscribed {
            Ok(Ok(pubsub)) => {
                backoff = BACKOFF_MIN;
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = messages.next() => message,
                    };
                    let Some(message) = message else { break };
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    let Some(address) = new_master(&payload, sentinel.master()) else {
                        continue;
                    };
                    let first = {
                        let mut last = announced.lock().unwrap_or_else(|p| p.into_inner());
                        last.replace(address.clone()).as_ref() != Some(&address)
                    };
                    if first {
                        tracing::warn!(%address, "the sentinels named a new redis master");
                        sentinel.prefer(index);
                        link.master_switched();
                    }
                }
                tracing::debug!(sentinel = index, "lost the subscription to a sentinel");
            }
            Ok(Err(e)) => {
                tracing::debug!(sentinel = index, error = %e, "could not subscribe to a sentinel");
            }
            Err(_) => tracing::debug!(sentinel = index, "a sentinel did not answer in time"),
        }
        let pause = rand::random_range(backoff / 2..=backoff);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// The new master's `ip:port` when `payload` announces a switch of `master`.
fn new_master(payload: &str, master: &str) -> Option<String> {
    match payload.split_whitespace().collect::<Vec<_>>()[..] {
        [name, _, _, ip, port] if name == master => Some(format!("{ip}:{port}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::new_master;

    #[test]
    fn a_switch_of_our_master_names_its_new_address() {
        assert_eq!(
            new_master("pushmaster 10.0.0.1 6379 10.0.0.2 6380", "pushmaster"),
            Some("10.0.0.2:6380".to_owned())
        );
    }

    #[test]
    fn a_switch_of_another_master_or_a_garbled_one_is_ignored() {
        assert_eq!(
            new_master("other 10.0.0.1 6379 10.0.0.2 6380", "pushmaster"),
            None
        );
        assert_eq!(new_master("pushmaster 10.0.0.1 6379", "pushmaster"), None);
    }
}
