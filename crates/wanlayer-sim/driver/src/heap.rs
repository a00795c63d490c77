//! The driver's Rust heap on the host, in kernel pool as in the kernel: [`DriverHeap`] is a global
//! allocator a test binary installs (`#[global_allocator]`) so that what the driver's code
//! allocates — the engine's tables, links, held packets, event queue — comes from the kernel
//! model's pool through the driver's own [`PoolAllocator`] (tag `WLrs`, the alignment handling of
//! `wanlayer_ndis::runtime`), exactly as the image's `#[global_allocator]` takes it from
//! `ExAllocatePool2`. The model's low-resources simulation then fails those allocations too (its
//! plans, [`fail_next_of_kind`](wanlayer_kernel_model::low_resources::fail_next_of_kind),
//! [`refuse_pool_tag`](wanlayer_kernel_model::low_resources::refuse_pool_tag) with
//! [`HEAP_TAG`]), counts them, and reports a block the driver did not free at unload.
//!
//! # Whose allocation
//! An allocation is the driver's when it is made while the driver's code runs on the thread
//! ([`in_driver_code`]): inside a call into the driver ([`crate::invoke`], the model's
//! [`invoke::call`](wanlayer_kernel_model::invoke::call) for DPCs, timers and queue callbacks) and
//! not inside one of the kernel model's functions it called (each import is the kernel's code: the
//! model's bookkeeping, and the simulated drivers its sinks call, stay on the host's heap), nor
//! inside a hook's callback ([`VendorHook`]: another driver's code and memory). Everything else —
//! the test, the simulator, the model — gets [`System`].
//!
//! Engine calls a test makes directly (`rras.engine()`: adding a hook, reinjecting), standing in
//! for a vendor's call through the provider table, run as the test's code: their allocations, if
//! any, are the host's. So do the provider table's functions a vendor reaches through
//! [`DriverFilter::vendor_call`](crate::DriverFilter::vendor_call) (the vendor's code and the
//! driver's are not told apart there).
//!
//! # Whose block
//! A block is freed by whoever owns it, never by who frees it: the driver's memory is often freed
//! from the test's code (a packet given back, a world dropped) and the other way round. The
//! blocks handed out from pool are registered by address until freed; `dealloc` of a registered
//! block frees it through [`PoolAllocator`] (`ExFreePoolWithTag`) — with the pointer the pool
//! handed out when the layout is aligned beyond pool's alignment, whose provenance reaches what the
//! allocator stored below the block (the pointer a `Box` frees with may only reach the `Box`'s own
//! bytes) — and of any other through [`System`]. `realloc` keeps the driver's blocks in pool and
//! moves a block the driver grows there; the rest is [`System`]'s own `realloc`.
//!
//! # Re-entrancy
//! The model's pool takes its blocks from the global allocator — this one — while the model's
//! code runs, so they are [`System`]'s. The registry (a map behind a mutex) allocates too: while
//! this thread holds it, every allocation and free is [`System`]'s without looking at the
//! registry. The thread-local flags have no destructor, so they are readable while a thread ends.
//! Nothing here needs native code beyond [`System`] (Miri runs it). Miri's borrow models refuse
//! one thing the driver's allocator does, not this router: freeing a block aligned beyond pool's
//! 16 bytes while it is a protected function argument (`drop(boxed)`), because the allocator
//! frees the pool block that begins below it (rust-lang/miri#2104).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wanlayer_core::hook::{Hook, PacketContext, Verdict};
use wanlayer_core::link::LinkSummary;
use wanlayer_kernel_model::invoke::{self, in_driver_code};
use wanlayer_ndis::runtime::POOL_ALIGNMENT;

