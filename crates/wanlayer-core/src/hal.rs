//! The platform services the engine needs, as small single-purpose traits.
//!
//! The kernel driver implements them over NDIS (non-paged pool, spin locks, `NET_BUFFER_LIST`s,
//! `NdisFSendNetBufferLists` and friends); the simulator implements them over plain values and
//! checks every call against the NDIS rules. The engine is generic over [`Hal`], the bundle of all
//! of them, and never calls out of the filter while it holds a [`Lock`].

use core::fmt;

use crate::ndis_status::NdisStatus;

/// Identifies one attached filter module (one filter instance on one adapter): the engine's slot
/// in the low 16 bits, the slot's generation in the high 16, so a stale identity is refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ModuleId(pub u32);

impl ModuleId {
    /// The engine slot.
    pub fn slot(self) -> u16 {
        self.0 as u16
    }
    /// How many modules have used the slot, this one included.
    pub fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

impl fmt::Display for ModuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module {}", wanlayer_proto::display::ModuleIdText(self.0))
    }
}

/// What an allocation is for: the pool tag it is charged to, so that leaks can be attributed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Pool {
    /// The engine's fixed tables (module slots, hook slots), allocated once.
    Engine,
    /// One WAN link's entry with its copied protocol buffer and device name.
    Link,
    /// Bookkeeping for a packet a hook took.
    Taken,
    /// Room in the event queue and in control-device subscribers' event rings.
    Event,
    /// The control device: capture rings and the scratch of link enumerations.
    Control,
}

impl Pool {
    /// Every pool, for reports.
    pub const ALL: [Pool; 5] = [Pool::Engine, Pool::Link, Pool::Taken, Pool::Event, Pool::Control];

    /// The four-character pool tag, as `!poolused` would show it.
    pub fn tag(self) -> [u8; 4] {
        match self {
            Pool::Engine => *b"WLen",
            Pool::Link => *b"WLlk",
            Pool::Taken => *b"WLtk",
            Pool::Event => *b"WLev",
            Pool::Control => *b"WLct",
        }
    }
}

/// An allocation was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OutOfMemory;

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("out of memory")
    }
}

/// Memory accounting: the engine charges every allocation it makes to a [`Pool`] before making it
/// and releases the charge when it frees it.
///
/// The kernel implements this with per-pool counters (and an optional budget); the simulator uses
/// it to fail chosen allocations and to find leaks at detach, as Driver Verifier's pool tracking does.
pub trait Memory {
    /// Asks for `bytes` more in `pool`.
    ///
    /// # Errors
    /// [`OutOfMemory`] when the platform refuses; the engine then fails the operation cleanly.
    fn try_charge(&self, pool: Pool, bytes: usize) -> Result<(), OutOfMemory>;

    /// Gives back `bytes` charged earlier to `pool`.
    fn release(&self, pool: Pool, bytes: usize);
}

/// Monotonic time in nanoseconds since an arbitrary origin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// A monotonic clock. The simulator's is virtual, so runs are deterministic.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A lock protecting a `T`, entered as a closure so it cannot be left held.
///
/// # IRQL
/// The kernel's is a spin lock: the closure runs at `DISPATCH_LEVEL` and must not call out of the
/// filter. The engine only ever reads and writes its own state inside.
pub trait Lock<T> {
    /// Runs `critical_section` with exclusive access to the protected value.
    fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R;
}

/// Makes locks.
pub trait Locking {
    /// The platform's lock type.
    type Lock<T>: Lock<T>;

    /// A new lock around `value`.
    fn new_lock<T>(&self, value: T) -> Self::Lock<T>;
}

/// A value every packet reads and few calls change (a module's link table): a reader touches
/// only state of its own processor, so readers on different processors never write a shared line
/// and never wait for each other. [`Lock::with`] is the writer: it has the value alone, waiting
/// for the readers in progress, and readers wait for it.
///
/// # IRQL
/// As [`Lock`]: the kernel's raises to `DISPATCH_LEVEL` on both sides (one `KSPIN_LOCK` per
/// processor, the reader's own, or all of them for the writer); the closures must not call out of
/// the filter.
pub trait ReadMostly<T>: Lock<T> {
    /// Runs `reader` with shared access to the value.
    fn read<R>(&self, reader: impl FnOnce(&T) -> R) -> R;
}

/// Makes [`ReadMostly`] values.
pub trait ReadMostlyLocking {
    /// The platform's read-mostly lock.
    type ReadMostly<T: Send + Sync>: ReadMostly<T>;

