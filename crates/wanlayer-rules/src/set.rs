//! A validated rule set: loading (a fallible copy, then complete validation) and reading rules
//! back. The classifier is in `classify`.

use crate::classifier_io::{Action, RuleInfo, HEADER_BYTES};
use crate::format::{self, field, header, key_at, node, rule, slot, u16_at, u32_at};
use alloc::vec::Vec;
use core::fmt;

/// Where each section of a validated blob starts, and how many records it holds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Layout {
    pub rules: usize,
    pub rule_count: usize,
    pub nodes: usize,
    pub node_count: usize,
    pub probes: usize,
    pub probe_count: usize,
    pub slots: usize,
    pub slot_count: usize,
    pub lists: usize,
    pub list_words: usize,
    pub strings: usize,
    pub string_bytes: usize,
    pub catch_all_start: usize,
    pub catch_all_len: usize,
    pub max_probe: usize,
    /// Precomputed for the classifier: the end of the lists; the prefix lengths probed (bit
    /// `prefix - 1`) for the IPv4 and IPv6 source and destination; which ports are probed
    /// (bit 0 source, bit 1 destination).
    pub lists_end: usize,
    pub prefixes_v4: [u64; 2],
    pub prefixes_v6: [u128; 2],
    pub port_fields: u8,
}

/// A validated rule set, owning a fallibly allocated copy of its blob.
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) blob: Vec<u8>,
    pub(crate) layout: Layout,
}

/// Why a blob was refused. Each kind has a stable [`code`](LoadError::code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// No memory for the copy (1).
    OutOfMemory,
    /// Shorter than its header, or than the header says (2).
    Truncated,
    /// Longer than the header says (3).
    TrailingBytes,
    /// Not a rule set: wrong magic (4).
    BadMagic,
    /// A layout version this driver does not read (5).
    UnsupportedVersion(u16),
    /// The header's length field is not 64 (6).
    BadHeaderLength,
    /// Section sizes overflow or exceed the limit (7).
    TooLarge,
    /// A reserved byte is not zero (8): which section.
    ReservedNotZero(&'static str),
    /// A rule's action is not a known value (9).
    BadAction(usize),
    /// Rules are not in priority order (10).
    PriorityOrder(usize),
    /// Two rules share an id (11).
    DuplicateId(u32),
    /// A rule's program is empty, too long, or not where the previous one ended (12).
    BadProgram(usize),
    /// A string (filter text or device name) is out of bounds or not UTF-8 (13).
    BadString,
    /// A node's kind, operator, size or offset is invalid (14).
    BadNode(usize),
    /// A node jumps backwards, to itself or out of its program (15).
    BadJump(usize),
    /// A probe's field or prefix length is invalid, or probes are not strictly increasing (16).
    BadProbe(usize),
    /// The hash table's size is not a power of two, or the maximum probe distance does not fit (17).
    BadTable,
    /// A slot is malformed, unreachable, misplaced or duplicated (18).
    BadSlot(usize),
    /// A list is out of bounds, empty, not strictly increasing, or names no rule (19).
    BadList,
    /// The rules are not all reachable: the nodes are not exactly the programs' (20).
    NodeCount,
}

