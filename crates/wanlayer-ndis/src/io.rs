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
use core::mem::size_of;

use crate::kernel::{AccessMask, DeviceObject, DriverDispatch, DriverObject, FileObject, Irp, NtStatus, IRP_MJ_COUNT};
use crate::nbl::Mdl;
use crate::types::UnicodeString;

/// `STATUS_SUCCESS`.
pub const STATUS_SUCCESS: NtStatus = 0;
/// `STATUS_PENDING`: the request completes later (wait for its event).
pub const STATUS_PENDING: NtStatus = 0x0000_0103;
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
/// `STATUS_INVALID_PARAMETER`.
pub const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D_u32 as NtStatus;
/// `STATUS_OBJECT_NAME_NOT_FOUND`: an open of a name below a device that has none.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NtStatus = 0xC000_0034_u32 as NtStatus;
/// `STATUS_TOO_MANY_OPENED_FILES`: every per-handle slot of a device is in use.
pub const STATUS_TOO_MANY_OPENED_FILES: NtStatus = 0xC000_011F_u32 as NtStatus;
/// `STATUS_CANCELLED`: a request cancelled, or completed because its handle closed.
pub const STATUS_CANCELLED: NtStatus = 0xC000_0120_u32 as NtStatus;

/// `FILE_DEVICE_NETWORK`: the device type of NDIS control devices and of their IOCTL codes.
pub const FILE_DEVICE_NETWORK: u32 = 0x12;
/// `METHOD_BUFFERED`: input and output go through `AssociatedIrp.SystemBuffer`.
pub const METHOD_BUFFERED: u32 = 0;
/// `METHOD_NEITHER`: the input is `Parameters.DeviceIoControl.Type3InputBuffer`, the output
/// `Irp->UserBuffer`, both the caller's own pointers (for kernel callers: no copy, no probe).
pub const METHOD_NEITHER: u32 = 3;
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
    /// The rest of the union with `Pointer`: 4 bytes on 64-bit Windows, none on x86.
    _pointer_high: [u8; size_of::<usize>() - size_of::<NtStatus>()],
    /// `Information`: for a device control, the bytes written to the output buffer.
    pub information: usize,
}

impl IoStatusBlock {
    /// A zeroed status block, for a request this driver sends.
    pub const fn new() -> Self {
        Self { status: 0, _pointer_high: [0; size_of::<usize>() - size_of::<NtStatus>()], information: 0 }
    }
}

impl Default for IoStatusBlock {
    fn default() -> Self {
        Self::new()
    }
}

/// `IRP` through `Tail.Overlay.OriginalFileObject` (the fields a dispatch routine uses are
/// `AssociatedIrp.SystemBuffer`, `IoStatus` and `Tail.Overlay.CurrentStackLocation`).
#[repr(C)]
pub struct IrpLayout {
    /// `Type`.
    pub irp_type: i16,
    /// `Size`.
    pub size: u16,
    /// `AllocationProcessorNumber` (64-bit Windows only: on x86 `MdlAddress` follows `Size`).
    #[cfg(target_pointer_width = "64")]
    pub allocation_processor_number: u16,
    /// `Reserved` (64-bit Windows only).
    #[cfg(target_pointer_width = "64")]
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

/// What `POINTER_ALIGNMENT` (`DECLSPEC_ALIGN(8)` on 64-bit Windows, nothing on x86) adds after a
/// `ULONG` of the `IO_STACK_LOCATION` parameters: 4 bytes on 64-bit Windows, none on x86.
pub type PointerAlignmentPad = [u8; POINTER_ALIGNMENT_PAD];

/// The length of [`PointerAlignmentPad`].
pub const POINTER_ALIGNMENT_PAD: usize = if cfg!(target_pointer_width = "64") { 4 } else { 0 };

/// `IO_STACK_LOCATION.Parameters.DeviceIoControl`; `POINTER_ALIGNMENT` puts every `ULONG` after
/// the first on its own 8-byte slot on 64-bit Windows.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DeviceIoControlParameters {
    /// `OutputBufferLength`.
    pub output_buffer_length: u32,
    _pad0: PointerAlignmentPad,
    /// `InputBufferLength`.
    pub input_buffer_length: u32,
    _pad1: PointerAlignmentPad,
    /// `IoControlCode`.
    pub io_control_code: u32,
    _pad2: PointerAlignmentPad,
    /// `Type3InputBuffer`.
    pub type3_input_buffer: *mut c_void,
}

