//! The hook chain: filters that see every WAN link's line up, line down, sends and receives.
//!
//! Hooks are ordered by altitude, like the filter altitudes of the file system: a higher altitude is
//! closer to the IP layer. Sends travel down, so they meet the highest hook first; receives travel up
//! and meet the lowest first. Hooks of equal altitude run in registration order on the way down and
//! in reverse on the way up, so the order is always deterministic.
//!
//! Hooks run with no engine lock held. Removal is safe while packets flow: once
//! [`Engine::remove_hook`](crate::Engine::remove_hook) returns, the hook is never called again and
//! every packet it took has been handed on.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::mem::size_of;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::hal::{ModuleId, OutOfMemory};
use crate::link::LinkSummary;
use crate::stats::{Counter, VerdictCounters, VerdictCounts};

/// How many hooks can be registered at once.
pub const MAX_HOOKS: usize = 16;
/// The longest hook name kept, in bytes.
pub const HOOK_NAME_MAX: usize = 32;

/// Which way a packet travels.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Direction {
    /// From the IP layer down to NdisWan.
    Send,
    /// From NdisWan up to the IP layer.
    Receive,
}

impl Direction {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Send => "send",
            Direction::Receive => "receive",
        }
    }
}

/// What a hook decides about a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Hand it on unchanged.
    Pass,
    /// Drop it: a send is completed with a failure status, a receive is returned. Counted.
    Drop,
    /// Hand it on after the edits made through [`PacketContext::write`] or
    /// [`PacketContext::replace`].
    Modify,
    /// Keep it: the engine holds the packet under [`PacketContext::ticket`] until the hook calls
    /// [`Engine::reinject`](crate::Engine::reinject). A received packet is copied first when the
    /// miniport lent it only for the duration of the call.
    Take,
}

/// A failed edit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EditError {
    /// The range is outside the frame.
    OutOfRange,
    /// No memory for a copy.
    OutOfMemory,
    /// The new frame is empty or larger than the platform allows.
    BadLength,
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EditError::OutOfRange => "edit outside the frame",
            EditError::OutOfMemory => "no memory to copy the frame",
            EditError::BadLength => "replacement frame has a bad length",
        })
    }
}

/// Access to the bytes of the packet a hook is looking at. The engine implements it over the
/// platform's packet; tests can implement it over a byte vector.
pub trait FrameAccess {
    /// Frame length in bytes.
    fn len(&self) -> usize;
    /// True for an empty frame.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies bytes from `offset` into `out`; returns how many were copied.
    fn read(&self, offset: usize, out: &mut [u8]) -> usize;
    /// Overwrites bytes at `offset` (in place, or in a private copy when the buffers are read-only).
    ///
    /// # Errors
    /// [`EditError`] when the range is outside the frame or no copy can be made.
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), EditError>;
    /// Replaces the whole frame with `frame`.
    ///
    /// # Errors
    /// [`EditError`] when `frame` is empty or no packet can be allocated.
    fn replace(&mut self, frame: &[u8]) -> Result<(), EditError>;
}

/// Names a packet a hook took, for [`Engine::reinject`](crate::Engine::reinject).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Ticket {
    /// The module holding the packet.
    pub module: ModuleId,
    /// Unique per module and never reused, so a stale ticket is refused.
    pub serial: u64,
}

/// What a hook sees of one packet.
pub struct PacketContext<'a> {
    direction: Direction,
    link: LinkSummary,
    frame: &'a mut dyn FrameAccess,
    ticket: Cell<Option<Ticket>>,
    /// Where a ticket's serial comes from when the hook first asks for one: a hook that never
    /// asks (one that does not take) costs no shared write.
    serials: Option<(&'a AtomicU64, ModuleId)>,
    edited: bool,
}

