//! The answers to the queries: version, modules, links (batched, with a cursor), hooks,
//! statistics, and the reset of statistics.

use wanlayer_proto::limits::{MAX_CAPTURE_BYTES, MAX_LINK_BATCH, MAX_SNAP_LEN, MAX_SUBSCRIBER_CAPACITY};
use wanlayer_proto::{
    hook_id, split_hook_id, DirectionStats, Features, HookEntry, HookEntryRepr, HookList, HookListRepr, HookName, HookStats, HookStatsRepr,
    LinkEntry, LinkEntryRepr, LinkList, LinkListRepr, LinkQueryRepr, LinkStats, LinkStatsRepr, ModuleEntry, ModuleEntryRepr,
    ModuleKind as WireKind, ModuleList, ModuleListRepr, ModuleState as WireState, ModuleStats, ModuleStatsRepr, Quality, Status, Target,
    VersionInfo, VersionInfoRepr, CAP_CAPTURE, CAP_EVENTS, CAP_INJECT, CAP_LINKS, CAP_RESET, CAP_RULES, CAP_STATS,
    INTERFACE_VERSION,
};

use super::{Control, MAX_CAPTURE_SESSIONS, MAX_SUBSCRIBERS};
use crate::hal::{Hal, Lock, ModuleId, Pool, ReadMostly};
use crate::hook::{HookId, HookInfo, MAX_HOOKS};
use crate::link::{Link, LinkId, LinkPager, DEVICE_NAME_MAX};
use crate::module::{ModuleKind, ModuleSlot, ModuleState};
use crate::stats::ModuleDirectionCounts;

/// The engine's version: the driver is built from the same workspace version.
const VERSION: [&str; 3] = [env!("CARGO_PKG_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MINOR"), env!("CARGO_PKG_VERSION_PATCH")];

fn version_part(text: &str) -> u16 {
    text.parse().unwrap_or(0)
}

/// A module kind as the wire carries it.
pub(crate) fn wire_kind(kind: ModuleKind) -> WireKind {
    match kind {
        ModuleKind::NdisWanIp => WireKind::NdisWanIp,
        ModuleKind::NdisWanIpv6 => WireKind::NdisWanIpv6,
        ModuleKind::PassThrough => WireKind::Other,
    }
}

fn wire_state(state: ModuleState) -> WireState {
    match state {
        ModuleState::Attaching => WireState::Attaching,
        ModuleState::Paused => WireState::Paused,
        ModuleState::Restarting => WireState::Restarting,
        ModuleState::Running => WireState::Running,
        ModuleState::Pausing => WireState::Pausing,
        ModuleState::Detached => WireState::Detached,
    }
}

fn direction(counts: &ModuleDirectionCounts) -> DirectionStats {
    DirectionStats {
        packets: counts.traffic.packets,
        bytes: counts.traffic.bytes,
        drops: counts.traffic.drops,
        drops_by_reason: counts.drops_by_reason,
        unmatched: counts.unmatched,
        modified: counts.modified,
        taken: counts.taken,
        reinjected: counts.reinjected,
        copied_for_resources: counts.copied_for_resources,
        injected: counts.injected,
    }
}

/// The engine's hook identity of an on-wire one.
pub(crate) fn hook_of(id: u64) -> Option<HookId> {
    let (slot, generation) = split_hook_id(id)?;
    (usize::from(slot) < MAX_HOOKS).then_some(HookId { slot, generation })
}

