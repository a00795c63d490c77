//! `wanlayer.sys`'s handlers in the loop: `DriverEntry`, attach (accepted, refused by medium,
//! failing its NBL pool), restart, OIDs passed down (completed at once; pended, cancelled and
//! completed later), PnP events, send cancellation, a status indication, pause, detach and
//! `DriverUnload`, each through the driver's real `extern "system"` handler with NDIS structures
//! in `wanlayer-ndis` layouts, against the kernel model. Every run ends with nothing left over and
//! no rule broken.

use super::Target;
use std::ffi::c_void;
use std::ptr;

use crate::common::{name, zeroed, Name, Owned};
use crate::ndiswan::{status_indication, LineDown, LineUp, NDISWANIP, RAS_MAC, WAN_LINE_DOWN, WAN_LINE_UP};

use wanlayer_kernel_model::invoke;
use wanlayer_kernel_model::{self as model, Event, OidAnswer};
use wanlayer_ndis::io::DriverObjectLayout;
use wanlayer_ndis::kernel::DriverObject;
use wanlayer_ndis::lightweight_filter::{FilterAttachParameters, FilterDriverCharacteristics, NdisOidRequest};
use wanlayer_ndis::types::{object_type, ContextHandle, FilterModuleHandle, NdisObjectHeader};

/// The tag of the driver's NBL pool (`wanlayer::filter::NBL_POOL_TAG`, which the crate's root
/// checks it against when the driver is linked).
pub(crate) const NBL_POOL_TAG: u32 = u32::from_le_bytes(*b"WLnb");

/// `NDIS_STATUS_INVALID_PARAMETER`.
const INVALID_PARAMETER: u32 = 0xC000_000D;
/// `NDIS_STATUS_RESOURCES`.
const RESOURCES: u32 = 0xC000_009A;
/// `NDIS_STATUS_REQUEST_ABORTED`.
const REQUEST_ABORTED: u32 = 0xC000_023A;
/// `NDIS_STATUS_LINK_STATE`: an indication the filter passes on untouched.
const LINK_STATE: u32 = 0x4001_0107;

/// The driver, loaded: its driver object and the handlers it registered.
pub(super) struct Loaded {
    driver_object: Owned<DriverObjectLayout>,
    pub(super) handlers: FilterDriverCharacteristics,
    _registry_path: Owned<Name>,
}

pub(super) fn load(target: &Target) -> Loaded {
    let driver_object = zeroed::<DriverObjectLayout>();
    let registry_path = name("\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer");
    let object = driver_object.ptr().cast::<DriverObject>();
    // SAFETY: DriverEntry called once per run, as the I/O manager calls it, with a zeroed driver
    // object and the service key's path.
    let path = unsafe { ptr::addr_of_mut!((*registry_path.ptr()).string) };
    // SAFETY: as above.
    let status = unsafe { invoke::call(target.driver_entry, (object, path)) };
    assert_eq!(status, 0, "DriverEntry: {:?}", model::log());
    let handlers = model::characteristics().expect("the filter registered");
    assert!(model::control_device().is_some(), "the control device registered");
    Loaded { driver_object, handlers, _registry_path: registry_path }
}

pub(super) fn unload(loaded: Loaded) {
    let unload = loaded.driver_object.driver_unload.expect("DriverEntry set DriverUnload");
    // SAFETY: the unload routine DriverEntry set, called once after the last handle closed.
    unsafe { invoke::call(unload, (loaded.driver_object.ptr().cast(),)) };
    let left = model::finish();
    assert!(left.is_empty(), "after unload: {left:#?}\nlog: {:#?}", model::log());
}

/// Attach parameters for an adapter.
pub(super) struct Adapter {
    parameters: Owned<FilterAttachParameters>,
    _name: Owned<Name>,
}

pub(super) fn adapter(base_miniport_name: &str, medium: u32, mac: [u8; 6]) -> Adapter {
    let name = name(base_miniport_name);
    let mut parameters = zeroed::<FilterAttachParameters>();
    parameters.header = NdisObjectHeader::new(object_type::FILTER_ATTACH_PARAMETERS, 1, size_of::<FilterAttachParameters>());
    // SAFETY: `name` is alive (kept with the parameters) and reached through its one pointer.
    parameters.base_miniport_name = unsafe { ptr::addr_of_mut!((*name.ptr()).string) };
    parameters.miniport_media_type = medium;
    parameters.mac_address_length = 6;
    parameters.current_mac_address[..6].copy_from_slice(&mac);
    parameters.base_miniport_if_index = 7;
    Adapter { parameters, _name: name }
}

