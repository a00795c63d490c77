//! The TCP MSS clamp of an NdisWan frame: the MSS option of a TCP SYN lowered in place, with the
//! TCP checksum adjusted incrementally (RFC 1624, [`tcp::Packet::set_mss_option`]), so the rest
//! of the segment is never read. The one clamp of the project: the sample vendor driver, the
//! demo's hook and the scenario tests' hook all call [`clamp_tcp_mss`].
//!
//! Only what can be clamped safely is: TCP over IPv4 in a packet that is not a later fragment,
//! or over IPv6 with no extension header; an MSS option of length 4 among the TCP header's
//! declared options. A frame may be only its first bytes ([`MSS_CLAMP_HEADER_LEN`] suffice): the
//! clamp reads and writes the headers alone.
//!
//! The adjustment assumes the checksum field holds the full checksum. A send whose checksum the
//! adapter is to compute (task offload) carries only the pseudo-header sum there; NdisWan's IP
//! edges do not offer checksum offload to the IP layer, so on them the field is always full.

use core::ops::Range;

use super::ethernet::{EtherType, Frame, HEADER_LEN as ETHERNET_HEADER_LEN};
use super::{ipv4, ipv6, tcp, IpProtocol};

/// The most bytes of a frame [`clamp_tcp_mss`] and [`syn_mss`] read: the Ethernet header, the
/// longest IPv4 header and the longest TCP header.
pub const MSS_CLAMP_HEADER_LEN: usize = ETHERNET_HEADER_LEN + 60 + 60;

/// What [`clamp_tcp_mss`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MssClamp {
    /// Where the TCP header lies in the frame: the bytes that changed are inside it. A caller that
    /// clamped a copy of the frame's first bytes writes this range of the copy back.
    pub tcp_header: Range<usize>,
    /// The MSS the SYN announced.
    pub old_mss: u16,
    /// The MSS it announces now.
    pub new_mss: u16,
}

/// Where the TCP header of `frame` starts, if the frame carries TCP that may be clamped.
fn tcp_offset(frame: &[u8]) -> Option<usize> {
    let ethernet = Frame::new_checked(frame).ok()?;
    match ethernet.ethertype() {
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_unchecked(ethernet.payload());
            ip.check_header_len().ok()?;
            (ip.version() == 4 && ip.frag_offset() == 0 && ip.protocol() == IpProtocol::Tcp)
                .then(|| ETHERNET_HEADER_LEN + usize::from(ip.header_len()))
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_unchecked(ethernet.payload());
            ip.check_header_len().ok()?;
            (ip.version() == 6 && ip.next_header() == IpProtocol::Tcp)
                .then_some(ETHERNET_HEADER_LEN + ipv6::HEADER_LEN)
        }
        _ => None,
    }
}

/// The MSS option of a TCP SYN in `frame` (or its first [`MSS_CLAMP_HEADER_LEN`] bytes), under
/// the same conditions as [`clamp_tcp_mss`]; `None` for anything else.
pub fn syn_mss(frame: &[u8]) -> Option<u16> {
    let segment = tcp::Packet::new_checked(frame.get(tcp_offset(frame)?..)?).ok()?;
    if !segment.syn() {
        return None;
    }
    segment.mss_option().ok()?
}

