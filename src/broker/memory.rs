//! The in-memory broker: one process, ids `<boot ms>-<seq>`, history lost on restart.
//!
//! Numbering and queueing the notice happen under one async lock, so ids reach the hub in the
//! order they were given; the publisher is answered as soon as its notice is queued, and the hub
//! fans out afterwards, so an emit never waits for the fan-out. Ids carry the boot time, so an id
//! from an earlier run is recognisably foreign (clients resuming from one get `resync{gap}`).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, mpsc};

use super::{
    BrokerError, Committed, NOTICE_QUEUE, Notice, Notices, PublishOptions, Published, unix_ms,
};
use crate::{
    catalog::PendingEvent,
    idempotency::{Begin, MemoryAnswers},
    protocol::EventId,
};

#[derive(Debug)]
pub(crate) struct MemoryBroker {
    epoch: u64,
    writer: Mutex<Writer>,
    /// The highest sequence number handed out (its notice may still be on its way to the hub).
    issued: AtomicU64,
    answers: MemoryAnswers,
}

#[derive(Debug)]
struct Writer {
    seq: u64,
    notices: mpsc::Sender<Notice>,
}

impl MemoryBroker {
    pub(crate) fn new(answers: MemoryAnswers) -> (Self, Notices) {
        let (notices, receiver) = mpsc::channel(NOTICE_QUEUE);
        let broker = Self {
            epoch: unix_ms(),
            writer: Mutex::new(Writer { seq: 0, notices }),
            issued: AtomicU64::new(0),
            answers,
        };
        (broker, receiver)
    }

    pub(crate) fn floor(&self) -> EventId {
        EventId::new(self.epoch, 0)
    }

    /// Whether `id` was handed out by this broker.
    pub(crate) fn issued(&self, id: EventId) -> bool {
        id.ms == self.epoch && id.seq <= self.issued.load(Ordering::Acquire)
    }

    pub(crate) async fn publish(
        &self,
        events: Vec<PendingEvent>,
        options: PublishOptions,
    ) -> Result<Published, BrokerError> {
        let Some(key) = options.idempotency_key else {
            return self.append(events).await;
        };
        match self.answers.begin(&key) {
            Begin::Replay(ids) => Ok(Published {
                ids,
                appended: false,
            }),
            Begin::InProgress => Err(BrokerError::InProgress),
            Begin::First => {
                let outcome = self.append(events).await;
                match &outcome {
                    Ok(published) => self.answers.finish(&key, published.ids.clone()),
                    // Nothing was published: let a retry run.
                    Err(_) => self.answers.abandon(&key),
                }
                outcome
            }
        }
    }

    async fn append(&self, events: Vec<PendingEvent>) -> Result<Published, BrokerError> {
        let mut writer = self.writer.lock().await;
        let Writer { seq, notices } = &mut *writer;
        // Room first, numbers after: a publisher cancelled while waiting for room took no ids.
        let permit = notices.reserve().await.map_err(|_| BrokerError::Stopped)?;
        let committed: Vec<Committed> = events
            .into_iter()
            .map(|event| {
                *seq += 1;
                Committed {
                    id: EventId::new(self.epoch, *seq),
                    event,
                }
            })
            .collect();
        let ids = committed.iter().map(|c| c.id).collect();
        self.issued.store(*seq, Ordering::Release);
        permit.send(Notice::Committed(committed));
        Ok(Published {
            ids,
            appended: true,
        })
    }
}
