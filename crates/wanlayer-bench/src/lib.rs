//! The engine's data path measured against the floor, on a minimal platform.
//!
//! [`BenchHal`] is the least a platform can do: packets are boxed frames linked into chains as
//! NDIS links `NET_BUFFER_LIST`s, locks are uncontended `std` mutexes, memory accounting is a
//! relaxed counter per pool, and "handing a chain on" parks it in a per-thread slot (the wire
//! below, the protocol above) where the benchmark picks it up to complete or return it. So what
//! the measurements show is the engine's own work.
//!
//! The floor ([`floor_send`], [`floor_receive`]) is what any filter must do per packet: unlink
//! it, read its 12 address bytes, relink it and hand the chain on, then pass the completion back.
//! `cargo xtask bench engine` measures both in the same run and prints their ratio.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wanlayer_core::hal::{
    Clock, FrameSource, Level, Lock, Locking, Log, Memory, OutOfMemory, PacketChain, PacketIo, PathContext, PauseCompletion, Pool, Processors,
    Quiesce, ReadMostly, ReadMostlyLocking,
    Reclaimed, RuleStore, StoreError, Timestamp, WriteError,
};
use wanlayer_core::hook::{Hook, HookRef, PacketContext, Verdict};
use wanlayer_core::link::{LineUp, WanQuality};
use wanlayer_core::wire::{EtherType, MacAddress};
use wanlayer_core::{AttachParams, Engine, EngineConfig, ModuleId, ModuleKind, NdisStatus};

/// One packet: a frame with the link NDIS would keep in the `NET_BUFFER_LIST` itself.
#[derive(Debug)]
pub struct Frame {
    next: Option<Box<Frame>>,
    /// The frame's bytes (Ethernet header as NdisWan frames it, then the IP packet).
    pub bytes: Vec<u8>,
    /// Who made it: the benchmark's packets carry a serial the stress test checks.
    pub serial: u64,
    status: NdisStatus,
    own: bool,
    parent: Option<Box<Frame>>,
}

impl Frame {
    /// A packet of the benchmark's own (a foreign packet to the engine).
    pub fn new(bytes: Vec<u8>, serial: u64) -> Box<Frame> {
        Box::new(Frame { next: None, bytes, serial, status: NdisStatus::SUCCESS, own: false, parent: None })
    }
}

/// The packet type: owned, moved by pointer.
pub type Packet = Box<Frame>;

/// A chain of packets linked through the packets themselves, kept in order with two intrusive
/// stacks (O(1) amortised at both ends, no allocation, two pointers in size).
#[derive(Debug, Default)]
pub struct Chain {
    pushed: Option<Box<Frame>>,
    popping: Option<Box<Frame>>,
}

impl PacketChain<Packet> for Chain {
    fn push_back(&mut self, mut packet: Packet) {
        packet.next = self.pushed.take();
        self.pushed = Some(packet);
    }

    fn pop_front(&mut self) -> Option<Packet> {
        if self.popping.is_none() {
            while let Some(mut packet) = self.pushed.take() {
                self.pushed = packet.next.take();
                packet.next = self.popping.take();
                self.popping = Some(packet);
            }
        }
        let mut packet = self.popping.take()?;
        self.popping = packet.next.take();
        Some(packet)
    }

    fn is_empty(&self) -> bool {
        self.pushed.is_none() && self.popping.is_none()
    }
}

impl Chain {
    /// Appends every packet of `other`, in order.
    pub fn append(&mut self, mut other: Chain) {
        if self.is_empty() {
            *self = other;
            return;
        }
        while let Some(packet) = other.pop_front() {
            self.push_back(packet);
        }
    }

    /// Number of packets (a walk: for tests and setup).
    pub fn count(&mut self) -> usize {
        let mut all = Chain::default();
        let mut count = 0;
        while let Some(packet) = self.pop_front() {
            all.push_back(packet);
            count += 1;
        }
        *self = all;
        count
    }
}

