//! [`Pinned`]: a value on the heap, allocated fallibly, at an address that never changes.
//!
//! Kernel code never allocates infallibly (`clippy.toml`): `Box::new` and `Arc::new` abort —
//! bug-check — when the pool is exhausted, and stable Rust has no `Box::try_new` or `Arc::try_new`.
//! This is the SDK's one fallible allocation: the global allocator asked directly, the failure
//! returned to the caller.

use core::alloc::Layout;
use core::ops::Deref;
use core::ptr::NonNull;

/// The global allocator had no memory for the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// A value on the heap, reached only through shared references, whose address — handed to C
/// code as a context pointer — stays valid until the `Pinned` drops. Unlike a `Box`, moving it
/// asserts no unique access, so pointers given out earlier stay usable.
pub struct Pinned<T> {
    value: NonNull<T>,
}

// SAFETY: a `Pinned<T>` owns its `T` as a `Box<T>` would, and gives out only shared references.
unsafe impl<T: Send> Send for Pinned<T> {}
// SAFETY: as above: shared references to `T` across processors need `T: Sync`.
unsafe impl<T: Sync> Sync for Pinned<T> {}

impl<T> Pinned<T> {
    /// Moves `value` to the heap, or hands back [`OutOfMemory`] (and drops `value`).
    pub fn try_new(value: T) -> Result<Self, OutOfMemory> {
        let layout = Layout::new::<T>();
        let value_ptr = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: a layout of non-zero size.
            let raw = unsafe { alloc::alloc::alloc(layout) };
            NonNull::new(raw.cast::<T>()).ok_or(OutOfMemory)?
        };
        // SAFETY: valid for a write of `T` and aligned (allocated with `T`'s layout, or dangling
        // and well aligned for a zero-sized `T`).
        unsafe { value_ptr.as_ptr().write(value) };
        Ok(Self { value: value_ptr })
    }

    /// The value's address, for a C context pointer; valid while `self` lives.
    pub fn as_ptr(&self) -> *const T {
        self.value.as_ptr()
    }
}

impl<T> Deref for Pinned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: initialised in `try_new`, freed only in `drop`; only shared references exist.
        unsafe { self.value.as_ref() }
    }
}

impl<T> Drop for Pinned<T> {
    fn drop(&mut self) {
        let layout = Layout::new::<T>();
        // SAFETY: the value was initialised in `try_new` and is dropped once, here.
        unsafe { self.value.as_ptr().drop_in_place() };
        if layout.size() != 0 {
            // SAFETY: allocated in `try_new` by the global allocator with this layout, freed once.
            unsafe { alloc::alloc::dealloc(self.value.as_ptr().cast(), layout) };
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;

    use super::*;
    use core::alloc::GlobalAlloc;
    use core::cell::Cell;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::alloc::System;

    std::thread_local! {
        /// Whether this thread's allocations are refused now ([`refusing`]).
        static REFUSE: Cell<bool> = const { Cell::new(false) };
    }

    /// The SDK's unit tests' global allocator: the system's, except that it refuses every
    /// allocation a thread makes inside [`refusing`] (other threads' tests are untouched).
    struct Refusing;

    // SAFETY: forwards to the system allocator, or returns null (a failure GlobalAlloc allows).
    unsafe impl GlobalAlloc for Refusing {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if REFUSE.with(Cell::get) {
                return core::ptr::null_mut();
            }
            // SAFETY: the caller's layout, forwarded.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: every block this allocator handed out came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Refusing = Refusing;

    /// Runs `run` with every allocation of this thread refused: what an exhausted pool does.
    pub(crate) fn refusing<R>(run: impl FnOnce() -> R) -> R {
        REFUSE.with(|refuse| refuse.set(true));
        let result = run();
        REFUSE.with(|refuse| refuse.set(false));
        result
    }

    #[test]
    fn a_refused_allocation_is_an_error_not_an_abort() {
        assert_eq!(refusing(|| Pinned::try_new(7u64).err()), Some(OutOfMemory));
        assert_eq!(*Pinned::try_new(7u64).expect("allowed again"), 7);
    }

    struct Counted<'a>(&'a AtomicUsize);

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_value_keeps_its_address_and_is_dropped_once() {
        let drops = AtomicUsize::new(0);
        let pinned = Pinned::try_new(Counted(&drops)).unwrap();
        let address = pinned.as_ptr();
        let moved = pinned;
        assert_eq!(moved.as_ptr(), address);
        // SAFETY: the address of a live value, read through a shared reference.
        assert!(core::ptr::eq(unsafe { &*address }.0, &drops));
        drop(moved);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        let unit = Pinned::try_new(()).unwrap();
        assert_eq!(*unit, ());
    }
}
