//! [`SpinLock`]: the engine's [`Lock`] over the `KSPIN_LOCK` of [`wanlayer_ndis::sync`], the one
//! vendor drivers use too.

use wanlayer_core::hal::Lock;

/// A value behind a `KSPIN_LOCK` ([`wanlayer_ndis::sync::SpinLock`]), as the engine's [`Lock`].
///
/// # IRQL
/// [`Lock::with`] raises to `DISPATCH_LEVEL` for the critical section and restores the caller's
/// IRQL when it ends. Callable at `<= DISPATCH_LEVEL`; the closure must not wait, page-fault or
/// call out of the filter — the engine only touches its own state inside.
///
/// The lock must live in non-paged memory: it does, inside the engine (pool or `.data`).
pub struct SpinLock<T>(wanlayer_ndis::sync::SpinLock<T>);

impl<T> SpinLock<T> {
    /// A released lock around `value`.
    pub const fn new(value: T) -> Self {
        Self(wanlayer_ndis::sync::SpinLock::new(value))
    }
}

impl<T> Lock<T> for SpinLock<T> {
    fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
        self.0.with(critical_section)
    }
}
