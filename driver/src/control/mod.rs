//! The control device: `\Device\WanLayer`, linked as `\DosDevices\WanLayer` (`\\.\WanLayer` from
//! user mode), created with `NdisRegisterDeviceEx` so NDIS routes its IRPs to the dispatch
//! routine here, secured to SYSTEM and Administrators ([`identity::CONTROL_DEVICE_SDDL`]).
//!
//! Every IOCTL of `wanlayer_proto` is answered by the engine's platform-neutral dispatcher
//! (`Engine::control().dispatch`), exactly as the simulator's control device
//! (`crates/wanlayer-sim/src/control.rs`) drives it; this module is the I/O manager's side:
//!
//! * [`handles`]: `IRP_MJ_CREATE` / `IRP_MJ_CLEANUP` / `IRP_MJ_CLOSE`, the per-handle context in
//!   `FileObject->FsContext` (the engine's `ControlHandle`, the access granted at create, a
//!   cancel-safe queue) and the token table that names handles to the waker;
//! * [`requests`]: `IRP_MJ_DEVICE_CONTROL` (complete, or queue a pending event read) and the
//!   servicing of a handle's pending reads;
//! * [`csq`]: the cancel-safe queue (`IO_CSQ`) of pending reads;
//! * [`waker`]: the engine's `EventWaker`, a DPC that services woken handles, installed in
//!   `DriverEntry` and removed first thing in `DriverUnload`;
//! * [`divert_timer`]: the user-mode hooks' expiry timer, set only while a hook holds packets;
//! * [`provider`]: `IRP_MJ_INTERNAL_DEVICE_CONTROL`, for vendor drivers.
//!
//! The dispatch routine finds the device's readiness in its reserved extension
//! (`NdisGetDeviceReservedExtension`, not `DeviceExtension`, which NDIS owns).

pub mod provider;
mod csq;
mod divert_timer;
mod handles;
mod requests;
mod waker;

pub use handles::MAX_HANDLES;
pub use waker::{install_waker, remove_waker};

use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use wanlayer_ndis::lightweight_filter::DeviceObjectAttributes;
use wanlayer_ndis::imports;
use wanlayer_ndis::io::{complete_irp, irp_request, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_REQUEST};
use wanlayer_ndis::kernel::{
    DeviceObject, DriverDispatch, Irp, NtStatus, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_COUNT, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL,
};
use wanlayer_ndis::types::{DeviceHandle, FilterDriverHandle};

use crate::identity;

/// "WLcd": marks an initialised [`DeviceExtension`].
const SIGNATURE: u32 = u32::from_le_bytes(*b"WLcd");

/// What the dispatch routine reads from `NdisGetDeviceReservedExtension`. Zeroed by the I/O
/// manager; [`register`] stores the signature once the device is set up (with release ordering;
/// a create or device control that finds no signature gets `STATUS_DEVICE_NOT_READY`).
#[repr(C)]
struct DeviceExtension {
    signature: AtomicU32,
}

/// The registered control device.
#[derive(Debug)]
pub struct ControlDevice {
    handle: DeviceHandle,
}

/// Creates the control device.
///
/// # IRQL
/// `PASSIVE_LEVEL` (`DriverEntry`, after the filter registered).
///
/// # Errors
/// The status `NdisRegisterDeviceEx` failed with, or `STATUS_DEVICE_NOT_READY` without an
/// extension (the device is deregistered again).
///
/// # Safety
/// `filter_driver` is the registered filter driver handle; the engine is installed, with the
/// waker ([`install_waker`]), and stays so until the device is deregistered.
pub unsafe fn register(filter_driver: FilterDriverHandle) -> Result<ControlDevice, NtStatus> {
    let mut major_functions: [Option<DriverDispatch>; IRP_MJ_COUNT] = [None; IRP_MJ_COUNT];
    for major in [IRP_MJ_CREATE, IRP_MJ_CLOSE, IRP_MJ_CLEANUP, IRP_MJ_DEVICE_CONTROL] {
        major_functions[major] = Some(dispatch);
    }
    major_functions[wanlayer_ndis::kernel::IRP_MJ_INTERNAL_DEVICE_CONTROL] = Some(provider::dispatch_internal);
    let mut device_name = identity::unicode(&identity::CONTROL_DEVICE_NAME_W);
    let mut symbolic_name = identity::unicode(&identity::CONTROL_SYMBOLIC_NAME_W);
    let sddl = identity::unicode(&identity::CONTROL_DEVICE_SDDL_W);
    let mut attributes = DeviceObjectAttributes {
        header: DeviceObjectAttributes::HEADER,
        device_name: &mut device_name,
        symbolic_name: &mut symbolic_name,
        major_functions: major_functions.as_mut_ptr(),
        extension_size: size_of::<DeviceExtension>() as u32,
        default_sddl_string: &sddl,
        device_class_guid: &identity::CONTROL_DEVICE_CLASS,
    };
    let mut device: *mut DeviceObject = ptr::null_mut();
    let mut handle = DeviceHandle::NULL;
    // SAFETY: PASSIVE_LEVEL with the registered filter driver handle (caller's promise); the
    // attributes and what they point to are valid for the call (NDIS copies the names and the
    // dispatch table).
    let status = unsafe { imports::NdisRegisterDeviceEx(filter_driver, &mut attributes, &mut device, &mut handle) };
    if status != 0 {
        return Err(status as NtStatus);
    }
    let control = ControlDevice { handle };
    // SAFETY: `device` is the device object NdisRegisterDeviceEx just created with an
    // `ExtensionSize` of a `DeviceExtension`.
    let extension = unsafe { imports::NdisGetDeviceReservedExtension(device) }.cast::<DeviceExtension>();
    // SAFETY: null, or the device's zeroed reserved extension (a valid `DeviceExtension`: zero is
    // a valid atomic), living as long as the device.
    let Some(extension) = (unsafe { extension.as_ref() }) else {
        // SAFETY: the device was registered just now and nothing uses it yet.
        unsafe { control.deregister() };
        return Err(STATUS_DEVICE_NOT_READY);
    };
    extension.signature.store(SIGNATURE, Ordering::Release);
    Ok(control)
}

