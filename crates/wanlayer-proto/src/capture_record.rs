//! One captured frame in a `CAPTURE_READ` answer.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | `record_len`: bytes of the record, padding included (a multiple of 8) |
//! | 4 | 4 | module id |
//! | 8 | 8 | link id (zero: the frame matched no link) |
//! | 16 | 8 | time (engine clock, ns) |
//! | 24 | 4 | the frame's length |
//! | 28 | 4 | bytes captured (at most the snap length) |
//! | 32 | 1 | [`Direction`] |
//! | 33 | 1 | flags: [`CAPTURE_INJECTED`] |
//! | 34 | 6 | reserved, zero |
//! | 40 | ... | the captured bytes, zero padding to 8 |
//!
//! Frames are captured as the filter receives them, before the hooks: sends as the IP layer gave
//! them, receives as NdisWan indicated them; injected frames as injected.

use crate::codes::Direction;
use crate::field::{align8, is_zero, view};
use crate::limits::MAX_SNAP_LEN;
use crate::records::own_len;
use crate::{Error, Result};

/// The frame was injected through the control device.
pub const CAPTURE_INJECTED: u8 = 1;

view! {
    /// The fixed part of a capture record.
    pub struct CaptureRecord, LEN = 40; {
        /// Bytes of the record.
        record_len / set_record_len @ 0: u32,
        /// The module.
        module / set_module @ 4: u32,
        /// The link, zero when none matched.
        link_id / set_link_id @ 8: u64,
        /// Time (engine clock, ns).
        time_ns / set_time_ns @ 16: u64,
        /// The frame's length.
        original_len / set_original_len @ 24: u32,
        /// Bytes captured.
        captured_len / set_captured_len @ 28: u32,
        /// Direction.
        direction / set_direction @ 32: u8,
        /// Flags.
        flags / set_flags @ 33: u8,
        /// Reserved, zero.
        reserved / set_reserved @ 34: [u8; 6],
    }
}

/// One parsed capture record; the bytes borrow the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CaptureRecordRepr<'a> {
    /// The module.
    pub module: u32,
    /// The link, `None` when the frame matched no link.
    pub link_id: Option<u64>,
    /// Time (engine clock, ns).
    pub time_ns: u64,
    /// The frame's length.
    pub original_len: u32,
    /// Direction.
    pub direction: Direction,
    /// Injected through the control device.
    pub injected: bool,
    /// The captured bytes.
    pub data: &'a [u8],
}

impl<'a> CaptureRecordRepr<'a> {
    /// Parses one record that fills the buffer exactly.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Misaligned`], [`Error::BadSize`], [`Error::BadValue`]
    /// (unknown direction or flags, more captured than the frame or the snap limit),
    /// [`Error::Reserved`] (reserved bytes or padding).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &CaptureRecord<&'a T>) -> Result<Self> {
        view.check_len()?;
        let bytes: &'a [u8] = view.clone().into_inner().as_ref();
        let record_len = own_len(view.record_len(), bytes)?;
        if view.reserved() != [0; 6] {
            return Err(Error::Reserved);
        }
        let direction = Direction::from(view.direction());
        let captured = view.captured_len();
        if !direction.is_known() || view.flags() & !CAPTURE_INJECTED != 0 || captured > view.original_len() || captured > MAX_SNAP_LEN {
            return Err(Error::BadValue);
        }
        let data_end = CaptureRecord::<&[u8]>::LEN + captured as usize;
        if align8(data_end) != Some(record_len) {
            return Err(Error::BadSize);
        }
        if !is_zero(&bytes[data_end..]) {
            return Err(Error::Reserved);
        }
        Ok(Self {
            module: view.module(),
            link_id: Some(view.link_id()).filter(|id| *id != 0),
            time_ns: view.time_ns(),
            original_len: view.original_len(),
            direction,
            injected: view.flags() & CAPTURE_INJECTED != 0,
            data: &bytes[CaptureRecord::<&[u8]>::LEN..data_end],
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    ///
    /// # Errors
    /// [`Error::BadValue`] when more bytes are captured than the frame or the snap limit holds.
    pub fn buffer_len(&self) -> Result<usize> {
        record_len(self.data.len(), self.original_len)
    }

    /// Writes the record, padding included.
    ///
    /// # Errors
    /// As [`buffer_len`](Self::buffer_len); [`Error::Truncated`] when the buffer is shorter.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut CaptureRecord<&mut T>) -> Result<()> {
        let len = self.buffer_len()?;
        let data_end = CaptureRecord::<&[u8]>::LEN + self.data.len();
        let meta = RecordMeta {
            module: self.module,
            link_id: self.link_id.unwrap_or(0),
            time_ns: self.time_ns,
            original_len: self.original_len,
            direction: self.direction,
            injected: self.injected,
        };
        emit_fixed(view, &meta, self.data.len())?;
        let bytes = &mut view.as_bytes_mut()[..len];
        bytes[CaptureRecord::<&[u8]>::LEN..data_end].copy_from_slice(self.data);
        bytes[data_end..].fill(0);
        Ok(())
    }
}

/// The fixed facts of a record, for writers that copy the data themselves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RecordMeta {
    /// The module.
    pub module: u32,
    /// The link, zero when none.
    pub link_id: u64,
    /// Time (engine clock, ns).
    pub time_ns: u64,
    /// The frame's length.
    pub original_len: u32,
    /// Direction.
    pub direction: Direction,
    /// Injected through the control device.
    pub injected: bool,
}

