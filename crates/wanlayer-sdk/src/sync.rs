//! [`SpinLock`]: the one lock a vendor filter needs, the same API in the kernel and on the host.
//!
//! Filter callbacks run at `DISPATCH_LEVEL` on any processor, so a filter's shared state is
//! guarded by a spin lock entered as a closure (it cannot be left held). With the `kernel`
//! feature (Windows targets) it is `wanlayer_ndis::sync::SpinLock`, the `KSPIN_LOCK` wrapper
//! wanlayer.sys uses too, taken with `KeAcquireSpinLockRaiseToDpc`, so a holder at `PASSIVE_LEVEL`
//! cannot be preempted on its processor by a DPC that wants the lock; elsewhere (the simulator,
//! host tests) it is a portable atomic spin lock with the same API.
//!
//! # IRQL
//! `SpinLock::with` is callable at `<= DISPATCH_LEVEL`; the closure runs at `DISPATCH_LEVEL` in
//! the kernel: it must not wait, touch pageable memory or call a table function (which calls back
//! into wanlayer and so into other filters). Copy out what must be handed to wanlayer and call it
//! after the closure.

#[cfg(all(feature = "kernel", target_os = "windows"))]
pub use wanlayer_ndis::sync::SpinLock;

#[cfg(not(all(feature = "kernel", target_os = "windows")))]
pub use portable::SpinLock;

#[cfg(not(all(feature = "kernel", target_os = "windows")))]
mod portable {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};

    /// A value behind a test-and-test-and-set spin lock (the host stand-in for the kernel's
    /// `KSPIN_LOCK`; see the module's `# IRQL`).
    pub struct SpinLock<T> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: the value is only reached through `with`, which holds the lock: exclusive access
    // from any thread; `T: Send` because the value is used from whichever thread holds the lock.
    unsafe impl<T: Send> Sync for SpinLock<T> {}
    // SAFETY: moving the lock moves the value with it (nobody can hold a lock that is being moved).
    unsafe impl<T: Send> Send for SpinLock<T> {}

    impl<T> SpinLock<T> {
        /// A released lock around `value`.
        pub const fn new(value: T) -> Self {
            Self { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
        }

        /// Runs `critical_section` with exclusive access to the value.
        pub fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
            while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
                while self.locked.load(Ordering::Relaxed) {
                    core::hint::spin_loop();
                }
            }
            let _held = Held(&self.locked);
            // SAFETY: the lock is held until `_held` drops, after the closure: no other reference
            // to the value exists meanwhile (a nested `with` on the same lock would spin, never
            // alias).
            critical_section(unsafe { &mut *self.value.get() })
        }
    }

    /// Holds the lock; releases it when dropped.
    struct Held<'a>(&'a AtomicBool);

    impl Drop for Held<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::SpinLock;
    use std::sync::Arc;
    use std::vec::Vec;

    #[test]
    fn the_lock_serialises_updates_from_several_threads() {
        // Miri checks every access for a data race and switches threads at random points, so a
        // thousand contended rounds per thread show there what ten thousand show natively.
        let rounds: u64 = if cfg!(miri) { 1_000 } else { 10_000 };
        let counter = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        counter.with(|value| *value += 1);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no thread panics");
        }
        assert_eq!(counter.with(|value| *value), 4 * rounds);
    }
}
