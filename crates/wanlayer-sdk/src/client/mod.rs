//! The vendor side of the interface, on any platform: a validated [`ProviderTable`], the
//! [`Provider`] handle a filter reinjects and queries through, the [`Packet`] view, and
//! [`Registration`], which registers a [`VendorFilter`] through the table's C functions — the
//! C-ABI callbacks over the trait are in `trampoline`.
//!
//! Where the table comes from is the platform's business: `kernel::Connection` asks
//! wanlayer.sys for it with an internal device control (in the kernel, and on the host from
//! wanlayer.sys's handlers over the kernel model); this crate's tests take it from a
//! `provider::Host`'s answer. Everything after that is this module, identical in all.

mod packet;
mod trampoline;

use core::ffi::c_void;
use core::marker::PhantomData;
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::abi::{self, FilterHandle, LinkInfo, Status, Ticket};
use crate::heap::Pinned;
use crate::vendor_filter::{ReinjectVerdict, VendorFilter};

pub use packet::Packet;

/// The table's functions, every one present (checked by [`ProviderTable::from_answer`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Functions {
    register_filter: abi::RegisterFilterFn,
    deregister_filter: abi::DeregisterFilterFn,
    reinject: abi::ReinjectFn,
    query_links: abi::QueryLinksFn,
    query_time: abi::QueryTimeFn,
    pub(crate) packet_length: abi::PacketLengthFn,
    pub(crate) packet_read: abi::PacketReadFn,
    pub(crate) packet_write: abi::PacketWriteFn,
    pub(crate) packet_replace: abi::PacketReplaceFn,
    pub(crate) packet_ticket: abi::PacketTicketFn,
}

/// The provider interface wanlayer handed out, checked: the version is one this SDK speaks, the
/// provider pointer and every function are present.
///
/// `'p` is how long the provider stays loaded: as long as the kernel `Connection` keeps its
/// reference on wanlayer's control device (in the kernel and with the driver in the loop), as long
/// as the host that answered lives (this crate's tests).
#[derive(Clone, Copy, Debug)]
pub struct ProviderTable<'p> {
    provider: *mut c_void,
    version: u32,
    functions: Functions,
    _provider: PhantomData<&'p ()>,
}

// SAFETY: the interface's functions may be called from any processor at the IRQLs they document,
// with the provider pointer they were handed out with; the table itself is plain copied data.
unsafe impl Send for ProviderTable<'_> {}
// SAFETY: as above; nothing in the table is ever mutated.
unsafe impl Sync for ProviderTable<'_> {}

/// The request this SDK sends for the table ([`abi::PROVIDER_VERSION`]).
pub fn request() -> abi::ProviderRequest {
    abi::ProviderRequest::current()
}

impl<'p> ProviderTable<'p> {
    /// Checks what `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` wrote: `written` bytes into `raw`.
    ///
    /// # Errors
    /// [`Status::INFO_LENGTH_MISMATCH`] for a table shorter than this version's,
    /// [`Status::REVISION_MISMATCH`] for a version this SDK does not speak,
    /// [`Status::INVALID_PARAMETER`] for a null provider or function.
    ///
    /// # Safety
    /// `raw` was written by a wanlayer provider that stays loaded for `'p`: the provider pointer
    /// and the functions are valid for as long.
    pub unsafe fn from_answer(raw: &abi::ProviderTable, written: usize) -> Result<Self, Status> {
        let needed = size_of::<abi::ProviderTable>();
        if written < needed || (raw.size as usize) < needed {
            return Err(Status::INFO_LENGTH_MISMATCH);
        }
        if !(abi::PROVIDER_VERSION_MIN..=abi::PROVIDER_VERSION).contains(&raw.version) {
            return Err(Status::REVISION_MISMATCH);
        }
        let functions = (|| {
            Some(Functions {
                register_filter: raw.register_filter?,
                deregister_filter: raw.deregister_filter?,
                reinject: raw.reinject?,
                query_links: raw.query_links?,
                query_time: raw.query_time?,
                packet_length: raw.packet_length?,
                packet_read: raw.packet_read?,
                packet_write: raw.packet_write?,
                packet_replace: raw.packet_replace?,
                packet_ticket: raw.packet_ticket?,
            })
        })();
        match functions {
            Some(functions) if !raw.provider.is_null() => {
                Ok(Self { provider: raw.provider, version: raw.version, functions, _provider: PhantomData })
            }
            _ => Err(Status::INVALID_PARAMETER),
        }
    }

