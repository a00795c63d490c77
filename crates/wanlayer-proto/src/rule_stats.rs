//! `IOCTL_WANLAYER_RULE_STATS`: per-rule packet and byte counters of the rule set in force, in
//! batches.
//!
//! Request ([`RuleStatsQuery`], 16 bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `first`: index (in set order) of the first rule wanted |
//! | 12 | 4 | reserved, zero |
//!
//! Answer ([`RuleStatsList`]):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 8 | the set's version |
//! | 16 | 4 | `total`: rules in the set |
//! | 20 | 4 | `first`: the request's |
//! | 24 | 4 | `count`: entries that follow (as many as fit the output) |
//! | 28 | 4 | reserved, zero |
//! | 32 | 40 × count | [`RuleStatsEntry`]: rule id (4), [`RuleAction`] (1), reserved (3), sends matched: packets (8), bytes (8); receives matched: packets (8), bytes (8) |
//!
//! A tool reads from `first` = 0 until `first + count` reaches `total`; when the version changes
//! between batches the set was replaced and it starts again. Counters start at zero with each set.

use crate::field::{enum_with_unknown, view};
use crate::header;
use crate::limits::RULE_STATS_ENTRY_LEN;
use crate::records::{check_fixed, fixed};
use crate::{Error, Result};

enum_with_unknown! {
    /// What a rule does with the packets it matches.
    pub enum RuleAction(u8) {
        /// Hand them on.
        Pass = 0,
        /// Drop them.
        Drop = 1,
        /// Count them, then hand them on.
        Count = 2,
        /// Copy them into the rule's capture sessions, then hand them on.
        Capture = 3,
        /// Reserved: divert them to a user-mode hook.
        Divert = 4,
    }
}

impl RuleAction {
    /// A short name for tools.
    pub fn name(self) -> &'static str {
        match self {
            RuleAction::Pass => "pass",
            RuleAction::Drop => "drop",
            RuleAction::Count => "count",
            RuleAction::Capture => "capture",
            RuleAction::Divert => "divert",
            RuleAction::Unknown(_) => "unknown",
        }
    }
}

view! {
    /// The `RULE_STATS` request.
    pub struct RuleStatsQuery, LEN = 16; {
        /// The first rule wanted.
        first / set_first @ 8: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 12: u32,
    }
}

/// The parsed `RULE_STATS` request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RuleStatsQueryRepr {
    /// Index of the first rule wanted.
    pub first: u32,
}

impl RuleStatsQueryRepr {
    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &RuleStatsQuery<&T>) -> Result<Self> {
        header::check(view.as_bytes(), RuleStatsQuery::<&[u8]>::LEN, true)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        Ok(Self { first: view.first() })
    }

    /// Bytes of the request.
    pub const fn buffer_len(&self) -> usize {
        16
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 16 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut RuleStatsQuery<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_first(self.first);
        view.set_reserved(0);
        Ok(())
    }
}

view! {
    /// The fixed part of the `RULE_STATS` answer.
    pub struct RuleStatsList, LEN = 32; {
        /// The set's version.
        version / set_version @ 8: u64,
        /// Rules in the set.
        total / set_total @ 16: u32,
        /// Index of the first entry.
        first / set_first @ 20: u32,
        /// Entries that follow.
        count / set_count @ 24: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 28: u32,
    }
}

view! {
    /// One rule's counters.
    pub struct RuleStatsEntry, LEN = RULE_STATS_ENTRY_LEN; {
        /// The rule's id.
        id / set_id @ 0: u32,
        /// Its action.
        action / set_action @ 4: u8,
        /// Reserved, zero.
        reserved / set_reserved @ 5: [u8; 3],
        /// Sends matched.
        send_packets / set_send_packets @ 8: u64,
        /// Bytes of the sends matched.
        send_bytes / set_send_bytes @ 16: u64,
        /// Receives matched.
        receive_packets / set_receive_packets @ 24: u64,
        /// Bytes of the receives matched.
        receive_bytes / set_receive_bytes @ 32: u64,
    }
}

/// The parsed fixed part of the `RULE_STATS` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RuleStatsListRepr {
    /// The set's version.
    pub version: u64,
    /// Rules in the set.
    pub total: u32,
    /// Index of the first entry.
    pub first: u32,
    /// Entries that follow.
    pub count: u32,
}

impl RuleStatsListRepr {
    /// Parses an answer that fills the buffer exactly, with every entry.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; [`Error::BadCount`] when the entries do not
    /// fill the body or go past `total`; an entry's error.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &RuleStatsList<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        header::check(bytes, RuleStatsList::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        if view.first().checked_add(view.count()).is_none_or(|end| end > view.total()) {
            return Err(Error::BadCount);
        }
        let body = &bytes[RuleStatsList::<&[u8]>::LEN..];
        check_fixed(body, view.count(), RULE_STATS_ENTRY_LEN)?;
        for entry in fixed(body, RULE_STATS_ENTRY_LEN) {
            RuleStatsEntryRepr::parse(&RuleStatsEntry::new_unchecked(entry))?;
        }
        Ok(Self { version: view.version(), total: view.total(), first: view.first(), count: view.count() })
    }

    /// Bytes of the answer.
    pub fn buffer_len(&self) -> usize {
        RuleStatsList::<&[u8]>::LEN + self.count as usize * RULE_STATS_ENTRY_LEN
    }

    /// Writes the header and the fixed part (entries go at [`entry_offset`](Self::entry_offset)).
    ///
    /// # Errors
    /// [`Error::BadCount`] when the entries go past `total`; [`Error::Truncated`] when the buffer
    /// is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut RuleStatsList<&mut T>) -> Result<()> {
        if self.first.checked_add(self.count).is_none_or(|end| end > self.total) {
            return Err(Error::BadCount);
        }
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_version(self.version);
        view.set_total(self.total);
        view.set_first(self.first);
        view.set_count(self.count);
        view.set_reserved(0);
        Ok(())
    }

    /// Where entry `index` of the answer starts.
    pub const fn entry_offset(index: usize) -> usize {
        32 + index * RULE_STATS_ENTRY_LEN
    }
}

