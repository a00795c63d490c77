//! WAN links: what `NDIS_STATUS_WAN_LINE_UP` / `LINE_DOWN` say, and the table of live links.

use alloc::boxed::Box;
use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::{Ordering, Reverse};
use core::fmt;
use core::mem::size_of;

use crate::hal::{Memory, ModuleId, OutOfMemory, Pool, Timestamp};
use crate::memory::try_box;
use crate::stats::{DirectionCounters, TrafficCounts};
use crate::wire::{EtherType, Ipv4Address, MacAddress};

/// The longest protocol buffer kept per link; longer ones are cut and flagged (Windows 10 sends
/// about 1,200 bytes).
pub const PROTOCOL_BUFFER_MAX: usize = 4096;
/// The longest device name kept per link, in UTF-16 code units.
pub const DEVICE_NAME_MAX: usize = 256;
/// Byte range of the IPv4 address in the protocol buffer, as one public sample reads it. Undocumented
/// and version-dependent: see [`Link::best_effort_ipv4`].
const BEST_EFFORT_IPV4: core::ops::Range<usize> = 584..588;
/// Byte range of 8 bytes of the IPv6 address in the protocol buffer, likewise.
const BEST_EFFORT_IPV6_INTERFACE_ID: core::ops::Range<usize> = 588..596;

/// A link's identity for tools: unique for the life of the engine, never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct LinkId(pub u64);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// `NDIS_WAN_QUALITY`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WanQuality {
    /// `NdisWanRaw`: no error detection.
    Raw,
    /// `NdisWanErrorControl`: errors detected.
    ErrorControl,
    /// `NdisWanReliable`: errors detected and corrected.
    Reliable,
    /// A value this build does not know.
    Unknown(i32),
}

impl From<i32> for WanQuality {
    fn from(value: i32) -> Self {
        match value {
            0 => Self::Raw,
            1 => Self::ErrorControl,
            2 => Self::Reliable,
            other => Self::Unknown(other),
        }
    }
}

impl From<WanQuality> for i32 {
    fn from(value: WanQuality) -> Self {
        match value {
            WanQuality::Raw => 0,
            WanQuality::ErrorControl => 1,
            WanQuality::Reliable => 2,
            WanQuality::Unknown(other) => other,
        }
    }
}

/// The contents of an `NDIS_WAN_LINE_UP` status buffer, borrowed from it.
#[derive(Clone, Copy, Debug)]
pub struct LineUp<'a> {
    /// `LinkSpeed`, in units of 100 bit/s.
    pub link_speed_100bps: u32,
    /// `MaximumTotalSize`: the largest frame NdisWan accepts on the link.
    pub maximum_total_size: u32,
    /// `Quality`.
    pub quality: WanQuality,
    /// `SendWindow`: sends NdisWan accepts before completing one.
    pub send_window: u16,
    /// `RemoteAddress`: the link's MAC address as NdisWan frames it (destination of sends).
    pub remote_address: MacAddress,
    /// `LocalAddress`: filled in by the protocol above, so usually zero before the indication.
    pub local_address: MacAddress,
    /// `ProtocolType`: the EtherType of the link.
    pub protocol_type: EtherType,
    /// `DeviceName`, UTF-16, filled in by the protocol above.
    pub device_name: &'a [u16],
    /// `ProtocolBuffer`: undocumented, version-dependent bytes.
    pub protocol_buffer: &'a [u8],
}

/// The contents of an `NDIS_WAN_LINE_DOWN` status buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LineDown {
    /// `RemoteAddress` of the link that went down.
    pub remote_address: MacAddress,
    /// `LocalAddress` of the link that went down.
    pub local_address: MacAddress,
}

/// The small, copyable facts about a link that hooks and events carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LinkSummary {
    /// The link's identity.
    pub id: LinkId,
    /// The module the link lives on.
    pub module: ModuleId,
    /// `RemoteAddress`.
    pub remote_address: MacAddress,
    /// `LocalAddress` (zero until the protocol above has filled it in).
    pub local_address: MacAddress,
    /// EtherType of the link.
    pub protocol_type: EtherType,
    /// Speed in units of 100 bit/s.
    pub link_speed_100bps: u32,
    /// `MaximumTotalSize` as NdisWan indicated it.
    pub maximum_total_size: u32,
    /// `MaximumTotalSize` as reported to the protocol above after the hooks lowered it.
    pub reported_total_size: u32,
}

/// One live WAN link with every field of its latest line up and its traffic counters.
#[derive(Debug)]
pub struct Link {
    summary: LinkSummary,
    quality: WanQuality,
    send_window: u16,
    device_name: Vec<u16>,
    protocol_buffer: Vec<u8>,
    protocol_buffer_truncated: bool,
    up_since: Timestamp,
    line_ups: u32,
    send: DirectionCounters,
    receive: DirectionCounters,
    /// The protocol above said it answers the line up later (NdisWan's private byte): the local
    /// address recorded is provisional until the link's first send shows the real one.
    local_address_provisional: bool,
}