    /// The interface version wanlayer serves.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Registers `filter` as `name` at `altitude` (higher is closer to the IP layer).
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// [`Status::INVALID_PARAMETER`] for an empty name or one longer than
    /// [`abi::FILTER_NAME_MAX`] bytes; [`Status::INSUFFICIENT_RESOURCES`] when the
    /// registration's state cannot be allocated; whatever `RegisterFilter` refused with
    /// ([`Status::QUOTA_EXCEEDED`], [`Status::DEVICE_REMOVED`], ...).
    pub fn register<F: VendorFilter>(&self, name: &str, altitude: u32, filter: F) -> Result<Registration<'p, F>, Status> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > abi::FILTER_NAME_MAX as usize {
            return Err(Status::INVALID_PARAMETER);
        }
        let mut raw_name = [0u8; abi::FILTER_NAME_MAX as usize];
        raw_name[..bytes.len()].copy_from_slice(bytes);
        let inner = Pinned::try_new(Inner {
            filter,
            table: self.erased(),
            handle: AtomicU64::new(0),
            revoked: AtomicBool::new(false),
        })
        .map_err(|_| Status::INSUFFICIENT_RESOURCES)?;
        let registration = abi::FilterRegistration {
            size: size_of::<abi::FilterRegistration>() as u32,
            version: self.version,
            name: raw_name,
            altitude,
            flags: 0,
            context: inner.as_ptr().cast_mut().cast(),
            on_line_up: Some(trampoline::line_up::<F>),
            on_line_down: Some(trampoline::line_down::<F>),
            on_send: Some(trampoline::send::<F>),
            on_receive: Some(trampoline::receive::<F>),
            on_provider_unload: Some(trampoline::provider_unload::<F>),
        };
        // SAFETY: the provider's own function with its provider pointer (valid for 'p: the
        // constructor's promise); the registration and the handle slot outlive the call, and
        // the context (the `Inner`) outlives the registration: `Registration` holds it until it
        // has deregistered, and on failure the provider keeps no reference to it.
        let status = unsafe { (self.functions.register_filter)(self.provider, &registration, inner.handle.as_ptr()) };
        if status.is_success() {
            Ok(Registration { inner, table: *self, active: true })
        } else {
            Err(status)
        }
    }

    /// Lists the live links into `out`; returns how many links there are (more than `out` holds
    /// when it was too short: the first `out.len()` are written).
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// The status `QueryLinks` failed with.
    pub fn links(&self, out: &mut [LinkInfo]) -> Result<usize, Status> {
        let capacity = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let mut count = 0u32;
        // SAFETY: the provider's own function (valid for 'p); `out` holds `capacity` elements
        // of `size_of::<LinkInfo>()` bytes, `count` outlives the call.
        let status = unsafe {
            (self.functions.query_links)(
                self.provider,
                out.as_mut_ptr(),
                capacity,
                size_of::<LinkInfo>() as u32,
                &mut count,
            )
        };
        if status.is_success() || status == Status::BUFFER_OVERFLOW {
            Ok(count as usize)
        } else {
            Err(status)
        }
    }

    /// wanlayer's monotonic clock, in nanoseconds (virtual time in the simulator).
    pub fn now(&self) -> u64 {
        // SAFETY: the provider's own function with its provider pointer (valid for 'p).
        unsafe { (self.functions.query_time)(self.provider) }
    }

    fn erased(&self) -> ProviderTable<'static> {
        ProviderTable { provider: self.provider, version: self.version, functions: self.functions, _provider: PhantomData }
    }

    fn reinject(&self, filter: FilterHandle, ticket: Ticket, verdict: ReinjectVerdict) -> Result<(), Status> {
        // SAFETY: the provider's own function (valid for 'p); the ticket outlives the call.
        let status = unsafe { (self.functions.reinject)(self.provider, filter, &ticket, verdict.to_raw()) };
        if status.is_success() {
            Ok(())
        } else {
            Err(status)
        }
    }

    fn deregister(&self, filter: FilterHandle) -> Status {
        // SAFETY: the provider's own function (valid for 'p), at PASSIVE_LEVEL (the callers').
        unsafe { (self.functions.deregister_filter)(self.provider, filter) }
    }
}

/// A registered filter's handle on the interface: reinject what it took, list links, read the
/// clock. Cheap to copy; a copy kept after deregistration gets [`Status::INVALID_HANDLE`].
#[derive(Clone, Copy, Debug)]
pub struct Provider<'p> {
    table: ProviderTable<'p>,
    filter: FilterHandle,
}

impl<'p> Provider<'p> {
    /// The filter's handle.
    pub fn handle(&self) -> FilterHandle {
        self.filter
    }

