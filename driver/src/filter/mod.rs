//! The filter: its characteristics, and the handlers NDIS calls, each translated into one engine
//! call. What a handler decides (attach or not and as what, the status a pause or restart
//! returns, the route of a status indication, how a lent chain is linked again) is
//! [`wanlayer_driver_logic`], host-tested, and decided by the same functions in the simulator's
//! filter; the handlers here read NDIS's parameters and carry the decisions out.
//!
//! * this file: registration, attach (module kind detection), detach, restart, pause, PnP;
//! * [`datapath`]: send, send complete, cancel send, receive (with the lent-chain restore),
//!   return;
//! * [`status`]: status indications, WAN line up / line down;
//! * [`oid`]: OID requests passed down by cloning.
//!
//! Handlers that NDIS would otherwise bypass are all registered (revision 2 characteristics), so
//! the filter sees every path; `SetOptions`, `SetFilterModuleOptions` and the three direct-OID
//! handlers are left empty: the filter registers no optional services, never changes its handlers
//! per module, and has nothing to do with direct OIDs (NDIS bypasses the filter for them).
//!
//! # OIDs the filter originates
//!
//! None, on any module: the filter only passes the protocol's requests down. Field reports say OID
//! set requests on WAN miniports crash or break dialing (facts §3); the filter never makes one.

pub mod datapath;
pub mod oid;
pub mod status;

use wanlayer_core::hal::{Level, Log};
use wanlayer_core::{AttachParams, ModuleId, NdisStatus};
use wanlayer_driver_logic::attach::{self, AttachDecision};
use wanlayer_driver_logic::lifecycle::{pause_status, restart_status};
use wanlayer_ndis::lightweight_filter::{
    FilterAttachParameters, FilterAttributes, FilterDriverCharacteristics, FilterPauseParameters, FilterRestartParameters,
    NetDevicePnpEvent, NetPnpEventNotification, NDIS_FILTER_MAJOR_VERSION, NDIS_FILTER_MINOR_VERSION,
};
use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::DriverObject;
use wanlayer_ndis::nbl::NetBufferListPoolParameters;
use wanlayer_ndis::types::{
    object_type, ContextHandle, FilterDriverHandle, FilterModuleHandle, NdisHandle, NdisMedium, RawNdisStatus, UnicodeString,
};

use crate::driver::engine;
use crate::identity;
use crate::modules::{module_entry, ModuleEntry, ModuleHandles, MODULES};

/// `NDIS_STATUS_INVALID_PARAMETER` (`STATUS_INVALID_PARAMETER`): what an attach to a medium the
/// filter does not handle returns (the MS sample's choice); the filter is optional, so the adapter
/// works without it.
pub const NDIS_STATUS_INVALID_PARAMETER: NdisStatus = NdisStatus(0xC000_000D);

/// Pool tag of the module NBL pools: "WLnb".
pub const NBL_POOL_TAG: u32 = u32::from_le_bytes(*b"WLnb");

/// The driver's version as NDIS sees it (`MajorDriverVersion`/`MinorDriverVersion`).
const DRIVER_VERSION: (u8, u8) = crate::identity::NDIS_DRIVER_VERSION;

/// Registers the filter driver with every handler (revision 2 characteristics, NDIS 6.30).
///
/// # IRQL
/// `PASSIVE_LEVEL` (`DriverEntry`).
///
/// # Errors
/// The status `NdisFRegisterFilterDriver` failed with.
///
/// # Safety
/// `driver_object` is the driver object `DriverEntry` received, and the engine is running
/// ([`crate::driver`]): NDIS may call `FilterAttach` before this returns.
pub unsafe fn register(driver_object: *mut DriverObject) -> Result<FilterDriverHandle, NdisStatus> {
    let mut characteristics = FilterDriverCharacteristics {
        header: FilterDriverCharacteristics::HEADER,
        major_ndis_version: NDIS_FILTER_MAJOR_VERSION,
        minor_ndis_version: NDIS_FILTER_MINOR_VERSION,
        major_driver_version: DRIVER_VERSION.0,
        minor_driver_version: DRIVER_VERSION.1,
        flags: 0,
        friendly_name: identity::unicode(&identity::FRIENDLY_NAME_W),
        unique_name: identity::unicode(&identity::FILTER_GUID_W),
        service_name: identity::unicode(&identity::SERVICE_NAME_W),
        set_options: None,
        set_filter_module_options: None,
        attach: Some(filter_attach),
        detach: Some(filter_detach),
        restart: Some(filter_restart),
        pause: Some(filter_pause),
        send_net_buffer_lists: Some(datapath::filter_send),
        send_net_buffer_lists_complete: Some(datapath::filter_send_complete),
        cancel_send_net_buffer_lists: Some(datapath::filter_cancel_send),
        receive_net_buffer_lists: Some(datapath::filter_receive),
        return_net_buffer_lists: Some(datapath::filter_return),
        oid_request: Some(oid::filter_oid_request),
        oid_request_complete: Some(oid::filter_oid_request_complete),
        cancel_oid_request: Some(oid::filter_cancel_oid_request),
        device_pnp_event_notify: Some(filter_device_pnp_event_notify),
        net_pnp_event: Some(filter_net_pnp_event),
        status: Some(status::filter_status),
        direct_oid_request: None,
        direct_oid_request_complete: None,
        cancel_direct_oid_request: None,
    };
    let mut handle = FilterDriverHandle::NULL;
    // SAFETY: PASSIVE_LEVEL in DriverEntry with our driver object (caller's promise); the
    // characteristics are complete and their names point to static UTF-16; NDIS copies what it
    // keeps. The driver context is unused (handlers reach the engine through `crate::driver`).
    let status =
        unsafe { imports::NdisFRegisterFilterDriver(driver_object, ContextHandle::NULL, &mut characteristics, &mut handle) };
    match NdisStatus(status) {
        NdisStatus::SUCCESS if !handle.is_null() => Ok(handle),
        NdisStatus::SUCCESS => Err(NdisStatus::FAILURE),
        failure => Err(failure),
    }
}

