//! One WAN link in a `LIST_LINKS` answer: every field of its latest line up, its counters, and
//! (when asked) its raw protocol buffer.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | `entry_len`: bytes of this entry, padding included (a multiple of 8) |
//! | 4 | 4 | module id |
//! | 8 | 8 | link id |
//! | 16 | 8 | up since (engine clock, ns) |
//! | 24 | 8 × 3 | send packets, bytes, drops |
//! | 48 | 8 × 3 | receive packets, bytes, drops |
//! | 72 | 4 | `LinkSpeed` (100 bit/s) |
//! | 76 | 4 | `MaximumTotalSize` as indicated |
//! | 80 | 4 | `MaximumTotalSize` as reported upward |
//! | 84 | 4 | `Quality` |
//! | 88 | 4 | line ups seen |
//! | 92 | 2 | `SendWindow` |
//! | 94 | 2 | `ProtocolType` (EtherType) |
//! | 96 | 6 | `RemoteAddress` |
//! | 102 | 6 | `LocalAddress` |
//! | 108 | 1 | flags: [`LINK_BUFFER_TRUNCATED`], [`LINK_HAS_IPV4`], [`LINK_HAS_IPV6_IID`] |
//! | 109 | 1 | reserved, zero |
//! | 110 | 2 | device name length, UTF-16 code units |
//! | 112 | 4 | best-effort IPv4 address (zero without [`LINK_HAS_IPV4`]) |
//! | 116 | 4 | reserved, zero |
//! | 120 | 8 | best-effort IPv6 interface identifier (zero without [`LINK_HAS_IPV6_IID`]) |
//! | 128 | 2 | protocol buffer bytes in this entry (zero unless asked for) |
//! | 130 | 2 | reserved, zero |
//! | 132 | 4 | protocol buffer bytes the driver keeps for the link |
//! | 136 | ... | device name (UTF-16LE), then the protocol buffer, then zero padding to 8 |
//!
//! The addresses are **best effort**: read where one public sample reads them in an undocumented,
//! version-dependent buffer.

use crate::codes::Quality;
use crate::field::{align8, is_zero, view};
use crate::limits::{MAX_DEVICE_NAME_UNITS, MAX_PROTOCOL_BUFFER};
use crate::records::own_len;
use crate::{Error, Result};

/// The driver cut the link's protocol buffer.
pub const LINK_BUFFER_TRUNCATED: u8 = 1;
/// The best-effort IPv4 address is present.
pub const LINK_HAS_IPV4: u8 = 2;
/// The best-effort IPv6 interface identifier is present.
pub const LINK_HAS_IPV6_IID: u8 = 4;
const KNOWN_FLAGS: u8 = LINK_BUFFER_TRUNCATED | LINK_HAS_IPV4 | LINK_HAS_IPV6_IID;

view! {
    /// The fixed part of a link entry.
    pub struct LinkEntry, LEN = 136; {
        /// Bytes of the entry, padding included.
        entry_len / set_entry_len @ 0: u32,
        /// The module the link lives on.
        module / set_module @ 4: u32,
        /// The link's identity.
        link_id / set_link_id @ 8: u64,
        /// When the link came up (engine clock, ns).
        up_since / set_up_since @ 16: u64,
        /// Packets sent.
        send_packets / set_send_packets @ 24: u64,
        /// Bytes sent.
        send_bytes / set_send_bytes @ 32: u64,
        /// Sends dropped.
        send_drops / set_send_drops @ 40: u64,
        /// Packets received.
        receive_packets / set_receive_packets @ 48: u64,
        /// Bytes received.
        receive_bytes / set_receive_bytes @ 56: u64,
        /// Receives dropped.
        receive_drops / set_receive_drops @ 64: u64,
        /// `LinkSpeed`, in units of 100 bit/s.
        link_speed_100bps / set_link_speed_100bps @ 72: u32,
        /// `MaximumTotalSize` as NdisWan indicated it.
        maximum_total_size / set_maximum_total_size @ 76: u32,
        /// `MaximumTotalSize` as reported to the IP layer.
        reported_total_size / set_reported_total_size @ 80: u32,
        /// `Quality`.
        quality / set_quality @ 84: i32,
        /// Line ups seen for the link.
        line_ups / set_line_ups @ 88: u32,
        /// `SendWindow`.
        send_window / set_send_window @ 92: u16,
        /// `ProtocolType`.
        protocol_type / set_protocol_type @ 94: u16,
        /// `RemoteAddress`.
        remote_address / set_remote_address @ 96: [u8; 6],
        /// `LocalAddress`.
        local_address / set_local_address @ 102: [u8; 6],
        /// Flags.
        flags / set_flags @ 108: u8,
        /// Reserved, zero.
        reserved_a / set_reserved_a @ 109: u8,
        /// Device name length in UTF-16 code units.
        device_name_units / set_device_name_units @ 110: u16,
        /// Best-effort IPv4 address.
        ipv4 / set_ipv4 @ 112: [u8; 4],
        /// Reserved, zero.
        reserved_b / set_reserved_b @ 116: u32,
        /// Best-effort IPv6 interface identifier.
        ipv6_iid / set_ipv6_iid @ 120: [u8; 8],
        /// Protocol buffer bytes in this entry.
        buffer_here / set_buffer_here @ 128: u16,
        /// Reserved, zero.
        reserved_c / set_reserved_c @ 130: u16,
        /// Protocol buffer bytes the driver keeps.
        buffer_kept / set_buffer_kept @ 132: u32,
    }
}