impl<'a> PacketContext<'a> {
    /// A context over `frame`; `ticket` is what the packet will be held under if the hook takes it.
    pub fn new(direction: Direction, link: LinkSummary, frame: &'a mut dyn FrameAccess, ticket: Ticket) -> Self {
        Self { direction, link, frame, ticket: Cell::new(Some(ticket)), serials: None, edited: false }
    }
    /// A context whose ticket on `module` is drawn from `serials` only if it is asked for.
    pub(crate) fn with_lazy_ticket(
        direction: Direction,
        link: LinkSummary,
        frame: &'a mut dyn FrameAccess,
        module: ModuleId,
        serials: &'a AtomicU64,
    ) -> Self {
        Self { direction, link, frame, ticket: Cell::new(None), serials: Some((serials, module)), edited: false }
    }
    /// This context with the ticket an earlier context of the same packet drew, if any.
    pub(crate) fn with_ticket(self, ticket: Option<Ticket>) -> Self {
        self.ticket.set(ticket);
        self
    }
    /// The ticket drawn so far, if any (for the next context of the same packet).
    pub(crate) fn drawn_ticket(&self) -> Option<Ticket> {
        self.ticket.get()
    }
    /// True when an edit succeeded since the last call; clears the mark, so that the next hook
    /// shown the same context starts unedited.
    pub(crate) fn take_edited(&mut self) -> bool {
        core::mem::replace(&mut self.edited, false)
    }
    /// Which way the packet travels.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// The WAN link the packet belongs to.
    pub fn link(&self) -> &LinkSummary {
        &self.link
    }
    /// Frame length in bytes.
    pub fn len(&self) -> usize {
        self.frame.len()
    }
    /// True for an empty frame.
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }
    /// Copies frame bytes from `offset` into `out`; returns how many were copied.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> usize {
        self.frame.read(offset, out)
    }
    /// Overwrites frame bytes at `offset`. Return [`Verdict::Modify`] afterwards.
    ///
    /// # Errors
    /// [`EditError`] when the range is outside the frame or no copy can be made.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), EditError> {
        self.frame.write(offset, data)?;
        self.edited = true;
        Ok(())
    }
    /// Replaces the whole frame. Return [`Verdict::Modify`] afterwards.
    ///
    /// # Errors
    /// [`EditError`] when `frame` is empty or no packet can be allocated.
    pub fn replace(&mut self, frame: &[u8]) -> Result<(), EditError> {
        self.frame.replace(frame)?;
        self.edited = true;
        Ok(())
    }
    /// True once an edit succeeded.
    pub fn is_edited(&self) -> bool {
        self.edited
    }
    /// The ticket the packet is held under if the hook returns [`Verdict::Take`].
    pub fn ticket(&self) -> Ticket {
        if let Some(ticket) = self.ticket.get() {
            return ticket;
        }
        let ticket = match self.serials {
            Some((serials, module)) => Ticket { module, serial: serials.fetch_add(1, Ordering::Relaxed) },
            None => Ticket { module: self.link.module, serial: 0 },
        };
        self.ticket.set(Some(ticket));
        ticket
    }
}

/// A hook as the engine holds it: shared with its owner through an `Arc`, or a `static` one.
///
/// The kernel's hooks are `Static`: creating an `Arc` aborts (bug-checks) when the allocation
/// fails and stable Rust has no fallible constructor, so the kernel never creates one
/// (`clippy.toml`); hooks that live as long as the image need no reference count.
#[derive(Clone)]
pub enum HookRef {
    /// A hook shared with its owner.
    Shared(Arc<dyn Hook>),
    /// A hook that lives as long as the image (a `static`).
    Static(&'static dyn Hook),
}

impl core::ops::Deref for HookRef {
    type Target = dyn Hook;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Shared(hook) => &**hook,
            Self::Static(hook) => *hook,
        }
    }
}

impl From<Arc<dyn Hook>> for HookRef {
    fn from(hook: Arc<dyn Hook>) -> Self {
        Self::Shared(hook)
    }
}

impl<T: Hook + 'static> From<Arc<T>> for HookRef {
    fn from(hook: Arc<T>) -> Self {
        Self::Shared(hook)
    }
}

impl From<&'static dyn Hook> for HookRef {
    fn from(hook: &'static dyn Hook) -> Self {
        Self::Static(hook)
    }
}

/// A filter in the hook chain.
///
/// # IRQL
/// Every method may be called at `DISPATCH_LEVEL`, on any processor, concurrently: do not block.
/// No engine lock is held during a call.
pub trait Hook: Send + Sync {
    /// A link came up or changed. Return a `MaximumTotalSize` lower than the link's to have the
    /// lower one reported to the IP layer (for example to make room for an encapsulation).
    fn on_line_up(&self, link: &LinkSummary) -> Option<u32> {
        let _ = link;
        None
    }
    /// A link went down. Packets of it the hook still holds are dropped after this returns.
    fn on_line_down(&self, link: &LinkSummary) {
        let _ = link;
    }
    /// A packet on its way down.
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let _ = packet;
        Verdict::Pass
    }
    /// A packet on its way up.
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let _ = packet;
        Verdict::Pass
    }
}

