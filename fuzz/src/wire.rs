//! The engine's packet views (`wanlayer_core::wire`) and the TCP MSS rewrite.
//!
//! The first byte chooses what the rest is read as: a whole NdisWan frame, an Ethernet, IPv4,
//! IPv6, TCP or UDP header, or an IPv4 / IPv6 packet whose TCP MSS option is rewritten.
//!
//! Invariants:
//! * no view, parser, iterator or checksum helper panics, whatever the bytes (the views are
//!   used after `check_len` / `new_checked` only, as their promise requires);
//! * a parsed header that emits parses back to the same `Repr`;
//! * after `set_mss_option` on a segment whose checksum was correct, the checksum is still
//!   correct — verified by an independent one's-complement sum here, not by the crate's own
//!   helpers — the option reads the new value, and no other byte changed.

use crate::bytes::Bytes;
use wanlayer_core::wire::{
    EthernetFrame, EthernetRepr, FrameSummary, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpPacket,
    TcpRepr, UdpPacket, UdpRepr,
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let selector = input.u8();
    match selector % 8 {
        0 => summary(input.rest()),
        1 => ethernet(input.rest()),
        2 => ipv4(input.rest()),
        3 => ipv6(input.rest()),
        4 => tcp(input.rest(), None),
        5 => udp(input.rest()),
        6 | 7 => {
            let mss = input.u16();
            let mut packet = input.rest().to_vec();
            if selector % 8 == 6 {
                mss_rewrite_v4(&mut packet, mss);
            } else {
                mss_rewrite_v6(&mut packet, mss);
            }
        }
        _ => unreachable!("selector % 8"),
    }
}

fn summary(frame: &[u8]) {
    if let Ok(summary) = FrameSummary::parse(frame) {
        let _ = format!("{:?} {} {}", summary, summary.dst_mac, summary.src_mac);
        if let Some(ip) = summary.ip {
            let _ = format!("{} {}", ip.src_addr, ip.dst_addr);
        }
    }
}

fn ethernet(bytes: &[u8]) {
    let Ok(frame) = EthernetFrame::new_checked(bytes) else { return };
    let _ = (frame.payload(), frame.dst_addr().is_ndiswan(), frame.src_addr().is_multicast());
    let Ok(repr) = EthernetRepr::parse(&frame) else { return };
    let mut buffer = vec![0xa5u8; bytes.len()];
    if repr.emit(&mut EthernetFrame::new_unchecked(&mut buffer[..])).is_ok() {
        assert_eq!(EthernetRepr::parse(&EthernetFrame::new_unchecked(&buffer[..])), Ok(repr));
        assert_eq!(buffer[..14], bytes[..14], "an Ethernet header is all fields");
    }
    match repr.ethertype {
        wanlayer_core::wire::EtherType::Ipv4 => ipv4(frame.payload()),
        wanlayer_core::wire::EtherType::Ipv6 => ipv6(frame.payload()),
        _ => {}
    }
}

fn ipv4(bytes: &[u8]) {
    let packet = Ipv4Packet::new_unchecked(bytes);
    if packet.check_header_len().is_ok() {
        let _ = (packet.verify_checksum(), packet.options(), packet.src_addr().to_string(), packet.is_fragment());
    }
    let Ok(packet) = Ipv4Packet::new_checked(bytes) else { return };
    let payload = packet.payload();
    let Ok(repr) = Ipv4Repr::parse(&packet) else { return };
    let mut buffer = vec![0xa5u8; repr.buffer_len()];
    if repr.emit(&mut Ipv4Packet::new_unchecked(&mut buffer[..])).is_ok() {
        let emitted = Ipv4Packet::new_checked(&buffer[..]).expect("an emitted header checks");
        assert!(emitted.verify_checksum(), "an emitted header carries its checksum");
        assert_eq!(Ipv4Repr::parse(&emitted), Ok(repr));
    }
    let addresses = (IpAddress::Ipv4(repr.src_addr), IpAddress::Ipv4(repr.dst_addr));
    if !packet.is_fragment() {
        match repr.protocol {
            IpProtocol::Tcp => tcp(payload, Some(addresses)),
            IpProtocol::Udp => udp(payload),
            _ => {}
        }
    }
}

fn ipv6(bytes: &[u8]) {
    let Ok(packet) = Ipv6Packet::new_checked(bytes) else { return };
    let payload = packet.payload();
    let upper = packet.upper_layer();
    let Ok(repr) = Ipv6Repr::parse(&packet) else { return };
    let mut buffer = vec![0xa5u8; repr.buffer_len()];
    if repr.emit(&mut Ipv6Packet::new_unchecked(&mut buffer[..])).is_ok() {
        assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&buffer[..])), Ok(repr));
    }
    if let Ok(upper) = upper {
        let _ = upper.is_fragment();
        if upper.carries_header() {
            let rest = payload.get(upper.offset..).expect("the upper-layer header lies within the payload");
            let addresses = (IpAddress::Ipv6(repr.src_addr), IpAddress::Ipv6(repr.dst_addr));
            match upper.protocol {
                IpProtocol::Tcp => tcp(rest, Some(addresses)),
                IpProtocol::Udp => udp(rest),
                _ => {}
            }
        }
    }
}

