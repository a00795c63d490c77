//! The I/O manager structures a driver with a control device touches: `DRIVER_OBJECT` (to set
//! `DriverUnload`), `IRP` and `IO_STACK_LOCATION` (to answer create, close, cleanup and device
//! control), `IO_STATUS_BLOCK`, the `NTSTATUS` values those answers use, and `CTL_CODE`.
//!
//! [`DriverObject`], [`Irp`] and [`DeviceObject`] stay opaque
//! handles in [`crate::kernel`]; the `*Layout` structures here declare the prefix of each that is
//! read or written, with the x64/ARM64 offsets of the public `wdm.h` declarations asserted, and a
//! pointer to the opaque type is cast to a pointer to its layout to reach a field. The
//! structures are always the I/O manager's: never allocated here.

use core::ffi::c_void;

use crate::kernel::{DeviceObject, DriverDispatch, DriverObject, Irp, NtStatus, IRP_MJ_COUNT};
use crate::nbl::Mdl;
use crate::types::UnicodeString;

/// `STATUS_SUCCESS`.
pub const STATUS_SUCCESS: NtStatus = 0;
/// `STATUS_UNSUCCESSFUL`.
pub const STATUS_UNSUCCESSFUL: NtStatus = 0xC000_0001_u32 as NtStatus;
/// `STATUS_INVALID_DEVICE_REQUEST`: an IOCTL the device does not answer.
pub const STATUS_INVALID_DEVICE_REQUEST: NtStatus = 0xC000_0010_u32 as NtStatus;
/// `STATUS_BUFFER_TOO_SMALL`: the output buffer cannot hold the answer.
pub const STATUS_BUFFER_TOO_SMALL: NtStatus = 0xC000_0023_u32 as NtStatus;
/// `STATUS_INSUFFICIENT_RESOURCES`.
pub const STATUS_INSUFFICIENT_RESOURCES: NtStatus = 0xC000_009A_u32 as NtStatus;
/// `STATUS_DEVICE_NOT_READY`.
pub const STATUS_DEVICE_NOT_READY: NtStatus = 0xC000_00A3_u32 as NtStatus;

/// `FILE_DEVICE_NETWORK`: the device type of NDIS control devices and of their IOCTL codes.
pub const FILE_DEVICE_NETWORK: u32 = 0x12;
/// `METHOD_BUFFERED`: input and output go through `AssociatedIrp.SystemBuffer`.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_ANY_ACCESS`.
pub const FILE_ANY_ACCESS: u32 = 0;
/// `FILE_READ_ACCESS`: the caller's handle needs read access.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS`: the caller's handle needs write access.
pub const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// `DRIVER_UNLOAD`.
pub type DriverUnload = unsafe extern "system" fn(driver: *mut DriverObject);

/// `DRIVER_OBJECT` (its whole public layout).
#[repr(C)]
pub struct DriverObjectLayout {
    /// `Type`.
    pub object_type: i16,
    /// `Size`.
    pub size: i16,
    /// `DeviceObject`: the first device the driver created.
    pub device_object: *mut DeviceObject,
    /// `Flags`.
    pub flags: u32,
    /// `DriverStart`.
    pub driver_start: *mut c_void,
    /// `DriverSize`.
    pub driver_size: u32,
    /// `DriverSection`.
    pub driver_section: *mut c_void,
    /// `DriverExtension`.
    pub driver_extension: *mut c_void,
    /// `DriverName`.
    pub driver_name: UnicodeString,
    /// `HardwareDatabase`.
    pub hardware_database: *mut UnicodeString,
    /// `FastIoDispatch`.
    pub fast_io_dispatch: *mut c_void,
    /// `DriverInit`.
    pub driver_init: *mut c_void,
    /// `DriverStartIo`.
    pub driver_start_io: *mut c_void,
    /// `DriverUnload`: set in `DriverEntry` to make the driver unloadable.
    pub driver_unload: Option<DriverUnload>,
    /// `MajorFunction`: NDIS fills these in for a filter driver's control device.
    pub major_function: [Option<DriverDispatch>; IRP_MJ_COUNT],
}

/// Sets `DriverObject->DriverUnload`.
///
/// # Safety
/// `driver` is the driver object `DriverEntry` received, and the call is made from `DriverEntry`
/// (the only time a driver writes its driver object).
pub unsafe fn set_driver_unload(driver: *mut DriverObject, unload: DriverUnload) {
    let driver = driver.cast::<DriverObjectLayout>();
    // SAFETY: the caller guarantees `driver` is our driver object, laid out as `DriverObjectLayout`
    // (asserted below), and writable during DriverEntry.
    unsafe { (*driver).driver_unload = Some(unload) }
}