/// Where a chain handed out of the filter waits for the benchmark.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Parked {
    /// Sent down to the miniport.
    Down,
    /// Completed to the protocol.
    Completed,
    /// Indicated up to the protocol.
    Up,
    /// Returned to the miniport.
    Returned,
}

thread_local! {
    /// This thread's processor index once it asked ([`UNASSIGNED`] before): a constant-initialised
    /// cell, read in a few instructions as the kernel reads its processor number.
    static PROCESSOR: core::cell::Cell<usize> = const { core::cell::Cell::new(UNASSIGNED) };
    static PARKED: RefCell<[Chain; 4]> = RefCell::new(Default::default());
    static LOCKS: RefCell<HashMap<&'static str, u64>> = RefCell::new(HashMap::new());
}

fn park(place: Parked, chain: Chain) {
    PARKED.with(|parked| parked.borrow_mut()[place as usize].append(chain));
}

/// Takes what this thread's calls handed out to `place`.
pub fn take_parked(place: Parked) -> Chain {
    PARKED.with(|parked| core::mem::take(&mut parked.borrow_mut()[place as usize]))
}

/// Lock acquisitions this thread made since the last call, by the protected type's name (only
/// counted by a `BenchHal<true>`).
pub fn take_lock_counts() -> HashMap<&'static str, u64> {
    LOCKS.with(|locks| core::mem::take(&mut *locks.borrow_mut()))
}

/// An uncontended-cheap lock: `std`'s futex mutex. With `COUNT` set it also counts acquisitions.
pub struct BenchLock<T, const COUNT: bool>(Mutex<T>);

impl<T, const COUNT: bool> Lock<T> for BenchLock<T, COUNT> {
    fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
        if COUNT {
            LOCKS.with(|locks| *locks.borrow_mut().entry(core::any::type_name::<T>()).or_insert(0) += 1);
        }
        let mut guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        critical_section(&mut guard)
    }
}

/// The minimal platform. `COUNT`: count lock acquisitions per thread (a separate run, so the
/// instruction counts do not include the counting).
#[derive(Default)]
pub struct BenchHal<const COUNT: bool = false> {
    charged: [AtomicUsize; 5],
}

impl<const COUNT: bool> BenchHal<COUNT> {
    /// Bytes charged to `pool` right now.
    pub fn charged(&self, pool: Pool) -> usize {
        self.charged[pool_index(pool)].load(Ordering::Relaxed)
    }
}

fn pool_index(pool: Pool) -> usize {
    Pool::ALL.iter().position(|known| *known == pool).unwrap_or(0)
}

