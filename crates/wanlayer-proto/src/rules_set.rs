//! The request of `IOCTL_WANLAYER_SET_RULES` and its answer: replace the whole rule set at once.
//!
//! Request:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header; `size` is 32 + `blob_len` |
//! | 8 | 4 | `flags`: [`RULES_REPLACE_ANY`] |
//! | 12 | 4 | altitude the rule set runs at |
//! | 16 | 8 | `expected_version`: the version the caller last read; zero with [`RULES_REPLACE_ANY`] |
//! | 24 | 4 | `blob_len`: bytes of the compiled set, 0 ..= [`MAX_RULES_BLOB`] (0: no rules) |
//! | 28 | 4 | reserved, zero |
//! | 32 | `blob_len` | the compiled rule set (`wanlayer-rules`) |
//!
//! Answer ([`RulesVersion`], 16 bytes): header, then the new set's version (8).
//!
//! The driver replaces its set only when its current version is `expected_version` (or the
//! request has [`RULES_REPLACE_ANY`]); otherwise the request completes
//! `STATUS_TRANSACTIONAL_CONFLICT` and nothing changes, so two administrators cannot overwrite
//! each other blindly. A blob the driver's validation refuses completes `STATUS_INVALID_PARAMETER`,
//! a rule with the reserved `divert` action `STATUS_NOT_SUPPORTED`, no memory
//! `STATUS_INSUFFICIENT_RESOURCES`: in every failure the set in force stays in force.

use crate::field::view;
use crate::header;
use crate::limits::MAX_RULES_BLOB;
use crate::{Error, Result};

/// Replace whatever set is in force, whatever its version.
pub const RULES_REPLACE_ANY: u32 = 1;

view! {
    /// The fixed part of the `SET_RULES` request.
    pub struct RulesSet, LEN = 32; {
        /// Flags.
        flags / set_flags @ 8: u32,
        /// The altitude.
        altitude / set_altitude @ 12: u32,
        /// The version the caller last read.
        expected_version / set_expected_version @ 16: u64,
        /// Bytes of the compiled set.
        blob_len / set_blob_len @ 24: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 28: u32,
    }
}

/// Which set a replacement may replace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expected {
    /// Only the set of this version (the one the caller read).
    Version(u64),
    /// Whatever set is in force.
    Any,
}

/// The parsed `SET_RULES` request; the blob borrows the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RulesSetRepr<'a> {
    /// Which set it may replace.
    pub expected: Expected,
    /// The altitude the new set runs at.
    pub altitude: u32,
    /// The compiled set (empty: no rules).
    pub blob: &'a [u8],
}

impl<'a> RulesSetRepr<'a> {
    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; [`Error::BadValue`] for unknown flags, a
    /// version beside [`RULES_REPLACE_ANY`] or a blob over [`MAX_RULES_BLOB`];
    /// [`Error::BadSize`] when the size is not 32 + `blob_len`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &RulesSet<&'a T>) -> Result<Self> {
        let bytes: &'a [u8] = view.clone().into_inner().as_ref();
        header::check(bytes, RulesSet::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        let flags = view.flags();
        let blob_len = usize::try_from(view.blob_len()).map_err(|_| Error::BadValue)?;
        if flags & !RULES_REPLACE_ANY != 0 || blob_len > MAX_RULES_BLOB {
            return Err(Error::BadValue);
        }
        let expected = match (flags & RULES_REPLACE_ANY != 0, view.expected_version()) {
            (true, 0) => Expected::Any,
            (true, _) => return Err(Error::BadValue),
            (false, version) => Expected::Version(version),
        };
        let blob = bytes.get(RulesSet::<&[u8]>::LEN..).ok_or(Error::Truncated)?;
        if blob.len() != blob_len {
            return Err(Error::BadSize);
        }
        Ok(Self { expected, altitude: view.altitude(), blob })
    }

