//! Kernel timers (`KeInitializeTimerEx`, `KeSetTimerEx`, `KeCancelTimer`) on the model's clock,
//! which the test moves ([`advance_time`], [`set_time`]): a timer that comes due queues its DPC,
//! and the DPCs run as they would on an idle processor.
//!
//! Checked: a timer is initialised before it is set, set or cancelled at `<= DISPATCH_LEVEL`,
//! with a DPC that was initialised; a timer still set at [`finish`](crate::finish) is reported
//! (the driver unloaded with its timer running: the kernel would call into freed code).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use wanlayer_ndis::kernel::{KDpc, KTimer, TimerType};

use crate::{run_dpcs, state, DISPATCH_LEVEL};

/// A set timer.
#[derive(Clone, Copy)]
struct Armed {
    /// When it is due, in the model's 100 ns units.
    due: u64,
    /// Its period in 100 ns units (0: one-shot).
    period: u64,
    /// The DPC it queues.
    dpc: usize,
}

struct Timers {
    /// Timer address -> its setting (`None`: initialised, not set).
    timers: BTreeMap<usize, Option<Armed>>,
}

static TIMERS: Mutex<Timers> = Mutex::new(Timers { timers: BTreeMap::new() });

fn timers() -> MutexGuard<'static, Timers> {
    TIMERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Forgets every timer (at [`begin`](crate::begin)).
pub(crate) fn reset() {
    timers().timers.clear();
}

/// What [`finish`](crate::finish) reports: timers still set.
pub(crate) fn leftovers() -> Vec<String> {
    let set = timers().timers.values().filter(|armed| armed.is_some()).count();
    if set == 0 {
        return Vec::new();
    }
    vec![format!("{set} kernel timers still set")]
}

/// Timers set now.
pub fn timers_set() -> usize {
    timers().timers.values().filter(|armed| armed.is_some()).count()
}

/// The model's clock, in 100 ns units (`KeQueryInterruptTime`'s).
pub fn time() -> u64 {
    state().time_100ns
}

/// Moves the clock forward by `delta` (100 ns units), firing the timers that come due in order:
/// each queues its DPC and the queued DPCs run before the next timer fires.
pub fn advance_time(delta: u64) {
    let end = time().saturating_add(delta);
    set_time(end);
}

