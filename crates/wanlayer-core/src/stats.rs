//! Statistics: per module, per link and per hook, by direction.
//!
//! Counters are relaxed atomics so that hooks, which run with no lock held, can count too; a
//! snapshot is a plain copy for tools.

use core::sync::atomic::{AtomicU64, Ordering};

/// Why the engine dropped a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    /// A hook's verdict.
    Hook,
    /// The module was pausing or paused (sends completed with `NDIS_STATUS_PAUSED`).
    Paused,
    /// An allocation failed.
    Resources,
    /// The packet's link went down while a hook held it.
    LinkDown,
    /// The protocol cancelled the send while a hook held it.
    Cancelled,
}

impl DropReason {
    /// Every reason, in report order.
    pub const ALL: [DropReason; 5] =
        [DropReason::Hook, DropReason::Paused, DropReason::Resources, DropReason::LinkDown, DropReason::Cancelled];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Hook => "hook",
            DropReason::Paused => "paused",
            DropReason::Resources => "resources",
            DropReason::LinkDown => "link-down",
            DropReason::Cancelled => "cancelled",
        }
    }
}

/// A relaxed atomic event counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    pub fn increment(&self) {
        self.add(1);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Sets the value to zero.
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Traffic counts of one direction, as a plain copy: packets, frame bytes, drops for any reason.
/// The control device's record itself, so a snapshot goes on the wire as it is.
pub use wanlayer_proto::TrafficRepr as TrafficCounts;

/// Traffic counters of one direction.
#[derive(Debug, Default)]
pub struct DirectionCounters {
    packets: Counter,
    bytes: Counter,
    drops: Counter,
}

impl DirectionCounters {
    /// Counts one packet of `bytes` bytes.
    pub fn count_packet(&self, bytes: usize) {
        self.count_packets(1, bytes as u64);
    }
    /// Counts `packets` packets of `bytes` bytes in all.
    pub fn count_packets(&self, packets: u64, bytes: u64) {
        self.packets.add(packets);
        self.bytes.add(bytes);
    }
    /// Counts one drop.
    pub fn count_drop(&self) {
        self.drops.increment();
    }
    /// A plain copy.
    pub fn snapshot(&self) -> TrafficCounts {
        TrafficCounts { packets: self.packets.get(), bytes: self.bytes.get(), drops: self.drops.get() }
    }
    /// Zeroes every counter.
    pub fn reset(&self) {
        self.packets.reset();
        self.bytes.reset();
        self.drops.reset();
    }
}

/// One direction of a module's counters, as a plain copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ModuleDirectionCounts {
    /// Packets, bytes and drops.
    pub traffic: TrafficCounts,
    /// Drops by reason, in [`DropReason::ALL`] order.
    pub drops_by_reason: [u64; 5],
    /// Packets whose frame matched no live link (passed on untouched).
    pub unmatched: u64,
    /// Packets a hook modified.
    pub modified: u64,
    /// Packets a hook took.
    pub taken: u64,
    /// Taken packets handed back by their hook.
    pub reinjected: u64,
    /// Received packets copied because the miniport indicated them with the resources flag.
    pub copied_for_resources: u64,
    /// Packets injected through the control device (not counted in `traffic`).
    pub injected: u64,
}

/// One direction of a module's counters.
#[derive(Debug, Default)]
pub struct ModuleDirectionCounters {
    traffic: DirectionCounters,
    drops_by_reason: [Counter; 5],
    unmatched: Counter,
    modified: Counter,
    taken: Counter,
    reinjected: Counter,
    copied_for_resources: Counter,
    injected: Counter,
}

