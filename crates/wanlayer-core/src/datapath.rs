//! The send and receive paths: classify each packet to its WAN link, run the hook chain, apply the
//! verdict, and hand every packet back exactly once.
//!
//! A call enters through the module's gate (no lock), reads the heads of a batch of packets, and
//! classifies and counts the batch in one read of the link table (one lookup per run of packets of
//! the same link). With no hook to run, the packets go on in one platform call; otherwise the hooks
//! run with no lock held and the platform calls are collected in an [`Outbox`] and made after
//! every lock is released.

use core::cell::Cell;
use core::fmt;

use crate::engine::Engine;
use crate::gate::AfterLeaving;
use crate::hal::{FrameSource, Hal, Lock, ModuleId, PacketChain, PacketIo, PathContext, ReadMostly, Reclaimed, WriteError};
use crate::hook::{ChainPosition, Direction, EditError, FrameAccess, HookId, PacketContext, Ticket, Verdict, MAX_HOOKS};
use crate::link::{LinkSummary, LinkTable};
use crate::module::{ModuleCore, ModuleCounters, ModuleKind, ModuleSlot, ModuleState};
use crate::ndis_status::NdisStatus;
use crate::stats::DropReason;
use crate::taken::{Held, Origin, Taken};
use crate::wire::MacAddress;

/// What a hook decides to do with a taken packet it hands back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReinjectVerdict {
    /// Continue along the chain after the hook, then on to its destination.
    Pass,
    /// Drop it (counted as a hook drop).
    Drop,
}

/// Why a reinjection was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReinjectError {
    /// The ticket's module is not attached.
    UnknownModule(ModuleId),
    /// The packet is not held under that ticket: reinjected already, or dropped by the engine when
    /// the module paused or the link went down.
    StaleTicket(Ticket),
    /// Another hook took the packet held under that ticket (see [`Engine::reinject_as`]).
    NotTaker(Ticket),
}

impl fmt::Display for ReinjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReinjectError::UnknownModule(module) => write!(f, "{module} is not attached"),
            ReinjectError::StaleTicket(ticket) => write!(f, "no packet is held under ticket {} of {}", ticket.serial, ticket.module),
            ReinjectError::NotTaker(ticket) => write!(f, "ticket {} of {} belongs to another hook", ticket.serial, ticket.module),
        }
    }
}

/// One hook in a snapshot of the chain.
pub(crate) struct ChainEntry {
    pub(crate) id: HookId,
    pub(crate) position: ChainPosition,
    /// The hook, or `None` for the engine's built-in rule set.
    pub(crate) hook: Option<crate::hook::HookRef>,
}

/// Pass verdicts of one hook counted within one data-path call: added to the hook's shard once
/// when the call's snapshot drops, not once a packet.
#[derive(Clone, Copy, Default)]
struct PassCount {
    packets: u64,
    bytes: u64,
}

/// The hook chain as it was when a path started, in the order a packet travelling one way meets
/// it, with every hook marked busy until the snapshot is dropped. It lives on the stack: taking
/// it allocates nothing.
pub(crate) struct ChainSnapshot<'e> {
    entries: [Option<ChainEntry>; MAX_HOOKS],
    /// Entries in use, from the first.
    len: usize,
    slots: &'e [crate::hook::HookSlot; MAX_HOOKS],
    /// The processor whose shards marked the hooks held (and count their verdicts).
    processor: usize,
    /// Each entry's pass verdicts so far.
    passes: [Cell<PassCount>; MAX_HOOKS],
    /// Which way the entries are ordered: sends meet the chain from its top, receives from its
    /// bottom.
    direction: Direction,
}

impl ChainSnapshot<'_> {
    /// Entries in the snapshot's order (ascending chain position for [`Engine::chain_snapshot`]).
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &ChainEntry> {
        self.entries().iter().flatten()
    }

    fn entries(&self) -> &[Option<ChainEntry>] {
        self.entries.get(..self.len).unwrap_or_default()
    }
}

impl Drop for ChainSnapshot<'_> {
    fn drop(&mut self) {
        for (entry, passes) in self.entries.iter().take(self.len).zip(&self.passes) {
            if let Some(entry) = entry {
                let PassCount { packets, bytes } = passes.get();
                self.slots[usize::from(entry.id.slot)].leave_counting(self.processor, self.direction, packets, bytes);
            }
        }
    }
}

/// Where the chain sent a packet.
enum ChainResult<P> {
    Forward(Held<P>),
    Drop(Held<P>),
    Take { held: Held<P>, serial: u64, taker: HookId, position: ChainPosition },
}

/// Platform calls collected under locks and made after them.
pub(crate) struct Outbox<H: PacketIo> {
    down: H::Chain,
    complete: H::Chain,
    up: H::Chain,
    returns: H::Chain,
    in_flight: usize,
}

impl<H: PacketIo> Default for Outbox<H> {
    fn default() -> Self {
        Self { down: H::Chain::default(), complete: H::Chain::default(), up: H::Chain::default(), returns: H::Chain::default(), in_flight: 0 }
    }
}

impl<H: Hal> Outbox<H> {
    /// Queues a packet to go on to its destination.
    pub(crate) fn forward(&mut self, direction: Direction, held: Held<H::Packet>) {
        if held.origin == Origin::Own {
            self.in_flight += 1;
        }
        match direction {
            Direction::Send => self.down.push_back(held.packet),
            Direction::Receive => self.up.push_back(held.packet),
        }
    }

    /// Queues a dropped packet to go back to its owner.
    pub(crate) fn drop_packet(&mut self, hal: &H, direction: Direction, held: Held<H::Packet>, status: NdisStatus) {
        let foreign = match held.origin {
            Origin::Foreign => Some(held.packet),
            Origin::Own => hal.free(held.packet),
        };
        if let Some(mut packet) = foreign {
            match direction {
                Direction::Send => {
                    hal.set_status(&mut packet, status);
                    self.complete.push_back(packet);
                }
                Direction::Receive => self.returns.push_back(packet),
            }
        }
    }

    /// Makes the collected calls. No lock may be held. The module's in-flight count must already
    /// include `self.in_flight`.
    pub(crate) fn flush(self, engine: &Engine<H>, module: ModuleId, ctx: PathContext) {
        let hal = &engine.hal;
        if !self.complete.is_empty() {
            hal.complete_sends(module, self.complete, ctx);
        }
        if !self.returns.is_empty() {
            hal.return_receives(module, self.returns, ctx);
        }
        if !self.down.is_empty() {
            hal.send_down(module, self.down, ctx);
        }
        if !self.up.is_empty() {
            // Without the resources flag the protocol keeps the packets until it returns them.
            let _none_lent_back = hal.indicate_up(module, self.up, false, ctx);
        }
    }
}

