//! Sequences of control-device requests to wanlayer.sys's own dispatch routines (the driver in
//! the loop: `wanlayer_sim_driver::DriverFilter`, the driver built for the host over the kernel
//! model), on several handles, with line up / line down, traffic, pauses and hooks in between.
//!
//! Each input runs on a driver of its own: a new [`DriverFilter`] (the kernel model reset, one
//! driver per process at a time), `DriverEntry`, attach and restart of every edge, the program,
//! then `DriverUnload`; nothing of one input reaches the next, so an input always runs the same
//! way.
//!
//! The input is a program: each step's first byte chooses an action (open or close a handle, a
//! device control built from field values or raw bytes — a `METHOD_BUFFERED` IRP —, cancel a
//! pending read through the driver's cancel-safe queue, a link up or down, sends and receives, run
//! the world and the driver's DPCs, pause and restart an edge, add or remove a hook in the engine
//! the driver owns); the bytes after it give the action's values.
//!
//! Invariants:
//! * nothing panics, whatever the requests;
//! * every successful answer parses with `wanlayer-proto`'s parser for its IOCTL, lists and
//!   batches record by record: what the engine emits, the client can read;
//! * a request that pended is completed by the driver once cancelled or once its handle is
//!   cleaned up;
//! * after closing every handle and unloading, the verifier (with what the kernel model saw) found
//!   no violation, every packet is back with its owner and every pool is back to zero.

use crate::bytes::Bytes;
use std::sync::Arc;
use wanlayer_core::hal::Pool;
use wanlayer_core::hook::{Hook, PacketContext, Verdict};
use wanlayer_core::wire::FrameSummary;
use wanlayer_proto::ioctl::*;
use wanlayer_proto::*;
use wanlayer_sim::{Edge, EngineFilter, Flow, HandleId, IoCompletion, IoId, IoOutcome, LinkParams, ReceiveOptions, Rras, SimLink};
use wanlayer_sim_driver::DriverFilter;

/// Steps one input runs at most.
const MAX_STEPS: usize = 96;
/// Handles, links and hooks at most at a time.
const MAX_HANDLES: usize = 6;
const MAX_LINKS: usize = 12;
const MAX_HOOKS: usize = 3;

/// Output buffer sizes requests use: around each answer's fixed sizes.
const OUTPUT_LENS: [usize; 12] = [0, 7, 8, 16, 24, 40, 48, 80, 152, 512, 4096, 65536];

/// Drops sends to or from one port; passes the rest.
struct PortFilter(u16);

impl Hook for PortFilter {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let mut header = [0u8; 64];
        let len = packet.read(0, &mut header);
        let ports = FrameSummary::parse(&header[..len]).ok().and_then(|frame| frame.ip).and_then(|ip| ip.ports);
        if ports.is_some_and(|ports| ports.src == self.0 || ports.dst == self.0) {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

/// A request the driver pended.
struct Pending {
    io: IoId,
    code: u32,
    handle: HandleId,
}

/// The simulated server around the driver and what the program has made so far.
struct World {
    rras: Rras<DriverFilter>,
    handles: Vec<HandleId>,
    links: Vec<SimLink>,
    pending: Vec<Pending>,
    hooks: Vec<wanlayer_core::hook::HookId>,
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let rras = Rras::builder().ethernet().build(DriverFilter::new());
    rras.start().expect("the server starts");
    let mut world = World { rras, handles: Vec::new(), links: Vec::new(), pending: Vec::new(), hooks: Vec::new() };
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        world.step(&mut input);
    }
    world.finish();
}

impl World {
    fn step(&mut self, input: &mut Bytes<'_>) {
        match input.u8() % 16 {
            0 if self.handles.len() < MAX_HANDLES => {
                let access = [Access::NONE, Access::READ, Access::WRITE, Access::READ_WRITE][input.index(4)];
                if let Ok(handle) = self.rras.filter().control_open(access) {
                    self.handles.push(handle);
                }
            }
            1..=5 => self.request(input),
            6 if !self.handles.is_empty() => {
                let handle = self.handles.remove(input.index(self.handles.len()));
                self.close(handle);
            }
            7 if self.links.len() < MAX_LINKS => {
                let edge = if input.bool() { Edge::WanIpv6 } else { Edge::WanIp };
                let params = LinkParams::new().mtu(576 + u32::from(input.u16() % 1500));
                self.links.push(self.rras.link_up(edge, params));
            }
            8 if !self.links.is_empty() => {
                let link = self.links.remove(input.index(self.links.len()));
                self.rras.link_down(&link);
            }
            9 | 10 if !self.links.is_empty() => {
                let link = &self.links[input.index(self.links.len())];
                let flow = if input.bool() { Flow::tcp(input.u16(), input.u16()) } else { Flow::udp(input.u16(), input.u16()) };
                let flow = flow.payload(usize::from(input.u16() % 1400));
                let count = u32::from(input.u8() % 4) + 1;
                if input.bool() {
                    self.rras.send_flow(link, &flow, count);
                } else {
                    self.rras.receive_flow(link, &flow, count, ReceiveOptions::default());
                }
            }
            11 => self.settle(),
            12 if !self.pending.is_empty() => {
                let io = self.pending[input.index(self.pending.len())].io;
                if self.rras.filter().control_cancel(io) {
                    let done = self.collect(io);
                    assert_eq!(done.status, Status::Cancelled, "a cancelled request completes cancelled");
                }
            }
            13 => {
                let edge = Edge::ALL[input.index(Edge::ALL.len())];
                if self.rras.pause_and_settle(edge).is_ok() {
                    self.rras.restart(edge).expect("a paused module restarts");
                }
            }
            14 if self.hooks.len() < MAX_HOOKS => {
                let hook = Arc::new(PortFilter(input.u16()));
                if let Ok(id) = self.rras.engine().add_hook("fuzz", input.u32() % 1000, hook) {
                    self.hooks.push(id);
                }
            }
            15 if !self.hooks.is_empty() => {
                let id = self.hooks.remove(input.index(self.hooks.len()));
                self.rras.engine().remove_hook(id).expect("a registered hook is removed");
            }
            _ => {}
        }
    }

