//! What a Rust kernel driver needs and `core` does not give — a global allocator over non-paged
//! pool, a panic that stops the system with its location, and debug output — shared by
//! `wanlayer.sys` and vendor drivers built with the SDK. Windows targets only.
//!
//! # The allocator's alignment
//!
//! Pool blocks are aligned to `MEMORY_ALLOCATION_ALIGNMENT`, `A` = two pointers: 16 bytes on
//! 64-bit Windows, 8 on x86 (and blocks of a page or more to a page, which is not relied on).
//! With `W` = one pointer (`A = 2W`): for `align <= A` the block is returned as it is. For a larger
//! alignment (a power of two, so at least `2A`) the block is over-allocated by `align` bytes and
//! the original pointer stored in the `W` bytes just below the aligned pointer handed out:
//!
//! * the block start `b` is `A`-aligned, so `b + W ≡ W (mod A)` is never a multiple of `align`;
//!   the first multiple of `align` at or above `b + W`, `p`, is therefore at most
//!   `b + W + (align - W) = b + align` — and at least `b + W`, leaving room for the stored
//!   pointer at `p - W` inside the block;
//! * `p + size <= b + align + size`: the over-allocation of `align` bytes is exactly enough;
//! * `p - W` is `W`-aligned (`p` is `align`-aligned), so the stored pointer is an aligned `usize`.
//!
//! `dealloc` receives the same `Layout`, so it knows which case it is in. [`crate::pool`] zeroes
//! every block it returns (`ExAllocatePool2`, or `ExAllocatePoolWithTag` before build 19041), so
//! `alloc_zeroed` is `alloc`.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::fmt::{self, Write};
use core::mem::size_of;
use core::panic::PanicInfo;

use crate::imports;
use crate::kernel::DPFLTR_IHVNETWORK_ID;

/// `MEMORY_ALLOCATION_ALIGNMENT`: what every pool block is aligned to, 16 bytes on 64-bit Windows
/// and 8 on x86 (two pointers on both).
pub const POOL_ALIGNMENT: usize = 2 * size_of::<usize>();

const _: () = {
    // The stored original pointer fits below an over-aligned pointer (see the module's proof).
    assert!(POOL_ALIGNMENT.is_power_of_two() && POOL_ALIGNMENT == 2 * size_of::<usize>());
};

/// A `#[global_allocator]` over non-paged pool tagged `TAG` ([`crate::pool`]: `ExAllocatePool2`,
/// or `ExAllocatePoolWithTag` before build 19041) that honours every alignment (the module's
/// proof).
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: PoolAllocator<{ u32::from_le_bytes(*b"WLcl") }> = PoolAllocator::new();
/// ```
pub struct PoolAllocator<const TAG: u32>;

impl<const TAG: u32> PoolAllocator<TAG> {
    /// The allocator (a unit value, for `static` initialisers through type aliases).
    pub const fn new() -> Self {
        Self
    }
}

impl<const TAG: u32> Default for PoolAllocator<TAG> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` (the module's proof), valid until `dealloc` with the same layout frees exactly
// the pool block it came from; pool allocation is thread-safe.
unsafe impl<const TAG: u32> GlobalAlloc for PoolAllocator<TAG> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= POOL_ALIGNMENT {
            return crate::pool::allocate(layout.size(), TAG).cast();
        }
        let Some(total) = layout.size().checked_add(layout.align()) else { return core::ptr::null_mut() };
        let block = crate::pool::allocate(total, TAG).cast::<u8>();
        if block.is_null() {
            return block;
        }
        let offset = (block.addr() + size_of::<usize>()).next_multiple_of(layout.align()) - block.addr();
        let aligned = block.wrapping_add(offset);
        // SAFETY: `size_of::<usize>() <= offset <= align` (module proof), so `aligned - W` lies in
        // the block and is pointer-aligned; the block is ours.
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
        // SAFETY: a block `crate::pool::allocate` returned with TAG, not freed yet.
        unsafe { crate::pool::free(block.cast::<c_void>(), TAG) };
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; `crate::pool::allocate` zeroes what it returns.
        unsafe { self.alloc(layout) }
    }
}

/// Stops the system: `KeBugCheckEx(code, file, file length, line, column)` with the panic's
/// location. Nothing is formatted (the formatter could itself fail or need pool): in WinDbg,
/// `da <p1> L<p2>` shows the file. Call it from the driver's `#[panic_handler]`.
///
/// # IRQL
/// Any.
pub fn bug_check(code: u32, info: &PanicInfo<'_>) -> ! {
    let (file, line, column) = match info.location() {
        Some(location) => (location.file(), location.line(), location.column()),
        None => ("", 0, 0),
    };
    // SAFETY: callable at any IRQL, never returns; plain values (the file name is a static string
    // in the image, valid in the dump).
    unsafe { imports::KeBugCheckEx(code, file.as_ptr() as usize, file.len(), line as usize, column as usize) }
}

/// Bytes of one debug message, the terminating NUL included: what `DbgPrintEx` transmits at most.
pub const MESSAGE_MAX: usize = 512;

/// A message being formatted: bytes past the end are dropped, one byte is kept for the NUL.
struct MessageBuffer {
    bytes: [u8; MESSAGE_MAX],
    len: usize,
}

impl Write for MessageBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = (MESSAGE_MAX - 1).saturating_sub(self.len);
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// `DbgPrintEx(DPFLTR_IHVNETWORK_ID, level, "%s\n", "<prefix>: <message>")`: formatted into a
/// fixed buffer on the stack (no allocation, so it works at `DISPATCH_LEVEL` and when pool is
/// exhausted), cut at [`MESSAGE_MAX`] bytes, and passed as the argument of a constant format, so a
/// `%` in a message is never interpreted. `level` is a `DPFLTR_*_LEVEL`.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub fn print(level: u32, prefix: &str, message: fmt::Arguments<'_>) {
    let mut text = MessageBuffer { bytes: [0; MESSAGE_MAX], len: 0 };
    let _ = write!(text, "{prefix}: {message}");
    let end = text.len.min(MESSAGE_MAX - 1);
    text.bytes[end] = 0;
    // SAFETY: a NUL-terminated constant format with one `%s`, matched by a NUL-terminated string on
    // this (resident) stack that outlives the call.
    unsafe { imports::DbgPrintEx(DPFLTR_IHVNETWORK_ID, level, c"%s\n".as_ptr(), text.bytes.as_ptr().cast::<core::ffi::c_char>()) };
}
