//! The functions the driver imports from `ndis.sys`, `ntoskrnl.exe` and `hal.dll`, as `raw-dylib`
//! imports: correct import tables without import libraries or a WDK, on x64, ARM64 and x86.
//!
//! Signatures follow the public `ndis.h` / `wdm.h` declarations type for type; where C has a bare
//! `NDIS_HANDLE` the handle newtypes of [`crate::types`] (all `#[repr(transparent)]` over a
//! pointer) say which handle goes where. `BOOLEAN` is `u8`, `UINT`/`ULONG` are `u32`, `SIZE_T` and
//! `ULONG_PTR` are `usize`, `PLARGE_INTEGER` is `*mut i64` (the same ABI).
//!
//! # Calling conventions and architectures
//!
//! Everything is `extern "system"` except the C-runtime exports and `DbgPrintEx`, which are `cdecl`
//! (`extern "C"`; variadic functions always are). On x64 and ARM64 there is one calling
//! convention, so `"system"` is exact for the `FASTCALL` functions of `wdm.h` too. On 32-bit x86
//! (`i686-pc-windows-msvc`, see `x86-facts.md` §1-2):
//!
//! - `"system"` is `stdcall`: every block carries `import_name_type = "undecorated"`, so rustc
//!   binds its calls to the decorated `_Name@N` symbol and the image imports the export's plain
//!   name `Name`, as the x86 kernel exports it.
//! - The nine `FASTCALL` functions (`Ex*RundownProtection`, `IofCompleteRequest`, `IofCallDriver`,
//!   `ObfDereferenceObject` and the spin lock pair) are declared `extern "fastcall"` (by
//!   `fastcall_imports!`): `"fastcall"` is refused by `raw-dylib` on x64 and ARM64.
//! - `KeAcquireSpinLockRaiseToDpc` does not exist, and `KeReleaseSpinLock` is a macro of `wdm.h`:
//!   x86 imports `KfAcquireSpinLock` / `KfReleaseSpinLock` (ntoskrnl since Windows 8; `hal.dll`'s
//!   exports forward there), and this module defines the two usual names over them, so callers
//!   are the same on every architecture.
//! - The C runtime is named with its leading underscore (`_memcpy`) in a block without
//!   `import_name_type`, so both Rust's calls and LLVM's own calls bind to it; the image imports
//!   `memcpy`. x86 `ntoskrnl.exe` exports no `memcmp`: [`memcmp`] is defined here on x86.
//! - LLVM lowers 64-bit division, remainder and multiplication to `_aulldiv`, `_alldiv`,
//!   `_aullrem`, `_allrem` and `_allmul` (`compiler_builtins` provides none of them on this
//!   target); they are imported from `ntoskrnl.exe`, which exports them on x86 only.
//!
//! `KeAcquireSpinLockRaiseToDpc` and `KeReleaseSpinLock` are `ntoskrnl.exe` exports on both x64
//! and ARM64 (`wdm.h` declares them `NTKERNELAPI` for every non-x86 target and maps
//! `KeAcquireSpinLock` onto them; ReactOS's and Wine's `ntoskrnl` export tables list them for
//! `x86_64,arm64`), so no `KeAcquireSpinLockAtDpcLevel` + `KeRaiseIrql` fallback is needed —
//! `KeRaiseIrql`/`KeLowerIrql` are inline or `Kf*`-named on x64 and would not be portable anyway.
//!
//! # On the host
//!
//! Built for any other OS (the host tests), the same declarations carry no `#[link]`: each name is
//! resolved at link time to the function of that name the kernel model defines
//! (`crates/wanlayer-kernel-model`), so the driver's code runs unchanged against it; the C runtime
//! names resolve to the host's C library.
//!
//! # Safety
//!
//! Every function here is `unsafe` to call; the preconditions are NDIS's and the kernel's (IRQL,
//! handle validity, ownership of NBLs), as documented for each in the WDK. The driver's wrappers
//! state them under `# Safety` where they call these.

#[cfg(all(windows, not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86"))))]
compile_error!("wanlayer-ndis declares its imports for x64, ARM64 and x86 Windows only");

use core::ffi::{c_char, c_int, c_void};