/// The driver's `#[global_allocator]` in the kernel: non-paged pool tagged [`HEAP_TAG`].
pub use wanlayer::hal::alloc::PoolAllocator;
/// The pool tag of the driver's Rust heap ("WLrs"): what a scenario refuses
/// ([`refuse_pool_tag`](wanlayer_kernel_model::low_resources::refuse_pool_tag)) to run the driver
/// without heap.
pub use wanlayer::hal::alloc::HEAP_TAG;

/// A global allocator for test binaries with the driver in the loop: the driver's allocations
/// from kernel pool as in the kernel, the rest from [`System`] (see the module documentation).
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: wanlayer_sim_driver::heap::DriverHeap = wanlayer_sim_driver::heap::DriverHeap;
/// ```
pub struct DriverHeap;

/// A pool block handed out, as [`PoolAllocator`] returned it: with the provenance of the whole
/// pool block, which its `dealloc` needs to read what it stored below an over-aligned block (the
/// pointer a `Box` frees with may only reach the `Box`'s own bytes).
struct HandedOut(*mut u8);

// SAFETY: only an address with its provenance, dereferenced by nobody but `PoolAllocator::dealloc`
// when the block is freed, on whichever thread frees it (pool is not tied to a thread).
unsafe impl Send for HandedOut {}

/// The pool blocks handed out and not freed yet, by address.
static POOL_BLOCKS: Mutex<BTreeMap<usize, HandedOut>> = Mutex::new(BTreeMap::new());
/// How many addresses [`POOL_BLOCKS`] holds: while none, a free need not look.
static LIVE_POOL_BLOCKS: AtomicUsize = AtomicUsize::new(0);
/// Pool allocations asked for through [`DriverHeap`], and how many the pool refused.
static ASKED: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// The driver's heap allocations so far in this process (each one of the kernel model's pool
/// allocations), the refused ones included.
pub fn allocations() -> u64 {
    ASKED.load(Ordering::SeqCst)
}

/// The driver's heap allocations the pool refused so far in this process (the model's
/// low-resources simulation).
pub fn refusals() -> u64 {
    REFUSED.load(Ordering::SeqCst)
}

thread_local! {
    /// This thread holds [`POOL_BLOCKS`]: what is allocated or freed now is the registry's own.
    static IN_REGISTRY: Cell<bool> = const { Cell::new(false) };
}

fn in_registry() -> bool {
    IN_REGISTRY.try_with(Cell::get).unwrap_or(false)
}

/// Whether an allocation made now is the driver's (see the module documentation).
fn for_the_driver() -> bool {
    in_driver_code() && !in_registry()
}

/// Runs `change` on the registry, with this thread's allocations [`System`]'s meanwhile.
fn with_registry<R>(change: impl FnOnce(&mut BTreeMap<usize, HandedOut>) -> R) -> R {
    let _ = IN_REGISTRY.try_with(|flag| flag.set(true));
    let result = {
        let mut blocks = POOL_BLOCKS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = change(&mut blocks);
        LIVE_POOL_BLOCKS.store(blocks.len(), Ordering::SeqCst);
        result
    };
    let _ = IN_REGISTRY.try_with(|flag| flag.set(false));
    result
}

/// Whether `block` is a pool block this allocator handed out and did not free.
fn is_pool_block(block: *mut u8) -> bool {
    LIVE_POOL_BLOCKS.load(Ordering::SeqCst) != 0 && !in_registry() && with_registry(|blocks| blocks.contains_key(&block.addr()))
}

/// Forgets `block` if it is a registered pool block; returns it as the pool handed it out.
fn unregister(block: *mut u8) -> Option<*mut u8> {
    if LIVE_POOL_BLOCKS.load(Ordering::SeqCst) == 0 || in_registry() {
        return None;
    }
    with_registry(|blocks| blocks.remove(&block.addr())).map(|handed_out| handed_out.0)
}

