//! Randomized NDIS schedules: a seeded generator of whole RRAS server runs, the runner that drives
//! them through wanlayer.sys's own handlers in the simulator, and a shrinker that cuts a failing
//! schedule down to the operations that matter.
//!
//! A schedule is a list of [`Op`]s — line ups and downs, sends and receives (chains, lent and
//! read-only receives), completions held and released in any order, pause, restart, detach and
//! attach, hooks and vendor filters added and removed (passing, dropping, modifying in place or by
//! replacement, taking and reinjecting), control-device requests, OID requests and allocation
//! failures. Every operation names what it acts on by a small number taken modulo what exists
//! when it runs, so any sub-list of a schedule is a schedule too: that is what lets the shrinker
//! delete operations freely.
//!
//! Each run ends by releasing what the simulated drivers hold, closing the control device,
//! letting the vendors go and unloading the driver, and passes only when the verifier caught
//! nothing, every packet ever made is back with its owner exactly once (the ledger), and every
//! pool is at zero. The same seed always gives the same schedule and the same run.
//!
//! A schedule runs against wanlayer.sys's own handlers over the kernel model (`DriverFilter`, the
//! driver in the loop): its control device through its dispatch routines, hooks in the engine the
//! driver owns, vendors through the SDK's kernel client (`\Device\WanLayer` and the driver's
//! provider table), failures of the kernel model's allocations (pool, NBL pools, NBLs, MDLs, OID
//! clones). One driver per process at a time: runs are serialised.

mod run;

use std::fmt;

pub use run::{run, RunFigures};

/// Which adapter an operation concerns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Adapter {
    /// NdisWan's IPv4 edge.
    Ip,
    /// NdisWan's IPv6 edge.
    Ipv6,
    /// An ordinary Ethernet adapter (a pass-through module; line ups never come from it).
    Ethernet,
}

/// A status indication other than a well-formed line up or line down.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StatusKind {
    /// A status the filter only passes up.
    Other,
    /// `NDIS_STATUS_WAN_LINE_UP` with a buffer that is not a line up.
    MalformedLineUp,
    /// `NDIS_STATUS_WAN_LINE_DOWN` with a buffer that is not a line down.
    MalformedLineDown,
}

/// What a send carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Payload {
    /// UDP datagrams.
    Udp,
    /// TCP segments.
    Tcp,
    /// TCP SYNs announcing an MSS of 1460 (what the MSS clamps rewrite).
    Syn,
}

/// How the miniport indicates a receive chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lend {
    /// Owned by the filter until returned.
    Plain,
    /// Lent with `NDIS_RECEIVE_FLAGS_RESOURCES`.
    Resources,
    /// Read-only buffers (edits must copy).
    ReadOnly,
    /// Lent and read-only.
    ResourcesReadOnly,
}

/// When the simulated miniport completes sends, or the protocol returns receives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Timing {
    /// After this many microseconds of virtual time.
    After(u16),
    /// Not until released.
    Hold,
}

/// Which packets a hook or vendor acts on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ways {
    /// Sends.
    Sends,
    /// Receives.
    Receives,
    /// Both.
    Both,
}

/// An engine hook the schedule can add.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HookKind {
    /// Counts and passes.
    Pass,
    /// Drops.
    Drop(Ways),
    /// Clamps the MSS of SYNs in place.
    ClampInPlace,
    /// Rewrites the TTL by replacing the frame.
    Replace(Ways),
    /// Takes packets for a later reinjection.
    Take(Ways),
    /// Lowers the MTU at line up.
    Mtu,
}

/// A vendor filter the schedule can register through the SDK's provider table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VendorKind {
    /// The SDK's sample, wlclamp: MSS clamp and a token bucket that queues sends.
    Clamp,
    /// Takes packets and keeps the tickets until given back.
    Taker(Ways),
    /// Drops everything.
    Dropper,
    /// Lowers the MTU and replaces sends with a rewritten TTL.
    Tunnel,
    /// Takes every packet and, inside the same callback, hands back the one it took before: a
    /// vendor that calls into wanlayer from its own callback.
    Relay,
}

