//! The provider side: [`Host`], the implementation behind the function table wanlayer hands to
//! vendor drivers, over the [`Engine`] and generic over its platform.
//!
//! wanlayer.sys keeps one `Host<KernelHal>` in a static and answers
//! `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` with [`Host::answer`] (in the scenario tests too: the
//! driver in the loop, over the kernel model); this crate's tests keep a host over an engine on a
//! minimal platform (`tests/provider_table.rs`, which Miri runs). Every table function is a generic
//! `extern "system"` function over the platform (`table.rs`), so the code a kernel vendor calls is
//! the code the tests run.
//!
//! # Registrations
//!
//! A registered filter is one engine hook: an adapter (`hook::VendorHook`) that calls the
//! vendor's C callbacks. There are [`abi::MAX_FILTERS`] slots, each with an adapter that exists
//! before any registration ([`HookAdapters`], a `static` in the kernel, so neither creating the
//! provider nor registering allocates) and a generation, so a
//! handle names one registration and goes stale when it ends:
//!
//! ```text
//!  Free ──RegisterFilter──▶ Registering ──hook added──▶ Active ──DeregisterFilter──▶ Closing ──▶ Free
//!                                                          └──────revoke_all (unload)───┘
//! ```
//!
//! # Unload
//!
//! A vendor keeps its reference on the control device's file object while it holds the table,
//! and the I/O manager does not call wanlayer's `DriverUnload` while a file object of its device
//! is referenced: wanlayer cannot unload under a registered vendor. Should a vendor break that
//! contract, [`Host::revoke_all`] (called from `DriverUnload` before anything is torn down)
//! removes every remaining registration — waiting until none of its callbacks runs, handing on
//! what it took — calls its `OnProviderUnload`, and from then on every table call answers
//! [`Status::DEVICE_REMOVED`].

mod hook;
mod packet_functions;
mod table;

use core::mem::size_of;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wanlayer_core::hal::{Hal, Lock, PathContext};
use wanlayer_core::hook::{HookId, HookRef};
use wanlayer_core::Engine;

use crate::abi::{self, FilterHandle, LinkInfo, Status};
use hook::{Callbacks, VendorHook};

/// Filter slots: [`abi::MAX_FILTERS`].
const SLOTS: usize = abi::MAX_FILTERS as usize;

const _: () = assert!(SLOTS <= wanlayer_core::hook::MAX_HOOKS, "every registration is an engine hook");
const _: () = assert!(abi::FILTER_NAME_MAX as usize == wanlayer_core::hook::HOOK_NAME_MAX, "names are never cut");

/// What the provider needs from the platform beyond the engine's [`Hal`]: the truth about the
/// caller's IRQL, for calls that come from a vendor rather than from NDIS (a reinjection from a
/// vendor's timer DPC, or from a thread at `PASSIVE_LEVEL`).
pub trait CallerContext: Hal {
    /// The path context of a call made now, outside any NDIS callback.
    fn caller_context(&self) -> PathContext;
}

/// Where a registration slot is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotState {
    /// Unused.
    Free,
    /// Claimed by `RegisterFilter`; the hook is being added.
    Registering,
    /// Registered as this engine hook.
    Active(HookId),
    /// Being removed (deregistration or revocation).
    Closing,
}

/// One registration slot.
#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u32,
    state: SlotState,
}

/// What the provider did, for tools and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct HostCounts {
    /// Filters registered now.
    pub registered: usize,
    /// Tables handed out.
    pub tables_served: u64,
    /// Table requests refused (version, size, flags, revoked).
    pub requests_refused: u64,
    /// Successful registrations.
    pub registrations: u64,
    /// Refused registrations.
    pub registrations_refused: u64,
    /// Deregistrations.
    pub deregistrations: u64,
    /// Registrations revoked by [`Host::revoke_all`].
    pub revocations: u64,
    /// Verdicts that were no `WL_VERDICT_*` value (the packet passed).
    pub invalid_verdicts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    tables_served: AtomicU64,
    requests_refused: AtomicU64,
    registrations: AtomicU64,
    registrations_refused: AtomicU64,
    deregistrations: AtomicU64,
    revocations: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The engine hooks of a provider's [`abi::MAX_FILTERS`] registration slots, as a `static` of the
/// kernel image: [`HookAdapters::new`] is `const`, so they take no allocation at all.
pub struct HookAdapters([VendorHook; SLOTS]);