/// Identifies a registered hook; stale identities are refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct HookId {
    /// Registry slot.
    pub slot: u16,
    /// Distinguishes successive hooks in the slot.
    pub generation: u32,
}

impl fmt::Display for HookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hook {}", wanlayer_proto::display::HookIdText(wanlayer_proto::hook_id(self.slot, self.generation)))
    }
}

/// A hook name, cut at [`HOOK_NAME_MAX`] bytes on a character boundary.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HookName {
    bytes: [u8; HOOK_NAME_MAX],
    len: u8,
}

impl HookName {
    /// Keeps as much of `name` as fits.
    pub fn new(name: &str) -> Self {
        let mut end = name.len().min(HOOK_NAME_MAX);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; HOOK_NAME_MAX];
        bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
        Self { bytes, len: end as u8 }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Position of a hook in the chain, from the bottom (NdisWan) up: by altitude, and at equal
/// altitude the earlier registration above the later one, so sends meet equal hooks in
/// registration order and receives in reverse.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct ChainPosition {
    /// The hook's altitude.
    pub altitude: u32,
    /// Registration order, so that equal altitudes still order deterministically.
    pub order: u64,
}

impl Ord for ChainPosition {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.altitude.cmp(&other.altitude).then(other.order.cmp(&self.order))
    }
}

impl PartialOrd for ChainPosition {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ChainPosition {
    /// True when a packet travelling `direction` meets `self` after `other`.
    pub fn is_after(self, other: ChainPosition, direction: Direction) -> bool {
        match direction {
            Direction::Send => self < other,
            Direction::Receive => self > other,
        }
    }
}

/// What tools see of a registered hook.
#[derive(Clone, Copy, Debug)]
pub struct HookInfo {
    /// Its identity.
    pub id: HookId,
    /// Its name.
    pub name: HookName,
    /// Its altitude.
    pub altitude: u32,
    /// What it did to sends.
    pub send: VerdictCounts,
    /// What it did to receives.
    pub receive: VerdictCounts,
    /// Line ups it saw.
    pub line_ups: u64,
    /// Line ups for which it lowered the reported size.
    pub sizes_lowered: u64,
    /// Line downs it saw.
    pub line_downs: u64,
}

/// The per-slot state that outlives a snapshot of the chain: calls in progress and counters.
#[derive(Debug)]
pub(crate) struct HookSlot {
    /// Verdict counters and the snapshots that hold the hook (entered and left, counted apart
    /// so that a snapshot may leave on another processor than it entered on), one shard per processor (modulo [`VERDICT_SHARDS`]), each on its own
    /// cache lines: a hook's verdicts are counted on the counting processor's shard and summed
    /// when queried. In an allocation of their own (2 KiB), so that no slot is ever built on a
    /// kernel stack whose frames must stay under 4 KiB.
    verdicts: Box<[VerdictShard; VERDICT_SHARDS]>,
    pub(crate) line_ups: Counter,
    pub(crate) sizes_lowered: Counter,
    pub(crate) line_downs: Counter,
}

/// Shards of a hook's verdict counters: processors beyond this many share shards.
pub(crate) const VERDICT_SHARDS: usize = 16;

/// One processor's verdict counters of one hook and its count of snapshots that hold the hook,
/// alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct VerdictShard {
    send: VerdictCounters,
    receive: VerdictCounters,
    snapshots_entered: AtomicU64,
    snapshots_left: AtomicU64,
}

impl VerdictShard {
    fn direction(&self, direction: Direction) -> &VerdictCounters {
        match direction {
            Direction::Send => &self.send,
            Direction::Receive => &self.receive,
        }
    }
}

impl HookSlot {
    /// Bytes of one slot's counter shards, on the heap beside the slot.
    pub(crate) const SHARD_BYTES: usize = VERDICT_SHARDS * size_of::<VerdictShard>();

    /// A slot with zeroed counters, or [`OutOfMemory`] when its shards cannot be allocated.
    pub(crate) fn new() -> Result<Self, OutOfMemory> {
        let mut verdicts = Vec::new();
        verdicts.try_reserve_exact(VERDICT_SHARDS).map_err(|_| OutOfMemory)?;
        crate::memory::fill_within_capacity(&mut verdicts, VERDICT_SHARDS, VerdictShard::default)?;
        Ok(Self {
            verdicts: crate::memory::boxed_array(verdicts)?,
            line_ups: Counter::default(),
            sizes_lowered: Counter::default(),
            line_downs: Counter::default(),
        })
    }