/// `IO_STACK_LOCATION.Parameters`: only `DeviceIoControl` and `Create` are declared; `_size`
/// gives the union its size (four pointers).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IoStackParameters {
    /// `DeviceIoControl` (`IRP_MJ_DEVICE_CONTROL`).
    pub device_io_control: DeviceIoControlParameters,
    /// `Create` (`IRP_MJ_CREATE`).
    pub create: CreateParameters,
    _size: [*mut c_void; 4],
}

/// `IO_SECURITY_CONTEXT`: the security side of an `IRP_MJ_CREATE`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IoSecurityContext {
    /// `SecurityQos` (system use).
    pub security_qos: *mut c_void,
    /// `AccessState` (`PACCESS_STATE`; file systems only).
    pub access_state: *mut c_void,
    /// `DesiredAccess`: the access the open asks for. The I/O manager maps generic rights to
    /// specific ones (`GENERIC_READ` → `FILE_GENERIC_READ`, which holds `FILE_READ_DATA`) before
    /// it checks the device's security descriptor and builds the IRP; `MAXIMUM_ALLOWED` stays as
    /// it is.
    pub desired_access: AccessMask,
    /// `FullCreateOptions` (system use).
    pub full_create_options: u32,
}

/// `IO_STACK_LOCATION.Parameters.Create`; `POINTER_ALIGNMENT` puts `FileAttributes` and
/// `EaLength` on 8-byte slots on 64-bit Windows.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CreateParameters {
    /// `SecurityContext`.
    pub security_context: *mut IoSecurityContext,
    /// `Options`: the create disposition in the top byte, the create options below.
    pub options: u32,
    _pad0: PointerAlignmentPad,
    /// `FileAttributes`.
    pub file_attributes: u16,
    /// `ShareAccess`.
    pub share_access: u16,
    _pad1: PointerAlignmentPad,
    /// `EaLength`.
    pub ea_length: u32,
    _pad2: PointerAlignmentPad,
}