use crate::lightweight_filter::{
    DeviceObjectAttributes, FilterAttributes, FilterDriverCharacteristics, NdisOidRequest, NetDevicePnpEvent,
    NetPnpEventNotification, ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags, StatusIndication,
};
use crate::csq::{
    IoCsq, IoCsqAcquireLockFn, IoCsqCompleteCanceledIrpFn, IoCsqInsertIrpExFn, IoCsqIrpContext, IoCsqPeekNextIrpFn,
    IoCsqReleaseLockFn, IoCsqRemoveIrpFn,
};
use crate::io::IoStatusBlock;
use crate::kernel::{
    AccessMask, DeviceObject, DriverObject, EventType, ExPoolPriority, ExRundownRef, FileObject, Irp, KDeferredRoutine,
    KDpc, KEvent, KProcessorMode, KSpinLock, KTimer, KWaitReason, Kirql, NtStatus, PoolFlags, TimerType,
};
use crate::nbl::{Mdl, NetBuffer, NetBufferList, NetBufferListPoolParameters};
use crate::registry::{Handle, ObjectAttributes};
use crate::types::{
    ContextHandle, DeviceHandle, FilterDriverHandle, FilterModuleHandle, NblPoolHandle, NdisHandle, PortNumber,
    RawNdisStatus, UnicodeString,
};

