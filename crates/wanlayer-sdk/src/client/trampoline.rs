//! The C-ABI callbacks a [`Registration`](super::Registration) hands the provider, each turning
//! the C call into one [`VendorFilter`] call. Their context is the registration's `Inner<F>`.
//!
//! # Safety
//! Every function here relies on the provider's promise (the interface contract): `context` is
//! the pointer given at registration, and the callbacks stop before `DeregisterFilter` returns or
//! `OnProviderUnload` is called — which is before `Registration` lets go of the `Inner`. The
//! pointers a callback is given are valid for the call.

use core::ffi::c_void;
use core::sync::atomic::Ordering;

use crate::abi::{LinkInfo, RawPacket};
use crate::vendor_filter::{Direction, VendorFilter};

use super::{Inner, Packet};

/// The registration's `Inner` behind a callback's context.
///
/// # Safety
/// `context` is the context of a live registration of a `VendorFilter` of type `F`.
unsafe fn inner<'a, F>(context: *mut c_void) -> &'a Inner<F> {
    // SAFETY: the caller's promise: the context points to a live `Inner<F>`.
    unsafe { &*context.cast::<Inner<F>>() }
}

/// `WL_LINE_UP_CALLBACK`.
///
/// # Safety
/// The module's contract: `context` is the context of a live registration of a `VendorFilter` of
/// type `F`, and the pointers passed are valid for the call.
pub(super) unsafe extern "system" fn line_up<F: VendorFilter>(context: *mut c_void, link: *const LinkInfo) -> u32 {
    // SAFETY: the module's contract: the context of a live registration of `F`.
    let inner = unsafe { inner::<F>(context) };
    // SAFETY: null or the link the provider passes for the duration of the call.
    match unsafe { link.as_ref() } {
        Some(link) => inner.filter.on_line_up(&inner.provider(), link).unwrap_or(0),
        None => 0,
    }
}

/// `WL_LINE_DOWN_CALLBACK`.
///
/// # Safety
/// The module's contract: `context` is the context of a live registration of a `VendorFilter` of
/// type `F`, and the pointers passed are valid for the call.
pub(super) unsafe extern "system" fn line_down<F: VendorFilter>(context: *mut c_void, link: *const LinkInfo) {
    // SAFETY: the module's contract.
    let inner = unsafe { inner::<F>(context) };
    // SAFETY: null or the link the provider passes for the duration of the call.
    if let Some(link) = unsafe { link.as_ref() } {
        inner.filter.on_line_down(&inner.provider(), link);
    }
}

/// `WL_PACKET_CALLBACK` for sends.
///
/// # Safety
/// The module's contract: `context` is the context of a live registration of a `VendorFilter` of
/// type `F`, and the pointers passed are valid for the call.
pub(super) unsafe extern "system" fn send<F: VendorFilter>(context: *mut c_void, packet: *mut RawPacket, link: *const LinkInfo) -> u32 {
    // SAFETY: forwarded under the same contract.
    unsafe { packet_callback::<F>(Direction::Send, context, packet, link) }
}

/// `WL_PACKET_CALLBACK` for receives.
///
/// # Safety
/// The module's contract: `context` is the context of a live registration of a `VendorFilter` of
/// type `F`, and the pointers passed are valid for the call.
pub(super) unsafe extern "system" fn receive<F: VendorFilter>(context: *mut c_void, packet: *mut RawPacket, link: *const LinkInfo) -> u32 {
    // SAFETY: forwarded under the same contract.
    unsafe { packet_callback::<F>(Direction::Receive, context, packet, link) }
}

/// A packet callback: a null packet or link (a provider bug) passes the packet.
///
/// # Safety
/// The module's contract.
unsafe fn packet_callback<F: VendorFilter>(direction: Direction, context: *mut c_void, packet: *mut RawPacket, link: *const LinkInfo) -> u32 {
    // SAFETY: the module's contract.
    let inner = unsafe { inner::<F>(context) };
    // SAFETY: null or the link the provider passes for the duration of the call.
    let Some(link) = (unsafe { link.as_ref() }) else { return crate::abi::VERDICT_PASS };
    if packet.is_null() {
        return crate::abi::VERDICT_PASS;
    }
    let provider = inner.provider();
    // SAFETY: the packet of this callback, with the packet functions of the provider that made
    // the call; the view does not outlive this function.
    let mut view = unsafe { Packet::new(&inner.table.functions, packet, link, direction) };
    let verdict = match direction {
        Direction::Send => inner.filter.on_send(&provider, &mut view),
        Direction::Receive => inner.filter.on_receive(&provider, &mut view),
    };
    verdict.to_raw()
}

/// `WL_PROVIDER_UNLOAD_CALLBACK`: marks the registration revoked (so it never calls the table
/// again), then tells the filter.
///
/// # Safety
/// The module's contract: `context` is the context of a live registration of a `VendorFilter` of
/// type `F`, and the pointers passed are valid for the call.
pub(super) unsafe extern "system" fn provider_unload<F: VendorFilter>(context: *mut c_void) {
    // SAFETY: the module's contract (the provider calls this once, after the last callback).
    let inner = unsafe { inner::<F>(context) };
    inner.revoked.store(true, Ordering::Release);
    inner.filter.on_provider_unload();
}