impl Link {
    /// True while the local address is provisional: the protocol above answered the line up
    /// late, and no send has shown the address yet.
    pub fn local_address_provisional(&self) -> bool {
        self.local_address_provisional
    }
    /// The copyable facts.
    pub fn summary(&self) -> LinkSummary {
        self.summary
    }
    /// The link's identity.
    pub fn id(&self) -> LinkId {
        self.summary.id
    }
    /// `Quality`.
    pub fn quality(&self) -> WanQuality {
        self.quality
    }
    /// `SendWindow`.
    pub fn send_window(&self) -> u16 {
        self.send_window
    }
    /// Speed in bit/s.
    pub fn link_speed_bps(&self) -> u64 {
        u64::from(self.summary.link_speed_100bps) * 100
    }
    /// `DeviceName` as UTF-16 code units (cut at [`DEVICE_NAME_MAX`]).
    pub fn device_name_utf16(&self) -> &[u16] {
        &self.device_name
    }
    /// `DeviceName` decoded, with unpaired surrogates replaced.
    pub fn device_name(&self) -> impl Iterator<Item = char> + '_ {
        char::decode_utf16(self.device_name.iter().copied()).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }
    /// The raw `ProtocolBuffer` (cut at [`PROTOCOL_BUFFER_MAX`]).
    pub fn protocol_buffer(&self) -> &[u8] {
        &self.protocol_buffer
    }
    /// True when the protocol buffer was longer than [`PROTOCOL_BUFFER_MAX`] and was cut.
    pub fn protocol_buffer_truncated(&self) -> bool {
        self.protocol_buffer_truncated
    }
    /// When the link first came up.
    pub fn up_since(&self) -> Timestamp {
        self.up_since
    }
    /// How many line-up indications this link has had (more than one when NdisWan updated it).
    pub fn line_ups(&self) -> u32 {
        self.line_ups
    }
    /// Traffic counters of the send direction.
    pub fn send_counts(&self) -> TrafficCounts {
        self.send.snapshot()
    }
    /// Traffic counters of the receive direction.
    pub fn receive_counts(&self) -> TrafficCounts {
        self.receive.snapshot()
    }
    pub(crate) fn counters(&self, direction: crate::hook::Direction) -> &DirectionCounters {
        match direction {
            crate::hook::Direction::Send => &self.send,
            crate::hook::Direction::Receive => &self.receive,
        }
    }
    pub(crate) fn reset_counters(&self) {
        self.send.reset();
        self.receive.reset();
    }

    /// The link's IPv4 address read from bytes 584..588 of the protocol buffer.
    ///
    /// **Best effort**: the buffer's layout is undocumented and differs between Windows versions;
    /// this reads where one public sample reads, and is `None` when the buffer is too short or the
    /// bytes are zero. Never base a security decision on it.
    pub fn best_effort_ipv4(&self) -> Option<Ipv4Address> {
        let bytes: [u8; 4] = self.protocol_buffer.get(BEST_EFFORT_IPV4)?.try_into().ok()?;
        (bytes != [0; 4]).then_some(Ipv4Address(bytes))
    }

    /// Eight bytes of the link's IPv6 address (the interface identifier) read from bytes 588..596 of
    /// the protocol buffer. **Best effort**, exactly as [`Link::best_effort_ipv4`].
    pub fn best_effort_ipv6_interface_id(&self) -> Option<[u8; 8]> {
        let bytes: [u8; 8] = self.protocol_buffer.get(BEST_EFFORT_IPV6_INTERFACE_ID)?.try_into().ok()?;
        (bytes != [0; 8]).then_some(bytes)
    }

    fn charge_size(device_name_len: usize, protocol_buffer_len: usize) -> usize {
        size_of::<Link>() + device_name_len * size_of::<u16>() + protocol_buffer_len
    }

    fn charged_bytes(&self) -> usize {
        Self::charge_size(self.device_name.len(), self.protocol_buffer.len())
    }
}

/// What [`LinkTable::line_up`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LineUpEffect {
    /// A new link was created.
    Created(LinkSummary),
    /// An existing link (same remote address) was updated with the new parameters.
    Updated(LinkSummary),
}

impl LineUpEffect {
    /// The link after the change.
    pub fn summary(&self) -> LinkSummary {
        match self {
            LineUpEffect::Created(summary) | LineUpEffect::Updated(summary) => *summary,
        }
    }
}

/// What [`LinkTable::complete_line_up`] recorded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CompletedLineUp {
    /// The link after the update.
    pub summary: LinkSummary,
    /// True when the device name could not be kept for lack of memory (the old one stays).
    pub device_name_lost: bool,
}

/// The live links of one module, keyed by remote address: O(1) lookup whatever the count.
#[derive(Debug, Default)]
///
/// The table is split into [`LINK_SHARDS`] hash maps picked by the address, so that growing one
/// (a rehash, under the module's lock) moves at most a shard's share of the links: a line up at
/// 100k links rehashes a few hundred entries, not 100k. Every byte is charged to [`Pool::Link`]:
/// each link's entry and buffers, the shard array, and each shard's bucket array and id order as
/// they grow.
///
/// Each shard also keeps its links' addresses in ascending link id (appended at line up: ids only
/// grow, and a table's line ups are serialised by its lock), so that `LIST_LINKS` resumes after a
/// link id with a binary search a shard ([`LinkPager`]) instead of a scan of every link.
pub struct LinkTable {
    /// Empty until the first line up (a vacant module allocates nothing).
    shards: Vec<LinkShard>,
    len: usize,
    /// Bytes of the shard array and the shards' bucket arrays and id orders charged to
    /// [`Pool::Link`].
    table_charged: usize,
}

/// A link in its own allocation: the table's buckets hold only the address and a pointer, so
/// the room a hash table keeps free costs 16 bytes a bucket, not a whole link.
type LinkBox = Box<[Link; 1]>;

/// One shard of a [`LinkTable`]: its links by address, and their addresses in ascending link id.
#[derive(Debug, Default)]
struct LinkShard {
    by_address: hashbrown::HashMap<MacAddress, LinkBox, AddressHasher>,
    /// Every address of `by_address`, in ascending link id.
    by_id: Vec<MacAddress>,
}

