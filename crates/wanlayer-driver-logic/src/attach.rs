//! `FilterAttach`'s decision: whether to attach to an adapter and as which kind of module.
//!
//! The filter binds to 802.3 and WAN media (the INF's `FilterMediaTypes`), so NDIS offers it
//! NdisWan's IP and IPv6 edges (which present Ethernet), NdisWan's monitor edge (`NdisMediumWan`)
//! and every Ethernet adapter. Any other medium is refused with `NDIS_STATUS_INVALID_PARAMETER`
//! (the filter is optional: the adapter works without it).
//!
//! The kind comes from `BaseMiniportName` alone: it is the only signal that tells NdisWan's IPv4
//! edge from its IPv6 edge, both of which present Ethernet with a MAC ending in `20-52-41-53`
//! (" RAS"). The MAC and the medium are checked too; a disagreement is reported
//! ([`Attach::warning`]) but does not change the kind.

use wanlayer_core::module::ModuleKind;
use wanlayer_core::wire::MacAddress;
use wanlayer_ndis::types::NdisMedium;

/// `BaseMiniportName` of NdisWan's IPv4 edge, "WAN Miniport (IP)" (facts §3).
pub const NDISWAN_IP: &str = "\\DEVICE\\NDISWANIP";
/// `BaseMiniportName` of NdisWan's IPv6 edge, "WAN Miniport (IPv6)".
pub const NDISWAN_IPV6: &str = "\\DEVICE\\NDISWANIPV6";
/// The last four bytes of the permanent MAC of NdisWan's IP edges: " RAS".
pub const RAS_MAC_SUFFIX: [u8; 4] = [0x20, 0x52, 0x41, 0x53];

/// An attach the filter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attach {
    /// What the module is attached to.
    pub kind: ModuleKind,
    /// The adapter's current MAC (all zero when NDIS gave fewer than six bytes).
    pub mac: MacAddress,
    /// Why the signals disagree, if they do (logged; the attach goes ahead).
    pub warning: Option<&'static str>,
}

/// The attach decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachDecision {
    /// Attach as described.
    Attach(Attach),
    /// Refuse: a medium the filter does not handle.
    RefuseMedium(NdisMedium),
}

/// Decides an attach from the parameters NDIS passed: `MiniportMediaType`, `MacAddressLength` and
/// `CurrentMacAddress`, and the UTF-16 units of `BaseMiniportName`.
pub fn decide(medium: NdisMedium, mac_length: u16, current_mac: &[u8], base_miniport_name: &[u16]) -> AttachDecision {
    if !matches!(medium, NdisMedium::Ethernet | NdisMedium::Wan) {
        return AttachDecision::RefuseMedium(medium);
    }
    let mac = mac_address(mac_length, current_mac);
    let kind = module_kind(base_miniport_name);
    AttachDecision::Attach(Attach { kind, mac, warning: attach_warning(kind, &mac, medium) })
}

/// The MAC of the attach parameters: the first six bytes of `CurrentMacAddress` when
/// `MacAddressLength` says there are at least six, else all zero.
pub fn mac_address(mac_length: u16, current_mac: &[u8]) -> MacAddress {
    let mut mac = MacAddress([0; 6]);
    if usize::from(mac_length) >= mac.0.len() {
        if let Some(bytes) = current_mac.get(..mac.0.len()) {
            mac.0.copy_from_slice(bytes);
        }
    }
    mac
}

/// What a module is, from `BaseMiniportName` (UTF-16, compared ASCII-case-insensitively with
/// [`NDISWAN_IP`] and [`NDISWAN_IPV6`]).
pub fn module_kind(base_miniport_name: &[u16]) -> ModuleKind {
    let is = |expected: &str| {
        base_miniport_name.len() == expected.len()
            && base_miniport_name
                .iter()
                .zip(expected.bytes())
                .all(|(&unit, byte)| u8::try_from(unit).is_ok_and(|unit| unit.eq_ignore_ascii_case(&byte)))
    };
    if is(NDISWAN_IP) {
        ModuleKind::NdisWanIp
    } else if is(NDISWAN_IPV6) {
        ModuleKind::NdisWanIpv6
    } else {
        ModuleKind::PassThrough
    }
}

/// True for a MAC address ending in NdisWan's `20-52-41-53`.
pub fn has_ras_mac(mac: &MacAddress) -> bool {
    mac.0[2..] == RAS_MAC_SUFFIX
}