    fn shard(&self, processor: usize) -> Option<&VerdictShard> {
        self.verdicts.get(processor % VERDICT_SHARDS)
    }
    /// Marks the hook held by a snapshot taken on `processor`, under the registry's read side
    /// (which orders it before a removal's write side, or the snapshot does not see the hook).
    pub(crate) fn enter(&self, processor: usize) {
        if let Some(shard) = self.shard(processor) {
            shard.snapshots_entered.fetch_add(1, Ordering::Relaxed);
        }
    }
    /// Releases what [`Self::enter`] marked, once the snapshot's calls of the hook are over,
    /// first counting the `packets` packets of `bytes` bytes in all the hook passed during them.
    pub(crate) fn leave_counting(&self, processor: usize, direction: Direction, packets: u64, bytes: u64) {
        if let Some(shard) = self.shard(processor) {
            if packets > 0 {
                shard.direction(direction).count_passes(packets, bytes);
            }
            shard.snapshots_left.fetch_add(1, Ordering::Release);
        }
    }
    /// True when every snapshot that entered has left: the departures are read (`Acquire`)
    /// before the arrivals, so a count that moves between shards meanwhile can only make this
    /// false (every departure comes after its arrival), never true too early.
    pub(crate) fn is_idle(&self) -> bool {
        let left = self.verdicts.iter().fold(0u64, |sum, shard| sum.wrapping_add(shard.snapshots_left.load(Ordering::Acquire)));
        let entered = self.verdicts.iter().fold(0u64, |sum, shard| sum.wrapping_add(shard.snapshots_entered.load(Ordering::Relaxed)));
        left == entered
    }
    /// Counts a packet of `bytes` shown to the hook on `processor`, and its verdict.
    pub(crate) fn count_verdict(&self, processor: usize, direction: Direction, bytes: usize, verdict: Verdict) {
        if let Some(shard) = self.shard(processor) {
            shard.direction(direction).count(bytes, verdict);
        }
    }
    /// The verdicts of one direction, summed over every processor.
    pub(crate) fn verdict_counts(&self, direction: Direction) -> VerdictCounts {
        self.verdicts.iter().map(|shard| shard.direction(direction).snapshot()).fold(VerdictCounts::default(), |sum, counts| VerdictCounts {
            seen: sum.seen + counts.seen,
            bytes: sum.bytes + counts.bytes,
            passed: sum.passed + counts.passed,
            dropped: sum.dropped + counts.dropped,
            modified: sum.modified + counts.modified,
            taken: sum.taken + counts.taken,
        })
    }
    pub(crate) fn reset(&self) {
        for shard in self.verdicts.iter() {
            shard.send.reset();
            shard.receive.reset();
        }
        self.line_ups.reset();
        self.sizes_lowered.reset();
        self.line_downs.reset();
    }
}

/// One registered hook.
#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) id: HookId,
    pub(crate) name: HookName,
    pub(crate) position: ChainPosition,
    /// The hook, or `None` for the engine's built-in rule set (see [`crate::rules`]).
    pub(crate) hook: Option<HookRef>,
}

/// The registered hooks, sorted by [`ChainPosition`], with per-slot generations. Room for
/// [`MAX_HOOKS`] is reserved when the registry is made, so adding a hook never allocates.
pub(crate) struct Registry {
    pub(crate) hooks: Vec<Registered>,
    generations: [u32; MAX_HOOKS],
    next_order: u64,
}

/// The [`Registry`] under the platform's read-mostly lock (a snapshot reads it on its
/// processor's lock only; adding and removing hooks write), with its hook count kept where the
/// data path can read it without any lock: with no hook registered a packet never touches the
/// registry.
pub(crate) struct HookRegistry<L> {
    lock: L,
    registered: AtomicUsize,
}

impl<L: crate::hal::ReadMostly<Registry>> HookRegistry<L> {
    /// Runs `reader` over the registry on the read side.
    pub(crate) fn read<R>(&self, reader: impl FnOnce(&Registry) -> R) -> R {
        self.lock.read(reader)
    }

    pub(crate) fn new(lock: L) -> Self {
        Self { lock, registered: AtomicUsize::new(0) }
    }

    /// Runs `critical_section` over the registry under its lock, then publishes its hook count.
    pub(crate) fn with<R>(&self, critical_section: impl FnOnce(&mut Registry) -> R) -> R {
        self.lock.with(|registry| {
            let result = critical_section(registry);
            self.registered.store(registry.hooks.len(), Ordering::Release);
            result
        })
    }

