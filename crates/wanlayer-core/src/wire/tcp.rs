//! TCP segments (RFC 9293): the header, its options, and the in-place MSS rewrite an MSS clamp
//! needs.
//!
//! After [`Packet::check_len`] passes, no accessor of the [`Packet`] panics. The option iterator
//! never panics, whatever the bytes.
//!
//! A `Packet` covers one whole segment: the IP payload, header and data, exactly as the
//! checksum covers it.

use core::iter::FusedIterator;
use core::ops::BitOr;

use super::{check_declared_len, checksum, clamped, read_u16, read_u32, Error, IpAddress, IpProtocol, Result};

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// The option kinds this module names.
mod option_kind {
    pub const END_OF_LIST: u8 = 0;
    pub const NO_OPERATION: u8 = 1;
    pub const MAX_SEGMENT_SIZE: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const TIMESTAMPS: u8 = 8;
}

/// The control bits of a TCP header: the twelve bits below the data offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// FIN: no more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN: synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH: push function.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK: the acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG: the urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE: ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR: congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x080);

    /// No flag set.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// Flags from the twelve bits below the data offset; higher bits are dropped.
    pub const fn from_bits(bits: u16) -> TcpFlags {
        TcpFlags(bits & 0x0fff)
    }

    /// The flags as the twelve bits below the data offset.
    pub const fn bits(&self) -> u16 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(&self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;

    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// One TCP option, as [`OptionIter`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption {
    /// End of option list (kind 0): the rest of the option space is padding.
    EndOfList,
    /// No-operation (kind 1), used for alignment.
    NoOperation,
    /// Maximum segment size (kind 2).
    MaxSegmentSize(u16),
    /// Window scale shift count (kind 3).
    WindowScale(u8),
    /// SACK permitted (kind 4).
    SackPermitted,
    /// Timestamps (kind 8).
    Timestamps {
        /// The sender's timestamp value.
        tsval: u32,
        /// The echoed timestamp.
        tsecr: u32,
    },
    /// Any other option; `len` counts the kind and length bytes.
    Unknown {
        /// The option kind.
        kind: u8,
        /// The option length, kind and length bytes included.
        len: u8,
    },
}

