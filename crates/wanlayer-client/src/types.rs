//! What the client returns. Fixed-size answers are the protocol's own parsed records
//! (`wanlayer_proto::*Repr`, serialisable with its `serde` feature); the few that borrow their
//! answer buffer are kept here in an owned form that lends the same record back, and batches
//! gather records with their cursors and counters.

use serde::{Serialize, Serializer};
use wanlayer_proto::{CaptureRecordRepr, Direction, EventRecordRepr, LinkEntryRepr, RuleStatsEntryRepr};

/// One link entry of a `LIST_LINKS` answer, owned: [`Link::entry`] is the record as parsed.
/// Serialises as the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The entry with its borrowed parts left empty.
    fixed: LinkEntryRepr<'static>,
    /// `DeviceName`, UTF-16LE bytes.
    device_name: Box<[u8]>,
    /// The raw protocol buffer, when it was asked for.
    protocol_buffer: Box<[u8]>,
}

impl Link {
    /// The owned form of `entry`.
    pub fn new(entry: &LinkEntryRepr<'_>) -> Self {
        Self {
            fixed: LinkEntryRepr { device_name: &[], protocol_buffer: &[], ..*entry },
            device_name: entry.device_name.into(),
            protocol_buffer: entry.protocol_buffer.into(),
        }
    }

    /// The entry as the driver wrote it.
    pub fn entry(&self) -> LinkEntryRepr<'_> {
        LinkEntryRepr { device_name: &self.device_name, protocol_buffer: &self.protocol_buffer, ..self.fixed }
    }
}

impl Serialize for Link {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entry().serialize(serializer)
    }
}

/// One batch of a link enumeration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkBatch {
    /// The links, ascending ids.
    pub links: Vec<Link>,
    /// The cursor of the next batch.
    pub next_cursor: u64,
    /// True when the enumeration is complete.
    pub end: bool,
}

/// One batch of events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventBatch {
    /// The events, oldest first.
    pub events: Vec<EventRecordRepr>,
    /// Events this subscriber lost so far (its ring was full).
    pub lost: u64,
}

/// A captured frame, owned: [`CapturedFrame::record`] is the record as parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedFrame {
    /// The record with its bytes left empty.
    fixed: CaptureRecordRepr<'static>,
    /// The captured bytes.
    data: Box<[u8]>,
}

impl CapturedFrame {
    /// The owned form of `record`.
    pub fn new(record: &CaptureRecordRepr<'_>) -> Self {
        Self { fixed: CaptureRecordRepr { data: &[], ..*record }, data: record.data.into() }
    }

    /// The record as the driver wrote it.
    pub fn record(&self) -> CaptureRecordRepr<'_> {
        CaptureRecordRepr { data: &self.data, ..self.fixed }
    }

    /// True for frames going down to NdisWan.
    pub fn is_send(&self) -> bool {
        self.fixed.direction == Direction::Send
    }
}

/// One batch of captured frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureBatch {
    /// The frames, oldest first.
    pub frames: Vec<CapturedFrame>,
    /// Frames captured since the start.
    pub captured: u64,
    /// Frames lost to a full ring.
    pub dropped: u64,
    /// Frames cut to the snap length.
    pub truncated: u64,
}

/// The rule set in force, as read back (`GET_RULES`): the owned form of
/// [`RulesInfoRepr`](wanlayer_proto::RulesInfoRepr).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RulesSnapshot {
    /// Its version (0: never set); name it to replace it.
    pub version: u64,
    /// Its altitude in the hook chain.
    pub altitude: u32,
    /// Rules in it.
    pub rules: u32,
    /// The compiled set, exactly as set.
    #[serde(skip)]
    pub blob: Vec<u8>,
}

/// Every rule's counters, of one version of the set (`RULE_STATS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// The set's version.
    pub version: u64,
    /// The rules, in set order.
    pub rules: Vec<RuleStatsEntryRepr>,
}