impl LinkShard {
    /// The id of the link at `remote` (`u64::MAX` if none: the two views are kept equal, so only
    /// a broken invariant reads it).
    fn id_at(&self, remote: &MacAddress) -> u64 {
        self.by_address.get(remote).map_or(u64::MAX, |link| link[0].summary.id.0)
    }

    /// The position in `by_id` of the first link with an id above `after`.
    fn first_above(&self, after: u64, examined: &mut usize) -> usize {
        self.by_id.partition_point(|remote| {
            *examined += 1;
            self.id_at(remote) <= after
        })
    }

    /// The position of `remote` in `by_id`, whose link has identity `id`.
    fn position(&self, remote: &MacAddress, id: LinkId) -> Option<usize> {
        let mut examined = 0;
        let at = self.first_above(id.0.saturating_sub(1), &mut examined);
        match self.by_id.get(at) {
            Some(found) if found == remote => Some(at),
            _ => self.by_id.iter().position(|found| found == remote),
        }
    }

    /// The most a new link can make this shard grow by: a doubling of its buckets and of its id
    /// order when they are full.
    fn growth_bound(&self) -> usize {
        let buckets = match self.by_address.len() < self.by_address.capacity() {
            true => 0,
            false => (2 * self.by_address.allocation_size()).max(bucket_bytes(MIN_BUCKETS, size_of::<(MacAddress, LinkBox)>())),
        };
        let order = match self.by_id.len() < self.by_id.capacity() {
            true => 0,
            false => (2 * self.by_id.capacity()).max(MIN_ORDER) * size_of::<MacAddress>(),
        };
        buckets + order
    }

    /// Bytes of the shard's own allocations (buckets and id order).
    fn allocation_size(&self) -> usize {
        self.by_address.allocation_size() + self.by_id.capacity() * size_of::<MacAddress>()
    }
}

/// Hashes a link's address within its shard: the six bytes as one word and a folded multiply, a
/// few instructions where the engine's general hasher takes its slice path (every packet pays
/// this). Keys are NdisWan's addresses, never a peer's, so a fixed function is safe (as
/// [`crate::memory::HashMap`] explains) and runs stay deterministic.
#[derive(Clone, Copy, Debug, Default)]
struct AddressHasher;

impl core::hash::BuildHasher for AddressHasher {
    type Hasher = AddressHash;

    fn build_hasher(&self) -> AddressHash {
        AddressHash(0)
    }
}

/// The state of [`AddressHasher`]: the bytes written so far, packed.
struct AddressHash(u64);

impl core::hash::Hasher for AddressHash {
    fn write(&mut self, bytes: &[u8]) {
        match <[u8; 6]>::try_from(bytes) {
            Ok([a, b, c, d, e, f]) => self.0 ^= u64::from_le_bytes([a, b, c, d, e, f, 0, 0]),
            Err(_) => bytes.iter().for_each(|byte| self.0 = self.0.rotate_left(8) ^ u64::from(*byte)),
        }
    }

    /// The length an array writes first is the same for every address.
    fn write_usize(&mut self, _length: usize) {}

    fn finish(&self) -> u64 {
        let product = u128::from(self.0) * u128::from(0x9E37_79B9_7F4A_7C15u64 ^ 0x2545_F491_4F6C_DD1D);
        (product as u64) ^ ((product >> 64) as u64)
    }
}


/// Shards of a [`LinkTable`].
pub const LINK_SHARDS: usize = 256;

/// The buckets of a `hashbrown` table's first allocation.
const MIN_BUCKETS: usize = 4;
/// The entries of a shard's id order's first allocation (`Vec`'s for 6-byte items).
const MIN_ORDER: usize = 4;

/// The bytes a `hashbrown` bucket array of `buckets` entries of `entry` bytes allocates (a control
/// byte each, one group of trailing control bytes, alignment).
fn bucket_bytes(buckets: usize, entry: usize) -> usize {
    buckets * (entry + 1) + 32
}

/// The shard of `remote`: a multiplicative hash of its six bytes, top bits.
fn shard_of(remote: &MacAddress) -> usize {
    let [a, b, c, d, e, f] = remote.0;
    let key = u64::from_le_bytes([a, b, c, d, e, f, 0, 0]);
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % LINK_SHARDS
}

fn copy_bounded<T: Copy>(source: &[T], max: usize) -> Result<(Vec<T>, bool), OutOfMemory> {
    let kept = &source[..source.len().min(max)];
    let mut copy = Vec::new();
    copy.try_reserve_exact(kept.len()).map_err(|_| OutOfMemory)?;
    crate::memory::try_extend_from_slice(&mut copy, kept)?;
    Ok((copy, kept.len() < source.len()))
}

