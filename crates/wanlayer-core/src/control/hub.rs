//! The event hub: every event the engine publishes fans out to each subscriber's own bounded
//! ring. A slow subscriber loses (and counts) only its own events; nobody else's, and never the
//! engine's time.

use core::mem::size_of;

use wanlayer_proto::{
    hook_id, EventBatch, EventBatchRepr, EventBody, EventKind, EventRecord as WireRecord, EventRecordRepr, HookName, LinkEventRepr, Status,
};

use super::MAX_SUBSCRIBERS;
use crate::event::{Event, EventQueue, EventRecord};
use crate::hal::{Memory, Pool};
use crate::link::LinkSummary;

/// Generations stay below `0x8000`, so an identity never collides with a binding's markers.
const GENERATION_MASK: u16 = 0x7fff;

/// One subscriber's ring.
struct Subscriber {
    token: u64,
    mask: u32,
    /// A read went pending on an empty ring: wake the platform at the next event.
    waiting: bool,
    queue: EventQueue,
}

#[derive(Default)]
struct Slot {
    generation: u16,
    subscriber: Option<Subscriber>,
}

/// Tokens to wake once the hub's lock is released.
pub(crate) struct WakeList {
    tokens: [u64; MAX_SUBSCRIBERS],
    len: usize,
}

impl WakeList {
    fn push(&mut self, token: u64) {
        if let Some(place) = self.tokens.get_mut(self.len) {
            *place = token;
            self.len += 1;
        }
    }

    /// The tokens.
    pub(crate) fn as_slice(&self) -> &[u64] {
        &self.tokens[..self.len]
    }
}

/// What a read found.
pub(crate) enum Read {
    /// Bytes written: an event batch (possibly of zero records).
    Written(usize),
    /// Nothing to read and the caller may wait: the subscriber now waits for the next event.
    Pending,
}

/// Every subscriber. The slot table is allocated (and charged to [`Pool::Event`]) at the first
/// subscription and kept until the engine goes.
#[derive(Default)]
pub(crate) struct EventHub {
    slots: alloc::vec::Vec<Slot>,
}

impl EventHub {
    fn table_bytes() -> usize {
        MAX_SUBSCRIBERS * size_of::<Slot>()
    }

    fn slot_of(&mut self, id: u32) -> Option<&mut Subscriber> {
        let slot = self.slots.get_mut(usize::from(id as u16))?;
        if u32::from(slot.generation) != id >> 16 {
            return None;
        }
        slot.subscriber.as_mut()
    }

    /// Adds a subscriber with a ring of `capacity` records; returns its identity.
    pub(crate) fn subscribe(&mut self, memory: &impl Memory, token: u64, capacity: usize, mask: u32) -> Result<u32, Status> {
        if self.slots.is_empty() {
            memory.try_charge(Pool::Event, Self::table_bytes()).map_err(|_| Status::InsufficientResources)?;
            if self.slots.try_reserve_exact(MAX_SUBSCRIBERS).is_err() {
                memory.release(Pool::Event, Self::table_bytes());
                return Err(Status::InsufficientResources);
            }
            crate::memory::fill_within_capacity(&mut self.slots, MAX_SUBSCRIBERS, Slot::default).map_err(|_| Status::InsufficientResources)?;
        }
        let (index, slot) = self.slots.iter_mut().enumerate().find(|(_, slot)| slot.subscriber.is_none()).ok_or(Status::TooManySessions)?;
        let queue = EventQueue::new(memory, capacity).map_err(|_| Status::InsufficientResources)?;
        slot.generation = (slot.generation.wrapping_add(1) & GENERATION_MASK).max(1);
        slot.subscriber = Some(Subscriber { token, mask, waiting: false, queue });
        Ok(u32::from(slot.generation) << 16 | index as u32)
    }

    /// Removes a subscriber and frees its ring; returns its token.
    pub(crate) fn unsubscribe(&mut self, memory: &impl Memory, id: u32) -> Option<u64> {
        let slot = self.slots.get_mut(usize::from(id as u16)).filter(|slot| u32::from(slot.generation) == id >> 16)?;
        let mut subscriber = slot.subscriber.take()?;
        subscriber.queue.release(memory);
        Some(subscriber.token)
    }

    /// Subscribers right now.
    pub(crate) fn subscribers(&self) -> usize {
        self.slots.iter().filter(|slot| slot.subscriber.is_some()).count()
    }

