//! What the client returns: owned, printable, serialisable (`--json`) forms of the driver's
//! answers.

use serde::Serialize;
use wanlayer_proto::{
    Direction, EventBody, EventRecordRepr, Features, HookEntryRepr, HookStatsRepr, LinkEntryRepr, LinkEventRepr, LinkStatsRepr,
    ModuleEntryRepr, ModuleKind, ModuleState, ModuleStatsRepr, Quality, VerdictStats, VersionInfoRepr, CAP_CAPTURE, CAP_EVENTS, CAP_INJECT,
    CAP_LINKS, CAP_RESET, CAP_RULES, CAP_STATS, DROP_REASONS,
};

/// A module identity as tools print it: `slot.generation`.
pub fn module_name(id: u32) -> String {
    format!("{}.{}", id & 0xffff, id >> 16)
}

/// A MAC address as Windows tools print it.
pub fn mac(bytes: [u8; 6]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join("-")
}

fn kind_name(kind: ModuleKind) -> String {
    match kind {
        ModuleKind::NdisWanIp => "ndiswan-ip".into(),
        ModuleKind::NdisWanIpv6 => "ndiswan-ipv6".into(),
        ModuleKind::Other => "other".into(),
        ModuleKind::Unknown(n) => format!("unknown({n})"),
    }
}

fn state_name(state: ModuleState) -> String {
    match state {
        ModuleState::Attaching => "attaching".into(),
        ModuleState::Paused => "paused".into(),
        ModuleState::Restarting => "restarting".into(),
        ModuleState::Running => "running".into(),
        ModuleState::Pausing => "pausing".into(),
        ModuleState::Detached => "detached".into(),
        ModuleState::Unknown(n) => format!("unknown({n})"),
    }
}

fn protocol_name(ethertype: u16) -> String {
    match ethertype {
        0x0800 => "IPv4".into(),
        0x86DD => "IPv6".into(),
        other => format!("0x{other:04X}"),
    }
}

/// The driver's version and what it can do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// The control interface version.
    pub interface_version: u16,
    /// The driver version, `major.minor.patch`.
    pub driver_version: String,
    /// Module slots.
    pub max_modules: u32,
    /// The engine's own event queue capacity.
    pub event_capacity: u32,
    /// What the driver answers (`links`, `stats`, `reset`, `events`, `capture`, `inject`).
    pub capabilities: Vec<&'static str>,
    /// The driver's limits, when it reports them.
    pub limits: Option<Limits>,
}

/// The driver's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Event subscriber slots.
    pub max_subscribers: u16,
    /// Capture session slots.
    pub max_capture_sessions: u16,
    /// Largest subscriber ring, in events.
    pub max_subscriber_capacity: u32,
    /// Largest snap length.
    pub max_snap_len: u32,
    /// Largest capture ring, in bytes.
    pub max_capture_bytes: u32,
    /// Most links per listing batch.
    pub max_link_batch: u16,
    /// Hook slots.
    pub max_hooks: u16,
}

impl From<VersionInfoRepr> for VersionInfo {
    fn from(repr: VersionInfoRepr) -> Self {
        let [major, minor, patch] = repr.driver_version;
        let names = [
            (CAP_LINKS, "links"),
            (CAP_STATS, "stats"),
            (CAP_RESET, "reset"),
            (CAP_EVENTS, "events"),
            (CAP_CAPTURE, "capture"),
            (CAP_INJECT, "inject"),
            (CAP_RULES, "rules"),
        ];
        let capabilities = repr.features.map_or(0, |f| f.capabilities);
        Self {
            interface_version: repr.interface_version,
            driver_version: format!("{major}.{minor}.{patch}"),
            max_modules: repr.max_modules,
            event_capacity: repr.event_capacity,
            capabilities: names.iter().filter(|(bit, _)| capabilities & bit != 0).map(|(_, name)| *name).collect(),
            limits: repr.features.map(|f: Features| Limits {
                max_subscribers: f.max_subscribers,
                max_capture_sessions: f.max_capture_sessions,
                max_subscriber_capacity: f.max_subscriber_capacity,
                max_snap_len: f.max_snap_len,
                max_capture_bytes: f.max_capture_bytes,
                max_link_batch: f.max_link_batch,
                max_hooks: f.max_hooks,
            }),
        }
    }
}

