//! `DriverEntry`, `DriverUnload` and the driver's global state.
//!
//! ```text
//! DriverEntry                               DriverUnload (reverse order)
//!   1. DriverUnload = driver_unload
//!   2. engine = Engine::new(KernelHal),       6. remove the control waker: set_waker(None), wait
//!      then the saved rule set (registry)        out wakes in progress and the wake DPC
//!   3. NdisFRegisterFilterDriver   ──┐         5. deregister the control device
//!      (attaches may start here)     │
//!   4. the provider over the engine  │         4. revoke vendor registrations left, drop the
//!      (crate::provider::install)    │            provider (crate::provider::shutdown)
//!   5. the control waker             │         3. NdisFDeregisterFilterDriver (NDIS pauses and
//!      (control::install_waker)      │            detaches every module first)
//!   6. NdisRegisterDeviceEx          │         2. drop the engine, report pool charges not released
//! ```
//!
//! A failure at any step undoes the steps before it, in reverse order, and `DriverEntry` returns
//! the failure: the I/O manager does not call `DriverUnload` for a driver whose entry failed.
//!
//! # The global state
//!
//! The engine lives in a static cell, installed in `DriverEntry` *before* the filter registers
//! (NDIS may call `FilterAttach` during `NdisFRegisterFilterDriver`) and dropped in place in
//! `DriverUnload` *after* the filter deregistered and the control device is gone, so every
//! callback and dispatch routine finds it ([`engine`]). The module table is
//! [`crate::modules::MODULES`].

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use wanlayer_core::hal::{Level, OutOfMemory};
use wanlayer_core::{Engine, EngineConfig};
use wanlayer_ndis::io::{set_driver_unload, STATUS_INSUFFICIENT_RESOURCES, STATUS_SUCCESS};
use wanlayer_ndis::kernel::{DriverObject, NtStatus};
use wanlayer_ndis::sync::Global;
use wanlayer_ndis::types::{DeviceHandle, FilterDriverHandle, UnicodeString};

use crate::control::{self, ControlDevice};
use crate::filter;
use crate::hal::{self, KernelHal};
use crate::identity;
use crate::modules::MAX_MODULES;
use crate::platform::print;
use crate::provider;

/// The engine's configuration: as many module slots as the module table has.
pub static ENGINE_CONFIG: EngineConfig = EngineConfig { max_modules: MAX_MODULES, event_capacity: 1024 };

/// The engine, between `DriverEntry` and `DriverUnload`.
///
/// It holds `Engine::new`'s whole result, so the engine (a few KiB) is written straight into the
/// static ([`Global::set_with`]) and never copied through a stack frame: no frame reaches the 4 KiB
/// that would make rustc call `__chkstk`. A failed result is cleared at once.
static ENGINE: Global<Result<Engine<KernelHal>, OutOfMemory>> = Global::new();

/// Creates the engine in [`ENGINE`].
///
/// # Safety
/// Called once from `DriverEntry`, before any callback can run; the cell is empty.
#[inline(never)]
unsafe fn install_engine(hal: KernelHal, config: EngineConfig) -> Result<(), OutOfMemory> {
    // Called through a pointer so it is not inlined here: its frame (the engine's parts) and this
    // one stay separate, each under 4 KiB.
    let new: fn(KernelHal, EngineConfig) -> Result<Engine<KernelHal>, OutOfMemory> = Engine::new;
    // SAFETY: the caller's promise: the cell is empty and nobody else accesses it now.
    let installed = unsafe { ENGINE.set_with(|| core::hint::black_box(new)(hal, config)) };
    match installed {
        Ok(_) => Ok(()),
        Err(error) => {
            let error = *error;
            // SAFETY: nothing borrows the failed result any more (`installed` ends above) and no
            // callback can run yet.
            unsafe { ENGINE.clear() };
            Err(error)
        }
    }
}

/// Drops the engine in place.
///
/// # Safety
/// Called from `DriverUnload` (or a failed `DriverEntry`) once no handler, dispatch routine or
/// other code can reach the engine any more.
unsafe fn remove_engine() {
    // SAFETY: the caller's promise: nothing borrows the engine any more.
    unsafe { ENGINE.clear() };
}

/// The filter driver handle, between registration and deregistration.
static FILTER_DRIVER: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
/// The control device's handle, between its registration and deregistration.
static CONTROL_DEVICE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// The engine.
///
/// # Panics
/// Outside `DriverEntry`..`DriverUnload`: NDIS calls no filter handler and the I/O manager no
/// dispatch routine there, so this is a bug.
pub fn engine() -> &'static Engine<KernelHal> {
    match ENGINE.get() {
        Some(Ok(engine)) => engine,
        Some(Err(_)) | None => panic!("wanlayer handler called without an engine"),
    }
}