/// Taken packets moved out of a module's store under its lock, to be dropped after the lock is
/// released: under the lock only chain links and counters are touched.
pub(crate) struct Disposal<H: PacketIo> {
    reason: DropReason,
    sends: [H::Chain; 2],
    receives: [H::Chain; 2],
}

impl<H: Hal> Disposal<H> {
    pub(crate) fn new(reason: DropReason) -> Self {
        Self { reason, sends: Default::default(), receives: Default::default() }
    }

    /// Takes one packet out of the store's bookkeeping, counting the drop on the module and on its
    /// link if the link is still in `links`.
    pub(crate) fn add(&mut self, counters: &ModuleCounters, links: &H::ReadMostly<LinkTable>, taken: Taken<H::Packet>) {
        counters.direction(taken.direction).count_drop(self.reason);
        links.read(|links| {
            if let Some(link) = links.get(&taken.link.remote_address) {
                link.counters(taken.direction).count_drop();
            }
        });
        let chains = match taken.direction {
            Direction::Send => &mut self.sends,
            Direction::Receive => &mut self.receives,
        };
        chains[usize::from(taken.held.origin == Origin::Own)].push_back(taken.held.packet);
    }

    /// Queues every packet back to its owner.
    pub(crate) fn drop_into(self, hal: &H, out: &mut Outbox<H>) {
        let status = Engine::<H>::drop_status(self.reason);
        for (direction, chains) in [(Direction::Send, self.sends), (Direction::Receive, self.receives)] {
            for (origin, mut chain) in [Origin::Foreign, Origin::Own].into_iter().zip(chains) {
                while let Some(packet) = chain.pop_front() {
                    out.drop_packet(hal, direction, Held { packet, origin }, status);
                }
            }
        }
    }
}

/// The hooks' view of a packet the engine holds.
struct EngineFrame<'a, H: PacketIo> {
    hal: &'a H,
    module: ModuleId,
    held: &'a mut Held<H::Packet>,
    /// During a receive indicated with the resources flag: where the miniport's packets go back.
    lent: Option<&'a mut H::Chain>,
}

impl<H: Hal> EngineFrame<'_, H> {
    /// Puts the engine's own `fresh` packet in place of the held one, keeping the old one as its
    /// parent (or giving it back to the miniport when it was only lent).
    fn swap_in(&mut self, fresh: H::Packet) {
        let old = core::mem::replace(self.held, Held { packet: fresh, origin: Origin::Own });
        let parent = match old.origin {
            Origin::Own => self.hal.free(old.packet),
            Origin::Foreign => match self.lent.as_deref_mut() {
                Some(lent) => {
                    lent.push_back(old.packet);
                    None
                }
                None => Some(old.packet),
            },
        };
        if let Some(parent) = parent {
            self.hal.attach_parent(&mut self.held.packet, parent);
        }
    }
}

impl<H: Hal> FrameAccess for EngineFrame<'_, H> {
    fn len(&self) -> usize {
        self.hal.frame_len(&self.held.packet)
    }

    fn read(&self, offset: usize, out: &mut [u8]) -> usize {
        self.hal.read(&self.held.packet, offset, out)
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), EditError> {
        match self.hal.write(&mut self.held.packet, offset, data) {
            Ok(()) => Ok(()),
            Err(WriteError::OutOfRange) => Err(EditError::OutOfRange),
            Err(WriteError::ReadOnly) => {
                let copy = self.hal.allocate(self.module, FrameSource::CopyOf(&self.held.packet)).map_err(|_| EditError::OutOfMemory)?;
                self.swap_in(copy);
                self.hal.write(&mut self.held.packet, offset, data).map_err(|_| EditError::OutOfRange)
            }
        }
    }

    fn replace(&mut self, frame: &[u8]) -> Result<(), EditError> {
        if frame.is_empty() {
            return Err(EditError::BadLength);
        }
        let fresh = self.hal.allocate(self.module, FrameSource::Bytes(frame)).map_err(|_| EditError::OutOfMemory)?;
        self.swap_in(fresh);
        Ok(())
    }
}

/// Packets a call counted on its module, added once when the call ends (one write of the module's
/// shared counters per chain, not per packet).
#[derive(Default)]
struct Tally {
    packets: u64,
    bytes: u64,
}

impl Tally {
    /// Adds the call's counts to its processor's shard of the module's gate (no shared line).
    fn count_on(&self, gate: &crate::gate::ModuleGate, processor: usize, direction: Direction) {
        if self.packets > 0 {
            gate.count_traffic(processor, direction, self.packets, self.bytes);
        }
    }
}

/// Packets [`Engine::pass_chain`] counts per read of the link table.
const PASS_BATCH: usize = 32;

/// What classifying a frame needs of it, read before any lock is taken (the platform is not
/// called under a lock).
#[derive(Clone, Copy)]
struct FrameHead {
    /// The address that names the frame's link (the destination of a send, the source of a
    /// receive) as one word, or [`FrameHead::SHORT_KEY`] when the frame does not hold both
    /// addresses: a run of frames of one link is one compare a frame.
    key: u64,
    /// The source address packed as [`FrameHead::key`] is (a send on a provisional link shows
    /// the local address with it).
    source: u64,
    /// The frame's length, as the word it is summed in (no conversion a frame).
    len: u64,
}

impl FrameHead {
    const EMPTY: FrameHead = FrameHead { key: Self::SHORT_KEY, source: 0, len: 0 };
    /// An unread head of zeros, for a hooked call's batch (made on every call): an array of it
    /// is zeroed in place, where one of [`FrameHead::EMPTY`] was built aside and copied in
    /// (measured: 38 instructions a hooked call).
    const ZEROED: FrameHead = FrameHead { key: 0, source: 0, len: 0 };
    /// No address packs to this word (its two top bytes are not zero).
    const SHORT_KEY: u64 = u64::MAX;
    /// The bytes of a frame's two addresses (destination, then source).
    const ADDRESS_BYTES: usize = 12;
    /// The six bytes of an address packed into a word.
    const ADDRESS_MASK: u64 = (1 << 48) - 1;

    #[inline]
    fn of<H: PacketIo>(hal: &H, packet: &H::Packet, direction: Direction) -> FrameHead {
        // Read into a 16-byte buffer so both addresses come out of one word with shifts.
        let mut buffer = [0u8; 16];
        let (addresses, _) = buffer.split_at_mut(Self::ADDRESS_BYTES);
        let complete = hal.read(packet, 0, addresses) == Self::ADDRESS_BYTES;
        let word = u128::from_le_bytes(buffer);
        let destination = word as u64 & Self::ADDRESS_MASK;
        let source = (word >> 48) as u64 & Self::ADDRESS_MASK;
        let key = match (complete, direction) {
            (false, _) => Self::SHORT_KEY,
            (true, Direction::Send) => destination,
            (true, Direction::Receive) => source,
        };
        let len = u64::try_from(hal.frame_len(packet)).unwrap_or(u64::MAX);
        FrameHead { key, source, len }
    }

