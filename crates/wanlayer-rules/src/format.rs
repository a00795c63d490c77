//! The compiled form: a little-endian, position-independent blob (every reference is an index or
//! an offset from the start of a section, never an address). Shared by the compiler, which writes
//! it, and the validator, which reads it.
//!
//! ```text
//! header   64 bytes   magic "WLRS", version, counts of every section, catch-all list, max probe
//! rules    32 bytes each, sorted by priority (stable): id, priority, action, program, text
//! nodes    24 bytes each: the rules' programs, one after another
//! probes    4 bytes each: the (field, prefix length) classes the index holds, strictly increasing
//! slots    32 bytes each, a power of two: the index's open-addressing hash table
//! lists     4 bytes each: rule indexes, each list strictly increasing
//! strings  bytes: the rules' filter texts and `device` names (UTF-8)
//! ```
//!
//! A program is a DAG of test nodes whose edges only point forward: node `i` of a rule jumps to
//! node `j > i` of the same rule, or ends in [`MATCH`] or [`NO_MATCH`]. A test that needs frame
//! bytes the packet does not have ends the program without a match (pcap's rule).

/// The blob's first four bytes.
pub const MAGIC: [u8; 4] = *b"WLRS";
/// The layout version this crate reads and writes.
pub const VERSION: u16 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 64;
/// Bytes of one rule record.
pub const RULE_LEN: usize = 32;
/// Bytes of one program node.
pub const NODE_LEN: usize = 24;
/// Bytes of one probe record.
pub const PROBE_LEN: usize = 4;
/// Bytes of one hash slot.
pub const SLOT_LEN: usize = 32;
/// The largest blob accepted (256 MiB).
pub const MAX_BLOB_LEN: usize = 1 << 28;
/// The most nodes one rule's program may have.
pub const MAX_RULE_NODES: u32 = 1 << 16;

/// Header field offsets.
pub mod header {
    /// `u16` layout version.
    pub const VERSION: usize = 4;
    /// `u16` header length (64).
    pub const HEADER_LEN: usize = 6;
    /// `u32` length of the whole blob.
    pub const TOTAL_LEN: usize = 8;
    /// `u32` number of rules.
    pub const RULES: usize = 12;
    /// `u32` number of nodes.
    pub const NODES: usize = 16;
    /// `u32` number of probes.
    pub const PROBES: usize = 20;
    /// `u32` number of hash slots (0 or a power of two).
    pub const SLOTS: usize = 24;
    /// `u32` number of list entries.
    pub const LIST_WORDS: usize = 28;
    /// `u32` bytes of strings.
    pub const STRING_BYTES: usize = 32;
    /// `u32` first entry of the catch-all list (rules the index does not hold).
    pub const CATCH_ALL_START: usize = 36;
    /// `u32` length of the catch-all list.
    pub const CATCH_ALL_LEN: usize = 40;
    /// `u32` the largest distance of an entry from its home slot.
    pub const MAX_PROBE: usize = 44;
    /// Bytes 48..64 are reserved (zero).
    pub const RESERVED: usize = 48;
}

/// Rule record field offsets.
pub mod rule {
    /// `u32` the administrator's id.
    pub const ID: usize = 0;
    /// `u32` priority (lower first).
    pub const PRIORITY: usize = 4;
    /// `u8` action; bytes 9..12 reserved.
    pub const ACTION: usize = 8;
    /// `u32` first node of the program.
    pub const NODE_START: usize = 12;
    /// `u32` number of nodes of the program (at least 1).
    pub const NODE_COUNT: usize = 16;
    /// `u32` offset of the filter text in the strings.
    pub const TEXT_START: usize = 20;
    /// `u32` bytes of the filter text.
    pub const TEXT_LEN: usize = 24;
    /// Bytes 28..32 reserved.
    pub const RESERVED: usize = 28;
}

/// Node field offsets.
pub mod node {
    /// `u8` one of the `KIND_*` values.
    pub const KIND: usize = 0;
    /// `u8` one of the `OP_*` values.
    pub const OP: usize = 1;
    /// `u8` bytes loaded (1, 2 or 4) for frame and transport tests, else 0.
    pub const SIZE: usize = 2;
    /// `u8` reserved.
    pub const RESERVED0: usize = 3;
    /// `u16` offset of the load.
    pub const OFFSET: usize = 4;
    /// `u16` reserved.
    pub const RESERVED1: usize = 6;
    /// `u32` mask (loads), low half of the link id, or the device name's string offset.
    pub const MASK: usize = 8;
    /// `u32` value compared with, high half of the link id, or the device name's length.
    pub const VALUE: usize = 12;
    /// `u32` where to go when the test holds.
    pub const JUMP_TRUE: usize = 16;
    /// `u32` where to go when it does not.
    pub const JUMP_FALSE: usize = 20;
}