#[cfg_attr(all(target_os = "windows", not(target_arch = "x86")), link(name = "ndis.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
#[cfg_attr(
    all(target_os = "windows", target_arch = "x86"),
    link(name = "ndis.sys", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated")
)]
extern "system" {
    /// Registers the filter driver (`DriverEntry`, `PASSIVE_LEVEL`).
    pub fn NdisFRegisterFilterDriver(
        DriverObject: *mut DriverObject,
        FilterDriverContext: ContextHandle,
        FilterDriverCharacteristics: *mut FilterDriverCharacteristics,
        NdisFilterDriverHandle: *mut FilterDriverHandle,
    ) -> RawNdisStatus;

    /// Deregisters the filter driver (unload, `PASSIVE_LEVEL`).
    pub fn NdisFDeregisterFilterDriver(NdisFilterDriverHandle: FilterDriverHandle);

    /// Gives NDIS the filter module context (`FilterAttach`, `PASSIVE_LEVEL`).
    pub fn NdisFSetAttributes(
        NdisFilterHandle: FilterModuleHandle,
        FilterModuleContext: ContextHandle,
        FilterAttributes: *mut FilterAttributes,
    ) -> RawNdisStatus;

    /// Sends NBLs down to the miniport (`<= DISPATCH_LEVEL`).
    pub fn NdisFSendNetBufferLists(
        NdisFilterHandle: FilterModuleHandle,
        NetBufferList: *mut NetBufferList,
        PortNumber: PortNumber,
        SendFlags: SendFlags,
    );

    /// Completes sends back to the protocol (`<= DISPATCH_LEVEL`).
    pub fn NdisFSendNetBufferListsComplete(
        NdisFilterHandle: FilterModuleHandle,
        NetBufferList: *mut NetBufferList,
        SendCompleteFlags: SendCompleteFlags,
    );

    /// Indicates received NBLs up to the protocol (`<= DISPATCH_LEVEL`).
    pub fn NdisFIndicateReceiveNetBufferLists(
        NdisFilterHandle: FilterModuleHandle,
        NetBufferLists: *mut NetBufferList,
        PortNumber: PortNumber,
        NumberOfNetBufferLists: u32,
        ReceiveFlags: ReceiveFlags,
    );

    /// Returns received NBLs to the miniport (`<= DISPATCH_LEVEL`).
    pub fn NdisFReturnNetBufferLists(
        NdisFilterHandle: FilterModuleHandle,
        NetBufferLists: *mut NetBufferList,
        ReturnFlags: ReturnFlags,
    );

    /// Passes a status indication up (`<= DISPATCH_LEVEL`).
    pub fn NdisFIndicateStatus(NdisFilterHandle: FilterModuleHandle, StatusIndication: *mut StatusIndication);

    /// Completes a pause that returned `NDIS_STATUS_PENDING` (`<= DISPATCH_LEVEL`).
    pub fn NdisFPauseComplete(NdisFilterHandle: FilterModuleHandle);

    /// Completes a restart that returned `NDIS_STATUS_PENDING` (`PASSIVE_LEVEL`).
    pub fn NdisFRestartComplete(NdisFilterHandle: FilterModuleHandle, Status: RawNdisStatus);

    /// Sends an OID request (a clone) down (`<= DISPATCH_LEVEL`).
    pub fn NdisFOidRequest(NdisFilterHandle: FilterModuleHandle, OidRequest: *mut NdisOidRequest) -> RawNdisStatus;

    /// Completes an OID request the filter pended (`<= DISPATCH_LEVEL`).
    pub fn NdisFOidRequestComplete(
        NdisFilterHandle: FilterModuleHandle,
        OidRequest: *mut NdisOidRequest,
        Status: RawNdisStatus,
    );

    /// Clones an OID request to forward it (`<= DISPATCH_LEVEL`).
    pub fn NdisAllocateCloneOidRequest(
        SourceHandle: FilterModuleHandle,
        OidRequest: *mut NdisOidRequest,
        PoolTag: u32,
        ClonedOidRequest: *mut *mut NdisOidRequest,
    ) -> RawNdisStatus;

    /// Frees a cloned OID request (`<= DISPATCH_LEVEL`).
    pub fn NdisFreeCloneOidRequest(SourceHandle: FilterModuleHandle, Request: *mut NdisOidRequest);

    /// Forwards a network PnP event (`PASSIVE_LEVEL`).
    pub fn NdisFNetPnPEvent(
        NdisFilterHandle: FilterModuleHandle,
        NetPnPEventNotification: *mut NetPnpEventNotification,
    ) -> RawNdisStatus;

    /// Forwards a device PnP event (`PASSIVE_LEVEL`).
    pub fn NdisFDevicePnPEventNotify(NdisFilterHandle: FilterModuleHandle, NetDevicePnPEvent: *mut NetDevicePnpEvent);

    /// Forwards a send cancellation (`<= DISPATCH_LEVEL`).
    pub fn NdisFCancelSendNetBufferLists(NdisFilterHandle: FilterModuleHandle, CancelId: *mut c_void);

    /// Forwards an OID cancellation (`<= DISPATCH_LEVEL`).
    pub fn NdisFCancelOidRequest(NdisFilterHandle: FilterModuleHandle, RequestId: *mut c_void);

    /// Creates the control device (`PASSIVE_LEVEL`).
    pub fn NdisRegisterDeviceEx(
        NdisHandle: FilterDriverHandle,
        DeviceObjectAttributes: *mut DeviceObjectAttributes,
        pDeviceObject: *mut *mut DeviceObject,
        NdisDeviceHandle: *mut DeviceHandle,
    ) -> RawNdisStatus;

    /// Deletes the control device (`PASSIVE_LEVEL`).
    pub fn NdisDeregisterDeviceEx(NdisDeviceHandle: DeviceHandle);

    /// The control device's reserved extension (`ExtensionSize` bytes).
    pub fn NdisGetDeviceReservedExtension(DeviceObject: *mut DeviceObject) -> *mut c_void;

    /// Creates an NBL pool (`<= DISPATCH_LEVEL`); null on failure.
    pub fn NdisAllocateNetBufferListPool(
        NdisHandle: NdisHandle,
        Parameters: *mut NetBufferListPoolParameters,
    ) -> NblPoolHandle;

    /// Frees an NBL pool whose NBLs are all back (`<= DISPATCH_LEVEL`).
    pub fn NdisFreeNetBufferListPool(PoolHandle: NblPoolHandle);

    /// Allocates an NBL with one NET_BUFFER over `MdlChain` (`<= DISPATCH_LEVEL`); null on failure.
    pub fn NdisAllocateNetBufferAndNetBufferList(
        PoolHandle: NblPoolHandle,
        ContextSize: u16,
        ContextBackFill: u16,
        MdlChain: *mut Mdl,
        DataOffset: u32,
        DataLength: usize,
    ) -> *mut NetBufferList;

    /// Frees an NBL from `NdisAllocateNetBufferAndNetBufferList` (`<= DISPATCH_LEVEL`).
    pub fn NdisFreeNetBufferList(NetBufferList: *mut NetBufferList);

    /// Contiguous frame bytes: a pointer into the MDL or a copy in `Storage`; null when the frame
    /// is shorter than `BytesNeeded` (or `Storage` is null and the bytes are not contiguous).
    pub fn NdisGetDataBuffer(
        NetBuffer: *mut NetBuffer,
        BytesNeeded: u32,
        Storage: *mut c_void,
        AlignMultiple: u32,
        AlignOffset: u32,
    ) -> *mut c_void;

    /// Allocates non-paged memory (`<= DISPATCH_LEVEL`); null on failure.
    pub fn NdisAllocateMemoryWithTagPriority(
        NdisHandle: NdisHandle,
        Length: u32,
        Tag: u32,
        Priority: ExPoolPriority,
    ) -> *mut c_void;

    /// Frees memory from `NdisAllocateMemoryWithTagPriority` (`MemoryFlags` 0).
    pub fn NdisFreeMemory(VirtualAddress: *mut c_void, Length: u32, MemoryFlags: u32);
}

