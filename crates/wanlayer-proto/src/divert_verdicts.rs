//! The request of `IOCTL_WANLAYER_DIVERT_VERDICTS` and its answer: many verdicts at once.
//!
//! Request:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `count`: 1 ..= [`MAX_READ_BATCH`] |
//! | 12 | 4 | reserved, zero |
//! | 16 | ... | `count` [`DivertVerdict`]s, each its own length, a multiple of 8 |
//!
//! Each [`DivertVerdict`]:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | `record_len` (a multiple of 8) |
//! | 4 | 4 | module id of the ticket |
//! | 8 | 8 | ticket serial, as the packet's record gave it |
//! | 16 | 1 | [`DivertAction`] |
//! | 17 | 3 | reserved, zero |
//! | 20 | 4 | `frame_len`: the replacement frame's bytes ([`DivertAction::Replace`] only: [`MIN_FRAME_LEN`] ..= [`MAX_FRAME_LEN`]; else 0) |
//! | 24 | ... | the replacement frame, zero padding to 8 |
//!
//! Answer ([`DivertResult`], 16 bytes): header, `applied` (4), `refused` (4). Verdicts are
//! applied in order; one that names no packet this handle holds (answered already, released by
//! the engine at line down, pause or detach, expired, or another handle's) is refused and counted,
//! and the others still apply.

use crate::field::{align8, enum_with_unknown, is_zero, view};
use crate::header;
use crate::limits::{MAX_FRAME_LEN, MAX_READ_BATCH, MIN_FRAME_LEN};
use crate::records::{check_variable, own_len, VariableRecords};
use crate::{Error, Result};

enum_with_unknown! {
    /// What the program decided about a diverted packet.
    pub enum DivertAction(u8) {
        /// Hand it on along the rest of the chain.
        Pass = 1,
        /// Drop it (a hook drop).
        Drop = 2,
        /// Hand on the replacement frame instead (the packet's frame is replaced, then it goes on).
        Replace = 3,
    }
}

view! {
    /// The fixed part of the `DIVERT_VERDICTS` request.
    pub struct DivertVerdicts, LEN = 16; {
        /// Records that follow.
        count / set_count @ 8: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 12: u32,
    }
}

view! {
    /// The fixed part of one verdict.
    pub struct DivertVerdict, LEN = 24; {
        /// Bytes of the record.
        record_len / set_record_len @ 0: u32,
        /// The ticket's module.
        module / set_module @ 4: u32,
        /// The ticket serial.
        serial / set_serial @ 8: u64,
        /// The action.
        action / set_action @ 16: u8,
        /// Reserved, zero.
        reserved / set_reserved @ 17: [u8; 3],
        /// Bytes of the replacement frame.
        frame_len / set_frame_len @ 20: u32,
    }
}

/// One parsed verdict; the replacement frame borrows the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DivertVerdictRepr<'a> {
    /// The ticket's module.
    pub module: u32,
    /// The ticket serial.
    pub serial: u64,
    /// The action.
    pub action: DivertAction,
    /// The replacement frame ([`DivertAction::Replace`] only; empty otherwise).
    pub frame: &'a [u8],
}