impl<T: AsRef<[u8]>> RuleStatsList<T> {
    /// The entries of an answer that passed [`RuleStatsListRepr::parse`].
    pub fn entries(&self) -> impl Iterator<Item = Result<RuleStatsEntryRepr>> + '_ {
        let body = self.as_bytes().get(RuleStatsList::<&[u8]>::LEN..).unwrap_or_default();
        fixed(body, RULE_STATS_ENTRY_LEN).map(|entry| RuleStatsEntryRepr::parse(&RuleStatsEntry::new_unchecked(entry)))
    }
}

/// One rule's parsed counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RuleStatsEntryRepr {
    /// The rule's id.
    pub id: u32,
    /// Its action.
    pub action: RuleAction,
    /// Sends matched: packets, bytes.
    pub send: (u64, u64),
    /// Receives matched: packets, bytes.
    pub receive: (u64, u64),
}

impl RuleStatsEntryRepr {
    /// Parses an entry.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Reserved`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &RuleStatsEntry<&T>) -> Result<Self> {
        view.check_len()?;
        if view.reserved() != [0; 3] {
            return Err(Error::Reserved);
        }
        Ok(Self {
            id: view.id(),
            action: RuleAction::from(view.action()),
            send: (view.send_packets(), view.send_bytes()),
            receive: (view.receive_packets(), view.receive_bytes()),
        })
    }

    /// Writes the entry.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 40 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut RuleStatsEntry<&mut T>) -> Result<()> {
        view.check_len()?;
        view.set_id(self.id);
        view.set_action(self.action.into());
        view.set_reserved([0; 3]);
        view.set_send_packets(self.send.0);
        view.set_send_bytes(self.send.1);
        view.set_receive_packets(self.receive.0);
        view.set_receive_bytes(self.receive.1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn encode(list: RuleStatsListRepr, entries: &[RuleStatsEntryRepr]) -> Vec<u8> {
        let mut buffer = vec![0xa5; list.buffer_len()];
        list.emit(&mut RuleStatsList::new_unchecked(&mut buffer[..])).unwrap();
        for (index, entry) in entries.iter().enumerate() {
            let at = RuleStatsListRepr::entry_offset(index);
            entry.emit(&mut RuleStatsEntry::new_unchecked(&mut buffer[at..at + RULE_STATS_ENTRY_LEN])).unwrap();
        }
        buffer
    }

    fn parse(bytes: &[u8]) -> Result<RuleStatsListRepr> {
        RuleStatsListRepr::parse(&RuleStatsList::new_unchecked(bytes))
    }

    #[test]
    fn the_query_round_trips() {
        let mut buffer = [0xa5u8; 16];
        RuleStatsQueryRepr { first: 5 }.emit(&mut RuleStatsQuery::new_unchecked(&mut buffer[..])).unwrap();
        let parse = |bytes: &[u8]| RuleStatsQueryRepr::parse(&RuleStatsQuery::new_unchecked(bytes));
        assert_eq!(parse(&buffer), Ok(RuleStatsQueryRepr { first: 5 }));
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[12..16], parse);
    }

    #[test]
    fn the_answer_round_trips_and_refuses_bad_counts() {
        let entries = [
            RuleStatsEntryRepr { id: 10, action: RuleAction::Drop, send: (1, 60), receive: (2, 120) },
            RuleStatsEntryRepr { id: 20, action: RuleAction::Unknown(9), send: (0, 0), receive: (5, 500) },
        ];
        let list = RuleStatsListRepr { version: 3, total: 4, first: 1, count: 2 };
        let buffer = encode(list, &entries);
        assert_eq!(parse(&buffer), Ok(list));
        let parsed: Vec<_> = RuleStatsList::new_unchecked(&buffer[..]).entries().collect::<Result<_>>().unwrap();
        assert_eq!(parsed, entries, "an unknown action in an answer is shown as it is");
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[28..32, 37..40, 77..80], parse);
        assert_refused(&buffer, 16, &2u32.to_le_bytes(), Error::BadCount, parse);
        assert_refused(&buffer, 20, &u32::MAX.to_le_bytes(), Error::BadCount, parse);
        assert_refused(&buffer, 24, &1u32.to_le_bytes(), Error::BadCount, parse);
        let past = RuleStatsListRepr { version: 3, total: 1, first: 1, count: 1 };
        assert_eq!(past.emit(&mut RuleStatsList::new_unchecked(&mut [0u8; 128][..])), Err(Error::BadCount));
    }
}
