//! The classifier: index probes, then candidate rules verified in priority order.
//!
//! # Per packet
//! 1. For each probe class `(field, prefix)` of the set (at most 326, in field order), the
//!    packet's field is read once (IPv4/IPv6 addresses, TCP/UDP/SCTP ports, exactly as the rules'
//!    own tests read them), masked to the prefix and looked up in the open-addressing table:
//!    at most `max_probe + 1` slots, validated at load.
//! 2. Each hit is a list of rule indexes (ascending, that is in priority order) whose rule can
//!    only match when the packet has that key. Together with the catch-all list (rules that do
//!    not decompose into an indexable test) they are all the candidates; each list is walked only
//!    while its entries are below the best match so far.
//! 3. A candidate's program runs: at most one step per node, jumps only forward.
//!
//! No allocation, no recursion; every loop is bounded by a count validated at load.

use crate::format::{self, field, node, rule, slot, u32_at};
use crate::packet::{Action, Direction, Match, PacketView, HEADER_BYTES};
use crate::set::{Layout, RuleSet};

/// Ethertype of IPv4.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
const ETHERTYPE_IPV6: u16 = 0x86dd;

fn be16(frame: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        frame.get(offset..offset + 2)?.try_into().ok()?,
    ))
}

fn load(frame: &[u8], offset: usize, size: u8) -> Option<u32> {
    match size {
        1 => frame.get(offset).map(|byte| u32::from(*byte)),
        2 => be16(frame, offset).map(u32::from),
        _ => Some(u32::from_be_bytes(
            frame.get(offset..offset + 4)?.try_into().ok()?,
        )),
    }
}

/// The packet's value of an index field, left-aligned as the index stores keys, or None when
/// the packet has no such field (the rules indexed under it cannot match then).
fn field_key(frame: &[u8], which: u8) -> Option<u128> {
    let ethertype = be16(frame, 12)?;
    let address = |offset: usize, len: usize| -> Option<u128> {
        let mut key = [0u8; 16];
        key.get_mut(..len)?
            .copy_from_slice(frame.get(offset..offset + len)?);
        Some(u128::from_be_bytes(key))
    };
    match (which, ethertype) {
        (field::SRC_V4, ETHERTYPE_IPV4) => address(26, 4),
        (field::DST_V4, ETHERTYPE_IPV4) => address(30, 4),
        (field::SRC_V6, ETHERTYPE_IPV6) => address(22, 16),
        (field::DST_V6, ETHERTYPE_IPV6) => address(38, 16),
        (field::SRC_PORT | field::DST_PORT, _) => {
            let transport = match ethertype {
                ETHERTYPE_IPV4 => {
                    // pcap's port tests: protocol TCP, UDP or SCTP, first fragment, header
                    // length taken from IHL whatever it says.
                    let protocol = *frame.get(23)?;
                    let fragment = be16(frame, 20)? & 0x1fff;
                    if !matches!(protocol, 6 | 17 | 132) || fragment != 0 {
                        return None;
                    }
                    14 + usize::from(*frame.get(14)? & 0x0f) * 4
                }
                ETHERTYPE_IPV6 if matches!(*frame.get(20)?, 6 | 17 | 132) => 54,
                _ => return None,
            };
            let offset = if which == field::SRC_PORT {
                transport
            } else {
                transport + 2
            };
            address(offset, 2)
        }
        _ => None,
    }
}

impl RuleSet {
    /// The matching rule with the lowest `priority` value (ties: the lower index), or None.
    /// Never allocates; bounded work; sublinear in the number of rules for the common shapes.
    pub fn classify(&self, packet: &PacketView<'_>) -> Option<Match> {
        let layout = &self.layout;
        let blob = self.blob.as_slice();
        let frame = packet.frame.get(..HEADER_BYTES).unwrap_or(packet.frame);
        let mut best = layout.rule_count;
        let mut current_field = u8::MAX;
        let mut key = None;
        for probe in 0..layout.probe_count {
            let at = layout.probes + probe * format::PROBE_LEN;
            let which = *blob.get(at)?;
            let prefix = *blob.get(at + 1)?;
            if which != current_field {
                current_field = which;
                key = field_key(frame, which);
            }
            let Some(key) = key else { continue };
            let masked = key & format::prefix_mask(prefix);
            if let Some((start, len)) = self.lookup(which, prefix, masked) {
                best = self.walk(start, len, best, packet, frame);
            }
        }
        best = self.walk(
            layout.catch_all_start,
            layout.catch_all_len,
            best,
            packet,
            frame,
        );
        if best >= layout.rule_count {
            return None;
        }
        let record = layout.rules + best * format::RULE_LEN;
        Some(Match {
            index: best,
            id: u32_at(blob, record + rule::ID)?,
            action: Action::from_u8(*blob.get(record + rule::ACTION)?)?,
        })
    }