/// Traffic counts of one direction of a link.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TrafficRepr {
    /// Packets.
    pub packets: u64,
    /// Frame bytes.
    pub bytes: u64,
    /// Drops.
    pub drops: u64,
}

/// One parsed link entry; the variable parts borrow the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LinkEntryRepr<'a> {
    /// The module the link lives on.
    pub module: u32,
    /// The link's identity.
    pub link_id: u64,
    /// When the link came up (engine clock, ns).
    pub up_since: u64,
    /// Sends.
    pub send: TrafficRepr,
    /// Receives.
    pub receive: TrafficRepr,
    /// `LinkSpeed`, in units of 100 bit/s.
    pub link_speed_100bps: u32,
    /// `MaximumTotalSize` as NdisWan indicated it.
    pub maximum_total_size: u32,
    /// `MaximumTotalSize` as reported to the IP layer.
    pub reported_total_size: u32,
    /// `Quality`.
    pub quality: Quality,
    /// Line ups seen.
    pub line_ups: u32,
    /// `SendWindow`.
    pub send_window: u16,
    /// `ProtocolType` (EtherType).
    pub protocol_type: u16,
    /// `RemoteAddress`.
    pub remote_address: [u8; 6],
    /// `LocalAddress`.
    pub local_address: [u8; 6],
    /// The driver cut the protocol buffer.
    pub buffer_truncated: bool,
    /// Best-effort IPv4 address.
    pub ipv4: Option<[u8; 4]>,
    /// Best-effort IPv6 interface identifier.
    pub ipv6_iid: Option<[u8; 8]>,
    /// `DeviceName`, UTF-16LE bytes.
    pub device_name: &'a [u8],
    /// Protocol buffer bytes the driver keeps for the link.
    pub buffer_kept: u32,
    /// The raw protocol buffer, when asked for.
    pub protocol_buffer: &'a [u8],
}