impl HookAdapters {
    /// Disarmed adapters, one per registration slot.
    pub const fn new() -> Self {
        Self([const { VendorHook::new() }; SLOTS])
    }
}

impl Default for HookAdapters {
    fn default() -> Self {
        Self::new()
    }
}

impl HookAdapters {
    /// Slot `index`'s adapter.
    fn get(&self, index: usize) -> &VendorHook {
        &self.0[index]
    }

    /// Slot `index`'s adapter as the engine holds it.
    fn engine_hook(&'static self, index: usize) -> HookRef {
        HookRef::Static(&self.0[index])
    }
}

/// The provider behind the function table, over an engine.
///
/// # IRQL
/// As each table function documents: registration and deregistration at `PASSIVE_LEVEL`, the rest
/// at `<= DISPATCH_LEVEL`.
pub struct Host<'e, H: CallerContext> {
    engine: &'e Engine<H>,
    slots: H::Lock<[Slot; SLOTS]>,
    hooks: &'static HookAdapters,
    revoked: AtomicBool,
    counters: Counters,
}

impl<'e, H: CallerContext> Host<'e, H> {
    /// A provider over `engine`, with no registration, whose hook adapters are `adapters` (a
    /// `static` of the image): creating it allocates nothing, and registering allocates nothing
    /// either — the kernel's constructor.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL` (driver entry).
    pub fn with_static_adapters(engine: &'e Engine<H>, hooks: &'static HookAdapters) -> Self {
        Self {
            engine,
            slots: engine.hal().new_lock([Slot { generation: 0, state: SlotState::Free }; SLOTS]),
            hooks,
            revoked: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &'e Engine<H> {
        self.engine
    }

    /// Answers `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE`: checks the request and writes the table;
    /// returns the status and the bytes written (`IoStatus.Information`).
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Safety
    /// `request` is null or readable for `request_len` bytes, `table` null or writable for
    /// `table_len` bytes; and this `Host` stays where it is (the table points to it) for as long
    /// as the caller may use the table.
    pub unsafe fn answer(&self, request: *const abi::ProviderRequest, request_len: usize, table: *mut abi::ProviderTable, table_len: usize) -> (Status, usize) {
        // SAFETY: the caller's promise about `request` and `request_len`.
        let checked = unsafe { self.check_request(request, request_len, table_len) }.and_then(|version| {
            if table.is_null() {
                Err(Status::INVALID_PARAMETER)
            } else {
                Ok(version)
            }
        });
        let version = match checked {
            Ok(version) => version,
            Err(status) => {
                count(&self.counters.requests_refused);
                return (status, 0);
            }
        };
        // SAFETY: non-null and writable for `table_len >= size_of::<ProviderTable>()` bytes (the
        // caller's promise, checked); unaligned writes accept any caller buffer.
        unsafe { table.write_unaligned(table::table(self, version)) };
        count(&self.counters.tables_served);
        (Status::SUCCESS, size_of::<abi::ProviderTable>())
    }

    /// The version a request asks for, if it may be served.
    ///
    /// # Safety
    /// `request` is null or readable for `request_len` bytes.
    unsafe fn check_request(&self, request: *const abi::ProviderRequest, request_len: usize, table_len: usize) -> Result<u32, Status> {
        if request.is_null() {
            return Err(Status::INVALID_PARAMETER);
        }
        if request_len < size_of::<abi::ProviderRequest>() {
            return Err(Status::INFO_LENGTH_MISMATCH);
        }
        // SAFETY: readable for at least a first-version request (the caller's promise, checked).
        let request = unsafe { request.read_unaligned() };
        if (request.size as usize) < size_of::<abi::ProviderRequest>() || table_len < size_of::<abi::ProviderTable>() {
            return Err(Status::INFO_LENGTH_MISMATCH);
        }
        if !(abi::PROVIDER_VERSION_MIN..=abi::PROVIDER_VERSION).contains(&request.version) {
            return Err(Status::REVISION_MISMATCH);
        }
        if request.flags != 0 || request.reserved != 0 {
            return Err(Status::INVALID_PARAMETER);
        }
        if self.revoked.load(Ordering::Acquire) {
            return Err(Status::DEVICE_REMOVED);
        }
        Ok(request.version)
    }

    /// Registers a filter whose registration was read and checked by the table function;
    /// `publish` receives the handle before the hook is added (so before any callback).
    fn register(&self, registration: &abi::FilterRegistration, name: &str, publish: impl FnOnce(FilterHandle)) -> Status {
        let status = self.try_register(registration, name, publish);
        match status {
            Status::SUCCESS => count(&self.counters.registrations),
            _ => count(&self.counters.registrations_refused),
        }
        status
    }

    fn try_register(&self, registration: &abi::FilterRegistration, name: &str, publish: impl FnOnce(FilterHandle)) -> Status {
        if self.revoked.load(Ordering::Acquire) {
            return Status::DEVICE_REMOVED;
        }
        let claimed = self.slots.with(|slots| {
            let index = slots.iter().position(|slot| slot.state == SlotState::Free)?;
            let slot = &mut slots[index];
            slot.generation = match slot.generation.wrapping_add(1) {
                0 => 1,
                next => next,
            };
            slot.state = SlotState::Registering;
            Some((index, slot.generation))
        });
        let Some((index, generation)) = claimed else { return Status::QUOTA_EXCEEDED };
        publish(handle(index, generation));
        let adapter = self.hooks.get(index);
        // SAFETY: the slot is Registering, claimed by this call alone: its adapter is in no chain
        // and no call of it is in progress (the previous registration's removal returned before
        // the slot was freed).
        unsafe { adapter.arm(Callbacks::of(registration)) };
        let added = self.engine.add_hook(name, registration.altitude, self.hooks.engine_hook(index));
        let Ok(id) = added else {
            // SAFETY: the hook was not added and the slot is still this call's (Registering).
            unsafe { adapter.disarm() };
            self.free(index);
            return Status::QUOTA_EXCEEDED;
        };
        let revoked_meanwhile = self.slots.with(|slots| {
            let revoked = self.revoked.load(Ordering::Acquire);
            slots[index].state = if revoked { SlotState::Closing } else { SlotState::Active(id) };
            revoked
        });
        if revoked_meanwhile {
            let _ = self.engine.remove_hook(id);
            // SAFETY: `remove_hook` returned (no call in progress, none to come) and the slot is
            // Closing, this call's alone until freed.
            unsafe { adapter.disarm() };
            self.free(index);
            return Status::DEVICE_REMOVED;
        }
        Status::SUCCESS
    }

    /// Deregisters: returns once no callback of the filter runs and what it took is handed on.
    fn deregister(&self, filter: FilterHandle) -> Status {
        if self.revoked.load(Ordering::Acquire) {
            return Status::DEVICE_REMOVED;
        }
        let claimed = self.slots.with(|slots| {
            let index = slot_of(slots, filter).ok_or(Status::INVALID_HANDLE)?;
            match slots[index].state {
                SlotState::Active(id) => {
                    slots[index].state = SlotState::Closing;
                    Ok((index, id))
                }
                SlotState::Registering => Err(Status::DEVICE_BUSY),
                SlotState::Free | SlotState::Closing => Err(Status::INVALID_HANDLE),
            }
        });
        let (index, id) = match claimed {
            Ok(claimed) => claimed,
            Err(status) => return status,
        };
        // Waits for the filter's calls in progress and hands on every packet it holds.
        let _ = self.engine.remove_hook(id);
        // SAFETY: `remove_hook` returned (no call in progress, none to come) and the slot is
        // Closing, this call's alone until freed.
        unsafe { self.hooks.get(index).disarm() };
        self.free(index);
        count(&self.counters.deregistrations);
        Status::SUCCESS
    }

    fn free(&self, index: usize) {
        self.slots.with(|slots| slots[index].state = SlotState::Free);
    }

    /// Hands back a taken packet.
    fn reinject(&self, filter: FilterHandle, ticket: &abi::Ticket, verdict: u32) -> Status {
        if self.revoked.load(Ordering::Acquire) {
            return Status::DEVICE_REMOVED;
        }
        let Some(verdict) = crate::vendor_filter::ReinjectVerdict::from_raw(verdict) else { return Status::INVALID_PARAMETER };
        if ticket.reserved != 0 {
            return Status::INVALID_PARAMETER;
        }
        let taker = match self.slots.with(|slots| slot_of(slots, filter).map(|index| slots[index].state)) {
            Some(SlotState::Active(hook)) => hook,
            // Deregistration hands on everything the filter held: nothing is left to reinject.
            Some(SlotState::Closing) => return Status::NOT_FOUND,
            Some(SlotState::Free | SlotState::Registering) | None => return Status::INVALID_HANDLE,
        };
        let verdict = match verdict {
            crate::vendor_filter::ReinjectVerdict::Pass => wanlayer_core::ReinjectVerdict::Pass,
            crate::vendor_filter::ReinjectVerdict::Drop => wanlayer_core::ReinjectVerdict::Drop,
        };
        let ticket = wanlayer_core::hook::Ticket { module: wanlayer_core::ModuleId(ticket.module), serial: ticket.serial };
        match self.engine.reinject_as(taker, ticket, verdict, self.engine.hal().caller_context()) {
            Ok(()) => Status::SUCCESS,
            // Another vendor's packet: not this filter's to hand on or drop.
            Err(wanlayer_core::ReinjectError::NotTaker(_)) => Status::ACCESS_DENIED,
            Err(_) => Status::NOT_FOUND,
        }
    }

    /// Visits every live link of every NdisWan module.
    fn visit_links(&self, mut visit: impl FnMut(&LinkInfo)) {
        for module in self.engine.modules().filter(|module| module.kind.is_wan()) {
            self.engine.visit_links(module.id, |link| visit(&hook::link_info(&link.summary())));
        }
    }

    /// Revokes every registration: what wanlayer's `DriverUnload` does before it tears anything
    /// down. Each remaining filter is removed from the chain (waiting until none of its callbacks
    /// runs; what it took is handed on), then its `OnProviderUnload` is called; from now on every
    /// table function answers [`Status::DEVICE_REMOVED`] and no table is handed out. Returns how
    /// many registrations were revoked.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    pub fn revoke_all(&self) -> usize {
        self.revoked.store(true, Ordering::Release);
        let mut revoked = 0;
        for index in 0..SLOTS {
            let active = self.slots.with(|slots| match slots[index].state {
                SlotState::Active(id) => {
                    slots[index].state = SlotState::Closing;
                    Some(id)
                }
                _ => None,
            });
            let Some(id) = active else { continue };
            let _ = self.engine.remove_hook(id);
            self.hooks.get(index).provider_unload();
            // SAFETY: `remove_hook` returned (no call in progress, none to come) and the slot is
            // Closing, this revocation's alone until freed.
            unsafe { self.hooks.get(index).disarm() };
            self.free(index);
            count(&self.counters.revocations);
            revoked += 1;
        }
        // A registration or deregistration that was in progress finishes on its own (it sees the
        // revocation); wait for it so nothing of a filter runs once this returns.
        let settled = || self.slots.with(|slots| slots.iter().all(|slot| slot.state == SlotState::Free));
        self.engine.hal().wait_until(&settled);
        revoked
    }

