//! A one-call summary of an NdisWan frame: MAC addresses, EtherType, and for IPv4 and IPv6 the
//! addresses, the upper-layer protocol and the TCP or UDP ports.
//!
//! [`FrameSummary::parse`] works on header-only captures (say, the first 128 bytes of a frame):
//! every header up to and including the fixed part of the TCP or UDP header must be in the
//! buffer, but a payload that goes on past the end of the buffer is not an error. It never panics.

use super::ethernet::{EtherType, Frame};
use super::{ipv4, ipv6, tcp, udp, Error, IpAddress, IpProtocol, MacAddress, Result};

/// The source and destination ports of a TCP or UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ports {
    /// The source port.
    pub src: u16,
    /// The destination port.
    pub dst: u16,
}

/// What [`FrameSummary`] reads from an IPv4 or IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpSummary {
    /// The source address.
    pub src_addr: IpAddress,
    /// The destination address.
    pub dst_addr: IpAddress,
    /// The upper-layer protocol; for IPv6, after the extension headers.
    pub protocol: IpProtocol,
    /// Whether the packet is part of a fragmented datagram.
    pub is_fragment: bool,
    /// The TCP or UDP ports; `None` for other protocols and for fragments other than the first.
    pub ports: Option<Ports>,
}

/// The addresses and ports of an NdisWan frame, read in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameSummary {
    /// The destination MAC address.
    pub dst_mac: MacAddress,
    /// The source MAC address.
    pub src_mac: MacAddress,
    /// The EtherType.
    pub ethertype: EtherType,
    /// The IP summary, for IPv4 and IPv6 frames.
    pub ip: Option<IpSummary>,
}

impl FrameSummary {
    /// Reads the summary of a frame, or of its first bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer ends inside the Ethernet header, the IP header (IPv4
    /// options and IPv6 extension headers included) or the fixed TCP or UDP header;
    /// [`Error::Malformed`] if the IP version does not match the EtherType or a length field
    /// contradicts the headers; [`Error::Unsupported`] for an IPv6 jumbogram.
    pub fn parse(frame: &[u8]) -> Result<FrameSummary> {
        let frame = Frame::new_checked(frame)?;
        let ip = match frame.ethertype() {
            EtherType::Ipv4 => Some(ipv4_summary(frame.payload())?),
            EtherType::Ipv6 => Some(ipv6_summary(frame.payload())?),
            _ => None,
        };
        Ok(FrameSummary {
            dst_mac: frame.dst_addr(),
            src_mac: frame.src_addr(),
            ethertype: frame.ethertype(),
            ip,
        })
    }
}

fn ipv4_summary(bytes: &[u8]) -> Result<IpSummary> {
    let packet = ipv4::Packet::new_unchecked(bytes);
    packet.check_header_len()?;
    if packet.version() != 4 {
        return Err(Error::Malformed);
    }
    let claimed = packet
        .total_len()
        .saturating_sub(packet.header_len().into());
    let ports = if packet.frag_offset() == 0 {
        transport_ports(packet.protocol(), packet.payload(), usize::from(claimed))?
    } else {
        None
    };
    Ok(IpSummary {
        src_addr: packet.src_addr().into(),
        dst_addr: packet.dst_addr().into(),
        protocol: packet.protocol(),
        is_fragment: packet.is_fragment(),
        ports,
    })
}

fn ipv6_summary(bytes: &[u8]) -> Result<IpSummary> {
    let packet = ipv6::Packet::new_unchecked(bytes);
    packet.check_header_len()?;
    if packet.version() != 6 {
        return Err(Error::Malformed);
    }
    let layer = packet.upper_layer()?;
    let ports = if layer.carries_header() {
        let claimed = usize::from(packet.payload_len()).saturating_sub(layer.offset);
        let transport = packet.payload().get(layer.offset..).unwrap_or_default();
        transport_ports(layer.protocol, transport, claimed)?
    } else {
        None
    };
    Ok(IpSummary {
        src_addr: packet.src_addr().into(),
        dst_addr: packet.dst_addr().into(),
        protocol: layer.protocol,
        is_fragment: layer.is_fragment(),
        ports,
    })
}