impl LinkTable {
    /// Number of live links.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when no link is up.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The link NdisWan addresses as `remote`.
    pub fn get(&self, remote: &MacAddress) -> Option<&Link> {
        self.shards.get(shard_of(remote))?.by_address.get(remote).map(|link| &link[0])
    }
    fn get_mut(&mut self, remote: &MacAddress) -> Option<&mut Link> {
        self.shards.get_mut(shard_of(remote))?.by_address.get_mut(remote).map(|link| &mut link[0])
    }
    /// The link with identity `id` (a scan: for tools, not the data path).
    pub fn get_by_id(&self, id: LinkId) -> Option<&Link> {
        self.iter().find(|link| link.summary.id == id)
    }
    /// Every live link, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Link> {
        self.shards.iter().flat_map(|shard| shard.by_address.values()).map(|link| &link[0])
    }

    /// The most a new link at `remote` can make the table grow by: the shard array on the first
    /// line up, and a doubling of the shard's buckets and id order when they are full.
    fn growth_bound(&self, remote: &MacAddress) -> usize {
        match self.shards.get(shard_of(remote)) {
            None => LINK_SHARDS * size_of::<LinkShard>() + LinkShard::default().growth_bound(),
            Some(shard) => shard.growth_bound(),
        }
    }

    /// Makes room for one more link in `remote`'s shard. Returns the bytes the table grew by
    /// (also when it then failed: what was allocated stays, and is counted in `table_charged`),
    /// at most [`Self::growth_bound`], already charged by the caller.
    fn grow_for(&mut self, remote: &MacAddress) -> (usize, Result<(), OutOfMemory>) {
        let mut grown = 0;
        if self.shards.is_empty() {
            if self.shards.try_reserve_exact(LINK_SHARDS).is_err() {
                return (0, Err(OutOfMemory));
            }
            if crate::memory::fill_within_capacity(&mut self.shards, LINK_SHARDS, LinkShard::default).is_err() {
                return (0, Err(OutOfMemory));
            }
            grown += LINK_SHARDS * size_of::<LinkShard>();
        }
        let result = match self.shards.get_mut(shard_of(remote)) {
            Some(shard) => {
                let before = shard.allocation_size();
                let reserved = match shard.by_address.try_reserve(1) {
                    Ok(()) => shard.by_id.try_reserve(1).map_err(|_| OutOfMemory),
                    Err(_) => Err(OutOfMemory),
                };
                grown += shard.allocation_size().saturating_sub(before);
                reserved
            }
            None => Err(OutOfMemory),
        };
        self.table_charged += grown;
        (grown, result)
    }

    /// Creates or updates the link of `line_up`, charging its memory to [`Pool::Link`].
    ///
    /// `new_id` is only called when a link is created.
    ///
    /// # Errors
    /// [`OutOfMemory`] when the entry or its buffers cannot be had; no link is added or changed
    /// (room the table grew by stays, and stays charged).
    pub fn line_up(
        &mut self,
        memory: &impl Memory,
        module: ModuleId,
        line_up: &LineUp<'_>,
        now: Timestamp,
        new_id: impl FnOnce() -> LinkId,
    ) -> Result<LineUpEffect, OutOfMemory> {
        let kept_name = line_up.device_name.len().min(DEVICE_NAME_MAX);
        let kept_buffer = line_up.protocol_buffer.len().min(PROTOCOL_BUFFER_MAX);
        let entry = Link::charge_size(kept_name, kept_buffer);
        // One charge covers the entry and what the table may grow by; the unused part of the
        // bound goes back below.
        let growth = if self.get(&line_up.remote_address).is_none() { self.growth_bound(&line_up.remote_address) } else { 0 };
        let needed = entry + growth;
        memory.try_charge(Pool::Link, needed)?;
        let copies = copy_bounded(line_up.device_name, DEVICE_NAME_MAX)
            .and_then(|name| Ok((name, copy_bounded(line_up.protocol_buffer, PROTOCOL_BUFFER_MAX)?)));
        let ((device_name, _), (protocol_buffer, truncated)) = match copies {
            Ok(copies) => copies,
            Err(error) => {
                memory.release(Pool::Link, needed);
                return Err(error);
            }
        };
        if let Some(link) = self.get_mut(&line_up.remote_address) {
            let previous_charge = link.charged_bytes();
            link.summary.link_speed_100bps = line_up.link_speed_100bps;
            link.summary.maximum_total_size = line_up.maximum_total_size;
            link.summary.reported_total_size = line_up.maximum_total_size;
            link.summary.protocol_type = line_up.protocol_type;
            if line_up.local_address != MacAddress([0; 6]) {
                link.summary.local_address = line_up.local_address;
            }
            link.quality = line_up.quality;
            link.send_window = line_up.send_window;
            link.device_name = device_name;
            link.protocol_buffer = protocol_buffer;
            link.protocol_buffer_truncated = truncated;
            link.line_ups = link.line_ups.saturating_add(1);
            memory.release(Pool::Link, previous_charge + growth);
            return Ok(LineUpEffect::Updated(link.summary));
        }
        let (grown, reserved) = self.grow_for(&line_up.remote_address);
        memory.release(Pool::Link, growth.saturating_sub(grown));
        if let Err(error) = reserved {
            memory.release(Pool::Link, entry);
            return Err(error);
        }
        let summary = LinkSummary {
            id: new_id(),
            module,
            remote_address: line_up.remote_address,
            local_address: line_up.local_address,
            protocol_type: line_up.protocol_type,
            link_speed_100bps: line_up.link_speed_100bps,
            maximum_total_size: line_up.maximum_total_size,
            reported_total_size: line_up.maximum_total_size,
        };
        let link = Link {
            summary,
            quality: line_up.quality,
            send_window: line_up.send_window,
            device_name,
            protocol_buffer,
            protocol_buffer_truncated: truncated,
            up_since: now,
            line_ups: 1,
            send: DirectionCounters::default(),
            receive: DirectionCounters::default(),
            local_address_provisional: false,
        };
        let link = match try_box(link) {
            Ok(link) => link,
            Err(error) => {
                memory.release(Pool::Link, entry);
                return Err(error);
            }
        };
        if let Some(shard) = self.shards.get_mut(shard_of(&line_up.remote_address)) {
            // Within the room `grow_for` reserved.
            if crate::memory::map_insert_within_capacity(&mut shard.by_address, line_up.remote_address, link).is_err() {
                memory.release(Pool::Link, entry);
                return Err(OutOfMemory);
            }
            // Within the room `grow_for` reserved; the new id is the table's largest.
            if crate::memory::push_within_capacity(&mut shard.by_id, line_up.remote_address).is_err() {
                shard.by_address.remove(&line_up.remote_address);
                memory.release(Pool::Link, entry);
                return Err(OutOfMemory);
            }
            self.len += 1;
        }
        Ok(LineUpEffect::Created(summary))
    }

    /// Records what the protocol above filled in during the line-up indication.
    ///
    /// Returns `None` when the link is gone. The local address is always recorded; the device name
    /// needs memory, so [`CompletedLineUp::device_name_lost`] tells when it could not be kept.
    pub fn complete_line_up(
        &mut self,
        memory: &impl Memory,
        remote: &MacAddress,
        local_address: MacAddress,
        device_name: &[u16],
    ) -> Option<CompletedLineUp> {
        let link = self.get_mut(remote)?;
        link.summary.local_address = local_address;
        // Final unless the platform then says the answer comes later (`mark_answer_pending`).
        link.local_address_provisional = false;
        let kept = &device_name[..device_name.len().min(DEVICE_NAME_MAX)];
        let mut device_name_lost = false;
        if !kept.is_empty() && kept != link.device_name.as_slice() {
            let bytes = core::mem::size_of_val(kept);
            let copied = memory.try_charge(Pool::Link, bytes).and_then(|()| {
                copy_bounded(kept, DEVICE_NAME_MAX).inspect_err(|_| memory.release(Pool::Link, bytes))
            });
            match copied {
                Ok((name, _)) => {
                    let old = core::mem::replace(&mut link.device_name, name);
                    memory.release(Pool::Link, core::mem::size_of_val(old.as_slice()));
                }
                Err(OutOfMemory) => device_name_lost = true,
            }
        }
        Some(CompletedLineUp { summary: link.summary, device_name_lost })
    }

    /// Marks the local address of `remote`'s link provisional: the protocol above said it answers
    /// the line up later, so what it filled in when the indication returned may not be final.
    /// Returns false when the link is gone.
    pub fn mark_answer_pending(&mut self, remote: &MacAddress) -> bool {
        let Some(link) = self.get_mut(remote) else { return false };
        link.local_address_provisional = true;
        true
    }

    /// Learns the final local address of a link whose answer was late, from a frame sent on it
    /// (its source address): when it is provisional and `local` is not zero, records it and returns
    /// the updated summary; otherwise `None` (nothing changed).
    pub fn learn_local_address(&mut self, remote: &MacAddress, local: MacAddress) -> Option<LinkSummary> {
        let link = self.get_mut(remote)?;
        if !link.local_address_provisional || local.0 == [0; 6] {
            return None;
        }
        link.local_address_provisional = false;
        link.summary.local_address = local;
        Some(link.summary)
    }

    /// Lowers the `MaximumTotalSize` reported upward for `remote`.
    pub fn set_reported_total_size(&mut self, remote: &MacAddress, size: u32) {
        if let Some(link) = self.get_mut(remote) {
            link.summary.reported_total_size = size;
        }
    }

    /// Removes the link of `line_down`, releasing its memory. Returns what it was.
    pub fn line_down(&mut self, memory: &impl Memory, line_down: &LineDown) -> Option<LinkSummary> {
        let shard = self.shards.get_mut(shard_of(&line_down.remote_address))?;
        let position =
            shard.by_address.get(&line_down.remote_address).and_then(|link| shard.position(&line_down.remote_address, link[0].id()));
        let [link] = *shard.by_address.remove(&line_down.remote_address)?;
        if let Some(position) = position {
            shard.by_id.remove(position);
        }
        self.len -= 1;
        memory.release(Pool::Link, link.charged_bytes());
        if self.len == 0 {
            self.release_table(memory);
        }
        Some(link.summary)
    }

    /// Removes every link (at detach), releasing their memory. Returns how many there were.
    pub fn clear(&mut self, memory: &impl Memory) -> usize {
        let count = self.len;
        for shard in &mut self.shards {
            for (_, link) in shard.by_address.drain() {
                memory.release(Pool::Link, link[0].charged_bytes());
            }
            shard.by_id.clear();
        }
        self.len = 0;
        self.release_table(memory);
        count
    }

    /// Frees the shard array and the shards' buckets once no link is left.
    fn release_table(&mut self, memory: &impl Memory) {
        self.shards = Vec::new();
        memory.release(Pool::Link, self.table_charged);
        self.table_charged = 0;
    }
}

