//! `IRP_MJ_INTERNAL_DEVICE_CONTROL` of the control device: how a vendor driver obtains the
//! provider table. One request, [`IOCTL_WANLAYER_PROVIDER_QUERY_TABLE`], `METHOD_NEITHER`, from
//! kernel mode only (user mode cannot send an internal device control at all; `RequestorMode` is
//! checked anyway). The request and the table are the caller's own buffers; the answer is
//! `wanlayer_sdk::provider::Host::answer`, the code the simulator tests run.

use wanlayer_ndis::io::{complete_irp, irp_internal_device_control};
use wanlayer_ndis::kernel::{DeviceObject, Irp, NtStatus, KERNEL_MODE};
use wanlayer_sdk::abi::{Status, IOCTL_WANLAYER_PROVIDER_QUERY_TABLE};

/// The dispatch routine of `IRP_MJ_INTERNAL_DEVICE_CONTROL`.
///
/// # IRQL
/// `PASSIVE_LEVEL` (the vendor's `DriverEntry`, through `IofCallDriver`); the answer itself is
/// callable at `<= DISPATCH_LEVEL`.
///
/// # Ownership
/// The IRP is completed here, always, with `IoStatus` set (`Information`: bytes of the table
/// written); never pended.
///
/// # Safety
/// Called by the I/O manager with a live IRP addressed to the control device.
pub unsafe extern "system" fn dispatch_internal(_device: *mut DeviceObject, irp: *mut Irp) -> NtStatus {
    // SAFETY: the I/O manager passes a live IRP addressed to this device, not completed yet.
    let request = unsafe { irp_internal_device_control(irp) };
    let (status, information) = match request {
        None => (Status::INVALID_DEVICE_REQUEST, 0),
        Some(request) if request.requestor_mode != KERNEL_MODE => (Status::ACCESS_DENIED, 0),
        Some(request) if request.parameters.io_control_code != IOCTL_WANLAYER_PROVIDER_QUERY_TABLE => {
            (Status::INVALID_DEVICE_REQUEST, 0)
        }
        Some(request) => match crate::provider::host() {
            None => (Status::DEVICE_NOT_READY, 0),
            // SAFETY: METHOD_NEITHER from kernel mode: `Type3InputBuffer` holds the caller's
            // request of `InputBufferLength` bytes and `UserBuffer` its table of
            // `OutputBufferLength` bytes, both valid until the IRP completes (below); the host is
            // a static that stays in place until DriverUnload, which no referenced caller sees.
            Some(host) => unsafe {
                host.answer(
                    request.parameters.type3_input_buffer.cast(),
                    request.parameters.input_buffer_length as usize,
                    request.user_buffer.cast(),
                    request.parameters.output_buffer_length as usize,
                )
            },
        },
    };
    // SAFETY: the IRP is ours to complete, once, and is not touched afterwards.
    unsafe { complete_irp(irp, status.0, information) }
}