impl LoadError {
    /// A stable number tools can show.
    pub fn code(&self) -> u32 {
        match self {
            LoadError::OutOfMemory => 1,
            LoadError::Truncated => 2,
            LoadError::TrailingBytes => 3,
            LoadError::BadMagic => 4,
            LoadError::UnsupportedVersion(_) => 5,
            LoadError::BadHeaderLength => 6,
            LoadError::TooLarge => 7,
            LoadError::ReservedNotZero(_) => 8,
            LoadError::BadAction(_) => 9,
            LoadError::PriorityOrder(_) => 10,
            LoadError::DuplicateId(_) => 11,
            LoadError::BadProgram(_) => 12,
            LoadError::BadString => 13,
            LoadError::BadNode(_) => 14,
            LoadError::BadJump(_) => 15,
            LoadError::BadProbe(_) => 16,
            LoadError::BadTable => 17,
            LoadError::BadSlot(_) => 18,
            LoadError::BadList => 19,
            LoadError::NodeCount => 20,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::OutOfMemory => f.write_str("no memory for the rule set"),
            LoadError::Truncated => f.write_str("the rule set is truncated"),
            LoadError::TrailingBytes => f.write_str("the rule set has bytes past its end"),
            LoadError::BadMagic => f.write_str("not a compiled rule set (bad magic)"),
            LoadError::UnsupportedVersion(version) => {
                write!(f, "rule set layout version {version} is not supported (this driver reads {})", format::VERSION)
            }
            LoadError::BadHeaderLength => f.write_str("the rule set's header length is wrong"),
            LoadError::TooLarge => f.write_str("the rule set's sections are too large"),
            LoadError::ReservedNotZero(section) => {
                write!(f, "a reserved byte of the {section} is not zero")
            }
            LoadError::BadAction(rule) => write!(f, "rule {rule} has an unknown action"),
            LoadError::PriorityOrder(rule) => write!(f, "rule {rule} is out of priority order"),
            LoadError::DuplicateId(id) => write!(f, "rule id {id} appears twice"),
            LoadError::BadProgram(rule) => write!(f, "rule {rule}'s program is malformed"),
            LoadError::BadString => f.write_str("a string is out of bounds or not UTF-8"),
            LoadError::BadNode(node) => write!(f, "node {node} is malformed"),
            LoadError::BadJump(node) => {
                write!(f, "node {node} jumps backwards or out of its program")
            }
            LoadError::BadProbe(probe) => write!(f, "probe {probe} is malformed or out of order"),
            LoadError::BadTable => f.write_str("the index's hash table is malformed"),
            LoadError::BadSlot(slot) => write!(f, "index slot {slot} is malformed"),
            LoadError::BadList => f.write_str("a candidate list is malformed"),
            LoadError::NodeCount => f.write_str("the nodes are not exactly the rules' programs"),
        }
    }
}

/// `count` records of `size` bytes, checked.
fn section(count: u32, size: usize) -> Result<usize, LoadError> {
    usize::try_from(count)
        .ok()
        .and_then(|count| count.checked_mul(size))
        .filter(|bytes| *bytes <= format::MAX_BLOB_LEN)
        .ok_or(LoadError::TooLarge)
}

fn header_u32(blob: &[u8], offset: usize) -> Result<u32, LoadError> {
    u32_at(blob, offset).ok_or(LoadError::Truncated)
}

