//! The request of `IOCTL_WANLAYER_READ_EVENTS` and `IOCTL_WANLAYER_CAPTURE_READ`: one batch.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `max_records`: 1 ..= [`MAX_READ_BATCH`] (fewer come when fewer fit the output) |
//! | 12 | 4 | `flags`: [`READ_WAIT`] (event reads only) |
//!
//! An event read with [`READ_WAIT`] and nothing queued pends until an event arrives (the
//! inverted call); without it, it completes at once with zero records.

use crate::field::view;
use crate::header;
use crate::limits::MAX_READ_BATCH;
use crate::{Error, Result};

/// Pend until there is something to read (event reads only).
pub const READ_WAIT: u32 = 1;

view! {
    /// A batch read request.
    pub struct ReadRequest, LEN = 16; {
        /// Most records wanted.
        max_records / set_max_records @ 8: u32,
        /// Flags.
        flags / set_flags @ 12: u32,
    }
}

/// The parsed batch read request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReadRequestRepr {
    /// Most records wanted.
    pub max_records: u32,
    /// Pend when nothing is queued.
    pub wait: bool,
}

impl ReadRequestRepr {
    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::BadValue`] for `max_records` out of range or unknown
    /// flags.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &ReadRequest<&T>) -> Result<Self> {
        header::check(view.as_bytes(), ReadRequest::<&[u8]>::LEN, true)?;
        if !(1..=MAX_READ_BATCH).contains(&view.max_records()) || view.flags() & !READ_WAIT != 0 {
            return Err(Error::BadValue);
        }
        Ok(Self { max_records: view.max_records(), wait: view.flags() & READ_WAIT != 0 })
    }

    /// Bytes of the request.
    pub const fn buffer_len(&self) -> usize {
        16
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 16 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut ReadRequest<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_max_records(self.max_records);
        view.set_flags(if self.wait { READ_WAIT } else { 0 });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_strict};

    #[test]
    fn round_trips_and_refuses_bad_values() {
        let parse = |bytes: &[u8]| ReadRequestRepr::parse(&ReadRequest::new_unchecked(bytes));
        let repr = ReadRequestRepr { max_records: 100, wait: true };
        let mut buffer = [0xa5u8; 16];
        repr.emit(&mut ReadRequest::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
        assert_refused(&buffer, 8, &0u32.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 8, &(MAX_READ_BATCH + 1).to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 12, &2u32.to_le_bytes(), Error::BadValue, parse);
    }
}
