//! WAN status indications, read with every length and pointer checked first, and the line-up
//! answer written back. What they mean to the engine (its `link` values) is the driver's to say:
//! this crate knows only NDIS.
//!
//! `FilterStatus` receives an `NDIS_STATUS_INDICATION`; for `NDIS_STATUS_WAN_LINE_UP` its status
//! buffer is an `NDIS_WAN_LINE_UP` whose `ProtocolBuffer` and `DeviceName` point to more memory.
//! The one promise about all that memory is made once, in [`Indication::from_raw`]; everything else
//! is safe code, and the decisions are made by [`check_line_up`] and [`parse_line_down`], which
//! work on plain values and slices.
//!
//! A failed check is a [`StatusError`]: the driver logs and counts it and passes the indication on
//! untouched (`NdisFIndicateStatus`), because swallowing a line up would leave the protocol above
//! without its link.
//!
//! # Where `ProtocolBuffer` lives (inferred)
//!
//! No public source says whether NdisWan puts the protocol buffer inside the status buffer (after
//! the `NDIS_WAN_LINE_UP`) or in memory of its own. Both are accepted and told apart in
//! [`LineUpLayout`], so the driver can log and count which one Windows uses:
//!
//! * inside the status buffer ([`Placement::Inline`]): it must not overlap the `NDIS_WAN_LINE_UP`
//!   and must end within `StatusBufferSize` — memory we were given, so checked exactly;
//! * elsewhere ([`Placement::Separate`]): its extent can only be trusted, so it is bounded by
//!   [`PROTOCOL_BUFFER_LIMIT`] (13 times the largest buffer observed) to reject garbage lengths.
//!
//! `DeviceName.Buffer` is placed the same way, bounded by [`DEVICE_NAME_LIMIT_BYTES`].
//!
//! # The sequence in `FilterStatus`
//!
//! ```text
//! let mut indication = unsafe { Indication::from_raw(raw) }?;      // the one promise
//! match indication.parse() { ... engine: line up / line down ... }  // borrows end here
//! indication.lower_maximum_total_size(reported)?;                   // the hooks' MTU
//! NdisFIndicateStatus(filter, indication.as_mut_ptr());             // protocol fills in
//! let answer = indication.filled_in()?;                             // LocalAddress, DeviceName
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::ptr::{self, NonNull};

use crate::lightweight_filter::StatusIndication;
use crate::types::RawNdisStatus;
use crate::wan::{WanLineDown, WanLineUp, NDIS_STATUS_WAN_LINE_DOWN, NDIS_STATUS_WAN_LINE_UP};

/// The longest `ProtocolBuffer` accepted outside the status buffer (Windows 10 sends about 1,200
/// bytes; the closest public model keeps up to 2,048).
pub const PROTOCOL_BUFFER_LIMIT: usize = 16 * 1024;

/// The longest `DeviceName` accepted, in bytes (1,024 UTF-16 code units; names are
/// `\DEVICE\{GUID}`, 46 units).
pub const DEVICE_NAME_LIMIT_BYTES: u16 = 2048;

/// A WAN status indication, checked.
#[derive(Clone, Copy, Debug)]
pub enum WanStatus<'a> {
    /// `NDIS_STATUS_WAN_LINE_UP`, borrowing the indication's memory.
    LineUp(CheckedLineUp<'a>),
    /// `NDIS_STATUS_WAN_LINE_DOWN`: the `NDIS_WAN_LINE_DOWN`, copied.
    LineDown(WanLineDown),
    /// Any other status code; its buffer was not looked at.
    Other(RawNdisStatus),
}

/// A line up whose regions passed the checks of this module.
#[derive(Clone, Copy, Debug)]
pub struct CheckedLineUp<'a> {
    /// The `NDIS_WAN_LINE_UP`, copied out of the status buffer. Its pointers are the ones checked;
    /// read the regions through the two slices.
    pub line_up: WanLineUp,
    /// `ProtocolBuffer`, `ProtocolBufferLength` bytes.
    pub protocol_buffer: &'a [u8],
    /// `DeviceName`, UTF-16.
    pub device_name: &'a [u16],
}

/// A status code as the errors print it: its name when this crate knows it, and its value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Code(RawNdisStatus);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            NDIS_STATUS_WAN_LINE_UP => write!(f, "NDIS_STATUS_WAN_LINE_UP (0x{:08X})", self.0),
            NDIS_STATUS_WAN_LINE_DOWN => write!(f, "NDIS_STATUS_WAN_LINE_DOWN (0x{:08X})", self.0),
            other => write!(f, "0x{other:08X}"),
        }
    }
}

/// Where a region an `NDIS_WAN_LINE_UP` points to lies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placement {
    /// Zero bytes long: the pointer is not used.
    Empty,
    /// Inside the status buffer, `offset` bytes from its start (after the `NDIS_WAN_LINE_UP`).
    Inline {
        /// Offset from the start of the status buffer.
        offset: usize,
    },
    /// In memory of its own, outside the status buffer.
    Separate,
}

/// What is wrong with a region (`ProtocolBuffer` or `DeviceName.Buffer`) a line up points to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RegionError {
    /// A non-zero length with a null pointer.
    Null,
    /// Pointer plus length runs past the end of the address space.
    Wraps,
    /// It overlaps the `NDIS_WAN_LINE_UP` structure itself.
    OverlapsHeader {
        /// Where it starts, relative to the status buffer (negative: before it).
        offset: isize,
    },
    /// It starts inside the status buffer but ends beyond `StatusBufferSize`.
    PastEnd {
        /// Where it starts in the status buffer.
        offset: usize,
        /// Its length in bytes.
        length: usize,
        /// `StatusBufferSize`.
        buffer_size: usize,
    },
}

