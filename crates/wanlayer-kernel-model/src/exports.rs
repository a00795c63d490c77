//! The model's functions by the names an image imports them by: what an emulator binds a loaded
//! `wanlayer.sys` or vendor driver's import table to.
//!
//! Each entry calls the function through its declaration in `wanlayer_ndis::imports` — the
//! declarations the driver's own calls use, which the linker resolves to the model's definition
//! of that name (or, for the C runtime, to the host's) — with its arguments converted from the
//! machine words the guest passed ([`Word`]). So the table is exactly the driver's import list,
//! typed by the same declarations, and it cannot name a function the model does not define.

use wanlayer_ndis::imports;

use crate::invoke::Word;

/// One function an image may import.
#[derive(Clone, Copy, Debug)]
pub struct Export {
    /// The module that exports it (`ndis.sys`, `ntoskrnl.exe`, `hal.dll`), lower case.
    pub module: &'static str,
    /// Its name.
    pub name: &'static str,
    /// How many arguments it takes (machine words).
    pub arity: usize,
    /// Calls it with `arguments` (at least `arity` words, in order) and returns its result as a
    /// word.
    ///
    /// # Safety
    /// The arguments meet the function's contract (pointers valid in this process, ...).
    pub call: unsafe fn(arguments: &[u64]) -> u64,
    /// The function never returns (`KeBugCheckEx`): an emulator stops the run when it is called.
    pub diverges: bool,
}

macro_rules! exports {
    ($($module:literal: [$($name:ident($($index:literal)*) $(-> $never:tt)?),* $(,)?])*) => {
        /// Every function an image may import, by module and name.
        pub static EXPORTS: &[Export] = &[$($(
            Export {
                module: $module,
                name: stringify!($name),
                arity: <[usize]>::len(&[$($index),*]),
                call: {
                    unsafe fn thunk(arguments: &[u64]) -> u64 {
                        let _ = arguments;
                        // SAFETY: the caller's promise: the arguments meet the function's contract.
                        exports!(@result $($never)? unsafe { imports::$name($(Word::from_word(arguments[$index])),*) })
                    }
                    thunk
                },
                diverges: exports!(@diverges $($never)?),
            },
        )*)*];
    };
    (@result ! $call:expr) => { $call };
    (@result $call:expr) => { Word::to_word($call) };
    (@diverges) => { false };
    (@diverges !) => { true };
}

exports! {
    "ndis.sys": [
        NdisFRegisterFilterDriver(0 1 2 3),
        NdisFDeregisterFilterDriver(0),
        NdisFSetAttributes(0 1 2),
        NdisFSendNetBufferLists(0 1 2 3),
        NdisFSendNetBufferListsComplete(0 1 2),
        NdisFIndicateReceiveNetBufferLists(0 1 2 3 4),
        NdisFReturnNetBufferLists(0 1 2),
        NdisFIndicateStatus(0 1),
        NdisFPauseComplete(0),
        NdisFRestartComplete(0 1),
        NdisFOidRequest(0 1),
        NdisFOidRequestComplete(0 1 2),
        NdisAllocateCloneOidRequest(0 1 2 3),
        NdisFreeCloneOidRequest(0 1),
        NdisFNetPnPEvent(0 1),
        NdisFDevicePnPEventNotify(0 1),
        NdisFCancelSendNetBufferLists(0 1),
        NdisFCancelOidRequest(0 1),
        NdisRegisterDeviceEx(0 1 2 3),
        NdisDeregisterDeviceEx(0),
        NdisGetDeviceReservedExtension(0),
        NdisAllocateNetBufferListPool(0 1),
        NdisFreeNetBufferListPool(0),
        NdisAllocateNetBufferAndNetBufferList(0 1 2 3 4 5),
        NdisFreeNetBufferList(0),
        NdisGetDataBuffer(0 1 2 3 4),
        NdisAllocateMemoryWithTagPriority(0 1 2 3),
        NdisFreeMemory(0 1 2),
    ]
    "ntoskrnl.exe": [
        ExAllocatePool2(0 1 2),
        ExAllocatePoolWithTag(0 1 2),
        MmGetSystemRoutineAddress(0),
        ExFreePoolWithTag(0 1),
        KeQueryInterruptTimePrecise(0),
        KeQueryUnbiasedInterruptTime(),
        KeBugCheckEx(0 1 2 3 4) -> !,
        KeGetCurrentProcessorNumberEx(0),
        KeQueryActiveProcessorCountEx(0),
        KeDelayExecutionThread(0 1 2),
        IoAllocateMdl(0 1 2 3 4),
        IoFreeMdl(0),
        MmBuildMdlForNonPagedPool(0),
        IoGetDeviceObjectPointer(0 1 2 3),
        IoBuildDeviceIoControlRequest(0 1 2 3 4 5 6 7 8),
        KeInitializeEvent(0 1 2),
        KeWaitForSingleObject(0 1 2 3 4),
        KeInitializeDpc(0 1 2),
        KeInitializeTimerEx(0 1),
        KeSetTimerEx(0 1 2 3),
        KeCancelTimer(0),
        KeFlushQueuedDpcs(),
        ExInitializeRundownProtection(0),
        ExAcquireRundownProtection(0),
        ExReleaseRundownProtection(0),
        ExWaitForRundownProtectionRelease(0),
        IofCompleteRequest(0 1),
        IofCallDriver(0 1),
        ObfDereferenceObject(0),
        KeAcquireSpinLockRaiseToDpc(0),
        KeReleaseSpinLock(0 1),
        IoCsqInitializeEx(0 1 2 3 4 5 6),
        IoCsqInsertIrpEx(0 1 2 3),
        IoCsqRemoveNextIrp(0 1),
        KeInsertQueueDpc(0 1 2),
        ZwOpenKey(0 1 2),
        ZwCreateKey(0 1 2 3 4 5 6),
        ZwQueryValueKey(0 1 2 3 4 5),
        ZwSetValueKey(0 1 2 3 4 5),
        ZwClose(0),
        DbgPrintEx(0 1 2 3),
        memcpy(0 1 2),
        memset(0 1 2),
        memcmp(0 1 2),
        memmove(0 1 2),
        strlen(0),
    ]
    "hal.dll": [
        KeStallExecutionProcessor(0),
    ]
}

/// The export `name` of `module` (compared case-insensitively, as the loader does).
pub fn find(module: &str, name: &str) -> Option<&'static Export> {
    EXPORTS.iter().find(|export| export.name == name && export.module.eq_ignore_ascii_case(module))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_found_by_module_and_name_and_call_the_model() {
        let _run = crate::begin();
        let pool = find("NTOSKRNL.EXE", "ExAllocatePool2").expect("exported");
        assert_eq!(pool.arity, 3);
        let tag = u64::from(u32::from_le_bytes(*b"Test"));
        // SAFETY: ExAllocatePool2's contract: flags, size, tag.
        let block = unsafe { (pool.call)(&[0x40, 24, tag]) };
        assert_ne!(block, 0);
        assert_eq!(crate::pool_outstanding(), [(u32::from_le_bytes(*b"Test"), 24)]);
        let free = find("ntoskrnl.exe", "ExFreePoolWithTag").expect("exported");
        // SAFETY: the block allocated above, freed once with its tag.
        unsafe { (free.call)(&[block, tag]) };
        assert!(crate::finish().is_empty());
        assert!(find("ntoskrnl.exe", "KeBugCheckEx").expect("exported").diverges);
        assert!(find("ndis.sys", "ExAllocatePool2").is_none(), "by module too");
    }
}
