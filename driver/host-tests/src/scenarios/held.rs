//! Packets a hook holds, released by the module's own events: a user-mode hook (divert, opened
//! through the control device's `IOCTL_DIVERT_OPEN` on a read-write handle) takes the UDP sends
//! of a WAN link, and the engine holds them under their tickets; then the link's line down, or
//! the module's pause, releases every held packet — each completed to the protocol exactly once,
//! none sent down; the hook's reader had their tickets, and its verdicts on them afterwards are
//! refused — and the handle's cleanup removes the hook. Nothing is left at unload.

use super::Target;
use std::ptr;

use super::control::{self, Request};
use super::datapath::{self, Frame};
use super::lifecycle;
use crate::ndiswan::{LineDown, LineUp, NDISWANIP, RAS_MAC, REMOTE, WAN_LINE_UP};

use wanlayer_kernel_model::invoke;
use wanlayer_kernel_model::{self as model, Event};
use wanlayer_ndis::io::FileObjectLayout;
use wanlayer_ndis::kernel::{FILE_READ_DATA, FILE_WRITE_DATA, IRP_MJ_DEVICE_CONTROL};
use wanlayer_ndis::lightweight_filter::SendFlags;
use wanlayer_ndis::types::ContextHandle;
use wanlayer_proto::ioctl::{IOCTL_DIVERT_OPEN, IOCTL_DIVERT_READ, IOCTL_DIVERT_VERDICTS};
use wanlayer_proto::{
    divert_packet_len, DivertAction, DivertBatch, DivertBatchRepr, DivertInfo, DivertOpen, DivertOpenRepr, DivertResult, DivertResultRepr,
    DivertVerdict, DivertVerdictRepr, DivertVerdicts, DivertVerdictsRepr, FailPolicy, ReadRequest, ReadRequestRepr, DIVERT_SEND,
};

/// UDP sends the hook holds.
const HELD: usize = 3;

/// What releases the held packets.
#[derive(Clone, Copy, Debug)]
enum Release {
    /// The link's `NDIS_STATUS_WAN_LINE_DOWN`.
    LineDown,
    /// The module's `FilterPause`.
    Pause,
}

/// The `IOCTL_DIVERT_OPEN` input: a send hook diverting UDP, fail open, a minute's time limit
/// (so that nothing expires during the scenario).
fn divert_open_input() -> Vec<u8> {
    let rule = wanlayer_rules::RuleSource { id: 1, priority: 0, action: wanlayer_rules::Action::Divert, filter: "udp" };
    let blob = wanlayer_rules::compile(&[rule]).expect("the filter compiles");
    let repr = DivertOpenRepr {
        altitude: 2000,
        directions: DIVERT_SEND,
        fail_policy: FailPolicy::Pass,
        queue_len: 16,
        timeout_ms: 60_000,
        max_frame: 1600,
        blob: &blob,
    };
    let mut input = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DivertOpen::new_unchecked(&mut input[..])).expect("the request fits");
    input
}

/// The tickets (module, serial) a `DIVERT_READ` that does not wait delivers on `file`.
fn read_tickets(file: *mut FileObjectLayout) -> Vec<(u32, u64)> {
    let mut input = [0u8; 16];
    ReadRequestRepr { max_records: 16, wait: false }.emit(&mut ReadRequest::new_unchecked(&mut input[..])).expect("read");
    let room = DivertBatch::<&[u8]>::LEN + 16 * divert_packet_len(1600).expect("a frame length");
    let mut read = Request::device_control(file, IOCTL_DIVERT_READ, &input, room);
    assert_eq!(read.send(IRP_MJ_DEVICE_CONTROL), 0, "DIVERT_READ: {:?}", model::log());
    let (status, written) = read.completion(&model::take_events()).expect("the read completed");
    assert_eq!(status, 0);
    let view = DivertBatch::new_unchecked(&read.buffer[..written]);
    DivertBatchRepr::parse(&view).expect("a batch");
    view.packets().map(|packet| packet.expect("a packet record").meta).map(|meta| (meta.module, meta.serial)).collect()
}

