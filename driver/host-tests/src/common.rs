//! What the scenarios share: owned NDIS structures reached through one raw pointer each.
//!
//! The driver keeps raw pointers into what a test hands it (an OID request's original in its
//! clone, a module's attach parameters for the call, NBLs in chains). A `Box` moved after such a
//! pointer was taken would invalidate it under Stacked Borrows (a move retags the box), so every
//! structure a test passes lives in an [`Owned`]: allocated once, reached only through its
//! [`Owned::ptr`], freed on drop (kept when dropped by a panic: see the low-resources sweep).

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use wanlayer_ndis::io::{FileObjectLayout, IrpLayout};
use wanlayer_ndis::kernel::{NtStatus, IRP_MJ_CLOSE, IRP_MJ_CREATE};
use wanlayer_ndis::types::UnicodeString;

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

/// A counted UTF-16 string and the `UNICODE_STRING` over it (a registry path, an adapter's name).
pub struct Name {
    /// The characters `string` points to.
    _units: Vec<u16>,
    /// The `UNICODE_STRING`.
    pub string: UnicodeString,
}

/// `text` as a [`Name`].
pub fn name(text: &str) -> Owned<Name> {
    let mut units: Vec<u16> = text.encode_utf16().collect();
    let bytes = u16::try_from(units.len() * 2).expect("a short name");
    let string = UnicodeString { length: bytes, maximum_length: bytes, buffer: units.as_mut_ptr() };
    Owned::new(Name { _units: units, string })
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
        if std::thread::panicking() {
            // A scenario stopped by a failed check: the driver may still hold pointers into this
            // structure until the model's teardown (which runs after the scenario's locals drop)
            // has unloaded it, so it stays allocated until [`free_kept`].
            KEPT.with(|kept| kept.borrow_mut().push((self.0.as_ptr().expose_provenance(), free::<T>)));
            return;
        }
        // SAFETY: allocated by `Box` in `new`, freed once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// An allocation an [`Owned`] dropped by a panic kept, and the function that frees it.
type Kept = (usize, unsafe fn(usize));

/// # Safety
/// `address` is an `Owned<T>`'s allocation, kept by its drop, freed once.
unsafe fn free<T>(address: usize) {
    // SAFETY: the caller's promise: allocated by `Box` in `Owned::new`.
    drop(unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut::<T>(address)) });
}

/// Frees what [`Owned`]s dropped by a panic kept (call once the driver that could use them is
/// unloaded and its model run has ended: the low-resources sweep does, before each run and after).
pub fn free_kept() {
    for (address, free) in KEPT.with(|kept| kept.take()) {
        // SAFETY: each kept allocation once, after its run ended.
        unsafe { free(address) };
    }
}

thread_local! {
    /// Allocations of [`Owned`]s dropped while panicking, with the function that frees each.
    static KEPT: RefCell<Vec<Kept>> = const { RefCell::new(Vec::new()) };
    /// The file objects with a handle open on the control device ([`note_handle`]).
    static OPEN_HANDLES: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Notes what an IRP a scenario sent to the control device did to the handles open on it: an
/// `IRP_MJ_CREATE` that succeeded opened its file object's, an `IRP_MJ_CLOSE` closed it (what the
/// low-resources sweep's teardown closes when a scenario stops: [`take_open_handles`]).
///
/// # Safety
/// `irp` is a valid IRP of one stack location, as the scenarios build them.
pub unsafe fn note_handle(irp: *mut IrpLayout, status: NtStatus) {
    // SAFETY: the caller's promise: a valid IRP.
    let location = unsafe { (*irp).current_stack_location };
    // SAFETY: the caller's promise: its one stack location, valid.
    let location = unsafe { &*location };
    let file = location.file_object.addr();
    let major = usize::from(location.major_function);
    OPEN_HANDLES.with(|open| {
        let mut open = open.borrow_mut();
        if major == IRP_MJ_CREATE && status == 0 {
            open.push(file);
        } else if major == IRP_MJ_CLOSE {
            open.retain(|&handle| handle != file);
        }
    });
}

/// The file objects with a handle still open, oldest first; forgets them.
pub fn take_open_handles() -> Vec<*mut FileObjectLayout> {
    OPEN_HANDLES.with(|open| open.take()).into_iter().map(std::ptr::with_exposed_provenance_mut).collect()
}