impl<const COUNT: bool> Memory for BenchHal<COUNT> {
    fn try_charge(&self, pool: Pool, bytes: usize) -> Result<(), OutOfMemory> {
        self.charged[pool_index(pool)].fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
    fn release(&self, pool: Pool, bytes: usize) {
        self.charged[pool_index(pool)].fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl<const COUNT: bool> Clock for BenchHal<COUNT> {
    fn now(&self) -> Timestamp {
        Timestamp(0)
    }
}

impl<const COUNT: bool> Locking for BenchHal<COUNT> {
    type Lock<T> = BenchLock<T, COUNT>;
    fn new_lock<T>(&self, value: T) -> Self::Lock<T> {
        BenchLock(Mutex::new(value))
    }
}

/// One processor's reader lock, alone on its cache line.
#[repr(align(64))]
struct ReaderShard(Mutex<()>);

/// The engine's read-mostly lock on this platform, as the kernel's: one uncontended mutex per
/// processor (thread, here), a reader takes its own and a writer takes them all in order. With
/// `COUNT` a read is counted as `T (per-processor read)`, a write as `T`.
pub struct BenchReadMostly<T, const COUNT: bool> {
    shards: Box<[ReaderShard]>,
    value: std::cell::UnsafeCell<T>,
}

// SAFETY: readers on several threads share `&T` (`T: Sync`); a writer holds every shard, so its
// `&mut T` is the only reference, on whichever thread it runs (`T: Send`).
unsafe impl<T: Send + Sync, const COUNT: bool> Sync for BenchReadMostly<T, COUNT> {}

fn lock_shard(shard: &ReaderShard) -> std::sync::MutexGuard<'_, ()> {
    shard.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T, const COUNT: bool> Lock<T> for BenchReadMostly<T, COUNT> {
    fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
        if COUNT {
            LOCKS.with(|locks| *locks.borrow_mut().entry(core::any::type_name::<T>()).or_insert(0) += 1);
        }
        let _held: Vec<_> = self.shards.iter().map(lock_shard).collect();
        // SAFETY: every shard is held until `_held` drops, after the closure: no reader (each
        // holds one shard) and no other writer has a reference.
        critical_section(unsafe { &mut *self.value.get() })
    }
}

impl<T, const COUNT: bool> ReadMostly<T> for BenchReadMostly<T, COUNT> {
    fn read<R>(&self, reader: impl FnOnce(&T) -> R) -> R {
        if COUNT {
            LOCKS.with(|locks| *locks.borrow_mut().entry(read_name::<T>()).or_insert(0) += 1);
        }
        let shard = &self.shards[current_thread_processor() % self.shards.len()];
        let _held = lock_shard(shard);
        // SAFETY: this shard is held until `_held` drops, after the closure: a writer, which
        // needs every shard, cannot hold a `&mut` meanwhile; other readers only share.
        reader(unsafe { &*self.value.get() })
    }
}

/// The name a read of a `T` is counted under.
fn read_name<T>() -> &'static str {
    static NAMES: Mutex<Vec<(&'static str, &'static str)>> = Mutex::new(Vec::new());
    let name = core::any::type_name::<T>();
    let mut names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, read)) = names.iter().find(|(known, _)| *known == name) {
        return read;
    }
    let read: &'static str = Box::leak(format!("{name} (per-processor read)").into_boxed_str());
    names.push((name, read));
    read
}

impl<const COUNT: bool> ReadMostlyLocking for BenchHal<COUNT> {
    type ReadMostly<T: Send + Sync> = BenchReadMostly<T, COUNT>;

    fn new_read_mostly<T: Send + Sync>(&self, value: T) -> Result<Self::ReadMostly<T>, OutOfMemory> {
        let shards = (0..self.processor_count()).map(|_| ReaderShard(Mutex::new(()))).collect();
        Ok(BenchReadMostly { shards, value: std::cell::UnsafeCell::new(value) })
    }
}

impl<const COUNT: bool> Quiesce for BenchHal<COUNT> {
    fn wait_until(&self, is_done: &dyn Fn() -> bool) {
        while !is_done() {
            std::thread::yield_now();
        }
    }
}

/// Each thread is its own "processor": threads get indices in the order they first ask.
impl<const COUNT: bool> Processors for BenchHal<COUNT> {
    fn current_processor(&self) -> usize {
        current_thread_processor()
    }
    fn processor_count(&self) -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

/// The next thread's processor index.
static NEXT_PROCESSOR: AtomicUsize = AtomicUsize::new(0);

/// [`PROCESSOR`] before the thread first asks.
const UNASSIGNED: usize = usize::MAX;

/// This thread's processor index: threads get indices in the order they first ask.
fn current_thread_processor() -> usize {
    PROCESSOR.with(|index| match index.get() {
        UNASSIGNED => {
            let assigned = NEXT_PROCESSOR.fetch_add(1, Ordering::Relaxed);
            index.set(assigned);
            assigned
        }
        assigned => assigned,
    })
}

impl<const COUNT: bool> Log for BenchHal<COUNT> {
    fn log(&self, _level: Level, _message: core::fmt::Arguments<'_>) {}
}

impl<const COUNT: bool> PauseCompletion for BenchHal<COUNT> {
    fn pause_complete(&self, _module: ModuleId) {}
}

impl<const COUNT: bool> RuleStore for BenchHal<COUNT> {
    fn load_rules(&self, _found: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        Ok(())
    }
    fn save_rules(&self, _altitude: u32, _blob: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
}

impl<const COUNT: bool> PacketIo for BenchHal<COUNT> {
    type Packet = Packet;
    type Chain = Chain;

