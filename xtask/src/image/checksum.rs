//! The PE image checksum, as `CheckSumMappedFile` (imagehlp) computes it and the kernel loader
//! checks it for drivers.

/// The checksum of `file` with the 4-byte `CheckSum` field at `checksum_offset` counted as zero.
///
/// The file is summed as little-endian 16-bit words (an odd last byte is padded with zero) with
/// the carry out of bit 15 folded back in after every addition; the file length is then added.
/// The length wraps at 32 bits as in the reference implementation (a driver is far smaller).
pub fn pe_checksum(file: &[u8], checksum_offset: usize) -> u32 {
    let field = checksum_offset..checksum_offset.saturating_add(4);
    let mut sum: u32 = 0;
    for (index, pair) in file.chunks(2).enumerate() {
        let at = index * 2;
        let low = if field.contains(&at) { 0 } else { pair[0] };
        let high = match pair.get(1) {
            Some(&byte) if !field.contains(&(at + 1)) => byte,
            _ => 0,
        };
        sum += u32::from(u16::from_le_bytes([low, high]));
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum.wrapping_add(file.len() as u32)
}
