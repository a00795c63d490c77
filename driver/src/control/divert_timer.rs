//! The user-mode hooks' expiry timer: one kernel timer whose DPC gives the fail policy to held
//! packets older than their hook's time limit (`Control::divert_expire`), so they expire in time
//! even when no request and no traffic comes to check them.
//!
//! # Armed only while a hook holds packets
//!
//! The timer is one-shot, set for the earliest time a held packet may expire
//! (`Control::divert_next_expiry`), and only while some user-mode hook holds a packet: no timer
//! ticks while the driver is idle. Every decision is [`reconcile`], under [`STATE`]'s spin lock:
//! it reads the earliest expiry (each hook under its own lock, inside this one: the one order
//! the two are nested in) and sets the timer earlier, or cancels it when nothing is held. It runs
//! when
//!
//! * the engine says a hook holds a packet again after holding none (the waker's
//!   `divert_holding`, from the data path) — that packet's own expiry is then seen under the lock;
//! * the timer's DPC has expired what was due (it then sets the timer for the next one);
//! * a hook closed (`DIVERT_CLOSE`, or cleanup of its handle): with nothing held any more, the
//!   timer is cancelled.
//!
//! # Unload
//!
//! [`stop`] (from `remove_waker`, after the waker is out of the engine and no `divert_holding`
//! call can run) marks the timer stopped under the lock and cancels it; a DPC already queued
//! still runs (the engine is alive until after `KeFlushQueuedDpcs`), finds the timer stopped and
//! sets nothing. After the flush, nothing of the timer is set or queued.
//!
//! # IRQL
//! [`reconcile`] runs at `<= DISPATCH_LEVEL`; the DPC at `DISPATCH_LEVEL`, where the engine may
//! hand packets on; [`stop`] at `PASSIVE_LEVEL`.

use core::ffi::c_void;
use core::ptr;

use wanlayer_core::hal::{Clock, PathContext, Timestamp};
use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::{KDpc, KTimer, NOTIFICATION_TIMER};
use wanlayer_ndis::sync::SpinLock;

use crate::driver::engine;

/// The shortest time the timer is set for (1 ms, in 100 ns units): a packet already due expires
/// on the next tick rather than in a DPC that sets itself again at once.
const MIN_DUE_100NS: u64 = 10_000;

/// The timer (non-paged: the image's data section).
static TIMER: KTimer = KTimer::new();
/// Its DPC.
static TIMER_DPC: KDpc = KDpc::new();

/// Whether the timer is set, and for when.
struct TimerState {
    /// Set (or fired, its DPC not yet at [`reconcile`]).
    armed: bool,
    /// When it is due, on the engine's clock (ns), while `armed`.
    due_ns: u64,
    /// Unloading: never set again.
    stopped: bool,
}

/// The timer's state; its lock orders every set and cancel.
static STATE: SpinLock<TimerState> = SpinLock::new(TimerState { armed: false, due_ns: 0, stopped: false });

/// Initialises the timer and its DPC (not set).
///
/// # IRQL
/// `PASSIVE_LEVEL` (`DriverEntry`).
///
/// # Safety
/// Called once, before the waker is installed (nothing can set the timer before).
pub unsafe fn init() {
    // SAFETY: a static timer in non-paged memory, not in use yet.
    unsafe { imports::KeInitializeTimerEx(TIMER.as_ptr(), NOTIFICATION_TIMER) };
    // SAFETY: a static DPC in non-paged memory, not queued yet; the routine has the
    // KDEFERRED_ROUTINE signature.
    unsafe { imports::KeInitializeDpc(TIMER_DPC.as_ptr(), expire_held, ptr::null_mut()) };
    // A fresh start: the image's data is new at each load in the kernel, not in a host build that
    // loads the driver again.
    STATE.with(|state| *state = TimerState { armed: false, due_ns: 0, stopped: false });
}

/// Sets the timer earlier when a held packet may expire before it is due, or cancels it when no
/// user-mode hook holds a packet.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`; no engine lock held by the caller.
pub fn reconcile() {
    let engine = engine();
    STATE.with(|state| {
        if state.stopped {
            return;
        }
        match engine.control().divert_next_expiry() {
            None if state.armed => {
                // SAFETY: the timer was initialised by `init`; <= DISPATCH_LEVEL. A DPC it
                // already queued still runs, and reconciles again.
                unsafe { imports::KeCancelTimer(TIMER.as_ptr()) };
                state.armed = false;
            }
            None => {}
            Some(Timestamp(due_ns)) if !state.armed || due_ns < state.due_ns => {
                let now = engine.hal().now().0;
                let relative_100ns = (due_ns.saturating_sub(now) / 100).max(MIN_DUE_100NS);
                let relative = i64::try_from(relative_100ns).unwrap_or(i64::MAX);
                // SAFETY: timer and DPC initialised by `init`, static (non-paged); negative due
                // time: relative; one-shot (period 0); <= DISPATCH_LEVEL.
                unsafe { imports::KeSetTimerEx(TIMER.as_ptr(), -relative, 0, TIMER_DPC.as_ptr()) };
                state.armed = true;
                state.due_ns = due_ns;
            }
            Some(_) => {}
        }
    });
}

/// Stops the timer for good: cancelled, never set again.
///
/// # IRQL
/// `PASSIVE_LEVEL` (`DriverUnload`, or a failed `DriverEntry`).
///
/// # Safety
/// Called once, after [`init`], once no `divert_holding` call of the waker can run; the caller
/// then waits for queued DPCs (`KeFlushQueuedDpcs`) before the engine is dropped.
pub unsafe fn stop() {
    STATE.with(|state| {
        state.stopped = true;
        state.armed = false;
        // SAFETY: initialised by `init`; a DPC it queued is flushed by the caller.
        unsafe { imports::KeCancelTimer(TIMER.as_ptr()) };
    });
}

/// The DPC: expires what is due, then sets the timer for the next held packet (or leaves it
/// unset when none is held).
///
/// # IRQL
/// `DISPATCH_LEVEL`.
///
/// # Safety
/// Called by the kernel only, as the routine of the timer's DPC, at `DISPATCH_LEVEL`.
unsafe extern "system" fn expire_held(_dpc: *mut KDpc, _context: *mut c_void, _argument1: *mut c_void, _argument2: *mut c_void) {
    STATE.with(|state| state.armed = false);
    let _ = engine().control().divert_expire_in(PathContext { at_dispatch: true, ..PathContext::default() });
    reconcile();
}

// The DPC routine has the kernel's type.
const _: wanlayer_ndis::kernel::KDeferredRoutine = expire_held;
