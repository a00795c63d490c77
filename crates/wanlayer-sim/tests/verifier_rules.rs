//! Every rule of the verifier, proven live: a deliberately broken filter makes one mistake, and
//! the verifier reports exactly the rules that mistake breaks — the rule it proves, and any other
//! only where the same mistake really breaks that rule too (each such case says why). The correct
//! reference filter and `CoreFilter` run the same scenario clean.
//!
//! [`proofs`] is an exhaustive `match` over [`Rule`]: a new rule does not compile until it has a
//! proof, and [`next_rule`] (exhaustive too) checks that `Rule::ALL` lists every rule in order.

mod common;

use common::{run, Broken, Fault, Scenario};
use wanlayer_sim::{CoreFilter, Rule};

/// One proof of a rule: a broken filter, the scenario it runs, and the other rules its mistake
/// breaks (with the reason), so that the rules reported are asserted exactly.
struct Proof {
    fault: Fault,
    scenario: Scenario,
    also: &'static [Rule],
    why_also: &'static str,
}

/// A proof whose fault breaks its rule and nothing else.
const fn only(fault: Fault, scenario: Scenario) -> Proof {
    Proof { fault, scenario, also: &[], why_also: "" }
}

/// The proofs of `rule`. Exhaustive: the compiler checks that every rule has its arm.
fn proofs(rule: Rule) -> Vec<Proof> {
    use Scenario::*;
    match rule {
        Rule::DoubleComplete => vec![only(Fault::DoubleCompleteSends, Traffic)],
        Rule::WrongOwner => vec![
            only(Fault::ReturnReceivesAsSendCompletions, Traffic),
            only(Fault::ReturnSendsToMiniport, Traffic),
            // The copies completed to the protocol are forfeited with the protocol's sends they
            // carry as parents: those are not reported again as held at pause or at detach.
            only(Fault::CompleteOwnCopyToProtocol, Traffic),
        ],
        Rule::FreeForeignPacket => vec![only(Fault::FreeProtocolPackets, Traffic)],
        Rule::UseAfterHandOff => vec![only(Fault::ReadAfterSendDown, Traffic)],
        // The packet sent down during attach is forfeited: the pause does not find it outstanding.
        Rule::DataPathWhilePaused => vec![only(Fault::SendDuringAttach, Lifecycle)],
        Rule::OriginateWhilePausing => vec![only(Fault::OriginateDuringPause, PauseCycle)],
        Rule::DoublePauseComplete => vec![only(Fault::PauseCompleteTwice, PauseCycle)],
        Rule::PauseCompleteWithOutstanding => vec![Proof {
            fault: Fault::PauseWhileHolding,
            scenario: PauseCycle,
            also: &[Rule::LeakAtDetach],
            why_also: "the filter keeps the received packets for good: the pause completes while it holds them, and the module \
                       later detaches while it still holds them — two rules, each broken by the packets it really still holds \
                       (the verifier takes nothing away from a filter that has made no hand-off)",
        }],
        Rule::PauseFailed => vec![only(Fault::PauseFails, PauseCycle)],
        Rule::NdisFilterTimedPauseComplete => vec![only(Fault::PauseNeverCompletes, PauseCycle)],
        Rule::IrqlFilterDriverFunction => vec![only(Fault::WaitInSendPath, Traffic)],
        Rule::IrqlSendRcvFunction => vec![only(Fault::ClaimDispatchAlways, Traffic)],
        Rule::LockHeldAcrossCall => vec![only(Fault::SendUnderLock, Traffic)],
        Rule::NdisOidDoubleComplete => vec![only(Fault::OidDoubleComplete, Oids)],
        // The original passed down is taken out of play: it is not reported again as late or as
        // outstanding at detach.
        Rule::NdisOidDoubleRequest => vec![only(Fault::ForwardOriginalOid, Oids)],
        Rule::NdisTimedOidComplete => vec![Proof {
            fault: Fault::ForgetOid,
            scenario: Oids,
            also: &[Rule::LeakAtDetach],
            why_also: "the filter never completes the originals it owns: they are late after 12 s, and still outstanding \
                       when the module detaches — two rules, each broken by requests the filter really still owns",
        }],
        Rule::LentPacketKept => vec![
            // The kept packets are forfeited: returning them later at the pause is not reported
            // again as a double completion.
            only(Fault::KeepLentPackets, Resources),
            only(Fault::ReverseLentChain, Resources),
        ],
        Rule::StatusSwallowed => vec![only(Fault::SwallowStatus, Traffic)],
        Rule::LineUpSizeRaised => vec![only(Fault::RaiseLineUpSize, Traffic)],
        Rule::LeakAtDetach => vec![only(Fault::LeakPacketAtDetach, Lifecycle)],
        Rule::PoolLeak => vec![only(Fault::LeakPool, Lifecycle)],
        Rule::PoolOverRelease => vec![only(Fault::OverReleasePool, Lifecycle)],
        Rule::QuiesceNeverEnds => vec![only(Fault::WaitForever, PauseCycle)],
        Rule::InvalidModuleHandle => vec![only(Fault::WrongModuleHandle, Traffic)],
    }
}

