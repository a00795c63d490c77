//! The SDK's sample vendor driver, `wlclamp.sys` (`driver/vendor-sample`), built for the host
//! without its `DriverEntry` and attached to the driver in the loop by its own `attach` (what its
//! `DriverEntry` does: the SDK's kernel client opens `\Device\WanLayer`, asks `wanlayer.sys`'s
//! handler for the table with an internal device control IRP and registers through it), its
//! queues released by its own timer tick at `DISPATCH_LEVEL`: the MSS clamp both ways, the token
//! bucket and its queue to the byte and the packet, and the packets it holds at a pause, a line
//! down, a deregistration and wanlayer's own unload, under a second vendor.

use wanlayer_core::hook::Direction as WireDirection;
use wanlayer_core::NdisStatus;
use wanlayer_sdk::kernel::Attachment;
use wanlayer_sdk::wire::clamp_tcp_mss;
use wanlayer_sdk::{Direction, LinkInfo, Provider};
use wanlayer_sim::{Edge, Flow, LinkParams, PauseOutcome, ReceiveOptions, Rras, Transport, MILLISECOND, SECOND};
use wanlayer_sim_driver::DriverFilter;
use wanlayer_tests::frames::{checksums_valid, syn_frame, tcp_mss};
use wanlayer_tests::setup::{completions, finish, frames, started};
use wanlayer_tests::vendors::{connect, provider_counts, revoke_all, RecordingVendor, VendorCall, VendorLog};
use wlclamp::bucket::TokenBucket;
use wlclamp::{ClampFilter, ClampStats, Config};

/// UDP datagrams whose IPv4 frames are exactly 100 bytes (14 + 20 + 8 + 58): 100 tokens each.
const HUNDRED: Flow = Flow { transport: Transport::Udp, server_port: 53, client_port: 40_000, payload_len: 58 };

/// 10,000 bytes per second (100 per 10 ms), a 1,000-byte burst, 4 queued sends per link.
const SHAPER: Config = Config { mss: 1360, rate_bytes_per_second: 10_000, burst_bytes: 1_000, queue_packets: 4, max_links: 8 };

/// wlclamp's `DriverEntry` without the driver around it: attached with `config`
/// (`wlclamp::attach::attach`), at `PASSIVE_LEVEL`.
fn attach(rras: &Rras<DriverFilter>, config: Config) -> Attachment<ClampFilter> {
    rras.filter().vendor_call(false, || wlclamp::attach::attach(config, 0)).expect("wlclamp attaches to wanlayer.sys")
}

/// One tick of wlclamp's release timer (`wlclamp::attach::release`), at `DISPATCH_LEVEL` as its
/// DPC runs, at the simulator's time; how many queued sends it released.
fn release(rras: &Rras<DriverFilter>, clamp: &Attachment<ClampFilter>) -> usize {
    rras.filter().vendor_call(true, || wlclamp::attach::release(clamp))
}

/// Deregisters, then lets go of `\Device\WanLayer`, as wlclamp's `DriverUnload` does.
fn detach(rras: &Rras<DriverFilter>, clamp: Attachment<ClampFilter>) {
    rras.filter().vendor_call(false, || clamp.detach()).expect("deregistered");
}

/// The identity of the one link of `edge`, as the provider lists it.
fn link_id(table: &Provider<'_>, edge: Edge) -> u64 {
    let empty = LinkInfo {
        link_id: 0,
        module: 0,
        link_speed_100bps: 0,
        maximum_total_size: 0,
        reported_total_size: 0,
        protocol_type: 0,
        remote_address: [0; 6],
        local_address: [0; 6],
        reserved: 0,
    };
    let mut links = [empty; 4];
    let count = table.links(&mut links).expect("the links");
    let wanted = if edge == Edge::WanIp { 0x0800 } else { 0x86DD };
    links[..count].iter().find(|link| link.protocol_type == wanted).map(|link| link.link_id).expect("the link")
}

// ----- the clamp --------------------------------------------------------------------------------

