//! One event in a `READ_EVENTS` answer (80 bytes).
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | sequence number |
//! | 8 | 8 | time (engine clock, ns) |
//! | 16 | 2 | [`EventKind`] |
//! | 18 | 2 | reserved, zero |
//! | 20 | 4 | module id (zero for hook events) |
//! | 24 | 56 | payload by kind; every byte a kind does not use is zero |
//!
//! Payloads:
//! * module attached: 24 module kind (2);
//! * module detached: 24 links that were still up (8);
//! * module paused, restarted: none;
//! * line up, updated, down: 24 link id (8), 32 remote address (6), 38 local address (6),
//!   44 EtherType (2), 46 reserved (2), 48 `LinkSpeed` (4), 52 `MaximumTotalSize` (4),
//!   56 reported size (4);
//! * hook added, removed: 24 hook id (8), 32 altitude (4, zero when removed), 36 name length
//!   (1), 37 reserved (3), 40 name (32);
//! * rules replaced: 24 the new set's version (8), 32 altitude (4), 36 rules (4);
//! * rules refused: 24 the rule set's load error code (4), 28 altitude (4), 32 bytes of the
//!   refused set (4).
//!
//! A kind this build does not know is kept as [`EventBody::Unknown`], its payload unread.

use crate::codes::{EventKind, ModuleKind};
use crate::field::{is_zero, view, LeField};
use crate::hook_list::HookName;
use crate::limits::HOOK_NAME_LEN;
use crate::{Error, Result};

view! {
    /// One event record.
    pub struct EventRecord, LEN = 80; {
        /// Sequence number.
        sequence / set_sequence @ 0: u64,
        /// Time (engine clock, ns).
        time_ns / set_time_ns @ 8: u64,
        /// The kind.
        kind / set_kind @ 16: u16,
        /// Reserved, zero.
        reserved / set_reserved @ 18: u16,
        /// The module, zero for hook events.
        module / set_module @ 20: u32,
    }
}

/// A link as events carry it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LinkEventRepr {
    /// The link's identity.
    pub link_id: u64,
    /// `RemoteAddress`.
    pub remote_address: [u8; 6],
    /// `LocalAddress`.
    pub local_address: [u8; 6],
    /// `ProtocolType` (EtherType).
    pub protocol_type: u16,
    /// `LinkSpeed`, in units of 100 bit/s.
    pub link_speed_100bps: u32,
    /// `MaximumTotalSize` as indicated.
    pub maximum_total_size: u32,
    /// `MaximumTotalSize` as reported upward.
    pub reported_total_size: u32,
}

/// What happened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventBody {
    /// A module attached.
    ModuleAttached {
        /// What it attached to.
        kind: ModuleKind,
    },
    /// A module detached.
    ModuleDetached {
        /// Links still up, now forgotten.
        links_dropped: u64,
    },
    /// A module finished pausing.
    ModulePaused,
    /// A module restarted.
    ModuleRestarted,
    /// A link came up.
    LineUp(LinkEventRepr),
    /// A link was updated.
    LineUpdated(LinkEventRepr),
    /// A link went down.
    LineDown(LinkEventRepr),
    /// A hook was added.
    HookAdded {
        /// Its identity.
        id: u64,
        /// Its altitude.
        altitude: u32,
        /// Its name.
        name: HookName,
    },
    /// A hook was removed.
    HookRemoved {
        /// Its identity.
        id: u64,
        /// Its name.
        name: HookName,
    },
    /// The rule set was replaced.
    RulesReplaced {
        /// The new set's version.
        version: u64,
        /// The altitude it runs at.
        altitude: u32,
        /// Rules in it.
        rules: u32,
    },
    /// A saved rule set was refused at start; the filter runs with no rules.
    RulesRefused {
        /// Why: the rule set loader's error code.
        error: u32,
        /// The altitude that was saved with it.
        altitude: u32,
        /// Bytes of the refused set.
        blob_len: u32,
    },
    /// A kind this build does not know.
    Unknown(u16),
}

impl EventBody {
    /// The kind of the event.
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::ModuleAttached { .. } => EventKind::ModuleAttached,
            EventBody::ModuleDetached { .. } => EventKind::ModuleDetached,
            EventBody::ModulePaused => EventKind::ModulePaused,
            EventBody::ModuleRestarted => EventKind::ModuleRestarted,
            EventBody::LineUp(_) => EventKind::LineUp,
            EventBody::LineUpdated(_) => EventKind::LineUpdated,
            EventBody::LineDown(_) => EventKind::LineDown,
            EventBody::HookAdded { .. } => EventKind::HookAdded,
            EventBody::HookRemoved { .. } => EventKind::HookRemoved,
            EventBody::RulesReplaced { .. } => EventKind::RulesReplaced,
            EventBody::RulesRefused { .. } => EventKind::RulesRefused,
            EventBody::Unknown(kind) => EventKind::from(*kind),
        }
    }
}

