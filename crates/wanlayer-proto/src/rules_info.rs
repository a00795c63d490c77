//! The answer to `IOCTL_WANLAYER_GET_RULES` (whose request is header-only): the rule set in
//! force, as it was set.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header; `size` is 32 + `blob_len`, or 32 with [`RULES_BLOB_OMITTED`] |
//! | 8 | 8 | version (0: no set was ever set) |
//! | 16 | 4 | altitude |
//! | 20 | 4 | rules in the set |
//! | 24 | 4 | `blob_len`: bytes of the compiled set |
//! | 28 | 4 | flags: [`RULES_BLOB_OMITTED`] |
//! | 32 | `blob_len` | the compiled set, exactly as set |
//!
//! When the output buffer cannot hold the blob the driver answers the fixed part alone with
//! [`RULES_BLOB_OMITTED`] and the real `blob_len`, so a tool can ask again with room for it.

use crate::field::view;
use crate::header;
use crate::limits::MAX_RULES_BLOB;
use crate::{Error, Result};

/// The blob did not fit the output buffer and is not included; `blob_len` says how big it is.
pub const RULES_BLOB_OMITTED: u32 = 1;

view! {
    /// The fixed part of the `GET_RULES` answer.
    pub struct RulesInfo, LEN = 32; {
        /// The set's version.
        version / set_version @ 8: u64,
        /// Its altitude.
        altitude / set_altitude @ 16: u32,
        /// Rules in it.
        rules / set_rules @ 20: u32,
        /// Bytes of the compiled set.
        blob_len / set_blob_len @ 24: u32,
        /// Flags.
        flags / set_flags @ 28: u32,
    }
}

/// The parsed `GET_RULES` answer; the blob borrows the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RulesInfoRepr<'a> {
    /// The set's version.
    pub version: u64,
    /// Its altitude.
    pub altitude: u32,
    /// Rules in it.
    pub rules: u32,
    /// Bytes of the compiled set.
    pub blob_len: u32,
    /// The compiled set, `None` when it did not fit the output ([`RULES_BLOB_OMITTED`]).
    pub blob: Option<&'a [u8]>,
}

impl<'a> RulesInfoRepr<'a> {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::BadValue`] for unknown flags or a blob over
    /// [`MAX_RULES_BLOB`]; [`Error::BadSize`] when the size disagrees with `blob_len` and the
    /// flags.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &RulesInfo<&'a T>) -> Result<Self> {
        let bytes: &'a [u8] = view.clone().into_inner().as_ref();
        header::check(bytes, RulesInfo::<&[u8]>::LEN, false)?;
        let flags = view.flags();
        let blob_len = usize::try_from(view.blob_len()).map_err(|_| Error::BadValue)?;
        if flags & !RULES_BLOB_OMITTED != 0 || blob_len > MAX_RULES_BLOB {
            return Err(Error::BadValue);
        }
        let body = bytes.get(RulesInfo::<&[u8]>::LEN..).ok_or(Error::Truncated)?;
        let blob = if flags & RULES_BLOB_OMITTED != 0 {
            if !body.is_empty() {
                return Err(Error::BadSize);
            }
            None
        } else {
            if body.len() != blob_len {
                return Err(Error::BadSize);
            }
            Some(body)
        };
        Ok(Self { version: view.version(), altitude: view.altitude(), rules: view.rules(), blob_len: view.blob_len(), blob })
    }

    /// Bytes of the answer.
    pub fn buffer_len(&self) -> usize {
        RulesInfo::<&[u8]>::LEN + self.blob.map_or(0, <[u8]>::len)
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// [`Error::BadValue`] when a blob is given whose length is not `blob_len`, or `blob_len` is
    /// over [`MAX_RULES_BLOB`]; [`Error::Truncated`] when the buffer is shorter than
    /// [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut RulesInfo<&mut T>) -> Result<()> {
        let declared = usize::try_from(self.blob_len).map_err(|_| Error::BadValue)?;
        if declared > MAX_RULES_BLOB || self.blob.is_some_and(|blob| blob.len() != declared) {
            return Err(Error::BadValue);
        }
        let len = self.buffer_len();
        header::emit(view.as_bytes_mut(), len)?;
        view.set_version(self.version);
        view.set_altitude(self.altitude);
        view.set_rules(self.rules);
        view.set_blob_len(self.blob_len);
        view.set_flags(if self.blob.is_some() { 0 } else { RULES_BLOB_OMITTED });
        if let Some(blob) = self.blob {
            view.as_bytes_mut()[RulesInfo::<&[u8]>::LEN..len].copy_from_slice(blob);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_strict};

    fn parse(bytes: &[u8]) -> Result<RulesInfoRepr<'_>> {
        RulesInfoRepr::parse(&RulesInfo::new_unchecked(bytes))
    }

    fn check(bytes: &[u8]) -> Result<()> {
        parse(bytes).map(|_| ())
    }

    fn encode(repr: &RulesInfoRepr<'_>) -> Vec<u8> {
        let mut buffer = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut RulesInfo::new_unchecked(&mut buffer[..])).unwrap();
        buffer
    }

    #[test]
    fn round_trips_with_and_without_the_blob() {
        let blob = [7u8; 24];
        let whole = RulesInfoRepr { version: 4, altitude: 300, rules: 2, blob_len: 24, blob: Some(&blob) };
        let buffer = encode(&whole);
        assert_eq!(parse(&buffer), Ok(whole));
        assert_strict(&buffer, check);
        assert_refused(&buffer, 28, &2u32.to_le_bytes(), Error::BadValue, check);
        assert_refused(&buffer, 24, &23u32.to_le_bytes(), Error::BadSize, check);
        assert_refused(&buffer, 28, &RULES_BLOB_OMITTED.to_le_bytes(), Error::BadSize, check);
        let omitted = RulesInfoRepr { blob: None, ..whole };
        let buffer = encode(&omitted);
        assert_eq!(buffer.len(), 32);
        assert_eq!(parse(&buffer), Ok(omitted));
        assert_strict(&buffer, check);
        assert_refused(&buffer, 28, &0u32.to_le_bytes(), Error::BadSize, check);
        let wrong = RulesInfoRepr { blob_len: 3, ..whole };
        assert_eq!(wrong.emit(&mut RulesInfo::new_unchecked(&mut [0u8; 64][..])), Err(Error::BadValue));
    }
}