/// `FILE_OBJECT` through `FileName` (the fields a device driver reads or owns: `FsContext` and
/// `FsContext2` are the driver's, from its `IRP_MJ_CREATE` to its `IRP_MJ_CLOSE`).
#[repr(C)]
pub struct FileObjectLayout {
    /// `Type` (`IO_TYPE_FILE`).
    pub object_type: i16,
    /// `Size`.
    pub size: i16,
    /// `DeviceObject`.
    pub device_object: *mut DeviceObject,
    /// `Vpb`.
    pub vpb: *mut c_void,
    /// `FsContext`: the driver's per-open context.
    pub fs_context: *mut c_void,
    /// `FsContext2`.
    pub fs_context2: *mut c_void,
    /// `SectionObjectPointer`.
    pub section_object_pointer: *mut c_void,
    /// `PrivateCacheMap`.
    pub private_cache_map: *mut c_void,
    /// `FinalStatus`.
    pub final_status: NtStatus,
    /// `RelatedFileObject`: set for an open relative to another handle.
    pub related_file_object: *mut FileObject,
    /// `LockOperation`.
    pub lock_operation: u8,
    /// `DeletePending`.
    pub delete_pending: u8,
    /// `ReadAccess`.
    pub read_access: u8,
    /// `WriteAccess`.
    pub write_access: u8,
    /// `DeleteAccess`.
    pub delete_access: u8,
    /// `SharedRead`.
    pub shared_read: u8,
    /// `SharedWrite`.
    pub shared_write: u8,
    /// `SharedDelete`.
    pub shared_delete: u8,
    /// `Flags` (`FO_*`).
    pub flags: u32,
    /// `FileName`: what the open named below the device (`\\.\WanLayer\x` gives `\x`);
    /// empty for an open of the device itself.
    pub file_name: UnicodeString,
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

/// What a dispatch routine reads from an internal device control
/// (`IRP_MJ_INTERNAL_DEVICE_CONTROL`): its parameters, where `METHOD_NEITHER` puts the output, and
/// who sent it.
#[derive(Clone, Copy, Debug)]
pub struct InternalDeviceControl {
    /// `Parameters.DeviceIoControl` (for `METHOD_NEITHER`, `type3_input_buffer` is the input).
    pub parameters: DeviceIoControlParameters,
    /// `Irp->UserBuffer`: the output of a `METHOD_NEITHER` request.
    pub user_buffer: *mut c_void,
    /// `Irp->RequestorMode`: `KernelMode` (0) for a request another driver built.
    pub requestor_mode: i8,
}

/// Reads an internal device control; `None` when the IRP's current stack location is another
/// major function.
///
/// # Safety
/// `irp` is the IRP a dispatch routine received and has not completed yet.
pub unsafe fn irp_internal_device_control(irp: *mut Irp) -> Option<InternalDeviceControl> {
    // SAFETY: the caller guarantees `irp` is a live IRP, laid out as `IrpLayout` (asserted below);
    // only reads of plain fields are made.
    let irp = unsafe { &*irp.cast::<IrpLayout>() };
    // SAFETY: the current stack location of a live IRP in its dispatch routine is valid.
    let location = unsafe { &*irp.current_stack_location };
    if usize::from(location.major_function) != crate::kernel::IRP_MJ_INTERNAL_DEVICE_CONTROL {
        return None;
    }
    // SAFETY: for IRP_MJ_INTERNAL_DEVICE_CONTROL the I/O manager (IoBuildDeviceIoControlRequest)
    // filled in `Parameters.DeviceIoControl`, as for IRP_MJ_DEVICE_CONTROL.
    let parameters = unsafe { location.parameters.device_io_control };
    Some(InternalDeviceControl { parameters, user_buffer: irp.user_buffer, requestor_mode: irp.requestor_mode })
}

/// What a dispatch routine reads from an `IRP_MJ_CREATE`.
#[derive(Clone, Copy, Debug)]
pub struct CreateRequest {
    /// The file object being opened (null only in a malformed request).
    pub file_object: *mut FileObject,
    /// `SecurityContext->DesiredAccess` (0 without a security context).
    pub desired_access: AccessMask,
    /// Bytes of `FileObject->FileName`: 0 for an open of the device itself.
    pub file_name_length: u16,
    /// `FileObject->RelatedFileObject`: non-null for an open relative to another handle.
    pub related_file_object: *mut FileObject,
    /// `Irp->RequestorMode`.
    pub requestor_mode: i8,
}

/// Reads an `IRP_MJ_CREATE`; `None` when the IRP's current stack location is another major
/// function.
///
/// # Safety
/// `irp` is the IRP a dispatch routine received and has not completed yet.
pub unsafe fn irp_create(irp: *mut Irp) -> Option<CreateRequest> {
    // SAFETY: the caller guarantees `irp` is a live IRP, laid out as `IrpLayout` (asserted below);
    // only reads of plain fields are made.
    let irp = unsafe { &*irp.cast::<IrpLayout>() };
    // SAFETY: the current stack location of a live IRP in its dispatch routine is valid.
    let location = unsafe { &*irp.current_stack_location };
    if usize::from(location.major_function) != crate::kernel::IRP_MJ_CREATE {
        return None;
    }
    // SAFETY: for IRP_MJ_CREATE the I/O manager filled in `Parameters.Create`.
    let parameters = unsafe { location.parameters.create };
    // SAFETY: null, or the security context the I/O manager built for this create, valid until
    // the IRP completes.
    let desired_access = unsafe { parameters.security_context.as_ref() }.map_or(0, |context| context.desired_access);
    let file_object = location.file_object.cast::<FileObject>();
    // SAFETY: null, or the file object being opened, valid (and not yet shared with anyone) while
    // its create IRP is in progress.
    let (file_name_length, related_file_object) = match unsafe { file_object.cast::<FileObjectLayout>().as_ref() } {
        Some(file) => (file.file_name.length, file.related_file_object),
        None => (0, core::ptr::null_mut()),
    };
    Some(CreateRequest { file_object, desired_access, file_name_length, related_file_object, requestor_mode: irp.requestor_mode })
}

/// `IoGetCurrentIrpStackLocation(irp)->FileObject`: the file object a request was sent on (null
/// for requests another driver built without one).
///
/// # Safety
/// `irp` is an IRP the caller owns and has not completed yet.
pub unsafe fn irp_file_object(irp: *mut Irp) -> *mut FileObject {
    // SAFETY: the caller guarantees `irp` is a live IRP, laid out as `IrpLayout`.
    let location = unsafe { (*irp.cast::<IrpLayout>()).current_stack_location };
    // SAFETY: the current stack location of a live IRP is valid while the IRP is owned.
    unsafe { (*location).file_object }.cast::<FileObject>()
}

/// `FileObject->FsContext`.
///
/// # Safety
/// `file` is a live file object of the caller's device, between its `IRP_MJ_CREATE` and the end
/// of its `IRP_MJ_CLOSE` (the driver owns the field then; nothing writes it concurrently).
pub unsafe fn file_object_fs_context(file: *mut FileObject) -> *mut c_void {
    // SAFETY: the caller's promise; `FileObjectLayout` is the header's prefix (asserted below).
    unsafe { (*file.cast::<FileObjectLayout>()).fs_context }
}

/// Sets `FileObject->FsContext`.
///
/// # Safety
/// As [`file_object_fs_context`], from the dispatch routine of the file object's `IRP_MJ_CREATE`
/// or `IRP_MJ_CLOSE` (no other request on it is in progress then).
pub unsafe fn set_file_object_fs_context(file: *mut FileObject, context: *mut c_void) {
    // SAFETY: the caller's promise; `FileObjectLayout` is the header's prefix (asserted below).
    unsafe { (*file.cast::<FileObjectLayout>()).fs_context = context };
}

/// Sets `IoStatus` and completes the IRP (`IoCompleteRequest(irp, IO_NO_INCREMENT)`); returns
/// `status` for the dispatch routine to return.
///
/// # Safety
/// `irp` is the IRP a dispatch routine received, not completed yet; it is not touched afterwards.
pub unsafe fn complete_irp(irp: *mut Irp, status: NtStatus, information: usize) -> NtStatus {
    let layout = irp.cast::<IrpLayout>();
    // SAFETY: the caller guarantees `irp` is live and ours to complete; `IoStatus` is ours to
    // write until completion.
    unsafe { (*layout).io_status = IoStatusBlock { status, _pointer_high: [0; size_of::<usize>() - size_of::<NtStatus>()], information } };
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
    type C = CreateParameters;
    // Within `Parameters`: SecurityContext 0x00, Options 0x08, FileAttributes 0x10,
    // ShareAccess 0x12, EaLength 0x18.
    assert!(offset_of!(C, security_context) == 0x00);
    assert!(offset_of!(C, options) == 0x08);
    assert!(offset_of!(C, file_attributes) == 0x10);
    assert!(offset_of!(C, share_access) == 0x12);
    assert!(offset_of!(C, ea_length) == 0x18);
    assert!(size_of::<C>() == 0x20);
    type X = IoSecurityContext;
    assert!(offset_of!(X, access_state) == 0x08);
    assert!(offset_of!(X, desired_access) == 0x10);
    assert!(offset_of!(X, full_create_options) == 0x14);
    assert!(size_of::<X>() == 0x18);

    type F = FileObjectLayout;
    assert!(offset_of!(F, device_object) == 0x08);
    assert!(offset_of!(F, vpb) == 0x10);
    assert!(offset_of!(F, fs_context) == 0x18);
    assert!(offset_of!(F, fs_context2) == 0x20);
    assert!(offset_of!(F, section_object_pointer) == 0x28);
    assert!(offset_of!(F, private_cache_map) == 0x30);
    assert!(offset_of!(F, final_status) == 0x38);
    assert!(offset_of!(F, related_file_object) == 0x40);
    assert!(offset_of!(F, lock_operation) == 0x48);
    assert!(offset_of!(F, shared_delete) == 0x4F);
    assert!(offset_of!(F, flags) == 0x50);
    assert!(offset_of!(F, file_name) == 0x58);
    assert!(size_of::<F>() == 0x68);
};

// x86 (`x86-facts.md` §3, from the WDK headers): no `POINTER_ALIGNMENT` padding, no
// `AllocationProcessorNumber` in the IRP, 4-byte pointers.
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{offset_of, size_of};
    type D = DriverObjectLayout;
    assert!(offset_of!(D, device_object) == 0x04);
    assert!(offset_of!(D, flags) == 0x08);
    assert!(offset_of!(D, driver_start) == 0x0C);
    assert!(offset_of!(D, driver_size) == 0x10);
    assert!(offset_of!(D, driver_section) == 0x14);
    assert!(offset_of!(D, driver_extension) == 0x18);
    assert!(offset_of!(D, driver_name) == 0x1C);
    assert!(offset_of!(D, hardware_database) == 0x24);
    assert!(offset_of!(D, fast_io_dispatch) == 0x28);
    assert!(offset_of!(D, driver_init) == 0x2C);
    assert!(offset_of!(D, driver_start_io) == 0x30);
    assert!(offset_of!(D, driver_unload) == 0x34);
    assert!(offset_of!(D, major_function) == 0x38);
    assert!(size_of::<D>() == 0xA8);

