//! The two DER-adjacent things the `der` crate does not give as such: one element split off the
//! front of a buffer with what follows it (a `WIN_CERTIFICATE` pads its PKCS #7 with zeros), and
//! a UTC calendar time with plain fields, as the INF's `DriverVer` is written.
//!
//! Everything else DER (the certificate, the PKCS #7 `SignedData`, the catalog's trust list) is
//! encoded and decoded by `der`, `x509-cert` and `cms`.

use der::{DateTime, Reader, SliceReader};
use std::time::Duration;

/// One DER element read from the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// The whole encoding: identifier, length and content.
    pub raw: &'a [u8],
}

/// Reads the element at the start of `input` (DER: definite lengths only); returns it and the
/// bytes after it.
///
/// # Errors
///
/// Truncated input, or a header that is not DER.
pub fn read<'a>(what: &'static str, input: &'a [u8]) -> Result<(Element<'a>, &'a [u8]), String> {
    let error = |error: der::Error| format!("{what}: {error}");
    let mut reader = SliceReader::new(input).map_err(error)?;
    let raw = reader.tlv_bytes().map_err(error)?;
    Ok((Element { raw }, input.get(raw.len()..).unwrap_or_default()))
}

/// A UTC calendar time, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// The year, e.g. 2025.
    pub year: u32,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
}

impl CivilTime {
    /// The UTC time `seconds` after 1970-01-01 00:00:00 (the last second of 9999 beyond it).
    pub fn from_unix(seconds: u64) -> Self {
        let time = DateTime::from_unix_duration(Duration::from_secs(seconds)).unwrap_or(DateTime::INFINITY);
        Self {
            year: time.year().into(),
            month: time.month().into(),
            day: time.day().into(),
            hour: time.hour().into(),
            minute: time.minutes().into(),
            second: time.seconds().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_from_unix() {
        assert_eq!(CivilTime::from_unix(0), CivilTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 });
        assert_eq!(
            CivilTime::from_unix(951_782_400 + 3661),
            CivilTime { year: 2000, month: 2, day: 29, hour: 1, minute: 1, second: 1 }
        );
        assert_eq!(CivilTime::from_unix(4_102_444_800).year, 2100);
        assert_eq!(CivilTime::from_unix(u64::MAX).year, 9999);
    }

    #[test]
    fn read_splits_one_element_off_and_never_panics_on_prefixes() {
        let mut der = vec![0x30, 0x82, 0x01, 0x2C];
        der.extend([0x04, 0x82, 0x01, 0x28]);
        der.extend([7; 0x128]);
        let padded = [der.as_slice(), &[0; 5]].concat();
        let (element, rest) = read("test", &padded).expect("the element reads");
        assert_eq!((element.raw, rest), (der.as_slice(), &[0u8; 5][..]));
        for end in 0..der.len() {
            assert!(read("test", &der[..end]).is_err(), "prefix of {end} bytes must not read");
        }
        assert!(read("test", &[0x30, 0x80, 0x00, 0x00]).is_err(), "indefinite lengths are BER");
        assert!(read("test", &[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err(), "a long form for a short length is BER");
    }
}
