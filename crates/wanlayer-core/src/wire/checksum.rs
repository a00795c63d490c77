//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! A *sum* here is the ones-complement sum of big-endian 16-bit words, folded to 16 bits and not
//! yet complemented. A checksum field holds the complement of the sum of everything it covers
//! (with the field itself taken as zero), so a covered range that includes a correct checksum
//! field sums to `0xffff`. None of these functions panics, whatever the input.

use super::{Error, IpAddress, IpProtocol, Ipv4Address, Ipv6Address, Result};

/// Bytes summed into a `u32` before folding: 32 768 words of at most `0xffff` stay below `2^31`.
const CHUNK: usize = 1 << 16;

/// Ones-complement addition of two 16-bit sums (end-around carry).
const fn add(a: u16, b: u16) -> u16 {
    let sum = a as u32 + b as u32;
    ((sum & 0xffff) + (sum >> 16)) as u16
}

/// Folds a 32-bit accumulator into a 16-bit ones-complement sum.
const fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The ones-complement sum of `data` as big-endian 16-bit words; an odd last byte is padded with
/// a zero byte.
pub fn data(data: &[u8]) -> u16 {
    let mut total = 0;
    for chunk in data.chunks(CHUNK) {
        let mut words = chunk.chunks_exact(2);
        let mut acc: u32 = 0;
        for word in &mut words {
            acc += u32::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            acc += u32::from(*last) << 8;
        }
        total = add(total, fold(acc));
    }
    total
}

/// The ones-complement sum of several sums.
pub fn combine(sums: &[u16]) -> u16 {
    sums.iter().fold(0, |total, &sum| add(total, sum))
}

/// The sum of the IPv4 pseudo-header that TCP and UDP checksums cover: source, destination, zero,
/// protocol, and `length`, the length of the TCP or UDP header and payload.
pub fn pseudo_header_v4(
    src_addr: &Ipv4Address,
    dst_addr: &Ipv4Address,
    protocol: IpProtocol,
    length: u16,
) -> u16 {
    combine(&[
        data(&src_addr.0),
        data(&dst_addr.0),
        u16::from(u8::from(protocol)),
        length,
    ])
}

/// The sum of the IPv6 pseudo-header (RFC 8200, section 8.1): source, destination, the 32-bit
/// upper-layer packet `length`, and the upper-layer protocol `next_header`.
pub fn pseudo_header_v6(
    src_addr: &Ipv6Address,
    dst_addr: &Ipv6Address,
    next_header: IpProtocol,
    length: u32,
) -> u16 {
    let [l0, l1, l2, l3] = length.to_be_bytes();
    combine(&[
        data(&src_addr.0),
        data(&dst_addr.0),
        u16::from_be_bytes([l0, l1]),
        u16::from_be_bytes([l2, l3]),
        u16::from(u8::from(next_header)),
    ])
}

/// The pseudo-header sum for either IP version.
///
/// # Errors
///
/// [`Error::Malformed`] if the two addresses are of different versions, or if `length` does not
/// fit the pseudo-header's length field (16 bits for IPv4, 32 bits for IPv6).
pub fn pseudo_header(
    src_addr: &IpAddress,
    dst_addr: &IpAddress,
    protocol: IpProtocol,
    length: usize,
) -> Result<u16> {
    match (src_addr, dst_addr) {
        (IpAddress::Ipv4(src), IpAddress::Ipv4(dst)) => {
            let length = u16::try_from(length).map_err(|_| Error::Malformed)?;
            Ok(pseudo_header_v4(src, dst, protocol, length))
        }
        (IpAddress::Ipv6(src), IpAddress::Ipv6(dst)) => {
            let length = u32::try_from(length).map_err(|_| Error::Malformed)?;
            Ok(pseudo_header_v6(src, dst, protocol, length))
        }
        _ => Err(Error::Malformed),
    }
}