impl ModuleDirectionCounters {
    /// Counts one packet of `bytes` bytes.
    pub fn count_packet(&self, bytes: usize) {
        self.traffic.count_packet(bytes);
    }
    /// Counts `packets` packets of `bytes` bytes in all.
    pub fn count_packets(&self, packets: u64, bytes: u64) {
        self.traffic.count_packets(packets, bytes);
    }
    /// Counts a drop for `reason`.
    pub fn count_drop(&self, reason: DropReason) {
        self.traffic.count_drop();
        self.drops_by_reason[reason as usize].increment();
    }
    /// Counts a packet with no live link.
    pub fn count_unmatched(&self) {
        self.unmatched.increment();
    }
    /// Counts `packets` packets with no live link.
    pub fn count_unmatched_packets(&self, packets: u64) {
        self.unmatched.add(packets);
    }
    /// Counts a modification.
    pub fn count_modified(&self) {
        self.modified.increment();
    }
    /// Counts a take.
    pub fn count_taken(&self) {
        self.taken.increment();
    }
    /// Counts a reinjection.
    pub fn count_reinjected(&self) {
        self.reinjected.increment();
    }
    /// Counts a copy made because of the resources flag.
    pub fn count_copied_for_resources(&self) {
        self.copied_for_resources.increment();
    }
    /// Counts a packet injected through the control device.
    pub fn count_injected(&self) {
        self.injected.increment();
    }
    /// A plain copy.
    pub fn snapshot(&self) -> ModuleDirectionCounts {
        ModuleDirectionCounts {
            traffic: self.traffic.snapshot(),
            drops_by_reason: core::array::from_fn(|i| self.drops_by_reason[i].get()),
            unmatched: self.unmatched.get(),
            modified: self.modified.get(),
            taken: self.taken.get(),
            reinjected: self.reinjected.get(),
            copied_for_resources: self.copied_for_resources.get(),
            injected: self.injected.get(),
        }
    }
    /// Zeroes every counter.
    pub fn reset(&self) {
        self.traffic.reset();
        self.drops_by_reason.iter().for_each(Counter::reset);
        self.unmatched.reset();
        self.modified.reset();
        self.taken.reset();
        self.reinjected.reset();
        self.copied_for_resources.reset();
        self.injected.reset();
    }
}

/// What one hook did in one direction, as a plain copy: packets and bytes shown, and each
/// verdict. The control device's record itself, so a snapshot goes on the wire as it is.
pub use wanlayer_proto::VerdictStats as VerdictCounts;

/// What one hook did in one direction.
///
/// Packets seen are not counted apart: every packet shown gets exactly one verdict, so the sum of
/// the verdict counts is the number seen (one atomic add fewer per hook per packet).
#[derive(Debug, Default)]
pub struct VerdictCounters {
    bytes: Counter,
    passed: Counter,
    dropped: Counter,
    modified: Counter,
    taken: Counter,
}

impl VerdictCounters {
    /// Counts a packet of `bytes` bytes shown to the hook and its verdict.
    pub fn count(&self, bytes: usize, verdict: crate::hook::Verdict) {
        self.bytes.add(bytes as u64);
        match verdict {
            crate::hook::Verdict::Pass => self.passed.increment(),
            crate::hook::Verdict::Drop => self.dropped.increment(),
            crate::hook::Verdict::Modify => self.modified.increment(),
            crate::hook::Verdict::Take => self.taken.increment(),
        }
    }
    /// Counts `packets` packets of `bytes` bytes in all shown to the hook and passed.
    pub fn count_passes(&self, packets: u64, bytes: u64) {
        self.bytes.add(bytes);
        self.passed.add(packets);
    }
    /// A plain copy.
    pub fn snapshot(&self) -> VerdictCounts {
        VerdictCounts {
            seen: self.passed.get() + self.dropped.get() + self.modified.get() + self.taken.get(),
            bytes: self.bytes.get(),
            passed: self.passed.get(),
            dropped: self.dropped.get(),
            modified: self.modified.get(),
            taken: self.taken.get(),
        }
    }
    /// Zeroes every counter.
    pub fn reset(&self) {
        for counter in [&self.bytes, &self.passed, &self.dropped, &self.modified, &self.taken] {
            counter.reset();
        }
    }
}