impl ControlDevice {
    /// Gives up the device as its handle, to keep in a global until unload.
    pub fn into_handle(self) -> DeviceHandle {
        self.handle
    }

    /// The device whose handle [`ControlDevice::into_handle`] gave.
    ///
    /// # Safety
    /// `handle` came from `into_handle` and is turned back into a device once.
    pub unsafe fn from_handle(handle: DeviceHandle) -> Self {
        Self { handle }
    }

    /// Deletes the device and its symbolic link.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Safety
    /// Called once, from `DriverUnload` (the I/O manager calls it only once no handle to the
    /// device is open) or from a failed `DriverEntry`.
    pub unsafe fn deregister(self) {
        // SAFETY: the caller's promise; the handle came from NdisRegisterDeviceEx.
        unsafe { imports::NdisDeregisterDeviceEx(self.handle) };
    }
}

/// The dispatch routine of `IRP_MJ_CREATE`, `IRP_MJ_CLEANUP`, `IRP_MJ_CLOSE` and
/// `IRP_MJ_DEVICE_CONTROL`: routes each to [`handles`] or [`requests`]. Cleanup and close are
/// always handled (they release what a create made); a create or device control before the
/// device is set up gets `STATUS_DEVICE_NOT_READY`.
///
/// # IRQL
/// `PASSIVE_LEVEL` (the I/O manager calls it in the requesting thread; close in an arbitrary
/// one).
///
/// # Ownership
/// The IRP is completed, or (a device control that pends) queued and `STATUS_PENDING` returned.
///
/// # Safety
/// Called by the I/O manager only, as the control device's dispatch routine: `device` is the
/// control device and `irp` a live IRP addressed to it, not completed yet.
unsafe extern "system" fn dispatch(device: *mut DeviceObject, irp: *mut Irp) -> NtStatus {
    // SAFETY: the I/O manager passes a live IRP addressed to this device, not completed yet.
    let major = usize::from(unsafe { irp_request(irp) }.major_function);
    match major {
        // SAFETY: an IRP_MJ_CLEANUP of this device, not completed yet.
        IRP_MJ_CLEANUP => return unsafe { handles::cleanup(irp) },
        // SAFETY: an IRP_MJ_CLOSE of this device, not completed yet.
        IRP_MJ_CLOSE => return unsafe { handles::close(irp) },
        _ => {}
    }
    // SAFETY: `device` is our control device, created with a `DeviceExtension`-sized reserved
    // extension.
    let extension = unsafe { imports::NdisGetDeviceReservedExtension(device) }.cast::<DeviceExtension>();
    // SAFETY: null or the device's extension, valid while the device exists (as long as the IRP).
    let ready = unsafe { extension.as_ref() }.is_some_and(|extension| extension.signature.load(Ordering::Acquire) == SIGNATURE);
    match major {
        // SAFETY: the IRP is ours to complete, once, and is not touched afterwards.
        _ if !ready => unsafe { complete_irp(irp, STATUS_DEVICE_NOT_READY, 0) },
        // SAFETY: an IRP_MJ_CREATE of this device, not completed yet.
        IRP_MJ_CREATE => unsafe { handles::create(irp) },
        // SAFETY: an IRP_MJ_DEVICE_CONTROL of this device, not completed yet.
        IRP_MJ_DEVICE_CONTROL => unsafe { requests::device_control(irp) },
        // SAFETY: as the first arm.
        _ => unsafe { complete_irp(irp, STATUS_INVALID_DEVICE_REQUEST, 0) },
    }
}
