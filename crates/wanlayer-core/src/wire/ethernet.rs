//! Ethernet II frames: the 14-byte header (destination, source, EtherType) that NdisWan's IP and
//! IPv6 edges put in front of every packet.
//!
//! After [`Frame::check_len`] passes, no accessor of the [`Frame`] panics.

use super::{Error, MacAddress, Result};

wanlayer_proto::enum_with_unknown! {
    /// The EtherType field: the protocol of an Ethernet frame's payload.
    pub enum EtherType(u16) {
        /// Internet Protocol version 4.
        Ipv4 = 0x0800,
        /// Address Resolution Protocol.
        Arp = 0x0806,
        /// An IEEE 802.1Q VLAN tag.
        Vlan = 0x8100,
        /// Internet Protocol version 6.
        Ipv6 = 0x86dd,
        /// PPP over Ethernet, discovery stage.
        PppoeDiscovery = 0x8863,
        /// PPP over Ethernet, session stage.
        PppoeSession = 0x8864,
        /// An IEEE 802.1ad (QinQ) service tag.
        QinQ = 0x88a8,
    }
}

/// The length of an Ethernet II header.
pub const HEADER_LEN: usize = 14;

mod field {
    use crate::wire::Field;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// A read/write view of an Ethernet II frame in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking its length; see [`check_len`](Self::check_len).
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the whole header; after this, no accessor panics.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination MAC address.
    pub fn dst_addr(&self) -> MacAddress {
        let mut bytes = [0; 6];
        bytes.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        MacAddress(bytes)
    }

    /// The source MAC address.
    pub fn src_addr(&self) -> MacAddress {
        let mut bytes = [0; 6];
        bytes.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        MacAddress(bytes)
    }

    /// The EtherType of the payload.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(super::read_u16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// The bytes after the header: everything to the end of the buffer.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, addr: MacAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, addr: MacAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        let bytes = u16::from(ethertype).to_be_bytes();
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&bytes);
    }

    /// The bytes after the header, for writing.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Frame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parsed form of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The source MAC address.
    pub src_addr: MacAddress,
    /// The destination MAC address.
    pub dst_addr: MacAddress,
    /// The EtherType of the payload.
    pub ethertype: EtherType,
}

impl Repr {
    /// Parses the header of a frame.
    ///
    /// # Errors
    ///
    /// As [`Frame::check_len`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<Repr> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// The length of the header [`emit`](Self::emit) writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the start of `frame`; the payload is left as it is.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than the header; nothing is written then.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        frame: &mut Frame<&mut T>,
    ) -> Result<()> {
        frame.check_len()?;
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{DNS_V4, SYN_V6};

    const REMOTE: MacAddress = MacAddress([0x3c, 0x00, 0x20, 0x52, 0x41, 0x53]);
    const LOCAL: MacAddress = MacAddress([0x2e, 0x1f, 0x20, 0x52, 0x41, 0x53]);

    #[test]
    fn parses_ndiswan_frame_header() {
        let frame = Frame::new_checked(&DNS_V4[..]).unwrap();
        assert_eq!(frame.dst_addr(), REMOTE);
        assert_eq!(frame.src_addr(), LOCAL);
        assert!(frame.dst_addr().is_ndiswan() && frame.src_addr().is_ndiswan());
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.payload(), &DNS_V4[14..]);
        let repr = Repr::parse(&frame).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_addr: LOCAL,
                dst_addr: REMOTE,
                ethertype: EtherType::Ipv4
            }
        );
        let v6 = Frame::new_checked(&SYN_V6[..]).unwrap();
        assert_eq!(v6.ethertype(), EtherType::Ipv6);
        assert_eq!(frame.into_inner(), &DNS_V4[..]);
    }

    #[test]
    fn emit_writes_exactly_the_header() {
        let repr = Repr {
            src_addr: LOCAL,
            dst_addr: REMOTE,
            ethertype: EtherType::Ipv6,
        };
        let mut bytes = [0xa5; 20];
        repr.emit(&mut Frame::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes[..14], SYN_V6[..14]);
        assert_eq!(bytes[14..], [0xa5; 6]);
        assert_eq!(repr.header_len(), HEADER_LEN);
    }

    #[test]
    fn emit_into_short_buffer_writes_nothing() {
        let repr = Repr {
            src_addr: LOCAL,
            dst_addr: REMOTE,
            ethertype: EtherType::Ipv4,
        };
        let mut bytes = [0xa5; 13];
        let result = repr.emit(&mut Frame::new_unchecked(&mut bytes[..]));
        assert_eq!(result, Err(Error::Truncated));
        assert_eq!(bytes, [0xa5; 13]);
    }

    #[test]
    fn every_truncated_header_is_rejected() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&DNS_V4[..len]).err(),
                Some(Error::Truncated)
            );
            assert_eq!(
                Repr::parse(&Frame::new_unchecked(&DNS_V4[..len])),
                Err(Error::Truncated)
            );
        }
        let empty_payload = Frame::new_checked(&DNS_V4[..HEADER_LEN]).unwrap();
        assert!(empty_payload.payload().is_empty());
    }

    #[test]
    fn setters_and_unknown_ethertype_round_trip() {
        let mut bytes = DNS_V4;
        let mut frame = Frame::new_checked(&mut bytes[..]).unwrap();
        frame.set_dst_addr(MacAddress::BROADCAST);
        frame.set_src_addr(REMOTE);
        frame.set_ethertype(EtherType::from(0x88cc));
        frame.payload_mut()[0] = 0x46;
        assert_eq!(frame.dst_addr(), MacAddress::BROADCAST);
        assert_eq!(frame.src_addr(), REMOTE);
        assert_eq!(frame.ethertype(), EtherType::Unknown(0x88cc));
        assert_eq!(frame.as_ref()[12..15], [0x88, 0xcc, 0x46]);
    }
}