/// Why the signals of an attach disagree, if they do.
pub fn attach_warning(kind: ModuleKind, mac: &MacAddress, medium: NdisMedium) -> Option<&'static str> {
    match (kind.is_wan(), has_ras_mac(mac), medium) {
        (true, false, _) => Some("NdisWan edge by name without the 20-52-41-53 MAC suffix"),
        (true, true, NdisMedium::Ethernet) => None,
        (true, true, _) => Some("NdisWan edge by name on a medium other than 802.3"),
        (false, true, NdisMedium::Ethernet) => {
            Some("20-52-41-53 MAC suffix on an adapter whose name is not an NdisWan IP edge: passed through")
        }
        (false, _, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;

    fn utf16(text: &str) -> Vec<u16> {
        text.encode_utf16().collect()
    }

    const RAS_MAC: [u8; 6] = [0x00, 0x00, 0x20, 0x52, 0x41, 0x53];
    const NIC_MAC: [u8; 6] = [0x00, 0x15, 0x5d, 0x01, 0x02, 0x03];

    #[test]
    fn ndiswan_edges_by_name_in_any_case() {
        assert_eq!(module_kind(&utf16("\\DEVICE\\NDISWANIP")), ModuleKind::NdisWanIp);
        assert_eq!(module_kind(&utf16("\\Device\\NdisWanIp")), ModuleKind::NdisWanIp);
        assert_eq!(module_kind(&utf16("\\device\\ndiswanipv6")), ModuleKind::NdisWanIpv6);
        assert_eq!(module_kind(&utf16("\\DEVICE\\NDISWANBH")), ModuleKind::PassThrough);
        assert_eq!(module_kind(&utf16("\\DEVICE\\{5F0A0D5C-0000-0000-0000-000000000000}")), ModuleKind::PassThrough);
        assert_eq!(module_kind(&[]), ModuleKind::PassThrough);
    }

    #[test]
    fn names_that_only_look_alike_pass_through() {
        assert_eq!(module_kind(&utf16("\\DEVICE\\NDISWANIP ")), ModuleKind::PassThrough);
        assert_eq!(module_kind(&utf16("\\DEVICE\\NDISWAN")), ModuleKind::PassThrough);
        assert_eq!(module_kind(&utf16("\\DEVICE\\NDISWANIPV")), ModuleKind::PassThrough);
        // A non-ASCII unit whose low byte is an ASCII letter ('I' + 0x100) must not match.
        let mut tricky = utf16("\\DEVICE\\NDISWANIP");
        tricky[16] = 0x0149;
        assert_eq!(module_kind(&tricky), ModuleKind::PassThrough);
    }

    #[test]
    fn media_other_than_802_3_and_wan_are_refused() {
        let name = utf16(NDISWAN_IP);
        for medium in [NdisMedium::WirelessWan, NdisMedium::Unknown(1), NdisMedium::Unknown(19)] {
            assert_eq!(decide(medium, 6, &RAS_MAC, &name), AttachDecision::RefuseMedium(medium));
        }
        assert!(matches!(decide(NdisMedium::Ethernet, 6, &NIC_MAC, &[]), AttachDecision::Attach(_)));
        assert!(matches!(decide(NdisMedium::Wan, 6, &NIC_MAC, &[]), AttachDecision::Attach(_)));
    }

    #[test]
    fn ndiswan_ip_edge_attaches_without_warning() {
        let decision = decide(NdisMedium::Ethernet, 6, &RAS_MAC, &utf16(NDISWAN_IPV6));
        let expected = Attach { kind: ModuleKind::NdisWanIpv6, mac: MacAddress(RAS_MAC), warning: None };
        assert_eq!(decision, AttachDecision::Attach(expected));
    }

    #[test]
    fn every_disagreement_is_warned_about_and_the_name_wins() {
        let wan = utf16(NDISWAN_IP);
        let AttachDecision::Attach(no_ras_mac) = decide(NdisMedium::Ethernet, 6, &NIC_MAC, &wan) else { panic!("refused") };
        assert_eq!(no_ras_mac.kind, ModuleKind::NdisWanIp);
        assert!(no_ras_mac.warning.is_some_and(|warning| warning.contains("without")));
        let AttachDecision::Attach(wan_medium) = decide(NdisMedium::Wan, 6, &RAS_MAC, &wan) else { panic!("refused") };
        assert_eq!(wan_medium.kind, ModuleKind::NdisWanIp);
        assert!(wan_medium.warning.is_some_and(|warning| warning.contains("medium")));
        let AttachDecision::Attach(ras_nic) = decide(NdisMedium::Ethernet, 6, &RAS_MAC, &utf16("\\DEVICE\\X")) else { panic!("refused") };
        assert_eq!(ras_nic.kind, ModuleKind::PassThrough);
        assert!(ras_nic.warning.is_some_and(|warning| warning.contains("passed through")));
        let AttachDecision::Attach(monitor) = decide(NdisMedium::Wan, 6, &RAS_MAC, &utf16("\\DEVICE\\NDISWANBH")) else {
            panic!("refused")
        };
        assert_eq!((monitor.kind, monitor.warning), (ModuleKind::PassThrough, None));
    }

    #[test]
    fn short_or_missing_macs_read_as_zero() {
        assert_eq!(mac_address(6, &NIC_MAC), MacAddress(NIC_MAC));
        assert_eq!(mac_address(32, &[1, 2, 3, 4, 5, 6, 7, 8]), MacAddress([1, 2, 3, 4, 5, 6]));
        assert_eq!(mac_address(5, &NIC_MAC), MacAddress([0; 6]));
        assert_eq!(mac_address(0, &NIC_MAC), MacAddress([0; 6]));
        // A length that claims more bytes than the array holds reads nothing.
        assert_eq!(mac_address(6, &NIC_MAC[..4]), MacAddress([0; 6]));
    }
}
