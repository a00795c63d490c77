//! The kernel driver around [`ClampFilter`]: `DriverEntry`, `DriverUnload`, the release timer,
//! and the runtime a Rust kernel driver needs (allocator, panic handler, the two symbols `core`
//! references), all from `wanlayer_sdk::kernel`.
//!
//! ```text
//! DriverEntry                                   DriverUnload
//!   1. DriverUnload = driver_unload               1. stop the timer (KeCancelTimer, and
//!   2. attach::attach: open \Device\WanLayer         KeFlushQueuedDpcs: no release runs after)
//!      (waiting up to 10 s for wanlayer), ask for  2. detach: deregister (returns once no
//!      the table, register "wlclamp" at 300          callback runs and every queued send was
//!   3. start the timer: every 10 ms its DPC          handed on by wanlayer), then let go of the
//!      calls ClampFilter::release                    reference on \Device\WanLayer
//! ```
//!
//! # The release timer
//!
//! A periodic `KTIMER` (10 ms) with a `KDPC`, started once the registration exists and stopped
//! before it is removed: simple, and correct whatever the traffic — a queue is never left waiting
//! for a packet that does not come. A link's rate is therefore enforced at 10 ms granularity
//! (Windows' timer resolution is coarser by default anyway, 15.6 ms): a queue head is released at
//! the first tick after its tokens are there, never early. The DPC runs at `DISPATCH_LEVEL`,
//! where reinjection is allowed.

use core::panic::PanicInfo;

use wanlayer_sdk::kernel::{
    bug_check, find_pool2, print, set_driver_unload, Attachment, DriverObject, Global, NtStatus, PeriodicTimer, PoolAllocator, Severity,
    UnicodeString,
};
use wanlayer_sdk::Status;

use crate::{attach, ClampFilter, Config, ALTITUDE, FILTER_NAME, SERVICE_NAME};

/// The pool tag of the driver's allocations: "WLcl" in `!poolused`.
const POOL_TAG: u32 = u32::from_le_bytes(*b"WLcl");
/// The bug-check code of a panic: "WLCL" as a big-endian value, recognisable in a dump.
const BUGCHECK: u32 = u32::from_be_bytes(*b"WLCL");
/// How long `DriverEntry` waits for wanlayer to appear.
const CONNECT_WAIT_MS: u32 = 10_000;
/// The release timer's period.
const TICK_MS: u32 = 10;

#[global_allocator]
static ALLOCATOR: PoolAllocator<POOL_TAG> = PoolAllocator::new();

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    bug_check(BUGCHECK, info)
}

/// Referenced by `core::fmt` (floating point formatting) although the driver does no floating
/// point; defined as windows-drivers-rs does.
// SAFETY: the MSVC floating-point marker symbol; no other crate of this image defines it.
#[unsafe(no_mangle)]
pub static _fltused: () = ();

/// Referenced by the unwind tables of the precompiled `core` even with `panic = "abort"`; never
/// called (nothing unwinds). Defined as windows-drivers-rs does, but `extern "C"`: on x86
/// `"system"` is stdcall and would name it `___CxxFrameHandler3@0`, which `core` does not call.
// SAFETY: the MSVC C++ frame handler symbol; no other crate of this image defines it.
#[unsafe(no_mangle)]
pub extern "C" fn __CxxFrameHandler3() -> i32 {
    0
}

/// The registration and its connection, between `DriverEntry` and `DriverUnload`.
static ATTACHMENT: Global<Attachment<ClampFilter>> = Global::new();
/// The release timer: its DPC calls [`tick`].
static TIMER: PeriodicTimer = PeriodicTimer::new(tick);

/// The driver's entry point: registers the filter with wanlayer and starts the release timer.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Safety
/// Called by the I/O manager, once, with the driver's object and registry path.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(driver_object: *mut DriverObject, _registry_path: *mut UnicodeString) -> NtStatus {
    // SAFETY: at PASSIVE_LEVEL, before the first allocation: pool from ExAllocatePool2 where the
    // kernel has it (build 19041 on), else ExAllocatePoolWithTag.
    unsafe { find_pool2() };
    // SAFETY: our driver object, written in DriverEntry.
    unsafe { set_driver_unload(driver_object, driver_unload) };
    let attachment = match attach::attach(Config::DEFAULT, CONNECT_WAIT_MS) {
        Ok(attachment) => attachment,
        Err(status) => {
            print(Severity::Error, SERVICE_NAME, format_args!("cannot register with wanlayer: {status}"));
            return status.0;
        }
    };
    let version = attachment.provider().table().version();
    // SAFETY: once, before the timer (the only other reader) starts.
    unsafe { ATTACHMENT.set(attachment) };
    TIMER.start(TICK_MS);
    print(
        Severity::Info,
        SERVICE_NAME,
        format_args!("registered as '{FILTER_NAME}' at altitude {ALTITUDE} (provider interface {version})"),
    );
    Status::SUCCESS.0
}

/// The timer's DPC: releases the queued sends whose tokens are there.
fn tick() {
    if let Some(attachment) = ATTACHMENT.get() {
        attach::release(attachment);
    }
}

/// `DRIVER_UNLOAD`: stops the timer, then deregisters and lets go of wanlayer.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Safety
/// Called by the I/O manager only, once, as this driver's `DriverUnload`, after a successful
/// `DriverEntry`.
unsafe extern "system" fn driver_unload(_driver_object: *mut DriverObject) {
    TIMER.stop();
    // SAFETY: the timer is stopped (no DPC runs or will run) and the filter's callbacks only use
    // the filter, not the global: nothing reads the global any more.
    let Some(attachment) = (unsafe { ATTACHMENT.take() }) else { return };
    let stats = attachment.filter().stats();
    if let Err(status) = attachment.detach() {
        print(Severity::Error, SERVICE_NAME, format_args!("deregistration failed: {status}"));
    }
    print(
        Severity::Info,
        SERVICE_NAME,
        format_args!(
            "unloaded: {} SYN(s) clamped, {} passed, {} queued, {} released, {} dropped (queue full), {} stale",
            stats.clamped, stats.passed, stats.queued, stats.released, stats.dropped_queue_full, stats.stale
        ),
    );
}