/// A link's `LIST_LINKS` entry, its device name converted into `name` (UTF-16LE): the one
/// conversion of a link into the wire record, which the simulator's reports render too.
pub fn link_entry<'a>(module: ModuleId, link: &'a Link, name: &'a mut [u8; DEVICE_NAME_MAX * 2], with_buffer: bool) -> LinkEntryRepr<'a> {
    let units = link.device_name_utf16();
    for (pair, unit) in name.chunks_exact_mut(2).zip(units) {
        pair.copy_from_slice(&unit.to_le_bytes());
    }
    let name_len = units.len().min(DEVICE_NAME_MAX) * 2;
    let summary = link.summary();
    LinkEntryRepr {
        module: module.0,
        link_id: summary.id.0,
        up_since: link.up_since().0,
        send: link.send_counts(),
        receive: link.receive_counts(),
        link_speed_100bps: summary.link_speed_100bps,
        maximum_total_size: summary.maximum_total_size,
        reported_total_size: summary.reported_total_size,
        quality: Quality::from(i32::from(link.quality())),
        line_ups: link.line_ups(),
        send_window: link.send_window(),
        protocol_type: summary.protocol_type.into(),
        remote_address: summary.remote_address.0,
        local_address: summary.local_address.0,
        buffer_truncated: link.protocol_buffer_truncated(),
        ipv4: link.best_effort_ipv4().map(|address| address.0),
        ipv6_iid: link.best_effort_ipv6_interface_id(),
        device_name: &name[..name_len],
        buffer_kept: link.protocol_buffer().len() as u32,
        protocol_buffer: if with_buffer { link.protocol_buffer() } else { &[] },
    }
}

/// Why an entry was not written.
enum Skip {
    /// The link went down since it was chosen.
    Gone,
    /// The output is full.
    NoRoom,
}