#[test]
fn syns_are_clamped_both_ways_on_both_edges_with_valid_checksums_and_nothing_else_changes() {
    let rras = started();
    {
        let clamp = attach(&rras, Config::DEFAULT);
        for edge in [Edge::WanIp, Edge::WanIpv6] {
            let link = rras.link_up(edge, LinkParams::new());
            let big = syn_frame(&link, WireDirection::Send, Some(1460));
            let small = syn_frame(&link, WireDirection::Send, Some(1200));
            let none = syn_frame(&link, WireDirection::Send, None);
            let data = link.frame(WireDirection::Send, &Flow::tcp(443, 50_000), 1);
            rras.send(edge, [big, small.clone(), none.clone(), data.clone()]);
            rras.receive(edge, [syn_frame(&link, WireDirection::Receive, Some(1460))]);
            rras.receive_with(edge, ReceiveOptions::read_only(), [syn_frame(&link, WireDirection::Receive, Some(9000))]);
            let down = rras.miniport(edge).sent_frames();
            assert_eq!(tcp_mss(&down[0]), Some(1360), "{edge}: lowered");
            assert!(checksums_valid(&down[0]), "{edge}: the checksum was adjusted");
            assert_eq!((down[1].clone(), down[2].clone(), down[3].clone()), (small, none, data), "{edge}: untouched");
            let up = rras.protocol(edge).received_frames();
            assert_eq!((tcp_mss(&up[0]), tcp_mss(&up[1])), (Some(1360), Some(1360)), "{edge}: receives too, read-only ones copied");
            assert!(up.iter().all(|frame| checksums_valid(frame)));
        }
        let stats = clamp.filter().stats();
        assert_eq!((stats.clamped, stats.edit_failures, stats.passed), (6, 0, 8));
        detach(&rras, clamp);
    }
    finish(rras);
}

#[test]
fn the_clamp_finds_the_mss_among_other_options_and_skips_what_it_must_not_touch() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let syn = syn_frame(&link, WireDirection::Send, Some(1460));
    let mut clamped = syn.clone();
    let edit = clamp_tcp_mss(&mut clamped, 1360).expect("a SYN over the clamp");
    assert_eq!((edit.old_mss, edit.new_mss, edit.tcp_header.start), (1460, 1360, 14 + 20));
    assert_eq!(tcp_mss(&clamped), Some(1360));
    assert!(checksums_valid(&clamped), "RFC 1624 gives the recomputed checksum");
    assert_eq!(clamp_tcp_mss(&mut syn.clone(), 1460), None, "at the clamp already");
    assert_eq!(clamp_tcp_mss(&mut syn[..40].to_vec(), 1360), None, "a cut frame");
    let mut fragment = syn.clone();
    fragment[14 + 7] = 0x10; // fragment offset 16 (in 8-byte units): no TCP header here
    assert_eq!(clamp_tcp_mss(&mut fragment, 1360), None);
    let mut not_syn = syn.clone();
    not_syn[14 + 20 + 13] = 0x10; // ACK only
    assert_eq!(clamp_tcp_mss(&mut not_syn, 1360), None);
    finish(rras);
}

// ----- the rate limiter -------------------------------------------------------------------------

#[test]
fn a_token_bucket_is_exact_to_the_byte() {
    let mut bucket = TokenBucket::new(1_000, 300, 0);
    assert!(bucket.try_take(200));
    assert!(!bucket.try_take(200), "100 left");
    bucket.refill(100 * MILLISECOND);
    assert_eq!(bucket.available(), 200);
    assert!(bucket.try_take(200));
    bucket.refill(100 * MILLISECOND + 999_999);
    assert_eq!(bucket.available(), 0, "999,999 ns earn 0.999999 of a byte");
    bucket.refill(101 * MILLISECOND);
    assert_eq!(bucket.available(), 1);
    bucket.refill(10 * SECOND);
    assert_eq!(bucket.available(), 300, "capped at the depth");
    bucket.refund(50);
    assert_eq!(bucket.available(), 300, "a refund never exceeds the depth");
}

