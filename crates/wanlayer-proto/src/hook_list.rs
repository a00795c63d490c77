//! The answer to `IOCTL_WANLAYER_LIST_HOOKS`: the hook chain from the bottom (NdisWan) up.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `count` |
//! | 12 | 4 | reserved, zero |
//! | 16 | 48 × count | [`HookEntry`] records: hook id (8), altitude (4), name length (1), reserved (3), name (32, UTF-8, zero after its length) |

use crate::field::{is_zero, view};
use crate::header;
use crate::limits::HOOK_NAME_LEN;
use crate::records::{check_fixed, fixed};
use crate::{Error, Result};

view! {
    /// The fixed part of the `LIST_HOOKS` answer.
    pub struct HookList, LEN = 16; {
        /// Entries that follow.
        count / set_count @ 8: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 12: u32,
    }
}

view! {
    /// One registered hook.
    pub struct HookEntry, LEN = 48; {
        /// The hook's identity (see [`hook_id`](crate::hook_id)).
        id / set_id @ 0: u64,
        /// Its altitude.
        altitude / set_altitude @ 8: u32,
        /// Bytes of the name.
        name_len / set_name_len @ 12: u8,
        /// Reserved, zero.
        reserved / set_reserved @ 13: [u8; 3],
        /// The name, UTF-8, zero after `name_len`.
        name / set_name @ 16: [u8; HOOK_NAME_LEN],
    }
}

/// A hook name of at most 32 bytes of UTF-8.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct HookName {
    bytes: [u8; HOOK_NAME_LEN],
    len: u8,
}

impl HookName {
    /// The name `text`, cut at 32 bytes on a character boundary.
    pub fn new(text: &str) -> Self {
        let mut end = text.len().min(HOOK_NAME_LEN);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; HOOK_NAME_LEN];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        Self { bytes, len: end as u8 }
    }

    /// Reads a name field: `len` bytes of UTF-8, zero after them.
    ///
    /// # Errors
    /// [`Error::BadValue`] when `len` is over 32 or the bytes are not UTF-8; [`Error::Reserved`]
    /// when a byte after the name is not zero.
    pub fn from_field(bytes: [u8; HOOK_NAME_LEN], len: u8) -> Result<Self> {
        let used = bytes.get(..usize::from(len)).ok_or(Error::BadValue)?;
        core::str::from_utf8(used).map_err(|_| Error::BadValue)?;
        if !is_zero(&bytes[usize::from(len)..]) {
            return Err(Error::Reserved);
        }
        Ok(Self { bytes, len })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// The field bytes and length, for writing.
    pub fn to_field(&self) -> ([u8; HOOK_NAME_LEN], u8) {
        (self.bytes, self.len)
    }
}

/// The parsed fixed part of the `LIST_HOOKS` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HookListRepr {
    /// Entries that follow.
    pub count: u32,
}

impl HookListRepr {
    /// Parses an answer that fills the buffer exactly, with every entry.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; [`Error::BadCount`]; an entry's error.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &HookList<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        header::check(bytes, HookList::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        let body = &bytes[HookList::<&[u8]>::LEN..];
        check_fixed(body, view.count(), HookEntry::<&[u8]>::LEN)?;
        for entry in fixed(body, HookEntry::<&[u8]>::LEN) {
            HookEntryRepr::parse(&HookEntry::new_unchecked(entry))?;
        }
        Ok(Self { count: view.count() })
    }

    /// Bytes of the answer.
    pub fn buffer_len(&self) -> usize {
        HookList::<&[u8]>::LEN + self.count as usize * HookEntry::<&[u8]>::LEN
    }

    /// Writes the header and the fixed part (entries go at [`entry_offset`](Self::entry_offset)).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut HookList<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_count(self.count);
        view.set_reserved(0);
        Ok(())
    }

    /// Where entry `index` starts.
    pub const fn entry_offset(index: usize) -> usize {
        16 + index * 48
    }
}

impl<T: AsRef<[u8]>> HookList<T> {
    /// The entries of an answer that passed [`HookListRepr::parse`].
    pub fn entries(&self) -> impl Iterator<Item = Result<HookEntryRepr>> + '_ {
        let body = self.as_bytes().get(HookList::<&[u8]>::LEN..).unwrap_or_default();
        fixed(body, HookEntry::<&[u8]>::LEN).map(|entry| HookEntryRepr::parse(&HookEntry::new_unchecked(entry)))
    }
}

/// One parsed hook entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HookEntryRepr {
    /// The hook's identity.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::hook_id"))]
    pub id: u64,
    /// Its altitude.
    pub altitude: u32,
    /// Its name.
    pub name: HookName,
}

impl HookEntryRepr {
    /// Parses an entry.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Reserved`], [`Error::BadValue`] (name).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &HookEntry<&T>) -> Result<Self> {
        view.check_len()?;
        if view.reserved() != [0; 3] {
            return Err(Error::Reserved);
        }
        Ok(Self { id: view.id(), altitude: view.altitude(), name: HookName::from_field(view.name(), view.name_len())? })
    }

    /// Writes the entry.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 48 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut HookEntry<&mut T>) -> Result<()> {
        view.check_len()?;
        let (name, len) = self.name.to_field();
        view.set_id(self.id);
        view.set_altitude(self.altitude);
        view.set_name_len(len);
        view.set_reserved([0; 3]);
        view.set_name(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn encode(entries: &[HookEntryRepr]) -> Vec<u8> {
        let repr = HookListRepr { count: entries.len() as u32 };
        let mut buffer = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut HookList::new_unchecked(&mut buffer[..])).unwrap();
        for (index, entry) in entries.iter().enumerate() {
            let at = HookListRepr::entry_offset(index);
            entry.emit(&mut HookEntry::new_unchecked(&mut buffer[at..at + 48])).unwrap();
        }
        buffer
    }

    fn parse(bytes: &[u8]) -> Result<HookListRepr> {
        HookListRepr::parse(&HookList::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_and_refuses_malformed_names() {
        let entries = [
            HookEntryRepr { id: crate::hook_id(0, 1), altitude: 400, name: HookName::new("vpn-encapsulation") },
            HookEntryRepr { id: crate::hook_id(1, 1), altitude: 100, name: HookName::new("ééééééééééééééééé") },
        ];
        let buffer = encode(&entries);
        assert_eq!(parse(&buffer), Ok(HookListRepr { count: 2 }));
        let parsed: Vec<HookEntryRepr> = HookList::new_unchecked(&buffer[..]).entries().collect::<Result<_>>().unwrap();
        assert_eq!(parsed, entries);
        assert_eq!(parsed[0].name.as_str(), "vpn-encapsulation");
        assert!(parsed[1].name.as_str().len() <= 32);
        let one = encode(&entries[..1]);
        assert_strict(&one, parse);
        assert_reserved(&one, &[12..16, 16 + 13..16 + 16, 16 + 16 + 17..16 + 48], parse);
        assert_refused(&one, 16 + 12, &[33], Error::BadValue, parse);
        assert_refused(&one, 16 + 16, &[0xff], Error::BadValue, parse);
        assert_refused(&one, 8, &2u32.to_le_bytes(), Error::BadCount, parse);
    }
}
