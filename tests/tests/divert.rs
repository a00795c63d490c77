//! User-mode hooks (divert) in a simulated RRAS server whose filter is wanlayer.sys's own
//! handlers (`DriverFilter`), through the client's `Divert` API over the simulator transport —
//! IRPs to the driver's control device, reads pended in its cancel-safe queue and completed by
//! its wake DPC: batched reads and verdicts (pass, drop, replace), the bounded queue and its fail
//! policy, the time limit, stale and foreign tickets, and every way a held packet is released —
//! close, cleanup of a handle (a crashed program), line down, pause, detach and unload — exactly
//! once. Every scenario ends with the verifier clean and every pool at zero.

use std::time::Duration;

use wanlayer_client::divert::{
    compile_filter, Divert, DivertConfig, DivertTicket, FailPolicy, Verdict,
};
use wanlayer_client::sim::SimServer;
use wanlayer_core::hook::Direction;
use wanlayer_core::stats::DropReason;
use wanlayer_core::NdisStatus;
use wanlayer_proto::{Access, Status};
use wanlayer_sim::{Edge, IoOutcome, LinkParams, ReceiveOptions, Rras};
use wanlayer_sim_driver::DriverFilter;
use wanlayer_tests::setup::{completions, counts, drops, finish, started, UDP};

fn config(filter: &str, fail: FailPolicy) -> DivertConfig {
    DivertConfig {
        fail,
        ..DivertConfig::new(compile_filter(filter).expect("the filter compiles"))
    }
}

/// Reads whatever is queued (without waiting): the tickets and frames.
fn read_all<T: wanlayer_client::Transport>(divert: &mut Divert<T>) -> Vec<(DivertTicket, Vec<u8>)> {
    let mut packets = Vec::new();
    divert
        .read_with(4096, None, |packet| {
            packets.push((packet.ticket(), packet.frame.to_vec()))
        })
        .expect("the read completes");
    packets
}

fn finish_server(server: SimServer) {
    finish(server.into_rras());
}

fn rras(server: &SimServer) -> &Rras<DriverFilter> {
    server.rras()
}

#[test]
fn matching_packets_come_in_one_batch_and_verdicts_pass_drop_and_replace() {
    let server = SimServer::new(started());
    let link = rras(&server).link_up(Edge::WanIp, LinkParams::new());
    let mut divert = Divert::open(
        server.open(Access::READ_WRITE).unwrap(),
        &config("udp port 53", FailPolicy::Pass),
    )
    .unwrap();
    let sent = rras(&server).send_flow(&link, &UDP, 3);
    rras(&server).run_until_idle();
    assert_eq!(
        completions(&rras(&server).protocol(Edge::WanIp), &sent),
        vec![None; 3],
        "held by the user-mode hook"
    );
    let packets = read_all(&mut divert);
    assert_eq!(packets.len(), 3, "one read returns every queued packet");
    assert_eq!(
        packets[0].1,
        link.frame(Direction::Send, &UDP, 0),
        "the whole frame"
    );
    let mut replacement = packets[2].1.clone();
    replacement[15] = 0xb8;
    let verdicts = [
        (packets[0].0, Verdict::Pass),
        (packets[1].0, Verdict::Drop),
        (packets[2].0, Verdict::Replace(replacement.clone())),
    ];
    let answered = divert.answer(&verdicts).unwrap();
    assert_eq!((answered.applied, answered.refused), (3, 0));
    rras(&server).run_until_idle();
    let protocol = rras(&server).protocol(Edge::WanIp);
    assert_eq!(
        completions(&protocol, &sent),
        vec![
            Some(NdisStatus::SUCCESS),
            Some(NdisStatus::FAILURE),
            Some(NdisStatus::SUCCESS)
        ]
    );
    let on_the_wire = rras(&server).miniport(Edge::WanIp).sent_frames();
    assert_eq!(
        on_the_wire,
        [packets[0].1.clone(), replacement],
        "passed as it was, and the replacement in place of the third"
    );
    assert_eq!(
        divert.answer(&verdicts[..1]).unwrap().refused,
        1,
        "an answered ticket is stale"
    );
    assert_eq!(divert.counters().diverted, 3);
    drop(divert);
    finish_server(server);
}