/// The rule declared after `rule`, `None` after the last. Exhaustive, so a new rule must be placed
/// here, and [`rule_all_lists_every_rule_in_declaration_order`] then checks `Rule::ALL` against it.
fn next_rule(rule: Rule) -> Option<Rule> {
    Some(match rule {
        Rule::DoubleComplete => Rule::WrongOwner,
        Rule::WrongOwner => Rule::FreeForeignPacket,
        Rule::FreeForeignPacket => Rule::UseAfterHandOff,
        Rule::UseAfterHandOff => Rule::DataPathWhilePaused,
        Rule::DataPathWhilePaused => Rule::OriginateWhilePausing,
        Rule::OriginateWhilePausing => Rule::DoublePauseComplete,
        Rule::DoublePauseComplete => Rule::PauseCompleteWithOutstanding,
        Rule::PauseCompleteWithOutstanding => Rule::PauseFailed,
        Rule::PauseFailed => Rule::NdisFilterTimedPauseComplete,
        Rule::NdisFilterTimedPauseComplete => Rule::IrqlFilterDriverFunction,
        Rule::IrqlFilterDriverFunction => Rule::IrqlSendRcvFunction,
        Rule::IrqlSendRcvFunction => Rule::LockHeldAcrossCall,
        Rule::LockHeldAcrossCall => Rule::NdisOidDoubleComplete,
        Rule::NdisOidDoubleComplete => Rule::NdisOidDoubleRequest,
        Rule::NdisOidDoubleRequest => Rule::NdisTimedOidComplete,
        Rule::NdisTimedOidComplete => Rule::LentPacketKept,
        Rule::LentPacketKept => Rule::StatusSwallowed,
        Rule::StatusSwallowed => Rule::LineUpSizeRaised,
        Rule::LineUpSizeRaised => Rule::LeakAtDetach,
        Rule::LeakAtDetach => Rule::PoolLeak,
        Rule::PoolLeak => Rule::PoolOverRelease,
        Rule::PoolOverRelease => Rule::QuiesceNeverEnds,
        Rule::QuiesceNeverEnds => Rule::InvalidModuleHandle,
        Rule::InvalidModuleHandle => return None,
    })
}

/// Runs every proof of `rule`: the broken filter reports exactly `rule` and the rules its proof
/// names as also broken; the correct filters run the same scenario clean.
#[track_caller]
fn prove(rule: Rule) {
    let proofs = proofs(rule);
    assert!(!proofs.is_empty(), "{rule} has no proof");
    for Proof { fault, scenario, also, why_also } in proofs {
        assert!(also.is_empty() == why_also.is_empty(), "{fault:?}: other rules broken need their reason, and only they");
        assert!(!also.contains(&rule), "{fault:?}: {rule} is the rule proven, not another");
        let mut expected: Vec<Rule> = also.iter().copied().chain([rule]).collect();
        expected.sort();
        let broken = run(Broken::new(fault), scenario);
        assert_eq!(broken.verifier().rules(), expected, "{fault:?} in {scenario:?}: exactly these rules; {}", broken.verifier().report());
        run(Broken::correct(), scenario).verifier().assert_clean();
        run(CoreFilter::default(), scenario).verifier().assert_clean();
    }
}

