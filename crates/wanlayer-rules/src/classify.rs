//! The classifier: index probes, then candidate rules verified in priority order.
//!
//! # Per packet
//! 1. For each index field of the packet's family (IPv4 or IPv6 source and destination, then
//!    the TCP/UDP/SCTP source and destination ports, read exactly as the rules' own tests read
//!    them) and each prefix length the set indexes for that field (a bitmap computed at load),
//!    the field is masked to the prefix and looked up in the open-addressing hash table: at most
//!    `max_probe + 1` slots (validated at load), usually one, since the table is at most a
//!    quarter full and a miss ends at the first empty slot. The probes only note the candidate
//!    lists they find, so a packet no indexed rule can match (the common case) calls nothing.
//! 2. Each list holds rule indexes, ascending (that is in priority order), of rules that can
//!    only match when the packet has that key. Together with the catch-all list (rules without
//!    an indexable necessary condition) they are all the candidates; each list is walked only
//!    while its entries are below the best match so far.
//! 3. A candidate's program runs: at most one step per node, jumps only forward.
//!
//! No allocation, no recursion; every loop is bounded by a count validated at load.

use crate::classifier_io::{Action, Direction, Match, PacketView};
use crate::format::{self, field, node, rule, u32_at};
use crate::set::{Layout, RuleSet};

/// Ethertype of IPv4.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
const ETHERTYPE_IPV6: u16 = 0x86dd;

fn be16(frame: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_be_bytes(frame.get(offset..offset + 2)?.try_into().ok()?))
}

fn load(frame: &[u8], offset: usize, size: u8) -> Option<u32> {
    match size {
        1 => frame.get(offset).map(|byte| u32::from(*byte)),
        2 => be16(frame, offset).map(u32::from),
        _ => Some(u32::from_be_bytes(frame.get(offset..offset + 4)?.try_into().ok()?)),
    }
}

/// The transport header's offset for pcap's port tests, or None when the packet has no ports:
/// IPv4 with protocol TCP, UDP or SCTP, first fragment, header length taken from IHL whatever it
/// says; IPv6 with next header TCP, UDP or SCTP (no extension headers), as libpcap's.
fn transport_offset(frame: &[u8], ethertype: u16) -> Option<usize> {
    if ethertype == ETHERTYPE_IPV4 {
        let protocol = *frame.get(23)?;
        let fragment = be16(frame, 20)? & 0x1fff;
        if !matches!(protocol, 6 | 17 | 132) || fragment != 0 {
            return None;
        }
        Some(14 + usize::from(*frame.get(14)? & 0x0f) * 4)
    } else if matches!(*frame.get(20)?, 6 | 17 | 132) {
        Some(54)
    } else {
        None
    }
}

/// The high 64 bits of a left-aligned 64-bit-or-shorter key masked to `prefix` bits (1..=64).
fn mask64(value: u64, prefix: u32) -> u64 {
    value & u64::MAX.wrapping_shl(64u32.wrapping_sub(prefix))
}

impl RuleSet {
    /// The matching rule with the lowest `priority` value (ties: the lower index), or None.
    /// Never allocates; bounded work; sublinear in the number of rules for the common shapes.
    pub fn classify(&self, packet: &PacketView<'_>) -> Option<Match> {
        // A first pass only asks whether the index has any candidate: the common packet, which
        // no indexed rule can match, costs its lookups and calls nothing.
        if !self.probe_fields(packet, &mut |_, _| true) && self.layout.catch_all_len == 0 {
            return None;
        }
        self.resolve(packet)
    }

    /// Walks every candidate list the index has for the packet, then the catch-all list, and
    /// answers the first rule (in priority order) whose program matches.
    #[inline(never)]
    fn resolve(&self, packet: &PacketView<'_>) -> Option<Match> {
        let mut best = self.layout.rule_count;
        self.probe_fields(packet, &mut |start, len| {
            best = self.walk_list(start as usize, len as usize, best, packet);
            false
        });
        if self.layout.catch_all_len != 0 {
            best = self.walk_list(self.layout.catch_all_start, self.layout.catch_all_len, best, packet);
        }
        if best >= self.layout.rule_count {
            return None;
        }
        let record = self.layout.rules + best * format::RULE_LEN;
        Some(Match {
            index: best,
            id: u32_at(&self.blob, record + rule::ID)?,
            action: Action::from_u8(*self.blob.get(record + rule::ACTION)?)?,
        })
    }