fn to_usize(value: u32) -> usize {
    // u32 always fits usize on the targets this crate builds for (32- and 64-bit).
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl RuleSet {
    /// No rules; never allocates.
    pub const fn empty() -> RuleSet {
        RuleSet {
            blob: Vec::new(),
            layout: Layout {
                rules: 0,
                rule_count: 0,
                nodes: 0,
                node_count: 0,
                probes: 0,
                probe_count: 0,
                slots: 0,
                slot_count: 0,
                lists: 0,
                list_words: 0,
                strings: 0,
                string_bytes: 0,
                catch_all_start: 0,
                catch_all_len: 0,
                max_probe: 0,
                lists_end: 0,
                prefixes_v4: [0; 2],
                prefixes_v6: [0; 2],
                port_fields: 0,
            },
        }
    }

    /// Copies `blob` (fallibly) and validates it completely: sizes, bounds, every reference in
    /// range, termination (programs only jump forward), reserved bytes, enum values.
    ///
    /// # Errors
    /// The first problem found, as a [`LoadError`]; nothing is kept.
    pub fn load(blob: &[u8]) -> Result<RuleSet, LoadError> {
        let layout = validate(blob)?;
        let mut copy = Vec::new();
        copy.try_reserve_exact(blob.len()).map_err(|_| LoadError::OutOfMemory)?;
        #[allow(clippy::disallowed_methods, reason = "reserved fallibly just above: no allocation")]
        copy.extend_from_slice(blob);
        Ok(RuleSet { blob: copy, layout })
    }

    /// How many rules the set holds.
    pub fn len(&self) -> usize {
        self.layout.rule_count
    }

    /// Whether the set holds no rule.
    pub fn is_empty(&self) -> bool {
        self.layout.rule_count == 0
    }

    /// The rule at `index` (in blob order, which is priority order): id, priority, action and
    /// its filter text.
    pub fn rule(&self, index: usize) -> Option<RuleInfo<'_>> {
        if index >= self.layout.rule_count {
            return None;
        }
        let record = self.layout.rules.checked_add(index.checked_mul(format::RULE_LEN)?)?;
        let blob = self.blob.as_slice();
        let text_start = self.layout.strings.checked_add(to_usize(u32_at(blob, record + rule::TEXT_START)?))?;
        let text_end = text_start.checked_add(to_usize(u32_at(blob, record + rule::TEXT_LEN)?))?;
        Some(RuleInfo {
            id: u32_at(blob, record + rule::ID)?,
            priority: u32_at(blob, record + rule::PRIORITY)?,
            action: Action::from_u8(*blob.get(record + rule::ACTION)?)?,
            filter: core::str::from_utf8(blob.get(text_start..text_end)?).ok()?,
        })
    }

    /// The exact validated bytes (read back by tools, saved in the registry). Empty for
    /// [`RuleSet::empty`].
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet::empty()
    }
}

fn zero(bytes: Option<&[u8]>) -> bool {
    bytes.is_some_and(|bytes| bytes.iter().all(|byte| *byte == 0))
}

fn check_string(blob: &[u8], layout: &Layout, start: u32, len: u32) -> Result<(), LoadError> {
    let start = to_usize(start);
    let end = start.checked_add(to_usize(len)).ok_or(LoadError::BadString)?;
    if end > layout.string_bytes {
        return Err(LoadError::BadString);
    }
    let bytes = blob.get(layout.strings + start..layout.strings + end).ok_or(LoadError::BadString)?;
    core::str::from_utf8(bytes).map(|_| ()).map_err(|_| LoadError::BadString)
}

fn check_list(blob: &[u8], layout: &Layout, start: usize, len: usize, allow_empty: bool) -> Result<(), LoadError> {
    let end = start.checked_add(len).ok_or(LoadError::BadList)?;
    if end > layout.list_words || (len == 0 && !allow_empty) {
        return Err(LoadError::BadList);
    }
    let mut previous: Option<u32> = None;
    for word in start..end {
        let entry = u32_at(blob, layout.lists + word * 4).ok_or(LoadError::BadList)?;
        if to_usize(entry) >= layout.rule_count || previous.is_some_and(|previous| entry <= previous) {
            return Err(LoadError::BadList);
        }
        previous = Some(entry);
    }
    Ok(())
}

