//! [`IpFrameRepr`]: a whole NdisWan frame — Ethernet, IPv4 or IPv6, TCP or UDP, payload — written
//! in one call with every length and checksum right; the building counterpart of
//! [`FrameSummary`](super::FrameSummary). The one frame builder of the project: the simulator's
//! traffic, the scenario tests' frames and the demo's are all made by it.

use super::ethernet::{EtherType, Frame, Repr as EthernetRepr, HEADER_LEN as ETHERNET_HEADER_LEN};
use super::{ipv4, ipv6, tcp, udp, Error, IpAddress, IpProtocol, MacAddress, Result};

/// The transport header of an [`IpFrameRepr`]. Its `payload_len` is not used: the frame's payload
/// gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportRepr {
    /// A TCP segment.
    Tcp(tcp::Repr),
    /// A UDP datagram.
    Udp(udp::Repr),
}

impl TransportRepr {
    /// The header with `payload_len` set to `payload_len`.
    fn with_payload_len(self, payload_len: usize) -> Self {
        match self {
            TransportRepr::Tcp(repr) => TransportRepr::Tcp(tcp::Repr {
                payload_len,
                ..repr
            }),
            TransportRepr::Udp(repr) => TransportRepr::Udp(udp::Repr {
                payload_len,
                ..repr
            }),
        }
    }

    /// Header and payload, in bytes.
    fn buffer_len(&self) -> usize {
        match self {
            TransportRepr::Tcp(repr) => repr.buffer_len(),
            TransportRepr::Udp(repr) => repr.buffer_len(),
        }
    }

    fn protocol(&self) -> IpProtocol {
        match self {
            TransportRepr::Tcp(_) => IpProtocol::Tcp,
            TransportRepr::Udp(_) => IpProtocol::Udp,
        }
    }
}

/// An IP frame as NdisWan frames it: an Ethernet II header, an IPv4 header without options (not
/// fragmented, Don't Fragment set) or an IPv6 header without extension headers, a TCP or UDP
/// header and the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpFrameRepr<'a> {
    /// The destination MAC address.
    pub dst_mac: MacAddress,
    /// The source MAC address.
    pub src_mac: MacAddress,
    /// The source address; its family gives the EtherType and the IP version.
    pub src_addr: IpAddress,
    /// The destination address, of the same family.
    pub dst_addr: IpAddress,
    /// The IPv4 TTL or the IPv6 hop limit.
    pub hop_limit: u8,
    /// The IPv4 identification (IPv6 has none).
    pub ident: u16,
    /// The TCP or UDP header.
    pub transport: TransportRepr,
    /// The transport payload.
    pub payload: &'a [u8],
}

