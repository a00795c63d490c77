//! A module's gate: whether its data path is open, and per-processor counts of the data-path calls
//! in progress and of the packets it originated that are not back, so that a send or receive
//! neither takes the module's lock nor writes a line another processor writes.
//!
//! # Protocol
//! A call enters by counting itself on its processor's shard, then, after a sequentially
//! consistent fence, reading whether the gate is open: either it sees the gate closed and leaves
//! again, or the pause that closes the gate (a store, the same fence) sees the call in its sum and
//! waits for it (Dekker's store, fence, load on each side). Counts only grow: each shard has a
//! count of arrivals (calls entered, packets sent out) and one of departures (calls left, packets
//! back, `Release`), and a pause reads every departure count (`Acquire`) before any arrival count,
//! so a sum that moves between shards while it reads (entered on one processor, left on another)
//! can make it wait longer but never see the gate drained while a call or packet is still out:
//! every departure happens after its arrival, so an arrival is seen whenever its departure was.
//! Whoever counts a departure and then (fence, load) finds the gate closed takes the module's lock
//! and checks whether the pause can complete: the last departure always does. The model check
//! `crates/wanlayer-bench/tests/loom_module_gate.rs` runs this protocol with these orderings.

use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

use crate::hal::{ModuleId, OutOfMemory};
use crate::hook::Direction;
use crate::module::{ModuleCounts, ModuleKind};

/// One processor's counts, on a cache line of its own.
#[derive(Default)]
#[repr(align(64))]
struct GateShard {
    calls_entered: AtomicU64,
    calls_left: AtomicU64,
    packets_out: AtomicU64,
    packets_back: AtomicU64,
    /// The data path's traffic counts (packets and bytes by direction), summed on query.
    traffic: [[AtomicU64; 2]; 2],
}

/// The gate of one module slot.
pub(crate) struct ModuleGate {
    /// [`ModuleGate::open_word`] of the module while it is Running, 0 otherwise.
    open: AtomicU64,
    /// Set (once, never cleared) before the first packet the slot's modules originate is counted
    /// out: until then every packet that comes back is foreign, and a completion or return is
    /// handed on whole (see [`Self::may_have_own_out`]). Read-mostly: written once.
    originated: AtomicBool,
    shards: Vec<GateShard>,
}

/// How a data-path call left the gate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "a closed gate may have a pause to complete"]
pub(crate) enum AfterLeaving {
    /// The module is still Running: nothing waits.
    Open,
    /// The gate is closed: a pause may be waiting for what just left.
    Closed,
}

impl ModuleGate {
    /// Bytes a gate allocates for `processors` processors (charged with the engine's tables).
    pub(crate) fn bytes(processors: usize) -> usize {
        processors.max(1) * core::mem::size_of::<GateShard>()
    }

    /// A closed gate with a shard for each of `processors` processors.
    pub(crate) fn new(processors: usize) -> Result<Self, OutOfMemory> {
        let count = processors.max(1);
        let mut shards = Vec::new();
        shards.try_reserve_exact(count).map_err(|_| OutOfMemory)?;
        crate::memory::fill_within_capacity(&mut shards, count, GateShard::default)?;
        Ok(Self { open: AtomicU64::new(0), originated: AtomicBool::new(false), shards })
    }

    fn open_word(module: ModuleId, kind: ModuleKind) -> u64 {
        let kind = match kind {
            ModuleKind::NdisWanIp => 1,
            ModuleKind::NdisWanIpv6 => 2,
            ModuleKind::PassThrough => 3,
        };
        u64::from(module.0) | kind << 32
    }

    #[inline]
    fn shard(&self, processor: usize) -> &GateShard {
        // The index is below the count the shards were made for; a platform that answers more
        // still lands on a shard.
        &self.shards[processor % self.shards.len()]
    }

