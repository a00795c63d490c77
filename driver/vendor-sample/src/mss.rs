//! The TCP MSS option of SYN segments in NdisWan frames (a 14-byte Ethernet header, then IPv4
//! or IPv6, then TCP), lowered in place with the TCP checksum adjusted incrementally (RFC 1624,
//! equation 3: `HC' = ~(~HC + ~m + m')`), so the rest of the segment is never read.
//!
//! Only what can be clamped safely is: an IPv4 packet that is not a later fragment, or an IPv6
//! packet whose next header is TCP (no extension headers); an MSS option of length 4 within the
//! TCP header's declared options.
//!
//! The adjustment assumes the checksum field holds the full checksum. A send whose checksum the
//! adapter is to compute (task offload) carries only the pseudo-header sum there; NdisWan's IP
//! edges do not offer checksum offload to the IP layer, so on them the field is always full.

/// Bytes of the Ethernet header NdisWan's IP edges frame packets with.
const ETHERNET_LEN: usize = 14;
/// IPv4's EtherType.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// IPv6's EtherType.
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// TCP's protocol number.
const PROTOCOL_TCP: u8 = 6;
/// The SYN flag of the TCP flags byte.
const TCP_SYN: u8 = 0x02;
/// The MSS option's kind.
const OPTION_MSS: u8 = 2;

/// The most header bytes a clamp needs: Ethernet, the longest IPv4 header, the longest TCP header.
pub const HEADER_BYTES: usize = ETHERNET_LEN + 60 + 60;

/// How to clamp one SYN: two writes into the frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Clamp {
    /// Frame offset of the MSS value (two bytes, big-endian).
    pub mss_offset: usize,
    /// The MSS the SYN carried.
    pub old_mss: u16,
    /// The MSS to write.
    pub new_mss: u16,
    /// Frame offset of the TCP checksum.
    pub checksum_offset: usize,
    /// The checksum to write.
    pub checksum: u16,
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// Where the TCP header starts in `frame`, if the frame carries TCP that may be clamped.
fn tcp_offset(frame: &[u8]) -> Option<usize> {
    match be16(frame, 12)? {
        ETHERTYPE_IPV4 => {
            let version_ihl = *frame.get(ETHERNET_LEN)?;
            let header_len = usize::from(version_ihl & 0x0F) * 4;
            let fragment_offset = be16(frame, ETHERNET_LEN + 6)? & 0x1FFF;
            let protocol = *frame.get(ETHERNET_LEN + 9)?;
            (version_ihl >> 4 == 4 && header_len >= 20 && fragment_offset == 0 && protocol == PROTOCOL_TCP)
                .then_some(ETHERNET_LEN + header_len)
        }
        ETHERTYPE_IPV6 => {
            let version = *frame.get(ETHERNET_LEN)? >> 4;
            let next_header = *frame.get(ETHERNET_LEN + 6)?;
            (version == 6 && next_header == PROTOCOL_TCP).then_some(ETHERNET_LEN + 40)
        }
        _ => None,
    }
}

/// RFC 1624, equation 3: the checksum after one 16-bit word changed from `old` to `new`.
pub fn adjust_checksum(checksum: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!checksum) + u32::from(!old) + u32::from(new);
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// The clamp of a TCP SYN in `frame` (its first [`HEADER_BYTES`] bytes suffice) whose MSS option
/// exceeds `mss`; `None` when there is nothing to do.
pub fn clamp(frame: &[u8], mss: u16) -> Option<Clamp> {
    let tcp = tcp_offset(frame)?;
    let flags = *frame.get(tcp + 13)?;
    if flags & TCP_SYN == 0 {
        return None;
    }
    let header_len = usize::from(*frame.get(tcp + 12)? >> 4) * 4;
    if header_len < 20 {
        return None;
    }
    let options_end = tcp + header_len;
    let mut at = tcp + 20;
    while at < options_end {
        match *frame.get(at)? {
            0 => return None,
            1 => at += 1,
            kind => {
                let len = usize::from(*frame.get(at + 1)?);
                if len < 2 || at + len > options_end {
                    return None;
                }
                if kind == OPTION_MSS && len == 4 {
                    let old_mss = be16(frame, at + 2)?;
                    if old_mss <= mss {
                        return None;
                    }
                    let checksum = be16(frame, tcp + 16)?;
                    return Some(Clamp {
                        mss_offset: at + 2,
                        old_mss,
                        new_mss: mss,
                        checksum_offset: tcp + 16,
                        checksum: adjust_checksum(checksum, old_mss, mss),
                    });
                }
                at += len;
            }
        }
    }
    None
}

