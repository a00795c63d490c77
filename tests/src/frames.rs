//! Frames the simulator does not generate, and readers for frames that crossed the filter.
//!
//! Everything here goes through `wanlayer_core::wire`: the helpers build frames with its `Repr`s
//! and read them with its checked views, so a frame a hook mangled reads as `None` or `false`,
//! never as a panic.

use wanlayer_core::hook::Direction;
use wanlayer_core::wire::{
    EtherType, EthernetFrame, EthernetRepr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpFlags, TcpPacket,
    TcpRepr, UdpPacket, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, IPV6_HEADER_LEN,
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
/// of `mss` when given and a window-scale option after it, lengths and checksums correct.
///
/// # Panics
/// When the wire module refuses to emit the headers (a bug in the helper, not in the filter).
pub fn syn_frame(link: &SimLink, direction: Direction, mss: Option<u16>) -> Vec<u8> {
    let (dst_mac, src_mac, src_ip, dst_ip, src_port, dst_port) = match direction {
        Direction::Send => (link.remote, link.local, link.server_ip, link.client_ip, 443, 50_000),
        Direction::Receive => (link.local, link.remote, link.client_ip, link.server_ip, 50_000, 443),
    };
    let tcp = TcpRepr {
        src_port,
        dst_port,
        seq_number: 0x1000_0000,
        ack_number: 0,
        flags: TcpFlags::SYN,
        window_len: 64_240,
        urgent_at: 0,
        max_seg_size: mss,
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: None,
        payload_len: 0,
    };
    let (ethertype, ip_len) = match src_ip {
        IpAddress::Ipv4(_) => (EtherType::Ipv4, IPV4_HEADER_LEN),
        IpAddress::Ipv6(_) => (EtherType::Ipv6, IPV6_HEADER_LEN),
    };
    let mut frame = vec![0xa5; ETHERNET_HEADER_LEN + ip_len + tcp.buffer_len()];
    EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype }
        .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]))
        .expect("ethernet header");
    let ip = &mut frame[ETHERNET_HEADER_LEN..];
    match (src_ip, dst_ip) {
        (IpAddress::Ipv4(src_addr), IpAddress::Ipv4(dst_addr)) => Ipv4Repr {
            src_addr,
            dst_addr,
            protocol: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut *ip))
        .expect("ipv4 header"),
        (IpAddress::Ipv6(src_addr), IpAddress::Ipv6(dst_addr)) => {
            Ipv6Repr { src_addr, dst_addr, next_header: IpProtocol::Tcp, payload_len: tcp.buffer_len(), hop_limit: 64 }
                .emit(&mut Ipv6Packet::new_unchecked(&mut *ip))
                .expect("ipv6 header")
        }
        _ => panic!("a link has addresses of one IP version"),
    }
    let mut segment = TcpPacket::new_unchecked(&mut ip[ip_len..]);
    tcp.emit(&mut segment).expect("tcp header");
    segment.fill_checksum(&src_ip, &dst_ip).expect("tcp checksum");
    frame
}

/// For a TCP SYN whose MSS option is above `clamp`: the frame offset of its TCP header and that
/// header with the MSS clamped and the checksum adjusted in place. `None` for anything else.
pub fn clamped_tcp_header(frame: &[u8], clamp: u16) -> Option<(usize, Vec<u8>)> {
    let layers = layers(frame).filter(|layers| layers.protocol == IpProtocol::Tcp)?;
    let mut segment = frame.get(layers.transport.clone())?.to_vec();
    let mut tcp = TcpPacket::new_checked(&mut segment[..]).ok()?;
    if !tcp.syn() || tcp.mss_option().ok()?.is_none_or(|mss| mss <= clamp) {
        return None;
    }
    tcp.set_mss_option(clamp).ok()?;
    let header_len = usize::from(tcp.header_len());
    segment.truncate(header_len);
    Some((layers.transport.start, segment))
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