impl IpFrameRepr<'_> {
    fn ip_header_len(&self) -> usize {
        match self.src_addr {
            IpAddress::Ipv4(_) => ipv4::HEADER_LEN,
            IpAddress::Ipv6(_) => ipv6::HEADER_LEN,
        }
    }

    /// The length of the whole frame [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        let transport = self.transport.with_payload_len(self.payload.len());
        ETHERNET_HEADER_LEN + self.ip_header_len() + transport.buffer_len()
    }

    /// Writes the frame into the start of `frame`, checksums filled in.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if `frame` is shorter than [`buffer_len`](Self::buffer_len);
    /// [`Error::Malformed`] if the two addresses are of different families; what the headers'
    /// `emit` refuse (a payload too long for the length fields). Bytes may have been written then.
    pub fn emit(&self, frame: &mut [u8]) -> Result<()> {
        let transport = self.transport.with_payload_len(self.payload.len());
        let transport_len = transport.buffer_len();
        let frame = frame.get_mut(..self.buffer_len()).ok_or(Error::Truncated)?;
        let ethertype = match self.src_addr {
            IpAddress::Ipv4(_) => EtherType::Ipv4,
            IpAddress::Ipv6(_) => EtherType::Ipv6,
        };
        EthernetRepr {
            src_addr: self.src_mac,
            dst_addr: self.dst_mac,
            ethertype,
        }
        .emit(&mut Frame::new_unchecked(&mut *frame))?;
        let ip = &mut frame[ETHERNET_HEADER_LEN..];
        match (self.src_addr, self.dst_addr) {
            (IpAddress::Ipv4(src_addr), IpAddress::Ipv4(dst_addr)) => ipv4::Repr {
                src_addr,
                dst_addr,
                protocol: transport.protocol(),
                payload_len: transport_len,
                ttl: self.hop_limit,
                dscp: 0,
                ecn: 0,
                ident: self.ident,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
            }
            .emit(&mut ipv4::Packet::new_unchecked(&mut *ip))?,
            (IpAddress::Ipv6(src_addr), IpAddress::Ipv6(dst_addr)) => ipv6::Repr {
                src_addr,
                dst_addr,
                next_header: transport.protocol(),
                payload_len: transport_len,
                hop_limit: self.hop_limit,
            }
            .emit(&mut ipv6::Packet::new_unchecked(&mut *ip))?,
            _ => return Err(Error::Malformed),
        }
        let segment = &mut ip[self.ip_header_len()..];
        match transport {
            TransportRepr::Tcp(repr) => {
                let mut packet = tcp::Packet::new_unchecked(&mut *segment);
                repr.emit(&mut packet)?;
                packet.payload_mut().copy_from_slice(self.payload);
                packet.fill_checksum(&self.src_addr, &self.dst_addr)
            }
            TransportRepr::Udp(repr) => {
                let mut packet = udp::Packet::new_unchecked(&mut *segment);
                repr.emit(&mut packet)?;
                packet.payload_mut().copy_from_slice(self.payload);
                packet.fill_checksum(&self.src_addr, &self.dst_addr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameSummary, Ipv4Address, Ipv6Address, Ports, TcpFlags};
    use alloc::vec;

    const REMOTE: MacAddress = MacAddress([0x3c, 0x00, 0x20, 0x52, 0x41, 0x53]);
    const LOCAL: MacAddress = MacAddress([0x2e, 0x1f, 0x20, 0x52, 0x41, 0x53]);

    fn syn(mss: u16) -> TransportRepr {
        TransportRepr::Tcp(tcp::Repr {
            src_port: 50_000,
            dst_port: 443,
            seq_number: 1,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window_len: 64_240,
            urgent_at: 0,
            max_seg_size: Some(mss),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: None,
            payload_len: 999,
        })
    }

    fn frame(
        src_addr: IpAddress,
        dst_addr: IpAddress,
        transport: TransportRepr,
        payload: &[u8],
    ) -> IpFrameRepr<'_> {
        IpFrameRepr {
            dst_mac: REMOTE,
            src_mac: LOCAL,
            src_addr,
            dst_addr,
            hop_limit: 64,
            ident: 7,
            transport,
            payload,
        }
    }

    fn emitted(repr: &IpFrameRepr<'_>) -> vec::Vec<u8> {
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut bytes).expect("emitted");
        bytes
    }

    #[test]
    fn every_family_and_transport_reads_back_with_valid_checksums() {
        let v4 = (
            IpAddress::from(Ipv4Address::new(10, 99, 0, 1)),
            IpAddress::from(Ipv4Address::new(10, 100, 0, 9)),
        );
        let mut six = [0u8; 16];
        six[..2].copy_from_slice(&[0x20, 0x01]);
        let v6 = (
            IpAddress::from(Ipv6Address(six)),
            IpAddress::from(Ipv6Address([1; 16])),
        );
        let udp = TransportRepr::Udp(udp::Repr {
            src_port: 53,
            dst_port: 40_000,
            payload_len: 0,
        });
        for (src, dst) in [v4, v6] {
            for (transport, payload) in [(syn(1460), &[][..]), (udp, &[1, 2, 3][..])] {
                let repr = frame(src, dst, transport, payload);
                let bytes = emitted(&repr);
                let summary = FrameSummary::parse(&bytes).unwrap();
                let ip = summary.ip.unwrap();
                assert_eq!((summary.dst_mac, summary.src_mac), (REMOTE, LOCAL));
                assert_eq!(
                    (ip.src_addr, ip.dst_addr, ip.protocol),
                    (src, dst, transport.protocol())
                );
                let ports = if transport == udp {
                    Ports {
                        src: 53,
                        dst: 40_000,
                    }
                } else {
                    Ports {
                        src: 50_000,
                        dst: 443,
                    }
                };
                assert_eq!(ip.ports, Some(ports));
                assert!(crate::wire::mss_clamp::syn_mss(&bytes).is_some() == (transport != udp));
                assert!(bytes.ends_with(payload));
                let segment = &bytes[ETHERNET_HEADER_LEN + repr.ip_header_len()..];
                let valid = match transport {
                    TransportRepr::Tcp(_) => tcp::Packet::new_checked(segment)
                        .unwrap()
                        .verify_checksum(&src, &dst),
                    TransportRepr::Udp(_) => udp::Packet::new_checked(segment)
                        .unwrap()
                        .verify_checksum(&src, &dst),
                };
                assert!(valid, "{transport:?} over {src}");
                if let IpAddress::Ipv4(_) = src {
                    assert!(ipv4::Packet::new_checked(&bytes[ETHERNET_HEADER_LEN..])
                        .unwrap()
                        .verify_checksum());
                }
            }
        }
    }

    #[test]
    fn a_short_buffer_or_mixed_families_are_refused() {
        let v4 = IpAddress::from(Ipv4Address::new(10, 0, 0, 1));
        let v6 = IpAddress::from(Ipv6Address([1; 16]));
        let repr = frame(v4, v4, syn(1400), &[]);
        let mut short = vec![0; repr.buffer_len() - 1];
        assert_eq!(repr.emit(&mut short), Err(Error::Truncated));
        let mixed = frame(v4, v6, syn(1400), &[]);
        let mut bytes = vec![0; mixed.buffer_len()];
        assert_eq!(mixed.emit(&mut bytes), Err(Error::Malformed));
    }
}
