//! The global allocator: non-paged pool (`ExAllocatePool2(POOL_FLAG_NON_PAGED, ..)`) tagged
//! [`HEAP_TAG`], honouring every alignment `Layout` asks for.
//!
//! # Alignment
//!
//! Pool blocks are aligned to `MEMORY_ALLOCATION_ALIGNMENT`, 16 bytes on 64-bit Windows (and
//! blocks of a page or more to a page, which is not relied on). For `align <= 16` the block is
//! returned as it is. For a larger alignment (a power of two, so at least 32) the block is
//! over-allocated by `align` bytes and the original pointer stored in the 8 bytes just below the
//! aligned pointer handed out:
//!
//! * the block start `b` is 16-aligned, so `b + 8 ≡ 8 (mod 16)` is never a multiple of `align`;
//!   the first multiple of `align` at or above `b + 8`, `p`, is therefore at most
//!   `b + 8 + (align - 8) = b + align` — and at least `b + 8`, leaving room for the stored pointer
//!   at `p - 8` inside the block;
//! * `p + size <= b + align + size`: the over-allocation of `align` bytes is exactly enough;
//! * `p - 8` is 8-aligned (`p` is `align`-aligned), so the stored pointer is an aligned `usize`.
//!
//! `dealloc` receives the same `Layout`, so it knows which case it is in. ExAllocatePool2 zeroes
//! the memory it returns, so `alloc_zeroed` is `alloc`.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::mem::size_of;

use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::POOL_FLAG_NON_PAGED;

/// `MEMORY_ALLOCATION_ALIGNMENT` on 64-bit Windows: what every pool block is aligned to.
pub const POOL_ALIGNMENT: usize = 16;

/// Pool tag of Rust heap allocations (the engine's tables, links, events): "WLrs" in `!poolused`.
pub const HEAP_TAG: u32 = u32::from_le_bytes(*b"WLrs");

const _: () = {
    // The stored original pointer fits below an over-aligned pointer: align >= 2 * POOL_ALIGNMENT
    // > size_of::<usize>() + (POOL_ALIGNMENT - size_of::<usize>()) = POOL_ALIGNMENT.
    assert!(POOL_ALIGNMENT.is_power_of_two() && POOL_ALIGNMENT == 2 * size_of::<usize>());
};

/// The driver's `#[global_allocator]` (see [`crate::platform`]).
pub struct PoolAllocator;

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` (the module's proof), valid until `dealloc` with the same layout frees exactly
// the pool block it came from; pool allocation is thread-safe.
unsafe impl GlobalAlloc for PoolAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= POOL_ALIGNMENT {
            // SAFETY: non-paged pool may be allocated at <= DISPATCH_LEVEL, where all of the
            // driver runs.
            return unsafe { imports::ExAllocatePool2(POOL_FLAG_NON_PAGED, layout.size(), HEAP_TAG) }.cast();
        }
        let Some(total) = layout.size().checked_add(layout.align()) else { return core::ptr::null_mut() };
        // SAFETY: as above.
        let block = unsafe { imports::ExAllocatePool2(POOL_FLAG_NON_PAGED, total, HEAP_TAG) }.cast::<u8>();
        if block.is_null() {
            return block;
        }
        let offset = (block.addr() + size_of::<usize>()).next_multiple_of(layout.align()) - block.addr();
        let aligned = block.wrapping_add(offset);
        // SAFETY: `size_of::<usize>() <= offset <= align` (module proof), so `aligned - 8` lies in
        // the block and is 8-aligned; the block is ours.
        unsafe { aligned.wrapping_sub(size_of::<usize>()).cast::<*mut u8>().write(block) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let block = if layout.align() <= POOL_ALIGNMENT {
            ptr
        } else {
            // SAFETY: `ptr` came from `alloc` with this layout, which stored the block start just
            // below it.
            unsafe { ptr.wrapping_sub(size_of::<usize>()).cast::<*mut u8>().read() }
        };
        // SAFETY: `block` is a pool block allocated with HEAP_TAG and not freed yet.
        unsafe { imports::ExFreePoolWithTag(block.cast::<c_void>(), HEAP_TAG) };
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; ExAllocatePool2 returns zeroed memory (no POOL_FLAG_UNINITIALIZED).
        unsafe { self.alloc(layout) }
    }
}
