//! UDP datagrams (RFC 768): ports, length and checksum.
//!
//! After [`Packet::check_len`] passes, no accessor of the [`Packet`] panics.

use super::{check_declared_len, checksum, clamped, read_u16, Error, IpAddress, IpProtocol, Result};

/// The length of a UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// A read/write view of a UDP datagram in a buffer.
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

    /// Checks that the buffer holds the header and the whole datagram as the length field gives
    /// it. After this, no accessor panics.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than the header or the length field;
    /// [`Error::Malformed`] if the length field is below 8.
    pub fn check_len(&self) -> Result<()> {
        check_declared_len(self.buffer.as_ref().len(), HEADER_LEN, || usize::from(self.length()))
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// The length field: header and payload.
    pub fn length(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The checksum field; zero means the sender computed none.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The datagram as the length field bounds it, cut at the end of the buffer.
    fn datagram(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamped(data.len(), 0, usize::from(self.length()))]
    }

    /// Whether the checksum is correct for a datagram sent from `src_addr` to `dst_addr`.
    /// A zero checksum ("none computed") passes over IPv4 and fails over IPv6, where RFC 8200
    /// makes the checksum mandatory. `false` if the addresses are of different IP versions.
    pub fn verify_checksum(&self, src_addr: &IpAddress, dst_addr: &IpAddress) -> bool {
        if self.checksum() == 0 {
            return matches!(
                (src_addr, dst_addr),
                (IpAddress::Ipv4(_), IpAddress::Ipv4(_))
            );
        }
        let datagram = self.datagram();
        checksum::pseudo_header(src_addr, dst_addr, IpProtocol::Udp, datagram.len())
            .is_ok_and(|pseudo| checksum::combine(&[pseudo, checksum::data(datagram)]) == 0xffff)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload: the bytes after the header up to the length field, cut at the end of the
    /// buffer.
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[clamped(data.len(), HEADER_LEN, usize::from(self.length()))]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&port.to_be_bytes());
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&port.to_be_bytes());
    }

    /// Sets the length field: header and payload.
    pub fn set_length(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Computes the checksum over the datagram (as the length field bounds it) for one sent from
    /// `src_addr` to `dst_addr`, and stores it; a computed zero is stored as `0xffff` (RFC 768).
    ///
    /// # Errors
    ///
    /// As [`checksum::pseudo_header`]; the checksum field is left as it was then.
    pub fn fill_checksum(&mut self, src_addr: &IpAddress, dst_addr: &IpAddress) -> Result<()> {
        let len = self.datagram().len();
        let pseudo = checksum::pseudo_header(src_addr, dst_addr, IpProtocol::Udp, len)?;
        self.set_checksum(0);
        let sum = checksum::combine(&[pseudo, checksum::data(self.datagram())]);
        self.set_checksum(match !sum {
            0 => 0xffff,
            value => value,
        });
        Ok(())
    }

    /// The payload, for writing: the same bytes as `payload`.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = clamped(
            self.buffer.as_ref().len(),
            HEADER_LEN,
            usize::from(self.length()),
        );
        &mut self.buffer.as_mut()[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parsed form of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The source port.
    pub src_port: u16,
    /// The destination port.
    pub dst_port: u16,
    /// The length of the payload (the length field minus 8).
    pub payload_len: usize,
}