/// Validates everything; on success the classifier's reads can only fail if the bytes change.
fn validate(blob: &[u8]) -> Result<Layout, LoadError> {
    if blob.len() < format::HEADER_LEN {
        return Err(LoadError::Truncated);
    }
    if blob.get(..4) != Some(&format::MAGIC[..]) {
        return Err(LoadError::BadMagic);
    }
    let version = u16_at(blob, header::VERSION).ok_or(LoadError::Truncated)?;
    if version != format::VERSION {
        return Err(LoadError::UnsupportedVersion(version));
    }
    if u16_at(blob, header::HEADER_LEN) != Some(format::HEADER_LEN as u16) {
        return Err(LoadError::BadHeaderLength);
    }
    if !zero(blob.get(header::RESERVED..format::HEADER_LEN)) {
        return Err(LoadError::ReservedNotZero("header"));
    }
    let total = to_usize(header_u32(blob, header::TOTAL_LEN)?);
    let rule_bytes = section(header_u32(blob, header::RULES)?, format::RULE_LEN)?;
    let node_bytes = section(header_u32(blob, header::NODES)?, format::NODE_LEN)?;
    let probe_bytes = section(header_u32(blob, header::PROBES)?, format::PROBE_LEN)?;
    let slot_bytes = section(header_u32(blob, header::SLOTS)?, format::SLOT_LEN)?;
    let list_bytes = section(header_u32(blob, header::LIST_WORDS)?, 4)?;
    let string_bytes = section(header_u32(blob, header::STRING_BYTES)?, 1)?;
    let mut layout = Layout {
        rule_count: rule_bytes / format::RULE_LEN,
        node_count: node_bytes / format::NODE_LEN,
        probe_count: probe_bytes / format::PROBE_LEN,
        slot_count: slot_bytes / format::SLOT_LEN,
        list_words: list_bytes / 4,
        string_bytes,
        catch_all_start: to_usize(header_u32(blob, header::CATCH_ALL_START)?),
        catch_all_len: to_usize(header_u32(blob, header::CATCH_ALL_LEN)?),
        max_probe: to_usize(header_u32(blob, header::MAX_PROBE)?),
        ..Layout::default()
    };
    let mut end = format::HEADER_LEN;
    for (start, bytes) in [
        (&mut layout.rules, rule_bytes),
        (&mut layout.nodes, node_bytes),
        (&mut layout.probes, probe_bytes),
        (&mut layout.slots, slot_bytes),
        (&mut layout.lists, list_bytes),
        (&mut layout.strings, string_bytes),
    ] {
        *start = end;
        end = end.checked_add(bytes).filter(|end| *end <= format::MAX_BLOB_LEN).ok_or(LoadError::TooLarge)?;
    }
    if total != end {
        return Err(LoadError::TooLarge);
    }
    if blob.len() < end {
        return Err(LoadError::Truncated);
    }
    if blob.len() > end {
        return Err(LoadError::TrailingBytes);
    }
    layout.lists_end = layout.lists + list_bytes;
    validate_rules(blob, &layout)?;
    validate_index(blob, &mut layout)?;
    Ok(layout)
}

fn validate_rules(blob: &[u8], layout: &Layout) -> Result<(), LoadError> {
    let mut ids = Vec::new();
    ids.try_reserve_exact(layout.rule_count).map_err(|_| LoadError::OutOfMemory)?;
    let mut next_node = 0usize;
    let mut previous_priority = 0u32;
    for index in 0..layout.rule_count {
        let record = layout.rules + index * format::RULE_LEN;
        let read = |offset: usize| u32_at(blob, record + offset).ok_or(LoadError::Truncated);
        let id = read(rule::ID)?;
        let priority = read(rule::PRIORITY)?;
        let action = *blob.get(record + rule::ACTION).ok_or(LoadError::Truncated)?;
        if Action::from_u8(action).is_none() {
            return Err(LoadError::BadAction(index));
        }
        if !zero(blob.get(record + rule::ACTION + 1..record + rule::NODE_START)) || read(rule::RESERVED)? != 0 {
            return Err(LoadError::ReservedNotZero("rules"));
        }
        if priority < previous_priority {
            return Err(LoadError::PriorityOrder(index));
        }
        previous_priority = priority;
        let node_start = to_usize(read(rule::NODE_START)?);
        let node_count = read(rule::NODE_COUNT)?;
        if node_start != next_node || node_count == 0 || node_count > format::MAX_RULE_NODES {
            return Err(LoadError::BadProgram(index));
        }
        let node_count = to_usize(node_count);
        next_node = node_start.checked_add(node_count).filter(|end| *end <= layout.node_count).ok_or(LoadError::BadProgram(index))?;
        check_string(blob, layout, read(rule::TEXT_START)?, read(rule::TEXT_LEN)?)?;
        for position in 0..node_count {
            validate_node(blob, layout, node_start + position, position, node_count)?;
        }
        if ids.len() < ids.capacity() {
            #[allow(clippy::disallowed_methods, reason = "within the capacity checked just above: no allocation")]
            ids.push(id);
        }
    }
    if next_node != layout.node_count {
        return Err(LoadError::NodeCount);
    }
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|pair| pair.first() == pair.get(1)) {
        return Err(LoadError::DuplicateId(pair.first().copied().unwrap_or(0)));
    }
    Ok(())
}