    /// Copies `record` into every subscriber whose mask wants it; returns the subscribers that
    /// were waiting for it.
    pub(crate) fn publish(&mut self, record: &EventRecord) -> WakeList {
        let mut woken = WakeList { tokens: [0; MAX_SUBSCRIBERS], len: 0 };
        let bit = kind_of(&record.event).mask_bit();
        for subscriber in self.slots.iter_mut().filter_map(|slot| slot.subscriber.as_mut()) {
            if subscriber.mask & bit == 0 {
                continue;
            }
            subscriber.queue.push_record(*record);
            if core::mem::take(&mut subscriber.waiting) {
                woken.push(subscriber.token);
            }
        }
        woken
    }

    /// Writes up to `max` of the subscriber's oldest events into `out` as an event batch.
    pub(crate) fn read(&mut self, id: u32, max: usize, wait: bool, out: &mut [u8]) -> Result<Read, Status> {
        let subscriber = self.slot_of(id).ok_or(Status::InvalidDeviceState)?;
        let fits = EventBatchRepr::capacity_for(out.len());
        if fits == 0 {
            return Err(Status::BufferTooSmall);
        }
        if subscriber.queue.is_empty() && wait {
            subscriber.waiting = true;
            return Ok(Read::Pending);
        }
        let count = subscriber.queue.len().min(max).min(fits);
        let repr = EventBatchRepr { count: count as u32, lost: subscriber.queue.lost() };
        let written = repr.buffer_len();
        repr.emit(&mut EventBatch::new_unchecked(&mut out[..written])).map_err(|_| Status::BufferTooSmall)?;
        for index in 0..count {
            let Some(record) = subscriber.queue.pop() else { break };
            let at = EventBatchRepr::record_offset(index);
            to_wire(&record)
                .emit(&mut WireRecord::new_unchecked(&mut out[at..at + WireRecord::<&[u8]>::LEN]))
                .map_err(|_| Status::BufferTooSmall)?;
        }
        Ok(Read::Written(written))
    }

    /// Frees every ring and the table.
    pub(crate) fn release(&mut self, memory: &impl Memory) {
        if self.slots.is_empty() {
            return;
        }
        for slot in &mut self.slots {
            if let Some(mut subscriber) = slot.subscriber.take() {
                subscriber.queue.release(memory);
            }
        }
        self.slots = alloc::vec::Vec::new();
        memory.release(Pool::Event, Self::table_bytes());
    }
}

/// The on-wire kind of an event.
pub(crate) fn kind_of(event: &Event) -> EventKind {
    match event {
        Event::ModuleAttached { .. } => EventKind::ModuleAttached,
        Event::ModulePaused(_) => EventKind::ModulePaused,
        Event::ModuleRestarted(_) => EventKind::ModuleRestarted,
        Event::ModuleDetached { .. } => EventKind::ModuleDetached,
        Event::LineUp(_) => EventKind::LineUp,
        Event::LineUpdated(_) => EventKind::LineUpdated,
        Event::LineDown(_) => EventKind::LineDown,
        Event::HookAdded { .. } => EventKind::HookAdded,
        Event::HookRemoved { .. } => EventKind::HookRemoved,
        Event::RulesReplaced { .. } => EventKind::RulesReplaced,
        Event::RulesRefused { .. } => EventKind::RulesRefused,
    }
}

fn link_event(link: &LinkSummary) -> LinkEventRepr {
    LinkEventRepr {
        link_id: link.id.0,
        remote_address: link.remote_address.0,
        local_address: link.local_address.0,
        protocol_type: link.protocol_type.into(),
        link_speed_100bps: link.link_speed_100bps,
        maximum_total_size: link.maximum_total_size,
        reported_total_size: link.reported_total_size,
    }
}

