//! Starting a simulated server, reading what the engine and the simulated drivers saw, and the
//! teardown every scenario ends with.

use wanlayer_core::event::EventRecord;
use wanlayer_core::hal::{Hal, Pool};
use wanlayer_core::hook::{Direction, HookId, HookInfo};
use wanlayer_core::module::ModuleCounts;
use wanlayer_core::stats::{DropReason, ModuleDirectionCounts};
use wanlayer_core::{Engine, ModuleId, NdisStatus};
use wanlayer_sim::{Edge, EngineFilter, Flow, PacketId, Protocol, Rras, RrasBuilder, SimLink, Transport};
use wanlayer_sim_driver::DriverFilter;

/// A DNS-like UDP flow (server port 53, client port 40000, 64-byte payloads): `Flow::udp(53, 40_000)`
/// as a constant.
pub const UDP: Flow = Flow { transport: Transport::Udp, server_port: 53, client_port: 40_000, payload_len: 64 };

/// Builds the server `builder` describes around wanlayer.sys's own handlers (the driver in the
/// loop, over the kernel model) and starts it (every edge attached and running).
///
/// # Panics
/// When the server does not start.
pub fn start(builder: RrasBuilder) -> Rras<DriverFilter> {
    let rras = builder.build(DriverFilter::new());
    rras.start().expect("the server starts");
    rras
}

/// A default server (NdisWan's two edges, alternating IRQLs) around the driver's handlers, started.
///
/// # Panics
/// When the server does not start.
pub fn started() -> Rras<DriverFilter> {
    start(Rras::builder())
}

/// The teardown every scenario ends with: lets the simulated drivers finish, unloads the driver
/// (detaching every module), and checks that the verifier caught nothing, that every packet is
/// back with its owner and that every pool charge was released.
///
/// # Panics
/// When any of that does not hold.
#[track_caller]
pub fn finish<F: EngineFilter>(mut rras: Rras<F>) {
    rras.run_until_idle();
    rras.unload();
    rras.verifier().assert_clean();
    assert_settled(&rras);
}

/// Checks that every packet ever made is back with its owner and that no pool is charged.
///
/// # Panics
/// When a packet is still out or a pool still charged.
#[track_caller]
pub fn assert_settled<F: EngineFilter>(rras: &Rras<F>) {
    let ledger = rras.ledger_counts();
    assert_eq!(ledger.home, ledger.created, "every packet goes home: {ledger}");
    for (pool, usage) in rras.pools() {
        assert_eq!(usage.current, 0, "{pool:?} still charged: {usage:?}");
    }
    for pool in Pool::ALL {
        assert_eq!(rras.filter().pool_charged(pool), 0, "{pool:?} still charged by the engine's platform");
    }
}

/// The module on `edge`.
///
/// # Panics
/// When no module is attached there.
#[track_caller]
pub fn module<F: EngineFilter>(rras: &Rras<F>, edge: Edge) -> ModuleId {
    rras.module(edge).unwrap_or_else(|| panic!("no module on {edge}"))
}

/// The engine's counters of the module on `edge`.
///
/// # Panics
/// When no module is attached there.
#[track_caller]
pub fn counts<F: EngineFilter>(rras: &Rras<F>, edge: Edge) -> ModuleCounts {
    rras.counts(edge).unwrap_or_else(|| panic!("no counters on {edge}")).counts
}

/// Drops counted for `reason`.
pub fn drops(counts: &ModuleDirectionCounts, reason: DropReason) -> u64 {
    counts.drops_by_reason[reason as usize]
}

/// Every event waiting in the engine's queue, oldest first (the queue is empty afterwards).
pub fn drain_events<H: Hal>(engine: &Engine<H>) -> Vec<EventRecord> {
    std::iter::from_fn(|| engine.next_event()).collect()
}

/// What the engine says about hook `id`, `None` once it is removed.
pub fn hook_info<H: Hal>(engine: &Engine<H>, id: HookId) -> Option<HookInfo> {
    let mut found = None;
    engine.visit_hooks(|info| {
        if info.id == id {
            found = Some(*info);
        }
    });
    found
}

/// `count` frames of `flow` on `link` travelling `direction`, numbered from `first`.
pub fn frames(link: &SimLink, direction: Direction, flow: &Flow, first: u32, count: u32) -> Vec<Vec<u8>> {
    (first..first + count).map(|seq| link.frame(direction, flow, seq)).collect()
}

/// The completion status of each of `ids`, `None` for a send not completed yet.
pub fn completions(protocol: &Protocol, ids: &[PacketId]) -> Vec<Option<NdisStatus>> {
    ids.iter().map(|id| protocol.completion_of(*id)).collect()
}

/// The frame lengths of `frames`, summed, as the engine counts bytes.
pub fn byte_count(frames: &[Vec<u8>]) -> u64 {
    frames.iter().map(|frame| frame.len() as u64).sum()
}