#[test]
fn non_matching_traffic_and_other_directions_pass_untouched() {
    let server = SimServer::new(started());
    let link = rras(&server).link_up(Edge::WanIp, LinkParams::new());
    let only_send = DivertConfig {
        receive: false,
        ..config("udp", FailPolicy::Drop)
    };
    let mut divert = Divert::open(server.open(Access::READ_WRITE).unwrap(), &only_send).unwrap();
    rras(&server).receive_flow(&link, &UDP, 2, ReceiveOptions::default());
    let tcp = wanlayer_sim::Flow {
        transport: wanlayer_sim::Transport::Tcp,
        server_port: 80,
        client_port: 5000,
        payload_len: 10,
    };
    let web = rras(&server).send_flow(&link, &tcp, 2);
    rras(&server).run_until_idle();
    assert_eq!(
        rras(&server).protocol(Edge::WanIp).received_frames().len(),
        2,
        "receives are not diverted"
    );
    assert_eq!(
        completions(&rras(&server).protocol(Edge::WanIp), &web),
        vec![Some(NdisStatus::SUCCESS); 2]
    );
    assert!(read_all(&mut divert).is_empty());
    drop(divert);
    finish_server(server);
}

#[test]
fn a_full_queue_applies_the_fail_policy_and_counts_it() {
    for (fail, status) in [
        (FailPolicy::Pass, NdisStatus::SUCCESS),
        (FailPolicy::Drop, NdisStatus::FAILURE),
    ] {
        let server = SimServer::new(started());
        let link = rras(&server).link_up(Edge::WanIp, LinkParams::new());
        let small = DivertConfig {
            queue_len: 2,
            ..config("udp", fail)
        };
        let mut divert = Divert::open(server.open(Access::READ_WRITE).unwrap(), &small).unwrap();
        let sent = rras(&server).send_flow(&link, &UDP, 5);
        rras(&server).run_until_idle();
        let protocol = rras(&server).protocol(Edge::WanIp);
        assert_eq!(
            completions(&protocol, &sent),
            [None, None, Some(status), Some(status), Some(status)],
            "{fail:?}"
        );
        let packets = read_all(&mut divert);
        assert_eq!((packets.len(), divert.counters().queue_full), (2, 3));
        let verdicts: Vec<_> = packets
            .iter()
            .map(|(ticket, _)| (*ticket, Verdict::Pass))
            .collect();
        assert_eq!(divert.answer(&verdicts).unwrap().applied, 2);
        drop(divert);
        finish_server(server);
    }
}

#[test]
fn packets_not_answered_in_time_get_the_fail_policy_once() {
    let server = SimServer::new(started());
    let link = rras(&server).link_up(Edge::WanIp, LinkParams::new());
    let quick = DivertConfig {
        timeout: Duration::from_millis(10),
        ..config("udp", FailPolicy::Drop)
    };
    let mut divert = Divert::open(server.open(Access::READ_WRITE).unwrap(), &quick).unwrap();
    let sent = rras(&server).send_flow(&link, &UDP, 2);
    rras(&server).run_until_idle();
    let packets = read_all(&mut divert);
    assert_eq!(packets.len(), 2);
    rras(&server).advance(20_000_000);
    // No request, no traffic: the driver's expiry timer comes due when the processor runs next.
    rras(&server).filter().control_service();
    rras(&server).run_until_idle();
    assert_eq!(
        completions(&rras(&server).protocol(Edge::WanIp), &sent),
        vec![Some(NdisStatus::FAILURE); 2],
        "fail closed"
    );
    let verdicts: Vec<_> = packets
        .iter()
        .map(|(ticket, _)| (*ticket, Verdict::Pass))
        .collect();
    let answered = divert.answer(&verdicts).unwrap();
    assert_eq!(
        (answered.applied, answered.refused),
        (0, 2),
        "a late verdict is refused: the packet was released once"
    );
    read_all(&mut divert);
    assert_eq!(
        (divert.counters().expired, divert.counters().refused),
        (2, 2)
    );
    drop(divert);
    finish_server(server);
}