/// One parsed event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EventRecordRepr {
    /// Sequence number.
    pub sequence: u64,
    /// Time (engine clock, ns).
    pub time_ns: u64,
    /// The module (zero for hook events).
    pub module: u32,
    /// What happened.
    pub body: EventBody,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::read(&bytes[at..at + 8])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::read(&bytes[at..at + 4])
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::read(&bytes[at..at + 2])
}

fn read_link(bytes: &[u8]) -> Result<LinkEventRepr> {
    if u16_at(bytes, 46) != 0 || !is_zero(&bytes[60..80]) {
        return Err(Error::Reserved);
    }
    Ok(LinkEventRepr {
        link_id: u64_at(bytes, 24),
        remote_address: <[u8; 6]>::read(&bytes[32..38]),
        local_address: <[u8; 6]>::read(&bytes[38..44]),
        protocol_type: u16_at(bytes, 44),
        link_speed_100bps: u32_at(bytes, 48),
        maximum_total_size: u32_at(bytes, 52),
        reported_total_size: u32_at(bytes, 56),
    })
}

fn read_hook(bytes: &[u8]) -> Result<(u64, u32, HookName)> {
    if !is_zero(&bytes[37..40]) || !is_zero(&bytes[72..80]) {
        return Err(Error::Reserved);
    }
    let name = HookName::from_field(<[u8; HOOK_NAME_LEN]>::read(&bytes[40..72]), bytes[36])?;
    Ok((u64_at(bytes, 24), u32_at(bytes, 32), name))
}

impl EventRecordRepr {
    /// Parses one record.
    ///
    /// # Errors
    /// [`Error::Truncated`]; [`Error::Reserved`] when a byte the kind does not use is not zero;
    /// [`Error::BadValue`] for a hook or rules event with a module, a removed hook with an
    /// altitude, or a malformed name.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &EventRecord<&T>) -> Result<Self> {
        view.check_len()?;
        let bytes = view.as_bytes();
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        let unused_after = |at: usize| {
            if is_zero(&bytes[at..80]) {
                Ok(())
            } else {
                Err(Error::Reserved)
            }
        };
        let body = match EventKind::from(view.kind()) {
            EventKind::ModuleAttached => {
                unused_after(26)?;
                EventBody::ModuleAttached { kind: ModuleKind::from(u16_at(bytes, 24)) }
            }
            EventKind::ModuleDetached => {
                unused_after(32)?;
                EventBody::ModuleDetached { links_dropped: u64_at(bytes, 24) }
            }
            EventKind::ModulePaused => {
                unused_after(24)?;
                EventBody::ModulePaused
            }
            EventKind::ModuleRestarted => {
                unused_after(24)?;
                EventBody::ModuleRestarted
            }
            EventKind::LineUp => EventBody::LineUp(read_link(bytes)?),
            EventKind::LineUpdated => EventBody::LineUpdated(read_link(bytes)?),
            EventKind::LineDown => EventBody::LineDown(read_link(bytes)?),
            EventKind::HookAdded | EventKind::HookRemoved => {
                let (id, altitude, name) = read_hook(bytes)?;
                let removed = view.kind() == u16::from(EventKind::HookRemoved);
                if view.module() != 0 || (removed && altitude != 0) {
                    return Err(Error::BadValue);
                }
                if removed {
                    EventBody::HookRemoved { id, name }
                } else {
                    EventBody::HookAdded { id, altitude, name }
                }
            }
            EventKind::RulesReplaced | EventKind::RulesRefused if view.module() != 0 => return Err(Error::BadValue),
            EventKind::RulesReplaced => {
                unused_after(40)?;
                EventBody::RulesReplaced { version: u64_at(bytes, 24), altitude: u32_at(bytes, 32), rules: u32_at(bytes, 36) }
            }
            EventKind::RulesRefused => {
                unused_after(36)?;
                EventBody::RulesRefused { error: u32_at(bytes, 24), altitude: u32_at(bytes, 28), blob_len: u32_at(bytes, 32) }
            }
            EventKind::Unknown(kind) => EventBody::Unknown(kind),
        };
        Ok(Self { sequence: view.sequence(), time_ns: view.time_ns(), module: view.module(), body })
    }

    /// Writes the record, every unused byte zero.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 80 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut EventRecord<&mut T>) -> Result<()> {
        view.check_len()?;
        view.set_sequence(self.sequence);
        view.set_time_ns(self.time_ns);
        view.set_kind(self.body.kind().into());
        view.set_reserved(0);
        view.set_module(self.module);
        let bytes = &mut view.as_bytes_mut()[..80];
        bytes[24..].fill(0);
        match self.body {
            EventBody::ModuleAttached { kind } => u16::from(kind).write(&mut bytes[24..26]),
            EventBody::ModuleDetached { links_dropped } => links_dropped.write(&mut bytes[24..32]),
            EventBody::ModulePaused | EventBody::ModuleRestarted | EventBody::Unknown(_) => {}
            EventBody::LineUp(link) | EventBody::LineUpdated(link) | EventBody::LineDown(link) => {
                link.link_id.write(&mut bytes[24..32]);
                link.remote_address.write(&mut bytes[32..38]);
                link.local_address.write(&mut bytes[38..44]);
                link.protocol_type.write(&mut bytes[44..46]);
                link.link_speed_100bps.write(&mut bytes[48..52]);
                link.maximum_total_size.write(&mut bytes[52..56]);
                link.reported_total_size.write(&mut bytes[56..60]);
            }
            EventBody::HookAdded { id, altitude, name } => write_hook(bytes, id, altitude, name),
            EventBody::HookRemoved { id, name } => write_hook(bytes, id, 0, name),
            EventBody::RulesReplaced { version, altitude, rules } => {
                version.write(&mut bytes[24..32]);
                altitude.write(&mut bytes[32..36]);
                rules.write(&mut bytes[36..40]);
            }
            EventBody::RulesRefused { error, altitude, blob_len } => {
                error.write(&mut bytes[24..28]);
                altitude.write(&mut bytes[28..32]);
                blob_len.write(&mut bytes[32..36]);
            }
        }
        Ok(())
    }
}