    assert!(offset_of!(IoStatusBlock, information) == 4 && size_of::<IoStatusBlock>() == 8);

    type I = IrpLayout;
    assert!(offset_of!(I, mdl_address) == 0x04);
    assert!(offset_of!(I, flags) == 0x08);
    assert!(offset_of!(I, system_buffer) == 0x0C);
    assert!(offset_of!(I, thread_list_entry) == 0x10);
    assert!(offset_of!(I, io_status) == 0x18);
    assert!(offset_of!(I, requestor_mode) == 0x20);
    assert!(offset_of!(I, allocation_flags) == 0x27);
    assert!(offset_of!(I, user_iosb) == 0x28);
    assert!(offset_of!(I, user_event) == 0x2C);
    assert!(offset_of!(I, overlay) == 0x30);
    assert!(offset_of!(I, cancel_routine) == 0x38);
    assert!(offset_of!(I, user_buffer) == 0x3C);
    assert!(offset_of!(I, driver_context) == 0x40);
    assert!(offset_of!(I, thread) == 0x50);
    assert!(offset_of!(I, auxiliary_buffer) == 0x54);
    assert!(offset_of!(I, list_entry) == 0x58);
    assert!(offset_of!(I, current_stack_location) == 0x60);
    assert!(offset_of!(I, original_file_object) == 0x64);
    assert!(size_of::<I>() == 0x68);