    /// The list of the slot holding `(which, prefix, key)`, if any.
    fn lookup(&self, which: u8, prefix: u8, key: u128) -> Option<(usize, usize)> {
        let layout = &self.layout;
        if layout.slot_count == 0 {
            return None;
        }
        let mask = layout.slot_count - 1;
        let mut index = format::hash(which, prefix, key) as usize & mask;
        for _ in 0..=layout.max_probe {
            let at = layout.slots + index * format::SLOT_LEN;
            let entry = self.blob.get(at..at + format::SLOT_LEN)?;
            if *entry.get(slot::OCCUPIED)? == 0 {
                return None;
            }
            if *entry.get(slot::FIELD)? == which
                && *entry.get(slot::PREFIX)? == prefix
                && format::key_at(entry, slot::KEY)? == key
            {
                return Some((
                    u32_at(entry, slot::LIST_START)? as usize,
                    u32_at(entry, slot::LIST_LEN)? as usize,
                ));
            }
            index = (index + 1) & mask;
        }
        None
    }

    /// Runs the candidates of a list below `best` in order; returns the new best.
    fn walk(
        &self,
        start: usize,
        len: usize,
        best: usize,
        packet: &PacketView<'_>,
        frame: &[u8],
    ) -> usize {
        let lists = self.layout.lists;
        for word in start..start.saturating_add(len) {
            let Some(candidate) = u32_at(&self.blob, lists + word * 4) else {
                return best;
            };
            let candidate = candidate as usize;
            if candidate >= best {
                return best;
            }
            if self.run(candidate, packet, frame) {
                return candidate;
            }
        }
        best
    }

    /// Whether rule `index`'s program matches.
    fn run(&self, index: usize, packet: &PacketView<'_>, frame: &[u8]) -> bool {
        let layout: &Layout = &self.layout;
        let blob = self.blob.as_slice();
        let record = layout.rules + index * format::RULE_LEN;
        let (Some(start), Some(count)) = (
            u32_at(blob, record + rule::NODE_START),
            u32_at(blob, record + rule::NODE_COUNT),
        ) else {
            return false;
        };
        let (start, count) = (start as usize, count as usize);
        let mut position = 0usize;
        // Validated: every jump goes forward, so the program ends within `count` steps.
        for _ in 0..count {
            let at = layout.nodes + (start + position) * format::NODE_LEN;
            let Some(node) = blob.get(at..at + format::NODE_LEN) else {
                return false;
            };
            let Some(holds) = self.test(node, packet, frame) else {
                return false;
            };
            let target = u32_at(
                node,
                if holds {
                    node::JUMP_TRUE
                } else {
                    node::JUMP_FALSE
                },
            )
            .unwrap_or(format::NO_MATCH);
            match target {
                format::MATCH => return true,
                format::NO_MATCH => return false,
                next => position = next as usize,
            }
        }
        false
    }

    /// One node's test: Some(outcome), or None when it needs bytes the frame does not have.
    fn test(&self, node: &[u8], packet: &PacketView<'_>, frame: &[u8]) -> Option<bool> {
        let kind = *node.first()?;
        let op = *node.get(node::OP)?;
        let mask = u32_at(node, node::MASK)?;
        let value = u32_at(node, node::VALUE)?;
        let compare = |field: u32| {
            let field = field & mask;
            match op {
                format::OP_EQ => field == value,
                format::OP_GT => field > value,
                _ => field >= value,
            }
        };
        let offset = usize::from(u16::from_le_bytes([
            *node.get(node::OFFSET)?,
            *node.get(node::OFFSET + 1)?,
        ]));
        let size = *node.get(node::SIZE)?;
        match kind {
            format::KIND_FRAME => Some(compare(load(frame, offset, size)?)),
            format::KIND_TRANSPORT4 => {
                let header = usize::from(*frame.get(14)? & 0x0f) * 4;
                Some(compare(load(frame, 14 + header + offset, size)?))
            }
            format::KIND_LENGTH => Some(compare(packet.frame_len)),
            format::KIND_LINK => Some(packet.link == (u64::from(value) << 32 | u64::from(mask))),
            format::KIND_DIRECTION => {
                Some(value == u32::from(packet.direction == Direction::Receive))
            }
            format::KIND_DEVICE => {
                Some(self.device_matches(mask as usize, value as usize, packet.device))
            }
            _ => Some(false),
        }
    }

    /// `device NAME`: the link's device name equals NAME ignoring ASCII case; a NAME ending in
    /// `*` matches every device name that starts with the rest.
    fn device_matches(&self, start: usize, len: usize, device: &[u16]) -> bool {
        let strings = self.layout.strings;
        let Some(name) = self
            .blob
            .get(strings + start..strings + start + len)
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
        else {
            return false;
        };
        let (name, prefix) = match name.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (name, false),
        };
        let mut units = device.iter();
        for expected in name.encode_utf16() {
            match units.next() {
                Some(unit) if fold(*unit) == fold(expected) => {}
                _ => return false,
            }
        }
        prefix || units.next().is_none()
    }
}

fn fold(unit: u16) -> u16 {
    if (u16::from(b'a')..=u16::from(b'z')).contains(&unit) {
        unit - 32
    } else {
        unit
    }
}