/// Moves the clock to `now` (never back), firing the timers due by then as [`advance_time`] does.
pub fn set_time(now: u64) {
    loop {
        let due = {
            let timers = timers();
            timers.timers.iter().filter_map(|(&timer, armed)| armed.map(|armed| (armed.due, timer))).filter(|&(due, _)| due <= now).min()
        };
        let Some((due, timer)) = due else { break };
        {
            let mut state = state();
            state.time_100ns = state.time_100ns.max(due);
        }
        let fired = {
            let mut timers = timers();
            let Some(slot) = timers.timers.get_mut(&timer) else {
                continue;
            };
            let fired = *slot;
            *slot = fired.filter(|armed| armed.period > 0).map(|armed| Armed { due: armed.due + armed.period, ..armed });
            fired
        };
        if let Some(armed) = fired {
            let low = usize::try_from(due & 0xFFFF_FFFF).unwrap_or(0);
            let high = usize::try_from(due >> 32).unwrap_or(0);
            state().queued_dpcs.push((armed.dpc, low, high));
            run_dpcs();
        }
    }
    let mut state = state();
    state.time_100ns = state.time_100ns.max(now);
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeInitializeTimerEx(timer: *mut KTimer, _kind: TimerType) {
    let _kernel = crate::invoke::kernel_code();
    if timer.is_null() {
        state().violation("KeInitializeTimerEx of a null timer");
        return;
    }
    timers().timers.insert(timer.addr(), None);
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeSetTimerEx(timer: *mut KTimer, due: i64, period_ms: i32, dpc: *mut KDpc) -> u8 {
    let _kernel = crate::invoke::kernel_code();
    let (now, irql, dpc_known) = {
        let state = state();
        (state.time_100ns, crate::irql(), state.dpcs.contains_key(&dpc.addr()))
    };
    let mut problems = Vec::new();
    if irql > DISPATCH_LEVEL {
        problems.push(format!("KeSetTimerEx at IRQL {irql}"));
    }
    if !dpc.is_null() && !dpc_known {
        problems.push("KeSetTimerEx with a DPC never initialised (KeInitializeDpc)".to_owned());
    }
    if period_ms < 0 {
        problems.push(format!("KeSetTimerEx with a period of {period_ms} ms"));
    }
    let was_set = {
        let mut timers = timers();
        match timers.timers.get_mut(&timer.addr()) {
            None => {
                problems.push("KeSetTimerEx of a timer never initialised (KeInitializeTimerEx)".to_owned());
                false
            }
            Some(slot) => {
                // Negative: relative to now; positive: an absolute system time, which the model's
                // clock stands in for.
                let due = if due < 0 { now.saturating_add(due.unsigned_abs()) } else { due.unsigned_abs().max(now) };
                let period = u64::from(period_ms.unsigned_abs()) * 10_000;
                slot.replace(Armed { due, period, dpc: dpc.addr() }).is_some()
            }
        }
    };
    let mut state = state();
    for problem in problems {
        state.violation(problem);
    }
    u8::from(was_set)
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeCancelTimer(timer: *mut KTimer) -> u8 {
    let _kernel = crate::invoke::kernel_code();
    let irql = crate::irql();
    if irql > DISPATCH_LEVEL {
        state().violation(format!("KeCancelTimer at IRQL {irql}"));
    }
    let was_set = timers().timers.get_mut(&timer.addr()).map(|slot| slot.take().is_some());
    match was_set {
        Some(was_set) => u8::from(was_set),
        None => {
            state().violation("KeCancelTimer of a timer never initialised (KeInitializeTimerEx)");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use wanlayer_ndis::kernel::{KDpc, KTimer, NOTIFICATION_TIMER};

    use super::*;
    use crate::{begin, finish, violations, KeInitializeDpc};

    static FIRED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "system" fn count(_dpc: *mut KDpc, _context: *mut c_void, _low: *mut c_void, _high: *mut c_void) {
        FIRED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_timer_queues_its_dpc_when_due_and_each_period_until_cancelled() {
        let _run = begin();
        FIRED.store(0, Ordering::SeqCst);
        let (timer, dpc) = (KTimer::new(), KDpc::new());
        // SAFETY: (each call below) the model's functions called as the driver calls them, with
        // kernel objects that outlive the run.
        unsafe { KeInitializeDpc(dpc.as_ptr(), count, std::ptr::null_mut()) };
        // SAFETY: as above.
        unsafe { KeInitializeTimerEx(timer.as_ptr(), NOTIFICATION_TIMER) };
        // SAFETY: as above: due in 1 ms, one-shot.
        assert_eq!(unsafe { KeSetTimerEx(timer.as_ptr(), -10_000, 0, dpc.as_ptr()) }, 0, "was not set");
        advance_time(9_999);
        assert_eq!(FIRED.load(Ordering::SeqCst), 0, "not due yet");
        advance_time(1);
        assert_eq!((FIRED.load(Ordering::SeqCst), timers_set()), (1, 0), "fired once, then no longer set");
        // SAFETY: as above: due at once, then every 5 ms.
        unsafe { KeSetTimerEx(timer.as_ptr(), -1, 5, dpc.as_ptr()) };
        advance_time(1 + 3 * 50_000);
        assert_eq!(FIRED.load(Ordering::SeqCst), 5, "once when due and at each of three periods");
        // SAFETY: as above.
        assert_eq!(unsafe { KeCancelTimer(timer.as_ptr()) }, 1, "it was set");
        advance_time(10 * 50_000);
        assert_eq!(FIRED.load(Ordering::SeqCst), 5, "never again once cancelled");
        assert!(finish().is_empty(), "{:?}", finish());
    }

    #[test]
    fn a_timer_never_initialised_and_one_left_set_are_reported() {
        let _run = begin();
        let (timer, dpc) = (KTimer::new(), KDpc::new());
        // SAFETY: (each call below) the model's functions called as the driver calls them.
        unsafe { KeInitializeDpc(dpc.as_ptr(), count, std::ptr::null_mut()) };
        // SAFETY: as above: a timer KeInitializeTimerEx never saw.
        unsafe { KeSetTimerEx(timer.as_ptr(), -10, 0, dpc.as_ptr()) };
        assert!(violations().iter().any(|rule| rule.contains("never initialised")), "{:?}", violations());
        // SAFETY: as above.
        unsafe { KeInitializeTimerEx(timer.as_ptr(), NOTIFICATION_TIMER) };
        // SAFETY: as above: set far ahead, never cancelled.
        unsafe { KeSetTimerEx(timer.as_ptr(), -1_000_000_000, 0, dpc.as_ptr()) };
        assert!(finish().iter().any(|rule| rule.contains("kernel timers still set")), "{:?}", finish());
    }
}