/// Deregisters the filter driver; NDIS pauses and detaches every module first.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Safety
/// `handle` came from [`register`] and is deregistered once.
pub unsafe fn deregister(handle: FilterDriverHandle) {
    // SAFETY: the caller's promise; PASSIVE_LEVEL.
    unsafe { imports::NdisFDeregisterFilterDriver(handle) };
}

/// The UTF-16 units of a `UNICODE_STRING` NDIS passed (empty for null or an odd/oversized one).
///
/// # Safety
/// `name` is null or points to a `UNICODE_STRING` NDIS passed for the current call, whose buffer
/// holds `Length` bytes.
unsafe fn ndis_name<'a>(name: *const UnicodeString) -> &'a [u16] {
    // SAFETY: the caller's promise: null or valid for the call.
    let Some(name) = (unsafe { name.as_ref() }) else { return &[] };
    let units = usize::from(name.length / 2);
    if name.buffer.is_null() || units == 0 || !name.buffer.is_aligned() {
        return &[];
    }
    // SAFETY: a non-null, aligned buffer of `Length` bytes (caller's promise), not written during
    // the call.
    unsafe { core::slice::from_raw_parts(name.buffer.cast_const(), units) }
}

/// `FILTER_ATTACH`: a new module for one adapter.
///
/// Reads the attach parameters (medium, MAC, `BaseMiniportName`, `BaseMiniportIfIndex`), has
/// [`attach::decide`] refuse the medium or decide the module kind, attaches the module to the
/// engine (it ends Paused), creates its NBL pool, publishes its handles in the module table and
/// gives NDIS the table entry as the module context (`NdisFSetAttributes`). Any failure undoes the
/// steps before it.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// Nothing is sent or indicated during attach; the parameters are NDIS's, read during the call.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterAttach` handler: `filter` is the new
/// module's NDIS handle and `parameters` valid attach parameters for the call.
unsafe extern "system" fn filter_attach(
    filter: FilterModuleHandle,
    _driver_context: ContextHandle,
    parameters: *mut FilterAttachParameters,
) -> RawNdisStatus {
    let engine = engine();
    // SAFETY: NDIS passes valid attach parameters for the duration of FilterAttach.
    let Some(parameters) = (unsafe { parameters.as_ref() }) else { return NDIS_STATUS_INVALID_PARAMETER.0 };
    if parameters.header.object_type != object_type::FILTER_ATTACH_PARAMETERS {
        return NDIS_STATUS_INVALID_PARAMETER.0;
    }
    let medium = NdisMedium::from(parameters.miniport_media_type);
    // SAFETY: BaseMiniportName is null or NDIS's UNICODE_STRING, valid during FilterAttach.
    let name = unsafe { ndis_name(parameters.base_miniport_name) };
    let decision = attach::decide(medium, parameters.mac_address_length, &parameters.current_mac_address, name);
    let accepted = match decision {
        AttachDecision::Attach(accepted) => accepted,
        AttachDecision::RefuseMedium(medium) => {
            engine.hal().log(Level::Info, format_args!("attach refused: medium {medium:?}"));
            return NDIS_STATUS_INVALID_PARAMETER.0;
        }
    };
    let mac = accepted.mac;
    if let Some(warning) = accepted.warning {
        engine.hal().log(Level::Warning, format_args!("attach to {mac}: {warning}"));
    }
    let params = AttachParams { kind: accepted.kind, mac_address: mac, if_index: parameters.base_miniport_if_index };
    let module = match engine.attach(params) {
        Ok(module) => module,
        Err(error) => {
            engine.hal().log(Level::Error, format_args!("attach to {mac}: {error}"));
            return NdisStatus::RESOURCES.0;
        }
    };
    match attach_module(filter, module) {
        Ok(()) => NdisStatus::SUCCESS.0,
        Err(status) => {
            engine.hal().log(Level::Error, format_args!("{module}: attach failed with {status}"));
            if let Err(error) = engine.detach(module) {
                engine.hal().log(Level::Error, format_args!("{module}: undoing attach: {error}"));
            }
            status.0
        }
    }
}