    fn frame_len(&self, packet: &Packet) -> usize {
        packet.bytes.len()
    }
    fn read(&self, packet: &Packet, offset: usize, out: &mut [u8]) -> usize {
        let available = packet.bytes.get(offset..).unwrap_or(&[]);
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        n
    }
    fn write(&self, packet: &mut Packet, offset: usize, data: &[u8]) -> Result<(), WriteError> {
        let end = offset.checked_add(data.len()).ok_or(WriteError::OutOfRange)?;
        packet.bytes.get_mut(offset..end).ok_or(WriteError::OutOfRange)?.copy_from_slice(data);
        Ok(())
    }
    fn status(&self, packet: &Packet) -> NdisStatus {
        packet.status
    }
    fn set_status(&self, packet: &mut Packet, status: NdisStatus) {
        packet.status = status;
    }
    fn allocate(&self, _module: ModuleId, source: FrameSource<'_, Packet>) -> Result<Packet, OutOfMemory> {
        let bytes = match source {
            FrameSource::Bytes(bytes) => bytes.to_vec(),
            FrameSource::CopyOf(packet) => packet.bytes.clone(),
        };
        let mut frame = Frame::new(bytes, u64::MAX);
        frame.own = true;
        Ok(frame)
    }
    fn attach_parent(&self, child: &mut Packet, parent: Packet) {
        child.parent = Some(parent);
    }
    fn reclaim(&self, mut packet: Packet) -> Reclaimed<Packet> {
        if packet.own {
            Reclaimed::Own { parent: packet.parent.take(), status: packet.status }
        } else {
            Reclaimed::Foreign(packet)
        }
    }
    fn free(&self, mut packet: Packet) -> Option<Packet> {
        packet.parent.take()
    }
    fn send_down(&self, _module: ModuleId, chain: Chain, _ctx: PathContext) {
        park(Parked::Down, chain);
    }
    fn complete_sends(&self, _module: ModuleId, chain: Chain, _ctx: PathContext) {
        park(Parked::Completed, chain);
    }
    fn indicate_up(&self, _module: ModuleId, chain: Chain, resources: bool, _ctx: PathContext) -> Chain {
        if resources {
            return chain;
        }
        park(Parked::Up, chain);
        Chain::default()
    }
    fn return_receives(&self, _module: ModuleId, chain: Chain, _ctx: PathContext) {
        park(Parked::Returned, chain);
    }
}

/// The floor of a send: unlink each packet, read its 12 address bytes, relink, hand the chain on;
/// then the completion: hand the chain back.
#[inline(never)]
pub fn floor_send<const COUNT: bool>(hal: &BenchHal<COUNT>, module: ModuleId, mut chain: Chain) {
    let mut onward = Chain::default();
    while let Some(packet) = chain.pop_front() {
        let mut addresses = [0u8; 12];
        black_box(hal.read(&packet, 0, &mut addresses));
        black_box(&addresses);
        onward.push_back(packet);
    }
    hal.send_down(module, onward, PathContext::default());
    let sent = take_parked(Parked::Down);
    hal.complete_sends(module, sent, PathContext::default());
}

/// The floor of a receive: as [`floor_send`], indicating up, then the return.
#[inline(never)]
pub fn floor_receive<const COUNT: bool>(hal: &BenchHal<COUNT>, module: ModuleId, mut chain: Chain) {
    let mut onward = Chain::default();
    while let Some(packet) = chain.pop_front() {
        let mut addresses = [0u8; 12];
        black_box(hal.read(&packet, 0, &mut addresses));
        black_box(&addresses);
        onward.push_back(packet);
    }
    let _kept = hal.indicate_up(module, onward, false, PathContext::default());
    let up = take_parked(Parked::Up);
    hal.return_receives(module, up, PathContext::default());
}

/// A hook that passes everything without looking.
pub struct PassHook;

impl Hook for PassHook {}

/// A hook that rewrites one byte of every packet in place (the IPv4 TTL) and says so.
pub struct ModifyHook;

impl ModifyHook {
    fn touch(packet: &mut PacketContext<'_>) -> Verdict {
        let mut ttl = [0u8; 1];
        if packet.read(TTL_OFFSET, &mut ttl) == 1 && packet.write(TTL_OFFSET, &[ttl[0].wrapping_sub(1).max(1)]).is_ok() {
            Verdict::Modify
        } else {
            Verdict::Pass
        }
    }
}

impl Hook for ModifyHook {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        Self::touch(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        Self::touch(packet)
    }
}

/// Offset of the IPv4 TTL in a frame (14-byte Ethernet header + 8).
const TTL_OFFSET: usize = 22;

/// The link address of link number `index` (locally administered, unique up to 2^32 links).
pub fn remote_address(index: u32) -> MacAddress {
    let [a, b, c, d] = index.to_be_bytes();
    MacAddress([0x02, 0x57, a, b, c, d])
}

/// The server's side of every link.
pub const LOCAL_ADDRESS: MacAddress = MacAddress([0x02, 0x4c, 0, 0, 0, 1]);

/// An `NDIS_WAN_LINE_UP` for link number `index`.
pub fn line_up(index: u32) -> LineUp<'static> {
    LineUp {
        link_speed_100bps: 10_000,
        maximum_total_size: 1500,
        quality: WanQuality::Reliable,
        send_window: 16,
        remote_address: remote_address(index),
        local_address: LOCAL_ADDRESS,
        protocol_type: EtherType::Ipv4,
        device_name: &[],
        protocol_buffer: &[0u8; 16],
    }
}

/// A frame of `len` bytes (at least 34) on link number `link`: sends carry the link's address as
/// destination, receives as source.
pub fn frame(len: usize, link: u32, receive: bool) -> Vec<u8> {
    let mut bytes = vec![0u8; len.max(34)];
    let (remote, local) = (remote_address(link).0, LOCAL_ADDRESS.0);
    let (destination, source) = if receive { (local, remote) } else { (remote, local) };
    bytes[0..6].copy_from_slice(&destination);
    bytes[6..12].copy_from_slice(&source);
    bytes[12..14].copy_from_slice(&[0x08, 0x00]);
    bytes[14] = 0x45;
    bytes[TTL_OFFSET] = 64;
    bytes[23] = 17;
    bytes
}

/// The [`PassHook`] scenarios of kind [`HookKind::Static`] register: a `static`, as the kernel's
/// hooks are.
static STATIC_PASS_HOOK: PassHook = PassHook;

/// What a hook in a scenario does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HookKind {
    /// [`PassHook`], shared through an `Arc` (as hosts register hooks).
    Pass,
    /// [`PassHook`] as a `static` (as the kernel registers hooks: `HookRef::Static`, no
    /// reference count).
    Static,
    /// [`ModifyHook`].
    Modify,
}

/// One measured configuration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Scenario {
    /// Receive instead of send.
    pub receive: bool,
    /// Packets per chain.
    pub chain: usize,
    /// Frame length in bytes.
    pub frame_len: usize,
    /// Hooks in the chain.
    pub hooks: usize,
    /// What they do.
    pub hook_kind: HookKind,
    /// Live links on the module.
    pub links: u32,
}

