//! The data-path handlers: each turns NDIS's NBL chain into an [`NblChain`] and hands it to the
//! engine, which gives every NBL back exactly once through [`PacketIo`](wanlayer_core::hal::PacketIo).
//!
//! # Flags the engine does not carry
//!
//! [`PathContext`] carries the IRQL, the port and a send's `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`,
//! which goes down again with every NBL of that send. The other flags of a call — on sends the
//! single-queue/switch hints, on receives the single-EtherType/VLAN/queue hints — only describe a
//! chain as NDIS built it, and are dropped when the engine regroups the NBLs (NDIS treats them as
//! optional hints).

use core::ffi::c_void;
use core::ptr;

use wanlayer_core::hal::{Level, Log, PathContext};
use wanlayer_core::{Engine, ModuleId};
use wanlayer_driver_logic::lent::{self, Relink, RECORDED};
use wanlayer_ndis::lightweight_filter::{ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags};
use wanlayer_ndis::imports;
use wanlayer_ndis::nbl::{nbl_next_nbl, NetBufferList};
use wanlayer_ndis::types::{ContextHandle, PortNumber};
use wanlayer_ndis::{Nbl, NblChain};

use crate::driver::engine;
use crate::hal::packet_io::KernelChain;
use crate::hal::{current_context, KernelHal};
use crate::modules::module_entry;

/// `FILTER_SEND_NET_BUFFER_LISTS`: the engine sends each NBL down, completes it, or a hook holds it.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`; `NDIS_SEND_FLAGS_DISPATCH_LEVEL` says which.
///
/// # Ownership
/// The chain is the filter's until each NBL is sent down or completed, once.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterSendNetBufferLists` handler: `context` is
/// the module context `NdisFSetAttributes` was given, and `nbls` a null-terminated chain of valid
/// NBLs NDIS hands over.
pub(crate) unsafe extern "system" fn filter_send(
    context: ContextHandle,
    nbls: *mut NetBufferList,
    port: PortNumber,
    flags: SendFlags,
) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    // SAFETY: NDIS hands over a null-terminated chain of valid NBLs the filter now owns.
    let chain = KernelChain(unsafe { NblChain::from_raw(nbls) });
    let ctx = PathContext { at_dispatch: flags.at_dispatch(), port, check_for_loopback: flags.check_for_loopback() };
    engine().send(entry.module(), chain, ctx);
}

/// `FILTER_SEND_NET_BUFFER_LISTS_COMPLETE`: the protocol's NBLs go on up; the engine frees its own
/// and completes the originals they replaced.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`; `NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL` says which.
///
/// # Ownership
/// The completed NBLs are the filter's again until passed up or freed.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterSendNetBufferListsComplete` handler:
/// `context` is the module context `NdisFSetAttributes` was given, and `nbls` a null-terminated
/// chain of NBLs this module sent down, handed back.
pub(crate) unsafe extern "system" fn filter_send_complete(
    context: ContextHandle,
    nbls: *mut NetBufferList,
    flags: SendCompleteFlags,
) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    // SAFETY: NDIS hands back a null-terminated chain of NBLs this module sent down.
    let chain = KernelChain(unsafe { NblChain::from_raw(nbls) });
    engine().send_complete(entry.module(), chain, PathContext { at_dispatch: flags.at_dispatch(), ..PathContext::default() });
}

/// `FILTER_CANCEL_SEND_NET_BUFFER_LISTS`: sends hooks hold with this cancel identifier are completed
/// with `NDIS_STATUS_SEND_ABORTED`; the cancellation is then passed down for the ones already
/// sent (`NdisFCancelSendNetBufferLists`).
///
/// # IRQL
/// `<= DISPATCH_LEVEL` (no flag: the IRQL is read).
///
/// # Ownership
/// Only the NBLs the engine holds are touched; the identifier is NDIS's.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterCancelSendNetBufferLists` handler: `context`
/// is the module context `NdisFSetAttributes` was given.
pub(crate) unsafe extern "system" fn filter_cancel_send(context: ContextHandle, cancel_id: *mut c_void) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    engine().cancel_sends(entry.module(), |nbl: &Nbl| nbl.cancel_id() == cancel_id, current_context());
    // SAFETY: forwards the cancellation NDIS made, for this module, at <= DISPATCH_LEVEL.
    unsafe { imports::NdisFCancelSendNetBufferLists(entry.handles().filter, cancel_id) };
}