    /// Looks the packet's fields up in the index, once per prefix length the set uses for the
    /// field, and hands each candidate list found (first entry, length) to `visit`, which
    /// answers whether to stop. Returns whether it stopped.
    #[inline(always)]
    fn probe_fields(&self, packet: &PacketView<'_>, visit: &mut impl FnMut(u32, u32) -> bool) -> bool {
        let frame = packet.frame;
        let Some(ethertype) = be16(frame, 12) else { return false };
        let layout = &self.layout;
        match ethertype {
            ETHERTYPE_IPV4 => {
                let [source, destination] = layout.prefixes_v4;
                if let Some(&[s0, s1, s2, s3, d0, d1, d2, d3]) = frame.get(26..).and_then(<[u8]>::first_chunk::<8>) {
                    if source != 0 && self.probe_high(field::SRC_V4, source, u64::from(u32::from_be_bytes([s0, s1, s2, s3])) << 32, visit) {
                        return true;
                    }
                    if destination != 0
                        && self.probe_high(field::DST_V4, destination, u64::from(u32::from_be_bytes([d0, d1, d2, d3])) << 32, visit)
                    {
                        return true;
                    }
                } else if let (true, Some(address)) = (source != 0, frame.get(26..).and_then(<[u8]>::first_chunk::<4>)) {
                    // A frame cut inside the destination address still has its source.
                    if self.probe_high(field::SRC_V4, source, u64::from(u32::from_be_bytes(*address)) << 32, visit) {
                        return true;
                    }
                }
            }
            ETHERTYPE_IPV6 => {
                let [source, destination] = layout.prefixes_v6;
                for (which, prefixes, offset) in [(field::SRC_V6, source, 22), (field::DST_V6, destination, 38)] {
                    if prefixes != 0 {
                        if let Some(address) = frame.get(offset..).and_then(<[u8]>::first_chunk::<16>) {
                            if self.probe_v6(which, prefixes, u128::from_be_bytes(*address), visit) {
                                return true;
                            }
                        }
                    }
                }
            }
            _ => return false,
        }
        layout.port_fields != 0 && self.probe_ports(packet, visit)
    }

