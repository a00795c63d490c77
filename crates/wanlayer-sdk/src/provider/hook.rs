//! [`VendorHook`]: the engine hook behind one registration, calling the vendor's C callbacks.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

use wanlayer_core::hook::{Hook, PacketContext, Verdict};
use wanlayer_core::link::LinkSummary;

use crate::abi::{self, LinkInfo, RawPacket};

/// The vendor's callbacks and context, as registered.
#[derive(Clone, Copy, Debug)]
pub(super) struct Callbacks {
    context: *mut c_void,
    on_line_up: Option<abi::LineUpCallback>,
    on_line_down: Option<abi::LineDownCallback>,
    on_send: Option<abi::PacketCallback>,
    on_receive: Option<abi::PacketCallback>,
    on_provider_unload: Option<abi::ProviderUnloadCallback>,
}

impl Callbacks {
    pub(super) fn of(registration: &abi::FilterRegistration) -> Self {
        Self {
            context: registration.context,
            on_line_up: registration.on_line_up,
            on_line_down: registration.on_line_down,
            on_send: registration.on_send,
            on_receive: registration.on_receive,
            on_provider_unload: registration.on_provider_unload,
        }
    }
}

/// One registration slot's engine hook.
///
/// The callbacks are written ([`VendorHook::arm`], [`VendorHook::disarm`], both `unsafe`: their
/// callers keep this protocol) only while the hook is in no chain and none of its calls is in
/// progress: by the provider, between claiming the slot and adding the hook, and after
/// `remove_hook` returned, with the slot in a state no other registration call touches. Adding the
/// hook (under the engine's hook lock, which every chain snapshot also takes) orders the write
/// before every call.
pub(super) struct VendorHook {
    callbacks: UnsafeCell<Option<Callbacks>>,
    invalid_verdicts: AtomicU64,
}

impl Default for VendorHook {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: the callbacks cell follows the protocol above: written only while no other processor
// can read it, read only while it is not written. The vendor's context pointer and callbacks may
// be used from any processor: the interface contract (callbacks are called at <= DISPATCH_LEVEL,
// on any processor, concurrently).
unsafe impl Sync for VendorHook {}
// SAFETY: as above; moving the hook moves plain data.
unsafe impl Send for VendorHook {}

impl VendorHook {
    /// A disarmed hook (`const`: the kernel's live in a `static`).
    pub(super) const fn new() -> Self {
        Self { callbacks: UnsafeCell::new(None), invalid_verdicts: AtomicU64::new(0) }
    }

    /// Installs a registration's callbacks.
    ///
    /// # Safety
    /// Nothing reads or writes the callbacks meanwhile: the hook is in no engine chain, none of its
    /// calls is in progress, and the caller alone arms or disarms it (it holds the slot in
    /// `Registering`, `Closing`, or before it is freed).
    pub(super) unsafe fn arm(&self, callbacks: Callbacks) {
        // SAFETY: the caller's promise: no other access to the cell now.
        unsafe { *self.callbacks.get() = Some(callbacks) };
    }

    /// Forgets the callbacks.
    ///
    /// # Safety
    /// As for [`VendorHook::arm`]: the hook left the chain (`remove_hook` returned, or it was never
    /// added), no call of it is in progress, and the caller alone arms or disarms it.
    pub(super) unsafe fn disarm(&self) {
        // SAFETY: the caller's promise: no other access to the cell now.
        unsafe { *self.callbacks.get() = None };
    }

    fn callbacks(&self) -> Option<Callbacks> {
        // SAFETY: the protocol: read during a call (or by the provider) while nothing writes.
        unsafe { *self.callbacks.get() }
    }

    /// Calls the registration's `OnProviderUnload`, if it has one (revocation, `PASSIVE_LEVEL`).
    pub(super) fn provider_unload(&self) {
        if let Some(callbacks) = self.callbacks() {
            if let Some(unload) = callbacks.on_provider_unload {
                // SAFETY: the vendor's callback with its context (interface contract).
                unsafe { unload(callbacks.context) };
            }
        }
    }

    /// Verdicts that were no `WL_VERDICT_*` value.
    pub(super) fn invalid_verdicts(&self) -> u64 {
        self.invalid_verdicts.load(Ordering::Relaxed)
    }

    fn packet(&self, packet: &mut PacketContext<'_>, pick: impl FnOnce(&Callbacks) -> Option<abi::PacketCallback>) -> Verdict {
        let Some(callbacks) = self.callbacks() else { return Verdict::Pass };
        let Some(callback) = pick(&callbacks) else { return Verdict::Pass };
        let link = link_info(packet.link());
        let raw = ptr::from_mut(packet).cast::<RawPacket>();
        // SAFETY: the vendor's callback with its context; `raw` is this packet context, which the
        // table's packet functions turn back into one, valid for the call (interface contract).
        let verdict = unsafe { callback(callbacks.context, raw, &link) };
        match crate::vendor_filter::Verdict::from_raw(verdict) {
            Some(crate::vendor_filter::Verdict::Pass) => Verdict::Pass,
            Some(crate::vendor_filter::Verdict::Drop) => Verdict::Drop,
            Some(crate::vendor_filter::Verdict::Modify) => Verdict::Modify,
            Some(crate::vendor_filter::Verdict::Take) => Verdict::Take,
            None => {
                self.invalid_verdicts.fetch_add(1, Ordering::Relaxed);
                Verdict::Pass
            }
        }
    }
}

impl Hook for VendorHook {
    fn on_line_up(&self, link: &LinkSummary) -> Option<u32> {
        let callbacks = self.callbacks()?;
        let callback = callbacks.on_line_up?;
        let info = link_info(link);
        // SAFETY: the vendor's callback with its context; the link outlives the call.
        let size = unsafe { callback(callbacks.context, &info) };
        (size != 0).then_some(size)
    }

    fn on_line_down(&self, link: &LinkSummary) {
        let Some(callbacks) = self.callbacks() else { return };
        if let Some(callback) = callbacks.on_line_down {
            let info = link_info(link);
            // SAFETY: the vendor's callback with its context; the link outlives the call.
            unsafe { callback(callbacks.context, &info) };
        }
    }

    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.packet(packet, |callbacks| callbacks.on_send)
    }

    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.packet(packet, |callbacks| callbacks.on_receive)
    }
}

/// A link as the interface describes it.
pub(super) fn link_info(link: &LinkSummary) -> LinkInfo {
    LinkInfo {
        link_id: link.id.0,
        module: link.module.0,
        link_speed_100bps: link.link_speed_100bps,
        maximum_total_size: link.maximum_total_size,
        reported_total_size: link.reported_total_size,
        protocol_type: u16::from(link.protocol_type),
        remote_address: link.remote_address.0,
        local_address: link.local_address.0,
        reserved: 0,
    }
}