/// The NDIS half of an attach: NBL pool, module table, `NdisFSetAttributes`; undone on failure.
fn attach_module(filter: FilterModuleHandle, module: ModuleId) -> Result<(), NdisStatus> {
    let mut pool_parameters = NetBufferListPoolParameters::with_net_buffer(NBL_POOL_TAG, 0);
    // SAFETY: PASSIVE_LEVEL, with the filter module handle of this attach and valid parameters.
    let pool = unsafe { imports::NdisAllocateNetBufferListPool(NdisHandle::from(filter), &mut pool_parameters) };
    if pool.is_null() {
        return Err(NdisStatus::RESOURCES);
    }
    let entry: &'static ModuleEntry = match MODULES.publish(module, ModuleHandles { filter, pool }) {
        Ok(entry) => entry,
        Err(_) => {
            // SAFETY: the pool was just allocated and holds no NBL.
            unsafe { imports::NdisFreeNetBufferListPool(pool) };
            return Err(NdisStatus::RESOURCES);
        }
    };
    let mut attributes = FilterAttributes::new();
    // SAFETY: PASSIVE_LEVEL in FilterAttach, with this attach's handle; the context is the module's
    // table entry, static for the driver's life.
    let status = NdisStatus(unsafe { imports::NdisFSetAttributes(filter, entry.context(), &mut attributes) });
    if status != NdisStatus::SUCCESS {
        let _ = MODULES.retire(module);
        // SAFETY: the pool holds no NBL (nothing was sent or indicated).
        unsafe { imports::NdisFreeNetBufferListPool(pool) };
        return Err(status);
    }
    Ok(())
}

/// `FILTER_DETACH`: the module is Paused; the engine forgets it, its handles leave the table and
/// its NBL pool is freed.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// Nothing is outstanding: the pause that preceded the detach waited for every NBL the module
/// originated, so the pool is empty.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterDetach` handler, once per module, after its
/// pause completed: `context` is the module context `NdisFSetAttributes` was given.
unsafe extern "system" fn filter_detach(context: ContextHandle) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    let module = entry.module();
    let engine = engine();
    if let Err(error) = engine.detach(module) {
        engine.hal().log(Level::Error, format_args!("detach: {error}"));
    }
    if let Some(handles) = MODULES.retire(module) {
        // SAFETY: the module's pool; every NBL from it came back before the pause completed.
        unsafe { imports::NdisFreeNetBufferListPool(handles.pool) };
    }
}

/// `FILTER_RESTART`: Paused → Running.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// Data may flow once this returns success.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterRestart` handler, for a paused module:
/// `context` is the module context `NdisFSetAttributes` was given.
unsafe extern "system" fn filter_restart(context: ContextHandle, _parameters: *mut FilterRestartParameters) -> RawNdisStatus {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    let restarted = engine().restart(entry.module());
    if let Err(error) = &restarted {
        engine().hal().log(Level::Error, format_args!("restart: {error}"));
    }
    restart_status(&restarted).0
}

/// `FILTER_PAUSE`: must succeed, eventually. Packets hooks hold are completed or returned; the
/// pause completes now, or later through `NdisFPauseComplete` once every NBL the module
/// originated is back (the engine calls [`PauseCompletion`](wanlayer_core::hal::PauseCompletion)
/// once).
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// From this call on the module originates nothing; sends are completed with
/// `NDIS_STATUS_PAUSED`.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterPause` handler, for a running module:
/// `context` is the module context `NdisFSetAttributes` was given.
unsafe extern "system" fn filter_pause(context: ContextHandle, _parameters: *mut FilterPauseParameters) -> RawNdisStatus {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    let engine = engine();
    let paused = engine.pause(entry.module());
    if let Err(error) = &paused {
        engine.hal().log(Level::Error, format_args!("pause: {error}"));
    }
    pause_status(&paused).0
}

/// `FILTER_NET_PNP_EVENT`: passed on unchanged (`NdisFNetPnPEvent`).
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// The event is NDIS's; its status is the status of the drivers below.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterNetPnPEvent` handler: `context` is the
/// module context `NdisFSetAttributes` was given, and `event` a valid notification for the call.
unsafe extern "system" fn filter_net_pnp_event(context: ContextHandle, event: *mut NetPnpEventNotification) -> RawNdisStatus {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    // SAFETY: forwards NDIS's event for this module at PASSIVE_LEVEL, as received.
    unsafe { imports::NdisFNetPnPEvent(entry.handles().filter, event) }
}

/// `FILTER_DEVICE_PNP_EVENT_NOTIFY`: passed on unchanged (`NdisFDevicePnPEventNotify`).
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Ownership
/// The event is NDIS's.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterDevicePnPEventNotify` handler: `context` is
/// the module context `NdisFSetAttributes` was given, and `event` a valid notification for the
/// call.
unsafe extern "system" fn filter_device_pnp_event_notify(context: ContextHandle, event: *mut NetDevicePnpEvent) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    // SAFETY: forwards NDIS's event for this module at PASSIVE_LEVEL, as received.
    unsafe { imports::NdisFDevicePnPEventNotify(entry.handles().filter, event) };
}
