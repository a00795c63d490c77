//! Zero-copy views and parsed forms of the packets wanlayer sees on WAN links.
//!
//! NdisWan's IP and IPv6 miniport edges present themselves as Ethernet: every frame is a 14-byte
//! Ethernet II header, whose MAC addresses end in `20-52-41-53` (" RAS"), followed by an IPv4 or
//! an IPv6 packet. This module reads and rewrites those formats in place, without copying.
//!
//! Every format follows one pattern (smoltcp's `wire`), one format per file:
//!
//! - a byte view over any `T: AsRef<[u8]>` (`Packet<T>`; for Ethernet, `Frame<T>`) with
//!   `new_unchecked`, `new_checked` and `check_len`, getters, and setters when `T: AsMut<[u8]>`;
//! - a `Repr`, the parsed high-level form, with `parse`, `header_len` / `buffer_len` and `emit`.
//!
//! [`FrameSummary`] reads the addresses and ports of a whole NdisWan frame in one call,
//! [`IpFrameRepr`] writes one in one call, [`clamp_tcp_mss`] lowers the MSS option of a TCP SYN in
//! place, and [`checksum`] holds the Internet checksum arithmetic.
//!
//! # Panics
//!
//! `new_unchecked` checks nothing, and the accessors of an unchecked view panic on a short buffer.
//! Once `check_len` has passed (or `new_checked` returned `Ok`), no accessor of that view panics.
//! `Repr::parse`, `Repr::emit`, [`FrameSummary::parse`], the TCP option iterator and the checksum
//! helpers never panic, whatever the input.
//!
//! # Checksums
//!
//! Nothing here verifies a checksum implicitly: on the send path a packet may carry a checksum
//! that task offload fills in later. Call `verify_checksum` where the checksum is known to be
//! final.

use core::fmt;
use core::ops::Range;

pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod ip_frame;
pub mod ipv4;
pub mod ipv6;
pub mod mss_clamp;
pub mod tcp;
pub mod udp;

pub use self::ethernet::{
    EtherType, Frame as EthernetFrame, Repr as EthernetRepr, HEADER_LEN as ETHERNET_HEADER_LEN,
};
pub use self::frame::{FrameSummary, IpSummary, Ports};
pub use self::ip_frame::{IpFrameRepr, TransportRepr};
pub use self::ipv4::{
    Ipv4Address, Packet as Ipv4Packet, Repr as Ipv4Repr, HEADER_LEN as IPV4_HEADER_LEN,
};
pub use self::ipv6::{
    Ipv6Address, Packet as Ipv6Packet, Repr as Ipv6Repr, UpperLayer as Ipv6UpperLayer,
    HEADER_LEN as IPV6_HEADER_LEN,
};
pub use self::mss_clamp::{clamp_tcp_mss, syn_mss, MssClamp, MSS_CLAMP_HEADER_LEN};
pub use self::tcp::{
    OptionIter as TcpOptionIter, Packet as TcpPacket, Repr as TcpRepr, TcpFlags, TcpOption,
    HEADER_LEN as TCP_HEADER_LEN,
};
pub use self::udp::{Packet as UdpPacket, Repr as UdpRepr, HEADER_LEN as UDP_HEADER_LEN};

/// A fixed byte range of a header, as the `field` modules list them.
type Field = Range<usize>;

/// Reads a big-endian `u16` from the first two bytes of `bytes` (a two-byte `Field` slice).
fn read_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Reads a big-endian `u32` from the first four bytes of `bytes` (a four-byte `Field` slice).
fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The length checks of a header that declares its own length: the buffer must hold `min` bytes
/// to read the field, the field must declare at least `min`, and the buffer must hold what it
/// declares.
fn check_declared_len(buffer_len: usize, min: usize, declared: impl FnOnce() -> usize) -> Result<()> {
    if buffer_len < min {
        return Err(Error::Truncated);
    }
    let declared = declared();
    if declared < min {
        Err(Error::Malformed)
    } else if buffer_len < declared {
        Err(Error::Truncated)
    } else {
        Ok(())
    }
}

/// `start..end` cut to a buffer of `len` bytes: a range that indexing never panics on.
fn clamped(len: usize, start: usize, end: usize) -> Range<usize> {
    let end = end.min(len);
    start.min(end)..end
}