/// Reads the kind-length-value option of kind `kind` at the start of `rest`; gives its length
/// and the option.
fn parse_tlv(kind: u8, rest: &[u8]) -> Result<(usize, TcpOption)> {
    let len = rest.get(1).copied().ok_or(Error::Malformed)?;
    let option = rest.get(..usize::from(len)).ok_or(Error::Malformed)?;
    let value = option.get(2..).ok_or(Error::Malformed)?;
    let parsed = match (kind, value.len()) {
        (option_kind::MAX_SEGMENT_SIZE, 2) => TcpOption::MaxSegmentSize(read_u16(value)),
        (option_kind::WINDOW_SCALE, 1) => TcpOption::WindowScale(value[0]),
        (option_kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
        (option_kind::TIMESTAMPS, 8) => TcpOption::Timestamps {
            tsval: read_u32(&value[..4]),
            tsecr: read_u32(&value[4..]),
        },
        (
            option_kind::MAX_SEGMENT_SIZE
            | option_kind::WINDOW_SCALE
            | option_kind::SACK_PERMITTED
            | option_kind::TIMESTAMPS,
            _,
        ) => return Err(Error::Malformed),
        (kind, _) => TcpOption::Unknown { kind, len },
    };
    Ok((option.len(), parsed))
}

/// An iterator over the options of a TCP header. It yields `Err` once, then stops, on an option
/// with a bad length or one that runs past the option space; it stops after `EndOfList`. It never
/// panics.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    options: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterates over `options`, the bytes between the fixed header and the data offset.
    pub const fn new(options: &'a [u8]) -> OptionIter<'a> {
        OptionIter {
            options,
            pos: 0,
            done: false,
        }
    }
}

impl Iterator for OptionIter<'_> {
    type Item = Result<TcpOption>;

    fn next(&mut self) -> Option<Result<TcpOption>> {
        if self.done {
            return None;
        }
        let rest = self.options.get(self.pos..).unwrap_or_default();
        let &kind = rest.first()?;
        let parsed = match kind {
            // Everything after End of List is padding.
            option_kind::END_OF_LIST => Ok((rest.len(), TcpOption::EndOfList)),
            option_kind::NO_OPERATION => Ok((1, TcpOption::NoOperation)),
            _ => parse_tlv(kind, rest),
        };
        match parsed {
            Ok((len, option)) => {
                self.pos += len;
                Some(Ok(option))
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for OptionIter<'_> {}

/// A read/write view of a TCP segment in a buffer.
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

    /// Checks that the whole header, options included, is in the buffer. After this, no accessor
    /// panics.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer ends inside the header; [`Error::Malformed`] if the data
    /// offset is below 20 bytes.
    pub fn check_len(&self) -> Result<()> {
        check_declared_len(self.buffer.as_ref().len(), HEADER_LEN, || usize::from(self.header_len()))
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

    /// The sequence number.
    pub fn seq_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// The acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// The header length in bytes (the data offset times four), options included.
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits(read_u16(&self.buffer.as_ref()[field::FLAGS]))
    }

    /// The FIN flag.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// The SYN flag.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// The RST flag.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// The PSH flag.
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// The ACK flag.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// The URG flag.
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }

    /// The window size, unscaled.
    pub fn window_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::URGENT])
    }

    /// The option bytes, for reading: between the fixed header and the data offset, cut at the
    /// end of the buffer.
    fn option_bytes(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[clamped(data.len(), HEADER_LEN, usize::from(self.header_len()))]
    }

    /// Finds the first MSS option: the buffer offset of its value, and the value.
    fn find_mss(&self) -> Result<Option<(usize, u16)>> {
        let mut iter = OptionIter::new(self.option_bytes());
        loop {
            let at = HEADER_LEN + iter.pos;
            match iter.next().transpose()? {
                Some(TcpOption::MaxSegmentSize(mss)) => return Ok(Some((at + 2, mss))),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// The value of the first MSS option, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] if a bad option comes before any MSS option.
    pub fn mss_option(&self) -> Result<Option<u16>> {
        Ok(self.find_mss()?.map(|(_, mss)| mss))
    }

    /// Whether the checksum is correct for a segment sent from `src_addr` to `dst_addr`;
    /// `false` if the addresses are of different IP versions.
    pub fn verify_checksum(&self, src_addr: &IpAddress, dst_addr: &IpAddress) -> bool {
        let data = self.buffer.as_ref();
        checksum::pseudo_header(src_addr, dst_addr, IpProtocol::Tcp, data.len())
            .is_ok_and(|pseudo| checksum::combine(&[pseudo, checksum::data(data)]) == 0xffff)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The option bytes: between the fixed header and the data offset.
    pub fn options(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[clamped(data.len(), HEADER_LEN, usize::from(self.header_len()))]
    }

    /// An iterator over the options.
    pub fn option_iter(&self) -> OptionIter<'a> {
        OptionIter::new(self.options())
    }

    /// The data: everything after the header.
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[clamped(data.len(), usize::from(self.header_len()), data.len())]
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

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: u32) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&seq.to_be_bytes());
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, ack: u32) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&ack.to_be_bytes());
    }

    /// Sets the header length in bytes: a multiple of four, at most 60 (lower bits are dropped).
    pub fn set_header_len(&mut self, len: u8) {
        let byte = &mut self.buffer.as_mut()[field::FLAGS.start];
        *byte = (*byte & 0x0f) | ((len / 4) << 4);
    }

    /// Sets the control bits; the data offset is kept.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let word = read_u16(&self.buffer.as_ref()[field::FLAGS]);
        let word = (word & 0xf000) | flags.bits();
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the window size.
    pub fn set_window_len(&mut self, window: u16) {
        self.buffer.as_mut()[field::WIN_SIZE].copy_from_slice(&window.to_be_bytes());
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, urgent_at: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&urgent_at.to_be_bytes());
    }

    /// Computes the checksum over the whole buffer for a segment sent from `src_addr` to
    /// `dst_addr`, and stores it.
    ///
    /// # Errors
    ///
    /// As [`checksum::pseudo_header`]; the checksum field is left as it was then.
    pub fn fill_checksum(&mut self, src_addr: &IpAddress, dst_addr: &IpAddress) -> Result<()> {
        let len = self.buffer.as_ref().len();
        let pseudo = checksum::pseudo_header(src_addr, dst_addr, IpProtocol::Tcp, len)?;
        self.set_checksum(0);
        let sum = checksum::combine(&[pseudo, checksum::data(self.buffer.as_ref())]);
        self.set_checksum(!sum);
        Ok(())
    }

    /// Rewrites the value of the first MSS option in place, and adjusts the checksum for the
    /// change (RFC 1624), so a correct checksum stays correct. Returns whether there was an MSS
    /// option; without one, nothing changes.
    ///
    /// If the checksum is offloaded (the field holds the pseudo-header sum for the hardware to
    /// complete), the adjustment is wrong: save [`checksum`](Self::checksum) before and restore
    /// it with [`set_checksum`](Self::set_checksum) after.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] if a bad option comes before any MSS option; nothing changes then.
    pub fn set_mss_option(&mut self, mss: u16) -> Result<bool> {
        let Some((at, old)) = self.find_mss()? else {
            return Ok(false);
        };
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&mss.to_be_bytes());
        // A value at an odd offset straddles two checksum words: its bytes count swapped.
        let (old_word, new_word) = if at % 2 == 0 {
            (old, mss)
        } else {
            (old.swap_bytes(), mss.swap_bytes())
        };
        let adjusted = checksum::incremental_update(self.checksum(), old_word, new_word);
        self.set_checksum(adjusted);
        Ok(true)
    }

    /// The data, for writing: everything after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.buffer.as_ref().len();
        let start = usize::from(self.header_len());
        &mut self.buffer.as_mut()[clamped(len, start, len)]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parsed form of a TCP header, with the options this module names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The source port.
    pub src_port: u16,
    /// The destination port.
    pub dst_port: u16,
    /// The sequence number.
    pub seq_number: u32,
    /// The acknowledgment number.
    pub ack_number: u32,
    /// The control bits.
    pub flags: TcpFlags,
    /// The window size, unscaled.
    pub window_len: u16,
    /// The urgent pointer.
    pub urgent_at: u16,
    /// The MSS option.
    pub max_seg_size: Option<u16>,
    /// The window scale option.
    pub window_scale: Option<u8>,
    /// Whether the SACK-permitted option is present.
    pub sack_permitted: bool,
    /// The timestamps option: (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// The length of the data after the header.
    pub payload_len: usize,
}

