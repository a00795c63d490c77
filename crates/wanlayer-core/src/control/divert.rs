//! User-mode hooks: `DIVERT_OPEN`, `DIVERT_READ`, `DIVERT_VERDICTS` and `DIVERT_CLOSE`.
//!
//! A handle with write access makes itself a hook in the chain (a built-in entry, like the rule
//! set, so no adapter is allocated): a filter compiled in user mode by `wanlayer-rules` (the
//! packets its `divert` rules match are diverted), an altitude, directions, a queue length, a
//! time limit, a longest frame and a fail policy. Up to [`MAX_DIVERT_HOOKS`] at once.
//!
//! # Data path
//! For each packet the hook meets, the engine reads the first [`HEADER_BYTES`] onto the stack and,
//! under the hook's own lock (one per user-mode hook; no other hook's packets take it), asks the
//! filter. A match takes the packet ([`Verdict::Take`]): the whole frame is copied into a free
//! slot of the hook's queue, allocated in full when the hook opened (`queue_len × max_frame`
//! bytes, charged to [`Pool::Control`]), with its ticket, link, direction and the time. A pending
//! read is woken. A full queue or a frame over the longest frame gets the fail policy at once
//! (pass or drop) and is counted in `queue_full`.
//!
//! # Copy, not a shared ring or locked user pages
//! Each diverted frame is copied into the queue on the data path (the packet itself stays in the
//! engine's hands, held under its ticket, never exposed), and from there into the read's answer.
//! A shared ring mapped into the program would save the second copy, but its pages would have to
//! be unmapped from any context when the program crashes, and the program could change a frame
//! while the driver reads it (double fetch), so every verdict's frame would be copied out again
//! anyway. `METHOD_OUT_DIRECT` (the answer written into the caller's locked pages) would save the
//! I/O manager's copy of the bytes written from the system buffer back to the caller — one
//! `memcpy` per batch, at most [`MAX_READ_BATCH`] frames — at the price of a second dispatch
//! translation (separate input and output buffers, an MDL mapped at `DISPATCH_LEVEL` when a
//! pending read is dispatched again) beside the one every other code uses. The batch is what
//! removes the per-packet cost of a system call; `DIVERT_READ` stays `METHOD_BUFFERED`, and its
//! record format does not depend on where it is written, so moving it to `METHOD_OUT_DIRECT`
//! later changes only the code's method bits and the driver's translation (BENCHMARKS.md,
//! "Divert", has the costs measured).
//!
//! # Reads
//! A read delivers, oldest first, the queued packets the engine holds under their tickets (a
//! module lock per packet, taken under the hook's lock: the one order these two are nested in).
//! The data path queues a packet just before the engine stores it, so a packet on its way is
//! delivered by a later read, and one the engine released first (line down, pause, detach) is
//! never delivered: its entry expires. A waiting read pends only while the queue is empty; it may
//! complete with no packets when the ones queued are not held yet.
//!
//! # Verdicts
//! Each verdict names a ticket the handle's reads delivered: pass (the packet goes on along the
//! rest of the chain), drop, or replace (a new frame goes on in its place). A ticket this handle
//! does not hold (answered, expired, another handle's, never delivered) is refused and counted;
//! a ticket the engine released meanwhile (line down, pause, detach) is refused with the checks of
//! [`Engine::reinject_as`](crate::Engine::reinject_as) and counted the same way. A packet is
//! handed back exactly once: the queue entry is freed under the hook's lock before the engine is
//! called. A write's packets are handed on together (`Reinjection`): one chain per module and
//! direction, in the order of the verdicts.
//!
//! # Time limit and closing
//! Held packets older than the time limit get the fail policy: checked by the handle's verdicts
//! and its reads that do not wait, and by [`Control::divert_expire`] /
//! [`Control::divert_expire_in`], which a platform's timer calls (`wanlayer.sys` sets one only
//! while a hook holds packets: [`EventWaker::divert_holding`](super::EventWaker::divert_holding));
//! the data path, finding a packet past its time limit, tells the platform (at most once per
//! time limit) rather than handing packets on itself at an IRQL it cannot name to them. Closing (`DIVERT_CLOSE`,
//! or cleanup of a handle — a crashed program's too) first stops new takes, then gives every held
//! packet the fail policy, then removes the hook from the chain (which hands on anything taken in
//! the meantime).
//!
//! # IRQL
//! `DIVERT_OPEN` and `DIVERT_CLOSE`, and cleanup, run at `PASSIVE_LEVEL` (removal waits for calls
//! in progress); `DIVERT_READ` may be dispatched again at `DISPATCH_LEVEL` (the inverted call);
//! `DIVERT_VERDICTS` at `<= DISPATCH_LEVEL`.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::mem::size_of;
use core::sync::atomic::{AtomicU64, Ordering};

use wanlayer_proto::limits::{MAX_CAPTURE_BYTES, MAX_READ_BATCH};
use wanlayer_proto::{
    emit_divert_packet_fixed, hook_id, Direction as WireDirection, DivertAction, DivertBatch,
    DivertBatchRepr, DivertCounters, DivertInfo, DivertInfoRepr, DivertMeta, DivertOpen,
    DivertOpenRepr, DivertPacket, DivertResult, DivertResultRepr, DivertVerdictRepr,
    DivertVerdicts, DivertVerdictsRepr, FailPolicy, ReadRequestRepr, Status, DIVERT_RECEIVE,
    DIVERT_SEND,
};
use wanlayer_rules::{Action, PacketView, RuleSet, HEADER_BYTES};

use super::{Completion, Control, ControlHandle, CAPTURE_CHUNK};
use crate::datapath::{ChainSnapshot, Outbox, ReinjectError, ReinjectVerdict};
use crate::engine::Engine;
use crate::event::Event;
use crate::hal::{
    FrameSource, Hal, Level, Lock, Locking, Memory, ModuleId, PacketIo, PathContext, Pool,
    Timestamp,
};
use crate::hook::{Direction, HookId, HookName, PacketContext, Ticket, Verdict};
use crate::memory::{fixed_deque, new_map, reserve_map, try_box, HashMap};
use crate::module::{ModuleSlot, ModuleState};
use crate::stats::DropReason;
use crate::taken::{Held, Origin, Taken};

/// User-mode hooks that can be open at once.
pub const MAX_DIVERT_HOOKS: usize = 4;
/// The name user-mode hooks carry in the hook chain.
pub const DIVERT_HOOK_NAME: &str = "divert";

/// Tickets handled per lock acquisition while expiring or closing.
const RELEASE_BATCH: usize = 32;
/// Verdicts whose tickets are released per acquisition of the hook's lock.
const VERDICT_CHUNK: usize = 16;
const GENERATION_MASK: u16 = 0x7fff;
/// Marks a published hook identity in [`DivertState::ids`] (zero: none).
const PUBLISHED: u64 = 1 << 63;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotState {
    Free,
    /// Claimed by the data path, its frame being copied.
    Filling,
    /// Waiting to be read.
    Queued,
    /// Read, waiting for its verdict.
    Delivered,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    state: SlotState,
    meta: DivertMeta,
    len: u32,
}