/// An engine event as the wire carries it.
pub(crate) fn to_wire(record: &EventRecord) -> EventRecordRepr {
    let (module, body) = match record.event {
        Event::ModuleAttached { module, kind } => (module.0, EventBody::ModuleAttached { kind: super::queries::wire_kind(kind) }),
        Event::ModulePaused(module) => (module.0, EventBody::ModulePaused),
        Event::ModuleRestarted(module) => (module.0, EventBody::ModuleRestarted),
        Event::ModuleDetached { module, links_dropped } => (module.0, EventBody::ModuleDetached { links_dropped: links_dropped as u64 }),
        Event::LineUp(link) => (link.module.0, EventBody::LineUp(link_event(&link))),
        Event::LineUpdated(link) => (link.module.0, EventBody::LineUpdated(link_event(&link))),
        Event::LineDown(link) => (link.module.0, EventBody::LineDown(link_event(&link))),
        Event::HookAdded { id, name, altitude } => {
            (0, EventBody::HookAdded { id: hook_id(id.slot, id.generation), altitude, name: HookName::new(name.as_str()) })
        }
        Event::HookRemoved { id, name } => {
            (0, EventBody::HookRemoved { id: hook_id(id.slot, id.generation), name: HookName::new(name.as_str()) })
        }
        Event::RulesReplaced { version, altitude, rules } => (0, EventBody::RulesReplaced { version, altitude, rules }),
        Event::RulesRefused { error, altitude, blob_len } => (0, EventBody::RulesRefused { error, altitude, blob_len }),
    };
    EventRecordRepr { sequence: record.sequence, time_ns: record.time.0, module, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::{ModuleId, Timestamp};
    use crate::testing::Budget;


    fn record(sequence: u64, event: Event) -> EventRecord {
        EventRecord { sequence, time: Timestamp(sequence * 10), event }
    }

    fn read_all(hub: &mut EventHub, id: u32) -> (alloc::vec::Vec<u64>, u64) {
        let mut out = [0u8; 24 + 80 * 16];
        let Ok(Read::Written(len)) = hub.read(id, 16, false, &mut out) else { panic!("readable") };
        let view = EventBatch::new_unchecked(&out[..len]);
        let repr = EventBatchRepr::parse(&view).unwrap();
        (view.records().map(|r| r.unwrap().sequence).collect(), repr.lost)
    }

    #[test]
    fn subscribers_each_get_every_event_they_want_and_lose_only_their_own() {
        let memory = Budget::new(1 << 20);
        let mut hub = EventHub::default();
        let big = hub.subscribe(&memory, 1, 8, EventKind::ALL_MASK).unwrap();
        let small = hub.subscribe(&memory, 2, 2, EventKind::ALL_MASK).unwrap();
        let paused_only = hub.subscribe(&memory, 3, 8, EventKind::ModulePaused.mask_bit()).unwrap();
        for n in 0..4 {
            hub.publish(&record(n, Event::ModulePaused(ModuleId(1))));
            hub.publish(&record(n + 100, Event::ModuleRestarted(ModuleId(1))));
        }
        assert_eq!(read_all(&mut hub, big), (alloc::vec![0, 100, 1, 101, 2, 102, 3, 103], 0));
        assert_eq!(read_all(&mut hub, small), (alloc::vec![0, 100], 6));
        assert_eq!(read_all(&mut hub, paused_only), (alloc::vec![0, 1, 2, 3], 0));
        assert_eq!(hub.subscribers(), 3);
        for id in [big, small, paused_only] {
            assert!(hub.unsubscribe(&memory, id).is_some());
        }
        assert!(hub.unsubscribe(&memory, big).is_none(), "a stale identity is refused");
        hub.release(&memory);
        assert_eq!(memory.left(), 1 << 20, "every ring and the table are given back");
    }

    #[test]
    fn a_waiting_reader_is_woken_once_and_slots_run_out() {
        let memory = Budget::new(1 << 20);
        let mut hub = EventHub::default();
        let id = hub.subscribe(&memory, 42, 4, EventKind::ALL_MASK).unwrap();
        let mut out = [0u8; 200];
        assert!(matches!(hub.read(id, 4, true, &mut out), Ok(Read::Pending)));
        assert!(matches!(hub.read(id, 4, false, &mut out), Ok(Read::Written(24))), "a non-waiting read completes empty");
        assert_eq!(hub.read(id, 4, true, &mut out[..50]).err(), Some(Status::BufferTooSmall));
        assert_eq!(hub.publish(&record(1, Event::ModulePaused(ModuleId(1)))).as_slice(), &[42]);
        assert!(hub.publish(&record(2, Event::ModulePaused(ModuleId(1)))).as_slice().is_empty(), "woken once");
        let ids: alloc::vec::Vec<u32> = (1..MAX_SUBSCRIBERS).map(|n| hub.subscribe(&memory, n as u64, 1, 1).unwrap()).collect();
        assert_eq!(hub.subscribe(&memory, 99, 1, 1), Err(Status::TooManySessions));
        assert!(hub.unsubscribe(&memory, ids[0]).is_some());
        let again = hub.subscribe(&memory, 99, 1, 1).unwrap();
        assert_ne!(again, ids[0], "a reused slot has a new generation");
        assert_eq!(hub.read(ids[0], 1, false, &mut out).err(), Some(Status::InvalidDeviceState));
        hub.release(&memory);
        assert_eq!(memory.left(), 1 << 20);
    }

    #[test]
    fn no_memory_is_an_error_not_a_panic() {
        let memory = Budget::new(10);
        let mut hub = EventHub::default();
        assert_eq!(hub.subscribe(&memory, 1, 4, 1), Err(Status::InsufficientResources));
        let memory = Budget::new(EventHub::table_bytes());
        assert_eq!(hub.subscribe(&memory, 1, 4, 1), Err(Status::InsufficientResources), "the table fits, the ring does not");
        hub.release(&memory);
        assert_eq!(memory.left(), EventHub::table_bytes());
    }
}
