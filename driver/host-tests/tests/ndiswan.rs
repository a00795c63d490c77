//! What NdisWan's public behaviour asks of the driver, through its handlers (issue #10 part 3).
//!
//! A line-up answer that comes late: NdisWan's line-up buffer
//! carries, just past `NDIS_WAN_LINE_UP`, a private byte the protocol above sets to say "I will
//! answer later" (`wanlayer_ndis::wan_status::ANSWER_LATER_OFFSET`). When it is set after
//! `NdisFIndicateStatus` returns, `LocalAddress` is provisional; the driver marks the link so, and
//! the link's first send — whose source address is the real local address — records the final one
//! and announces the updated link (`Event::LineUpdated`). An answer given at once is final: a send
//! from another source address changes nothing.
//!
//! Copies keep large send offload: a copy the driver makes of a packet (for a hook that keeps a
//! lent receive, or modifies a packet it may not write) carries the original's
//! `TcpLargeSendNetBufferListInfo` (and checksum, 802.1Q, frame type), never its cancel identifier.
#![cfg(not(target_os = "windows"))]

use std::ptr;

use wanlayer::driver::DriverEntry;
use wanlayer_core::event::Event;
use wanlayer_core::hal::{FrameSource, PacketIo};
use wanlayer_core::wire::MacAddress;
use wanlayer_driver_host_tests::common::{name, zeroed, Name, Owned};
use wanlayer_driver_host_tests::ndiswan::{LineUp, NDISWANIP, RAS_MAC, REMOTE, WAN_LINE_UP};
use wanlayer_kernel_model::{self as model, Event as ModelEvent};
use wanlayer_ndis::io::DriverObjectLayout;
use wanlayer_ndis::kernel::DriverObject;
use wanlayer_ndis::lightweight_filter::{FilterAttachParameters, FilterDriverCharacteristics, SendCompleteFlags, SendFlags};
use wanlayer_ndis::nbl::{nbl_info, set_nbl_info, Mdl, NblInfo, NetBuffer, NetBufferList, MDL_MAPPED_TO_SYSTEM_VA};
use wanlayer_ndis::types::{object_type, ContextHandle, NdisObjectHeader};
use wanlayer_ndis::Nbl;

/// The local address the protocol above settles on later.
const LOCAL: [u8; 6] = [0x02, 0x00, 0x53, 0x45, 0x4E, 0x44];

/// The driver loaded, one WAN module attached and running.
struct Running {
    driver_object: Owned<DriverObjectLayout>,
    handlers: FilterDriverCharacteristics,
    context: ContextHandle,
    module: wanlayer_core::ModuleId,
    _names: [Owned<Name>; 2],
}

fn start() -> Running {
    let driver_object = zeroed::<DriverObjectLayout>();
    let registry_path = name("\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer");
    // SAFETY: `registry_path` is alive for the run and reached through its one pointer.
    let path = unsafe { ptr::addr_of_mut!((*registry_path.ptr()).string) };
    // SAFETY: DriverEntry once per run, with a zeroed driver object and the service key's path.
    let status = unsafe { DriverEntry(driver_object.ptr().cast::<DriverObject>(), path) };
    assert_eq!(status, 0, "DriverEntry: {:#?}", model::log());
    let handlers = model::characteristics().expect("registered");
    let adapter = name(NDISWANIP);
    let mut parameters = zeroed::<FilterAttachParameters>();
    parameters.header = NdisObjectHeader::new(object_type::FILTER_ATTACH_PARAMETERS, 1, size_of::<FilterAttachParameters>());
    // SAFETY: `adapter` is alive for the run and reached through its one pointer.
    parameters.base_miniport_name = unsafe { ptr::addr_of_mut!((*adapter.ptr()).string) };
    parameters.mac_address_length = 6;
    parameters.current_mac_address[..6].copy_from_slice(&RAS_MAC);
    parameters.base_miniport_if_index = 7;
    let filter = model::new_filter_module_handle();
    // SAFETY: FilterAttach as NDIS calls it, at PASSIVE_LEVEL, with valid parameters.
    assert_eq!(unsafe { handlers.attach.expect("attach")(filter, ContextHandle::NULL, parameters.ptr()) }, 0);
    let context = model::module_context(filter).expect("a module context");
    // SAFETY: the module's context, at PASSIVE_LEVEL.
    assert_eq!(unsafe { handlers.restart.expect("restart")(context, ptr::null_mut()) }, 0);
    // SAFETY: the context NDIS passes back, as the handlers use it.
    let module = unsafe { wanlayer::modules::module_entry(context) }.module();
    Running { driver_object, handlers, context, module, _names: [registry_path, adapter] }
}