impl<'a> LinkEntryRepr<'a> {
    /// Parses one entry that fills the buffer exactly.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Misaligned`], [`Error::BadSize`] (the length disagrees
    /// with the variable parts), [`Error::BadValue`] (unknown flags, absent addresses not zero,
    /// lengths over their bounds), [`Error::Reserved`] (reserved fields or padding not zero).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &LinkEntry<&'a T>) -> Result<Self> {
        view.check_len()?;
        let bytes: &'a [u8] = view.clone().into_inner().as_ref();
        let entry_len = own_len(view.entry_len(), bytes)?;
        if view.reserved_a() != 0 || view.reserved_b() != 0 || view.reserved_c() != 0 {
            return Err(Error::Reserved);
        }
        let flags = view.flags();
        let name_len = usize::from(view.device_name_units()) * 2;
        let buffer_here = usize::from(view.buffer_here());
        let bad_flags = flags & !KNOWN_FLAGS != 0;
        let stray_v4 = flags & LINK_HAS_IPV4 == 0 && view.ipv4() != [0; 4];
        let stray_v6 = flags & LINK_HAS_IPV6_IID == 0 && view.ipv6_iid() != [0; 8];
        let too_long = name_len > MAX_DEVICE_NAME_UNITS * 2
            || buffer_here > MAX_PROTOCOL_BUFFER
            || u64::from(view.buffer_kept()) > MAX_PROTOCOL_BUFFER as u64
            || buffer_here as u64 > u64::from(view.buffer_kept());
        if bad_flags || stray_v4 || stray_v6 || too_long {
            return Err(Error::BadValue);
        }
        let data_end = LinkEntry::<&[u8]>::LEN + name_len + buffer_here;
        if align8(data_end) != Some(entry_len) {
            return Err(Error::BadSize);
        }
        if !is_zero(&bytes[data_end..]) {
            return Err(Error::Reserved);
        }
        let name_at = LinkEntry::<&[u8]>::LEN;
        Ok(Self {
            module: view.module(),
            link_id: view.link_id(),
            up_since: view.up_since(),
            send: TrafficRepr { packets: view.send_packets(), bytes: view.send_bytes(), drops: view.send_drops() },
            receive: TrafficRepr { packets: view.receive_packets(), bytes: view.receive_bytes(), drops: view.receive_drops() },
            link_speed_100bps: view.link_speed_100bps(),
            maximum_total_size: view.maximum_total_size(),
            reported_total_size: view.reported_total_size(),
            quality: Quality::from(view.quality()),
            line_ups: view.line_ups(),
            send_window: view.send_window(),
            protocol_type: view.protocol_type(),
            remote_address: view.remote_address(),
            local_address: view.local_address(),
            buffer_truncated: flags & LINK_BUFFER_TRUNCATED != 0,
            ipv4: (flags & LINK_HAS_IPV4 != 0).then(|| view.ipv4()),
            ipv6_iid: (flags & LINK_HAS_IPV6_IID != 0).then(|| view.ipv6_iid()),
            device_name: &bytes[name_at..name_at + name_len],
            buffer_kept: view.buffer_kept(),
            protocol_buffer: &bytes[name_at + name_len..data_end],
        })
    }

    /// The device name decoded, unpaired surrogates replaced.
    pub fn device_name_chars(&self) -> impl Iterator<Item = char> + 'a {
        let units = self.device_name.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
        char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Bytes [`emit`](Self::emit) writes.
    ///
    /// # Errors
    /// [`Error::BadValue`] when the name (odd length or too long) or the buffer is out of bounds.
    pub fn buffer_len(&self) -> Result<usize> {
        if self.device_name.len() % 2 != 0
            || self.device_name.len() > MAX_DEVICE_NAME_UNITS * 2
            || self.protocol_buffer.len() > MAX_PROTOCOL_BUFFER
        {
            return Err(Error::BadValue);
        }
        align8(LinkEntry::<&[u8]>::LEN + self.device_name.len() + self.protocol_buffer.len()).ok_or(Error::BadValue)
    }

    /// Writes the entry, padding included.
    ///
    /// # Errors
    /// As [`buffer_len`](Self::buffer_len); [`Error::Truncated`] when the buffer is shorter.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut LinkEntry<&mut T>) -> Result<()> {
        let len = self.buffer_len()?;
        if view.as_bytes().len() < len {
            return Err(Error::Truncated);
        }
        let mut flags = 0;
        if self.buffer_truncated {
            flags |= LINK_BUFFER_TRUNCATED;
        }
        if self.ipv4.is_some() {
            flags |= LINK_HAS_IPV4;
        }
        if self.ipv6_iid.is_some() {
            flags |= LINK_HAS_IPV6_IID;
        }
        view.set_entry_len(len as u32);
        view.set_module(self.module);
        view.set_link_id(self.link_id);
        view.set_up_since(self.up_since);
        view.set_send_packets(self.send.packets);
        view.set_send_bytes(self.send.bytes);
        view.set_send_drops(self.send.drops);
        view.set_receive_packets(self.receive.packets);
        view.set_receive_bytes(self.receive.bytes);
        view.set_receive_drops(self.receive.drops);
        view.set_link_speed_100bps(self.link_speed_100bps);
        view.set_maximum_total_size(self.maximum_total_size);
        view.set_reported_total_size(self.reported_total_size);
        view.set_quality(self.quality.into());
        view.set_line_ups(self.line_ups);
        view.set_send_window(self.send_window);
        view.set_protocol_type(self.protocol_type);
        view.set_remote_address(self.remote_address);
        view.set_local_address(self.local_address);
        view.set_flags(flags);
        view.set_reserved_a(0);
        view.set_device_name_units((self.device_name.len() / 2) as u16);
        view.set_ipv4(self.ipv4.unwrap_or_default());
        view.set_reserved_b(0);
        view.set_ipv6_iid(self.ipv6_iid.unwrap_or_default());
        view.set_buffer_here(self.protocol_buffer.len() as u16);
        view.set_reserved_c(0);
        view.set_buffer_kept(self.buffer_kept);
        let bytes = &mut view.as_bytes_mut()[..len];
        let name_at = LinkEntry::<&[u8]>::LEN;
        let buffer_at = name_at + self.device_name.len();
        let data_end = buffer_at + self.protocol_buffer.len();
        bytes[name_at..buffer_at].copy_from_slice(self.device_name);
        bytes[buffer_at..data_end].copy_from_slice(self.protocol_buffer);
        bytes[data_end..].fill(0);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict_lengths};

    pub(crate) fn sample<'a>(name: &'a [u8], buffer: &'a [u8]) -> LinkEntryRepr<'a> {
        LinkEntryRepr {
            module: 0x0001_0000,
            link_id: 5,
            up_since: 1_000,
            send: TrafficRepr { packets: 3, bytes: 300, drops: 1 },
            receive: TrafficRepr { packets: 4, bytes: 400, drops: 0 },
            link_speed_100bps: 20_480,
            maximum_total_size: 1500,
            reported_total_size: 1440,
            quality: Quality::Reliable,
            line_ups: 1,
            send_window: 16,
            protocol_type: 0x0800,
            remote_address: [0x3c, 1, 0x20, 0x52, 0x41, 0x53],
            local_address: [0x02, 0, 0, 0, 0, 1],
            buffer_truncated: false,
            ipv4: Some([10, 100, 0, 1]),
            ipv6_iid: None,
            device_name: name,
            buffer_kept: 600,
            protocol_buffer: buffer,
        }
    }

    fn encode(repr: &LinkEntryRepr<'_>) -> Vec<u8> {
        let mut buffer = vec![0xa5; repr.buffer_len().unwrap()];
        repr.emit(&mut LinkEntry::new_unchecked(&mut buffer[..])).unwrap();
        buffer
    }

    fn parse(bytes: &[u8]) -> Result<LinkEntryRepr<'_>> {
        LinkEntryRepr::parse(&LinkEntry::new_unchecked(bytes))
    }

    fn check(bytes: &[u8]) -> Result<()> {
        parse(bytes).map(|_| ())
    }

    #[test]
    fn round_trips_names_buffers_and_padding() {
        let name: Vec<u8> = "\\DEVICE\\NDISWAN".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let buffer = [9u8; 5];
        let repr = sample(&name, &buffer);
        let bytes = encode(&repr);
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(parse(&bytes), Ok(repr));
        assert_eq!(parse(&bytes).unwrap().device_name_chars().collect::<String>(), "\\DEVICE\\NDISWAN");
    }

    #[test]
    fn refuses_every_malformed_entry() {
        let name: Vec<u8> = "ab".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let buffer = [1u8, 2, 3];
        let bytes = encode(&sample(&name, &buffer));
        assert_strict_lengths(&bytes, check);
        let data_end = 136 + name.len() + buffer.len();
        assert_reserved(&bytes, &[109..110, 116..120, 130..132, data_end..bytes.len()], check);
        assert_refused(&bytes, 0, &(bytes.len() as u32 + 8).to_le_bytes(), Error::BadSize, check);
        assert_refused(&bytes, 0, &(bytes.len() as u32 - 1).to_le_bytes(), Error::Misaligned, check);
        assert_refused(&bytes, 108, &[0x80 | LINK_HAS_IPV4], Error::BadValue, check);
        assert_refused(&bytes, 108, &[0], Error::BadValue, check);
        assert_refused(&bytes, 120, &[1], Error::BadValue, check);
        assert_refused(&bytes, 110, &300u16.to_le_bytes(), Error::BadValue, check);
        assert_refused(&bytes, 132, &1u32.to_le_bytes(), Error::BadValue, check);
        assert_refused(&bytes, 110, &3u16.to_le_bytes(), Error::BadSize, check);
        let odd = LinkEntryRepr { device_name: &[1], ..sample(&[], &[]) };
        assert_eq!(odd.buffer_len(), Err(Error::BadValue));
        assert_eq!(sample(&[], &[]).emit(&mut LinkEntry::new_unchecked(&mut [0u8; 130][..])), Err(Error::Truncated));
    }
}