    /// True once [`Host::revoke_all`] ran.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    /// What the provider did.
    pub fn counts(&self) -> HostCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        HostCounts {
            registered: self.slots.with(|slots| slots.iter().filter(|slot| matches!(slot.state, SlotState::Active(_))).count()),
            tables_served: load(&self.counters.tables_served),
            requests_refused: load(&self.counters.requests_refused),
            registrations: load(&self.counters.registrations),
            registrations_refused: load(&self.counters.registrations_refused),
            deregistrations: load(&self.counters.deregistrations),
            revocations: load(&self.counters.revocations),
            invalid_verdicts: (0..SLOTS).map(|index| self.hooks.get(index).invalid_verdicts()).sum(),
        }
    }
}

/// The handle of slot `index` in its `generation`: never zero (generations start at 1).
fn handle(index: usize, generation: u32) -> FilterHandle {
    (u64::from(generation) << 16) | index as u64
}

/// The slot a handle names, if its generation is the slot's current one.
fn slot_of(slots: &[Slot; SLOTS], filter: FilterHandle) -> Option<usize> {
    let index = (filter & 0xFFFF) as usize;
    let generation = u32::try_from(filter >> 16).ok()?;
    (generation != 0 && slots.get(index)?.generation == generation).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_name_one_generation_of_one_slot() {
        let mut slots = [Slot { generation: 0, state: SlotState::Free }; SLOTS];
        slots[3].generation = 7;
        assert_eq!(slot_of(&slots, handle(3, 7)), Some(3));
        assert_eq!(slot_of(&slots, handle(3, 6)), None, "an older generation is stale");
        assert_eq!(slot_of(&slots, handle(SLOTS, 7)), None, "no such slot");
        assert_eq!(slot_of(&slots, 0), None, "zero is never a handle");
        assert_eq!(slot_of(&slots, u64::MAX), None);
        assert_ne!(handle(0, 1), 0);
    }
}
