//! Cancel-safe IRP queues: `IO_CSQ` and its callback types, `IO_CSQ_IRP_CONTEXT`, and the
//! `LIST_ENTRY` operations (`InitializeListHead`, `InsertTailList`, ... are inlines in `wdm.h`) a
//! driver's queue is built from, linked through `Irp->Tail.Overlay.ListEntry`.
//!
//! # How the kernel drives a queue
//!
//! (The documented contract of `IoCsqInsertIrpEx`, `IoCsqRemoveNextIrp` and the `IO_CSQ_*`
//! callbacks.) Every `IoCsq*` routine calls the driver's `CsqAcquireLock` first and
//! `CsqReleaseLock` last, so the insert, remove and peek callbacks always run with the queue's
//! lock held, at `DISPATCH_LEVEL` when the lock is a spin lock:
//!
//! * `IoCsqInsertIrpEx(csq, irp, NULL, insert_context)` calls `CsqInsertIrpEx(csq, irp,
//!   insert_context)`. A failure status from it leaves the IRP neither queued nor marked pending,
//!   and is returned. Otherwise the IRP is marked pending and its cancel routine set; an IRP that
//!   was already cancelled is taken out again and given to `CsqCompleteCanceledIrp` (after the
//!   lock is released), and `IoCsqInsertIrpEx` still returns success.
//! * `IoCsqRemoveNextIrp(csq, peek_context)` walks the queue with `CsqPeekNextIrp(csq, NULL,
//!   ..)`, then `CsqPeekNextIrp(csq, previous, ..)`, skipping IRPs whose cancellation is under way,
//!   removes the first one it can claim with `CsqRemoveIrp` and returns it: it can no longer be
//!   cancelled, and belongs to the caller. Null when the queue has none.
//! * A cancelled queued IRP is removed with `CsqRemoveIrp` under the lock and handed to
//!   `CsqCompleteCanceledIrp` without it.
//! * Both use `Irp->Tail.Overlay.DriverContext[3]`: the driver must leave it alone.
//!
//! # Layouts
//!
//! Pointer-sized fields throughout: one layout for x64 and ARM64, asserted below and in the tests.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::offset_of;
use core::ptr;

use crate::io::IrpLayout;
use crate::kernel::{Irp, Kirql, NtStatus};

/// `IO_TYPE_CSQ_IRP_CONTEXT`: the `Type` of an [`IoCsqIrpContext`].
pub const IO_TYPE_CSQ_IRP_CONTEXT: u32 = 1;
/// `IO_TYPE_CSQ`: the `Type` `IoCsqInitialize` gives an [`IoCsq`].
pub const IO_TYPE_CSQ: u32 = 2;
/// `IO_TYPE_CSQ_EX`: the `Type` `IoCsqInitializeEx` gives an [`IoCsq`] (whose insert callback is
/// then an [`IoCsqInsertIrpExFn`]).
pub const IO_TYPE_CSQ_EX: u32 = 3;

/// `PIO_CSQ_INSERT_IRP`: inserts an IRP (`IoCsqInitialize` queues).
pub type IoCsqInsertIrpFn = unsafe extern "system" fn(csq: *mut IoCsq, irp: *mut Irp);
/// `PIO_CSQ_INSERT_IRP_EX`: inserts an IRP, or fails and leaves it out (`IoCsqInitializeEx`
/// queues); `insert_context` is the one `IoCsqInsertIrpEx` was given.
pub type IoCsqInsertIrpExFn = unsafe extern "system" fn(csq: *mut IoCsq, irp: *mut Irp, insert_context: *mut c_void) -> NtStatus;
/// `PIO_CSQ_REMOVE_IRP`: unlinks a queued IRP.
pub type IoCsqRemoveIrpFn = unsafe extern "system" fn(csq: *mut IoCsq, irp: *mut Irp);
/// `PIO_CSQ_PEEK_NEXT_IRP`: the queued IRP after `irp` (the first for a null `irp`) that matches
/// `peek_context`, or null.
pub type IoCsqPeekNextIrpFn = unsafe extern "system" fn(csq: *mut IoCsq, irp: *mut Irp, peek_context: *mut c_void) -> *mut Irp;
/// `PIO_CSQ_ACQUIRE_LOCK`: locks the queue, storing the IRQL to restore in `*irql`.
pub type IoCsqAcquireLockFn = unsafe extern "system" fn(csq: *mut IoCsq, irql: *mut Kirql);
/// `PIO_CSQ_RELEASE_LOCK`: unlocks the queue, restoring `irql`.
pub type IoCsqReleaseLockFn = unsafe extern "system" fn(csq: *mut IoCsq, irql: Kirql);
/// `PIO_CSQ_COMPLETE_CANCELED_IRP`: completes an IRP cancelled while queued (lock not held).
pub type IoCsqCompleteCanceledIrpFn = unsafe extern "system" fn(csq: *mut IoCsq, irp: *mut Irp);