/// Why a status indication could not be converted. The indication is passed on untouched.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StatusError {
    /// `StatusBuffer` is null but `StatusBufferSize` is not zero.
    NullStatusBuffer {
        /// `StatusBufferSize`.
        size: u32,
    },
    /// The status buffer is shorter than its status code requires.
    BufferTooShort {
        /// The status code.
        code: RawNdisStatus,
        /// Bytes the structure needs.
        needed: usize,
        /// `StatusBufferSize`.
        got: usize,
    },
    /// A line-up operation on an indication of another status.
    NotLineUp(RawNdisStatus),
    /// `ProtocolBuffer` does not describe memory that is there.
    ProtocolBuffer(RegionError),
    /// `ProtocolBuffer` lies outside the status buffer and is longer than [`PROTOCOL_BUFFER_LIMIT`].
    ProtocolBufferTooLong {
        /// `ProtocolBufferLength`.
        length: u32,
    },
    /// `DeviceName.Length` is odd (it counts bytes of UTF-16).
    DeviceNameOddLength {
        /// `DeviceName.Length`.
        length: u16,
    },
    /// `DeviceName.Length` exceeds [`DEVICE_NAME_LIMIT_BYTES`].
    DeviceNameTooLong {
        /// `DeviceName.Length`.
        length: u16,
    },
    /// `DeviceName.MaximumLength` is below `DeviceName.Length`.
    DeviceNameMaximumBelowLength {
        /// `DeviceName.Length`.
        length: u16,
        /// `DeviceName.MaximumLength`.
        maximum: u16,
    },
    /// `DeviceName.Buffer` is not aligned for UTF-16.
    DeviceNameMisaligned,
    /// `DeviceName.Buffer` does not describe memory that is there.
    DeviceName(RegionError),
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegionError::Null => f.write_str("null pointer with a non-zero length"),
            RegionError::Wraps => f.write_str("pointer plus length wraps the address space"),
            RegionError::OverlapsHeader { offset } => {
                write!(f, "overlaps the NDIS_WAN_LINE_UP (starts at {offset} in the status buffer)")
            }
            RegionError::PastEnd { offset, length, buffer_size } => {
                write!(f, "{length} bytes at {offset} run past the {buffer_size}-byte status buffer")
            }
        }
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StatusError::NullStatusBuffer { size } => write!(f, "null StatusBuffer of size {size}"),
            StatusError::BufferTooShort { code, needed, got } => {
                write!(f, "{}: status buffer of {got} bytes, {needed} needed", Code(code))
            }
            StatusError::NotLineUp(code) => write!(f, "{} is not a line up", Code(code)),
            StatusError::ProtocolBuffer(error) => write!(f, "ProtocolBuffer: {error}"),
            StatusError::ProtocolBufferTooLong { length } => {
                write!(f, "ProtocolBuffer of {length} bytes outside the status buffer")
            }
            StatusError::DeviceNameOddLength { length } => {
                write!(f, "DeviceName.Length {length} is odd")
            }
            StatusError::DeviceNameTooLong { length } => {
                write!(f, "DeviceName.Length {length} exceeds the limit")
            }
            StatusError::DeviceNameMaximumBelowLength { length, maximum } => {
                write!(f, "DeviceName.MaximumLength {maximum} below Length {length}")
            }
            StatusError::DeviceNameMisaligned => f.write_str("DeviceName.Buffer is not 2-byte aligned"),
            StatusError::DeviceName(error) => write!(f, "DeviceName.Buffer: {error}"),
        }
    }
}

/// Where the regions of a line up lie, once checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LineUpLayout {
    /// Where `ProtocolBuffer` lies.
    pub protocol_buffer: Placement,
    /// `ProtocolBufferLength`.
    pub protocol_buffer_len: usize,
    /// Where `DeviceName.Buffer` lies.
    pub device_name: Placement,
    /// `DeviceName.Length` in UTF-16 code units.
    pub device_name_units: usize,
}

/// What the protocol above filled in during a line-up indication.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LineUpFilledIn<'a> {
    /// `RemoteAddress`: the link's key.
    pub remote_address: [u8; 6],
    /// `LocalAddress`.
    pub local_address: [u8; 6],
    /// `DeviceName`, UTF-16.
    pub device_name: &'a [u16],
    /// NdisWan's private "answer later" byte ([`ANSWER_LATER_OFFSET`]) was set when the indication
    /// returned: the protocol above answers later, so `LocalAddress` and `DeviceName` are
    /// provisional (NdisWan waits for the answer, then reads them). False when `StatusBufferSize`
    /// does not reach the byte.
    pub answer_pending: bool,
}

/// Where NdisWan keeps its private "answer later" byte in a line-up status buffer: just past
/// `NDIS_WAN_LINE_UP` (0x40 on x64 and ARM64, 0x30 on x86, where the structure is 48 bytes).
/// NdisWan clears it before indicating; the protocol above sets it to say it will answer later.
/// Read only, never written by a filter.
pub const ANSWER_LATER_OFFSET: usize = size_of::<WanLineUp>();

#[cfg(target_pointer_width = "64")]
const _: () = assert!(ANSWER_LATER_OFFSET == 0x40);
#[cfg(target_pointer_width = "32")]
const _: () = assert!(ANSWER_LATER_OFFSET == 0x30);

