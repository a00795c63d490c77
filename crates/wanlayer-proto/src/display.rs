//! How tools print and read what the control device names and measures: one format each, used by
//! `wanlayerctl`, `cargo xtask demo` and the simulator's reports alike.
//!
//! * Modules and hooks are named `slot.generation` ([`ModuleIdText`], [`HookIdText`]: `0.1`),
//!   links by their number (`7`); prose puts the kind first (`module 0.1`, `hook 2.1`, `link 7`),
//!   as the engine's own `Display` impls do. The same text is accepted as input.
//! * Rates are bits per second with SI prefixes ([`BitRate`]: `2.048 Mb/s`, `100 Mb/s`).
//! * MAC addresses are Windows style ([`MacText`]: `3C-01-20-52-41-53`), as `ipconfig` prints them.
//! * NdisWan's IPv6 line up carries a 64-bit interface identifier (IPV6CP, RFC 5072), not an
//!   address: [`InterfaceIdText`] prints it as the low half of an address, `::211:22ff:fe33:4455`,
//!   and the link table labels it as an interface identifier.
//! * The link table: [`LINK_TABLE_HEADER`], then a [`LinkRow`] and a [`LinkDetails`] line per link.
//!
//! Everything here writes through [`core::fmt`]: no allocation, nothing that panics.

use core::fmt;
use core::str::FromStr;

use crate::codes::{hook_id, split_hook_id, Direction, ModuleKind, ModuleState, Quality};
use crate::link_entry::LinkEntryRepr;
use crate::version::{CAP_CAPTURE, CAP_EVENTS, CAP_INJECT, CAP_LINKS, CAP_RESET, CAP_RULES, CAP_STATS};

/// Text that is not an identifier of the kind asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ParseIdError {
    /// What was expected: `module` or `hook`.
    pub kind: &'static str,
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a {} identifier: expected slot.generation, e.g. 0.1", self.kind)
    }
}

impl core::error::Error for ParseIdError {}

/// `slot.generation`, each part decimal digits only.
fn parse_slot_generation(text: &str) -> Option<(u16, u32)> {
    let (slot, generation) = text.split_once('.')?;
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(slot) || !digits(generation) {
        return None;
    }
    Some((slot.parse().ok()?, generation.parse().ok()?))
}

/// A module's on-wire identity (`generation << 16 | slot`) as tools print and read it:
/// `slot.generation`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ModuleIdText(pub u32);

impl fmt::Display for ModuleIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 & 0xffff, self.0 >> 16)
    }
}

impl FromStr for ModuleIdText {
    type Err = ParseIdError;

    fn from_str(text: &str) -> Result<Self, ParseIdError> {
        let (slot, generation) = parse_slot_generation(text).ok_or(ParseIdError { kind: "module" })?;
        let generation = u16::try_from(generation).map_err(|_| ParseIdError { kind: "module" })?;
        Ok(Self(u32::from(generation) << 16 | u32::from(slot)))
    }
}

/// A hook's on-wire identity (see [`hook_id`]) as tools print and read it: `slot.generation`.
/// An identity with bits above 48 set (no driver sends one) prints as its number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct HookIdText(pub u64);

impl fmt::Display for HookIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match split_hook_id(self.0) {
            Some((slot, generation)) => write!(f, "{slot}.{generation}"),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for HookIdText {
    type Err = ParseIdError;

    fn from_str(text: &str) -> Result<Self, ParseIdError> {
        let (slot, generation) = parse_slot_generation(text).ok_or(ParseIdError { kind: "hook" })?;
        Ok(Self(hook_id(slot, generation)))
    }
}

/// A rate in bits per second with an SI prefix (`b/s`, `kb/s`, `Mb/s`, `Gb/s`), up to three
/// decimals (truncated), trailing zeros dropped: the largest prefix of which the rate is at least
/// one: `600 b/s`, `9.6 kb/s`, `2.048 Mb/s`, `100 Mb/s`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BitRate(pub u64);

impl BitRate {
    /// A link's `LinkSpeed`, which NdisWan gives in units of 100 bit/s.
    pub fn from_100bps(link_speed_100bps: u32) -> Self {
        Self(u64::from(link_speed_100bps) * 100)
    }
}

impl fmt::Display for BitRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bps = self.0;
        let (unit, prefix) = match bps {
            0..=999 => return write!(f, "{bps} b/s"),
            1_000..=999_999 => (1_000, "k"),
            1_000_000..=999_999_999 => (1_000_000, "M"),
            _ => (1_000_000_000, "G"),
        };
        let whole = bps / unit;
        let mut thousandths = (bps % unit) / (unit / 1000);
        if thousandths == 0 {
            return write!(f, "{whole} {prefix}b/s");
        }
        let mut digits = 3;
        while thousandths % 10 == 0 {
            thousandths /= 10;
            digits -= 1;
        }
        write!(f, "{whole}.{thousandths:0digits$} {prefix}b/s")
    }
}

