//! The rules the simulator enforces, and the violations it collects.
//!
//! Like Driver Verifier with the NDIS/WIFI and DDI compliance options, the simulator checks every
//! call a filter makes and every callback's outcome. Unlike Driver Verifier it does not bug check:
//! it records a [`Violation`], keeps the simulation going, and lets the test decide.
//!
//! One mistake is reported once, not as a cascade: a violating hand-off is discarded, and the
//! packets it concerned — with the parents they carry — are *forfeited*
//! ([`Holder::Forfeited`](crate::Holder::Forfeited)): whatever the filter does with them later
//! (returns them, frees them, waits for them at a pause) is not reported again. A protocol OID
//! request the filter passes down instead of a clone is taken out of play the same way. What the
//! filter still really holds or owns is not taken away: keeping packets through a pause and a
//! detach, or never completing a request, breaks each rule it meets on the way.

use std::fmt;

use wanlayer_core::hal::Timestamp;
use wanlayer_core::ModuleId;

use crate::hal::SimHal;
use crate::sim_nbl::PacketId;

/// A rule of the NDIS filter contract.
///
/// Names follow Driver Verifier's rules where one exists ([`Rule::driver_verifier_rule`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Rule {
    /// A packet was completed, returned, sent, indicated or freed when the filter no longer held
    /// it: the second completion of the same NBL.
    DoubleComplete,
    /// A packet was handed back to someone who does not own it: a receive completed as a send, a
    /// protocol send returned to the miniport, a filter-allocated packet completed to the protocol
    /// or returned to the miniport.
    WrongOwner,
    /// The filter freed (or reclaimed as its own) a packet it did not allocate.
    FreeForeignPacket,
    /// The filter read, wrote or looked at a packet it no longer held.
    UseAfterHandOff,
    /// Something was sent down or indicated up while the module was Attaching, Paused or detached.
    DataPathWhilePaused,
    /// A packet the filter allocated was sent down or indicated up while the module was Pausing.
    OriginateWhilePausing,
    /// `NdisFPauseComplete` was called with no pause pending: twice, or after `FilterPause`
    /// returned success.
    DoublePauseComplete,
    /// The pause was completed while the filter still held packets or had packets it originated
    /// outstanding.
    PauseCompleteWithOutstanding,
    /// `FilterPause` returned a failure status: a pause must never fail.
    PauseFailed,
    /// A pending pause was not completed within 10 seconds.
    NdisFilterTimedPauseComplete,
    /// A `PASSIVE_LEVEL`-only service was called at `DISPATCH_LEVEL`.
    IrqlFilterDriverFunction,
    /// A data-path call's `*_DISPATCH_LEVEL` flag did not tell the truth about the current IRQL.
    IrqlSendRcvFunction,
    /// The filter called out of itself (a packet call, pause completion, status or OID call) while
    /// holding one of its locks.
    LockHeldAcrossCall,
    /// An OID request was completed twice, or one that was never pending was completed.
    NdisOidDoubleComplete,
    /// An OID request that is already pending was passed down again (the original instead of a
    /// clone, or the same clone twice).
    NdisOidDoubleRequest,
    /// An OID request was not completed within 12 seconds.
    NdisTimedOidComplete,
    /// A packet lent with the resources flag was not given back when the receive callback
    /// returned, was passed up without the resources flag, or was returned through
    /// `NdisFReturnNetBufferLists`; or the chain given back was not the chain lent.
    LentPacketKept,
    /// A status indication was not passed up (`NdisFIndicateStatus` never called for it).
    StatusSwallowed,
    /// A line up reached the protocol with a `MaximumTotalSize` larger than NdisWan's.
    LineUpSizeRaised,
    /// A module detached while the filter still held packets, had packets it allocated not freed,
    /// or had OID requests or clones outstanding.
    LeakAtDetach,
    /// Memory charged to a pool was still charged when the driver unloaded.
    PoolLeak,
    /// More was released from a pool than had been charged to it.
    PoolOverRelease,
    /// A wait for quiescence could never end (its condition was false; nothing else runs).
    QuiesceNeverEnds,
    /// The filter named a module that is not attached.
    InvalidModuleHandle,
}