    /// Runs the world until idle, then the driver's timers and DPCs, and reads what completed.
    fn settle(&mut self) {
        self.rras.run_until_idle();
        self.rras.filter().control_service();
        for pending in std::mem::take(&mut self.pending) {
            match self.rras.filter().control_completion(pending.io) {
                Some(done) => {
                    if done.status == Status::Success {
                        check_answer(pending.code, &done.output);
                    }
                }
                None => self.pending.push(pending),
            }
        }
    }

    /// Takes a completion that must be there (cancelled, or its handle cleaned up).
    fn collect(&mut self, io: IoId) -> IoCompletion {
        let at = self.pending.iter().position(|pending| pending.io == io).expect("a request that pended");
        let pending = self.pending.remove(at);
        let done = self.rras.filter().control_completion(io).expect("the driver completed the request");
        if done.status == Status::Success {
            check_answer(pending.code, &done.output);
        }
        done
    }

    /// Closes `handle` (`IRP_MJ_CLEANUP`, then `IRP_MJ_CLOSE`): the driver completes every request
    /// that pended on it.
    fn close(&mut self, handle: HandleId) {
        self.rras.filter().control_close(handle);
        let on_handle: Vec<IoId> = self.pending.iter().filter(|pending| pending.handle == handle).map(|pending| pending.io).collect();
        for io in on_handle {
            self.collect(io);
        }
    }

    /// A handle, mostly an open one.
    fn handle(&self, input: &mut Bytes<'_>) -> HandleId {
        let pick = input.u8();
        match self.handles.get(usize::from(pick) % (self.handles.len() + 1)) {
            Some(handle) => *handle,
            None => HandleId(u64::from(pick)),
        }
    }

    /// Module ids of the attached edges.
    fn modules(&self) -> Vec<u32> {
        Edge::ALL.iter().filter_map(|edge| self.rras.module(*edge)).map(|module| module.0).collect()
    }

    /// The engine's id of a link, when it tracks it.
    fn link_id(&self, link: &SimLink) -> Option<u64> {
        let module = self.rras.module(link.edge)?;
        self.rras.engine().with_link(module, &link.remote, |l| l.id().0)
    }

    /// A scope target, mostly one that exists.
    fn target(&self, input: &mut Bytes<'_>) -> Target {
        let pick = input.u8();
        let modules = self.modules();
        match pick % 5 {
            0 => Target::All,
            1 => Target::Module(modules.get(input.index(modules.len())).copied().unwrap_or(1)),
            2 => {
                let link = self.links.get(input.index(self.links.len())).and_then(|link| self.link_id(link));
                Target::Link(link.unwrap_or(u64::from(pick) + 1))
            }
            3 => match self.hooks.get(input.index(self.hooks.len())) {
                Some(id) => Target::Hook(hook_id(id.slot, id.generation)),
                None => Target::Hook(hook_id(1, 1)),
            },
            _ => Target::Link(input.u64().max(1)),
        }
    }

