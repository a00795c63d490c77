//! The engine's [`EventWaker`]: one driver DPC that services every woken handle.
//!
//! The engine calls [`EventWaker::wake`] from inside whichever engine call published an event
//! (`FilterStatus`, a receive, an unsubscribe...), at `<= DISPATCH_LEVEL`, with no engine lock
//! held. Servicing a handle there would dispatch into the engine from inside the engine, so the
//! wake only records the handle's slot in a bitmap and queues the DPC ([`WAKE_DPC`]); the DPC
//! takes the bitmap and services each slot's handle ([`super::requests::service`]). A token whose
//! handle is gone (a wake racing with cleanup, a slot reused since) is ignored
//! ([`handles::is_current`]).
//!
//! # Install and removal (unload order)
//!
//! ```text
//! DriverEntry:   Engine::new ─ … ─ install_waker ─▶ NdisRegisterDeviceEx (handles can open)
//! DriverUnload:  remove_waker ─▶ NdisDeregisterDeviceEx ─ … ─ engine dropped
//! ```
//!
//! [`remove_waker`] takes the waker out of the engine, then waits until no `wake` call is
//! running (rundown protection: one that starts later does nothing), stops the user-mode hooks'
//! expiry timer ([`divert_timer`], which the waker's `divert_holding` sets), then waits until the
//! DPCs queued so far have run (`KeFlushQueuedDpcs`). After it, nothing of the waker runs: neither the
//! engine nor this image's code is needed by it any more.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

use wanlayer_core::hal::Level;
use wanlayer_core::{Engine, EventWaker, EventWakerRef};
use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::{ExRundownRef, KDpc};

use super::divert_timer;
use super::handles::{self, MAX_HANDLES};
use super::requests;
use crate::hal::KernelHal;
use crate::platform::print;

/// Slots per bitmap word.
const WORD_BITS: usize = u64::BITS as usize;
/// Words of the bitmap.
const WORDS: usize = MAX_HANDLES.div_ceil(WORD_BITS);

/// The DPC that services woken handles (non-paged: the image's data section).
static WAKE_DPC: KDpc = KDpc::new();
/// Protects `wake` calls against [`remove_waker`].
static WAKE_RUNDOWN: ExRundownRef = ExRundownRef::new();
/// Slots woken since the DPC last took them.
static WOKEN: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// The waker the engine holds.
struct DpcWaker;

/// The one waker: a `static`, so installing it allocates nothing.
static DPC_WAKER: DpcWaker = DpcWaker;

impl EventWaker for DpcWaker {
    /// Marks the token's slot woken and queues the DPC.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`; does not wait.
    fn wake(&self, token: u64) {
        // SAFETY: the rundown reference is a static, initialised by `install_waker` before the
        // waker was installed; <= DISPATCH_LEVEL.
        if unsafe { imports::ExAcquireRundownProtection(WAKE_RUNDOWN.as_ptr()) } == 0 {
            return;
        }
        if let Some(slot) = handles::token_slot(token).filter(|_| handles::is_current(token)) {
            WOKEN[slot / WORD_BITS].fetch_or(1 << (slot % WORD_BITS), Ordering::AcqRel);
            // SAFETY: a static DPC, initialised by `install_waker`; queued again harmlessly
            // while already queued (it then takes this bit too).
            unsafe { imports::KeInsertQueueDpc(WAKE_DPC.as_ptr(), ptr::null_mut(), ptr::null_mut()) };
        }
        // SAFETY: releases the protection acquired above.
        unsafe { imports::ExReleaseRundownProtection(WAKE_RUNDOWN.as_ptr()) };
    }

    /// Sets the user-mode hooks' expiry timer for the packet now held ([`divert_timer`]).
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`; does not wait.
    fn divert_holding(&self) {
        // SAFETY: as in `wake`.
        if unsafe { imports::ExAcquireRundownProtection(WAKE_RUNDOWN.as_ptr()) } == 0 {
            return;
        }
        divert_timer::reconcile();
        // SAFETY: releases the protection acquired above.
        unsafe { imports::ExReleaseRundownProtection(WAKE_RUNDOWN.as_ptr()) };
    }
}

/// Installs the waker in the engine.
///
/// # IRQL
/// `PASSIVE_LEVEL` (`DriverEntry`).
///
/// # Safety
/// Called once, after `Engine::new` and before the control device exists (no handle, so no
/// wake, yet); [`remove_waker`] runs before the engine is dropped or the image unloaded.
pub unsafe fn install_waker(engine: &Engine<KernelHal>) {
    // SAFETY: a static rundown reference, not in use yet.
    unsafe { imports::ExInitializeRundownProtection(WAKE_RUNDOWN.as_ptr()) };
    // SAFETY: a static DPC in non-paged memory, not queued yet; the routine has the
    // KDEFERRED_ROUTINE signature.
    unsafe { imports::KeInitializeDpc(WAKE_DPC.as_ptr(), service_woken, ptr::null_mut()) };
    // SAFETY: once, before the waker (the only one that sets the timer before a handle exists)
    // is installed.
    unsafe { divert_timer::init() };
    engine.control().set_waker(Some(EventWakerRef::Static(&DPC_WAKER)));
}

/// Takes the waker out of the engine and waits until none of it runs any more: no `wake` call,
/// no DPC. Reports handle contexts still allocated (a leak: none should be left once every
/// handle is closed).
///
/// # IRQL
/// `PASSIVE_LEVEL` (`DriverUnload`, or a failed `DriverEntry`).
///
/// # Safety
/// Called once, after [`install_waker`], before the control device is deregistered and the
/// engine dropped.
pub unsafe fn remove_waker(engine: &Engine<KernelHal>) {
    engine.control().set_waker(None);
    // A wake that cloned the waker before it was removed may still be running: wait for it;
    // any later one fails to acquire the protection and does nothing.
    // SAFETY: initialised by `install_waker`; PASSIVE_LEVEL; run down once.
    unsafe { imports::ExWaitForRundownProtectionRelease(WAKE_RUNDOWN.as_ptr()) };
    // SAFETY: once, after `init` (in `install_waker`); no `divert_holding` runs any more, and the
    // flush below waits for a timer DPC already queued.
    unsafe { divert_timer::stop() };
    // SAFETY: PASSIVE_LEVEL. Returns once every DPC queued so far, ours included, has run.
    unsafe { imports::KeFlushQueuedDpcs() };
    let live = handles::live_contexts();
    if live != 0 {
        print(Level::Error, format_args!("unload: {live} control handle context(s) still allocated"));
    }
}

/// The DPC: services every handle woken since it last ran.
///
/// # IRQL
/// `DISPATCH_LEVEL`.
///
/// # Ownership
/// Holds a reference to each context while servicing it (its handle may be closed meanwhile);
/// completes the reads that found events.
///
/// # Safety
/// Called by the kernel only, as the routine of the wake DPC this module initialised, at
/// `DISPATCH_LEVEL`.
unsafe extern "system" fn service_woken(_dpc: *mut KDpc, _context: *mut c_void, _argument1: *mut c_void, _argument2: *mut c_void) {
    for (index, word) in WOKEN.iter().enumerate() {
        let mut bits = word.swap(0, Ordering::AcqRel);
        while bits != 0 {
            let slot = index * WORD_BITS + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Some(context) = handles::lookup(slot) {
                requests::service(&context);
            }
        }
    }
}

// The DPC routine has the kernel's type.
const _: wanlayer_ndis::kernel::KDeferredRoutine = service_woken;