#[test]
fn closing_or_dropping_the_handle_releases_every_held_packet_with_the_fail_policy() {
    for (fail, status, close) in [
        (FailPolicy::Pass, NdisStatus::SUCCESS, true),
        (FailPolicy::Drop, NdisStatus::FAILURE, true),
        (FailPolicy::Drop, NdisStatus::FAILURE, false),
    ] {
        let server = SimServer::new(started());
        let link = rras(&server).link_up(Edge::WanIp, LinkParams::new());
        let mut divert = Divert::open(
            server.open(Access::READ_WRITE).unwrap(),
            &config("udp", fail),
        )
        .unwrap();
        let sent = rras(&server).send_flow(&link, &UDP, 4);
        rras(&server).run_until_idle();
        assert_eq!(read_all(&mut divert).len(), 4);
        let more = rras(&server).send_flow(&link, &UDP, 2);
        rras(&server).run_until_idle();
        if close {
            drop(divert.close().unwrap());
        } else {
            drop(divert);
        }
        rras(&server).run_until_idle();
        let protocol = rras(&server).protocol(Edge::WanIp);
        assert_eq!(
            completions(&protocol, &sent),
            vec![Some(status); 4],
            "delivered ones: {fail:?}, close {close}"
        );
        assert_eq!(
            completions(&protocol, &more),
            vec![Some(status); 2],
            "queued ones too"
        );
        assert_eq!(rras(&server).engine().control().divert_hooks(), 0);
        let after = rras(&server).send_flow(&link, &UDP, 1);
        rras(&server).run_until_idle();
        assert_eq!(
            completions(&rras(&server).protocol(Edge::WanIp), &after),
            [Some(NdisStatus::SUCCESS)],
            "the hook left the chain"
        );
        finish_server(server);
    }
}

#[test]
fn line_down_pause_and_detach_release_held_packets_and_later_verdicts_are_refused() {
    for event in ["line down", "pause", "detach"] {
        let server = SimServer::new(started());
        let link = rras(&server).link_up(Edge::WanIp, LinkParams::new());
        let mut divert = Divert::open(
            server.open(Access::READ_WRITE).unwrap(),
            &config("udp", FailPolicy::Pass),
        )
        .unwrap();
        let sent = rras(&server).send_flow(&link, &UDP, 3);
        rras(&server).run_until_idle();
        let packets = read_all(&mut divert);
        assert_eq!(packets.len(), 3);
        match event {
            "line down" => rras(&server).link_down(&link),
            "pause" => rras(&server).pause_and_settle(Edge::WanIp).unwrap(),
            _ => rras(&server).detach(Edge::WanIp).unwrap(),
        }
        rras(&server).run_until_idle();
        assert!(
            completions(&rras(&server).protocol(Edge::WanIp), &sent)
                .iter()
                .all(Option::is_some),
            "{event}: every packet is back"
        );
        let verdicts: Vec<_> = packets
            .iter()
            .map(|(ticket, _)| (*ticket, Verdict::Pass))
            .collect();
        assert_eq!(
            divert.answer(&verdicts).unwrap().refused,
            3,
            "{event}: stale tickets are refused"
        );
        drop(divert);
        finish_server(server);
    }
}

#[test]
fn another_handles_ticket_is_refused_and_unload_with_a_hook_open_is_clean() {
    let server = SimServer::new(started());
    let link = rras(&server).link_up(Edge::WanIp, LinkParams::new());
    let mut first = Divert::open(
        server.open(Access::READ_WRITE).unwrap(),
        &DivertConfig {
            altitude: 100,
            ..config("udp", FailPolicy::Pass)
        },
    )
    .unwrap();
    let mut second = Divert::open(
        server.open(Access::READ_WRITE).unwrap(),
        &DivertConfig {
            altitude: 200,
            ..config("tcp", FailPolicy::Pass)
        },
    )
    .unwrap();
    let sent = rras(&server).send_flow(&link, &UDP, 2);
    rras(&server).run_until_idle();
    let packets = read_all(&mut first);
    assert_eq!(packets.len(), 2);
    let stolen: Vec<_> = packets
        .iter()
        .map(|(ticket, _)| (*ticket, Verdict::Drop))
        .collect();
    assert_eq!(
        second.answer(&stolen).unwrap().refused,
        2,
        "another handle's packets are refused"
    );
    let forged = [(
        DivertTicket {
            module: packets[0].0.module,
            serial: packets[0].0.serial + 1000,
        },
        Verdict::Pass,
    )];
    assert_eq!(
        first.answer(&forged).unwrap().refused,
        1,
        "a ticket never delivered is refused"
    );
    assert_eq!(
        completions(&rras(&server).protocol(Edge::WanIp), &sent),
        vec![None; 2],
        "still held"
    );
    let read_only = server.open(Access::READ).unwrap();
    assert!(matches!(
        Divert::open(read_only, &config("udp", FailPolicy::Pass)),
        Err(wanlayer_client::ClientError::Driver(Status::AccessDenied))
    ));
    drop((first, second));
    let seen = counts(rras(&server), Edge::WanIp);
    assert_eq!(
        drops(&seen.send, DropReason::Hook),
        0,
        "fail open on cleanup"
    );
    finish_server(server);
}