    /// A new read-mostly lock around `value`, with room for every processor's readers.
    ///
    /// # Errors
    /// [`OutOfMemory`] when the per-processor state cannot be allocated.
    fn new_read_mostly<T: Send + Sync>(&self, value: T) -> Result<Self::ReadMostly<T>, OutOfMemory>;
}

/// Waiting for other processors to leave a region (rundown protection's wait).
pub trait Quiesce {
    /// Returns once `is_done` is true, waiting for other processors between checks.
    ///
    /// The simulator, which is single threaded, reports a wait that could never end (a hook removing
    /// itself from its own callback) as a rule violation and returns.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL` only: the kernel sleeps between checks.
    fn wait_until(&self, is_done: &dyn Fn() -> bool);
}

/// The processors: which one runs the caller, and how many there are, so that the engine can keep
/// state each processor writes alone (counters summed when queried) instead of one shared line.
///
/// # IRQL
/// Any. Below `DISPATCH_LEVEL` the caller may move to another processor right after asking: the
/// answer picks a shard to write with atomics, never an owner that may skip them.
pub trait Processors {
    /// The current processor's index, below [`Self::processor_count`] (`KeGetCurrentProcessorNumberEx`).
    fn current_processor(&self) -> usize;
    /// Processors that may run the engine, fixed for its life (`KeQueryActiveProcessorCountEx`).
    fn processor_count(&self) -> usize;
}

/// Severity of a debug message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    /// Something is wrong and was counted.
    Error,
    /// Unusual but handled.
    Warning,
    /// State changes worth a line.
    Info,
    /// Per-operation detail.
    Trace,
}

/// Levelled debug output (`DbgPrintEx` in the kernel).
pub trait Log {
    /// Writes one message.
    fn log(&self, level: Level, message: fmt::Arguments<'_>);
}

/// A chain of owned packets (an NBL chain in the kernel), kept in order.
pub trait PacketChain<P>: Default {
    /// Appends a packet.
    fn push_back(&mut self, packet: P);
    /// Removes the first packet.
    fn pop_front(&mut self) -> Option<P>;
    /// True when the chain holds no packet.
    fn is_empty(&self) -> bool;
}

/// How a data-path call was made, carried from the callback to the calls the engine makes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PathContext {
    /// The caller is at `DISPATCH_LEVEL` (the `*_DISPATCH_LEVEL` flag).
    pub at_dispatch: bool,
    /// The NDIS port number of a receive indication (0 for the default port).
    pub port: u32,
    /// The send asked NDIS to loop its packets back to matching protocols
    /// (`NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`): handed on with the packets of that send, including
    /// those a hook held and reinjected later.
    pub check_for_loopback: bool,
}

/// Where the bytes of a packet the engine asks the platform to allocate come from.
pub enum FrameSource<'a, P> {
    /// A copy of these bytes.
    Bytes(&'a [u8]),
    /// A copy of the whole frame of this packet.
    CopyOf(&'a P),
}

/// What [`PacketIo::reclaim`] found a returned packet to be.
#[must_use = "a foreign packet must be passed on and a parent must be completed or returned"]
pub enum Reclaimed<P> {
    /// Not the engine's: pass it on to its owner.
    Foreign(P),
    /// One the engine allocated; the platform has freed it. `parent` is the packet attached to it
    /// with [`PacketIo::attach_parent`], now to be completed or returned; `status` is the
    /// completion status the freed packet carried.
    Own {
        /// The original packet this one replaced, if any.
        parent: Option<P>,
        /// The completion status of the freed packet.
        status: NdisStatus,
    },
}

/// A failure to write packet bytes in place.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteError {
    /// The range is outside the frame.
    OutOfRange,
    /// The platform cannot modify this packet's buffers in place (the engine copies instead).
    ReadOnly,
}

/// Packets: their bytes, and handing them on, completing and returning them.
///
/// # Ownership
/// [`PacketIo::Packet`] is an owned packet: whoever holds one must pass it on, complete it, return
/// it or free it exactly once. The engine takes packets by value from the callbacks and gives each
/// back through exactly one of the methods here.
///
/// # IRQL
/// Every method is callable at `<= DISPATCH_LEVEL`; `ctx.at_dispatch` tells the truth about it.
pub trait PacketIo {
    /// One owned packet (a `NET_BUFFER_LIST`).
    type Packet;
    /// A chain of them.
    type Chain: PacketChain<Self::Packet>;

