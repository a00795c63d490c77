//! The two ways to pool a driver has from build 17763 on: `ExAllocatePool2` (build 19041 on),
//! which drivers find with `MmGetSystemRoutineAddress`, and `ExAllocatePoolWithTag`, which every
//! build exports. [`set_pool2_absent`] makes the model a kernel older than 19041: the lookup then
//! answers null and the driver must take `ExAllocatePoolWithTag`, whose blocks are not zeroed
//! (the model fills them with `0xA5`, so a driver that relies on zeroed pool shows it).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use wanlayer_ndis::kernel::PoolFlags;
use wanlayer_ndis::types::UnicodeString;

/// `NonPagedPoolNx`, the only `POOL_TYPE` the model serves.
const NON_PAGED_POOL_NX: u32 = 512;
/// What an uninitialised pool block of the model holds.
const UNINITIALISED: u8 = 0xA5;

static POOL2_ABSENT: AtomicBool = AtomicBool::new(false);

/// A new run: `ExAllocatePool2` exported again.
pub(crate) fn reset() {
    POOL2_ABSENT.store(false, Ordering::Relaxed);
}

/// Makes this run's kernel one without `ExAllocatePool2` (before build 19041): the driver's
/// lookup answers null.
pub fn set_pool2_absent(absent: bool) {
    POOL2_ABSENT.store(absent, Ordering::Relaxed);
}

/// Routines `MmGetSystemRoutineAddress` answers: the ones a driver looks up rather than imports.
fn routine(name: &str) -> Option<*mut c_void> {
    type Pool2 = unsafe extern "system" fn(PoolFlags, usize, u32) -> *mut c_void;
    match name {
        "ExAllocatePool2" if !POOL2_ABSENT.load(Ordering::Relaxed) => Some(crate::ExAllocatePool2 as Pool2 as *mut c_void),
        _ => None,
    }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn MmGetSystemRoutineAddress(name: *mut UnicodeString) -> *mut c_void {
    let _kernel = crate::invoke::kernel_code();
    crate::state().require_passive("MmGetSystemRoutineAddress");
    // SAFETY: the driver passes a valid counted name (the import's contract).
    let Some(name) = (unsafe { crate::unicode_text(name) }) else {
        crate::state().violation("MmGetSystemRoutineAddress with a malformed name");
        return std::ptr::null_mut();
    };
    routine(&name).unwrap_or(std::ptr::null_mut())
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ExAllocatePoolWithTag(pool_type: u32, size: usize, tag: u32) -> *mut c_void {
    let _kernel = crate::invoke::kernel_code();
    if pool_type != NON_PAGED_POOL_NX {
        crate::state().violation(format!("ExAllocatePoolWithTag of pool type {pool_type}: the driver's pool is NonPagedPoolNx (512)"));
    }
    // SAFETY: the model's own allocator (counted, tagged, checked at free), called as the driver
    // would call it.
    let block = unsafe { crate::ExAllocatePool2(0x40, size, tag) };
    if !block.is_null() {
        // SAFETY: a fresh block of at least `size` bytes.
        unsafe { block.cast::<u8>().write_bytes(UNINITIALISED, size) };
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookup_finds_pool2_unless_absent_and_the_fallback_is_not_zeroed() {
        let _run = crate::begin();
        let units: Vec<u16> = "ExAllocatePool2".encode_utf16().collect();
        let bytes = u16::try_from(units.len() * 2).expect("short");
        let mut name = UnicodeString { length: bytes, maximum_length: bytes, buffer: units.as_ptr().cast_mut() };
        // SAFETY: (each call below) the model's functions called as the driver calls them.
        assert!(!unsafe { MmGetSystemRoutineAddress(&mut name) }.is_null());
        set_pool2_absent(true);
        // SAFETY: as above.
        assert!(unsafe { MmGetSystemRoutineAddress(&mut name) }.is_null());
        // SAFETY: as above.
        let block = unsafe { ExAllocatePoolWithTag(NON_PAGED_POOL_NX, 4, 0x7453_6554) };
        // SAFETY: a live block of 4 bytes.
        assert_eq!(unsafe { block.cast::<[u8; 4]>().read() }, [UNINITIALISED; 4]);
        // SAFETY: as above.
        unsafe { crate::ExFreePoolWithTag(block, 0x7453_6554) };
        assert!(crate::finish().is_empty(), "{:?}", crate::finish());
    }
}
