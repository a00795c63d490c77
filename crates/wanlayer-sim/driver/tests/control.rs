//! The control device `\\.\WanLayer` through wanlayer.sys's own dispatch routines in the simulator
//! (`DriverFilter`'s `control_*`: create, buffered device controls as IRPs, cancellation, cleanup
//! and close): every IOCTL — listings (100,000 links in batches), statistics and resets, event
//! subscribers with pending reads, cancellation and cleanup, capture with its drop counters, and
//! injection both ways — with the verifier and the kernel model watching every call.

use std::result::Result;
use wanlayer_core::hal::Pool;
use wanlayer_core::hook::{Hook, PacketContext, Verdict};
use wanlayer_core::wire::{EtherType, MacAddress};
use wanlayer_core::NdisStatus;
use wanlayer_kernel_model::low_resources;
use wanlayer_proto::ioctl::*;
use wanlayer_proto::*;
use wanlayer_sim::{
    Edge, EngineFilter, Flow, HandleId, IoCompletion, IoId, IoOutcome, LinkParams, ReceiveOptions, Rras, SimLink, StatusBuffer,
    StatusIndication, WanLineUp,
};
use wanlayer_sim_driver::{DriverFilter, ENGINE_CONFIG, FRAME_TAG};

/// A captured frame: link, direction, injected, bytes, original length.
type Captured = (Option<u64>, Direction, bool, Vec<u8>, u32);

/// A server and the driver's control device, with typed requests.
struct Bench {
    rras: Rras<DriverFilter>,
}

impl Bench {
    fn new() -> Self {
        let rras = Rras::builder().ethernet().build(DriverFilter::new());
        rras.start().expect("the server starts");
        Self { rras }
    }

    fn open(&self, access: Access) -> HandleId {
        self.rras.filter().control_open(access).expect("the control device opens")
    }

    fn ioctl(&self, handle: HandleId, code: u32, input: &[u8], output_len: usize) -> IoOutcome {
        self.rras.filter().control_ioctl(handle, code, input, output_len)
    }

    /// The completion of a request that pended, once the driver completed it.
    fn completion(&self, io: IoId) -> Option<IoCompletion> {
        self.rras.filter().control_completion(io)
    }

    fn call(&self, handle: HandleId, code: u32, input: &[u8], output_len: usize) -> Result<Vec<u8>, Status> {
        match self.ioctl(handle, code, input, output_len) {
            IoOutcome::Complete(done) if done.status == Status::Success => Ok(done.output),
            IoOutcome::Complete(done) => Err(done.status),
            IoOutcome::Pending(io) => panic!("{io:?} pended"),
        }
    }

    fn header_only(&self, handle: HandleId, code: u32, output_len: usize) -> Result<Vec<u8>, Status> {
        let mut input = [0u8; 8];
        HeaderOnly.emit(&mut input).unwrap();
        self.call(handle, code, &input, output_len)
    }

    fn links_batch(
        &self,
        handle: HandleId,
        module: Option<u32>,
        cursor: u64,
        max: u32,
        output_len: usize,
    ) -> Result<(Vec<u64>, LinkListRepr), Status> {
        let mut input = [0u8; 32];
        LinkQueryRepr { module, protocol_buffer: false, cursor, max_entries: max }
            .emit(&mut LinkQuery::new_unchecked(&mut input[..]))
            .unwrap();
        let output = self.call(handle, IOCTL_LIST_LINKS, &input, output_len)?;
        let view = LinkList::new_unchecked(&output[..]);
        let repr = LinkListRepr::parse(&view).expect("a well-formed answer");
        let ids = view.entries().map(|entry| entry.unwrap().link_id).collect();
        Ok((ids, repr))
    }

    fn scope(&self, handle: HandleId, code: u32, target: Target, output_len: usize) -> Result<Vec<u8>, Status> {
        let mut input = [0u8; 24];
        ScopeRequestRepr { target }.emit(&mut ScopeRequest::new_unchecked(&mut input[..])).unwrap();
        self.call(handle, code, &input, output_len)
    }

    fn module_stats(&self, handle: HandleId, module: u32) -> ModuleStatsRepr {
        let output = self.scope(handle, IOCTL_QUERY_STATS, Target::Module(module), 512).unwrap();
        ModuleStatsRepr::parse(&ModuleStats::new_unchecked(&output[..])).unwrap()
    }

    fn link_stats(&self, handle: HandleId, link: u64) -> Result<LinkStatsRepr, Status> {
        let output = self.scope(handle, IOCTL_QUERY_STATS, Target::Link(link), 80)?;
        Ok(LinkStatsRepr::parse(&LinkStats::new_unchecked(&output[..])).unwrap())
    }