fn stop(running: Running) {
    // SAFETY: the module's context at PASSIVE_LEVEL; paused before detach; DriverUnload once.
    assert_eq!(unsafe { running.handlers.pause.expect("pause")(running.context, ptr::null_mut()) }, 0);
    // SAFETY: as above.
    unsafe { running.handlers.detach.expect("detach")(running.context) };
    let unload = running.driver_object.driver_unload.expect("DriverUnload");
    // SAFETY: as above.
    unsafe { unload(running.driver_object.ptr().cast()) };
    let left = model::finish();
    assert!(left.is_empty(), "{left:#?}\nlog: {:#?}", model::log());
}

/// Indicates a line up whose protocol above sets the "answer later" byte (`late`) and leaves
/// `LocalAddress` zero.
fn line_up(running: &Running, late: bool) {
    let mut line_up = LineUp::new();
    // What the protocol above leaves when the indication returns.
    line_up.buffer.private[0] = u8::from(late);
    // SAFETY: the module's context, with an indication and buffers valid for the call.
    unsafe { running.handlers.status.expect("status")(running.context, line_up.indication()) };
    let events = model::take_events();
    assert!(matches!(events.as_slice(), [ModelEvent::Status { code: WAN_LINE_UP, .. }]), "passed on: {events:?}");
}

/// A test-owned NBL with one NET_BUFFER over one mapped MDL holding a 60-byte IPv4 frame to the
/// link from `source`.
struct TestFrame {
    nbl: Owned<NetBufferList>,
    _net_buffer: Owned<NetBuffer>,
    _mdl: Owned<Mdl>,
    _bytes: Owned<Vec<u8>>,
}

fn test_frame(source: [u8; 6]) -> TestFrame {
    let mut bytes = Owned::new(vec![0u8; 60]);
    bytes[..6].copy_from_slice(&REMOTE);
    bytes[6..12].copy_from_slice(&source);
    bytes[12..14].copy_from_slice(&[0x08, 0x00]);
    bytes[14] = 0x45;
    bytes[16..18].copy_from_slice(&46u16.to_be_bytes());
    bytes[22] = 64;
    bytes[23] = 17;
    let mut mdl = zeroed::<Mdl>();
    mdl.mapped_system_va = bytes.as_mut_ptr().cast();
    mdl.byte_count = 60;
    mdl.mdl_flags = MDL_MAPPED_TO_SYSTEM_VA as i16;
    let mut net_buffer = zeroed::<NetBuffer>();
    net_buffer.mdl_chain = mdl.ptr();
    net_buffer.current_mdl = mdl.ptr();
    net_buffer.data_length.data_length = 60;
    let mut nbl = zeroed::<NetBufferList>();
    nbl.first_net_buffer = net_buffer.ptr();
    TestFrame { nbl, _net_buffer: net_buffer, _mdl: mdl, _bytes: bytes }
}

/// Sends one IPv4 frame on the link from `source` and completes it.
fn send_from(running: &Running, source: [u8; 6]) {
    let frame = test_frame(source);
    let nbl = &frame.nbl;
    // SAFETY: the module's send handler at PASSIVE_LEVEL (flags say so), with a valid chain of one.
    unsafe { running.handlers.send_net_buffer_lists.expect("send")(running.context, nbl.ptr(), 0, SendFlags::default()) };
    let events = model::take_events();
    assert!(matches!(events.as_slice(), [ModelEvent::SentDown { nbls, .. }] if nbls == &[nbl.ptr().addr()]), "{events:?}");
    // SAFETY: the miniport completes the send it was given.
    unsafe { running.handlers.send_net_buffer_lists_complete.expect("send complete")(running.context, nbl.ptr(), SendCompleteFlags::default()) };
    let events = model::take_events();
    assert!(matches!(events.as_slice(), [ModelEvent::SendsCompleted { .. }]), "{events:?}");
}

