//! Packet capture: per-handle rings of fixed slots, filled from the data path.
//!
//! A frame is captured in three steps so that no lock is held while the platform's `read` runs:
//! the first [`CAPTURE_CHUNK`] bytes are read, then under the capture lock every matching session
//! claims a slot (or counts the frame dropped) and takes those bytes; the rest is read chunk by
//! chunk, each chunk stored under the lock into the claimed slots. A reader stops at the first
//! slot still being filled, so records come out whole and in order.

use core::mem::size_of;
use core::sync::atomic::Ordering;

use wanlayer_proto::{
    emit_capture_record_fixed, CaptureBatch, CaptureBatchRepr, CaptureRecord, Direction as WireDirection, RecordMeta, Status,
};

use super::MAX_CAPTURE_SESSIONS;
use crate::engine::Engine;
use crate::hal::{Hal, Lock, Memory, ModuleId, PacketIo, Pool};
use crate::hook::Direction;
use crate::link::LinkId;

/// Bytes of a frame read at a time while capturing (the data path's stack holds one chunk).
pub const CAPTURE_CHUNK: usize = 256;

const GENERATION_MASK: u16 = 0x7fff;

/// What a session captures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CaptureScope {
    /// Every frame of every module.
    All,
    /// Every frame of one module.
    Module(ModuleId),
    /// The frames of one link.
    Link(LinkId),
    /// The frames the rule set's `capture` rule with this id matched.
    Rule(u32),
}