/// What the data path's critical section decided about a packet the hook met.
enum Claim {
    /// Not taken: this verdict.
    Decided(Verdict),
    /// Taken into this slot, its frame still to be copied.
    Claimed(u32),
    /// Taken, copied and queued.
    Queued(Option<Queued>),
}

/// What queueing a taken packet decided, acted on once the hook's lock is released.
struct Queued {
    /// The data path's verdict: take, or the fail policy.
    verdict: Verdict,
    /// The token of a reader to wake.
    wake: Option<u64>,
    /// The hook held nothing before this packet (the platform's expiry timer is set).
    first_held: bool,
}

/// One open user-mode hook.
struct DivertHook {
    hook: HookId,
    token: u64,
    set: RuleSet,
    directions: u8,
    fail: Verdict,
    timeout_ns: u64,
    max_frame: usize,
    entries: Vec<Entry>,
    data: Vec<u8>,
    free: Vec<u32>,
    queued: VecDeque<u32>,
    by_serial: HashMap<u64, u32>,
    counters: DivertCounters,
    reader_waiting: bool,
    closing: bool,
    /// The earliest time a held packet can expire (engine clock, ns).
    next_expiry: u64,
    /// Until when the data path does not tell the platform again of a packet past its time limit.
    data_path_told: u64,
    charged: usize,
}

impl DivertHook {
    fn wants(&self, direction: Direction) -> bool {
        let bit = match direction {
            Direction::Send => DIVERT_SEND,
            Direction::Receive => DIVERT_RECEIVE,
        };
        self.directions & bit != 0
    }

    /// Frees the slot of `serial`, returning its ticket, if this hook holds it in `wanted` state.
    fn release(
        &mut self,
        serial: u64,
        module: Option<u32>,
        delivered_only: bool,
    ) -> Option<Ticket> {
        let slot = *self.by_serial.get(&serial)?;
        let entry = self.entries.get_mut(slot as usize)?;
        if module.is_some_and(|module| module != entry.meta.module)
            || (delivered_only && entry.state != SlotState::Delivered)
        {
            return None;
        }
        if entry.state == SlotState::Queued {
            self.queued.retain(|queued| *queued != slot);
        }
        entry.state = SlotState::Free;
        self.by_serial.remove(&serial);
        // Within the capacity reserved at open: every slot is free at most once.
        let _ = crate::memory::push_within_capacity(&mut self.free, slot);
        Some(Ticket {
            module: ModuleId(entry.meta.module),
            serial,
        })
    }

    /// Frees the slot `slot_index` and gives its packet the fail policy (the hook is closing, or
    /// the packet cannot be queued). `None` when the slot is gone.
    fn fail_slot(&mut self, slot_index: u32) -> Option<Queued> {
        self.entries.get_mut(slot_index as usize)?.state = SlotState::Free;
        // Within the capacity reserved at open.
        let _ = crate::memory::push_within_capacity(&mut self.free, slot_index);
        Some(Queued {
            verdict: self.fail,
            wake: None,
            first_held: false,
        })
    }

    /// Queues the filled slot `slot_index` (its frame `len` bytes) for the reader; the fail
    /// policy instead when the hook is closing. `None` when the slot is gone.
    fn queue_filled(&mut self, slot_index: u32, len: usize) -> Option<Queued> {
        if self.closing {
            return self.fail_slot(slot_index);
        }
        let entry = self.entries.get_mut(slot_index as usize)?;
        entry.state = SlotState::Queued;
        entry.len = len as u32;
        let serial = entry.meta.serial;
        let taken_at = entry.meta.time_ns;
        // Room for every slot was reserved at open (twice over, so the map never grows).
        if crate::memory::map_insert_within_capacity(&mut self.by_serial, serial, slot_index)
            .is_err()
            || crate::memory::push_back_within_capacity(&mut self.queued, slot_index).is_err()
        {
            self.by_serial.remove(&serial);
            return self.fail_slot(slot_index);
        }
        self.next_expiry = self
            .next_expiry
            .min(taken_at.saturating_add(self.timeout_ns));
        self.counters.diverted += 1;
        let wake = core::mem::take(&mut self.reader_waiting).then_some(self.token);
        Some(Queued {
            verdict: Verdict::Take,
            wake,
            first_held: self.by_serial.len() == 1,
        })
    }

    /// Frees up to `out.len()` held packets taken before `before` (all of them with `u64::MAX`),
    /// writing their tickets; returns how many.
    fn release_older(&mut self, before: u64, out: &mut [Ticket; RELEASE_BATCH]) -> usize {
        let mut found = 0;
        let mut earliest = u64::MAX;
        for index in 0..self.entries.len() {
            let entry = self.entries[index];
            if entry.state == SlotState::Free {
                continue;
            }
            if entry.meta.time_ns < before && found < out.len() {
                if let Some(ticket) = self.release(entry.meta.serial, None, false) {
                    out[found] = ticket;
                    found += 1;
                }
            } else {
                earliest = earliest.min(entry.meta.time_ns);
            }
        }
        self.next_expiry = earliest.saturating_add(self.timeout_ns);
        found
    }
}

/// A user-mode hook's place. The hook lives in an allocation of its own, made when it opens, so
/// the engine (built on the stack at driver entry) stays far below the kernel's 4 KiB frame limit.
#[derive(Default)]
struct Slot {
    generation: u16,
    hook: Option<Box<[DivertHook; 1]>>,
}

/// The engine's user-mode hooks.
pub(crate) struct DivertState<H: Locking> {
    /// The chain identity of each open hook ([`PUBLISHED`] | [`hook_id`]), read by the data path
    /// without a lock to find which built-in entry is which.
    ids: [AtomicU64; MAX_DIVERT_HOOKS],
    slots: [H::Lock<Slot>; MAX_DIVERT_HOOKS],
}

impl<H: Locking + Memory> DivertState<H> {
    pub(crate) fn new(hal: &H) -> Self {
        Self {
            ids: core::array::from_fn(|_| AtomicU64::new(0)),
            slots: core::array::from_fn(|_| hal.new_lock(Slot::default())),
        }
    }

    /// The user-mode hook with chain identity `id`.
    pub(crate) fn index_of(&self, id: HookId) -> Option<usize> {
        let wanted = PUBLISHED | hook_id(id.slot, id.generation);
        self.ids
            .iter()
            .position(|published| published.load(Ordering::Acquire) == wanted)
    }

    /// Frees every queue (engine drop; every handle was cleaned up, so none is left but by a bug).
    pub(crate) fn release(&self, memory: &H) {
        for slot in &self.slots {
            if let Some([hook]) = slot.with(|slot| slot.hook.take()).map(|boxed| *boxed) {
                memory.release(Pool::Control, hook.charged);
            }
        }
    }
}

fn fail_verdict(policy: FailPolicy) -> Verdict {
    match policy {
        FailPolicy::Drop => Verdict::Drop,
        FailPolicy::Pass | FailPolicy::Unknown(_) => Verdict::Pass,
    }
}

/// What a fail policy hands a held packet: dropped, or handed on.
fn reinject_verdict(fail: Verdict) -> ReinjectVerdict {
    if fail == Verdict::Drop {
        ReinjectVerdict::Drop
    } else {
        ReinjectVerdict::Pass
    }
}

