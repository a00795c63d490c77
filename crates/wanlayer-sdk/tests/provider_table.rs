//! The provider table end to end, in this crate alone: a [`Host`] over an engine on a minimal
//! platform answers the table request as wanlayer.sys's `IRP_MJ_INTERNAL_DEVICE_CONTROL` handler
//! does ([`Host::answer`]), the client checks the answer ([`ProviderTable::from_answer`]) and
//! registers [`VendorFilter`]s through it, and packets sent through the engine reach them through
//! the table's C functions, the hook adapters, the packet functions and the client's trampolines —
//! every `unsafe` line of the interface, which is why Miri runs this file (`cargo xtask miri`).
//!
//! With wanlayer.sys in the loop (its own handlers over the kernel model, the SDK's kernel client
//! opening `\Device\WanLayer`) the same interface is tested by `tests/tests/provider.rs` of the
//! workspace; that needs the driver, which this crate cannot depend on.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types, reason = "a user-mode test")]

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use wanlayer_core::hal::{
    Clock, FrameSource, Level, Lock, Locking, Log, Memory, OutOfMemory, PacketChain, PacketIo, PathContext, PauseCompletion, Pool,
    Processors, Quiesce, ReadMostly, ReadMostlyLocking, Reclaimed, RuleStore, StoreError, Timestamp, WriteError,
};
use wanlayer_core::link::{LineUp, WanQuality};
use wanlayer_core::module::PauseProgress;
use wanlayer_core::wire::{EtherType, MacAddress};
use wanlayer_core::{AttachParams, Engine, EngineConfig, ModuleId, ModuleKind, NdisStatus};
use wanlayer_sdk::abi::{self, ProviderRequest};
use wanlayer_sdk::client::{self, ProviderTable};
use wanlayer_sdk::provider::{CallerContext, HookAdapters, Host};
use wanlayer_sdk::{LinkInfo, Packet, Provider, ReinjectVerdict, Status, Ticket, VendorFilter, Verdict};

/// The link's address as NdisWan frames it (the destination of sends).
const REMOTE: MacAddress = MacAddress([0x02, 0x57, 0, 0, 0, 1]);
/// The server's side of the link.
const LOCAL: MacAddress = MacAddress([0x02, 0x4c, 0, 0, 0, 1]);
/// Offset of the IPv4 TTL in a frame (14-byte Ethernet header + 8).
const TTL: usize = 22;
/// Offset of the byte that tells [`Marking`] what to do with a send (in the UDP payload).
const MARK: usize = 42;

/// A packet, moved by value: its frame, its completion status, and, for one the engine allocated,
/// the packet it replaced.
#[derive(Debug)]
struct Frame {
    bytes: Vec<u8>,
    status: NdisStatus,
    own: bool,
    parent: Option<Box<Frame>>,
}

/// A chain of packets.
#[derive(Default)]
struct Chain(VecDeque<Frame>);

