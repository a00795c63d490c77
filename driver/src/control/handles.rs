//! Per-handle state of the control device: one [`HandleContext`] per open file object, made at
//! `IRP_MJ_CREATE`, kept in `FileObject->FsContext`, shut down at `IRP_MJ_CLEANUP` and freed
//! after `IRP_MJ_CLOSE` — the kernel side of the simulator's `OpenHandle`
//! (`crates/wanlayer-sim/src/control.rs`).
//!
//! # The token table
//!
//! The engine names a handle to the waker by the token given to [`ControlHandle::new`]. The
//! token is `generation << 32 | slot`: `slot` indexes [`MAX_HANDLES`] slots of a driver table,
//! and each slot's generation goes up every time the slot is given to a new handle. A slot points
//! at its context from `IRP_MJ_CREATE` until the handle is cleaned up (*retired*), so a token
//! whose handle is gone — a wake racing with cleanup, or one for an earlier handle of the same
//! slot — finds a null slot or another generation, and is ignored ([`is_current`]).
//!
//! # Lifetime
//!
//! A context is a pool block (tag [`CONTEXT_TAG`], "WLhc") with a reference count:
//!
//! * the file object's reference, from `IRP_MJ_CREATE` (`FsContext`) to `IRP_MJ_CLOSE`;
//! * the table's reference, from `IRP_MJ_CREATE` until it is retired (`IRP_MJ_CLEANUP`);
//! * a [`ContextRef`] for each piece of code that must keep it while it may lose the IRP that
//!   kept the file object alive: the DPC servicing a woken handle, a device control that queued
//!   its IRP.
//!
//! The last reference frees it, at `<= DISPATCH_LEVEL` (non-paged pool): normally at
//! `IRP_MJ_CLOSE`, or at the end of a DPC pass that still held it then.
//!
//! # IRQL
//! The dispatch routines run at `PASSIVE_LEVEL`; the table and references work at
//! `<= DISPATCH_LEVEL`.

use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ops::Deref;
use core::ptr::{self, NonNull};
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use wanlayer_core::hal::Lock;
use wanlayer_core::ControlHandle;
use wanlayer_ndis::imports;
use wanlayer_driver_logic::control::{check_create, granted_access, next_generation, token_generation, CreateRequest};
use wanlayer_ndis::io::{
    complete_irp, file_object_fs_context, irp_create, irp_file_object, set_file_object_fs_context, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_SUCCESS, STATUS_TOO_MANY_OPENED_FILES,
};
use wanlayer_ndis::kernel::{FileObject, Irp, NtStatus};
use wanlayer_proto::Access;

pub use wanlayer_driver_logic::control::{token, token_slot, MAX_HANDLES};

use super::csq::Queue;
use crate::driver::engine;
use crate::hal::lock::SpinLock;

/// Pool tag of handle contexts: "WLhc" in `!poolused`.
pub const CONTEXT_TAG: u32 = u32::from_le_bytes(*b"WLhc");

/// `MEMORY_ALLOCATION_ALIGNMENT` on 64-bit Windows: what `ExAllocatePool2` aligns blocks to.
const POOL_ALIGNMENT: usize = 16;

/// One open handle's state.
pub struct HandleContext {
    /// Its pending requests (event reads).
    queue: Queue,
    /// References (see the module documentation).
    refs: AtomicUsize,
    /// Servicing requests: the servicer's ticket counter ([`super::requests::service`]).
    servicing: AtomicU32,
    /// Set when the handle is cleaned up: later device controls are refused.
    closed: AtomicBool,
    /// The engine's per-handle state, made with this handle's token.
    handle: ControlHandle,
    /// The access the handle was opened with.
    granted: Access,
    /// Its slot in the token table.
    slot: usize,
}

const _: () = assert!(align_of::<HandleContext>() <= POOL_ALIGNMENT, "pool blocks are aligned to 16 bytes");