/// A MAC address, Windows style: `AA-BB-CC-DD-EE-FF`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MacText(pub [u8; 6]);

impl fmt::Display for MacText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02X}-{b:02X}-{c:02X}-{d:02X}-{e:02X}-{g:02X}")
    }
}

/// A 64-bit IPv6 interface identifier, as the low half of an address: `::211:22ff:fe33:4455`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InterfaceIdText(pub [u8; 8]);

impl fmt::Display for InterfaceIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g, h, i] = self.0;
        let group = |high: u8, low: u8| u16::from_be_bytes([high, low]);
        write!(f, "::{:x}:{:x}:{:x}:{:x}", group(a, b), group(c, d), group(e, g), group(h, i))
    }
}

/// An IPv4 address in dotted decimal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv4Text(pub [u8; 4]);

impl fmt::Display for Ipv4Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// A link's `ProtocolType`: `IPv4`, `IPv6`, or the EtherType in hexadecimal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ProtocolText(pub u16);

impl fmt::Display for ProtocolText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0x0800 => f.pad("IPv4"),
            0x86DD => f.pad("IPv6"),
            other => write!(f, "0x{other:04X}"),
        }
    }
}

/// A UTF-16LE name (a link's `DeviceName`), unpaired surrogates shown as U+FFFD.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Utf16Text<'a>(pub &'a [u8]);

impl fmt::Display for Utf16Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = self.0.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
        char::decode_utf16(units).try_for_each(|c| fmt::Write::write_char(f, c.unwrap_or(char::REPLACEMENT_CHARACTER)))
    }
}

/// Bytes in lower-case hexadecimal, no separators.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HexText<'a>(pub &'a [u8]);

impl fmt::Display for HexText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Writes `name`, or `unknown(n)` for a value without one.
fn named(f: &mut fmt::Formatter<'_>, name: Option<&str>, value: impl fmt::Display) -> fmt::Result {
    match name {
        Some(name) => f.pad(name),
        None => write!(f, "unknown({value})"),
    }
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ModuleKind::NdisWanIp => Some("ndiswan-ip"),
            ModuleKind::NdisWanIpv6 => Some("ndiswan-ipv6"),
            ModuleKind::Other => Some("other"),
            ModuleKind::Unknown(_) => None,
        };
        named(f, name, u16::from(*self))
    }
}

impl fmt::Display for ModuleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ModuleState::Attaching => Some("attaching"),
            ModuleState::Paused => Some("paused"),
            ModuleState::Restarting => Some("restarting"),
            ModuleState::Running => Some("running"),
            ModuleState::Pausing => Some("pausing"),
            ModuleState::Detached => Some("detached"),
            ModuleState::Unknown(_) => None,
        };
        named(f, name, u16::from(*self))
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Quality::Raw => Some("raw"),
            Quality::ErrorControl => Some("error-control"),
            Quality::Reliable => Some("reliable"),
            Quality::Unknown(_) => None,
        };
        named(f, name, i32::from(*self))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Direction::Send => Some("send"),
            Direction::Receive => Some("receive"),
            Direction::Unknown(_) => None,
        };
        named(f, name, u8::from(*self))
    }
}

