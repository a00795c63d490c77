//! [`Client`]: typed requests over any [`Transport`].

use std::time::Duration;

use wanlayer_proto::ioctl::*;
use wanlayer_proto::limits::{MAX_LINK_BATCH, MAX_READ_BATCH};
use wanlayer_proto::{
    CaptureBatch as WireCaptureBatch, CaptureBatchRepr, CaptureSession, CaptureSessionRepr, CaptureStart, CaptureStartRepr, Direction,
    EventBatch as WireEventBatch, EventBatchRepr, HeaderOnly, HookList, HookListRepr, HookStats as WireHookStats, HookStatsRepr, Inject,
    InjectRepr, LinkList, LinkListRepr, LinkQuery, LinkQueryRepr, LinkStats as WireLinkStats, LinkStatsRepr, ModuleList, ModuleListRepr,
    ModuleStats as WireModuleStats, ModuleStatsRepr, ReadRequest, ReadRequestRepr, ScopeRequest, ScopeRequestRepr, Status, Subscribe,
    SubscribeRepr, Subscription as WireSubscription, SubscriptionRepr, Target, VersionInfo as WireVersion, VersionInfoRepr,
    INTERFACE_VERSION,
};
use wanlayer_proto::{
    Expected, RuleStatsList, RuleStatsListRepr, RuleStatsQuery, RuleStatsQueryRepr, RulesInfo, RulesInfoRepr, RulesSet, RulesSetRepr,
    RulesVersion, RulesVersionRepr,
};

use wanlayer_proto::{HookEntryRepr, ModuleEntryRepr};

use crate::types::{CaptureBatch, CapturedFrame, EventBatch, Link, LinkBatch, RuleStats, RulesSnapshot};
use crate::{ClientError, Result, Transport};

/// Output room for listings and statistics.
const LIST_ROOM: usize = 1 << 20;
/// Link entries per batch when protocol buffers (up to 4 KiB each) are asked for.
const BUFFER_BATCH: u32 = 128;
/// Output room for a capture batch; doubled up to [`CAPTURE_ROOM_MAX`] when one frame needs more.
const CAPTURE_ROOM: usize = 1 << 20;
const CAPTURE_ROOM_MAX: usize = 1 << 24;

/// A client of the control device.
pub struct Client<T: Transport> {
    transport: T,
    output: Vec<u8>,
}

impl<T: Transport> Client<T> {
    /// A client over `transport` (nothing is sent yet).
    pub fn new(transport: T) -> Self {
        Self { transport, output: Vec::new() }
    }

