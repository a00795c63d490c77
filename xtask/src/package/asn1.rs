//! The few DER encodings Authenticode and catalogs need, written and read by hand.
//!
//! The writer produces definite-length DER only; `SET OF` contents are sorted as DER requires.
//! The reader accepts single-byte tags and definite lengths of up to four bytes: every read is
//! bounds-checked and a hostile input yields an [`Error`], never a panic.
//!
//! Authenticode needs control the generic builders do not give (PKCS #7 content without an
//! `OCTET STRING` wrapper, `SignedData` version 1 with a non-`data` content type, digests over
//! content octets only), and the structures are small, so they are spelled out here.

use std::fmt;

/// Universal tags used here.
pub mod tag {
    /// `BOOLEAN`.
    pub const BOOLEAN: u8 = 0x01;
    /// `INTEGER`.
    pub const INTEGER: u8 = 0x02;
    /// `BIT STRING`.
    pub const BIT_STRING: u8 = 0x03;
    /// `OCTET STRING`.
    pub const OCTET_STRING: u8 = 0x04;
    /// `NULL`.
    pub const NULL: u8 = 0x05;
    /// `OBJECT IDENTIFIER`.
    pub const OID: u8 = 0x06;
    /// `UTF8String`.
    pub const UTF8_STRING: u8 = 0x0C;
    /// `UTCTime`.
    pub const UTC_TIME: u8 = 0x17;
    /// `GeneralizedTime`.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// `BMPString` (UTF-16BE).
    pub const BMP_STRING: u8 = 0x1E;
    /// `SEQUENCE` (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// `SET` (constructed).
    pub const SET: u8 = 0x31;
}

/// Why a DER structure could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The structure being read.
    pub what: &'static str,
    /// What is wrong.
    pub detail: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.detail)
    }
}

impl std::error::Error for Error {}

/// An [`Error`] about `what`.
pub fn error(what: &'static str, detail: impl Into<String>) -> Error {
    Error { what, detail: detail.into() }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// One element: `tag`, the definite length of `content`, `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&byte| byte == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A `SEQUENCE` of already encoded elements, in order.
pub fn sequence(elements: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &elements.concat())
}

/// A `SET OF` already encoded elements, sorted by their encodings as DER requires.
pub fn set_of(mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    elements.sort();
    tlv(tag::SET, &elements.concat())
}

/// A constructed context-specific element `[number]` around already encoded content
/// (an `EXPLICIT` tag, or an `IMPLICIT` one replacing a constructed type's tag).
pub fn context(number: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xA0 | (number & 0x1F), content)
}

/// A primitive context-specific element `[number] IMPLICIT` with `content`.
pub fn context_primitive(number: u8, content: &[u8]) -> Vec<u8> {
    tlv(0x80 | (number & 0x1F), content)
}

/// The content octets of an `OBJECT IDENTIFIER` given by its arcs.
///
/// The arcs are this crate's constants; a first arc above 2 or a second above 39 under arcs 0
/// and 1 would not round-trip and is encoded as given (no constant here does that).
pub fn oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a.saturating_mul(40).saturating_add(*b), rest),
        [a] => (a.saturating_mul(40), &[][..]),
        [] => return out,
    };
    for arc in std::iter::once(first).chain(rest.iter().copied()) {
        let mut groups = vec![(arc & 0x7F) as u8];
        let mut value = arc >> 7;
        while value != 0 {
            groups.push(0x80 | (value & 0x7F) as u8);
            value >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    out
}

/// An `OBJECT IDENTIFIER`.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    tlv(tag::OID, &oid_content(arcs))
}

/// A non-negative `INTEGER` from its big-endian magnitude (leading zeros dropped, a zero
/// prepended when the top bit is set).
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|&&byte| byte == 0).count();
    let trimmed = &magnitude[skip..];
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&byte| byte & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &content)
}

/// A non-negative `INTEGER`.
pub fn integer(value: u64) -> Vec<u8> {
    unsigned_integer(&value.to_be_bytes())
}

/// An `OCTET STRING`.
pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, bytes)
}

/// `NULL`.
pub fn null() -> Vec<u8> {
    tlv(tag::NULL, &[])
}

/// A `BOOLEAN`.
pub fn boolean(value: bool) -> Vec<u8> {
    tlv(tag::BOOLEAN, &[if value { 0xFF } else { 0 }])
}