impl CaptureScope {
    /// True when a session of this scope records `frame`: rule sessions record only what their
    /// rule captured, the others only what the data path saw (so a frame a rule captures is not
    /// recorded twice by an `All` session).
    fn matches(self, frame: &Frame) -> bool {
        match (self, frame.rule) {
            (CaptureScope::Rule(wanted), Some(rule)) => wanted == rule,
            (CaptureScope::Rule(_), None) | (_, Some(_)) => false,
            (CaptureScope::All, None) => true,
            (CaptureScope::Module(wanted), None) => wanted == frame.module,
            (CaptureScope::Link(wanted), None) => frame.link == Some(wanted),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotState {
    Free,
    Filling,
    Ready,
}

#[derive(Clone, Copy, Debug)]
struct RingSlot {
    state: SlotState,
    serial: u64,
    meta: RecordMeta,
    wanted: u32,
    filled: u32,
}

/// One capture: a ring of `slots` records of up to `snap_len` bytes.
struct Session {
    scope: CaptureScope,
    snap_len: usize,
    ring: alloc::vec::Vec<RingSlot>,
    data: alloc::vec::Vec<u8>,
    head: usize,
    used: usize,
    next_serial: u64,
    captured: u64,
    dropped: u64,
    truncated: u64,
    charged: usize,
}

#[derive(Default)]
struct Slot {
    generation: u16,
    session: Option<Session>,
}

/// A slot claimed for a frame being copied.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Claim {
    index: u16,
    generation: u16,
    slot: usize,
    serial: u64,
}

/// The facts of a frame being captured.
pub(crate) struct Frame {
    module: ModuleId,
    link: Option<LinkId>,
    direction: Direction,
    injected: bool,
    /// The capture rule that matched it, for frames a rule captures.
    rule: Option<u32>,
    len: usize,
    time_ns: u64,
}

/// Every capture session. The session table is allocated at the first capture.
#[derive(Default)]
pub(crate) struct CaptureHub {
    slots: alloc::vec::Vec<Slot>,
}

impl CaptureHub {
    fn table_bytes() -> usize {
        MAX_CAPTURE_SESSIONS * size_of::<Slot>()
    }

    fn session(&mut self, id: u32) -> Option<&mut Session> {
        let slot = self.slots.get_mut(usize::from(id as u16)).filter(|slot| u32::from(slot.generation) == id >> 16)?;
        slot.session.as_mut()
    }

    /// Starts a session; returns its identity.
    pub(crate) fn start(&mut self, memory: &impl Memory, scope: CaptureScope, snap_len: usize, slots: usize) -> Result<u32, Status> {
        if self.slots.is_empty() {
            memory.try_charge(Pool::Control, Self::table_bytes()).map_err(|_| Status::InsufficientResources)?;
            if self.slots.try_reserve_exact(MAX_CAPTURE_SESSIONS).is_err() {
                memory.release(Pool::Control, Self::table_bytes());
                return Err(Status::InsufficientResources);
            }
            crate::memory::fill_within_capacity(&mut self.slots, MAX_CAPTURE_SESSIONS, Slot::default).map_err(|_| Status::InsufficientResources)?;
        }
        let index = self.slots.iter().position(|slot| slot.session.is_none()).ok_or(Status::TooManySessions)?;
        let data_len = slots.checked_mul(snap_len).ok_or(Status::InvalidParameter)?;
        let charged = data_len + slots * size_of::<RingSlot>();
        memory.try_charge(Pool::Control, charged).map_err(|_| Status::InsufficientResources)?;
        let mut ring = alloc::vec::Vec::new();
        let mut data = alloc::vec::Vec::new();
        if ring.try_reserve_exact(slots).is_err() || data.try_reserve_exact(data_len).is_err() {
            memory.release(Pool::Control, charged);
            return Err(Status::InsufficientResources);
        }
        let free = RingSlot {
            state: SlotState::Free,
            serial: 0,
            meta: RecordMeta { module: 0, link_id: 0, time_ns: 0, original_len: 0, direction: WireDirection::Send, injected: false },
            wanted: 0,
            filled: 0,
        };
        // Within the capacity reserved above.
        if crate::memory::fill_within_capacity(&mut ring, slots, || free).is_err()
            || crate::memory::fill_within_capacity(&mut data, data_len, || 0).is_err()
        {
            memory.release(Pool::Control, charged);
            return Err(Status::InsufficientResources);
        }
        let slot = &mut self.slots[index];
        slot.generation = (slot.generation.wrapping_add(1) & GENERATION_MASK).max(1);
        slot.session =
            Some(Session { scope, snap_len, ring, data, head: 0, used: 0, next_serial: 1, captured: 0, dropped: 0, truncated: 0, charged });
        Ok(u32::from(slot.generation) << 16 | index as u32)
    }

    /// Sessions running.
    pub(crate) fn sessions(&self) -> usize {
        self.slots.iter().filter(|slot| slot.session.is_some()).count()
    }

    /// Stops a session and frees its ring; false for a stale identity.
    pub(crate) fn stop(&mut self, memory: &impl Memory, id: u32) -> bool {
        let Some(slot) = self.slots.get_mut(usize::from(id as u16)).filter(|slot| u32::from(slot.generation) == id >> 16) else {
            return false;
        };
        match slot.session.take() {
            Some(session) => {
                memory.release(Pool::Control, session.charged);
                true
            }
            None => false,
        }
    }

    /// Claims a slot in every session that wants `frame` and stores its first bytes; returns the
    /// most bytes any claim still wants.
    fn claim(&mut self, frame: &Frame, first: &[u8], claims: &mut [Option<Claim>; MAX_CAPTURE_SESSIONS]) -> usize {
        let mut wanted_max = 0;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let generation = slot.generation;
            let Some(session) = slot.session.as_mut().filter(|s| s.scope.matches(frame)) else { continue };
            if session.used == session.ring.len() {
                session.dropped += 1;
                continue;
            }
            let at = (session.head + session.used) % session.ring.len();
            session.used += 1;
            session.captured += 1;
            let wanted = frame.len.min(session.snap_len);
            if wanted < frame.len {
                session.truncated += 1;
            }
            let serial = session.next_serial;
            session.next_serial += 1;
            let stored = first.len().min(wanted);
            session.data[at * session.snap_len..at * session.snap_len + stored].copy_from_slice(&first[..stored]);
            session.ring[at] = RingSlot {
                state: if stored >= wanted { SlotState::Ready } else { SlotState::Filling },
                serial,
                meta: RecordMeta {
                    module: frame.module.0,
                    link_id: frame.link.map_or(0, |link| link.0),
                    time_ns: frame.time_ns,
                    original_len: u32::try_from(frame.len).unwrap_or(u32::MAX),
                    direction: match frame.direction {
                        Direction::Send => WireDirection::Send,
                        Direction::Receive => WireDirection::Receive,
                    },
                    injected: frame.injected,
                },
                wanted: wanted as u32,
                filled: stored as u32,
            };
            if stored < wanted {
                wanted_max = wanted_max.max(wanted);
                if let Some(place) = claims.get_mut(index) {
                    *place = Some(Claim { index: index as u16, generation, slot: at, serial });
                }
            }
        }
        wanted_max
    }

    /// The slot of a claim, if the session and the claim are still current.
    fn claimed(&mut self, claim: &Claim) -> Option<(&mut RingSlot, &mut [u8])> {
        let slot = self.slots.get_mut(usize::from(claim.index)).filter(|slot| slot.generation == claim.generation)?;
        let session = slot.session.as_mut()?;
        let snap_len = session.snap_len;
        let ring_slot = session.ring.get_mut(claim.slot).filter(|s| s.serial == claim.serial && s.state == SlotState::Filling)?;
        let data = session.data.get_mut(claim.slot * snap_len..(claim.slot + 1) * snap_len)?;
        Some((ring_slot, data))
    }

    /// Stores the bytes at `offset` of the frame into every claimed slot that still wants them.
    fn fill(&mut self, claims: &[Option<Claim>; MAX_CAPTURE_SESSIONS], offset: usize, chunk: &[u8]) {
        for claim in claims.iter().flatten() {
            let Some((slot, data)) = self.claimed(claim) else { continue };
            let wanted = slot.wanted as usize;
            let end = (offset + chunk.len()).min(wanted);
            if offset < end {
                data[offset..end].copy_from_slice(&chunk[..end - offset]);
                slot.filled = end as u32;
            }
            if slot.filled >= slot.wanted {
                slot.state = SlotState::Ready;
            }
        }
    }

    /// Closes every claim still filling (the frame was shorter than it said).
    fn finish(&mut self, claims: &[Option<Claim>; MAX_CAPTURE_SESSIONS]) {
        for claim in claims.iter().flatten() {
            if let Some((slot, _)) = self.claimed(claim) {
                slot.wanted = slot.filled;
                slot.state = SlotState::Ready;
            }
        }
    }

    /// Writes up to `max` of the session's oldest whole records into `out` as a capture batch.
    pub(crate) fn read(&mut self, id: u32, max: usize, out: &mut [u8]) -> Result<usize, Status> {
        let session = self.session(id).ok_or(Status::InvalidDeviceState)?;
        let prefix = CaptureBatch::<&[u8]>::LEN;
        if out.len() < prefix {
            return Err(Status::BufferTooSmall);
        }
        let mut at = prefix;
        let mut count = 0u32;
        while (count as usize) < max && session.used > 0 {
            let head = session.head;
            let slot = session.ring[head];
            if slot.state != SlotState::Ready {
                break;
            }
            let captured = slot.filled.min(slot.wanted) as usize;
            let len = wanlayer_proto::capture_record_len(captured, slot.meta.original_len).map_err(|_| Status::InvalidParameter)?;
            let Some(record) = out.get_mut(at..at + len) else {
                if count == 0 {
                    return Err(Status::BufferTooSmall);
                }
                break;
            };
            emit_capture_record_fixed(&mut CaptureRecord::new_unchecked(&mut *record), &slot.meta, captured)
                .map_err(|_| Status::BufferTooSmall)?;
            let data_at = CaptureRecord::<&[u8]>::LEN;
            record[data_at..data_at + captured].copy_from_slice(&session.data[head * session.snap_len..head * session.snap_len + captured]);
            session.ring[head].state = SlotState::Free;
            session.head = (head + 1) % session.ring.len();
            session.used -= 1;
            at += len;
            count += 1;
        }
        let repr = CaptureBatchRepr { count, captured: session.captured, dropped: session.dropped, truncated: session.truncated, size: at };
        repr.emit(&mut CaptureBatch::new_unchecked(&mut out[..at])).map_err(|_| Status::BufferTooSmall)?;
        Ok(at)
    }

    /// Frees every ring and the table.
    pub(crate) fn release(&mut self, memory: &impl Memory) {
        if self.slots.is_empty() {
            return;
        }
        for slot in &mut self.slots {
            if let Some(session) = slot.session.take() {
                memory.release(Pool::Control, session.charged);
            }
        }
        self.slots = alloc::vec::Vec::new();
        memory.release(Pool::Control, Self::table_bytes());
    }
}

impl<H: Hal> Engine<H> {
    /// Captures `packet` for the sessions that want it. Costs one relaxed atomic load when no
    /// capture runs.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`; no lock may be held (the platform's `read` is called).
    #[inline]
    pub(crate) fn capture(&self, module: ModuleId, link: Option<LinkId>, direction: Direction, packet: &H::Packet, injected: bool) {
        if self.control.capture_active.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.capture_copy(module, link, direction, packet, injected, None);
    }