impl Rule {
    /// Every rule, in declaration order.
    pub const ALL: [Rule; 24] = [
        Rule::DoubleComplete,
        Rule::WrongOwner,
        Rule::FreeForeignPacket,
        Rule::UseAfterHandOff,
        Rule::DataPathWhilePaused,
        Rule::OriginateWhilePausing,
        Rule::DoublePauseComplete,
        Rule::PauseCompleteWithOutstanding,
        Rule::PauseFailed,
        Rule::NdisFilterTimedPauseComplete,
        Rule::IrqlFilterDriverFunction,
        Rule::IrqlSendRcvFunction,
        Rule::LockHeldAcrossCall,
        Rule::NdisOidDoubleComplete,
        Rule::NdisOidDoubleRequest,
        Rule::NdisTimedOidComplete,
        Rule::LentPacketKept,
        Rule::StatusSwallowed,
        Rule::LineUpSizeRaised,
        Rule::LeakAtDetach,
        Rule::PoolLeak,
        Rule::PoolOverRelease,
        Rule::QuiesceNeverEnds,
        Rule::InvalidModuleHandle,
    ];

    /// The rule's name as reports print it (Driver Verifier's spelling where there is one).
    pub fn name(self) -> &'static str {
        match self {
            Rule::DoubleComplete => "DoubleComplete",
            Rule::WrongOwner => "WrongOwner",
            Rule::FreeForeignPacket => "FreeForeignPacket",
            Rule::UseAfterHandOff => "UseAfterHandOff",
            Rule::DataPathWhilePaused => "DataPathWhilePaused",
            Rule::OriginateWhilePausing => "OriginateWhilePausing",
            Rule::DoublePauseComplete => "DoublePauseComplete",
            Rule::PauseCompleteWithOutstanding => "PauseCompleteWithOutstanding",
            Rule::PauseFailed => "PauseFailed",
            Rule::NdisFilterTimedPauseComplete => "NdisFilterTimedPauseComplete",
            Rule::IrqlFilterDriverFunction => "Irql_Filter_Driver_Function",
            Rule::IrqlSendRcvFunction => "Irql_SendRcv_Function",
            Rule::LockHeldAcrossCall => "LockHeldAcrossCall",
            Rule::NdisOidDoubleComplete => "NdisOidDoubleComplete",
            Rule::NdisOidDoubleRequest => "NdisOidDoubleRequest",
            Rule::NdisTimedOidComplete => "NdisTimedOidComplete",
            Rule::LentPacketKept => "LentPacketKept",
            Rule::StatusSwallowed => "StatusSwallowed",
            Rule::LineUpSizeRaised => "LineUpSizeRaised",
            Rule::LeakAtDetach => "LeakAtDetach",
            Rule::PoolLeak => "PoolLeak",
            Rule::PoolOverRelease => "PoolOverRelease",
            Rule::QuiesceNeverEnds => "QuiesceNeverEnds",
            Rule::InvalidModuleHandle => "InvalidModuleHandle",
        }
    }

    /// The Driver Verifier rule (bug check 0xC4 family) that catches the same mistake in the
    /// kernel, when there is one.
    pub fn driver_verifier_rule(self) -> Option<&'static str> {
        Some(match self {
            Rule::DoubleComplete | Rule::WrongOwner | Rule::FreeForeignPacket => "DoubleComplete",
            Rule::DoublePauseComplete | Rule::PauseFailed | Rule::NdisFilterTimedPauseComplete => {
                "NdisFilterTimedPauseComplete"
            }
            Rule::IrqlFilterDriverFunction => "Irql_Filter_Driver_Function",
            Rule::IrqlSendRcvFunction => "Irql_SendRcv_Function",
            Rule::LockHeldAcrossCall => "SpinLock",
            Rule::NdisOidDoubleComplete => "NdisOidDoubleComplete",
            Rule::NdisOidDoubleRequest => "NdisOidDoubleRequest",
            Rule::NdisTimedOidComplete => "NdisTimedOidComplete",
            Rule::StatusSwallowed => "Irql_StatusIndication_Function",
            Rule::PoolLeak => "pool tracking",
            _ => return None,
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule, with where and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// The module involved, when one is.
    pub module: Option<ModuleId>,
    /// The packet involved, when one is.
    pub packet: Option<PacketId>,
    /// What happened, for a human.
    pub detail: String,
    /// Virtual time of the violation.
    pub time: Timestamp,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", crate::trace::Time(self.time), self.rule)?;
        if let Some(module) = self.module {
            write!(f, " ({module})")?;
        }
        if let Some(packet) = self.packet {
            write!(f, " {packet}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The verifier's view of a simulated world: what was caught so far.
#[derive(Clone)]
pub struct Verifier {
    hal: SimHal,
}

impl Verifier {
    pub(crate) fn new(hal: SimHal) -> Self {
        Self { hal }
    }

    /// Every violation so far, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.hal.with_state(|state| state.violations.clone())
    }

    /// How many violations of `rule` were caught.
    pub fn count(&self, rule: Rule) -> usize {
        self.hal.with_state(|state| state.violations.iter().filter(|v| v.rule == rule).count())
    }

    /// True when `rule` was broken at least once.
    pub fn has(&self, rule: Rule) -> bool {
        self.count(rule) > 0
    }

    /// The distinct rules broken, in [`Rule`] order.
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self.violations().iter().map(|v| v.rule).collect();
        rules.sort();
        rules.dedup();
        rules
    }

    /// True when nothing was caught.
    pub fn is_clean(&self) -> bool {
        self.hal.with_state(|state| state.violations.is_empty())
    }

    /// Removes and returns every violation so far.
    pub fn take(&self) -> Vec<Violation> {
        self.hal.with_state_mut(|state| std::mem::take(&mut state.violations))
    }

    /// A printable report of every violation.
    pub fn report(&self) -> String {
        let violations = self.violations();
        if violations.is_empty() {
            return "verifier: clean".to_owned();
        }
        let mut report = format!("verifier: {} violation(s)\n", violations.len());
        for violation in &violations {
            report.push_str(&format!("  {violation}\n"));
        }
        report
    }

    /// Panics, listing every violation, unless nothing was caught.
    ///
    /// # Panics
    /// When at least one rule was broken.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(self.is_clean(), "{}", self.report());
    }

    /// Panics unless `rule` was broken.
    ///
    /// # Panics
    /// When `rule` was never broken; the report lists what was caught instead.
    #[track_caller]
    pub fn assert_caught(&self, rule: Rule) {
        assert!(self.has(rule), "expected a {rule} violation; {}", self.report());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_distinct_name() {
        let mut names: Vec<&str> = Rule::ALL.iter().map(|rule| rule.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Rule::ALL.len());
        assert_eq!(Rule::IrqlSendRcvFunction.to_string(), "Irql_SendRcv_Function");
        assert_eq!(Rule::NdisFilterTimedPauseComplete.driver_verifier_rule(), Some("NdisFilterTimedPauseComplete"));
        assert_eq!(Rule::LeakAtDetach.driver_verifier_rule(), None);
    }

    #[test]
    fn a_violation_prints_rule_module_packet_and_detail() {
        let violation = Violation {
            rule: Rule::DoubleComplete,
            module: Some(ModuleId(0x10002)),
            packet: Some(PacketId(9)),
            detail: "completed twice".to_owned(),
            time: Timestamp(1_500_000),
        };
        assert_eq!(violation.to_string(), "[1.500 ms] DoubleComplete (module 2.1) nbl#9: completed twice");
    }
}
