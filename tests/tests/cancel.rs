//! Cancelling sends a hook holds (`FilterCancelSendNetBufferLists`): the protocol's cancel id picks
//! them, they complete with `NDIS_STATUS_SEND_ABORTED`, and their tickets go stale.

use wanlayer_core::hook::Direction;
use wanlayer_core::stats::DropReason;
use wanlayer_core::{NdisStatus, ReinjectVerdict};
use wanlayer_sim::{Edge, LinkParams, SendOptions};
use wanlayer_tests::sample_hooks::{Applies, QueueHook, TtlRewriteHook};
use wanlayer_tests::setup::{completions, counts, drops, finish, frames, started, UDP};

#[test]
fn a_cancelled_send_held_by_a_hook_is_aborted_and_the_others_stay_held() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let cancel = |id| SendOptions { cancel_id: Some(id), ..SendOptions::default() };
    let doomed = rras.send_with(Edge::WanIp, cancel(7), frames(&link, Direction::Send, &UDP, 0, 2));
    let kept = rras.send_with(Edge::WanIp, cancel(8), frames(&link, Direction::Send, &UDP, 2, 1));
    rras.cancel_sends(Edge::WanIp, 7);
    let protocol = rras.protocol(Edge::WanIp);
    assert_eq!(completions(&protocol, &doomed), vec![Some(NdisStatus::SEND_ABORTED); 2]);
    assert_eq!(completions(&protocol, &kept), vec![None]);
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!(drops(&seen.send, DropReason::Cancelled), 2);
    let results = queue.reinject_all(rras.engine(), ReinjectVerdict::Pass);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "the cancelled tickets are stale");
    finish(rras);
}

#[test]
fn a_cancelled_send_that_a_hook_replaced_before_another_took_it_is_aborted() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    rras.engine().add_hook("ttl", 200, TtlRewriteHook::new(9, Applies::Sends)).expect("a free hook slot");
    rras.engine().add_hook("queue", 100, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let options = SendOptions { cancel_id: Some(7), ..SendOptions::default() };
    let sent = rras.send_with(Edge::WanIp, options, frames(&link, Direction::Send, &UDP, 0, 2));
    rras.cancel_sends(Edge::WanIp, 7);
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SEND_ABORTED); 2]);
    finish(rras);
}
