//! The data-path handlers in the loop: sends passed down and completed, receives indicated and
//! returned, lent chains (shorter and longer than the driver's record of them) handed back linked
//! as they came, and a receive whose `NumberOfNetBufferLists` disagrees with its chain — NBLs,
//! NET_BUFFERs and MDLs in `wanlayer-ndis` layouts, each frame split over two MDLs with an offset
//! into the first.

use super::Target;
use std::ptr;

use crate::common::{zeroed, Owned};

use wanlayer_driver_logic::lent::RECORDED;
use wanlayer_kernel_model::invoke;
use wanlayer_kernel_model::{self as model, Event};
use wanlayer_ndis::lightweight_filter::{FilterAttachParameters, FilterDriverCharacteristics, ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags};
use wanlayer_ndis::io::DriverObjectLayout;
use wanlayer_ndis::kernel::DriverObject;
use wanlayer_ndis::nbl::{Mdl, NetBuffer, NetBufferList, MDL_MAPPED_TO_SYSTEM_VA};
use wanlayer_ndis::types::{object_type, ContextHandle, NdisObjectHeader, UnicodeString};

/// Bytes before the frame in the first MDL (`CurrentMdlOffset`).
const OFFSET: usize = 6;
/// Frame bytes in the first MDL; the rest are in the second.
const FIRST_PART: usize = 20;

/// One NBL with one NET_BUFFER over two MDLs, and the memory they describe.
pub(super) struct Frame {
    pub(super) nbl: Owned<NetBufferList>,
    net_buffer: Owned<NetBuffer>,
    _mdls: [Owned<Mdl>; 2],
    _bytes: [Vec<u8>; 2],
}

pub(super) fn frame(payload: &[u8]) -> Frame {
    let mut first: Vec<u8> = vec![0xEE; OFFSET + FIRST_PART];
    first[OFFSET..].copy_from_slice(&payload[..FIRST_PART]);
    let mut second: Vec<u8> = payload[FIRST_PART..].to_vec();
    let mut second_mdl = zeroed::<Mdl>();
    second_mdl.mapped_system_va = second.as_mut_ptr().cast();
    second_mdl.byte_count = u32::try_from(second.len()).expect("short");
    second_mdl.mdl_flags = MDL_MAPPED_TO_SYSTEM_VA as i16;
    let mut first_mdl = zeroed::<Mdl>();
    first_mdl.mapped_system_va = first.as_mut_ptr().cast();
    first_mdl.byte_count = u32::try_from(first.len()).expect("short");
    first_mdl.mdl_flags = MDL_MAPPED_TO_SYSTEM_VA as i16;
    first_mdl.next = second_mdl.ptr();
    let mut net_buffer = zeroed::<NetBuffer>();
    net_buffer.mdl_chain = first_mdl.ptr();
    net_buffer.current_mdl = first_mdl.ptr();
    net_buffer.current_mdl_offset = OFFSET as u32;
    net_buffer.data_offset = OFFSET as u32;
    net_buffer.data_length.data_length = u32::try_from(payload.len()).expect("short");
    let mut nbl = zeroed::<NetBufferList>();
    nbl.first_net_buffer = net_buffer.ptr();
    Frame { nbl, net_buffer, _mdls: [first_mdl, second_mdl], _bytes: [first, second] }
}