/// `IO_CSQ`, as `wdm.h` declares it.
#[repr(C)]
pub struct IoCsqLayout {
    /// `Type`: [`IO_TYPE_CSQ`] or [`IO_TYPE_CSQ_EX`].
    pub csq_type: u32,
    /// `CsqInsertIrp`: an [`IoCsqInsertIrpFn`], or an [`IoCsqInsertIrpExFn`] for
    /// [`IO_TYPE_CSQ_EX`] (the header casts one to the other).
    pub csq_insert_irp: *mut c_void,
    /// `CsqRemoveIrp`.
    pub csq_remove_irp: Option<IoCsqRemoveIrpFn>,
    /// `CsqPeekNextIrp`.
    pub csq_peek_next_irp: Option<IoCsqPeekNextIrpFn>,
    /// `CsqAcquireLock`.
    pub csq_acquire_lock: Option<IoCsqAcquireLockFn>,
    /// `CsqReleaseLock`.
    pub csq_release_lock: Option<IoCsqReleaseLockFn>,
    /// `CsqCompleteCanceledIrp`.
    pub csq_complete_canceled_irp: Option<IoCsqCompleteCanceledIrpFn>,
    /// `ReservePointer`: the kernel stores null here on every `IoCsq*` call.
    pub reserve_pointer: *mut c_void,
}

/// Storage for an `IO_CSQ`: filled in by `IoCsqInitialize(Ex)` and written by the kernel on every
/// `IoCsq*` call after that (it clears `ReservePointer` each time), so Rust code never reads or
/// writes it through a reference — only its pointer ([`IoCsq::as_ptr`]) is handed out. It must
/// live in non-paged memory (the routines run at `DISPATCH_LEVEL`) and never move while queued
/// IRPs point at it (`DriverContext[3]`).
#[repr(transparent)]
pub struct IoCsq(UnsafeCell<IoCsqLayout>);

// SAFETY: Rust code never touches the fields after construction; the kernel's `IoCsq*` routines,
// the only accessors (through `as_ptr`), write only `ReservePointer` (a racy store of the same
// null value, as every driver's queue has it) and read the callbacks, which never change.
unsafe impl Sync for IoCsq {}
// SAFETY: as above; moving the storage moves nothing the kernel points at (it is only moved
// before `IoCsqInitialize(Ex)`, by its owner).
unsafe impl Send for IoCsq {}

impl IoCsq {
    /// Zeroed storage for `IoCsqInitialize(Ex)`.
    pub const fn new() -> Self {
        Self(UnsafeCell::new(IoCsqLayout {
            csq_type: 0,
            csq_insert_irp: ptr::null_mut(),
            csq_remove_irp: None,
            csq_peek_next_irp: None,
            csq_acquire_lock: None,
            csq_release_lock: None,
            csq_complete_canceled_irp: None,
            reserve_pointer: ptr::null_mut(),
        }))
    }

    /// The pointer the `IoCsq*` routines take, and the one the callbacks receive.
    pub const fn as_ptr(&self) -> *mut IoCsq {
        (self as *const IoCsq).cast_mut()
    }
}

impl Default for IoCsq {
    fn default() -> Self {
        Self::new()
    }
}

/// `IO_CSQ_IRP_CONTEXT`: what `IoCsqInsertIrp(Ex)` records for a later `IoCsqRemoveIrp` of one
/// particular IRP. Drivers that only ever take the next IRP pass null instead.
#[repr(C)]
pub struct IoCsqIrpContext {
    /// `Type`: [`IO_TYPE_CSQ_IRP_CONTEXT`].
    pub context_type: u32,
    /// `Irp`: the queued IRP, null once it left the queue.
    pub irp: *mut Irp,
    /// `Csq`: the queue.
    pub csq: *mut IoCsq,
}

/// `LIST_ENTRY`: a link of a circular doubly linked list whose head is a `LIST_ENTRY` too.
#[repr(C)]
#[derive(Debug)]
pub struct ListEntry {
    /// `Flink`: the next entry (the head after the last).
    pub flink: *mut ListEntry,
    /// `Blink`: the previous entry (the head before the first).
    pub blink: *mut ListEntry,
}

