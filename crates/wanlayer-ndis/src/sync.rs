//! [`Global`] and [`SpinLock`]: the driver-wide cell and the `KSPIN_LOCK` every Rust kernel driver
//! here shares — `wanlayer.sys` (its engine, its provider, the engine's locks) and vendor drivers
//! built with the SDK (their state between `DriverEntry` and `DriverUnload`, their filter's lock).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::imports;
use crate::kernel::{KSpinLock, Kirql};

/// A value set once in `DriverEntry`, shared by every callback, DPC and dispatch routine, and
/// dropped (or taken back) in `DriverUnload` once none of them can run.
///
/// It lives in a `static`: a driver image's data is non-paged, and a large value (the engine, a
/// few KiB) made by [`Global::set_with`] can be written straight into it rather than through a
/// stack frame that would reach the 4 KiB that makes rustc call `__chkstk`.
pub struct Global<T> {
    live: AtomicBool,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written only by `set_with`, `take` and `clear`, whose callers promise that
// nobody else can reach it then; in between it is only shared (`&T`), which needs `T: Sync` (and
// `Send`, since it may be dropped on another processor than the one that made it).
unsafe impl<T: Send + Sync> Sync for Global<T> {}

impl<T> Global<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        Self { live: AtomicBool::new(false), value: UnsafeCell::new(MaybeUninit::uninit()) }
    }

    /// Stores `value`.
    ///
    /// # Safety
    /// As for [`Global::set_with`].
    pub unsafe fn set(&self, value: T) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.set_with(|| value) };
    }

    /// Stores the value `make` returns, written into the cell itself, and returns it.
    ///
    /// # Safety
    /// The cell is empty and nothing calls [`Global::get`] concurrently (`DriverEntry`, before the
    /// filter, the control device, the timers or the registrations that read it exist).
    pub unsafe fn set_with(&self, make: impl FnOnce() -> T) -> &T {
        // SAFETY: the caller's promise: nobody else accesses the cell now.
        let slot = unsafe { &mut *self.value.get() };
        let value = slot.write(make());
        self.live.store(true, Ordering::Release);
        value
    }

    /// The value, between [`Global::set_with`] and [`Global::take`] or [`Global::clear`].
    pub fn get(&self) -> Option<&T> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: while `live` is set nothing writes the cell (`set_with` wrote it before setting
        // `live`; `take` and `clear` clear `live` first, when nobody holds a reference any more).
        let slot = unsafe { &*self.value.get() };
        // SAFETY: `live` is set only after the value was written.
        Some(unsafe { slot.assume_init_ref() })
    }

    /// Takes the value back out of the cell.
    ///
    /// # Safety
    /// Nothing holds or can obtain a reference from [`Global::get`] any more (`DriverUnload`, after
    /// the timers are stopped and the registrations gone).
    pub unsafe fn take(&self) -> Option<T> {
        if !self.live.swap(false, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: by the caller's promise the value is no longer borrowed.
        let slot = unsafe { &*self.value.get() };
        // SAFETY: it was written (`live` was set) and is read out once (`live` is now clear).
        Some(unsafe { slot.assume_init_read() })
    }

    /// Drops the value where it is (never moved through a stack frame); false when empty.
    ///
    /// # Safety
    /// As for [`Global::take`].
    pub unsafe fn clear(&self) -> bool {
        if !self.live.swap(false, Ordering::AcqRel) {
            return false;
        }
        // SAFETY: by the caller's promise the value is no longer borrowed.
        let slot = unsafe { &mut *self.value.get() };
        // SAFETY: it was written (`live` was set) and is dropped once (`live` is now clear).
        unsafe { slot.assume_init_drop() };
        true
    }
}

impl<T> Default for Global<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A value behind a `KSPIN_LOCK`, entered as a closure so it cannot be left held.
///
/// # IRQL
/// [`SpinLock::with`] raises to `DISPATCH_LEVEL` (`KeAcquireSpinLockRaiseToDpc`) for the critical
/// section and restores the caller's IRQL when it ends (`KeReleaseSpinLock`): a holder at
/// `PASSIVE_LEVEL` cannot be preempted on its processor by a DPC that wants the lock. Callable at
/// `<= DISPATCH_LEVEL`; the closure must not wait, touch pageable memory or call out of the driver
/// (into NDIS, or into wanlayer through a provider table, which calls other filters).
///
/// The lock must live in non-paged memory: a driver's statics and pool allocations are.
pub struct SpinLock<T> {
    lock: UnsafeCell<KSpinLock>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, which holds the spin lock: exclusive access
// from any processor, so sharing the lock shares no unsynchronised state; `T: Send` because the
// value is used from whichever processor holds the lock.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves the value with it (no processor can be holding it while it is
// moved: moving needs ownership).
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A released lock around `value` (`KeInitializeSpinLock` is a store of zero).
    pub const fn new(value: T) -> Self {
        Self { lock: UnsafeCell::new(0), value: UnsafeCell::new(value) }
    }

    /// Runs `critical_section` with exclusive access to the value, at `DISPATCH_LEVEL`.
    pub fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the lock word lives as long as `self`, in non-paged memory, and is only ever
        // used as a spin lock; the caller runs at <= DISPATCH_LEVEL (the type's contract).
        let previous = unsafe { imports::KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        let _held = Held { lock: &self.lock, previous };
        // SAFETY: the spin lock is held until `_held` drops, after the closure: no other
        // reference to the value exists meanwhile (a nested `with` on the same lock would
        // deadlock, never alias).
        critical_section(unsafe { &mut *self.value.get() })
    }
}

/// Holds a spin lock; releases it and restores the IRQL when dropped.
struct Held<'a> {
    lock: &'a UnsafeCell<KSpinLock>,
    previous: Kirql,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: acquired by `SpinLock::with` for this guard, released exactly once, restoring
        // the IRQL `KeAcquireSpinLockRaiseToDpc` returned.
        unsafe { imports::KeReleaseSpinLock(self.lock.get(), self.previous) };
    }
}

#[cfg(test)]
mod tests {
    use super::Global;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct Counted(u32);

    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_global_is_set_shared_and_dropped_or_taken_once() {
        let global = Global::<Counted>::new();
        assert!(global.get().is_none());
        // SAFETY: empty, and nothing else uses it in this test.
        assert_eq!(unsafe { global.set_with(|| Counted(7)) }.0, 7);
        assert_eq!(global.get().map(|value| value.0), Some(7));
        // SAFETY: no reference from `get` is alive.
        assert!(unsafe { global.clear() });
        assert_eq!(DROPS.load(Ordering::Relaxed), 1, "dropped in place, once");
        // SAFETY: as above.
        assert!(!unsafe { global.clear() });
        // SAFETY: as above.
        assert!(unsafe { global.take() }.is_none());
        assert!(global.get().is_none());
        // SAFETY: empty again.
        unsafe { global.set(Counted(9)) };
        // SAFETY: no reference from `get` is alive.
        let taken = unsafe { global.take() }.expect("set");
        assert_eq!((taken.0, DROPS.load(Ordering::Relaxed)), (9, 1), "taken, not dropped");
        assert!(global.get().is_none());
    }
}
