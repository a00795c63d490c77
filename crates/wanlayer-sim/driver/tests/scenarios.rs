//! The simulator's scenarios with wanlayer.sys's own handlers as the filter: whole sessions
//! through NdisWan's edges, every call checked by the simulator's verifier and the kernel model.

use wanlayer_sim::{Delivery, Edge, Flow, IrqlPolicy, LinkParams, ReceiveOptions, Rras, Rule, MILLISECOND};
use wanlayer_sim_driver::DriverFilter;

fn started(rras: Rras<DriverFilter>) -> Rras<DriverFilter> {
    rras.start().expect("the driver loads, attaches and restarts on every edge");
    rras
}

#[test]
fn traffic_passes_both_ways_through_the_drivers_handlers_and_unload_is_clean() {
    let mut rras = started(Rras::new(DriverFilter::new()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &Flow::udp(53, 40000), 3);
    rras.receive_flow(&link, &Flow::udp(53, 40000), 3, ReceiveOptions::resources());
    rras.receive_flow(&link, &Flow::udp(53, 40000), 2, ReceiveOptions::default());
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 3);
    assert_eq!(rras.protocol(Edge::WanIp).received.len(), 5);
    assert_eq!(rras.protocol(Edge::WanIp).completions.len(), 3);
    rras.link_down(&link);
    rras.unload();
    rras.verifier().assert_clean();
}

#[test]
fn the_protocol_learns_the_link_from_the_line_up_the_driver_passes_on() {
    let mut rras = started(Rras::new(DriverFilter::new()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let known = rras.protocol(Edge::WanIp).links;
    assert_eq!(known.len(), 1);
    let mut tracked = 0;
    let module = rras.module(Edge::WanIp).expect("attached");
    rras.engine().visit_links(module, |_| tracked += 1);
    assert_eq!(tracked, 1, "the driver's engine tracks the link");
    rras.link_down(&link);
    assert!(rras.protocol(Edge::WanIp).links.is_empty());
    rras.unload();
    rras.verifier().assert_clean();
}

#[test]
fn pause_with_sends_at_the_miniport_completes_once_they_are_back() {
    let mut rras = started(Rras::builder().send_completion(Delivery::Hold).irql(IrqlPolicy::Alternate).build(DriverFilter::new()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &Flow::tcp(443, 50000), 4);
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).holding(), 4);
    rras.release_sends(Edge::WanIp);
    rras.run_until_idle();
    rras.pause_and_settle(Edge::WanIp).expect("pause");
    rras.advance(MILLISECOND);
    assert_eq!(rras.protocol(Edge::WanIp).completions.len(), 4);
    rras.unload();
    rras.verifier().assert_clean();
}

#[test]
fn oid_requests_pass_down_as_the_drivers_clones_and_complete_with_the_miniports_results() {
    let mut rras = started(Rras::builder().oid_completion(Delivery::After(MILLISECOND)).build(DriverFilter::new()));
    let query = rras.oid_query(Edge::WanIp, 0x0001_0114).expect("a query");
    let set = rras.oid_set(Edge::WanIpv6, 0x0001_010E, vec![1, 0, 0, 0]).expect("a set");
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).oid_requests.len(), 1, "the clone reached the miniport");
    let completions = rras.protocol(Edge::WanIp).oid_completions;
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0].request.id(), query);
    assert_eq!(rras.protocol(Edge::WanIpv6).oid_completions[0].request.id(), set);
    rras.set_oid_completion(Delivery::After(0));
    rras.oid_query(Edge::WanIp, 0x0001_0114).expect("a second query");
    rras.run_until_idle();
    assert_eq!(rras.protocol(Edge::WanIp).oid_completions.len(), 2);
    rras.unload();
    rras.verifier().assert_clean();
}

#[test]
fn a_rule_the_kernel_model_sees_broken_is_reported_once_by_the_simulators_verifier() {
    let mut rras = started(Rras::new(DriverFilter::new()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let mut lock: wanlayer_ndis::kernel::KSpinLock = 0;
    // SAFETY: a valid spin lock, released without being held: the mistake the model catches.
    unsafe { wanlayer_ndis::imports::KeReleaseSpinLock(&mut lock, 0) };
    rras.send_flow(&link, &Flow::udp(53, 40000), 1);
    rras.run_until_idle();
    let violations = rras.verifier().take();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].rule, Rule::LockHeldAcrossCall);
    assert!(violations[0].detail.contains("KeReleaseSpinLock of a lock not held"), "{}", violations[0].detail);
    rras.link_down(&link);
    rras.unload();
    rras.verifier().assert_clean();
}
