//! Windows kernel (not NDIS) types and constants the driver needs: IRQL, spin locks, rundown
//! protection, pool flags, debug-print filters, control-device dispatch.

use core::cell::UnsafeCell;
use core::ffi::c_void;

/// `NTSTATUS`.
pub type NtStatus = i32;

/// `KIRQL`.
pub type Kirql = u8;

/// `KSPIN_LOCK` (`ULONG_PTR`): the storage of a spin lock. Zero is the released state
/// (`KeInitializeSpinLock` is an inline store of zero on x64 and ARM64).
pub type KSpinLock = usize;

/// `KPROCESSOR_MODE` (`CCHAR`).
pub type KProcessorMode = i8;

/// `KernelMode`, for `KeDelayExecutionThread`.
pub const KERNEL_MODE: KProcessorMode = 0;

/// `POOL_FLAGS` (`ULONG64`) for `ExAllocatePool2`.
pub type PoolFlags = u64;

/// `POOL_FLAG_NON_PAGED`: non-paged, no-execute pool.
pub const POOL_FLAG_NON_PAGED: PoolFlags = 0x40;

/// `EX_POOL_PRIORITY` (a C enum) for `NdisAllocateMemoryWithTagPriority`.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExPoolPriority(pub i32);

impl ExPoolPriority {
    /// `LowPoolPriority`: fail early when memory is short (the data path's choice).
    pub const LOW: Self = Self(0);
    /// `NormalPoolPriority`.
    pub const NORMAL: Self = Self(16);
    /// `HighPoolPriority`.
    pub const HIGH: Self = Self(32);
}

/// `EX_RUNDOWN_REF`: the storage of rundown protection (a `ULONG_PTR`/`PVOID` union).
///
/// Shared between processors and changed only by the kernel's `Ex*RundownProtection*` functions
/// through [`ExRundownRef::as_ptr`]; initialise it with `ExInitializeRundownProtection` before use.
#[repr(transparent)]
#[derive(Debug, Default)]
pub struct ExRundownRef(UnsafeCell<usize>);

// SAFETY: Rust code never reads or writes the value; the kernel's rundown functions, the only
// accessors (through `as_ptr`), synchronise every access with interlocked operations.
unsafe impl Sync for ExRundownRef {}

impl ExRundownRef {
    /// Zeroed storage (what `ExInitializeRundownProtection` also produces).
    pub const fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    /// The pointer the `Ex*RundownProtection*` functions take; writes through it are allowed from
    /// a shared reference.
    pub const fn as_ptr(&self) -> *mut ExRundownRef {
        (self as *const ExRundownRef).cast_mut()
    }
}

/// `DPFLTR_IHVNETWORK_ID`: the `DbgPrintEx` component of third-party network drivers.
pub const DPFLTR_IHVNETWORK_ID: u32 = 80;
/// `DPFLTR_ERROR_LEVEL`: shown by default.
pub const DPFLTR_ERROR_LEVEL: u32 = 0;
/// `DPFLTR_WARNING_LEVEL`.
pub const DPFLTR_WARNING_LEVEL: u32 = 1;
/// `DPFLTR_TRACE_LEVEL`.
pub const DPFLTR_TRACE_LEVEL: u32 = 2;
/// `DPFLTR_INFO_LEVEL`.
pub const DPFLTR_INFO_LEVEL: u32 = 3;

/// `IO_NO_INCREMENT`: the priority boost for `IofCompleteRequest` of a control-device IRP.
pub const IO_NO_INCREMENT: i8 = 0;

/// `IRP_MJ_CREATE`.
pub const IRP_MJ_CREATE: usize = 0x00;
/// `IRP_MJ_CLOSE`.
pub const IRP_MJ_CLOSE: usize = 0x02;
/// `IRP_MJ_DEVICE_CONTROL`.
pub const IRP_MJ_DEVICE_CONTROL: usize = 0x0e;
/// `IRP_MJ_INTERNAL_DEVICE_CONTROL`: device controls between drivers (`IoBuildDeviceIoControlRequest`
/// with `InternalDeviceIoControl = TRUE`); user mode cannot send one.
pub const IRP_MJ_INTERNAL_DEVICE_CONTROL: usize = 0x0f;
/// `IRP_MJ_CLEANUP`.
pub const IRP_MJ_CLEANUP: usize = 0x12;
/// `IRP_MJ_MAXIMUM_FUNCTION`.
pub const IRP_MJ_MAXIMUM_FUNCTION: usize = 0x1b;
/// Entries of a major-function table (`IRP_MJ_MAXIMUM_FUNCTION + 1`), as
/// `NDIS_DEVICE_OBJECT_ATTRIBUTES.MajorFunctions` points at.
pub const IRP_MJ_COUNT: usize = IRP_MJ_MAXIMUM_FUNCTION + 1;

opaque! {
    /// `DRIVER_OBJECT`.
    DriverObject
}

opaque! {
    /// `DEVICE_OBJECT`.
    DeviceObject
}

opaque! {
    /// `IRP`.
    Irp
}

opaque! {
    /// `EPROCESS` (`MDL.Process`).
    Eprocess
}

opaque! {
    /// `FILE_OBJECT`: what `IoGetDeviceObjectPointer` references for its caller.
    FileObject
}

/// `ACCESS_MASK`.
pub type AccessMask = u32;

/// `FILE_READ_DATA`: the access a kernel client asks for when it opens another driver's device
/// (kernel-mode opens are not access-checked).
pub const FILE_READ_DATA: AccessMask = 0x0001;
/// `FILE_WRITE_DATA` (part of `FILE_GENERIC_WRITE`, which `GENERIC_WRITE` maps to for files and
/// devices).
pub const FILE_WRITE_DATA: AccessMask = 0x0002;

