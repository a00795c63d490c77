//! The bounded event queue: what happened to modules, links and hooks, in order, for tools.
//!
//! The queue never grows: its room is allocated once. When it is full the oldest event is kept
//! and the new one is counted as lost, so a slow reader sees a gap it can measure, never a stall of
//! the filter.

use alloc::collections::VecDeque;

use crate::hal::{Memory, ModuleId, OutOfMemory, Pool, Timestamp};
use crate::hook::{HookId, HookName};
use crate::link::LinkSummary;
use crate::module::ModuleKind;

/// Something that happened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// A filter module attached to an adapter.
    ModuleAttached {
        /// The new module.
        module: ModuleId,
        /// What it attached to.
        kind: ModuleKind,
    },
    /// A filter module finished pausing.
    ModulePaused(ModuleId),
    /// A filter module restarted.
    ModuleRestarted(ModuleId),
    /// A filter module detached; `links_dropped` links were still up.
    ModuleDetached {
        /// The module.
        module: ModuleId,
        /// Links that were still in its table.
        links_dropped: usize,
    },
    /// A WAN link came up.
    LineUp(LinkSummary),
    /// A live WAN link was updated: by another line up, or by its final local address, learned
    /// from its first send when the protocol above answered its line up late.
    LineUpdated(LinkSummary),
    /// A WAN link went down.
    LineDown(LinkSummary),
    /// A hook was added to the chain.
    HookAdded {
        /// Its identity.
        id: HookId,
        /// Its name.
        name: HookName,
        /// Its altitude.
        altitude: u32,
    },
    /// A hook was removed from the chain.
    HookRemoved {
        /// Its identity.
        id: HookId,
        /// Its name.
        name: HookName,
    },
    /// The rule set was replaced (through the control device, or loaded at start).
    RulesReplaced {
        /// The new set's version.
        version: u64,
        /// Its altitude.
        altitude: u32,
        /// Rules in it.
        rules: u32,
    },
    /// The saved rule set was refused at start; the engine runs with no rules.
    RulesRefused {
        /// The loader's error code (`wanlayer_rules::LoadError::code`).
        error: u32,
        /// The altitude saved with it.
        altitude: u32,
        /// Bytes of the refused set.
        blob_len: u32,
    },
}

/// An event with its sequence number and time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EventRecord {
    /// Position in the engine's history, counting lost events too: a gap means events were lost.
    pub sequence: u64,
    /// When it happened.
    pub time: Timestamp,
    /// What happened.
    pub event: Event,
}

/// A fixed-size queue of events with a lost-event counter.
#[derive(Debug)]
pub struct EventQueue {
    records: VecDeque<EventRecord>,
    capacity: usize,
    next_sequence: u64,
    lost: u64,
}

impl EventQueue {
    /// A queue holding up to `capacity` events, charged to [`Pool::Event`].
    ///
    /// # Errors
    /// [`OutOfMemory`] when the room cannot be allocated.
    pub fn new(memory: &impl Memory, capacity: usize) -> Result<Self, OutOfMemory> {
        let records = crate::memory::fixed_deque(memory, Pool::Event, capacity)?;
        Ok(Self { records, capacity, next_sequence: 0, lost: 0 })
    }

    /// Releases the queue's room; the queue holds nothing afterwards.
    pub fn release(&mut self, memory: &impl Memory) {
        memory.release(Pool::Event, self.capacity * core::mem::size_of::<EventRecord>());
        self.records = VecDeque::new();
        self.capacity = 0;
    }

    /// Appends an event under the next sequence number, or counts it lost when the queue is full.
    /// Returns the sequence number it was given either way.
    pub fn push(&mut self, time: Timestamp, event: Event) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.push_record(EventRecord { sequence, time, event });
        sequence
    }

    /// Appends a record numbered elsewhere (a subscriber's copy of the engine's event), or counts
    /// it lost when the queue is full.
    pub fn push_record(&mut self, record: EventRecord) {
        if self.records.len() >= self.capacity {
            self.lost += 1;
            return;
        }
        if crate::memory::push_back_within_capacity(&mut self.records, record).is_err() {
            self.lost += 1;
        }
    }

    /// The sequence number [`push`](Self::push) gives next.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Events the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes the oldest event.
    pub fn pop(&mut self) -> Option<EventRecord> {
        self.records.pop_front()
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no event waits.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Events lost because the queue was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Budget;


    #[test]
    fn a_full_queue_counts_losses_and_sequence_numbers_show_the_gap() {
        let memory = Budget::new(1 << 20);
        let mut queue = EventQueue::new(&memory, 2).unwrap();
        for n in 0..5 {
            queue.push(Timestamp(n), Event::ModulePaused(ModuleId(1)));
        }
        assert_eq!(queue.lost(), 3);
        assert_eq!(queue.pop().unwrap().sequence, 0);
        assert_eq!(queue.pop().unwrap().sequence, 1);
        assert!(queue.pop().is_none());
        queue.push(Timestamp(9), Event::ModuleRestarted(ModuleId(1)));
        assert_eq!(queue.pop().unwrap().sequence, 5, "the gap 2..5 shows three lost events");
    }

    #[test]
    fn the_queue_charges_its_room_and_gives_it_back() {
        let memory = Budget::new(1 << 20);
        let mut queue = EventQueue::new(&memory, 64).unwrap();
        assert!(memory.left() < 1 << 20);
        queue.release(&memory);
        assert_eq!(memory.left(), 1 << 20);
        queue.push(Timestamp(1), Event::ModulePaused(ModuleId(1)));
        assert_eq!((queue.len(), queue.lost()), (0, 1), "a released queue keeps nothing");
    }

    #[test]
    fn a_refused_allocation_is_an_error_not_a_panic() {
        let memory = Budget::new(10);
        assert_eq!(EventQueue::new(&memory, 64).unwrap_err(), OutOfMemory);
        assert_eq!(memory.left(), 10);
    }
}
