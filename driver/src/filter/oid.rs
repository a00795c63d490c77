//! OID requests: passed down by cloning, the NDIS filter contract (facts §4), as Microsoft's LWF
//! sample does it.
//!
//! `FilterOidRequest` clones the request (`NdisAllocateCloneOidRequest`), keeps the original in the
//! clone's `SourceReserved`, copies `RequestId` and passes the clone down (`NdisFOidRequest`). A
//! clone that completes at once is finished there (results copied back, clone freed) and the
//! status returned, so the original completes synchronously; a pending one is finished in
//! `FilterOidRequestComplete`, which completes the original (`NdisFOidRequestComplete`).
//! `FilterCancelOidRequest` passes the cancellation down with the same `RequestId` (the clone
//! carries it).
//!
//! The filter originates no OID request of its own ([`super`]).

use core::ffi::c_void;
use core::ptr;

use wanlayer_core::NdisStatus;
use wanlayer_ndis::lightweight_filter::NdisOidRequest;
use wanlayer_ndis::imports;
use wanlayer_ndis::oid::{clone_original, copy_results, set_clone_original};
use wanlayer_ndis::types::{ContextHandle, FilterModuleHandle, RawNdisStatus};

use crate::modules::module_entry;

/// Pool tag of cloned OID requests: "WLoi".
pub const OID_CLONE_TAG: u32 = u32::from_le_bytes(*b"WLoi");

/// `FILTER_OID_REQUEST`.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
///
/// # Ownership
/// The original is the filter's until it is completed: by the status returned here (anything but
/// `NDIS_STATUS_PENDING`), or by `NdisFOidRequestComplete` once the clone completes.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterOidRequest` handler: `context` is the module
/// context `NdisFSetAttributes` was given, and `request` a valid `NDIS_OID_REQUEST`, NDIS's until
/// the filter completes it.
pub(crate) unsafe extern "system" fn filter_oid_request(context: ContextHandle, request: *mut NdisOidRequest) -> RawNdisStatus {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    let filter = entry.handles().filter;
    let mut clone: *mut NdisOidRequest = ptr::null_mut();
    // SAFETY: `request` is NDIS's valid request for this module; the clone is allocated for it.
    let status = NdisStatus(unsafe { imports::NdisAllocateCloneOidRequest(filter, request, OID_CLONE_TAG, &mut clone) });
    if status != NdisStatus::SUCCESS || clone.is_null() {
        return NdisStatus::RESOURCES.0;
    }
    // SAFETY: the clone was just allocated and is ours until passed down.
    unsafe { set_clone_original(clone, request) };
    // SAFETY: `request` is valid for reads for this call.
    let request_id = unsafe { (*request).request_id };
    // SAFETY: the clone is ours until passed down.
    unsafe { (*clone).request_id = request_id };
    // SAFETY: the clone is complete and passed down once; from here it is NDIS's until it completes.
    let status = NdisStatus(unsafe { imports::NdisFOidRequest(filter, clone) });
    if status == NdisStatus::PENDING {
        return status.0;
    }
    // SAFETY: completed synchronously: the clone is ours again, made above for this module.
    let _original = unsafe { finish_clone(filter, clone) };
    status.0
}

/// Copies a completed clone's results into its original, frees the clone, returns the original.
///
/// # Safety
/// `clone` was made by [`filter_oid_request`] for the module whose handle is `filter`, and has
/// completed (it is the filter's again); it is not used afterwards.
unsafe fn finish_clone(filter: FilterModuleHandle, clone: *mut NdisOidRequest) -> *mut NdisOidRequest {
    // SAFETY: the clone carries its original in SourceReserved (set before it went down).
    let original = unsafe { clone_original(clone) };
    // SAFETY: both are valid; the original is still the filter's (not completed yet).
    unsafe { copy_results(original, clone) };
    // SAFETY: a clone NdisAllocateCloneOidRequest made for this module, completed, freed once.
    unsafe { imports::NdisFreeCloneOidRequest(filter, clone) };
    original
}

/// `FILTER_OID_REQUEST_COMPLETE`: a clone passed down completed.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
///
/// # Ownership
/// The clone is the filter's again: results are copied to the original, the clone freed, the
/// original completed, once.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterOidRequestComplete` handler: `context` is
/// the module context `NdisFSetAttributes` was given, and `request` a clone this module passed down
/// with `NdisFOidRequest`.
pub(crate) unsafe extern "system" fn filter_oid_request_complete(
    context: ContextHandle,
    clone: *mut NdisOidRequest,
    status: RawNdisStatus,
) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    let filter = entry.handles().filter;
    // SAFETY: NDIS completes only requests this filter passed down: our clones.
    let original = unsafe { finish_clone(filter, clone) };
    // SAFETY: the original pended (FilterOidRequest returned PENDING) and is completed once.
    unsafe { imports::NdisFOidRequestComplete(filter, original, status) };
}

/// `FILTER_CANCEL_OID_REQUEST`: passed down; the clone carries the original's `RequestId`, so the
/// driver below can match it. A request already completed is not found there, harmlessly.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
///
/// # Ownership
/// Nothing changes hands: the request completes through the usual path.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterCancelOidRequest` handler: `context` is the
/// module context `NdisFSetAttributes` was given.
pub(crate) unsafe extern "system" fn filter_cancel_oid_request(context: ContextHandle, request_id: *mut c_void) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    // SAFETY: forwards NDIS's cancellation for this module at <= DISPATCH_LEVEL.
    unsafe { imports::NdisFCancelOidRequest(entry.handles().filter, request_id) };
}
