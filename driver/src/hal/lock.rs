//! [`SpinLock`]: the engine's [`Lock`] as a kernel spin lock at `DISPATCH_LEVEL`.

use core::cell::UnsafeCell;

use wanlayer_core::hal::Lock;
use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::{KSpinLock, Kirql};

/// A value behind a `KSPIN_LOCK`, entered as a closure so it cannot be left held.
///
/// # IRQL
/// [`Lock::with`] raises to `DISPATCH_LEVEL` (`KeAcquireSpinLockRaiseToDpc`) for the critical
/// section and restores the caller's IRQL when it ends (`KeReleaseSpinLock`). Callable at
/// `<= DISPATCH_LEVEL`; the closure must not wait, page-fault or call out of the filter — the
/// engine only touches its own state inside.
///
/// The lock must live in non-paged memory: it does, inside the engine (pool or `.data`).
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
}

/// Holds the lock; releases it and restores the IRQL when dropped.
struct Guard<'a> {
    lock: &'a UnsafeCell<KSpinLock>,
    previous: Kirql,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard acquired the lock in `with` and releases it exactly once, restoring
        // the IRQL `KeAcquireSpinLockRaiseToDpc` returned.
        unsafe { imports::KeReleaseSpinLock(self.lock.get(), self.previous) };
    }
}

impl<T> Lock<T> for SpinLock<T> {
    fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the lock word lives as long as `self`, in non-paged memory, and is only ever
        // used as a spin lock; the caller runs at <= DISPATCH_LEVEL (the engine's contract).
        let previous = unsafe { imports::KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        let _guard = Guard { lock: &self.lock, previous };
        // SAFETY: the spin lock is held until `_guard` drops, after the closure: no other
        // reference to the value exists meanwhile (a re-entrant `with` would deadlock, never
        // alias: the engine never nests a lock in itself).
        critical_section(unsafe { &mut *self.value.get() })
    }
}