impl ListEntry {
    /// An unlinked entry; a head must be initialised in place with [`initialize_list_head`].
    pub const fn new() -> Self {
        Self { flink: ptr::null_mut(), blink: ptr::null_mut() }
    }
}

impl Default for ListEntry {
    fn default() -> Self {
        Self::new()
    }
}

/// `InitializeListHead`: an empty list (the head links to itself).
///
/// # Safety
/// `head` is valid for writes and stays at this address while the list is used.
pub unsafe fn initialize_list_head(head: *mut ListEntry) {
    // SAFETY: the caller's promise.
    unsafe { head.write(ListEntry { flink: head, blink: head }) };
}

/// `IsListEmpty`.
///
/// # Safety
/// `head` is an initialised list head.
pub unsafe fn is_list_empty(head: *const ListEntry) -> bool {
    // SAFETY: the caller's promise.
    ptr::eq(unsafe { (*head).flink }, head)
}

/// `InsertTailList`: links `entry` last.
///
/// # Safety
/// `head` is an initialised list head, `entry` is valid for writes, not on any list, and stays
/// at its address while linked; the caller holds whatever lock guards the list.
pub unsafe fn insert_tail_list(head: *mut ListEntry, entry: *mut ListEntry) {
    // SAFETY: `head` is an initialised head (caller's promise): its `Blink` is the last entry or
    // the head itself, both valid.
    let last = unsafe { (*head).blink };
    // SAFETY: `entry` is valid for writes (caller's promise).
    unsafe { entry.write(ListEntry { flink: head, blink: last }) };
    // SAFETY: `last` is a valid entry of the list (or the head).
    unsafe { (*last).flink = entry };
    // SAFETY: `head` is valid (caller's promise).
    unsafe { (*head).blink = entry };
}

/// `InsertHeadList`: links `entry` first.
///
/// # Safety
/// As [`insert_tail_list`].
pub unsafe fn insert_head_list(head: *mut ListEntry, entry: *mut ListEntry) {
    // SAFETY: `head` is an initialised head (caller's promise): its `Flink` is the first entry or
    // the head itself, both valid.
    let first = unsafe { (*head).flink };
    // SAFETY: `entry` is valid for writes (caller's promise).
    unsafe { entry.write(ListEntry { flink: first, blink: head }) };
    // SAFETY: `first` is a valid entry of the list (or the head).
    unsafe { (*first).blink = entry };
    // SAFETY: `head` is valid (caller's promise).
    unsafe { (*head).flink = entry };
}

/// `RemoveEntryList`: unlinks `entry`; true when the list is empty afterwards. The entry's own
/// links are left pointing at its old neighbours (as the C inline leaves them).
///
/// # Safety
/// `entry` is linked on an initialised list; the caller holds whatever lock guards it.
pub unsafe fn remove_entry_list(entry: *mut ListEntry) -> bool {
    // SAFETY: `entry` is a valid linked entry (caller's promise).
    let ListEntry { flink: next, blink: previous } = unsafe { entry.read() };
    // SAFETY: a linked entry's neighbours are valid entries (or the head).
    unsafe { (*previous).flink = next };
    // SAFETY: as above.
    unsafe { (*next).blink = previous };
    ptr::eq(next, previous)
}

/// `&Irp->Tail.Overlay.ListEntry`: the link a driver may use for an IRP it owns (a dispatch
/// routine's, or one its queue holds).
///
/// # Safety
/// `irp` is a live IRP the caller owns.
pub unsafe fn irp_list_entry(irp: *mut Irp) -> *mut ListEntry {
    let layout = irp.cast::<IrpLayout>();
    // SAFETY: `irp` is live (caller's promise) and laid out as `IrpLayout`; `list_entry` is two
    // pointers, the layout of `ListEntry` (asserted below). Only the address is taken.
    unsafe { ptr::addr_of_mut!((*layout).list_entry) }.cast::<ListEntry>()
}

