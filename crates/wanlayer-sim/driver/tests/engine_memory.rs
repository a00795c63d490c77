//! The engine's memory running out inside wanlayer.sys: this binary's global allocator is
//! [`DriverHeap`], so what the driver's code allocates (the engine's links, its taken packets) is
//! kernel pool tagged `WLrs`, and refusing that tag ([`HEAP_TAG`]) fails exactly the engine's
//! allocations while the frames and NBLs the driver allocates stay available. Hooks run as another
//! driver's code ([`VendorHook`]): their memory is not the driver's.

use std::sync::Arc;

use wanlayer_core::hal::Pool;
use wanlayer_core::hook::{Direction, Hook, PacketContext, Verdict};
use wanlayer_core::NdisStatus;
use wanlayer_kernel_model::low_resources;
use wanlayer_sim::{EngineFilter, Edge, Flow, LifecycleError, LinkParams, Rras};
use wanlayer_sim_driver::heap::{DriverHeap, VendorHook, HEAP_TAG};
use wanlayer_sim_driver::DriverFilter;

#[global_allocator]
static HEAP: DriverHeap = DriverHeap;

fn started() -> Rras<DriverFilter> {
    let rras = Rras::new(DriverFilter::new());
    rras.start().expect("start");
    rras
}

fn finish(mut rras: Rras<DriverFilter>) {
    rras.run_until_idle();
    rras.unload();
    rras.verifier().assert_clean();
    let counts = rras.ledger_counts();
    assert_eq!(counts.home, counts.created, "{counts}");
    assert!(Pool::ALL.iter().all(|pool| rras.filter().pool_charged(*pool) == 0));
}

/// Takes every send.
struct TakeSends;

impl Hook for TakeSends {
    fn on_send(&self, _packet: &mut PacketContext<'_>) -> Verdict {
        Verdict::Take
    }
}

#[test]
fn a_line_up_without_memory_is_untracked_but_still_passed_up() {
    let rras = started();
    low_resources::refuse_pool_tag(HEAP_TAG);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    low_resources::allow_pool_tag(HEAP_TAG);
    assert!(low_resources::refused_by_tag() > 0);
    assert_eq!(link.reported_total_size, Some(1400));
    assert_eq!(rras.protocol(Edge::WanIp).links.len(), 1, "the protocol learns the link all the same");
    rras.send_flow(&link, &Flow::udp(53, 4000), 1);
    let counts = rras.counts(Edge::WanIp).unwrap().counts;
    assert_eq!((counts.line_ups_untracked, counts.send.unmatched), (1, 1));
    finish(rras);
}

#[test]
fn a_take_without_memory_completes_the_send_with_resources() {
    let rras = started();
    rras.engine().add_hook("taker", 10, Arc::new(VendorHook(Arc::new(TakeSends)))).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    low_resources::refuse_pool_tag(HEAP_TAG);
    let ids = rras.send(Edge::WanIp, [link.frame(Direction::Send, &Flow::udp(53, 40000), 0)]);
    low_resources::allow_pool_tag(HEAP_TAG);
    assert!(low_resources::refused_by_tag() > 0);
    assert_eq!(rras.protocol(Edge::WanIp).completion_of(ids[0]), Some(NdisStatus::RESOURCES));
    finish(rras);
}

#[test]
fn an_attach_without_memory_for_its_module_slot_fails_with_resources_and_is_counted() {
    let rras = Rras::new(DriverFilter::new());
    low_resources::refuse_pool_tag(HEAP_TAG);
    let refused = rras.attach(Edge::WanIp);
    low_resources::allow_pool_tag(HEAP_TAG);
    assert_eq!(refused, Err(LifecycleError::Failed(NdisStatus::RESOURCES)));
    assert_eq!(rras.engine().attaches_refused(), 1);
    assert_eq!(rras.engine().modules().count(), 0, "nothing attached");
    rras.start().expect("the next attach makes the slot");
    assert_eq!(rras.engine().modules().count(), rras.edges().len());
    finish(rras);
}