    /// True when no hook is registered (as of the last change to the registry). A packet that
    /// reads this just before a hook is added misses the hook, exactly as a snapshot taken then would.
    pub(crate) fn is_empty(&self) -> bool {
        self.registered.load(Ordering::Acquire) == 0
    }
}

/// Why a hook could not be added.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AddHookError {
    /// [`MAX_HOOKS`] hooks are registered already.
    Full,
}

impl fmt::Display for AddHookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddHookError::Full => write!(f, "all {MAX_HOOKS} hook slots are in use"),
        }
    }
}

impl Registry {
    /// An empty registry with room for [`MAX_HOOKS`] hooks.
    pub(crate) fn with_room() -> Result<Self, OutOfMemory> {
        let mut hooks = Vec::new();
        hooks.try_reserve_exact(MAX_HOOKS).map_err(|_| OutOfMemory)?;
        Ok(Self { hooks, generations: [0; MAX_HOOKS], next_order: 0 })
    }

    /// What the registry's room costs, for the engine's memory charge.
    pub(crate) const ROOM_BYTES: usize = MAX_HOOKS * core::mem::size_of::<Registered>();

    pub(crate) fn add(&mut self, name: &str, altitude: u32, hook: Option<HookRef>) -> Result<HookId, AddHookError> {
        if self.hooks.len() >= MAX_HOOKS {
            return Err(AddHookError::Full);
        }
        let free = (0..MAX_HOOKS).find(|slot| self.hooks.iter().all(|r| usize::from(r.id.slot) != *slot));
        let slot = free.ok_or(AddHookError::Full)?;
        self.generations[slot] = self.generations[slot].wrapping_add(1);
        let id = HookId { slot: slot as u16, generation: self.generations[slot] };
        let position = ChainPosition { altitude, order: self.next_order };
        self.next_order += 1;
        let at = self.hooks.iter().position(|r| r.position > position).unwrap_or(self.hooks.len());
        // Within the room reserved by `with_room`: no allocation.
        let registered = Registered { id, name: HookName::new(name), position, hook };
        crate::memory::insert_within_capacity(&mut self.hooks, at, registered).map_err(|_| AddHookError::Full)?;
        Ok(id)
    }

    pub(crate) fn remove(&mut self, id: HookId) -> Option<Registered> {
        let at = self.hooks.iter().position(|r| r.id == id)?;
        Some(self.hooks.remove(at))
    }