impl HandleContext {
    /// Allocates a context for a handle opened with `granted` and enters it in the token table.
    /// Returns the file object's reference (for `FsContext`); the table holds another.
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` without memory, `STATUS_TOO_MANY_OPENED_FILES` when every
    /// slot is taken.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL` (`IRP_MJ_CREATE`: `PASSIVE_LEVEL`).
    pub fn open(granted: Access) -> Result<ContextRef, NtStatus> {
        // Zeroed non-paged pool, at <= DISPATCH_LEVEL; freed when the last `ContextRef` drops (or
        // below, if no slot is free).
        let memory = wanlayer_ndis::pool::allocate(size_of::<HandleContext>(), CONTEXT_TAG);
        let Some(memory) = NonNull::new(memory.cast::<HandleContext>()) else { return Err(STATUS_INSUFFICIENT_RESOURCES) };
        let placed = TABLE.lock.with(|()| {
            let (slot, entry) = TABLE.slots.iter().enumerate().find(|(_, entry)| entry.context.load(Ordering::Relaxed).is_null())?;
            let generation = next_generation(entry.generation.load(Ordering::Relaxed));
            entry.generation.store(generation, Ordering::Release);
            // SAFETY: a fresh pool block of the context's size and alignment (asserted above),
            // which nothing else can see yet and which never moves.
            unsafe { HandleContext::init(memory, slot, token(slot, generation), granted) };
            entry.context.store(memory.as_ptr(), Ordering::Release);
            Some(slot)
        });
        if placed.is_none() {
            // SAFETY: the block allocated above with this tag, never initialised or shared.
            unsafe { imports::ExFreePoolWithTag(memory.as_ptr().cast(), CONTEXT_TAG) };
            return Err(STATUS_TOO_MANY_OPENED_FILES);
        }
        LIVE.fetch_add(1, Ordering::Relaxed);
        Ok(ContextRef(memory))
    }

    /// Writes a new context into `memory`, with two references (the file object's, the
    /// table's), and initialises its queue in place.
    ///
    /// # Safety
    /// `memory` is valid for writes of a context, in non-paged pool, not shared, and never moves.
    unsafe fn init(memory: NonNull<HandleContext>, slot: usize, token: u64, granted: Access) {
        let context = HandleContext {
            queue: Queue::new(),
            refs: AtomicUsize::new(2),
            servicing: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            handle: ControlHandle::new(token),
            granted,
            slot,
        };
        // SAFETY: the caller's promise.
        unsafe { memory.write(context) };
        // SAFETY: written above, not shared: a shared reference to it is sound.
        let context = unsafe { memory.as_ref() };
        // SAFETY: the queue now stays where it is (caller's promise), is not shared yet, and is
        // initialised once.
        unsafe { context.queue.init() };
    }

    /// The engine's state for this handle.
    pub fn handle(&self) -> &ControlHandle {
        &self.handle
    }

    /// The access the handle was opened with.
    pub fn granted(&self) -> Access {
        self.granted
    }

    /// The handle's queue of pending requests.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The servicer's ticket counter.
    pub(super) fn servicing(&self) -> &AtomicU32 {
        &self.servicing
    }

    /// True once the handle is cleaned up.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Another reference, for code that may lose the IRP that keeps the file object alive.
    pub fn acquire(&self) -> ContextRef {
        // The caller's `&self` comes from a reference that keeps the count above zero.
        self.refs.fetch_add(1, Ordering::Relaxed);
        ContextRef(NonNull::from(self))
    }

    /// Cleans the handle up (`IRP_MJ_CLEANUP`, and again harmlessly at `IRP_MJ_CLOSE`): later
    /// device controls are refused and queue inserts fail, every queued request completes
    /// `STATUS_CANCELLED`, the engine releases the handle's subscription, capture and user-mode
    /// hook (every packet it held gets the hook's fail policy), and the token is retired. Returns
    /// how many requests were cancelled.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL` (the dispatch routines): removing a user-mode hook waits for calls in
    /// progress.
    pub fn shut_down(&self) -> usize {
        self.closed.store(true, Ordering::Release);
        self.queue.close();
        let cancelled = self.queue.cancel_all();
        engine().control().cleanup(&self.handle);
        // A user-mode hook closed with its handle: the expiry timer goes when nothing is held.
        super::divert_timer::reconcile();
        self.retire();
        cancelled
    }

    /// Takes the context out of the token table and drops the table's reference (once).
    fn retire(&self) {
        let this = ptr::from_ref(self).cast_mut();
        let entry = &TABLE.slots[self.slot];
        let retired = TABLE.lock.with(|()| {
            entry.context.compare_exchange(this, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed).is_ok()
        });
        if retired {
            // The table's reference; the caller holds another (its `&self` comes from one), so
            // this never drops the count to zero under it.
            let before = self.refs.fetch_sub(1, Ordering::Release);
            debug_assert!(before > 1, "retire without a reference of the caller's own");
        }
    }
}