/// An attached filter module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModuleInfo {
    /// Its identity.
    pub id: u32,
    /// Its identity as `slot.generation`.
    pub name: String,
    /// `ndiswan-ip`, `ndiswan-ipv6` or `other`.
    pub kind: String,
    /// Its state.
    pub state: String,
    /// The adapter's MAC address.
    pub mac_address: String,
    /// The adapter's interface index.
    pub if_index: u32,
    /// Live WAN links.
    pub links: u32,
    /// Packets held by hooks.
    pub taken: u32,
    /// Packets the module originated that are not back.
    pub in_flight: u32,
}

impl From<ModuleEntryRepr> for ModuleInfo {
    fn from(repr: ModuleEntryRepr) -> Self {
        Self {
            id: repr.id,
            name: module_name(repr.id),
            kind: kind_name(repr.kind),
            state: state_name(repr.state),
            mac_address: mac(repr.mac_address),
            if_index: repr.if_index,
            links: repr.links,
            taken: repr.taken,
            in_flight: repr.in_flight,
        }
    }
}

/// Traffic of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Drops.
    pub drops: u64,
}

impl From<wanlayer_proto::TrafficRepr> for Traffic {
    fn from(repr: wanlayer_proto::TrafficRepr) -> Self {
        Self { packets: repr.packets, bytes: repr.bytes, drops: repr.drops }
    }
}

/// A live WAN link with every field of its latest line up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkInfo {
    /// The link's identity.
    pub id: u64,
    /// Its module.
    pub module: u32,
    /// When it came up (driver clock, ns).
    pub up_since_ns: u64,
    /// `RemoteAddress`.
    pub remote_address: String,
    /// `LocalAddress`.
    pub local_address: String,
    /// `IPv4`, `IPv6` or the EtherType.
    pub protocol: String,
    /// Speed in bit/s.
    pub speed_bps: u64,
    /// `MaximumTotalSize` as indicated.
    pub maximum_total_size: u32,
    /// `MaximumTotalSize` as reported upward.
    pub reported_total_size: u32,
    /// `Quality`.
    pub quality: String,
    /// `SendWindow`.
    pub send_window: u16,
    /// Line ups seen.
    pub line_ups: u32,
    /// `DeviceName`.
    pub device_name: String,
    /// Best-effort IPv4 address (undocumented buffer layout).
    pub best_effort_ipv4: Option<String>,
    /// Best-effort IPv6 interface identifier (undocumented buffer layout).
    pub best_effort_ipv6_iid: Option<String>,
    /// Protocol buffer bytes the driver keeps.
    pub protocol_buffer_len: u32,
    /// The driver cut the protocol buffer.
    pub protocol_buffer_truncated: bool,
    /// The raw protocol buffer, hexadecimal, when asked for.
    pub protocol_buffer: Option<String>,
    /// Sends.
    pub send: Traffic,
    /// Receives.
    pub receive: Traffic,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl LinkInfo {
    /// The owned form of an entry; `with_buffer` keeps the raw protocol buffer.
    pub fn from_entry(entry: &LinkEntryRepr<'_>, with_buffer: bool) -> Self {
        Self {
            id: entry.link_id,
            module: entry.module,
            up_since_ns: entry.up_since,
            remote_address: mac(entry.remote_address),
            local_address: mac(entry.local_address),
            protocol: protocol_name(entry.protocol_type),
            speed_bps: u64::from(entry.link_speed_100bps) * 100,
            maximum_total_size: entry.maximum_total_size,
            reported_total_size: entry.reported_total_size,
            quality: match entry.quality {
                Quality::Raw => "raw".into(),
                Quality::ErrorControl => "error-control".into(),
                Quality::Reliable => "reliable".into(),
                Quality::Unknown(n) => format!("unknown({n})"),
            },
            send_window: entry.send_window,
            line_ups: entry.line_ups,
            device_name: entry.device_name_chars().collect(),
            best_effort_ipv4: entry.ipv4.map(|a| format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])),
            best_effort_ipv6_iid: entry.ipv6_iid.map(|iid| iid.chunks(2).map(hex).collect::<Vec<_>>().join(":")),
            protocol_buffer_len: entry.buffer_kept,
            protocol_buffer_truncated: entry.buffer_truncated,
            protocol_buffer: with_buffer.then(|| hex(entry.protocol_buffer)),
            send: entry.send.into(),
            receive: entry.receive.into(),
        }
    }
}