/// An Ethernet/IPv4/UDP frame of 60 bytes.
pub(super) fn payload(index: u8) -> Vec<u8> {
    let mut bytes = vec![0u8; 60];
    bytes[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    bytes[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    bytes[12..14].copy_from_slice(&[0x08, 0x00]);
    bytes[14] = 0x45;
    bytes[16..18].copy_from_slice(&46u16.to_be_bytes());
    bytes[22] = 64;
    bytes[23] = 17;
    bytes[26..30].copy_from_slice(&[10, 0, 0, index]);
    bytes[30..34].copy_from_slice(&[10, 0, 1, 1]);
    bytes
}

/// `count` frames linked into a chain; returns them and the chain's NBL addresses in order.
fn chain(count: usize) -> (Vec<Frame>, Vec<usize>) {
    let mut frames: Vec<Frame> = (0..count).map(|index| frame(&payload(u8::try_from(index % 250).expect("small")))).collect();
    for index in (1..frames.len()).rev() {
        let next = frames[index].nbl.ptr();
        frames[index - 1].nbl.next = next;
    }
    let order = frames.iter().map(|frame| frame.nbl.ptr().addr()).collect();
    (frames, order)
}

/// The chain's NBL addresses as linked now, from its head.
fn links(frames: &mut [Frame]) -> Vec<usize> {
    let mut order = Vec::new();
    let mut next = frames[0].nbl.ptr();
    while !next.is_null() {
        order.push(next.addr());
        // SAFETY: a member of the test's chain, alive in `frames`.
        next = unsafe { (*next).next };
    }
    order
}

struct Loaded {
    driver_object: Owned<DriverObjectLayout>,
    handlers: FilterDriverCharacteristics,
    context: ContextHandle,
    filter: usize,
    _name: Vec<u16>,
}

/// Loads the driver and attaches a running pass-through module to an Ethernet adapter.
fn load(target: &Target) -> Loaded {
    let driver_object = zeroed::<DriverObjectLayout>();
    let mut path: Vec<u16> = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer".encode_utf16().collect();
    let bytes = u16::try_from(path.len() * 2).expect("short path");
    let mut registry_path = UnicodeString { length: bytes, maximum_length: bytes, buffer: path.as_mut_ptr() };
    // SAFETY: DriverEntry called once per run with a zeroed driver object and the service key.
    let status = unsafe { invoke::call(target.driver_entry, (driver_object.ptr().cast::<DriverObject>(), &mut registry_path)) };
    assert_eq!(status, 0, "{:?}", model::log());
    let handlers = model::characteristics().expect("registered");
    let mut name: Vec<u16> = "\\DEVICE\\{NIC}".encode_utf16().collect();
    let mut miniport_name = UnicodeString { length: 26, maximum_length: 26, buffer: name.as_mut_ptr() };
    let mut parameters = zeroed::<FilterAttachParameters>();
    parameters.header = NdisObjectHeader::new(object_type::FILTER_ATTACH_PARAMETERS, 1, size_of::<FilterAttachParameters>());
    parameters.base_miniport_name = &mut miniport_name;
    parameters.mac_address_length = 6;
    parameters.current_mac_address[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    let filter = model::new_filter_module_handle();
    // SAFETY: FilterAttach as NDIS calls it, parameters valid for the call.
    let status = unsafe { invoke::call(handlers.attach.expect("attach"), (filter, ContextHandle::NULL, parameters.ptr())) };
    assert_eq!(status, 0, "{:?}", model::log());
    let context = model::module_context(filter).expect("context");
    // SAFETY: the module's context, as NDIS passes it, at PASSIVE_LEVEL.
    let restarted = unsafe { invoke::call(handlers.restart.expect("restart"), (context, ptr::null_mut())) };
    assert_eq!(restarted, 0);
    Loaded { driver_object, handlers, context, filter: filter.as_raw().addr(), _name: name }
}

fn unload(loaded: Loaded) {
    // SAFETY: the module's context; nothing is outstanding.
    let paused = unsafe { invoke::call(loaded.handlers.pause.expect("pause"), (loaded.context, ptr::null_mut())) };
    assert_eq!(paused, 0);
    // SAFETY: the paused module's context.
    unsafe { invoke::call(loaded.handlers.detach.expect("detach"), (loaded.context,)) };
    let unload = loaded.driver_object.driver_unload.expect("DriverUnload");
    // SAFETY: the unload routine DriverEntry set, called once.
    unsafe { invoke::call(unload, (loaded.driver_object.ptr().cast(),)) };
    let left = model::finish();
    assert!(left.is_empty(), "after unload: {left:#?}\nlog: {:#?}", model::log());
}

/// Indicates `frames` lent (`NDIS_RECEIVE_FLAGS_RESOURCES`) with `count` as
/// `NumberOfNetBufferLists`; returns what went up.
fn receive_lent(loaded: &Loaded, frames: &mut [Frame], count: u32) -> Vec<Event> {
    let head = frames[0].nbl.ptr();
    // SAFETY: FilterReceiveNetBufferLists as NDIS calls it: a valid chain, lent for the call.
    unsafe {
        invoke::call(loaded.handlers.receive_net_buffer_lists.expect("receive"), (loaded.context, head, 0, count, ReceiveFlags::RESOURCES))
    };
    model::take_events()
}

/// The NBLs indicated up, in order, each indication for `filter` and lent (the engine may
/// indicate a lent chain in several calls); `None` if anything else happened.
fn indicated_lent(events: &[Event], module: usize) -> Option<Vec<usize>> {
    let mut all = Vec::new();
    for event in events {
        match event {
            Event::Indicated { filter, nbls, resources: true } if *filter == module => all.extend(nbls),
            _ => return None,
        }
    }
    Some(all)
}

/// A scenario (see the module doc).
pub fn lent_receives_come_back_linked_as_they_came(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    for count in [1, 3, RECORDED, RECORDED + 1, RECORDED + 9] {
        let (mut frames, order) = chain(count);
        let events = receive_lent(&loaded, &mut frames, u32::try_from(count).expect("small"));
        assert_eq!(indicated_lent(&events, loaded.filter), Some(order.clone()), "{count} NBLs: {events:?}");
        assert_eq!(links(&mut frames), order, "a lent chain of {count} back as it came");
    }
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// A scenario (see the module doc).
pub fn a_receive_whose_count_disagrees_with_its_chain_is_handled_by_the_chain(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    let (mut frames, order) = chain(3);
    let events = receive_lent(&loaded, &mut frames, 5);
    assert_eq!(indicated_lent(&events, loaded.filter), Some(order.clone()), "{events:?}");
    assert_eq!(links(&mut frames), order);
    assert!(model::log().iter().any(|line| line.contains("5 NBLs indicated, 3 in the chain")), "{:?}", model::log());
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// A scenario (see the module doc).
pub fn owned_receives_are_returned_and_sends_completed_through_the_drivers_handlers(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    let handlers = loaded.handlers;
    let (received, order) = chain(2);
    let head = received[0].nbl.ptr();
    // SAFETY: FilterReceiveNetBufferLists with an owned chain: the filter's until returned.
    unsafe { invoke::call(handlers.receive_net_buffer_lists.expect("receive"), (loaded.context, head, 0, 2, ReceiveFlags::default())) };
    assert_eq!(model::take_events(), [Event::Indicated { filter: loaded.filter, nbls: order.clone(), resources: false }]);
    // SAFETY: the protocol returns the chain it was indicated, once.
    unsafe { invoke::call(handlers.return_net_buffer_lists.expect("return"), (loaded.context, head, ReturnFlags::default())) };
    assert_eq!(model::take_events(), [Event::Returned { filter: loaded.filter, nbls: order }]);

    let (sent, order) = chain(3);
    let head = sent[0].nbl.ptr();
    // SAFETY: FilterSendNetBufferLists: the protocol's chain, the filter's until completed.
    unsafe { invoke::call(handlers.send_net_buffer_lists.expect("send"), (loaded.context, head, 0, SendFlags::default())) };
    assert_eq!(model::take_events(), [Event::SentDown { filter: loaded.filter, nbls: order.clone() }]);
    // SAFETY: the miniport completes the chain it was sent, once.
    unsafe {
        invoke::call(handlers.send_net_buffer_lists_complete.expect("send complete"), (loaded.context, head, SendCompleteFlags::default()))
    };
    assert_eq!(model::take_events(), [Event::SendsCompleted { filter: loaded.filter, nbls: order }]);
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// An NBL with `count` NET_BUFFERs, each a frame split over two MDLs with an offset: the frames
/// of `count` one-NET_BUFFER NBLs, their NET_BUFFERs linked under the first NBL.
fn several_net_buffers(count: usize) -> Vec<Frame> {
    let mut frames: Vec<Frame> = (0..count).map(|index| frame(&payload(u8::try_from(index + 1).expect("small")))).collect();
    for index in (1..frames.len()).rev() {
        let next = frames[index].net_buffer.ptr();
        frames[index - 1].net_buffer.next = next;
    }
    frames
}

/// A scenario (see the module doc): an NBL carrying three NET_BUFFERs is sent down and completed,
/// and received (owned) and returned, as one NBL with its NET_BUFFERs as they came.
pub fn nbls_with_several_net_buffers_pass_through_whole(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    let handlers = loaded.handlers;
    let sent = several_net_buffers(3);
    let head = sent[0].nbl.ptr();
    // SAFETY: FilterSendNetBufferLists: the protocol's NBL, the filter's until completed.
    unsafe { invoke::call(handlers.send_net_buffer_lists.expect("send"), (loaded.context, head, 0, SendFlags::default())) };
    assert_eq!(model::take_events(), [Event::SentDown { filter: loaded.filter, nbls: vec![head.addr()] }]);
    // SAFETY: the miniport completes the NBL it was sent, once.
    unsafe {
        invoke::call(handlers.send_net_buffer_lists_complete.expect("send complete"), (loaded.context, head, SendCompleteFlags::default()))
    };
    assert_eq!(model::take_events(), [Event::SendsCompleted { filter: loaded.filter, nbls: vec![head.addr()] }]);

    let received = several_net_buffers(3);
    let head = received[0].nbl.ptr();
    // SAFETY: FilterReceiveNetBufferLists with an owned NBL: the filter's until returned.
    unsafe { invoke::call(handlers.receive_net_buffer_lists.expect("receive"), (loaded.context, head, 0, 1, ReceiveFlags::default())) };
    assert_eq!(model::take_events(), [Event::Indicated { filter: loaded.filter, nbls: vec![head.addr()], resources: false }]);
    // SAFETY: the protocol returns the NBL it was indicated, once.
    unsafe { invoke::call(handlers.return_net_buffer_lists.expect("return"), (loaded.context, head, ReturnFlags::default())) };
    assert_eq!(model::take_events(), [Event::Returned { filter: loaded.filter, nbls: vec![head.addr()] }]);
    let mut net_buffers = 0;
    let mut next = received[0].net_buffer.ptr();
    while !next.is_null() {
        net_buffers += 1;
        // SAFETY: a NET_BUFFER of the test's NBL, alive in `received`.
        next = unsafe { (*next).next };
    }
    assert_eq!(net_buffers, 3, "the NBL comes back with its NET_BUFFERs");
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}