    fn subscribe(&self, handle: HandleId, capacity: u32, mask: u32) -> Result<SubscriptionRepr, Status> {
        let mut input = [0u8; 16];
        SubscribeRepr { capacity, mask }.emit(&mut Subscribe::new_unchecked(&mut input[..])).unwrap();
        let output = self.call(handle, IOCTL_SUBSCRIBE_EVENTS, &input, 24)?;
        Ok(SubscriptionRepr::parse(&Subscription::new_unchecked(&output[..])).unwrap())
    }

    fn read_request(max: u32, wait: bool) -> [u8; 16] {
        let mut input = [0u8; 16];
        ReadRequestRepr { max_records: max, wait }.emit(&mut ReadRequest::new_unchecked(&mut input[..])).unwrap();
        input
    }

    fn events(output: &[u8]) -> (Vec<EventRecordRepr>, u64) {
        let view = EventBatch::new_unchecked(output);
        let repr = EventBatchRepr::parse(&view).expect("a well-formed batch");
        (view.records().map(Result::unwrap).collect(), repr.lost)
    }

    fn read_events(&self, handle: HandleId, max: u32) -> (Vec<EventRecordRepr>, u64) {
        let output = self.call(handle, IOCTL_READ_EVENTS, &Self::read_request(max, false), 24 + 80 * max as usize).unwrap();
        Self::events(&output)
    }

    fn start_capture(&self, handle: HandleId, target: Target, snap_len: u32, slots: u32) -> Result<CaptureSessionRepr, Status> {
        let mut input = [0u8; 32];
        CaptureStartRepr { target, snap_len, slots }.emit(&mut CaptureStart::new_unchecked(&mut input[..])).unwrap();
        let output = self.call(handle, IOCTL_CAPTURE_START, &input, 40)?;
        Ok(CaptureSessionRepr::parse(&CaptureSession::new_unchecked(&output[..])).unwrap())
    }

    fn read_capture(&self, handle: HandleId) -> (Vec<Captured>, CaptureBatchRepr) {
        let output = self.call(handle, IOCTL_CAPTURE_READ, &Self::read_request(1000, false), 1 << 20).unwrap();
        let view = CaptureBatch::new_unchecked(&output[..]);
        let repr = CaptureBatchRepr::parse(&view).unwrap();
        let records =
            view.records().map(Result::unwrap).map(|r| (r.link_id, r.direction, r.injected, r.data.to_vec(), r.original_len)).collect();
        (records, repr)
    }

    fn inject(&self, handle: HandleId, link: u64, direction: Direction, frame: &[u8]) -> Result<(), Status> {
        let repr = InjectRepr { module: None, direction, link_id: link, frame };
        let mut input = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Inject::new_unchecked(&mut input[..])).unwrap();
        self.call(handle, IOCTL_INJECT, &input, 0).map(|_| ())
    }

    fn module(&self, edge: Edge) -> u32 {
        self.rras.module(edge).expect("attached").0
    }

    fn link_id(&self, link: &SimLink) -> u64 {
        let module = self.rras.module(link.edge).expect("attached");
        self.rras.engine().with_link(module, &link.remote, |l| l.id().0).expect("tracked")
    }

    /// Closes every handle, unloads, and checks the verifier and every pool of the engine.
    fn finish(mut self, handles: &[HandleId]) {
        for handle in handles {
            self.rras.filter().control_close(*handle);
        }
        self.rras.unload();
        self.rras.verifier().assert_clean();
        for pool in Pool::ALL {
            assert_eq!(self.rras.filter().pool_charged(pool), 0, "{pool:?} still charged");
        }
    }
}