/// A link's place in [`LinkPager`]'s walk: its id (the order), the caller's tag of its table, and
/// where it was found.
#[derive(Clone, Copy, Debug)]
pub struct LinkHead {
    /// The link's identity.
    pub id: LinkId,
    /// The tag the caller gave the link's table ([`LinkPager::add_table`]).
    pub table: u32,
    /// The link's address (its key in the table).
    pub remote: MacAddress,
    shard: u16,
    /// The link's position in its shard's id order when it was read: a hint, checked before use
    /// (`u32::MAX` when it does not fit: never a link's).
    position: u32,
}

// A shard's index fits [`LinkHead::shard`].
const _: () = assert!(LINK_SHARDS <= 1 << 16);

impl PartialEq for LinkHead {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for LinkHead {}

impl PartialOrd for LinkHead {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LinkHead {
    /// By link id (unique in an engine), then table.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.id, self.table).cmp(&(other.id, other.table))
    }
}

/// The walk of `LIST_LINKS`: the links of some tables with ids above a cursor, in ascending id,
/// costing what a page lists plus a binary search a shard, not a scan of every link.
///
/// [`Self::add_table`] finds, in each shard of a table, the first link above the cursor (a binary
/// search of the shard's id order) and keeps it in a heap of at most [`LINK_SHARDS`] heads a
/// table. [`Self::take_smallest`] takes the smallest; once the caller has listed it (or found it
/// gone), [`Self::advance`] adds the next link of its shard: the position after it when the shard
/// has not moved (one read), else a binary search. Tables may change between calls (each call runs under
/// the caller's read of one table): every link that stays in its table from before
/// [`Self::add_table`] to the end of the walk is met exactly once, in id order; a link that comes
/// or goes meanwhile may or may not be.
pub struct LinkPager {
    heads: BinaryHeap<Reverse<LinkHead>>,
    after: u64,
    examined: usize,
}

impl LinkPager {
    /// The bytes a pager for `tables` tables allocates.
    pub fn bytes(tables: usize) -> usize {
        tables.saturating_mul(LINK_SHARDS * size_of::<Reverse<LinkHead>>())
    }