    type S = IoStackLocation;
    assert!(offset_of!(S, parameters) == 0x04);
    assert!(offset_of!(S, device_object) == 0x14);
    assert!(offset_of!(S, file_object) == 0x18);
    assert!(offset_of!(S, completion_routine) == 0x1C);
    assert!(offset_of!(S, context) == 0x20);
    assert!(size_of::<S>() == 0x24);
    type P = DeviceIoControlParameters;
    // Within `Parameters` (at 0x04 in the stack location): 0x04, 0x08, 0x0C, 0x10 there.
    assert!(offset_of!(P, output_buffer_length) == 0x00);
    assert!(offset_of!(P, input_buffer_length) == 0x04);
    assert!(offset_of!(P, io_control_code) == 0x08);
    assert!(offset_of!(P, type3_input_buffer) == 0x0C);
    assert!(size_of::<IoStackParameters>() == 0x10);
    type C = CreateParameters;
    // Within `Parameters`: SecurityContext 0x00, Options 0x04, FileAttributes 0x08,
    // ShareAccess 0x0A, EaLength 0x0C.
    assert!(offset_of!(C, security_context) == 0x00);
    assert!(offset_of!(C, options) == 0x04);
    assert!(offset_of!(C, file_attributes) == 0x08);
    assert!(offset_of!(C, share_access) == 0x0A);
    assert!(offset_of!(C, ea_length) == 0x0C);
    assert!(size_of::<C>() == 0x10);
    type X = IoSecurityContext;
    assert!(offset_of!(X, access_state) == 0x04);
    assert!(offset_of!(X, desired_access) == 0x08);
    assert!(offset_of!(X, full_create_options) == 0x0C);
    assert!(size_of::<X>() == 0x10);