/// A control-device request (`\\.\WanLayer`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ControlOp {
    /// `LIST_MODULES`.
    ListModules,
    /// `LIST_LINKS` from a cursor, a few at a time.
    ListLinks {
        /// Entries per batch.
        max: u8,
    },
    /// `LIST_HOOKS`.
    ListHooks,
    /// `QUERY_STATS` of one module.
    ModuleStats(Adapter),
    /// `QUERY_STATS` of one link.
    LinkStats {
        /// The link (modulo the live links).
        link: u8,
    },
    /// `RESET_STATS` of everything.
    ResetStats,
    /// `SUBSCRIBE_EVENTS` with a ring of `capacity` records.
    Subscribe {
        /// Ring capacity.
        capacity: u8,
    },
    /// `READ_EVENTS`, waiting (pending) or not.
    ReadEvents {
        /// Pend when nothing is there.
        wait: bool,
    },
    /// `UNSUBSCRIBE_EVENTS`.
    Unsubscribe,
    /// The device's DPC: services the handles the engine woke.
    Service,
    /// Cancels the oldest pending read (`CancelIoEx`).
    CancelRead,
    /// `CAPTURE_START` of everything or of one link.
    CaptureStart {
        /// The link (modulo the live links), or everything.
        link: Option<u8>,
        /// Bytes kept per frame.
        snap_len: u16,
    },
    /// `CAPTURE_READ`.
    CaptureRead,
    /// `CAPTURE_STOP`.
    CaptureStop,
    /// `INJECT` a frame on a link.
    Inject {
        /// The link (modulo the live links).
        link: u8,
        /// Up to the protocol rather than down to the miniport.
        receive: bool,
    },
    /// Closes the handle (its pending reads are cancelled) and opens a new one.
    Reopen,
    /// `SET_RULES`: one of the soak's compiled rule sets (0: none) at an altitude, replacing any
    /// set or only the version last read (which may be stale by then).
    SetRules {
        /// Which set (modulo the soak's sets).
        set: u8,
        /// The altitude it runs at.
        altitude: u8,
        /// Replace only the version last read by `GET_RULES` or `SET_RULES`.
        expect_last_read: bool,
    },
    /// `GET_RULES`.
    GetRules,
    /// `RULE_STATS`.
    RuleStats,
    /// `CAPTURE_START` of what one rule captures.
    CaptureRule {
        /// The rule's id.
        id: u8,
    },
}

/// An allocation failure of the kernel model the schedule injects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultOp {
    /// Fails the allocation `after` allocations from now.
    FailSoon {
        /// Allocations from now (1: the next one).
        after: u8,
    },
    /// Fails the next allocation of one kind (pool, NBL pool, NBL, MDL, OID clone; modulo five).
    FailKind(u8),
    /// Fails the next NBL allocation.
    FailNbl,
    /// Fails the next OID clone.
    FailOidClone,
    /// Stops failing anything.
    Heal,
}