/// `KeQueryActiveProcessorCountEx`'s group number for every group.
pub const ALL_PROCESSOR_GROUPS: u16 = 0xFFFF;

#[cfg_attr(all(target_os = "windows", not(target_arch = "x86")), link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
#[cfg_attr(
    all(target_os = "windows", target_arch = "x86"),
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated")
)]
extern "system" {
    /// Allocates pool memory (`<= DISPATCH_LEVEL` for non-paged); null on failure. Blocks are
    /// 16-byte aligned on 64-bit Windows; an allocator must handle larger alignments itself.
    /// Exported from Windows 10 version 2004 (build 19041) on: an image that imports it does not
    /// load on Server 2019 / 1809 (17763). Never called by name (clippy refuses it in kernel
    /// code): [`crate::pool`] finds it at run time with `MmGetSystemRoutineAddress`. Declared for
    /// its signature and for the kernel model's export table.
    pub fn ExAllocatePool2(Flags: PoolFlags, NumberOfBytes: usize, Tag: u32) -> *mut c_void;

    /// Allocates pool memory of `PoolType` (`NonPagedPoolNx` = 512, `<= DISPATCH_LEVEL`),
    /// uninitialised; null on failure. Deprecated from build 19041 on but exported by every
    /// supported build: [`crate::pool`]'s fallback where `ExAllocatePool2` is absent.
    pub fn ExAllocatePoolWithTag(PoolType: u32, NumberOfBytes: usize, Tag: u32) -> *mut c_void;

    /// The address of the exported kernel routine named `SystemRoutineName`, or null when this
    /// kernel does not export it (`PASSIVE_LEVEL`).
    pub fn MmGetSystemRoutineAddress(SystemRoutineName: *mut UnicodeString) -> *mut c_void;

    /// Frees pool memory allocated with `Tag`.
    pub fn ExFreePoolWithTag(P: *mut c_void, Tag: u32);

    /// Interrupt time in 100 ns units (including sleep), precise; `QpcTimeStamp` receives the
    /// performance counter it was derived from.
    pub fn KeQueryInterruptTimePrecise(QpcTimeStamp: *mut u64) -> u64;

    /// Interrupt time in 100 ns units excluding time spent asleep or hibernating.
    pub fn KeQueryUnbiasedInterruptTime() -> u64;

    /// Stops the system with a bug check; does not return.
    pub fn KeBugCheckEx(BugCheckCode: u32, P1: usize, P2: usize, P3: usize, P4: usize) -> !;

    /// The current processor's system-wide index; `ProcNumber` (may be null) receives its group
    /// and number in the group. Any IRQL. Windows 7 on.
    pub fn KeGetCurrentProcessorNumberEx(ProcNumber: *mut c_void) -> u32;

    /// Active processors in `GroupNumber`, or in every group for [`ALL_PROCESSOR_GROUPS`]. Any
    /// IRQL. Windows 7 on.
    pub fn KeQueryActiveProcessorCountEx(GroupNumber: u16) -> u32;

    /// Sleeps: `Interval` negative for relative time in 100 ns units (`<= APC_LEVEL`).
    pub fn KeDelayExecutionThread(WaitMode: KProcessorMode, Alertable: u8, Interval: *mut i64) -> NtStatus;

    /// Allocates an MDL for `Length` bytes at `VirtualAddress`; null on failure.
    pub fn IoAllocateMdl(
        VirtualAddress: *mut c_void,
        Length: u32,
        SecondaryBuffer: u8,
        ChargeQuota: u8,
        Irp: *mut Irp,
    ) -> *mut Mdl;

    /// Frees an MDL from `IoAllocateMdl`.
    pub fn IoFreeMdl(Mdl: *mut Mdl);

    /// Fills in an MDL over non-paged pool (sets `MappedSystemVa` and
    /// `MDL_SOURCE_IS_NONPAGED_POOL`).
    pub fn MmBuildMdlForNonPagedPool(MemoryDescriptorList: *mut Mdl);

    /// Opens the named device for a kernel client: references the file object it returns (the
    /// reference keeps the device, and so its driver, from unloading) and returns the top of the
    /// device's stack (`PASSIVE_LEVEL`). Vendor drivers use it to reach `\Device\WanLayer`.
    pub fn IoGetDeviceObjectPointer(
        ObjectName: *mut UnicodeString,
        DesiredAccess: AccessMask,
        FileObject: *mut *mut FileObject,
        DeviceObject: *mut *mut DeviceObject,
    ) -> NtStatus;

    /// Builds a device-control IRP (`InternalDeviceIoControl` non-zero: an
    /// `IRP_MJ_INTERNAL_DEVICE_CONTROL`) whose completion sets `Event` and fills in `IoStatusBlock`
    /// (`PASSIVE_LEVEL`); null when no IRP can be allocated.
    pub fn IoBuildDeviceIoControlRequest(
        IoControlCode: u32,
        DeviceObject: *mut DeviceObject,
        InputBuffer: *mut c_void,
        InputBufferLength: u32,
        OutputBuffer: *mut c_void,
        OutputBufferLength: u32,
        InternalDeviceIoControl: u8,
        Event: *mut KEvent,
        IoStatusBlock: *mut IoStatusBlock,
    ) -> *mut Irp;

    /// Initialises an event (`<= DISPATCH_LEVEL`; the event in non-paged memory).
    pub fn KeInitializeEvent(Event: *mut KEvent, Type: EventType, State: u8);

    /// Waits for a dispatcher object (`<= APC_LEVEL` with a wait, as here; `Timeout` null for
    /// none).
    pub fn KeWaitForSingleObject(
        Object: *mut c_void,
        WaitReason: KWaitReason,
        WaitMode: KProcessorMode,
        Alertable: u8,
        Timeout: *mut i64,
    ) -> NtStatus;

    /// Initialises a DPC (any IRQL; the DPC in non-paged memory).
    pub fn KeInitializeDpc(Dpc: *mut KDpc, DeferredRoutine: KDeferredRoutine, DeferredContext: *mut c_void);

    /// Initialises a timer (`<= DISPATCH_LEVEL`; the timer in non-paged memory).
    pub fn KeInitializeTimerEx(Timer: *mut KTimer, Type: TimerType);

    /// Sets a timer: `DueTime` negative for relative 100 ns units, `Period` in milliseconds (0 for
    /// once), `Dpc` queued at each expiry (`<= DISPATCH_LEVEL`). True when it was already set.
    pub fn KeSetTimerEx(Timer: *mut KTimer, DueTime: i64, Period: i32, Dpc: *mut KDpc) -> u8;

    /// Cancels a timer (`<= DISPATCH_LEVEL`); a DPC it already queued may still run.
    pub fn KeCancelTimer(Timer: *mut KTimer) -> u8;

    /// Returns once every DPC queued on any processor has run (`PASSIVE_LEVEL`).
    pub fn KeFlushQueuedDpcs();
}

