//! The table's packet functions: a `WL_PACKET *` is the engine's [`PacketContext`] of the packet
//! callback in progress ([`super::hook::VendorHook`] passes it), so each function is one
//! `PacketContext` call.
//!
//! # Safety
//! Every function relies on the interface contract: a non-null packet pointer is the one a packet
//! callback was given, used before that callback returned.

use core::slice;

use wanlayer_core::hook::{EditError, PacketContext};

use crate::abi::{RawPacket, Status, Ticket};

/// The packet context behind a callback's packet pointer.
///
/// # Safety
/// The module's contract; the reference is not kept past the function using it.
unsafe fn context<'a>(packet: *mut RawPacket) -> Option<&'a mut PacketContext<'a>> {
    // SAFETY: null, or the `PacketContext` of the callback in progress (module contract), which
    // nothing else touches while the vendor's callback runs.
    unsafe { packet.cast::<PacketContext<'a>>().as_mut() }
}

fn status_of(result: Result<(), EditError>) -> Status {
    match result {
        Ok(()) => Status::SUCCESS,
        Err(EditError::OutOfRange) => Status::INVALID_PARAMETER,
        Err(EditError::OutOfMemory) => Status::INSUFFICIENT_RESOURCES,
        Err(EditError::BadLength) => Status::INVALID_BUFFER_SIZE,
    }
}

/// `WL_PACKET_LENGTH`.
///
/// # Safety
/// The module's contract: `packet` is null or the packet pointer of the packet callback in
/// progress.
pub(super) unsafe extern "system" fn packet_length(packet: *const RawPacket) -> u32 {
    // SAFETY: the module's contract.
    match unsafe { context(packet.cast_mut()) } {
        Some(packet) => u32::try_from(packet.len()).unwrap_or(u32::MAX),
        None => 0,
    }
}

/// `WL_PACKET_READ`.
///
/// # Safety
/// The module's contract: `packet` is null or the packet pointer of the packet callback in
/// progress; `buffer` is writable for `length` bytes.
pub(super) unsafe extern "system" fn packet_read(packet: *const RawPacket, offset: u32, buffer: *mut core::ffi::c_void, length: u32) -> u32 {
    // SAFETY: the module's contract.
    let Some(packet) = (unsafe { context(packet.cast_mut()) }) else { return 0 };
    if buffer.is_null() || length == 0 {
        return 0;
    }
    // SAFETY: the caller's buffer, writable for `length` bytes (the function's contract).
    let out = unsafe { slice::from_raw_parts_mut(buffer.cast::<u8>(), length as usize) };
    packet.read(offset as usize, out) as u32
}

/// `WL_PACKET_WRITE`.
///
/// # Safety
/// The module's contract: `packet` is null or the packet pointer of the packet callback in
/// progress; `data` is readable for `length` bytes.
pub(super) unsafe extern "system" fn packet_write(packet: *mut RawPacket, offset: u32, data: *const core::ffi::c_void, length: u32) -> Status {
    // SAFETY: the module's contract.
    let Some(packet) = (unsafe { context(packet) }) else { return Status::INVALID_PARAMETER };
    if data.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's data, readable for `length` bytes (the function's contract).
    let data = unsafe { slice::from_raw_parts(data.cast::<u8>(), length as usize) };
    status_of(packet.write(offset as usize, data))
}

/// `WL_PACKET_REPLACE`.
///
/// # Safety
/// The module's contract: `packet` is null or the packet pointer of the packet callback in
/// progress; `frame` is readable for `length` bytes.
pub(super) unsafe extern "system" fn packet_replace(packet: *mut RawPacket, frame: *const core::ffi::c_void, length: u32) -> Status {
    // SAFETY: the module's contract.
    let Some(packet) = (unsafe { context(packet) }) else { return Status::INVALID_PARAMETER };
    if frame.is_null() {
        return Status::INVALID_PARAMETER;
    }
    // SAFETY: the caller's frame, readable for `length` bytes (the function's contract).
    let frame = unsafe { slice::from_raw_parts(frame.cast::<u8>(), length as usize) };
    status_of(packet.replace(frame))
}

/// `WL_PACKET_TICKET`.
///
/// # Safety
/// The module's contract: `packet` is null or the packet pointer of the packet callback in
/// progress; `ticket` is null or writable.
pub(super) unsafe extern "system" fn packet_ticket(packet: *const RawPacket, ticket: *mut Ticket) -> Status {
    // SAFETY: the module's contract.
    let Some(packet) = (unsafe { context(packet.cast_mut()) }) else { return Status::INVALID_PARAMETER };
    if ticket.is_null() {
        return Status::INVALID_PARAMETER;
    }
    let held = packet.ticket();
    let raw = Ticket { module: held.module.0, reserved: 0, serial: held.serial };
    // SAFETY: the caller's ticket, non-null and writable (the function's contract).
    unsafe { ticket.write_unaligned(raw) };
    Status::SUCCESS
}