    /// The address [`FrameHead::key`] packs, unless the frame is short.
    fn key_address(&self) -> Option<MacAddress> {
        (self.key != Self::SHORT_KEY).then(|| Self::unpack(self.key))
    }

    /// The frame's source address, for the hooked path's classification: needed only when a
    /// link's local address is learned, and kept out of line because the compiler otherwise
    /// unpacks it on every lookup there (about 12 instructions a call; `count_runs` unpacks in line,
    /// where it is not hoisted).
    #[cold]
    #[inline(never)]
    fn source_address(&self) -> MacAddress {
        Self::unpack(self.source)
    }

    fn unpack(word: u64) -> MacAddress {
        let [a, b, c, d, e, f, _, _] = word.to_le_bytes();
        MacAddress([a, b, c, d, e, f])
    }
}

/// Counts frames on their links within the link table's read side, one lookup and one add of
/// the link's counters per run of consecutive frames with the same key address. Returns the
/// frames' bytes, the frames with no live link and, for a send on a link whose local address is
/// provisional, the address to learn.
fn count_runs(links: &LinkTable, direction: Direction, heads: &[FrameHead]) -> RunCounts {
    let mut counts = RunCounts { bytes: 0, unmatched: 0, learn: None };
    let mut heads = heads.iter();
    let Some(mut first) = heads.next() else { return counts };
    loop {
        let (mut packets, mut bytes) = (1u64, first.len);
        let mut next = None;
        for head in heads.by_ref() {
            if head.key != first.key {
                next = Some(head);
                break;
            }
            packets += 1;
            bytes += head.len;
        }
        counts.bytes += bytes;
        match first.key_address().and_then(|key| links.get(&key)) {
            Some(link) => {
                link.counters(direction).count_packets(packets, bytes);
                if direction == Direction::Send && counts.learn.is_none() && link.local_address_provisional() {
                    counts.learn = Some((link.summary().remote_address, FrameHead::unpack(first.source)));
                }
            }
            None => counts.unmatched += packets,
        }
        match next {
            Some(head) => first = head,
            None => return counts,
        }
    }
}

/// What [`count_runs`] found in a batch of frames.
struct RunCounts {
    /// The bytes of every frame of the batch.
    bytes: u64,
    /// Frames with no live link.
    unmatched: u64,
    /// For a send on a link whose local address is provisional: its remote address and the
    /// local address the frame showed.
    learn: Option<(MacAddress, MacAddress)>,
}

/// Packets the hooked path classifies per read of the link table (kept small: a batch of
/// classified packets lives on the kernel stack beside the chain snapshot).
const HOOKED_BATCH: usize = 8;

/// Up to [`HOOKED_BATCH`] packets of a hooked call, taken from its chain and classified
/// together (their heads read first, with no lock), then handed out one by one.
struct Batch<H: PacketIo> {
    packets: H::Chain,
    heads: [FrameHead; HOOKED_BATCH],
    found: [Classified; HOOKED_BATCH],
    count: usize,
}

impl<H: PacketIo> Default for Batch<H> {
    fn default() -> Self {
        Self { packets: H::Chain::default(), heads: [FrameHead::ZEROED; HOOKED_BATCH], found: [Classified::Unmatched; HOOKED_BATCH], count: 0 }
    }
}

impl<H: Hal> Batch<H> {
    /// Takes the next packets of `chain` and classifies them ([`Engine::classify_batch`]).
    /// False when `chain` is empty.
    #[allow(clippy::too_many_arguments)]
    fn classify(
        &mut self,
        engine: &Engine<H>,
        module: ModuleId,
        slot: &ModuleSlot<H>,
        kind: ModuleKind,
        direction: Direction,
        chain: &mut H::Chain,
        tally: &mut Tally,
    ) -> bool {
        self.count = 0;
        for head in &mut self.heads {
            let Some(packet) = chain.pop_front() else { break };
            *head = FrameHead::of(&engine.hal, &packet, direction);
            self.packets.push_back(packet);
            self.count += 1;
        }
        let (Some(heads), Some(found)) = (self.heads.get(..self.count), self.found.get_mut(..self.count)) else { return false };
        if heads.is_empty() {
            return false;
        }
        engine.classify_batch(module, slot, kind, direction, heads, tally, found);
        true
    }

    /// The batch's packets with where each belongs, in order.
    fn packets(&mut self) -> impl Iterator<Item = (H::Packet, Classified)> + '_ {
        let found = self.found.get(..self.count).unwrap_or_default();
        found.iter().map_while(|classified| Some((self.packets.pop_front()?, *classified)))
    }
}

/// Where a packet belongs.
#[derive(Clone, Copy)]
enum Classified {
    /// The module is not Running (or not this module any more).
    NotRunning,
    /// The module is not on an NdisWan edge: traffic passes untouched.
    PassThrough,
    /// No live link has the frame's address.
    Unmatched,
    /// The frame belongs to this link.
    Link(LinkSummary),
}

impl Classified {
    /// What capture records of the packet: `None` when it is not passed on (module not Running),
    /// else its link, if any.
    fn capture_link(&self) -> Option<Option<crate::link::LinkId>> {
        match self {
            Classified::NotRunning => None,
            Classified::PassThrough | Classified::Unmatched => Some(None),
            Classified::Link(link) => Some(Some(link.id)),
        }
    }
}