#[test]
fn a_waiting_read_pends_and_completes_when_a_packet_is_diverted() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let frame_link = link.clone();
    let server = SimServer::new(rras).then(move |rras| {
        rras.send_flow(&frame_link, &UDP, 1);
    });
    let mut divert = Divert::open(
        server.open(Access::READ_WRITE).unwrap(),
        &config("udp", FailPolicy::Pass),
    )
    .unwrap();
    let mut got = Vec::new();
    let read = divert
        .read_with(16, Some(Duration::MAX), |packet| got.push(packet.ticket()))
        .unwrap();
    assert_eq!(
        read, 1,
        "the pending read completed with the packet the script sent"
    );
    assert_eq!(
        divert.answer(&[(got[0], Verdict::Pass)]).unwrap().applied,
        1
    );
    assert_eq!(
        divert.read_with(16, Some(Duration::MAX), |_| ()).unwrap(),
        0,
        "nothing more: the wait ends when the script does"
    );
    drop(divert);
    let _ = link;
    finish_server(server);
}

/// A handle that made itself a user-mode hook through the driver's device control directly (no
/// client), with packets held both ways when NDIS detaches the filter: detach releases every held
/// packet, the hook stays open with nothing held, and once the program's handle is closed the
/// driver unloads clean. (Windows calls `DriverUnload` only once no handle to the control device
/// is open: a handle open at unload cannot happen.)
#[test]
fn detach_with_a_hook_open_and_packets_held_releases_everything_and_unload_is_clean() {
    use wanlayer_proto::ioctl::IOCTL_DIVERT_OPEN;
    use wanlayer_proto::{DivertOpen, DivertOpenRepr, DIVERT_RECEIVE, DIVERT_SEND};
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let handle = rras
        .filter()
        .control_open(Access::READ_WRITE)
        .expect("the device opens");
    let blob = compile_filter("udp").expect("the filter compiles");
    let repr = DivertOpenRepr {
        altitude: 100,
        directions: DIVERT_SEND | DIVERT_RECEIVE,
        fail_policy: FailPolicy::Drop,
        queue_len: 8,
        timeout_ms: 1000,
        max_frame: 1600,
        blob: &blob,
    };
    let mut input = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DivertOpen::new_unchecked(&mut input[..]))
        .unwrap();
    match rras
        .filter()
        .control_ioctl(handle, IOCTL_DIVERT_OPEN, &input, 16)
    {
        IoOutcome::Complete(done) => assert_eq!(done.status, Status::Success),
        IoOutcome::Pending(io) => panic!("{io:?} pended"),
    }
    let sent = rras.send_flow(&link, &UDP, 3);
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::default());
    rras.run_until_idle();
    assert_eq!(
        completions(&rras.protocol(Edge::WanIp), &sent),
        vec![None; 3],
        "held when NDIS detaches the filter"
    );
    assert_eq!(rras.engine().control().divert_hooks(), 1);
    rras.detach_all().expect("NDIS detaches the filter");
    rras.run_until_idle();
    assert!(
        completions(&rras.protocol(Edge::WanIp), &sent)
            .iter()
            .all(Option::is_some),
        "detach released every held send"
    );
    assert_eq!(
        rras.engine().control().divert_hooks(),
        1,
        "the hook outlives the modules"
    );
    rras.filter().control_close(handle);
    assert_eq!(
        rras.engine().control().divert_hooks(),
        0,
        "cleanup of the handle removed it"
    );
    finish(rras);
}

#[test]
fn packets_released_before_they_are_read_are_never_delivered_and_expire() {
    let server = SimServer::new(started());
    let link = rras(&server).link_up(Edge::WanIp, LinkParams::new());
    let quick = DivertConfig {
        timeout: Duration::from_millis(10),
        ..config("udp", FailPolicy::Drop)
    };
    let mut divert = Divert::open(server.open(Access::READ_WRITE).unwrap(), &quick).unwrap();
    let sent = rras(&server).send_flow(&link, &UDP, 3);
    rras(&server).run_until_idle();
    rras(&server).link_down(&link);
    rras(&server).run_until_idle();
    assert!(
        completions(&rras(&server).protocol(Edge::WanIp), &sent)
            .iter()
            .all(Option::is_some),
        "the engine released them"
    );
    assert!(
        read_all(&mut divert).is_empty(),
        "a packet the engine no longer holds is not delivered"
    );
    rras(&server).advance(20_000_000);
    assert!(
        read_all(&mut divert).is_empty(),
        "the read expires their queue entries first"
    );
    assert_eq!(
        (divert.counters().diverted, divert.counters().expired),
        (3, 3),
        "their queue entries expire, nothing is released twice"
    );
    drop(divert);
    finish_server(server);
}