impl Scenario {
    /// Parses `send|receive CHAIN LEN HOOKS pass|static|modify LINKS`.
    pub fn parse(words: &[String]) -> Option<Scenario> {
        let [direction, chain, frame_len, hooks, kind, links] = words else { return None };
        Some(Scenario {
            receive: match direction.as_str() {
                "send" => false,
                "receive" => true,
                _ => return None,
            },
            chain: chain.parse().ok()?,
            frame_len: frame_len.parse().ok()?,
            hooks: hooks.parse().ok()?,
            hook_kind: match kind.as_str() {
                "pass" => HookKind::Pass,
                "static" => HookKind::Static,
                "modify" => HookKind::Modify,
                _ => return None,
            },
            links: links.parse().ok()?,
        })
    }

    /// The words [`Self::parse`] reads.
    pub fn words(&self) -> Vec<String> {
        vec![
            if self.receive { "receive" } else { "send" }.to_owned(),
            self.chain.to_string(),
            self.frame_len.to_string(),
            self.hooks.to_string(),
            match self.hook_kind {
                HookKind::Pass => "pass",
                HookKind::Static => "static",
                HookKind::Modify => "modify",
            }
            .to_owned(),
            self.links.to_string(),
        ]
    }
}

/// An engine set up for a scenario: one running NdisWan IP module with its links and hooks.
pub struct Bench<const COUNT: bool = false> {
    /// The engine.
    pub engine: Arc<Engine<BenchHal<COUNT>>>,
    /// Its module.
    pub module: ModuleId,
    /// The scenario.
    pub scenario: Scenario,
}

