//! The answer to `IOCTL_WANLAYER_DIVERT_READ`: many diverted packets at once.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `count` |
//! | 12 | 4 | reserved, zero |
//! | 16 | 8 | `diverted`: packets taken into the queue since the hook opened |
//! | 24 | 8 | `queue_full`: matching packets that found the queue full (given the fail policy) |
//! | 32 | 8 | `expired`: held packets not answered in time (given the fail policy) |
//! | 40 | 8 | `refused`: verdicts refused (stale ticket, another handle's packet, bad frame) |
//! | 48 | ... | `count` [`DivertPacket`]s, oldest first, each its own length, a multiple of 8 |
//!
//! Each [`DivertPacket`]:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | `record_len`: bytes of the record, padding included (a multiple of 8) |
//! | 4 | 4 | module id (the ticket's module) |
//! | 8 | 8 | ticket serial: names the packet in the verdict |
//! | 16 | 8 | link id |
//! | 24 | 8 | time the packet was taken (engine clock, ns) |
//! | 32 | 4 | `frame_len`: bytes of the frame (the whole frame is always delivered) |
//! | 36 | 1 | [`Direction`] |
//! | 37 | 3 | reserved, zero |
//! | 40 | ... | the frame, zero padding to 8 |

use crate::codes::Direction;
use crate::field::{align8, is_zero, view};
use crate::header;
use crate::limits::MAX_FRAME_LEN;
use crate::records::{check_variable, own_len, VariableRecords};
use crate::{Error, Result};

view! {
    /// The fixed part of the `DIVERT_READ` answer.
    pub struct DivertBatch, LEN = 48; {
        /// Records that follow.
        count / set_count @ 8: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 12: u32,
        /// Packets diverted since the hook opened.
        diverted / set_diverted @ 16: u64,
        /// Packets that found the queue full.
        queue_full / set_queue_full @ 24: u64,
        /// Held packets not answered in time.
        expired / set_expired @ 32: u64,
        /// Verdicts refused.
        refused / set_refused @ 40: u64,
    }
}

/// The counters of a user-mode hook, reported with every batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DivertCounters {
    /// Packets taken into the queue since the hook opened.
    pub diverted: u64,
    /// Matching packets that found the queue full (or were too long) and got the fail policy.
    pub queue_full: u64,
    /// Held packets not answered in time; they got the fail policy.
    pub expired: u64,
    /// Verdicts refused.
    pub refused: u64,
}

/// The parsed fixed part of the `DIVERT_READ` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DivertBatchRepr {
    /// Records that follow.
    pub count: u32,
    /// The hook's counters.
    pub counters: DivertCounters,
    /// Bytes of the whole answer, records included.
    pub size: usize,
}

impl DivertBatchRepr {
    /// Parses an answer that fills the buffer exactly, with every record.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; the records' errors; [`Error::BadCount`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &DivertBatch<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        let size = header::check(bytes, DivertBatch::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        check_variable(
            &bytes[DivertBatch::<&[u8]>::LEN..],
            view.count(),
            DivertPacket::<&[u8]>::LEN,
            |record| DivertPacketRepr::parse(&DivertPacket::new_unchecked(record)).map(|_| ()),
        )?;
        let counters = DivertCounters {
            diverted: view.diverted(),
            queue_full: view.queue_full(),
            expired: view.expired(),
            refused: view.refused(),
        };
        Ok(Self {
            count: view.count(),
            counters,
            size,
        })
    }

    /// Writes the header and the fixed part of an answer of `self.size` bytes (records follow the
    /// first [`DivertBatch::LEN`] bytes).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than `size`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        view: &mut DivertBatch<&mut T>,
    ) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.size)?;
        view.set_count(self.count);
        view.set_reserved(0);
        view.set_diverted(self.counters.diverted);
        view.set_queue_full(self.counters.queue_full);
        view.set_expired(self.counters.expired);
        view.set_refused(self.counters.refused);
        Ok(())
    }
}

