//! Status indications: NdisWan's line up and line down, as the filter's status callback sees them.
//!
//! The kernel driver reads `NDIS_WAN_LINE_UP` out of the raw status buffer at fixed offsets; the
//! simulator hands the filter the same information as a typed record ([`WanLineUp`]), or as raw
//! bytes ([`StatusBuffer::Raw`]) for the malformed indications a filter must survive.

use wanlayer_core::link::{LineDown, LineUp, WanQuality};
use wanlayer_core::wire::{EtherType, MacAddress};
use wanlayer_core::NdisStatus;

/// `NDIS_WAN_LINE_UP` as an owned record. `local_address` and `device_name` are in/out: the
/// protocol above fills them in while the indication passes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WanLineUp {
    /// `LinkSpeed`, in units of 100 bit/s.
    pub link_speed_100bps: u32,
    /// `MaximumTotalSize`.
    pub maximum_total_size: u32,
    /// `Quality`.
    pub quality: WanQuality,
    /// `SendWindow`.
    pub send_window: u16,
    /// `RemoteAddress`.
    pub remote_address: MacAddress,
    /// `LocalAddress`, filled in by the protocol.
    pub local_address: MacAddress,
    /// `ProtocolType`.
    pub protocol_type: EtherType,
    /// `DeviceName` (UTF-16), filled in by the protocol.
    pub device_name: Vec<u16>,
    /// `ProtocolBuffer`.
    pub protocol_buffer: Vec<u8>,
}

impl WanLineUp {
    /// The record as the engine's borrowed view.
    pub fn as_line_up(&self) -> LineUp<'_> {
        LineUp {
            link_speed_100bps: self.link_speed_100bps,
            maximum_total_size: self.maximum_total_size,
            quality: self.quality,
            send_window: self.send_window,
            remote_address: self.remote_address,
            local_address: self.local_address,
            protocol_type: self.protocol_type,
            device_name: &self.device_name,
            protocol_buffer: &self.protocol_buffer,
        }
    }

    /// The device name decoded, unpaired surrogates replaced.
    pub fn device_name_string(&self) -> String {
        String::from_utf16_lossy(&self.device_name)
    }
}

/// The status buffer of an indication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusBuffer {
    /// A well-formed `NDIS_WAN_LINE_UP`.
    LineUp(WanLineUp),
    /// A well-formed `NDIS_WAN_LINE_DOWN`.
    LineDown(LineDown),
    /// Bytes that do not form the structure the code promises (too short, inconsistent), or the
    /// buffer of a code the simulator does not type.
    Raw(Vec<u8>),
}

/// One `NDIS_STATUS_INDICATION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusIndication {
    pub(crate) serial: u64,
    /// `StatusCode`.
    pub code: NdisStatus,
    /// `StatusBuffer`.
    pub buffer: StatusBuffer,
}

impl StatusIndication {
    /// A new indication (its serial is assigned when the miniport indicates it).
    pub fn new(code: NdisStatus, buffer: StatusBuffer) -> Self {
        Self { serial: 0, code, buffer }
    }

    /// The simulator's serial number of the indication (0 for one the filter originated).
    pub fn serial(&self) -> u64 {
        self.serial
    }
}

/// What the protocol above saw of one status indication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRecord {
    /// The indication as it reached the protocol, after the protocol filled in its fields.
    pub indication: StatusIndication,
    /// The `MaximumTotalSize` NdisWan indicated, for a line up that came from the miniport.
    pub indicated_total_size: Option<u32>,
}