/// Declares `FASTCALL` imports of `ntoskrnl.exe`: `extern "fastcall"` on x86 (a block of its own:
/// `raw-dylib` refuses the ABI elsewhere), `extern "system"` — the one convention — on x64 and
/// ARM64, where MSVC ignores `__fastcall`.
macro_rules! fastcall_imports {
    ($($item:tt)*) => {
        #[cfg_attr(target_os = "windows", link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
        #[cfg(not(all(target_os = "windows", target_arch = "x86")))]
        extern "system" {
            $($item)*
        }

        #[cfg(all(target_os = "windows", target_arch = "x86"))]
        #[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated")]
        extern "fastcall" {
            $($item)*
        }
    };
}

// `FASTCALL` in `wdm.h`: rundown protection, IRP completion and forwarding, dereferencing.
fastcall_imports! {
    /// Initialises rundown protection.
    pub fn ExInitializeRundownProtection(RunRef: *mut ExRundownRef);

    /// Enters rundown protection; false (0) once a rundown has started.
    pub fn ExAcquireRundownProtection(RunRef: *mut ExRundownRef) -> u8;

    /// Leaves rundown protection.
    pub fn ExReleaseRundownProtection(RunRef: *mut ExRundownRef);

    /// Starts a rundown and waits until every holder has left (`PASSIVE_LEVEL`).
    pub fn ExWaitForRundownProtectionRelease(RunRef: *mut ExRundownRef);

    /// Completes an IRP.
    pub fn IofCompleteRequest(Irp: *mut Irp, PriorityBoost: i8);

    /// Sends an IRP to a device.
    pub fn IofCallDriver(DeviceObject: *mut DeviceObject, Irp: *mut Irp) -> NtStatus;

    /// Drops a reference on an object (`ObDereferenceObject` is a macro over it); returns the new count.
    pub fn ObfDereferenceObject(Object: *mut c_void) -> isize;
}

