//! The control surface behind `\\.\WanLayer`: a platform-neutral dispatcher for every IOCTL of
//! [`wanlayer_proto`], the event hub that fans events out to several subscribers, packet capture,
//! and injection.
//!
//! The kernel driver's `IRP_MJ_DEVICE_CONTROL` and the simulator's control device are both thin
//! translations onto [`Control::dispatch`]: code, granted access, the `METHOD_BUFFERED` system
//! buffer with the input and output lengths, and the handle's [`ControlHandle`]. The answer is a
//! [`Completion`]: complete now with a status and a byte count, or keep the request pending.
//!
//! # Per-handle state
//!
//! Each open handle of the control device has one [`ControlHandle`], made by the platform at
//! `IRP_MJ_CREATE` with a *token* of the platform's choosing (for example the index of its
//! per-handle context), kept in the file object, passed to every dispatch, and given to
//! [`Control::cleanup`] at `IRP_MJ_CLEANUP`. It holds only identities (the handle's event
//! subscription and capture session); what they name lives in the engine, so cleanup releases
//! everything even while requests are still pending, and a stale identity is refused.
//!
//! # Pending event reads: the inverted call
//!
//! `IOCTL_WANLAYER_READ_EVENTS` with `READ_WAIT` and nothing queued answers
//! [`Completion::Pending`]. The contract with the platform:
//!
//! 1. On `Pending`, the platform marks the IRP pending (`IoMarkIrpPending`), queues it in the
//!    handle's cancel-safe queue (`IoCsqInsertIrp`), returns `STATUS_PENDING`, and then
//!    *services* the handle once (rule 3): an event that arrived between the dispatch and the
//!    queueing is not missed.
//! 2. The engine calls the [`EventWaker`] the platform installed ([`Control::set_waker`]) with the
//!    handle's token when an event reaches a subscriber that has a read pending (and when the
//!    handle unsubscribes). The waker runs at `<= DISPATCH_LEVEL` with no engine lock held; it
//!    may service the handle at once or queue a DPC or work item that does.
//! 3. To *service* a handle, the platform takes its pending reads oldest first
//!    (`IoCsqRemoveNextIrp`) and dispatches each again, unchanged (the system buffer still holds
//!    the input: a pending dispatch writes nothing). `Complete` → complete the IRP; `Pending` →
//!    put it back at the head (`IoCsqInsertIrpEx` with `InsertHead`) and stop.
//! 4. A cancelled IRP (`CancelIoEx`, thread exit) is completed `STATUS_CANCELLED` by the
//!    queue's cancel routine; the engine needs no word of it.
//! 5. At `IRP_MJ_CLEANUP` the platform completes every IRP still queued for the handle with
//!    `STATUS_CANCELLED`, then calls [`Control::cleanup`], which releases the handle's event ring
//!    and capture ring. A waker call racing with cleanup names a token that is gone: ignore it.
//!
//! Events are never lost within bounds: each subscriber has its own ring of the capacity it asked
//! for; when its ring is full, new events are counted in *its* lost counter (reported with every
//! batch) and the sequence numbers show the gap.
//!
//! # Capture
//!
//! `CAPTURE_START` gives the handle a bounded ring of fixed slots (`slots × snap_len` bytes,
//! charged to [`Pool::Control`](crate::hal::Pool::Control)). The data path pays one relaxed
//! atomic load per packet while no capture is running; otherwise the frame's bytes are copied
//! through the platform's `read` in chunks of [`CAPTURE_CHUNK`] bytes with no lock held, each
//! chunk stored under the capture lock. A full ring counts the frame in its `dropped` counter.
//! A session started with a rule scope records only the frames the rule set's `capture` rule of
//! that id matched (copied at the set's place in the hook chain); the other scopes never record
//! those copies, so an `All` session sees each frame once.
//!
//! # Rules
//!
//! `SET_RULES`, `GET_RULES` and `RULE_STATS` replace, read back and count the administrator's
//! rule set ([`crate::rules`]).
//!
//! # User-mode hooks
//!
//! `DIVERT_OPEN`, `DIVERT_READ`, `DIVERT_VERDICTS` and `DIVERT_CLOSE` make a handle a hook in the
//! chain that diverts matching packets to a program, in batches, with a bounded queue, a time
//! limit and a fail policy (see `divert.rs`). A `DIVERT_READ` with `READ_WAIT` and nothing queued
//! pends exactly as an event read does (the same inverted call, rules 1 to 5).
//!
//! # IRQL
//! [`Control::dispatch`] runs at `PASSIVE_LEVEL` (`IRP_MJ_DEVICE_CONTROL`); dispatching a pending
//! event read again (rule 3) may also run at `DISPATCH_LEVEL`.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use wanlayer_proto::Status;

use crate::hal::{Hal, Lock, Locking, Memory};

mod capture;
mod dispatch;
mod divert;
mod hub;
mod inject;
mod queries;
mod rules;

pub use capture::CAPTURE_CHUNK;
pub use divert::{DIVERT_HOOK_NAME, MAX_DIVERT_HOOKS};
pub use inject::InjectError;
pub use queries::link_entry;