    /// A walk of links with ids above `after`, with room for `tables` tables.
    ///
    /// # Errors
    /// [`OutOfMemory`] when the heap of [`Self::bytes`] cannot be allocated.
    pub fn new(after: u64, tables: usize) -> Result<Self, OutOfMemory> {
        let mut heads = BinaryHeap::new();
        heads.try_reserve_exact(tables.saturating_mul(LINK_SHARDS)).map_err(|_| OutOfMemory)?;
        Ok(Self { heads, after, examined: 0 })
    }

    /// Entries of the tables read so far (positions of a shard's id order probed, heads read):
    /// what the walk has cost.
    pub fn examined(&self) -> usize {
        self.examined
    }

    /// True when no link is left to meet.
    pub fn is_done(&self) -> bool {
        self.heads.is_empty()
    }

    /// Adds `table`'s links above the cursor to the walk, tagged `tag`; false (nothing added) when
    /// the pager has no room left for another table.
    pub fn add_table(&mut self, tag: u32, table: &LinkTable) -> bool {
        if self.heads.capacity() - self.heads.len() < LINK_SHARDS {
            return false;
        }
        for (index, shard) in table.shards.iter().enumerate() {
            let position = shard.first_above(self.after, &mut self.examined);
            self.add_head(tag, index, shard, position);
        }
        true
    }

    fn add_head(&mut self, table: u32, shard_index: usize, shard: &LinkShard, position: usize) {
        let Some(remote) = shard.by_id.get(position).copied() else {
            return;
        };
        self.examined += 1;
        let (shard_index, position) = (shard_index as u16, u32::try_from(position).unwrap_or(u32::MAX));
        let head = LinkHead { id: LinkId(shard.id_at(&remote)), table, remote, shard: shard_index, position };
        // At most one head a shard of each table added: within the room reserved.
        if self.heads.len() < self.heads.capacity() {
            self.heads.push(Reverse(head));
        }
    }

    /// Takes the link with the smallest id left. The caller reads it in its table (under the
    /// table's read side), where it may be gone, then calls [`Self::advance`].
    pub fn take_smallest(&mut self) -> Option<LinkHead> {
        self.heads.pop().map(|Reverse(head)| head)
    }

    /// After `head` (from [`Self::take_smallest`]) was met in `table` (its table, read now): adds
    /// the next link of its shard.
    pub fn advance(&mut self, table: &LinkTable, head: &LinkHead) {
        let shard_index = usize::from(head.shard);
        let Some(shard) = table.shards.get(shard_index) else {
            return;
        };
        self.examined += 1;
        let position = head.position as usize;
        let position = match shard.by_id.get(position) == Some(&head.remote) {
            true => position + 1,
            false => shard.first_above(head.id.0, &mut self.examined),
        };
        self.add_head(head.table, shard_index, shard, position);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hal::Pool;
    use crate::testing::Budget;


    fn remote(n: u32) -> MacAddress {
        let b = n.to_be_bytes();
        MacAddress([0x02, b[0], b[1], b[2], b[3], 0x01])
    }

    fn line_up<'a>(n: u32, name: &'a [u16], buffer: &'a [u8]) -> LineUp<'a> {
        LineUp {
            link_speed_100bps: 1_000,
            maximum_total_size: 1500,
            quality: WanQuality::Reliable,
            send_window: 10,
            remote_address: remote(n),
            local_address: MacAddress([0; 6]),
            protocol_type: EtherType::Ipv4,
            device_name: name,
            protocol_buffer: buffer,
        }
    }

    fn ids() -> impl FnMut() -> LinkId {
        let mut next = 0;
        move || {
            next += 1;
            LinkId(next)
        }
    }

    #[test]
    fn line_up_creates_a_link_with_every_field() {
        let memory = Budget::for_pool(Pool::Link, 1 << 20);
        let mut table = LinkTable::default();
        let name: [u16; 3] = [b'P' as u16, b'P' as u16, b'P' as u16];
        let mut buffer = [0u8; 600];
        buffer[584..588].copy_from_slice(&[10, 0, 0, 7]);
        let effect = table.line_up(&memory, ModuleId(1), &line_up(1, &name, &buffer), Timestamp(5), ids()).unwrap();
        let LineUpEffect::Created(summary) = effect else { panic!("expected a new link") };
        assert_eq!(summary.id, LinkId(1));
        let link = table.get(&remote(1)).unwrap();
        assert_eq!(link.link_speed_bps(), 100_000);
        assert_eq!(link.quality(), WanQuality::Reliable);
        assert_eq!(link.send_window(), 10);
        assert_eq!(link.device_name().collect::<alloc::string::String>(), "PPP");
        assert_eq!(link.protocol_buffer().len(), 600);
        assert_eq!(link.best_effort_ipv4(), Some(Ipv4Address([10, 0, 0, 7])));
        assert_eq!(link.best_effort_ipv6_interface_id(), None, "zero bytes are no address");
        assert_eq!(link.up_since(), Timestamp(5));
        assert!(memory.outstanding() >= 600);
    }

    #[test]
    fn a_second_line_up_updates_the_link_and_keeps_its_identity() {
        let memory = Budget::for_pool(Pool::Link, 1 << 20);
        let mut table = LinkTable::default();
        let mut next_id = ids();
        table.line_up(&memory, ModuleId(1), &line_up(1, &[], &[1; 100]), Timestamp(1), &mut next_id).unwrap();
        let mut faster = line_up(1, &[], &[2; 50]);
        faster.link_speed_100bps = 5_000;
        let effect = table.line_up(&memory, ModuleId(1), &faster, Timestamp(2), &mut next_id).unwrap();
        assert!(matches!(effect, LineUpEffect::Updated(summary) if summary.id == LinkId(1) && summary.link_speed_100bps == 5_000));
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(&remote(1)).unwrap().line_ups(), 2);
        assert_eq!(table.get(&remote(1)).unwrap().protocol_buffer(), &[2; 50]);
        table.clear(&memory);
        assert_eq!(memory.outstanding(), 0, "updates release what they replace");
    }

