//! Walking the records after a list's fixed part: fixed-size records, and variable-size ones that
//! start with their own length (a multiple of 8).

use crate::field::LeField;
use crate::{Error, Result};

/// Checks that `body` holds exactly `count` records of `len` bytes.
///
/// # Errors
/// [`Error::BadCount`] when it does not.
pub(crate) fn check_fixed(body: &[u8], count: u32, len: usize) -> Result<()> {
    let expected = usize::try_from(count).ok().and_then(|count| count.checked_mul(len)).ok_or(Error::BadCount)?;
    if body.len() == expected {
        Ok(())
    } else {
        Err(Error::BadCount)
    }
}

/// Checks that `body` holds exactly `count` variable records, each starting with its `u32`
/// length, a multiple of 8 and at least `fixed_len`; `check` validates each record.
///
/// # Errors
/// [`Error::Misaligned`], [`Error::Truncated`] or [`Error::BadCount`], or what `check` returns.
pub(crate) fn check_variable(body: &[u8], count: u32, fixed_len: usize, check: impl Fn(&[u8]) -> Result<()>) -> Result<()> {
    let mut rest = body;
    for _ in 0..count {
        let record = next_variable(rest, fixed_len)?;
        check(record)?;
        rest = &rest[record.len()..];
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::BadCount)
    }
}

/// Checks the length a variable record declares for itself against the bytes it was cut to: a
/// multiple of 8, and every one of them. Returns it.
///
/// # Errors
/// [`Error::Misaligned`] (not a multiple of 8) or [`Error::BadSize`] (not the record's length).
pub(crate) fn own_len(declared: u32, record: &[u8]) -> Result<usize> {
    let len = usize::try_from(declared).map_err(|_| Error::BadSize)?;
    if len % 8 != 0 {
        return Err(Error::Misaligned);
    }
    if len != record.len() {
        return Err(Error::BadSize);
    }
    Ok(len)
}

/// The first variable record of `bytes`.
fn next_variable(bytes: &[u8], fixed_len: usize) -> Result<&[u8]> {
    let len_bytes = bytes.get(..4).ok_or(Error::BadCount)?;
    let len = usize::try_from(u32::read(len_bytes)).map_err(|_| Error::Truncated)?;
    if len % 8 != 0 {
        return Err(Error::Misaligned);
    }
    if len < fixed_len {
        return Err(Error::Truncated);
    }
    bytes.get(..len).ok_or(Error::Truncated)
}

/// The variable records of a list whose body was checked (`count` records, each its own length);
/// stops at the first malformed record (there is none after the check).
#[derive(Clone, Debug)]
pub struct VariableRecords<'a> {
    rest: &'a [u8],
    left: u32,
    fixed_len: usize,
}

impl<'a> VariableRecords<'a> {
    pub(crate) fn new(body: &'a [u8], count: u32, fixed_len: usize) -> Self {
        Self { rest: body, left: count, fixed_len }
    }
}

impl<'a> Iterator for VariableRecords<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let record = next_variable(self.rest, self.fixed_len).ok()?;
        self.rest = &self.rest[record.len()..];
        self.left -= 1;
        Some(record)
    }
}

/// The fixed-size records of a list whose body passed [`check_fixed`].
pub(crate) fn fixed(body: &[u8], len: usize) -> impl Iterator<Item = &[u8]> {
    body.chunks_exact(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_records_are_walked_exactly() {
        let mut body = [0u8; 24];
        body[0] = 8;
        body[8] = 16;
        assert_eq!(check_variable(&body, 2, 8, |_| Ok(())), Ok(()));
        assert_eq!(VariableRecords::new(&body, 2, 8).map(<[u8]>::len).collect::<Vec<_>>(), [8, 16]);
        assert_eq!(check_variable(&body, 1, 8, |_| Ok(())), Err(Error::BadCount), "bytes left over");
        assert_eq!(check_variable(&body, 3, 8, |_| Ok(())), Err(Error::BadCount), "a record missing");
        assert_eq!(check_variable(&body, 2, 16, |_| Ok(())), Err(Error::Truncated), "shorter than the fixed part");
        body[8] = 12;
        assert_eq!(check_variable(&body, 2, 8, |_| Ok(())), Err(Error::Misaligned));
        body[8] = 24;
        assert_eq!(check_variable(&body, 2, 8, |_| Ok(())), Err(Error::Truncated));
        assert_eq!(check_fixed(&body, 3, 8), Ok(()));
        assert_eq!(check_fixed(&body, u32::MAX, usize::MAX), Err(Error::BadCount));
        assert_eq!(fixed(&body, 8).count(), 3);
    }
}
