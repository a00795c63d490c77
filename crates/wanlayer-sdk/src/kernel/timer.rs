//! [`PeriodicTimer`]: a `KTIMER` with a `KDPC`, calling a function at `DISPATCH_LEVEL` every
//! period until stopped. It lives in a `static` (a driver image's data is non-paged), so starting
//! it allocates nothing.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::{KDpc, KTimer, NOTIFICATION_TIMER};

/// A periodic kernel timer whose DPC calls a plain function, given when the timer is made.
pub struct PeriodicTimer {
    timer: KTimer,
    dpc: KDpc,
    tick: fn(),
    running: AtomicBool,
}

impl PeriodicTimer {
    /// A stopped timer that will call `tick`.
    pub const fn new(tick: fn()) -> Self {
        Self { timer: KTimer::new(), dpc: KDpc::new(), tick, running: AtomicBool::new(false) }
    }

    /// Calls the timer's function at `DISPATCH_LEVEL` every `period_ms` milliseconds (the first
    /// after one period), until [`PeriodicTimer::stop`]. False (and nothing changes) when it runs
    /// already.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn start(&'static self, period_ms: u32) -> bool {
        if self.running.swap(true, Ordering::AcqRel) {
            return false;
        }
        let period = i32::try_from(period_ms.max(1)).unwrap_or(i32::MAX);
        // SAFETY: the timer and DPC are statics (non-paged, never moved); nobody else uses them
        // while `running` was clear.
        unsafe { imports::KeInitializeTimerEx(self.timer.as_ptr(), NOTIFICATION_TIMER) };
        // SAFETY: as above; the context is this timer, 'static.
        unsafe { imports::KeInitializeDpc(self.dpc.as_ptr(), expired, core::ptr::from_ref(self).cast_mut().cast()) };
        // SAFETY: initialised above; a relative due time of one period (100 ns units).
        let _ = unsafe { imports::KeSetTimerEx(self.timer.as_ptr(), -i64::from(period) * 10_000, period, self.dpc.as_ptr()) };
        true
    }

    /// Stops the timer: returns once its function is not running and will not run again.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL` (waits for DPCs queued on other processors).
    pub fn stop(&self) {
        if !self.running.swap(false, Ordering::AcqRel) {
            return;
        }
        // SAFETY: the timer `start` initialised and set.
        let _ = unsafe { imports::KeCancelTimer(self.timer.as_ptr()) };
        // SAFETY: PASSIVE_LEVEL (the caller's): waits for a DPC of this timer that was already
        // queued or running.
        unsafe { imports::KeFlushQueuedDpcs() };
    }
}

/// The DPC routine: calls the timer's function.
///
/// # Safety
/// Called by the kernel only, as the routine of a timer's DPC: `context` is the `'static`
/// [`PeriodicTimer`] `start` gave `KeInitializeDpc`.
unsafe extern "system" fn expired(_dpc: *mut KDpc, context: *mut c_void, _argument1: *mut c_void, _argument2: *mut c_void) {
    // SAFETY: the context `start` gave: a 'static `PeriodicTimer`.
    let timer = unsafe { &*context.cast::<PeriodicTimer>() };
    (timer.tick)();
}