    /// The input of a request for `code`: built from field values (then perhaps one byte
    /// changed), or raw bytes.
    fn request_input(&self, code: u32, input: &mut Bytes<'_>) -> Vec<u8> {
        let style = input.u8();
        if style.is_multiple_of(8) {
            let len = usize::from(input.u8());
            return input.take(len).to_vec();
        }
        let mut bytes = match Ioctl::from(code) {
            Ioctl::QueryVersion => Vec::new(),
            Ioctl::ListModules | Ioctl::ListHooks | Ioctl::UnsubscribeEvents | Ioctl::CaptureStop => {
                let mut bytes = vec![0u8; HEADER_LEN];
                HeaderOnly.emit(&mut bytes).expect("a header fits");
                bytes
            }
            Ioctl::ListLinks => {
                let modules = self.modules();
                let module = if input.bool() { modules.get(input.index(modules.len())).copied() } else { None };
                let repr = LinkQueryRepr {
                    module,
                    protocol_buffer: input.bool(),
                    cursor: u64::from(input.u8() % 16),
                    max_entries: u32::from(input.u16() % 1100).max(1),
                };
                emit(LinkQuery::<&[u8]>::LEN, |out| repr.emit(&mut LinkQuery::new_unchecked(out)))
            }
            Ioctl::QueryStats | Ioctl::ResetStats => {
                let repr = ScopeRequestRepr { target: self.target(input) };
                emit(ScopeRequest::<&[u8]>::LEN, |out| repr.emit(&mut ScopeRequest::new_unchecked(out)))
            }
            Ioctl::SubscribeEvents => {
                let repr = SubscribeRepr { capacity: u32::from(input.u16() % 300) + 1, mask: (input.u32() & EventKind::ALL_MASK).max(1) };
                emit(Subscribe::<&[u8]>::LEN, |out| repr.emit(&mut Subscribe::new_unchecked(out)))
            }
            Ioctl::ReadEvents | Ioctl::CaptureRead => {
                let repr = ReadRequestRepr { max_records: u32::from(input.u8() % 64) + 1, wait: input.bool() };
                emit(ReadRequest::<&[u8]>::LEN, |out| repr.emit(&mut ReadRequest::new_unchecked(out)))
            }
            Ioctl::CaptureStart => {
                let repr = CaptureStartRepr {
                    target: self.target(input),
                    snap_len: u32::from(input.u16() % 2000) + 1,
                    slots: u32::from(input.u8() % 64) + 1,
                };
                emit(CaptureStart::<&[u8]>::LEN, |out| repr.emit(&mut CaptureStart::new_unchecked(out)))
            }
            Ioctl::Inject => {
                let link = self.links.get(input.index(self.links.len()));
                let link_id = link.and_then(|link| self.link_id(link)).unwrap_or(u64::from(input.u8()) + 1);
                let direction = if input.bool() { Direction::Send } else { Direction::Receive };
                let frame = match link {
                    Some(link) if input.bool() => {
                        let flow = Flow::udp(input.u16(), input.u16()).payload(usize::from(input.u8()));
                        link.frame(wanlayer_core::hook::Direction::Send, &flow, 0)
                    }
                    _ => {
                        let len = usize::from(input.u8()) + 14;
                        input.take(len).to_vec()
                    }
                };
                let repr = InjectRepr { module: None, direction, link_id, frame: &frame };
                emit(repr.buffer_len(), |out| repr.emit(&mut Inject::new_unchecked(out)))
            }
            _ => {
                let len = usize::from(input.u8());
                input.take(len).to_vec()
            }
        };
        if style % 8 == 1 && !bytes.is_empty() {
            let at = input.index(bytes.len());
            bytes[at] ^= input.u8().max(1);
        }
        bytes
    }

    /// One device control on a handle.
    fn request(&mut self, input: &mut Bytes<'_>) {
        let handle = self.handle(input);
        let pick = input.u8();
        let code = match Ioctl::ALL.get(usize::from(pick) % (Ioctl::ALL.len() + 1)) {
            Some(ioctl) => u32::from(*ioctl),
            None => input.u32(),
        };
        let request = self.request_input(code, input);
        let output_len = OUTPUT_LENS[input.index(OUTPUT_LENS.len())];
        match self.rras.filter().control_ioctl(handle, code, &request, output_len) {
            IoOutcome::Complete(done) => {
                assert!(done.output.len() <= output_len, "an answer fits the caller's buffer");
                if done.status == Status::Success {
                    check_answer(code, &done.output);
                }
            }
            IoOutcome::Pending(io) => {
                assert!(matches!(Ioctl::from(code), Ioctl::ReadEvents | Ioctl::DivertRead), "only event and divert reads pend");
                self.pending.push(Pending { io, code, handle });
            }
        }
    }

