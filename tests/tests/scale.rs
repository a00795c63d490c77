//! Scale: ten thousand links across both edges, traffic on a sample, all down again; and link
//! churn. The link table is a hash map, so lookups stay right (and fast) whatever the count.

use std::collections::BTreeSet;

use wanlayer_core::hal::Pool;
use wanlayer_core::hook::Direction;
use wanlayer_core::link::LinkId;
use wanlayer_sim::{Edge, Flow, LinkParams, ReceiveOptions, SimLink};
use wanlayer_tests::sample_hooks::CountingHook;
use wanlayer_tests::setup::{counts, finish, frames, module, started, UDP};

const LINKS: usize = 10_000;

fn link_pool<F: wanlayer_sim::EngineFilter>(rras: &wanlayer_sim::Rras<F>) -> usize {
    rras.filter().pool_charged(Pool::Link)
}

#[test]
fn ten_thousand_links_across_both_edges_are_tracked_looked_up_and_taken_down() {
    let rras = started();
    let counter = CountingHook::new();
    rras.engine().add_hook("count", 10, counter.clone()).expect("a free hook slot");
    let links: Vec<SimLink> =
        (0..LINKS).map(|n| rras.link_up(if n % 2 == 0 { Edge::WanIp } else { Edge::WanIpv6 }, LinkParams::new())).collect();
    let (v4, v6) = (module(&rras, Edge::WanIp), module(&rras, Edge::WanIpv6));
    let engine = rras.engine();
    assert_eq!(engine.module_info(v4).map(|i| i.links), Some(LINKS / 2));
    assert_eq!(engine.module_info(v6).map(|i| i.links), Some(LINKS / 2));
    let mut ids = BTreeSet::new();
    for id in [v4, v6] {
        engine.visit_links(id, |link| {
            ids.insert(link.id());
        });
    }
    assert_eq!(ids.len(), LINKS, "every link has its own identity");
    assert_eq!(counter.calls().line_ups, LINKS as u64);

    let flow = UDP;
    let sample: Vec<&SimLink> = links.iter().step_by(97).collect();
    for (n, link) in sample.iter().enumerate() {
        rras.send_flow(link, &flow, 1 + n as u32 % 3);
        rras.receive_flow(link, &flow, 1, ReceiveOptions::resources());
    }
    rras.run_until_idle();
    let mut looked_up: Vec<LinkId> = Vec::new();
    for (n, link) in sample.iter().enumerate() {
        let id = module(&rras, link.edge);
        let seen = engine.with_link(id, &link.remote, |l| {
            looked_up.push(l.id());
            (l.summary().remote_address, l.summary().local_address, l.send_counts().packets, l.receive_counts().packets)
        });
        assert_eq!(seen, Some((link.remote, link.local, 1 + n as u64 % 3, 1)), "{link}");
    }
    let distinct: BTreeSet<LinkId> = looked_up.iter().copied().collect();
    assert_eq!(distinct.len(), sample.len());
    let expected_sends: u64 = (0..sample.len() as u64).map(|n| 1 + n % 3).sum();
    let sent: u64 = [Edge::WanIp, Edge::WanIpv6].iter().map(|edge| counts(&rras, *edge).send.traffic.packets).sum();
    let unmatched: u64 = [Edge::WanIp, Edge::WanIpv6].iter().map(|edge| counts(&rras, *edge).send.unmatched).sum();
    assert_eq!((sent, unmatched, counter.calls().sends), (expected_sends, 0, expected_sends));
    let delivered: usize = [Edge::WanIp, Edge::WanIpv6].iter().map(|edge| rras.miniport(*edge).sent.len()).sum();
    assert_eq!(delivered as u64, expected_sends);
    assert!(link_pool(&rras) >= LINKS * 600, "every link keeps its 600-byte protocol buffer");

    for link in &links {
        rras.link_down(link);
    }
    for edge in [Edge::WanIp, Edge::WanIpv6] {
        let seen = counts(&rras, edge);
        assert_eq!((seen.line_ups, seen.line_downs, seen.line_downs_unknown), (LINKS as u64 / 2, LINKS as u64 / 2, 0), "{edge}");
        assert_eq!(engine.module_info(module(&rras, edge)).map(|i| i.links), Some(0));
    }
    assert_eq!(link_pool(&rras), 0, "every link entry freed");
    assert_eq!(counter.calls().line_downs, LINKS as u64);
    rras.send(Edge::WanIp, frames(&links[0], Direction::Send, &flow, 9, 1));
    assert_eq!(counts(&rras, Edge::WanIp).send.unmatched, 1);
    finish(rras);
}

#[test]
fn link_churn_never_reuses_an_identity_and_gives_all_memory_back() {
    let rras = started();
    let id = module(&rras, Edge::WanIp);
    let baseline = link_pool(&rras);
    let mut previous = None;
    for round in 0..1_000 {
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        let now = rras.engine().with_link(id, &link.remote, |l| l.id()).expect("tracked");
        assert!(previous.is_none_or(|before: LinkId| now > before), "round {round}");
        previous = Some(now);
        if round % 10 == 0 {
            rras.send_flow(&link, &Flow::tcp(80, 1000), 1);
        }
        rras.link_down(&link);
    }
    assert_eq!(link_pool(&rras), baseline);
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((seen.line_ups, seen.line_downs, seen.send.traffic.packets, seen.send.unmatched), (1_000, 1_000, 100, 0));
    finish(rras);
}