#[test]
fn version_unknown_codes_versions_access_and_malformed_input_get_their_status() {
    let bench = Bench::new();
    let reader = bench.open(Access::READ);
    let output = bench.call(reader, IOCTL_QUERY_VERSION, &[], 64).unwrap();
    let version = VersionInfoRepr::parse(&VersionInfo::new_unchecked(&output[..])).unwrap();
    assert_eq!(version.interface_version, INTERFACE_VERSION);
    assert_eq!(version.max_modules as usize, ENGINE_CONFIG.max_modules);
    let features = version.features.expect("the engine reports what it can do");
    assert_eq!(features.capabilities & (CAP_EVENTS | CAP_CAPTURE | CAP_INJECT), CAP_EVENTS | CAP_CAPTURE | CAP_INJECT);
    assert_eq!(bench.call(reader, IOCTL_QUERY_VERSION, &[], 47), Err(Status::BufferTooSmall));
    assert_eq!(bench.call(reader, IOCTL_QUERY_VERSION, &[0], 64), Err(Status::InvalidParameter));
    assert_eq!(bench.call(reader, 0x0012_6034, &[], 64), Err(Status::InvalidDeviceRequest));
    assert_eq!(bench.call(reader, 0x0022_6000, &[], 64), Err(Status::InvalidDeviceRequest), "another device type");
    let mut v2 = [0u8; 8];
    HeaderOnly.emit(&mut v2).unwrap();
    v2[4] = 2;
    assert_eq!(bench.call(reader, IOCTL_LIST_MODULES, &v2, 4096), Err(Status::RevisionMismatch));
    assert_eq!(bench.call(reader, IOCTL_LIST_MODULES, &v2[..7], 4096), Err(Status::InvalidParameter));
    assert_eq!(bench.scope(reader, IOCTL_RESET_STATS, Target::All, 0), Err(Status::AccessDenied), "a read handle cannot reset");
    assert_eq!(bench.inject(reader, 1, Direction::Send, &[0; 60]), Err(Status::AccessDenied));
    assert_eq!(bench.start_capture(reader, Target::All, 64, 4).err(), Some(Status::AccessDenied));
    let writer = bench.open(Access::WRITE);
    assert_eq!(bench.call(writer, IOCTL_QUERY_VERSION, &[], 64), Err(Status::AccessDenied), "a write-only handle cannot query");
    let output = bench.header_only(reader, IOCTL_LIST_MODULES, 4096).unwrap();
    let list = ModuleList::new_unchecked(&output[..]);
    assert_eq!(ModuleListRepr::parse(&list).unwrap(), ModuleListRepr { count: 3, total: 3 });
    let kinds: Vec<ModuleKind> = list.entries().map(|e| e.unwrap().kind).collect();
    assert_eq!(kinds, [ModuleKind::NdisWanIp, ModuleKind::NdisWanIpv6, ModuleKind::Other]);
    assert!(list.entries().all(|e| e.unwrap().state == ModuleState::Running));
    let output = bench.header_only(reader, IOCTL_LIST_MODULES, 16 + 32).unwrap();
    assert_eq!(ModuleListRepr::parse(&ModuleList::new_unchecked(&output[..])).unwrap(), ModuleListRepr { count: 1, total: 3 });
    assert_eq!(bench.header_only(reader, IOCTL_LIST_MODULES, 15), Err(Status::BufferTooSmall));
    bench.finish(&[reader, writer]);
}

#[test]
fn arbitrary_bytes_in_every_request_never_panic_the_dispatcher() {
    let bench = Bench::new();
    let handle = bench.open(Access::READ_WRITE);
    let mut seed = 0x1234_5678u32;
    for ioctl in Ioctl::ALL {
        for len in [0usize, 7, 8, 16, 24, 31, 32, 40, 64, 100] {
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            for output_len in [0, 8, 100, 4096] {
                let _ = bench.ioctl(handle, u32::from(ioctl), &input, output_len);
            }
        }
    }
    bench.finish(&[handle]);
}

/// Brings `count` links up on `edge` with addresses of their own (NdisWan's `RemoteAddress`).
fn many_links(rras: &Rras<DriverFilter>, edge: Edge, first: u32, count: u32) {
    for n in first..first + count {
        let b = n.to_be_bytes();
        let line_up = WanLineUp {
            link_speed_100bps: 1000,
            maximum_total_size: 1400,
            quality: wanlayer_core::link::WanQuality::Reliable,
            send_window: 8,
            remote_address: MacAddress([0x3e, b[1], b[2], b[3], 0x41, 0x53]),
            local_address: MacAddress([0; 6]),
            protocol_type: if edge == Edge::WanIp { EtherType::Ipv4 } else { EtherType::Ipv6 },
            device_name: Vec::new(),
            protocol_buffer: Vec::new(),
        };
        rras.indicate_status(edge, StatusIndication::new(NdisStatus::WAN_LINE_UP, StatusBuffer::LineUp(line_up)));
    }
}

