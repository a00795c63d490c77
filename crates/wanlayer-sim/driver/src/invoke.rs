//! Every call into the driver's code, one function each, so the way in is one place: the
//! registered handlers, `DriverEntry` and `DriverUnload`. Each runs as the driver's code
//! ([`driver_code`](invoke::driver_code)): what it allocates is the driver's heap
//! ([`crate::heap`]).
//!
//! # Safety
//! The functions are `unsafe`: each forwards NDIS's contract for its handler — the module context
//! NDIS was given at attach, NDIS structures valid for the call, chains the caller gives up.

use std::ffi::c_void;

use wanlayer_kernel_model::invoke;
use wanlayer_ndis::lightweight_filter::{
    FilterAttachParameters, FilterDriverCharacteristics, ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags, StatusIndication,
};
use wanlayer_ndis::io::DriverObjectLayout;
use wanlayer_ndis::kernel::{DeviceObject, DriverDispatch, DriverObject, Irp, NtStatus};
use wanlayer_ndis::nbl::NetBufferList;
use wanlayer_ndis::oid::NdisOidRequest;
use wanlayer_ndis::types::{ContextHandle, FilterModuleHandle, RawNdisStatus, UnicodeString};

/// A handler the driver did not register: the driver registers every one the simulator calls.
fn missing(name: &str) -> ! {
    panic!("wanlayer.sys registered no {name} handler")
}

/// `DriverEntry`.
///
/// # Safety
/// Once per load, at `PASSIVE_LEVEL`, with a zeroed driver object and the service key.
pub unsafe fn driver_entry(driver_object: *mut DriverObjectLayout, registry_path: *mut UnicodeString) -> i32 {
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { wanlayer::driver::DriverEntry(driver_object.cast::<DriverObject>(), registry_path) }
}

/// `DriverUnload`, as the driver set it in its driver object.
///
/// # Safety
/// The driver loaded, every module detached, at `PASSIVE_LEVEL`.
pub unsafe fn driver_unload(driver_object: *mut DriverObjectLayout) {
    // SAFETY: a valid driver object (the caller's promise).
    let unload = unsafe { (*driver_object).driver_unload }.unwrap_or_else(|| missing("DriverUnload"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { unload(driver_object.cast::<DriverObject>()) };
}

/// `FilterAttach`.
///
/// # Safety
/// A new filter module handle, parameters valid for the call, `PASSIVE_LEVEL`.
pub unsafe fn attach(
    handlers: &FilterDriverCharacteristics,
    filter: FilterModuleHandle,
    parameters: *mut FilterAttachParameters,
) -> RawNdisStatus {
    let attach = handlers.attach.unwrap_or_else(|| missing("attach"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { attach(filter, ContextHandle::NULL, parameters) }
}

/// `FilterDetach`.
///
/// # Safety
/// The context of a paused module.
pub unsafe fn detach(handlers: &FilterDriverCharacteristics, context: ContextHandle) {
    let detach = handlers.detach.unwrap_or_else(|| missing("detach"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { detach(context) };
}

/// `FilterRestart`.
///
/// # Safety
/// The context of a paused module.
pub unsafe fn restart(handlers: &FilterDriverCharacteristics, context: ContextHandle) -> RawNdisStatus {
    let restart = handlers.restart.unwrap_or_else(|| missing("restart"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise (the driver reads no restart parameters).
    unsafe { restart(context, std::ptr::null_mut()) }
}

/// `FilterPause`.
///
/// # Safety
/// The context of a running module.
pub unsafe fn pause(handlers: &FilterDriverCharacteristics, context: ContextHandle) -> RawNdisStatus {
    let pause = handlers.pause.unwrap_or_else(|| missing("pause"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise (the driver reads no pause parameters).
    unsafe { pause(context, std::ptr::null_mut()) }
}

/// `FilterSendNetBufferLists`.
///
/// # Safety
/// A module context and a valid chain the caller gives up.
pub unsafe fn send(handlers: &FilterDriverCharacteristics, context: ContextHandle, chain: *mut NetBufferList, flags: SendFlags) {
    let send = handlers.send_net_buffer_lists.unwrap_or_else(|| missing("send"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { send(context, chain, 0, flags) };
}

/// `FilterSendNetBufferListsComplete`.
///
/// # Safety
/// A module context and a valid chain of NBLs the driver sent down.
pub unsafe fn send_complete(
    handlers: &FilterDriverCharacteristics,
    context: ContextHandle,
    chain: *mut NetBufferList,
    flags: SendCompleteFlags,
) {
    let complete = handlers.send_net_buffer_lists_complete.unwrap_or_else(|| missing("send complete"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { complete(context, chain, flags) };
}

/// `FilterCancelSendNetBufferLists`.
///
/// # Safety
/// A module context.
pub unsafe fn cancel_send(handlers: &FilterDriverCharacteristics, context: ContextHandle, cancel_id: *mut c_void) {
    let cancel = handlers.cancel_send_net_buffer_lists.unwrap_or_else(|| missing("cancel send"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { cancel(context, cancel_id) };
}

/// `FilterReceiveNetBufferLists`.
///
/// # Safety
/// A module context and a valid chain of `count` NBLs.
pub unsafe fn receive(
    handlers: &FilterDriverCharacteristics,
    context: ContextHandle,
    chain: *mut NetBufferList,
    count: u32,
    flags: ReceiveFlags,
) {
    let receive = handlers.receive_net_buffer_lists.unwrap_or_else(|| missing("receive"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { receive(context, chain, 0, count, flags) };
}

/// `FilterReturnNetBufferLists`.
///
/// # Safety
/// A module context and a valid chain of NBLs the driver indicated up.
pub unsafe fn return_receives(
    handlers: &FilterDriverCharacteristics,
    context: ContextHandle,
    chain: *mut NetBufferList,
    flags: ReturnFlags,
) {
    let give_back = handlers.return_net_buffer_lists.unwrap_or_else(|| missing("return"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { give_back(context, chain, flags) };
}

/// `FilterStatus`.
///
/// # Safety
/// A module context and an indication valid for the call.
pub unsafe fn status(handlers: &FilterDriverCharacteristics, context: ContextHandle, indication: *mut StatusIndication) {
    let status = handlers.status.unwrap_or_else(|| missing("status"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { status(context, indication) };
}

/// `FilterOidRequest`.
///
/// # Safety
/// A module context and a request that stays valid until completed.
pub unsafe fn oid_request(handlers: &FilterDriverCharacteristics, context: ContextHandle, request: *mut NdisOidRequest) -> RawNdisStatus {
    let oid = handlers.oid_request.unwrap_or_else(|| missing("OID request"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { oid(context, request) }
}

/// `FilterOidRequestComplete`.
///
/// # Safety
/// A module context and a clone the driver passed down, completed once.
pub unsafe fn oid_request_complete(
    handlers: &FilterDriverCharacteristics,
    context: ContextHandle,
    clone: *mut NdisOidRequest,
    status: RawNdisStatus,
) {
    let complete = handlers.oid_request_complete.unwrap_or_else(|| missing("OID request complete"));
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { complete(context, clone, status) };
}

/// A dispatch routine of the driver's control device.
///
/// # Safety
/// The device the driver registered and an IRP in the I/O manager's layout for it, at
/// `PASSIVE_LEVEL`, valid until the driver completes it.
pub unsafe fn dispatch(routine: DriverDispatch, device: *mut DeviceObject, irp: *mut Irp) -> NtStatus {
    let _driver = invoke::driver_code();
    // SAFETY: the caller's promise.
    unsafe { routine(device, irp) }
}
