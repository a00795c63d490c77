//! `serde::Serialize` for the answers tools print (feature `serde`): the parsed records are the
//! one definition of what the driver said, and this is how they look as JSON (`wanlayerctl
//! --json`). No allocation: text values are written with `collect_str` through the formats of
//! [`display`](crate::display), so identifiers, addresses and names read exactly as the text
//! output prints them — a module or hook id is its `slot.generation` string, which `wanlayerctl`
//! accepts back as input.

use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::Serialize;

use crate::display::{
    capability_names, BitRate, HexText, HookIdText, InterfaceIdText, Ipv4Text, MacText, ModuleIdText, ProtocolText, Utf16Text,
};
use crate::{
    EventBody, EventRecordRepr, Features, HookName, LinkEntryRepr, LinkEventRepr, ModuleEntryRepr, RuleStatsEntryRepr,
    VersionInfoRepr, DROP_REASONS,
};

/// Serialises `value` as the string its `Display` writes.
struct AsText<T>(T);

impl<T: core::fmt::Display> Serialize for AsText<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A module id as its `slot.generation` text (`serialize_with` of the derived records).
pub(crate) fn module_id<S: Serializer>(id: &u32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&ModuleIdText(*id))
}

/// A hook id as its `slot.generation` text (`serialize_with` of the derived records).
pub(crate) fn hook_id<S: Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&HookIdText(*id))
}

/// Drops by reason as `[name, count]` pairs, in [`DROP_REASONS`] order.
pub(crate) fn drops_by_reason<S: Serializer>(counts: &[u64; 5], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(DROP_REASONS.len()))?;
    DROP_REASONS.iter().zip(counts).try_for_each(|(reason, count)| seq.serialize_element(&(reason, count)))?;
    seq.end()
}

impl Serialize for HookName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The capability bits as their names.
struct Capabilities(u32);

impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(capability_names(self.0).count()))?;
        capability_names(self.0).try_for_each(|name| seq.serialize_element(name))?;
        seq.end()
    }
}

/// The limits of [`Features`] (its capabilities are listed apart).
struct Limits(Features);

impl Serialize for Limits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = &self.0;
        let mut s = serializer.serialize_struct("Limits", 7)?;
        s.serialize_field("max_subscribers", &f.max_subscribers)?;
        s.serialize_field("max_capture_sessions", &f.max_capture_sessions)?;
        s.serialize_field("max_subscriber_capacity", &f.max_subscriber_capacity)?;
        s.serialize_field("max_snap_len", &f.max_snap_len)?;
        s.serialize_field("max_capture_bytes", &f.max_capture_bytes)?;
        s.serialize_field("max_link_batch", &f.max_link_batch)?;
        s.serialize_field("max_hooks", &f.max_hooks)?;
        s.end()
    }
}

/// `major.minor.patch`.
struct DriverVersion([u16; 3]);

impl core::fmt::Display for DriverVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [major, minor, patch] = self.0;
        write!(f, "{major}.{minor}.{patch}")
    }
}

impl Serialize for VersionInfoRepr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("VersionInfo", 6)?;
        s.serialize_field("interface_version", &self.interface_version)?;
        s.serialize_field("driver_version", &AsText(DriverVersion(self.driver_version)))?;
        s.serialize_field("max_modules", &self.max_modules)?;
        s.serialize_field("event_capacity", &self.event_capacity)?;
        s.serialize_field("capabilities", &Capabilities(self.features.map_or(0, |f| f.capabilities)))?;
        s.serialize_field("limits", &self.features.map(Limits))?;
        s.end()
    }
}

impl Serialize for ModuleEntryRepr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Module", 8)?;
        s.serialize_field("id", &AsText(ModuleIdText(self.id)))?;
        s.serialize_field("kind", &AsText(self.kind))?;
        s.serialize_field("state", &AsText(self.state))?;
        s.serialize_field("mac_address", &AsText(MacText(self.mac_address)))?;
        s.serialize_field("if_index", &self.if_index)?;
        s.serialize_field("links", &self.links)?;
        s.serialize_field("taken", &self.taken)?;
        s.serialize_field("in_flight", &self.in_flight)?;
        s.end()
    }
}