    /// The port lookups (prefix length 16).
    #[inline(never)]
    fn probe_ports(&self, packet: &PacketView<'_>, visit: &mut impl FnMut(u32, u32) -> bool) -> bool {
        let frame = packet.frame;
        let Some(transport) = be16(frame, 12).and_then(|ethertype| transport_offset(frame, ethertype)) else { return false };
        for (which, bit, offset) in [(field::SRC_PORT, 1, transport), (field::DST_PORT, 2, transport + 2)] {
            if self.layout.port_fields & bit != 0 {
                if let Some(port) = be16(frame, offset) {
                    if self.probe_high(which, 1 << 15, u64::from(port) << 48, visit) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Lookups of a key of at most 64 bits (left-aligned in `high`), one per prefix length in
    /// `prefixes` (bit `length - 1`). Returns whether `visit` asked to stop.
    #[inline(always)]
    fn probe_high(&self, which: u8, prefixes: u64, high: u64, visit: &mut impl FnMut(u32, u32) -> bool) -> bool {
        let mut remaining = prefixes;
        while remaining != 0 {
            let prefix = remaining.trailing_zeros() + 1;
            remaining &= remaining - 1;
            if let Some((start, len)) = self.lookup(which, prefix as u8, mask64(high, prefix), 0) {
                if visit(start, len) {
                    return true;
                }
            }
        }
        false
    }

    /// Lookups of an IPv6 address, one per prefix length in `prefixes` (bit `length - 1`).
    /// Returns whether `visit` asked to stop.
    #[inline(never)]
    fn probe_v6(&self, which: u8, prefixes: u128, address: u128, visit: &mut impl FnMut(u32, u32) -> bool) -> bool {
        let (high, low) = ((address >> 64) as u64, address as u64);
        let mut remaining = prefixes;
        while remaining != 0 {
            let prefix = remaining.trailing_zeros() + 1;
            remaining &= remaining - 1;
            let key = if prefix <= 64 { (mask64(high, prefix), 0) } else { (high, mask64(low, prefix - 64)) };
            if let Some((start, len)) = self.lookup(which, prefix as u8, key.0, key.1) {
                if visit(start, len) {
                    return true;
                }
            }
        }
        false
    }

    /// The list (first entry, length) of the slot holding `(which, prefix, key)`, the key's high
    /// and low halves given apart. Reads at most `max_probe + 1` slots (validated: every entry
    /// lies within that distance of its home, and an empty slot ends a miss).
    #[inline(always)]
    fn lookup(&self, which: u8, prefix: u8, high: u64, low: u64) -> Option<(u32, u32)> {
        let mask = self.layout.slot_count.wrapping_sub(1);
        let mut index = format::hash_halves(which, prefix, high, low) as usize & mask;
        let mut further = self.layout.max_probe;
        loop {
            let entry: &[u8; format::SLOT_LEN] = self.blob.get(self.layout.slots + index * format::SLOT_LEN..)?.first_chunk()?;
            let [field, length, occupied, _, s0, s1, s2, s3, l0, l1, l2, l3, _, _, _, _, h0, h1, h2, h3, h4, h5, h6, h7, w0, w1, w2, w3, w4, w5, w6, w7] =
                *entry;
            if occupied == 0 {
                return None;
            }
            if field == which
                && length == prefix
                && u64::from_be_bytes([h0, h1, h2, h3, h4, h5, h6, h7]) == high
                && u64::from_be_bytes([w0, w1, w2, w3, w4, w5, w6, w7]) == low
            {
                return Some((u32::from_le_bytes([s0, s1, s2, s3]), u32::from_le_bytes([l0, l1, l2, l3])));
            }
            further = further.checked_sub(1)?;
            index = (index + 1) & mask;
        }
    }

    /// Runs the candidates of the list of `len` entries at entry `start` below `best`, in
    /// order; returns the new best.
    #[inline(never)]
    fn walk_list(&self, start: usize, len: usize, best: usize, packet: &PacketView<'_>) -> usize {
        let start = start.saturating_mul(4);
        let end = start.saturating_add(len.saturating_mul(4));
        self.walk(self.lists().get(start..end).unwrap_or_default(), best, packet)
    }

    /// The lists section.
    fn lists(&self) -> &[u8] {
        self.blob.get(self.layout.lists..self.layout.lists_end).unwrap_or_default()
    }

    /// Runs the candidates of a list (little-endian rule indexes, ascending) below `best` in
    /// order; returns the new best.
    fn walk(&self, list: &[u8], best: usize, packet: &PacketView<'_>) -> usize {
        for entry in list.chunks_exact(4) {
            let &[a, b, c, d] = entry else { return best };
            let candidate = u32::from_le_bytes([a, b, c, d]) as usize;
            if candidate >= best {
                return best;
            }
            if self.run(candidate, packet) {
                return candidate;
            }
        }
        best
    }

    /// Whether rule `index`'s program matches.
    fn run(&self, index: usize, packet: &PacketView<'_>) -> bool {
        // Every load of a validated set ends within HEADER_BYTES, so longer frames need no cut.
        let frame = packet.frame;
        let layout: &Layout = &self.layout;
        let blob = self.blob.as_slice();
        let record = layout.rules + index * format::RULE_LEN;
        let (Some(start), Some(count)) = (u32_at(blob, record + rule::NODE_START), u32_at(blob, record + rule::NODE_COUNT)) else {
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
            let target = u32_at(node, if holds { node::JUMP_TRUE } else { node::JUMP_FALSE }).unwrap_or(format::NO_MATCH);
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
        let offset = usize::from(u16::from_le_bytes([*node.get(node::OFFSET)?, *node.get(node::OFFSET + 1)?]));
        let size = *node.get(node::SIZE)?;
        match kind {
            format::KIND_FRAME => Some(compare(load(frame, offset, size)?)),
            format::KIND_TRANSPORT4 => {
                let header = usize::from(*frame.get(14)? & 0x0f) * 4;
                Some(compare(load(frame, 14 + header + offset, size)?))
            }
            format::KIND_LENGTH => Some(compare(packet.frame_len)),
            format::KIND_LINK => Some(packet.link == (u64::from(value) << 32 | u64::from(mask))),
            format::KIND_DIRECTION => Some(value == u32::from(packet.direction == Direction::Receive)),
            format::KIND_DEVICE => Some(self.device_matches(mask as usize, value as usize, packet.device)),
            _ => Some(false),
        }
    }

    /// `device NAME`: the link's device name equals NAME ignoring ASCII case; a NAME ending in
    /// `*` matches every device name that starts with the rest.
    fn device_matches(&self, start: usize, len: usize, device: &[u16]) -> bool {
        let strings = self.layout.strings;
        let Some(name) = self.blob.get(strings + start..strings + start + len).and_then(|bytes| core::str::from_utf8(bytes).ok()) else {
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
