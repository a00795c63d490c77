//! Pause, restart and detach under traffic: what a pause waits for and what it flushes, sends that
//! arrive while pausing or paused, detach forgetting links and memory, and a fresh attach.

use wanlayer_core::event::Event;
use wanlayer_core::hal::{PathContext, Pool};
use wanlayer_core::hook::{Direction, Ticket};
use wanlayer_core::module::StateError;
use wanlayer_core::stats::DropReason;
use wanlayer_core::{NdisStatus, ReinjectError, ReinjectVerdict};
use wanlayer_sim::{Delivery, Edge, LinkParams, NdisState, PauseOutcome, ReceiveOptions, Rras, MILLISECOND, SECOND};
use wanlayer_tests::sample_hooks::{Applies, CountingHook, QueueHook, TtlRewriteHook};
use wanlayer_tests::setup::{completions, counts, drain_events, drops, finish, frames, module, start, started, UDP};

/// How many times the simulator saw `NdisFPauseComplete` succeed.
fn pause_completions<F: wanlayer_sim::EngineFilter>(rras: &Rras<F>) -> usize {
    rras.log().iter().filter(|line| line.contains("pause completed (NdisFPauseComplete)")).count()
}

fn paused_events(events: &[Event]) -> usize {
    events.iter().filter(|event| matches!(event, Event::ModulePaused(_))).count()
}

// ----- pause ------------------------------------------------------------------------------------

#[test]
fn a_pause_with_only_pass_through_sends_at_the_miniport_completes_at_once() {
    let rras = start(Rras::builder().send_completion(Delivery::Hold));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let sent = rras.send_flow(&link, &UDP, 3);
    assert_eq!(rras.pause(Edge::WanIp), Ok(PauseOutcome::Complete), "the protocol's sends are not the filter's to wait for");
    assert_eq!(rras.state(Edge::WanIp), NdisState::Paused);
    rras.release_sends(Edge::WanIp);
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 3], "completed through the paused filter");
    finish(rras);
}

#[test]
fn a_pause_waiting_for_replaced_sends_is_pending_and_completes_exactly_once() {
    let rras = start(Rras::builder().send_completion(Delivery::After(2 * SECOND)));
    rras.engine().add_hook("ttl", 10, TtlRewriteHook::new(7, Applies::Sends)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let first = rras.send_flow(&link, &UDP, 2);
    rras.advance(SECOND);
    let second = rras.send_flow(&link, &UDP, 1);
    drain_events(rras.engine());

    assert_eq!(rras.pause(Edge::WanIp), Ok(PauseOutcome::Pending));
    rras.advance(SECOND + MILLISECOND);
    assert_eq!(rras.state(Edge::WanIp), NdisState::Pausing, "one replacement is still out");
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &first), vec![Some(NdisStatus::SUCCESS); 2]);
    assert_eq!(pause_completions(&rras), 0);
    rras.advance(SECOND);
    assert_eq!(rras.state(Edge::WanIp), NdisState::Paused, "completed when the last one came back");
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &second), vec![Some(NdisStatus::SUCCESS)]);
    rras.run_until_idle();
    let events: Vec<Event> = drain_events(rras.engine()).into_iter().map(|r| r.event).collect();
    assert_eq!((pause_completions(&rras), paused_events(&events)), (1, 1), "exactly once");
    assert_eq!(rras.engine().module_info(module(&rras, Edge::WanIp)).map(|i| i.in_flight), Some(0));
    finish(rras);
}