pub(super) fn attach(loaded: &Loaded, adapter: &mut Adapter) -> (u32, FilterModuleHandle) {
    let filter = model::new_filter_module_handle();
    let attach = loaded.handlers.attach.expect("FilterAttach");
    // SAFETY: FilterAttach as NDIS calls it: a new filter module handle and attach parameters
    // valid for the call, at PASSIVE_LEVEL.
    let status = unsafe { invoke::call(attach, (filter, ContextHandle::NULL, adapter.parameters.ptr())) };
    (status, filter)
}

/// A scenario (see the module doc).
pub fn a_module_lives_its_whole_life_through_the_drivers_handlers(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    let handlers = loaded.handlers;

    let mut wan = adapter(NDISWANIP, 0, RAS_MAC);
    let (status, filter) = attach(&loaded, &mut wan);
    assert_eq!(status, 0, "attach: {:?}", model::log());
    let context = model::module_context(filter).expect("NdisFSetAttributes gave a context");
    let module = filter.as_raw().addr();

    // SAFETY: (this and each handler call below) the module's context, as NDIS passes it, at
    // PASSIVE_LEVEL, with structures valid for the call.
    let restarted = unsafe { invoke::call(handlers.restart.expect("restart"), (context, ptr::null_mut())) };
    assert_eq!(restarted, 0);

    // An OID completed at once: passed down as a clone carrying the RequestId.
    model::set_oid_answer(OidAnswer::Complete(0));
    let mut request = zeroed::<NdisOidRequest>();
    request.request_id = ptr::without_provenance_mut(0x77);
    // SAFETY: as above.
    assert_eq!(unsafe { invoke::call(handlers.oid_request.expect("oid"), (context, request.ptr())) }, 0);
    let events = model::take_events();
    assert!(matches!(events.as_slice(), [Event::OidDown { filter, request_id: 0x77, .. }] if *filter == module), "{events:?}");

    // An OID that pends, is cancelled by its RequestId, and completes later.
    model::set_oid_answer(OidAnswer::Pend);
    let mut pended = zeroed::<NdisOidRequest>();
    pended.request_id = ptr::without_provenance_mut(0x78);
    // SAFETY: as above.
    assert_eq!(unsafe { invoke::call(handlers.oid_request.expect("oid"), (context, pended.ptr(),)) }, model::STATUS_PENDING);
    let [Event::OidDown { request: clone, request_id: 0x78, .. }] = model::take_events()[..] else { panic!("one OID down") };
    // SAFETY: as above.
    unsafe { invoke::call(handlers.cancel_oid_request.expect("cancel oid"), (context, ptr::without_provenance_mut(0x78))) };
    assert_eq!(model::take_events(), [Event::OidCancelled { filter: module, request_id: 0x78 }]);
    // SAFETY: the clone the driver passed down, completed once by the miniport.
    unsafe {
        invoke::call(
            handlers.oid_request_complete.expect("oid complete"),
            (context, ptr::with_exposed_provenance_mut(clone), REQUEST_ABORTED),
        )
    };
    let original = pended.ptr().addr();
    assert_eq!(model::take_events(), [Event::OidCompleted { filter: module, request: original, status: REQUEST_ABORTED }]);

    // PnP events and send cancellation are passed on for the module.
    let mut event = [0u64; 8];
    let event_ptr = event.as_mut_ptr().cast::<c_void>();
    model::set_pnp_status(0xC000_00BB);
    // SAFETY: as above.
    assert_eq!(unsafe { invoke::call(handlers.net_pnp_event.expect("net pnp"), (context, event_ptr.cast()),) }, 0xC000_00BB);
    // SAFETY: as above.
    unsafe { invoke::call(handlers.device_pnp_event_notify.expect("device pnp"), (context, event_ptr.cast())) };
    // SAFETY: as above, at DISPATCH_LEVEL or below.
    unsafe { invoke::call(handlers.cancel_send_net_buffer_lists.expect("cancel send"), (context, ptr::without_provenance_mut(0x99))) };
    assert_eq!(
        model::take_events(),
        [
            Event::NetPnpEvent { filter: module, event: event_ptr.addr() },
            Event::DevicePnpEvent { filter: module, event: event_ptr.addr() },
            Event::SendsCancelled { filter: module, cancel_id: 0x99 },
        ]
    );

    // A status indication that is not a WAN one goes on untouched.
    let indication = status_indication(LINK_STATE, ptr::null_mut(), 0);
    // SAFETY: as above.
    unsafe { invoke::call(handlers.status.expect("status"), (context, indication.ptr())) };
    assert_eq!(model::take_events(), [Event::Status { filter: module, code: LINK_STATE }]);

    // SAFETY: as above.
    assert_eq!(unsafe { invoke::call(handlers.pause.expect("pause"), (context, ptr::null_mut(),)) }, 0);
    // SAFETY: as above; the module is paused.
    unsafe { invoke::call(handlers.detach.expect("detach"), (context,)) };
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// A scenario (see the module doc).
pub fn a_wan_link_comes_up_and_goes_down_through_the_drivers_status_handler(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    let handlers = loaded.handlers;
    let mut wan = adapter(NDISWANIP, 0, RAS_MAC);
    let (status, filter) = attach(&loaded, &mut wan);
    assert_eq!(status, 0);
    let context = model::module_context(filter).expect("context");
    let module = filter.as_raw().addr();
    // SAFETY: (this and each handler call below) the module's context, as NDIS passes it, with
    // structures valid for the call.
    let restarted = unsafe { invoke::call(handlers.restart.expect("restart"), (context, ptr::null_mut())) };
    assert_eq!(restarted, 0);

    let line_up = LineUp::new();
    // SAFETY: as above.
    unsafe { invoke::call(handlers.status.expect("status"), (context, line_up.indication())) };
    assert_eq!(model::take_events(), [Event::Status { filter: module, code: WAN_LINE_UP }]);
    assert_eq!(line_up.buffer.line_up.maximum_total_size, 1500, "no hook lowered it");
    if let Some(links) = target.links {
        // SAFETY: the module's context, as NDIS passes it back.
        assert_eq!(unsafe { links(context) }, 1, "the engine tracks the link");
    }
    assert_eq!(super::control::listed_links(), 1, "LIST_LINKS through the control device answers the link");

    let line_down = LineDown::new();
    // SAFETY: as above.
    unsafe { invoke::call(handlers.status.expect("status"), (context, line_down.indication())) };
    assert_eq!(model::take_events(), [Event::Status { filter: module, code: WAN_LINE_DOWN }]);
    if let Some(links) = target.links {
        // SAFETY: as above.
        assert_eq!(unsafe { links(context) }, 0, "the line down removed it");
    }
    assert_eq!(super::control::listed_links(), 0, "and no longer after its line down");
    // A line up whose buffer is too short for NDIS_WAN_LINE_UP is counted malformed and passed on.
    let short = line_up.truncated(8);
    // SAFETY: as above.
    unsafe { invoke::call(handlers.status.expect("status"), (context, short.ptr())) };
    assert_eq!(model::take_events(), [Event::Status { filter: module, code: WAN_LINE_UP }]);
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// A scenario (see the module doc).
pub fn attaches_the_driver_refuses_leave_nothing_behind(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    // A medium the filter does not handle.
    let mut wireless = adapter("\\DEVICE\\{WWAN}", 9, [2, 0, 0, 0, 0, 1]);
    let (status, filter) = attach(&loaded, &mut wireless);
    assert_eq!(status, INVALID_PARAMETER);
    assert!(model::module_context(filter).is_none());
    // No NBL pool for the module: the engine's module is undone.
    model::fail_next_allocation(NBL_POOL_TAG);
    let mut ethernet = adapter("\\DEVICE\\{NIC}", 0, [2, 0, 0, 0, 0, 2]);
    let (status, filter) = attach(&loaded, &mut ethernet);
    assert_eq!(status, RESOURCES);
    assert!(model::module_context(filter).is_none());
    // Modules still attached at unload are paused and detached by NDIS's deregistration.
    let mut wan = adapter("\\device\\ndiswanipv6", 0, RAS_MAC);
    assert_eq!(attach(&loaded, &mut wan).0, 0);
    unload(loaded);
}
