//! Non-paged pool on every Windows the package installs on, from Server 2019 / Windows 10 1809
//! (build 17763): `ExAllocatePool2` where the kernel exports it (build 19041 on), found at run time
//! with `MmGetSystemRoutineAddress` as wdm.h's down-level pool wrappers do, and otherwise
//! `ExAllocatePoolWithTag(NonPagedPoolNx)` with the block zeroed here. So the images import only
//! what 17763 exports (`cargo xtask verify-image` refuses an `ExAllocatePool2` import), and every
//! block is zeroed, non-paged and no-execute on both paths.
//!
//! # IRQL
//! [`find_pool2`] at `PASSIVE_LEVEL` (`DriverEntry`, before the first allocation); [`allocate`]
//! and [`free`] at `<= DISPATCH_LEVEL`. Until [`find_pool2`] ran, allocations take the fallback.

use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::imports;
use crate::kernel::{PoolFlags, POOL_FLAG_NON_PAGED};
use crate::types::UnicodeString;

/// `NonPagedPoolNx`: the `POOL_TYPE` of the fallback (non-paged, no-execute).
pub const NON_PAGED_POOL_NX: u32 = 512;

/// `ExAllocatePool2`'s signature.
type ExAllocatePool2Fn = unsafe extern "system" fn(PoolFlags, usize, u32) -> *mut c_void;

/// The address of `ExAllocatePool2`, 0 when this kernel has none (or it was not looked up yet).
static POOL2: AtomicUsize = AtomicUsize::new(0);

/// `L"ExAllocatePool2"`.
const POOL2_NAME: [u16; 15] = {
    let ascii = *b"ExAllocatePool2";
    let mut units = [0u16; 15];
    let mut at = 0;
    while at < ascii.len() {
        units[at] = ascii[at] as u16;
        at += 1;
    }
    units
};

/// Looks `ExAllocatePool2` up in the running kernel; returns whether it has it.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Safety
/// Called from `DriverEntry` (`PASSIVE_LEVEL`), before the driver allocates concurrently.
pub unsafe fn find_pool2() -> bool {
    let mut name = UnicodeString::from_static(&POOL2_NAME);
    // SAFETY: at PASSIVE_LEVEL (the caller's promise), with a valid counted name.
    let address = unsafe { imports::MmGetSystemRoutineAddress(&mut name) };
    POOL2.store(address.expose_provenance(), Ordering::Release);
    !address.is_null()
}

/// Whether allocations use `ExAllocatePool2` ([`find_pool2`] found it).
pub fn uses_pool2() -> bool {
    POOL2.load(Ordering::Acquire) != 0
}

/// A zeroed block of non-paged, no-execute pool of `size` bytes tagged `tag`, aligned to
/// `MEMORY_ALLOCATION_ALIGNMENT`; null when the pool has none.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub fn allocate(size: usize, tag: u32) -> *mut c_void {
    let pool2 = POOL2.load(Ordering::Acquire);
    if pool2 != 0 {
        // SAFETY: a non-zero value is the address `MmGetSystemRoutineAddress` gave for
        // "ExAllocatePool2", which has this signature (wdm.h).
        let pool2 = unsafe { core::mem::transmute::<*mut c_void, ExAllocatePool2Fn>(core::ptr::with_exposed_provenance_mut(pool2)) };
        // SAFETY: non-paged pool at <= DISPATCH_LEVEL; ExAllocatePool2 zeroes the block (no
        // POOL_FLAG_UNINITIALIZED).
        return unsafe { pool2(POOL_FLAG_NON_PAGED, size, tag) };
    }
    // SAFETY: non-paged pool at <= DISPATCH_LEVEL.
    let block = unsafe { imports::ExAllocatePoolWithTag(NON_PAGED_POOL_NX, size, tag) };
    if !block.is_null() {
        // SAFETY: a fresh block of `size` writable bytes.
        unsafe { block.cast::<u8>().write_bytes(0, size) };
    }
    block
}

/// Frees a block [`allocate`] returned with the same `tag`.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
///
/// # Safety
/// `block` came from [`allocate`] with `tag` and is not used or freed again.
pub unsafe fn free(block: *mut c_void, tag: u32) {
    // SAFETY: the caller's promise; both allocators' blocks are freed with ExFreePoolWithTag.
    unsafe { imports::ExFreePoolWithTag(block, tag) };
}