impl<'a> DivertVerdictRepr<'a> {
    /// Parses one record that fills the buffer exactly.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Misaligned`], [`Error::BadSize`], [`Error::BadValue`]
    /// (unknown action, a frame with an action other than replace or of a bad length),
    /// [`Error::Reserved`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &DivertVerdict<&'a T>) -> Result<Self> {
        view.check_len()?;
        let bytes: &'a [u8] = view.clone().into_inner().as_ref();
        let record_len = own_len(view.record_len(), bytes)?;
        if view.reserved() != [0; 3] {
            return Err(Error::Reserved);
        }
        let action = DivertAction::from(view.action());
        let frame_len = usize::try_from(view.frame_len()).map_err(|_| Error::BadValue)?;
        let frame_ok = match action {
            DivertAction::Replace => (MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame_len),
            DivertAction::Pass | DivertAction::Drop => frame_len == 0,
            DivertAction::Unknown(_) => false,
        };
        if !frame_ok {
            return Err(Error::BadValue);
        }
        let data_end = DivertVerdict::<&[u8]>::LEN + frame_len;
        if align8(data_end) != Some(record_len) {
            return Err(Error::BadSize);
        }
        if !is_zero(&bytes[data_end..]) {
            return Err(Error::Reserved);
        }
        Ok(Self {
            module: view.module(),
            serial: view.serial(),
            action,
            frame: &bytes[DivertVerdict::<&[u8]>::LEN..data_end],
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    ///
    /// # Errors
    /// [`Error::BadValue`] for a frame over [`MAX_FRAME_LEN`].
    pub fn buffer_len(&self) -> Result<usize> {
        if self.frame.len() > MAX_FRAME_LEN {
            return Err(Error::BadValue);
        }
        align8(DivertVerdict::<&[u8]>::LEN + self.frame.len()).ok_or(Error::BadValue)
    }

    /// Writes the record, padding included.
    ///
    /// # Errors
    /// As [`buffer_len`](Self::buffer_len); [`Error::Truncated`] when the buffer is shorter.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        view: &mut DivertVerdict<&mut T>,
    ) -> Result<()> {
        let len = self.buffer_len()?;
        let bytes = view.as_bytes_mut().get_mut(..len).ok_or(Error::Truncated)?;
        let at = DivertVerdict::<&[u8]>::LEN;
        bytes[at..at + self.frame.len()].copy_from_slice(self.frame);
        bytes[at + self.frame.len()..].fill(0);
        let mut view = DivertVerdict::new_unchecked(bytes);
        view.set_record_len(len as u32);
        view.set_module(self.module);
        view.set_serial(self.serial);
        view.set_action(u8::from(self.action));
        view.set_reserved([0; 3]);
        view.set_frame_len(self.frame.len() as u32);
        Ok(())
    }
}

/// The parsed fixed part of the `DIVERT_VERDICTS` request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DivertVerdictsRepr {
    /// Verdicts that follow.
    pub count: u32,
    /// Bytes of the whole request, verdicts included.
    pub size: usize,
}

impl DivertVerdictsRepr {
    /// Parses a request that fills the buffer exactly, with every verdict.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; [`Error::BadValue`] for a count out of
    /// range; the verdicts' errors; [`Error::BadCount`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &DivertVerdicts<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        let size = header::check(bytes, DivertVerdicts::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        if !(1..=MAX_READ_BATCH).contains(&view.count()) {
            return Err(Error::BadValue);
        }
        check_variable(
            &bytes[DivertVerdicts::<&[u8]>::LEN..],
            view.count(),
            DivertVerdict::<&[u8]>::LEN,
            |record| DivertVerdictRepr::parse(&DivertVerdict::new_unchecked(record)).map(|_| ()),
        )?;
        Ok(Self {
            count: view.count(),
            size,
        })
    }

    /// Writes the header and the fixed part of a request of `self.size` bytes (verdicts follow
    /// the first [`DivertVerdicts::LEN`] bytes).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than `size`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        view: &mut DivertVerdicts<&mut T>,
    ) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.size)?;
        view.set_count(self.count);
        view.set_reserved(0);
        Ok(())
    }
}

impl<T: AsRef<[u8]>> DivertVerdicts<T> {
    /// The verdicts of a request that passed [`DivertVerdictsRepr::parse`].
    pub fn verdicts(&self) -> impl Iterator<Item = Result<DivertVerdictRepr<'_>>> {
        let body = self
            .as_bytes()
            .get(DivertVerdicts::<&[u8]>::LEN..)
            .unwrap_or_default();
        let count = if body.is_empty() { 0 } else { self.count() };
        VariableRecords::new(body, count, DivertVerdict::<&[u8]>::LEN)
            .map(|record| DivertVerdictRepr::parse(&DivertVerdict::new_unchecked(record)))
    }
}