impl Serialize for LinkEntryRepr<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Link", 20)?;
        s.serialize_field("id", &self.link_id)?;
        s.serialize_field("module", &AsText(ModuleIdText(self.module)))?;
        s.serialize_field("up_since_ns", &self.up_since)?;
        s.serialize_field("remote_address", &AsText(MacText(self.remote_address)))?;
        s.serialize_field("local_address", &AsText(MacText(self.local_address)))?;
        s.serialize_field("protocol", &AsText(ProtocolText(self.protocol_type)))?;
        s.serialize_field("speed_bps", &BitRate::from_100bps(self.link_speed_100bps).0)?;
        s.serialize_field("maximum_total_size", &self.maximum_total_size)?;
        s.serialize_field("reported_total_size", &self.reported_total_size)?;
        s.serialize_field("quality", &AsText(self.quality))?;
        s.serialize_field("send_window", &self.send_window)?;
        s.serialize_field("line_ups", &self.line_ups)?;
        s.serialize_field("device_name", &AsText(Utf16Text(self.device_name)))?;
        s.serialize_field("best_effort_ipv4", &self.ipv4.map(|address| AsText(Ipv4Text(address))))?;
        s.serialize_field("best_effort_ipv6_iid", &self.ipv6_iid.map(|iid| AsText(InterfaceIdText(iid))))?;
        s.serialize_field("protocol_buffer_len", &self.buffer_kept)?;
        s.serialize_field("protocol_buffer_truncated", &self.buffer_truncated)?;
        let buffer = (!self.protocol_buffer.is_empty()).then_some(AsText(HexText(self.protocol_buffer)));
        s.serialize_field("protocol_buffer", &buffer)?;
        s.serialize_field("send", &self.send)?;
        s.serialize_field("receive", &self.receive)?;
        s.end()
    }
}


impl Serialize for RuleStatsEntryRepr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("RuleStat", 6)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("action", self.action.name())?;
        s.serialize_field("send_packets", &self.send.0)?;
        s.serialize_field("send_bytes", &self.send.1)?;
        s.serialize_field("receive_packets", &self.receive.0)?;
        s.serialize_field("receive_bytes", &self.receive.1)?;
        s.end()
    }
}

impl Serialize for LinkEventRepr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("EventLink", 7)?;
        s.serialize_field("id", &self.link_id)?;
        s.serialize_field("remote_address", &AsText(MacText(self.remote_address)))?;
        s.serialize_field("local_address", &AsText(MacText(self.local_address)))?;
        s.serialize_field("protocol", &AsText(ProtocolText(self.protocol_type)))?;
        s.serialize_field("speed_bps", &BitRate::from_100bps(self.link_speed_100bps).0)?;
        s.serialize_field("maximum_total_size", &self.maximum_total_size)?;
        s.serialize_field("reported_total_size", &self.reported_total_size)?;
        s.end()
    }
}

/// The hook of a hook event: a removed hook's event carries no altitude, so none is shown.
struct EventHook {
    id: u64,
    altitude: Option<u32>,
    name: HookName,
}

impl Serialize for EventHook {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("EventHook", 3)?;
        s.serialize_field("id", &AsText(HookIdText(self.id)))?;
        match self.altitude {
            Some(altitude) => s.serialize_field("altitude", &altitude)?,
            None => s.skip_field("altitude")?,
        }
        s.serialize_field("name", &self.name)?;
        s.end()
    }
}

/// What a rules event says: `version` and `rules` when replaced, `error` and `blob_len` when
/// refused.
#[derive(Serialize)]
struct RulesChange {
    altitude: u32,
    version: Option<u64>,
    rules: Option<u32>,
    error: Option<u32>,
    blob_len: Option<u32>,
}

/// An event as one flat object: `sequence`, `time_ns`, `kind`, `module` (null for hook and rules
/// events), and of `link`, `module_kind`, `links_dropped`, `hook` and `rules` the one its kind
/// carries (the others null).
impl Serialize for EventRecordRepr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (mut link, mut module_kind, mut links_dropped, mut hook, mut rules) = (None, None, None, None, None);
        match self.body {
            EventBody::ModuleAttached { kind } => module_kind = Some(AsText(kind)),
            EventBody::ModuleDetached { links_dropped: dropped } => links_dropped = Some(dropped),
            EventBody::LineUp(line) | EventBody::LineUpdated(line) | EventBody::LineDown(line) => link = Some(line),
            EventBody::HookAdded { id, altitude, name } => hook = Some(EventHook { id, altitude: Some(altitude), name }),
            EventBody::HookRemoved { id, name } => hook = Some(EventHook { id, altitude: None, name }),
            EventBody::RulesReplaced { version, altitude, rules: count } => {
                rules = Some(RulesChange { altitude, version: Some(version), rules: Some(count), error: None, blob_len: None });
            }
            EventBody::RulesRefused { error, altitude, blob_len } => {
                rules = Some(RulesChange { altitude, version: None, rules: None, error: Some(error), blob_len: Some(blob_len) });
            }
            EventBody::ModulePaused | EventBody::ModuleRestarted | EventBody::Unknown(_) => {}
        }
        let mut s = serializer.serialize_struct("Event", 9)?;
        s.serialize_field("sequence", &self.sequence)?;
        s.serialize_field("time_ns", &self.time_ns)?;
        s.serialize_field("kind", self.body.kind().name())?;
        s.serialize_field("module", &(self.module != 0).then_some(AsText(ModuleIdText(self.module))))?;
        s.serialize_field("link", &link)?;
        s.serialize_field("module_kind", &module_kind)?;
        s.serialize_field("links_dropped", &links_dropped)?;
        s.serialize_field("hook", &hook)?;
        s.serialize_field("rules", &rules)?;
        s.end()
    }
}