#[test]
fn sends_while_pausing_and_while_paused_complete_with_ndis_status_paused_and_skip_the_hooks() {
    let rras = start(Rras::builder().send_completion(Delivery::Hold));
    let counter = CountingHook::new();
    rras.engine().add_hook("count", 20, counter.clone()).expect("a free hook slot");
    rras.engine().add_hook("ttl", 10, TtlRewriteHook::new(7, Applies::Sends)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 1);
    assert_eq!(rras.pause(Edge::WanIp), Ok(PauseOutcome::Pending));
    let while_pausing = rras.send_flow(&link, &UDP, 2);
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &while_pausing), vec![Some(NdisStatus::PAUSED); 2], "at once");
    rras.release_sends(Edge::WanIp);
    rras.run_until_idle();
    assert_eq!(rras.state(Edge::WanIp), NdisState::Paused);
    let while_paused = rras.send_flow(&link, &UDP, 3);
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &while_paused), vec![Some(NdisStatus::PAUSED); 3]);

    assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 1, "only the replacement sent before the pause");
    assert_eq!(counter.calls().sends, 1);
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((seen.send.traffic.packets, drops(&seen.send, DropReason::Paused)), (6, 5));
    finish(rras);
}

#[test]
fn a_pause_flushes_what_the_hooks_hold_and_their_tickets_go_stale() {
    let rras = started();
    let queue = QueueHook::new(Applies::Both);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let sent = rras.send_flow(&link, &UDP, 2);
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::default());
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::resources());
    let tickets = queue.drain();
    assert_eq!(rras.miniport(Edge::WanIpv6).returned, 1, "only the lent one is back");

    assert_eq!(rras.pause(Edge::WanIpv6), Ok(PauseOutcome::Complete), "nothing is outstanding once the held packets are flushed");
    assert_eq!(completions(&rras.protocol(Edge::WanIpv6), &sent), vec![Some(NdisStatus::PAUSED); 2]);
    assert_eq!(rras.miniport(Edge::WanIpv6).returned, 3, "held receives go back to the miniport");
    assert!(rras.protocol(Edge::WanIpv6).received.is_empty());
    let seen = counts(&rras, Edge::WanIpv6);
    assert_eq!((drops(&seen.send, DropReason::Paused), drops(&seen.receive, DropReason::Paused)), (2, 3));
    for ticket in tickets {
        assert_eq!(rras.engine().reinject(ticket, ReinjectVerdict::Pass, PathContext::default()), Err(ReinjectError::StaleTicket(ticket)));
    }
    assert_eq!(rras.engine().module_info(module(&rras, Edge::WanIpv6)).map(|i| i.taken), Some(0));
    finish(rras);
}

#[test]
fn traffic_flows_again_after_a_restart_and_links_and_counters_survive_the_pause() {
    let rras = started();
    let counter = CountingHook::new();
    rras.engine().add_hook("count", 10, counter.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 2);
    rras.pause_and_settle(Edge::WanIp).expect("pauses");
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::default());
    rras.restart(Edge::WanIp).expect("restarts");
    let after = frames(&link, Direction::Send, &UDP, 10, 3);
    let sent = rras.send(Edge::WanIp, after.clone());
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::resources());
    rras.run_until_idle();

    assert_eq!(rras.miniport(Edge::WanIp).sent_frames()[2..], after[..]);
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 3]);
    assert_eq!(rras.protocol(Edge::WanIp).received.len(), 2, "the receive while paused never went up");
    assert_eq!((counter.calls().sends, counter.calls().receives), (5, 2));
    let id = module(&rras, Edge::WanIp);
    assert_eq!(rras.engine().with_link(id, &link.remote, |l| (l.send_counts().packets, l.receive_counts().packets)), Some((5, 2)));
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((seen.send.traffic.packets, seen.receive.traffic.packets, drops(&seen.receive, DropReason::Paused)), (5, 3, 1));
    finish(rras);
}