#[test]
fn sends_over_the_rate_are_queued_released_in_order_as_tokens_come_and_dropped_when_the_queue_is_full() {
    let rras = started();
    {
        let clamp = attach(&rras, SHAPER);
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        let id = link_id(&clamp.provider(), Edge::WanIp);
        let out = frames(&link, WireDirection::Send, &HUNDRED, 0, 16);
        assert!(out.iter().all(|frame| frame.len() == 100));
        let sent = rras.send(Edge::WanIp, out.clone());

        // The 1,000-byte burst passes 10; 4 wait; the queue is full for the last 2.
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 10);
        let statuses = completions(&rras.protocol(Edge::WanIp), &sent);
        assert_eq!(statuses[14..], [Some(NdisStatus::FAILURE); 2], "dropped at once, completed with a failure");
        assert_eq!(clamp.filter().link_state(id), Some((4, 0)));
        assert_eq!(release(&rras, &clamp), 0, "no time has passed: no token");

        rras.advance(10 * MILLISECOND); // 100 bytes earned
        assert_eq!(release(&rras, &clamp), 1);
        rras.advance(25 * MILLISECOND); // 250 more
        assert_eq!(release(&rras, &clamp), 2);
        assert_eq!(clamp.filter().link_state(id), Some((1, 50)), "50 bytes short of the last one");
        rras.advance(4 * MILLISECOND); // 40 more: still 10 short
        assert_eq!(release(&rras, &clamp), 0);
        rras.advance(MILLISECOND);
        assert_eq!(release(&rras, &clamp), 1);
        assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), out[..14].to_vec(), "every one that passed, in order");

        // A quiet second refills the burst, and no more.
        rras.advance(SECOND);
        let later = rras.send(Edge::WanIp, frames(&link, WireDirection::Send, &HUNDRED, 16, 12));
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 24);
        assert_eq!(clamp.filter().link_state(id), Some((2, 0)));
        rras.advance(20 * MILLISECOND);
        assert_eq!(release(&rras, &clamp), 2);
        rras.run_until_idle();
        let protocol = rras.protocol(Edge::WanIp);
        assert_eq!(completions(&protocol, &sent[..14]), vec![Some(NdisStatus::SUCCESS); 14]);
        assert_eq!(completions(&protocol, &later), vec![Some(NdisStatus::SUCCESS); 12]);
        let expected = ClampStats { passed: 20, queued: 6, released: 6, dropped_queue_full: 2, ..ClampStats::default() };
        assert_eq!(clamp.filter().stats(), expected);
        detach(&rras, clamp);
    }
    finish(rras);
}

#[test]
fn each_link_has_its_own_bucket_and_receives_are_never_delayed() {
    let rras = started();
    {
        let clamp = attach(&rras, SHAPER);
        let busy = rras.link_up(Edge::WanIp, LinkParams::new());
        let quiet = rras.link_up(Edge::WanIp, LinkParams::new());
        rras.send(Edge::WanIp, frames(&busy, WireDirection::Send, &HUNDRED, 0, 14));
        rras.send(Edge::WanIp, frames(&quiet, WireDirection::Send, &HUNDRED, 0, 3));
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 13, "the busy link's queue does not hold the quiet one back");
        rras.receive_flow(&busy, &HUNDRED, 20, ReceiveOptions::default());
        assert_eq!(rras.protocol(Edge::WanIp).received.len(), 20);
        let stats = clamp.filter().stats();
        assert_eq!((stats.passed, stats.queued), (13, 4));
        detach(&rras, clamp);
    }
    finish(rras);
}

// ----- what it holds, when the world changes ----------------------------------------------------

/// An attached wlclamp with `queued` sends held on a fresh IPv4 link (a 200-byte burst: the first
/// two pass).
macro_rules! holding {
    ($rras:ident, $clamp:ident, $link:ident, $sent:ident, $queued:expr) => {
        let $clamp = attach(&$rras, Config { burst_bytes: 200, ..SHAPER });
        let $link = $rras.link_up(Edge::WanIp, LinkParams::new());
        let $sent = $rras.send(Edge::WanIp, frames(&$link, WireDirection::Send, &HUNDRED, 0, 2 + $queued));
        assert_eq!($clamp.filter().stats().queued, $queued);
    };
}

#[test]
fn a_pause_completes_at_once_with_queued_sends_and_their_tickets_go_stale() {
    let rras = started();
    {
        holding!(rras, clamp, link, sent, 3);
        assert_eq!(rras.pause(Edge::WanIp), Ok(PauseOutcome::Complete), "nothing the filter holds delays the pause");
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent[2..]), vec![Some(NdisStatus::PAUSED); 3]);
        rras.restart(Edge::WanIp).expect("restarts");
        rras.advance(30 * MILLISECOND);
        assert_eq!(release(&rras, &clamp), 0);
        let stats = clamp.filter().stats();
        assert_eq!((stats.stale, stats.released), (3, 0), "each stale ticket skipped and its tokens refunded");
        let after = rras.send_flow(&link, &HUNDRED, 2);
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 4, "the refilled burst passes at once");
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &after), vec![Some(NdisStatus::SUCCESS); 2]);
        detach(&rras, clamp);
    }
    finish(rras);
}

#[test]
fn a_line_down_discards_the_link_s_queue_and_wanlayer_completes_its_sends() {
    let rras = started();
    {
        holding!(rras, clamp, link, sent, 3);
        rras.link_down(&link);
        rras.run_until_idle();
        let statuses = completions(&rras.protocol(Edge::WanIp), &sent[2..]);
        assert_eq!(statuses, vec![Some(NdisStatus::MEDIA_DISCONNECTED); 3]);
        assert_eq!(clamp.filter().stats().discarded_line_down, 3);
        rras.advance(SECOND);
        assert_eq!(release(&rras, &clamp), 0, "nothing left to release");
        detach(&rras, clamp);
    }
    finish(rras);
}

