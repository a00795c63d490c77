//! What NdisWan hands the filter in the scenarios: its status indications, the line-up buffer
//! (`NDIS_WAN_LINE_UP`, NdisWan's private bytes, the protocol buffer, the device name it points
//! to) and the line down, built once here for every scenario and test that indicates them.

use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::ptr;

use crate::common::{zeroed, Owned};

use wanlayer_ndis::lightweight_filter::StatusIndication;
use wanlayer_ndis::types::{object_type, NdisObjectHeader, UnicodeString};
use wanlayer_ndis::wan::{WanLineDown, WanLineUp};
use wanlayer_ndis::wan_status::ANSWER_LATER_OFFSET;

/// `NDIS_STATUS_WAN_LINE_UP`.
pub const WAN_LINE_UP: u32 = 0x4001_0008;
/// `NDIS_STATUS_WAN_LINE_DOWN`.
pub const WAN_LINE_DOWN: u32 = 0x4001_0009;
/// The remote address NdisWan gives a link (its last four bytes name the link).
pub const REMOTE: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x07];
/// NdisWan's IP edges' MAC ends in " RAS".
pub const RAS_MAC: [u8; 6] = [0x00, 0x00, 0x20, 0x52, 0x41, 0x53];
/// The name of NdisWan's IPv4 edge, which a line up's `DeviceName` also carries.
pub const NDISWANIP: &str = "\\DEVICE\\NDISWANIP";
/// Where Wanarp's IPv4 protocol buffer carries the link's local IPv4 address.
const PROTOCOL_LOCAL_IPV4: usize = 584;

/// NdisWan's line-up status buffer: `NDIS_WAN_LINE_UP`, its private bytes (the "answer later"
/// byte first), then the protocol buffer.
#[repr(C)]
pub struct LineUpBuffer {
    /// `NDIS_WAN_LINE_UP`.
    pub line_up: WanLineUp,
    /// NdisWan's private bytes; the first is the "answer later" byte.
    pub private: [u8; 8],
    /// The IPv4 protocol buffer `ProtocolBuffer` points to.
    pub protocol: [u8; 600],
}

const _: () = assert!(offset_of!(LineUpBuffer, private) == ANSWER_LATER_OFFSET);

/// A line up of the link [`REMOTE`] on [`NDISWANIP`] (1 Mbit/s, 1,500-byte frames, local IPv4
/// address 10.0.0.7 in the protocol buffer, `LocalAddress` left for the protocol above), with
/// everything its buffer points to alive as long as the value.
pub struct LineUp {
    /// The status buffer, as the driver reads (and may write) it.
    pub buffer: Owned<LineUpBuffer>,
    /// `DeviceName`'s characters.
    _device_name: Owned<Vec<u16>>,
    /// `NDIS_STATUS_WAN_LINE_UP` over the whole buffer.
    indication: Owned<StatusIndication>,
}

impl LineUp {
    /// The line-up buffer NdisWan indicates for a new IPv4 link.
    pub fn new() -> Self {
        let device_name = Owned::new(NDISWANIP.encode_utf16().collect::<Vec<u16>>());
        let mut buffer = zeroed::<LineUpBuffer>();
        buffer.protocol[PROTOCOL_LOCAL_IPV4..PROTOCOL_LOCAL_IPV4 + 4].copy_from_slice(&[10, 0, 0, 7]);
        // SAFETY: `buffer` is alive; the pointer is derived from its one pointer.
        let protocol = unsafe { ptr::addr_of_mut!((*buffer.ptr()).protocol) }.cast::<u8>();
        let name_bytes = u16::try_from(device_name.len() * 2).expect("a short name");
        buffer.line_up = WanLineUp {
            link_speed: 1_000_000,
            maximum_total_size: 1500,
            quality: 2,
            send_window: 10,
            remote_address: REMOTE,
            local_address: [0; 6],
            protocol_buffer_length: 600,
            protocol_buffer: protocol,
            protocol_type: 0x0800,
            device_name: UnicodeString { length: name_bytes, maximum_length: name_bytes, buffer: device_name.as_ptr().cast_mut() },
        };
        let indication = status_indication(WAN_LINE_UP, buffer.ptr().cast(), size_of::<LineUpBuffer>());
        Self { buffer, _device_name: device_name, indication }
    }

    /// `NDIS_STATUS_WAN_LINE_UP` over the whole buffer, valid while `self` is.
    pub fn indication(&self) -> *mut StatusIndication {
        self.indication.ptr()
    }

    /// `NDIS_STATUS_WAN_LINE_UP` over the buffer's first `size` bytes (keep `self` alive while
    /// the driver is handed it).
    pub fn truncated(&self, size: usize) -> Owned<StatusIndication> {
        status_indication(WAN_LINE_UP, self.buffer.ptr().cast(), size)
    }
}

impl Default for LineUp {
    fn default() -> Self {
        Self::new()
    }
}

/// The line down of the link [`REMOTE`].
pub struct LineDown {
    /// `NDIS_WAN_LINE_DOWN`.
    _buffer: Owned<WanLineDown>,
    /// `NDIS_STATUS_WAN_LINE_DOWN` over the buffer.
    indication: Owned<StatusIndication>,
}

impl LineDown {
    /// NdisWan's line down for the link [`REMOTE`].
    pub fn new() -> Self {
        let buffer = Owned::new(WanLineDown { remote_address: REMOTE, local_address: [0; 6] });
        let indication = status_indication(WAN_LINE_DOWN, buffer.ptr().cast(), size_of::<WanLineDown>());
        Self { _buffer: buffer, indication }
    }

    /// `NDIS_STATUS_WAN_LINE_DOWN` over the buffer, valid while `self` is.
    pub fn indication(&self) -> *mut StatusIndication {
        self.indication.ptr()
    }
}

impl Default for LineDown {
    fn default() -> Self {
        Self::new()
    }
}

/// An `NDIS_STATUS_INDICATION` of `code` over `size` bytes at `buffer`.
pub fn status_indication(code: u32, buffer: *mut c_void, size: usize) -> Owned<StatusIndication> {
    let mut indication = zeroed::<StatusIndication>();
    indication.header = NdisObjectHeader::new(object_type::STATUS_INDICATION, 1, size_of::<StatusIndication>());
    indication.status_code = code;
    indication.status_buffer = buffer;
    indication.status_buffer_size = u32::try_from(size).expect("a small buffer");
    indication
}