/// The names of the capability bits (`CAP_*`) set in `capabilities`, in bit order.
pub fn capability_names(capabilities: u32) -> impl Iterator<Item = &'static str> {
    [
        (CAP_LINKS, "links"),
        (CAP_STATS, "stats"),
        (CAP_RESET, "reset"),
        (CAP_EVENTS, "events"),
        (CAP_CAPTURE, "capture"),
        (CAP_INJECT, "inject"),
        (CAP_RULES, "rules"),
    ]
    .into_iter()
    .filter(move |(bit, _)| capabilities & bit != 0)
    .map(|(_, name)| name)
}

/// The link table's column headings; each [`LinkRow`] lines up under them.
pub const LINK_TABLE_HEADER: &str =
    "  LINK MODULE REMOTE            LOCAL             PROTO        SPEED   MTU REPORTED       SENT   RECEIVED";

/// One link's line of the link table: identity, addresses, protocol, speed, sizes and packets.
#[derive(Clone, Copy, Debug)]
pub struct LinkRow<'e, 'a>(pub &'e LinkEntryRepr<'a>);

impl fmt::Display for LinkRow<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Pads what a `Display` value writes, which `{:>n}` does only for values that pad.
        struct Padded<T>(T);
        impl<T: fmt::Display> fmt::Display for Padded<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut text = ArrayText::<24>::default();
                if fmt::write(&mut text, format_args!("{}", self.0)).is_err() {
                    return f.write_str("?");
                }
                f.pad(text.as_str())
            }
        }
        let l = self.0;
        write!(
            f,
            "{:>6} {:<6} {} {} {:<5} {:>12} {:>5} {:>8} {:>10} {:>10}",
            l.link_id,
            Padded(ModuleIdText(l.module)),
            MacText(l.remote_address),
            MacText(l.local_address),
            Padded(ProtocolText(l.protocol_type)),
            Padded(BitRate::from_100bps(l.link_speed_100bps)),
            l.maximum_total_size,
            l.reported_total_size,
            l.send.packets,
            l.receive.packets
        )
    }
}

/// One link's second line: the rest of its line up, indented under its row.
#[derive(Clone, Copy, Debug)]
pub struct LinkDetails<'e, 'a>(pub &'e LinkEntryRepr<'a>);

impl fmt::Display for LinkDetails<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.0;
        write!(
            f,
            "       device '{}', quality {}, send window {}, line ups {}, protocol buffer {} bytes{}, ",
            Utf16Text(l.device_name),
            l.quality,
            l.send_window,
            l.line_ups,
            l.buffer_kept,
            if l.buffer_truncated { " (cut)" } else { "" }
        )?;
        match (l.ipv4, l.ipv6_iid) {
            (Some(address), _) => write!(f, "best-effort IPv4 address {}", Ipv4Text(address)),
            (None, Some(iid)) => write!(f, "best-effort IPv6 interface identifier {}", InterfaceIdText(iid)),
            (None, None) => f.write_str("no best-effort address"),
        }
    }
}

/// A small stack buffer that collects formatted text, for padding values whose `Display` does
/// not pad; text that does not fit is an error.
#[derive(Debug)]
struct ArrayText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for ArrayText<N> {
    fn default() -> Self {
        Self { bytes: [0; N], len: 0 }
    }
}

impl<const N: usize> ArrayText<N> {
    fn as_str(&self) -> &str {
        self.bytes.get(..self.len).and_then(|bytes| core::str::from_utf8(bytes).ok()).unwrap_or("")
    }
}

