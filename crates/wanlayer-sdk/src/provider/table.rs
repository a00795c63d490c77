//! The table wanlayer hands out and the `extern "system"` functions behind it, generic over the
//! platform: each checks the C caller's pointers and sizes, then calls [`Host`].
//!
//! # Safety
//! Every function relies on the interface contract: `provider` is the pointer of a table
//! [`table`] made for a `Host<H>` that has not moved and is still alive (for the kernel: the
//! vendor still references wanlayer's control device), and every other pointer is null or valid
//! as the function's documentation in [`crate::abi`] says.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;

use crate::abi::{self, FilterHandle, FilterRegistration, LinkInfo, Status, Ticket};

use super::{packet_functions, CallerContext, Host};

/// The table of `version` for `host`.
pub(super) fn table<H: CallerContext>(host: &Host<'_, H>, version: u32) -> abi::ProviderTable {
    abi::ProviderTable {
        size: size_of::<abi::ProviderTable>() as u32,
        version,
        provider: ptr::from_ref(host).cast_mut().cast(),
        register_filter: Some(register_filter::<H>),
        deregister_filter: Some(deregister_filter::<H>),
        reinject: Some(reinject::<H>),
        query_links: Some(query_links::<H>),
        query_time: Some(query_time::<H>),
        packet_length: Some(packet_functions::packet_length),
        packet_read: Some(packet_functions::packet_read),
        packet_write: Some(packet_functions::packet_write),
        packet_replace: Some(packet_functions::packet_replace),
        packet_ticket: Some(packet_functions::packet_ticket),
    }
}

/// The host behind a table's provider pointer.
///
/// # Safety
/// The module's contract.
unsafe fn host<'a, H: CallerContext>(provider: *mut c_void) -> Option<&'a Host<'a, H>> {
    // SAFETY: null, or the `Host<H>` the table was made for, alive and in place (module contract).
    unsafe { provider.cast::<Host<'a, H>>().cast_const().as_ref() }
}

/// Reads a registration of any size at least the first version's; checks what it can.
///
/// # Safety
/// `registration` is non-null and readable for its `Size` bytes.
unsafe fn read_registration(registration: *const FilterRegistration) -> Result<FilterRegistration, Status> {
    let header = registration.cast::<[u32; 2]>();
    // SAFETY: every registration starts with `Size` and `Version` (the caller's promise).
    let [size, version] = unsafe { header.read_unaligned() };
    if (size as usize) < size_of::<FilterRegistration>() {
        return Err(Status::INFO_LENGTH_MISMATCH);
    }
    if !(abi::PROVIDER_VERSION_MIN..=abi::PROVIDER_VERSION).contains(&version) {
        return Err(Status::REVISION_MISMATCH);
    }
    // SAFETY: readable for at least a first-version registration (checked above). Any bit pattern
    // of its fields is a valid value (a null callback reads as `None`).
    let registration = unsafe { registration.read_unaligned() };
    if registration.flags != 0 {
        return Err(Status::INVALID_PARAMETER);
    }
    Ok(registration)
}

/// The name of a registration: UTF-8, not empty, NUL-padded.
fn name_of(registration: &FilterRegistration) -> Result<&str, Status> {
    let raw = &registration.name;
    let end = raw.iter().position(|&byte| byte == 0).unwrap_or(raw.len());
    if end == 0 || raw[end..].iter().any(|&byte| byte != 0) {
        return Err(Status::INVALID_PARAMETER);
    }
    core::str::from_utf8(&raw[..end]).map_err(|_| Status::INVALID_PARAMETER)
}