/// Why a buffer could not be read as, or written as, a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before a header, or before the length a header gives.
    Truncated,
    /// A field holds a value the format forbids, or that contradicts another field.
    Malformed,
    /// The packet is well formed but uses a feature this module does not handle.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl core::error::Error for Error {}

/// The result of parsing or emitting a packet.
pub type Result<T> = core::result::Result<T, Error>;

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// The broadcast address, `ff-ff-ff-ff-ff-ff`.
    pub const BROADCAST: MacAddress = MacAddress([0xff; 6]);

    /// The last four bytes of every NdisWan MAC address: `20-52-41-53`, ASCII `" RAS"`.
    pub const NDISWAN_SUFFIX: [u8; 4] = *b" RAS";

    /// Builds an address from its six bytes.
    pub const fn new(bytes: [u8; 6]) -> MacAddress {
        MacAddress(bytes)
    }

    /// Builds an address from a slice that must be exactly six bytes long.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if `data` is shorter than six bytes, [`Error::Malformed`] if longer.
    pub fn from_bytes(data: &[u8]) -> Result<MacAddress> {
        match <[u8; 6]>::try_from(data) {
            Ok(bytes) => Ok(MacAddress(bytes)),
            Err(_) if data.len() < 6 => Err(Error::Truncated),
            Err(_) => Err(Error::Malformed),
        }
    }

    /// The six bytes of the address.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether this is a group address (the I/G bit is set); broadcast included.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual address (the I/G bit is clear).
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the address ends in [`NDISWAN_SUFFIX`](Self::NDISWAN_SUFFIX), as NdisWan's
    /// miniport and link addresses do.
    pub fn is_ndiswan(&self) -> bool {
        self.0[2..] == Self::NDISWAN_SUFFIX
    }
}

impl fmt::Display for MacAddress {
    /// Windows style: `AA-BB-CC-DD-EE-FF`, as `ipconfig` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        wanlayer_proto::display::MacText(self.0).fmt(f)
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddress({self})")
    }
}

wanlayer_proto::enum_with_unknown! {
    /// The protocol an IPv4 header's Protocol field, or an IPv6 Next Header field, names.
    pub enum IpProtocol(u8) {
        /// IPv6 Hop-by-Hop Options extension header.
        HopByHop = 0,
        /// Internet Control Message Protocol.
        Icmp = 1,
        /// Internet Group Management Protocol.
        Igmp = 2,
        /// IPv4 encapsulated in IP.
        IpInIp = 4,
        /// Transmission Control Protocol.
        Tcp = 6,
        /// User Datagram Protocol.
        Udp = 17,
        /// IPv6 encapsulated in IP (6in4).
        Ipv6 = 41,
        /// IPv6 Routing extension header.
        Ipv6Route = 43,
        /// IPv6 Fragment extension header.
        Ipv6Frag = 44,
        /// Generic Routing Encapsulation (PPTP's data channel).
        Gre = 47,
        /// IPsec Encapsulating Security Payload.
        Esp = 50,
        /// IPsec Authentication Header.
        Ah = 51,
        /// ICMP for IPv6.
        Ipv6Icmp = 58,
        /// IPv6 No Next Header.
        Ipv6NoNxt = 59,
        /// IPv6 Destination Options extension header.
        Ipv6Opts = 60,
        /// Layer 2 Tunneling Protocol version 3 over IP.
        L2tp = 115,
    }
}

/// An IPv4 or an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpAddress {
    /// An IPv4 address.
    Ipv4(Ipv4Address),
    /// An IPv6 address.
    Ipv6(Ipv6Address),
}

impl From<Ipv4Address> for IpAddress {
    fn from(addr: Ipv4Address) -> Self {
        IpAddress::Ipv4(addr)
    }
}

impl From<Ipv6Address> for IpAddress {
    fn from(addr: Ipv6Address) -> Self {
        IpAddress::Ipv6(addr)
    }
}

impl fmt::Display for IpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpAddress::Ipv4(addr) => addr.fmt(f),
            IpAddress::Ipv6(addr) => addr.fmt(f),
        }
    }
}

