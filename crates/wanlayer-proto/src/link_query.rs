//! The request of `IOCTL_WANLAYER_LIST_LINKS`: one batch of WAN links, resumable with a cursor.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `module`: a module id, or 0 for every module |
//! | 12 | 4 | `flags`: [`LINK_QUERY_PROTOCOL_BUFFER`] |
//! | 16 | 8 | `cursor`: 0 to start, else the `next_cursor` of the previous answer |
//! | 24 | 4 | `max_entries`: 1 ..= [`MAX_LINK_BATCH`] |
//! | 28 | 4 | reserved, zero |
//!
//! Links come in ascending link id, the ids above the cursor. Every link that stays up during
//! the whole enumeration is listed exactly once; a link that comes up or goes down meanwhile may
//! or may not be.

use crate::field::view;
use crate::header;
use crate::limits::MAX_LINK_BATCH;
use crate::{Error, Result};

/// Include each link's raw `ProtocolBuffer` in its entry.
pub const LINK_QUERY_PROTOCOL_BUFFER: u32 = 1;

view! {
    /// The `LIST_LINKS` request.
    pub struct LinkQuery, LEN = 32; {
        /// A module id, or 0 for every module.
        module / set_module @ 8: u32,
        /// Flags.
        flags / set_flags @ 12: u32,
        /// Where to resume.
        cursor / set_cursor @ 16: u64,
        /// Most entries wanted.
        max_entries / set_max_entries @ 24: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 28: u32,
    }
}

/// The parsed `LIST_LINKS` request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LinkQueryRepr {
    /// Only this module's links; `None` for every module.
    pub module: Option<u32>,
    /// Include the raw protocol buffers.
    pub protocol_buffer: bool,
    /// Links with ids above this one.
    pub cursor: u64,
    /// Most entries wanted.
    pub max_entries: u32,
}

impl LinkQueryRepr {
    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::BadValue`] for unknown flags or `max_entries` out of
    /// range; [`Error::Reserved`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &LinkQuery<&T>) -> Result<Self> {
        header::check(view.as_bytes(), LinkQuery::<&[u8]>::LEN, true)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        if view.flags() & !LINK_QUERY_PROTOCOL_BUFFER != 0 || !(1..=MAX_LINK_BATCH).contains(&view.max_entries()) {
            return Err(Error::BadValue);
        }
        Ok(Self {
            module: Some(view.module()).filter(|module| *module != 0),
            protocol_buffer: view.flags() & LINK_QUERY_PROTOCOL_BUFFER != 0,
            cursor: view.cursor(),
            max_entries: view.max_entries(),
        })
    }

    /// Bytes of the request.
    pub const fn buffer_len(&self) -> usize {
        32
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 32 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut LinkQuery<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_module(self.module.unwrap_or(0));
        view.set_flags(if self.protocol_buffer { LINK_QUERY_PROTOCOL_BUFFER } else { 0 });
        view.set_cursor(self.cursor);
        view.set_max_entries(self.max_entries);
        view.set_reserved(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<LinkQueryRepr> {
        LinkQueryRepr::parse(&LinkQuery::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_and_refuses_bad_values() {
        let repr = LinkQueryRepr { module: Some(0x0001_0000), protocol_buffer: true, cursor: 77, max_entries: 500 };
        let mut buffer = [0xa5u8; 32];
        repr.emit(&mut LinkQuery::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[28..32], parse);
        assert_refused(&buffer, 12, &2u32.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 24, &0u32.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 24, &(MAX_LINK_BATCH + 1).to_le_bytes(), Error::BadValue, parse);
        let all = LinkQueryRepr { module: None, ..repr };
        all.emit(&mut LinkQuery::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(all));
    }
}