/// `IO_STATUS_BLOCK`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IoStatusBlock {
    /// `Status` (a union with `Pointer`; only the `NTSTATUS` is written).
    pub status: NtStatus,
    _pointer_high: u32,
    /// `Information`: for a device control, the bytes written to the output buffer.
    pub information: usize,
}

/// `IRP` through `Tail.Overlay.OriginalFileObject` (the fields a dispatch routine uses are
/// `AssociatedIrp.SystemBuffer`, `IoStatus` and `Tail.Overlay.CurrentStackLocation`).
#[repr(C)]
pub struct IrpLayout {
    /// `Type`.
    pub irp_type: i16,
    /// `Size`.
    pub size: u16,
    /// `AllocationProcessorNumber`.
    pub allocation_processor_number: u16,
    /// `Reserved`.
    pub reserved: u16,
    /// `MdlAddress`.
    pub mdl_address: *mut Mdl,
    /// `Flags`.
    pub flags: u32,
    /// `AssociatedIrp.SystemBuffer` (a union with `MasterIrp` and `IrpCount`): for
    /// `METHOD_BUFFERED`, the input on entry and the output on completion.
    pub system_buffer: *mut c_void,
    /// `ThreadListEntry`.
    pub thread_list_entry: [*mut c_void; 2],
    /// `IoStatus`.
    pub io_status: IoStatusBlock,
    /// `RequestorMode`.
    pub requestor_mode: i8,
    /// `PendingReturned`.
    pub pending_returned: u8,
    /// `StackCount`.
    pub stack_count: i8,
    /// `CurrentLocation`.
    pub current_location: i8,
    /// `Cancel`.
    pub cancel: u8,
    /// `CancelIrql`.
    pub cancel_irql: u8,
    /// `ApcEnvironment`.
    pub apc_environment: i8,
    /// `AllocationFlags`.
    pub allocation_flags: u8,
    /// `UserIosb`.
    pub user_iosb: *mut IoStatusBlock,
    /// `UserEvent`.
    pub user_event: *mut c_void,
    /// `Overlay`.
    pub overlay: [*mut c_void; 2],
    /// `CancelRoutine`.
    pub cancel_routine: *mut c_void,
    /// `UserBuffer`.
    pub user_buffer: *mut c_void,
    /// `Tail.Overlay.DriverContext`.
    pub driver_context: [*mut c_void; 4],
    /// `Tail.Overlay.Thread`.
    pub thread: *mut c_void,
    /// `Tail.Overlay.AuxiliaryBuffer`.
    pub auxiliary_buffer: *mut c_void,
    /// `Tail.Overlay.ListEntry`.
    pub list_entry: [*mut c_void; 2],
    /// `Tail.Overlay.CurrentStackLocation` (`IoGetCurrentIrpStackLocation`).
    pub current_stack_location: *mut IoStackLocation,
    /// `Tail.Overlay.OriginalFileObject`.
    pub original_file_object: *mut c_void,
}

/// `IO_STACK_LOCATION.Parameters.DeviceIoControl`; `POINTER_ALIGNMENT` puts every `ULONG` after
/// the first on its own 8-byte slot on 64-bit Windows.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DeviceIoControlParameters {
    /// `OutputBufferLength`.
    pub output_buffer_length: u32,
    _pad0: u32,
    /// `InputBufferLength`.
    pub input_buffer_length: u32,
    _pad1: u32,
    /// `IoControlCode`.
    pub io_control_code: u32,
    _pad2: u32,
    /// `Type3InputBuffer`.
    pub type3_input_buffer: *mut c_void,
}

/// `IO_STACK_LOCATION.Parameters`: only `DeviceIoControl` is declared; `_size` gives the union
/// its size (four pointers).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IoStackParameters {
    /// `DeviceIoControl` (`IRP_MJ_DEVICE_CONTROL`).
    pub device_io_control: DeviceIoControlParameters,
    _size: [*mut c_void; 4],
}

/// `IO_STACK_LOCATION`.
#[repr(C)]
pub struct IoStackLocation {
    /// `MajorFunction`: one of the `IRP_MJ_*` of [`crate::kernel`].
    pub major_function: u8,
    /// `MinorFunction`.
    pub minor_function: u8,
    /// `Flags`.
    pub flags: u8,
    /// `Control`.
    pub control: u8,
    /// `Parameters`.
    pub parameters: IoStackParameters,
    /// `DeviceObject`.
    pub device_object: *mut DeviceObject,
    /// `FileObject`.
    pub file_object: *mut c_void,
    /// `CompletionRoutine`.
    pub completion_routine: *mut c_void,
    /// `Context`.
    pub context: *mut c_void,
}