    /// The table.
    pub fn table(&self) -> &ProviderTable<'p> {
        &self.table
    }

    /// Hands back a packet the filter took.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`, from a callback too (but never while holding a lock a callback takes).
    ///
    /// # Errors
    /// [`Status::NOT_FOUND`]: no packet is held under the ticket (reinjected already, or completed
    /// by wanlayer at a pause, a line down or deregistration); [`Status::INVALID_HANDLE`]: the
    /// filter is not registered; [`Status::DEVICE_REMOVED`]: wanlayer revoked the registration.
    pub fn reinject(&self, ticket: Ticket, verdict: ReinjectVerdict) -> Result<(), Status> {
        self.table.reinject(self.filter, ticket, verdict)
    }

    /// [`ProviderTable::links`].
    ///
    /// # Errors
    /// The status `QueryLinks` failed with.
    pub fn links(&self, out: &mut [LinkInfo]) -> Result<usize, Status> {
        self.table.links(out)
    }

    /// [`ProviderTable::now`].
    pub fn now(&self) -> u64 {
        self.table.now()
    }
}

/// What the table's callbacks get as their context: the filter and how to reach the provider.
pub(crate) struct Inner<F> {
    pub(crate) filter: F,
    pub(crate) table: ProviderTable<'static>,
    pub(crate) handle: AtomicU64,
    pub(crate) revoked: AtomicBool,
}

impl<F> Inner<F> {
    /// The filter's provider handle, for a callback (the provider is loaded while it runs).
    pub(crate) fn provider(&self) -> Provider<'_> {
        Provider { table: self.table, filter: self.handle.load(Ordering::Acquire) }
    }
}

/// A registered [`VendorFilter`]. Dropping it deregisters (at `PASSIVE_LEVEL`).
pub struct Registration<'p, F: VendorFilter> {
    inner: Pinned<Inner<F>>,
    table: ProviderTable<'p>,
    active: bool,
}

impl<'p, F: VendorFilter> Registration<'p, F> {
    /// The filter.
    pub fn filter(&self) -> &F {
        &self.inner.filter
    }

    /// The filter's handle on the provider.
    pub fn provider(&self) -> Provider<'p> {
        Provider { table: self.table, filter: self.handle() }
    }

    /// The filter's handle.
    pub fn handle(&self) -> FilterHandle {
        self.inner.handle.load(Ordering::Acquire)
    }

    /// True once wanlayer revoked the registration (its `on_provider_unload` ran).
    pub fn is_revoked(&self) -> bool {
        self.inner.revoked.load(Ordering::Acquire)
    }

    /// Deregisters: returns once no callback of the filter runs and every packet it took has been
    /// handed on. A revoked registration has nothing left to undo.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`, never from a callback of the filter.
    ///
    /// # Errors
    /// The status `DeregisterFilter` failed with.
    pub fn deregister(mut self) -> Result<(), Status> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), Status> {
        if !core::mem::replace(&mut self.active, false) || self.is_revoked() {
            return Ok(());
        }
        match self.table.deregister(self.handle()) {
            status if status.is_success() => Ok(()),
            // Revoked between the check and the call: the provider already undid everything.
            Status::DEVICE_REMOVED => Ok(()),
            status => Err(status),
        }
    }
}

impl<F: VendorFilter> Drop for Registration<'_, F> {
    fn drop(&mut self) {
        // A failure leaves nothing to retry: the handle is stale or the provider is gone.
        let _ = self.finish();
    }
}

impl<F: VendorFilter> core::fmt::Debug for Registration<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registration")
            .field("handle", &self.handle())
            .field("revoked", &self.is_revoked())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// A table with no provider and no function, for tests to fill in.
