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
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicUsize, Ordering};

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