    /// Length of the packet's frame in bytes.
    fn frame_len(&self, packet: &Self::Packet) -> usize;
    /// Copies frame bytes from `offset` into `out`; returns how many were copied (fewer at the end
    /// of the frame).
    fn read(&self, packet: &Self::Packet, offset: usize, out: &mut [u8]) -> usize;
    /// Overwrites frame bytes at `offset` in place.
    ///
    /// # Errors
    /// [`WriteError`] when the range is outside the frame or the buffers may not be written.
    fn write(&self, packet: &mut Self::Packet, offset: usize, data: &[u8]) -> Result<(), WriteError>;
    /// The completion status a packet carries.
    fn status(&self, packet: &Self::Packet) -> NdisStatus;
    /// Sets the completion status of a packet.
    fn set_status(&self, packet: &mut Self::Packet, status: NdisStatus);

    /// Allocates a packet of the engine's own on `module`, holding a copy of `source`.
    ///
    /// # Errors
    /// [`OutOfMemory`] when no packet or buffer can be had.
    fn allocate(&self, module: ModuleId, source: FrameSource<'_, Self::Packet>) -> Result<Self::Packet, OutOfMemory>;
    /// Stores `parent` in `child` (one the engine allocated), to be handed back by [`Self::reclaim`].
    /// The child takes on the parent's cancel identifier, so cancelling the original send finds
    /// the copy that stands in for it.
    fn attach_parent(&self, child: &mut Self::Packet, parent: Self::Packet);
    /// Sorts out a packet coming back (send complete, receive return): frees it if it is the
    /// engine's own and gives back its parent, or gives it back as foreign.
    fn reclaim(&self, packet: Self::Packet) -> Reclaimed<Self::Packet>;
    /// Frees a packet of the engine's own that was never handed on (its parent, if any, comes back).
    fn free(&self, packet: Self::Packet) -> Option<Self::Packet>;

    /// Sends a chain down to the miniport (`NdisFSendNetBufferLists`).
    fn send_down(&self, module: ModuleId, chain: Self::Chain, ctx: PathContext);
    /// Completes sends back to the protocol (`NdisFSendNetBufferListsComplete`); each packet carries
    /// its status.
    fn complete_sends(&self, module: ModuleId, chain: Self::Chain, ctx: PathContext);
    /// Indicates a chain up to the protocol (`NdisFIndicateReceiveNetBufferLists`).
    ///
    /// With `resources` set the protocol may not keep the packets: they come back as the return
    /// value as soon as the call returns. Otherwise the return value is empty and the packets come
    /// back later through the filter's return callback.
    fn indicate_up(&self, module: ModuleId, chain: Self::Chain, resources: bool, ctx: PathContext) -> Self::Chain;
    /// Returns received packets to the miniport (`NdisFReturnNetBufferLists`).
    fn return_receives(&self, module: ModuleId, chain: Self::Chain, ctx: PathContext);
}

/// Completing a pause that returned pending (`NdisFPauseComplete`).
pub trait PauseCompletion {
    /// Tells the platform that `module` finished pausing.
    fn pause_complete(&self, module: ModuleId);
}

/// A failure of the [`RuleStore`]: the platform's status code (an `NTSTATUS` in the driver).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StoreError(pub u32);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule store failure 0x{:08X}", self.0)
    }
}

/// Where the administrator's rule set is kept across restarts: the driver's service key
/// (`Parameters\Rules` and `Parameters\RulesAltitude`), the simulator's in-memory registry,
/// which outlives an engine. The engine reads it once at start
/// ([`Engine::load_saved_rules`](crate::Engine::load_saved_rules)) and writes it after each
/// successful replacement.
///
/// # IRQL
/// `PASSIVE_LEVEL`: registry calls.
pub trait RuleStore {
    /// Reads the saved set and hands its altitude and compiled bytes to `found`; `found` is not
    /// called when nothing is saved. The bytes are unchecked: the engine validates them.
    ///
    /// # Errors
    /// [`StoreError`] when something is saved but cannot be read (no memory, an I/O failure).
    fn load_rules(&self, found: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError>;

    /// Saves a set (an empty `blob`: no rules) in place of what was saved.
    ///
    /// # Errors
    /// [`StoreError`] when it could not be written; what was saved before may remain.
    fn save_rules(&self, altitude: u32, blob: &[u8]) -> Result<(), StoreError>;
}

/// Everything the engine needs from its platform.
pub trait Hal: Memory + Clock + Locking + ReadMostlyLocking + Quiesce + Processors + Log + PacketIo + PauseCompletion + RuleStore {}

impl<T: Memory + Clock + Locking + ReadMostlyLocking + Quiesce + Processors + Log + PacketIo + PauseCompletion + RuleStore> Hal for T {}
