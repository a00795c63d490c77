//! The time limit of user-mode hooks enforced by wanlayer.sys's own expiry timer, with the driver
//! in the loop (`DriverFilter`: the driver's handlers over the kernel model, whose timers run on
//! the simulated clock): held packets get the fail policy when their time limit passes although
//! no request and no traffic comes; the timer is set only while a hook holds packets (an open,
//! idle hook runs none); and a hook closed while its timer is set (a program that died holding
//! packets), then the driver unloaded, leaves no timer, packet or pool charge behind — the kernel
//! model reports a timer still set at unload as a leak, which `finish` would catch.

use wanlayer_client::divert::compile_filter;
use wanlayer_core::stats::DropReason;
use wanlayer_core::NdisStatus;
use wanlayer_kernel_model::timers_set;
use wanlayer_proto::ioctl::{IOCTL_DIVERT_OPEN, IOCTL_DIVERT_READ};
use wanlayer_proto::{
    Access, DivertBatch, DivertBatchRepr, DivertOpen, DivertOpenRepr, FailPolicy, ReadRequest, ReadRequestRepr, Status, DIVERT_SEND,
};
use wanlayer_sim::{Edge, HandleId, IoOutcome, LinkParams, Rras, MILLISECOND};
use wanlayer_sim_driver::DriverFilter;
use wanlayer_tests::setup::{completions, counts, drops, finish, started, UDP};

/// The hooks' time limit in these scenarios.
const TIME_LIMIT_MS: u32 = 100;

/// Opens a control handle and makes it a user-mode hook diverting UDP sends.
fn open_hook(rras: &Rras<DriverFilter>, fail: FailPolicy) -> HandleId {
    let handle = rras.filter().control_open(Access::READ_WRITE).expect("the control device opens");
    let blob = compile_filter("udp").expect("the filter compiles");
    let open = DivertOpenRepr {
        altitude: 2000,
        directions: DIVERT_SEND,
        fail_policy: fail,
        queue_len: 16,
        timeout_ms: TIME_LIMIT_MS,
        max_frame: 1600,
        blob: &blob,
    };
    let mut input = vec![0u8; open.buffer_len()];
    open.emit(&mut DivertOpen::new_unchecked(&mut input[..])).expect("DIVERT_OPEN fits");
    match rras.filter().control_ioctl(handle, IOCTL_DIVERT_OPEN, &input, 16) {
        IoOutcome::Complete(done) => assert_eq!(done.status, Status::Success, "DIVERT_OPEN"),
        IoOutcome::Pending(_) => panic!("DIVERT_OPEN pended"),
    }
    handle
}

/// The hook's counters, from a read that takes nothing (at most one record, none queued).
fn hook_counters(rras: &Rras<DriverFilter>, handle: HandleId) -> (u64, u64, u32) {
    let mut request = [0u8; 16];
    ReadRequestRepr { max_records: 1, wait: false }.emit(&mut ReadRequest::new_unchecked(&mut request[..])).expect("the read request fits");
    let IoOutcome::Complete(done) = rras.filter().control_ioctl(handle, IOCTL_DIVERT_READ, &request, 4096) else {
        panic!("the read pended")
    };
    assert_eq!(done.status, Status::Success, "DIVERT_READ");
    let batch = DivertBatchRepr::parse(&DivertBatch::new_unchecked(&done.output[..])).expect("a well-formed batch");
    (batch.counters.diverted, batch.counters.expired, batch.count)
}

/// Lets simulated time pass with nothing sent and nothing asked: the processor runs the DPCs of
/// the kernel timers that came due (the model fires them on the simulated clock).
fn idle_for(rras: &Rras<DriverFilter>, nanos: u64) {
    rras.advance(nanos);
    rras.filter().control_service();
    rras.run_until_idle();
}

#[test]
fn held_packets_get_the_fail_policy_at_their_time_limit_with_no_request_or_traffic() {
    for fail in [FailPolicy::Pass, FailPolicy::Drop] {
        let rras = started();
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        let timers_before = timers_set();
        let handle = open_hook(&rras, fail);
        idle_for(&rras, 10 * u64::from(TIME_LIMIT_MS) * MILLISECOND);
        assert_eq!(timers_set(), timers_before, "{fail:?}: an open hook that holds nothing runs no timer");

        let sent = rras.send_flow(&link, &UDP, 3);
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![None; 3], "{fail:?}: taken and held");
        assert_eq!(timers_set(), timers_before + 1, "{fail:?}: the expiry timer is set while packets are held");

        idle_for(&rras, u64::from(TIME_LIMIT_MS) / 2 * MILLISECOND);
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![None; 3], "{fail:?}: still held before the time limit");

        idle_for(&rras, u64::from(TIME_LIMIT_MS) * MILLISECOND);
        let done = completions(&rras.protocol(Edge::WanIp), &sent);
        let seen = counts(&rras, Edge::WanIp);
        match fail {
            FailPolicy::Drop => {
                assert!(done.iter().all(|status| status.is_some_and(|status| status != NdisStatus::SUCCESS)), "{fail:?}: {done:?}");
                assert_eq!(drops(&seen.send, DropReason::Hook), 3, "{fail:?}: dropped by the hook's policy");
                assert!(rras.miniport(Edge::WanIp).sent.is_empty(), "{fail:?}: nothing went down");
            }
            _ => {
                assert_eq!(done, vec![Some(NdisStatus::SUCCESS); 3], "{fail:?}: passed on and completed");
                assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 3, "{fail:?}: sent down after the time limit");
                assert_eq!(drops(&seen.send, DropReason::Hook), 0, "{fail:?}");
            }
        }
        assert_eq!(timers_set(), timers_before, "{fail:?}: nothing held, the timer is not set again");
        assert_eq!(hook_counters(&rras, handle), (3, 3, 0), "{fail:?}: three diverted, three expired, none left to read");
        rras.filter().control_close(handle);
        finish(rras);
    }
}

#[test]
fn a_hook_closed_while_its_timer_is_set_then_unload_leave_no_timer_behind() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let timers_before = timers_set();
    let handle = open_hook(&rras, FailPolicy::Pass);
    let sent = rras.send_flow(&link, &UDP, 2);
    rras.run_until_idle();
    assert_eq!(timers_set(), timers_before + 1, "the expiry timer is set");

    // The module goes: the engine hands the held packets back; the hook's entries wait for their
    // time limit, with the timer still set for them.
    rras.detach(Edge::WanIp).expect("the module detaches");
    rras.run_until_idle();
    assert!(completions(&rras.protocol(Edge::WanIp), &sent).iter().all(Option::is_some), "every packet is back");
    assert_eq!(timers_set(), timers_before + 1, "the entries still wait for their time limit");

    // The program dies: cleanup and close of its handle, the timer still set.
    rras.filter().control_close(handle);
    assert_eq!(timers_set(), timers_before, "closing the last hook that held packets cancels the timer");
    // DriverUnload; the kernel model reports a timer still set (and any leak) to the verifier.
    finish(rras);
}
