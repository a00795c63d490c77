//! The answer to `IOCTL_WANLAYER_LIST_LINKS`.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `count`: entries that follow |
//! | 12 | 4 | `flags`: [`LINK_LIST_END`] when no link has an id above the last one listed |
//! | 16 | 8 | `next_cursor`: the cursor of the next request (the last id listed) |
//! | 24 | ... | `count` [`LinkEntry`] records, each its own length, a multiple of 8 |

use crate::field::view;
use crate::header;
use crate::link_entry::{LinkEntry, LinkEntryRepr};
use crate::records::{check_variable, VariableRecords};
use crate::{Error, Result};

/// No more links: the enumeration is complete.
pub const LINK_LIST_END: u32 = 1;

view! {
    /// The fixed part of the `LIST_LINKS` answer.
    pub struct LinkList, LEN = 24; {
        /// Entries that follow.
        count / set_count @ 8: u32,
        /// Flags.
        flags / set_flags @ 12: u32,
        /// Where the next batch starts.
        next_cursor / set_next_cursor @ 16: u64,
    }
}

/// The parsed fixed part of the `LIST_LINKS` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LinkListRepr {
    /// Entries that follow.
    pub count: u32,
    /// True when the enumeration is complete.
    pub end: bool,
    /// The cursor of the next request.
    pub next_cursor: u64,
    /// Bytes of the whole answer, entries included.
    pub size: usize,
}

impl LinkListRepr {
    /// Parses an answer that fills the buffer exactly, with every entry.
    ///
    /// # Errors
    /// As the header's checks; [`Error::BadValue`] for unknown flags; the entries' errors;
    /// [`Error::BadCount`] when `count` disagrees with the bytes.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &LinkList<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        let size = header::check(bytes, LinkList::<&[u8]>::LEN, false)?;
        if view.flags() & !LINK_LIST_END != 0 {
            return Err(Error::BadValue);
        }
        check_variable(&bytes[LinkList::<&[u8]>::LEN..], view.count(), LinkEntry::<&[u8]>::LEN, |record| {
            LinkEntryRepr::parse(&LinkEntry::new_unchecked(record)).map(|_| ())
        })?;
        Ok(Self { count: view.count(), end: view.flags() & LINK_LIST_END != 0, next_cursor: view.next_cursor(), size })
    }

    /// Writes the header and the fixed part of an answer of `self.size` bytes (the entries are
    /// written with [`LinkEntryRepr::emit`] after the first [`LinkList::LEN`] bytes).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than `size`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut LinkList<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.size)?;
        view.set_count(self.count);
        view.set_flags(if self.end { LINK_LIST_END } else { 0 });
        view.set_next_cursor(self.next_cursor);
        Ok(())
    }
}

impl<T: AsRef<[u8]>> LinkList<T> {
    /// The entries of an answer that passed [`LinkListRepr::parse`].
    pub fn entries(&self) -> impl Iterator<Item = Result<LinkEntryRepr<'_>>> {
        let body = self.as_bytes().get(LinkList::<&[u8]>::LEN..).unwrap_or_default();
        let count = if body.is_empty() { 0 } else { self.count() };
        VariableRecords::new(body, count, LinkEntry::<&[u8]>::LEN).map(|record| LinkEntryRepr::parse(&LinkEntry::new_unchecked(record)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link_entry::tests::sample;
    use crate::testing::{assert_refused, assert_strict};

    fn encode(entries: &[LinkEntryRepr<'_>], end: bool) -> Vec<u8> {
        let size = LinkList::<&[u8]>::LEN + entries.iter().map(|e| e.buffer_len().unwrap()).sum::<usize>();
        let mut buffer = vec![0xa5; size];
        let repr = LinkListRepr { count: entries.len() as u32, end, next_cursor: 42, size };
        repr.emit(&mut LinkList::new_unchecked(&mut buffer[..])).unwrap();
        let mut at = LinkList::<&[u8]>::LEN;
        for entry in entries {
            let len = entry.buffer_len().unwrap();
            entry.emit(&mut LinkEntry::new_unchecked(&mut buffer[at..at + len])).unwrap();
            at += len;
        }
        buffer
    }

    fn parse(bytes: &[u8]) -> Result<LinkListRepr> {
        LinkListRepr::parse(&LinkList::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_variable_entries() {
        let name: Vec<u8> = "PPP".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let buffer_bytes = [7u8; 13];
        let entries = [sample(&name, &buffer_bytes), sample(&[], &[])];
        let buffer = encode(&entries, true);
        let repr = parse(&buffer).unwrap();
        assert_eq!((repr.count, repr.end, repr.next_cursor, repr.size), (2, true, 42, buffer.len()));
        let list = LinkList::new_unchecked(&buffer[..]);
        let parsed: Vec<LinkEntryRepr<'_>> = list.entries().collect::<Result<_>>().unwrap();
        assert_eq!(parsed, entries);
    }

    #[test]
    fn refuses_counts_that_disagree_and_unknown_flags() {
        let name: Vec<u8> = "x".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let buffer = encode(&[sample(&name, &[1, 2, 3])], false);
        assert_strict(&buffer, parse);
        assert_refused(&buffer, 8, &2u32.to_le_bytes(), Error::BadCount, parse);
        assert_refused(&buffer, 8, &0u32.to_le_bytes(), Error::BadCount, parse);
        assert_refused(&buffer, 12, &2u32.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 24, &12u32.to_le_bytes(), Error::Misaligned, parse);
    }
}