    /// Bytes of the request.
    pub fn buffer_len(&self) -> usize {
        RulesSet::<&[u8]>::LEN + self.blob.len()
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::BadValue`] for a blob over [`MAX_RULES_BLOB`]; [`Error::Truncated`] when the
    /// buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut RulesSet<&mut T>) -> Result<()> {
        if self.blob.len() > MAX_RULES_BLOB {
            return Err(Error::BadValue);
        }
        let len = self.buffer_len();
        header::emit(view.as_bytes_mut(), len)?;
        let (flags, version) = match self.expected {
            Expected::Any => (RULES_REPLACE_ANY, 0),
            Expected::Version(version) => (0, version),
        };
        view.set_flags(flags);
        view.set_altitude(self.altitude);
        view.set_expected_version(version);
        view.set_blob_len(self.blob.len() as u32);
        view.set_reserved(0);
        view.as_bytes_mut()[RulesSet::<&[u8]>::LEN..len].copy_from_slice(self.blob);
        Ok(())
    }
}

view! {
    /// The answer to `SET_RULES`: the version of the set now in force.
    pub struct RulesVersion, LEN = 16; {
        /// The new version.
        version / set_version @ 8: u64,
    }
}

/// The parsed `SET_RULES` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RulesVersionRepr {
    /// The version of the set now in force.
    pub version: u64,
}

impl RulesVersionRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &RulesVersion<&T>) -> Result<Self> {
        header::check(view.as_bytes(), RulesVersion::<&[u8]>::LEN, true)?;
        Ok(Self { version: view.version() })
    }

    /// Bytes of the answer.
    pub const fn buffer_len(&self) -> usize {
        16
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 16 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut RulesVersion<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_version(self.version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<RulesSetRepr<'_>> {
        RulesSetRepr::parse(&RulesSet::new_unchecked(bytes))
    }

    fn check(bytes: &[u8]) -> Result<()> {
        parse(bytes).map(|_| ())
    }

    fn encode(repr: &RulesSetRepr<'_>) -> Vec<u8> {
        let mut buffer = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut RulesSet::new_unchecked(&mut buffer[..])).unwrap();
        buffer
    }

    #[test]
    fn round_trips_and_refuses_malformed_requests() {
        let blob = [0x5au8; 40];
        for expected in [Expected::Version(7), Expected::Version(0), Expected::Any] {
            let repr = RulesSetRepr { expected, altitude: 250, blob: &blob };
            let buffer = encode(&repr);
            assert_eq!(parse(&buffer), Ok(repr));
            assert_strict(&buffer, check);
            assert_reserved(&buffer, &[28..32], check);
            assert_refused(&buffer, 8, &2u32.to_le_bytes(), Error::BadValue, check);
            assert_refused(&buffer, 24, &39u32.to_le_bytes(), Error::BadSize, check);
            assert_refused(&buffer, 24, &41u32.to_le_bytes(), Error::BadSize, check);
            assert_refused(&buffer, 24, &(MAX_RULES_BLOB as u32 + 1).to_le_bytes(), Error::BadValue, check);
        }
        let any = encode(&RulesSetRepr { expected: Expected::Any, altitude: 1, blob: &blob });
        assert_refused(&any, 16, &3u64.to_le_bytes(), Error::BadValue, check);
        let empty = RulesSetRepr { expected: Expected::Version(1), altitude: 1, blob: &[] };
        assert_eq!(parse(&encode(&empty)), Ok(empty), "an empty blob clears the rules");
    }

    #[test]
    fn the_answer_round_trips() {
        let repr = RulesVersionRepr { version: 0x0102_0304_0506_0708 };
        let mut buffer = [0xa5u8; 16];
        repr.emit(&mut RulesVersion::new_unchecked(&mut buffer[..])).unwrap();
        let parse = |bytes: &[u8]| RulesVersionRepr::parse(&RulesVersion::new_unchecked(bytes));
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
    }
}