impl<T: AsRef<[u8]>> DivertBatch<T> {
    /// The records of an answer that passed [`DivertBatchRepr::parse`].
    pub fn packets(&self) -> impl Iterator<Item = Result<DivertPacketRepr<'_>>> {
        let body = self
            .as_bytes()
            .get(DivertBatch::<&[u8]>::LEN..)
            .unwrap_or_default();
        let count = if body.is_empty() { 0 } else { self.count() };
        VariableRecords::new(body, count, DivertPacket::<&[u8]>::LEN)
            .map(|record| DivertPacketRepr::parse(&DivertPacket::new_unchecked(record)))
    }
}

view! {
    /// The fixed part of one diverted packet.
    pub struct DivertPacket, LEN = 40; {
        /// Bytes of the record.
        record_len / set_record_len @ 0: u32,
        /// The module.
        module / set_module @ 4: u32,
        /// The ticket serial.
        serial / set_serial @ 8: u64,
        /// The link.
        link_id / set_link_id @ 16: u64,
        /// Time taken (engine clock, ns).
        time_ns / set_time_ns @ 24: u64,
        /// Bytes of the frame.
        frame_len / set_frame_len @ 32: u32,
        /// Direction.
        direction / set_direction @ 36: u8,
        /// Reserved, zero.
        reserved / set_reserved @ 37: [u8; 3],
    }
}

/// What a diverted packet's record says besides its frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DivertMeta {
    /// The module holding the packet.
    pub module: u32,
    /// The ticket serial: the packet's name in a verdict.
    pub serial: u64,
    /// The link.
    pub link_id: u64,
    /// Time the packet was taken (engine clock, ns).
    pub time_ns: u64,
    /// Direction.
    pub direction: Direction,
}

/// One parsed diverted packet; the frame borrows the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DivertPacketRepr<'a> {
    /// Its metadata.
    pub meta: DivertMeta,
    /// The frame.
    pub frame: &'a [u8],
}

/// Bytes of a record carrying a `frame_len`-byte frame.
///
/// # Errors
/// [`Error::BadValue`] for a frame over [`MAX_FRAME_LEN`].
pub fn divert_packet_len(frame_len: usize) -> Result<usize> {
    if frame_len > MAX_FRAME_LEN {
        return Err(Error::BadValue);
    }
    align8(DivertPacket::<&[u8]>::LEN + frame_len).ok_or(Error::BadValue)
}

/// Writes the fixed part and the padding of a record for a `frame_len`-byte frame, leaving the
/// frame's bytes (`40 .. 40 + frame_len`) to the caller; returns the record's length.
///
/// # Errors
/// As [`divert_packet_len`]; [`Error::Truncated`] when the buffer is shorter than the record.
pub fn emit_divert_packet_fixed<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
    view: &mut DivertPacket<&mut T>,
    meta: &DivertMeta,
    frame_len: usize,
) -> Result<usize> {
    let len = divert_packet_len(frame_len)?;
    let bytes = view.as_bytes_mut().get_mut(..len).ok_or(Error::Truncated)?;
    bytes[DivertPacket::<&[u8]>::LEN + frame_len..].fill(0);
    let mut view = DivertPacket::new_unchecked(bytes);
    view.set_record_len(len as u32);
    view.set_module(meta.module);
    view.set_serial(meta.serial);
    view.set_link_id(meta.link_id);
    view.set_time_ns(meta.time_ns);
    view.set_frame_len(frame_len as u32);
    view.set_direction(u8::from(meta.direction));
    view.set_reserved([0; 3]);
    Ok(len)
}

