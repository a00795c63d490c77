//! The I/O manager as a kernel-mode client of another driver's device sees it — what a vendor
//! driver does to reach wanlayer's provider table: `IoGetDeviceObjectPointer` (an
//! `IRP_MJ_CREATE` to the device's dispatch routine, a file object referenced once),
//! `IoBuildDeviceIoControlRequest` + `IofCallDriver` (an IRP built here, its stack location
//! filled in, sent to the device's dispatch routine; completed through `IofCompleteRequest`, which
//! copies its status to the caller's `IO_STATUS_BLOCK`, signals its event and frees it),
//! `KeInitializeEvent` / `KeWaitForSingleObject` (notification events; a wait on one that nobody
//! signals is a violation: the model's one thread would wait for ever) and `ObfDereferenceObject`
//! (the last reference of such a file object: `IRP_MJ_CLEANUP` and `IRP_MJ_CLOSE`).
//!
//! Every call into the device's driver goes through [`invoke::call`](crate::invoke::call), so an
//! emulated image is reached the same way. Checked at [`finish`](crate::finish): file objects
//! still referenced, built IRPs never completed.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};

use wanlayer_ndis::io::{FileObjectLayout, IoSecurityContext, IoStackLocation, IoStatusBlock, IrpLayout};
use wanlayer_ndis::kernel::{
    AccessMask, DeviceObject, EventType, FileObject, Irp, KEvent, KProcessorMode, KWaitReason, NtStatus, IRP_MJ_CLEANUP, IRP_MJ_CLOSE,
    IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL, IRP_MJ_INTERNAL_DEVICE_CONTROL,
};
use wanlayer_ndis::types::UnicodeString;

use crate::{invoke, state, PASSIVE_LEVEL, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_PENDING};

/// An IRP the model built and owns until it is completed, with what it points to.
struct Built {
    irp: *mut IrpLayout,
    location: *mut IoStackLocation,
}

struct IoManager {
    /// The registered control device's name (upper case), while registered.
    device_name: Option<String>,
    /// File objects `IoGetDeviceObjectPointer` opened, by address.
    files: BTreeMap<usize, *mut FileObjectLayout>,
    /// IRPs `IoBuildDeviceIoControlRequest` built and not yet completed, by address.
    built: BTreeMap<usize, Built>,
    /// Events initialised, by address: signalled or not.
    events: BTreeMap<usize, bool>,
}

// SAFETY: the raw pointers are allocations this module owns (boxed here, freed here), only used
// under the mutex.
unsafe impl Send for IoManager {}

static IO: Mutex<IoManager> =
    Mutex::new(IoManager { device_name: None, files: BTreeMap::new(), built: BTreeMap::new(), events: BTreeMap::new() });

fn io() -> MutexGuard<'static, IoManager> {
    IO.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A new run: nothing open, nothing built (what a previous run left is leaked, as it was reported).
pub(crate) fn reset() {
    let mut io = io();
    io.device_name = None;
    io.files.clear();
    io.built.clear();
    io.events.clear();
}

/// What a run left: referenced file objects, IRPs never completed.
pub(crate) fn leftovers() -> Vec<String> {
    let io = io();
    let mut found = Vec::new();
    if !io.files.is_empty() {
        found.push(format!("{} file objects from IoGetDeviceObjectPointer still referenced", io.files.len()));
    }
    if !io.built.is_empty() {
        found.push(format!("{} IRPs from IoBuildDeviceIoControlRequest never completed", io.built.len()));
    }
    found
}

/// `NdisRegisterDeviceEx` named the control device `name`; `None` when it is deregistered.
pub(crate) fn device_named(name: Option<String>) {
    io().device_name = name.map(|name| name.to_uppercase());
}

fn boxed<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// A zeroed kernel structure (all-zero is a valid value of every one used here).
fn zero<T>() -> T {
    // SAFETY: only instantiated with `repr(C)` kernel layouts of integers, raw pointers, unions
    // of those and optional function pointers.
    unsafe { std::mem::MaybeUninit::<T>::zeroed().assume_init() }
}

/// Frees what [`boxed`] allocated.
///
/// # Safety
/// `value` came from [`boxed`] and is freed once.
unsafe fn unbox<T>(value: *mut T) {
    // SAFETY: the caller's promise.
    drop(unsafe { Box::from_raw(value) });
}