/// What a dispatch routine reads from an IRP it was given.
#[derive(Clone, Copy, Debug)]
pub struct IrpRequest {
    /// `MajorFunction` of the current stack location.
    pub major_function: u8,
    /// For `IRP_MJ_DEVICE_CONTROL`: its parameters (zeroed for other requests).
    pub device_io_control: Option<DeviceIoControlParameters>,
    /// `AssociatedIrp.SystemBuffer`.
    pub system_buffer: *mut c_void,
}

/// Reads the current stack location and system buffer of an IRP sent to a dispatch routine.
///
/// # Safety
/// `irp` is the IRP a dispatch routine received and has not completed yet.
pub unsafe fn irp_request(irp: *mut Irp) -> IrpRequest {
    // SAFETY: the caller guarantees `irp` is a live IRP, laid out as `IrpLayout` (asserted below);
    // only reads of plain fields are made.
    let irp = unsafe { &*irp.cast::<IrpLayout>() };
    let location = irp.current_stack_location;
    // SAFETY: the current stack location of a live IRP in its dispatch routine is valid.
    let location = unsafe { &*location };
    let device_io_control = if usize::from(location.major_function) == crate::kernel::IRP_MJ_DEVICE_CONTROL {
        // SAFETY: for IRP_MJ_DEVICE_CONTROL the I/O manager filled in `Parameters.DeviceIoControl`.
        Some(unsafe { location.parameters.device_io_control })
    } else {
        None
    };
    IrpRequest { major_function: location.major_function, device_io_control, system_buffer: irp.system_buffer }
}

