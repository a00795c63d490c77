//! The bounds every request is checked against. The driver reports the ones it enforces in
//! [`Features`](crate::Features); these are the largest any driver of this interface accepts.

/// Most links one `LIST_LINKS` answer carries.
pub const MAX_LINK_BATCH: u32 = 1024;
/// Most records one `READ_EVENTS` or `CAPTURE_READ` answer carries.
pub const MAX_READ_BATCH: u32 = 4096;
/// Largest event ring of one subscriber, in records.
pub const MAX_SUBSCRIBER_CAPACITY: u32 = 65_536;
/// Largest snap length of a capture.
pub const MAX_SNAP_LEN: u32 = 65_535;
/// Most records a capture ring holds.
pub const MAX_CAPTURE_SLOTS: u32 = 65_536;
/// Largest capture ring: slots × snap length.
pub const MAX_CAPTURE_BYTES: u64 = 16 << 20;
/// Shortest frame that can be injected: an Ethernet header.
pub const MIN_FRAME_LEN: usize = 14;
/// Longest frame that can be injected.
pub const MAX_FRAME_LEN: usize = 16_384;
/// Longest device name in a link entry, in UTF-16 code units.
pub const MAX_DEVICE_NAME_UNITS: usize = 256;
/// Longest protocol buffer in a link entry, in bytes.
pub const MAX_PROTOCOL_BUFFER: usize = 4096;
/// Bytes of a hook name field.
pub const HOOK_NAME_LEN: usize = 32;
/// Largest compiled rule set a `SET_RULES` request carries, in bytes.
pub const MAX_RULES_BLOB: usize = 16 << 20;
/// Bytes of a `RULE_STATS` answer's entry.
pub const RULE_STATS_ENTRY_LEN: usize = 40;
/// Most packets one user-mode hook holds at once.
pub const MAX_DIVERT_QUEUE: u32 = 4096;
/// Longest time limit of a diverted packet, in milliseconds.
pub const MAX_DIVERT_TIMEOUT_MS: u32 = 60_000;