fn wire_direction(direction: Direction) -> WireDirection {
    match direction {
        Direction::Send => WireDirection::Send,
        Direction::Receive => WireDirection::Receive,
    }
}

impl<H: Hal> Engine<H> {
    /// The verdict of a built-in chain entry that is not the rule set: the user-mode hook `index`.
    pub(crate) fn divert_verdict(&self, index: usize, packet: &PacketContext<'_>) -> Verdict {
        let mut header = [0u8; HEADER_BYTES];
        let read = packet.read(0, &mut header);
        let direction = packet.direction();
        let len = packet.len();
        let link = packet.link();
        let now = crate::hal::Clock::now(&self.hal).0;
        let view = PacketView {
            frame: header.get(..read).unwrap_or(&[]),
            frame_len: u32::try_from(len).unwrap_or(u32::MAX),
            direction: match direction {
                Direction::Send => wanlayer_rules::Direction::Send,
                Direction::Receive => wanlayer_rules::Direction::Receive,
            },
            link: link.id.0,
            device: &[],
        };
        let Some(lock) = self.control.divert.slots.get(index) else {
            return Verdict::Pass;
        };
        // Under the lock: the filter's decision and a claimed slot. The frame is then copied in
        // chunks read with no lock held (the platform's read is a call out of the engine), each
        // stored under the lock; only then is the packet queued for the reader.
        let claimed = lock.with(|slot| {
            let hook = &mut slot.hook.as_mut()?[0];
            // A held packet past its time limit: the platform's timer is told (at most once per
            // time limit), and expires it at the IRQL it runs at — the data path cannot say its
            // own to the packets it would hand on.
            let expire = now >= hook.next_expiry && now >= hook.data_path_told;
            if expire {
                hook.data_path_told = now.saturating_add(hook.timeout_ns);
            }
            if hook.closing
                || !hook.wants(direction)
                || hook
                    .set
                    .classify(&view)
                    .is_none_or(|matched| matched.action != Action::Divert)
            {
                return Some((Claim::Decided(Verdict::Pass), expire));
            }
            let Some(slot_index) = (len <= hook.max_frame).then(|| hook.free.pop()).flatten()
            else {
                hook.counters.queue_full += 1;
                return Some((Claim::Decided(hook.fail), expire));
            };
            // The ticket is drawn only for a packet taken (it costs a shared counter).
            let ticket = packet.ticket();
            let meta = DivertMeta {
                module: ticket.module.0,
                serial: ticket.serial,
                link_id: link.id.0,
                time_ns: now,
                direction: wire_direction(direction),
            };
            if let Some(entry) = hook.entries.get_mut(slot_index as usize) {
                *entry = Entry {
                    state: SlotState::Filling,
                    meta,
                    len: 0,
                };
            }
            // A frame the header read holds whole (most of them) is copied and queued here, in
            // this one critical section; a longer one is read in chunks with no lock held.
            let whole = header.get(..read).filter(|_| read == len);
            let at = slot_index as usize * hook.max_frame;
            match whole.zip(hook.data.get_mut(at..at + len)) {
                Some((frame, place)) => {
                    place.copy_from_slice(frame);
                    Some((Claim::Queued(hook.queue_filled(slot_index, len)), expire))
                }
                None => Some((Claim::Claimed(slot_index), expire)),
            }
        });
        let Some((claim, expire)) = claimed else {
            return Verdict::Pass;
        };
        let verdict = match claim {
            Claim::Decided(verdict) => verdict,
            Claim::Claimed(slot_index) => self.fill_divert_slot(lock, slot_index, packet, len),
            Claim::Queued(queued) => self.after_queued(queued),
        };
        if expire {
            self.control.divert_holding();
        }
        verdict
    }

    /// Copies the frame into the claimed slot and queues it; the fail policy instead when the hook
    /// started closing meanwhile.
    fn fill_divert_slot(
        &self,
        lock: &H::Lock<Slot>,
        slot_index: u32,
        packet: &PacketContext<'_>,
        len: usize,
    ) -> Verdict {
        let mut chunk = [0u8; CAPTURE_CHUNK];
        let mut offset = 0;
        while offset < len {
            let read = packet.read(offset, &mut chunk);
            if read == 0 {
                break;
            }
            lock.with(|slot| {
                if let Some([hook]) = slot.hook.as_deref_mut() {
                    let at = slot_index as usize * hook.max_frame + offset;
                    if let (Some(place), Some(bytes)) =
                        (hook.data.get_mut(at..at + read), chunk.get(..read))
                    {
                        place.copy_from_slice(bytes);
                    }
                }
            });
            offset += read;
        }
        let queued = lock.with(|slot| {
            let hook = &mut slot.hook.as_mut()?[0];
            hook.queue_filled(slot_index, offset.min(len))
        });
        self.after_queued(queued)
    }

    /// Wakes the reader and tells the platform a hook holds packets again, as
    /// [`DivertHook::queue_filled`] said; returns the verdict.
    fn after_queued(&self, queued: Option<Queued>) -> Verdict {
        let Some(Queued {
            verdict,
            wake,
            first_held,
        }) = queued
        else {
            return Verdict::Pass;
        };
        if let Some(token) = wake {
            self.control.wake(&[token]);
        }
        if first_held {
            self.control.divert_holding();
        }
        verdict
    }

    /// Gives the fail policy to the held packets of hook `index` older than its time limit.
    fn expire_divert(&self, index: usize, now: u64, ctx: PathContext) {
        let Some(lock) = self.control.divert.slots.get(index) else {
            return;
        };
        loop {
            let mut tickets = [Ticket {
                module: ModuleId(0),
                serial: 0,
            }; RELEASE_BATCH];
            let released = lock.with(|slot| {
                let hook = &mut slot.hook.as_mut()?[0];
                if now < hook.next_expiry {
                    return None;
                }
                let found = hook.release_older(
                    now.saturating_sub(hook.timeout_ns).saturating_add(1),
                    &mut tickets,
                );
                hook.counters.expired += found as u64;
                Some((found, hook.hook, hook.fail))
            });
            let Some((found, hook, fail)) = released else {
                return;
            };
            self.release_tickets(hook, &tickets[..found], fail, ctx);
            if found < RELEASE_BATCH {
                return;
            }
        }
    }

    fn release_tickets(&self, hook: HookId, tickets: &[Ticket], fail: Verdict, ctx: PathContext) {
        let verdict = reinject_verdict(fail);
        let mut reinjection = Reinjection::new(self, ctx);
        for ticket in tickets {
            // A stale ticket was released by the engine already (line down, pause, detach).
            let _ = reinjection.hand_on(hook, *ticket, verdict);
        }
        reinjection.finish();
    }
}