view! {
    /// The answer to `DIVERT_VERDICTS`.
    pub struct DivertResult, LEN = 16; {
        /// Verdicts applied.
        applied / set_applied @ 8: u32,
        /// Verdicts refused.
        refused / set_refused @ 12: u32,
    }
}

/// The parsed `DIVERT_VERDICTS` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DivertResultRepr {
    /// Verdicts applied.
    pub applied: u32,
    /// Verdicts refused: no packet this handle holds under that ticket, or a replacement that
    /// could not be made.
    pub refused: u32,
}

impl DivertResultRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &DivertResult<&T>) -> Result<Self> {
        header::check(view.as_bytes(), DivertResult::<&[u8]>::LEN, true)?;
        Ok(Self {
            applied: view.applied(),
            refused: view.refused(),
        })
    }

    /// Bytes of the answer.
    pub const fn buffer_len(&self) -> usize {
        DivertResult::<&[u8]>::LEN
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 16 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        view: &mut DivertResult<&mut T>,
    ) -> Result<()> {
        header::emit(view.as_bytes_mut(), DivertResult::<&[u8]>::LEN)?;
        view.set_applied(self.applied);
        view.set_refused(self.refused);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict, assert_strict_lengths};

    #[test]
    fn verdicts_round_trip_and_refuse_bad_fields() {
        let frame = [0x45u8; 20];
        let records = [
            DivertVerdictRepr {
                module: 0x0001_0000,
                serial: 5,
                action: DivertAction::Pass,
                frame: &[],
            },
            DivertVerdictRepr {
                module: 0x0001_0000,
                serial: 6,
                action: DivertAction::Replace,
                frame: &frame,
            },
        ];
        let size = 16
            + records
                .iter()
                .map(|r| r.buffer_len().unwrap())
                .sum::<usize>();
        let mut buffer = vec![0xa5u8; size];
        let repr = DivertVerdictsRepr { count: 2, size };
        repr.emit(&mut DivertVerdicts::new_unchecked(&mut buffer[..]))
            .unwrap();
        let mut at = 16;
        for record in &records {
            let len = record.buffer_len().unwrap();
            record
                .emit(&mut DivertVerdict::new_unchecked(&mut buffer[at..at + len]))
                .unwrap();
            at += len;
        }
        let parse = |bytes: &[u8]| DivertVerdictsRepr::parse(&DivertVerdicts::new_unchecked(bytes));
        assert_eq!(parse(&buffer), Ok(repr));
        let view = DivertVerdicts::new_unchecked(&buffer[..]);
        let parsed: Vec<DivertVerdictRepr<'_>> = view.verdicts().collect::<Result<_>>().unwrap();
        assert_eq!(parsed, records);
        assert_strict(&buffer, parse);
        assert_reserved(
            &buffer,
            &[12..16, 16 + 17..16 + 20, 40 + 17..40 + 20, 40 + 44..40 + 48],
            parse,
        );
        assert_refused(&buffer, 8, &0u32.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 8, &1u32.to_le_bytes(), Error::BadCount, parse);
        assert_refused(&buffer, 16 + 16, &[4], Error::BadValue, parse);
        assert_refused(
            &buffer,
            16 + 20,
            &1u32.to_le_bytes(),
            Error::BadValue,
            parse,
        );
        assert_refused(
            &buffer,
            40 + 20,
            &13u32.to_le_bytes(),
            Error::BadValue,
            parse,
        );
        let one = |bytes: &[u8]| {
            DivertVerdictRepr::parse(&DivertVerdict::new_unchecked(bytes)).map(|_| ())
        };
        assert_strict_lengths(&buffer[40..], one);
    }

    #[test]
    fn the_result_round_trips() {
        let repr = DivertResultRepr {
            applied: 250,
            refused: 6,
        };
        let mut buffer = [0xa5u8; 16];
        repr.emit(&mut DivertResult::new_unchecked(&mut buffer[..]))
            .unwrap();
        let parse = |bytes: &[u8]| DivertResultRepr::parse(&DivertResult::new_unchecked(bytes));
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
    }
}