/// A `BIT STRING` of whole bytes with `unused` trailing bits in the last one.
pub fn bit_string(bytes: &[u8], unused: u8) -> Vec<u8> {
    tlv(tag::BIT_STRING, &[&[unused][..], bytes].concat())
}

/// A `UTF8String`.
pub fn utf8_string(text: &str) -> Vec<u8> {
    tlv(tag::UTF8_STRING, text.as_bytes())
}

/// A `BMPString` (UTF-16 big-endian, no terminator).
pub fn bmp_string(text: &str) -> Vec<u8> {
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    tlv(tag::BMP_STRING, &bytes)
}

/// `text` as UTF-16LE with a terminating NUL, as catalogs store names and values.
pub fn utf16le_nul(text: &str) -> Vec<u8> {
    text.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

/// A `UTCTime` (`YYMMDDhhmmssZ`) for `time`, which must lie in 1950..2049.
pub fn utc_time(time: &CivilTime) -> Vec<u8> {
    let text = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        time.year % 100,
        time.month,
        time.day,
        time.hour,
        time.minute,
        time.second
    );
    tlv(tag::UTC_TIME, text.as_bytes())
}

/// A `Time` for certificates: `UTCTime` up to 2049, `GeneralizedTime` from 2050 (RFC 5280).
pub fn x509_time(time: &CivilTime) -> Vec<u8> {
    if time.year < 2050 {
        return utc_time(time);
    }
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    );
    tlv(tag::GENERALIZED_TIME, text.as_bytes())
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
    /// The UTC time `seconds` after 1970-01-01 00:00:00 (proleptic Gregorian calendar).
    pub fn from_unix(seconds: u64) -> Self {
        let days = seconds / 86_400;
        let rest = seconds % 86_400;
        // Howard Hinnant's days-to-civil, for non-negative day counts.
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + u64::from(month <= 2)) as u32;
        Self {
            year,
            month,
            day,
            hour: (rest / 3600) as u32,
            minute: (rest % 3600 / 60) as u32,
            second: (rest % 60) as u32,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// One element read from DER input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// The whole encoding: identifier, length and content.
    pub raw: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and the bytes after it.
///
/// # Errors
///
/// Truncated input, a multi-byte tag, an indefinite or over-long length.
pub fn read<'a>(what: &'static str, input: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), Error> {
    let (&tag, after_tag) = input.split_first().ok_or_else(|| error(what, "no data"))?;
    if tag & 0x1F == 0x1F {
        return Err(error(what, format!("multi-byte tag {tag:#04x} is not used by these structures")));
    }
    let (&first, after_length) = after_tag.split_first().ok_or_else(|| error(what, "length is missing"))?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 {
            return Err(error(what, "indefinite length (BER) where DER is required"));
        }
        if count > 4 {
            return Err(error(what, format!("a {count}-byte length is more than any structure here needs")));
        }
        let bytes = after_length.get(..count).ok_or_else(|| error(what, "length is truncated"))?;
        let len = bytes.iter().fold(0usize, |value, &byte| (value << 8) | usize::from(byte));
        (len, 2 + count)
    };
    let end = header.checked_add(len).ok_or_else(|| error(what, "length overflows"))?;
    let raw = input
        .get(..end)
        .ok_or_else(|| error(what, format!("{len} content byte(s) announced, {} present", input.len() - header)))?;
    Ok((Tlv { tag, content: &raw[header..], raw }, &input[end..]))
}

/// Reads exactly one element filling `input`, with tag `expected`.
///
/// # Errors
///
/// As [`read`], plus a different tag or bytes left after the element.
pub fn read_one<'a>(what: &'static str, input: &'a [u8], expected: u8) -> Result<Tlv<'a>, Error> {
    let (element, rest) = read(what, input)?;
    if !rest.is_empty() {
        return Err(error(what, format!("{} byte(s) after the element", rest.len())));
    }
    element.expect(what, expected)
}

impl<'a> Tlv<'a> {
    /// `self` if its tag is `expected`.
    ///
    /// # Errors
    ///
    /// When the tag differs.
    pub fn expect(self, what: &'static str, expected: u8) -> Result<Self, Error> {
        if self.tag == expected {
            Ok(self)
        } else {
            Err(error(what, format!("tag {:#04x} where {expected:#04x} was expected", self.tag)))
        }
    }