/// `CONTAINING_RECORD(entry, IRP, Tail.Overlay.ListEntry)`: the IRP [`irp_list_entry`] gave
/// `entry` for.
///
/// # Safety
/// `entry` came from [`irp_list_entry`] of an IRP that is still live.
pub unsafe fn irp_from_list_entry(entry: *mut ListEntry) -> *mut Irp {
    // SAFETY: `entry` lies `offset_of!(IrpLayout, list_entry)` bytes into its IRP (caller's
    // promise), so stepping back stays inside the same allocation.
    unsafe { entry.byte_sub(offset_of!(IrpLayout, list_entry)) }.cast::<Irp>()
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{align_of, size_of};
    type C = IoCsqLayout;
    assert!(offset_of!(C, csq_type) == 0x00);
    assert!(offset_of!(C, csq_insert_irp) == 0x08);
    assert!(offset_of!(C, csq_remove_irp) == 0x10);
    assert!(offset_of!(C, csq_peek_next_irp) == 0x18);
    assert!(offset_of!(C, csq_acquire_lock) == 0x20);
    assert!(offset_of!(C, csq_release_lock) == 0x28);
    assert!(offset_of!(C, csq_complete_canceled_irp) == 0x30);
    assert!(offset_of!(C, reserve_pointer) == 0x38);
    assert!(size_of::<C>() == 0x40 && size_of::<IoCsq>() == 0x40 && align_of::<IoCsq>() == 8);
    assert!(size_of::<Option<IoCsqRemoveIrpFn>>() == 8);

    assert!(offset_of!(IoCsqIrpContext, irp) == 0x08);
    assert!(offset_of!(IoCsqIrpContext, csq) == 0x10);
    assert!(size_of::<IoCsqIrpContext>() == 0x18);

    assert!(offset_of!(ListEntry, blink) == 0x08 && size_of::<ListEntry>() == 0x10);
    // `Irp->Tail.Overlay.ListEntry`: the `[*mut c_void; 2]` of `IrpLayout` is a `LIST_ENTRY`.
    assert!(offset_of!(IrpLayout, list_entry) == 0xA8);
    assert!(offset_of!(IrpLayout, driver_context) + 3 * 8 == 0x90);
};

