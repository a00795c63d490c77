//! NDIS status codes the engine produces or recognises.

use core::fmt;

/// An `NDIS_STATUS` value. Unknown codes survive a round trip unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NdisStatus(pub u32);

impl NdisStatus {
    /// `NDIS_STATUS_SUCCESS`.
    pub const SUCCESS: Self = Self(0x0000_0000);
    /// `NDIS_STATUS_PENDING`.
    pub const PENDING: Self = Self(0x0000_0103);
    /// `NDIS_STATUS_WAN_LINE_UP`: a WAN link came up.
    pub const WAN_LINE_UP: Self = Self(0x4001_0008);
    /// `NDIS_STATUS_WAN_LINE_DOWN`: a WAN link went down.
    pub const WAN_LINE_DOWN: Self = Self(0x4001_0009);
    /// `NDIS_STATUS_WAN_FRAGMENT`: NdisWan saw a fragment error.
    pub const WAN_FRAGMENT: Self = Self(0x4001_000A);
    /// `NDIS_STATUS_WAN_GET_STATS`: NdisWan asks for link statistics.
    pub const WAN_GET_STATS: Self = Self(0x4001_0014);
    /// `NDIS_STATUS_FAILURE`.
    pub const FAILURE: Self = Self(0xC000_0001);
    /// `NDIS_STATUS_RESOURCES`: an allocation failed.
    pub const RESOURCES: Self = Self(0xC000_009A);
    /// `NDIS_STATUS_SEND_ABORTED` (`STATUS_NDIS_SEND_ABORTED`): a send was cancelled
    /// (`FilterCancelSendNetBufferLists`). Not `NDIS_STATUS_REQUEST_ABORTED`, a different code.
    pub const SEND_ABORTED: Self = Self(0xC023_000C);
    /// `NDIS_STATUS_MEDIA_DISCONNECTED`: the link the packet belonged to is down.
    pub const MEDIA_DISCONNECTED: Self = Self(0xC023_001F);
    /// `NDIS_STATUS_PAUSED`: the filter module is pausing or paused.
    pub const PAUSED: Self = Self(0xC023_002A);

    /// The symbolic name of a known code.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::SUCCESS => "NDIS_STATUS_SUCCESS",
            Self::PENDING => "NDIS_STATUS_PENDING",
            Self::WAN_LINE_UP => "NDIS_STATUS_WAN_LINE_UP",
            Self::WAN_LINE_DOWN => "NDIS_STATUS_WAN_LINE_DOWN",
            Self::WAN_FRAGMENT => "NDIS_STATUS_WAN_FRAGMENT",
            Self::WAN_GET_STATS => "NDIS_STATUS_WAN_GET_STATS",
            Self::FAILURE => "NDIS_STATUS_FAILURE",
            Self::RESOURCES => "NDIS_STATUS_RESOURCES",
            Self::SEND_ABORTED => "NDIS_STATUS_SEND_ABORTED",
            Self::MEDIA_DISCONNECTED => "NDIS_STATUS_MEDIA_DISCONNECTED",
            Self::PAUSED => "NDIS_STATUS_PAUSED",
            _ => return None,
        })
    }

    /// True for success and informational codes (severity bits `00` or `01`).
    pub fn is_success(self) -> bool {
        self.0 >> 30 <= 1
    }
}

impl fmt::Display for NdisStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (0x{:08X})", self.0),
            None => write!(f, "0x{:08X}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn known_codes_print_with_their_names_and_unknown_codes_as_hex() {
        assert_eq!(format!("{}", NdisStatus::PAUSED), "NDIS_STATUS_PAUSED (0xC023002A)");
        assert_eq!(format!("{}", NdisStatus(0x1234)), "0x00001234");
        assert_eq!(NdisStatus(0x4001_0008), NdisStatus::WAN_LINE_UP);
    }

    #[test]
    fn severity_decides_success() {
        assert!(NdisStatus::SUCCESS.is_success());
        assert!(NdisStatus::WAN_LINE_UP.is_success());
        assert!(!NdisStatus::RESOURCES.is_success());
        assert!(!NdisStatus::PAUSED.is_success());
    }
}