/// `EVENT_TYPE` (a C enum).
pub type EventType = i32;
/// `NotificationEvent`: stays signalled until reset.
pub const NOTIFICATION_EVENT: EventType = 0;

/// `TIMER_TYPE` (a C enum).
pub type TimerType = i32;
/// `NotificationTimer`.
pub const NOTIFICATION_TIMER: TimerType = 0;

/// `KWAIT_REASON` (a C enum).
pub type KWaitReason = i32;
/// `Executive`: the wait reason of a driver waiting for its own request.
pub const EXECUTIVE: KWaitReason = 0;

/// Storage for a kernel dispatcher object the kernel initialises and owns the contents of
/// (`KeInitializeEvent`, `KeInitializeTimerEx`, `KeInitializeDpc`): `N` bytes, 8-aligned, in
/// non-paged memory, never read or written by Rust code.
#[repr(C, align(8))]
pub struct KernelObject<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: Rust code never touches the bytes; the kernel functions that take the object (through
// `as_ptr`) synchronise every access themselves (dispatcher lock, DPC queue lock).
unsafe impl<const N: usize> Sync for KernelObject<N> {}

impl<const N: usize> KernelObject<N> {
    /// Zeroed storage, to be initialised by the kernel before use.
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; N]))
    }

    /// The pointer the kernel functions take.
    pub const fn as_ptr(&self) -> *mut Self {
        (self as *const Self).cast_mut()
    }
}

impl<const N: usize> Default for KernelObject<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// `sizeof(KEVENT)`: 0x18 on x64 and ARM64, 0x10 on x86.
const KEVENT_SIZE: usize = if cfg!(target_pointer_width = "64") { 0x18 } else { 0x10 };
/// `sizeof(KTIMER)`: 0x40 on x64 and ARM64, 0x28 on x86.
const KTIMER_SIZE: usize = if cfg!(target_pointer_width = "64") { 0x40 } else { 0x28 };
/// `sizeof(KDPC)`: 0x40 on x64 and ARM64, 0x20 on x86.
const KDPC_SIZE: usize = if cfg!(target_pointer_width = "64") { 0x40 } else { 0x20 };

/// `KEVENT`: a `DISPATCHER_HEADER`.
pub type KEvent = KernelObject<KEVENT_SIZE>;
/// `KTIMER`: `DISPATCHER_HEADER`, `DueTime`, `TimerListEntry`, `Dpc`, `Processor`, `Period`.
pub type KTimer = KernelObject<KTIMER_SIZE>;
/// `KDPC`: `TargetInfoAsUlong`, `DpcListEntry`, `ProcessorHistory`, `DeferredRoutine`,
/// `DeferredContext`, `SystemArgument1/2`, `DpcData`.
pub type KDpc = KernelObject<KDPC_SIZE>;

/// `KDEFERRED_ROUTINE`: a DPC's routine, called at `DISPATCH_LEVEL`.
pub type KDeferredRoutine =
    unsafe extern "system" fn(dpc: *mut KDpc, context: *mut c_void, argument1: *mut c_void, argument2: *mut c_void);

/// `DRIVER_DISPATCH`: a control device's IRP handler.
pub type DriverDispatch = unsafe extern "system" fn(device: *mut DeviceObject, irp: *mut Irp) -> NtStatus;

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<ExRundownRef>() == 8);
    assert!(size_of::<Option<DriverDispatch>>() == 8);
    assert!(size_of::<DriverObject>() == 0);
    assert!(size_of::<KEvent>() == 0x18 && size_of::<KTimer>() == 0x40 && size_of::<KDpc>() == 0x40);
    assert!(core::mem::align_of::<KTimer>() == 8);
};

// x86 (`x86-facts.md` §3, from the WDK headers): 4-byte `KSPIN_LOCK` and rundown reference; the
// dispatcher objects are 4-aligned there, so the 8-aligned storage is merely over-aligned.
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<KSpinLock>() == 4 && size_of::<ExRundownRef>() == 4);
    assert!(size_of::<Option<DriverDispatch>>() == 4);
    assert!(size_of::<DriverObject>() == 0);
    assert!(size_of::<KEvent>() == 0x10 && size_of::<KTimer>() == 0x28 && size_of::<KDpc>() == 0x20);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_table_has_the_documented_length() {
        assert_eq!(IRP_MJ_COUNT, 28);
        let rundown = ExRundownRef::new();
        assert_eq!(rundown.as_ptr().cast_const(), &rundown as *const ExRundownRef);
        assert_eq!(ExRundownRef::default().0.into_inner(), 0);
        assert_eq!(core::mem::size_of::<ExRundownRef>(), core::mem::size_of::<usize>());
    }

    #[test]
    fn dpc_storage_matches_the_header() {
        // KDPC: TargetInfoAsUlong @0, DpcListEntry @8, ProcessorHistory @0x10, DeferredRoutine
        // @0x18, DeferredContext @0x20, SystemArgument1/2 @0x28/0x30, DpcData @0x38: 0x40 bytes,
        // pointer-aligned, on x64 and ARM64 alike.
        assert_eq!((core::mem::size_of::<KDpc>(), core::mem::align_of::<KDpc>()), (0x40, 8));
        let dpc = KDpc::new();
        assert_eq!(dpc.as_ptr().cast_const(), &dpc as *const KDpc);
        assert_eq!((FILE_READ_DATA, FILE_WRITE_DATA), (1, 2));
    }
}
