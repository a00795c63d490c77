//! The WAN status-buffer validation of `wanlayer-ndis` (`status.rs`): [`Indication::from_raw`]
//! and the safe conversion after it — `parse`, `line_up_layout`, `lower_maximum_total_size`,
//! and `filled_in` after the protocol above rewrote `DeviceName`.
//!
//! Built for AddressSanitizer (`cargo fuzz`'s default): the status buffer is the input's bytes
//! in a heap allocation of exactly `StatusBufferSize` bytes, and a region outside it lives in an
//! allocation of its own of exactly the length the line up declares (or, beyond the module's
//! limit, a smaller one the checks must refuse before reading), so any read past what was
//! checked is reported. Every byte the conversion hands out is read.
//!
//! The input: the status code, then how `ProtocolBuffer`, `DeviceName.Buffer` and the rewritten
//! `DeviceName.Buffer` are placed (null, inside the status buffer at an offset — before its
//! start too —, in memory of their own, or a dangling value with a zero length), the new
//! `DeviceName` lengths and the size to lower to; the rest is the status buffer.
//!
//! Invariants: no panic, no out-of-bounds read, and the promise of `from_raw` kept by this
//! harness; a region reported inside the status buffer lies within it.

use crate::bytes::Bytes;
use core::ffi::c_void;
use core::mem::{offset_of, size_of};
use core::ptr;
use wanlayer_ndis::lightweight_filter::StatusIndication;
use wanlayer_ndis::wan_status::{Placement, DEVICE_NAME_LIMIT_BYTES, PROTOCOL_BUFFER_LIMIT};
use wanlayer_ndis::types::{object_type, Guid, NdisHandle, NdisObjectHeader, UnicodeString};
use wanlayer_ndis::wan::{WanLineUp, NDIS_STATUS_WAN_LINE_DOWN, NDIS_STATUS_WAN_LINE_UP};
use wanlayer_ndis::{Indication, WanStatus};

/// `WanLineUp.ProtocolBuffer`.
const PROTOCOL_BUFFER_AT: usize = offset_of!(WanLineUp, protocol_buffer);
/// `WanLineUp.ProtocolBufferLength`.
const PROTOCOL_LENGTH_AT: usize = offset_of!(WanLineUp, protocol_buffer_length);
/// `WanLineUp.DeviceName`.
const NAME_AT: usize = offset_of!(WanLineUp, device_name);
/// `WanLineUp.DeviceName.Buffer`.
const NAME_BUFFER_AT: usize = NAME_AT + offset_of!(UnicodeString, buffer);

/// Where a region a line up points to is put.
#[derive(Clone, Copy, Debug)]
enum Place {
    Null,
    /// At this offset from the start of the status buffer (negative: before it).
    Inline(isize),
    /// In an allocation of its own.
    Separate,
    /// A dangling, odd address: only used when the region is empty.
    Dangling,
}

impl Place {
    fn read(input: &mut Bytes<'_>) -> Place {
        match input.u8() % 4 {
            0 => Place::Null,
            1 => Place::Inline(isize::from(input.u16() as i16)),
            2 => Place::Separate,
            _ => Place::Dangling,
        }
    }
}

/// Memory a placed region points to, kept alive for the indication.
#[derive(Default)]
struct Separate {
    bytes: Vec<Box<[u8]>>,
    units: Vec<Box<[u16]>>,
}

/// The pointer for a region of `len` bytes placed at `place` relative to `status`, or `None`
/// when that placement would break the promise of `from_raw` (a region outside the status
/// buffer that is not readable for its whole length).
fn pointer(place: Place, len: usize, limit: usize, status: &mut [u8], separate: &mut Separate, units: bool) -> Option<*mut u8> {
    match place {
        Place::Null => Some(ptr::null_mut()),
        Place::Dangling => (len == 0).then(|| ptr::without_provenance_mut(0x11)),
        Place::Inline(offset) => {
            let start = status.as_mut_ptr().wrapping_offset(offset);
            let inside = offset >= 0 && (offset as usize) < status.len();
            // Before the buffer, the region must reach into it: the checks refuse it then.
            let reaches_in = offset < 0 && len > offset.unsigned_abs();
            (inside || reaches_in || len == 0).then_some(start)
        }
        Place::Separate => {
            // Beyond the limit the checks must refuse it; a smaller allocation shows it if not.
            let allocated = len.min(limit + 1);
            if units {
                let mut memory = vec![0x0041u16; allocated.div_ceil(2)].into_boxed_slice();
                let start = memory.as_mut_ptr().cast::<u8>();
                separate.units.push(memory);
                Some(start)
            } else {
                let mut memory = vec![0x5au8; allocated].into_boxed_slice();
                let start = memory.as_mut_ptr();
                separate.bytes.push(memory);
                Some(start)
            }
        }
    }
}

fn write_pointer(status: &mut [u8], at: usize, value: *mut u8) {
    if let Some(field) = status.get_mut(at..at + size_of::<usize>()) {
        field.copy_from_slice(&value.addr().to_ne_bytes());
    }
}

fn read_u32(status: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(status.get(at..at + 4)?.try_into().ok()?))
}

fn read_u16(status: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(status.get(at..at + 2)?.try_into().ok()?))
}