fn validate_node(blob: &[u8], layout: &Layout, index: usize, position: usize, count: usize) -> Result<(), LoadError> {
    let at = layout.nodes + index * format::NODE_LEN;
    let bad = LoadError::BadNode(index);
    let byte = |offset: usize| blob.get(at + offset).copied().ok_or(LoadError::Truncated);
    let word = |offset: usize| u32_at(blob, at + offset).ok_or(LoadError::Truncated);
    let kind = byte(node::KIND)?;
    let op = byte(node::OP)?;
    let size = byte(node::SIZE)?;
    let offset = usize::from(u16_at(blob, at + node::OFFSET).ok_or(LoadError::Truncated)?);
    if byte(node::RESERVED0)? != 0 || u16_at(blob, at + node::RESERVED1) != Some(0) {
        return Err(LoadError::ReservedNotZero("nodes"));
    }
    if op > format::OP_GE {
        return Err(bad);
    }
    let mask = word(node::MASK)?;
    let value = word(node::VALUE)?;
    match kind {
        format::KIND_FRAME | format::KIND_TRANSPORT4 => {
            let limit = if kind == format::KIND_FRAME { HEADER_BYTES } else { format::MAX_TRANSPORT4_END };
            if !matches!(size, 1 | 2 | 4) || offset + usize::from(size) > limit {
                return Err(bad);
            }
        }
        format::KIND_LENGTH => {
            if size != 0 || offset != 0 {
                return Err(bad);
            }
        }
        format::KIND_LINK => {
            if size != 0 || offset != 0 || op != format::OP_EQ {
                return Err(bad);
            }
        }
        format::KIND_DIRECTION => {
            if size != 0 || offset != 0 || op != format::OP_EQ || mask != 0 || value > 1 {
                return Err(bad);
            }
        }
        format::KIND_DEVICE => {
            if size != 0 || offset != 0 || op != format::OP_EQ {
                return Err(bad);
            }
            check_string(blob, layout, mask, value)?;
        }
        _ => return Err(bad),
    }
    for target in [word(node::JUMP_TRUE)?, word(node::JUMP_FALSE)?] {
        let forward = to_usize(target) > position && to_usize(target) < count;
        if !(target == format::MATCH || target == format::NO_MATCH || forward) {
            return Err(LoadError::BadJump(index));
        }
    }
    Ok(())
}

