//! The main session: one run through everything the filter does, for the scenarios that repeat it
//! under every IRQL policy and with every allocation failing in turn.
//!
//! The chain has a [`QueueHook`] at altitude 100 taking everything and a [`TtlRewriteHook`] at 200
//! replacing everything, so sends are replaced, then taken; receives are taken (copied when lent),
//! then replaced once reinjected. On that chain the session brings an IPv4 and an IPv6 link up,
//! passes traffic both ways (plain and lent receives) and reinjects it, takes the IPv4 link down
//! with packets held, pauses and restarts the IPv6 module with packets held, removes the queue
//! hook with packets held, and finally pauses, detaches and unloads.

use std::sync::Arc;

use wanlayer_core::hook::HookInfo;
use wanlayer_core::module::ModuleCounts;
use wanlayer_core::stats::DropReason;
use wanlayer_core::{ReinjectError, ReinjectVerdict};
use wanlayer_sim::{EngineFilter, Edge, Flow, LifecycleError, LinkParams, ReceiveOptions, Rras};
use wanlayer_sim_driver::heap::VendorHook;

use crate::sample_hooks::{Applies, QueueHook, TtlRewriteHook};

/// The TTL (or hop limit) the session's replacing hook writes.
pub const SESSION_TTL: u8 = 33;

/// What the main session saw, gathered before its modules detached.
#[derive(Clone, Debug, Default)]
pub struct SessionReport {
    /// The driver loaded (its engine could be created); nothing else happened otherwise.
    pub loaded: bool,
    /// The counters of each NdisWan module just before the final detach.
    pub counts: Vec<(Edge, ModuleCounts)>,
    /// Links tracked right after both line ups.
    pub links_tracked: usize,
    /// Of those, links whose device name stayed empty: the name the protocol filled in was not kept.
    pub links_without_name: usize,
    /// Replacements the TTL hook asked for and the engine could not make.
    pub replace_errors: u64,
    /// Frames the TTL hook replaced.
    pub replaced: u64,
    /// Reinjections the engine refused.
    pub refused: Vec<ReinjectError>,
    /// The queue hook as the engine reported it on removal.
    pub queue: Option<HookInfo>,
    /// Lifecycle steps that failed.
    pub lifecycle_errors: Vec<LifecycleError>,
}

impl SessionReport {
    /// Drops for `reason`, summed over both modules and directions.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.counts.iter().map(|(_, c)| c.send.drops_by_reason[reason as usize] + c.receive.drops_by_reason[reason as usize]).sum()
    }

    /// Line ups that could not be tracked, summed over both modules.
    pub fn untracked_line_ups(&self) -> u64 {
        self.counts.iter().map(|(_, c)| c.line_ups_untracked).sum()
    }

    /// Device names the engine could not keep, summed over both modules.
    pub fn device_names_lost(&self) -> u64 {
        self.counts.iter().map(|(_, c)| c.device_names_lost).sum()
    }

    /// Packets hooks took, summed over both modules and directions.
    pub fn taken(&self) -> u64 {
        self.counts.iter().map(|(_, c)| c.send.taken + c.receive.taken).sum()
    }
}

/// Runs the main session on a freshly built server, ending with the driver unloaded.
pub fn main_session<F: EngineFilter>(rras: &mut Rras<F>) -> SessionReport {
    let mut report = SessionReport { loaded: rras.is_loaded(), ..SessionReport::default() };
    if report.loaded {
        run(rras, &mut report);
    }
    rras.unload();
    report
}

fn run<F: EngineFilter>(rras: &Rras<F>, report: &mut SessionReport) {
    if let Err(error) = rras.start() {
        report.lifecycle_errors.push(error);
        return;
    }
    let engine = rras.engine();
    let queue = QueueHook::new(Applies::Both);
    let ttl = TtlRewriteHook::new(SESSION_TTL, Applies::Both);
    // Hooks registered directly stand in for vendors' hooks: their code is another driver's.
    let queue_id = engine.add_hook("queue", 100, Arc::new(VendorHook(queue.clone()))).expect("a free hook slot");
    engine.add_hook("ttl", 200, Arc::new(VendorHook(ttl.clone()))).expect("a free hook slot");
    let v4 = rras.link_up(Edge::WanIp, LinkParams::new());
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1500));
    for module in [Edge::WanIp, Edge::WanIpv6].into_iter().filter_map(|edge| rras.module(edge)) {
        engine.visit_links(module, |link| {
            report.links_tracked += 1;
            report.links_without_name += usize::from(link.device_name_utf16().is_empty());
        });
    }
    let (tcp, udp) = (Flow::tcp(443, 50_000), Flow::udp(53, 40_000));
    let mut refuse = |results: Vec<Result<(), ReinjectError>>| report.refused.extend(results.into_iter().filter_map(Result::err));

    for link in [&v4, &v6] {
        rras.send_flow(link, &tcp, 3);
        rras.receive_flow(link, &udp, 3, ReceiveOptions::default());
        rras.receive_flow(link, &udp, 2, ReceiveOptions::resources());
    }
    refuse(queue.reinject_all(engine, ReinjectVerdict::Pass));
    rras.run_until_idle();

    rras.send_flow(&v4, &udp, 2);
    rras.receive_flow(&v4, &udp, 1, ReceiveOptions::default());
    let orphans = queue.drain();
    rras.link_down(&v4);
    refuse(orphans.into_iter().map(|ticket| engine.reinject(ticket, ReinjectVerdict::Pass, Default::default())).collect());

    rras.send_flow(&v6, &udp, 2);
    rras.receive_flow(&v6, &udp, 1, ReceiveOptions::resources());
    let flushed = queue.drain();
    let paused = rras.pause_and_settle(Edge::WanIpv6).and_then(|()| rras.restart(Edge::WanIpv6));
    report.lifecycle_errors.extend(paused.err());
    refuse(flushed.into_iter().map(|ticket| engine.reinject(ticket, ReinjectVerdict::Drop, Default::default())).collect());

    rras.send_flow(&v6, &udp, 2);
    report.queue = engine.remove_hook(queue_id).ok();
    rras.receive_flow(&v6, &udp, 2, ReceiveOptions::default());
    rras.run_until_idle();

    for edge in [Edge::WanIp, Edge::WanIpv6] {
        if let Some(counts) = rras.counts(edge) {
            report.counts.push((edge, counts.counts));
        }
    }
    report.replace_errors = ttl.edit_errors();
    report.replaced = ttl.replaced();
    report.lifecycle_errors.extend(rras.detach_all().err());
}