#[test]
fn several_pause_and_restart_cycles_under_traffic_stay_clean() {
    let rras = start(Rras::builder().send_completion(Delivery::Hold).receive_return(Delivery::After(MILLISECOND)));
    let queue = QueueHook::new(Applies::Receives);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    rras.engine().add_hook("ttl", 20, TtlRewriteHook::new(7, Applies::Sends)).expect("a free hook slot");
    let v4 = rras.link_up(Edge::WanIp, LinkParams::new());
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new());
    drain_events(rras.engine());
    for cycle in 0..5u32 {
        for link in [&v4, &v6] {
            rras.send(link.edge, frames(link, Direction::Send, &UDP, cycle * 10, 2));
            rras.receive(link.edge, frames(link, Direction::Receive, &UDP, cycle * 10, 2));
        }
        let (passed, held): (Vec<_>, Vec<_>) = queue.drain().into_iter().enumerate().partition(|(n, _)| n % 2 == 0);
        for (_, ticket) in passed {
            rras.engine().reinject(ticket, ReinjectVerdict::Pass, PathContext::default()).expect("held");
        }
        for edge in [Edge::WanIp, Edge::WanIpv6] {
            assert_eq!(rras.pause(edge), Ok(PauseOutcome::Pending), "cycle {cycle}: replacements are out on {edge}");
            let late = rras.send(edge, frames(if edge == Edge::WanIp { &v4 } else { &v6 }, Direction::Send, &UDP, 99, 1));
            assert_eq!(completions(&rras.protocol(edge), &late), vec![Some(NdisStatus::PAUSED)]);
            rras.release_sends(edge);
            rras.run_until_idle();
            assert_eq!(rras.state(edge), NdisState::Paused, "cycle {cycle}");
        }
        for (_, ticket) in held {
            assert!(rras.engine().reinject(ticket, ReinjectVerdict::Pass, PathContext::default()).is_err(), "flushed by the pause");
        }
        rras.restart_all().expect("restarts");
    }
    let events: Vec<Event> = drain_events(rras.engine()).into_iter().map(|r| r.event).collect();
    assert_eq!(paused_events(&events), 10);
    assert_eq!(events.iter().filter(|e| matches!(e, Event::ModuleRestarted(_))).count(), 10);
    assert_eq!(pause_completions(&rras), 10, "every pending pause completed once");
    for (edge, link) in [(Edge::WanIp, &v4), (Edge::WanIpv6, &v6)] {
        let seen = counts(&rras, edge);
        assert_eq!((seen.send.traffic.packets, seen.send.modified, drops(&seen.send, DropReason::Paused)), (15, 10, 5), "{edge}");
        assert_eq!((seen.receive.taken, seen.receive.reinjected, drops(&seen.receive, DropReason::Paused)), (10, 5, 5), "{edge}");
        assert_eq!(rras.protocol(edge).received.len(), 5, "{link}");
    }
    finish(rras);
}

// ----- detach -----------------------------------------------------------------------------------

#[test]
fn detach_reports_the_links_it_dropped_and_frees_their_memory() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let links: Vec<_> = (0..3).map(|_| rras.link_up(Edge::WanIp, LinkParams::new())).collect();
    rras.link_up(Edge::WanIpv6, LinkParams::new());
    rras.send_flow(&links[0], &UDP, 20);
    queue.reinject_all(rras.engine(), ReinjectVerdict::Pass);
    let (v4, v6) = (module(&rras, Edge::WanIp), module(&rras, Edge::WanIpv6));
    let pool = |pool| wanlayer_sim::EngineFilter::pool_charged(rras.filter(), pool);
    assert!(pool(Pool::Link) > 0 && pool(Pool::Taken) > 0);
    drain_events(rras.engine());

    rras.detach(Edge::WanIp).expect("detaches");
    rras.detach(Edge::WanIpv6).expect("detaches");
    let events: Vec<Event> = drain_events(rras.engine()).into_iter().map(|r| r.event).collect();
    assert_eq!(
        events,
        [
            Event::ModulePaused(v4),
            Event::ModuleDetached { module: v4, links_dropped: 3 },
            Event::ModulePaused(v6),
            Event::ModuleDetached { module: v6, links_dropped: 1 },
        ]
    );
    assert_eq!((pool(Pool::Link), pool(Pool::Taken)), (0, 0), "link entries and taken bookkeeping are freed at detach");
    assert!(pool(Pool::Engine) > 0 && pool(Pool::Event) > 0, "the engine's tables live until unload");
    assert!(rras.engine().module_info(v4).is_none() && rras.engine().module_counts(v4).is_none());
    assert!(rras.engine().with_link(v4, &links[0].remote, |_| ()).is_none());
    assert_eq!(rras.engine().modules().count(), 0);
    finish(rras);
}