    #[test]
    fn oversized_buffers_are_cut_and_flagged() {
        let memory = Budget::for_pool(Pool::Link, 1 << 20);
        let mut table = LinkTable::default();
        let name = [0x41u16; DEVICE_NAME_MAX + 10];
        let buffer = [7u8; PROTOCOL_BUFFER_MAX + 1];
        table.line_up(&memory, ModuleId(1), &line_up(1, &name, &buffer), Timestamp(0), ids()).unwrap();
        let link = table.get(&remote(1)).unwrap();
        assert_eq!(link.protocol_buffer().len(), PROTOCOL_BUFFER_MAX);
        assert!(link.protocol_buffer_truncated());
        assert_eq!(link.device_name_utf16().len(), DEVICE_NAME_MAX);
    }

    #[test]
    fn a_refused_charge_leaves_the_table_unchanged() {
        let memory = Budget::for_pool(Pool::Link, 10);
        let mut table = LinkTable::default();
        assert_eq!(table.line_up(&memory, ModuleId(1), &line_up(1, &[], &[0; 64]), Timestamp(0), ids()), Err(OutOfMemory));
        assert!(table.is_empty());
        assert_eq!(memory.outstanding(), 0);
    }

    #[test]
    fn line_down_removes_the_link_and_releases_its_memory() {
        let memory = Budget::for_pool(Pool::Link, 1 << 20);
        let mut table = LinkTable::default();
        table.line_up(&memory, ModuleId(1), &line_up(1, &[0x41; 8], &[0; 64]), Timestamp(0), ids()).unwrap();
        let down = LineDown { remote_address: remote(1), local_address: MacAddress([0; 6]) };
        assert_eq!(table.line_down(&memory, &down).map(|s| s.id), Some(LinkId(1)));
        assert_eq!(table.line_down(&memory, &down), None, "a second line down finds nothing");
        assert_eq!(memory.outstanding(), 0);
    }

    #[test]
    fn completing_a_line_up_records_what_the_protocol_filled_in() {
        let memory = Budget::for_pool(Pool::Link, 1 << 20);
        let mut table = LinkTable::default();
        table.line_up(&memory, ModuleId(1), &line_up(1, &[], &[]), Timestamp(0), ids()).unwrap();
        let local = MacAddress([0x02, 0, 0, 0, 0, 0x99]);
        let name: [u16; 4] = [0x5C, 0x44, 0x45, 0x56];
        let completed = table.complete_line_up(&memory, &remote(1), local, &name).unwrap();
        assert_eq!(completed.summary.local_address, local);
        assert!(!completed.device_name_lost);
        assert_eq!(table.get(&remote(1)).unwrap().device_name_utf16(), &name);
        assert_eq!(table.complete_line_up(&memory, &remote(2), local, &name), None);
        table.clear(&memory);
        assert_eq!(memory.outstanding(), 0);
    }

    #[test]
    fn a_late_answer_leaves_the_local_address_provisional_until_a_send_shows_it() {
        let memory = Budget::for_pool(Pool::Link, 1 << 20);
        let mut table = LinkTable::default();
        table.line_up(&memory, ModuleId(1), &line_up(1, &[], &[]), Timestamp(0), ids()).unwrap();
        let provisional = MacAddress([0; 6]);
        table.complete_line_up(&memory, &remote(1), provisional, &[]).unwrap();
        let real = MacAddress([0x02, 0, 0, 0, 0, 0x42]);
        assert_eq!(table.learn_local_address(&remote(1), real), None, "final answers are not relearned");
        assert!(table.mark_answer_pending(&remote(1)));
        assert!(!table.mark_answer_pending(&remote(2)), "no such link");
        assert!(table.get(&remote(1)).unwrap().local_address_provisional());
        assert_eq!(table.learn_local_address(&remote(1), provisional), None, "a zero source teaches nothing");
        let learned = table.learn_local_address(&remote(1), real).expect("learned");
        assert_eq!(learned.local_address, real);
        assert!(!table.get(&remote(1)).unwrap().local_address_provisional());
        assert_eq!(table.learn_local_address(&remote(1), MacAddress([0x02, 0, 0, 0, 0, 0x43])), None, "learned once");
        table.clear(&memory);
        assert_eq!(memory.outstanding(), 0);
    }