impl<H: Hal> Engine<H> {
    /// Snapshots the hook chain, marking every hook in it busy until the snapshot is dropped.
    pub(crate) fn chain_snapshot(&self) -> ChainSnapshot<'_> {
        self.chain_snapshot_for(Direction::Receive)
    }

    /// [`Self::chain_snapshot`] in the order a packet travelling `direction` meets the hooks.
    pub(crate) fn chain_snapshot_for(&self, direction: Direction) -> ChainSnapshot<'_> {
        let mut snapshot = self.empty_chain_snapshot(direction);
        self.hold_chain(&mut snapshot);
        snapshot
    }

    /// Fills an empty snapshot with the registered hooks, marking each held on the snapshot's
    /// processor (in place: a snapshot is too large to move cheaply).
    fn hold_chain(&self, snapshot: &mut ChainSnapshot<'_>) {
        let (processor, direction) = (snapshot.processor, snapshot.direction);
        let (entries, len) = (&mut snapshot.entries, &mut snapshot.len);
        self.hooks.read(|registry| {
            let count = registry.hooks.len().min(MAX_HOOKS);
            for (step, place) in entries.iter_mut().enumerate().take(count) {
                let index = match direction {
                    Direction::Send => count - 1 - step,
                    Direction::Receive => step,
                };
                let Some(registered) = registry.hooks.get(index) else { break };
                self.hook_slots[usize::from(registered.id.slot)].enter(processor);
                *place = Some(ChainEntry { id: registered.id, position: registered.position, hook: registered.hook.clone() });
                *len = step + 1;
            }
        });
    }

    /// A snapshot with no hook (nothing to run, nothing held).
    fn empty_chain_snapshot(&self, direction: Direction) -> ChainSnapshot<'_> {
        ChainSnapshot {
            entries: Default::default(),
            len: 0,
            slots: &self.hook_slots,
            processor: self.hal.current_processor(),
            passes: Default::default(),
            direction,
        }
    }

    /// Finds the links of a batch of frames read beforehand (`heads`; no platform call here), in
    /// one read of the link table, into `found` (one a frame): on send the destination address
    /// is the link's remote address, on receive the source address is. Counts the packets (on
    /// the module in `tally`, on their links once per run of frames of the same link). A send
    /// on a link whose line-up answer came late ([`Engine::line_up_answer_pending`]) also shows
    /// its final local address (the frame's source): it is recorded and announced
    /// ([`Event::LineUpdated`](crate::event::Event)), and the batch's packets of that link carry
    /// it.
    #[allow(clippy::too_many_arguments)]
    fn classify_batch(
        &self,
        module: ModuleId,
        slot: &ModuleSlot<H>,
        kind: ModuleKind,
        direction: Direction,
        heads: &[FrameHead],
        tally: &mut Tally,
        found: &mut [Classified],
    ) {
        let running = slot.gate.is_open_to(module);
        let classify = |links: Option<&LinkTable>, tally: &mut Tally, found: &mut [Classified]| {
            let mut learn = None;
            let mut unmatched = 0u64;
            // The run of frames with the key of the last lookup: its link and what it counted.
            let mut run: Option<(u64, Option<&crate::link::Link>)> = None;
            let (mut run_packets, mut run_bytes) = (0u64, 0u64);
            for (head, place) in heads.iter().zip(found.iter_mut()) {
                if !running {
                    *place = Classified::NotRunning;
                    continue;
                }
                tally.packets += 1;
                tally.bytes += head.len;
                let Some(links) = links else {
                    *place = Classified::PassThrough;
                    continue;
                };
                match run {
                    Some((key, link)) if key == head.key => {
                        match link {
                            Some(link) => {
                                run_packets += 1;
                                run_bytes += head.len;
                                *place = Classified::Link(link.summary());
                            }
                            None => {
                                unmatched += 1;
                                *place = Classified::Unmatched;
                            }
                        }
                        continue;
                    }
                    Some((_, Some(link))) => link.counters(direction).count_packets(run_packets, run_bytes),
                    _ => {}
                }
                let link = head.key_address().and_then(|key| links.get(&key));
                match link {
                    Some(link) => {
                        (run_packets, run_bytes) = (1, head.len);
                        *place = Classified::Link(link.summary());
                        if direction == Direction::Send && learn.is_none() && link.local_address_provisional() {
                            learn = Some((link.summary().remote_address, head.source_address()));
                        }
                    }
                    None => {
                        unmatched += 1;
                        *place = Classified::Unmatched;
                    }
                }
                run = Some((head.key, link));
            }
            if let Some((_, Some(link))) = run {
                link.counters(direction).count_packets(run_packets, run_bytes);
            }
            if unmatched > 0 {
                slot.counters.direction(direction).count_unmatched_packets(unmatched);
            }
            learn
        };
        let learn = match kind.is_wan() && running {
            true => slot.links.read(|links| classify(Some(links), tally, found)),
            false => classify(None, tally, found),
        };
        if let Some((remote, source)) = learn {
            if let Some(learned) = self.learn_local_address(module, slot, &remote, source) {
                for place in found.iter_mut() {
                    if let Classified::Link(summary) = place {
                        if summary.remote_address == remote {
                            *summary = learned;
                        }
                    }
                }
            }
        }
    }

    /// Records the local address a send on a provisional link showed, and announces it.
    fn learn_local_address(&self, module: ModuleId, slot: &ModuleSlot<H>, remote: &MacAddress, source: MacAddress) -> Option<LinkSummary> {
        let learned = slot.links.with(|links| links.learn_local_address(remote, source))?;
        self.hal.log(
            crate::hal::Level::Info,
            format_args!("{module}: the local address of {} is {} (learned from its first send)", learned.remote_address, learned.local_address),
        );
        self.push_event(crate::event::Event::LineUpdated(learned));
        Some(learned)
    }

    /// The common case of a send or receive, from the call's start to its end: no hook to run,
    /// no capture session, nothing lent. Every packet goes on in one platform call, with no
    /// outbox ([`Self::pass_chain`]); what a module that stopped Running meanwhile did not take
    /// is dropped. In line in its callers, as [`Self::enter`] is (measured together: a send of
    /// one packet 826 -> 799 instructions).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pass_call(
        &self,
        module: ModuleId,
        slot: &ModuleSlot<H>,
        kind: ModuleKind,
        call: Call,
        processor: usize,
        direction: Direction,
        mut chain: H::Chain,
        ctx: PathContext,
    ) {
        let mut onward = H::Chain::default();
        let mut tally = Tally::default();
        let running = self.pass_chain(module, slot, kind, direction, &mut chain, &mut onward, &mut tally);
        if !onward.is_empty() {
            match direction {
                Direction::Send => self.hal.send_down(module, onward, ctx),
                Direction::Receive => {
                    // Without the resources flag the protocol keeps the packets until it returns them.
                    let _none_lent_back = self.hal.indicate_up(module, onward, false, ctx);
                }
            }
        }
        if !running {
            let mut out = Outbox::<H>::default();
            self.drop_paused(slot, direction, &mut chain, &mut out);
            out.flush(self, module, ctx);
        }
        let finished = match call {
            Call::Gated => slot.gate.leave_counting(processor, direction, tally.packets, tally.bytes) == AfterLeaving::Closed && slot.refresh_gate(),
            Call::Locked => {
                tally.count_on(&slot.gate, processor, direction);
                slot.core.with(ModuleCore::leave_data_path)
            }
        };
        if finished {
            self.finish_pause(module);
        }
    }

    /// Moves every packet of `chain` to `onward`, counting them in `tally` and on their links:
    /// [`PASS_BATCH`] packets at a time have their heads read (no lock) as they move, then are
    /// counted in one read of the link table, one lookup and one add of the link's counters per
    /// run of consecutive packets of the same link. False when the module stopped Running
    /// (checked once per batch): what is left in `chain` is to be dropped.
    #[allow(clippy::too_many_arguments)]
    fn pass_chain(
        &self,
        module: ModuleId,
        slot: &ModuleSlot<H>,
        kind: ModuleKind,
        direction: Direction,
        chain: &mut H::Chain,
        onward: &mut H::Chain,
        tally: &mut Tally,
    ) -> bool {
        // A chain of one packet (the common send) needs no batch.
        let Some(packet) = chain.pop_front() else { return true };
        let first = FrameHead::of(&self.hal, &packet, direction);
        onward.push_back(packet);
        if chain.is_empty() {
            tally.packets += 1;
            tally.bytes += self.count_on_links(module, slot, kind, direction, core::slice::from_ref(&first));
            return true;
        }
        let mut heads = [FrameHead::EMPTY; PASS_BATCH];
        heads[0] = first;
        let mut count = 1;
        loop {
            for head in heads.iter_mut().skip(count) {
                let Some(packet) = chain.pop_front() else { break };
                *head = FrameHead::of(&self.hal, &packet, direction);
                onward.push_back(packet);
                count += 1;
            }
            let Some(batch) = heads.get(..count) else { return true };
            tally.packets += count as u64;
            tally.bytes += self.count_on_links(module, slot, kind, direction, batch);
            if count < PASS_BATCH || chain.is_empty() {
                return true;
            }
            if !slot.gate.is_open_to(module) {
                return false;
            }
            count = 0;
        }
    }

    /// Counts a batch of frames on their links in one read of the link table (a module on an
    /// NdisWan edge), and learns a local address a send showed. Returns the frames' bytes.
    fn count_on_links(&self, module: ModuleId, slot: &ModuleSlot<H>, kind: ModuleKind, direction: Direction, heads: &[FrameHead]) -> u64 {
        if !kind.is_wan() {
            return heads.iter().map(|head| head.len).sum();
        }
        let counts = slot.links.read(|links| count_runs(links, direction, heads));
        if counts.unmatched > 0 {
            slot.counters.direction(direction).count_unmatched_packets(counts.unmatched);
        }
        if let Some((remote, source)) = counts.learn {
            self.learn_local_address(module, slot, &remote, source);
        }
        counts.bytes
    }

    /// Drops every packet left in `chain`: the module is no longer Running.
    fn drop_paused(&self, slot: &ModuleSlot<H>, direction: Direction, chain: &mut H::Chain, out: &mut Outbox<H>) {
        let status = Self::drop_status(DropReason::Paused);
        let counters = slot.counters.direction(direction);
        while let Some(packet) = chain.pop_front() {
            counters.count_packet(self.hal.frame_len(&packet));
            counters.count_drop(DropReason::Paused);
            out.drop_packet(&self.hal, direction, Held { packet, origin: Origin::Foreign }, status);
        }
    }

    /// True while a capture session may want packets: the data path then goes packet by packet.
    fn capturing(&self) -> bool {
        self.control.capture_active.load(core::sync::atomic::Ordering::Relaxed) != 0
    }

    /// Runs the hooks a packet meets travelling `direction`, starting after `after` when resuming.
    /// Per hook: one indirect call and a verdict check; a pass is counted in the snapshot (see
    /// [`PassCount`]), any other verdict on the hook's shard at once.
    #[allow(clippy::too_many_arguments)]
    fn run_chain(
        &self,
        module: ModuleId,
        hooks: &ChainSnapshot<'_>,
        direction: Direction,
        mut held: Held<H::Packet>,
        link: LinkSummary,
        after: Option<ChainPosition>,
        mut lent: Option<&mut H::Chain>,
        counters: &ModuleCounters,
    ) -> ChainResult<H::Packet> {
        let entries = hooks.entries();
        // Resuming: the hooks after the taker are a suffix of the snapshot.
        let mut step = match after {
            None => 0,
            Some(after) => entries.iter().flatten().position(|entry| entry.position.is_after(after, direction)).unwrap_or(entries.len()),
        };
        let (mut ticket, mut shown, mut modified, mut result) = (None, None, false, None);
        // One context for the packet's whole way through the chain; made again only after a
        // rule asked for a capture of the packet (which needs the packet, not the context).
        loop {
            let mut frame = EngineFrame { hal: &self.hal, module, held: &mut held, lent: lent.as_deref_mut() };
            let mut packet = PacketContext::with_lazy_ticket(direction, link, &mut frame, module, &self.next_ticket).with_ticket(ticket);
            let mut len = *shown.get_or_insert_with(|| packet.len());
            let mut capture = None;
            while let Some(Some(entry)) = entries.get(step) {
                let index = step;
                step += 1;
                let (verdict, capture_rule) = match (&entry.hook, direction) {
                    (Some(hook), Direction::Send) => (hook.on_send(&mut packet), None),
                    (Some(hook), Direction::Receive) => (hook.on_receive(&mut packet), None),
                    (None, _) => match self.control.divert.index_of(entry.id) {
                        Some(user_mode) => (self.divert_verdict(user_mode, &packet), None),
                        None => self.rules_verdict(&packet),
                    },
                };
                let shown_len = len;
                if packet.take_edited() {
                    modified = true;
                    len = packet.len();
                }
                if verdict == Verdict::Pass && capture_rule.is_none() {
                    if let Some(passes) = hooks.passes.get(index) {
                        let PassCount { packets, bytes } = passes.get();
                        passes.set(PassCount { packets: packets + 1, bytes: bytes + shown_len as u64 });
                    }
                    continue;
                }
                self.hook_slots[usize::from(entry.id.slot)].count_verdict(hooks.processor, direction, shown_len, verdict);
                match verdict {
                    Verdict::Pass | Verdict::Modify => {}
                    Verdict::Drop => result = Some(Err(())),
                    Verdict::Take => result = Some(Ok((packet.ticket().serial, entry.id, entry.position))),
                }
                if capture_rule.is_some() || result.is_some() {
                    capture = capture_rule;
                    break;
                }
            }
            // The context (and its borrow of the packet) ends here.
            ticket = packet.drawn_ticket();
            shown = Some(len);
            match capture {
                Some(rule) => self.capture_for_rule(module, link.id, direction, &held.packet, rule),
                None => break,
            }
            if result.is_some() {
                break;
            }
        }
        if modified {
            counters.direction(direction).count_modified();
        }
        match result {
            None => ChainResult::Forward(held),
            Some(Err(())) => ChainResult::Drop(held),
            Some(Ok((serial, taker, position))) => ChainResult::Take { held, serial, taker, position },
        }
    }

    /// Indicates one lent packet with the resources flag and keeps it to give back.
    fn indicate_lent(&self, module: ModuleId, packet: H::Packet, ctx: PathContext, lent: &mut H::Chain) {
        let mut single = H::Chain::default();
        single.push_back(packet);
        let mut back = self.hal.indicate_up(module, single, true, ctx);
        while let Some(packet) = back.pop_front() {
            lent.push_back(packet);
        }
    }

    /// Counts a drop on the module and on the packet's link, if it is still up.
    pub(crate) fn count_drop(&self, slot: &ModuleSlot<H>, direction: Direction, link: &LinkSummary, reason: DropReason) {
        slot.counters.direction(direction).count_drop(reason);
        slot.links.read(|links| {
            if let Some(link) = links.get(&link.remote_address) {
                link.counters(direction).count_drop();
            }
        });
    }

    /// Indicates one of the engine's own packets at once, counting it in flight first (the
    /// protocol may return it before the indication returns; under the module's lock, as the call
    /// may have started there). Used while a lent chain is being
    /// walked, so that packets reach the protocol in the order they came.
    fn indicate_own_now(&self, module: ModuleId, slot: &ModuleSlot<H>, packet: H::Packet, ctx: PathContext) {
        self.count_out_locked(slot, 1);
        let mut single = H::Chain::default();
        single.push_back(packet);
        // Without the resources flag the protocol keeps the packet until it returns it.
        let _none_lent_back = self.hal.indicate_up(module, single, false, ctx);
    }

    /// Passes a received packet up untouched.
    fn pass_receive(&self, module: ModuleId, held: Held<H::Packet>, lent: Option<&mut H::Chain>, ctx: PathContext, out: &mut Outbox<H>) {
        match lent {
            Some(lent) => self.indicate_lent(module, held.packet, ctx, lent),
            None => out.forward(Direction::Receive, held),
        }
    }

    /// Takes one packet through the chain and applies the verdict.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn process(
        &self,
        module: ModuleId,
        slot: &ModuleSlot<H>,
        hooks: &ChainSnapshot<'_>,
        direction: Direction,
        held: Held<H::Packet>,
        link: LinkSummary,
        after: Option<ChainPosition>,
        mut lent: Option<&mut H::Chain>,
        ctx: PathContext,
        out: &mut Outbox<H>,
    ) {
        let result = if hooks.len == 0 {
            ChainResult::Forward(held)
        } else {
            self.run_chain(module, hooks, direction, held, link, after, lent.as_deref_mut(), &slot.counters)
        };
        match result {
            ChainResult::Forward(held) => match (lent, held.origin) {
                (Some(lent), Origin::Foreign) => self.indicate_lent(module, held.packet, ctx, lent),
                (Some(_), Origin::Own) => self.indicate_own_now(module, slot, held.packet, ctx),
                (None, _) => out.forward(direction, held),
            },
            ChainResult::Drop(held) => {
                self.count_drop(slot, direction, &link, DropReason::Hook);
                match lent {
                    Some(lent) if held.origin == Origin::Foreign => lent.push_back(held.packet),
                    _ => out.drop_packet(&self.hal, direction, held, Self::drop_status(DropReason::Hook)),
                }
            }
            ChainResult::Take { held, serial, taker, position } => {
                let held = match lent {
                    Some(lent) if held.origin == Origin::Foreign => {
                        let copy = self.hal.allocate(module, FrameSource::CopyOf(&held.packet));
                        lent.push_back(held.packet);
                        match copy {
                            Ok(packet) => {
                                slot.counters.direction(direction).count_copied_for_resources();
                                Held { packet, origin: Origin::Own }
                            }
                            Err(_) => {
                                self.count_drop(slot, direction, &link, DropReason::Resources);
                                return;
                            }
                        }
                    }
                    _ => held,
                };
                let taken = Taken { held, direction, link, taker, position, check_for_loopback: ctx.check_for_loopback };
                let stored = slot.core.with(|core| {
                    if core.state != ModuleState::Running {
                        return Err((taken, DropReason::Paused));
                    }
                    core.taken.insert(&self.hal, serial, taken).map_err(|taken| (taken, DropReason::Resources))
                });
                match stored {
                    Ok(()) => slot.counters.direction(direction).count_taken(),
                    Err((taken, reason)) => {
                        self.count_drop(slot, direction, &link, reason);
                        out.drop_packet(&self.hal, direction, taken.held, Self::drop_status(reason));
                    }
                }
            }
        }
    }

    /// Starts a data-path call on `module`: through its gate, with no lock, while it is Running;
    /// otherwise under its lock, which also finds out why it is not.
    #[inline(always)]
    fn enter(&self, module: ModuleId, processor: usize) -> Entry<'_, H> {
        let Some(slot) = self.slot(module) else { return Entry::Unknown };
        let closed = match slot.gate.enter(processor, module) {
            Ok(kind) => return Entry::Running(slot, kind, Call::Gated),
            Err(after) => after == AfterLeaving::Closed,
        };
        let mut finished = false;
        let entry = slot.core.with(|core| {
            if closed {
                core.gate_busy = !slot.gate.is_open() && !slot.gate.is_drained();
                finished = core.try_finish_pause();
            }
            match core.enter_data_path(module) {
                Some(kind) => Entry::Running(slot, kind, Call::Locked),
                None if core.is(module) => Entry::NotRunning(slot, core.state),
                None => Entry::Unknown,
            }
        });
        if finished {
            self.finish_pause(module);
        }
        entry
    }

    /// Counts `count` packets the module originated as out, before they are handed on, in a call
    /// started under the module's lock: the gate's count alone does not hold a pause that began
    /// after the call did, so the module's core is told under its lock (where a closed gate is
    /// seen) that the gate is busy. A call through the gate needs the gate's count
    /// only: its own count holds the pause until these are counted.
    fn count_out_locked(&self, slot: &ModuleSlot<H>, count: usize) {
        if count == 0 {
            return;
        }
        slot.gate.packets_out(self.hal.current_processor(), count);
        slot.core.with(|core| core.gate_busy |= !slot.gate.is_open());
    }

    /// Counts what `out` originated as out, makes its calls, and ends the data-path call started
    /// under the module's lock ([`ModuleCore::enter_data_path`]), finishing a pause that waited
    /// for it.
    pub(crate) fn commit(&self, module: ModuleId, slot: &ModuleSlot<H>, out: Outbox<H>, ctx: PathContext) {
        self.count_out_locked(slot, out.in_flight);
        out.flush(self, module, ctx);
        if slot.core.with(ModuleCore::leave_data_path) {
            self.finish_pause(module);
        }
    }

    /// [`Self::commit`] for a call started by [`Self::enter`], through the gate or the lock.
    fn commit_call(&self, module: ModuleId, slot: &ModuleSlot<H>, call: Call, processor: usize, out: Outbox<H>, ctx: PathContext) {
        match call {
            Call::Locked => self.commit(module, slot, out, ctx),
            Call::Gated => {
                if out.in_flight > 0 {
                    slot.gate.packets_out(processor, out.in_flight);
                }
                out.flush(self, module, ctx);
                if slot.gate.leave(processor) == AfterLeaving::Closed && slot.refresh_gate() {
                    self.finish_pause(module);
                }
            }
        }
    }

    /// `FilterSendNetBufferLists`: every packet is sent down, completed, or held by a hook.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`; `ctx.at_dispatch` says which.
    ///
    /// # Ownership
    /// The chain is the engine's on entry; each packet is handed back exactly once, now or later.
    pub fn send(&self, module: ModuleId, mut chain: H::Chain, ctx: PathContext) {
        let processor = self.hal.current_processor();
        let (slot, kind, call) = match self.enter(module, processor) {
            Entry::Running(slot, kind, call) => (slot, kind, call),
            Entry::NotRunning(slot, _) => {
                let mut out = Outbox::<H>::default();
                while let Some(packet) = chain.pop_front() {
                    slot.counters.send.count_packet(self.hal.frame_len(&packet));
                    slot.counters.send.count_drop(DropReason::Paused);
                    out.drop_packet(&self.hal, Direction::Send, Held { packet, origin: Origin::Foreign }, NdisStatus::PAUSED);
                }
                return out.flush(self, module, ctx);
            }
            Entry::Unknown => {
                let mut out = Outbox::<H>::default();
                while let Some(packet) = chain.pop_front() {
                    out.drop_packet(&self.hal, Direction::Send, Held { packet, origin: Origin::Foreign }, NdisStatus::FAILURE);
                }
                return out.flush(self, module, ctx);
            }
        };
        let hooked = kind.is_wan() && !self.hooks.is_empty();
        if !hooked && !self.capturing() {
            return self.pass_call(module, slot, kind, call, processor, Direction::Send, chain, ctx);
        }
        let mut out = Outbox::<H>::default();
        let mut tally = Tally::default();
        let mut hooks = self.empty_chain_snapshot(Direction::Send);
        if hooked {
            self.hold_chain(&mut hooks);
        }
        let mut batch = Batch::<H>::default();
        while batch.classify(self, module, slot, kind, Direction::Send, &mut chain, &mut tally) {
            for (packet, classified) in batch.packets() {
                let held = Held { packet, origin: Origin::Foreign };
                if let Some(link) = classified.capture_link() {
                    self.capture(module, link, Direction::Send, &held.packet, false);
                }
                match classified {
                    Classified::NotRunning => {
                        slot.counters.send.count_packet(self.hal.frame_len(&held.packet));
                        slot.counters.send.count_drop(DropReason::Paused);
                        out.drop_packet(&self.hal, Direction::Send, held, NdisStatus::PAUSED);
                    }
                    Classified::PassThrough | Classified::Unmatched => out.forward(Direction::Send, held),
                    Classified::Link(link) => self.process(module, slot, &hooks, Direction::Send, held, link, None, None, ctx, &mut out),
                }
            }
        }
        drop(hooks);
        tally.count_on(&slot.gate, processor, Direction::Send);
        self.commit_call(module, slot, call, processor, out, ctx);
    }

    /// `FilterReceiveNetBufferLists`: every packet is indicated up, returned, or held by a hook.
    ///
    /// Returns the packets the miniport only lent (`resources` set): all of them, after the call,
    /// for the platform to give back in the state they came. Empty otherwise.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`; `ctx.at_dispatch` says which.
    ///
    /// # Ownership
    /// Without `resources`, the chain is the engine's until returned through the platform's
    /// `return_receives`; with it, every packet comes back in the return value, and whatever a hook
    /// keeps is a copy.
    #[must_use = "packets lent with the resources flag must be given back to the miniport"]
    pub fn receive(&self, module: ModuleId, mut chain: H::Chain, resources: bool, ctx: PathContext) -> H::Chain {
        let mut lent = H::Chain::default();
        let processor = self.hal.current_processor();
        let (slot, kind, call) = match self.enter(module, processor) {
            Entry::Running(slot, kind, call) => (slot, kind, call),
            Entry::NotRunning(_, ModuleState::Pausing) => return self.hal.indicate_up(module, chain, resources, ctx),
            Entry::NotRunning(slot, _) => {
                let mut out = Outbox::<H>::default();
                while let Some(packet) = chain.pop_front() {
                    slot.counters.receive.count_packet(self.hal.frame_len(&packet));
                    slot.counters.receive.count_drop(DropReason::Paused);
                    match resources {
                        true => lent.push_back(packet),
                        false => out.drop_packet(&self.hal, Direction::Receive, Held { packet, origin: Origin::Foreign }, NdisStatus::PAUSED),
                    }
                }
                out.flush(self, module, ctx);
                return lent;
            }
            Entry::Unknown if resources => return chain,
            Entry::Unknown => {
                self.hal.return_receives(module, chain, ctx);
                return lent;
            }
        };
        let hooked = kind.is_wan() && !self.hooks.is_empty();
        if !hooked && !resources && !self.capturing() {
            self.pass_call(module, slot, kind, call, processor, Direction::Receive, chain, ctx);
            return lent;
        }
        let mut out = Outbox::<H>::default();
        let mut tally = Tally::default();
        let mut hooks = self.empty_chain_snapshot(Direction::Receive);
        if hooked {
            self.hold_chain(&mut hooks);
        }
        let mut batch = Batch::<H>::default();
        while batch.classify(self, module, slot, kind, Direction::Receive, &mut chain, &mut tally) {
            for (packet, classified) in batch.packets() {
                let held = Held { packet, origin: Origin::Foreign };
                let lent_here = if resources { Some(&mut lent) } else { None };
                if let Some(link) = classified.capture_link() {
                    self.capture(module, link, Direction::Receive, &held.packet, false);
                }
                match classified {
                    Classified::NotRunning => {
                        slot.counters.receive.count_packet(self.hal.frame_len(&held.packet));
                        slot.counters.receive.count_drop(DropReason::Paused);
                        match lent_here {
                            Some(lent) => lent.push_back(held.packet),
                            None => out.drop_packet(&self.hal, Direction::Receive, held, NdisStatus::PAUSED),
                        }
                    }
                    Classified::Link(link) => self.process(module, slot, &hooks, Direction::Receive, held, link, None, lent_here, ctx, &mut out),
                    Classified::PassThrough | Classified::Unmatched => self.pass_receive(module, held, lent_here, ctx, &mut out),
                }
            }
        }
        drop(hooks);
        tally.count_on(&slot.gate, processor, Direction::Receive);
        self.commit_call(module, slot, call, processor, out, ctx);
        lent
    }

    /// `FilterSendNetBufferListsComplete`: passes the protocol's packets on, frees the engine's own
    /// and completes the originals they replaced with their status.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn send_complete(&self, module: ModuleId, chain: H::Chain, ctx: PathContext) {
        self.packets_back(module, chain, Direction::Send, ctx);
    }

    /// `FilterReturnNetBufferLists`: returns the miniport's packets, frees the engine's own and
    /// returns the originals they replaced.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn return_receives(&self, module: ModuleId, chain: H::Chain, ctx: PathContext) {
        self.packets_back(module, chain, Direction::Receive, ctx);
    }

    #[inline(always)]
    fn packets_back(&self, module: ModuleId, mut chain: H::Chain, direction: Direction, ctx: PathContext) {
        let slot = self.slot(module);
        if slot.is_some_and(|slot| !slot.gate.may_have_own_out()) {
            // Every packet is foreign: handed on as it came, in one call.
            if chain.is_empty() {
                return;
            }
            return match direction {
                Direction::Send => self.hal.complete_sends(module, chain, ctx),
                Direction::Receive => self.hal.return_receives(module, chain, ctx),
            };
        }
        let mut onward = H::Chain::default();
        let mut came_back = 0;
        while let Some(packet) = chain.pop_front() {
            match self.hal.reclaim(packet) {
                Reclaimed::Foreign(packet) => onward.push_back(packet),
                Reclaimed::Own { parent, status } => {
                    came_back += 1;
                    if let Some(mut parent) = parent {
                        if direction == Direction::Send {
                            self.hal.set_status(&mut parent, status);
                        }
                        onward.push_back(parent);
                    }
                }
            }
        }
        let finished = match slot {
            Some(slot) if came_back > 0 => {
                slot.gate.packets_back(self.hal.current_processor(), came_back) == AfterLeaving::Closed && slot.refresh_gate()
            }
            _ => false,
        };
        if !onward.is_empty() {
            match direction {
                Direction::Send => self.hal.complete_sends(module, onward, ctx),
                Direction::Receive => self.hal.return_receives(module, onward, ctx),
            }
        }
        if finished {
            self.finish_pause(module);
        }
    }

    /// Hands back a packet a hook took: on along the rest of the chain, or dropped.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// [`ReinjectError`] when the ticket names no held packet; nothing changes.
    pub fn reinject(&self, ticket: Ticket, verdict: ReinjectVerdict, ctx: PathContext) -> Result<(), ReinjectError> {
        self.reinject_checked(None, ticket, verdict, ctx)
    }

    /// [`Self::reinject`] on behalf of hook `taker`, refused with [`ReinjectError::NotTaker`] when
    /// another hook took the packet: what a provider of hooks from several vendors calls, so that one
    /// vendor cannot hand on or drop what another holds.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// [`ReinjectError`] when the ticket names no packet `taker` holds; nothing changes.
    pub fn reinject_as(&self, taker: HookId, ticket: Ticket, verdict: ReinjectVerdict, ctx: PathContext) -> Result<(), ReinjectError> {
        self.reinject_checked(Some(taker), ticket, verdict, ctx)
    }

    fn reinject_checked(&self, taker: Option<HookId>, ticket: Ticket, verdict: ReinjectVerdict, ctx: PathContext) -> Result<(), ReinjectError> {
        let module = ticket.module;
        let slot = self.slot(module).ok_or(ReinjectError::UnknownModule(module))?;
        let taken = slot.core.with(|core| {
            if !core.is(module) {
                return Err(ReinjectError::UnknownModule(module));
            }
            match core.taken.get(ticket.serial) {
                None => Err(ReinjectError::StaleTicket(ticket)),
                Some(held) if taker.is_some_and(|taker| held.taker != taker) => Err(ReinjectError::NotTaker(ticket)),
                Some(_) => core.taken.remove(ticket.serial).ok_or(ReinjectError::StaleTicket(ticket)),
            }
        })?;
        slot.counters.direction(taken.direction).count_reinjected();
        match verdict {
            ReinjectVerdict::Pass => self.resume(module, slot, taken, ctx),
            ReinjectVerdict::Drop => {
                self.count_drop(slot, taken.direction, &taken.link, DropReason::Hook);
                let mut out = Outbox::<H>::default();
                out.drop_packet(&self.hal, taken.direction, taken.held, Self::drop_status(DropReason::Hook));
                out.flush(self, module, ctx);
            }
        }
        if slot.core.with(|core| core.try_finish_pause()) {
            self.finish_pause(module);
        }
        Ok(())
    }

    /// Continues a taken packet along the chain after the hook that took it.
    pub(crate) fn resume(&self, module: ModuleId, slot: &ModuleSlot<H>, taken: Taken<H::Packet>, ctx: PathContext) {
        let mut out = Outbox::<H>::default();
        if slot.core.with(|core| core.enter_data_path(module)).is_none() {
            self.count_drop(slot, taken.direction, &taken.link, DropReason::Paused);
            out.drop_packet(&self.hal, taken.direction, taken.held, Self::drop_status(DropReason::Paused));
            return out.flush(self, module, ctx);
        }
        let Taken { held, direction, link, position, check_for_loopback, .. } = taken;
        let hooks = self.chain_snapshot_for(direction);
        let ctx = PathContext { check_for_loopback, ..ctx };
        self.process(module, slot, &hooks, direction, held, link, Some(position), None, ctx, &mut out);
        drop(hooks);
        self.commit(module, slot, out, ctx);
    }

    /// `FilterCancelSendNetBufferLists`: completes with `NDIS_STATUS_SEND_ABORTED` every send a
    /// hook holds that `is_cancelled` picks (the platform compares cancel identifiers).
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn cancel_sends(&self, module: ModuleId, mut is_cancelled: impl FnMut(&H::Packet) -> bool, ctx: PathContext) {
        let Some(slot) = self.slot(module) else { return };
        let mut cancelled = Disposal::<H>::new(DropReason::Cancelled);
        let finished = slot.core.with(|core| {
            if !core.is(module) {
                return false;
            }
            core.taken.drain_where(
                |taken| taken.direction == Direction::Send && is_cancelled(&taken.held.packet),
                |taken| cancelled.add(&slot.counters, &slot.links, taken),
            );
            core.try_finish_pause()
        });
        let mut out = Outbox::<H>::default();
        cancelled.drop_into(&self.hal, &mut out);
        out.flush(self, module, ctx);
        if finished {
            self.finish_pause(module);
        }
    }
}

/// How a data-path call was counted, so that it ends the same way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Call {
    /// Through the module's gate, with no lock.
    Gated,
    /// Under the module's lock (the gate was closed and the module came back to Running).
    Locked,
}

/// How [`Engine::enter`] found a module.
enum Entry<'e, H: Hal> {
    /// Running: the data-path call has started and must end with [`Engine::commit_call`].
    Running(&'e ModuleSlot<H>, crate::module::ModuleKind, Call),
    /// Attached but not Running.
    NotRunning(&'e ModuleSlot<H>, ModuleState),
    /// No module has that identity.
    Unknown,
}
