//! Why bytes could not be read as, or written as, a message.

use core::fmt;

/// A message failed validation (parsing) or did not fit (emitting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before the message, or before what its header or a count says follows.
    Truncated,
    /// The header's `size` disagrees with the buffer or with the message's format.
    BadSize,
    /// The header's interface version is not [`INTERFACE_VERSION`](crate::INTERFACE_VERSION).
    BadVersion(u16),
    /// A reserved field is not zero.
    Reserved,
    /// A field holds a value the format forbids: an unknown enum value in a request, a number out
    /// of its range, unknown flag bits.
    BadValue,
    /// A count disagrees with the records that follow it.
    BadCount,
    /// A record's length is not a multiple of 8.
    Misaligned,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("message truncated"),
            Error::BadSize => f.write_str("message size disagrees with its header"),
            Error::BadVersion(version) => write!(f, "interface version {version} is not {}", crate::INTERFACE_VERSION),
            Error::Reserved => f.write_str("a reserved field is not zero"),
            Error::BadValue => f.write_str("a field holds a forbidden value"),
            Error::BadCount => f.write_str("a count disagrees with the records that follow"),
            Error::Misaligned => f.write_str("a record length is not a multiple of 8"),
        }
    }
}

impl core::error::Error for Error {}

/// The result of parsing or emitting a message.
pub type Result<T> = core::result::Result<T, Error>;