/// Byte-array frames shared by the tests of every format, built and checksummed by an independent
/// script: NdisWan-style MAC addresses, real-looking headers.
#[cfg(test)]
mod fixtures {
    /// Ethernet + IPv4 + TCP SYN, Linux-style options: MSS 1460, SACK permitted, timestamps
    /// (TSval 0x0a1b2c3d), NOP, window scale 7. 192.168.1.10:51234 -> 93.184.216.34:443.
    pub const SYN_V4: [u8; 74] = [
        0x3c, 0x00, 0x20, 0x52, 0x41, 0x53, 0x2e, 0x1f, 0x20, 0x52, 0x41, 0x53, //
        0x08, 0x00, 0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, //
        0x26, 0xe9, 0xc0, 0xa8, 0x01, 0x0a, 0x5d, 0xb8, 0xd8, 0x22, 0xc8, 0x22, //
        0x01, 0xbb, 0x8f, 0x3a, 0x1c, 0x02, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, //
        0xfa, 0xf0, 0xaa, 0x0f, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, //
        0x08, 0x0a, 0x0a, 0x1b, 0x2c, 0x3d, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, //
        0x03, 0x07,
    ];

    /// Ethernet + IPv6 + the same TCP SYN options, window 64800.
    /// [2001:db8::10]:51234 -> [2001:db8:1::443]:443.
    pub const SYN_V6: [u8; 94] = [
        0x3c, 0x00, 0x20, 0x52, 0x41, 0x53, 0x2e, 0x1f, 0x20, 0x52, 0x41, 0x53, //
        0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x28, 0x06, 0x40, 0x20, 0x01, //
        0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x04, 0x43, 0xc8, 0x22, 0x01, 0xbb, 0x8f, 0x3a, //
        0x1c, 0x02, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfd, 0x20, 0x3f, 0xa7, //
        0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x0a, 0x1b, //
        0x2c, 0x3d, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    /// Ethernet + IPv4 + UDP DNS query for `example.com` A, id 0x2b7e.
    /// 10.0.0.2:53000 -> 8.8.8.8:53, TTL 128, identification 0x4d21.
    pub const DNS_V4: [u8; 71] = [
        0x3c, 0x00, 0x20, 0x52, 0x41, 0x53, 0x2e, 0x1f, 0x20, 0x52, 0x41, 0x53, //
        0x08, 0x00, 0x45, 0x00, 0x00, 0x39, 0x4d, 0x21, 0x00, 0x00, 0x80, 0x11, //
        0xd3, 0x81, 0x0a, 0x00, 0x00, 0x02, 0x08, 0x08, 0x08, 0x08, 0xcf, 0x08, //
        0x00, 0x35, 0x00, 0x25, 0x1b, 0x69, 0x2b, 0x7e, 0x01, 0x00, 0x00, 0x01, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, //
        0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    /// IPv4 + TCP SYN (no Ethernet header), Windows-style options starting with a NOP, so the
    /// MSS value (1460) sits at an odd offset: NOP, MSS, NOP, WS 8, NOP, SACK permitted.
    /// 10.64.0.7:49812 -> 198.51.100.20:80.
    pub const SYN_ODD_MSS_V4: [u8; 52] = [
        0x45, 0x00, 0x00, 0x34, 0x7a, 0x10, 0x40, 0x00, 0x80, 0x06, 0x4c, 0x25, //
        0x0a, 0x40, 0x00, 0x07, 0xc6, 0x33, 0x64, 0x14, 0xc2, 0x94, 0x00, 0x50, //
        0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0x80, 0x02, 0xff, 0xff, //
        0x7b, 0xee, 0x00, 0x00, 0x01, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, //
        0x08, 0x01, 0x04, 0x02,
    ];

    /// IPv4 with a Router Alert option (IHL 6, DSCP 48) + IGMPv2 membership report for
    /// 224.0.0.251, no Ethernet header.
    pub const IGMP_RA_V4: [u8; 32] = [
        0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x81, 0x6a, //
        0xc0, 0xa8, 0x01, 0x0a, 0xe0, 0x00, 0x00, 0xfb, 0x94, 0x04, 0x00, 0x00, //
        0x16, 0x00, 0x09, 0x04, 0xe0, 0x00, 0x00, 0xfb,
    ];

    /// Ethernet + IPv6 + Hop-by-Hop (PadN) + atomic Fragment header + UDP DNS query.
    /// [2001:db8::10]:53001 -> [2001:db8::53]:53.
    pub const DNS_V6_EXT: [u8; 107] = [
        0x3c, 0x00, 0x20, 0x52, 0x41, 0x53, 0x2e, 0x1f, 0x20, 0x52, 0x41, 0x53, //
        0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x35, 0x00, 0x40, 0x20, 0x01, //
        0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x53, 0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, //
        0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0xcf, 0x09, //
        0x00, 0x35, 0x00, 0x25, 0xd9, 0xa4, 0x2b, 0x7e, 0x01, 0x00, 0x00, 0x01, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, //
        0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    /// A deterministic byte generator (xorshift32) for the never-panic tests.
    pub struct Noise(pub u32);

    impl Noise {
        /// The next pseudo-random byte.
        pub fn byte(&mut self) -> u8 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0.to_be_bytes()[0]
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn mac_address_displays_windows_style() {
        let mac = MacAddress([0x3c, 0x00, 0x20, 0x52, 0x41, 0x53]);
        assert_eq!(mac.to_string(), "3C-00-20-52-41-53");
        assert_eq!(std::format!("{mac:?}"), "MacAddress(3C-00-20-52-41-53)");
        assert_eq!(MacAddress::BROADCAST.to_string(), "FF-FF-FF-FF-FF-FF");
    }

    #[test]
    fn mac_address_classes() {
        let ras = MacAddress::new([0x3c, 0x00, 0x20, 0x52, 0x41, 0x53]);
        assert!(ras.is_ndiswan() && ras.is_unicast() && !ras.is_multicast());
        assert!(!ras.is_broadcast());
        let mdns = MacAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
        assert!(mdns.is_multicast() && !mdns.is_unicast() && !mdns.is_broadcast());
        assert!(!mdns.is_ndiswan());
        let bcast = MacAddress::BROADCAST;
        assert!(bcast.is_broadcast() && bcast.is_multicast() && !bcast.is_unicast());
        assert!(!MacAddress([0x20, 0x52, 0x41, 0x53, 0x00, 0x00]).is_ndiswan());
    }

    #[test]
    fn mac_address_from_bytes_is_checked() {
        let bytes = [1, 2, 3, 4, 5, 6, 7];
        assert_eq!(
            MacAddress::from_bytes(&bytes[..6]),
            Ok(MacAddress([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(MacAddress::from_bytes(&bytes[..5]), Err(Error::Truncated));
        assert_eq!(MacAddress::from_bytes(&bytes), Err(Error::Malformed));
        assert_eq!(MacAddress::from_bytes(&[]), Err(Error::Truncated));
        assert_eq!(MacAddress::new(*b"ab RAS").as_bytes(), b"ab RAS");
    }

    #[test]
    fn enum_with_unknown_round_trips_every_value() {
        for n in 0..=u8::MAX {
            assert_eq!(u8::from(IpProtocol::from(n)), n);
        }
        for n in 0..=u16::MAX {
            assert_eq!(u16::from(EtherType::from(n)), n);
        }
        assert_eq!(IpProtocol::from(47), IpProtocol::Gre);
        assert_eq!(IpProtocol::from(58), IpProtocol::Ipv6Icmp);
        assert_eq!(IpProtocol::from(253), IpProtocol::Unknown(253));
        assert_eq!(EtherType::from(0x86dd), EtherType::Ipv6);
        assert_eq!(EtherType::from(0x88cc), EtherType::Unknown(0x88cc));
    }

    #[test]
    fn error_and_ip_address_display() {
        assert_eq!(Error::Truncated.to_string(), "truncated packet");
        assert_eq!(Error::Malformed.to_string(), "malformed packet");
        assert_eq!(Error::Unsupported.to_string(), "unsupported packet");
        let v4 = IpAddress::from(Ipv4Address::new(10, 0, 0, 2));
        assert_eq!(v4.to_string(), "10.0.0.2");
        let v6 = IpAddress::from(Ipv6Address::from_segments([
            0x2001, 0xdb8, 0, 0, 0, 0, 0, 1,
        ]));
        assert_eq!(v6.to_string(), "2001:db8::1");
    }

    #[test]
    fn clamped_ranges_never_exceed_the_buffer() {
        assert_eq!(clamped(10, 2, 8), 2..8);
        assert_eq!(clamped(10, 2, 20), 2..10);
        assert_eq!(clamped(10, 12, 20), 10..10);
        assert_eq!(clamped(10, 8, 4), 4..4);
    }
}