/// The new value of a checksum field after one 16-bit word it covers changed from `old_word` to
/// `new_word` (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`), without summing the data again.
///
/// The words are as the checksum sees them: a 16-bit value stored at an odd offset from the start
/// of the covered data must be passed byte-swapped.
pub fn incremental_update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    !combine(&[!old_checksum, !old_word, new_word])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{SYN_V4, SYN_V6};

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071, section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(!data(&bytes), 0x220d);
        assert_eq!(data(&[]), 0);
        // An odd last byte is the high byte of a zero-padded word.
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn combine_is_ones_complement_addition() {
        assert_eq!(combine(&[]), 0);
        assert_eq!(combine(&[0xffff, 0x0001]), 0x0001);
        assert_eq!(combine(&[0x8000, 0x8000]), 0x0001);
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(
            combine(&[data(&bytes[..4]), data(&bytes[4..])]),
            data(&bytes)
        );
    }

    #[test]
    fn long_buffers_fold_without_overflow() {
        let bytes: [u8; 200_001] = core::array::from_fn(|i| ((i * 7) % 251) as u8);
        assert_eq!(data(&bytes), 0xdbf6);
        assert_eq!(data(&[0xff; 300_000]), 0xffff);
    }

    #[test]
    fn pseudo_headers_match_known_sums() {
        let v4_src = Ipv4Address::new(192, 168, 1, 10);
        let v4_dst = Ipv4Address::new(93, 184, 216, 34);
        assert_eq!(
            pseudo_header_v4(&v4_src, &v4_dst, IpProtocol::Tcp, 40),
            0xf7bb
        );
        let v6_src = Ipv6Address::from_segments([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]);
        let v6_dst = Ipv6Address::from_segments([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x443]);
        assert_eq!(
            pseudo_header_v6(&v6_src, &v6_dst, IpProtocol::Tcp, 40),
            0x5ff4
        );
        let (s4, d4) = (IpAddress::from(v4_src), IpAddress::from(v4_dst));
        assert_eq!(pseudo_header(&s4, &d4, IpProtocol::Tcp, 40), Ok(0xf7bb));
        let (s6, d6) = (IpAddress::from(v6_src), IpAddress::from(v6_dst));
        assert_eq!(pseudo_header(&s6, &d6, IpProtocol::Tcp, 40), Ok(0x5ff4));
    }

    #[test]
    fn pseudo_header_rejects_mixed_versions_and_long_lengths() {
        let v4 = IpAddress::from(Ipv4Address::new(10, 0, 0, 1));
        let v6 = IpAddress::from(Ipv6Address::LOOPBACK);
        assert_eq!(
            pseudo_header(&v4, &v6, IpProtocol::Udp, 8),
            Err(Error::Malformed)
        );
        assert_eq!(
            pseudo_header(&v6, &v4, IpProtocol::Udp, 8),
            Err(Error::Malformed)
        );
        assert_eq!(
            pseudo_header(&v4, &v4, IpProtocol::Udp, 65_536),
            Err(Error::Malformed)
        );
        assert!(pseudo_header(&v6, &v6, IpProtocol::Udp, 65_536).is_ok());
    }

    #[test]
    fn known_good_segments_sum_to_all_ones() {
        let v4_src = Ipv4Address::new(192, 168, 1, 10);
        let v4_dst = Ipv4Address::new(93, 184, 216, 34);
        let seg = &SYN_V4[34..];
        let pseudo = pseudo_header_v4(&v4_src, &v4_dst, IpProtocol::Tcp, 40);
        assert_eq!(combine(&[pseudo, data(seg)]), 0xffff);
        // The IPv4 header on its own.
        assert_eq!(data(&SYN_V4[14..34]), 0xffff);
        let v6_src = Ipv6Address::from_segments([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]);
        let v6_dst = Ipv6Address::from_segments([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x443]);
        let pseudo = pseudo_header_v6(&v6_src, &v6_dst, IpProtocol::Tcp, 40);
        assert_eq!(combine(&[pseudo, data(&SYN_V6[54..])]), 0xffff);
    }

    #[test]
    fn incremental_update_equals_recomputation_for_every_word_value() {
        // The IPv4 header of SYN_V4: change the identification word (offset 4) to every value.
        let mut header: [u8; 20] = SYN_V4[14..34].try_into().unwrap();
        let old_checksum = u16::from_be_bytes([header[10], header[11]]);
        let old_word = u16::from_be_bytes([header[4], header[5]]);
        for new_word in 0..=u16::MAX {
            header[4..6].copy_from_slice(&new_word.to_be_bytes());
            header[10..12].fill(0);
            let full = !data(&header);
            let incremental = incremental_update(old_checksum, old_word, new_word);
            // 0x0000 and 0xffff are the same ones-complement number; both verify.
            assert!(
                incremental == full || (incremental | full == 0xffff && incremental & full == 0),
                "word {new_word:#06x}: {incremental:#06x} != {full:#06x}"
            );
            header[10..12].copy_from_slice(&incremental.to_be_bytes());
            assert_eq!(data(&header), 0xffff);
        }
    }
}