/// Places the region `start..start + len` relative to the status buffer `status`.
fn place(start: *const u8, len: usize, status: &[u8]) -> Result<Placement, RegionError> {
    if len == 0 {
        return Ok(Placement::Empty);
    }
    if start.is_null() {
        return Err(RegionError::Null);
    }
    let start = start.addr();
    let end = start.checked_add(len).ok_or(RegionError::Wraps)?;
    let status_start = status.as_ptr().addr();
    let status_end = status_start + status.len();
    if start >= status_end || end <= status_start {
        return Ok(Placement::Separate);
    }
    let offset = start.wrapping_sub(status_start) as isize;
    if offset < size_of::<WanLineUp>() as isize {
        return Err(RegionError::OverlapsHeader { offset });
    }
    let offset = offset as usize;
    if end > status_end {
        return Err(RegionError::PastEnd { offset, length: len, buffer_size: status.len() });
    }
    Ok(Placement::Inline { offset })
}

/// Checks `DeviceName` of a line up whose status buffer is `status`; returns its placement and
/// length in code units.
fn check_device_name(line_up: &WanLineUp, status: &[u8]) -> Result<(Placement, usize), StatusError> {
    let name = line_up.device_name;
    if name.length % 2 != 0 {
        return Err(StatusError::DeviceNameOddLength { length: name.length });
    }
    if name.length > DEVICE_NAME_LIMIT_BYTES {
        return Err(StatusError::DeviceNameTooLong { length: name.length });
    }
    if name.maximum_length < name.length {
        return Err(StatusError::DeviceNameMaximumBelowLength { length: name.length, maximum: name.maximum_length });
    }
    if name.length != 0 && !name.buffer.is_null() && !name.buffer.is_aligned() {
        return Err(StatusError::DeviceNameMisaligned);
    }
    let placement =
        place(name.buffer.cast_const().cast(), usize::from(name.length), status).map_err(StatusError::DeviceName)?;
    Ok((placement, usize::from(name.length / 2)))
}

/// Checks the regions a line up points to, given its status buffer `status` (the bytes the
/// `NDIS_WAN_LINE_UP` was read from, `StatusBufferSize` long).
///
/// # Errors
/// The first [`StatusError`] found.
pub fn check_line_up(line_up: &WanLineUp, status: &[u8]) -> Result<LineUpLayout, StatusError> {
    let protocol_buffer_len = line_up.protocol_buffer_length as usize;
    let protocol_buffer = place(line_up.protocol_buffer.cast_const(), protocol_buffer_len, status)
        .map_err(StatusError::ProtocolBuffer)?;
    if protocol_buffer == Placement::Separate && protocol_buffer_len > PROTOCOL_BUFFER_LIMIT {
        return Err(StatusError::ProtocolBufferTooLong { length: line_up.protocol_buffer_length });
    }
    let (device_name, device_name_units) = check_device_name(line_up, status)?;
    Ok(LineUpLayout { protocol_buffer, protocol_buffer_len, device_name, device_name_units })
}

/// Reads an `NDIS_WAN_LINE_DOWN` from its status buffer.
///
/// # Errors
/// [`StatusError::BufferTooShort`] under 12 bytes.
pub fn parse_line_down(status: &[u8]) -> Result<WanLineDown, StatusError> {
    let needed = size_of::<WanLineDown>();
    let too_short = StatusError::BufferTooShort { code: NDIS_STATUS_WAN_LINE_DOWN, needed, got: status.len() };
    let remote = status.get(offset_of!(WanLineDown, remote_address)..).and_then(|b| b.first_chunk::<6>());
    let local = status.get(offset_of!(WanLineDown, local_address)..).and_then(|b| b.first_chunk::<6>());
    match (remote, local) {
        (Some(remote), Some(local)) => Ok(WanLineDown { remote_address: *remote, local_address: *local }),
        _ => Err(too_short),
    }
}

/// An `NDIS_STATUS_INDICATION` the filter is handling, for the duration of its `FilterStatus`.
#[derive(Debug)]
pub struct Indication<'a> {
    raw: NonNull<StatusIndication>,
    _memory: PhantomData<&'a mut StatusIndication>,
}

impl<'a> Indication<'a> {
    /// Wraps the indication `FilterStatus` received; `None` for null.
    ///
    /// # Safety
    /// For `'a` (the `FilterStatus` call):
    /// * `indication` is null or points to a valid `NDIS_STATUS_INDICATION` that nothing else
    ///   writes, except NDIS and the drivers above during an `NdisFIndicateStatus` the caller makes
    ///   with [`Indication::as_mut_ptr`];
    /// * a non-null `StatusBuffer` is readable and writable for `StatusBufferSize` bytes;
    /// * for `NDIS_STATUS_WAN_LINE_UP`, a `ProtocolBuffer` and a `DeviceName.Buffer` that pass the
    ///   checks of this module but lie outside the status buffer are readable for
    ///   `ProtocolBufferLength` / `DeviceName.Length` bytes — before and after
    ///   `NdisFIndicateStatus` (NDIS provides them; only their extent inside the status buffer can
    ///   be checked).
    pub unsafe fn from_raw(indication: *mut StatusIndication) -> Option<Self> {
        NonNull::new(indication).map(|raw| Indication { raw, _memory: PhantomData })
    }

    /// The indication, to pass on with `NdisFIndicateStatus`. Takes `&mut self`, so nothing
    /// borrowed from [`Indication::parse`] outlives the call in which the protocol writes it.
    pub fn as_mut_ptr(&mut self) -> *mut StatusIndication {
        self.raw.as_ptr()
    }

