//! [`Packet`]: a filter's view of the packet a callback is looking at, over the table's `Packet*`
//! functions.

use core::marker::PhantomData;

use crate::abi::{LinkInfo, RawPacket, Status, Ticket};
use crate::vendor_filter::Direction;

use super::Functions;

/// The packet a send or receive callback is looking at: its bytes (read, write, replace), its
/// link, its direction and the ticket it is held under if the callback takes it.
///
/// Only valid during the callback: it borrows what the callback was given.
pub struct Packet<'a> {
    functions: &'a Functions,
    raw: *mut RawPacket,
    link: &'a LinkInfo,
    direction: Direction,
    _callback: PhantomData<&'a mut RawPacket>,
}

impl<'a> Packet<'a> {
    /// The view of the packet a callback was given.
    ///
    /// # Safety
    /// `raw` is the packet of a callback in progress, and `functions` are the packet functions of
    /// the provider that made the call; `'a` ends before the callback returns.
    pub(crate) unsafe fn new(functions: &'a Functions, raw: *mut RawPacket, link: &'a LinkInfo, direction: Direction) -> Self {
        Self { functions, raw, link, direction, _callback: PhantomData }
    }

    /// Which way the packet travels.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The WAN link it belongs to.
    pub fn link(&self) -> &LinkInfo {
        self.link
    }

    /// The frame length in bytes (Ethernet header included).
    pub fn len(&self) -> usize {
        // SAFETY: the packet of the callback in progress and its provider's function (`new`).
        unsafe { (self.functions.packet_length)(self.raw) as usize }
    }

    /// True for an empty frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies frame bytes from `offset` into `out`; returns how many were copied (fewer at the end
    /// of the frame, none past it).
    pub fn read(&self, offset: usize, out: &mut [u8]) -> usize {
        let Ok(offset) = u32::try_from(offset) else { return 0 };
        let length = u32::try_from(out.len()).unwrap_or(u32::MAX);
        // SAFETY: as in `len`; `out` is writable for `length` bytes.
        let copied = unsafe { (self.functions.packet_read)(self.raw, offset, out.as_mut_ptr().cast(), length) };
        (copied as usize).min(out.len())
    }

    /// Overwrites frame bytes at `offset`; return [`crate::Verdict::Modify`] afterwards.
    ///
    /// # Errors
    /// [`Status::INVALID_PARAMETER`] when the range is outside the frame,
    /// [`Status::INSUFFICIENT_RESOURCES`] when no private copy of read-only buffers can be made.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), Status> {
        let (Ok(offset), Ok(length)) = (u32::try_from(offset), u32::try_from(data.len())) else {
            return Err(Status::INVALID_PARAMETER);
        };
        // SAFETY: as in `len`; `data` is readable for `length` bytes.
        let status = unsafe { (self.functions.packet_write)(self.raw, offset, data.as_ptr().cast(), length) };
        if status.is_success() {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// Replaces the whole frame; return [`crate::Verdict::Modify`] afterwards.
    ///
    /// # Errors
    /// [`Status::INVALID_BUFFER_SIZE`] for an empty or oversized frame,
    /// [`Status::INSUFFICIENT_RESOURCES`] when no packet can be allocated.
    pub fn replace(&mut self, frame: &[u8]) -> Result<(), Status> {
        let Ok(length) = u32::try_from(frame.len()) else { return Err(Status::INVALID_BUFFER_SIZE) };
        // SAFETY: as in `len`; `frame` is readable for `length` bytes.
        let status = unsafe { (self.functions.packet_replace)(self.raw, frame.as_ptr().cast(), length) };
        if status.is_success() {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// The ticket the packet is held under if the callback returns [`crate::Verdict::Take`].
    pub fn ticket(&self) -> Ticket {
        let mut ticket = Ticket { module: 0, reserved: 0, serial: 0 };
        // SAFETY: as in `len`; `ticket` outlives the call. The provider fails only for null
        // pointers, which these are not.
        let _status = unsafe { (self.functions.packet_ticket)(self.raw, &mut ticket) };
        ticket
    }
}

impl core::fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet")
            .field("direction", &self.direction)
            .field("link", &self.link.link_id)
            .field("len", &self.len())
            .finish()
    }
}