    /// Moves a registered hook to `altitude`, keeping its identity and registration order (no
    /// allocation: the entry leaves and re-enters the reserved room). False when `id` is not
    /// registered.
    pub(crate) fn move_to(&mut self, id: HookId, altitude: u32) -> bool {
        let Some(at) = self.hooks.iter().position(|r| r.id == id) else { return false };
        let mut moved = self.hooks.remove(at);
        moved.position.altitude = altitude;
        let to = self.hooks.iter().position(|r| r.position > moved.position).unwrap_or(self.hooks.len());
        // Back into the room it left.
        crate::memory::insert_within_capacity(&mut self.hooks, to, moved).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;
    impl Hook for Quiet {}

    fn add(registry: &mut Registry, name: &str, altitude: u32) -> HookId {
        registry.add(name, altitude, Some(HookRef::from(Arc::new(Quiet)))).unwrap()
    }

    #[test]
    fn hooks_are_kept_bottom_up_by_altitude_the_earlier_of_equals_above() {
        let mut registry = Registry::with_room().unwrap();
        let high = add(&mut registry, "high", 300);
        let low = add(&mut registry, "low", 100);
        let mid_first = add(&mut registry, "mid-1", 200);
        let mid_second = add(&mut registry, "mid-2", 200);
        let order: alloc::vec::Vec<HookId> = registry.hooks.iter().map(|r| r.id).collect();
        assert_eq!(order, [low, mid_second, mid_first, high], "bottom up: the earlier of equals sits above");
    }

    #[test]
    fn a_moved_hook_keeps_its_identity_and_takes_its_new_place() {
        let mut registry = Registry::with_room().unwrap();
        let low = add(&mut registry, "low", 100);
        let high = add(&mut registry, "high", 300);
        assert!(registry.move_to(low, 400));
        let order: alloc::vec::Vec<(HookId, u32)> = registry.hooks.iter().map(|r| (r.id, r.position.altitude)).collect();
        assert_eq!(order, [(high, 300), (low, 400)]);
        assert!(!registry.move_to(HookId { slot: 9, generation: 1 }, 1));
    }

    #[test]
    fn sends_meet_high_hooks_first_and_receives_low_hooks_first() {
        let low = ChainPosition { altitude: 100, order: 0 };
        let high = ChainPosition { altitude: 300, order: 1 };
        assert!(low.is_after(high, Direction::Send));
        assert!(!high.is_after(low, Direction::Send));
        assert!(high.is_after(low, Direction::Receive));
        let tie_first = ChainPosition { altitude: 200, order: 2 };
        let tie_second = ChainPosition { altitude: 200, order: 3 };
        assert!(tie_second.is_after(tie_first, Direction::Send), "sends meet equals in registration order");
        assert!(tie_first.is_after(tie_second, Direction::Receive), "receives meet them in reverse");
    }

    #[test]
    fn the_registry_is_full_at_max_hooks_and_a_freed_slot_gets_a_new_generation() {
        let mut registry = Registry::with_room().unwrap();
        let ids: alloc::vec::Vec<HookId> = (0..MAX_HOOKS).map(|n| add(&mut registry, "h", n as u32)).collect();
        assert_eq!(registry.add("one-too-many", 1, Some(HookRef::from(Arc::new(Quiet)))).unwrap_err(), AddHookError::Full);
        let removed = registry.remove(ids[3]).unwrap();
        assert_eq!(removed.id, ids[3]);
        assert!(registry.remove(ids[3]).is_none(), "a stale identity removes nothing");
        let again = add(&mut registry, "again", 5);
        assert_eq!(again.slot, ids[3].slot);
        assert_ne!(again.generation, ids[3].generation);
    }

    #[test]
    fn names_are_cut_on_a_character_boundary() {
        let name = HookName::new("ééééééééééééééééééééé");
        assert!(name.as_str().len() <= HOOK_NAME_MAX);
        assert!(name.as_str().chars().all(|c| c == 'é'));
        assert_eq!(HookName::new("mss-clamp").as_str(), "mss-clamp");
    }

    #[test]
    fn a_hook_slot_is_idle_only_when_every_call_has_left() {
        let slot = HookSlot::new().unwrap();
        slot.enter(0);
        slot.enter(3);
        slot.leave_counting(1, Direction::Send, 0, 0);
        assert!(!slot.is_idle());
        slot.leave_counting(VERDICT_SHARDS + 2, Direction::Receive, 0, 0);
        assert!(slot.is_idle(), "entered on two processors, left on two others");
    }

    struct Bytes(alloc::vec::Vec<u8>);
    impl FrameAccess for Bytes {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn read(&self, offset: usize, out: &mut [u8]) -> usize {
            let available = self.0.get(offset..).unwrap_or(&[]);
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        }
        fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), EditError> {
            let end = offset.checked_add(data.len()).ok_or(EditError::OutOfRange)?;
            self.0.get_mut(offset..end).ok_or(EditError::OutOfRange)?.copy_from_slice(data);
            Ok(())
        }
        fn replace(&mut self, frame: &[u8]) -> Result<(), EditError> {
            self.0 = frame.to_vec();
            Ok(())
        }
    }

    #[test]
    fn a_packet_context_tracks_edits_and_reads_through_its_frame() {
        let summary = LinkSummary {
            id: crate::link::LinkId(1),
            module: ModuleId(1),
            remote_address: crate::wire::MacAddress([2, 0, 0, 0, 0, 1]),
            local_address: crate::wire::MacAddress([2, 0, 0, 0, 0, 2]),
            protocol_type: crate::wire::EtherType::Ipv4,
            link_speed_100bps: 1,
            maximum_total_size: 1500,
            reported_total_size: 1500,
        };
        let mut frame = Bytes(alloc::vec![1, 2, 3, 4]);
        let ticket = Ticket { module: ModuleId(1), serial: 9 };
        let mut packet = PacketContext::new(Direction::Send, summary, &mut frame, ticket);
        let mut out = [0u8; 8];
        assert_eq!(packet.read(2, &mut out), 2);
        assert_eq!(&out[..2], &[3, 4]);
        assert!(!packet.is_edited());
        assert_eq!(packet.write(3, &[9, 9]), Err(EditError::OutOfRange));
        assert!(!packet.is_edited(), "a failed edit is no edit");
        packet.write(0, &[7]).unwrap();
        assert!(packet.is_edited());
        assert_eq!(packet.ticket(), ticket);
        assert_eq!(packet.len(), 4);
    }
}