#[test]
fn verifier_rejects_double_complete() {
    prove(Rule::DoubleComplete);
}

#[test]
fn verifier_rejects_wrong_owner() {
    prove(Rule::WrongOwner);
}

#[test]
fn verifier_rejects_free_foreign_packet() {
    prove(Rule::FreeForeignPacket);
}

#[test]
fn verifier_rejects_use_after_hand_off() {
    prove(Rule::UseAfterHandOff);
}

#[test]
fn verifier_rejects_data_path_while_paused() {
    prove(Rule::DataPathWhilePaused);
}

#[test]
fn verifier_rejects_originate_while_pausing() {
    prove(Rule::OriginateWhilePausing);
}

#[test]
fn verifier_rejects_double_pause_complete() {
    prove(Rule::DoublePauseComplete);
}

#[test]
fn verifier_rejects_pause_complete_with_outstanding() {
    prove(Rule::PauseCompleteWithOutstanding);
}

#[test]
fn verifier_rejects_pause_failed() {
    prove(Rule::PauseFailed);
}

#[test]
fn verifier_rejects_ndis_filter_timed_pause_complete() {
    prove(Rule::NdisFilterTimedPauseComplete);
}

#[test]
fn verifier_rejects_irql_filter_driver_function() {
    prove(Rule::IrqlFilterDriverFunction);
}

#[test]
fn verifier_rejects_irql_send_rcv_function() {
    prove(Rule::IrqlSendRcvFunction);
}

#[test]
fn verifier_rejects_lock_held_across_call() {
    prove(Rule::LockHeldAcrossCall);
}

#[test]
fn verifier_rejects_ndis_oid_double_complete() {
    prove(Rule::NdisOidDoubleComplete);
}

#[test]
fn verifier_rejects_ndis_oid_double_request() {
    prove(Rule::NdisOidDoubleRequest);
}

#[test]
fn verifier_rejects_ndis_timed_oid_complete() {
    prove(Rule::NdisTimedOidComplete);
}

#[test]
fn verifier_rejects_lent_packet_kept() {
    prove(Rule::LentPacketKept);
}

#[test]
fn verifier_rejects_status_swallowed() {
    prove(Rule::StatusSwallowed);
}

#[test]
fn verifier_rejects_line_up_size_raised() {
    prove(Rule::LineUpSizeRaised);
}

#[test]
fn verifier_rejects_leak_at_detach() {
    prove(Rule::LeakAtDetach);
}

#[test]
fn verifier_rejects_pool_leak() {
    prove(Rule::PoolLeak);
}

#[test]
fn verifier_rejects_pool_over_release() {
    prove(Rule::PoolOverRelease);
}

#[test]
fn verifier_rejects_quiesce_never_ends() {
    prove(Rule::QuiesceNeverEnds);
}

#[test]
fn verifier_rejects_invalid_module_handle() {
    prove(Rule::InvalidModuleHandle);
}

#[test]
fn rule_all_lists_every_rule_in_declaration_order() {
    let walked: Vec<Rule> = std::iter::successors(Some(Rule::DoubleComplete), |rule| next_rule(*rule)).collect();
    assert_eq!(walked, Rule::ALL);
}

#[test]
fn every_rule_is_proven_and_every_fault_proves_one_rule() {
    let mut faults = Vec::new();
    for rule in Rule::ALL {
        let proofs = proofs(rule);
        assert!(!proofs.is_empty(), "{rule} has no proof");
        for proof in proofs {
            assert!(!faults.contains(&proof.fault), "{:?} proves two rules", proof.fault);
            faults.push(proof.fault);
        }
    }
    assert_eq!(faults.len(), 27, "every broken filter of tests/common proves a rule");
}

#[test]
fn the_correct_filters_are_clean_in_every_scenario() {
    for scenario in [Scenario::Traffic, Scenario::Resources, Scenario::PauseCycle, Scenario::Oids, Scenario::Lifecycle] {
        run(Broken::correct(), scenario).verifier().assert_clean();
        run(CoreFilter::default(), scenario).verifier().assert_clean();
    }
}
