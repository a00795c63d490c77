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

/// How an x86 (32-bit) caller passes an export its arguments and who removes them from the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum X86Convention {
    /// `__stdcall` (`NTAPI`, the kernel's default): every argument on the stack, each in
    /// 4-byte slots (a 64-bit one in two, low half first); the callee pops them.
    Stdcall,
    /// `__fastcall` (`FASTCALL` in `wdm.h`): the first two arguments of at most 4 bytes in ECX and
    /// EDX, the rest on the stack as for `__stdcall`; the callee pops the stacked ones.
    Fastcall,
    /// `__cdecl` (the C runtime, `DbgPrintEx`): every argument on the stack; the caller pops them.
    Cdecl,
}

/// The `FASTCALL` exports (`wanlayer_ndis::imports` declares them `extern "fastcall"` on x86).
const X86_FASTCALL: [&str; 9] = [
    "ExInitializeRundownProtection",
    "ExAcquireRundownProtection",
    "ExReleaseRundownProtection",
    "ExWaitForRundownProtectionRelease",
    "IofCompleteRequest",
    "IofCallDriver",
    "ObfDereferenceObject",
    "KfAcquireSpinLock",
    "KfReleaseSpinLock",
];

/// The `__cdecl` exports (the C runtime and `DbgPrintEx`).
const X86_CDECL: [&str; 6] = ["DbgPrintEx", "memcpy", "memset", "memcmp", "memmove", "strlen"];

/// Where an export's thunk takes the arguments of one call from, in order.
pub trait Arguments {
    /// The next argument, `bytes` wide (the size of its type in the export's declaration), as a
    /// word.
    fn next(&mut self, bytes: usize) -> u64;
}

/// Arguments already one word each (x64 and ARM64 registers and stack slots, or a caller's list).
impl Arguments for std::slice::Iter<'_, u64> {
    fn next(&mut self, _bytes: usize) -> u64 {
        Iterator::next(self).copied().expect("kernel model: an export called with fewer arguments than it takes")
    }
}

/// The next argument of a thunk's call, typed as the export's declaration types it.
fn argument<T: Word>(arguments: &mut dyn Arguments) -> T {
    T::from_word(arguments.next(size_of::<T>()))
}

/// One function an image may import.
#[derive(Clone, Copy, Debug)]
pub struct Export {
    /// The module that exports it (`ndis.sys`, `ntoskrnl.exe`, `hal.dll`), lower case.
    pub module: &'static str,
    /// Its name.
    pub name: &'static str,
    /// How many arguments it takes.
    pub arity: usize,
    /// Calls it with the arguments `arguments` yields, each as wide as its declaration says, and
    /// returns its result as a word.
    ///
    /// # Safety
    /// The arguments meet the function's contract (pointers valid in this process, ...).
    pub call: unsafe fn(arguments: &mut dyn Arguments) -> u64,
    /// The function never returns (`KeBugCheckEx`): an emulator stops the run when it is called.
    pub diverges: bool,
}

impl Export {
    /// Calls it with one word per argument (at least [`Export::arity`]).
    ///
    /// # Safety
    /// As [`Export::call`].
    pub unsafe fn call_words(&self, arguments: &[u64]) -> u64 {
        // SAFETY: the caller's promise.
        unsafe { (self.call)(&mut arguments.iter()) }
    }

    /// Its calling convention on x86.
    pub fn x86_convention(&self) -> X86Convention {
        if X86_FASTCALL.contains(&self.name) {
            X86Convention::Fastcall
        } else if X86_CDECL.contains(&self.name) {
            X86Convention::Cdecl
        } else {
            X86Convention::Stdcall
        }
    }
}