impl Repr {
    /// Parses the header of a whole datagram. The checksum is not verified (see the
    /// [module docs](super#checksums)); use [`Packet::verify_checksum`].
    ///
    /// # Errors
    ///
    /// As [`Packet::check_len`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: packet.payload().len(),
        })
    }

    /// The length of the header [`emit`](Self::emit) writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of the whole datagram: header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header into the start of `packet`. The checksum is written as zero: write the
    /// payload, then call [`Packet::fill_checksum`].
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than 8 bytes; [`Error::Malformed`] if the
    /// length does not fit 16 bits. Nothing is written then.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Packet<&mut T>,
    ) -> Result<()> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = u16::try_from(self.buffer_len()).map_err(|_| Error::Malformed)?;
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_length(len);
        packet.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{DNS_V4, DNS_V6_EXT};
    use crate::wire::{Ipv4Address, Ipv6Address};

    const QUERY: &[u8] = b"\x2b\x7e\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
        \x07example\x03com\x00\x00\x01\x00\x01";

    fn v4_addrs() -> (IpAddress, IpAddress) {
        (
            Ipv4Address::new(10, 0, 0, 2).into(),
            Ipv4Address::new(8, 8, 8, 8).into(),
        )
    }

    fn v6_addrs() -> (IpAddress, IpAddress) {
        (
            Ipv6Address::from_segments([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]).into(),
            Ipv6Address::from_segments([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53]).into(),
        )
    }

    #[test]
    fn reads_a_dns_query() {
        let packet = Packet::new_checked(&DNS_V4[34..]).unwrap();
        assert_eq!((packet.src_port(), packet.dst_port()), (53000, 53));
        assert_eq!(packet.length(), 37);
        assert_eq!(packet.checksum(), 0x1b69);
        assert_eq!(packet.payload(), QUERY);
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_port: 53000,
                dst_port: 53,
                payload_len: 29
            }
        );
        assert_eq!((repr.header_len(), repr.buffer_len()), (8, 37));
    }

    #[test]
    fn known_good_checksums_verify() {
        let (src, dst) = v4_addrs();
        assert!(Packet::new_checked(&DNS_V4[34..])
            .unwrap()
            .verify_checksum(&src, &dst));
        // Swapping the addresses keeps the sum; another address does not.
        assert!(Packet::new_checked(&DNS_V4[34..])
            .unwrap()
            .verify_checksum(&dst, &src));
        assert!(!Packet::new_checked(&DNS_V4[34..])
            .unwrap()
            .verify_checksum(&dst, &dst));
        let (src6, dst6) = v6_addrs();
        let v6 = Packet::new_checked(&DNS_V6_EXT[70..]).unwrap();
        assert!(v6.verify_checksum(&src6, &dst6));
        assert!(!v6.verify_checksum(&src, &dst6));
    }

    #[test]
    fn zero_checksum_means_none_over_ipv4_only() {
        let mut bytes = DNS_V4;
        bytes[40..42].fill(0);
        let packet = Packet::new_checked(&bytes[34..]).unwrap();
        let (src, dst) = v4_addrs();
        assert!(packet.verify_checksum(&src, &dst));
        let (src6, dst6) = v6_addrs();
        assert!(!packet.verify_checksum(&src6, &dst6));
    }

    #[test]
    fn emit_then_fill_checksum_reproduces_the_fixture() {
        let repr = Repr {
            src_port: 53000,
            dst_port: 53,
            payload_len: QUERY.len(),
        };
        let mut bytes = [0xa5; 40];
        let mut packet = Packet::new_unchecked(&mut bytes[..37]);
        repr.emit(&mut packet).unwrap();
        assert_eq!(packet.payload_mut(), &[0xa5; 29]);
        packet.payload_mut().copy_from_slice(QUERY);
        let (src, dst) = v4_addrs();
        packet.fill_checksum(&src, &dst).unwrap();
        assert_eq!(bytes[..37], DNS_V4[34..]);
        assert_eq!(bytes[37..], [0xa5; 3]);
    }

    #[test]
    fn emit_rejects_short_buffers_and_long_payloads() {
        let mut bytes = [0xa5; 8];
        let repr = Repr {
            src_port: 1,
            dst_port: 2,
            payload_len: 0,
        };
        assert_eq!(
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..7])),
            Err(Error::Truncated)
        );
        let long = Repr {
            payload_len: 65_528,
            ..repr
        };
        assert_eq!(
            long.emit(&mut Packet::new_unchecked(&mut bytes[..])),
            Err(Error::Malformed)
        );
        assert_eq!(bytes, [0xa5; 8]);
    }

    #[test]
    fn computed_zero_checksum_is_sent_as_all_ones() {
        // Ports chosen so that the datagram and pseudo-header sum to 0xffff.
        let (src, dst) = v4_addrs();
        let pseudo = checksum::pseudo_header(&src, &dst, IpProtocol::Udp, 8).unwrap();
        let dst_port = !checksum::combine(&[pseudo, 8]);
        let mut bytes = [0u8; 8];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        Repr {
            src_port: 0,
            dst_port,
            payload_len: 0,
        }
        .emit(&mut packet)
        .unwrap();
        packet.fill_checksum(&src, &dst).unwrap();
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(&src, &dst));
    }

    #[test]
    fn every_truncation_is_an_error_and_bad_lengths_are_malformed() {
        let datagram = &DNS_V4[34..];
        for len in 0..datagram.len() {
            let prefix = &datagram[..len];
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
        let mut bytes = DNS_V4;
        bytes[38..40].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bytes[34..]).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn payload_stops_at_the_length_field_and_setters_work() {
        let mut bytes = [0u8; 48];
        bytes[..37].copy_from_slice(&DNS_V4[34..]);
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(packet.payload_mut().len(), 29);
        packet.set_src_port(5353);
        packet.set_dst_port(5353);
        packet.set_length(9);
        packet.set_checksum(0x1234);
        assert_eq!((packet.src_port(), packet.dst_port()), (5353, 5353));
        assert_eq!((packet.length(), packet.checksum()), (9, 0x1234));
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &[0x2b]);
        assert_eq!(packet.as_ref().len(), 48);
        assert_eq!(packet.into_inner().len(), 48);
    }
}
