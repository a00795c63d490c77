//! The control device: `\Device\WanLayer`, linked as `\DosDevices\WanLayer` (`\\.\WanLayer` from
//! user mode), created with `NdisRegisterDeviceEx` so NDIS routes its IRPs to the dispatch
//! routine here, secured to SYSTEM and Administrators ([`identity::CONTROL_DEVICE_SDDL`]).
//!
//! Create, close and cleanup succeed; device control answers one IOCTL,
//! [`version::IOCTL_WANLAYER_QUERY_VERSION`]; every other request is
//! `STATUS_INVALID_DEVICE_REQUEST`. The dispatch routine finds what it needs in the device's
//! reserved extension (`NdisGetDeviceReservedExtension`, not `DeviceExtension`, which NDIS owns).

pub mod version;

use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use wanlayer_core::EngineConfig;
use wanlayer_ndis::filter::DeviceObjectAttributes;
use wanlayer_ndis::imports;
use wanlayer_ndis::io::{
    complete_irp, irp_request, STATUS_BUFFER_TOO_SMALL, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_REQUEST, STATUS_SUCCESS,
};
use wanlayer_ndis::kernel::{
    DeviceObject, DriverDispatch, Irp, NtStatus, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_COUNT, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL,
};
use wanlayer_ndis::types::{DeviceHandle, FilterDriverHandle};

use crate::identity;
use version::{VersionInfo, IOCTL_WANLAYER_QUERY_VERSION};

/// "WLcd": marks an initialised [`DeviceExtension`].
const SIGNATURE: u32 = u32::from_le_bytes(*b"WLcd");

/// What the dispatch routine reads from `NdisGetDeviceReservedExtension`. Zeroed by the I/O
/// manager; [`register`] fills it in before anyone can be answered (the signature is stored last,
/// with release ordering; a request that finds no signature gets `STATUS_DEVICE_NOT_READY`).
#[repr(C)]
struct DeviceExtension {
    signature: AtomicU32,
    config: AtomicPtr<EngineConfig>,
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
/// `filter_driver` is the registered filter driver handle; `config` outlives the device.
pub unsafe fn register(filter_driver: FilterDriverHandle, config: &'static EngineConfig) -> Result<ControlDevice, NtStatus> {
    let mut major_functions: [Option<DriverDispatch>; IRP_MJ_COUNT] = [None; IRP_MJ_COUNT];
    for major in [IRP_MJ_CREATE, IRP_MJ_CLOSE, IRP_MJ_CLEANUP, IRP_MJ_DEVICE_CONTROL] {
        major_functions[major] = Some(dispatch);
    }
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
    extension.config.store(ptr::from_ref(config).cast_mut(), Ordering::Relaxed);
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

/// The dispatch routine of every major function the device handles.
///
/// # IRQL
/// `PASSIVE_LEVEL` (the I/O manager calls it in the requesting thread).
///
/// # Ownership
/// The IRP is completed here, always, with `IoStatus` set; never pended.
unsafe extern "system" fn dispatch(device: *mut DeviceObject, irp: *mut Irp) -> NtStatus {
    // SAFETY: the I/O manager passes a live IRP addressed to this device, not completed yet.
    let request = unsafe { irp_request(irp) };
    // SAFETY: `device` is our control device, created with a `DeviceExtension`-sized reserved
    // extension.
    let extension = unsafe { imports::NdisGetDeviceReservedExtension(device) }.cast::<DeviceExtension>();
    // SAFETY: null or the device's extension, valid while the device exists (as long as the IRP).
    let config = match unsafe { extension.as_ref() } {
        Some(extension) if extension.signature.load(Ordering::Acquire) == SIGNATURE => {
            // SAFETY: set by `register` to a `'static` configuration before the signature.
            unsafe { extension.config.load(Ordering::Relaxed).as_ref() }
        }
        _ => None,
    };
    let (status, information) = match (usize::from(request.major_function), config) {
        (_, None) => (STATUS_DEVICE_NOT_READY, 0),
        (IRP_MJ_CREATE | IRP_MJ_CLOSE | IRP_MJ_CLEANUP, Some(_)) => (STATUS_SUCCESS, 0),
        (IRP_MJ_DEVICE_CONTROL, Some(config)) => match request.device_io_control {
            Some(control) => device_control(control, request.system_buffer.cast(), config),
            None => (STATUS_INVALID_DEVICE_REQUEST, 0),
        },
        (_, Some(_)) => (STATUS_INVALID_DEVICE_REQUEST, 0),
    };
    // SAFETY: the IRP is ours to complete, once, and is not touched afterwards.
    unsafe { complete_irp(irp, status, information) }
}

/// Answers one device control: status and bytes written.
fn device_control(
    control: wanlayer_ndis::io::DeviceIoControlParameters,
    buffer: *mut u8,
    config: &EngineConfig,
) -> (NtStatus, usize) {
    if control.io_control_code != IOCTL_WANLAYER_QUERY_VERSION {
        return (STATUS_INVALID_DEVICE_REQUEST, 0);
    }
    let length = control.output_buffer_length as usize;
    if length < VersionInfo::LEN || buffer.is_null() {
        return (STATUS_BUFFER_TOO_SMALL, 0);
    }
    // SAFETY: METHOD_BUFFERED: the system buffer holds max(input, output) bytes, at least
    // `length` (checked non-null), owned by the IRP we are handling, not aliased meanwhile.
    let out = unsafe { core::slice::from_raw_parts_mut(buffer, length) };
    match VersionInfo::current(config).emit(out) {
        Some(written) => (STATUS_SUCCESS, written),
        None => (STATUS_BUFFER_TOO_SMALL, 0),
    }
}