/// The reinjections of one verdict write (or one release of tickets), handed on together: the
/// packets of consecutive tickets of one module go out in one data-path call of that module
/// ([`ModuleCore::enter_data_path`](crate::module::ModuleCore::enter_data_path) once), as one
/// chain per direction (one `NdisFSendNetBufferLists` and one
/// `NdisFIndicateReceiveNetBufferLists`), in ticket order, with the IRQL flags of the `ctx` it was
/// made with. A ticket of another module, or a send whose loopback request differs, hands on what
/// was gathered first. The packets are gathered linked through themselves
/// ([`PacketChain`](crate::hal::PacketChain)): no allocation.
///
/// Each packet is removed from the module's taken store under the module's lock, in the same
/// acquisition that checks the module is still Running, as [`Engine::reinject_as`] does; a packet
/// reinjected while the module is not Running is dropped as paused, as there. While the data path
/// is entered a pause waits (the module's active calls), so that no packet is originated after it
/// completed; when it could not be entered (the module not Running) each packet is handed back at
/// once and a pause waiting for it finishes, as one reinjection at a time did.
///
/// Dropping a `Reinjection` hands on what it gathered ([`Self::finish`]).
pub(crate) struct Reinjection<'e, H: Hal> {
    engine: &'e Engine<H>,
    ctx: PathContext,
    open: Option<Gathering<'e, H>>,
    /// Beside `open`, not in it: snapshots are large, and a module's gathering is made and ended
    /// without moving them.
    hooks: GatheredHooks<'e>,
}

/// The hook chain as packets travelling one direction meet it, snapshotted for the first packet a
/// [`Gathering`] resumes that way and held (its hooks busy) until the gathered calls are made or
/// a packet travels the other way. One snapshot at most: it is large, and kernel stacks are small.
struct GatheredHooks<'e> {
    hooks: Option<ChainSnapshot<'e>>,
    direction: Direction,
}

impl<'e> GatheredHooks<'e> {
    /// None yet.
    fn new() -> Self {
        Self {
            hooks: None,
            direction: Direction::Send,
        }
    }

    /// The chain as a packet travelling `direction` meets it.
    fn for_direction<H: Hal>(
        &mut self,
        engine: &'e Engine<H>,
        direction: Direction,
    ) -> &ChainSnapshot<'e> {
        if self.direction != direction {
            self.release();
            self.direction = direction;
        }
        self.hooks
            .get_or_insert_with(|| engine.chain_snapshot_for(direction))
    }

    /// Lets the hooks go (before the gathered calls are made, as the data path does).
    fn release(&mut self) {
        // Only a snapshot taken is written over: writing `None` copies one as large.
        if self.hooks.is_some() {
            self.hooks = None;
        }
    }
}

/// A packet [`Reinjection::take`] removed from the taken store, whether its module is Running,
/// what is gathered for that module, and the hooks.
type TakenInto<'g, 'e, H> = (
    Taken<<H as PacketIo>::Packet>,
    bool,
    &'g mut Gathering<'e, H>,
    &'g mut GatheredHooks<'e>,
);

/// What a [`Reinjection`] gathered for one module.
struct Gathering<'e, H: Hal> {
    module: ModuleId,
    slot: &'e ModuleSlot<H>,
    /// The data path was entered for this module and is left when the gathered calls are made.
    entered: bool,
    /// The loopback request of the sends gathered in `out`.
    check_for_loopback: bool,
    out: Outbox<H>,
}

impl<'e, H: Hal> Reinjection<'e, H> {
    /// Starts gathering; the platform calls it makes carry `ctx`'s IRQL.
    pub(crate) fn new(engine: &'e Engine<H>, ctx: PathContext) -> Self {
        Self {
            engine,
            ctx,
            open: None,
            hooks: GatheredHooks::new(),
        }
    }

    /// Removes the packet `ticket` names from its module's taken store, if hook `taker` holds it,
    /// and enters the module's data path for this reinjection if it has not yet and the module is
    /// Running. Returns the packet, whether the module is Running, and what is gathered for it.
    fn take(
        &mut self,
        taker: HookId,
        ticket: Ticket,
    ) -> Result<TakenInto<'_, 'e, H>, ReinjectError> {
        let module = ticket.module;
        if self.open.as_ref().is_some_and(|open| open.module != module) {
            self.hand_on_gathered();
        }
        let slot = self
            .engine
            .slot(module)
            .ok_or(ReinjectError::UnknownModule(module))?;
        let entered_before = self.open.as_ref().is_some_and(|open| open.entered);
        let (taken, entered, running) = slot.core.with(|core| {
            if !core.is(module) {
                return Err(ReinjectError::UnknownModule(module));
            }
            let taken = match core.taken.get(ticket.serial) {
                None => return Err(ReinjectError::StaleTicket(ticket)),
                Some(held) if held.taker != taker => return Err(ReinjectError::NotTaker(ticket)),
                Some(_) => core
                    .taken
                    .remove(ticket.serial)
                    .ok_or(ReinjectError::StaleTicket(ticket))?,
            };
            let entered = entered_before || core.enter_data_path(module).is_some();
            Ok((taken, entered, core.state == ModuleState::Running))
        })?;
        let open = self.open.get_or_insert_with(|| Gathering {
            module,
            slot,
            entered: false,
            check_for_loopback: taken.check_for_loopback,
            out: Outbox::default(),
        });
        open.entered = entered;
        Ok((taken, running, open, &mut self.hooks))
    }

    /// [`Engine::reinject_as`], gathered: hands on (or drops) the packet `ticket` names.
    ///
    /// # Errors
    /// [`ReinjectError`] when the ticket names no packet `taker` holds; nothing changes.
    pub(crate) fn hand_on(
        &mut self,
        taker: HookId,
        ticket: Ticket,
        verdict: ReinjectVerdict,
    ) -> Result<(), ReinjectError> {
        let (engine, ctx) = (self.engine, self.ctx);
        let (taken, running, open, hooks) = self.take(taker, ticket)?;
        open.slot
            .counters
            .direction(taken.direction)
            .count_reinjected();
        match verdict {
            ReinjectVerdict::Pass => open.resume(engine, ctx, hooks, taken, running),
            ReinjectVerdict::Drop => open.drop_taken(engine, taken, DropReason::Hook),
        }
        self.after_packet();
        Ok(())
    }

    /// Hands on a taken packet with `frame` in place of its own (a user-mode hook's replacement).
    /// `Err(None)`: no memory for the new frame; the packet is still held.
    fn hand_on_replaced(
        &mut self,
        taker: HookId,
        ticket: Ticket,
        frame: &[u8],
    ) -> Result<(), Option<ReinjectError>> {
        let (engine, ctx) = (self.engine, self.ctx);
        let hal = &engine.hal;
        let fresh = hal
            .allocate(ticket.module, FrameSource::Bytes(frame))
            .map_err(|_| None)?;
        let (mut taken, running, open, hooks) = match self.take(taker, ticket) {
            Ok(taken) => taken,
            Err(error) => {
                // A fresh packet has no parent.
                let _ = hal.free(fresh);
                return Err(Some(error));
            }
        };
        let old = core::mem::replace(
            &mut taken.held,
            Held {
                packet: fresh,
                origin: Origin::Own,
            },
        );
        let parent = match old.origin {
            Origin::Own => hal.free(old.packet),
            Origin::Foreign => Some(old.packet),
        };
        if let Some(parent) = parent {
            hal.attach_parent(&mut taken.held.packet, parent);
        }
        let counters = open.slot.counters.direction(taken.direction);
        counters.count_reinjected();
        counters.count_modified();
        open.resume(engine, ctx, hooks, taken, running);
        self.after_packet();
        Ok(())
    }