fn tcp(bytes: &[u8], addresses: Option<(IpAddress, IpAddress)>) {
    let Ok(packet) = TcpPacket::new_checked(bytes) else { return };
    let _ = (packet.payload(), packet.options(), packet.mss_option(), packet.flags());
    for option in packet.option_iter() {
        let _ = option;
    }
    if let Some((src, dst)) = addresses {
        let _ = packet.verify_checksum(&src, &dst);
    }
    let Ok(repr) = TcpRepr::parse(&packet) else { return };
    let mut buffer = vec![0xa5u8; repr.buffer_len()];
    if repr.emit(&mut TcpPacket::new_unchecked(&mut buffer[..])).is_ok() {
        assert_eq!(TcpRepr::parse(&TcpPacket::new_unchecked(&buffer[..])), Ok(repr), "an emitted TCP header parses back");
    }
}

fn udp(bytes: &[u8]) {
    let Ok(packet) = UdpPacket::new_checked(bytes) else { return };
    let _ = packet.payload();
    let Ok(repr) = UdpRepr::parse(&packet) else { return };
    let mut buffer = vec![0xa5u8; repr.buffer_len()];
    if repr.emit(&mut UdpPacket::new_unchecked(&mut buffer[..])).is_ok() {
        assert_eq!(UdpRepr::parse(&UdpPacket::new_unchecked(&buffer[..])), Ok(repr));
    }
}

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd last byte padded with
/// zero), folded to 16 bits.
fn ones_complement_sum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        let mut words = part.chunks_exact(2);
        for word in &mut words {
            sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            sum += u64::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The TCP/IPv4 pseudo-header.
fn pseudo_v4(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(len as u16).to_be_bytes());
    pseudo
}

/// The TCP/IPv6 pseudo-header.
fn pseudo_v6(src: [u8; 16], dst: [u8; 16], len: usize) -> Vec<u8> {
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&(len as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 6]);
    pseudo
}

/// Gives `segment` a correct checksum (the crate's `fill_checksum`, checked independently),
/// rewrites its MSS option to `mss`, and checks the result independently.
fn rewrite_and_check(segment: &mut [u8], pseudo: &[u8], addresses: (IpAddress, IpAddress), mss: u16) {
    let Ok(mut packet) = TcpPacket::new_checked(&mut *segment) else { return };
    if packet.fill_checksum(&addresses.0, &addresses.1).is_err() {
        return;
    }
    assert_eq!(ones_complement_sum(&[pseudo, packet.as_ref()]), 0xffff, "fill_checksum gives a correct checksum");
    let before = packet.as_ref().to_vec();
    let old = packet.mss_option();
    match packet.set_mss_option(mss) {
        Ok(true) => {
            assert!(matches!(old, Ok(Some(_))), "an MSS option was rewritten where one was read: {old:?}");
            assert_eq!(packet.mss_option(), Ok(Some(mss)), "the option reads the new value");
            assert_eq!(ones_complement_sum(&[pseudo, packet.as_ref()]), 0xffff, "the checksum still verifies after the rewrite");
            assert!(packet.verify_checksum(&addresses.0, &addresses.1));
            let changed = before.iter().zip(packet.as_ref()).enumerate().filter(|(_, (a, b))| a != b).map(|(at, _)| at);
            for at in changed {
                let checksum = (16..18).contains(&at);
                assert!(checksum || at >= 20, "only the checksum and the option's value change; byte {at} did");
            }
            let diff = before.iter().zip(packet.as_ref()).skip(20).filter(|(a, b)| a != b).count();
            assert!(diff <= 2, "at most the two bytes of the MSS value change among the options: {diff}");
        }
        Ok(false) => {
            assert_eq!(old, Ok(None));
            assert_eq!(packet.as_ref(), &before[..], "without an MSS option nothing changes");
        }
        Err(_) => {
            assert!(old.is_err());
            assert_eq!(packet.as_ref(), &before[..], "a malformed option list changes nothing");
        }
    }
}

fn mss_rewrite_v4(bytes: &mut [u8], mss: u16) {
    let Ok(packet) = Ipv4Packet::new_checked(&*bytes) else { return };
    if packet.protocol() != IpProtocol::Tcp || packet.is_fragment() {
        return;
    }
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    let start = usize::from(packet.header_len());
    let end = usize::from(packet.total_len());
    let Some(segment) = bytes.get_mut(start..end) else { return };
    let pseudo = pseudo_v4(src.0, dst.0, segment.len());
    rewrite_and_check(segment, &pseudo, (IpAddress::Ipv4(src), IpAddress::Ipv4(dst)), mss);
}

fn mss_rewrite_v6(bytes: &mut [u8], mss: u16) {
    let Ok(packet) = Ipv6Packet::new_checked(&*bytes) else { return };
    let Ok(upper) = packet.upper_layer() else { return };
    if upper.protocol != IpProtocol::Tcp || !upper.carries_header() {
        return;
    }
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    let start = wanlayer_core::wire::IPV6_HEADER_LEN + upper.offset;
    let end = wanlayer_core::wire::IPV6_HEADER_LEN + usize::from(packet.payload_len());
    let Some(segment) = bytes.get_mut(start..end) else { return };
    let pseudo = pseudo_v6(src.0, dst.0, segment.len());
    rewrite_and_check(segment, &pseudo, (IpAddress::Ipv6(src), IpAddress::Ipv6(dst)), mss);
}