    /// A client over `transport` whose driver speaks this interface version.
    ///
    /// # Errors
    /// [`ClientError::Incompatible`] for another version, or the version query's error.
    pub fn connect(transport: T) -> Result<Self> {
        let mut client = Self::new(transport);
        let version = client.version()?;
        if version.interface_version != INTERFACE_VERSION {
            return Err(ClientError::Incompatible { driver: version.interface_version });
        }
        Ok(client)
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The transport, for a [`Divert`](crate::Divert) over the same handle.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Sends `code` with `input`, with `room` bytes of output; returns the answer's bytes.
    fn call(&mut self, code: u32, input: &[u8], room: usize) -> Result<&[u8]> {
        self.output.resize(room, 0);
        let written = self.transport.call(code, input, &mut self.output)?;
        self.output.get(..written).ok_or(ClientError::Malformed(wanlayer_proto::Error::BadSize))
    }

    fn header_only(&mut self, code: u32, room: usize) -> Result<&[u8]> {
        let mut input = [0u8; HeaderOnly::LEN];
        HeaderOnly.emit(&mut input)?;
        self.call(code, &input, room)
    }

    /// The driver's version and capabilities (`QUERY_VERSION`).
    ///
    /// # Errors
    /// The transport's errors; a malformed answer.
    pub fn version(&mut self) -> Result<VersionInfoRepr> {
        let answer = self.call(IOCTL_QUERY_VERSION, &[], 256)?;
        Ok(VersionInfoRepr::parse(&WireVersion::new_unchecked(answer))?)
    }

    /// Every attached module (`LIST_MODULES`).
    ///
    /// # Errors
    /// The transport's errors; a malformed answer.
    pub fn modules(&mut self) -> Result<Vec<ModuleEntryRepr>> {
        let answer = self.header_only(IOCTL_LIST_MODULES, LIST_ROOM)?;
        let view = ModuleList::new_unchecked(answer);
        ModuleListRepr::parse(&view)?;
        view.entries().map(|entry| Ok(entry?)).collect()
    }

    /// One batch of links with ids above `cursor` (`LIST_LINKS`), on `module` or every module.
    ///
    /// # Errors
    /// The transport's errors; a malformed answer.
    pub fn links_batch(&mut self, module: Option<u32>, cursor: u64, protocol_buffer: bool) -> Result<LinkBatch> {
        let max_entries = if protocol_buffer { BUFFER_BATCH } else { MAX_LINK_BATCH };
        let mut input = [0u8; 32];
        LinkQueryRepr { module, protocol_buffer, cursor, max_entries }.emit(&mut LinkQuery::new_unchecked(&mut input[..]))?;
        let room = if protocol_buffer { 4 * LIST_ROOM } else { LIST_ROOM };
        let answer = self.call(IOCTL_LIST_LINKS, &input, room)?;
        let view = LinkList::new_unchecked(answer);
        let repr = LinkListRepr::parse(&view)?;
        let links = view.entries().map(|entry| Ok(Link::new(&entry?))).collect::<Result<_>>()?;
        Ok(LinkBatch { links, next_cursor: repr.next_cursor, end: repr.end })
    }

    /// Every link, batch after batch.
    ///
    /// # Errors
    /// As [`Client::links_batch`].
    pub fn links(&mut self, module: Option<u32>, protocol_buffer: bool) -> Result<Vec<Link>> {
        let mut links = Vec::new();
        let mut cursor = 0;
        loop {
            let batch = self.links_batch(module, cursor, protocol_buffer)?;
            links.extend(batch.links);
            if batch.end || batch.next_cursor == cursor {
                return Ok(links);
            }
            cursor = batch.next_cursor;
        }
    }

    /// The hook chain, bottom up (`LIST_HOOKS`).
    ///
    /// # Errors
    /// The transport's errors; a malformed answer.
    pub fn hooks(&mut self) -> Result<Vec<HookEntryRepr>> {
        let answer = self.header_only(IOCTL_LIST_HOOKS, 4096)?;
        let view = HookList::new_unchecked(answer);
        HookListRepr::parse(&view)?;
        view.entries().map(|entry| Ok(entry?)).collect()
    }

    fn stats(&mut self, target: Target) -> Result<&[u8]> {
        let mut input = [0u8; 24];
        ScopeRequestRepr { target }.emit(&mut ScopeRequest::new_unchecked(&mut input[..]))?;
        self.call(IOCTL_QUERY_STATS, &input, 1024)
    }

    /// A module's statistics.
    ///
    /// # Errors
    /// [`ClientError::Driver`] with `STATUS_NOT_FOUND` for an unknown module.
    pub fn module_stats(&mut self, module: u32) -> Result<ModuleStatsRepr> {
        let answer = self.stats(Target::Module(module))?;
        Ok(ModuleStatsRepr::parse(&WireModuleStats::new_unchecked(answer))?)
    }

    /// A link's statistics.
    ///
    /// # Errors
    /// [`ClientError::Driver`] with `STATUS_NOT_FOUND` for an unknown link.
    pub fn link_stats(&mut self, link: u64) -> Result<LinkStatsRepr> {
        let answer = self.stats(Target::Link(link))?;
        Ok(LinkStatsRepr::parse(&WireLinkStats::new_unchecked(answer))?)
    }

    /// A hook's statistics.
    ///
    /// # Errors
    /// [`ClientError::Driver`] with `STATUS_NOT_FOUND` for an unknown hook.
    pub fn hook_stats(&mut self, hook: u64) -> Result<HookStatsRepr> {
        let answer = self.stats(Target::Hook(hook))?;
        Ok(HookStatsRepr::parse(&WireHookStats::new_unchecked(answer))?)
    }

    /// Zeroes the statistics of `target` (`RESET_STATS`; needs write access).
    ///
    /// # Errors
    /// The transport's errors; `STATUS_NOT_FOUND`, `STATUS_ACCESS_DENIED`.
    pub fn reset_stats(&mut self, target: Target) -> Result<()> {
        let mut input = [0u8; 24];
        ScopeRequestRepr { target }.emit(&mut ScopeRequest::new_unchecked(&mut input[..]))?;
        self.call(IOCTL_RESET_STATS, &input, 0).map(|_| ())
    }

    /// Makes this handle an event subscriber with a ring of `capacity` events of the kinds in
    /// `mask` (`SUBSCRIBE_EVENTS`).
    ///
    /// # Errors
    /// The transport's errors; `STATUS_TOO_MANY_SESSIONS`, `STATUS_INVALID_DEVICE_STATE`
    /// (subscribed already).
    pub fn subscribe(&mut self, capacity: u32, mask: u32) -> Result<SubscriptionRepr> {
        let mut input = [0u8; 16];
        SubscribeRepr { capacity, mask }.emit(&mut Subscribe::new_unchecked(&mut input[..]))?;
        let answer = self.call(IOCTL_SUBSCRIBE_EVENTS, &input, 24)?;
        Ok(SubscriptionRepr::parse(&WireSubscription::new_unchecked(answer))?)
    }

    /// Reads up to `max` events (`READ_EVENTS`). With `wait`, a read with nothing queued pends
    /// (the inverted call) for at most that long; `Some(Duration::MAX)` waits as long as it takes.
    /// Without it, the read returns at once.
    ///
    /// # Errors
    /// The transport's errors; `STATUS_INVALID_DEVICE_STATE` when not subscribed.
    pub fn read_events(&mut self, max: u32, wait: Option<Duration>) -> Result<EventBatch> {
        let max = max.clamp(1, MAX_READ_BATCH);
        let mut input = [0u8; 16];
        ReadRequestRepr { max_records: max, wait: wait.is_some() }.emit(&mut ReadRequest::new_unchecked(&mut input[..]))?;
        self.output.resize(24 + 80 * max as usize, 0);
        let written = match wait {
            None => Some(self.transport.call(IOCTL_READ_EVENTS, &input, &mut self.output)?),
            Some(timeout) => {
                let timeout = (timeout != Duration::MAX).then_some(timeout);
                self.transport.call_pending(IOCTL_READ_EVENTS, &input, &mut self.output, timeout)?
            }
        };
        let Some(written) = written else { return Ok(EventBatch { events: Vec::new(), lost: 0 }) };
        event_batch(self.output.get(..written).ok_or(ClientError::Malformed(wanlayer_proto::Error::BadSize))?)
    }

    /// Ends this handle's subscription (`UNSUBSCRIBE_EVENTS`).
    ///
    /// # Errors
    /// The transport's errors; `STATUS_INVALID_DEVICE_STATE` when not subscribed.
    pub fn unsubscribe(&mut self) -> Result<()> {
        self.header_only(IOCTL_UNSUBSCRIBE_EVENTS, 0).map(|_| ())
    }

    /// Replaces the whole rule set with the compiled set `blob` (empty: no rules) at `altitude`,
    /// if the set in force is the one `expected` names (`SET_RULES`; needs write access).
    /// Returns the new version.
    ///
    /// # Errors
    /// The transport's errors; `STATUS_TRANSACTIONAL_CONFLICT` when the set changed since it was
    /// read, `STATUS_INVALID_PARAMETER` for a set the driver refuses, `STATUS_NOT_SUPPORTED` for a
    /// `divert` rule, `STATUS_INSUFFICIENT_RESOURCES`.
    pub fn set_rules(&mut self, expected: Expected, altitude: u32, blob: &[u8]) -> Result<u64> {
        let request = RulesSetRepr { expected, altitude, blob };
        let mut input = vec![0u8; request.buffer_len()];
        request.emit(&mut RulesSet::new_unchecked(&mut input[..]))?;
        let answer = self.call(IOCTL_SET_RULES, &input, RulesVersion::<&[u8]>::LEN)?;
        Ok(RulesVersionRepr::parse(&RulesVersion::new_unchecked(answer))?.version)
    }

    /// The rule set in force, with its compiled bytes (`GET_RULES`).
    ///
    /// # Errors
    /// The transport's errors; a malformed answer.
    pub fn rules(&mut self) -> Result<RulesSnapshot> {
        let mut room = LIST_ROOM;
        // The set may grow between two reads; a few tries are plenty.
        for _ in 0..4 {
            let answer = self.header_only(IOCTL_GET_RULES, room)?;
            let repr = RulesInfoRepr::parse(&RulesInfo::new_unchecked(answer))?;
            match repr.blob {
                Some(blob) => {
                    return Ok(RulesSnapshot { version: repr.version, altitude: repr.altitude, rules: repr.rules, blob: blob.to_vec() })
                }
                None => room = room.max(RulesInfo::<&[u8]>::LEN + repr.blob_len as usize),
            }
        }
        Err(ClientError::Driver(Status::BufferTooSmall))
    }

    /// Every rule's counters, of one version of the set (`RULE_STATS`, batch after batch; starts
    /// again when the set is replaced meanwhile).
    ///
    /// # Errors
    /// The transport's errors; a malformed answer.
    pub fn rule_stats(&mut self) -> Result<RuleStats> {
        let mut stats = RuleStats { version: 0, rules: Vec::new() };
        loop {
            let mut input = [0u8; 16];
            let first = u32::try_from(stats.rules.len()).map_err(|_| ClientError::Malformed(wanlayer_proto::Error::BadCount))?;
            RuleStatsQueryRepr { first }.emit(&mut RuleStatsQuery::new_unchecked(&mut input[..]))?;
            let answer = self.call(IOCTL_RULE_STATS, &input, LIST_ROOM)?;
            let view = RuleStatsList::new_unchecked(answer);
            let repr = RuleStatsListRepr::parse(&view)?;
            if first != 0 && repr.version != stats.version {
                stats = RuleStats { version: 0, rules: Vec::new() };
                continue;
            }
            stats.version = repr.version;
            for entry in view.entries() {
                stats.rules.push(entry?);
            }
            if stats.rules.len() >= repr.total as usize || repr.count == 0 {
                return Ok(stats);
            }
        }
    }

    /// Starts capturing `target` (all, a module or a link) into this handle's ring
    /// (`CAPTURE_START`; needs write access).
    ///
    /// # Errors
    /// The transport's errors; `STATUS_NOT_FOUND`, `STATUS_TOO_MANY_SESSIONS`,
    /// `STATUS_INVALID_DEVICE_STATE` (capturing already).
    pub fn start_capture(&mut self, target: Target, snap_len: u32, slots: u32) -> Result<CaptureSessionRepr> {
        let mut input = [0u8; 32];
        CaptureStartRepr { target, snap_len, slots }.emit(&mut CaptureStart::new_unchecked(&mut input[..]))?;
        let answer = self.call(IOCTL_CAPTURE_START, &input, 40)?;
        Ok(CaptureSessionRepr::parse(&CaptureSession::new_unchecked(answer))?)
    }

    /// Reads up to `max` captured frames (`CAPTURE_READ`); never waits.
    ///
    /// # Errors
    /// The transport's errors; `STATUS_INVALID_DEVICE_STATE` when not capturing.
    pub fn read_capture(&mut self, max: u32) -> Result<CaptureBatch> {
        let mut input = [0u8; 16];
        ReadRequestRepr { max_records: max.clamp(1, MAX_READ_BATCH), wait: false }.emit(&mut ReadRequest::new_unchecked(&mut input[..]))?;
        let mut room = CAPTURE_ROOM;
        loop {
            match self.call(IOCTL_CAPTURE_READ, &input, room) {
                Err(ClientError::Driver(Status::BufferTooSmall)) if room < CAPTURE_ROOM_MAX => room *= 2,
                Err(error) => return Err(error),
                Ok(answer) => {
                    let view = WireCaptureBatch::new_unchecked(answer);
                    let repr = CaptureBatchRepr::parse(&view)?;
                    let frames = view.records().map(|record| Ok(CapturedFrame::new(&record?))).collect::<Result<_>>()?;
                    return Ok(CaptureBatch { frames, captured: repr.captured, dropped: repr.dropped, truncated: repr.truncated });
                }
            }
        }
    }

    /// Stops this handle's capture (`CAPTURE_STOP`); frames not read are discarded.
    ///
    /// # Errors
    /// The transport's errors; `STATUS_INVALID_DEVICE_STATE` when not capturing.
    pub fn stop_capture(&mut self) -> Result<()> {
        self.header_only(IOCTL_CAPTURE_STOP, 0).map(|_| ())
    }

    /// Injects an Ethernet `frame` on `link`, down to NdisWan (`Send`) or up to the IP layer
    /// (`Receive`); its MAC addresses are replaced by the link's (`INJECT`; needs write access).
    ///
    /// # Errors
    /// The transport's errors; `STATUS_NOT_FOUND` (no such link), `STATUS_INVALID_DEVICE_STATE`
    /// (module not running), a malformed frame.
    pub fn inject(&mut self, module: Option<u32>, link: u64, direction: Direction, frame: &[u8]) -> Result<()> {
        let repr = InjectRepr { module, direction, link_id: link, frame };
        let mut input = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Inject::new_unchecked(&mut input[..]))?;
        self.call(IOCTL_INJECT, &input, 0).map(|_| ())
    }
}

/// Parses a `READ_EVENTS` answer (blocking reads here, asynchronous ones in `events_async`).
pub(crate) fn event_batch(answer: &[u8]) -> Result<EventBatch> {
    let view = WireEventBatch::new_unchecked(answer);
    let repr = EventBatchRepr::parse(&view)?;
    let events = view.records().map(|record| record.map_err(ClientError::from)).collect::<Result<_>>()?;
    Ok(EventBatch { events, lost: repr.lost })
}