/// Lowers the MSS option of a TCP SYN in `frame` (or its first [`MSS_CLAMP_HEADER_LEN`] bytes)
/// to `limit`, in place, with the TCP checksum adjusted. `None`, and nothing changed, when there is
/// nothing to do: not a SYN that may be clamped (see the module), no MSS option, an option before
/// it that is malformed, or an MSS already at most `limit`. Never panics.
pub fn clamp_tcp_mss(frame: &mut [u8], limit: u16) -> Option<MssClamp> {
    let offset = tcp_offset(frame)?;
    let mut segment = tcp::Packet::new_checked(frame.get_mut(offset..)?).ok()?;
    if !segment.syn() {
        return None;
    }
    let old_mss = segment.mss_option().ok()??;
    if old_mss <= limit || segment.set_mss_option(limit) != Ok(true) {
        return None;
    }
    let tcp_header = offset..offset + usize::from(segment.header_len());
    Some(MssClamp {
        tcp_header,
        old_mss,
        new_mss: limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{DNS_V4, SYN_ODD_MSS_V4, SYN_V4, SYN_V6};
    use crate::wire::{IpAddress, Ipv4Packet, Ipv6Packet, TcpPacket};
    use alloc::vec::Vec;

    /// `SYN_ODD_MSS_V4` (an IP packet) behind the Ethernet header of `SYN_V4`.
    fn odd_mss_frame() -> Vec<u8> {
        let mut frame = SYN_V4[..ETHERNET_HEADER_LEN].to_vec();
        frame.extend_from_slice(&SYN_ODD_MSS_V4);
        frame
    }

    /// The TCP checksum of the frame verifies against its IP addresses.
    fn tcp_checksum_ok(frame: &[u8], offset: usize) -> bool {
        let ip = &frame[ETHERNET_HEADER_LEN..];
        let (src, dst): (IpAddress, IpAddress) = if frame[12..14] == [0x86, 0xdd] {
            let packet = Ipv6Packet::new_checked(ip).unwrap();
            (packet.src_addr().into(), packet.dst_addr().into())
        } else {
            let packet = Ipv4Packet::new_checked(ip).unwrap();
            (packet.src_addr().into(), packet.dst_addr().into())
        };
        TcpPacket::new_checked(&frame[offset..])
            .unwrap()
            .verify_checksum(&src, &dst)
    }

    #[test]
    fn a_syn_above_the_limit_is_clamped_with_a_correct_checksum() {
        let odd = odd_mss_frame();
        for fixture in [&SYN_V4[..], &odd[..], &SYN_V6[..]] {
            let mut frame = fixture.to_vec();
            assert_eq!(syn_mss(&frame), Some(1460));
            let clamp = clamp_tcp_mss(&mut frame, 1360).expect("clamped");
            assert_eq!((clamp.old_mss, clamp.new_mss), (1460, 1360));
            assert_eq!(syn_mss(&frame), Some(1360));
            assert!(tcp_checksum_ok(&frame, clamp.tcp_header.start));
            let changed: Vec<usize> = (0..frame.len())
                .filter(|&i| frame[i] != fixture[i])
                .collect();
            assert!(changed.iter().all(|i| clamp.tcp_header.contains(i)));
        }
    }

    #[test]
    fn the_first_bytes_of_a_frame_suffice() {
        let mut head = [0u8; MSS_CLAMP_HEADER_LEN];
        let len = SYN_V4.len().min(head.len());
        head[..len].copy_from_slice(&SYN_V4[..len]);
        let clamp = clamp_tcp_mss(&mut head[..len], 1200).expect("clamped");
        let mut whole = SYN_V4.to_vec();
        whole[clamp.tcp_header.clone()].copy_from_slice(&head[clamp.tcp_header.clone()]);
        assert_eq!(syn_mss(&whole), Some(1200));
        assert!(tcp_checksum_ok(&whole, clamp.tcp_header.start));
    }

    #[test]
    fn nothing_else_is_touched() {
        let mut frame = SYN_V4.to_vec();
        assert_eq!(
            clamp_tcp_mss(&mut frame, 1460),
            None,
            "already at the limit"
        );
        assert_eq!(frame, SYN_V4);
        let mut dns = DNS_V4.to_vec();
        assert_eq!(clamp_tcp_mss(&mut dns, 500), None, "not TCP");
        assert_eq!((dns, syn_mss(&DNS_V4)), (DNS_V4.to_vec(), None));
        let mut later_fragment = SYN_V4.to_vec();
        later_fragment[ETHERNET_HEADER_LEN + 7] = 1;
        assert_eq!(clamp_tcp_mss(&mut later_fragment, 500), None);
        for len in 0..SYN_V4.len() {
            let mut cut = SYN_V4[..len].to_vec();
            let clamped = clamp_tcp_mss(&mut cut, 500);
            assert!(clamped.is_none() || len >= 14 + 20 + 20, "{len} bytes");
        }
    }
}
