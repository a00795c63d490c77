//! The answer to `IOCTL_WANLAYER_CAPTURE_READ`.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `count` |
//! | 12 | 4 | reserved, zero |
//! | 16 | 8 | `captured`: frames put into the ring since the start |
//! | 24 | 8 | `dropped`: frames lost because the ring was full |
//! | 32 | 8 | `truncated`: frames cut to the snap length |
//! | 40 | ... | `count` [`CaptureRecord`](crate::CaptureRecord)s, oldest first, each its own length, a multiple of 8 |

use crate::capture_record::{CaptureRecord, CaptureRecordRepr};
use crate::field::view;
use crate::header;
use crate::records::{check_variable, VariableRecords};
use crate::{Error, Result};

view! {
    /// The fixed part of the `CAPTURE_READ` answer.
    pub struct CaptureBatch, LEN = 40; {
        /// Records that follow.
        count / set_count @ 8: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 12: u32,
        /// Frames captured since the start.
        captured / set_captured @ 16: u64,
        /// Frames lost to a full ring.
        dropped / set_dropped @ 24: u64,
        /// Frames cut to the snap length.
        truncated / set_truncated @ 32: u64,
    }
}

/// The parsed fixed part of the `CAPTURE_READ` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CaptureBatchRepr {
    /// Records that follow.
    pub count: u32,
    /// Frames captured since the start.
    pub captured: u64,
    /// Frames lost to a full ring.
    pub dropped: u64,
    /// Frames cut to the snap length.
    pub truncated: u64,
    /// Bytes of the whole answer, records included.
    pub size: usize,
}

impl CaptureBatchRepr {
    /// Parses an answer that fills the buffer exactly, with every record.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; the records' errors; [`Error::BadCount`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &CaptureBatch<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        let size = header::check(bytes, CaptureBatch::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        check_variable(&bytes[CaptureBatch::<&[u8]>::LEN..], view.count(), CaptureRecord::<&[u8]>::LEN, |record| {
            CaptureRecordRepr::parse(&CaptureRecord::new_unchecked(record)).map(|_| ())
        })?;
        Ok(Self { count: view.count(), captured: view.captured(), dropped: view.dropped(), truncated: view.truncated(), size })
    }

    /// Writes the header and the fixed part of an answer of `self.size` bytes (records follow the
    /// first [`CaptureBatch::LEN`] bytes).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than `size`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut CaptureBatch<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.size)?;
        view.set_count(self.count);
        view.set_reserved(0);
        view.set_captured(self.captured);
        view.set_dropped(self.dropped);
        view.set_truncated(self.truncated);
        Ok(())
    }
}

impl<T: AsRef<[u8]>> CaptureBatch<T> {
    /// The records of an answer that passed [`CaptureBatchRepr::parse`].
    pub fn records(&self) -> impl Iterator<Item = Result<CaptureRecordRepr<'_>>> {
        let body = self.as_bytes().get(CaptureBatch::<&[u8]>::LEN..).unwrap_or_default();
        let count = if body.is_empty() { 0 } else { self.count() };
        VariableRecords::new(body, count, CaptureRecord::<&[u8]>::LEN)
            .map(|record| CaptureRecordRepr::parse(&CaptureRecord::new_unchecked(record)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture_record::tests::sample;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    #[test]
    fn round_trips_and_refuses_bad_counts() {
        let parse = |bytes: &[u8]| CaptureBatchRepr::parse(&CaptureBatch::new_unchecked(bytes));
        let frames: [&[u8]; 2] = [&[1, 2, 3], &[4; 16]];
        let records: Vec<CaptureRecordRepr<'_>> = frames.iter().map(|f| sample(f)).collect();
        let size = 40 + records.iter().map(|r| r.buffer_len().unwrap()).sum::<usize>();
        let mut buffer = vec![0xa5u8; size];
        let repr = CaptureBatchRepr { count: 2, captured: 10, dropped: 3, truncated: 1, size };
        repr.emit(&mut CaptureBatch::new_unchecked(&mut buffer[..])).unwrap();
        let mut at = 40;
        for record in &records {
            let len = record.buffer_len().unwrap();
            record.emit(&mut CaptureRecord::new_unchecked(&mut buffer[at..at + len])).unwrap();
            at += len;
        }
        assert_eq!(parse(&buffer), Ok(repr));
        let view = CaptureBatch::new_unchecked(&buffer[..]);
        let parsed: Vec<CaptureRecordRepr<'_>> = view.records().collect::<Result<_>>().unwrap();
        assert_eq!(parsed, records);
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[12..16], parse);
        assert_refused(&buffer, 8, &1u32.to_le_bytes(), Error::BadCount, parse);
    }
}
