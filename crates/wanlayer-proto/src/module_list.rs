//! The answer to `IOCTL_WANLAYER_LIST_MODULES`: every attached filter module.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `count`: entries that follow |
//! | 12 | 4 | `total`: modules attached (more than `count` when the buffer was too small) |
//! | 16 | 32 × count | [`ModuleEntry`] records |
//!
//! A [`ModuleEntry`] (32 bytes): module id (4), kind (2), state (2), MAC address (6), reserved
//! (2), interface index (4), live links (4), packets held by hooks (4), packets in flight (4).

use crate::codes::{ModuleKind, ModuleState};
use crate::field::view;
use crate::header;
use crate::records::{check_fixed, fixed};
use crate::{Error, Result};

view! {
    /// The fixed part of the `LIST_MODULES` answer.
    pub struct ModuleList, LEN = 16; {
        /// Entries that follow.
        count / set_count @ 8: u32,
        /// Modules attached.
        total / set_total @ 12: u32,
    }
}

view! {
    /// One attached filter module.
    pub struct ModuleEntry, LEN = 32; {
        /// The module's identity (`slot | generation << 16`).
        id / set_id @ 0: u32,
        /// What it is attached to.
        kind / set_kind @ 4: u16,
        /// Its state.
        state / set_state @ 6: u16,
        /// The adapter's MAC address.
        mac_address / set_mac_address @ 8: [u8; 6],
        /// Reserved, zero.
        reserved / set_reserved @ 14: u16,
        /// The adapter's interface index.
        if_index / set_if_index @ 16: u32,
        /// Live WAN links.
        links / set_links @ 20: u32,
        /// Packets hooks hold.
        taken / set_taken @ 24: u32,
        /// Packets the module originated that are not back.
        in_flight / set_in_flight @ 28: u32,
    }
}

/// The parsed fixed part of the `LIST_MODULES` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ModuleListRepr {
    /// Entries that follow.
    pub count: u32,
    /// Modules attached.
    pub total: u32,
}

impl ModuleListRepr {
    /// Parses an answer that fills the buffer exactly, with every entry.
    ///
    /// # Errors
    /// As the header's checks; [`Error::BadCount`] when `count` disagrees with the bytes or
    /// exceeds `total`; an entry's error.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &ModuleList<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        header::check(bytes, ModuleList::<&[u8]>::LEN, false)?;
        let list = ModuleList::new_unchecked(bytes);
        let (count, total) = (list.count(), list.total());
        let body = &bytes[ModuleList::<&[u8]>::LEN..];
        check_fixed(body, count, ModuleEntry::<&[u8]>::LEN)?;
        if count > total {
            return Err(Error::BadCount);
        }
        for entry in fixed(body, ModuleEntry::<&[u8]>::LEN) {
            ModuleEntryRepr::parse(&ModuleEntry::new_unchecked(entry))?;
        }
        Ok(Self { count, total })
    }

    /// Bytes of the answer with `count` entries.
    pub fn buffer_len(&self) -> usize {
        ModuleList::<&[u8]>::LEN + self.count as usize * ModuleEntry::<&[u8]>::LEN
    }

    /// Writes the header and the fixed part (the entries are written with
    /// [`ModuleEntryRepr::emit`] at [`entry_offset`](Self::entry_offset)).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut ModuleList<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_count(self.count);
        view.set_total(self.total);
        Ok(())
    }

    /// Where entry `index` starts.
    pub const fn entry_offset(index: usize) -> usize {
        16 + index * 32
    }
}

impl<T: AsRef<[u8]>> ModuleList<T> {
    /// The entries of an answer that passed [`ModuleListRepr::parse`].
    pub fn entries(&self) -> impl Iterator<Item = Result<ModuleEntryRepr>> + '_ {
        let body = self.as_bytes().get(ModuleList::<&[u8]>::LEN..).unwrap_or_default();
        fixed(body, ModuleEntry::<&[u8]>::LEN).map(|entry| ModuleEntryRepr::parse(&ModuleEntry::new_unchecked(entry)))
    }
}

/// One parsed module entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ModuleEntryRepr {
    /// The module's identity.
    pub id: u32,
    /// What it is attached to.
    pub kind: ModuleKind,
    /// Its state.
    pub state: ModuleState,
    /// The adapter's MAC address.
    pub mac_address: [u8; 6],
    /// The adapter's interface index.
    pub if_index: u32,
    /// Live WAN links.
    pub links: u32,
    /// Packets hooks hold.
    pub taken: u32,
    /// Packets the module originated that are not back.
    pub in_flight: u32,
}

impl ModuleEntryRepr {
    /// Parses an entry (unknown kinds and states are kept).
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::Reserved`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &ModuleEntry<&T>) -> Result<Self> {
        view.check_len()?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        Ok(Self {
            id: view.id(),
            kind: ModuleKind::from(view.kind()),
            state: ModuleState::from(view.state()),
            mac_address: view.mac_address(),
            if_index: view.if_index(),
            links: view.links(),
            taken: view.taken(),
            in_flight: view.in_flight(),
        })
    }

    /// Writes the entry.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 32 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut ModuleEntry<&mut T>) -> Result<()> {
        view.check_len()?;
        view.set_id(self.id);
        view.set_kind(self.kind.into());
        view.set_state(self.state.into());
        view.set_mac_address(self.mac_address);
        view.set_reserved(0);
        view.set_if_index(self.if_index);
        view.set_links(self.links);
        view.set_taken(self.taken);
        view.set_in_flight(self.in_flight);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn entry(id: u32) -> ModuleEntryRepr {
        ModuleEntryRepr {
            id,
            kind: ModuleKind::NdisWanIpv6,
            state: ModuleState::Running,
            mac_address: [2, 1, 0x20, 0x52, 0x41, 0x53],
            if_index: 22,
            links: 7,
            taken: 1,
            in_flight: 2,
        }
    }

    fn encode(entries: &[ModuleEntryRepr], total: u32) -> Vec<u8> {
        let repr = ModuleListRepr { count: entries.len() as u32, total };
        let mut buffer = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut ModuleList::new_unchecked(&mut buffer[..])).unwrap();
        for (index, e) in entries.iter().enumerate() {
            let at = ModuleListRepr::entry_offset(index);
            e.emit(&mut ModuleEntry::new_unchecked(&mut buffer[at..at + 32])).unwrap();
        }
        buffer
    }

    fn parse(bytes: &[u8]) -> Result<ModuleListRepr> {
        ModuleListRepr::parse(&ModuleList::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_with_entries_and_keeps_unknown_kinds() {
        let mut odd = entry(0x0002_0001);
        odd.kind = ModuleKind::Unknown(9);
        let buffer = encode(&[entry(0x0001_0000), odd], 3);
        assert_eq!(parse(&buffer), Ok(ModuleListRepr { count: 2, total: 3 }));
        let list = ModuleList::new_unchecked(&buffer[..]);
        let entries: Vec<ModuleEntryRepr> = list.entries().collect::<Result<_>>().unwrap();
        assert_eq!(entries, [entry(0x0001_0000), odd]);
    }

    #[test]
    fn refuses_bad_counts_and_nonzero_reserved_fields() {
        let buffer = encode(&[entry(1)], 1);
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[16 + 14..16 + 16], parse);
        assert_refused(&buffer, 8, &2u32.to_le_bytes(), Error::BadCount, parse);
        assert_refused(&buffer, 12, &0u32.to_le_bytes(), Error::BadCount, parse);
        assert_eq!(parse(&encode(&[], 0)), Ok(ModuleListRepr { count: 0, total: 0 }));
    }
}