    type F = FileObjectLayout;
    assert!(offset_of!(F, device_object) == 0x04);
    assert!(offset_of!(F, vpb) == 0x08);
    assert!(offset_of!(F, fs_context) == 0x0C);
    assert!(offset_of!(F, fs_context2) == 0x10);
    assert!(offset_of!(F, section_object_pointer) == 0x14);
    assert!(offset_of!(F, private_cache_map) == 0x18);
    assert!(offset_of!(F, final_status) == 0x1C);
    assert!(offset_of!(F, related_file_object) == 0x20);
    assert!(offset_of!(F, lock_operation) == 0x24);
    assert!(offset_of!(F, shared_delete) == 0x2B);
    assert!(offset_of!(F, flags) == 0x2C);
    assert!(offset_of!(F, file_name) == 0x30);
    assert!(size_of::<F>() == 0x38);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use core::ptr;
    use std::boxed::Box;

    /// A test structure on the heap, reached only through the raw pointer `Box::into_raw` gave and
    /// copies of it (as the I/O manager's memory is), so that the pointers the structures hold to
    /// each other stay valid while a test changes fields; freed on drop.
    struct Heap<T>(*mut T);

    impl<T> Heap<T> {
        fn new(value: T) -> Self {
            Self(Box::into_raw(Box::new(value)))
        }

        fn ptr(&self) -> *mut T {
            self.0
        }