impl PacketChain<Frame> for Chain {
    fn push_back(&mut self, packet: Frame) {
        self.0.push_back(packet);
    }
    fn pop_front(&mut self) -> Option<Frame> {
        self.0.pop_front()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A lock over `std`'s mutex (a poisoned one is taken over: a test that panicked fails anyway).
struct TestLock<T>(Mutex<T>);

impl<T> TestLock<T> {
    fn guard(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Lock<T> for TestLock<T> {
    fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
        critical_section(&mut self.guard())
    }
}

impl<T> ReadMostly<T> for TestLock<T> {
    fn read<R>(&self, reader: impl FnOnce(&T) -> R) -> R {
        reader(&self.guard())
    }
}

/// The least platform the engine runs on: one processor, memory counted per pool, and what the
/// engine hands on kept for the test (sent down to the miniport, completed to the protocol).
#[derive(Default)]
struct TestHal {
    charged: [AtomicUsize; Pool::ALL.len()],
    sent_down: Mutex<Vec<Frame>>,
    completed: Mutex<Vec<Frame>>,
}

impl TestHal {
    fn charged(&self) -> usize {
        self.charged.iter().map(|bytes| bytes.load(Ordering::Relaxed)).sum()
    }

    fn pool(pool: Pool) -> usize {
        Pool::ALL.iter().position(|known| *known == pool).unwrap_or(0)
    }

    /// Takes what was sent down to the miniport.
    fn take_sent_down(&self) -> Vec<Frame> {
        std::mem::take(&mut *self.sent_down.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes what was completed to the protocol.
    fn take_completed(&self) -> Vec<Frame> {
        std::mem::take(&mut *self.completed.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Memory for TestHal {
    fn try_charge(&self, pool: Pool, bytes: usize) -> Result<(), OutOfMemory> {
        self.charged[Self::pool(pool)].fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
    fn release(&self, pool: Pool, bytes: usize) {
        self.charged[Self::pool(pool)].fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Clock for TestHal {
    fn now(&self) -> Timestamp {
        Timestamp(0)
    }
}

impl Locking for TestHal {
    type Lock<T> = TestLock<T>;
    fn new_lock<T>(&self, value: T) -> TestLock<T> {
        TestLock(Mutex::new(value))
    }
}

impl ReadMostlyLocking for TestHal {
    type ReadMostly<T: Send + Sync> = TestLock<T>;
    fn new_read_mostly<T: Send + Sync>(&self, value: T) -> Result<TestLock<T>, OutOfMemory> {
        Ok(TestLock(Mutex::new(value)))
    }
}

impl Quiesce for TestHal {
    fn wait_until(&self, is_done: &dyn Fn() -> bool) {
        while !is_done() {
            std::thread::yield_now();
        }
    }
}

impl Processors for TestHal {
    fn current_processor(&self) -> usize {
        0
    }
    fn processor_count(&self) -> usize {
        1
    }
}

impl Log for TestHal {
    fn log(&self, _level: Level, _message: core::fmt::Arguments<'_>) {}
}

impl PauseCompletion for TestHal {
    fn pause_complete(&self, _module: ModuleId) {}
}

impl RuleStore for TestHal {
    fn load_rules(&self, _found: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        Ok(())
    }
    fn save_rules(&self, _altitude: u32, _blob: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
}

impl PacketIo for TestHal {
    type Packet = Frame;
    type Chain = Chain;

    fn frame_len(&self, packet: &Frame) -> usize {
        packet.bytes.len()
    }
    fn read(&self, packet: &Frame, offset: usize, out: &mut [u8]) -> usize {
        let available = packet.bytes.get(offset..).unwrap_or(&[]);
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        n
    }
    fn write(&self, packet: &mut Frame, offset: usize, data: &[u8]) -> Result<(), WriteError> {
        let end = offset.checked_add(data.len()).ok_or(WriteError::OutOfRange)?;
        packet.bytes.get_mut(offset..end).ok_or(WriteError::OutOfRange)?.copy_from_slice(data);
        Ok(())
    }
    fn status(&self, packet: &Frame) -> NdisStatus {
        packet.status
    }
    fn set_status(&self, packet: &mut Frame, status: NdisStatus) {
        packet.status = status;
    }
    fn allocate(&self, _module: ModuleId, source: FrameSource<'_, Frame>) -> Result<Frame, OutOfMemory> {
        let bytes = match source {
            FrameSource::Bytes(bytes) => bytes.to_vec(),
            FrameSource::CopyOf(packet) => packet.bytes.clone(),
        };
        Ok(Frame { bytes, status: NdisStatus::SUCCESS, own: true, parent: None })
    }
    fn attach_parent(&self, child: &mut Frame, parent: Frame) {
        child.parent = Some(Box::new(parent));
    }
    fn reclaim(&self, mut packet: Frame) -> Reclaimed<Frame> {
        if packet.own {
            Reclaimed::Own { parent: packet.parent.take().map(|parent| *parent), status: packet.status }
        } else {
            Reclaimed::Foreign(packet)
        }
    }
    fn free(&self, mut packet: Frame) -> Option<Frame> {
        packet.parent.take().map(|parent| *parent)
    }
    fn send_down(&self, _module: ModuleId, chain: Chain, _ctx: PathContext) {
        self.sent_down.lock().unwrap_or_else(PoisonError::into_inner).extend(chain.0);
    }
    fn complete_sends(&self, _module: ModuleId, chain: Chain, _ctx: PathContext) {
        self.completed.lock().unwrap_or_else(PoisonError::into_inner).extend(chain.0);
    }
    fn indicate_up(&self, _module: ModuleId, chain: Chain, _resources: bool, _ctx: PathContext) -> Chain {
        chain
    }
    fn return_receives(&self, _module: ModuleId, chain: Chain, _ctx: PathContext) {
        drop(chain);
    }
}

/// Calls from a vendor come at `PASSIVE_LEVEL` here.
impl CallerContext for TestHal {
    fn caller_context(&self) -> PathContext {
        PathContext::default()
    }
}

/// An engine with one running NdisWan IPv4 module, and the bytes charged then (what is charged
/// again once the module is paused and detached, whatever ran in between).
fn engine() -> (Engine<TestHal>, ModuleId, usize) {
    let engine = Engine::new(TestHal::default(), EngineConfig::default()).expect("an engine");
    let module = engine.attach(AttachParams { kind: ModuleKind::NdisWanIp, mac_address: LOCAL, if_index: 7 }).expect("attached");
    engine.restart(module).expect("running");
    let charged = engine.hal().charged();
    (engine, module, charged)
}

/// NdisWan's line up of the link.
fn line_up(engine: &Engine<TestHal>, module: ModuleId) {
    let line_up = LineUp {
        link_speed_100bps: 10_000,
        maximum_total_size: 1500,
        quality: WanQuality::Reliable,
        send_window: 16,
        remote_address: REMOTE,
        local_address: LOCAL,
        protocol_type: EtherType::Ipv4,
        device_name: &[],
        protocol_buffer: &[0u8; 16],
    };
    engine.line_up(module, &line_up).expect("the link is up");
}

/// A UDP send on the link whose payload's first byte is `mark`.
fn send_frame(mark: u8) -> Frame {
    let mut bytes = vec![0u8; 64];
    bytes[0..6].copy_from_slice(&REMOTE.0);
    bytes[6..12].copy_from_slice(&LOCAL.0);
    bytes[12..14].copy_from_slice(&[0x08, 0x00]);
    bytes[14] = 0x45;
    bytes[16..18].copy_from_slice(&50u16.to_be_bytes());
    bytes[TTL] = 64;
    bytes[23] = 17;
    bytes[MARK] = mark;
    Frame { bytes, status: NdisStatus::SUCCESS, own: false, parent: None }
}

/// Asks `host` for its table with `request` and `room` bytes, as the kernel client does.
fn ask(host: &Host<'_, TestHal>, request: &ProviderRequest, room: usize) -> (Status, usize, abi::ProviderTable) {
    let mut buffer = vec![0u8; room.max(size_of::<abi::ProviderTable>())];
    // SAFETY: the request is readable for its size and the buffer writable for `room` bytes (at
    // least that); the host outlives every use of the table in these tests.
    let (status, written) = unsafe { host.answer(request, size_of::<ProviderRequest>(), buffer.as_mut_ptr().cast(), room) };
    // SAFETY: the buffer holds at least one table's bytes (zeroes where nothing was written read
    // as null function pointers, `None`).
    let table = unsafe { buffer.as_ptr().cast::<abi::ProviderTable>().read_unaligned() };
    (status, written, table)
}

/// The table `host` hands out, checked.
fn connect<'h>(host: &'h Host<'_, TestHal>) -> ProviderTable<'h> {
    let (status, written, table) = ask(host, &client::request(), size_of::<abi::ProviderTable>());
    assert_eq!(status, Status::SUCCESS);
    // SAFETY: written by `host`, which stays where it is for `'h`.
    unsafe { ProviderTable::from_answer(&table, written) }.expect("a complete table")
}

/// Does to each send what its mark says (1 drop, 2 edit the TTL in place, 3 replace the frame,
/// 4 take it), lowers the link's MTU at line up, and remembers the tickets it took and whether
/// the provider went away.
#[derive(Default)]
struct Marking {
    taken: Mutex<Vec<Ticket>>,
    lines_up: AtomicUsize,
    unloaded: AtomicBool,
}

impl VendorFilter for Marking {
    fn on_line_up(&self, _provider: &Provider<'_>, link: &LinkInfo) -> Option<u32> {
        self.lines_up.fetch_add(1, Ordering::Relaxed);
        assert_eq!(link.remote_address, REMOTE.0);
        Some(1400)
    }

    fn on_send(&self, _provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        let mut mark = [0u8; 1];
        packet.read(MARK, &mut mark);
        match mark[0] {
            1 => Verdict::Drop,
            2 => {
                packet.write(TTL, &[7]).expect("the TTL is in the frame");
                Verdict::Modify
            }
            3 => {
                let mut frame = vec![0u8; packet.len()];
                packet.read(0, &mut frame);
                frame[TTL] = 9;
                packet.replace(&frame).expect("a replacement");
                Verdict::Modify
            }
            4 => {
                self.taken.lock().unwrap_or_else(PoisonError::into_inner).push(packet.ticket());
                Verdict::Take
            }
            _ => Verdict::Pass,
        }
    }

    fn on_provider_unload(&self) {
        self.unloaded.store(true, Ordering::Relaxed);
    }
}

#[test]
fn the_host_answers_the_table_request_and_refuses_malformed_ones() {
    static ADAPTERS: HookAdapters = HookAdapters::new();
    let (engine, _, _) = engine();
    let host = Host::with_static_adapters(&engine, &ADAPTERS);
    let good = client::request();
    let table_len = size_of::<abi::ProviderTable>();
    assert_eq!(ask(&host, &good, table_len - 1).0, Status::INFO_LENGTH_MISMATCH, "no room for the table");
    assert_eq!(ask(&host, &ProviderRequest { size: 4, ..good }, table_len).0, Status::INFO_LENGTH_MISMATCH);
    assert_eq!(ask(&host, &ProviderRequest { version: abi::PROVIDER_VERSION + 1, ..good }, table_len).0, Status::REVISION_MISMATCH);
    assert_eq!(ask(&host, &ProviderRequest { flags: 1, ..good }, table_len).0, Status::INVALID_PARAMETER);
    let (status, written, _) = ask(&host, &good, table_len);
    assert_eq!((status, written), (Status::SUCCESS, table_len));
    let table = connect(&host);
    assert_eq!(table.version(), abi::PROVIDER_VERSION);
    let counts = host.counts();
    assert_eq!((counts.tables_served, counts.requests_refused, counts.registered), (2, 4, 0));
}

#[test]
fn a_vendor_registered_through_the_table_drops_edits_replaces_takes_and_reinjects() {
    static ADAPTERS: HookAdapters = HookAdapters::new();
    let (engine, module, charged_at_start) = engine();
    let host = Host::with_static_adapters(&engine, &ADAPTERS);
    let table = connect(&host);
    let registration = table.register("marking", 100, Marking::default()).expect("registered");
    line_up(&engine, module);
    assert_eq!(registration.filter().lines_up.load(Ordering::Relaxed), 1);
    let empty = LinkInfo {
        link_id: 0,
        module: 0,
        link_speed_100bps: 0,
        maximum_total_size: 0,
        reported_total_size: 0,
        protocol_type: 0,
        remote_address: [0; 6],
        local_address: [0; 6],
        reserved: 0,
    };
    let mut links = [empty; 4];
    assert_eq!(registration.provider().links(&mut links), Ok(1));
    assert_eq!((links[0].remote_address, links[0].reported_total_size), (REMOTE.0, 1400), "the MTU the vendor lowered");

    let mut chain = Chain::default();
    for mark in 0..5 {
        chain.push_back(send_frame(mark));
    }
    engine.send(module, chain, PathContext::default());
    let down = engine.hal().take_sent_down();
    let ttls: Vec<(u8, u8)> = down.iter().map(|frame| (frame.bytes[MARK], frame.bytes[TTL])).collect();
    assert_eq!(ttls, [(0, 64), (2, 7), (3, 9)], "passed, edited in place, replaced; dropped and taken held back");
    let dropped = engine.hal().take_completed();
    assert_eq!(dropped.len(), 1, "the dropped send is completed at once");
    assert_eq!(dropped[0].bytes[MARK], 1);
    assert_ne!(dropped[0].status, NdisStatus::SUCCESS, "with a failure status");

    let taken = std::mem::take(&mut *registration.filter().taken.lock().unwrap_or_else(PoisonError::into_inner));
    assert_eq!(taken.len(), 1);
    assert_eq!(registration.provider().reinject(taken[0], ReinjectVerdict::Pass), Ok(()));
    assert_eq!(registration.provider().reinject(taken[0], ReinjectVerdict::Pass), Err(Status::NOT_FOUND), "a ticket is used once");
    let reinjected = engine.hal().take_sent_down();
    assert_eq!(reinjected.iter().map(|frame| frame.bytes[MARK]).collect::<Vec<_>>(), [4]);

    let mut completions = Chain::default();
    for frame in down.into_iter().chain(reinjected) {
        completions.push_back(frame);
    }
    engine.send_complete(module, completions, PathContext::default());
    let mut home: Vec<u8> = engine.hal().take_completed().iter().map(|frame| frame.bytes[MARK]).collect();
    home.sort_unstable();
    assert_eq!(home, [0, 2, 3, 4], "every send the miniport completed is back with the protocol, the replaced one as sent");

    registration.deregister().expect("deregistered");
    let counts = host.counts();
    assert_eq!((counts.registered, counts.registrations, counts.deregistrations), (0, 1, 1));
    assert_eq!(engine.pause(module), Ok(PauseProgress::Complete), "nothing is out");
    engine.detach(module).expect("detached");
    assert_eq!(engine.hal().charged(), charged_at_start, "every charge of the link, the packets and the vendor released");
}

#[test]
fn revoking_every_registration_unloads_the_vendors_and_closes_the_table() {
    static ADAPTERS: HookAdapters = HookAdapters::new();
    let (engine, module, charged_at_start) = engine();
    let host = Host::with_static_adapters(&engine, &ADAPTERS);
    let table = connect(&host);
    let registration = table.register("marking", 100, Marking::default()).expect("registered");
    line_up(&engine, module);
    let mut chain = Chain::default();
    chain.push_back(send_frame(4));
    engine.send(module, chain, PathContext::default());
    assert!(engine.hal().take_sent_down().is_empty(), "taken");

    assert_eq!(host.revoke_all(), 1);
    assert!(registration.filter().unloaded.load(Ordering::Relaxed), "OnProviderUnload was called");
    assert!(registration.is_revoked());
    let handed_on = engine.hal().take_sent_down();
    assert_eq!(handed_on.len(), 1, "what the vendor took is handed on when it is removed");
    let ticket = registration.filter().taken.lock().unwrap_or_else(PoisonError::into_inner)[0];
    assert_eq!(registration.provider().reinject(ticket, ReinjectVerdict::Pass), Err(Status::DEVICE_REMOVED));
    assert_eq!(ask(&host, &client::request(), size_of::<abi::ProviderTable>()).0, Status::DEVICE_REMOVED, "no table after unload");
    assert_eq!(table.register("late", 1, Marking::default()).err(), Some(Status::DEVICE_REMOVED));
    drop(registration);
    assert_eq!(host.counts().revocations, 1);

    let mut completions = Chain::default();
    for frame in handed_on {
        completions.push_back(frame);
    }
    engine.send_complete(module, completions, PathContext::default());
    assert_eq!(engine.hal().take_completed().len(), 1);
    assert_eq!(engine.pause(module), Ok(PauseProgress::Complete), "nothing is out");
    engine.detach(module).expect("detached");
    assert_eq!(engine.hal().charged(), charged_at_start, "every charge of the link, the packets and the vendor released");
}