#[cfg_attr(target_os = "windows", link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
#[cfg(not(all(target_os = "windows", target_arch = "x86")))]
extern "system" {
    /// Raises to `DISPATCH_LEVEL` and acquires a spin lock; returns the previous IRQL.
    pub fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSpinLock) -> Kirql;

    /// Releases a spin lock and lowers to `NewIrql`.
    pub fn KeReleaseSpinLock(SpinLock: *mut KSpinLock, NewIrql: Kirql);
}

// x86: `wdm.h` maps `KeAcquireSpinLock` and `KeReleaseSpinLock` onto these two `FASTCALL`
// functions (the lock in ECX, the IRQL in DL, the previous IRQL returned in AL).
#[cfg(all(target_os = "windows", target_arch = "x86"))]
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated")]
extern "fastcall" {
    /// Raises to `DISPATCH_LEVEL` and acquires a spin lock; returns the previous IRQL.
    pub fn KfAcquireSpinLock(SpinLock: *mut KSpinLock) -> Kirql;

    /// Releases a spin lock and lowers to `NewIrql`.
    pub fn KfReleaseSpinLock(SpinLock: *mut KSpinLock, NewIrql: Kirql);
}

/// Raises to `DISPATCH_LEVEL` and acquires a spin lock; returns the previous IRQL. On x86,
/// `KfAcquireSpinLock`, which does exactly that.
///
/// # Safety
/// As `KeAcquireSpinLockRaiseToDpc`: `SpinLock` is a valid, non-paged `KSPIN_LOCK` and the caller
/// runs at `<= DISPATCH_LEVEL`.
#[cfg(all(target_os = "windows", target_arch = "x86"))]
#[allow(non_snake_case)]
#[inline]
pub unsafe fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSpinLock) -> Kirql {
    // SAFETY: the caller's contract is `KfAcquireSpinLock`'s.
    unsafe { KfAcquireSpinLock(SpinLock) }
}

/// Releases a spin lock and lowers to `NewIrql`. On x86, `KfReleaseSpinLock` (`wdm.h` defines
/// `KeReleaseSpinLock` as a macro over it).
///
/// # Safety
/// As `KeReleaseSpinLock`: the lock is held by the caller, `NewIrql` is what the acquisition
/// returned.
#[cfg(all(target_os = "windows", target_arch = "x86"))]
#[allow(non_snake_case)]
#[inline]
pub unsafe fn KeReleaseSpinLock(SpinLock: *mut KSpinLock, NewIrql: Kirql) {
    // SAFETY: the caller's contract is `KfReleaseSpinLock`'s.
    unsafe { KfReleaseSpinLock(SpinLock, NewIrql) }
}