/// The link's local address and whether it is provisional.
fn local_address(running: &Running) -> (MacAddress, bool) {
    let mut found = None;
    wanlayer::driver::engine().visit_links(running.module, |link| found = Some((link.summary().local_address, link.local_address_provisional())));
    found.expect("the link is tracked")
}

/// The links the engine announced as updated since the last call.
fn updates() -> Vec<MacAddress> {
    let engine = wanlayer::driver::engine();
    std::iter::from_fn(|| engine.next_event())
        .filter_map(|record| match record.event {
            Event::LineUpdated(link) => Some(link.local_address),
            _ => None,
        })
        .collect()
}

#[test]
fn a_late_answer_is_completed_by_the_links_first_send_and_announced() {
    let _run = model::begin();
    let running = start();
    line_up(&running, true);
    assert_eq!(local_address(&running), (MacAddress([0; 6]), true), "the answer is provisional");
    assert!(model::log().iter().any(|line| line.contains("comes later")), "{:#?}", model::log());
    assert_eq!(updates(), []);
    send_from(&running, LOCAL);
    assert_eq!(local_address(&running), (MacAddress(LOCAL), false), "learned from the send");
    assert_eq!(updates(), [MacAddress(LOCAL)], "announced once");
    send_from(&running, [0x02, 0, 0, 0, 0, 0x99]);
    assert_eq!(local_address(&running), (MacAddress(LOCAL), false), "learned once");
    assert_eq!(updates(), []);
    stop(running);
}

#[test]
fn an_answer_given_at_once_is_final() {
    let _run = model::begin();
    let running = start();
    line_up(&running, false);
    assert_eq!(local_address(&running), (MacAddress([0; 6]), false));
    let _ = updates();
    send_from(&running, LOCAL);
    assert_eq!(local_address(&running), (MacAddress([0; 6]), false), "a send does not change a final answer");
    assert_eq!(updates(), []);
    stop(running);
}

#[test]
fn a_copy_keeps_large_send_offload_and_not_the_cancel_identifier() {
    let _run = model::begin();
    let running = start();
    let frame = test_frame(LOCAL);
    let large_send = ptr::without_provenance_mut(0x0000_05B4_0022_0000);
    let cancel = ptr::without_provenance_mut(0x77);
    // SAFETY: the test's own NBL, alive; plain values in its info array.
    unsafe { set_nbl_info(frame.nbl.ptr(), NblInfo::TcpLargeSend, large_send) };
    // SAFETY: as above.
    unsafe { set_nbl_info(frame.nbl.ptr(), NblInfo::CancelId, cancel) };
    let hal = wanlayer::driver::engine().hal();
    // SAFETY: a valid NBL with one NET_BUFFER over one mapped MDL, lent to the HAL for the call and
    // taken back with `into_raw` (never freed by the driver).
    let original = unsafe { Nbl::from_raw(ptr::NonNull::new(frame.nbl.ptr()).expect("non-null")) };
    let copy = hal.allocate(running.module, FrameSource::CopyOf(&original)).expect("a copy");
    let _ = original.into_raw();
    // SAFETY: the copy is a live NBL the driver allocated.
    assert_eq!(unsafe { nbl_info(copy.as_ptr(), NblInfo::TcpLargeSend) }, large_send, "LSO kept");
    // SAFETY: as above.
    assert!(unsafe { nbl_info(copy.as_ptr(), NblInfo::CancelId) }.is_null(), "the cancel identifier stays with the original");
    assert_eq!(hal.frame_len(&copy), 60);
    assert!(hal.free(copy).is_none(), "a copy has no parent");
    stop(running);
}