fn validate_index(blob: &[u8], layout: &mut Layout) -> Result<(), LoadError> {
    // Which (field, prefix) classes the probes name: bit `field * 129 + prefix`.
    let mut classes = [0u64; 13];
    let mut previous: Option<(u8, u8)> = None;
    for probe in 0..layout.probe_count {
        let at = layout.probes + probe * format::PROBE_LEN;
        let field = blob.get(at).copied().ok_or(LoadError::Truncated)?;
        let prefix = blob.get(at + 1).copied().ok_or(LoadError::Truncated)?;
        if u16_at(blob, at + 2) != Some(0) {
            return Err(LoadError::ReservedNotZero("probes"));
        }
        let bits = format::field_bits(field);
        let valid = field < field::COUNT && prefix >= 1 && prefix <= bits && ((bits != 16) || prefix == 16);
        if !valid || previous.is_some_and(|previous| previous >= (field, prefix)) {
            return Err(LoadError::BadProbe(probe));
        }
        previous = Some((field, prefix));
        let bit = prefix - 1;
        match field {
            field::SRC_V4 | field::DST_V4 => {
                if let Some(prefixes) = layout.prefixes_v4.get_mut(usize::from(field - field::SRC_V4)) {
                    *prefixes |= 1 << bit;
                }
            }
            field::SRC_V6 | field::DST_V6 => {
                if let Some(prefixes) = layout.prefixes_v6.get_mut(usize::from(field - field::SRC_V6)) {
                    *prefixes |= 1 << bit;
                }
            }
            _ => layout.port_fields |= 1 << (field - field::SRC_PORT),
        }
        let bit = usize::from(field) * 129 + usize::from(prefix);
        if let Some(word) = classes.get_mut(bit / 64) {
            *word |= 1 << (bit % 64);
        }
    }
    let table_ok = if layout.slot_count == 0 {
        layout.max_probe == 0
    } else {
        layout.slot_count.is_power_of_two() && layout.max_probe < layout.slot_count
    };
    if !table_ok {
        return Err(LoadError::BadTable);
    }
    check_list(blob, layout, layout.catch_all_start, layout.catch_all_len, true)?;
    for index in 0..layout.slot_count {
        validate_slot(blob, layout, &classes, index)?;
    }
    Ok(())
}

fn slot_key(blob: &[u8], layout: &Layout, index: usize) -> Option<(u8, u8, u8, u128)> {
    let at = layout.slots + index * format::SLOT_LEN;
    Some((*blob.get(at + slot::OCCUPIED)?, *blob.get(at + slot::FIELD)?, *blob.get(at + slot::PREFIX)?, key_at(blob, at + slot::KEY)?))
}

fn validate_slot(blob: &[u8], layout: &Layout, classes: &[u64; 13], index: usize) -> Result<(), LoadError> {
    let at = layout.slots + index * format::SLOT_LEN;
    let bad = LoadError::BadSlot(index);
    let (occupied, field, prefix, key) = slot_key(blob, layout, index).ok_or(LoadError::Truncated)?;
    if occupied == 0 {
        return if zero(blob.get(at..at + format::SLOT_LEN)) { Ok(()) } else { Err(LoadError::ReservedNotZero("slots")) };
    }
    if occupied != 1 {
        return Err(bad);
    }
    if blob.get(at + slot::RESERVED0) != Some(&0) || u32_at(blob, at + slot::RESERVED1) != Some(0) {
        return Err(LoadError::ReservedNotZero("slots"));
    }
    let bit = usize::from(field) * 129 + usize::from(prefix);
    let named = field < field::COUNT && classes.get(bit / 64).is_some_and(|word| word & (1 << (bit % 64)) != 0);
    if !named || key & !format::prefix_mask(prefix) != 0 {
        return Err(bad);
    }
    let list_start = to_usize(u32_at(blob, at + slot::LIST_START).ok_or(LoadError::Truncated)?);
    let list_len = to_usize(u32_at(blob, at + slot::LIST_LEN).ok_or(LoadError::Truncated)?);
    check_list(blob, layout, list_start, list_len, false)?;
    // Reachable: every slot from home up to this one is occupied by another key, within the
    // maximum probe distance the classifier walks.
    let mask = layout.slot_count - 1;
    let home = format::hash(field, prefix, key) as usize & mask;
    let distance = index.wrapping_sub(home) & mask;
    if distance > layout.max_probe {
        return Err(bad);
    }
    for step in 0..distance {
        let other = (home + step) & mask;
        let (other_occupied, other_field, other_prefix, other_key) = slot_key(blob, layout, other).ok_or(LoadError::Truncated)?;
        if other_occupied == 0 || (other_field, other_prefix, other_key) == (field, prefix, key) {
            return Err(bad);
        }
    }
    Ok(())
}
