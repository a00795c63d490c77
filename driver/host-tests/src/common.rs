//! What the scenarios share: owned NDIS structures reached through one raw pointer each.
//!
//! The driver keeps raw pointers into what a test hands it (an OID request's original in its
//! clone, a module's attach parameters for the call, NBLs in chains). A `Box` moved after such a
//! pointer was taken would invalidate it under Stacked Borrows (a move retags the box), so every
//! structure a test passes lives in an [`Owned`]: allocated once, reached only through its
//! [`Owned::ptr`], freed on drop.

use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// A heap value reached only through one raw pointer.
pub struct Owned<T>(NonNull<T>);

impl<T> Owned<T> {
    /// Moves `value` to the heap.
    pub fn new(value: T) -> Self {
        Self(NonNull::from(Box::leak(Box::new(value))))
    }

    /// The pointer every use goes through (the driver's and the test's alike).
    pub fn ptr(&self) -> *mut T {
        self.0.as_ptr()
    }
}

/// A zeroed NDIS structure (every one the scenarios use is valid all-zero: integers, raw
/// pointers, unions of those and optional function pointers).
pub fn zeroed<T>() -> Owned<T> {
    // SAFETY: only instantiated with `repr(C)` kernel structures for which all-zero bytes are a
    // valid value (see above).
    Owned::new(unsafe { MaybeUninit::<T>::zeroed().assume_init() })
}

impl<T> Deref for Owned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the allocation lives until drop; the test is single-threaded and the driver
        // does not write it while the test reads.
        unsafe { self.0.as_ref() }
    }
}

impl<T> DerefMut for Owned<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above; the test writes between calls into the driver.
        unsafe { self.0.as_mut() }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: allocated by `Box` in `new`, freed once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}
