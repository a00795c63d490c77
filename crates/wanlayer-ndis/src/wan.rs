//! `NDIS_WAN_LINE_UP` and `NDIS_WAN_LINE_DOWN`: the status buffers of
//! `NDIS_STATUS_WAN_LINE_UP` / `NDIS_STATUS_WAN_LINE_DOWN`.
//!
//! Read them through [`wan_status::Indication`](crate::wan_status::Indication), which validates every
//! length and pointer first.

use crate::types::{RawNdisStatus, UnicodeString};

/// `NDIS_STATUS_WAN_LINE_UP`: a WAN link came up; the status buffer is a [`WanLineUp`].
pub const NDIS_STATUS_WAN_LINE_UP: RawNdisStatus = 0x4001_0008;

/// `NDIS_STATUS_WAN_LINE_DOWN`: a WAN link went down; the status buffer is a [`WanLineDown`].
pub const NDIS_STATUS_WAN_LINE_DOWN: RawNdisStatus = 0x4001_0009;

/// `NDIS_WAN_LINE_UP` (the same layout in the NDIS 5 and NDIS 6 headers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WanLineUp {
    /// `LinkSpeed`, in units of 100 bit/s.
    pub link_speed: u32,
    /// `MaximumTotalSize`: the largest frame NdisWan accepts; a filter may lower it on the way up.
    pub maximum_total_size: u32,
    /// `Quality` (`NDIS_WAN_QUALITY`).
    pub quality: i32,
    /// `SendWindow`.
    pub send_window: u16,
    /// `RemoteAddress`.
    pub remote_address: [u8; 6],
    /// `LocalAddress`: filled in by the protocol above during the indication.
    pub local_address: [u8; 6],
    /// `ProtocolBufferLength`.
    pub protocol_buffer_length: u32,
    /// `ProtocolBuffer`: undocumented, version-dependent bytes.
    pub protocol_buffer: *mut u8,
    /// `ProtocolType`: the EtherType, in host order (0x0800, 0x86DD).
    pub protocol_type: u16,
    /// `DeviceName`: filled in by the protocol above during the indication.
    pub device_name: UnicodeString,
}

/// `NDIS_WAN_LINE_DOWN`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WanLineDown {
    /// `RemoteAddress` of the link that went down.
    pub remote_address: [u8; 6],
    /// `LocalAddress` of the link that went down.
    pub local_address: [u8; 6],
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(WanLineUp, link_speed) == 0);
    assert!(offset_of!(WanLineUp, maximum_total_size) == 4);
    assert!(offset_of!(WanLineUp, quality) == 8);
    assert!(offset_of!(WanLineUp, send_window) == 12);
    assert!(offset_of!(WanLineUp, remote_address) == 14);
    assert!(offset_of!(WanLineUp, local_address) == 20);
    assert!(offset_of!(WanLineUp, protocol_buffer_length) == 28);
    assert!(offset_of!(WanLineUp, protocol_buffer) == 32);
    assert!(offset_of!(WanLineUp, protocol_type) == 40);
    assert!(offset_of!(WanLineUp, device_name) == 48);
    assert!(size_of::<WanLineUp>() == 64);
    assert!(offset_of!(WanLineDown, local_address) == 6);
    assert!(size_of::<WanLineDown>() == 12);
};

#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(WanLineUp, link_speed) == 0);
    assert!(offset_of!(WanLineUp, maximum_total_size) == 4);
    assert!(offset_of!(WanLineUp, quality) == 8);
    assert!(offset_of!(WanLineUp, send_window) == 12);
    assert!(offset_of!(WanLineUp, remote_address) == 14);
    assert!(offset_of!(WanLineUp, local_address) == 20);
    assert!(offset_of!(WanLineUp, protocol_buffer_length) == 28);
    assert!(offset_of!(WanLineUp, protocol_buffer) == 32);
    assert!(offset_of!(WanLineUp, protocol_type) == 36);
    assert!(offset_of!(WanLineUp, device_name) == 40);
    assert!(size_of::<WanLineUp>() == 48);
    assert!(offset_of!(WanLineDown, local_address) == 6);
    assert!(size_of::<WanLineDown>() == 12);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn line_up_layout_matches_the_facts() {
        let fields = [
            ("LinkSpeed", offset_of!(WanLineUp, link_speed), 0),
            ("MaximumTotalSize", offset_of!(WanLineUp, maximum_total_size), 4),
            ("Quality", offset_of!(WanLineUp, quality), 8),
            ("SendWindow", offset_of!(WanLineUp, send_window), 12),
            ("RemoteAddress", offset_of!(WanLineUp, remote_address), 14),
            ("LocalAddress", offset_of!(WanLineUp, local_address), 20),
            ("ProtocolBufferLength", offset_of!(WanLineUp, protocol_buffer_length), 28),
            ("ProtocolBuffer", offset_of!(WanLineUp, protocol_buffer), 32),
            ("ProtocolType", offset_of!(WanLineUp, protocol_type), 40),
            ("DeviceName", offset_of!(WanLineUp, device_name), 48),
        ];
        crate::check_offsets("NDIS_WAN_LINE_UP.", &fields);
        assert_eq!(size_of::<WanLineUp>(), 64);
        assert_eq!(size_of::<WanLineDown>(), 12);
        assert_eq!(offset_of!(WanLineDown, local_address), 6);
    }
}