#[test]
fn a_hundred_thousand_links_are_listed_in_batches_with_a_cursor_each_exactly_once() {
    let bench = Bench::new();
    many_links(&bench.rras, Edge::WanIp, 0, 50_000);
    many_links(&bench.rras, Edge::WanIpv6, 50_000, 50_000);
    let handle = bench.open(Access::READ);
    let (mut cursor, mut seen, mut batches) = (0, Vec::with_capacity(100_000), 0);
    loop {
        let (ids, repr) = bench.links_batch(handle, None, cursor, 1024, 1 << 20).unwrap();
        batches += 1;
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids");
        assert!(ids.first().is_none_or(|first| *first > cursor), "ids above the cursor");
        seen.extend_from_slice(&ids);
        cursor = repr.next_cursor;
        if repr.end {
            break;
        }
        assert!(batches < 200, "the enumeration ends");
    }
    assert_eq!(seen.len(), 100_000);
    assert_eq!(batches, 98, "1,024 links a batch");
    assert_eq!(seen, (1..=100_000).collect::<Vec<u64>>(), "every link exactly once, in id order");

    let module = bench.module(Edge::WanIpv6);
    let (ids, repr) = bench.links_batch(handle, Some(module), 0, 10, 1 << 20).unwrap();
    assert_eq!((ids, repr.end), ((50_001..=50_010).collect::<Vec<u64>>(), false), "one module's links");
    let (ids, repr) = bench.links_batch(handle, None, 0, 1024, 24 + 136 * 3).unwrap();
    assert!(!ids.is_empty() && ids.len() < 3, "entries carry device names, so fewer than three fit: {ids:?}");
    assert_eq!(
        (ids, repr.next_cursor, repr.end),
        ((1..=repr.next_cursor).collect::<Vec<u64>>(), repr.next_cursor, false),
        "as many as fit"
    );
    assert_eq!(bench.links_batch(handle, None, 0, 10, 100).err(), Some(Status::BufferTooSmall));
    assert_eq!(bench.links_batch(handle, Some(0x00ff_0001), 0, 10, 4096).err(), Some(Status::NotFound));
    let (ids, repr) = bench.links_batch(handle, None, 100_000, 10, 4096).unwrap();
    assert!(ids.is_empty() && repr.end, "past the last link: an empty, final batch");
    bench.finish(&[handle]);
}

#[test]
fn link_entries_carry_every_field_and_the_protocol_buffer_on_request() {
    let bench = Bench::new();
    let link = bench.rras.link_up(Edge::WanIp, LinkParams::new().mtu(1500).speed_bps(2_048_000));
    bench.rras.send_flow(&link, &Flow::udp(53, 4000), 3);
    bench.rras.run_until_idle();
    let handle = bench.open(Access::READ);
    let mut input = [0u8; 32];
    LinkQueryRepr { module: None, protocol_buffer: true, cursor: 0, max_entries: 10 }
        .emit(&mut LinkQuery::new_unchecked(&mut input[..]))
        .unwrap();
    let output = bench.call(handle, IOCTL_LIST_LINKS, &input, 1 << 16).unwrap();
    let view = LinkList::new_unchecked(&output[..]);
    assert!(LinkListRepr::parse(&view).unwrap().end);
    let entries: Vec<LinkEntryRepr<'_>> = view.entries().collect::<wanlayer_proto::Result<_>>().unwrap();
    let [entry] = entries.as_slice() else { panic!("one link: {entries:?}") };
    assert_eq!(entry.remote_address, link.remote.0);
    assert_eq!(entry.local_address, link.local.0, "the protocol's in/out fields are recorded");
    assert_eq!((entry.link_speed_100bps, entry.maximum_total_size, entry.quality), (20_480, 1500, Quality::Reliable));
    assert_eq!((entry.protocol_type, entry.send.packets), (0x0800, 3));
    assert_eq!(entry.device_name_chars().collect::<String>(), link.device_name);
    assert_eq!(entry.protocol_buffer.len(), 600);
    assert_eq!(entry.ipv4, Some([10, 100, 0, 1]), "best effort, where the sample reads it");
    bench.finish(&[handle]);
}

/// Counts what it sees; drops sends to port 23.
struct Telnet;

