//! [`Queue`]: one handle's cancel-safe queue of pending requests (`IO_CSQ`), a spin lock and a
//! list linked through each IRP's `Tail.Overlay.ListEntry`.
//!
//! The kernel's `IoCsq*` routines own the cancellation races (`wanlayer_ndis::csq` states their
//! contract); the callbacks here only keep the list. Beyond the plain queue:
//!
//! * **closing**: once the handle is cleaned up ([`Queue::close`]) the insert callback refuses
//!   every IRP, so a device control still in flight on the handle — `IRP_MJ_CLEANUP` does not
//!   wait for those — cannot strand a read in a queue nobody drains any more: its
//!   `IoCsqInsertIrpEx` fails and the caller completes it `STATUS_CANCELLED`;
//! * **head insertion**: a read dispatched again that pends again goes back to the front
//!   ([`End::Head`]), so reads complete in the order they were issued.
//!
//! The cancel routine ([`complete_canceled`]) completes the IRP `STATUS_CANCELLED` with nothing
//! written; the engine needs no word of it.
//!
//! # IRQL
//! Every method is callable at `<= DISPATCH_LEVEL`; the callbacks run at `DISPATCH_LEVEL` under
//! the queue's spin lock (except [`complete_canceled`], which runs without it).

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::offset_of;
use core::ptr::{self, NonNull};

use wanlayer_ndis::csq::{self as list, IoCsq, ListEntry};
use wanlayer_ndis::imports;
use wanlayer_ndis::io::{complete_irp, STATUS_CANCELLED, STATUS_SUCCESS};
use wanlayer_ndis::kernel::{Irp, KSpinLock, Kirql, NtStatus};

/// Where [`Queue::insert`] puts an IRP.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum End {
    /// Last: a request that just arrived.
    Tail,
    /// First: a request taken off the queue, dispatched again, and pending again.
    Head,
}

/// The `InsertContext` that asks for [`End::Head`]: the address of this marker (null asks for
/// the tail).
static INSERT_AT_HEAD: u8 = 0;

/// What the queue's spin lock guards.
struct State {
    /// The queued IRPs, oldest first.
    head: ListEntry,
    /// Set by [`Queue::close`]: inserts fail from then on.
    closed: bool,
}

/// A cancel-safe queue of IRPs.
///
/// It must not move once [`Queue::init`] ran (the kernel and queued IRPs point at it): it lives
/// inside a pool-allocated handle context and is initialised there.
#[repr(C)]
pub struct Queue {
    /// The kernel's queue. First, so that the `*mut IoCsq` the callbacks receive is the queue's
    /// address (asserted below).
    csq: IoCsq,
    lock: UnsafeCell<KSpinLock>,
    state: UnsafeCell<State>,
}

const _: () = assert!(offset_of!(Queue, csq) == 0);

// SAFETY: `state` is only touched with `lock` held (the callbacks run under it, `close` takes
// it); `lock` is only used through the kernel's spin lock routines; `csq` is `Sync` itself.
unsafe impl Sync for Queue {}
// SAFETY: the raw pointers in `state` are links of IRPs the queue owns while they are queued,
// valid on any processor.
unsafe impl Send for Queue {}

impl Queue {
    /// The `*mut IoCsq` given to the kernel: the queue's own address, so that the callbacks'
    /// `queue(csq)` reaches the whole queue through it. (A pointer made from the `csq` field
    /// alone would carry only that field: reading the lock and the list through it is undefined
    /// behaviour, which Miri reports on the host tests.)
    fn csq_ptr(&self) -> *mut IoCsq {
        ptr::from_ref(self).cast_mut().cast::<IoCsq>()
    }

    /// A queue to be initialised in place ([`Queue::init`]) before use.
    pub const fn new() -> Self {
        Self {
            csq: IoCsq::new(),
            lock: UnsafeCell::new(0),
            state: UnsafeCell::new(State { head: ListEntry::new(), closed: false }),
        }
    }