    /// With the data path not entered nothing keeps a pause waiting for what was gathered: it is
    /// handed on at once.
    fn after_packet(&mut self) {
        if self.open.as_ref().is_some_and(|open| !open.entered) {
            self.hand_on_gathered();
        }
    }

    /// Makes the gathered calls, leaves the data path if it was entered, and finishes a pause that
    /// waited for them.
    fn hand_on_gathered(&mut self) {
        let Some(open) = self.open.take() else { return };
        let Gathering {
            module,
            slot,
            entered,
            check_for_loopback,
            out,
        } = open;
        self.hooks.release();
        let engine = self.engine;
        let ctx = PathContext {
            check_for_loopback,
            ..self.ctx
        };
        if entered {
            return engine.commit(module, slot, out, ctx);
        }
        out.flush(engine, module, ctx);
        if slot.core.with(|core| core.try_finish_pause()) {
            engine.finish_pause(module);
        }
    }

    /// Hands on what was gathered.
    pub(crate) fn finish(mut self) {
        self.hand_on_gathered();
    }
}

impl<'e, H: Hal> Gathering<'e, H> {
    /// Continues a taken packet along the chain after the hook that took it, into the gathered
    /// calls; dropped as paused when the module is not Running.
    fn resume(
        &mut self,
        engine: &'e Engine<H>,
        ctx: PathContext,
        hooks: &mut GatheredHooks<'e>,
        taken: Taken<H::Packet>,
        running: bool,
    ) {
        if running
            && self.entered
            && taken.direction == Direction::Send
            && taken.check_for_loopback != self.check_for_loopback
        {
            // The loopback request is the send call's: sends that differ go in a call of their own.
            let out = core::mem::take(&mut self.out);
            hooks.release();
            engine.commit(
                self.module,
                self.slot,
                out,
                PathContext {
                    check_for_loopback: self.check_for_loopback,
                    ..ctx
                },
            );
            self.check_for_loopback = taken.check_for_loopback;
            self.entered = self
                .slot
                .core
                .with(|core| core.enter_data_path(self.module))
                .is_some();
        }
        if !running || !self.entered {
            return self.drop_taken(engine, taken, DropReason::Paused);
        }
        let Taken {
            held,
            direction,
            link,
            position,
            check_for_loopback,
            ..
        } = taken;
        let hooks = hooks.for_direction(engine, direction);
        let ctx = PathContext {
            check_for_loopback,
            ..ctx
        };
        engine.process(
            self.module,
            self.slot,
            hooks,
            direction,
            held,
            link,
            Some(position),
            None,
            ctx,
            &mut self.out,
        );
    }

    /// Drops a taken packet for `reason`, into the gathered calls.
    fn drop_taken(&mut self, engine: &Engine<H>, taken: Taken<H::Packet>, reason: DropReason) {
        engine.count_drop(self.slot, taken.direction, &taken.link, reason);
        self.out.drop_packet(
            &engine.hal,
            taken.direction,
            taken.held,
            Engine::<H>::drop_status(reason),
        );
    }
}

impl<H: Hal> Drop for Reinjection<'_, H> {
    fn drop(&mut self) {
        self.hand_on_gathered();
    }
}

impl<H: Hal> Engine<H> {
    /// True while hook `taker` holds the packet `meta` names (taken by the engine under its
    /// ticket). Takes the module's lock: called under a user-mode hook's lock, the one order
    /// these two locks are nested in.
    fn held_by(&self, taker: HookId, meta: &DivertMeta) -> bool {
        let module = ModuleId(meta.module);
        self.slot(module).is_some_and(|slot| {
            slot.core.with(|core| {
                core.is(module)
                    && core
                        .taken
                        .get(meta.serial)
                        .is_some_and(|taken| taken.taker == taker)
            })
        })
    }
}