#[test]
fn detaching_a_running_module_pauses_it_first_and_flushes_what_hooks_hold() {
    let rras = started();
    let queue = QueueHook::new(Applies::Both);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let sent = rras.send_flow(&link, &UDP, 2);
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::default());
    rras.detach(Edge::WanIp).expect("detaches");
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::PAUSED); 2]);
    assert_eq!(rras.miniport(Edge::WanIp).returned, 2);
    assert!(queue.reinject_all(rras.engine(), ReinjectVerdict::Pass).iter().all(Result::is_err));
    finish(rras);
}

#[test]
fn attaching_again_gets_a_fresh_module_and_the_old_identity_is_refused() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let old_link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&old_link, &UDP, 1);
    let stale: Ticket = queue.drain()[0];
    let old = module(&rras, Edge::WanIp);
    rras.detach(Edge::WanIp).expect("detaches");
    rras.attach(Edge::WanIp).expect("attaches");
    rras.restart(Edge::WanIp).expect("restarts");

    let new = module(&rras, Edge::WanIp);
    assert_ne!(new, old, "a new generation of the slot");
    let engine = rras.engine();
    let info = engine.module_info(new).expect("attached");
    assert_eq!((info.links, info.taken, info.in_flight), (0, 0, 0));
    assert_eq!(engine.module_counts(new), Some(Default::default()), "counters start from zero");
    assert!(engine.module_info(old).is_none());
    assert_eq!(engine.reinject(stale, ReinjectVerdict::Pass, PathContext::default()), Err(ReinjectError::UnknownModule(old)));
    assert_eq!(engine.restart(old), Err(StateError::UnknownModule(old)));
    assert_eq!(engine.pause(old), Err(StateError::UnknownModule(old)));
    assert_eq!(engine.detach(old).err(), Some(StateError::UnknownModule(old)));

    queue.set_taking(false);
    assert!(engine.with_link(new, &old_link.remote, |_| ()).is_none(), "links do not survive a detach");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let sent = rras.send_flow(&link, &UDP, 2);
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 2]);
    assert_eq!(counts(&rras, Edge::WanIp).send.traffic.packets, 2);
    finish(rras);
}

#[test]
fn lifecycle_calls_in_the_wrong_state_are_refused_by_the_engine() {
    let rras = started();
    let id = module(&rras, Edge::WanIpv6);
    let engine = rras.engine();
    let running = |state| StateError::WrongState { module: id, state };
    assert_eq!(engine.restart(id), Err(running(wanlayer_core::ModuleState::Running)));
    assert_eq!(engine.detach(id).err(), Some(running(wanlayer_core::ModuleState::Running)));
    assert_eq!(engine.module_info(id).map(|info| info.state), Some(wanlayer_core::ModuleState::Running), "nothing changed");
    finish(rras);
}

/// A pause and a line down flushing twenty held sends each; returns the order the protocol saw
/// its sends completed in, per edge.
fn flush_held_sends() -> Vec<Vec<u64>> {
    let rras = started();
    rras.engine().add_hook("queue", 10, QueueHook::new(Applies::Sends)).expect("a free hook slot");
    let (v4, v6) = (rras.link_up(Edge::WanIp, LinkParams::new()), rras.link_up(Edge::WanIpv6, LinkParams::new()));
    rras.send_flow(&v4, &UDP, 20);
    rras.send_flow(&v6, &UDP, 20);
    rras.pause_and_settle(Edge::WanIp).expect("pauses");
    rras.link_down(&v6);
    let order = [Edge::WanIp, Edge::WanIpv6].map(|edge| rras.protocol(edge).completions.iter().map(|c| c.packet.0).collect());
    finish(rras);
    order.to_vec()
}

#[test]
fn flushing_held_packets_is_deterministic() {
    let first = flush_held_sends();
    for _ in 0..3 {
        assert_eq!(flush_held_sends(), first, "the same scenario completes the same packets in the same order");
    }
}