    /// Initialises the queue where it is: an empty list, the callbacks.
    ///
    /// # Safety
    /// Called once, before the queue is used or shared; the queue is in non-paged memory and
    /// never moves again (nor is it freed while it holds an IRP).
    pub unsafe fn init(&self) {
        // SAFETY: only the address of the head is taken.
        let head = unsafe { ptr::addr_of_mut!((*self.state.get()).head) };
        // SAFETY: the list head is inside the queue, which stays in place (caller's promise);
        // not shared yet. Only raw pointers reach it from now on.
        unsafe { list::initialize_list_head(head) };
        // SAFETY: the IO_CSQ is in non-paged memory that stays in place (caller's promise); the
        // callbacks below have the documented signatures. It only fills in fields and returns
        // STATUS_SUCCESS, at any IRQL.
        let status = unsafe {
            imports::IoCsqInitializeEx(
                self.csq_ptr(),
                insert_irp,
                remove_irp,
                peek_next_irp,
                acquire_lock,
                release_lock,
                complete_canceled,
            )
        };
        debug_assert_eq!(status, STATUS_SUCCESS);
    }

    /// Queues `irp` at `end`: it is marked pending and can be cancelled from now on.
    ///
    /// # Errors
    /// `STATUS_CANCELLED` once the queue is closed: the IRP was neither queued nor marked
    /// pending, and is still the caller's.
    ///
    /// # Safety
    /// `irp` is a live device control the caller owns, sent on this queue's handle (its file
    /// object keeps the queue alive while it is queued); on `Ok` the caller must not touch it
    /// again.
    pub unsafe fn insert(&self, irp: NonNull<Irp>, end: End) -> Result<(), NtStatus> {
        let insert_context = match end {
            End::Tail => ptr::null_mut(),
            End::Head => ptr::from_ref(&INSERT_AT_HEAD).cast_mut().cast::<c_void>(),
        };
        // SAFETY: an initialised queue (the context that holds it initialised it in place) and
        // an IRP the caller owns; no IO_CSQ_IRP_CONTEXT (the queue is only ever drained with
        // IoCsqRemoveNextIrp). <= DISPATCH_LEVEL (the caller's contract).
        let status = unsafe { imports::IoCsqInsertIrpEx(self.csq_ptr(), irp.as_ptr(), ptr::null_mut(), insert_context) };
        if status >= 0 {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// Takes the oldest queued IRP that is not being cancelled; it can no longer be cancelled
    /// and is the caller's to complete or queue again. `None` when there is none.
    pub fn remove_next(&self) -> Option<NonNull<Irp>> {
        // SAFETY: an initialised queue; no peek context. <= DISPATCH_LEVEL (the caller's
        // contract).
        NonNull::new(unsafe { imports::IoCsqRemoveNextIrp(self.csq_ptr(), ptr::null_mut()) })
    }

    /// Refuses every insert from now on (`IRP_MJ_CLEANUP`; idempotent).
    pub fn close(&self) {
        let mut irql: Kirql = 0;
        // SAFETY: `self.csq` is the queue's own IO_CSQ, so the callback's lock is this queue's.
        unsafe { acquire_lock(self.csq_ptr(), &mut irql) };
        // SAFETY: the queue's lock is held: nothing else touches the state.
        unsafe { (*self.state.get()).closed = true };
        // SAFETY: releases the lock just acquired, restoring the IRQL it saved.
        unsafe { release_lock(self.csq_ptr(), irql) };
    }

    /// Completes every queued IRP `STATUS_CANCELLED` with nothing written; returns how many.
    pub fn cancel_all(&self) -> usize {
        let mut cancelled = 0;
        while let Some(irp) = self.remove_next() {
            // SAFETY: `remove_next` handed the IRP over: it is the caller's, not cancellable,
            // and completed once here.
            unsafe { complete_irp(irp.as_ptr(), STATUS_CANCELLED, 0) };
            cancelled += 1;
        }
        cancelled
    }
}

/// The queue a callback was given.
///
/// # Safety
/// `csq` is the `IoCsq` of a live [`Queue`] (the only ones ever initialised with these
/// callbacks).
unsafe fn queue<'a>(csq: *mut IoCsq) -> &'a Queue {
    // SAFETY: `csq` is the first field of a live, `#[repr(C)]` queue (caller's promise and the
    // assertion above), so its address is the queue's.
    unsafe { &*csq.cast::<Queue>() }
}

/// The guarded state of the queue a callback was given, as a pointer: the list's links point
/// into it too (the head), so no `&mut` to it is ever formed; every access goes through raw
/// pointers with the queue's lock held (the kernel holds it around every insert, remove and peek
/// callback).
///
/// # Safety
/// As [`queue`].
unsafe fn state(csq: *mut IoCsq) -> *mut State {
    // SAFETY: the caller's promise.
    unsafe { queue(csq) }.state.get()
}

/// `CsqInsertIrpEx`: links the IRP at the end `insert_context` names, or refuses it once the
/// queue is closed.
///
/// # IRQL
/// `DISPATCH_LEVEL`, the queue's lock held.
///
/// # Ownership
/// On `STATUS_SUCCESS` the queue holds the IRP until a remove callback unlinks it.
///
/// # Safety
/// Called by `IoCsqInsertIrpEx` only, for the queue `csq` is the `IO_CSQ` of, with its lock held;
/// `irp` is a live IRP.
unsafe extern "system" fn insert_irp(csq: *mut IoCsq, irp: *mut Irp, insert_context: *mut c_void) -> NtStatus {
    // SAFETY: called by IoCsqInsertIrpEx with our queue.
    let state = unsafe { state(csq) };
    // SAFETY: the queue's lock is held (IoCsqInsertIrpEx took it).
    if unsafe { (*state).closed } {
        return STATUS_CANCELLED;
    }
    // SAFETY: only the address of the head is taken.
    let head = unsafe { ptr::addr_of_mut!((*state).head) };
    // SAFETY: an IRP the inserting caller owns, live, not on any list (IoCsqRemoveNextIrp
    // unlinked it if it was queued before).
    let entry = unsafe { list::irp_list_entry(irp) };
    if ptr::eq(insert_context.cast_const().cast::<u8>(), &INSERT_AT_HEAD) {
        // SAFETY: the head is initialised and in place; the lock is held.
        unsafe { list::insert_head_list(head, entry) };
    } else {
        // SAFETY: as above.
        unsafe { list::insert_tail_list(head, entry) };
    }
    STATUS_SUCCESS
}

/// `CsqRemoveIrp`: unlinks a queued IRP.
///
/// # IRQL
/// `DISPATCH_LEVEL`, the queue's lock held.
///
/// # Ownership
/// The IRP goes to whoever asked the kernel to remove it (a remover, or the cancel path).
///
/// # Safety
/// Called by the cancel-safe queue routines only, for the queue `csq` is the `IO_CSQ` of, with its
/// lock held; `irp` is linked in that queue.
unsafe extern "system" fn remove_irp(_csq: *mut IoCsq, irp: *mut Irp) {
    // SAFETY: the IRP is queued here (the kernel only removes what peek returned or what it
    // queued), so it is live and its entry is linked on this queue's list.
    let entry = unsafe { list::irp_list_entry(irp) };
    // SAFETY: a linked entry; the queue's lock is held (the kernel took it).
    unsafe { list::remove_entry_list(entry) };
}

/// `CsqPeekNextIrp`: the IRP after `irp` (the first for a null `irp`), or null at the end. Every
/// queued IRP matches (no peek context is ever passed).
///
/// # IRQL
/// `DISPATCH_LEVEL`, the queue's lock held.
///
/// # Ownership
/// Nothing changes hands.
///
/// # Safety
/// Called by the cancel-safe queue routines only, for the queue `csq` is the `IO_CSQ` of, with its
/// lock held; `irp` is null or linked in that queue.
unsafe extern "system" fn peek_next_irp(csq: *mut IoCsq, irp: *mut Irp, _peek_context: *mut c_void) -> *mut Irp {
    // SAFETY: called by the kernel with our queue.
    let state = unsafe { state(csq) };
    // SAFETY: only the address of the head is taken.
    let head = unsafe { ptr::addr_of_mut!((*state).head) };
    let next = if irp.is_null() {
        // SAFETY: an initialised head; the queue's lock is held (the kernel took it).
        unsafe { (*head).flink }
    } else {
        // SAFETY: a non-null `irp` is one this queue holds (the kernel passes back what peek
        // returned, still linked under the same lock hold): live.
        let entry = unsafe { list::irp_list_entry(irp) };
        // SAFETY: its entry is linked on this list; the lock is held.
        unsafe { (*entry).flink }
    };
    if ptr::eq(next, head) {
        ptr::null_mut()
    } else {
        // SAFETY: every entry but the head is the list entry of a queued IRP.
        unsafe { list::irp_from_list_entry(next) }
    }
}

/// `CsqAcquireLock`: raises to `DISPATCH_LEVEL` and takes the queue's spin lock.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`; returns at `DISPATCH_LEVEL` with the previous IRQL in `*irql`.
///
/// # Ownership
/// The lock is the caller's until [`release_lock`].
///
/// # Safety
/// Called by the cancel-safe queue routines only, for the queue `csq` is the `IO_CSQ` of; `irql` is
/// writable; paired with one `release_lock`.
unsafe extern "system" fn acquire_lock(csq: *mut IoCsq, irql: *mut Kirql) {
    // SAFETY: our queue (the kernel's or `Queue::close`'s call).
    let queue = unsafe { queue(csq) };
    // SAFETY: the queue's lock word, in non-paged memory, only ever used as a spin lock;
    // <= DISPATCH_LEVEL.
    let previous = unsafe { imports::KeAcquireSpinLockRaiseToDpc(queue.lock.get()) };
    // SAFETY: `irql` points at the caller's KIRQL.
    unsafe { irql.write(previous) };
}

/// `CsqReleaseLock`: releases the queue's spin lock and restores `irql`.
///
/// # IRQL
/// `DISPATCH_LEVEL`, the lock held; returns at `irql`.
///
/// # Ownership
/// Gives the lock back.
///
/// # Safety
/// Called by the cancel-safe queue routines only, for the queue `csq` is the `IO_CSQ` of, whose
/// lock `acquire_lock` took, with the IRQL it stored.
unsafe extern "system" fn release_lock(csq: *mut IoCsq, irql: Kirql) {
    // SAFETY: our queue (the kernel's or `Queue::close`'s call).
    let queue = unsafe { queue(csq) };
    // SAFETY: the caller holds this lock, acquired by `acquire_lock`, which saved `irql`.
    unsafe { imports::KeReleaseSpinLock(queue.lock.get(), irql) };
}

/// `CsqCompleteCanceledIrp`: completes an IRP cancelled while queued: `STATUS_CANCELLED`,
/// `Information` 0.
///
/// # IRQL
/// `<= DISPATCH_LEVEL` (the canceller's), the queue's lock not held.
///
/// # Ownership
/// The kernel unlinked the IRP and hands it over; it is completed here, once.
///
/// # Safety
/// Called by the cancel-safe queue routines only, with an IRP of the queue `csq` is the `IO_CSQ`
/// of, already removed from it and now the driver's to complete.
unsafe extern "system" fn complete_canceled(_csq: *mut IoCsq, irp: *mut Irp) {
    // SAFETY: the IRP is ours to complete (the cancel path removed it from the queue and gave
    // it to us); not touched afterwards.
    unsafe { complete_irp(irp, STATUS_CANCELLED, 0) };
}

// The callbacks have exactly the kernel's types.
const _: (
    wanlayer_ndis::csq::IoCsqInsertIrpExFn,
    wanlayer_ndis::csq::IoCsqRemoveIrpFn,
    wanlayer_ndis::csq::IoCsqPeekNextIrpFn,
    wanlayer_ndis::csq::IoCsqAcquireLockFn,
    wanlayer_ndis::csq::IoCsqReleaseLockFn,
    wanlayer_ndis::csq::IoCsqCompleteCanceledIrpFn,
) = (insert_irp, remove_irp, peek_next_irp, acquire_lock, release_lock, complete_canceled);
