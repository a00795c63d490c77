//! IPv6 packets (RFC 8200): the fixed 40-byte header, and a walk over the extension headers to
//! the upper-layer protocol.
//!
//! After [`Packet::check_len`] passes, no accessor of the [`Packet`] panics; after the weaker
//! [`Packet::check_header_len`] (fixed header present, payload possibly cut off by the end of the
//! buffer) none panics either, and the payload accessors return what the buffer holds.

use core::fmt;

use super::{clamped, read_u16, read_u32, Error, IpProtocol, Result};

/// The length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

mod field {
    use crate::wire::Field;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// A 128-bit IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ipv6Address(pub [u8; 16]);

impl Ipv6Address {
    /// The unspecified address, `::`.
    pub const UNSPECIFIED: Ipv6Address = Ipv6Address([0; 16]);

    /// The loopback address, `::1`.
    pub const LOOPBACK: Ipv6Address = Ipv6Address([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    /// Builds an address from its eight 16-bit segments, most significant first.
    pub const fn from_segments(segments: [u16; 8]) -> Ipv6Address {
        let mut bytes = [0; 16];
        let mut i = 0;
        while i < 8 {
            let [hi, lo] = segments[i].to_be_bytes();
            bytes[2 * i] = hi;
            bytes[2 * i + 1] = lo;
            i += 1;
        }
        Ipv6Address(bytes)
    }

    /// Builds an address from a slice that must be exactly sixteen bytes long.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if `data` is shorter than sixteen bytes, [`Error::Malformed`] if
    /// longer.
    pub fn from_bytes(data: &[u8]) -> Result<Ipv6Address> {
        match <[u8; 16]>::try_from(data) {
            Ok(bytes) => Ok(Ipv6Address(bytes)),
            Err(_) if data.len() < 16 => Err(Error::Truncated),
            Err(_) => Err(Error::Malformed),
        }
    }

    /// The sixteen bytes of the address.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The eight 16-bit segments of the address, most significant first.
    pub fn segments(&self) -> [u16; 8] {
        core::net::Ipv6Addr::from(*self).segments()
    }

    /// Whether this is `::`.
    pub const fn is_unspecified(&self) -> bool {
        u128::from_be_bytes(self.0) == 0
    }

    /// Whether this is `::1`.
    pub const fn is_loopback(&self) -> bool {
        u128::from_be_bytes(self.0) == 1
    }

    /// Whether this is a multicast address, `ff00::/8`.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] == 0xff
    }

    /// Whether this is a link-local unicast address, `fe80::/10`.
    pub const fn is_link_local(&self) -> bool {
        self.0[0] == 0xfe && self.0[1] & 0xc0 == 0x80
    }
}

impl From<core::net::Ipv6Addr> for Ipv6Address {
    fn from(addr: core::net::Ipv6Addr) -> Self {
        Ipv6Address(addr.octets())
    }
}

impl From<Ipv6Address> for core::net::Ipv6Addr {
    fn from(addr: Ipv6Address) -> Self {
        core::net::Ipv6Addr::from(addr.0)
    }
}

impl fmt::Display for Ipv6Address {
    /// The RFC 5952 form: lower-case hex, no leading zeros, the longest run of two or more zero
    /// segments (the first of equal runs) as `::`, and IPv4-mapped addresses as `::ffff:a.b.c.d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&core::net::Ipv6Addr::from(*self), f)
    }
}

/// Where the upper-layer header of an IPv6 packet is, found by [`Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The upper-layer protocol: the Next Header value after the last extension header walked.
    pub protocol: IpProtocol,
    /// The offset of the upper-layer header from the start of the IPv6 payload.
    pub offset: usize,
    /// The fragment offset in bytes if a Fragment header was crossed, `None` otherwise.
    pub frag_offset: Option<u16>,
    /// The More Fragments flag of the Fragment header crossed; `false` without one.
    pub more_frags: bool,
}

impl UpperLayer {
    /// Whether the upper-layer header is at [`offset`](Self::offset): true unless the packet is a
    /// fragment other than the first (whose payload continues the data of an earlier one).
    pub fn carries_header(&self) -> bool {
        self.frag_offset.unwrap_or(0) == 0
    }

