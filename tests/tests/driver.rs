//! What only wanlayer.sys's own handlers do, in whole simulated sessions: lent receive chains
//! longer than the driver's record of them relinked while hooks take or replace part of them,
//! status indications whose buffers NdisWan got wrong, OIDs passed down as the driver's clones
//! while traffic flows, and event reads pending in the driver's cancel-safe queues, completed by
//! its wake DPC or, in a race with it, by cleanup. Every scenario ends verifier-clean with the kernel model's checks, every
//! NBL back with its owner and the driver's pools at zero.

use wanlayer_core::hook::Direction;
use wanlayer_core::stats::DropReason;
use wanlayer_core::{NdisStatus, ReinjectVerdict};
use wanlayer_driver_logic::lent::RECORDED;
use wanlayer_proto::ioctl::{Access, IOCTL_READ_EVENTS, IOCTL_SUBSCRIBE_EVENTS};
use wanlayer_proto::{EventBatch, EventBatchRepr, EventBody, EventKind, ReadRequest, ReadRequestRepr, Status, Subscribe, SubscribeRepr};
use wanlayer_sim::{
    Delivery, Edge, Flow, HandleId, IoId, IoOutcome, LinkParams, ReceiveOptions, Rras, StatusBuffer, StatusIndication, MILLISECOND,
};
use wanlayer_sim_driver::DriverFilter;
use wanlayer_tests::sample_hooks::{Applies, QueueHook, TtlRewriteHook};
use wanlayer_tests::setup::{counts, drops, finish, frames, start, started, UDP};

/// `NDIS_STATUS_WAN_LINE_UP`.
const WAN_LINE_UP: NdisStatus = NdisStatus(0x4001_0008);

#[test]
fn a_lent_chain_longer_than_the_drivers_record_comes_back_linked_as_lent_while_hooks_take_and_replace_part_of_it() {
    let rras = started();
    let queue = QueueHook::new(Applies::Receives);
    rras.engine().add_hook("ttl", 200, TtlRewriteHook::new(7, Applies::Receives)).expect("a free hook slot");
    rras.engine().add_hook("queue", 100, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    for count in [RECORDED - 1, RECORDED, RECORDED + 1, 2 * RECORDED + 5] {
        let count = u32::try_from(count).expect("small");
        let lent = rras.receive_with(Edge::WanIp, ReceiveOptions::resources(), frames(&link, Direction::Receive, &UDP, 0, count));
        assert_eq!(lent.len(), count as usize);
        assert_eq!(
            rras.miniport(Edge::WanIp).indicated.len(),
            rras.miniport(Edge::WanIp).returned as usize,
            "every lent NBL back with the call"
        );
        queue.reinject_all(rras.engine(), ReinjectVerdict::Pass);
    }
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!(seen.receive.copied_for_resources, seen.receive.taken, "what a hook keeps of a lent chain is a copy");
    finish(rras);
}

#[test]
fn a_lent_chain_of_which_the_hooks_keep_nothing_goes_back_whole_and_in_order() {
    let rras = started();
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let count = u32::try_from(3 * RECORDED).expect("small");
    rras.receive_with(Edge::WanIpv6, ReceiveOptions::resources(), frames(&link, Direction::Receive, &UDP, 0, count));
    assert_eq!(rras.protocol(Edge::WanIpv6).received.len(), count as usize);
    assert_eq!(rras.miniport(Edge::WanIpv6).returned, u64::from(count));
    finish(rras);
}

#[test]
fn line_ups_whose_buffer_is_not_a_line_up_are_passed_on_and_counted_malformed() {
    let rras = started();
    let short = StatusIndication::new(WAN_LINE_UP, StatusBuffer::Raw(vec![0xA5; 12]));
    let record = rras.indicate_status(Edge::WanIp, short).expect("indicated");
    assert_eq!(record.indication.code, WAN_LINE_UP, "passed on as it came");
    assert!(rras.protocol(Edge::WanIp).links.is_empty(), "no link from a buffer that is not a line up");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 2);
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 2, "a good line up after a bad one tracks the link");
    finish(rras);
}