impl<const N: usize> fmt::Write for ArrayText<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len.checked_add(text.len()).filter(|end| *end <= N).ok_or(fmt::Error)?;
        self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link_entry::TrafficRepr;

    #[test]
    fn identifiers_print_and_parse_as_slot_generation() {
        assert_eq!(ModuleIdText(0x0001_0000).to_string(), "0.1");
        assert_eq!("0.1".parse(), Ok(ModuleIdText(0x0001_0000)));
        assert_eq!(HookIdText(hook_id(2, 70_000)).to_string(), "2.70000");
        assert_eq!("2.70000".parse(), Ok(HookIdText(hook_id(2, 70_000))));
        assert_eq!(HookIdText(1 << 48).to_string(), "281474976710656");
        for bad in ["65536", "0.", ".1", "0.1.2", "+0.1", "0.-1", "x.1", "70000.1", ""] {
            assert!(bad.parse::<HookIdText>().is_err(), "{bad}");
            assert!(bad.parse::<ModuleIdText>().is_err(), "{bad}");
        }
        assert!("0.70000".parse::<ModuleIdText>().is_err(), "a module generation is 16 bits");
    }

    #[test]
    fn rates_are_bits_per_second_with_si_prefixes() {
        let cases = [
            (0, "0 b/s"),
            (999, "999 b/s"),
            (9_600, "9.6 kb/s"),
            (56_000, "56 kb/s"),
            (64_500, "64.5 kb/s"),
            (2_048_000, "2.048 Mb/s"),
            (100_000_000, "100 Mb/s"),
            (1_000_000_000, "1 Gb/s"),
            (u64::from(u32::MAX) * 100, "429.496 Gb/s"),
        ];
        for (bps, text) in cases {
            assert_eq!(BitRate(bps).to_string(), text);
        }
        assert_eq!(BitRate::from_100bps(20_480), BitRate(2_048_000));
    }

    #[test]
    fn addresses_names_and_enums_print_as_tools_show_them() {
        assert_eq!(MacText([0x3c, 1, 0x20, 0x52, 0x41, 0x53]).to_string(), "3C-01-20-52-41-53");
        assert_eq!(InterfaceIdText([2, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55]).to_string(), "::211:22ff:fe33:4455");
        assert_eq!(Ipv4Text([10, 0, 0, 2]).to_string(), "10.0.0.2");
        assert_eq!((ProtocolText(0x86DD).to_string(), ProtocolText(0x0806).to_string()), ("IPv6".into(), "0x0806".into()));
        assert_eq!(Utf16Text(&[b'P', 0, b'P', 0, 0x00, 0xd8]).to_string(), "PP\u{fffd}");
        assert_eq!(HexText(&[0, 0xab]).to_string(), "00ab");
        assert_eq!((ModuleKind::NdisWanIpv6.to_string(), ModuleKind::Unknown(7).to_string()), ("ndiswan-ipv6".into(), "unknown(7)".into()));
        assert_eq!((ModuleState::Running.to_string(), Quality::ErrorControl.to_string()), ("running".into(), "error-control".into()));
        assert_eq!(Direction::Receive.to_string(), "receive");
        assert_eq!(capability_names(CAP_LINKS | CAP_RULES).collect::<Vec<_>>(), ["links", "rules"]);
    }

    #[test]
    fn a_link_prints_as_a_row_under_the_header_and_a_line_of_details() {
        let name: Vec<u8> = "PPP".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut entry = LinkEntryRepr {
            module: 0x0001_0000,
            link_id: 3,
            up_since: 0,
            send: TrafficRepr { packets: 25, bytes: 0, drops: 0 },
            receive: TrafficRepr { packets: 31, bytes: 0, drops: 0 },
            link_speed_100bps: 20_480,
            maximum_total_size: 1500,
            reported_total_size: 1440,
            quality: Quality::Raw,
            line_ups: 1,
            send_window: 4,
            protocol_type: 0x0800,
            remote_address: [0x3c, 1, 0x20, 0x52, 0x41, 0x53],
            local_address: [0x3c, 1, 0x20, 0x52, 0x41, 0x54],
            buffer_truncated: false,
            ipv4: Some([10, 0, 0, 2]),
            ipv6_iid: None,
            device_name: &name,
            buffer_kept: 64,
            protocol_buffer: &[],
        };
        let row = LinkRow(&entry).to_string();
        assert_eq!(row, "     3 0.1    3C-01-20-52-41-53 3C-01-20-52-41-54 IPv4    2.048 Mb/s  1500     1440         25         31");
        assert_eq!(row.len(), LINK_TABLE_HEADER.len(), "the row lines up under the header");
        assert_eq!(
            LinkDetails(&entry).to_string(),
            "       device 'PPP', quality raw, send window 4, line ups 1, protocol buffer 64 bytes, best-effort IPv4 address 10.0.0.2"
        );
        entry.ipv4 = None;
        entry.ipv6_iid = Some([0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(LinkDetails(&entry).to_string().ends_with("best-effort IPv6 interface identifier ::0:0:0:1"));
    }
}