    /// Captures `packet` for the sessions of the capture rule `rule` (the rule set matched it).
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`; no lock may be held.
    pub(crate) fn capture_for_rule(&self, module: ModuleId, link: LinkId, direction: Direction, packet: &H::Packet, rule: u32) {
        if self.control.capture_active.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.capture_copy(module, Some(link), direction, packet, false, Some(rule));
    }

    #[cold]
    #[inline(never)]
    fn capture_copy(
        &self,
        module: ModuleId,
        link: Option<LinkId>,
        direction: Direction,
        packet: &H::Packet,
        injected: bool,
        rule: Option<u32>,
    ) {
        let hal = &self.hal;
        let len = PacketIo::frame_len(hal, packet);
        let mut chunk = [0u8; CAPTURE_CHUNK];
        let first = PacketIo::read(hal, packet, 0, &mut chunk);
        let frame = Frame { module, link, direction, injected, rule, len, time_ns: crate::hal::Clock::now(hal).0 };
        let mut claims = [None; MAX_CAPTURE_SESSIONS];
        let wanted = self.control.capture.with(|capture| capture.claim(&frame, &chunk[..first], &mut claims));
        if wanted == 0 {
            return;
        }
        let mut offset = first;
        while offset < wanted {
            let read = PacketIo::read(hal, packet, offset, &mut chunk);
            if read == 0 {
                break;
            }
            self.control.capture.with(|capture| capture.fill(&claims, offset, &chunk[..read]));
            offset += read;
        }
        if offset < wanted {
            self.control.capture.with(|capture| capture.finish(&claims));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Budget;
    use wanlayer_proto::CaptureRecordRepr;


    fn frame(len: usize, link: u64) -> Frame {
        Frame { module: ModuleId(0x0001_0000), link: Some(LinkId(link)), direction: Direction::Send, injected: false, rule: None, len, time_ns: 7 }
    }

    fn capture(hub: &mut CaptureHub, bytes: &[u8], link: u64) {
        let mut claims = [None; MAX_CAPTURE_SESSIONS];
        let f = frame(bytes.len(), link);
        let first = bytes.len().min(CAPTURE_CHUNK);
        let wanted = hub.claim(&f, &bytes[..first], &mut claims);
        let mut offset = first;
        while offset < wanted {
            let end = (offset + CAPTURE_CHUNK).min(bytes.len());
            hub.fill(&claims, offset, &bytes[offset..end]);
            offset = end;
        }
    }

    fn records(hub: &mut CaptureHub, id: u32) -> (alloc::vec::Vec<alloc::vec::Vec<u8>>, CaptureBatchRepr) {
        let mut out = alloc::vec![0u8; 1 << 16];
        let len = hub.read(id, 100, &mut out).unwrap();
        let view = CaptureBatch::new_unchecked(&out[..len]);
        let repr = CaptureBatchRepr::parse(&view).unwrap();
        let data = view.records().map(|r| r.map(|r: CaptureRecordRepr<'_>| r.data.to_vec()).unwrap()).collect();
        (data, repr)
    }

    #[test]
    fn frames_are_cut_to_the_snap_length_and_a_full_ring_counts_drops() {
        let memory = Budget::new(1 << 20);
        let mut hub = CaptureHub::default();
        let id = hub.start(&memory, CaptureScope::Link(LinkId(3)), 600, 2).unwrap();
        let big: alloc::vec::Vec<u8> = (0..1000u32).map(|n| n as u8).collect();
        capture(&mut hub, &big, 3);
        capture(&mut hub, &[1, 2, 3], 3);
        capture(&mut hub, &[4, 5, 6], 3);
        capture(&mut hub, &[9; 10], 4);
        let (data, repr) = records(&mut hub, id);
        assert_eq!(data, [big[..600].to_vec(), alloc::vec![1, 2, 3]]);
        assert_eq!((repr.captured, repr.dropped, repr.truncated), (2, 1, 1), "the third frame found the ring full; link 4 is not wanted");
        capture(&mut hub, &[7, 8], 3);
        assert_eq!(records(&mut hub, id).0, [alloc::vec![7, 8]], "reading made room");
        assert!(hub.stop(&memory, id));
        assert!(!hub.stop(&memory, id));
        hub.release(&memory);
        assert_eq!(memory.left(), 1 << 20);
    }

    #[test]
    fn a_slot_still_filling_holds_the_reader_back_and_stale_claims_are_ignored() {
        let memory = Budget::new(1 << 20);
        let mut hub = CaptureHub::default();
        let id = hub.start(&memory, CaptureScope::All, 512, 4).unwrap();
        let mut claims = [None; MAX_CAPTURE_SESSIONS];
        let wanted = hub.claim(&frame(500, 1), &[1; CAPTURE_CHUNK], &mut claims);
        assert_eq!(wanted, 500);
        assert_eq!(records(&mut hub, id).0.len(), 0, "a record being filled is not read");
        hub.fill(&claims, CAPTURE_CHUNK, &[2; CAPTURE_CHUNK]);
        assert_eq!(records(&mut hub, id).0[0].len(), 500);
        let wanted = hub.claim(&frame(500, 1), &[1; 10], &mut claims);
        assert_eq!(wanted, 500);
        hub.finish(&claims);
        assert_eq!(records(&mut hub, id).0[0].len(), 10, "a frame shorter than it said is closed at what was read");
        hub.stop(&memory, id);
        hub.fill(&claims, 10, &[3; 10]);
        assert_eq!(hub.read(id, 1, &mut [0u8; 64]), Err(Status::InvalidDeviceState));
        let mut small = [0u8; 8];
        let other = hub.start(&memory, CaptureScope::All, 64, 1).unwrap();
        assert_eq!(hub.read(other, 1, &mut small), Err(Status::BufferTooSmall));
        hub.release(&memory);
        assert_eq!(memory.left(), 1 << 20);
    }

    #[test]
    fn sessions_run_out_and_memory_failures_are_clean() {
        let memory = Budget::new(1 << 20);
        let mut hub = CaptureHub::default();
        let ids: alloc::vec::Vec<u32> = (0..MAX_CAPTURE_SESSIONS).map(|_| hub.start(&memory, CaptureScope::All, 16, 2).unwrap()).collect();
        assert_eq!(hub.start(&memory, CaptureScope::All, 16, 2), Err(Status::TooManySessions));
        let left = memory.left();
        hub.stop(&memory, ids[0]);
        assert_eq!(hub.start(&memory, CaptureScope::All, 1 << 20, 2), Err(Status::InsufficientResources));
        assert!(memory.left() > left, "a refused start keeps nothing");
        hub.release(&memory);
        assert_eq!(memory.left(), 1 << 20);
    }
}
