//! IPv4 packets (RFC 791): the header with its options, addresses and the header checksum.
//!
//! After [`Packet::check_len`] passes, no accessor of the [`Packet`] panics; after the weaker
//! [`Packet::check_header_len`] (whole header present, payload possibly cut off by the end of the
//! buffer) none panics either, and the payload accessors return what the buffer holds.

use core::fmt;

use super::{checksum, clamped, read_u16, Error, IpProtocol, Result};

/// The length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use crate::wire::Field;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Don't Fragment, in the flags/fragment-offset word.
const DONT_FRAG: u16 = 0x4000;
/// More Fragments, in the flags/fragment-offset word.
const MORE_FRAGS: u16 = 0x2000;
/// The fragment offset, in 8-byte units, in the flags/fragment-offset word.
const FRAG_OFFSET: u16 = 0x1fff;

/// A 32-bit IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ipv4Address(pub [u8; 4]);

impl Ipv4Address {
    /// The unspecified address, `0.0.0.0`.
    pub const UNSPECIFIED: Ipv4Address = Ipv4Address([0; 4]);

    /// The limited broadcast address, `255.255.255.255`.
    pub const BROADCAST: Ipv4Address = Ipv4Address([0xff; 4]);

    /// Builds an address from its four octets, `a.b.c.d`.
    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Ipv4Address {
        Ipv4Address([a, b, c, d])
    }

    /// Builds an address from a slice that must be exactly four bytes long.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if `data` is shorter than four bytes, [`Error::Malformed`] if longer.
    pub fn from_bytes(data: &[u8]) -> Result<Ipv4Address> {
        match <[u8; 4]>::try_from(data) {
            Ok(bytes) => Ok(Ipv4Address(bytes)),
            Err(_) if data.len() < 4 => Err(Error::Truncated),
            Err(_) => Err(Error::Malformed),
        }
    }

    /// The four octets of the address.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// Whether this is `0.0.0.0`.
    pub const fn is_unspecified(&self) -> bool {
        u32::from_be_bytes(self.0) == 0
    }

    /// Whether this is `255.255.255.255`.
    pub const fn is_broadcast(&self) -> bool {
        u32::from_be_bytes(self.0) == u32::MAX
    }

    /// Whether this is a multicast address, `224.0.0.0/4`.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0xf0 == 224
    }

    /// Whether this is a loopback address, `127.0.0.0/8`.
    pub const fn is_loopback(&self) -> bool {
        self.0[0] == 127
    }
}

impl From<core::net::Ipv4Addr> for Ipv4Address {
    fn from(addr: core::net::Ipv4Addr) -> Self {
        Ipv4Address(addr.octets())
    }
}

impl From<Ipv4Address> for core::net::Ipv4Addr {
    fn from(addr: Ipv4Address) -> Self {
        core::net::Ipv4Addr::from(addr.0)
    }
}

impl fmt::Display for Ipv4Address {
    /// Dotted quad: `192.0.2.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&core::net::Ipv4Addr::from(*self), f)
    }
}

