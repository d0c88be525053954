//! The bounded, id-ordered window of recent events that resumes replay from.

use std::{collections::VecDeque, sync::Arc};

use crate::protocol::{Event, EventId};

/// `floor` is the id just before the oldest held event: resuming from it replays the whole window.
/// Resuming from any id that is neither the floor nor held is a gap, which is what makes ids from an
/// earlier run, a wiped backplane or a rolled-over window safe: they are simply not found.
#[derive(Debug)]
pub(super) struct History {
    events: VecDeque<Arc<Event>>,
    floor: EventId,
    capacity: usize,
}

impl History {
    pub(super) fn new(floor: EventId, capacity: usize) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity.min(4096)),
            floor,
            capacity,
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(super) fn head(&self) -> EventId {
        self.events.back().map_or(self.floor, |e| e.id)
    }

    pub(super) fn push(&mut self, event: Arc<Event>) {
        if self.events.len() == self.capacity
            && let Some(oldest) = self.events.pop_front()
        {
            self.floor = oldest.id;
        }
        self.events.push_back(event);
    }

    /// The held event `id`, if it is held.
    pub(super) fn get(&self, id: EventId) -> Option<Arc<Event>> {
        let at = self.events.binary_search_by_key(&id, |e| e.id).ok()?;
        self.events.get(at).cloned()
    }

    /// Every held event after `id`, or `None` when the window cannot prove it holds them all.
    pub(super) fn after(&self, id: EventId) -> Option<Vec<Arc<Event>>> {
        let start = if id == self.floor {
            0
        } else {
            self.events.binary_search_by_key(&id, |e| e.id).ok()? + 1
        };
        Some(self.events.range(start..).cloned().collect())
    }
}