impl<'a> DivertPacketRepr<'a> {
    /// Parses one record that fills the buffer exactly.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Misaligned`], [`Error::BadSize`], [`Error::BadValue`]
    /// (unknown direction, a frame over [`MAX_FRAME_LEN`]), [`Error::Reserved`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &DivertPacket<&'a T>) -> Result<Self> {
        view.check_len()?;
        let bytes: &'a [u8] = view.clone().into_inner().as_ref();
        let record_len = own_len(view.record_len(), bytes)?;
        if view.reserved() != [0; 3] {
            return Err(Error::Reserved);
        }
        let direction = Direction::from(view.direction());
        let frame_len = usize::try_from(view.frame_len()).map_err(|_| Error::BadValue)?;
        if !direction.is_known() || frame_len > MAX_FRAME_LEN {
            return Err(Error::BadValue);
        }
        let data_end = DivertPacket::<&[u8]>::LEN + frame_len;
        if align8(data_end) != Some(record_len) {
            return Err(Error::BadSize);
        }
        if !is_zero(&bytes[data_end..]) {
            return Err(Error::Reserved);
        }
        let meta = DivertMeta {
            module: view.module(),
            serial: view.serial(),
            link_id: view.link_id(),
            time_ns: view.time_ns(),
            direction,
        };
        Ok(Self {
            meta,
            frame: &bytes[DivertPacket::<&[u8]>::LEN..data_end],
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    ///
    /// # Errors
    /// As [`divert_packet_len`].
    pub fn buffer_len(&self) -> Result<usize> {
        divert_packet_len(self.frame.len())
    }

    /// Writes the record, padding included.
    ///
    /// # Errors
    /// As [`divert_packet_len`]; [`Error::Truncated`] when the buffer is shorter.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        view: &mut DivertPacket<&mut T>,
    ) -> Result<()> {
        emit_divert_packet_fixed(view, &self.meta, self.frame.len())?;
        let at = DivertPacket::<&[u8]>::LEN;
        view.as_bytes_mut()[at..at + self.frame.len()].copy_from_slice(self.frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict, assert_strict_lengths};

    fn sample(frame: &[u8]) -> DivertPacketRepr<'_> {
        DivertPacketRepr {
            meta: DivertMeta {
                module: 0x0001_0000,
                serial: 77,
                link_id: 3,
                time_ns: 5,
                direction: Direction::Receive,
            },
            frame,
        }
    }

    #[test]
    fn a_packet_round_trips_and_refuses_bad_fields() {
        let frame = [9u8; 21];
        let repr = sample(&frame);
        let len = repr.buffer_len().unwrap();
        assert_eq!(len, 64);
        let mut buffer = vec![0xa5u8; len];
        repr.emit(&mut DivertPacket::new_unchecked(&mut buffer[..]))
            .unwrap();
        assert_eq!(
            DivertPacketRepr::parse(&DivertPacket::new_unchecked(&buffer[..])),
            Ok(repr)
        );
        let parse =
            |bytes: &[u8]| DivertPacketRepr::parse(&DivertPacket::new_unchecked(bytes)).map(|_| ());
        assert_strict_lengths(&buffer, parse);
        assert_reserved(&buffer, &[37..40, 61..64], parse);
        assert_refused(&buffer, 36, &[3], Error::BadValue, parse);
        assert_refused(&buffer, 32, &25u32.to_le_bytes(), Error::BadSize, parse);
        assert_refused(&buffer, 0, &60u32.to_le_bytes(), Error::Misaligned, parse);
        assert_eq!(divert_packet_len(MAX_FRAME_LEN + 1), Err(Error::BadValue));
    }

    #[test]
    fn a_batch_round_trips_and_refuses_bad_counts() {
        let parse = |bytes: &[u8]| DivertBatchRepr::parse(&DivertBatch::new_unchecked(bytes));
        let frames: [&[u8]; 2] = [&[1, 2, 3], &[4; 16]];
        let records: Vec<DivertPacketRepr<'_>> = frames.iter().map(|f| sample(f)).collect();
        let size = 48
            + records
                .iter()
                .map(|r| r.buffer_len().unwrap())
                .sum::<usize>();
        let mut buffer = vec![0xa5u8; size];
        let counters = DivertCounters {
            diverted: 10,
            queue_full: 3,
            expired: 1,
            refused: 2,
        };
        let repr = DivertBatchRepr {
            count: 2,
            counters,
            size,
        };
        repr.emit(&mut DivertBatch::new_unchecked(&mut buffer[..]))
            .unwrap();
        let mut at = 48;
        for record in &records {
            let len = record.buffer_len().unwrap();
            record
                .emit(&mut DivertPacket::new_unchecked(&mut buffer[at..at + len]))
                .unwrap();
            at += len;
        }
        assert_eq!(parse(&buffer), Ok(repr));
        let view = DivertBatch::new_unchecked(&buffer[..]);
        let parsed: Vec<DivertPacketRepr<'_>> = view.packets().collect::<Result<_>>().unwrap();
        assert_eq!(parsed, records);
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[12..16], parse);
        assert_refused(&buffer, 8, &1u32.to_le_bytes(), Error::BadCount, parse);
    }
}
