//! Checks every message's tests share: strict rejection of malformed input, and no panic on any.

use core::fmt::Debug;
use core::ops::Range;

use crate::{Error, Result};

/// `valid` parses; every truncation of it fails; no single-byte change panics.
pub(crate) fn assert_strict_lengths<R: Debug>(valid: &[u8], parse: impl Fn(&[u8]) -> Result<R>) {
    assert!(parse(valid).is_ok(), "the valid message parses: {:?}", parse(valid));
    for len in 0..valid.len() {
        assert!(parse(&valid[..len]).is_err(), "truncated to {len} of {} bytes, it still parsed", valid.len());
    }
    // Under Miri, which interprets every parse, the no-panic sweep tries the two extreme values of
    // each byte (the host runs all eight); the truncations above run in full on both.
    let values: &[u8] = if cfg!(miri) { &[0x00, 0xff] } else { &[0x00, 0x01, 0x02, 0x07, 0x7f, 0x80, 0xfe, 0xff] };
    let mut changed = valid.to_vec();
    for at in 0..valid.len() {
        for &value in values {
            changed[at] = value;
            let _ = parse(&changed);
        }
        changed[at] = valid[at];
    }
}

/// [`assert_strict_lengths`], and also: a longer buffer fails, another version fails with
/// [`Error::BadVersion`], and the header's reserved field is checked.
pub(crate) fn assert_strict<R: Debug>(valid: &[u8], parse: impl Fn(&[u8]) -> Result<R>) {
    assert_strict_lengths(valid, &parse);
    let mut longer = valid.to_vec();
    longer.push(0);
    assert!(parse(&longer).is_err(), "a trailing byte is refused");
    let mut other = valid.to_vec();
    other[4] = 2;
    assert_eq!(parse(&other).err(), Some(Error::BadVersion(2)));
    assert_reserved(valid, &[6..8], &parse);
}

/// Setting any byte of `ranges` to a nonzero value makes `valid` fail with [`Error::Reserved`].
pub(crate) fn assert_reserved<R: Debug>(valid: &[u8], ranges: &[Range<usize>], parse: impl Fn(&[u8]) -> Result<R>) {
    for range in ranges {
        for at in range.clone() {
            let mut changed = valid.to_vec();
            changed[at] = 0x40;
            assert_eq!(parse(&changed).err(), Some(Error::Reserved), "reserved byte {at} set");
        }
    }
}

/// Writing `value` at `at` makes `valid` fail with `error`.
pub(crate) fn assert_refused<R: Debug>(valid: &[u8], at: usize, value: &[u8], error: Error, parse: impl Fn(&[u8]) -> Result<R>) {
    let mut changed = valid.to_vec();
    changed[at..at + value.len()].copy_from_slice(value);
    assert_eq!(parse(&changed).err(), Some(error), "{value:?} at {at}");
}