        /// Changes the value in place, through a reference derived from the raw pointer that ends
        /// with `change`.
        fn with<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
            // SAFETY: the pointer is live until `self` drops; the code under test only runs
            // between calls, so this is the one reference to the value while `change` runs.
            change(unsafe { &mut *self.0 })
        }
    }

    impl<T> Drop for Heap<T> {
        fn drop(&mut self) {
            // SAFETY: the pointer came from `Box::into_raw` in `new` and is freed only here.
            drop(unsafe { Box::from_raw(self.0) });
        }
    }

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
        crate::check_offsets("", &fields);
        assert_eq!(
            8 + offset_of!(DeviceIoControlParameters, io_control_code),
            0x18,
            "Parameters.DeviceIoControl.IoControlCode @ 0x18"
        );
    }

    #[test]
    fn an_irp_reads_its_device_control() {
        // SAFETY: all-zero bytes are a valid value of these integer-and-pointer structures.
        let location: Heap<IoStackLocation> = Heap::new(unsafe { core::mem::zeroed() });
        location.with(|location| {
            location.major_function = crate::kernel::IRP_MJ_DEVICE_CONTROL as u8;
            location.parameters.device_io_control = DeviceIoControlParameters {
                output_buffer_length: 24,
                _pad0: [0; POINTER_ALIGNMENT_PAD],
                input_buffer_length: 0,
                _pad1: [0; POINTER_ALIGNMENT_PAD],
                io_control_code: 0x0012_6000,
                _pad2: [0; POINTER_ALIGNMENT_PAD],
                type3_input_buffer: ptr::null_mut(),
            };
        });
        // SAFETY: as above.
        let irp: Heap<IrpLayout> = Heap::new(unsafe { core::mem::zeroed() });
        let mut buffer = [0u8; 32];
        irp.with(|irp| {
            irp.system_buffer = buffer.as_mut_ptr().cast();
            irp.current_stack_location = location.ptr();
        });
        let raw = irp.ptr().cast::<Irp>();
        // SAFETY: the test's IRP and stack location are alive and laid out as the I/O manager's.
        let request = unsafe { irp_request(raw) };
        assert_eq!(request.major_function, 0x0e);
        let control = request.device_io_control.expect("a device control");
        assert_eq!((control.io_control_code, control.output_buffer_length), (0x0012_6000, 24));
        assert_eq!(request.system_buffer, buffer.as_mut_ptr().cast());

        location.with(|location| location.major_function = crate::kernel::IRP_MJ_CREATE as u8);
        // SAFETY: as above.
        assert!(unsafe { irp_request(raw) }.device_io_control.is_none());
    }

    #[test]
    fn an_internal_device_control_reads_its_method_neither_buffers() {
        // SAFETY: all-zero bytes are a valid value of these integer-and-pointer structures.
        let location: Heap<IoStackLocation> = Heap::new(unsafe { core::mem::zeroed() });
        let mut input = [1u8; 16];
        let mut output = [0u8; 96];
        location.with(|location| {
            location.major_function = crate::kernel::IRP_MJ_INTERNAL_DEVICE_CONTROL as u8;
            location.parameters.device_io_control = DeviceIoControlParameters {
                output_buffer_length: 96,
                _pad0: [0; POINTER_ALIGNMENT_PAD],
                input_buffer_length: 16,
                _pad1: [0; POINTER_ALIGNMENT_PAD],
                io_control_code: ctl_code(FILE_DEVICE_NETWORK, 0x880, METHOD_NEITHER, FILE_ANY_ACCESS),
                _pad2: [0; POINTER_ALIGNMENT_PAD],
                type3_input_buffer: input.as_mut_ptr().cast(),
            };
        });
        // SAFETY: as above.
        let irp: Heap<IrpLayout> = Heap::new(unsafe { core::mem::zeroed() });
        irp.with(|irp| {
            irp.user_buffer = output.as_mut_ptr().cast();
            irp.current_stack_location = location.ptr();
        });
        let raw = irp.ptr().cast::<Irp>();
        // SAFETY: the test's IRP and stack location are alive and laid out as the I/O manager's.
        let control = unsafe { irp_internal_device_control(raw) }.expect("an internal device control");
        assert_eq!(control.parameters.io_control_code, 0x0012_2203);
        assert_eq!((control.parameters.input_buffer_length, control.parameters.output_buffer_length), (16, 96));
        assert_eq!(control.parameters.type3_input_buffer, input.as_mut_ptr().cast());
        assert_eq!(control.user_buffer, output.as_mut_ptr().cast());
        assert_eq!(control.requestor_mode, 0);

        location.with(|location| location.major_function = crate::kernel::IRP_MJ_DEVICE_CONTROL as u8);
        // SAFETY: as above.
        assert!(unsafe { irp_internal_device_control(raw) }.is_none(), "not an internal device control");
    }

    #[test]
    fn create_and_file_object_layouts_match_the_headers() {
        let fields = [
            ("IO_STACK_LOCATION.Parameters.Create.SecurityContext", 8 + offset_of!(CreateParameters, security_context), 0x08),
            ("IO_STACK_LOCATION.Parameters.Create.Options", 8 + offset_of!(CreateParameters, options), 0x10),
            ("IO_STACK_LOCATION.Parameters.Create.FileAttributes", 8 + offset_of!(CreateParameters, file_attributes), 0x18),
            ("IO_STACK_LOCATION.Parameters.Create.ShareAccess", 8 + offset_of!(CreateParameters, share_access), 0x1A),
            ("IO_STACK_LOCATION.Parameters.Create.EaLength", 8 + offset_of!(CreateParameters, ea_length), 0x20),
            ("IO_SECURITY_CONTEXT.DesiredAccess", offset_of!(IoSecurityContext, desired_access), 0x10),
            ("IO_SECURITY_CONTEXT.FullCreateOptions", offset_of!(IoSecurityContext, full_create_options), 0x14),
            ("FILE_OBJECT.DeviceObject", offset_of!(FileObjectLayout, device_object), 0x08),
            ("FILE_OBJECT.FsContext", offset_of!(FileObjectLayout, fs_context), 0x18),
            ("FILE_OBJECT.FsContext2", offset_of!(FileObjectLayout, fs_context2), 0x20),
            ("FILE_OBJECT.FinalStatus", offset_of!(FileObjectLayout, final_status), 0x38),
            ("FILE_OBJECT.RelatedFileObject", offset_of!(FileObjectLayout, related_file_object), 0x40),
            ("FILE_OBJECT.Flags", offset_of!(FileObjectLayout, flags), 0x50),
            ("FILE_OBJECT.FileName", offset_of!(FileObjectLayout, file_name), 0x58),
        ];
        crate::check_offsets("", &fields);
        assert_eq!(core::mem::size_of::<IoSecurityContext>(), 0x18);
    }

    /// A create IRP for `file`, asking for `desired_access`.
    struct CreateIrp {
        irp: Heap<IrpLayout>,
        location: Heap<IoStackLocation>,
        _security: Heap<IoSecurityContext>,
    }

    impl CreateIrp {
        fn new(file: *mut FileObjectLayout, desired_access: AccessMask) -> Self {
            let security = Heap::new(IoSecurityContext {
                security_qos: ptr::null_mut(),
                access_state: ptr::null_mut(),
                desired_access,
                full_create_options: 0,
            });
            // SAFETY: all-zero bytes are a valid value of these integer-and-pointer structures.
            let location: Heap<IoStackLocation> = Heap::new(unsafe { core::mem::zeroed() });
            location.with(|location| {
                location.major_function = crate::kernel::IRP_MJ_CREATE as u8;
                location.parameters.create = CreateParameters {
                    security_context: security.ptr(),
                    options: 1 << 24,
                    _pad0: [0; POINTER_ALIGNMENT_PAD],
                    file_attributes: 0,
                    share_access: 3,
                    _pad1: [0; POINTER_ALIGNMENT_PAD],
                    ea_length: 0,
                    _pad2: [0; POINTER_ALIGNMENT_PAD],
                };
                location.file_object = file.cast();
            });
            // SAFETY: as above.
            let irp: Heap<IrpLayout> = Heap::new(unsafe { core::mem::zeroed() });
            irp.with(|irp| {
                irp.requestor_mode = 1;
                irp.current_stack_location = location.ptr();
            });
            Self { irp, location, _security: security }
        }

        fn raw(&self) -> *mut Irp {
            self.irp.ptr().cast()
        }
    }

    #[test]
    fn a_create_reads_its_access_and_name_and_the_file_object_keeps_a_context() {
        // SAFETY: all-zero bytes are a valid value of this integer-and-pointer structure.
        let file: Heap<FileObjectLayout> = Heap::new(unsafe { core::mem::zeroed() });
        let file_ptr = file.ptr();
        // FILE_GENERIC_READ | FILE_GENERIC_WRITE, as the I/O manager maps GENERIC_READ | GENERIC_WRITE.
        let create = CreateIrp::new(file_ptr, 0x0012_0089 | 0x0012_0116);
        // SAFETY: the test's IRP, stack location, security context and file object are alive.
        let request = unsafe { irp_create(create.raw()) }.expect("a create");
        assert_eq!(request.desired_access & 0x3, 0x3, "FILE_READ_DATA and FILE_WRITE_DATA");
        assert_eq!((request.file_name_length, request.related_file_object), (0, ptr::null_mut()));
        assert_eq!((request.file_object.cast::<FileObjectLayout>(), request.requestor_mode), (file_ptr, 1));
        // SAFETY: as above.
        assert_eq!(unsafe { irp_file_object(create.raw()) }, request.file_object);

        // An open of a name below the device, and one relative to another handle.
        let mut name = [u16::from(b'\\'), u16::from(b'x')];
        file.with(|file| {
            file.file_name = UnicodeString { length: 4, maximum_length: 4, buffer: name.as_mut_ptr() };
            file.related_file_object = file_ptr.cast();
        });
        // SAFETY: as above.
        let request = unsafe { irp_create(create.raw()) }.expect("a create");
        assert_eq!((request.file_name_length, request.related_file_object), (4, file_ptr.cast()));

        // FsContext is the driver's: what it stores is what it reads back, at offset 0x18.
        let context = ptr::without_provenance_mut::<c_void>(0x5A5A_0000);
        // SAFETY: the test's file object, not shared.
        unsafe { set_file_object_fs_context(file_ptr.cast(), context) };
        // SAFETY: as above.
        assert_eq!(unsafe { file_object_fs_context(file_ptr.cast()) }, context);
        assert_eq!(file.with(|file| file.fs_context), context);

        create.location.with(|location| location.major_function = crate::kernel::IRP_MJ_CLOSE as u8);
        // SAFETY: as above.
        assert!(unsafe { irp_create(create.raw()) }.is_none(), "not a create");
        // A create without a security context asks for nothing.
        create.location.with(|location| {
            location.major_function = crate::kernel::IRP_MJ_CREATE as u8;
            location.parameters.create.security_context = ptr::null_mut();
        });
        // SAFETY: as above.
        assert_eq!(unsafe { irp_create(create.raw()) }.map(|request| request.desired_access), Some(0));
    }
}