/// Compare `size` bytes at `offset` from the frame's start.
pub const KIND_FRAME: u8 = 1;
/// Compare `size` bytes at `offset` from the IPv4 payload (14 + 4 × IHL), as pcap's `tcp[]`.
pub const KIND_TRANSPORT4: u8 = 2;
/// Compare the frame's whole length.
pub const KIND_LENGTH: u8 = 3;
/// The link id equals the 64-bit value.
pub const KIND_LINK: u8 = 4;
/// The direction equals `VALUE` (0 send, 1 receive).
pub const KIND_DIRECTION: u8 = 5;
/// The device name matches the string (see the crate docs).
pub const KIND_DEVICE: u8 = 6;

/// `(x & mask) == value`.
pub const OP_EQ: u8 = 0;
/// `(x & mask) > value` (unsigned).
pub const OP_GT: u8 = 1;
/// `(x & mask) >= value` (unsigned).
pub const OP_GE: u8 = 2;

/// Jump target: the rule matches.
pub const MATCH: u32 = u32::MAX;
/// Jump target: the rule does not match.
pub const NO_MATCH: u32 = u32::MAX - 1;

/// The largest transport-relative load end: 14 + 60 + this = [`crate::HEADER_BYTES`].
pub const MAX_TRANSPORT4_END: usize = crate::HEADER_BYTES - 14 - 60;

/// Index fields.
pub mod field {
    /// IPv4 source address (prefix lengths 1..=32).
    pub const SRC_V4: u8 = 0;
    /// IPv4 destination address.
    pub const DST_V4: u8 = 1;
    /// IPv6 source address (prefix lengths 1..=128).
    pub const SRC_V6: u8 = 2;
    /// IPv6 destination address.
    pub const DST_V6: u8 = 3;
    /// TCP, UDP or SCTP source port (length 16).
    pub const SRC_PORT: u8 = 4;
    /// TCP, UDP or SCTP destination port.
    pub const DST_PORT: u8 = 5;
    /// Number of fields.
    pub const COUNT: u8 = 6;
}

/// The largest prefix length of `field`, or 0 for an unknown field.
pub const fn field_bits(field: u8) -> u8 {
    match field {
        field::SRC_V4 | field::DST_V4 => 32,
        field::SRC_V6 | field::DST_V6 => 128,
        field::SRC_PORT | field::DST_PORT => 16,
        _ => 0,
    }
}

/// Slot field offsets. An empty slot is all zero.
pub mod slot {
    /// `u8` field.
    pub const FIELD: usize = 0;
    /// `u8` prefix length.
    pub const PREFIX: usize = 1;
    /// `u8` 1 when occupied, 0 when empty.
    pub const OCCUPIED: usize = 2;
    /// `u8` reserved.
    pub const RESERVED0: usize = 3;
    /// `u32` first list entry.
    pub const LIST_START: usize = 4;
    /// `u32` list length (at least 1).
    pub const LIST_LEN: usize = 8;
    /// `u32` reserved.
    pub const RESERVED1: usize = 12;
    /// 16 bytes: the key, big-endian, left-aligned (an IPv4 address in the first four bytes, a
    /// port in the first two), bits past the prefix zero.
    pub const KEY: usize = 16;
}

/// The mask keeping the first `prefix` bits of a left-aligned key.
pub const fn prefix_mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else if prefix >= 128 {
        u128::MAX
    } else {
        u128::MAX << (128 - prefix as u32)
    }
}

/// The hash of a key in its class; the home slot is `hash & (slots - 1)`.
pub const fn hash(field: u8, prefix: u8, key: u128) -> u64 {
    hash_halves(field, prefix, (key >> 64) as u64, key as u64)
}

/// [`hash`] of a key given as its high and low 64 bits.
pub const fn hash_halves(field: u8, prefix: u8, high: u64, low: u64) -> u64 {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut state = (field as u64) << 8 | prefix as u64;
    state = (state ^ high).wrapping_mul(MULTIPLIER);
    state = (state ^ low).wrapping_mul(MULTIPLIER);
    // A product's top bits depend on all of its input's bits, and the home slot takes the
    // hash's low bits: rotate the top bits down.
    state.rotate_left(24)
}

/// Reads a little-endian `u16` at `offset`.
pub fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let end = offset.checked_add(2)?;
    let raw = bytes.get(offset..end)?;
    Some(u16::from_le_bytes(raw.try_into().ok()?))
}

/// Reads a little-endian `u32` at `offset`.
pub fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let raw = bytes.get(offset..end)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

/// Reads a big-endian `u128` at `offset`.
pub fn key_at(bytes: &[u8], offset: usize) -> Option<u128> {
    let end = offset.checked_add(16)?;
    let raw = bytes.get(offset..end)?;
    Some(u128::from_be_bytes(raw.try_into().ok()?))
}