    /// Opens the gate to `module`'s data path (the module became Running). Under the module's lock.
    pub(crate) fn open(&self, module: ModuleId, kind: ModuleKind) {
        self.open.store(Self::open_word(module, kind), Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Closes the gate (the module stopped Running). Under the module's lock; a pause then reads
    /// [`Self::is_drained`].
    pub(crate) fn close(&self) {
        self.open.store(0, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// True while the gate is open to some module.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed) != 0
    }

    /// True while the gate is open to `module` (it is Running).
    #[inline]
    pub(crate) fn is_open_to(&self, module: ModuleId) -> bool {
        let word = self.open.load(Ordering::Relaxed);
        word != 0 && word as u32 == module.0
    }

    /// Starts a data-path call on `module` from `processor`: its kind when the gate is open to it
    /// (the call must end with [`Self::leave`]); otherwise the call is not counted, and the
    /// caller must handle [`AfterLeaving::Closed`] as after a leave.
    #[inline]
    pub(crate) fn enter(&self, processor: usize, module: ModuleId) -> Result<ModuleKind, AfterLeaving> {
        let shard = self.shard(processor);
        shard.calls_entered.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let word = self.open.load(Ordering::Relaxed);
        let kind = match word >> 32 {
            1 => ModuleKind::NdisWanIp,
            2 => ModuleKind::NdisWanIpv6,
            _ => ModuleKind::PassThrough,
        };
        if word != 0 && word as u32 == module.0 {
            return Ok(kind);
        }
        Err(self.leave(processor))
    }

    /// Ends a data-path call started with [`Self::enter`].
    #[inline]
    pub(crate) fn leave(&self, processor: usize) -> AfterLeaving {
        self.shard(processor).calls_left.fetch_add(1, Ordering::Release);
        self.after_departure()
    }

    /// [`Self::leave`], counting the call's traffic first (`packets` packets of `bytes` bytes
    /// travelling `direction`) on the same shard.
    #[inline]
    pub(crate) fn leave_counting(&self, processor: usize, direction: Direction, packets: u64, bytes: u64) -> AfterLeaving {
        let shard = self.shard(processor);
        if packets > 0 {
            let [shard_packets, shard_bytes] = &shard.traffic[direction as usize];
            shard_packets.fetch_add(packets, Ordering::Relaxed);
            shard_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        shard.calls_left.fetch_add(1, Ordering::Release);
        self.after_departure()
    }

    /// Counts `count` packets the module originated and is about to hand on. Called during a
    /// data-path call (the call's own count keeps a pause waiting until these are counted).
    pub(crate) fn packets_out(&self, processor: usize, count: usize) {
        if !self.originated.load(Ordering::Relaxed) {
            self.originated.store(true, Ordering::Relaxed);
        }
        self.shard(processor).packets_out.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// False while no packet the slot's modules originated was ever counted out: a chain that
    /// comes back then holds only foreign packets. A packet of the module's own in that chain was
    /// counted out (after this flag was set, on the same processor) before it was handed on, and
    /// the platform's hand-back orders that before this read; the flag is never cleared.
    #[inline]
    pub(crate) fn may_have_own_out(&self) -> bool {
        self.originated.load(Ordering::Relaxed)
    }

    /// Counts `count` of the module's own packets back.
    pub(crate) fn packets_back(&self, processor: usize, count: usize) -> AfterLeaving {
        self.shard(processor).packets_back.fetch_add(count as u64, Ordering::Release);
        self.after_departure()
    }

    #[inline]
    fn after_departure(&self) -> AfterLeaving {
        fence(Ordering::SeqCst);
        match self.is_open() {
            true => AfterLeaving::Open,
            false => AfterLeaving::Closed,
        }
    }

    /// Counts `packets` packets of `bytes` bytes travelling `direction` on `processor`'s shard.
    pub(crate) fn count_traffic(&self, processor: usize, direction: Direction, packets: u64, bytes: u64) {
        let [shard_packets, shard_bytes] = &self.shard(processor).traffic[direction as usize];
        shard_packets.fetch_add(packets, Ordering::Relaxed);
        shard_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds every shard's traffic counts to `counts` (a query).
    pub(crate) fn add_traffic(&self, counts: &mut ModuleCounts) {
        for shard in self.shards.iter() {
            for (direction, [packets, bytes]) in [&mut counts.send, &mut counts.receive].into_iter().zip(&shard.traffic) {
                direction.traffic.packets = direction.traffic.packets.wrapping_add(packets.load(Ordering::Relaxed));
                direction.traffic.bytes = direction.traffic.bytes.wrapping_add(bytes.load(Ordering::Relaxed));
            }
        }
    }

    /// Zeroes every shard's traffic counts.
    pub(crate) fn reset_traffic(&self) {
        self.shards.iter().flat_map(|shard| shard.traffic.iter().flatten()).for_each(|count| count.store(0, Ordering::Relaxed));
    }

    /// The module's own packets not back yet (a query: may be off by what moves while it reads).
    pub(crate) fn packets_in_flight(&self) -> usize {
        let back = self.shards.iter().fold(0u64, |sum, shard| sum.wrapping_add(shard.packets_back.load(Ordering::Acquire)));
        let out = self.shards.iter().fold(0u64, |sum, shard| sum.wrapping_add(shard.packets_out.load(Ordering::Relaxed)));
        usize::try_from(out.wrapping_sub(back)).unwrap_or(usize::MAX)
    }

    /// True when no call is in progress and every packet is back, at one moment during the read:
    /// departures are read before arrivals (see the module documentation). Meaningful once the
    /// gate is closed, when no new call can stay in.
    pub(crate) fn is_drained(&self) -> bool {
        fence(Ordering::SeqCst);
        let departures = self.shards.iter().fold(0u64, |sum, shard| {
            sum.wrapping_add(shard.calls_left.load(Ordering::Acquire)).wrapping_add(shard.packets_back.load(Ordering::Acquire))
        });
        let arrivals = self.shards.iter().fold(0u64, |sum, shard| {
            sum.wrapping_add(shard.calls_entered.load(Ordering::Relaxed)).wrapping_add(shard.packets_out.load(Ordering::Relaxed))
        });
        departures == arrivals
    }
}