/// Bytes of a record carrying `captured` bytes of a frame of `original_len`.
///
/// # Errors
/// [`Error::BadValue`] when `captured` is over `original_len` or the snap limit.
pub fn record_len(captured: usize, original_len: u32) -> Result<usize> {
    if captured > original_len as usize || captured > MAX_SNAP_LEN as usize {
        return Err(Error::BadValue);
    }
    align8(CaptureRecord::<&[u8]>::LEN + captured).ok_or(Error::BadValue)
}

/// Writes the fixed part of a record of `captured` bytes and zeroes its padding; the caller
/// copies the data to bytes `40 .. 40 + captured`.
///
/// # Errors
/// As [`record_len`]; [`Error::Truncated`] when the buffer is shorter than the record.
pub fn emit_fixed<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
    view: &mut CaptureRecord<&mut T>,
    meta: &RecordMeta,
    captured: usize,
) -> Result<()> {
    let len = record_len(captured, meta.original_len)?;
    if view.as_bytes().len() < len || !meta.direction.is_known() {
        return Err(if meta.direction.is_known() { Error::Truncated } else { Error::BadValue });
    }
    view.set_record_len(len as u32);
    view.set_module(meta.module);
    view.set_link_id(meta.link_id);
    view.set_time_ns(meta.time_ns);
    view.set_original_len(meta.original_len);
    view.set_captured_len(captured as u32);
    view.set_direction(meta.direction.into());
    view.set_flags(if meta.injected { CAPTURE_INJECTED } else { 0 });
    view.set_reserved([0; 6]);
    view.as_bytes_mut()[CaptureRecord::<&[u8]>::LEN + captured..len].fill(0);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict_lengths};

    pub(crate) fn sample(data: &[u8]) -> CaptureRecordRepr<'_> {
        CaptureRecordRepr {
            module: 0x0001_0000,
            link_id: Some(3),
            time_ns: 1_000_000,
            original_len: data.len() as u32 + 10,
            direction: Direction::Receive,
            injected: true,
            data,
        }
    }

    fn parse(bytes: &[u8]) -> Result<CaptureRecordRepr<'_>> {
        CaptureRecordRepr::parse(&CaptureRecord::new_unchecked(bytes))
    }

    fn check(bytes: &[u8]) -> Result<()> {
        parse(bytes).map(|_| ())
    }

    #[test]
    fn round_trips_and_refuses_malformed_records() {
        let data = [1u8, 2, 3, 4, 5];
        let repr = sample(&data);
        let mut bytes = vec![0xa5u8; repr.buffer_len().unwrap()];
        repr.emit(&mut CaptureRecord::new_unchecked(&mut bytes[..])).unwrap();
        assert_eq!(bytes.len(), 48);
        assert_eq!(parse(&bytes), Ok(repr));
        assert_strict_lengths(&bytes, check);
        assert_reserved(&bytes, &[34..40, 45..48], check);
        assert_refused(&bytes, 32, &[3], Error::BadValue, check);
        assert_refused(&bytes, 33, &[2], Error::BadValue, check);
        assert_refused(&bytes, 24, &2u32.to_le_bytes(), Error::BadValue, check);
        assert_refused(&bytes, 28, &4u32.to_le_bytes(), Error::Reserved, check);
        assert_refused(&bytes, 28, &9u32.to_le_bytes(), Error::BadSize, check);
        assert_refused(&bytes, 0, &44u32.to_le_bytes(), Error::Misaligned, check);
        let none = CaptureRecordRepr { link_id: None, injected: false, direction: Direction::Send, ..repr };
        none.emit(&mut CaptureRecord::new_unchecked(&mut bytes[..])).unwrap();
        assert_eq!(parse(&bytes), Ok(none));
        assert_eq!(record_len(11, 10), Err(Error::BadValue));
    }
}