/// An owned reference to a [`HandleContext`]; dropping it may free the context.
pub struct ContextRef(NonNull<HandleContext>);

// SAFETY: the context is shared between processors only through `&HandleContext` (atomics, the
// queue's own locking, `ControlHandle`'s atomics); the count is atomic.
unsafe impl Send for ContextRef {}
// SAFETY: as above.
unsafe impl Sync for ContextRef {}

impl ContextRef {
    /// Gives the reference up as the raw pointer `FsContext` keeps.
    pub fn into_raw(self) -> *mut c_void {
        let raw = self.0.as_ptr().cast::<c_void>();
        core::mem::forget(self);
        raw
    }

    /// Takes back a reference [`ContextRef::into_raw`] gave up; `None` for null.
    ///
    /// # Safety
    /// `raw` is null or came from `into_raw`, and is taken back once.
    pub unsafe fn from_raw(raw: *mut c_void) -> Option<Self> {
        NonNull::new(raw.cast::<HandleContext>()).map(Self)
    }
}

impl Deref for ContextRef {
    type Target = HandleContext;

    fn deref(&self) -> &HandleContext {
        // SAFETY: a reference keeps the context alive.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for ContextRef {
    fn drop(&mut self) {
        // SAFETY: this reference keeps the context alive until the decrement below.
        let refs = &unsafe { self.0.as_ref() }.refs;
        if refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: that was the last reference: nobody else can reach the context (it left the
        // table when retired, and the file object gave up `FsContext`). Dropped once, in place.
        unsafe { ptr::drop_in_place(self.0.as_ptr()) };
        // SAFETY: the pool block `HandleContext::open` allocated with this tag, freed once;
        // non-paged pool may be freed at <= DISPATCH_LEVEL.
        unsafe { imports::ExFreePoolWithTag(self.0.as_ptr().cast(), CONTEXT_TAG) };
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The context of `file` (its `FsContext`), borrowed for the duration of a request on it: the
/// request's IRP references the file object, so `IRP_MJ_CLOSE`, which gives the `FsContext`
/// reference back, cannot come meanwhile. `None` for a null file object (a request another
/// driver built without one) or one without a context.
///
/// # Safety
/// `file` is null or the file object of a request on the control device that the caller is
/// handling (from its dispatch routine until it completes or queues the IRP); the borrow must
/// not outlive that.
pub unsafe fn of_file<'a>(file: *mut FileObject) -> Option<&'a HandleContext> {
    if file.is_null() {
        return None;
    }
    // SAFETY: a file object of our device between its create and close (caller's promise):
    // FsContext is ours, null or the reference `create` stored.
    let raw = unsafe { file_object_fs_context(file) };
    // SAFETY: null, or a context the file object's reference keeps alive for the request.
    unsafe { raw.cast::<HandleContext>().as_ref() }
}

/// One slot of the token table.
struct Slot {
    /// Bumped each time the slot is given to a handle.
    generation: AtomicU32,
    /// The context, while its handle is open and not yet cleaned up.
    context: AtomicPtr<HandleContext>,
}

impl Slot {
    const fn new() -> Self {
        Self { generation: AtomicU32::new(0), context: AtomicPtr::new(ptr::null_mut()) }
    }
}

/// The token table: slots are taken, retired and looked up under `lock`; a wake's quick check
/// ([`is_current`]) reads them without it.
struct Table {
    lock: SpinLock<()>,
    slots: [Slot; MAX_HANDLES],
}

static TABLE: Table = Table { lock: SpinLock::new(()), slots: [const { Slot::new() }; MAX_HANDLES] };

/// Contexts allocated and not yet freed (reported at unload if any are left).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// True when `token` names a handle that is open and not cleaned up: its slot holds a context
/// of the token's generation. Without the table lock (the waker's quick check); a slot reused
/// between this check and the service only costs one pass over the new handle's queue.
pub fn is_current(token: u64) -> bool {
    let generation = token_generation(token);
    token_slot(token).is_some_and(|slot| {
        let entry = &TABLE.slots[slot];
        entry.generation.load(Ordering::Acquire) == generation && !entry.context.load(Ordering::Acquire).is_null()
    })
}

/// A reference to the context in `slot`, if the slot has one.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub fn lookup(slot: usize) -> Option<ContextRef> {
    let entry = TABLE.slots.get(slot)?;
    TABLE.lock.with(|()| {
        let context = NonNull::new(entry.context.load(Ordering::Acquire))?;
        // SAFETY: a context in the table holds the table's reference, which is only dropped
        // after it leaves the table under this lock: it is alive.
        Some(unsafe { context.as_ref() }.acquire())
    })
}

/// Contexts allocated and not yet freed.
pub fn live_contexts() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// `IRP_MJ_CREATE`: opens a handle of the device itself — a name below it (`\\.\WanLayer\x`) or
/// an open relative to another handle is refused, since the I/O manager checks the device's
/// security descriptor only for opens of the device itself ([`check_create`]) — with a new
/// [`HandleContext`] in `FsContext`, with the access [`granted_access`] maps.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// The IRP is completed here, always (`Information` 0). On success the file object holds the
/// context's first reference until `IRP_MJ_CLOSE`.
///
/// # Safety
/// `irp` is an `IRP_MJ_CREATE` sent to the control device, not completed yet.
pub(super) unsafe fn create(irp: *mut Irp) -> NtStatus {
    // SAFETY: the caller's promise.
    let status = match unsafe { irp_create(irp) } {
        None => STATUS_INVALID_DEVICE_REQUEST,
        Some(request) => {
            let checked = check_create(CreateRequest {
                has_file_object: !request.file_object.is_null(),
                file_name_length: request.file_name_length,
                has_related_file_object: !request.related_file_object.is_null(),
            });
            match checked.and_then(|()| HandleContext::open(granted_access(request.desired_access))) {
                Ok(context) => {
                    // SAFETY: the file object being created: its FsContext is ours, and no other
                    // request can be sent on it before this create completes.
                    unsafe { set_file_object_fs_context(request.file_object, context.into_raw()) };
                    STATUS_SUCCESS
                }
                Err(status) => status,
            }
        }
    };
    // SAFETY: the IRP is ours to complete, once, and is not touched afterwards.
    unsafe { complete_irp(irp, status, 0) }
}

/// `IRP_MJ_CLEANUP`: the last handle to the file object closed. Every pending request of the
/// handle completes `STATUS_CANCELLED`, the engine releases the handle's sessions, the token is
/// retired ([`HandleContext::shut_down`]).
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// The IRP is completed here, always, `STATUS_SUCCESS`. The context stays (the file object
/// still holds it) until `IRP_MJ_CLOSE`; device controls still in flight on the file object are
/// refused or cancelled.
///
/// # Safety
/// `irp` is an `IRP_MJ_CLEANUP` sent to the control device, not completed yet.
pub(super) unsafe fn cleanup(irp: *mut Irp) -> NtStatus {
    // SAFETY: the caller's promise.
    let file = unsafe { irp_file_object(irp) };
    // SAFETY: the file object of the cleanup being handled; the borrow ends before it completes.
    if let Some(context) = unsafe { of_file(file) } {
        context.shut_down();
    }
    // SAFETY: the IRP is ours to complete, once, and is not touched afterwards.
    unsafe { complete_irp(irp, STATUS_SUCCESS, 0) }
}

/// `IRP_MJ_CLOSE`: the file object's last reference went. Its context is shut down (if cleanup
/// somehow did not run) and the file object's reference is dropped — the last one, unless a DPC
/// pass still holds the context, which then frees it.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// The IRP is completed here, always, `STATUS_SUCCESS`; `FsContext` is cleared.
///
/// # Safety
/// `irp` is an `IRP_MJ_CLOSE` sent to the control device, not completed yet.
pub(super) unsafe fn close(irp: *mut Irp) -> NtStatus {
    // SAFETY: the caller's promise.
    let file = unsafe { irp_file_object(irp) };
    if !file.is_null() {
        // SAFETY: as in `cleanup`; no other request on the file object exists any more (close
        // comes after every IRP that referenced it completed).
        let raw = unsafe { file_object_fs_context(file) };
        // SAFETY: as above: the field is ours.
        unsafe { set_file_object_fs_context(file, ptr::null_mut()) };
        // SAFETY: null or the reference our create gave up, taken back once (cleared above).
        if let Some(context) = unsafe { ContextRef::from_raw(raw) } {
            context.shut_down();
            drop(context);
        }
    }
    // SAFETY: the IRP is ours to complete, once, and is not touched afterwards.
    unsafe { complete_irp(irp, STATUS_SUCCESS, 0) }
}