    /// Whether the packet is part of a fragmented datagram: a Fragment header with a non-zero
    /// offset or More Fragments set. An atomic fragment (RFC 6946) is not.
    pub fn is_fragment(&self) -> bool {
        self.more_frags || !self.carries_header()
    }
}

/// Whether `protocol` is an extension header [`Packet::upper_layer`] walks over.
fn is_extension_header(protocol: IpProtocol) -> bool {
    matches!(
        protocol,
        IpProtocol::HopByHop
            | IpProtocol::Ipv6Route
            | IpProtocol::Ipv6Frag
            | IpProtocol::Ipv6Opts
            | IpProtocol::Ah
    )
}

/// A read/write view of an IPv6 packet in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; see [`check_len`](Self::check_len).
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the fixed header is in the buffer; the payload may extend past the end of the
    /// buffer (a header-only capture). After this, no accessor panics.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than 40 bytes.
    pub fn check_header_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// [`check_header_len`](Self::check_header_len), and checks that the buffer holds the whole
    /// payload as the payload length gives it. A longer buffer (Ethernet padding) is accepted.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than the header plus the payload length.
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN + usize::from(self.payload_len()) {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version/traffic-class/flow-label word.
    fn ver_tc_flow(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    /// The version field; 6 in an IPv6 packet.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    /// The traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// The payload length: the bytes after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The protocol of the first extension header or of the upper-layer header.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv6Address {
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv6Address(bytes)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv6Address {
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv6Address(bytes)
    }

    /// Walks the Hop-by-Hop, Routing, Fragment, Destination Options and Authentication headers to
    /// the upper-layer header. The walk stops at any other protocol (ESP, No Next Header, TCP,
    /// ...) and after the Fragment header of a fragment other than the first.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer ends inside an extension header; [`Error::Malformed`]
    /// if one extends past the payload length; [`Error::Unsupported`] for a jumbogram (payload
    /// length zero with a Hop-by-Hop header, RFC 2675).
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let data = self.buffer.as_ref();
        let claimed = usize::from(self.payload_len());
        let payload = &data[clamped(data.len(), HEADER_LEN, HEADER_LEN + claimed)];
        // Bytes `start..start + len` of the payload.
        let take = |start: usize, len: usize| -> Result<&[u8]> {
            if start + len > claimed {
                Err(Error::Malformed)
            } else {
                payload.get(start..start + len).ok_or(Error::Truncated)
            }
        };
        let mut layer = UpperLayer {
            protocol: self.next_header(),
            offset: 0,
            frag_offset: None,
            more_frags: false,
        };
        if claimed == 0 && layer.protocol == IpProtocol::HopByHop {
            return Err(Error::Unsupported);
        }
        while layer.carries_header() && is_extension_header(layer.protocol) {
            let start = take(layer.offset, 2)?;
            let (next, len_field) = (start[0], usize::from(start[1]));
            let len = match layer.protocol {
                IpProtocol::Ipv6Frag => 8,
                IpProtocol::Ah => (len_field + 2) * 4,
                _ => (len_field + 1) * 8,
            };
            let header = take(layer.offset, len)?;
            if layer.protocol == IpProtocol::Ipv6Frag {
                let word = read_u16(&header[2..4]);
                layer.frag_offset = Some(word & 0xfff8);
                layer.more_frags = word & 0x0001 != 0;
            }
            layer.protocol = IpProtocol::from(next);
            layer.offset += len;
        }
        Ok(layer)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload: the bytes after the fixed header (extension headers included) up to the
    /// payload length, cut at the end of the buffer.
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        let end = HEADER_LEN + usize::from(self.payload_len());
        &data[clamped(data.len(), HEADER_LEN, end)]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the version/traffic-class/flow-label word.
    fn set_ver_tc_flow(&mut self, word: u32) {
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the version field (the low four bits of `version`).
    pub fn set_version(&mut self, version: u8) {
        let word = (self.ver_tc_flow() & 0x0fff_ffff) | (u32::from(version & 0x0f) << 28);
        self.set_ver_tc_flow(word);
    }

    /// Sets the traffic class.
    pub fn set_traffic_class(&mut self, traffic_class: u8) {
        let word = (self.ver_tc_flow() & 0xf00f_ffff) | (u32::from(traffic_class) << 20);
        self.set_ver_tc_flow(word);
    }

    /// Sets the flow label (the low 20 bits of `flow_label`).
    pub fn set_flow_label(&mut self, flow_label: u32) {
        let word = (self.ver_tc_flow() & 0xfff0_0000) | (flow_label & 0x000f_ffff);
        self.set_ver_tc_flow(word);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, protocol: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = u8::from(protocol);
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Address) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.0);
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Address) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.0);
    }

    /// The payload, for writing: the same bytes as `payload`.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.buffer.as_ref().len();
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[clamped(len, HEADER_LEN, end)]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parsed form of a fixed IPv6 header. [`emit`](Self::emit) writes a traffic class and flow
/// label of zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The source address.
    pub src_addr: Ipv6Address,
    /// The destination address.
    pub dst_addr: Ipv6Address,
    /// The protocol of the first extension header or of the upper-layer header.
    pub next_header: IpProtocol,
    /// The length of the payload, extension headers included.
    pub payload_len: usize,
    /// The hop limit.
    pub hop_limit: u8,
}

