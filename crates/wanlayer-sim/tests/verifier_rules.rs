//! Every rule of the verifier, caught in a deliberately broken filter; and `CoreFilter` (and the
//! correct reference filter) clean in the same scenario.

mod common;

use common::{run, Broken, Fault, Scenario};
use wanlayer_sim::{CoreFilter, Rule};

/// Runs `fault` through `scenario`, expects `rule` caught; runs the correct filters through the
/// same scenario and expects them clean.
fn rejects(fault: Fault, scenario: Scenario, rule: Rule) {
    let broken = run(Broken::new(fault), scenario);
    broken.verifier().assert_caught(rule);
    run(Broken::correct(), scenario).verifier().assert_clean();
    run(CoreFilter::default(), scenario).verifier().assert_clean();
}

#[test]
fn verifier_rejects_double_complete() {
    rejects(Fault::DoubleCompleteSends, Scenario::Traffic, Rule::DoubleComplete);
}

#[test]
fn verifier_rejects_wrong_owner_receive_completed_as_send() {
    rejects(Fault::ReturnReceivesAsSendCompletions, Scenario::Traffic, Rule::WrongOwner);
}

#[test]
fn verifier_rejects_wrong_owner_send_returned_to_miniport() {
    rejects(Fault::ReturnSendsToMiniport, Scenario::Traffic, Rule::WrongOwner);
}

#[test]
fn verifier_rejects_wrong_owner_own_packet_completed_to_protocol() {
    rejects(Fault::CompleteOwnCopyToProtocol, Scenario::Traffic, Rule::WrongOwner);
}

#[test]
fn verifier_rejects_free_foreign_packet() {
    rejects(Fault::FreeProtocolPackets, Scenario::Traffic, Rule::FreeForeignPacket);
}

#[test]
fn verifier_rejects_use_after_hand_off() {
    rejects(Fault::ReadAfterSendDown, Scenario::Traffic, Rule::UseAfterHandOff);
}

#[test]
fn verifier_rejects_data_path_while_paused() {
    rejects(Fault::SendDuringAttach, Scenario::Lifecycle, Rule::DataPathWhilePaused);
}

#[test]
fn verifier_rejects_originate_while_pausing() {
    rejects(Fault::OriginateDuringPause, Scenario::PauseCycle, Rule::OriginateWhilePausing);
}

#[test]
fn verifier_rejects_double_pause_complete() {
    rejects(Fault::PauseCompleteTwice, Scenario::PauseCycle, Rule::DoublePauseComplete);
}

#[test]
fn verifier_rejects_pause_complete_with_outstanding() {
    rejects(Fault::PauseWhileHolding, Scenario::PauseCycle, Rule::PauseCompleteWithOutstanding);
}

#[test]
fn verifier_rejects_pause_failed() {
    rejects(Fault::PauseFails, Scenario::PauseCycle, Rule::PauseFailed);
}

#[test]
fn verifier_rejects_ndis_filter_timed_pause_complete() {
    rejects(Fault::PauseNeverCompletes, Scenario::PauseCycle, Rule::NdisFilterTimedPauseComplete);
}

#[test]
fn verifier_rejects_irql_filter_driver_function() {
    rejects(Fault::WaitInSendPath, Scenario::Traffic, Rule::IrqlFilterDriverFunction);
}

#[test]
fn verifier_rejects_irql_send_rcv_function() {
    rejects(Fault::ClaimDispatchAlways, Scenario::Traffic, Rule::IrqlSendRcvFunction);
}

#[test]
fn verifier_rejects_lock_held_across_call() {
    rejects(Fault::SendUnderLock, Scenario::Traffic, Rule::LockHeldAcrossCall);
}

#[test]
fn verifier_rejects_ndis_oid_double_complete() {
    rejects(Fault::OidDoubleComplete, Scenario::Oids, Rule::NdisOidDoubleComplete);
}

#[test]
fn verifier_rejects_ndis_oid_double_request() {
    rejects(Fault::ForwardOriginalOid, Scenario::Oids, Rule::NdisOidDoubleRequest);
}

#[test]
fn verifier_rejects_ndis_timed_oid_complete() {
    rejects(Fault::ForgetOid, Scenario::Oids, Rule::NdisTimedOidComplete);
}

#[test]
fn verifier_rejects_lent_packet_kept() {
    rejects(Fault::KeepLentPackets, Scenario::Resources, Rule::LentPacketKept);
}

#[test]
fn verifier_rejects_lent_packet_kept_when_the_chain_comes_back_reordered() {
    rejects(Fault::ReverseLentChain, Scenario::Resources, Rule::LentPacketKept);
}

#[test]
fn verifier_rejects_status_swallowed() {
    rejects(Fault::SwallowStatus, Scenario::Traffic, Rule::StatusSwallowed);
}

#[test]
fn verifier_rejects_line_up_size_raised() {
    rejects(Fault::RaiseLineUpSize, Scenario::Traffic, Rule::LineUpSizeRaised);
}

#[test]
fn verifier_rejects_leak_at_detach() {
    rejects(Fault::LeakPacketAtDetach, Scenario::Lifecycle, Rule::LeakAtDetach);
}

#[test]
fn verifier_rejects_pool_leak() {
    rejects(Fault::LeakPool, Scenario::Lifecycle, Rule::PoolLeak);
}

#[test]
fn verifier_rejects_pool_over_release() {
    rejects(Fault::OverReleasePool, Scenario::Lifecycle, Rule::PoolOverRelease);
}

#[test]
fn verifier_rejects_quiesce_never_ends() {
    rejects(Fault::WaitForever, Scenario::PauseCycle, Rule::QuiesceNeverEnds);
}

#[test]
fn verifier_rejects_invalid_module_handle() {
    rejects(Fault::WrongModuleHandle, Scenario::Traffic, Rule::InvalidModuleHandle);
}

#[test]
fn every_rule_has_a_rejection_test() {
    let source = include_str!("verifier_rules.rs");
    for rule in Rule::ALL {
        let snake: String = format!("{rule:?}")
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let lower = c.to_ascii_lowercase();
                if c.is_ascii_uppercase() && i > 0 { vec!['_', lower] } else { vec![lower] }
            })
            .collect();
        assert!(source.contains(&format!("fn verifier_rejects_{snake}")), "no test for {rule:?} (verifier_rejects_{snake})");
    }
}

#[test]
fn the_correct_filters_are_clean_in_every_scenario() {
    for scenario in [Scenario::Traffic, Scenario::Resources, Scenario::PauseCycle, Scenario::Oids, Scenario::Lifecycle] {
        run(Broken::correct(), scenario).verifier().assert_clean();
        run(CoreFilter::default(), scenario).verifier().assert_clean();
    }
}
