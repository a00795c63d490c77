//! The main session at every IRQL policy: data-path, status and completion callbacks at
//! `PASSIVE_LEVEL`, at `DISPATCH_LEVEL`, and alternating. The verifier checks every call's
//! `DISPATCH_LEVEL` flag, every wait and every lock; the outcome must not depend on the level.

use wanlayer_core::stats::DropReason;
use wanlayer_core::NdisStatus;
use wanlayer_sim::{Edge, IrqlPolicy, Rras};
use wanlayer_sim_driver::DriverFilter;
use wanlayer_tests::frames::{checksums_valid, ip_ttl};
use wanlayer_tests::session::{main_session, SessionReport, SESSION_TTL};
use wanlayer_tests::setup::finish;

/// Runs the main session under `policy`, checks what every policy must give, and returns the
/// report with the frames each side saw.
fn session_at(policy: IrqlPolicy) -> (SessionReport, Vec<Vec<u8>>) {
    let mut rras = Rras::builder().irql(policy).build(DriverFilter::new());
    let report = main_session(&mut rras);
    assert!(report.loaded && report.lifecycle_errors.is_empty(), "{policy:?}: {:?}", report.lifecycle_errors);
    assert_eq!((report.links_tracked, report.links_without_name), (2, 0));
    assert_eq!(report.refused.len(), 6, "{policy:?}: tickets of packets dropped at line down and at pause are stale");
    assert_eq!((report.replaced, report.replace_errors), (24, 0), "{policy:?}");
    assert_eq!(report.queue.map(|q| (q.send.taken, q.receive.taken)), Some((12, 12)), "{policy:?}");
    assert_eq!((report.drops(DropReason::LinkDown), report.drops(DropReason::Paused), report.drops(DropReason::Hook)), (3, 3, 0));
    assert_eq!((report.drops(DropReason::Resources), report.untracked_line_ups(), report.taken()), (0, 0, 24));

    let mut seen = Vec::new();
    for (edge, sent, received) in [(Edge::WanIp, 3, 5), (Edge::WanIpv6, 5, 7)] {
        let (protocol, miniport) = (rras.protocol(edge), rras.miniport(edge));
        assert_eq!((miniport.sent.len(), protocol.received.len()), (sent, received), "{policy:?} {edge}");
        let statuses: Vec<NdisStatus> = protocol.completions.iter().map(|c| c.status).collect();
        assert_eq!(statuses.len(), protocol.sent.len(), "{policy:?} {edge}: every send completed");
        let failed = statuses.iter().filter(|s| **s != NdisStatus::SUCCESS).count();
        assert_eq!(failed, 2, "{policy:?} {edge}: the two held at line down or at pause");
        for frame in miniport.sent_frames().into_iter().chain(protocol.received_frames()) {
            assert_eq!(ip_ttl(&frame), Some(SESSION_TTL), "{policy:?} {edge}");
            assert!(checksums_valid(&frame));
            seen.push(frame);
        }
    }
    seen.sort();
    finish(rras);
    (report, seen)
}

#[test]
fn the_main_session_is_clean_with_every_callback_at_passive_level() {
    session_at(IrqlPolicy::Passive);
}

#[test]
fn the_main_session_is_clean_with_every_callback_at_dispatch_level() {
    session_at(IrqlPolicy::Dispatch);
}

#[test]
fn the_main_session_is_clean_with_callbacks_alternating_between_levels() {
    session_at(IrqlPolicy::Alternate);
}

#[test]
fn the_outcome_of_the_main_session_does_not_depend_on_the_irql() {
    let (passive, passive_frames) = session_at(IrqlPolicy::Passive);
    for policy in [IrqlPolicy::Dispatch, IrqlPolicy::Alternate] {
        let (report, frames) = session_at(policy);
        assert_eq!(report.counts, passive.counts, "{policy:?}: the same counters");
        assert_eq!(frames, passive_frames, "{policy:?}: the same frames crossed the filter");
    }
}
