//! The provider interface for vendor drivers: one [`Host`] over the engine, in a static, whose
//! table `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` hands out ([`crate::control::provider`]).
//!
//! The table's functions and the registration logic are `wanlayer_sdk::provider` — the very code
//! the simulator tests run; this module only gives it a home and a lifetime:
//!
//! ```text
//! DriverEntry:  engine ─▶ filter registered ─▶ install (Host over the engine) ─▶ control device
//! DriverUnload: shutdown (revoke_all, drop the Host) ─▶ control device gone ─▶ filter ─▶ engine
//! ```
//!
//! # Unload with vendors registered
//!
//! A vendor holds its reference on the control device's file object for as long as it uses the
//! table, and the I/O manager calls `DriverUnload` only once no reference to the driver's device
//! objects remains: so `DriverUnload` normally finds no registration. A vendor that let go of its
//! reference first broke that contract; [`shutdown`] still leaves nothing of it running: every
//! remaining registration is revoked (hook removed after its calls in progress, what it took handed
//! on, its `OnProviderUnload` called), and each is logged as an error.

use wanlayer_core::hal::{Level, PathContext};
use wanlayer_core::Engine;
use wanlayer_ndis::sync::Global;
use wanlayer_sdk::provider::{CallerContext, Host, HookAdapters};

use crate::hal::KernelHal;
use crate::platform::print;

impl CallerContext for KernelHal {
    fn caller_context(&self) -> PathContext {
        crate::hal::current_context()
    }
}

/// The provider, between [`install`] and [`shutdown`].
static HOST: Global<Host<'static, KernelHal>> = Global::new();

/// The provider's engine hooks, one per registration slot: a `static`, so installing the provider
/// allocates nothing (an `Arc` per hook would bug-check when the pool is exhausted at boot).
static ADAPTERS: HookAdapters = HookAdapters::new();

/// Creates the provider over `engine`.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Safety
/// Called once, from `DriverEntry`, before the control device (the only way to reach the
/// provider) exists; `engine` stays installed until after [`shutdown`].
pub unsafe fn install(engine: &'static Engine<KernelHal>) {
    // SAFETY: the caller's promise: the cell is empty and nobody else accesses it now.
    unsafe { HOST.set(Host::with_static_adapters(engine, &ADAPTERS)) };
}

/// The provider, between [`install`] and [`shutdown`].
pub fn host() -> Option<&'static Host<'static, KernelHal>> {
    HOST.get()
}

/// Revokes every registration still there and drops the provider.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Safety
/// Called from `DriverUnload` (no request can reach the control device any more) or from a failed
/// `DriverEntry` (the control device was never created), before the engine is dropped.
pub unsafe fn shutdown() {
    let Some(host) = host() else { return };
    let revoked = host.revoke_all();
    if revoked > 0 {
        print(
            Level::Error,
            format_args!("unload: revoked {revoked} vendor registration(s) whose driver let go of \\Device\\WanLayer first"),
        );
    }
    let counts = host.counts();
    print(
        Level::Info,
        format_args!(
            "provider: {} table(s) served, {} registration(s), {} deregistration(s), {} revoked, {} invalid verdict(s)",
            counts.tables_served, counts.registrations, counts.deregistrations, counts.revocations, counts.invalid_verdicts
        ),
    );
    // SAFETY: the caller's promise: nothing can reach the host now (`host` above is its last use).
    unsafe { HOST.clear() };
}

// The host is shared by every processor through `&'static`.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Host<'static, KernelHal>>();
};
