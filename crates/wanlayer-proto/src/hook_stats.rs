//! The answer to `IOCTL_WANLAYER_QUERY_STATS` for [`Scope::Hook`](crate::Scope::Hook).
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 24 | the request's prefix echoed |
//! | 24 | 8 × 6 | sends shown: seen, bytes, passed, dropped, modified, taken |
//! | 72 | 8 × 6 | receives shown, the same |
//! | 120 | 8 × 3 | line ups seen, sizes lowered, line downs seen |
//! | 144 | 4 | altitude |
//! | 148 | 4 | reserved, zero |

use crate::field::{view, LeField};
use crate::header;
use crate::scope_request::{emit_prefix, parse_prefix, Target};
use crate::{Error, Result};

view! {
    /// The hook statistics answer; verdict counters are read by index.
    pub struct HookStats, LEN = 152; {
        /// Line ups the hook saw.
        line_ups / set_line_ups @ 120: u64,
        /// Line ups for which it lowered the reported size.
        sizes_lowered / set_sizes_lowered @ 128: u64,
        /// Line downs it saw.
        line_downs / set_line_downs @ 136: u64,
        /// Its altitude.
        altitude / set_altitude @ 144: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 148: u32,
    }
}

/// What a hook did in one direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VerdictStats {
    /// Packets shown to the hook.
    pub seen: u64,
    /// Bytes shown.
    pub bytes: u64,
    /// Pass verdicts.
    pub passed: u64,
    /// Drop verdicts.
    pub dropped: u64,
    /// Modify verdicts.
    pub modified: u64,
    /// Take verdicts.
    pub taken: u64,
}

/// The parsed hook statistics.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HookStatsRepr {
    /// The hook's identity.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::hook_id"))]
    pub hook: u64,
    /// Its altitude.
    pub altitude: u32,
    /// Sends.
    pub send: VerdictStats,
    /// Receives.
    pub receive: VerdictStats,
    /// Line ups seen.
    pub line_ups: u64,
    /// Sizes lowered.
    pub sizes_lowered: u64,
    /// Line downs seen.
    pub line_downs: u64,
}

fn read_verdicts(bytes: &[u8], at: usize) -> VerdictStats {
    let v = |i: usize| u64::read(&bytes[at + i * 8..at + i * 8 + 8]);
    VerdictStats { seen: v(0), bytes: v(1), passed: v(2), dropped: v(3), modified: v(4), taken: v(5) }
}

fn write_verdicts(bytes: &mut [u8], at: usize, stats: &VerdictStats) {
    let values = [stats.seen, stats.bytes, stats.passed, stats.dropped, stats.modified, stats.taken];
    for (i, value) in values.into_iter().enumerate() {
        value.write(&mut bytes[at + i * 8..at + i * 8 + 8]);
    }
}

impl HookStatsRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks, [`Error::Reserved`], [`Error::BadValue`] when the prefix does not
    /// name a hook.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &HookStats<&T>) -> Result<Self> {
        header::check(view.as_bytes(), HookStats::<&[u8]>::LEN, true)?;
        let Target::Hook(hook) = parse_prefix(view.as_bytes())? else { return Err(Error::BadValue) };
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        Ok(Self {
            hook,
            altitude: view.altitude(),
            send: read_verdicts(view.as_bytes(), 24),
            receive: read_verdicts(view.as_bytes(), 72),
            line_ups: view.line_ups(),
            sizes_lowered: view.sizes_lowered(),
            line_downs: view.line_downs(),
        })
    }

    /// Bytes of the answer.
    pub const fn buffer_len(&self) -> usize {
        152
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 152 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut HookStats<&mut T>) -> Result<()> {
        emit_prefix(view.as_bytes_mut(), self.buffer_len(), Target::Hook(self.hook))?;
        write_verdicts(view.as_bytes_mut(), 24, &self.send);
        write_verdicts(view.as_bytes_mut(), 72, &self.receive);
        view.set_line_ups(self.line_ups);
        view.set_sizes_lowered(self.sizes_lowered);
        view.set_line_downs(self.line_downs);
        view.set_altitude(self.altitude);
        view.set_reserved(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<HookStatsRepr> {
        HookStatsRepr::parse(&HookStats::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_and_refuses_malformed_answers() {
        let repr = HookStatsRepr {
            hook: crate::hook_id(1, 2),
            altitude: 300,
            send: VerdictStats { seen: 1, bytes: 2, passed: 3, dropped: 4, modified: 5, taken: 6 },
            receive: VerdictStats { seen: 7, bytes: 8, passed: 9, dropped: 10, modified: 11, taken: 12 },
            line_ups: 13,
            sizes_lowered: 14,
            line_downs: 15,
        };
        let mut buffer = [0xa5u8; 152];
        repr.emit(&mut HookStats::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[10..16, 148..152], parse);
        assert_refused(&buffer, 8, &2u16.to_le_bytes(), Error::BadValue, parse);
    }
}