impl Repr {
    /// Parses the header of a segment; options without a field here are skipped. The checksum is
    /// not verified (see the [module docs](super#checksums)); use [`Packet::verify_checksum`].
    ///
    /// # Errors
    ///
    /// As [`Packet::check_len`]; [`Error::Malformed`] for a bad option.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        let mut repr = Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            timestamps: None,
            payload_len: packet.payload().len(),
        };
        for option in packet.option_iter() {
            match option? {
                TcpOption::MaxSegmentSize(mss) => repr.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => repr.window_scale = Some(shift),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::Timestamps { tsval, tsecr } => repr.timestamps = Some((tsval, tsecr)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(repr)
    }

    /// The length of the header [`emit`](Self::emit) writes, options included.
    pub const fn header_len(&self) -> usize {
        let mut len = HEADER_LEN;
        if self.max_seg_size.is_some() {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        if self.sack_permitted {
            len += 4;
        }
        if self.timestamps.is_some() {
            len += 12;
        }
        len
    }

    /// The length of the whole segment: header and data.
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header into the start of `packet`, options in the order MSS, window scale,
    /// SACK permitted, timestamps, each NOP-padded to four bytes. The checksum is written as
    /// zero: write the data, then call [`Packet::fill_checksum`].
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than [`header_len`](Self::header_len);
    /// nothing is written then.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Packet<&mut T>,
    ) -> Result<()> {
        use option_kind::{
            MAX_SEGMENT_SIZE, NO_OPERATION, SACK_PERMITTED, TIMESTAMPS, WINDOW_SCALE,
        };

        let header_len = self.header_len();
        let Some(header) = packet.buffer.as_mut().get_mut(..header_len) else {
            return Err(Error::Truncated);
        };
        let mut options = &mut header[HEADER_LEN..];
        let mut put = |bytes: &[u8]| {
            let (head, tail) = core::mem::take(&mut options).split_at_mut(bytes.len());
            head.copy_from_slice(bytes);
            options = tail;
        };
        if let Some(mss) = self.max_seg_size {
            let [hi, lo] = mss.to_be_bytes();
            put(&[MAX_SEGMENT_SIZE, 4, hi, lo]);
        }
        if let Some(shift) = self.window_scale {
            put(&[NO_OPERATION, WINDOW_SCALE, 3, shift]);
        }
        if self.sack_permitted {
            put(&[NO_OPERATION, NO_OPERATION, SACK_PERMITTED, 2]);
        }
        if let Some((tsval, tsecr)) = self.timestamps {
            put(&[NO_OPERATION, NO_OPERATION, TIMESTAMPS, 10]);
            put(&tsval.to_be_bytes());
            put(&tsecr.to_be_bytes());
        }
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_flags(self.flags);
        packet.set_header_len(header_len as u8);
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{Noise, SYN_ODD_MSS_V4, SYN_V4, SYN_V6};
    use crate::wire::{Ipv4Address, Ipv6Address};

    fn v4_addrs() -> (IpAddress, IpAddress) {
        (
            Ipv4Address::new(192, 168, 1, 10).into(),
            Ipv4Address::new(93, 184, 216, 34).into(),
        )
    }

    fn odd_addrs() -> (IpAddress, IpAddress) {
        (
            Ipv4Address::new(10, 64, 0, 7).into(),
            Ipv4Address::new(198, 51, 100, 20).into(),
        )
    }

    fn v6_addrs() -> (IpAddress, IpAddress) {
        (
            Ipv6Address::from_segments([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]).into(),
            Ipv6Address::from_segments([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x443]).into(),
        )
    }

    fn syn_repr() -> Repr {
        Repr {
            src_port: 51234,
            dst_port: 443,
            seq_number: 0x8f3a_1c02,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window_len: 64240,
            urgent_at: 0,
            max_seg_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((0x0a1b_2c3d, 0)),
            payload_len: 0,
        }
    }

    /// 0x0000 and 0xffff are the same ones-complement number.
    fn same_checksum(a: u16, b: u16) -> bool {
        a == b || (a | b == 0xffff && a & b == 0)
    }

    #[test]
    fn reads_every_field_of_a_syn() {
        let packet = Packet::new_checked(&SYN_V4[34..]).unwrap();
        assert_eq!((packet.src_port(), packet.dst_port()), (51234, 443));
        assert_eq!((packet.seq_number(), packet.ack_number()), (0x8f3a_1c02, 0));
        assert_eq!(packet.header_len(), 40);
        assert!(packet.syn());
        assert!(!(packet.ack() || packet.fin() || packet.rst() || packet.psh() || packet.urg()));
        assert_eq!(packet.flags(), TcpFlags::SYN);
        assert_eq!(packet.window_len(), 64240);
        assert_eq!((packet.checksum(), packet.urgent_at()), (0xaa0f, 0));
        assert_eq!(packet.options(), &SYN_V4[54..]);
        assert!(packet.payload().is_empty());
        assert_eq!(packet.mss_option(), Ok(Some(1460)));
    }

    #[test]
    fn iterates_linux_and_windows_option_layouts() {
        let linux = Packet::new_checked(&SYN_V4[34..]).unwrap();
        let mut iter = linux.option_iter();
        assert_eq!(iter.next(), Some(Ok(TcpOption::MaxSegmentSize(1460))));
        assert_eq!(iter.next(), Some(Ok(TcpOption::SackPermitted)));
        let timestamps = TcpOption::Timestamps {
            tsval: 0x0a1b_2c3d,
            tsecr: 0,
        };
        assert_eq!(iter.next(), Some(Ok(timestamps)));
        assert_eq!(iter.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(iter.next(), Some(Ok(TcpOption::WindowScale(7))));
        assert_eq!(iter.next(), None);
        assert_eq!(iter.next(), None);

        let windows = Packet::new_checked(&SYN_ODD_MSS_V4[20..]).unwrap();
        let expected = [
            TcpOption::NoOperation,
            TcpOption::MaxSegmentSize(1460),
            TcpOption::NoOperation,
            TcpOption::WindowScale(8),
            TcpOption::NoOperation,
            TcpOption::SackPermitted,
        ];
        assert!(windows.option_iter().map(Result::unwrap).eq(expected));
    }

    #[test]
    fn option_iterator_reports_bad_lengths_once() {
        let cases: [(&[u8], Error); 6] = [
            (&[2], Error::Malformed),                // no length byte
            (&[2, 4, 5], Error::Malformed),          // runs past the option space
            (&[30, 0, 0, 0], Error::Malformed),      // length 0
            (&[30, 1, 0, 0], Error::Malformed),      // length 1
            (&[2, 3, 5, 0], Error::Malformed),       // MSS of the wrong size
            (&[8, 6, 0, 0, 0, 0], Error::Malformed), // timestamps of the wrong size
        ];
        for (bytes, error) in cases {
            let mut iter = OptionIter::new(bytes);
            assert_eq!(iter.next(), Some(Err(error)), "{bytes:?}");
            assert_eq!(iter.next(), None);
        }
    }

    #[test]
    fn option_iterator_stops_at_end_of_list_and_keeps_unknown_kinds() {
        let bytes = [1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0, 30, 4, 0, 0, 0, 2, 0xff];
        let expected = [
            Ok(TcpOption::NoOperation),
            Ok(TcpOption::Unknown { kind: 5, len: 10 }),
            Ok(TcpOption::Unknown { kind: 30, len: 4 }),
            Ok(TcpOption::EndOfList),
        ];
        assert!(OptionIter::new(&bytes).eq(expected));
    }

    #[test]
    fn option_iterator_never_panics_on_noise() {
        let mut noise = Noise(0xdead_beef);
        for _ in 0..50_000 {
            let mut bytes = [0u8; 40];
            bytes.iter_mut().for_each(|b| *b = noise.byte() % 12);
            let len = usize::from(noise.byte()) % 41;
            // Every step consumes at least one byte, and an error ends the walk.
            assert!(OptionIter::new(&bytes[..len]).count() <= len + 1);
            let mut segment = [0u8; 60];
            segment[20..].copy_from_slice(&bytes);
            segment[12] = 0xf0;
            let mut packet = Packet::new_checked(&mut segment[..]).unwrap();
            let _ = packet.set_mss_option(1400);
            let _ = Repr::parse(&Packet::new_unchecked(&segment[..]));
        }
    }

    #[test]
    fn known_good_checksums_verify() {
        let (src, dst) = v4_addrs();
        assert!(Packet::new_checked(&SYN_V4[34..])
            .unwrap()
            .verify_checksum(&src, &dst));
        assert!(!Packet::new_checked(&SYN_V4[34..])
            .unwrap()
            .verify_checksum(&dst, &dst));
        let (src, dst) = odd_addrs();
        assert!(Packet::new_checked(&SYN_ODD_MSS_V4[20..])
            .unwrap()
            .verify_checksum(&src, &dst));
        let (src6, dst6) = v6_addrs();
        assert!(Packet::new_checked(&SYN_V6[54..])
            .unwrap()
            .verify_checksum(&src6, &dst6));
        let mixed = Packet::new_checked(&SYN_V6[54..])
            .unwrap()
            .verify_checksum(&src, &dst6);
        assert!(!mixed);
    }

    #[test]
    fn fill_checksum_reproduces_the_fixture() {
        let (src, dst) = v6_addrs();
        let mut bytes = SYN_V6;
        let mut packet = Packet::new_checked(&mut bytes[54..]).unwrap();
        packet.set_checksum(0x1234);
        packet.fill_checksum(&src, &dst).unwrap();
        assert_eq!(packet.checksum(), 0x3fa7);
        let v4 = IpAddress::from(Ipv4Address::new(10, 0, 0, 1));
        assert_eq!(packet.fill_checksum(&v4, &dst), Err(Error::Malformed));
        assert_eq!(packet.checksum(), 0x3fa7);
    }

    #[test]
    fn mss_rewrite_at_even_offset_matches_recomputation() {
        let (src, dst) = v4_addrs();
        let mut bytes = SYN_V4;
        let mut packet = Packet::new_checked(&mut bytes[34..]).unwrap();
        assert_eq!(packet.set_mss_option(1360), Ok(true));
        assert_eq!(packet.mss_option(), Ok(Some(1360)));
        assert!(packet.verify_checksum(&src, &dst));
        let incremental = packet.checksum();
        packet.fill_checksum(&src, &dst).unwrap();
        assert_eq!(packet.checksum(), incremental);
        assert_eq!(packet.into_inner()[22..24], [0x05, 0x50]);
    }

    #[test]
    fn mss_rewrite_at_odd_offset_matches_recomputation_for_every_value() {
        let (src, dst) = odd_addrs();
        let mut bytes: [u8; 32] = SYN_ODD_MSS_V4[20..].try_into().unwrap();
        for mss in (0..=u16::MAX)
            .step_by(7)
            .chain([0, 1, 0xff00, 0x00ff, u16::MAX])
        {
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            assert_eq!(packet.set_mss_option(mss), Ok(true));
            assert_eq!(packet.mss_option(), Ok(Some(mss)));
            assert!(packet.verify_checksum(&src, &dst), "mss {mss}");
            let incremental = packet.checksum();
            packet.fill_checksum(&src, &dst).unwrap();
            assert!(same_checksum(packet.checksum(), incremental), "mss {mss}");
        }
    }

    #[test]
    fn mss_rewrite_in_ipv6_keeps_checksum_valid() {
        let (src, dst) = v6_addrs();
        let mut bytes = SYN_V6;
        let mut packet = Packet::new_checked(&mut bytes[54..]).unwrap();
        assert_eq!(packet.set_mss_option(1220), Ok(true));
        assert!(packet.verify_checksum(&src, &dst));
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[54..]))
                .unwrap()
                .max_seg_size,
            Some(1220)
        );
    }

    #[test]
    fn mss_rewrite_without_option_or_with_bad_options_changes_nothing() {
        let mut bytes = SYN_V4;
        bytes[54..58].copy_from_slice(&[1, 1, 1, 1]); // the MSS option becomes NOPs
        let before = bytes;
        let mut packet = Packet::new_checked(&mut bytes[34..]).unwrap();
        assert_eq!(packet.set_mss_option(1200), Ok(false));
        assert_eq!(packet.mss_option(), Ok(None));
        assert_eq!(bytes, before);
        bytes[54..56].copy_from_slice(&[30, 0]); // an option of length zero
        let before = bytes;
        let mut packet = Packet::new_checked(&mut bytes[34..]).unwrap();
        assert_eq!(packet.set_mss_option(1200), Err(Error::Malformed));
        assert_eq!(bytes, before);
    }

    #[test]
    fn parses_syn_repr() {
        let repr = Repr::parse(&Packet::new_checked(&SYN_V4[34..]).unwrap()).unwrap();
        assert_eq!(repr, syn_repr());
        let windows = Repr::parse(&Packet::new_checked(&SYN_ODD_MSS_V4[20..]).unwrap()).unwrap();
        assert_eq!(
            (
                windows.max_seg_size,
                windows.window_scale,
                windows.sack_permitted
            ),
            (Some(1460), Some(8), true)
        );
        assert_eq!(windows.timestamps, None);
    }

    #[test]
    fn emit_writes_header_and_options_then_data_is_checksummed() {
        let repr = Repr {
            payload_len: 5,
            flags: TcpFlags::SYN | TcpFlags::ECE,
            ..syn_repr()
        };
        assert_eq!((repr.header_len(), repr.buffer_len()), (44, 49));
        let mut bytes = [0xa5; 49];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet).unwrap();
        assert_eq!(packet.payload_mut(), &[0xa5; 5]);
        packet.payload_mut().copy_from_slice(b"hello");
        let (src, dst) = v4_addrs();
        packet.fill_checksum(&src, &dst).unwrap();
        assert!(packet.verify_checksum(&src, &dst));
        assert_eq!(
            bytes[..44],
            [
                0xc8, 0x22, 0x01, 0xbb, 0x8f, 0x3a, 0x1c, 0x02, 0x00, 0x00, 0x00, 0x00, //
                0xb0, 0x42, 0xfa, 0xf0, bytes[16], bytes[17], 0x00, 0x00, //
                0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07, 0x01, 0x01, 0x04, 0x02, //
                0x01, 0x01, 0x08, 0x0a, 0x0a, 0x1b, 0x2c, 0x3d, 0x00, 0x00, 0x00, 0x00,
            ]
        );
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), b"hello");
        assert_eq!(Repr::parse(&packet), Ok(repr));
    }

    #[test]
    fn emit_into_short_buffer_writes_nothing() {
        let mut bytes = [0xa5; 40];
        let result = syn_repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(result, Err(Error::Truncated));
        assert_eq!(bytes, [0xa5; 40]);
        let bare = Repr {
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            timestamps: None,
            ..syn_repr()
        };
        bare.emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes[12], 0x50);
        assert_eq!(bytes[20..], [0xa5; 20]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let segment = &SYN_V4[34..];
        for len in 0..segment.len() {
            let prefix = &segment[..len];
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
        let mut bytes = SYN_V4;
        bytes[46] = 0x40; // data offset 4: 16 bytes
        assert_eq!(
            Packet::new_checked(&bytes[34..]).err(),
            Some(Error::Malformed)
        );
    }

    #[test]
    fn setters_and_flags() {
        let mut bytes = SYN_V4;
        let mut packet = Packet::new_checked(&mut bytes[34..]).unwrap();
        packet.set_flags(TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN | TcpFlags::RST);
        assert!(packet.ack() && packet.psh() && packet.fin() && packet.rst());
        assert!(!packet.syn() && !packet.urg());
        assert_eq!(packet.header_len(), 40);
        packet.set_flags(TcpFlags::URG | TcpFlags::CWR);
        assert!(packet.urg() && packet.flags().contains(TcpFlags::CWR));
        assert!(!packet.flags().contains(TcpFlags::URG | TcpFlags::ECE));
        packet.set_src_port(1);
        packet.set_dst_port(2);
        packet.set_seq_number(3);
        packet.set_ack_number(4);
        packet.set_window_len(5);
        packet.set_urgent_at(6);
        packet.set_header_len(20);
        assert_eq!((packet.src_port(), packet.dst_port()), (1, 2));
        assert_eq!((packet.seq_number(), packet.ack_number()), (3, 4));
        assert_eq!((packet.window_len(), packet.urgent_at()), (5, 6));
        assert_eq!(packet.payload_mut().len(), 20);
        assert_eq!(packet.as_ref()[12..14], [0x50, 0xa0]);
        assert_eq!(TcpFlags::from_bits(0xffff).bits(), 0x0fff);
        assert_eq!(TcpFlags::empty(), TcpFlags::default());
    }
}
