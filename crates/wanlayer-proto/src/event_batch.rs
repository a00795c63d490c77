//! The answer to `IOCTL_WANLAYER_READ_EVENTS`.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `count` |
//! | 12 | 4 | reserved, zero |
//! | 16 | 8 | `lost`: events this subscriber lost so far because its ring was full |
//! | 24 | 80 × count | [`EventRecord`](crate::EventRecord)s, oldest first |
//!
//! Sequence numbers are the engine's: every subscriber sees the same number for the same event.
//! Between two records a subscriber received, the gap is the events its mask filtered out plus
//! those it lost; `lost` counts the latter exactly.

use crate::event_record::{EventRecord, EventRecordRepr};
use crate::field::view;
use crate::header;
use crate::records::{check_fixed, fixed};
use crate::{Error, Result};

view! {
    /// The fixed part of the `READ_EVENTS` answer.
    pub struct EventBatch, LEN = 24; {
        /// Records that follow.
        count / set_count @ 8: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 12: u32,
        /// Events lost so far.
        lost / set_lost @ 16: u64,
    }
}

/// The parsed fixed part of the `READ_EVENTS` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EventBatchRepr {
    /// Records that follow.
    pub count: u32,
    /// Events this subscriber lost so far.
    pub lost: u64,
}

impl EventBatchRepr {
    /// Parses an answer that fills the buffer exactly, with every record.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; [`Error::BadCount`]; a record's error.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &EventBatch<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        header::check(bytes, EventBatch::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        let body = &bytes[EventBatch::<&[u8]>::LEN..];
        check_fixed(body, view.count(), EventRecord::<&[u8]>::LEN)?;
        for record in fixed(body, EventRecord::<&[u8]>::LEN) {
            EventRecordRepr::parse(&EventRecord::new_unchecked(record))?;
        }
        Ok(Self { count: view.count(), lost: view.lost() })
    }

    /// Bytes of the answer.
    pub fn buffer_len(&self) -> usize {
        EventBatch::<&[u8]>::LEN + self.count as usize * EventRecord::<&[u8]>::LEN
    }

    /// How many records fit an output buffer of `len` bytes.
    pub const fn capacity_for(len: usize) -> usize {
        len.saturating_sub(24) / 80
    }

    /// Writes the header and the fixed part (records go at [`record_offset`](Self::record_offset)).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut EventBatch<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_count(self.count);
        view.set_reserved(0);
        view.set_lost(self.lost);
        Ok(())
    }

    /// Where record `index` starts.
    pub const fn record_offset(index: usize) -> usize {
        24 + index * 80
    }
}

impl<T: AsRef<[u8]>> EventBatch<T> {
    /// The records of an answer that passed [`EventBatchRepr::parse`].
    pub fn records(&self) -> impl Iterator<Item = Result<EventRecordRepr>> + '_ {
        let body = self.as_bytes().get(EventBatch::<&[u8]>::LEN..).unwrap_or_default();
        fixed(body, EventRecord::<&[u8]>::LEN).map(|record| EventRecordRepr::parse(&EventRecord::new_unchecked(record)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_record::EventBody;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn encode(records: &[EventRecordRepr], lost: u64) -> Vec<u8> {
        let repr = EventBatchRepr { count: records.len() as u32, lost };
        let mut buffer = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut EventBatch::new_unchecked(&mut buffer[..])).unwrap();
        for (index, record) in records.iter().enumerate() {
            let at = EventBatchRepr::record_offset(index);
            record.emit(&mut EventRecord::new_unchecked(&mut buffer[at..at + 80])).unwrap();
        }
        buffer
    }

    #[test]
    fn round_trips_and_refuses_bad_counts() {
        let parse = |bytes: &[u8]| EventBatchRepr::parse(&EventBatch::new_unchecked(bytes));
        let records = [
            EventRecordRepr { sequence: 4, time_ns: 10, module: 0x0001_0000, body: EventBody::ModulePaused },
            EventRecordRepr { sequence: 6, time_ns: 11, module: 0x0001_0000, body: EventBody::ModuleRestarted },
        ];
        let buffer = encode(&records, 1);
        assert_eq!(parse(&buffer), Ok(EventBatchRepr { count: 2, lost: 1 }));
        let parsed: Vec<EventRecordRepr> = EventBatch::new_unchecked(&buffer[..]).records().collect::<Result<_>>().unwrap();
        assert_eq!(parsed, records);
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[12..16], parse);
        assert_refused(&buffer, 8, &3u32.to_le_bytes(), Error::BadCount, parse);
        assert_eq!(EventBatchRepr::capacity_for(24 + 160), 2);
        assert_eq!(EventBatchRepr::capacity_for(10), 0);
    }
}