pub(crate) use capture::{CaptureHub, CaptureScope};
pub(crate) use divert::DivertState;
pub(crate) use hub::EventHub;

/// Event subscribers that can exist at once (several tools can watch at once).
pub const MAX_SUBSCRIBERS: usize = 16;
/// Capture sessions that can run at once.
pub const MAX_CAPTURE_SESSIONS: usize = 8;

/// Tells the platform that a handle with a pending event read has something to read.
///
/// # IRQL
/// Called at `<= DISPATCH_LEVEL`, on any processor, with no engine lock held, from whichever
/// engine call published the event: do not block.
pub trait EventWaker: Send + Sync {
    /// The handle made with `token` should be serviced (its pending reads dispatched again).
    fn wake(&self, token: u64);

    /// A user-mode hook holds a packet again after holding none, or the data path found a held
    /// packet past its time limit: a platform with a timer sets it to call
    /// [`Control::divert_expire_in`] when [`Control::divert_next_expiry`] says, so held packets
    /// get the fail policy in time with no request or traffic to check them. Called from the data
    /// path at most once per such change (and once per time limit for a packet past it). The
    /// default does nothing (verdicts and reads that do not wait still expire packets).
    fn divert_holding(&self) {}
}

/// What the platform does with a dispatched request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "a request must be completed or kept pending"]
pub enum Completion {
    /// Complete the request now: `status`, and `written` bytes of the output (`Information`).
    Complete {
        /// The completion status.
        status: Status,
        /// Bytes of the answer at the start of the output.
        written: usize,
    },
    /// Keep the request pending and dispatch it again when the waker names the handle (see the
    /// [module documentation](self)). Nothing was written.
    Pending,
}

impl Completion {
    pub(crate) fn from_result(result: Result<usize, Status>) -> Self {
        match result {
            Ok(written) => Completion::Complete { status: Status::Success, written },
            Err(status) => Completion::Complete { status, written: 0 },
        }
    }
}

/// No session bound.
const UNBOUND: u32 = 0;
/// A session is being created.
const CLAIMING: u32 = u32::MAX - 1;
/// The handle was cleaned up.
const CLOSED: u32 = u32::MAX;

/// The handle's link to a session (event subscription or capture), changed with atomic
/// compare-and-exchange so that concurrent requests on one handle, and cleanup racing with them,
/// never leak or double-free a session.
#[derive(Debug, Default)]
struct Binding(AtomicU32);

impl Binding {
    /// Reserves the binding for a session about to be created.
    fn claim(&self) -> Result<(), Status> {
        match self.0.compare_exchange(UNBOUND, CLAIMING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(()),
            Err(CLOSED) => Err(Status::Cancelled),
            Err(_) => Err(Status::InvalidDeviceState),
        }
    }