impl<H: Hal> Control<'_, H> {
    /// `QUERY_VERSION`.
    pub(crate) fn version(&self, out: &mut [u8]) -> Result<usize, Status> {
        let repr = VersionInfoRepr {
            interface_version: INTERFACE_VERSION,
            driver_version: VERSION.map(version_part),
            max_modules: u32::try_from(self.engine.modules.len()).unwrap_or(u32::MAX),
            event_capacity: u32::try_from(self.engine.own_event_capacity()).unwrap_or(u32::MAX),
            features: Some(Features {
                capabilities: CAP_LINKS | CAP_STATS | CAP_RESET | CAP_EVENTS | CAP_CAPTURE | CAP_INJECT | CAP_RULES,
                max_subscribers: MAX_SUBSCRIBERS as u16,
                max_capture_sessions: MAX_CAPTURE_SESSIONS as u16,
                max_subscriber_capacity: MAX_SUBSCRIBER_CAPACITY,
                max_snap_len: MAX_SNAP_LEN,
                max_capture_bytes: MAX_CAPTURE_BYTES as u32,
                max_link_batch: MAX_LINK_BATCH as u16,
                max_hooks: MAX_HOOKS as u16,
            }),
        };
        let len = repr.buffer_len();
        let out = out.get_mut(..len).ok_or(Status::BufferTooSmall)?;
        repr.emit(&mut VersionInfo::new_unchecked(out)).map_err(|_| Status::BufferTooSmall)?;
        Ok(len)
    }

    /// `LIST_MODULES`: as many modules as fit; `total` says how many there are.
    pub(crate) fn list_modules(&self, out: &mut [u8]) -> Result<usize, Status> {
        let prefix = ModuleList::<&[u8]>::LEN;
        let room = out.len().checked_sub(prefix).ok_or(Status::BufferTooSmall)? / ModuleEntry::<&[u8]>::LEN;
        let (mut count, mut total) = (0, 0);
        for info in self.engine.modules() {
            total += 1;
            if count >= room {
                continue;
            }
            let entry = ModuleEntryRepr {
                id: info.id.0,
                kind: wire_kind(info.kind),
                state: wire_state(info.state),
                mac_address: info.mac_address.0,
                if_index: info.if_index,
                links: u32::try_from(info.links).unwrap_or(u32::MAX),
                taken: u32::try_from(info.taken).unwrap_or(u32::MAX),
                in_flight: u32::try_from(info.in_flight).unwrap_or(u32::MAX),
            };
            let at = ModuleListRepr::entry_offset(count);
            entry
                .emit(&mut ModuleEntry::new_unchecked(&mut out[at..at + ModuleEntry::<&[u8]>::LEN]))
                .map_err(|_| Status::BufferTooSmall)?;
            count += 1;
        }
        let repr = ModuleListRepr { count: count as u32, total };
        let len = repr.buffer_len();
        repr.emit(&mut ModuleList::new_unchecked(&mut out[..len])).map_err(|_| Status::BufferTooSmall)?;
        Ok(len)
    }

    /// `LIST_LINKS`: the links with ids above the cursor, ascending, as many as asked and fit.
    ///
    /// A page costs what it lists plus a binary search in each shard of each table with links
    /// ([`LinkPager`]), never a scan of every link: the modules with links are counted, a heap of
    /// [`LINK_SHARDS`](crate::link::LINK_SHARDS) heads each is charged to [`Pool::Control`], each
    /// module's table adds its heads under its read side, then each link listed is read and
    /// written under its table's read side, which also adds the next link of its shard. A link
    /// that stays up from one page to the next is listed exactly once; one that comes up or goes
    /// down meanwhile may or may not be (the protocol's promise, `wanlayer_proto::link_query`).
    pub(crate) fn list_links(&self, query: LinkQueryRepr, out: &mut [u8]) -> Result<usize, Status> {
        let prefix = LinkList::<&[u8]>::LEN;
        let room = out.len().checked_sub(prefix).ok_or(Status::BufferTooSmall)? / LinkEntry::<&[u8]>::LEN;
        let wanted = (query.max_entries as usize).min(room);
        if wanted == 0 {
            return Err(Status::BufferTooSmall);
        }
        let only = query.module.map(ModuleId);
        if only.is_some_and(|module| self.engine.module_info(module).is_none()) {
            return Err(Status::NotFound);
        }
        let with_links = |slot: &ModuleSlot<H>| {
            let module = slot.core.with(|core| (core.state != ModuleState::Detached).then_some(core.id))?;
            (only.is_none_or(|only| only == module) && slot.links.read(|links| !links.is_empty())).then_some(module)
        };
        let tables = self.engine.made_slots().filter(|(_, slot)| with_links(slot).is_some()).count();
        let hal = &self.engine.hal;
        let charge = LinkPager::bytes(tables);
        hal.try_charge(Pool::Control, charge).map_err(|_| Status::InsufficientResources)?;
        let Ok(mut pager) = LinkPager::new(query.cursor, tables) else {
            hal.release(Pool::Control, charge);
            return Err(Status::InsufficientResources);
        };
        for (_, slot) in self.engine.made_slots() {
            if let Some(module) = with_links(slot) {
                // A table that has links now and had none when counted: they all came up during
                // this request, so leaving them out when there is no room keeps the promise.
                slot.links.read(|links| pager.add_table(module.0, links));
            }
        }
        let (mut at, mut count, mut next_cursor, mut complete) = (prefix, 0u32, query.cursor, true);
        let mut name = [0u8; DEVICE_NAME_MAX * 2];
        while (count as usize) < wanted {
            let Some(head) = pager.take_smallest() else { break };
            let module = ModuleId(head.table);
            let Some(slot) = self.engine.slot(module) else {
                continue;
            };
            // A link found by its address with its id is the module's: a detach empties the table
            // before the module is gone.
            let written = slot.links.read(|links| {
                let written = links.get(&head.remote).filter(|link| link.id() == head.id).ok_or(Skip::Gone).and_then(|link| {
                    let entry = link_entry(module, link, &mut name, query.protocol_buffer);
                    let len = entry.buffer_len().map_err(|_| Skip::Gone)?;
                    let place = out.get_mut(at..at + len).ok_or(Skip::NoRoom)?;
                    entry.emit(&mut LinkEntry::new_unchecked(place)).map_err(|_| Skip::NoRoom)?;
                    Ok(len)
                });
                if !matches!(written, Err(Skip::NoRoom)) {
                    pager.advance(links, &head);
                }
                written
            });
            match written {
                Ok(len) => {
                    at += len;
                    count += 1;
                    next_cursor = head.id.0;
                }
                Err(Skip::Gone) => next_cursor = head.id.0,
                Err(Skip::NoRoom) => {
                    complete = false;
                    break;
                }
            }
        }
        let end = complete && pager.is_done();
        drop(pager);
        hal.release(Pool::Control, charge);
        if count == 0 && !complete {
            return Err(Status::BufferTooSmall);
        }
        let repr = LinkListRepr { count, end, next_cursor, size: at };
        repr.emit(&mut LinkList::new_unchecked(&mut out[..at])).map_err(|_| Status::BufferTooSmall)?;
        Ok(at)
    }

    /// `LIST_HOOKS`: the chain from the bottom up.
    pub(crate) fn list_hooks(&self, out: &mut [u8]) -> Result<usize, Status> {
        let mut hooks = [None; MAX_HOOKS];
        let mut count = 0;
        self.engine.visit_hooks(|hook| {
            if let Some(place) = hooks.get_mut(count) {
                *place = Some(HookEntryRepr {
                    id: hook_id(hook.id.slot, hook.id.generation),
                    altitude: hook.altitude,
                    name: HookName::new(hook.name.as_str()),
                });
                count += 1;
            }
        });
        let repr = HookListRepr { count: count as u32 };
        let len = repr.buffer_len();
        let out = out.get_mut(..len).ok_or(Status::BufferTooSmall)?;
        repr.emit(&mut HookList::new_unchecked(&mut *out)).map_err(|_| Status::BufferTooSmall)?;
        for (index, entry) in hooks.iter().flatten().enumerate() {
            let at = HookListRepr::entry_offset(index);
            entry.emit(&mut HookEntry::new_unchecked(&mut out[at..at + HookEntry::<&[u8]>::LEN])).map_err(|_| Status::BufferTooSmall)?;
        }
        Ok(len)
    }

    /// `QUERY_STATS`.
    pub(crate) fn query_stats(&self, target: Target, out: &mut [u8]) -> Result<usize, Status> {
        match target {
            Target::All | Target::Rule(_) => Err(Status::InvalidParameter),
            Target::Module(id) => {
                let module = ModuleId(id);
                let counts = self.engine.module_counts(module).ok_or(Status::NotFound)?;
                let repr = ModuleStatsRepr {
                    module: id,
                    send: direction(&counts.send),
                    receive: direction(&counts.receive),
                    line_ups: counts.line_ups,
                    line_ups_untracked: counts.line_ups_untracked,
                    device_names_lost: counts.device_names_lost,
                    line_downs: counts.line_downs,
                    line_downs_unknown: counts.line_downs_unknown,
                    malformed_status: counts.malformed_status,
                    injections_refused: counts.injections_refused,
                };
                let out = out.get_mut(..repr.buffer_len()).ok_or(Status::BufferTooSmall)?;
                repr.emit(&mut ModuleStats::new_unchecked(out)).map_err(|_| Status::BufferTooSmall)?;
                Ok(repr.buffer_len())
            }
            Target::Link(id) => {
                let repr = self
                    .engine
                    .find_link(LinkId(id), |module, link| LinkStatsRepr {
                        link: id,
                        module: module.0,
                        send: link.send_counts(),
                        receive: link.receive_counts(),
                    })
                    .ok_or(Status::NotFound)?;
                let out = out.get_mut(..repr.buffer_len()).ok_or(Status::BufferTooSmall)?;
                repr.emit(&mut LinkStats::new_unchecked(out)).map_err(|_| Status::BufferTooSmall)?;
                Ok(repr.buffer_len())
            }
            Target::Hook(id) => {
                let info: HookInfo = hook_of(id).and_then(|hook| self.engine.registered_hook_info(hook)).ok_or(Status::NotFound)?;
                let repr = HookStatsRepr {
                    hook: id,
                    altitude: info.altitude,
                    send: info.send,
                    receive: info.receive,
                    line_ups: info.line_ups,
                    sizes_lowered: info.sizes_lowered,
                    line_downs: info.line_downs,
                };
                let out = out.get_mut(..repr.buffer_len()).ok_or(Status::BufferTooSmall)?;
                repr.emit(&mut HookStats::new_unchecked(out)).map_err(|_| Status::BufferTooSmall)?;
                Ok(repr.buffer_len())
            }
        }
    }

    /// `RESET_STATS`.
    pub(crate) fn reset_stats(&self, target: Target) -> Result<usize, Status> {
        let found = match target {
            Target::All => {
                self.engine.reset_counters();
                self.engine.reset_rule_counters();
                true
            }
            Target::Rule(_) => return Err(Status::InvalidParameter),
            Target::Module(id) => self.engine.reset_module_counters(ModuleId(id)),
            Target::Link(id) => self.engine.find_link(LinkId(id), |_, link| link.reset_counters()).is_some(),
            Target::Hook(id) => hook_of(id).is_some_and(|hook| self.engine.reset_hook_counters(hook)),
        };
        if found {
            Ok(0)
        } else {
            Err(Status::NotFound)
        }
    }
}