/// Reads every byte of `bytes`, so AddressSanitizer sees any that is out of bounds.
fn touch(bytes: &[u8]) -> u64 {
    bytes.iter().map(|byte| u64::from(*byte)).sum()
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let code = match input.u8() % 4 {
        0 | 1 => NDIS_STATUS_WAN_LINE_UP,
        2 => NDIS_STATUS_WAN_LINE_DOWN,
        _ => input.u32(),
    };
    let flags = input.u8();
    let protocol_place = Place::read(&mut input);
    let name_place = Place::read(&mut input);
    let filled_place = Place::read(&mut input);
    let filled_length = input.u16();
    let filled_maximum = input.u16();
    let lowered_to = input.u32();
    // The status buffer: exactly the rest of the input, on the heap.
    let mut status: Box<[u8]> = input.rest().to_vec().into_boxed_slice();
    let mut separate = Separate::default();

    if code == NDIS_STATUS_WAN_LINE_UP {
        let protocol_len = read_u32(&status, PROTOCOL_LENGTH_AT).unwrap_or(0) as usize;
        let name_len = usize::from(read_u16(&status, NAME_AT).unwrap_or(0));
        let Some(protocol) = pointer(protocol_place, protocol_len, PROTOCOL_BUFFER_LIMIT, &mut status, &mut separate, false)
        else {
            return;
        };
        let Some(name) = pointer(name_place, name_len, usize::from(DEVICE_NAME_LIMIT_BYTES), &mut status, &mut separate, true)
        else {
            return;
        };
        write_pointer(&mut status, PROTOCOL_BUFFER_AT, protocol);
        write_pointer(&mut status, NAME_BUFFER_AT, name);
    }

    let size = u32::try_from(status.len()).expect("a fuzz input is far below 4 GiB");
    let status_start = status.as_mut_ptr();
    let null_buffer = flags & 1 != 0 && !status.is_empty();
    let mut raw = StatusIndication {
        header: NdisObjectHeader::new(object_type::STATUS_INDICATION, 1, size_of::<StatusIndication>()),
        source_handle: NdisHandle::NULL,
        port_number: 0,
        status_code: code,
        flags: 0,
        destination_handle: NdisHandle::NULL,
        request_id: ptr::null_mut(),
        status_buffer: if null_buffer { ptr::null_mut() } else { status_start.cast::<c_void>() },
        status_buffer_size: size,
        guid: Guid::default(),
        ndis_reserved: [ptr::null_mut(); 4],
    };

    // SAFETY: `raw` is a valid indication that only this function touches; its status buffer is
    // `status`, readable and writable for `status_buffer_size` bytes; every region a line up
    // points to outside it was placed by `pointer` in an allocation of its declared length (or
    // beyond the module's limits, where the checks refuse it unread); all live to the end.
    let mut indication = unsafe { Indication::from_raw(&mut raw) }.expect("not null");
    let _ = indication.code();
    if let Ok(layout) = indication.line_up_layout() {
        for (placement, len) in
            [(layout.protocol_buffer, layout.protocol_buffer_len), (layout.device_name, layout.device_name_units * 2)]
        {
            if let Placement::Inline { offset } = placement {
                assert!(
                    offset.checked_add(len).is_some_and(|end| end <= status.len()),
                    "an inline region ends within the buffer"
                );
            }
        }
    }
    match indication.parse() {
        Ok(WanStatus::LineUp(up)) => {
            touch(up.protocol_buffer);
            let _ = up.device_name.iter().map(|unit| u64::from(*unit)).sum::<u64>();
            let _ = format!("{up:?}");
        }
        Ok(WanStatus::LineDown(down)) => {
            let _ = format!("{down:?}");
        }
        Ok(WanStatus::Other(other)) => assert_eq!(other, code),
        Err(error) => {
            let _ = error.to_string();
        }
    }
    if let Ok(lowered) = indication.lower_maximum_total_size(lowered_to) {
        assert!(lowered <= lowered_to, "the size is only ever lowered");
    }

    // The protocol above fills in `DeviceName` during `NdisFIndicateStatus`.
    if code == NDIS_STATUS_WAN_LINE_UP && !null_buffer && status.len() >= size_of::<WanLineUp>() {
        let buffer = indication.as_mut_ptr();
        // SAFETY: `buffer` is `raw`, valid; no borrow from `indication` is alive.
        let status_buffer = unsafe { (*buffer).status_buffer }.cast::<u8>();
        // SAFETY: the status buffer is `size` bytes, at least a `WanLineUp`, written only here.
        let status_now = unsafe { core::slice::from_raw_parts_mut(status_buffer, status.len()) };
        let Some(name) = pointer(
            filled_place,
            usize::from(filled_length),
            usize::from(DEVICE_NAME_LIMIT_BYTES),
            status_now,
            &mut separate,
            true,
        ) else {
            return;
        };
        status_now[NAME_AT..NAME_AT + 2].copy_from_slice(&filled_length.to_ne_bytes());
        status_now[NAME_AT + 2..NAME_AT + 4].copy_from_slice(&filled_maximum.to_ne_bytes());
        write_pointer(status_now, NAME_BUFFER_AT, name);
        match indication.filled_in() {
            Ok(answer) => {
                let _ = answer.device_name.iter().map(|unit| u64::from(*unit)).sum::<u64>();
                let _ = (answer.remote_address, answer.local_address);
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
    drop(separate);
}