/// One operation of a schedule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    /// NdisWan brings a link up.
    LinkUp {
        /// Its edge.
        edge: Adapter,
        /// Its `MaximumTotalSize`.
        mtu: u16,
    },
    /// NdisWan indicates a line up again for a link that is up (new parameters after a
    /// renegotiation).
    LineUpAgain {
        /// The link (modulo the live links).
        link: u8,
        /// Its new `MaximumTotalSize`.
        mtu: u16,
    },
    /// The miniport indicates another status.
    Status {
        /// The adapter.
        adapter: Adapter,
        /// What it indicates.
        kind: StatusKind,
    },
    /// Traffic on the Ethernet adapter: a chain sent, or indicated (how, when it is a receive).
    Ethernet {
        /// Packets in the chain.
        count: u8,
        /// `None`: a send; else a receive indicated this way.
        receive: Option<Lend>,
    },
    /// Changes when the miniport completes OID requests.
    OidCompletion(Timing),
    /// The miniport completes the OID requests it holds.
    ReleaseOids,
    /// NdisWan takes a link down.
    LinkDown {
        /// The link (modulo the live links).
        link: u8,
    },
    /// The protocol sends a chain on a link.
    Send {
        /// The link (modulo the live links).
        link: u8,
        /// Packets in the chain.
        count: u8,
        /// What they carry.
        payload: Payload,
        /// The cancel identifier stamped on them.
        cancel_id: Option<u8>,
        /// `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`.
        loopback: bool,
    },
    /// The miniport indicates a chain from a link.
    Receive {
        /// The link (modulo the live links).
        link: u8,
        /// Packets in the chain.
        count: u8,
        /// How they are indicated.
        lend: Lend,
    },
    /// The protocol cancels its sends with an identifier.
    CancelSends {
        /// The edge.
        edge: Adapter,
        /// The identifier.
        cancel_id: u8,
    },
    /// Delivers up to this many pieces of deferred work.
    Steps(u8),
    /// Moves virtual time on (the simulated drivers finish what a pausing edge waits for first).
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// Changes when the miniport completes sends.
    SendCompletion(Timing),
    /// Changes when the protocol returns receives.
    ReceiveReturn(Timing),
    /// The miniport completes some held sends, in the order picked.
    ReleaseSends {
        /// The edge.
        edge: Adapter,
        /// Indexes into what is held.
        picks: [u8; 3],
    },
    /// The protocol returns some held receives, in the order picked.
    ReleaseReceives {
        /// The edge.
        edge: Adapter,
        /// Indexes into what is held.
        picks: [u8; 3],
    },
    /// `FilterPause`.
    Pause(Adapter),
    /// `FilterRestart`.
    Restart(Adapter),
    /// `FilterDetach` (pausing first).
    Detach(Adapter),
    /// `FilterAttach`, and `FilterRestart` after it when `restart`.
    Attach {
        /// The edge.
        edge: Adapter,
        /// Restart the module once attached.
        restart: bool,
    },
    /// Adds an engine hook.
    AddHook {
        /// Which.
        kind: HookKind,
        /// Its altitude.
        altitude: u8,
    },
    /// Removes an engine hook (modulo the hooks added).
    RemoveHook {
        /// Which.
        hook: u8,
    },
    /// A taking hook reinjects some of what it took, oldest first.
    Reinject {
        /// Which taking hook (modulo the taking hooks added).
        hook: u8,
        /// How many tickets.
        count: u8,
        /// Drop them rather than pass them on.
        drop: bool,
    },
    /// Registers a vendor filter through the provider table.
    AddVendor {
        /// Which.
        kind: VendorKind,
        /// Its altitude.
        altitude: u8,
    },
    /// Deregisters a vendor filter (modulo the vendors registered).
    RemoveVendor {
        /// Which.
        vendor: u8,
    },
    /// A vendor hands back what it holds (wlclamp: what its bucket allows now).
    VendorRelease {
        /// Which of the vendors that hold packets (modulo their number).
        vendor: u8,
        /// Drop what it gives back rather than pass it on.
        drop: bool,
    },
    /// What `DriverUnload` does with registrations left: revokes every one.
    RevokeVendors,
    /// A control-device request.
    Control(ControlOp),
    /// An OID request of the protocol.
    Oid {
        /// The edge.
        edge: Adapter,
        /// A set rather than a query.
        set: bool,
    },
    /// An allocation failure.
    Fault(FaultOp),
    /// Changes the IRQL of data-path callbacks (0 passive, 1 dispatch, 2 alternating).
    Irql(u8),
}

/// A seeded generator (SplitMix64): the same seed, the same numbers, on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// A small number below `bound`.
    fn small(&mut self, bound: u8) -> u8 {
        self.below(u64::from(bound)) as u8
    }

    /// True with probability `percent` %.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn edge(&mut self) -> Adapter {
        if self.chance(50) {
            Adapter::Ip
        } else {
            Adapter::Ipv6
        }
    }

    fn adapter(&mut self) -> Adapter {
        match self.below(5) {
            0 | 1 => Adapter::Ip,
            2 | 3 => Adapter::Ipv6,
            _ => Adapter::Ethernet,
        }
    }

    fn lend(&mut self) -> Lend {
        [Lend::Plain, Lend::Resources, Lend::ReadOnly, Lend::ResourcesReadOnly][self.below(4) as usize]
    }

    fn ways(&mut self) -> Ways {
        match self.below(3) {
            0 => Ways::Sends,
            1 => Ways::Receives,
            _ => Ways::Both,
        }
    }

    fn timing(&mut self) -> Timing {
        if self.chance(40) {
            Timing::Hold
        } else {
            Timing::After(self.below(3000) as u16)
        }
    }
}