/// `DIVERT_VERDICTS` passing each of `tickets` on `file`: (applied, refused).
fn pass(file: *mut FileObjectLayout, tickets: &[(u32, u64)]) -> (u32, u32) {
    let records: Vec<DivertVerdictRepr<'_>> =
        tickets.iter().map(|&(module, serial)| DivertVerdictRepr { module, serial, action: DivertAction::Pass, frame: &[] }).collect();
    let size = DivertVerdicts::<&[u8]>::LEN + records.iter().map(|record| record.buffer_len().expect("a record")).sum::<usize>();
    let mut input = vec![0u8; size];
    let count = u32::try_from(records.len()).expect("few");
    DivertVerdictsRepr { count, size }.emit(&mut DivertVerdicts::new_unchecked(&mut input[..])).expect("verdicts");
    let mut at = DivertVerdicts::<&[u8]>::LEN;
    for record in &records {
        let len = record.buffer_len().expect("a record");
        record.emit(&mut DivertVerdict::new_unchecked(&mut input[at..at + len])).expect("a verdict");
        at += len;
    }
    let mut verdicts = Request::device_control(file, IOCTL_DIVERT_VERDICTS, &input, DivertResult::<&[u8]>::LEN);
    assert_eq!(verdicts.send(IRP_MJ_DEVICE_CONTROL), 0, "DIVERT_VERDICTS: {:?}", model::log());
    let (status, written) = verdicts.completion(&model::take_events()).expect("the verdicts completed");
    assert_eq!(status, 0);
    let result = DivertResultRepr::parse(&DivertResult::new_unchecked(&verdicts.buffer[..written])).expect("a result");
    (result.applied, result.refused)
}

/// A UDP frame of the link: addressed to its remote address, as the IP layer sends on NdisWan.
fn link_frame(index: u8) -> Frame {
    let mut bytes = datapath::payload(index);
    bytes[..6].copy_from_slice(&REMOTE);
    datapath::frame(&bytes)
}

/// The NBLs among `events` that went to the protocol (completed) and to the miniport (sent down),
/// each in the order of the events.
fn completed_and_sent(events: &[Event], filter: usize) -> (Vec<usize>, Vec<usize>) {
    let (mut completed, mut sent) = (Vec::new(), Vec::new());
    for event in events {
        match event {
            Event::SendsCompleted { filter: of, nbls } if *of == filter => completed.extend(nbls),
            Event::SentDown { filter: of, nbls } if *of == filter => sent.extend(nbls),
            _ => {}
        }
    }
    (completed, sent)
}