#[test]
fn oids_pass_down_as_the_drivers_clones_while_traffic_flows_and_a_pause_waits_for_nothing_of_theirs() {
    let rras = start(Rras::builder().oid_completion(Delivery::After(5 * MILLISECOND)));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let queries: Vec<_> = (0..4).filter_map(|_| rras.oid_query(Edge::WanIp, 0x0001_0114)).collect();
    rras.send_flow(&link, &Flow::tcp(443, 50_000), 3);
    rras.receive_flow(&link, &UDP, 3, ReceiveOptions::default());
    rras.run_until_idle();
    let completed: Vec<_> = rras.protocol(Edge::WanIp).oid_completions.iter().map(|c| (c.request.id(), c.status)).collect();
    // The simulated NdisWan miniport does not support this OID: its answer reaches the protocol through the
    // driver's clone, unchanged.
    let answered = wanlayer_sim::world::NDIS_STATUS_NOT_SUPPORTED;
    assert_eq!(completed, queries.iter().map(|id| (*id, answered)).collect::<Vec<_>>(), "each completed once, in order");
    assert_eq!(rras.miniport(Edge::WanIp).oid_requests.len(), 4, "each reached the miniport as a clone");
    assert_eq!(drops(&counts(&rras, Edge::WanIp).send, DropReason::Paused), 0);
    rras.pause_and_settle(Edge::WanIp).expect("pauses");
    finish(rras);
}

/// `IOCTL_SUBSCRIBE_EVENTS`' input: every kind, room for 16.
fn subscribe_input() -> [u8; 16] {
    let mut input = [0u8; 16];
    SubscribeRepr { capacity: 16, mask: EventKind::ALL_MASK }.emit(&mut Subscribe::new_unchecked(&mut input[..])).expect("subscribe");
    input
}

/// `IOCTL_READ_EVENTS`' input: up to 4 records, waiting for one.
fn read_input() -> [u8; 16] {
    let mut input = [0u8; 16];
    ReadRequestRepr { max_records: 4, wait: true }.emit(&mut ReadRequest::new_unchecked(&mut input[..])).expect("read");
    input
}

/// A read-only handle subscribed to every event, and a read pending on it.
fn pending_read(rras: &Rras<DriverFilter>) -> (HandleId, IoId) {
    let control = rras.filter();
    let handle = control.control_open(Access::READ).expect("the device opens");
    match control.control_ioctl(handle, IOCTL_SUBSCRIBE_EVENTS, &subscribe_input(), 24) {
        IoOutcome::Complete(done) => assert_eq!(done.status, Status::Success),
        IoOutcome::Pending(io) => panic!("{io:?} pended"),
    }
    let IoOutcome::Pending(read) = control.control_ioctl(handle, IOCTL_READ_EVENTS, &read_input(), 24 + 80 * 4) else {
        panic!("with nothing to read, a waiting read pends")
    };
    (handle, read)
}

#[test]
fn a_line_up_completes_a_pending_event_read_through_the_drivers_wake_dpc() {
    let rras = started();
    let (handle, read) = pending_read(&rras);
    assert!(rras.filter().control_completion(read).is_none());
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let done = rras.filter().control_completion(read).expect("the wake DPC completed the read");
    assert_eq!(done.status, Status::Success);
    let batch = EventBatch::new_unchecked(&done.output[..]);
    EventBatchRepr::parse(&batch).expect("a valid batch");
    assert!(
        batch.records().map(Result::unwrap).any(|record| matches!(record.body, EventBody::LineUp { .. })),
        "the line up is in the batch"
    );
    rras.link_down(&link);
    rras.filter().control_close(handle);
    finish(rras);
}

#[test]
fn a_read_completed_by_cleanup_while_its_wake_dpc_waits_is_completed_once() {
    let rras = started();
    let (handle, read) = pending_read(&rras);
    // The line up wakes the handle; the wake DPC is queued but waits (the processor is busy).
    rras.filter().hold_dpcs(true);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    assert!(rras.filter().control_completion(read).is_none(), "the wake DPC has not run");
    // The handle closes first: its cleanup completes the read, cancelled.
    rras.filter().control_close(handle);
    assert_eq!(rras.filter().control_completion(read).map(|done| done.status), Some(Status::Cancelled));
    // Then the DPC runs: it finds the handle gone and completes nothing again.
    rras.filter().hold_dpcs(false);
    assert!(rras.filter().control_completion(read).is_none(), "completed once");
    rras.link_down(&link);
    finish(rras);
}