/// A whole server run: the kernel it runs on, then the operations.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Schedule {
    /// A kernel older than build 19041, without `ExAllocatePool2` (the driver falls back to
    /// `ExAllocatePoolWithTag`, whose blocks are not zeroed).
    pub without_pool2: bool,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

impl Schedule {
    /// The same configuration with other operations.
    pub fn with_ops(&self, ops: Vec<Op>) -> Self {
        Self { ops, ..*self }
    }
}

/// The schedule of `seed`: the kernel, a link up on each of NdisWan's edges, then 8 to 160
/// operations.
pub fn generate(seed: u64) -> Schedule {
    let mut rng = Rng::new(seed);
    // Two numbers once drawn for the engine sizes of the simulator's own filter (the driver's are
    // fixed), still drawn so that every seed names the schedule it always has.
    rng.below(4);
    rng.below(3);
    let len = 8 + rng.below(153) as usize;
    let first = [Op::LinkUp { edge: Adapter::Ip, mtu: 1400 }, Op::LinkUp { edge: Adapter::Ipv6, mtu: 1500 }];
    let ops = first.into_iter().chain((0..len).map(|_| operation(&mut rng))).collect();
    // Drawn apart from the operations' numbers, so that adding it left every seed's operations as
    // they were.
    let without_pool2 = Rng::new(seed ^ 0x5EED_0F01_D0D0_0001).chance(25);
    Schedule { without_pool2, ops }
}

fn operation(rng: &mut Rng) -> Op {
    // Weights: traffic and links most often, the rest often enough that a schedule of 40
    // operations usually has a lifecycle change, a hook or vendor, and a control request.
    match rng.below(100) {
        0..=7 => Op::LinkUp { edge: rng.edge(), mtu: [1400, 1500, 576, 9000][rng.below(4) as usize] },
        8..=11 => Op::LinkDown { link: rng.small(8) },
        12..=27 => Op::Send {
            link: rng.small(8),
            count: 1 + rng.small(6),
            payload: [Payload::Udp, Payload::Tcp, Payload::Syn][rng.below(3) as usize],
            cancel_id: rng.chance(30).then(|| rng.small(3)),
            loopback: rng.chance(20),
        },
        28..=39 => Op::Receive { link: rng.small(8), count: 1 + rng.small(6), lend: rng.lend() },
        40 => Op::CancelSends { edge: rng.adapter(), cancel_id: rng.small(3) },
        41 => match rng.below(6) {
            0 | 1 => Op::LineUpAgain { link: rng.small(8), mtu: [1400, 1500, 576, 9000][rng.below(4) as usize] },
            2 => Op::Status { adapter: rng.adapter(), kind: StatusKind::Other },
            3 => Op::Status {
                adapter: rng.adapter(),
                kind: [StatusKind::MalformedLineUp, StatusKind::MalformedLineDown][rng.below(2) as usize],
            },
            4 => Op::OidCompletion(rng.timing()),
            _ => Op::ReleaseOids,
        },
        42..=44 => Op::Steps(1 + rng.small(6)),
        45 => match rng.below(3) {
            0 => Op::Attach { edge: rng.adapter(), restart: true },
            _ => Op::Ethernet { count: 1 + rng.small(4), receive: rng.chance(50).then(|| rng.lend()) },
        },
        46..=47 => Op::Advance { ms: [1, 10, 100, 2000][rng.below(4) as usize] },
        48..=49 => Op::SendCompletion(rng.timing()),
        50 => Op::ReceiveReturn(rng.timing()),
        51..=53 => Op::ReleaseSends { edge: rng.edge(), picks: [rng.small(8), rng.small(8), rng.small(8)] },
        54..=55 => Op::ReleaseReceives { edge: rng.edge(), picks: [rng.small(8), rng.small(8), rng.small(8)] },
        56..=57 => Op::Pause(rng.adapter()),
        58..=59 => Op::Restart(rng.adapter()),
        60 => Op::Detach(rng.adapter()),
        61 => Op::Attach { edge: rng.adapter(), restart: rng.chance(80) },
        62..=65 => {
            let kind = match rng.below(6) {
                0 => HookKind::Pass,
                1 => HookKind::Drop(rng.ways()),
                2 => HookKind::ClampInPlace,
                3 => HookKind::Replace(rng.ways()),
                4 => HookKind::Take(rng.ways()),
                _ => HookKind::Mtu,
            };
            Op::AddHook { kind, altitude: rng.small(255) }
        }
        66 => Op::RemoveHook { hook: rng.small(8) },
        67..=69 => Op::Reinject { hook: rng.small(8), count: 1 + rng.small(6), drop: rng.chance(25) },
        70..=72 => {
            let kind = match rng.below(5) {
                0 => VendorKind::Clamp,
                1 => VendorKind::Taker(rng.ways()),
                2 => VendorKind::Dropper,
                3 => VendorKind::Relay,
                _ => VendorKind::Tunnel,
            };
            Op::AddVendor { kind, altitude: rng.small(255) }
        }
        73 => Op::RemoveVendor { vendor: rng.small(8) },
        74..=75 => Op::VendorRelease { vendor: rng.small(8), drop: rng.chance(25) },
        76 => Op::RevokeVendors,
        77..=88 => Op::Control(control(rng)),
        89..=90 => Op::Oid { edge: rng.adapter(), set: rng.chance(50) },
        91..=97 => Op::Fault(match rng.below(10) {
            0..=5 => FaultOp::FailSoon { after: 1 + rng.small(8) },
            6 => FaultOp::FailKind(rng.small(8)),
            7 => [FaultOp::FailNbl, FaultOp::FailOidClone][rng.below(2) as usize],
            _ => FaultOp::Heal,
        }),
        _ => Op::Irql(rng.small(3)),
    }
}

