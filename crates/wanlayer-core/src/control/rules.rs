//! `SET_RULES`, `GET_RULES` and `RULE_STATS`: the rule set through the control device.

use wanlayer_proto::limits::RULE_STATS_ENTRY_LEN;
use wanlayer_proto::{
    RuleAction, RuleStatsEntry, RuleStatsEntryRepr, RuleStatsList, RuleStatsListRepr, RuleStatsQueryRepr, RulesInfo, RulesInfoRepr,
    RulesSet, RulesSetRepr, RulesVersion, RulesVersionRepr, Status,
};

use super::Control;
use crate::hal::Hal;

impl<H: Hal> Control<'_, H> {
    /// `SET_RULES` over the system buffer (the request's blob is read in place before the answer
    /// is written over it): validate, then swap; the answer is the new version.
    pub(crate) fn set_rules(&self, buffer: &mut [u8], input_len: usize, output_len: usize) -> Result<usize, Status> {
        if output_len < RulesVersion::<&[u8]>::LEN {
            return Err(Status::BufferTooSmall);
        }
        let input = buffer.get(..input_len).ok_or(Status::InvalidParameter)?;
        let request = RulesSetRepr::parse(&RulesSet::new_unchecked(input)).map_err(Status::from)?;
        let version = self.engine.replace_rules(request.expected, request.altitude, request.blob).map_err(|error| error.status())?;
        let out = buffer.get_mut(..RulesVersion::<&[u8]>::LEN).ok_or(Status::BufferTooSmall)?;
        let repr = RulesVersionRepr { version };
        repr.emit(&mut RulesVersion::new_unchecked(out)).map_err(|_| Status::BufferTooSmall)?;
        Ok(repr.buffer_len())
    }

    /// `GET_RULES`: the set in force; the blob only when it fits the output.
    pub(crate) fn get_rules(&self, out: &mut [u8]) -> Result<usize, Status> {
        if out.len() < RulesInfo::<&[u8]>::LEN {
            return Err(Status::BufferTooSmall);
        }
        self.engine.with_rules(|rules| {
            let blob = rules.set.blob();
            let fits = out.len() - RulesInfo::<&[u8]>::LEN >= blob.len();
            let repr = RulesInfoRepr {
                version: rules.version,
                altitude: rules.altitude,
                rules: u32::try_from(rules.set.len()).map_err(|_| Status::InvalidParameter)?,
                blob_len: u32::try_from(blob.len()).map_err(|_| Status::InvalidParameter)?,
                blob: fits.then_some(blob),
            };
            let len = repr.buffer_len();
            repr.emit(&mut RulesInfo::new_unchecked(&mut out[..len])).map_err(|_| Status::BufferTooSmall)?;
            Ok(len)
        })
    }

    /// `RULE_STATS`: as many rules' counters from `first` on as fit the output.
    pub(crate) fn rule_stats(&self, request: RuleStatsQueryRepr, out: &mut [u8]) -> Result<usize, Status> {
        let room = out.len().checked_sub(RuleStatsList::<&[u8]>::LEN).ok_or(Status::BufferTooSmall)? / RULE_STATS_ENTRY_LEN;
        let first = usize::try_from(request.first).map_err(|_| Status::InvalidParameter)?;
        let mut count = 0usize;
        let (version, total) = self.engine.visit_rule_counts(first, |rule| {
            if count == room {
                return false;
            }
            let at = RuleStatsListRepr::entry_offset(count);
            let entry =
                RuleStatsEntryRepr { id: rule.id, action: RuleAction::from(rule.action as u8), send: rule.send, receive: rule.receive };
            if let Some(place) = out.get_mut(at..at + RULE_STATS_ENTRY_LEN) {
                if entry.emit(&mut RuleStatsEntry::new_unchecked(place)).is_ok() {
                    count += 1;
                }
            }
            count < room
        });
        if first > total {
            return Err(Status::InvalidParameter);
        }
        let repr = RuleStatsListRepr {
            version,
            total: u32::try_from(total).map_err(|_| Status::InvalidParameter)?,
            first: request.first,
            count: u32::try_from(count).map_err(|_| Status::InvalidParameter)?,
        };
        let len = repr.buffer_len();
        repr.emit(&mut RuleStatsList::new_unchecked(out.get_mut(..len).ok_or(Status::BufferTooSmall)?))
            .map_err(|_| Status::BufferTooSmall)?;
        Ok(len)
    }
}