/// A read/write view of an IPv4 packet in a buffer.
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

    /// Checks that the whole header, options included, is in the buffer and that its lengths agree
    /// with each other; the payload may extend past the end of the buffer (a header-only capture).
    /// After this, no accessor panics.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer ends inside the header; [`Error::Malformed`] if the
    /// header length is below 20 bytes or the total length is below the header length.
    pub fn check_header_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN || usize::from(self.total_len()) < header_len {
            return Err(Error::Malformed);
        }
        if len < header_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// [`check_header_len`](Self::check_header_len), and checks that the buffer holds the whole
    /// packet as the total length gives it. A longer buffer (Ethernet padding) is accepted.
    ///
    /// # Errors
    ///
    /// As [`check_header_len`](Self::check_header_len); [`Error::Truncated`] if the buffer is
    /// shorter than the total length.
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        if self.buffer.as_ref().len() < usize::from(self.total_len()) {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field; 4 in an IPv4 packet.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (the IHL field times four), options included.
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The Differentiated Services Code Point (6 bits).
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The Explicit Congestion Notification field (2 bits).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The total length of the packet, header included.
    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    /// The Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & DONT_FRAG != 0
    }

    /// The More Fragments flag.
    pub fn more_frags(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & MORE_FRAGS != 0
    }

    /// The fragment offset in bytes (the field times eight).
    pub fn frag_offset(&self) -> u16 {
        (read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & FRAG_OFFSET) * 8
    }

    /// Whether this packet is a fragment: More Fragments set or a non-zero offset.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// The time-to-live field.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Address {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv4Address(bytes)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Address {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv4Address(bytes)
    }

    /// Whether the header checksum is correct; `false` if the header is not all in the buffer.
    pub fn verify_checksum(&self) -> bool {
        let data = self.buffer.as_ref();
        data.get(..usize::from(self.header_len()))
            .is_some_and(|header| checksum::data(header) == 0xffff)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The header options: the bytes between the fixed header and the header length.
    pub fn options(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[clamped(data.len(), HEADER_LEN, usize::from(self.header_len()))]
    }

    /// The payload: the bytes after the header up to the total length, cut at the end of the
    /// buffer. Ethernet padding past the total length is not part of it.
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        let range = clamped(
            data.len(),
            usize::from(self.header_len()),
            usize::from(self.total_len()),
        );
        &data[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version field (the low four bits of `version`).
    pub fn set_version(&mut self, version: u8) {
        let byte = &mut self.buffer.as_mut()[field::VER_IHL];
        *byte = (*byte & 0x0f) | (version << 4);
    }

    /// Sets the header length in bytes: a multiple of four, at most 60 (lower bits are dropped).
    pub fn set_header_len(&mut self, len: u8) {
        let byte = &mut self.buffer.as_mut()[field::VER_IHL];
        *byte = (*byte & 0xf0) | ((len / 4) & 0x0f);
    }

    /// Sets the Differentiated Services Code Point (the low six bits of `dscp`).
    pub fn set_dscp(&mut self, dscp: u8) {
        let byte = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *byte = (*byte & 0x03) | (dscp << 2);
    }

    /// Sets the Explicit Congestion Notification field (the low two bits of `ecn`).
    pub fn set_ecn(&mut self, ecn: u8) {
        let byte = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *byte = (*byte & 0xfc) | (ecn & 0x03);
    }

    /// Sets the total length, header included.
    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, ident: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// Updates the flags/fragment-offset word: keeps the bits outside `mask`, sets `bits`.
    fn update_flg_off(&mut self, mask: u16, bits: u16) {
        let word = read_u16(&self.buffer.as_ref()[field::FLG_OFF]);
        let word = (word & !mask) | (bits & mask);
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the Don't Fragment flag.
    pub fn set_dont_frag(&mut self, value: bool) {
        self.update_flg_off(DONT_FRAG, if value { DONT_FRAG } else { 0 });
    }

    /// Sets the More Fragments flag.
    pub fn set_more_frags(&mut self, value: bool) {
        self.update_flg_off(MORE_FRAGS, if value { MORE_FRAGS } else { 0 });
    }

    /// Sets the fragment offset in bytes: a multiple of eight (lower bits are dropped).
    pub fn set_frag_offset(&mut self, offset: u16) {
        self.update_flg_off(FRAG_OFFSET, offset / 8);
    }

    /// Sets the time-to-live field.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol of the payload.
    pub fn set_protocol(&mut self, protocol: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(protocol);
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Address) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.0);
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Address) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.0);
    }

    /// Computes the header checksum over the header (as much of it as the buffer holds) and
    /// stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let header = &data[clamped(data.len(), 0, usize::from(self.header_len()))];
        let sum = checksum::data(header);
        self.set_checksum(!sum);
    }

    /// The payload, for writing: the same bytes as `payload`.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = clamped(
            self.buffer.as_ref().len(),
            usize::from(self.header_len()),
            usize::from(self.total_len()),
        );
        &mut self.buffer.as_mut()[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parsed form of an IPv4 header. Options are skipped by [`parse`](Self::parse) and not
/// written by [`emit`](Self::emit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The source address.
    pub src_addr: Ipv4Address,
    /// The destination address.
    pub dst_addr: Ipv4Address,
    /// The protocol of the payload.
    pub protocol: IpProtocol,
    /// The length of the payload (total length minus header length).
    pub payload_len: usize,
    /// The time-to-live.
    pub ttl: u8,
    /// The Differentiated Services Code Point (0..=63).
    pub dscp: u8,
    /// The Explicit Congestion Notification field (0..=3).
    pub ecn: u8,
    /// The identification field.
    pub ident: u16,
    /// The Don't Fragment flag.
    pub dont_frag: bool,
    /// The More Fragments flag.
    pub more_frags: bool,
    /// The fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Repr {
    /// Parses the header of a whole packet. The header checksum is not verified (see the
    /// [module docs](super#checksums)); use [`Packet::verify_checksum`].
    ///
    /// # Errors
    ///
    /// As [`Packet::check_len`]; [`Error::Malformed`] if the version is not 4.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(
                packet
                    .total_len()
                    .saturating_sub(packet.header_len().into()),
            ),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// The length of the header [`emit`](Self::emit) writes (no options).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of the whole packet: header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header, checksum included, into the start of `packet`; the payload is left
    /// as it is.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than 20 bytes; [`Error::Malformed`] if a field
    /// does not fit the header (payload over 65 515 bytes, DSCP over 63, ECN over 3, fragment
    /// offset not a multiple of 8). Nothing is written then.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Packet<&mut T>,
    ) -> Result<()> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let total_len = u16::try_from(self.buffer_len()).map_err(|_| Error::Malformed)?;
        if self.dscp > 0x3f || self.ecn > 0x03 || self.frag_offset % 8 != 0 {
            return Err(Error::Malformed);
        }
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN as u8);
        packet.set_dscp(self.dscp);
        packet.set_ecn(self.ecn);
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        let dont_frag = if self.dont_frag { DONT_FRAG } else { 0 };
        let more_frags = if self.more_frags { MORE_FRAGS } else { 0 };
        packet.update_flg_off(u16::MAX, dont_frag | more_frags | (self.frag_offset / 8));
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::wire::fixtures::{Noise, DNS_V4, IGMP_RA_V4, SYN_ODD_MSS_V4, SYN_V4};
    use std::string::ToString;

    fn dns_repr() -> Repr {
        Repr {
            src_addr: Ipv4Address::new(10, 0, 0, 2),
            dst_addr: Ipv4Address::new(8, 8, 8, 8),
            protocol: IpProtocol::Udp,
            payload_len: 37,
            ttl: 128,
            dscp: 0,
            ecn: 0,
            ident: 0x4d21,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn reads_every_field_of_a_syn() {
        let packet = Packet::new_checked(&SYN_V4[14..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!((packet.dscp(), packet.ecn()), (0, 0));
        assert_eq!(packet.total_len(), 60);
        assert_eq!(packet.ident(), 0x1c46);
        assert!(packet.dont_frag() && !packet.more_frags() && !packet.is_fragment());
        assert_eq!(packet.frag_offset(), 0);
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), IpProtocol::Tcp);
        assert_eq!(packet.checksum(), 0x26e9);
        assert_eq!(packet.src_addr(), Ipv4Address::new(192, 168, 1, 10));
        assert_eq!(packet.dst_addr(), Ipv4Address::new(93, 184, 216, 34));
        assert!(packet.verify_checksum());
        assert!(packet.options().is_empty());
        assert_eq!(packet.payload(), &SYN_V4[34..]);
    }

    #[test]
    fn header_options_are_skipped() {
        let packet = Packet::new_checked(&IGMP_RA_V4[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(packet.dscp(), 48);
        assert_eq!(packet.protocol(), IpProtocol::Igmp);
        assert!(packet.dst_addr().is_multicast());
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &IGMP_RA_V4[24..]);
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!((repr.payload_len, repr.ttl, repr.dscp), (8, 1, 48));
    }

    #[test]
    fn known_good_checksums_verify() {
        for bytes in [
            &SYN_V4[14..],
            &DNS_V4[14..],
            &SYN_ODD_MSS_V4[..],
            &IGMP_RA_V4[..],
        ] {
            assert!(Packet::new_checked(bytes).unwrap().verify_checksum());
        }
    }

    #[test]
    fn corrupted_checksum_fails_and_fill_repairs_it() {
        let mut bytes = IGMP_RA_V4;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_ttl(2);
        assert!(!packet.verify_checksum());
        packet.set_ttl(1);
        packet.set_checksum(0);
        assert!(!packet.verify_checksum());
        packet.fill_checksum();
        assert_eq!(packet.checksum(), 0x816a);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn parse_and_emit_round_trip_a_dns_query() {
        let packet = Packet::new_checked(&DNS_V4[14..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, dns_repr());
        assert_eq!(repr.buffer_len(), DNS_V4.len() - 14);
        let mut bytes = [0xa5; 57];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes[..20], DNS_V4[14..34]);
        assert_eq!(bytes[20..], [0xa5; 37]);
        assert_eq!(repr.header_len(), 20);
    }

    #[test]
    fn emit_writes_flags_and_fragment_offset() {
        let repr = Repr {
            dont_frag: false,
            more_frags: true,
            frag_offset: 1480,
            dscp: 46,
            ecn: 2,
            ..dns_repr()
        };
        let mut bytes = [0xa5; 20];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet).unwrap();
        assert_eq!(packet.into_inner()[6..8], [0x20, 0xb9]);
        let packet = Packet::new_unchecked(&bytes[..]);
        assert!(packet.verify_checksum());
        assert!(packet.is_fragment());
        assert_eq!((packet.dscp(), packet.ecn()), (46, 2));
        // The header alone is a valid header-only capture of a 57-byte packet.
        assert_eq!(packet.check_header_len(), Ok(()));
        assert_eq!(packet.check_len(), Err(Error::Truncated));
    }

    #[test]
    fn emit_rejects_unrepresentable_fields_without_writing() {
        let mut bytes = [0xa5; 20];
        for repr in [
            Repr {
                payload_len: 65_516,
                ..dns_repr()
            },
            Repr {
                dscp: 64,
                ..dns_repr()
            },
            Repr {
                ecn: 4,
                ..dns_repr()
            },
            Repr {
                frag_offset: 100,
                ..dns_repr()
            },
        ] {
            let result = repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            assert_eq!(result, Err(Error::Malformed));
        }
        let result = dns_repr().emit(&mut Packet::new_unchecked(&mut bytes[..19]));
        assert_eq!(result, Err(Error::Truncated));
        assert_eq!(bytes, [0xa5; 20]);
        assert!(Repr {
            payload_len: 65_515,
            ..dns_repr()
        }
        .emit(&mut Packet::new_unchecked(&mut bytes[..]))
        .is_ok());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let ip = &SYN_V4[14..];
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
            assert_eq!(
                Packet::new_unchecked(prefix).check_header_len().is_ok(),
                len >= HEADER_LEN
            );
        }
        for len in 0..24 {
            let header = Packet::new_unchecked(&IGMP_RA_V4[..len]).check_header_len();
            assert_eq!(header, Err(Error::Truncated), "len {len}");
        }
    }

    #[test]
    fn inconsistent_lengths_and_versions_are_malformed() {
        let mut bytes = DNS_V4;
        let ip = &mut bytes[14..];
        ip[0] = 0x44; // IHL 4: a header shorter than 20 bytes
        assert_eq!(Packet::new_checked(&ip[..]).err(), Some(Error::Malformed));
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&19u16.to_be_bytes()); // total length below the header
        assert_eq!(Packet::new_checked(&ip[..]).err(), Some(Error::Malformed));
        ip[2..4].copy_from_slice(&57u16.to_be_bytes());
        ip[0] = 0x65; // version 6
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&ip[..])),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn payload_is_bounded_by_total_length_and_buffer() {
        // Ethernet pads short frames to 60 bytes: the padding is not payload.
        let mut padded = [0u8; 46];
        padded[..32].copy_from_slice(&IGMP_RA_V4);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &IGMP_RA_V4[24..]);
        assert_eq!(Repr::parse(&packet).unwrap().payload_len, 8);
        // A header-only capture: the payload is what the buffer holds.
        let capture = Packet::new_unchecked(&SYN_V4[14..40]);
        assert_eq!(capture.check_header_len(), Ok(()));
        assert_eq!(capture.payload(), &SYN_V4[34..40]);
    }

    #[test]
    fn setters_keep_neighbouring_bits() {
        let mut bytes = SYN_ODD_MSS_V4;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_more_frags(true);
        packet.set_frag_offset(2960);
        assert!(packet.dont_frag() && packet.more_frags());
        assert_eq!(packet.frag_offset(), 2960);
        packet.set_dont_frag(false);
        packet.set_more_frags(false);
        assert!(!packet.dont_frag() && !packet.more_frags());
        assert_eq!(packet.frag_offset(), 2960);
        packet.set_ecn(3);
        packet.set_dscp(10);
        assert_eq!((packet.dscp(), packet.ecn()), (10, 3));
        packet.set_version(4);
        packet.set_header_len(20);
        assert_eq!((packet.version(), packet.header_len()), (4, 20));
        packet.set_ident(7);
        packet.set_protocol(IpProtocol::Gre);
        packet.set_src_addr(Ipv4Address::new(172, 16, 0, 1));
        packet.set_dst_addr(Ipv4Address::BROADCAST);
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(packet.ident(), 7);
        assert_eq!(packet.protocol(), IpProtocol::Gre);
        assert_eq!(packet.src_addr().to_string(), "172.16.0.1");
        assert!(packet.dst_addr().is_broadcast());
        packet.payload_mut()[0] = 0xff;
        assert_eq!(packet.as_ref()[20], 0xff);
    }

    #[test]
    fn accessors_stay_in_bounds_after_lengths_are_rewritten() {
        let mut bytes = IGMP_RA_V4;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_total_len(1500);
        packet.set_header_len(60);
        assert_eq!(packet.payload_mut().len(), 0);
        packet.fill_checksum();
        assert!(!packet.verify_checksum());
        let packet = Packet::new_unchecked(&bytes[..]);
        assert_eq!(packet.options(), &IGMP_RA_V4[20..]);
        assert!(packet.payload().is_empty());
        assert_eq!(packet.check_len(), Err(Error::Truncated));
    }

    #[test]
    fn random_buffers_never_panic_once_header_is_checked() {
        let mut noise = Noise(0x1234_5678);
        for _ in 0..20_000 {
            let mut bytes = [0u8; 64];
            let len = usize::from(noise.byte()) % 65;
            bytes.iter_mut().for_each(|b| *b = noise.byte());
            bytes[0] = 0x40 | (bytes[0] & 0x0f);
            let packet = Packet::new_unchecked(&bytes[..len]);
            let _ = Repr::parse(&packet);
            if packet.check_header_len().is_ok() {
                let _ = (packet.options(), packet.payload(), packet.verify_checksum());
            }
        }
    }

    #[test]
    fn ipv4_address_forms() {
        let addr = Ipv4Address::new(93, 184, 216, 34);
        assert_eq!(addr.to_string(), "93.184.216.34");
        assert_eq!(std::format!("{addr:>15}"), "  93.184.216.34");
        assert_eq!(Ipv4Address::from_bytes(&[93, 184, 216, 34]), Ok(addr));
        assert_eq!(Ipv4Address::from_bytes(&[1, 2, 3]), Err(Error::Truncated));
        assert_eq!(
            Ipv4Address::from_bytes(&[1, 2, 3, 4, 5]),
            Err(Error::Malformed)
        );
        assert_eq!(addr.as_bytes(), &[93, 184, 216, 34]);
        let std_addr = core::net::Ipv4Addr::from(addr);
        assert_eq!(Ipv4Address::from(std_addr), addr);
        assert!(Ipv4Address::UNSPECIFIED.is_unspecified() && !addr.is_unspecified());
        assert!(Ipv4Address::new(127, 0, 0, 1).is_loopback() && !addr.is_loopback());
        assert!(Ipv4Address::new(239, 255, 255, 250).is_multicast() && !addr.is_multicast());
        assert!(!Ipv4Address::new(240, 0, 0, 1).is_multicast());
    }
}