impl Repr {
    /// Parses the fixed header of a whole packet.
    ///
    /// # Errors
    ///
    /// As [`Packet::check_len`]; [`Error::Malformed`] if the version is not 6;
    /// [`Error::Unsupported`] for a jumbogram (payload length zero with a Hop-by-Hop header).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::Malformed);
        }
        if packet.payload_len() == 0 && packet.next_header() == IpProtocol::HopByHop {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
        })
    }

    /// The length of the header [`emit`](Self::emit) writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of the whole packet: header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the fixed header into the start of `packet`; the payload is left as it is.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than 40 bytes; [`Error::Malformed`] if the
    /// payload length does not fit 16 bits. Nothing is written then.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Packet<&mut T>,
    ) -> Result<()> {
        packet.check_header_len()?;
        let payload_len = u16::try_from(self.payload_len).map_err(|_| Error::Malformed)?;
        packet.set_ver_tc_flow(6 << 28);
        packet.set_payload_len(payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::wire::fixtures::{Noise, DNS_V6_EXT, SYN_V6};
    use std::string::ToString;

    fn addr(text: &str) -> Ipv6Address {
        Ipv6Address::from(text.parse::<core::net::Ipv6Addr>().unwrap())
    }

    #[test]
    fn reads_every_field_of_a_syn() {
        let packet = Packet::new_checked(&SYN_V6[14..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!((packet.traffic_class(), packet.flow_label()), (0, 0));
        assert_eq!(packet.payload_len(), 40);
        assert_eq!(packet.next_header(), IpProtocol::Tcp);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.src_addr(), addr("2001:db8::10"));
        assert_eq!(packet.dst_addr(), addr("2001:db8:1::443"));
        assert_eq!(packet.payload(), &SYN_V6[54..]);
        let layer = packet.upper_layer().unwrap();
        assert_eq!(
            layer,
            UpperLayer {
                protocol: IpProtocol::Tcp,
                offset: 0,
                frag_offset: None,
                more_frags: false
            }
        );
        assert!(layer.carries_header() && !layer.is_fragment());
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = Repr::parse(&Packet::new_checked(&SYN_V6[14..]).unwrap()).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_addr: addr("2001:db8::10"),
                dst_addr: addr("2001:db8:1::443"),
                next_header: IpProtocol::Tcp,
                payload_len: 40,
                hop_limit: 64,
            }
        );
        assert_eq!((repr.header_len(), repr.buffer_len()), (40, 80));
        let mut bytes = [0xa5; 48];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes[..40], SYN_V6[14..54]);
        assert_eq!(bytes[40..], [0xa5; 8]);
    }

    #[test]
    fn emit_rejects_short_buffers_and_long_payloads() {
        let repr = Repr::parse(&Packet::new_checked(&SYN_V6[14..]).unwrap()).unwrap();
        let mut bytes = [0xa5; 40];
        let short = repr.emit(&mut Packet::new_unchecked(&mut bytes[..39]));
        assert_eq!(short, Err(Error::Truncated));
        let long = Repr {
            payload_len: 65_536,
            ..repr
        };
        assert_eq!(
            long.emit(&mut Packet::new_unchecked(&mut bytes[..])),
            Err(Error::Malformed)
        );
        assert_eq!(bytes, [0xa5; 40]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let ip = &SYN_V6[14..];
        for len in 0..ip.len() {
            let prefix = &ip[..len];
            assert_eq!(
                Packet::new_checked(prefix).err(),
                Some(Error::Truncated),
                "len {len}"
            );
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(prefix)),
                Err(Error::Truncated)
            );
        }
    }

    #[test]
    fn wrong_version_and_jumbograms_are_rejected() {
        let mut bytes = SYN_V6;
        bytes[14] = 0x40;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[14..])),
            Err(Error::Malformed)
        );
        bytes[14] = 0x60;
        bytes[18..20].fill(0);
        bytes[20] = 0; // Hop-by-Hop
        let jumbo = Packet::new_checked(&bytes[14..]).unwrap();
        assert_eq!(Repr::parse(&jumbo), Err(Error::Unsupported));
        assert_eq!(jumbo.upper_layer(), Err(Error::Unsupported));
    }

    #[test]
    fn walks_extension_headers_to_udp() {
        let packet = Packet::new_checked(&DNS_V6_EXT[14..]).unwrap();
        assert_eq!(packet.next_header(), IpProtocol::HopByHop);
        let layer = packet.upper_layer().unwrap();
        assert_eq!(
            layer,
            UpperLayer {
                protocol: IpProtocol::Udp,
                offset: 16,
                frag_offset: Some(0),
                more_frags: false
            }
        );
        // An atomic fragment: a Fragment header, but a whole datagram.
        assert!(layer.carries_header() && !layer.is_fragment());
        assert_eq!(
            packet.payload()[layer.offset..][..4],
            [0xcf, 0x09, 0x00, 0x35]
        );
    }

    #[test]
    fn stops_at_a_non_first_fragment() {
        let mut bytes = DNS_V6_EXT;
        bytes[64..66].copy_from_slice(&(1448u16 | 1).to_be_bytes()); // offset 1448, M set
        let layer = Packet::new_checked(&bytes[14..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(layer.protocol, IpProtocol::Udp);
        assert_eq!(layer.frag_offset, Some(1448));
        assert!(layer.more_frags && layer.is_fragment() && !layer.carries_header());
    }

    #[test]
    fn walks_authentication_and_routing_headers() {
        // AH (len 4: 24 bytes) -> Routing (len 0: 8 bytes) -> ESP.
        let mut bytes = [0u8; 40 + 32 + 8];
        bytes[..40].copy_from_slice(&SYN_V6[14..54]);
        bytes[4..6].copy_from_slice(&40u16.to_be_bytes());
        bytes[6] = 51;
        bytes[40] = 43;
        bytes[41] = 4;
        bytes[64] = 50;
        let layer = Packet::new_checked(&bytes[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(
            layer,
            UpperLayer {
                protocol: IpProtocol::Esp,
                offset: 32,
                frag_offset: None,
                more_frags: false
            }
        );
    }

    #[test]
    fn cut_extension_headers_are_truncated_or_malformed() {
        let ip = &DNS_V6_EXT[14..];
        for len in HEADER_LEN..HEADER_LEN + 16 {
            let packet = Packet::new_unchecked(&ip[..len]);
            assert_eq!(packet.check_header_len(), Ok(()));
            assert_eq!(packet.upper_layer(), Err(Error::Truncated), "len {len}");
        }
        assert!(Packet::new_unchecked(&ip[..HEADER_LEN + 16])
            .upper_layer()
            .is_ok());
        // A payload length that ends inside the Fragment header.
        let mut bytes = DNS_V6_EXT;
        bytes[18..20].copy_from_slice(&12u16.to_be_bytes());
        let packet = Packet::new_checked(&bytes[14..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::Malformed));
        assert_eq!(packet.payload().len(), 12);
    }

    #[test]
    fn random_extension_chains_never_panic() {
        let mut noise = Noise(0x9e37_79b9);
        let chain = [0u8, 43, 44, 51, 60, 6, 17, 50, 59];
        for _ in 0..20_000 {
            let mut bytes = [0u8; 120];
            bytes.iter_mut().for_each(|b| *b = noise.byte());
            bytes[0] = 0x60;
            bytes[6] = chain[usize::from(noise.byte()) % chain.len()];
            for at in [40, 48, 56, 64, 72] {
                bytes[at] = chain[usize::from(noise.byte()) % chain.len()];
                bytes[at + 1] &= 0x03;
            }
            let len = usize::from(noise.byte()) % 121;
            let packet = Packet::new_unchecked(&bytes[..len]);
            let _ = Repr::parse(&packet);
            if packet.check_header_len().is_ok() {
                let _ = (packet.upper_layer(), packet.payload());
            }
        }
    }

    #[test]
    fn setters_keep_neighbouring_fields() {
        let mut bytes = SYN_V6;
        let mut packet = Packet::new_checked(&mut bytes[14..]).unwrap();
        packet.set_traffic_class(0xb8);
        packet.set_flow_label(0xf_ffff);
        assert_eq!((packet.version(), packet.traffic_class()), (6, 0xb8));
        assert_eq!(packet.flow_label(), 0xf_ffff);
        packet.set_flow_label(0x1_2345);
        packet.set_version(6);
        assert_eq!(
            (packet.traffic_class(), packet.flow_label()),
            (0xb8, 0x1_2345)
        );
        packet.set_hop_limit(1);
        packet.set_next_header(IpProtocol::Ipv6NoNxt);
        packet.set_src_addr(Ipv6Address::LOOPBACK);
        packet.set_dst_addr(addr("ff02::1"));
        packet.set_payload_len(2);
        assert_eq!(packet.payload_mut().len(), 2);
        assert_eq!(packet.hop_limit(), 1);
        assert_eq!(packet.next_header(), IpProtocol::Ipv6NoNxt);
        assert!(packet.src_addr().is_loopback() && packet.dst_addr().is_multicast());
        assert_eq!(packet.as_ref()[..4], [0x6b, 0x81, 0x23, 0x45]);
        assert_eq!(packet.into_inner().len(), 80);
    }

    #[test]
    fn displays_rfc5952_form() {
        let cases = [
            ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], "2001:db8::1"),
            ([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], "2001:db8::1:0:0:1"),
            ([0x2001, 0, 0, 1, 0, 0, 0, 1], "2001:0:0:1::1"),
            ([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], "2001:db8:0:1:1:1:1:1"),
            (
                [
                    0x2001, 0xdb8, 0xaaaa, 0xbbbb, 0xcccc, 0xdddd, 0xeeee, 0xaaaa,
                ],
                "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa",
            ),
            ([0; 8], "::"),
            ([0, 0, 0, 0, 0, 0, 0, 1], "::1"),
            (
                [0xfe80, 0, 0, 0, 0x1c2b, 0x3a4f, 0xfe, 0x20],
                "fe80::1c2b:3a4f:fe:20",
            ),
            ([0xff02, 0, 0, 0, 0, 1, 0xff00, 1], "ff02::1:ff00:1"),
            ([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201], "::ffff:192.0.2.1"),
            ([0x2001, 0xdb8, 0, 0, 0, 0, 0x100, 0], "2001:db8::100:0"),
        ];
        for (segments, text) in cases {
            let addr = Ipv6Address::from_segments(segments);
            assert_eq!(addr.to_string(), text);
            assert_eq!(addr.segments(), segments);
        }
    }

    #[test]
    fn ipv6_address_forms() {
        let a = addr("fe80::1");
        assert!(a.is_link_local() && !a.is_multicast() && !a.is_loopback());
        assert!(!addr("fec0::1").is_link_local());
        assert!(Ipv6Address::UNSPECIFIED.is_unspecified() && !a.is_unspecified());
        assert_eq!(Ipv6Address::from_bytes(a.as_bytes()), Ok(a));
        assert_eq!(Ipv6Address::from_bytes(&[0; 15]), Err(Error::Truncated));
        assert_eq!(Ipv6Address::from_bytes(&[0; 17]), Err(Error::Malformed));
        assert_eq!(core::net::Ipv6Addr::from(a).to_string(), "fe80::1");
    }
}