// The control device's per-handle cancel-safe queues and the DPC that services them.
//
// The `Ex` forms only: `IoCsqInsertIrp` discards the status of the driver's insert routine (it
// is `IoCsqInsertIrpEx(.., NULL)` returning nothing), so a queue that must refuse an IRP — a
// handle already cleaned up — is initialised with `IoCsqInitializeEx` and filled with
// `IoCsqInsertIrpEx`; its `InsertContext` also tells a tail insertion from a head one.
#[cfg_attr(all(target_os = "windows", not(target_arch = "x86")), link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
#[cfg_attr(
    all(target_os = "windows", target_arch = "x86"),
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated")
)]
extern "system" {
    /// Fills in a cancel-safe queue whose insert routine may fail (`Type = IO_TYPE_CSQ_EX`); any
    /// IRQL, the queue in non-paged memory. Returns `STATUS_SUCCESS`.
    pub fn IoCsqInitializeEx(
        Csq: *mut IoCsq,
        CsqInsertIrp: IoCsqInsertIrpExFn,
        CsqRemoveIrp: IoCsqRemoveIrpFn,
        CsqPeekNextIrp: IoCsqPeekNextIrpFn,
        CsqAcquireLock: IoCsqAcquireLockFn,
        CsqReleaseLock: IoCsqReleaseLockFn,
        CsqCompleteCanceledIrp: IoCsqCompleteCanceledIrpFn,
    ) -> NtStatus;

    /// Queues an IRP through the queue's insert routine, passing it `InsertContext`
    /// (`<= DISPATCH_LEVEL`). On success the IRP is marked pending and cancellable (one cancelled
    /// already goes to `CsqCompleteCanceledIrp`); a failure status of the insert routine is
    /// returned with the IRP neither queued nor marked pending. `Context` may be null.
    pub fn IoCsqInsertIrpEx(Csq: *mut IoCsq, Irp: *mut Irp, Context: *mut IoCsqIrpContext, InsertContext: *mut c_void) -> NtStatus;

    /// Takes the next queued IRP that matches `PeekContext` and is not being cancelled: it can no
    /// longer be cancelled and is the caller's (`<= DISPATCH_LEVEL`). Null when there is none.
    pub fn IoCsqRemoveNextIrp(Csq: *mut IoCsq, PeekContext: *mut c_void) -> *mut Irp;

    /// Queues a DPC initialised with `KeInitializeDpc` on the current processor (any IRQL);
    /// false (0) when it was queued already (it then runs once for both).
    pub fn KeInsertQueueDpc(Dpc: *mut KDpc, SystemArgument1: *mut c_void, SystemArgument2: *mut c_void) -> u8;
}

// The registry: the administrator's rule set kept in the service key (`PASSIVE_LEVEL` only).
#[cfg_attr(all(target_os = "windows", not(target_arch = "x86")), link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
#[cfg_attr(
    all(target_os = "windows", target_arch = "x86"),
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated")
)]
extern "system" {
    /// Opens an existing key (`PASSIVE_LEVEL`); `STATUS_OBJECT_NAME_NOT_FOUND` when it does not
    /// exist.
    pub fn ZwOpenKey(KeyHandle: *mut Handle, DesiredAccess: AccessMask, ObjectAttributes: *const ObjectAttributes) -> NtStatus;

    /// Opens a key, creating it first when it does not exist (`PASSIVE_LEVEL`). `Class` may be
    /// null, `Disposition` too.
    pub fn ZwCreateKey(
        KeyHandle: *mut Handle,
        DesiredAccess: AccessMask,
        ObjectAttributes: *const ObjectAttributes,
        TitleIndex: u32,
        Class: *const UnicodeString,
        CreateOptions: u32,
        Disposition: *mut u32,
    ) -> NtStatus;

    /// Reads a value into `KeyValueInformation` (`PASSIVE_LEVEL`); `STATUS_BUFFER_OVERFLOW` or
    /// `STATUS_BUFFER_TOO_SMALL` with the length needed in `ResultLength` when it does not fit.
    pub fn ZwQueryValueKey(
        KeyHandle: Handle,
        ValueName: *const UnicodeString,
        KeyValueInformationClass: u32,
        KeyValueInformation: *mut c_void,
        Length: u32,
        ResultLength: *mut u32,
    ) -> NtStatus;

    /// Writes a value (`PASSIVE_LEVEL`).
    pub fn ZwSetValueKey(
        KeyHandle: Handle,
        ValueName: *const UnicodeString,
        TitleIndex: u32,
        Type: u32,
        Data: *const c_void,
        DataSize: u32,
    ) -> NtStatus;

    /// Closes a kernel handle (`PASSIVE_LEVEL`).
    pub fn ZwClose(Handle: Handle) -> NtStatus;
}