fn released_by(target: &Target, release: Release) {
    let _run = model::begin();
    let loaded = lifecycle::load(target);
    let handlers = loaded.handlers;
    let mut wan = lifecycle::adapter(NDISWANIP, 0, RAS_MAC);
    let (status, filter) = lifecycle::attach(&loaded, &mut wan);
    assert_eq!(status, 0, "attach: {:?}", model::log());
    let context: ContextHandle = model::module_context(filter).expect("context");
    let module = filter.as_raw().addr();
    // SAFETY: (this and each handler call below) the module's context, as NDIS passes it, with
    // structures valid for the call.
    assert_eq!(unsafe { invoke::call(handlers.restart.expect("restart"), (context, ptr::null_mut()),) }, 0);

    let line_up = LineUp::new();
    // SAFETY: as above.
    unsafe { invoke::call(handlers.status.expect("status"), (context, line_up.indication())) };
    assert_eq!(model::take_events(), [Event::Status { filter: module, code: WAN_LINE_UP }]);

    let (file, status) = control::open(FILE_READ_DATA | FILE_WRITE_DATA);
    assert_eq!(status, 0);
    let mut divert = Request::device_control(file.ptr(), IOCTL_DIVERT_OPEN, &divert_open_input(), DivertInfo::<&[u8]>::LEN);
    assert_eq!(divert.send(IRP_MJ_DEVICE_CONTROL), 0, "DIVERT_OPEN: {:?}", model::log());
    model::take_events();

    // The sends are taken by the hook: none goes down, none completes.
    let frames: Vec<Frame> = (0..HELD).map(|index| link_frame(u8::try_from(index).expect("few"))).collect();
    let mut held: Vec<usize> = frames.iter().map(|frame| frame.nbl.ptr().addr()).collect();
    for frame in &frames {
        // SAFETY: FilterSendNetBufferLists with one NBL: the protocol's, the filter's until completed.
        unsafe { invoke::call(handlers.send_net_buffer_lists.expect("send"), (context, frame.nbl.ptr(), 0, SendFlags::default())) };
    }
    model::run_dpcs();
    let events = model::take_events();
    assert_eq!(completed_and_sent(&events, module), (Vec::new(), Vec::new()), "held by the hook: {events:?}");
    let tickets = read_tickets(file.ptr());
    assert_eq!(tickets.len(), HELD, "each held packet delivered to the hook's reader");

    let line_down = LineDown::new();
    let pause_pended = match release {
        Release::LineDown => {
            // SAFETY: as above.
            unsafe { invoke::call(handlers.status.expect("status"), (context, line_down.indication())) };
            false
        }
        Release::Pause => {
            // SAFETY: as above: the running module is paused.
            let status = unsafe { invoke::call(handlers.pause.expect("pause"), (context, ptr::null_mut())) };
            assert!(status == 0 || status == model::STATUS_PENDING, "pause: {status:#x}");
            status == model::STATUS_PENDING
        }
    };
    model::run_dpcs();
    let events = model::take_events();
    let (mut completed, sent) = completed_and_sent(&events, module);
    assert!(sent.is_empty(), "{release:?}: a released packet is not sent on: {events:?}");
    completed.sort_unstable();
    held.sort_unstable();
    assert_eq!(completed, held, "{release:?}: every held packet completed to the protocol exactly once: {events:?}");
    assert_eq!(
        events.contains(&Event::PauseComplete { filter: module }),
        pause_pended,
        "{release:?}: a pause that pended completes once the held packets are back: {events:?}"
    );

    // Verdicts on the released packets' tickets are refused; cleanup of the handle removes the
    // hook; nothing is released a second time.
    assert_eq!(pass(file.ptr(), &tickets), (0, u32::try_from(HELD).expect("few")), "{release:?}: stale tickets are refused");
    let mut events = model::take_events();
    control::close(&file);
    model::run_dpcs();
    events.extend(model::take_events());
    assert_eq!(completed_and_sent(&events, module), (Vec::new(), Vec::new()), "{release:?}: released once: {events:?}");
    if matches!(release, Release::LineDown) {
        // SAFETY: as above: the running module is paused.
        let status = unsafe { invoke::call(handlers.pause.expect("pause"), (context, ptr::null_mut())) };
        assert_eq!(status, 0, "nothing held any more: the pause completes at once");
    }
    // SAFETY: as above; the module is paused.
    unsafe { invoke::call(handlers.detach.expect("detach"), (context,)) };
    assert!(model::violations().is_empty(), "{release:?}: {:#?}", model::violations());
    drop(frames);
    lifecycle::unload(loaded);
}

/// A scenario (see the module doc): the link's line down releases the packets the hook holds.
pub fn a_line_down_releases_the_packets_a_hook_holds_exactly_once(target: &Target) {
    released_by(target, Release::LineDown);
}

/// A scenario (see the module doc): the module's pause releases the packets the hook holds.
pub fn a_pause_releases_the_packets_a_hook_holds_exactly_once(target: &Target) {
    released_by(target, Release::Pause);
}