/// A block of `layout` from pool as the driver's allocator takes it, registered; null when the
/// pool (the model's low-resources simulation) refuses.
fn pool_allocate(layout: Layout) -> *mut u8 {
    // The model's code from here: its bookkeeping, and the block under the pool block, are the
    // host's heap.
    let _kernel = invoke::kernel_code();
    // SAFETY: a non-zero size (`GlobalAlloc`'s callers' promise, forwarded).
    let block = unsafe { PoolAllocator::new().alloc(layout) };
    ASKED.fetch_add(1, Ordering::SeqCst);
    if block.is_null() {
        REFUSED.fetch_add(1, Ordering::SeqCst);
    } else {
        with_registry(|blocks| blocks.insert(block.addr(), HandedOut(block)));
    }
    block
}

/// Frees a pool block [`pool_allocate`] returned for `layout` (already unregistered), passed as it
/// returned it.
///
/// # Safety
/// `block` came from [`pool_allocate`] with `layout` and is freed once.
unsafe fn pool_free(block: *mut u8, layout: Layout) {
    let _kernel = invoke::kernel_code();
    // SAFETY: the caller's promise: a block the driver's allocator returned for this layout.
    unsafe { PoolAllocator::new().dealloc(block, layout) };
}

// SAFETY: every block comes from `System` or from the driver's `PoolAllocator` (whose module
// proves its alignment and size), and is freed by the one it came from: the pool's blocks are
// registered from their allocation until their free, and only they are freed through the pool.
// Both are thread-safe; the registry is behind a mutex, never locked twice by one thread.
unsafe impl GlobalAlloc for DriverHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if for_the_driver() {
            return pool_allocate(layout);
        }
        // SAFETY: forwarded (a non-zero size).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if for_the_driver() {
            // Pool blocks are zeroed (`wanlayer_ndis::pool::allocate`).
            return pool_allocate(layout);
        }
        // SAFETY: forwarded (a non-zero size).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(handed_out) = unregister(ptr) {
            // The pointer the caller frees with, as the image's allocator gets it; for a block
            // over-aligned below what the pool aligns, the one the pool handed out, whose
            // provenance reaches the block's start stored below it.
            let block = if layout.align() <= POOL_ALIGNMENT { ptr } else { handed_out };
            // SAFETY: a registered block, `pool_allocate` returned it for this layout (the
            // caller's promise), freed once (unregistered above).
            unsafe { pool_free(block, layout) };
        } else {
            // SAFETY: not the pool's, so `System`'s, with this layout (the caller's promise).
            unsafe { System.dealloc(ptr, layout) };
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let owned_by_driver = is_pool_block(ptr);
        if !owned_by_driver && !for_the_driver() {
            // SAFETY: `System`'s block of this layout; the caller's promises about `new_size`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller promises `new_size`, rounded up to `layout.align()`, does not
        // overflow `isize`, so it is a valid layout with the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let moved = pool_allocate(new_layout);
        if !moved.is_null() {
            // SAFETY: both blocks are live and distinct; the smaller size of the two is in both.
            unsafe { std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
            // SAFETY: the caller's block of `layout`, freed by its owner (`dealloc` routes it).
            unsafe { self.dealloc(ptr, layout) };
        }
        moved
    }
}

/// A hook registered directly on the engine, run as another driver's code: a vendor's callbacks
/// allocate from the vendor's own memory, not from `wanlayer.sys`'s heap, so under [`DriverHeap`]
/// what they allocate is the host's (and a failure of the driver's pool never reaches them).
pub struct VendorHook<H>(pub Arc<H>);

impl<H: Hook> Hook for VendorHook<H> {
    fn on_line_up(&self, link: &LinkSummary) -> Option<u32> {
        let _vendor = invoke::kernel_code();
        self.0.on_line_up(link)
    }
    fn on_line_down(&self, link: &LinkSummary) {
        let _vendor = invoke::kernel_code();
        self.0.on_line_down(link);
    }
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let _vendor = invoke::kernel_code();
        self.0.on_send(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let _vendor = invoke::kernel_code();
        self.0.on_receive(packet)
    }
}