// The C runtime and `DbgPrintEx` (cdecl). No `import_name_type` on x86: there each name is
// spelled with the underscore of a cdecl symbol (`_memcpy`), which LLVM's own calls use too,
// and the import drops it again (the export is `memcpy`).
#[cfg_attr(target_os = "windows", link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
extern "C" {
    /// Formatted debug output, filtered by component and level (`cdecl`, variadic).
    #[cfg(target_os = "windows")]
    #[cfg_attr(target_arch = "x86", link_name = "_DbgPrintEx")]
    pub fn DbgPrintEx(ComponentId: u32, Level: u32, Format: *const c_char, ...) -> u32;

    /// On the host: the one form the driver uses (`"%s\n"` and one string), declared without
    /// the variadic tail, as the kernel model defines it (stable Rust cannot define a variadic
    /// function, and a call must agree with its callee on being variadic).
    #[cfg(not(target_os = "windows"))]
    pub fn DbgPrintEx(ComponentId: u32, Level: u32, Format: *const c_char, Message: *const c_char) -> u32;

    /// `memcpy` (the kernel's export; `compiler_builtins` provides none on msvc targets).
    #[cfg_attr(all(target_os = "windows", target_arch = "x86"), link_name = "_memcpy")]
    pub fn memcpy(dest: *mut c_void, src: *const c_void, count: usize) -> *mut c_void;

    /// `memset`.
    #[cfg_attr(all(target_os = "windows", target_arch = "x86"), link_name = "_memset")]
    pub fn memset(dest: *mut c_void, c: c_int, count: usize) -> *mut c_void;

    /// `memcmp` (x64 and ARM64 `ntoskrnl.exe` export it; on x86 [`memcmp`] is defined here).
    #[cfg(not(all(target_os = "windows", target_arch = "x86")))]
    pub fn memcmp(buf1: *const c_void, buf2: *const c_void, count: usize) -> c_int;

    /// `memmove`.
    #[cfg_attr(all(target_os = "windows", target_arch = "x86"), link_name = "_memmove")]
    pub fn memmove(dest: *mut c_void, src: *const c_void, count: usize) -> *mut c_void;

    /// `strlen`: `alloc` references it (`CString::from_raw`), so a driver linking `alloc` needs it
    /// even if it never calls it.
    #[cfg_attr(all(target_os = "windows", target_arch = "x86"), link_name = "_strlen")]
    pub fn strlen(s: *const c_char) -> usize;
}

/// `memcmp` for x86, whose `ntoskrnl.exe` does not export it (`x86-facts.md` §2.2) while `core`
/// calls it (slice comparisons): the first differing byte decides, as unsigned bytes.
///
/// # Safety
/// `buf1` and `buf2` are each readable for `count` bytes.
#[cfg(all(target_os = "windows", target_arch = "x86"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(buf1: *const c_void, buf2: *const c_void, count: usize) -> c_int {
    let (left, right) = (buf1.cast::<u8>(), buf2.cast::<u8>());
    let mut index = 0;
    while index < count {
        // The reads are volatile so that LLVM cannot recognise this loop as `memcmp` and call this
        // function from itself. `wrapping_add` stays in bounds: `index < count`.
        // SAFETY: `buf1` is readable for `count` bytes (the caller's contract), `index < count`.
        let a = unsafe { left.wrapping_add(index).read_volatile() };
        // SAFETY: as above, for `buf2`.
        let b = unsafe { right.wrapping_add(index).read_volatile() };
        if a != b {
            return c_int::from(a) - c_int::from(b);
        }
        index += 1;
    }
    0
}

// The 64-bit arithmetic helpers LLVM calls on x86 (`__aulldiv` in its symbol spelling; callee
// pops its 16 bytes of arguments, yet the symbol carries no `@16`). `compiler_builtins` provides
// none of them for `i686-pc-windows-msvc`; x86 `ntoskrnl.exe` exports them as `_aulldiv` ...
// Rust never calls these declarations: they only put the symbols LLVM's calls bind to into the
// import library (declared items are kept there whether called or not).
#[cfg(all(target_os = "windows", target_arch = "x86"))]
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
extern "C" {
    /// Unsigned 64-bit division (`_aulldiv`).
    #[link_name = "__aulldiv"]
    pub fn aulldiv();

    /// Unsigned 64-bit remainder (`_aullrem`).
    #[link_name = "__aullrem"]
    pub fn aullrem();

    /// Signed 64-bit division (`_alldiv`).
    #[link_name = "__alldiv"]
    pub fn alldiv();

    /// Signed 64-bit remainder (`_allrem`).
    #[link_name = "__allrem"]
    pub fn allrem();

    /// 64-bit multiplication (`_allmul`).
    #[link_name = "__allmul"]
    pub fn allmul();
}

#[cfg_attr(all(target_os = "windows", not(target_arch = "x86")), link(name = "hal.dll", kind = "raw-dylib", modifiers = "+verbatim"))]
#[cfg_attr(
    all(target_os = "windows", target_arch = "x86"),
    link(name = "hal.dll", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated")
)]
extern "system" {
    /// Busy-waits `MicroSeconds` (any IRQL; keep it short). A HAL export on every architecture
    /// (on Windows 10 2004 and later `hal.dll` forwards it to the kernel).
    pub fn KeStallExecutionProcessor(MicroSeconds: u32);
}