/// The ports of a TCP or UDP header at the start of `bytes`, of which the IP header claims
/// `claimed` bytes; `None` for other protocols.
fn transport_ports(protocol: IpProtocol, bytes: &[u8], claimed: usize) -> Result<Option<Ports>> {
    // The fixed header must be claimed by the IP header, then present in the buffer.
    let fixed = |len: usize| match (claimed < len, bytes.len() < len) {
        (true, _) => Err(Error::Malformed),
        (false, true) => Err(Error::Truncated),
        (false, false) => Ok(()),
    };
    let ports = match protocol {
        IpProtocol::Tcp => {
            fixed(tcp::HEADER_LEN)?;
            let segment = tcp::Packet::new_unchecked(bytes);
            Ports {
                src: segment.src_port(),
                dst: segment.dst_port(),
            }
        }
        IpProtocol::Udp => {
            fixed(udp::HEADER_LEN)?;
            let datagram = udp::Packet::new_unchecked(bytes);
            Ports {
                src: datagram.src_port(),
                dst: datagram.dst_port(),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(ports))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{Noise, DNS_V4, DNS_V6_EXT, SYN_V4, SYN_V6};
    use crate::wire::{Ipv4Address, Ipv6Address};

    const REMOTE: MacAddress = MacAddress([0x3c, 0x00, 0x20, 0x52, 0x41, 0x53]);
    const LOCAL: MacAddress = MacAddress([0x2e, 0x1f, 0x20, 0x52, 0x41, 0x53]);

    fn v6(segments: [u16; 8]) -> IpAddress {
        Ipv6Address::from_segments(segments).into()
    }

    /// Asserts that every prefix of `frame` shorter than `needed` is `Truncated` and every longer
    /// one gives the summary of the whole frame.
    fn assert_prefixes(frame: &[u8], needed: usize) {
        let full = FrameSummary::parse(frame).unwrap();
        for len in 0..=frame.len() {
            let result = FrameSummary::parse(&frame[..len]);
            if len < needed {
                assert_eq!(result, Err(Error::Truncated), "len {len}");
            } else {
                assert_eq!(result, Ok(full), "len {len}");
            }
        }
    }

    #[test]
    fn summarizes_ipv4_tcp_syn() {
        let summary = FrameSummary::parse(&SYN_V4).unwrap();
        assert_eq!(
            summary,
            FrameSummary {
                dst_mac: REMOTE,
                src_mac: LOCAL,
                ethertype: EtherType::Ipv4,
                ip: Some(IpSummary {
                    src_addr: Ipv4Address::new(192, 168, 1, 10).into(),
                    dst_addr: Ipv4Address::new(93, 184, 216, 34).into(),
                    protocol: IpProtocol::Tcp,
                    is_fragment: false,
                    ports: Some(Ports {
                        src: 51234,
                        dst: 443
                    }),
                }),
            }
        );
        assert!(summary.dst_mac.is_ndiswan() && summary.src_mac.is_ndiswan());
    }

    #[test]
    fn summarizes_ipv6_tcp_syn() {
        let ip = FrameSummary::parse(&SYN_V6).unwrap().ip.unwrap();
        assert_eq!(ip.src_addr, v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]));
        assert_eq!(ip.dst_addr, v6([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x443]));
        assert_eq!(ip.protocol, IpProtocol::Tcp);
        assert_eq!(
            ip.ports,
            Some(Ports {
                src: 51234,
                dst: 443
            })
        );
    }

    #[test]
    fn summarizes_udp_in_both_versions() {
        let ip = FrameSummary::parse(&DNS_V4).unwrap().ip.unwrap();
        assert_eq!(
            (ip.protocol, ip.ports),
            (
                IpProtocol::Udp,
                Some(Ports {
                    src: 53000,
                    dst: 53
                })
            )
        );
        let ip = FrameSummary::parse(&DNS_V6_EXT).unwrap().ip.unwrap();
        assert_eq!(ip.protocol, IpProtocol::Udp);
        assert_eq!(
            ip.ports,
            Some(Ports {
                src: 53001,
                dst: 53
            })
        );
        assert!(!ip.is_fragment);
    }

    #[test]
    fn every_cut_header_is_truncated_and_every_cut_payload_is_fine() {
        assert_prefixes(&SYN_V4, 14 + 20 + 20);
        assert_prefixes(&SYN_V6, 14 + 40 + 20);
        assert_prefixes(&DNS_V4, 14 + 20 + 8);
        assert_prefixes(&DNS_V6_EXT, 14 + 40 + 16 + 8);
    }

    #[test]
    fn header_only_capture_of_a_large_packet() {
        // The first 128 bytes of a 1500-byte IPv4 TCP packet.
        let mut capture = [0u8; 128];
        capture[..SYN_V4.len()].copy_from_slice(&SYN_V4);
        capture[16..18].copy_from_slice(&1500u16.to_be_bytes());
        let ip = FrameSummary::parse(&capture).unwrap().ip.unwrap();
        assert_eq!(
            ip.ports,
            Some(Ports {
                src: 51234,
                dst: 443
            })
        );
        // And of a 1280-byte IPv6 one.
        let mut capture = [0u8; 128];
        capture[..SYN_V6.len()].copy_from_slice(&SYN_V6);
        capture[18..20].copy_from_slice(&1240u16.to_be_bytes());
        let ip = FrameSummary::parse(&capture).unwrap().ip.unwrap();
        assert_eq!(
            ip.ports,
            Some(Ports {
                src: 51234,
                dst: 443
            })
        );
    }

    #[test]
    fn non_ip_frames_have_no_ip_summary() {
        let mut arp = [0u8; 42];
        arp[..12].copy_from_slice(&SYN_V4[..12]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let summary = FrameSummary::parse(&arp).unwrap();
        assert_eq!((summary.ethertype, summary.ip), (EtherType::Arp, None));
        let bare = FrameSummary::parse(&arp[..14]).unwrap();
        assert_eq!(bare.ip, None);
    }

    #[test]
    fn ipv4_fragments_carry_ports_only_in_the_first() {
        let mut first = DNS_V4;
        first[20] |= 0x20; // More Fragments
        let ip = FrameSummary::parse(&first).unwrap().ip.unwrap();
        assert!(ip.is_fragment);
        assert_eq!(
            ip.ports,
            Some(Ports {
                src: 53000,
                dst: 53
            })
        );
        let mut later = DNS_V4;
        later[20..22].copy_from_slice(&(1480u16 / 8).to_be_bytes());
        let ip = FrameSummary::parse(&later[..34]).unwrap().ip.unwrap();
        assert!(ip.is_fragment);
        assert_eq!((ip.protocol, ip.ports), (IpProtocol::Udp, None));
    }

    #[test]
    fn ipv6_fragments_carry_ports_only_in_the_first() {
        let mut later = DNS_V6_EXT;
        later[64..66].copy_from_slice(&1448u16.to_be_bytes());
        let ip = FrameSummary::parse(&later[..70]).unwrap().ip.unwrap();
        assert!(ip.is_fragment);
        assert_eq!((ip.protocol, ip.ports), (IpProtocol::Udp, None));
    }

    #[test]
    fn inconsistent_frames_are_malformed() {
        let mut wrong_version = SYN_V4;
        wrong_version[14] = 0x65;
        assert_eq!(FrameSummary::parse(&wrong_version), Err(Error::Malformed));
        let mut v4_in_v6 = SYN_V6;
        v4_in_v6[14] = 0x45;
        assert_eq!(FrameSummary::parse(&v4_in_v6), Err(Error::Malformed));
        let mut short_total = SYN_V4;
        short_total[16..18].copy_from_slice(&30u16.to_be_bytes()); // room for 10 TCP bytes
        assert_eq!(FrameSummary::parse(&short_total), Err(Error::Malformed));
        let mut short_udp = DNS_V6_EXT;
        short_udp[18..20].copy_from_slice(&20u16.to_be_bytes()); // 16 extension + 4 UDP bytes
        assert_eq!(FrameSummary::parse(&short_udp), Err(Error::Malformed));
        let mut tiny_ihl = DNS_V4;
        tiny_ihl[14] = 0x43;
        assert_eq!(FrameSummary::parse(&tiny_ihl), Err(Error::Malformed));
    }

    #[test]
    fn jumbograms_are_unsupported() {
        let mut jumbo = DNS_V6_EXT;
        jumbo[18..20].fill(0);
        assert_eq!(FrameSummary::parse(&jumbo), Err(Error::Unsupported));
    }

    #[test]
    fn mutated_fixtures_never_panic() {
        for fixture in [&SYN_V4[..], &SYN_V6[..], &DNS_V4[..], &DNS_V6_EXT[..]] {
            let mut frame = [0u8; 107];
            let frame = &mut frame[..fixture.len()];
            for at in 0..fixture.len() {
                for value in [
                    0x00, 0x01, 0x05, 0x0f, 0x2c, 0x3b, 0x40, 0x45, 0x60, 0x80, 0xff,
                ] {
                    frame.copy_from_slice(fixture);
                    frame[at] = value;
                    for len in [at, at + 1, fixture.len()] {
                        let _ = FrameSummary::parse(&frame[..len.min(fixture.len())]);
                    }
                }
            }
        }
    }

    #[test]
    fn random_frames_never_panic() {
        let mut noise = Noise(0x0bad_f00d);
        for _ in 0..50_000 {
            let mut frame = [0u8; 128];
            frame.iter_mut().for_each(|b| *b = noise.byte());
            let (ethertype, version) = match noise.byte() % 3 {
                0 => ([0x08, 0x00], 0x40),
                1 => ([0x86, 0xdd], 0x60),
                _ => ([0x81, 0x00], 0x00),
            };
            frame[12..14].copy_from_slice(&ethertype);
            frame[14] = version | (frame[14] & 0x0f);
            frame[20] = [0, 6, 17, 44, 43, 60, 51][usize::from(noise.byte()) % 7];
            let len = usize::from(noise.byte()) % 129;
            let _ = FrameSummary::parse(&frame[..len]);
        }
    }
}