    /// The elements of a constructed element's content, in order.
    ///
    /// # Errors
    ///
    /// When the content is not a whole number of elements.
    pub fn children(&self, what: &'static str) -> Result<Vec<Tlv<'a>>, Error> {
        let mut children = Vec::new();
        let mut rest = self.content;
        while !rest.is_empty() {
            let (child, after) = read(what, rest)?;
            children.push(child);
            rest = after;
        }
        Ok(children)
    }

    /// True when this is an `OBJECT IDENTIFIER` with the given arcs.
    pub fn is_oid(&self, arcs: &[u64]) -> bool {
        self.tag == tag::OID && self.content == oid_content(arcs).as_slice()
    }

    /// The value of a small non-negative `INTEGER`.
    ///
    /// # Errors
    ///
    /// When this is not an `INTEGER`, is negative or does not fit 64 bits.
    pub fn small_integer(&self, what: &'static str) -> Result<u64, Error> {
        self.expect(what, tag::INTEGER)?;
        if self.content.first().is_none_or(|&byte| byte & 0x80 != 0) {
            return Err(error(what, "empty or negative integer"));
        }
        let digits = self.content.iter().skip_while(|&&byte| byte == 0).count();
        if digits > 8 {
            return Err(error(what, "integer does not fit 64 bits"));
        }
        Ok(self.content.iter().fold(0u64, |value, &byte| (value << 8) | u64::from(byte)))
    }

    /// The text of a `BMPString`.
    ///
    /// # Errors
    ///
    /// When this is not a well-formed `BMPString`.
    pub fn bmp_text(&self, what: &'static str) -> Result<String, Error> {
        self.expect(what, tag::BMP_STRING)?;
        if self.content.len() % 2 != 0 {
            return Err(error(what, "BMPString of odd length"));
        }
        let units = self.content.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
        char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| error(what, "BMPString is not UTF-16"))
    }
}

/// `bytes` (UTF-16LE, optionally NUL-terminated) as text.
///
/// # Errors
///
/// When the length is odd or the units are not UTF-16.
pub fn utf16le_text(what: &'static str, bytes: &[u8]) -> Result<String, Error> {
    if bytes.len() % 2 != 0 {
        return Err(error(what, "UTF-16 text of odd length"));
    }
    let mut units: Vec<u16> = bytes.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]])).collect();
    if units.last() == Some(&0) {
        units.pop();
    }
    String::from_utf16(&units).map_err(|_| error(what, "not UTF-16"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers_encode_as_der() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        assert_eq!(&tlv(0x04, &[0; 200])[..3], &[0x04, 0x81, 200]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(integer(0), [0x02, 1, 0]);
        assert_eq!(integer(0x80), [0x02, 2, 0, 0x80]);
        assert_eq!(integer(0x1001_0001), [0x02, 4, 0x10, 0x01, 0x00, 0x01]);
        assert_eq!(oid(&[1, 2, 840, 113_549, 1, 7, 2]), [0x06, 9, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 1, 7, 2]);
        assert!(read("test", &[0x30, 0x82, 0x01, 0x2C, 0xFF]).is_err(), "a truncated element is an error");
        assert!(read("test", &[0x30, 0x80, 0x00, 0x00]).is_err(), "indefinite lengths are BER");
    }

    #[test]
    fn civil_time_from_unix() {
        assert_eq!(CivilTime::from_unix(0), CivilTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 });
        assert_eq!(
            CivilTime::from_unix(951_782_400 + 3661),
            CivilTime { year: 2000, month: 2, day: 29, hour: 1, minute: 1, second: 1 }
        );
        assert_eq!(CivilTime::from_unix(4_102_444_800).year, 2100);
        assert_eq!(utc_time(&CivilTime::from_unix(0)), tlv(tag::UTC_TIME, b"700101000000Z"));
    }

    #[test]
    fn reader_never_panics_on_prefixes_of_valid_der() {
        let der = sequence(&[&oid(&[1, 3, 6, 1, 4, 1, 311, 10, 1]), &octet_string(&[7; 300]), &bmp_string("File")]);
        let (whole, rest) = read("test", &der).expect("the encoding reads back");
        assert!(rest.is_empty());
        assert_eq!(whole.children("test").expect("three children").len(), 3);
        for end in 0..der.len() {
            assert!(read("test", &der[..end]).is_err(), "prefix of {end} bytes must not read");
        }
        assert_eq!(
            read_one("test", &bmp_string("File"), tag::BMP_STRING).and_then(|t| t.bmp_text("t")),
            Ok("File".into())
        );
        assert_eq!(utf16le_text("t", &utf16le_nul("wanlayer.inf")), Ok("wanlayer.inf".into()));
    }
}
