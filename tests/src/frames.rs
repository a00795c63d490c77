//! Frames the simulator does not generate, and readers for frames that crossed the filter.
//!
//! Everything here goes through `wanlayer_core::wire`: frames are built by its `IpFrameRepr`
//! (through the simulator's links) and read with its checked views, so a frame a hook mangled reads
//! as `None` or `false`, never as a panic.

use wanlayer_core::hook::Direction;
use wanlayer_core::wire::{
    EtherType, EthernetFrame, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket, ETHERNET_HEADER_LEN,
    IPV6_HEADER_LEN,
};
use wanlayer_sim::SimLink;

/// Where the layers of an IP frame are.
struct Layers {
    ethertype: EtherType,
    transport: std::ops::Range<usize>,
    protocol: IpProtocol,
    src: IpAddress,
    dst: IpAddress,
}

/// Finds the IP and transport layers of an Ethernet + IPv4/IPv6 frame (IPv6 without extension
/// headers, as NdisWan's test traffic is).
fn layers(frame: &[u8]) -> Option<Layers> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    let ip = ethernet.payload();
    let (transport, protocol, src, dst) = match ethernet.ethertype() {
        EtherType::Ipv4 => {
            let packet = Ipv4Packet::new_checked(ip).ok()?;
            let start = ETHERNET_HEADER_LEN + usize::from(packet.header_len());
            let end = ETHERNET_HEADER_LEN + usize::from(packet.total_len());
            (start..end, packet.protocol(), packet.src_addr().into(), packet.dst_addr().into())
        }
        EtherType::Ipv6 => {
            let packet = Ipv6Packet::new_checked(ip).ok()?;
            let start = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;
            (start..start + usize::from(packet.payload_len()), packet.next_header(), packet.src_addr().into(), packet.dst_addr().into())
        }
        _ => return None,
    };
    Some(Layers { ethertype: ethernet.ethertype(), transport, protocol, src, dst })
}

/// A TCP SYN on `link` (`Send`: server to client, `Receive`: client to server), with an MSS option
/// of `mss` when given and a window-scale option after it, lengths and checksums correct: the
/// simulator's [`SimLink::syn_frame`], built by the one frame builder
/// (`wanlayer_core::wire::IpFrameRepr`).
pub fn syn_frame(link: &SimLink, direction: Direction, mss: Option<u16>) -> Vec<u8> {
    link.syn_frame(direction, mss)
}

/// The MSS option of a TCP frame, `None` without one (or for anything but TCP).
pub fn tcp_mss(frame: &[u8]) -> Option<u16> {
    let layers = layers(frame).filter(|layers| layers.protocol == IpProtocol::Tcp)?;
    TcpPacket::new_checked(frame.get(layers.transport)?).ok()?.mss_option().ok()?
}

/// The IPv4 TTL or the IPv6 hop limit.
pub fn ip_ttl(frame: &[u8]) -> Option<u8> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    match ethernet.ethertype() {
        EtherType::Ipv4 => Some(Ipv4Packet::new_checked(ethernet.payload()).ok()?.ttl()),
        EtherType::Ipv6 => Some(Ipv6Packet::new_checked(ethernet.payload()).ok()?.hop_limit()),
        _ => None,
    }
}

/// Sets the IPv4 TTL (refilling the header checksum) or the IPv6 hop limit. False, and nothing
/// changed, for a frame that is neither.
pub fn set_ttl(frame: &mut [u8], ttl: u8) -> bool {
    let Some(layers) = layers(frame) else { return false };
    let ip = &mut frame[ETHERNET_HEADER_LEN..];
    match layers.ethertype {
        EtherType::Ipv4 => {
            let mut packet = Ipv4Packet::new_unchecked(ip);
            packet.set_ttl(ttl);
            packet.fill_checksum();
        }
        _ => Ipv6Packet::new_unchecked(ip).set_hop_limit(ttl),
    }
    true
}

/// True when the IPv4 header checksum (if any) and the TCP or UDP checksum are all correct.
pub fn checksums_valid(frame: &[u8]) -> bool {
    let Some(layers) = layers(frame) else { return false };
    if layers.ethertype == EtherType::Ipv4 {
        let header_ok = EthernetFrame::new_checked(frame)
            .ok()
            .and_then(|ethernet| Ipv4Packet::new_checked(ethernet.payload()).ok().map(|ip| ip.verify_checksum()));
        if header_ok != Some(true) {
            return false;
        }
    }
    let Some(segment) = frame.get(layers.transport.clone()) else { return false };
    match layers.protocol {
        IpProtocol::Tcp => TcpPacket::new_checked(segment).is_ok_and(|tcp| tcp.verify_checksum(&layers.src, &layers.dst)),
        IpProtocol::Udp => UdpPacket::new_checked(segment).is_ok_and(|udp| udp.verify_checksum(&layers.src, &layers.dst)),
        _ => false,
    }
}