impl<H: Hal> Control<'_, H> {
    /// Gives the fail policy to every held packet of every user-mode hook that is older than its
    /// time limit; returns [`Control::divert_next_expiry`] afterwards. A platform with a timer
    /// calls it (see [`EventWaker::divert_holding`](super::EventWaker::divert_holding)); divert
    /// requests and the data path also check.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL` (the packets it hands on are sent or indicated as from there); at
    /// `DISPATCH_LEVEL` (a timer's DPC), [`Control::divert_expire_in`] with `at_dispatch`.
    pub fn divert_expire(&self) -> Option<Timestamp> {
        self.divert_expire_in(PathContext::default())
    }

    /// [`Control::divert_expire`] at the IRQL `ctx` says: the packets handed on go with it (a
    /// timer's DPC says `at_dispatch`, so sends carry `NDIS_SEND_FLAGS_DISPATCH_LEVEL`).
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`; `ctx.at_dispatch` tells the truth about it.
    pub fn divert_expire_in(&self, ctx: PathContext) -> Option<Timestamp> {
        let now = crate::hal::Clock::now(&self.engine.hal).0;
        for index in 0..MAX_DIVERT_HOOKS {
            self.engine.expire_divert(index, now, ctx);
        }
        self.divert_next_expiry()
    }

    /// The earliest time (the engine's clock) at which a packet a user-mode hook holds now may
    /// have to expire — never later than the real one, possibly earlier (a packet answered since
    /// is forgotten only by the next expiry) — or `None` when no user-mode hook holds a packet.
    /// Reads each hook under its lock and changes nothing.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn divert_next_expiry(&self) -> Option<Timestamp> {
        self.engine
            .control
            .divert
            .slots
            .iter()
            .filter_map(|slot| {
                slot.with(|slot| {
                    slot.hook
                        .as_deref()
                        .filter(|[hook]| !hook.by_serial.is_empty())
                        .map(|[hook]| hook.next_expiry)
                })
            })
            .min()
            .map(Timestamp)
    }

    /// User-mode hooks open right now.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn divert_hooks(&self) -> usize {
        self.engine
            .control
            .divert
            .slots
            .iter()
            .filter(|slot| slot.with(|slot| slot.hook.is_some()))
            .count()
    }

    /// The hook index and lock of the handle's user-mode hook.
    fn divert_of(&self, handle: &ControlHandle) -> Result<usize, Status> {
        let id = handle.divert.current().ok_or(Status::InvalidDeviceState)?;
        let index = usize::from(id as u16);
        let generation = (id >> 16) as u16;
        let lock = self
            .engine
            .control
            .divert
            .slots
            .get(index)
            .ok_or(Status::InvalidDeviceState)?;
        lock.with(|slot| (slot.generation == generation && slot.hook.is_some()).then_some(index))
            .ok_or(Status::InvalidDeviceState)
    }

    /// `DIVERT_OPEN`: the handle becomes a user-mode hook.
    /// The request is read in place from the system buffer before the answer is written over it.
    pub(crate) fn divert_open(
        &self,
        handle: &ControlHandle,
        buffer: &mut [u8],
        input_len: usize,
        output_len: usize,
    ) -> Result<usize, Status> {
        if output_len < DivertInfo::<&[u8]>::LEN {
            return Err(Status::BufferTooSmall);
        }
        let input = buffer.get(..input_len).ok_or(Status::InvalidParameter)?;
        let request =
            DivertOpenRepr::parse(&DivertOpen::new_unchecked(input)).map_err(Status::from)?;
        handle.divert.claim()?;
        let (id, hook) = match self.open_hook(handle.token, &request) {
            Ok(opened) => opened,
            Err(status) => {
                handle.divert.unclaim();
                return Err(status);
            }
        };
        if !handle.divert.bind(id) {
            self.close_hook(id);
            return Err(Status::Cancelled);
        }
        let out = buffer
            .get_mut(..DivertInfo::<&[u8]>::LEN)
            .ok_or(Status::BufferTooSmall)?;
        let repr = DivertInfoRepr {
            hook: hook_id(hook.slot, hook.generation),
        };
        repr.emit(&mut DivertInfo::new_unchecked(out))
            .map_err(|_| Status::BufferTooSmall)?;
        Ok(repr.buffer_len())
    }

    /// Builds the queue, joins the chain; returns the binding id and the chain identity.
    fn open_hook(&self, token: u64, request: &DivertOpenRepr<'_>) -> Result<(u32, HookId), Status> {
        let engine = self.engine;
        let state = &engine.control.divert;
        let set = RuleSet::load(request.blob).map_err(|error| match error {
            wanlayer_rules::LoadError::OutOfMemory => Status::InsufficientResources,
            _ => Status::InvalidParameter,
        })?;
        if !(0..set.len())
            .filter_map(|index| set.rule(index))
            .any(|rule| rule.action == Action::Divert)
        {
            return Err(Status::InvalidParameter);
        }
        let queue_len = request.queue_len as usize;
        let max_frame = request.max_frame as usize;
        let data_len = queue_len
            .checked_mul(max_frame)
            .filter(|len| *len as u64 <= MAX_CAPTURE_BYTES)
            .ok_or(Status::InvalidParameter)?;
        let index = state
            .slots
            .iter()
            .position(|slot| slot.with(|slot| slot.hook.is_none()))
            .ok_or(Status::TooManySessions)?;
        let hook = self.build_hook(token, set, request, queue_len, max_frame, data_len)?;
        let charged = hook.charged;
        let Ok(mut hook) = try_box(hook) else {
            self.engine.hal.release(Pool::Control, charged);
            return Err(Status::InsufficientResources);
        };
        let (generation, claimed) = state.slots[index].with(|slot| {
            if slot.hook.is_some() {
                return (0, false);
            }
            slot.generation = (slot.generation.wrapping_add(1) & GENERATION_MASK).max(1);
            (slot.generation, true)
        });
        if !claimed {
            self.engine.hal.release(Pool::Control, charged);
            return Err(Status::TooManySessions);
        }
        // Published inside the registry's lock, so no chain snapshot holds the entry before the
        // data path can tell it is this user-mode hook.
        let added = engine.hooks.with(|registry| {
            let id = registry.add(DIVERT_HOOK_NAME, request.altitude, None)?;
            state.ids[index].store(
                PUBLISHED | hook_id(id.slot, id.generation),
                Ordering::Release,
            );
            Ok::<_, crate::hook::AddHookError>(id)
        });
        let Ok(id) = added else {
            self.engine.hal.release(Pool::Control, charged);
            return Err(Status::InsufficientResources);
        };
        hook[0].hook = id;
        engine.hook_slots[usize::from(id.slot)].reset();
        state.slots[index].with(|slot| slot.hook = Some(hook));
        engine.hal.log(
            Level::Info,
            format_args!(
                "{id} '{DIVERT_HOOK_NAME}' added at altitude {}",
                request.altitude
            ),
        );
        engine.push_event(Event::HookAdded {
            id,
            name: HookName::new(DIVERT_HOOK_NAME),
            altitude: request.altitude,
        });
        Ok((u32::from(generation) << 16 | index as u32, id))
    }

    /// Allocates the queue of a hook (all of it now: the data path never allocates).
    fn build_hook(
        &self,
        token: u64,
        set: RuleSet,
        request: &DivertOpenRepr<'_>,
        queue_len: usize,
        max_frame: usize,
        data_len: usize,
    ) -> Result<DivertHook, Status> {
        let memory = &self.engine.hal;
        let fixed = size_of::<DivertHook>()
            + request.blob.len()
            + data_len
            + queue_len * (size_of::<Entry>() + size_of::<u32>());
        memory
            .try_charge(Pool::Control, fixed)
            .map_err(|_| Status::InsufficientResources)?;
        let mut entries = Vec::new();
        let mut data = Vec::new();
        let mut free = Vec::new();
        if entries.try_reserve_exact(queue_len).is_err()
            || data.try_reserve_exact(data_len).is_err()
            || free.try_reserve_exact(queue_len).is_err()
        {
            memory.release(Pool::Control, fixed);
            return Err(Status::InsufficientResources);
        }
        let Ok(queued) = fixed_deque(memory, Pool::Control, queue_len) else {
            memory.release(Pool::Control, fixed);
            return Err(Status::InsufficientResources);
        };
        let queued_bytes = queue_len * size_of::<u32>();
        let mut by_serial = new_map();
        let Ok(map_bytes) = reserve_map(
            memory,
            Pool::Control,
            &mut by_serial,
            queue_len.saturating_mul(2),
        ) else {
            memory.release(Pool::Control, fixed + queued_bytes);
            return Err(Status::InsufficientResources);
        };
        let empty = DivertMeta {
            module: 0,
            serial: 0,
            link_id: 0,
            time_ns: 0,
            direction: WireDirection::Send,
        };
        let mut next_free = queue_len as u32;
        // Within the capacities reserved above.
        if crate::memory::fill_within_capacity(&mut entries, queue_len, || Entry {
            state: SlotState::Free,
            meta: empty,
            len: 0,
        })
        .is_err()
            || crate::memory::fill_within_capacity(&mut data, data_len, || 0).is_err()
            || crate::memory::fill_within_capacity(&mut free, queue_len, || {
                next_free = next_free.saturating_sub(1);
                next_free
            })
            .is_err()
        {
            memory.release(Pool::Control, fixed + queued_bytes + map_bytes);
            return Err(Status::InsufficientResources);
        }
        Ok(DivertHook {
            hook: HookId {
                slot: 0,
                generation: 0,
            },
            token,
            set,
            directions: request.directions,
            fail: fail_verdict(request.fail_policy),
            timeout_ns: u64::from(request.timeout_ms) * 1_000_000,
            max_frame,
            entries,
            data,
            free,
            queued,
            by_serial,
            counters: DivertCounters::default(),
            reader_waiting: false,
            closing: false,
            next_expiry: u64::MAX,
            data_path_told: 0,
            charged: fixed + queued_bytes + map_bytes,
        })
    }

    /// Stops new takes, gives every held packet the fail policy, removes the hook from the chain
    /// and frees its queue. Wakes a pending read (it completes `STATUS_INVALID_DEVICE_STATE`).
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    pub(crate) fn close_hook(&self, id: u32) {
        let engine = self.engine;
        let index = usize::from(id as u16);
        let generation = (id >> 16) as u16;
        let Some(lock) = engine.control.divert.slots.get(index) else {
            return;
        };
        let closing = lock.with(|slot| {
            let [hook] = slot
                .hook
                .as_deref_mut()
                .filter(|_| slot.generation == generation)?;
            hook.closing = true;
            Some((hook.hook, hook.fail, hook.token))
        });
        let Some((hook_id_in_chain, fail, token)) = closing else {
            return;
        };
        engine.control.wake(&[token]);
        loop {
            let mut tickets = [Ticket {
                module: ModuleId(0),
                serial: 0,
            }; RELEASE_BATCH];
            let found = lock.with(|slot| {
                slot.hook
                    .as_deref_mut()
                    .map_or(0, |[hook]| hook.release_older(u64::MAX, &mut tickets))
            });
            engine.release_tickets(
                hook_id_in_chain,
                &tickets[..found],
                fail,
                PathContext::default(),
            );
            if found < RELEASE_BATCH {
                break;
            }
        }
        // Anything taken between `closing` and now is handed on by the removal.
        let _ = engine.remove_hook(hook_id_in_chain);
        engine.control.divert.ids[index].store(0, Ordering::Release);
        if let Some([hook]) = lock.with(|slot| slot.hook.take()).map(|boxed| *boxed) {
            engine.hal.release(Pool::Control, hook.charged);
        }
    }

    /// `DIVERT_CLOSE`.
    pub(crate) fn divert_close(&self, handle: &ControlHandle) -> Result<usize, Status> {
        let id = handle.divert.take().ok_or(Status::InvalidDeviceState)?;
        self.close_hook(id);
        Ok(0)
    }

    /// `DIVERT_READ`: a batch, or pending when nothing is queued and the request may wait.
    pub(crate) fn divert_read(
        &self,
        handle: &ControlHandle,
        request: ReadRequestRepr,
        out: &mut [u8],
    ) -> Completion {
        let index = match self.divert_of(handle) {
            Ok(index) => index,
            Err(status) => return Completion::from_result(Err(status)),
        };
        // Only a read that never waits expires what is due: a waiting read that pended is
        // dispatched again from the platform's wake DPC, at DISPATCH_LEVEL, where packets handed
        // on with the passive context would be sent without NDIS's DISPATCH_LEVEL flag (the
        // timer, the data path and verdicts expire them instead).
        if !request.wait {
            self.engine.expire_divert(
                index,
                crate::hal::Clock::now(&self.engine.hal).0,
                PathContext::default(),
            );
        }
        let max = request.max_records.min(MAX_READ_BATCH) as usize;
        let read = self.engine.control.divert.slots[index].with(|slot| {
            let hook = &mut slot.hook.as_mut().ok_or(Status::InvalidDeviceState)?[0];
            if hook.queued.is_empty() && request.wait && !hook.closing {
                hook.reader_waiting = true;
                return Ok(None);
            }
            let taker = hook.hook;
            write_batch(hook, max, out, |meta| self.engine.held_by(taker, meta)).map(Some)
        });
        match read {
            Ok(Some(written)) => Completion::Complete {
                status: Status::Success,
                written,
            },
            Ok(None) => Completion::Pending,
            Err(status) => Completion::from_result(Err(status)),
        }
    }

    /// `DIVERT_VERDICTS`: applies each verdict in order; the answer counts applied and refused.
    pub(crate) fn divert_verdicts(
        &self,
        handle: &ControlHandle,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Status> {
        if out.len() < DivertResult::<&[u8]>::LEN {
            return Err(Status::BufferTooSmall);
        }
        let view = DivertVerdicts::new_unchecked(input);
        DivertVerdictsRepr::parse(&view).map_err(Status::from)?;
        let index = self.divert_of(handle)?;
        let engine = self.engine;
        let lock = &engine.control.divert.slots[index];
        let Some(hook_in_chain) = lock.with(|slot| slot.hook.as_deref().map(|[hook]| hook.hook))
        else {
            return Err(Status::InvalidDeviceState);
        };
        let (mut applied, mut refused) = (0u32, 0u32);
        let mut verdicts = view.verdicts();
        // The whole write's packets are handed on together: one chain per module and direction.
        let mut reinjection = Reinjection::new(engine, PathContext::default());
        loop {
            // A chunk of verdicts, their tickets released under one acquisition of the hook's
            // lock, then applied with no lock held.
            let mut chunk: [Option<DivertVerdictRepr<'_>>; VERDICT_CHUNK] = [None; VERDICT_CHUNK];
            let mut filled = 0;
            for (place, verdict) in chunk.iter_mut().zip(verdicts.by_ref()) {
                let Ok(verdict) = verdict else { break };
                *place = Some(verdict);
                filled += 1;
            }
            if filled == 0 {
                break;
            }
            let mut tickets: [Option<Ticket>; VERDICT_CHUNK] = [None; VERDICT_CHUNK];
            let released = lock.with(|slot| {
                let [hook] = slot.hook.as_deref_mut()?;
                for (ticket, verdict) in tickets.iter_mut().zip(chunk.iter().flatten()) {
                    *ticket = hook.release(verdict.serial, Some(verdict.module), true);
                }
                Some(hook.fail)
            });
            let fail = released.unwrap_or(Verdict::Pass);
            let mut refused_here = 0u64;
            for (ticket, verdict) in tickets.iter().zip(chunk.iter().flatten()) {
                let outcome = match ticket {
                    Some(ticket) => {
                        apply_verdict(&mut reinjection, hook_in_chain, *ticket, fail, verdict)
                    }
                    None => Err(()),
                };
                match outcome {
                    Ok(()) => applied += 1,
                    Err(()) => {
                        refused += 1;
                        refused_here += 1;
                    }
                }
            }
            if refused_here != 0 {
                lock.with(|slot| {
                    if let Some([hook]) = slot.hook.as_deref_mut() {
                        hook.counters.refused += refused_here;
                    }
                });
            }
            if filled < VERDICT_CHUNK {
                break;
            }
        }
        reinjection.finish();
        engine.expire_divert(
            index,
            crate::hal::Clock::now(&engine.hal).0,
            PathContext::default(),
        );
        let repr = DivertResultRepr { applied, refused };
        repr.emit(&mut DivertResult::new_unchecked(
            &mut out[..DivertResult::<&[u8]>::LEN],
        ))
        .map_err(|_| Status::BufferTooSmall)?;
        Ok(repr.buffer_len())
    }
}

/// Applies `verdict` to the packet held under `ticket` (released from the hook's queue), gathered
/// into `reinjection`.
fn apply_verdict<H: Hal>(
    reinjection: &mut Reinjection<'_, H>,
    hook: HookId,
    ticket: Ticket,
    fail: Verdict,
    verdict: &DivertVerdictRepr<'_>,
) -> Result<(), ()> {
    let result = match verdict.action {
        DivertAction::Pass | DivertAction::Unknown(_) => {
            reinjection.hand_on(hook, ticket, ReinjectVerdict::Pass)
        }
        DivertAction::Drop => reinjection.hand_on(hook, ticket, ReinjectVerdict::Drop),
        DivertAction::Replace => match reinjection.hand_on_replaced(hook, ticket, verdict.frame) {
            Ok(()) => Ok(()),
            Err(Some(error)) => Err(error),
            // No memory for the replacement: the packet still gets a verdict, the fail policy.
            Err(None) => {
                let _ = reinjection.hand_on(hook, ticket, reinject_verdict(fail));
                return Err(());
            }
        },
    };
    result.map_err(|_| ())
}

/// Writes up to `max` queued packets into `out` as a batch, oldest first, marking them
/// delivered. Only packets `held` confirms the engine holds are delivered: the data path queues a
/// packet just before the engine stores it under its ticket, and a verdict must never reach the
/// engine before the packet does. The others wait (until the engine stores them, or until they
/// expire when the engine released them first: line down, pause, detach).
fn write_batch(
    hook: &mut DivertHook,
    max: usize,
    out: &mut [u8],
    held: impl Fn(&DivertMeta) -> bool,
) -> Result<usize, Status> {
    let prefix = DivertBatch::<&[u8]>::LEN;
    if out.len() < prefix {
        return Err(Status::BufferTooSmall);
    }
    let mut at = prefix;
    let mut count = 0u32;
    let mut position = 0;
    while (count as usize) < max {
        let Some(&slot) = hook.queued.get(position) else {
            break;
        };
        let Some(entry) = hook.entries.get(slot as usize).copied() else {
            break;
        };
        if !held(&entry.meta) {
            position += 1;
            continue;
        }
        let len = entry.len as usize;
        let record_len =
            wanlayer_proto::divert_packet_len(len).map_err(|_| Status::InvalidParameter)?;
        let Some(record) = out.get_mut(at..at + record_len) else {
            if count == 0 {
                return Err(Status::BufferTooSmall);
            }
            break;
        };
        emit_divert_packet_fixed(
            &mut DivertPacket::new_unchecked(&mut *record),
            &entry.meta,
            len,
        )
        .map_err(|_| Status::BufferTooSmall)?;
        let from = slot as usize * hook.max_frame;
        let data_at = DivertPacket::<&[u8]>::LEN;
        if let (Some(place), Some(frame)) = (
            record.get_mut(data_at..data_at + len),
            hook.data.get(from..from + len),
        ) {
            place.copy_from_slice(frame);
        }
        if let Some(entry) = hook.entries.get_mut(slot as usize) {
            entry.state = SlotState::Delivered;
        }
        hook.queued.remove(position);
        at += record_len;
        count += 1;
    }
    let repr = DivertBatchRepr {
        count,
        counters: hook.counters,
        size: at,
    };
    repr.emit(&mut DivertBatch::new_unchecked(&mut out[..at]))
        .map_err(|_| Status::BufferTooSmall)?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(queue_len: usize, max_frame: usize) -> DivertHook {
        let empty = DivertMeta {
            module: 0,
            serial: 0,
            link_id: 0,
            time_ns: 0,
            direction: WireDirection::Send,
        };
        let mut free = Vec::with_capacity(queue_len);
        free.extend((0..queue_len as u32).rev());
        DivertHook {
            hook: HookId {
                slot: 1,
                generation: 1,
            },
            token: 7,
            set: RuleSet::empty(),
            directions: DIVERT_SEND,
            fail: Verdict::Drop,
            timeout_ns: 1_000,
            max_frame,
            entries: alloc::vec![Entry { state: SlotState::Free, meta: empty, len: 0 }; queue_len],
            data: alloc::vec![0; queue_len * max_frame],
            free,
            queued: VecDeque::with_capacity(queue_len),
            by_serial: new_map(),
            counters: DivertCounters::default(),
            reader_waiting: false,
            closing: false,
            next_expiry: u64::MAX,
            data_path_told: 0,
            charged: 0,
        }
    }

    /// Queues a packet as the data path does.
    fn queue(hook: &mut DivertHook, serial: u64, time_ns: u64, frame: &[u8]) {
        let slot = hook.free.pop().unwrap();
        let meta = DivertMeta {
            module: 0x0001_0000,
            serial,
            link_id: 3,
            time_ns,
            direction: WireDirection::Send,
        };
        hook.entries[slot as usize] = Entry {
            state: SlotState::Queued,
            meta,
            len: frame.len() as u32,
        };
        let at = slot as usize * hook.max_frame;
        hook.data[at..at + frame.len()].copy_from_slice(frame);
        hook.by_serial.insert(serial, slot);
        hook.queued.push_back(slot);
        hook.next_expiry = hook.next_expiry.min(time_ns + hook.timeout_ns);
    }

    #[test]
    fn a_batch_holds_what_fits_and_only_delivered_tickets_of_the_module_are_released() {
        let mut hook = hook(4, 64);
        queue(&mut hook, 10, 0, &[1; 20]);
        queue(&mut hook, 11, 0, &[2; 60]);
        assert_eq!(
            hook.release(10, Some(0x0001_0000), true),
            None,
            "a packet not read yet cannot be answered"
        );
        let mut out = [0u8; 48 + 64];
        assert_eq!(
            write_batch(&mut hook, 8, &mut out[..48 + 8], |_| true),
            Err(Status::BufferTooSmall),
            "not even one record fits"
        );
        assert_eq!(
            write_batch(&mut hook, 8, &mut out, |_| false),
            Ok(48),
            "nothing the engine does not hold yet"
        );
        let written = write_batch(&mut hook, 8, &mut out, |_| true).unwrap();
        let view = DivertBatch::new_unchecked(&out[..written]);
        assert_eq!(
            DivertBatchRepr::parse(&view).unwrap().count,
            1,
            "the second record does not fit: it waits"
        );
        assert_eq!(view.packets().next().unwrap().unwrap().frame, &[1; 20]);
        assert_eq!(hook.queued.len(), 1);
        assert_eq!(
            hook.release(10, Some(0x0002_0000), true),
            None,
            "another module's ticket of the same serial"
        );
        assert_eq!(
            hook.release(10, Some(0x0001_0000), true)
                .map(|ticket| ticket.serial),
            Some(10)
        );
        assert_eq!(hook.release(10, Some(0x0001_0000), true), None, "once");
        assert_eq!(hook.free.len(), 3);
    }

    #[test]
    fn expiry_releases_only_packets_older_than_the_limit_and_closing_releases_the_rest() {
        let mut hook = hook(60, 16);
        for serial in 0..50 {
            queue(&mut hook, serial, serial * 100, &[0; 16]);
        }
        let mut tickets = [Ticket {
            module: ModuleId(0),
            serial: 0,
        }; RELEASE_BATCH];
        let found = hook.release_older(1_000, &mut tickets);
        assert_eq!(found, 10, "taken before time 1000");
        assert_eq!(
            hook.next_expiry,
            1_000 + hook.timeout_ns,
            "the oldest left expires next"
        );
        assert_eq!(
            hook.release_older(u64::MAX, &mut tickets),
            RELEASE_BATCH,
            "a batch at a time"
        );
        assert_eq!(
            hook.release_older(u64::MAX, &mut tickets),
            40 - RELEASE_BATCH
        );
        assert!(hook.queued.is_empty() && hook.by_serial.is_empty());
        assert_eq!((hook.free.len(), hook.next_expiry), (60, u64::MAX));
    }
}
