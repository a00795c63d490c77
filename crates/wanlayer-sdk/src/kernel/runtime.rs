//! What a Rust kernel driver needs and `core` does not give: a global allocator over non-paged
//! pool, a panic that stops the system with its location, and debug output.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::fmt::{self, Write};
use core::mem::size_of;
use core::panic::PanicInfo;

use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::{DPFLTR_ERROR_LEVEL, DPFLTR_IHVNETWORK_ID, DPFLTR_INFO_LEVEL, POOL_FLAG_NON_PAGED};

/// Every pool block is aligned to `MEMORY_ALLOCATION_ALIGNMENT`: 16 bytes on 64-bit Windows.
const POOL_ALIGNMENT: usize = 16;

/// A `#[global_allocator]` over `ExAllocatePool2(POOL_FLAG_NON_PAGED, size, TAG)` that honours
/// every alignment: blocks are 16-aligned; for more, the block is over-allocated by `align` bytes
/// and its start stored in the 8 bytes below the aligned pointer (the block start is 16-aligned,
/// so the first multiple of `align` at or above `start + 8` is at most `start + align`).
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: PoolAllocator<{ u32::from_le_bytes(*b"WLcl") }> = PoolAllocator;
/// ```
pub struct PoolAllocator<const TAG: u32>;

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` (the type's proof), valid until `dealloc` with the same layout frees exactly
// the pool block it came from; pool allocation is thread-safe.
unsafe impl<const TAG: u32> GlobalAlloc for PoolAllocator<TAG> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= POOL_ALIGNMENT {
            // SAFETY: non-paged pool may be allocated at <= DISPATCH_LEVEL, where a driver runs.
            return unsafe { imports::ExAllocatePool2(POOL_FLAG_NON_PAGED, layout.size(), TAG) }.cast();
        }
        let Some(total) = layout.size().checked_add(layout.align()) else { return core::ptr::null_mut() };
        // SAFETY: as above.
        let block = unsafe { imports::ExAllocatePool2(POOL_FLAG_NON_PAGED, total, TAG) }.cast::<u8>();
        if block.is_null() {
            return block;
        }
        let offset = (block.addr() + size_of::<usize>()).next_multiple_of(layout.align()) - block.addr();
        let aligned = block.wrapping_add(offset);
        // SAFETY: `size_of::<usize>() <= offset <= align`, so `aligned - 8` lies in the block and
        // is 8-aligned; the block is ours.
        unsafe { aligned.wrapping_sub(size_of::<usize>()).cast::<*mut u8>().write(block) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let block = if layout.align() <= POOL_ALIGNMENT {
            ptr
        } else {
            // SAFETY: `ptr` came from `alloc` with this layout, which stored the block just below.
            unsafe { ptr.wrapping_sub(size_of::<usize>()).cast::<*mut u8>().read() }
        };
        // SAFETY: a pool block allocated with TAG and not freed yet.
        unsafe { imports::ExFreePoolWithTag(block.cast::<c_void>(), TAG) };
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; ExAllocatePool2 zeroes what it returns (no POOL_FLAG_UNINITIALIZED).
        unsafe { self.alloc(layout) }
    }
}

/// Stops the system: `KeBugCheckEx(code, file, file length, line, column)` with the panic's
/// location (nothing is formatted: the formatter could fail or need pool). Call it from the
/// driver's `#[panic_handler]`.
///
/// # IRQL
/// Any.
pub fn bug_check(code: u32, info: &PanicInfo<'_>) -> ! {
    let (file, line, column) = match info.location() {
        Some(location) => (location.file(), location.line(), location.column()),
        None => ("", 0, 0),
    };
    // SAFETY: callable at any IRQL, never returns; plain values (the file name is in the image).
    unsafe { imports::KeBugCheckEx(code, file.as_ptr() as usize, file.len(), line as usize, column as usize) }
}

/// How loud a debug message is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Severity {
    /// Shown by default (`DPFLTR_ERROR_LEVEL`).
    Error,
    /// Shown when the `IHVNETWORK` component's info level is enabled.
    Info,
}

/// One message, cut at the 512 bytes `DbgPrintEx` transmits (NUL included).
struct Message {
    bytes: [u8; 512],
    len: usize,
}

impl Write for Message {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let take = text.len().min(self.bytes.len() - 1 - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// `DbgPrintEx(DPFLTR_IHVNETWORK_ID, level, "%s\n", "<prefix>: <message>")`: formatted on the
/// stack (no allocation), never interpreted as a format.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub fn print(severity: Severity, prefix: &str, message: fmt::Arguments<'_>) {
    let mut text = Message { bytes: [0; 512], len: 0 };
    let _ = write!(text, "{prefix}: {message}");
    text.bytes[text.len] = 0;
    let level = match severity {
        Severity::Error => DPFLTR_ERROR_LEVEL,
        Severity::Info => DPFLTR_INFO_LEVEL,
    };
    // SAFETY: a constant format with one `%s`, matched by a NUL-terminated string on this
    // resident stack that outlives the call.
    unsafe { imports::DbgPrintEx(DPFLTR_IHVNETWORK_ID, level, c"%s\n".as_ptr(), text.bytes.as_ptr()) };
}