/// Sends a fresh IRP of `major` for `file` to the control device's dispatch routine, as the I/O
/// manager does; returns the dispatch routine's status (the IRP is freed after).
fn send(major: usize, file: *mut FileObjectLayout, desired_access: AccessMask) -> NtStatus {
    let Some(device) = crate::control_device() else { return STATUS_OBJECT_NAME_NOT_FOUND };
    let Some(dispatch) = device.dispatch[major] else {
        state().violation(format!("the control device has no dispatch routine for major function {major}"));
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    let security = boxed(IoSecurityContext { desired_access, ..zero() });
    let mut stack_location: IoStackLocation = zero();
    stack_location.major_function = major as u8;
    stack_location.file_object = file.cast();
    stack_location.device_object = device.device;
    if major == IRP_MJ_CREATE {
        stack_location.parameters.create.security_context = security;
    }
    let location = boxed(stack_location);
    let irp = boxed(IrpLayout { current_stack_location: location, stack_count: 1, current_location: 1, ..zero() });
    // SAFETY: the device's dispatch routine, called as the I/O manager calls it, at PASSIVE_LEVEL,
    // with an IRP in the I/O manager's layout.
    let status = unsafe { invoke::call(dispatch, (device.device, irp.cast::<Irp>())) };
    // SAFETY: allocated above, freed once; the create, cleanup and close dispatch routines
    // complete their IRPs before returning.
    unsafe { unbox(irp) };
    // SAFETY: as above.
    unsafe { unbox(location) };
    // SAFETY: as above.
    unsafe { unbox(security) };
    status
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IoGetDeviceObjectPointer(
    name: *mut UnicodeString,
    access: AccessMask,
    file: *mut *mut FileObject,
    device: *mut *mut DeviceObject,
) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    state().require_passive("IoGetDeviceObjectPointer");
    // SAFETY: the caller passes a valid counted name (the import's contract).
    let Some(name) = (unsafe { crate::unicode_text(name) }) else {
        state().violation("IoGetDeviceObjectPointer with a malformed name");
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    if io().device_name.as_deref() != Some(name.to_uppercase().as_str()) {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    let Some(control) = crate::control_device() else { return STATUS_OBJECT_NAME_NOT_FOUND };
    let opened = boxed(zero::<FileObjectLayout>());
    let status = send(IRP_MJ_CREATE, opened, access);
    if status < 0 {
        // SAFETY: allocated above, never handed out.
        unsafe { unbox(opened) };
        return status;
    }
    io().files.insert(opened.addr(), opened);
    // SAFETY: the caller's out parameters (the import's contract).
    unsafe { file.write(opened.cast()) };
    // SAFETY: as above.
    unsafe { device.write(control.device) };
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ObfDereferenceObject(object: *mut c_void) -> isize {
    let _kernel = crate::invoke::kernel_code();
    let Some(file) = io().files.remove(&object.addr()) else {
        state().violation(format!("ObfDereferenceObject of {object:p}: not an object the model referenced for the caller"));
        return 0;
    };
    // The last reference to a file object: the I/O manager cleans up and closes the handle.
    let cleaned = send(IRP_MJ_CLEANUP, file, 0);
    let closed = send(IRP_MJ_CLOSE, file, 0);
    if cleaned < 0 || closed < 0 {
        state().violation(format!("IRP_MJ_CLEANUP / IRP_MJ_CLOSE of a kernel client's file object failed: {cleaned:#x} / {closed:#x}"));
    }
    // SAFETY: allocated by `IoGetDeviceObjectPointer`, freed once (removed above).
    unsafe { unbox(file) };
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IoBuildDeviceIoControlRequest(
    code: u32,
    device: *mut DeviceObject,
    input: *mut c_void,
    input_length: u32,
    output: *mut c_void,
    output_length: u32,
    internal: u8,
    event: *mut KEvent,
    io_status: *mut IoStatusBlock,
) -> *mut Irp {
    let _kernel = crate::invoke::kernel_code();
    state().require_passive("IoBuildDeviceIoControlRequest");
    if crate::low_resources::fail_allocation(crate::low_resources::AllocationKind::Pool) {
        return std::ptr::null_mut();
    }
    if (code & 3) != 3 {
        crate::not_modelled("IoBuildDeviceIoControlRequest of a code other than METHOD_NEITHER");
    }
    let mut stack_location: IoStackLocation = zero();
    stack_location.major_function = if internal != 0 { IRP_MJ_INTERNAL_DEVICE_CONTROL } else { IRP_MJ_DEVICE_CONTROL } as u8;
    stack_location.device_object = device;
    // METHOD_NEITHER: the caller's buffers as they are.
    let mut parameters: wanlayer_ndis::io::DeviceIoControlParameters = zero();
    parameters.output_buffer_length = output_length;
    parameters.input_buffer_length = input_length;
    parameters.io_control_code = code;
    parameters.type3_input_buffer = input;
    stack_location.parameters.device_io_control = parameters;
    let location = boxed(stack_location);
    let irp = boxed(IrpLayout {
        user_buffer: output,
        user_iosb: io_status,
        user_event: event.cast(),
        requestor_mode: 0,
        current_stack_location: location,
        stack_count: 1,
        current_location: 1,
        ..zero()
    });
    io().built.insert(irp.addr(), Built { irp, location });
    irp.cast()
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IofCallDriver(device: *mut DeviceObject, irp: *mut Irp) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    let Some(control) = crate::control_device().filter(|control| control.device == device) else {
        crate::not_modelled("IofCallDriver to a device other than the registered control device");
    };
    // SAFETY: an IRP the caller built for this device (the import's contract), laid out as
    // `IrpLayout` with its stack location set.
    let location = unsafe { (*irp.cast::<IrpLayout>()).current_stack_location };
    // SAFETY: as above: its stack location.
    let major = usize::from(unsafe { (*location).major_function });
    let Some(dispatch) = control.dispatch.get(major).copied().flatten() else {
        state().violation(format!("IofCallDriver: the device has no dispatch routine for major function {major}"));
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    if crate::irql() != PASSIVE_LEVEL {
        state().violation("IofCallDriver above PASSIVE_LEVEL to a device whose dispatch runs at PASSIVE_LEVEL");
    }
    // SAFETY: the device's dispatch routine with the caller's IRP, as the I/O manager calls it.
    unsafe { invoke::call(dispatch, (device, irp)) }
}

/// `IofCompleteRequest` of `irp` with `status` and `information`: a built IRP's caller gets its
/// `IO_STATUS_BLOCK` and its event, and the IRP is freed.
pub(crate) fn completed(irp: *mut Irp, status: NtStatus, information: usize) {
    let Some(built) = io().built.remove(&irp.addr()) else { return };
    // SAFETY: an IRP built here, still allocated.
    let layout = unsafe { &*built.irp };
    let (iosb, event) = (layout.user_iosb, layout.user_event);
    // SAFETY: the caller's IO_STATUS_BLOCK, valid until the request completes
    // (IoBuildDeviceIoControlRequest's contract), when not null.
    if let Some(iosb) = unsafe { iosb.as_mut() } {
        iosb.status = status;
        iosb.information = information;
    }
    if !event.is_null() {
        io().events.insert(event.addr(), true);
    }
    // SAFETY: built by `IoBuildDeviceIoControlRequest`, freed once (removed above).
    unsafe { unbox(built.irp) };
    // SAFETY: as above.
    unsafe { unbox(built.location) };
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeInitializeEvent(event: *mut KEvent, _kind: EventType, signalled: u8) {
    let _kernel = crate::invoke::kernel_code();
    io().events.insert(event.addr(), signalled != 0);
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeWaitForSingleObject(
    object: *mut c_void,
    _reason: KWaitReason,
    _mode: KProcessorMode,
    _alertable: u8,
    timeout: *mut i64,
) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    state().require_passive("KeWaitForSingleObject");
    match io().events.get(&object.addr()) {
        Some(true) => 0,
        Some(false) if !timeout.is_null() => 0x0000_0102,
        Some(false) => {
            state().violation("KeWaitForSingleObject on an event nobody signals: the wait would never end");
            STATUS_PENDING as NtStatus
        }
        None => crate::not_modelled("KeWaitForSingleObject on an object other than an event KeInitializeEvent initialised"),
    }
}