/// One batch of a link enumeration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkBatch {
    /// The links, ascending ids.
    pub links: Vec<LinkInfo>,
    /// The cursor of the next batch.
    pub next_cursor: u64,
    /// True when the enumeration is complete.
    pub end: bool,
}

/// A registered hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookInfo {
    /// Its identity.
    pub id: u64,
    /// Its altitude.
    pub altitude: u32,
    /// Its name.
    pub name: String,
}

impl From<HookEntryRepr> for HookInfo {
    fn from(repr: HookEntryRepr) -> Self {
        Self { id: repr.id, altitude: repr.altitude, name: repr.name.as_str().to_owned() }
    }
}

/// One direction of a module's statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirectionStats {
    /// Packets seen.
    pub packets: u64,
    /// Bytes seen.
    pub bytes: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Drops by reason.
    pub drops_by_reason: Vec<(&'static str, u64)>,
    /// Packets that matched no link.
    pub unmatched: u64,
    /// Packets a hook modified.
    pub modified: u64,
    /// Packets a hook took.
    pub taken: u64,
    /// Taken packets handed back.
    pub reinjected: u64,
    /// Receives copied because they were lent.
    pub copied_for_resources: u64,
    /// Packets injected through the control device.
    pub injected: u64,
}

impl From<wanlayer_proto::DirectionStats> for DirectionStats {
    fn from(repr: wanlayer_proto::DirectionStats) -> Self {
        Self {
            packets: repr.packets,
            bytes: repr.bytes,
            drops: repr.drops,
            drops_by_reason: DROP_REASONS.iter().copied().zip(repr.drops_by_reason).collect(),
            unmatched: repr.unmatched,
            modified: repr.modified,
            taken: repr.taken,
            reinjected: repr.reinjected,
            copied_for_resources: repr.copied_for_resources,
            injected: repr.injected,
        }
    }
}

/// A module's statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModuleStats {
    /// The module.
    pub module: u32,
    /// Sends.
    pub send: DirectionStats,
    /// Receives.
    pub receive: DirectionStats,
    /// Line ups.
    pub line_ups: u64,
    /// Line ups not tracked (no memory).
    pub line_ups_untracked: u64,
    /// Device names not kept (no memory).
    pub device_names_lost: u64,
    /// Line downs.
    pub line_downs: u64,
    /// Line downs of unknown links.
    pub line_downs_unknown: u64,
    /// Malformed status indications.
    pub malformed_status: u64,
    /// Injections refused.
    pub injections_refused: u64,
}

impl From<ModuleStatsRepr> for ModuleStats {
    fn from(repr: ModuleStatsRepr) -> Self {
        Self {
            module: repr.module,
            send: repr.send.into(),
            receive: repr.receive.into(),
            line_ups: repr.line_ups,
            line_ups_untracked: repr.line_ups_untracked,
            device_names_lost: repr.device_names_lost,
            line_downs: repr.line_downs,
            line_downs_unknown: repr.line_downs_unknown,
            malformed_status: repr.malformed_status,
            injections_refused: repr.injections_refused,
        }
    }
}

/// A link's statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// The link.
    pub link: u64,
    /// Its module.
    pub module: u32,
    /// Sends.
    pub send: Traffic,
    /// Receives.
    pub receive: Traffic,
}