impl<const COUNT: bool> Bench<COUNT> {
    /// Builds the engine for `scenario`.
    pub fn new(scenario: Scenario) -> Self {
        let engine = Arc::new(Engine::new(BenchHal::<COUNT>::default(), EngineConfig::default()).expect("engine"));
        let module = engine.attach(AttachParams { kind: ModuleKind::NdisWanIp, mac_address: LOCAL_ADDRESS, if_index: 7 }).expect("attach");
        engine.restart(module).expect("restart");
        for index in 0..scenario.links {
            engine.line_up(module, &line_up(index)).expect("line up");
        }
        for index in 0..scenario.hooks {
            let hook: HookRef = match scenario.hook_kind {
                HookKind::Pass => HookRef::from(Arc::new(PassHook)),
                HookKind::Static => HookRef::from(&STATIC_PASS_HOOK as &'static dyn Hook),
                HookKind::Modify => HookRef::from(Arc::new(ModifyHook)),
            };
            engine.add_hook("bench", 100 + index as u32, hook).expect("add hook");
        }
        Self { engine, module, scenario }
    }

    /// A chain of the scenario's packets, spread over its links.
    pub fn chain(&self, first_serial: u64) -> Chain {
        let mut chain = Chain::default();
        let links = self.scenario.links.max(1);
        for n in 0..self.scenario.chain {
            let link = ((n as u64).wrapping_mul(2_654_435_761) % u64::from(links)) as u32;
            chain.push_back(Frame::new(frame(self.scenario.frame_len, link, self.scenario.receive), first_serial + n as u64));
        }
        chain
    }

    /// One round through the engine: send (or receive) the chain, complete (or return) what was
    /// handed on, and give back the chain that came home.
    pub fn engine_round(&self, chain: Chain) -> Chain {
        let ctx = PathContext::default();
        if self.scenario.receive {
            let lent = self.engine.receive(self.module, chain, false, ctx);
            drop(lent);
            let up = take_parked(Parked::Up);
            self.engine.return_receives(self.module, up, ctx);
            take_parked(Parked::Returned)
        } else {
            self.engine.send(self.module, chain, ctx);
            let down = take_parked(Parked::Down);
            self.engine.send_complete(self.module, down, ctx);
            take_parked(Parked::Completed)
        }
    }

    /// One round of the floor over the same chain.
    pub fn floor_round(&self, chain: Chain) -> Chain {
        let hal = self.engine.hal();
        if self.scenario.receive {
            floor_receive(hal, self.module, chain);
            take_parked(Parked::Returned)
        } else {
            floor_send(hal, self.module, chain);
            take_parked(Parked::Completed)
        }
    }
}
