//! [`Global`]: a driver's state between `DriverEntry` and `DriverUnload`, in a static.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

/// A value set once in `DriverEntry`, shared by every callback, DPC and dispatch routine, and
/// taken back in `DriverUnload` once none of them can run.
pub struct Global<T> {
    live: AtomicBool,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written only by `set` and `take`, whose callers promise nobody else can
// reach it then; in between it is only shared (`&T`), which needs `T: Sync` (and `Send`, since
// `take` may run on another processor than `set`).
unsafe impl<T: Send + Sync> Sync for Global<T> {}

impl<T> Global<T> {
    /// An empty global.
    pub const fn new() -> Self {
        Self { live: AtomicBool::new(false), value: UnsafeCell::new(MaybeUninit::uninit()) }
    }

    /// Stores the value.
    ///
    /// # Safety
    /// The global is empty and nothing can call [`Global::get`] concurrently (`DriverEntry`,
    /// before the timers and registrations that read it exist).
    pub unsafe fn set(&self, value: T) {
        // SAFETY: the caller's promise: nobody else accesses the cell now.
        let slot = unsafe { &mut *self.value.get() };
        slot.write(value);
        self.live.store(true, Ordering::Release);
    }

    /// The value, between [`Global::set`] and [`Global::take`].
    pub fn get(&self) -> Option<&T> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: while `live` is set nothing writes the cell (`set` wrote it before setting
        // `live`; `take` clears `live` first, when nobody holds a reference any more).
        let slot = unsafe { &*self.value.get() };
        // SAFETY: `live` is set only after the value was written.
        Some(unsafe { slot.assume_init_ref() })
    }

    /// Takes the value back.
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
}

impl<T> Default for Global<T> {
    fn default() -> Self {
        Self::new()
    }
}