// x86 (`x86-facts.md` §3).
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{align_of, size_of};
    type C = IoCsqLayout;
    assert!(offset_of!(C, csq_type) == 0x00);
    assert!(offset_of!(C, csq_insert_irp) == 0x04);
    assert!(offset_of!(C, csq_remove_irp) == 0x08);
    assert!(offset_of!(C, csq_peek_next_irp) == 0x0C);
    assert!(offset_of!(C, csq_acquire_lock) == 0x10);
    assert!(offset_of!(C, csq_release_lock) == 0x14);
    assert!(offset_of!(C, csq_complete_canceled_irp) == 0x18);
    assert!(offset_of!(C, reserve_pointer) == 0x1C);
    assert!(size_of::<C>() == 0x20 && size_of::<IoCsq>() == 0x20 && align_of::<IoCsq>() == 4);
    assert!(size_of::<Option<IoCsqRemoveIrpFn>>() == 4);

    assert!(offset_of!(IoCsqIrpContext, irp) == 0x04);
    assert!(offset_of!(IoCsqIrpContext, csq) == 0x08);
    assert!(size_of::<IoCsqIrpContext>() == 0x0C);

    assert!(offset_of!(ListEntry, blink) == 0x04 && size_of::<ListEntry>() == 0x08);
    assert!(offset_of!(IrpLayout, list_entry) == 0x58);
    assert!(offset_of!(IrpLayout, driver_context) + 3 * 4 == 0x4C);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};
    use std::boxed::Box;
    use std::vec::Vec;

    #[test]
    fn csq_layouts_match_the_header() {
        let fields = [
            ("IO_CSQ.Type", offset_of!(IoCsqLayout, csq_type), 0x00),
            ("IO_CSQ.CsqInsertIrp", offset_of!(IoCsqLayout, csq_insert_irp), 0x08),
            ("IO_CSQ.CsqRemoveIrp", offset_of!(IoCsqLayout, csq_remove_irp), 0x10),
            ("IO_CSQ.CsqPeekNextIrp", offset_of!(IoCsqLayout, csq_peek_next_irp), 0x18),
            ("IO_CSQ.CsqAcquireLock", offset_of!(IoCsqLayout, csq_acquire_lock), 0x20),
            ("IO_CSQ.CsqReleaseLock", offset_of!(IoCsqLayout, csq_release_lock), 0x28),
            ("IO_CSQ.CsqCompleteCanceledIrp", offset_of!(IoCsqLayout, csq_complete_canceled_irp), 0x30),
            ("IO_CSQ.ReservePointer", offset_of!(IoCsqLayout, reserve_pointer), 0x38),
            ("IO_CSQ_IRP_CONTEXT.Irp", offset_of!(IoCsqIrpContext, irp), 0x08),
            ("IO_CSQ_IRP_CONTEXT.Csq", offset_of!(IoCsqIrpContext, csq), 0x10),
            ("LIST_ENTRY.Blink", offset_of!(ListEntry, blink), 0x08),
            ("IRP.Tail.Overlay.ListEntry", offset_of!(IrpLayout, list_entry), 0xA8),
        ];
        for (name, got, want) in fields {
            assert_eq!(got, want, "{name}");
        }
        assert_eq!((size_of::<IoCsq>(), align_of::<IoCsq>()), (0x40, 8));
        assert_eq!(size_of::<IoCsqIrpContext>(), 0x18);
        assert_eq!((IO_TYPE_CSQ_IRP_CONTEXT, IO_TYPE_CSQ, IO_TYPE_CSQ_EX), (1, 2, 3));
        let csq = IoCsq::default();
        assert_eq!(csq.as_ptr().cast_const(), &csq as *const IoCsq);
    }

    /// Fake IRPs (zeroed layouts; the vector is never grown, so they stay in place) for a list
    /// through their `Tail.Overlay.ListEntry`.
    fn irps(count: usize) -> Vec<IrpLayout> {
        // SAFETY: all-zero bytes are a valid value of this integer-and-pointer structure.
        (0..count).map(|_| unsafe { core::mem::zeroed::<IrpLayout>() }).collect()
    }

    /// Pointers to the IRPs of `irps`, all derived from one pointer to the vector's buffer, so
    /// that linking one IRP never invalidates the pointer to another (the vector itself is not
    /// touched again until it drops).
    fn raw<const N: usize>(irps: &mut [IrpLayout]) -> [*mut Irp; N] {
        assert_eq!(irps.len(), N);
        let first = irps.as_mut_ptr();
        core::array::from_fn(|index| first.wrapping_add(index).cast())
    }

    /// The IRPs on the list, first to last.
    fn walk(head: *mut ListEntry) -> Vec<*mut Irp> {
        let mut found = Vec::new();
        // SAFETY: `head` is an initialised head whose entries are links of live test IRPs.
        let mut entry = unsafe { (*head).flink };
        while !ptr::eq(entry, head) {
            // SAFETY: as above.
            found.push(unsafe { irp_from_list_entry(entry) });
            // SAFETY: as above.
            entry = unsafe { (*entry).flink };
        }
        found
    }

    #[test]
    fn irps_queue_and_unqueue_through_their_list_entry() {
        let mut irps = irps(3);
        let [a, b, c] = raw(&mut irps);
        // SAFETY: the test's IRPs are alive (and outlive the list).
        let [entry_a, entry_b, entry_c] = [a, b, c].map(|irp| unsafe { irp_list_entry(irp) });
        assert_eq!(entry_b.cast::<u8>(), b.cast::<u8>().wrapping_add(0xA8), "Tail.Overlay.ListEntry");
        // SAFETY: as above.
        assert_eq!(unsafe { irp_from_list_entry(entry_c) }, c);
        let head = Box::into_raw(Box::new(ListEntry::new()));
        // SAFETY: the test owns the head, which outlives the list.
        unsafe { initialize_list_head(head) };
        // SAFETY: an initialised head.
        assert!(unsafe { is_list_empty(head) });
        // SAFETY: an initialised head and unlinked entries of live IRPs, each linked once.
        unsafe { insert_tail_list(head, entry_b) };
        // SAFETY: as above.
        unsafe { insert_tail_list(head, entry_c) };
        // SAFETY: as above.
        unsafe { insert_head_list(head, entry_a) };
        assert_eq!(walk(head), [a, b, c]);
        // SAFETY: `b` is linked.
        assert!(!unsafe { remove_entry_list(entry_b) });
        assert_eq!(walk(head), [a, c]);
        // SAFETY: `a` is linked.
        assert!(!unsafe { remove_entry_list(entry_a) });
        // SAFETY: `c` is linked.
        assert!(unsafe { remove_entry_list(entry_c) }, "the last removal empties the list");
        // SAFETY: the head is initialised.
        assert!(unsafe { is_list_empty(head) });
        assert!(walk(head).is_empty());
        // Head insertion into an empty list, then a tail one: the order the queue relies on when a
        // pending read goes back to the front.
        // SAFETY: as above; both are unlinked now.
        unsafe { insert_head_list(head, entry_c) };
        // SAFETY: as above.
        unsafe { insert_tail_list(head, entry_a) };
        assert_eq!(walk(head), [c, a]);
        // SAFETY: `head` came from `Box::into_raw` above and is not used afterwards.
        drop(unsafe { Box::from_raw(head) });
    }
}