#[test]
fn deregistering_with_queued_sends_hands_them_on_in_order() {
    let rras = started();
    {
        holding!(rras, clamp, link, sent, 4);
        detach(&rras, clamp);
        let down = rras.miniport(Edge::WanIp).sent_frames();
        assert_eq!(down, frames(&link, WireDirection::Send, &HUNDRED, 0, 6), "all of them, in the order they came");
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 6]);
        assert_eq!(provider_counts().registered, 0);
    }
    finish(rras);
}

#[test]
fn wanlayer_unloading_revokes_wlclamp_which_then_never_calls_the_table() {
    let rras = started();
    {
        holding!(rras, clamp, _link, sent, 3);
        assert_eq!(revoke_all(&rras), 1, "what DriverUnload does first");
        assert!(clamp.is_revoked());
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 5, "its queue was handed on");
        rras.advance(SECOND);
        assert_eq!(release(&rras, &clamp), 0, "a revoked filter releases nothing");
        assert_eq!(clamp.filter().stats().reinject_failures, 0, "and does not even try");
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 5]);
        assert_eq!(rras.filter().vendor_call(false, || clamp.detach()), Ok(()), "its DriverUnload makes no call into the table");
    }
    finish(rras);
}

#[test]
fn with_a_second_vendor_below_held_sends_reach_it_only_when_released() {
    let rras = started();
    {
        let others = connect(&rras);
        let table = others.table();
        let log = VendorLog::new();
        let _above = table.register("above", 400, RecordingVendor::new("above", &log)).expect("registered");
        let clamp = attach(&rras, Config { burst_bytes: 200, ..SHAPER });
        let _capture = table.register("capture", 100, RecordingVendor::new("capture", &log)).expect("registered");
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        rras.send_flow(&link, &HUNDRED, 5);
        let sends = || log.order(VendorCall::Packet(Direction::Send));
        assert_eq!(sends(), ["above", "capture", "above", "capture", "above", "above", "above"], "3 held by wlclamp");
        log.clear();
        rras.advance(30 * MILLISECOND);
        assert_eq!(release(&rras, &clamp), 2, "300 bytes earned, but the bucket holds 200");
        rras.advance(10 * MILLISECOND);
        assert_eq!(release(&rras, &clamp), 1);
        assert_eq!(sends(), ["capture", "capture", "capture"], "released sends continue below wlclamp only");
        rras.receive_flow(&link, &HUNDRED, 1, ReceiveOptions::default());
        assert_eq!(log.order(VendorCall::Packet(Direction::Receive)), ["capture", "above"]);
        detach(&rras, clamp);
    }
    finish(rras);
}

#[test]
fn wlclamp_registers_and_deregisters_under_traffic_and_every_packet_comes_home() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let mut sent = Vec::new();
    {
        let mut stats = Vec::new();
        for round in 0..10u32 {
            let clamp = attach(&rras, SHAPER);
            for burst in 0..3 {
                sent.extend(rras.send(Edge::WanIp, frames(&link, WireDirection::Send, &HUNDRED, round * 100 + burst * 8, 8)));
                rras.receive_flow(&link, &HUNDRED, 2, ReceiveOptions::resources());
                rras.advance(7 * MILLISECOND);
                release(&rras, &clamp);
            }
            stats.push(clamp.filter().stats());
            // Leaves with sends still queued: they go on down.
            detach(&rras, clamp);
        }
        let dropped: u64 = stats.iter().map(|stats| stats.dropped_queue_full).sum();
        let held: u64 = stats.iter().map(|stats| stats.queued).sum();
        assert!(dropped > 0 && held > 0, "the shaper was busy: {stats:?}");
        assert_eq!(provider_counts().registrations, 10);
    }
    rras.run_until_idle();
    let protocol = rras.protocol(Edge::WanIp);
    let statuses = completions(&protocol, &sent);
    assert!(statuses.iter().all(|status| matches!(status, Some(NdisStatus::SUCCESS | NdisStatus::FAILURE))), "all completed");
    let failed = statuses.iter().filter(|status| **status == Some(NdisStatus::FAILURE)).count();
    assert_eq!(rras.miniport(Edge::WanIp).sent.len() + failed, sent.len(), "sent down, or dropped for a full queue");
    assert_eq!(protocol.received.len(), 60);
    finish(rras);
}