    /// `StatusCode`.
    pub fn code(&self) -> RawNdisStatus {
        // SAFETY: valid for 'a by the promise of `from_raw`.
        unsafe { (*self.raw.as_ptr()).status_code }
    }

    /// `StatusBuffer` and `StatusBufferSize`.
    fn status_buffer(&self) -> (*mut u8, u32) {
        let indication = self.raw.as_ptr();
        // SAFETY: valid for 'a by the promise of `from_raw`.
        let buffer = unsafe { (*indication).status_buffer }.cast::<u8>();
        // SAFETY: as above.
        (buffer, unsafe { (*indication).status_buffer_size })
    }

    /// The status buffer, `StatusBufferSize` bytes.
    fn status_bytes(&self) -> Result<&[u8], StatusError> {
        let (buffer, size) = self.status_buffer();
        if size == 0 {
            return Ok(&[]);
        }
        if buffer.is_null() {
            return Err(StatusError::NullStatusBuffer { size });
        }
        // SAFETY: a non-null StatusBuffer is readable for StatusBufferSize bytes for 'a, and
        // nothing writes it while `&self` is borrowed (writers need `&mut self`).
        Ok(unsafe { core::slice::from_raw_parts(buffer, size as usize) })
    }

    /// The `NDIS_WAN_LINE_UP` of a line-up indication, copied, and the status buffer it was read
    /// from.
    fn line_up(&self) -> Result<(WanLineUp, &[u8]), StatusError> {
        let code = self.code();
        if code != NDIS_STATUS_WAN_LINE_UP {
            return Err(StatusError::NotLineUp(code));
        }
        let status = self.status_bytes()?;
        if status.len() < size_of::<WanLineUp>() {
            return Err(StatusError::BufferTooShort { code, needed: size_of::<WanLineUp>(), got: status.len() });
        }
        // SAFETY: `status` holds at least `size_of::<WanLineUp>()` initialised bytes; every bit
        // pattern is a valid `WanLineUp` (integers and raw pointers); the read is unaligned-safe.
        let line_up = unsafe { ptr::read_unaligned(status.as_ptr().cast::<WanLineUp>()) };
        Ok((line_up, status))
    }

    /// Where the regions of a line up lie (for logging which placement Windows uses).
    ///
    /// # Errors
    /// [`StatusError::NotLineUp`], or what [`check_line_up`] finds.
    pub fn line_up_layout(&self) -> Result<LineUpLayout, StatusError> {
        let (line_up, status) = self.line_up()?;
        check_line_up(&line_up, status)
    }

    /// Converts the indication: a line up or line down, validated, or the code of any other.
    ///
    /// # Errors
    /// A [`StatusError`] for a line up or line down that fails a check.
    pub fn parse(&self) -> Result<WanStatus<'_>, StatusError> {
        match self.code() {
            NDIS_STATUS_WAN_LINE_DOWN => parse_line_down(self.status_bytes()?).map(WanStatus::LineDown),
            NDIS_STATUS_WAN_LINE_UP => {
                let (line_up, status) = self.line_up()?;
                let layout = check_line_up(&line_up, status)?;
                let protocol_buffer: &[u8] = if layout.protocol_buffer == Placement::Empty {
                    &[]
                } else {
                    // SAFETY: checked non-null and non-wrapping; inside the status buffer it was
                    // checked to end within it, elsewhere it is readable by the promise of
                    // `from_raw`; nothing writes it while `&self` is borrowed.
                    unsafe {
                        core::slice::from_raw_parts(line_up.protocol_buffer.cast_const(), layout.protocol_buffer_len)
                    }
                };
                // SAFETY: `layout` was just checked for `line_up`, read from `self`.
                let device_name = unsafe { device_name(&line_up, &layout) };
                Ok(WanStatus::LineUp(CheckedLineUp { line_up, protocol_buffer, device_name }))
            }
            other => Ok(WanStatus::Other(other)),
        }
    }

    /// Lowers `MaximumTotalSize` in the line-up buffer to `size` (the hooks' limit), before the
    /// indication is passed on. A larger `size` changes nothing: a filter may only lower it.
    /// Returns the value the buffer holds afterwards.
    ///
    /// # Errors
    /// [`StatusError::NotLineUp`], [`StatusError::NullStatusBuffer`],
    /// [`StatusError::BufferTooShort`].
    pub fn lower_maximum_total_size(&mut self, size: u32) -> Result<u32, StatusError> {
        let (line_up, _) = self.line_up()?;
        let lowered = line_up.maximum_total_size.min(size);
        let (buffer, _) = self.status_buffer();
        let field = buffer.wrapping_add(offset_of!(WanLineUp, maximum_total_size)).cast::<u32>();
        // SAFETY: `line_up` checked the buffer non-null and at least `size_of::<WanLineUp>()` long,
        // so `field` is inside it; it is writable for 'a by the promise of `from_raw`, through this
        // pointer taken from the indication (not from a shared slice); `&mut self` excludes every
        // borrow of it; the write is unaligned-safe.
        unsafe { field.write_unaligned(lowered) };
        Ok(lowered)
    }

    /// What the protocol above filled in (`LocalAddress`, `DeviceName`), read after
    /// `NdisFIndicateStatus` returned, with `DeviceName` checked again.
    ///
    /// # Errors
    /// [`StatusError::NotLineUp`], a too short or null status buffer, or a `DeviceName` error.
    pub fn filled_in(&self) -> Result<LineUpFilledIn<'_>, StatusError> {
        let (line_up, status) = self.line_up()?;
        let (placement, units) = check_device_name(&line_up, status)?;
        let layout = LineUpLayout {
            protocol_buffer: Placement::Empty,
            protocol_buffer_len: 0,
            device_name: placement,
            device_name_units: units,
        };
        Ok(LineUpFilledIn {
            remote_address: line_up.remote_address,
            local_address: line_up.local_address,
            // SAFETY: `layout` was just checked for `line_up`, read from `self`.
            device_name: unsafe { device_name(&line_up, &layout) },
            answer_pending: status.get(ANSWER_LATER_OFFSET).is_some_and(|byte| *byte != 0),
        })
    }
}