impl Hook for Telnet {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let mut header = [0u8; 64];
        let len = packet.read(0, &mut header);
        let blocked = wanlayer_core::wire::FrameSummary::parse(&header[..len])
            .ok()
            .and_then(|frame| frame.ip)
            .and_then(|ip| ip.ports)
            .is_some_and(|ports| ports.dst == 23 || ports.src == 23);
        if blocked {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

#[test]
fn statistics_of_modules_links_and_hooks_and_their_reset() {
    let bench = Bench::new();
    let hook = bench.rras.engine().add_hook("telnet", 100, std::sync::Arc::new(Telnet)).unwrap();
    let link = bench.rras.link_up(Edge::WanIp, LinkParams::new());
    bench.rras.send_flow(&link, &Flow::tcp(23, 5000), 2);
    bench.rras.send_flow(&link, &Flow::udp(53, 5000), 3);
    bench.rras.receive_flow(&link, &Flow::udp(53, 5000), 4, ReceiveOptions::default());
    bench.rras.run_until_idle();
    let reader = bench.open(Access::READ);
    let writer = bench.open(Access::READ_WRITE);
    let module = bench.module(Edge::WanIp);
    let stats = bench.module_stats(reader, module);
    assert_eq!((stats.send.packets, stats.send.drops, stats.send.drops_by_reason[0], stats.receive.packets), (5, 2, 2, 4));
    assert_eq!(stats.line_ups, 1);
    let id = bench.link_id(&link);
    let link_stats = bench.link_stats(reader, id).unwrap();
    assert_eq!((link_stats.module, link_stats.send.packets, link_stats.send.drops, link_stats.receive.packets), (module, 5, 2, 4));
    let wire_hook = hook_id(hook.slot, hook.generation);
    let output = bench.scope(reader, IOCTL_QUERY_STATS, Target::Hook(wire_hook), 152).unwrap();
    let hook_stats = HookStatsRepr::parse(&HookStats::new_unchecked(&output[..])).unwrap();
    assert_eq!((hook_stats.altitude, hook_stats.send.seen, hook_stats.send.dropped, hook_stats.line_ups), (100, 5, 2, 1));
    let output = bench.header_only(reader, IOCTL_LIST_HOOKS, 1024).unwrap();
    let hooks: Vec<HookEntryRepr> = HookList::new_unchecked(&output[..]).entries().map(Result::unwrap).collect();
    assert_eq!((hooks.len(), hooks[0].id, hooks[0].name.as_str()), (1, wire_hook, "telnet"));

    assert_eq!(bench.link_stats(reader, 999).err(), Some(Status::NotFound));
    assert_eq!(bench.scope(reader, IOCTL_QUERY_STATS, Target::Module(0x0009_0009), 512).err(), Some(Status::NotFound));
    assert_eq!(bench.scope(reader, IOCTL_QUERY_STATS, Target::Hook(hook_id(3, 1)), 512).err(), Some(Status::NotFound));
    assert_eq!(bench.scope(reader, IOCTL_QUERY_STATS, Target::All, 512).err(), Some(Status::InvalidParameter));
    assert_eq!(bench.scope(reader, IOCTL_QUERY_STATS, Target::Module(module), 100).err(), Some(Status::BufferTooSmall));

    bench.scope(writer, IOCTL_RESET_STATS, Target::Link(id), 0).unwrap();
    assert_eq!(bench.link_stats(reader, id).unwrap().send.packets, 0);
    assert_eq!(bench.module_stats(reader, module).send.packets, 5, "a link reset leaves its module alone");
    bench.scope(writer, IOCTL_RESET_STATS, Target::Hook(wire_hook), 0).unwrap();
    let output = bench.scope(reader, IOCTL_QUERY_STATS, Target::Hook(wire_hook), 152).unwrap();
    assert_eq!(HookStatsRepr::parse(&HookStats::new_unchecked(&output[..])).unwrap().send.seen, 0);
    bench.rras.send_flow(&link, &Flow::udp(53, 5000), 1);
    bench.rras.run_until_idle();
    bench.scope(writer, IOCTL_RESET_STATS, Target::Module(module), 0).unwrap();
    assert_eq!(bench.module_stats(reader, module).send.packets, 0);
    assert_eq!(bench.link_stats(reader, id).unwrap().send.packets, 0, "a module reset covers its links");
    bench.rras.send_flow(&link, &Flow::udp(53, 5000), 1);
    bench.rras.run_until_idle();
    bench.scope(writer, IOCTL_RESET_STATS, Target::All, 0).unwrap();
    assert_eq!(bench.module_stats(reader, module), ModuleStatsRepr { module, ..Default::default() });
    assert_eq!(bench.scope(writer, IOCTL_RESET_STATS, Target::Link(999), 0).err(), Some(Status::NotFound));
    bench.rras.engine().remove_hook(hook).unwrap();
    bench.finish(&[reader, writer]);
}

#[test]
fn several_subscribers_see_the_same_events_each_losing_only_what_its_ring_cannot_hold() {
    let bench = Bench::new();
    let big = bench.open(Access::READ);
    let small = bench.open(Access::READ);
    let links_only = bench.open(Access::READ);
    let first = bench.subscribe(big, 64, EventKind::ALL_MASK).unwrap();
    bench.subscribe(small, 2, EventKind::ALL_MASK).unwrap();
    bench.subscribe(links_only, 64, EventKind::LineUp.mask_bit() | EventKind::LineDown.mask_bit()).unwrap();
    assert_eq!(bench.subscribe(big, 64, 1).err(), Some(Status::InvalidDeviceState), "one subscription per handle");
    assert_eq!(first.next_sequence, 6, "attach ×3 and restart ×3 came before");
    let links: Vec<SimLink> = (0..3).map(|_| bench.rras.link_up(Edge::WanIp, LinkParams::new())).collect();
    bench.rras.link_down(&links[0]);
    bench.rras.pause_and_settle(Edge::WanIpv6).unwrap();
    bench.rras.restart(Edge::WanIpv6).unwrap();
    let (all, lost) = bench.read_events(big, 100);
    let kinds: Vec<EventKind> = all.iter().map(|r| r.body.kind()).collect();
    use EventKind::*;
    assert_eq!(kinds, [LineUp, LineUp, LineUp, LineDown, ModulePaused, ModuleRestarted]);
    assert_eq!(lost, 0);
    assert_eq!(all.iter().map(|r| r.sequence).collect::<Vec<_>>(), (6..12).collect::<Vec<u64>>());
    let (kept, lost) = bench.read_events(small, 100);
    assert_eq!((kept.len(), lost), (2, 4), "the small ring kept the two oldest and counted the rest");
    assert_eq!(kept, all[..2], "the same events, the same sequence numbers");
    let (filtered, lost) = bench.read_events(links_only, 100);
    assert_eq!((filtered.len(), lost), (4, 0));
    let EventBody::LineDown(down) = filtered[3].body else { panic!("a line down: {:?}", filtered[3]) };
    assert_eq!(down.remote_address, links[0].remote.0);
    bench.rras.link_down(&links[1]);
    let (next, lost) = bench.read_events(small, 100);
    assert_eq!((next.len(), next[0].sequence, lost), (1, 12, 4), "reading made room; the lost count stays");
    bench.header_only(small, IOCTL_UNSUBSCRIBE_EVENTS, 0).unwrap();
    assert_eq!(bench.header_only(small, IOCTL_UNSUBSCRIBE_EVENTS, 0).err(), Some(Status::InvalidDeviceState));
    assert_eq!(bench.call(small, IOCTL_READ_EVENTS, &Bench::read_request(1, false), 104).err(), Some(Status::InvalidDeviceState));
    assert_eq!(bench.call(big, IOCTL_READ_EVENTS, &Bench::read_request(1, false), 103).err(), Some(Status::BufferTooSmall));
    assert_eq!(bench.rras.engine().control().sessions().subscribers, 2);
    bench.finish(&[big, small, links_only]);
}

#[test]
fn a_pending_read_completes_when_an_event_arrives_and_a_cancelled_one_never_does() {
    let bench = Bench::new();
    let handle = bench.open(Access::READ);
    bench.subscribe(handle, 16, EventKind::ALL_MASK).unwrap();
    let wait = Bench::read_request(8, true);
    let IoOutcome::Pending(first) = bench.ioctl(handle, IOCTL_READ_EVENTS, &wait, 24 + 80 * 8) else { panic!("pends") };
    let IoOutcome::Pending(second) = bench.ioctl(handle, IOCTL_READ_EVENTS, &wait, 24 + 80 * 8) else { panic!("pends") };
    bench.rras.filter().control_service();
    assert!(bench.completion(first).is_none() && bench.completion(second).is_none(), "nothing woke them");
    let link = bench.rras.link_up(Edge::WanIpv6, LinkParams::new());
    bench.rras.filter().control_service();
    let done = bench.completion(first).expect("the event completes the oldest read");
    assert_eq!(done.status, Status::Success);
    let (records, _) = Bench::events(&done.output);
    assert!(matches!(records.as_slice(), [EventRecordRepr { body: EventBody::LineUp(up), .. }] if up.remote_address == link.remote.0));
    assert!(bench.completion(second).is_none(), "the next pends again");
    assert!(bench.rras.filter().control_cancel(second));
    assert_eq!(bench.completion(second).map(|c| c.status), Some(Status::Cancelled));
    assert!(!bench.rras.filter().control_cancel(second), "cancelled once");
    bench.rras.link_down(&link);
    bench.rras.filter().control_service();
    let (records, _) = bench.read_events(handle, 8);
    assert!(
        matches!(records.as_slice(), [EventRecordRepr { body: EventBody::LineDown(_), .. }]),
        "the cancelled read is gone; the event waited in the ring: {records:?}"
    );
    let IoOutcome::Pending(third) = bench.ioctl(handle, IOCTL_READ_EVENTS, &wait, 24 + 80 * 8) else { panic!("pends") };
    bench.header_only(handle, IOCTL_UNSUBSCRIBE_EVENTS, 0).unwrap();
    bench.rras.filter().control_service();
    assert_eq!(bench.completion(third).map(|c| c.status), Some(Status::InvalidDeviceState), "unsubscribing ends pending reads");
    bench.finish(&[handle]);
}

#[test]
fn cleanup_with_reads_pending_cancels_them_and_frees_the_ring() {
    let bench = Bench::new();
    let event_pool = || bench.rras.filter().pool_charged(Pool::Event);
    let before = event_pool();
    let handle = bench.open(Access::READ_WRITE);
    bench.subscribe(handle, 1024, EventKind::ALL_MASK).unwrap();
    bench.start_capture(handle, Target::All, 128, 64).unwrap();
    assert!(event_pool() > before);
    let wait = Bench::read_request(4, true);
    let pending: Vec<_> = (0..3)
        .map(|_| match bench.ioctl(handle, IOCTL_READ_EVENTS, &wait, 24 + 320) {
            IoOutcome::Pending(io) => io,
            other => panic!("pends: {other:?}"),
        })
        .collect();
    bench.rras.filter().control_close(handle);
    for io in pending {
        assert_eq!(bench.completion(io).map(|c| c.status), Some(Status::Cancelled), "cleanup cancels what is pending");
    }
    let sessions = bench.rras.engine().control().sessions();
    assert_eq!((sessions.subscribers, sessions.captures), (0, 0));
    let ring_room = bench.rras.filter().pool_charged(Pool::Control);
    assert!(event_pool() - before < 16 * 200 && ring_room < 8 * 200, "only the session tables stay until unload");
    let link = bench.rras.link_up(Edge::WanIp, LinkParams::new());
    bench.rras.send_flow(&link, &Flow::udp(1, 2), 2);
    bench.rras.run_until_idle();
    bench.rras.filter().control_service();
    bench.finish(&[]);
}

#[test]
fn capture_per_link_and_per_module_counts_ring_overflow_and_truncation() {
    let bench = Bench::new();
    let first = bench.rras.link_up(Edge::WanIp, LinkParams::new());
    let second = bench.rras.link_up(Edge::WanIp, LinkParams::new());
    let by_link = bench.open(Access::READ_WRITE);
    let by_module = bench.open(Access::READ_WRITE);
    let link_id = bench.link_id(&first);
    let session = bench.start_capture(by_link, Target::Link(link_id), 60, 4).unwrap();
    assert_eq!(session.capture.slots, 4);
    bench.start_capture(by_module, Target::Module(bench.module(Edge::WanIp)), 1500, 64).unwrap();
    assert_eq!(bench.start_capture(by_link, Target::All, 60, 4).err(), Some(Status::InvalidDeviceState), "one capture per handle");
    let flow = Flow::udp(53, 4000).payload(100);
    bench.rras.send_flow(&first, &flow, 6);
    bench.rras.receive_flow(&first, &flow, 4, ReceiveOptions::resources());
    bench.rras.send_flow(&second, &flow, 2);
    bench.rras.run_until_idle();
    let (records, batch) = bench.read_capture(by_link);
    assert_eq!(records.len(), 4, "the ring holds four");
    assert_eq!((batch.captured, batch.dropped, batch.truncated), (4, 6, 4), "six found it full; every frame was cut to 60 bytes");
    assert!(records.iter().all(|(link, direction, injected, data, original)| *link == Some(link_id)
        && *direction == Direction::Send
        && !injected
        && data.len() == 60
        && *original > 60));
    assert_eq!(records[0].3[..60], first.frame(wanlayer_core::hook::Direction::Send, &flow, 0)[..60], "the bytes as sent");
    let (records, batch) = bench.read_capture(by_module);
    assert_eq!((records.len(), batch.dropped, batch.truncated), (12, 0, 0), "the module's every frame, whole");
    assert_eq!(records.iter().filter(|r| r.1 == Direction::Receive).count(), 4);
    assert_eq!(records.iter().filter(|r| r.0 == Some(bench.link_id(&second))).count(), 2);
    bench.rras.send_flow(&first, &flow, 1);
    bench.rras.run_until_idle();
    assert_eq!(bench.read_capture(by_link).0.len(), 1, "reading made room");
    bench.header_only(by_link, IOCTL_CAPTURE_STOP, 0).unwrap();
    assert_eq!(bench.call(by_link, IOCTL_CAPTURE_READ, &Bench::read_request(1, false), 4096).err(), Some(Status::InvalidDeviceState));
    assert_eq!(bench.start_capture(by_link, Target::Link(999), 60, 4).err(), Some(Status::NotFound));
    assert_eq!(bench.call(by_module, IOCTL_CAPTURE_READ, &Bench::read_request(1, true), 4096).err(), Some(Status::InvalidParameter));
    bench.finish(&[by_link, by_module]);
}

#[test]
fn injection_both_ways_uses_the_links_addresses_and_is_refused_when_it_cannot_be_done() {
    let bench = Bench::new();
    let link = bench.rras.link_up(Edge::WanIp, LinkParams::new());
    let handle = bench.open(Access::READ_WRITE);
    bench.start_capture(handle, Target::All, 2000, 16).unwrap();
    let id = bench.link_id(&link);
    let mut frame = link.frame(wanlayer_core::hook::Direction::Send, &Flow::udp(53, 4000), 0);
    frame[..12].fill(0xee);
    bench.inject(handle, id, Direction::Send, &frame).unwrap();
    bench.inject(handle, id, Direction::Receive, &frame).unwrap();
    bench.rras.run_until_idle();
    let sent = bench.rras.miniport(Edge::WanIp).sent;
    let [down] = sent.as_slice() else { panic!("one frame reached NdisWan: {sent:?}") };
    assert_eq!(down.frame[..6], link.remote.0, "send: destination is the link's remote address");
    assert_eq!(down.frame[6..12], link.local.0);
    assert_eq!(down.frame[12..], frame[12..]);
    let received = bench.rras.protocol(Edge::WanIp).received;
    let [up] = received.as_slice() else { panic!("one frame reached the IP layer") };
    assert_eq!((&up.frame[..6], &up.frame[6..12]), (&link.local.0[..], &link.remote.0[..]), "receive: the reverse");
    let stats = bench.module_stats(handle, bench.module(Edge::WanIp));
    assert_eq!((stats.send.injected, stats.receive.injected, stats.send.packets, stats.injections_refused), (1, 1, 0, 0));
    assert_eq!(bench.link_stats(handle, id).unwrap().send.packets, 1, "injected traffic is the link's traffic");
    let (records, _) = bench.read_capture(handle);
    assert_eq!(records.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), [(Direction::Send, true), (Direction::Receive, true)]);

    assert_eq!(bench.inject(handle, 999, Direction::Send, &frame).err(), Some(Status::NotFound));
    bench.rras.pause_and_settle(Edge::WanIp).unwrap();
    assert_eq!(
        bench.inject(handle, id, Direction::Send, &frame).err(),
        Some(Status::InvalidDeviceState),
        "a paused module originates nothing"
    );
    bench.rras.restart(Edge::WanIp).unwrap();
    low_resources::refuse_pool_tag(FRAME_TAG);
    assert_eq!(bench.inject(handle, id, Direction::Send, &frame).err(), Some(Status::InsufficientResources));
    low_resources::allow_pool_tag(FRAME_TAG);
    assert_eq!(bench.module_stats(handle, bench.module(Edge::WanIp)).injections_refused, 2, "refusals on a known module are counted");
    let short = InjectRepr { module: None, direction: Direction::Send, link_id: id, frame: &frame[..14] };
    let mut input = vec![0u8; short.buffer_len()];
    short.emit(&mut Inject::new_unchecked(&mut input[..])).unwrap();
    input[14] = 13;
    input[0] -= 1;
    assert_eq!(
        bench.call(handle, IOCTL_INJECT, &input[..input.len() - 1], 0).err(),
        Some(Status::InvalidParameter),
        "shorter than Ethernet"
    );
    bench.finish(&[handle]);
}

#[test]
fn capture_costs_nothing_when_nobody_listens_and_the_version_reports_the_drivers_engine() {
    let bench = Bench::new();
    let handle = bench.open(Access::READ_WRITE);
    let link = bench.rras.link_up(Edge::WanIp, LinkParams::new());
    let reads_before = bench.rras.trace().len();
    bench.rras.send_flow(&link, &Flow::udp(1, 2), 10);
    bench.rras.run_until_idle();
    assert!(bench.rras.trace().len() > reads_before);
    assert_eq!(bench.rras.engine().control().sessions().captures, 0);
    let version = bench.call(handle, IOCTL_QUERY_VERSION, &[], 48).unwrap();
    let version = VersionInfoRepr::parse(&VersionInfo::new_unchecked(&version[..])).unwrap();
    assert_eq!((version.max_modules as usize, version.event_capacity as usize), (ENGINE_CONFIG.max_modules, ENGINE_CONFIG.event_capacity));
    bench.subscribe(handle, 4, EventKind::ALL_MASK).unwrap();
    bench.rras.link_down(&link);
    assert_eq!(bench.read_events(handle, 4).0.len(), 1, "a subscriber's ring has what came after it subscribed");
    bench.finish(&[handle]);
}