#[cfg(test)]
pub(crate) fn null_table() -> abi::ProviderTable {
    abi::ProviderTable {
        size: size_of::<abi::ProviderTable>() as u32,
        version: abi::PROVIDER_VERSION,
        provider: core::ptr::null_mut(),
        register_filter: None,
        deregister_filter: None,
        reinject: None,
        query_links: None,
        query_time: None,
        packet_length: None,
        packet_read: None,
        packet_write: None,
        packet_replace: None,
        packet_ticket: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr;

    unsafe extern "system" fn register(_: *mut c_void, _: *const abi::FilterRegistration, _: *mut FilterHandle) -> Status {
        Status::SUCCESS
    }
    unsafe extern "system" fn deregister(_: *mut c_void, _: FilterHandle) -> Status {
        Status::SUCCESS
    }
    unsafe extern "system" fn reinject(_: *mut c_void, _: FilterHandle, _: *const Ticket, _: u32) -> Status {
        Status::SUCCESS
    }
    unsafe extern "system" fn query_links(_: *mut c_void, _: *mut LinkInfo, _: u32, _: u32, _: *mut u32) -> Status {
        Status::SUCCESS
    }
    unsafe extern "system" fn query_time(_: *mut c_void) -> u64 {
        7
    }
    unsafe extern "system" fn length(_: *const abi::RawPacket) -> u32 {
        0
    }
    unsafe extern "system" fn read(_: *const abi::RawPacket, _: u32, _: *mut c_void, _: u32) -> u32 {
        0
    }
    unsafe extern "system" fn write(_: *mut abi::RawPacket, _: u32, _: *const c_void, _: u32) -> Status {
        Status::SUCCESS
    }
    unsafe extern "system" fn replace(_: *mut abi::RawPacket, _: *const c_void, _: u32) -> Status {
        Status::SUCCESS
    }
    unsafe extern "system" fn ticket(_: *const abi::RawPacket, _: *mut Ticket) -> Status {
        Status::SUCCESS
    }

    fn full_table() -> abi::ProviderTable {
        static PROVIDER: u8 = 0;
        abi::ProviderTable {
            provider: ptr::from_ref(&PROVIDER).cast_mut().cast(),
            register_filter: Some(register),
            deregister_filter: Some(deregister),
            reinject: Some(reinject),
            query_links: Some(query_links),
            query_time: Some(query_time),
            packet_length: Some(length),
            packet_read: Some(read),
            packet_write: Some(write),
            packet_replace: Some(replace),
            packet_ticket: Some(ticket),
            ..null_table()
        }
    }

    #[test]
    fn a_complete_table_of_this_version_is_accepted() {
        let raw = full_table();
        // SAFETY: the test's functions ignore the provider pointer; they live for 'static.
        let table = unsafe { ProviderTable::from_answer(&raw, size_of::<abi::ProviderTable>()) }.expect("accepted");
        assert_eq!(table.version(), abi::PROVIDER_VERSION);
        assert_eq!(table.now(), 7);
    }

    #[test]
    fn short_foreign_or_incomplete_tables_are_refused_with_a_clear_status() {
        let full = size_of::<abi::ProviderTable>();
        let check = |raw: abi::ProviderTable, written: usize| {
            // SAFETY: as above; a refused table is never called.
            unsafe { ProviderTable::from_answer(&raw, written) }.map(|_| ()).unwrap_err()
        };
        assert_eq!(check(full_table(), full - 8), Status::INFO_LENGTH_MISMATCH);
        assert_eq!(check(abi::ProviderTable { size: 40, ..full_table() }, full), Status::INFO_LENGTH_MISMATCH);
        assert_eq!(check(abi::ProviderTable { version: 2, ..full_table() }, full), Status::REVISION_MISMATCH);
        assert_eq!(check(abi::ProviderTable { version: 0, ..full_table() }, full), Status::REVISION_MISMATCH);
        assert_eq!(check(abi::ProviderTable { reinject: None, ..full_table() }, full), Status::INVALID_PARAMETER);
        assert_eq!(check(abi::ProviderTable { provider: ptr::null_mut(), ..full_table() }, full), Status::INVALID_PARAMETER);
    }

    struct Quiet;
    impl VendorFilter for Quiet {}

    #[test]
    fn names_are_checked_before_anything_is_registered() {
        let raw = full_table();
        // SAFETY: as above.
        let table = unsafe { ProviderTable::from_answer(&raw, size_of::<abi::ProviderTable>()) }.expect("accepted");
        assert_eq!(table.register("", 1, Quiet).unwrap_err(), Status::INVALID_PARAMETER);
        let long = "x".repeat(abi::FILTER_NAME_MAX as usize + 1);
        assert_eq!(table.register(&long, 1, Quiet).unwrap_err(), Status::INVALID_PARAMETER);
        let exact = "y".repeat(abi::FILTER_NAME_MAX as usize);
        let registration = table.register(&exact, 1, Quiet).expect("a name of exactly the maximum fits");
        assert_eq!(registration.deregister(), Ok(()));
    }

    #[test]
    fn a_registration_without_memory_fails_with_insufficient_resources() {
        let raw = full_table();
        // SAFETY: as above.
        let table = unsafe { ProviderTable::from_answer(&raw, size_of::<abi::ProviderTable>()) }.expect("accepted");
        let refused = crate::heap::tests::refusing(|| table.register("starved", 1, Quiet).err());
        assert_eq!(refused, Some(Status::INSUFFICIENT_RESOURCES));
        let registration = table.register("fed", 1, Quiet).expect("registers once memory is back");
        assert_eq!(registration.deregister(), Ok(()));
    }
}