fn control(rng: &mut Rng) -> ControlOp {
    match rng.below(20) {
        16 => ControlOp::SetRules { set: rng.small(8), altitude: rng.small(255), expect_last_read: rng.chance(50) },
        17 => ControlOp::GetRules,
        18 => ControlOp::RuleStats,
        19 => ControlOp::CaptureRule { id: rng.small(9) },
        0 => ControlOp::ListModules,
        1 => ControlOp::ListLinks { max: 1 + rng.small(4) },
        2 => ControlOp::ListHooks,
        3 => ControlOp::ModuleStats(rng.adapter()),
        4 => ControlOp::LinkStats { link: rng.small(8) },
        5 => ControlOp::ResetStats,
        6 => ControlOp::Subscribe { capacity: 1 + rng.small(16) },
        7 => ControlOp::ReadEvents { wait: rng.chance(50) },
        8 => ControlOp::Unsubscribe,
        9 => ControlOp::Service,
        10 => ControlOp::CancelRead,
        11 => ControlOp::CaptureStart { link: rng.chance(50).then(|| rng.small(8)), snap_len: [64, 1500][rng.below(2) as usize] },
        12 => ControlOp::CaptureRead,
        13 => ControlOp::CaptureStop,
        14 => ControlOp::Inject { link: rng.small(8), receive: rng.chance(50) },
        _ => ControlOp::Reopen,
    }
}

/// Why a schedule failed: where, and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The operation running when it was found (`None`: at the end, after unload).
    pub at: Option<usize>,
    /// What kind of failure it is, for the shrinker to keep to the same one: a rule's name,
    /// `panic`, `ledger` or `pool`.
    pub kind: String,
    /// The details: the verifier's report, the panic message, the packets or pools left.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "{} during operation {at}: {}", self.kind, self.detail),
            None => write!(f, "{} at the end: {}", self.kind, self.detail),
        }
    }
}

/// Cuts a failing schedule down to the operations that matter: [`minimize`] with "the run still
/// fails the same way" (the same [`Failure::kind`]), starting from the operations up to the one
/// the failure was found in.
pub fn shrink(schedule: &Schedule, failure: &Failure) -> Schedule {
    let end = failure.at.map_or(schedule.ops.len(), |at| (at + 1).min(schedule.ops.len()));
    let fails_alike = |ops: &[Op]| run(&schedule.with_ops(ops.to_vec())).err().is_some_and(|found| found.kind == failure.kind);
    schedule.with_ops(minimize(&schedule.ops[..end], fails_alike))
}