/// A waiting `DIVERT_READ` as overlapped I/O sees it, IRP by IRP on the driver's control device:
/// it pends in the handle's cancel-safe queue; a diverted packet completes it through the wake
/// DPC; a second one is cancelled (`CancelIoEx`) and completes `STATUS_CANCELLED` once; a third is
/// completed `STATUS_CANCELLED` by the handle's cleanup, which also gives the packet still held
/// the hook's fail policy.
#[test]
fn a_pending_divert_read_completes_by_the_wake_dpc_by_cancellation_and_by_cleanup() {
    use wanlayer_proto::ioctl::{IOCTL_DIVERT_OPEN, IOCTL_DIVERT_READ};
    use wanlayer_proto::{
        DivertBatch, DivertBatchRepr, DivertOpen, DivertOpenRepr, ReadRequest, ReadRequestRepr,
        DIVERT_SEND,
    };
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let driver = rras.filter();
    let handle = driver
        .control_open(Access::READ_WRITE)
        .expect("the device opens");
    let blob = compile_filter("udp").expect("the filter compiles");
    let open = DivertOpenRepr {
        altitude: 100,
        directions: DIVERT_SEND,
        fail_policy: FailPolicy::Drop,
        queue_len: 8,
        timeout_ms: 60_000,
        max_frame: 1600,
        blob: &blob,
    };
    let mut input = vec![0u8; open.buffer_len()];
    open.emit(&mut DivertOpen::new_unchecked(&mut input[..]))
        .unwrap();
    assert!(
        matches!(driver.control_ioctl(handle, IOCTL_DIVERT_OPEN, &input, 16), IoOutcome::Complete(done) if done.status == Status::Success)
    );
    let mut wait = [0u8; 16];
    ReadRequestRepr {
        max_records: 4,
        wait: true,
    }
    .emit(&mut ReadRequest::new_unchecked(&mut wait[..]))
    .unwrap();
    let room = DivertBatch::<&[u8]>::LEN + 4 * wanlayer_proto::divert_packet_len(1600).unwrap();
    let pend = || match driver.control_ioctl(handle, IOCTL_DIVERT_READ, &wait, room) {
        IoOutcome::Pending(io) => io,
        IoOutcome::Complete(done) => panic!("the read completed at once: {:?}", done.status),
    };

    let first = pend();
    assert!(
        driver.control_completion(first).is_none(),
        "nothing diverted yet"
    );
    let sent = rras.send_flow(&link, &UDP, 1);
    rras.run_until_idle();
    let done = driver
        .control_completion(first)
        .expect("the wake DPC completed the read");
    assert_eq!(done.status, Status::Success);
    let batch = DivertBatchRepr::parse(&DivertBatch::new_unchecked(&done.output[..]))
        .expect("a well-formed batch");
    assert_eq!(
        (batch.count, batch.counters.diverted),
        (1, 1),
        "the packet diverted"
    );

    let second = pend();
    assert!(driver.control_cancel(second), "the queue held it");
    assert_eq!(
        driver.control_completion(second).map(|done| done.status),
        Some(Status::Cancelled)
    );
    assert!(!driver.control_cancel(second), "cancelled once");

    let third = pend();
    assert_eq!(
        completions(&rras.protocol(Edge::WanIp), &sent),
        [None],
        "held, read, not answered"
    );
    driver.control_close(handle);
    assert_eq!(
        driver.control_completion(third).map(|done| done.status),
        Some(Status::Cancelled),
        "cleanup completed it"
    );
    rras.run_until_idle();
    assert_eq!(
        completions(&rras.protocol(Edge::WanIp), &sent),
        [Some(NdisStatus::FAILURE)],
        "the fail policy at cleanup"
    );
    assert_eq!(rras.engine().control().divert_hooks(), 0);
    finish(rras);
}