impl From<LinkStatsRepr> for LinkStats {
    fn from(repr: LinkStatsRepr) -> Self {
        Self { link: repr.link, module: repr.module, send: repr.send.into(), receive: repr.receive.into() }
    }
}

/// What a hook did in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Verdicts {
    /// Packets shown.
    pub seen: u64,
    /// Bytes shown.
    pub bytes: u64,
    /// Passed.
    pub passed: u64,
    /// Dropped.
    pub dropped: u64,
    /// Modified.
    pub modified: u64,
    /// Taken.
    pub taken: u64,
}

impl From<VerdictStats> for Verdicts {
    fn from(v: VerdictStats) -> Self {
        Self { seen: v.seen, bytes: v.bytes, passed: v.passed, dropped: v.dropped, modified: v.modified, taken: v.taken }
    }
}

/// A hook's statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookStats {
    /// The hook.
    pub hook: u64,
    /// Its altitude.
    pub altitude: u32,
    /// Sends.
    pub send: Verdicts,
    /// Receives.
    pub receive: Verdicts,
    /// Line ups seen.
    pub line_ups: u64,
    /// Sizes lowered.
    pub sizes_lowered: u64,
    /// Line downs seen.
    pub line_downs: u64,
}

impl From<HookStatsRepr> for HookStats {
    fn from(repr: HookStatsRepr) -> Self {
        Self {
            hook: repr.hook,
            altitude: repr.altitude,
            send: repr.send.into(),
            receive: repr.receive.into(),
            line_ups: repr.line_ups,
            sizes_lowered: repr.sizes_lowered,
            line_downs: repr.line_downs,
        }
    }
}

/// A link as an event carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventLink {
    /// The link.
    pub id: u64,
    /// `RemoteAddress`.
    pub remote_address: String,
    /// `LocalAddress`.
    pub local_address: String,
    /// `IPv4` or `IPv6`.
    pub protocol: String,
    /// Speed in bit/s.
    pub speed_bps: u64,
    /// `MaximumTotalSize` as indicated.
    pub maximum_total_size: u32,
    /// `MaximumTotalSize` as reported upward.
    pub reported_total_size: u32,
}

impl From<LinkEventRepr> for EventLink {
    fn from(link: LinkEventRepr) -> Self {
        Self {
            id: link.link_id,
            remote_address: mac(link.remote_address),
            local_address: mac(link.local_address),
            protocol: protocol_name(link.protocol_type),
            speed_bps: u64::from(link.link_speed_100bps) * 100,
            maximum_total_size: link.maximum_total_size,
            reported_total_size: link.reported_total_size,
        }
    }
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The engine's sequence number.
    pub sequence: u64,
    /// When (driver clock, ns).
    pub time_ns: u64,
    /// `line-up`, `module-attached`, ...
    pub kind: &'static str,
    /// The module, as `slot.generation` (none for hook events).
    pub module: Option<String>,
    /// The link of a line event.
    pub link: Option<EventLink>,
    /// What a module attached to.
    pub module_kind: Option<String>,
    /// Links still up when a module detached.
    pub links_dropped: Option<u64>,
    /// The hook of a hook event.
    pub hook: Option<HookInfo>,
    /// The rule set of a rules event.
    pub rules: Option<RulesChange>,
}

/// What a rules event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RulesChange {
    /// The altitude of the set.
    pub altitude: u32,
    /// The new set's version (replaced).
    pub version: Option<u64>,
    /// Rules in the new set (replaced).
    pub rules: Option<u32>,
    /// The loader's error code (refused).
    pub error: Option<u32>,
    /// Bytes of the refused set (refused).
    pub blob_len: Option<u32>,
}

