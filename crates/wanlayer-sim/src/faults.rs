//! Fault injection, like Driver Verifier's low-resources simulation.
//!
//! Every allocation a filter asks the simulator for — a [`Memory::try_charge`], a packet
//! [`PacketIo::allocate`], an OID clone — is one numbered *attempt*. A plan can fail chosen attempts
//! by number, every charge to chosen pools, or every packet allocation. The usual test runs a
//! scenario once to count the attempts, then once more per attempt with that one failing, and asks
//! the verifier each time whether the filter failed cleanly.
//!
//! [`Memory::try_charge`]: wanlayer_core::hal::Memory::try_charge
//! [`PacketIo::allocate`]: wanlayer_core::hal::PacketIo::allocate

use std::collections::BTreeSet;
use std::fmt;

use wanlayer_core::hal::Pool;

use crate::hal::SimHal;

/// What an allocation attempt asked for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Allocation {
    /// Memory charged to a pool.
    Charge(Pool),
    /// A packet (`NdisAllocateNetBufferList` and its buffer).
    Packet,
    /// A clone of an OID request (`NdisAllocateCloneOidRequest`).
    OidClone,
}

impl fmt::Display for Allocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allocation::Charge(pool) => write!(f, "charge to {}", String::from_utf8_lossy(&pool.tag())),
            Allocation::Packet => f.write_str("packet allocation"),
            Allocation::OidClone => f.write_str("OID clone"),
        }
    }
}

/// Which allocations fail, and what was attempted so far.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    fail_attempts: BTreeSet<u64>,
    fail_pools: Vec<Pool>,
    fail_packets: bool,
    fail_oid_clones: bool,
    attempts: Vec<Allocation>,
    failed: Vec<(u64, Allocation)>,
}

impl FaultPlan {
    /// A plan that fails nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails the `n`th attempt (counting from 1).
    pub fn fail_nth(mut self, n: u64) -> Self {
        self.fail_attempts.insert(n);
        self
    }

    /// Fails every charge to `pool`.
    pub fn fail_pool(mut self, pool: Pool) -> Self {
        if !self.fail_pools.contains(&pool) {
            self.fail_pools.push(pool);
        }
        self
    }

    /// Fails every packet allocation.
    pub fn fail_packets(mut self) -> Self {
        self.fail_packets = true;
        self
    }

    /// Fails every OID clone.
    pub fn fail_oid_clones(mut self) -> Self {
        self.fail_oid_clones = true;
        self
    }

    /// Numbers the attempt and decides it: `true` when it may succeed.
    pub(crate) fn attempt(&mut self, what: Allocation) -> bool {
        self.attempts.push(what);
        let number = self.attempts.len() as u64;
        let fail = self.fail_attempts.contains(&number)
            || match what {
                Allocation::Charge(pool) => self.fail_pools.contains(&pool),
                Allocation::Packet => self.fail_packets,
                Allocation::OidClone => self.fail_oid_clones,
            };
        if fail {
            self.failed.push((number, what));
        }
        !fail
    }

    /// How many allocations were attempted.
    pub fn attempts(&self) -> u64 {
        self.attempts.len() as u64
    }

    /// Every attempt so far, in order.
    pub fn attempt_log(&self) -> &[Allocation] {
        &self.attempts
    }

    /// The attempts that were failed, with their numbers.
    pub fn failures(&self) -> &[(u64, Allocation)] {
        &self.failed
    }
}

/// A live handle on the fault plan of a simulated world.
#[derive(Clone)]
pub struct Faults {
    hal: SimHal,
}

impl Faults {
    pub(crate) fn new(hal: SimHal) -> Self {
        Self { hal }
    }

    /// Fails the `n`th attempt counted since the world began (from 1).
    pub fn fail_nth(&self, n: u64) {
        self.update(|plan| plan.fail_nth(n));
    }

    /// Fails every charge to `pool` from now on.
    pub fn fail_pool(&self, pool: Pool) {
        self.update(|plan| plan.fail_pool(pool));
    }

    /// Fails every packet allocation from now on.
    pub fn fail_packets(&self) {
        self.update(FaultPlan::fail_packets);
    }

    /// Fails every OID clone from now on.
    pub fn fail_oid_clones(&self) {
        self.update(FaultPlan::fail_oid_clones);
    }

    /// Stops failing anything; the attempt count goes on.
    pub fn heal(&self) {
        self.hal.with_state_mut(|state| {
            state.faults.fail_attempts.clear();
            state.faults.fail_pools.clear();
            state.faults.fail_packets = false;
            state.faults.fail_oid_clones = false;
        });
    }

    /// How many allocations were attempted so far.
    pub fn attempts(&self) -> u64 {
        self.hal.with_state(|state| state.faults.attempts())
    }

    /// Every attempt so far, in order.
    pub fn attempt_log(&self) -> Vec<Allocation> {
        self.hal.with_state(|state| state.faults.attempt_log().to_vec())
    }

    /// The attempts that were failed, with their numbers.
    pub fn failures(&self) -> Vec<(u64, Allocation)> {
        self.hal.with_state(|state| state.faults.failures().to_vec())
    }

    fn update(&self, change: impl FnOnce(FaultPlan) -> FaultPlan) {
        self.hal.with_state_mut(|state| state.faults = change(std::mem::take(&mut state.faults)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_attempt_fails_whatever_it_is() {
        let mut plan = FaultPlan::new().fail_nth(2);
        assert!(plan.attempt(Allocation::Packet));
        assert!(!plan.attempt(Allocation::Charge(Pool::Link)));
        assert!(plan.attempt(Allocation::Charge(Pool::Link)));
        assert_eq!(plan.attempts(), 3);
        assert_eq!(plan.failures(), [(2, Allocation::Charge(Pool::Link))]);
    }

    #[test]
    fn pool_and_kind_faults_fail_every_matching_attempt() {
        let mut plan = FaultPlan::new().fail_pool(Pool::Taken).fail_packets();
        assert!(!plan.attempt(Allocation::Charge(Pool::Taken)));
        assert!(plan.attempt(Allocation::Charge(Pool::Event)));
        assert!(!plan.attempt(Allocation::Packet));
        assert!(plan.attempt(Allocation::OidClone));
        assert_eq!(plan.failures().len(), 2);
        assert_eq!(plan.attempt_log().len(), 4);
        assert_eq!(Allocation::Charge(Pool::Link).to_string(), "charge to WLlk");
    }
}