    /// Binds the created session; false when the handle was cleaned up meanwhile (the caller
    /// releases the session).
    fn bind(&self, id: u32) -> bool {
        self.0.compare_exchange(CLAIMING, id, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Gives up a claim whose session could not be created.
    fn unclaim(&self) {
        let _ = self.0.compare_exchange(CLAIMING, UNBOUND, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The bound session.
    fn current(&self) -> Option<u32> {
        Some(self.0.load(Ordering::Acquire)).filter(|id| !matches!(*id, UNBOUND | CLAIMING | CLOSED))
    }

    /// Unbinds the bound session and returns it.
    fn take(&self) -> Option<u32> {
        let id = self.current()?;
        self.0.compare_exchange(id, UNBOUND, Ordering::AcqRel, Ordering::Acquire).ok()
    }

    /// Closes the binding for good; returns the session that was bound.
    fn close(&self) -> Option<u32> {
        Some(self.0.swap(CLOSED, Ordering::AcqRel)).filter(|id| !matches!(*id, UNBOUND | CLAIMING | CLOSED))
    }
}

/// The control device's state for one open handle: identities only.
///
/// # Ownership
/// The platform makes it at `IRP_MJ_CREATE`, passes it to every dispatch on that handle, and
/// calls [`Control::cleanup`] with it at `IRP_MJ_CLEANUP` before freeing it.
#[derive(Debug)]
pub struct ControlHandle {
    token: u64,
    subscription: Binding,
    capture: Binding,
    divert: Binding,
}

impl ControlHandle {
    /// A handle the waker will name by `token`.
    pub const fn new(token: u64) -> Self {
        Self {
            token,
            subscription: Binding(AtomicU32::new(UNBOUND)),
            capture: Binding(AtomicU32::new(UNBOUND)),
            divert: Binding(AtomicU32::new(UNBOUND)),
        }
    }

    /// The platform's token.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// True while the handle is an event subscriber.
    pub fn is_subscribed(&self) -> bool {
        self.subscription.current().is_some()
    }

    /// True while the handle runs a capture.
    pub fn is_capturing(&self) -> bool {
        self.capture.current().is_some()
    }

    /// True while the handle is a user-mode hook.
    pub fn is_diverting(&self) -> bool {
        self.divert.current().is_some()
    }
}

/// The engine's control-surface state: subscribers, captures and the waker. Nothing is allocated
/// until a tool subscribes or captures.
pub(crate) struct ControlState<H: Locking> {
    pub(crate) hub: H::Lock<EventHub>,
    pub(crate) capture: H::Lock<CaptureHub>,
    /// Capture sessions running: the data path's one check.
    pub(crate) capture_active: AtomicUsize,
    /// User-mode hooks.
    pub(crate) divert: DivertState<H>,
    waker: H::Lock<Option<EventWakerRef>>,
}

/// The waker the engine holds: shared with the platform, or a `static` one — what the kernel
/// installs, since creating an `Arc` aborts when the allocation fails.
#[derive(Clone)]
pub enum EventWakerRef {
    /// A waker the platform shares (the simulator's).
    Shared(Arc<dyn EventWaker>),
    /// A waker that lives as long as the image (the kernel's DPC waker): no allocation.
    Static(&'static dyn EventWaker),
}

impl core::ops::Deref for EventWakerRef {
    type Target = dyn EventWaker;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Shared(waker) => &**waker,
            Self::Static(waker) => *waker,
        }
    }
}

impl<H: Locking + Memory> ControlState<H> {
    pub(crate) fn new(hal: &H) -> Self {
        Self {
            hub: hal.new_lock(EventHub::default()),
            capture: hal.new_lock(CaptureHub::default()),
            capture_active: AtomicUsize::new(0),
            divert: DivertState::new(hal),
            waker: hal.new_lock(None),
        }
    }

    /// Calls the waker for each token.
    pub(crate) fn wake(&self, tokens: &[u64]) {
        if tokens.is_empty() {
            return;
        }
        if let Some(waker) = self.waker.with(|waker| waker.clone()) {
            tokens.iter().for_each(|token| waker.wake(*token));
        }
    }

    /// Tells the waker that a user-mode hook holds packets again.
    pub(crate) fn divert_holding(&self) {
        if let Some(waker) = self.waker.with(|waker| waker.clone()) {
            waker.divert_holding();
        }
    }

    /// Releases every ring (engine drop).
    pub(crate) fn release(&self, memory: &H) {
        self.hub.with(|hub| hub.release(memory));
        self.capture.with(|capture| capture.release(memory));
        self.capture_active.store(0, Ordering::Relaxed);
        self.divert.release(memory);
    }
}

/// How many sessions the control surface holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Sessions {
    /// Event subscribers.
    pub subscribers: usize,
    /// Capture sessions.
    pub captures: usize,
}

/// The control surface of an engine: [`Engine::control`](crate::Engine::control).
pub struct Control<'e, H: Hal> {
    pub(crate) engine: &'e crate::Engine<H>,
}

impl<H: Hal> Control<'_, H> {
    /// Installs (or with `None` removes) the waker that hears of events for pending reads.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn set_waker(&self, waker: Option<EventWakerRef>) {
        self.engine.control.waker.with(|slot| *slot = waker);
    }

    /// Releases the handle's event subscription, capture and user-mode hook (`IRP_MJ_CLEANUP`),
    /// even while reads are pending (the platform completes those with `STATUS_CANCELLED` first).
    /// Every packet the hook held gets its fail policy, once. Later requests on the handle that
    /// need a session are refused.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL` when the handle is a user-mode hook (its removal waits for calls in
    /// progress); `<= DISPATCH_LEVEL` otherwise.
    pub fn cleanup(&self, handle: &ControlHandle) {
        if let Some(id) = handle.subscription.close() {
            self.engine.control.hub.with(|hub| hub.unsubscribe(&self.engine.hal, id));
        }
        if let Some(id) = handle.capture.close() {
            self.stop_capture_session(id);
        }
        if let Some(id) = handle.divert.close() {
            self.close_hook(id);
        }
    }

    /// Event subscribers and capture sessions alive right now.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn sessions(&self) -> Sessions {
        let control = &self.engine.control;
        Sessions { subscribers: control.hub.with(|hub| hub.subscribers()), captures: control.capture.with(|capture| capture.sessions()) }
    }

    /// Stops a capture session and frees its ring.
    fn stop_capture_session(&self, id: u32) {
        let control = &self.engine.control;
        if control.capture.with(|capture| capture.stop(&self.engine.hal, id)) {
            control.capture_active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_claims_binds_and_closes_once() {
        let binding = Binding::default();
        assert_eq!(binding.current(), None);
        binding.claim().unwrap();
        assert_eq!(binding.claim(), Err(Status::InvalidDeviceState), "one session per handle");
        assert_eq!(binding.current(), None, "a claim is not a session yet");
        assert!(binding.bind(0x0001_0003));
        assert_eq!(binding.current(), Some(0x0001_0003));
        assert_eq!(binding.take(), Some(0x0001_0003));
        assert_eq!(binding.take(), None);
        binding.claim().unwrap();
        binding.unclaim();
        binding.claim().unwrap();
        assert_eq!(binding.close(), None, "a claim in progress is not returned by close");
        assert!(!binding.bind(7), "binding after cleanup fails: the creator releases its session");
        assert_eq!(binding.claim(), Err(Status::Cancelled));
        assert_eq!(binding.close(), None);
    }
}
