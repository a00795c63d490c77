//! The common header every request and response starts with (8 bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | `size`: bytes of the whole message, header included |
//! | 4 | 2 | `version`: [`INTERFACE_VERSION`] |
//! | 6 | 2 | reserved, zero |
//!
//! A message is exactly `size` bytes: a request's input length must equal it, a response's size is
//! the byte count the driver reports written. The version is checked before anything else, so a
//! request from another interface version fails with `STATUS_REVISION_MISMATCH` whatever its size.

use crate::field::view;
use crate::{Error, Result};

/// The version of the control interface this crate speaks. Raised on any incompatible change.
pub const INTERFACE_VERSION: u16 = 1;

/// Bytes of the common header.
pub const HEADER_LEN: usize = 8;

view! {
    /// The common header of a message.
    pub struct Header, LEN = HEADER_LEN; {
        /// Bytes of the whole message.
        size / set_size @ 0: u32,
        /// The interface version.
        version / set_version @ 4: u16,
        /// Reserved, zero.
        reserved / set_reserved @ 6: u16,
    }
}

/// Checks the header of a message that fills `buffer` exactly and whose fixed part is `fixed_len`
/// bytes; with `exact`, the message has no variable part. Returns the message's size.
///
/// # Errors
/// [`Error::Truncated`], [`Error::BadVersion`], [`Error::Reserved`] or [`Error::BadSize`].
pub(crate) fn check(buffer: &[u8], fixed_len: usize, exact: bool) -> Result<usize> {
    let header = Header::new_checked(buffer)?;
    if header.version() != INTERFACE_VERSION {
        return Err(Error::BadVersion(header.version()));
    }
    if header.reserved() != 0 {
        return Err(Error::Reserved);
    }
    let size = usize::try_from(header.size()).map_err(|_| Error::BadSize)?;
    if size != buffer.len() {
        return Err(if size > buffer.len() { Error::Truncated } else { Error::BadSize });
    }
    if size < fixed_len {
        return Err(Error::Truncated);
    }
    if exact && size != fixed_len {
        return Err(Error::BadSize);
    }
    Ok(size)
}

/// Writes a header for a message of `size` bytes at the start of `buffer`.
///
/// # Errors
/// [`Error::Truncated`] when `buffer` is shorter than `size` (or than the header);
/// [`Error::BadSize`] when `size` does not fit 32 bits. Nothing is written then.
pub(crate) fn emit(buffer: &mut [u8], size: usize) -> Result<()> {
    let size32 = u32::try_from(size).map_err(|_| Error::BadSize)?;
    if buffer.len() < size || size < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let mut header = Header::new_unchecked(buffer);
    header.set_size(size32);
    header.set_version(INTERFACE_VERSION);
    header.set_reserved(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_checked_version_first() {
        let mut buffer = [0u8; 16];
        emit(&mut buffer, 16).unwrap();
        assert_eq!(check(&buffer, 16, true), Ok(16));
        assert_eq!(check(&buffer, 8, false), Ok(16));
        assert_eq!(check(&buffer, 8, true), Err(Error::BadSize));
        assert_eq!(check(&buffer[..12], 8, false), Err(Error::Truncated), "the header says more than there is");
        buffer[4] = 2;
        assert_eq!(check(&buffer[..12], 8, false), Err(Error::BadVersion(2)), "the version is checked first");
        buffer[4] = 1;
        buffer[7] = 1;
        assert_eq!(check(&buffer, 8, false), Err(Error::Reserved));
        buffer[7] = 0;
        buffer[0] = 12;
        assert_eq!(check(&buffer, 8, false), Err(Error::BadSize), "the header says less than there is");
        for len in 0..HEADER_LEN {
            assert_eq!(check(&buffer[..len], 8, false), Err(Error::Truncated));
        }
        assert_eq!(emit(&mut [0u8; 4], 4), Err(Error::Truncated));
        assert_eq!(emit(&mut [0u8; 8], 9), Err(Error::Truncated));
    }
}