/// Delta debugging: removes chunks of operations, halving the chunk size down to single
/// operations, while `fails` still holds. The result still fails, and removing any one of its
/// operations makes it pass. When `schedule` itself does not fail it is returned whole.
pub fn minimize<T: Copy>(schedule: &[T], fails: impl Fn(&[T]) -> bool) -> Vec<T> {
    let mut current = schedule.to_vec();
    if !fails(&current) {
        return current;
    }
    let mut chunk = current.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        while start < current.len() {
            let end = (start + chunk).min(current.len());
            let candidate: Vec<T> = current[..start].iter().chain(&current[end..]).copied().collect();
            if fails(&candidate) {
                current = candidate;
            } else {
                start = end;
            }
        }
        if chunk == 1 {
            return current;
        }
        chunk = chunk.div_ceil(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_the_same_run() {
        for seed in [0, 1, 3, 0xDEAD_BEEF] {
            assert_eq!(generate(seed), generate(seed));
            assert_eq!(run(&generate(seed)), run(&generate(seed)));
        }
        assert_ne!(generate(1), generate(2));
    }

    #[test]
    fn schedules_pass_through_the_drivers_handlers_and_exercise_every_kind_of_operation() {
        let mut figures = RunFigures::default();
        for seed in 0..100 {
            let schedule = generate(seed);
            match run(&schedule) {
                Ok(run) => figures.add(&run),
                Err(failure) => panic!("seed {seed}: {failure}\nshrunk: {:#?}", shrink(&schedule, &failure)),
            }
        }
        assert!(figures.packets > 4_000 && figures.faults > 60 && figures.control_requests > 500, "{figures:?}");
        assert!(figures.reinjected > 30 && figures.rule_sets > 20 && figures.pauses_pending > 5 && figures.detaches > 30, "{figures:?}");
        assert!(figures.vendor_released > 10, "{figures:?}");
    }

    /// Regression (found by the driver soak with vendors): the translation kept what
    /// `IofCompleteRequest` reported for the vendor's internal device control (the SDK's kernel
    /// client asking for the provider table), keyed by the IRP's address; the next device control
    /// whose IRP reused that memory (the allocator hands a freed block of the same size back
    /// first) was answered with the vendor's status and length (96 bytes), not its own.
    #[test]
    fn a_vendors_device_control_leaves_no_completion_for_a_later_device_control_to_take() {
        use wanlayer_proto::ioctl::IOCTL_LIST_MODULES;
        use wanlayer_proto::{Access, HeaderOnly, ModuleList, ModuleListRepr, Status};
        use wanlayer_sim::IoOutcome;

        let rras = crate::setup::started();
        let handle = rras.filter().control_open(Access::READ_WRITE).expect("the device opens");
        let connection = crate::vendors::connect(&rras);
        let mut input = [0u8; 8];
        HeaderOnly.emit(&mut input).expect("a header");
        for _ in 0..4 {
            let IoOutcome::Complete(done) = rras.filter().control_ioctl(handle, IOCTL_LIST_MODULES, &input, 1024) else {
                panic!("LIST_MODULES pended")
            };
            assert_eq!(done.status, Status::Success);
            let declared = done.output.get(..4).map(|length| u32::from_le_bytes([length[0], length[1], length[2], length[3]]));
            assert_eq!(declared, Some(done.output.len() as u32), "the driver's own answer, whole: {:02x?}", done.output);
            ModuleListRepr::parse(&ModuleList::new_unchecked(&done.output[..])).expect("a module list");
        }
        rras.filter().vendor_call(false, || drop(connection));
        rras.filter().control_close(handle);
        crate::setup::finish(rras);
    }

    #[test]
    fn a_failing_schedule_shrinks_to_the_operations_that_matter() {
        let take = Op::AddHook { kind: HookKind::Take(Ways::Both), altitude: 9 };
        let pause = Op::Pause(Adapter::Ipv6);
        let mut schedule = generate(7).ops;
        schedule.insert(schedule.len() / 3, take);
        schedule.push(pause);
        // "Fails" when a taking hook is added before a pause of the IPv6 edge.
        let fails = |ops: &[Op]| ops.iter().position(|op| *op == take).is_some_and(|at| ops[at..].contains(&pause));
        assert_eq!(minimize(&schedule, fails), [take, pause]);
        assert_eq!(minimize(&schedule, |_| false), schedule, "a schedule that passes is kept whole");
    }
}
