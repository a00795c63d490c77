//! The answer to `IOCTL_WANLAYER_QUERY_STATS` for [`Scope::Module`](crate::Scope::Module).
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 24 | the request's prefix echoed (header, scope, target) |
//! | 24 | 8 × 14 | sends: packets, bytes, drops, drops by reason (hook, paused, resources, link down, cancelled), unmatched, modified, taken, reinjected, copied for resources, injected |
//! | 136 | 8 × 14 | receives, the same |
//! | 248 | 8 × 7 | line ups, line ups untracked, device names lost, line downs, line downs unknown, malformed status indications, injections refused |

use crate::field::{view, LeField};
use crate::header;
use crate::scope_request::{emit_prefix, parse_prefix, Target};
use crate::{Error, Result};

/// The drop reasons, in the order of [`DirectionStats::drops_by_reason`].
pub const DROP_REASONS: [&str; 5] = ["hook", "paused", "resources", "link-down", "cancelled"];

const DIRECTION_COUNTERS: usize = 14;
const MODULE_COUNTERS: usize = 7;

view! {
    /// The module statistics answer; counters are read by index.
    pub struct ModuleStats, LEN = 24 + 8 * (2 * DIRECTION_COUNTERS + MODULE_COUNTERS); {}
}

impl<T: AsRef<[u8]>> ModuleStats<T> {
    /// Counter `index` (0-based after the prefix).
    fn counter(&self, index: usize) -> u64 {
        u64::read(&self.as_bytes()[24 + index * 8..32 + index * 8])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ModuleStats<T> {
    fn set_counter(&mut self, index: usize, value: u64) {
        value.write(&mut self.as_bytes_mut()[24 + index * 8..32 + index * 8]);
    }
}

/// One direction of a module's counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DirectionStats {
    /// Packets seen.
    pub packets: u64,
    /// Frame bytes seen.
    pub bytes: u64,
    /// Packets dropped.
    pub drops: u64,
    /// Drops by reason, in [`DROP_REASONS`] order.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::drops_by_reason"))]
    pub drops_by_reason: [u64; 5],
    /// Packets that matched no live link.
    pub unmatched: u64,
    /// Packets a hook modified.
    pub modified: u64,
    /// Packets a hook took.
    pub taken: u64,
    /// Taken packets handed back.
    pub reinjected: u64,
    /// Receives copied because they were only lent.
    pub copied_for_resources: u64,
    /// Packets injected through the control device.
    pub injected: u64,
}

impl DirectionStats {
    fn to_array(self) -> [u64; DIRECTION_COUNTERS] {
        let [a, b, c, d, e] = self.drops_by_reason;
        [
            self.packets,
            self.bytes,
            self.drops,
            a,
            b,
            c,
            d,
            e,
            self.unmatched,
            self.modified,
            self.taken,
            self.reinjected,
            self.copied_for_resources,
            self.injected,
        ]
    }

    fn from_array(v: [u64; DIRECTION_COUNTERS]) -> Self {
        Self {
            packets: v[0],
            bytes: v[1],
            drops: v[2],
            drops_by_reason: [v[3], v[4], v[5], v[6], v[7]],
            unmatched: v[8],
            modified: v[9],
            taken: v[10],
            reinjected: v[11],
            copied_for_resources: v[12],
            injected: v[13],
        }
    }
}

/// The parsed module statistics.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ModuleStatsRepr {
    /// The module.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::module_id"))]
    pub module: u32,
    /// Sends.
    pub send: DirectionStats,
    /// Receives.
    pub receive: DirectionStats,
    /// Line-up indications.
    pub line_ups: u64,
    /// Line ups that could not be tracked (no memory).
    pub line_ups_untracked: u64,
    /// Device names that could not be kept (no memory).
    pub device_names_lost: u64,
    /// Line-down indications.
    pub line_downs: u64,
    /// Line downs of unknown links.
    pub line_downs_unknown: u64,
    /// Malformed status indications.
    pub malformed_status: u64,
    /// Injections refused (module not running, link unknown, no memory).
    pub injections_refused: u64,
}

impl ModuleStatsRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks, [`Error::Reserved`], and [`Error::BadValue`] when the prefix does
    /// not name a module.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &ModuleStats<&T>) -> Result<Self> {
        header::check(view.as_bytes(), ModuleStats::<&[u8]>::LEN, true)?;
        let Target::Module(module) = parse_prefix(view.as_bytes())? else { return Err(Error::BadValue) };
        let direction = |first: usize| DirectionStats::from_array(core::array::from_fn(|i| view.counter(first + i)));
        let base = 2 * DIRECTION_COUNTERS;
        Ok(Self {
            module,
            send: direction(0),
            receive: direction(DIRECTION_COUNTERS),
            line_ups: view.counter(base),
            line_ups_untracked: view.counter(base + 1),
            device_names_lost: view.counter(base + 2),
            line_downs: view.counter(base + 3),
            line_downs_unknown: view.counter(base + 4),
            malformed_status: view.counter(base + 5),
            injections_refused: view.counter(base + 6),
        })
    }

    /// Bytes of the answer.
    pub const fn buffer_len(&self) -> usize {
        ModuleStats::<&[u8]>::LEN
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut ModuleStats<&mut T>) -> Result<()> {
        emit_prefix(view.as_bytes_mut(), self.buffer_len(), Target::Module(self.module))?;
        let totals = [
            self.line_ups,
            self.line_ups_untracked,
            self.device_names_lost,
            self.line_downs,
            self.line_downs_unknown,
            self.malformed_status,
            self.injections_refused,
        ];
        let all = self.send.to_array().into_iter().chain(self.receive.to_array()).chain(totals);
        for (index, value) in all.enumerate() {
            view.set_counter(index, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<ModuleStatsRepr> {
        ModuleStatsRepr::parse(&ModuleStats::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_every_counter_in_its_place() {
        let mut repr = ModuleStatsRepr { module: 0x0001_0000, ..Default::default() };
        repr.send = DirectionStats::from_array(core::array::from_fn(|i| i as u64 + 1));
        repr.receive = DirectionStats::from_array(core::array::from_fn(|i| i as u64 + 101));
        repr.line_ups = 201;
        repr.injections_refused = 207;
        let mut buffer = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut ModuleStats::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_eq!(u64::read(&buffer[24..32]), 1, "send packets first");
        assert_eq!(u64::read(&buffer[296..304]), 207, "injections refused last");
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[10..16], parse);
        assert_refused(&buffer, 8, &2u16.to_le_bytes(), Error::BadValue, parse);
    }
}