    #[test]
    fn lookup_stays_direct_at_a_hundred_thousand_links() {
        let memory = Budget::for_pool(Pool::Link, usize::MAX);
        let mut table = LinkTable::default();
        let mut next_id = ids();
        for n in 0..100_000 {
            table.line_up(&memory, ModuleId(1), &line_up(n, &[], &[]), Timestamp(0), &mut next_id).unwrap();
        }
        assert_eq!(table.len(), 100_000);
        assert_eq!(table.get(&remote(77_777)).unwrap().id(), LinkId(77_778));
        assert!(table.get(&remote(100_001)).is_none());
        assert_eq!(table.clear(&memory), 100_000);
        assert_eq!(memory.outstanding(), 0);
    }

    /// One page of at most `page` links after `cursor` through a [`LinkPager`] over `table`: the
    /// ids listed and the entries the page read.
    fn page_after(table: &LinkTable, cursor: u64, page: usize) -> (Vec<u64>, usize, bool) {
        let mut pager = LinkPager::new(cursor, 1).unwrap();
        assert!(pager.add_table(7, table));
        assert!(!pager.add_table(8, table), "room for one table only");
        let mut listed = Vec::new();
        while listed.len() < page {
            let Some(head) = pager.take_smallest() else { break };
            assert_eq!(head.table, 7);
            assert_eq!(table.get(&head.remote).map(Link::id), Some(head.id), "the head names its link");
            listed.push(head.id.0);
            pager.advance(table, &head);
        }
        (listed, pager.examined(), pager.is_done())
    }

    fn down(n: u32) -> LineDown {
        LineDown { remote_address: remote(n), local_address: MacAddress([0; 6]) }
    }

    #[test]
    fn a_page_of_a_hundred_thousand_links_reads_its_links_and_one_binary_search_a_shard() {
        let memory = Budget::for_pool(Pool::Link, usize::MAX);
        let mut table = LinkTable::default();
        let mut next_id = ids();
        // 150,000 up, every third down: 100,000 links whose ids have gaps.
        for n in 0..150_000 {
            table.line_up(&memory, ModuleId(1), &line_up(n, &[], &[]), Timestamp(0), &mut next_id).unwrap();
        }
        for n in (0..150_000).step_by(3) {
            table.line_down(&memory, &down(n)).unwrap();
        }
        let expected: Vec<u64> = (0..150_000u64).filter(|n| n % 3 != 0).map(|n| n + 1).collect();
        assert_eq!(expected.len(), 100_000);
        let longest_shard = table.shards.iter().map(|shard| shard.by_id.len()).max().unwrap();
        // A binary search of a shard of n probes ceil(log2 n) + 1 positions, and its head is read.
        let search = LINK_SHARDS * (usize::BITS - longest_shard.leading_zeros() + 2) as usize;
        let (mut cursor, mut listed, mut pages, mut worst) = (0, Vec::new(), 0, 0);
        loop {
            let (page, examined, done) = page_after(&table, cursor, 1024);
            pages += 1;
            worst = worst.max(examined);
            assert!(examined <= 2 * page.len() + search, "page {pages}: {examined} entries read for {} links", page.len());
            cursor = page.last().copied().unwrap_or(cursor);
            listed.extend(page);
            if done {
                break;
            }
        }
        assert_eq!(listed, expected, "every link once, in ascending id");
        assert_eq!(pages, expected.len().div_ceil(1024));
        extern crate std;
        std::println!(
            "{} links, {pages} pages of 1,024: at most {worst} entries read a page ({} for the binary searches of {LINK_SHARDS} shards of at most {longest_shard})",
            expected.len(),
            search
        );
        table.clear(&memory);
        assert_eq!(memory.outstanding(), 0, "the id order is charged and released");
    }

    #[test]
    fn links_that_stay_up_are_paged_exactly_once_while_others_come_and_go() {
        let memory = Budget::for_pool(Pool::Link, usize::MAX);
        let mut table = LinkTable::default();
        let mut next_id = ids();
        for n in 0..5_000 {
            table.line_up(&memory, ModuleId(1), &line_up(n, &[], &[]), Timestamp(0), &mut next_id).unwrap();
        }
        let (mut cursor, mut listed, mut fresh, mut pages) = (0, Vec::new(), 5_000, 0);
        loop {
            pages += 1;
            let (page, _, done) = page_after(&table, cursor, 100);
            cursor = page.last().copied().unwrap_or(cursor);
            listed.extend(page);
            if done {
                break;
            }
            // Between the first pages: links above and below the cursor go down (every 7th), new
            // ones come up (and make shards grow and rehash).
            if pages == 1 {
                for n in (0..5_000).filter(|n| n % 7 == 0) {
                    table.line_down(&memory, &down(n));
                }
            }
            for _ in 0..if pages <= 20 { 150 } else { 0 } {
                table.line_up(&memory, ModuleId(1), &line_up(fresh, &[], &[]), Timestamp(0), &mut next_id).unwrap();
                fresh += 1;
            }
        }
        assert!(listed.windows(2).all(|pair| pair[0] < pair[1]), "ascending, none twice");
        let stayed = (0..5_000u64).filter(|n| n % 7 != 0).map(|n| n + 1);
        assert!(stayed.clone().all(|id| listed.binary_search(&id).is_ok()), "every link that stayed up is listed");
        assert!(listed.iter().all(|id| *id > 5_000 || (id - 1) % 7 != 0 || *id <= 100), "no link listed after it went down");
        table.clear(&memory);
        assert_eq!(memory.outstanding(), 0);
    }

    #[test]
    fn wan_quality_survives_a_round_trip_including_unknown_values() {
        for raw in [-1, 0, 1, 2, 3, 77] {
            assert_eq!(i32::from(WanQuality::from(raw)), raw);
        }
        assert_eq!(WanQuality::from(7), WanQuality::Unknown(7));
    }
}