/// `WL_REGISTER_FILTER`.
///
/// # Safety
/// The module's contract: `provider` is the pointer of a table made for a live `Host<H>` that has
/// not moved; the other pointers are null or valid as [`crate::abi`] documents.
unsafe extern "system" fn register_filter<H: CallerContext>(
    provider: *mut c_void,
    registration: *const FilterRegistration,
    filter: *mut FilterHandle,
) -> Status {
    // SAFETY: the module's contract.
    let Some(host) = (unsafe { host::<H>(provider) }) else { return Status::INVALID_PARAMETER };
    if registration.is_null() || filter.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: non-null; readable for its `Size` bytes (the function's contract).
    let registration = match unsafe { read_registration(registration) } {
        Ok(registration) => registration,
        Err(status) => return status,
    };
    let name = match name_of(&registration) {
        Ok(name) => name,
        Err(status) => return status,
    };
    host.register(&registration, name, |handle| {
        // SAFETY: the caller's handle slot, non-null and writable (the function's contract).
        unsafe { filter.write_unaligned(handle) }
    })
}

/// `WL_DEREGISTER_FILTER`.
///
/// # Safety
/// The module's contract: `provider` is the pointer of a table made for a live `Host<H>` that has
/// not moved; the other pointers are null or valid as [`crate::abi`] documents.
unsafe extern "system" fn deregister_filter<H: CallerContext>(provider: *mut c_void, filter: FilterHandle) -> Status {
    // SAFETY: the module's contract.
    match unsafe { host::<H>(provider) } {
        Some(host) => host.deregister(filter),
        None => Status::INVALID_PARAMETER,
    }
}

/// `WL_REINJECT`.
///
/// # Safety
/// The module's contract: `provider` is the pointer of a table made for a live `Host<H>` that has
/// not moved; the other pointers are null or valid as [`crate::abi`] documents.
unsafe extern "system" fn reinject<H: CallerContext>(provider: *mut c_void, filter: FilterHandle, ticket: *const Ticket, verdict: u32) -> Status {
    // SAFETY: the module's contract.
    let Some(host) = (unsafe { host::<H>(provider) }) else { return Status::INVALID_PARAMETER };
    if ticket.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: non-null and readable (the function's contract).
    let ticket = unsafe { ticket.read_unaligned() };
    host.reinject(filter, &ticket, verdict)
}

/// `WL_QUERY_LINKS`.
///
/// # Safety
/// The module's contract: `provider` is the pointer of a table made for a live `Host<H>` that has
/// not moved; the other pointers are null or valid as [`crate::abi`] documents.
unsafe extern "system" fn query_links<H: CallerContext>(
    provider: *mut c_void,
    links: *mut LinkInfo,
    capacity: u32,
    element_size: u32,
    count: *mut u32,
) -> Status {
    // SAFETY: the module's contract.
    let Some(host) = (unsafe { host::<H>(provider) }) else { return Status::INVALID_PARAMETER };
    if count.is_null() || (links.is_null() && capacity > 0) {
        return Status::INVALID_PARAMETER;
    }
    if (element_size as usize) < size_of::<LinkInfo>() {
        return Status::INFO_LENGTH_MISMATCH;
    }
    if host.is_revoked() {
        return Status::DEVICE_REMOVED;
    }
    let mut found = 0u32;
    host.visit_links(|link| {
        if found < capacity {
            let at = links.cast::<u8>().wrapping_add(found as usize * element_size as usize).cast::<LinkInfo>();
            // SAFETY: entry `found < capacity` of the caller's array of `capacity` elements of
            // `element_size >= size_of::<LinkInfo>()` bytes (the function's contract).
            unsafe { at.write_unaligned(*link) };
        }
        found = found.saturating_add(1);
    });
    // SAFETY: non-null and writable (the function's contract).
    unsafe { count.write_unaligned(found) };
    if found > capacity {
        Status::BUFFER_OVERFLOW
    } else {
        Status::SUCCESS
    }
}

/// `WL_QUERY_TIME`.
///
/// # Safety
/// The module's contract: `provider` is the pointer of a table made for a live `Host<H>` that has
/// not moved; the other pointers are null or valid as [`crate::abi`] documents.
unsafe extern "system" fn query_time<H: CallerContext>(provider: *mut c_void) -> u64 {
    // SAFETY: the module's contract.
    match unsafe { host::<H>(provider) } {
        Some(host) => host.engine().hal().now().0,
        None => 0,
    }
}