impl From<EventRecordRepr> for Event {
    fn from(record: EventRecordRepr) -> Self {
        let mut event = Event {
            sequence: record.sequence,
            time_ns: record.time_ns,
            kind: record.body.kind().name(),
            module: (record.module != 0).then(|| module_name(record.module)),
            link: None,
            module_kind: None,
            links_dropped: None,
            hook: None,
            rules: None,
        };
        match record.body {
            EventBody::ModuleAttached { kind } => event.module_kind = Some(kind_name(kind)),
            EventBody::ModuleDetached { links_dropped } => event.links_dropped = Some(links_dropped),
            EventBody::LineUp(link) | EventBody::LineUpdated(link) | EventBody::LineDown(link) => event.link = Some(link.into()),
            EventBody::HookAdded { id, altitude, name } => event.hook = Some(HookInfo { id, altitude, name: name.as_str().into() }),
            EventBody::HookRemoved { id, name } => event.hook = Some(HookInfo { id, altitude: 0, name: name.as_str().into() }),
            EventBody::RulesReplaced { version, altitude, rules } => {
                event.rules = Some(RulesChange { altitude, version: Some(version), rules: Some(rules), error: None, blob_len: None });
            }
            EventBody::RulesRefused { error, altitude, blob_len } => {
                event.rules = Some(RulesChange { altitude, version: None, rules: None, error: Some(error), blob_len: Some(blob_len) });
            }
            EventBody::ModulePaused | EventBody::ModuleRestarted | EventBody::Unknown(_) => {}
        }
        event
    }
}

/// One batch of events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventBatch {
    /// The events, oldest first.
    pub events: Vec<Event>,
    /// Events this subscriber lost so far (its ring was full).
    pub lost: u64,
}

/// The subscription a handle got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// Ring capacity in events.
    pub capacity: u32,
    /// Kinds wanted.
    pub mask: u32,
    /// The sequence number of the next event.
    pub next_sequence: u64,
}

/// A captured frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CapturedFrame {
    /// The module.
    pub module: u32,
    /// The link, `None` when the frame matched none.
    pub link: Option<u64>,
    /// When (driver clock, ns).
    pub time_ns: u64,
    /// The frame's length.
    pub original_len: u32,
    /// `send` (down to NdisWan) or `receive` (up to the IP layer).
    pub direction: &'static str,
    /// Injected through the control device.
    pub injected: bool,
    /// The captured bytes.
    #[serde(skip)]
    pub data: Vec<u8>,
}

impl CapturedFrame {
    /// True for frames going down to NdisWan.
    pub fn is_send(&self) -> bool {
        self.direction == "send"
    }

    pub(crate) fn from_record(record: &wanlayer_proto::CaptureRecordRepr<'_>) -> Self {
        Self {
            module: record.module,
            link: record.link_id,
            time_ns: record.time_ns,
            original_len: record.original_len,
            direction: if record.direction == Direction::Send { "send" } else { "receive" },
            injected: record.injected,
            data: record.data.to_vec(),
        }
    }
}

/// One batch of captured frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

/// A capture as started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CaptureInfo {
    /// Bytes kept of each frame.
    pub snap_len: u32,
    /// Ring records.
    pub slots: u32,
    /// The driver clock at the start (ns).
    pub start_time_ns: u64,
}

/// The rule set in force, as read back (`GET_RULES`).
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

/// One rule's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RuleStat {
    /// The rule's id.
    pub id: u32,
    /// Its action: `pass`, `drop`, `count`, `capture`.
    pub action: &'static str,
    /// Sends matched.
    pub send_packets: u64,
    /// Bytes of the sends matched.
    pub send_bytes: u64,
    /// Receives matched.
    pub receive_packets: u64,
    /// Bytes of the receives matched.
    pub receive_bytes: u64,
}

impl From<wanlayer_proto::RuleStatsEntryRepr> for RuleStat {
    fn from(entry: wanlayer_proto::RuleStatsEntryRepr) -> Self {
        Self {
            id: entry.id,
            action: entry.action.name(),
            send_packets: entry.send.0,
            send_bytes: entry.send.1,
            receive_packets: entry.receive.0,
            receive_bytes: entry.receive.1,
        }
    }
}

/// Every rule's counters, of one version of the set (`RULE_STATS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// The set's version.
    pub version: u64,
    /// The rules, in set order.
    pub rules: Vec<RuleStat>,
}