macro_rules! exports {
    ($(#[$doc:meta])* $table:ident from $functions:ident: $($module:literal: [$($name:ident($($index:literal)*) $(-> $never:tt)?),* $(,)?])*) => {
        $(#[$doc])*
        pub static $table: &[Export] = &[$($(
            Export {
                module: $module,
                name: stringify!($name),
                arity: <[usize]>::len(&[$($index),*]),
                call: {
                    #[allow(unused_unsafe)]
                    unsafe fn thunk(arguments: &mut dyn Arguments) -> u64 {
                        let _ = &arguments;
                        // SAFETY: the caller's promise: the arguments meet the function's contract.
                        exports!(@result $($never)? unsafe { $functions::$name($(exports!(@argument arguments $index)),*) })
                    }
                    thunk
                },
                diverges: exports!(@diverges $($never)?),
            },
        )*)*];
    };
    (@argument $arguments:ident $index:literal) => { argument($arguments) };
    (@result ! $call:expr) => { $call };
    (@result $call:expr) => { Word::to_word($call) };
    (@diverges) => { false };
    (@diverges !) => { true };
}

exports! {
    /// Every function an image may import, by module and name (x86 images also [`X86_EXPORTS`]).
    EXPORTS from imports:
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

exports! {
    /// The exports only x86 images import: the `FASTCALL` spin lock pair `wdm.h` maps
    /// `KeAcquireSpinLock` / `KeReleaseSpinLock` onto, and the 64-bit arithmetic helpers LLVM calls.
    X86_EXPORTS from x86:
    "ntoskrnl.exe": [
        KfAcquireSpinLock(0),
        KfReleaseSpinLock(0 1),
        _aulldiv(0 1),
        _aullrem(0 1),
        _alldiv(0 1),
        _allrem(0 1),
        _allmul(0 1),
    ]
}

/// The model's x86-only exports, over its other functions.
#[allow(non_snake_case)]
mod x86 {
    use wanlayer_ndis::imports;
    use wanlayer_ndis::kernel::{KSpinLock, Kirql};

    /// `KfAcquireSpinLock`: `KeAcquireSpinLockRaiseToDpc` on x86.
    ///
    /// # Safety
    /// As `KeAcquireSpinLockRaiseToDpc`.
    pub unsafe fn KfAcquireSpinLock(spin_lock: *mut KSpinLock) -> Kirql {
        // SAFETY: the caller's promise.
        unsafe { imports::KeAcquireSpinLockRaiseToDpc(spin_lock) }
    }

    /// `KfReleaseSpinLock`: `KeReleaseSpinLock` on x86.
    ///
    /// # Safety
    /// As `KeReleaseSpinLock`.
    pub unsafe fn KfReleaseSpinLock(spin_lock: *mut KSpinLock, new_irql: Kirql) {
        // SAFETY: the caller's promise.
        unsafe { imports::KeReleaseSpinLock(spin_lock, new_irql) }
    }

    /// `_aulldiv`: unsigned 64-bit division; a zero divisor is the processor's divide error.
    pub fn _aulldiv(dividend: u64, divisor: u64) -> u64 {
        dividend.checked_div(divisor).expect("_aulldiv: division by zero (a divide error)")
    }

    /// `_aullrem`: unsigned 64-bit remainder.
    pub fn _aullrem(dividend: u64, divisor: u64) -> u64 {
        dividend.checked_rem(divisor).expect("_aullrem: division by zero (a divide error)")
    }

    /// `_alldiv`: signed 64-bit division; a zero divisor or `i64::MIN / -1` is a divide error.
    pub fn _alldiv(dividend: i64, divisor: i64) -> i64 {
        dividend.checked_div(divisor).expect("_alldiv: division by zero or overflow (a divide error)")
    }

    /// `_allrem`: signed 64-bit remainder.
    pub fn _allrem(dividend: i64, divisor: i64) -> i64 {
        dividend.checked_rem(divisor).expect("_allrem: division by zero or overflow (a divide error)")
    }

    /// `_allmul`: 64-bit multiplication (the low 64 bits, signed or not).
    pub fn _allmul(left: u64, right: u64) -> u64 {
        left.wrapping_mul(right)
    }
}

/// The export `name` of `module` (compared case-insensitively, as the loader does), x86-only ones
/// included.
pub fn find(module: &str, name: &str) -> Option<&'static Export> {
    EXPORTS.iter().chain(X86_EXPORTS).find(|export| export.name == name && export.module.eq_ignore_ascii_case(module))
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
        let block = unsafe { pool.call_words(&[0x40, 24, tag]) };
        assert_ne!(block, 0);
        assert_eq!(crate::pool_outstanding(), [(u32::from_le_bytes(*b"Test"), 24)]);
        let free = find("ntoskrnl.exe", "ExFreePoolWithTag").expect("exported");
        // SAFETY: the block allocated above, freed once with its tag.
        unsafe { free.call_words(&[block, tag]) };
        assert!(crate::finish().is_empty());
        assert!(find("ntoskrnl.exe", "KeBugCheckEx").expect("exported").diverges);
        assert!(find("ndis.sys", "ExAllocatePool2").is_none(), "by module too");
        assert_eq!(find("ntoskrnl.exe", "IofCallDriver").expect("exported").x86_convention(), X86Convention::Fastcall);
        assert_eq!(find("ntoskrnl.exe", "memcpy").expect("exported").x86_convention(), X86Convention::Cdecl);
        let divide = find("ntoskrnl.exe", "_aulldiv").expect("exported");
        assert_eq!(divide.x86_convention(), X86Convention::Stdcall);
        // SAFETY: plain arithmetic.
        assert_eq!(unsafe { divide.call_words(&[u64::MAX, 3]) }, u64::MAX / 3);
    }
}