fn write_hook(bytes: &mut [u8], id: u64, altitude: u32, name: HookName) {
    let (field, len) = name.to_field();
    id.write(&mut bytes[24..32]);
    altitude.write(&mut bytes[32..36]);
    bytes[36] = len;
    field.write(&mut bytes[40..72]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict_lengths};

    fn link() -> LinkEventRepr {
        LinkEventRepr {
            link_id: 3,
            remote_address: [0x3c, 3, 0x20, 0x52, 0x41, 0x53],
            local_address: [2, 0, 0, 0, 0, 3],
            protocol_type: 0x86dd,
            link_speed_100bps: 1_000_000,
            maximum_total_size: 1400,
            reported_total_size: 1340,
        }
    }

    fn encode(repr: &EventRecordRepr) -> [u8; 80] {
        let mut buffer = [0xa5u8; 80];
        repr.emit(&mut EventRecord::new_unchecked(&mut buffer[..])).unwrap();
        buffer
    }

    fn parse(bytes: &[u8]) -> Result<EventRecordRepr> {
        EventRecordRepr::parse(&EventRecord::new_unchecked(bytes))
    }

    #[test]
    fn every_kind_round_trips_and_refuses_stray_bytes() {
        let bodies = [
            (EventBody::ModuleAttached { kind: ModuleKind::NdisWanIp }, 26),
            (EventBody::ModuleDetached { links_dropped: 2 }, 32),
            (EventBody::ModulePaused, 24),
            (EventBody::ModuleRestarted, 24),
            (EventBody::LineUp(link()), 60),
            (EventBody::LineUpdated(link()), 60),
            (EventBody::LineDown(link()), 60),
        ];
        for (body, used) in bodies {
            let repr = EventRecordRepr { sequence: 9, time_ns: 99, module: 0x0001_0000, body };
            let bytes = encode(&repr);
            assert_eq!(parse(&bytes), Ok(repr));
            assert_strict_lengths(&bytes, parse);
            assert_reserved(&bytes, &[18..20, used..80], parse);
        }
        for body in [
            EventBody::HookAdded { id: crate::hook_id(1, 1), altitude: 300, name: HookName::new("mss-clamp") },
            EventBody::HookRemoved { id: crate::hook_id(1, 1), name: HookName::new("mss-clamp") },
        ] {
            let repr = EventRecordRepr { sequence: 1, time_ns: 2, module: 0, body };
            let bytes = encode(&repr);
            assert_eq!(parse(&bytes), Ok(repr));
            assert_strict_lengths(&bytes, parse);
            assert_reserved(&bytes, &[37..40, 49..80], parse);
            assert_refused(&bytes, 20, &[1], Error::BadValue, parse);
        }
        for (body, used) in [
            (EventBody::RulesReplaced { version: 3, altitude: 500, rules: 12 }, 40),
            (EventBody::RulesRefused { error: 4, altitude: 500, blob_len: 99 }, 36),
        ] {
            let repr = EventRecordRepr { sequence: 1, time_ns: 2, module: 0, body };
            let bytes = encode(&repr);
            assert_eq!(parse(&bytes), Ok(repr));
            assert_strict_lengths(&bytes, parse);
            assert_reserved(&bytes, &[18..20, used..80], parse);
            assert_refused(&bytes, 20, &[1], Error::BadValue, parse);
        }
        let removed = encode(&EventRecordRepr {
            sequence: 1,
            time_ns: 2,
            module: 0,
            body: EventBody::HookRemoved { id: 1, name: HookName::new("x") },
        });
        assert_refused(&removed, 32, &[1], Error::BadValue, parse);
        let mut unknown = encode(&EventRecordRepr { sequence: 1, time_ns: 2, module: 0, body: EventBody::ModulePaused });
        unknown[16] = 77;
        unknown[30] = 5;
        assert_eq!(parse(&unknown).map(|r| r.body), Ok(EventBody::Unknown(77)), "an unknown kind is kept, its payload unread");
    }
}