/// The `DeviceName` of a checked line up, as a slice.
///
/// # Safety
/// `layout` is what [`check_device_name`] produced for `line_up`, read from an [`Indication`]
/// whose promise (see [`Indication::from_raw`]) holds for `'b`.
unsafe fn device_name<'b>(line_up: &WanLineUp, layout: &LineUpLayout) -> &'b [u16] {
    if layout.device_name == Placement::Empty {
        return &[];
    }
    // SAFETY: the buffer was checked non-null, 2-aligned and non-wrapping, and, inside the status
    // buffer, to end within it; outside it is readable by the `Indication`'s promise; nothing
    // writes it during 'b (writers need the `Indication` mutably).
    unsafe { core::slice::from_raw_parts(line_up.device_name.buffer.cast_const(), layout.device_name_units) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nbl::testing::{free, leak};
    use crate::types::{Guid, NdisHandle, NdisObjectHeader, UnicodeString};
    use core::ffi::c_void;
    use std::vec::Vec;

    const REMOTE: [u8; 6] = [0x3c, 0x00, 0x20, 0x52, 0x41, 0x53];
    /// `NDIS_STATUS_WAN_FRAGMENT`: a WAN status this module does not convert.
    const WAN_FRAGMENT: RawNdisStatus = 0x4001_000A;
    const NAME: &str = "\\DEVICE\\{6E0B3F7A-1C52-4A8D-9B7E-2F4C1D3A5B60}";

    fn utf16(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    /// An `NDIS_WAN_LINE_UP` followed by its protocol buffer and room for a device name, in one
    /// allocation: the status buffer.
    #[repr(C)]
    struct InlineLineUp {
        line_up: WanLineUp,
        protocol: [u8; 600],
        name: [u16; 64],
    }

    /// A status indication over a leaked status buffer, freed on drop.
    struct Fixture {
        buffer: *mut InlineLineUp,
        indication: *mut StatusIndication,
        separate_name: *mut [u16],
    }

    impl Fixture {
        /// A line up with an inline protocol buffer (bytes 584..588 an IPv4 address) and a
        /// device name in memory of its own; `StatusBufferSize` covers both structures.
        fn line_up() -> Fixture {
            let mut protocol = [0u8; 600];
            protocol[584..588].copy_from_slice(&[10, 0, 0, 7]);
            let separate_name = std::boxed::Box::into_raw(utf16(NAME).into_boxed_slice());
            let buffer = leak(InlineLineUp {
                line_up: WanLineUp {
                    link_speed: 1_000_000,
                    maximum_total_size: 1500,
                    quality: 2,
                    send_window: 10,
                    remote_address: REMOTE,
                    local_address: [0; 6],
                    protocol_buffer_length: 600,
                    protocol_buffer: ptr::null_mut(),
                    protocol_type: 0x0800,
                    device_name: UnicodeString {
                        length: u16::try_from(separate_name.len() * 2).unwrap(),
                        maximum_length: u16::try_from(separate_name.len() * 2).unwrap(),
                        buffer: separate_name.cast(),
                    },
                },
                protocol,
                name: [0; 64],
            });
            let protocol_ptr = buffer.wrapping_byte_add(offset_of!(InlineLineUp, protocol)).cast::<u8>();
            // SAFETY: `buffer` was just leaked; only this fixture uses it.
            unsafe { (*buffer).line_up.protocol_buffer = protocol_ptr };
            let indication = leak(StatusIndication {
                header: NdisObjectHeader::new(crate::types::object_type::STATUS_INDICATION, 1, 112),
                source_handle: NdisHandle::NULL,
                port_number: 0,
                status_code: NDIS_STATUS_WAN_LINE_UP,
                flags: 0,
                destination_handle: NdisHandle::NULL,
                request_id: ptr::null_mut(),
                status_buffer: buffer.cast::<c_void>(),
                status_buffer_size: u32::try_from(size_of::<WanLineUp>() + 600).unwrap(),
                guid: Guid::default(),
                ndis_reserved: [ptr::null_mut(); 4],
            });
            Fixture { buffer, indication, separate_name }
        }

        /// A line down with its 12-byte buffer (in the same kind of allocation).
        fn line_down() -> Fixture {
            let fixture = Fixture::line_up();
            let down = WanLineDown { remote_address: REMOTE, local_address: *b"\x00\x01 RAS" };
            // SAFETY: the fixture's buffer is alive and only this fixture uses it; a WanLineDown
            // fits in its first bytes.
            unsafe { fixture.buffer.cast::<WanLineDown>().write(down) };
            fixture.set_code(NDIS_STATUS_WAN_LINE_DOWN);
            fixture.set_size(12);
            fixture
        }

        fn indication(&self) -> Indication<'_> {
            // SAFETY: the fixture's indication and buffers stay alive and unaliased while the
            // returned value (borrowing `self`) lives.
            unsafe { Indication::from_raw(self.indication) }.unwrap()
        }

        fn line_up_mut(&self) -> *mut WanLineUp {
            self.buffer.cast()
        }

        fn set_code(&self, code: RawNdisStatus) {
            // SAFETY: the fixture's indication is alive and not borrowed by any `Indication` now.
            unsafe { (*self.indication).status_code = code };
        }

        fn set_size(&self, size: usize) {
            // SAFETY: as above.
            unsafe { (*self.indication).status_buffer_size = u32::try_from(size).unwrap() };
        }

        fn set_buffer(&self, buffer: *mut c_void) {
            // SAFETY: as above.
            unsafe { (*self.indication).status_buffer = buffer };
        }

        fn edit(&self, change: impl FnOnce(&mut WanLineUp)) {
            // SAFETY: the fixture's buffer is alive and not borrowed by any `Indication` now.
            let mut line_up = unsafe { self.line_up_mut().read() };
            change(&mut line_up);
            // SAFETY: as above.
            unsafe { self.line_up_mut().write(line_up) };
        }

        fn inline_name(&self) -> *mut u16 {
            self.buffer.wrapping_byte_add(offset_of!(InlineLineUp, name)).cast()
        }

        fn parse_error(&self) -> StatusError {
            self.indication().parse().map(|_| ()).unwrap_err()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            // SAFETY: each pointer came from `leak`/`Box::into_raw` and is freed once.
            unsafe { free(self.indication) };
            // SAFETY: as above.
            unsafe { free(self.buffer) };
            // SAFETY: as above.
            unsafe { free(self.separate_name) };
        }
    }

    #[test]
    fn a_line_up_converts_with_every_field() {
        let fixture = Fixture::line_up();
        let indication = fixture.indication();
        let WanStatus::LineUp(up) = indication.parse().unwrap() else { panic!("not a line up") };
        assert_eq!(up.line_up.link_speed, 1_000_000);
        assert_eq!(up.line_up.maximum_total_size, 1500);
        assert_eq!(up.line_up.quality, 2);
        assert_eq!(up.line_up.send_window, 10);
        assert_eq!(up.line_up.remote_address, REMOTE);
        assert_eq!(up.line_up.local_address, [0; 6]);
        assert_eq!(up.line_up.protocol_type, 0x0800);
        assert_eq!(up.protocol_buffer.len(), 600);
        assert_eq!(&up.protocol_buffer[584..588], &[10, 0, 0, 7]);
        assert_eq!(up.device_name, utf16(NAME).as_slice());
        let layout = indication.line_up_layout().unwrap();
        assert_eq!(layout.protocol_buffer, Placement::Inline { offset: size_of::<WanLineUp>() });
        assert_eq!(layout.device_name, Placement::Separate);
    }

    #[test]
    fn a_separate_protocol_buffer_and_an_inline_name_are_accepted() {
        let fixture = Fixture::line_up();
        let mut separate = [7u8; 1200];
        let name = fixture.inline_name();
        fixture.set_size(size_of::<InlineLineUp>());
        fixture.edit(|up| {
            up.protocol_buffer = separate.as_mut_ptr();
            up.protocol_buffer_length = 1200;
            up.device_name = UnicodeString { length: 8, maximum_length: 128, buffer: name };
        });
        // SAFETY: the inline name area is inside the fixture's buffer, alive, unborrowed.
        unsafe { name.cast::<[u16; 4]>().write([0x57, 0x41, 0x4e, 0x31]) };
        let indication = fixture.indication();
        let WanStatus::LineUp(up) = indication.parse().unwrap() else { panic!("not a line up") };
        assert_eq!(up.protocol_buffer, &separate[..]);
        assert_eq!(up.device_name, &[0x57, 0x41, 0x4e, 0x31]);
        let layout = indication.line_up_layout().unwrap();
        assert_eq!(layout.protocol_buffer, Placement::Separate);
        assert_eq!(layout.device_name, Placement::Inline { offset: offset_of!(InlineLineUp, name) });
    }

    #[test]
    fn empty_regions_ignore_their_pointers() {
        let fixture = Fixture::line_up();
        fixture.edit(|up| {
            up.protocol_buffer_length = 0;
            up.protocol_buffer = ptr::without_provenance_mut(1);
            up.device_name = UnicodeString { length: 0, maximum_length: 0, buffer: ptr::without_provenance_mut(3) };
        });
        let indication = fixture.indication();
        let WanStatus::LineUp(up) = indication.parse().unwrap() else { panic!("not a line up") };
        assert!(up.protocol_buffer.is_empty() && up.device_name.is_empty());
    }

    #[test]
    fn a_line_down_converts() {
        let fixture = Fixture::line_down();
        let WanStatus::LineDown(down) = fixture.indication().parse().unwrap() else { panic!("not a line down") };
        assert_eq!(down, WanLineDown { remote_address: REMOTE, local_address: *b"\x00\x01 RAS" });
        assert_eq!(parse_line_down(&[1; 13]).unwrap().remote_address, [1; 6], "longer buffers are fine");
    }

    #[test]
    fn other_codes_pass_without_touching_the_buffer() {
        let fixture = Fixture::line_up();
        fixture.set_code(WAN_FRAGMENT);
        fixture.set_buffer(ptr::null_mut());
        fixture.set_size(4096);
        let mut indication = fixture.indication();
        assert!(matches!(indication.parse(), Ok(WanStatus::Other(WAN_FRAGMENT))));
        assert_eq!(indication.lower_maximum_total_size(1400), Err(StatusError::NotLineUp(WAN_FRAGMENT)));
        assert_eq!(indication.filled_in(), Err(StatusError::NotLineUp(WAN_FRAGMENT)));
        assert_eq!(indication.line_up_layout(), Err(StatusError::NotLineUp(WAN_FRAGMENT)));
        assert_eq!(indication.as_mut_ptr(), fixture.indication);
        // SAFETY: null is allowed and gives None.
        assert!(unsafe { Indication::from_raw(ptr::null_mut()) }.is_none());
    }

    #[test]
    fn a_null_status_buffer_is_an_error() {
        let fixture = Fixture::line_up();
        fixture.set_buffer(ptr::null_mut());
        assert_eq!(fixture.parse_error(), StatusError::NullStatusBuffer { size: 664 });
        fixture.set_code(NDIS_STATUS_WAN_LINE_DOWN);
        assert_eq!(fixture.parse_error(), StatusError::NullStatusBuffer { size: 664 });
        fixture.set_size(0);
        let short = StatusError::BufferTooShort { code: NDIS_STATUS_WAN_LINE_DOWN, needed: 12, got: 0 };
        assert_eq!(fixture.parse_error(), short);
    }

    #[test]
    fn a_line_up_is_checked_at_every_truncation() {
        let fixture = Fixture::line_up();
        let header = size_of::<WanLineUp>();
        let full = header + 600;
        for size in 0..=full {
            fixture.set_size(size);
            let result = fixture.indication().parse().map(|_| ());
            let expected = if size < header {
                Err(StatusError::BufferTooShort { code: NDIS_STATUS_WAN_LINE_UP, needed: header, got: size })
            } else if size == header || size == full {
                // Exactly the structure: the protocol buffer right behind it is "memory of its own".
                Ok(())
            } else {
                Err(StatusError::ProtocolBuffer(RegionError::PastEnd {
                    offset: header,
                    length: 600,
                    buffer_size: size,
                }))
            };
            assert_eq!(result, expected, "StatusBufferSize {size}");
        }
    }

    #[test]
    fn a_line_down_is_checked_at_every_truncation() {
        let fixture = Fixture::line_down();
        for size in 0..12 {
            fixture.set_size(size);
            let expected = StatusError::BufferTooShort { code: NDIS_STATUS_WAN_LINE_DOWN, needed: 12, got: size };
            assert_eq!(fixture.parse_error(), expected, "StatusBufferSize {size}");
            let bytes = [0u8; 12];
            assert_eq!(parse_line_down(&bytes[..size]).unwrap_err(), expected);
        }
        fixture.set_size(12);
        assert!(fixture.indication().parse().is_ok());
    }

    #[test]
    fn protocol_buffer_errors() {
        let fixture = Fixture::line_up();
        let base = fixture.buffer.cast::<u8>();
        let cases: [(*mut u8, u32, StatusError); 5] = [
            (ptr::null_mut(), 16, StatusError::ProtocolBuffer(RegionError::Null)),
            (ptr::without_provenance_mut(usize::MAX - 8), 16, StatusError::ProtocolBuffer(RegionError::Wraps)),
            (base.wrapping_add(8), 16, StatusError::ProtocolBuffer(RegionError::OverlapsHeader { offset: 8 })),
            (base.wrapping_sub(4), 16, StatusError::ProtocolBuffer(RegionError::OverlapsHeader { offset: -4 })),
            (
                base.wrapping_add(size_of::<WanLineUp>()),
                601,
                StatusError::ProtocolBuffer(RegionError::PastEnd { offset: 64, length: 601, buffer_size: 664 }),
            ),
        ];
        for (pointer, length, expected) in cases {
            fixture.edit(|up| {
                up.protocol_buffer = pointer;
                up.protocol_buffer_length = length;
            });
            assert_eq!(fixture.parse_error(), expected);
        }
        let mut far = std::vec![0u8; PROTOCOL_BUFFER_LIMIT + 1];
        fixture.edit(|up| {
            up.protocol_buffer = far.as_mut_ptr();
            up.protocol_buffer_length = u32::try_from(far.len()).unwrap();
        });
        let too_long = StatusError::ProtocolBufferTooLong { length: u32::try_from(PROTOCOL_BUFFER_LIMIT + 1).unwrap() };
        assert_eq!(fixture.parse_error(), too_long);
    }

    #[test]
    fn device_name_errors() {
        let fixture = Fixture::line_up();
        let name = fixture.inline_name();
        let cases: [(UnicodeString, StatusError); 7] = [
            (
                UnicodeString { length: 7, maximum_length: 8, buffer: name },
                StatusError::DeviceNameOddLength { length: 7 },
            ),
            (
                UnicodeString { length: 2050, maximum_length: 4096, buffer: name },
                StatusError::DeviceNameTooLong { length: 2050 },
            ),
            (
                UnicodeString { length: 8, maximum_length: 6, buffer: name },
                StatusError::DeviceNameMaximumBelowLength { length: 8, maximum: 6 },
            ),
            (
                UnicodeString { length: 8, maximum_length: 8, buffer: name.cast::<u8>().wrapping_add(1).cast() },
                StatusError::DeviceNameMisaligned,
            ),
            (
                UnicodeString { length: 8, maximum_length: 8, buffer: ptr::null_mut() },
                StatusError::DeviceName(RegionError::Null),
            ),
            (
                UnicodeString { length: 8, maximum_length: 8, buffer: fixture.buffer.cast() },
                StatusError::DeviceName(RegionError::OverlapsHeader { offset: 0 }),
            ),
            (
                UnicodeString { length: 200, maximum_length: 200, buffer: name.wrapping_add(60) },
                StatusError::DeviceName(RegionError::PastEnd {
                    offset: offset_of!(InlineLineUp, name) + 120,
                    length: 200,
                    buffer_size: 664 + 128,
                }),
            ),
        ];
        fixture.set_size(size_of::<InlineLineUp>());
        for (device_name, expected) in cases {
            fixture.edit(|up| up.device_name = device_name);
            assert_eq!(fixture.parse_error(), expected);
            assert_eq!(fixture.indication().filled_in(), Err(expected), "checked again after the indication");
        }
        fixture.edit(|up| {
            up.device_name =
                UnicodeString { length: 2, maximum_length: 2, buffer: ptr::without_provenance_mut(usize::MAX - 1) };
        });
        assert_eq!(fixture.parse_error(), StatusError::DeviceName(RegionError::Wraps));
    }

    #[test]
    fn check_line_up_works_on_plain_values() {
        let status = [0u8; 64];
        let mut protocol = [0u8; 32];
        let mut name = utf16("WAN");
        let line_up = WanLineUp {
            link_speed: 0,
            maximum_total_size: 0,
            quality: 7,
            send_window: 0,
            remote_address: REMOTE,
            local_address: [0; 6],
            protocol_buffer_length: 32,
            protocol_buffer: protocol.as_mut_ptr(),
            protocol_type: 0x86dd,
            device_name: UnicodeString { length: 6, maximum_length: 6, buffer: name.as_mut_ptr() },
        };
        let layout = check_line_up(&line_up, &status).unwrap();
        assert_eq!(
            layout,
            LineUpLayout {
                protocol_buffer: Placement::Separate,
                protocol_buffer_len: 32,
                device_name: Placement::Separate,
                device_name_units: 3,
            }
        );
    }

    #[test]
    fn maximum_total_size_is_only_lowered() {
        let fixture = Fixture::line_up();
        {
            let mut indication = fixture.indication();
            assert_eq!(indication.lower_maximum_total_size(1400), Ok(1400));
            assert_eq!(indication.lower_maximum_total_size(9000), Ok(1400), "never raised");
        }
        // SAFETY: the fixture's buffer is alive and no `Indication` borrows it now.
        assert_eq!(unsafe { (*fixture.line_up_mut()).maximum_total_size }, 1400);
        let indication = fixture.indication();
        let WanStatus::LineUp(up) = indication.parse().unwrap() else { panic!("not a line up") };
        assert_eq!(up.line_up.maximum_total_size, 1400);
        fixture.set_size(63);
        let short = StatusError::BufferTooShort { code: NDIS_STATUS_WAN_LINE_UP, needed: 64, got: 63 };
        assert_eq!(fixture.indication().lower_maximum_total_size(1000), Err(short));
    }

    #[test]
    fn the_answer_is_read_after_the_indication_returns() {
        let fixture = Fixture::line_up();
        let mut indication = fixture.indication();
        let WanStatus::LineUp(up) = indication.parse().unwrap() else { panic!("not a line up") };
        assert_eq!(up.line_up.local_address, [0; 6]);
        let raw = indication.as_mut_ptr();
        // What the protocol above does inside NdisFIndicateStatus: fill in LocalAddress and point
        // DeviceName at a buffer of its own.
        let mut answer_name = utf16("\\DEVICE\\{00000000-0000-0000-0000-000000000001}");
        // SAFETY: `raw` is the fixture's indication; its status buffer is the fixture's line up.
        let status_buffer = unsafe { (*raw).status_buffer }.cast::<WanLineUp>();
        // SAFETY: the status buffer is alive and nothing borrows it while the "protocol" writes.
        unsafe { (*status_buffer).local_address = *b"\x02\x00 RAS" };
        let length = u16::try_from(answer_name.len() * 2).unwrap();
        let filled = UnicodeString { length, maximum_length: length, buffer: answer_name.as_mut_ptr() };
        // SAFETY: as above.
        unsafe { (*status_buffer).device_name = filled };
        let answer = indication.filled_in().unwrap();
        assert_eq!(answer.remote_address, REMOTE);
        assert_eq!(answer.local_address, *b"\x02\x00 RAS");
        assert_eq!(answer.device_name, answer_name.as_slice());
    }

    #[test]
    fn errors_print_what_was_wrong() {
        let cases = [
            (StatusError::NullStatusBuffer { size: 64 }, "null StatusBuffer of size 64"),
            (
                StatusError::BufferTooShort { code: NDIS_STATUS_WAN_LINE_UP, needed: 64, got: 10 },
                "NDIS_STATUS_WAN_LINE_UP (0x40010008): status buffer of 10 bytes, 64 needed",
            ),
            (StatusError::NotLineUp(WAN_FRAGMENT), "0x4001000A is not a line up"),
            (
                StatusError::ProtocolBuffer(RegionError::PastEnd { offset: 64, length: 600, buffer_size: 100 }),
                "ProtocolBuffer: 600 bytes at 64 run past the 100-byte status buffer",
            ),
            (StatusError::DeviceNameOddLength { length: 7 }, "DeviceName.Length 7 is odd"),
            (StatusError::DeviceName(RegionError::Null), "DeviceName.Buffer: null pointer with a non-zero length"),
        ];
        for (error, text) in cases {
            assert_eq!(std::format!("{error}"), text);
        }
    }
}