/// The driver's entry point: creates the engine, registers the filter and the control device.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// On failure everything created is undone before returning (no `DriverUnload` follows).
///
/// # Safety
/// Called by the I/O manager, once, with the driver's object and registry path.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(driver_object: *mut DriverObject, registry_path: *mut UnicodeString) -> NtStatus {
    // SAFETY: at PASSIVE_LEVEL, before the first allocation: from here on pool comes from
    // ExAllocatePool2 where this kernel has it (build 19041 on), else ExAllocatePoolWithTag.
    let pool2 = unsafe { wanlayer_ndis::pool::find_pool2() };
    print(Level::Info, format_args!("pool: {}", if pool2 { "ExAllocatePool2" } else { "ExAllocatePoolWithTag (before build 19041)" }));
    // SAFETY: our driver object, written in DriverEntry.
    unsafe { set_driver_unload(driver_object, driver_unload) };
    // SAFETY: the RegistryPath the I/O manager passed, valid during DriverEntry.
    unsafe { hal::registry::remember_service_key(registry_path) };
    // SAFETY: DriverEntry runs once, before the filter is registered: no callback can run yet.
    if unsafe { install_engine(KernelHal::new(None), ENGINE_CONFIG) }.is_err() {
        print(Level::Error, format_args!("no memory for the engine"));
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    // The saved rule set goes back in force before any traffic; a corrupt one is refused, logged
    // and reported as an event, and the filter starts with no rules: never a failed boot.
    let _saved = engine().load_saved_rules();

    // SAFETY: our driver object; the engine is installed for the attaches registration may start.
    let filter_driver = match unsafe { filter::register(driver_object) } {
        Ok(handle) => handle,
        Err(status) => {
            print(Level::Error, format_args!("NdisFRegisterFilterDriver failed: {status}"));
            // SAFETY: the filter is not registered: nothing can reach the engine.
            unsafe { remove_engine() };
            return status.0 as NtStatus;
        }
    };
    FILTER_DRIVER.store(filter_driver.as_raw(), Ordering::Release);
    // SAFETY: once, before the control device (the only way to the provider) exists; the engine
    // stays installed until after `provider::shutdown`.
    unsafe { provider::install(engine()) };

    // SAFETY: once, after Engine::new and before the control device (and so any handle that
    // could be woken) exists; removed before the device goes and the engine is dropped.
    unsafe { control::install_waker(engine()) };

    // SAFETY: the filter driver handle just registered; the engine and its waker are installed
    // until the device is deregistered.
    let control = match unsafe { control::register(filter_driver) } {
        Ok(control) => control,
        Err(status) => {
            print(Level::Error, format_args!("NdisRegisterDeviceEx failed: {:#010x}", status as u32));
            // SAFETY: installed above, removed once; no handle was ever opened.
            unsafe { control::remove_waker(engine()) };
            // SAFETY: the control device was never created: nothing reached the provider.
            unsafe { provider::shutdown() };
            FILTER_DRIVER.store(ptr::null_mut(), Ordering::Release);
            // SAFETY: registered above, deregistered once; NDIS detaches every module first.
            unsafe { filter::deregister(filter_driver) };
            // SAFETY: deregistration returned: no handler can run any more.
            unsafe { remove_engine() };
            return status;
        }
    };
    CONTROL_DEVICE.store(control.into_handle().as_raw(), Ordering::Release);
    print(
        Level::Info,
        format_args!("{} {} loaded: filter {}", identity::SERVICE_NAME, env!("CARGO_PKG_VERSION"), identity::FILTER_GUID),
    );
    STATUS_SUCCESS
}

/// `DRIVER_UNLOAD`: undoes `DriverEntry` in reverse order and reports pool charges the engine did
/// not release.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// The I/O manager calls it only once no handle to the control device is open and no file object
/// of it is referenced — vendor drivers hold one while registered, so normally no registration is
/// left (any that is gets revoked by `provider::shutdown`); NDIS detaches every module (after
/// pausing it) inside `NdisFDeregisterFilterDriver`, so nothing is outstanding when the engine is
/// dropped.
///
/// # Safety
/// Called by the I/O manager only, once, as this driver's `DriverUnload`, after a successful
/// `DriverEntry`.
unsafe extern "system" fn driver_unload(_driver_object: *mut DriverObject) {
    let control = CONTROL_DEVICE.swap(ptr::null_mut(), Ordering::AcqRel);
    if !control.is_null() {
        // SAFETY: DriverEntry installed the waker before it stored the device; removed once
        // (the device was swapped out above), before the device is deregistered and the engine
        // dropped.
        unsafe { control::remove_waker(engine()) };
        // SAFETY: the handle DriverEntry stored, taken back once (swapped out above).
        let control = unsafe { ControlDevice::from_handle(DeviceHandle::from_raw(control)) };
        // SAFETY: in DriverUnload, so no handle to the device is open; deregistered once.
        unsafe { control.deregister() };
    }
    // SAFETY: in DriverUnload, the control device gone: no request can reach the provider; the
    // engine (and every module) is still there for the revocation to hand packets on.
    unsafe { provider::shutdown() };
    let filter_driver = FILTER_DRIVER.swap(ptr::null_mut(), Ordering::AcqRel);
    if !filter_driver.is_null() {
        // SAFETY: the handle stored by DriverEntry, deregistered once (swapped out above).
        unsafe { filter::deregister(FilterDriverHandle::from_raw(filter_driver)) };
    }
    // SAFETY: the filter and the device are gone: no handler or dispatch routine can run.
    unsafe { remove_engine() };
    for usage in hal::pool_usage().filter(|usage| usage.current != 0) {
        print(
            Level::Error,
            format_args!("unload: {} bytes of {:?} still charged (peak {})", usage.current, usage.pool, usage.peak),
        );
    }
    print(Level::Info, format_args!("{} unloaded", identity::SERVICE_NAME));
}