/// Sets `IoStatus` and completes the IRP (`IoCompleteRequest(irp, IO_NO_INCREMENT)`); returns
/// `status` for the dispatch routine to return.
///
/// # Safety
/// `irp` is the IRP a dispatch routine received, not completed yet; it is not touched afterwards.
#[cfg(target_os = "windows")]
pub unsafe fn complete_irp(irp: *mut Irp, status: NtStatus, information: usize) -> NtStatus {
    let layout = irp.cast::<IrpLayout>();
    // SAFETY: the caller guarantees `irp` is live and ours to complete; `IoStatus` is ours to
    // write until completion.
    unsafe { (*layout).io_status = IoStatusBlock { status, _pointer_high: 0, information } };
    // SAFETY: as above; after this call the IRP is the I/O manager's again.
    unsafe { crate::imports::IofCompleteRequest(irp, crate::kernel::IO_NO_INCREMENT) };
    status
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    type D = DriverObjectLayout;
    assert!(offset_of!(D, device_object) == 0x08);
    assert!(offset_of!(D, flags) == 0x10);
    assert!(offset_of!(D, driver_start) == 0x18);
    assert!(offset_of!(D, driver_size) == 0x20);
    assert!(offset_of!(D, driver_section) == 0x28);
    assert!(offset_of!(D, driver_extension) == 0x30);
    assert!(offset_of!(D, driver_name) == 0x38);
    assert!(offset_of!(D, hardware_database) == 0x48);
    assert!(offset_of!(D, fast_io_dispatch) == 0x50);
    assert!(offset_of!(D, driver_init) == 0x58);
    assert!(offset_of!(D, driver_start_io) == 0x60);
    assert!(offset_of!(D, driver_unload) == 0x68);
    assert!(offset_of!(D, major_function) == 0x70);
    assert!(size_of::<D>() == 0x150);

    assert!(offset_of!(IoStatusBlock, information) == 8 && size_of::<IoStatusBlock>() == 16);

    type I = IrpLayout;
    assert!(offset_of!(I, mdl_address) == 0x08);
    assert!(offset_of!(I, flags) == 0x10);
    assert!(offset_of!(I, system_buffer) == 0x18);
    assert!(offset_of!(I, thread_list_entry) == 0x20);
    assert!(offset_of!(I, io_status) == 0x30);
    assert!(offset_of!(I, requestor_mode) == 0x40);
    assert!(offset_of!(I, allocation_flags) == 0x47);
    assert!(offset_of!(I, user_iosb) == 0x48);
    assert!(offset_of!(I, user_event) == 0x50);
    assert!(offset_of!(I, overlay) == 0x58);
    assert!(offset_of!(I, cancel_routine) == 0x68);
    assert!(offset_of!(I, user_buffer) == 0x70);
    assert!(offset_of!(I, driver_context) == 0x78);
    assert!(offset_of!(I, thread) == 0x98);
    assert!(offset_of!(I, auxiliary_buffer) == 0xA0);
    assert!(offset_of!(I, list_entry) == 0xA8);
    assert!(offset_of!(I, current_stack_location) == 0xB8);
    assert!(offset_of!(I, original_file_object) == 0xC0);
    assert!(size_of::<I>() == 0xC8);

    type S = IoStackLocation;
    assert!(offset_of!(S, parameters) == 0x08);
    assert!(offset_of!(S, device_object) == 0x28);
    assert!(offset_of!(S, file_object) == 0x30);
    assert!(offset_of!(S, completion_routine) == 0x38);
    assert!(offset_of!(S, context) == 0x40);
    assert!(size_of::<S>() == 0x48);
    type P = DeviceIoControlParameters;
    // Offsets within `Parameters` (at 0x08 in the stack location): 0x08, 0x10, 0x18, 0x20 there.
    assert!(offset_of!(P, output_buffer_length) == 0x00);
    assert!(offset_of!(P, input_buffer_length) == 0x08);
    assert!(offset_of!(P, io_control_code) == 0x10);
    assert!(offset_of!(P, type3_input_buffer) == 0x18);
    assert!(size_of::<IoStackParameters>() == 0x20);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use core::ptr;
    use std::boxed::Box;
    use std::println;

    #[test]
    fn ctl_code_packs_like_the_macro() {
        // CTL_CODE(FILE_DEVICE_NETWORK, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS)
        assert_eq!(ctl_code(FILE_DEVICE_NETWORK, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS), 0x0012_6000);
        // IOCTL_NDIS_QUERY_GLOBAL_STATS = CTL_CODE(FILE_DEVICE_PHYSICAL_NETCARD, 0, METHOD_OUT_DIRECT, FILE_ANY_ACCESS)
        assert_eq!(ctl_code(0x17, 0, 2, FILE_ANY_ACCESS), 0x0017_0002);
        assert_eq!(ctl_code(FILE_DEVICE_NETWORK, 0x801, 3, FILE_WRITE_ACCESS), 0x0012_A007);
    }

    #[test]
    fn io_layouts_match_the_headers() {
        let fields = [
            ("DRIVER_OBJECT.DriverUnload", offset_of!(DriverObjectLayout, driver_unload), 0x68),
            ("DRIVER_OBJECT.MajorFunction", offset_of!(DriverObjectLayout, major_function), 0x70),
            ("IRP.AssociatedIrp", offset_of!(IrpLayout, system_buffer), 0x18),
            ("IRP.IoStatus", offset_of!(IrpLayout, io_status), 0x30),
            ("IRP.Tail.Overlay.CurrentStackLocation", offset_of!(IrpLayout, current_stack_location), 0xB8),
            ("IO_STACK_LOCATION.Parameters", offset_of!(IoStackLocation, parameters), 0x08),
            ("IO_STACK_LOCATION.FileObject", offset_of!(IoStackLocation, file_object), 0x30),
        ];
        for (name, got, want) in fields {
            println!("{name} @ {got:#x} (expected {want:#x})");
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(
            8 + offset_of!(DeviceIoControlParameters, io_control_code),
            0x18,
            "Parameters.DeviceIoControl.IoControlCode @ 0x18"
        );
    }

    #[test]
    fn an_irp_reads_its_device_control() {
        // SAFETY: all-zero bytes are a valid value of these integer-and-pointer structures.
        let mut location: Box<IoStackLocation> = Box::new(unsafe { core::mem::zeroed() });
        location.major_function = crate::kernel::IRP_MJ_DEVICE_CONTROL as u8;
        location.parameters.device_io_control = DeviceIoControlParameters {
            output_buffer_length: 24,
            _pad0: 0,
            input_buffer_length: 0,
            _pad1: 0,
            io_control_code: 0x0012_6000,
            _pad2: 0,
            type3_input_buffer: ptr::null_mut(),
        };
        // SAFETY: as above.
        let mut irp: Box<IrpLayout> = Box::new(unsafe { core::mem::zeroed() });
        let mut buffer = [0u8; 32];
        irp.system_buffer = buffer.as_mut_ptr().cast();
        irp.current_stack_location = &mut *location;
        let raw = (&mut *irp as *mut IrpLayout).cast::<Irp>();
        // SAFETY: the test's IRP and stack location are alive and laid out as the I/O manager's.
        let request = unsafe { irp_request(raw) };
        assert_eq!(request.major_function, 0x0e);
        let control = request.device_io_control.expect("a device control");
        assert_eq!((control.io_control_code, control.output_buffer_length), (0x0012_6000, 24));
        assert_eq!(request.system_buffer, buffer.as_mut_ptr().cast());

        location.major_function = crate::kernel::IRP_MJ_CREATE as u8;
        // SAFETY: as above.
        assert!(unsafe { irp_request(raw) }.device_io_control.is_none());
    }
}