/// `FILTER_RECEIVE_NET_BUFFER_LISTS`: the engine indicates each NBL up, returns it, or a hook holds
/// it (a copy, when the NBLs are only lent).
///
/// # Restoring a lent chain
///
/// With `NDIS_RECEIVE_FLAGS_RESOURCES` the NBLs are NDIS's again when this returns, and must come
/// back as they came: same NBLs, same order, same `Next` links. Walking the chain and handing NBLs
/// on rewrites their `Next` links, so before the engine sees the chain the handler records it (the
/// NBL pointers in order, up to [`RECORDED`] of them, on the stack), and afterwards
/// ([`restore_lent`]) takes every NBL the engine gave back and links them as
/// [`lent::plan`] decides: the recorded links again (each NBL's `Next` to its original
/// successor, the last one's to null), or, for a chain longer than the record, the order the
/// engine returned them in, which is the original one by its contract (checked by the
/// simulator). A mismatch (an engine bug) is logged.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`; `NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL` says which.
///
/// # Ownership
/// Without the resources flag the chain is the filter's until each NBL is returned
/// (`NdisFReturnNetBufferLists`) once; with it, only for the duration of the call.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterReceiveNetBufferLists` handler: `context` is
/// the module context `NdisFSetAttributes` was given, and `nbls` a null-terminated chain of valid
/// NBLs, the filter's until returned (with `NDIS_RECEIVE_FLAGS_RESOURCES`, for the call).
pub(crate) unsafe extern "system" fn filter_receive(
    context: ContextHandle,
    nbls: *mut NetBufferList,
    port: PortNumber,
    count: u32,
    flags: ReceiveFlags,
) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    let module = entry.module();
    let resources = flags.resources();
    let ctx = PathContext { at_dispatch: flags.at_dispatch(), port, ..PathContext::default() };
    let mut recorded = [ptr::null_mut::<NetBufferList>(); RECORDED];
    let mut recorded_len = 0;
    if resources {
        let mut next = nbls;
        while !next.is_null() && recorded_len < RECORDED {
            recorded[recorded_len] = next;
            recorded_len += 1;
            // SAFETY: `next` is a member of the valid, null-terminated chain NDIS lent.
            next = unsafe { nbl_next_nbl(next) };
        }
    }
    // SAFETY: NDIS hands over a null-terminated chain of valid NBLs: the filter's until returned,
    // or (resources) for the duration of this call.
    let chain = KernelChain(unsafe { NblChain::from_raw(nbls) });
    let lent = chain.0.len();
    let engine = engine();
    if lent::count_disagrees(count, lent) {
        engine.hal().log(Level::Warning, format_args!("{module}: {count} NBLs indicated, {lent} in the chain"));
    }
    let KernelChain(back) = engine.receive(module, chain, resources, ctx);
    if resources {
        restore_lent(engine, module, back, &recorded[..recorded_len], lent);
    } else if !back.is_empty() {
        // The engine returns nothing without the resources flag; if it did, the NBLs still belong
        // to the miniport and go back to it.
        engine.hal().log(Level::Error, format_args!("{module}: the engine gave back {} owned receives", back.len()));
        let flags = if ctx.at_dispatch { ReturnFlags::DISPATCH_LEVEL } else { ReturnFlags::default() };
        let filter = KernelHal::filter_of(module);
        // SAFETY: the miniport's NBLs, returned once, at the IRQL the flag states.
        unsafe { imports::NdisFReturnNetBufferLists(filter, back.into_raw(), flags) };
    }
}

/// Hands a lent chain back to NDIS as it came (see [`filter_receive`]).
///
/// `recorded` is the original chain, whole when `lent <= RECORDED`, else its first [`RECORDED`]
/// NBLs.
fn restore_lent(engine: &Engine<KernelHal>, module: ModuleId, mut back: NblChain, recorded: &[*mut NetBufferList], lent: usize) {
    if recorded.len() < lent {
        // Longer than the record: only the count and the head are compared; the chain stays
        // linked as the engine gave it back.
        let head = back.front().map(Nbl::as_ptr);
        let (relink, fault) = lent::plan(lent, recorded, back.len(), head.as_slice());
        debug_assert_eq!(relink, Relink::AsReturned);
        if let Some(fault) = fault {
            engine.hal().log(Level::Error, format_args!("{module}: lent chain of {lent} came back changed: {fault:?}"));
        }
        // The NBLs are NDIS's again, linked in the order they came back.
        let _restored: *mut NetBufferList = back.into_raw();
        return;
    }
    let mut returned = [ptr::null_mut::<NetBufferList>(); RECORDED];
    let mut count = 0;
    while let Some(nbl) = back.pop_front() {
        if let Some(place) = returned.get_mut(count) {
            *place = nbl.into_raw().as_ptr();
        } else {
            // More than were lent: an engine bug; the NBL is NDIS's all the same.
            let _ = nbl.into_raw();
        }
        count += 1;
    }
    let (relink, fault) = lent::plan(lent, recorded, count, &returned[..count.min(RECORDED)]);
    if let Some(fault) = fault {
        engine.hal().log(Level::Error, format_args!("{module}: lent chain of {lent} came back changed: {fault:?}"));
    }
    let Relink::Order(order) = relink else { return };
    for (nbl, next) in lent::links(order, ptr::null_mut()) {
        // SAFETY: every NBL of `order` was lent for this call and is back from the engine, so the
        // filter may write its `Next` link before NDIS takes it back on return.
        unsafe { (*nbl).next = next };
    }
}

/// `FILTER_RETURN_NET_BUFFER_LISTS`: the miniport's NBLs go back to it; the engine frees its own
/// and returns the originals they replaced.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`; `NDIS_RETURN_FLAGS_DISPATCH_LEVEL` says which.
///
/// # Ownership
/// The returned NBLs are the filter's again until returned on or freed.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterReturnNetBufferLists` handler: `context` is
/// the module context `NdisFSetAttributes` was given, and `nbls` a null-terminated chain of NBLs
/// this module indicated, handed back.
pub(crate) unsafe extern "system" fn filter_return(context: ContextHandle, nbls: *mut NetBufferList, flags: ReturnFlags) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    // SAFETY: NDIS hands back a null-terminated chain of NBLs this module indicated.
    let chain = KernelChain(unsafe { NblChain::from_raw(nbls) });
    engine().return_receives(entry.module(), chain, PathContext { at_dispatch: flags.at_dispatch(), ..PathContext::default() });
}