    /// Closes every handle, unloads, and checks the verifier, the packets and every pool.
    fn finish(mut self) {
        self.settle();
        for handle in std::mem::take(&mut self.handles) {
            self.close(handle);
        }
        assert!(self.pending.is_empty(), "every request completed once its handle closed");
        for id in std::mem::take(&mut self.hooks) {
            self.rras.engine().remove_hook(id).expect("a registered hook is removed");
        }
        self.rras.run_until_idle();
        self.rras.unload();
        self.rras.verifier().assert_clean();
        let ledger = self.rras.ledger_counts();
        assert_eq!(ledger.home, ledger.created, "every packet goes home: {ledger}");
        for (pool, usage) in self.rras.pools() {
            assert_eq!(usage.current, 0, "{pool:?} still charged after unload");
        }
        for pool in Pool::ALL {
            assert_eq!(self.rras.filter().pool_charged(pool), 0, "{pool:?} still charged by the driver after unload");
        }
    }
}

/// A request of `len` bytes written by `write`; zeros where the values cannot be written (a
/// capture of a hook), which the dispatcher must refuse as any malformed request.
fn emit(len: usize, write: impl FnOnce(&mut [u8]) -> Result<()>) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    if write(&mut bytes).is_err() {
        bytes.fill(0);
    }
    bytes
}

/// Parses a successful answer to `code` with the client's parser, record by record.
fn check_answer(code: u32, output: &[u8]) {
    let parsed = match Ioctl::from(code) {
        Ioctl::QueryVersion => VersionInfoRepr::parse(&VersionInfo::new_unchecked(output)).map(|_| ()),
        Ioctl::ListModules => {
            let view = ModuleList::new_unchecked(output);
            ModuleListRepr::parse(&view).map(|_| assert!(view.entries().all(|entry| entry.is_ok())))
        }
        Ioctl::ListLinks => {
            let view = LinkList::new_unchecked(output);
            LinkListRepr::parse(&view).map(|list| assert_eq!(view.entries().filter(Result::is_ok).count(), list.count as usize))
        }
        Ioctl::ListHooks => {
            let view = HookList::new_unchecked(output);
            HookListRepr::parse(&view).map(|_| assert!(view.entries().all(|entry| entry.is_ok())))
        }
        Ioctl::QueryStats => match output.len() {
            len if len == ModuleStats::<&[u8]>::LEN => ModuleStatsRepr::parse(&ModuleStats::new_unchecked(output)).map(|_| ()),
            len if len == LinkStats::<&[u8]>::LEN => LinkStatsRepr::parse(&LinkStats::new_unchecked(output)).map(|_| ()),
            _ => HookStatsRepr::parse(&HookStats::new_unchecked(output)).map(|_| ()),
        },
        Ioctl::SubscribeEvents => SubscriptionRepr::parse(&Subscription::new_unchecked(output)).map(|_| ()),
        Ioctl::ReadEvents => {
            let view = EventBatch::new_unchecked(output);
            EventBatchRepr::parse(&view).map(|_| assert!(view.records().all(|record| record.is_ok())))
        }
        Ioctl::CaptureStart => CaptureSessionRepr::parse(&CaptureSession::new_unchecked(output)).map(|_| ()),
        Ioctl::CaptureRead => {
            let view = CaptureBatch::new_unchecked(output);
            CaptureBatchRepr::parse(&view).map(|batch| assert_eq!(view.records().filter(Result::is_ok).count(), batch.count as usize))
        }
        Ioctl::DivertOpen => DivertInfoRepr::parse(&DivertInfo::new_unchecked(output)).map(|_| ()),
        Ioctl::DivertRead => {
            let view = DivertBatch::new_unchecked(output);
            DivertBatchRepr::parse(&view).map(|batch| assert_eq!(view.packets().filter(Result::is_ok).count(), batch.count as usize))
        }
        Ioctl::DivertVerdicts => DivertResultRepr::parse(&DivertResult::new_unchecked(output)).map(|_| ()),
        _ => {
            assert!(output.is_empty(), "{code:#x} answers nothing: {output:?}");
            Ok(())
        }
    };
    assert_eq!(parsed, Ok(()), "the answer to {code:#x} parses: {output:?}");
}
