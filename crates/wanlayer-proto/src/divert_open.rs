//! The request of `IOCTL_WANLAYER_DIVERT_OPEN` and its answer: make the handle a user-mode hook.
//!
//! Request:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header; `size` is 40 + `blob_len` |
//! | 8 | 4 | altitude among the kernel hooks |
//! | 12 | 1 | directions: [`DIVERT_SEND`] and/or [`DIVERT_RECEIVE`] (not zero) |
//! | 13 | 1 | [`FailPolicy`]: what happens to packets not answered in time, or when the queue is full |
//! | 14 | 2 | reserved, zero |
//! | 16 | 4 | `queue_len`: packets held at once, 1 ..= [`MAX_DIVERT_QUEUE`] |
//! | 20 | 4 | `timeout_ms`: time limit of a held packet, 1 ..= [`MAX_DIVERT_TIMEOUT_MS`] |
//! | 24 | 4 | `max_frame`: longest frame diverted, [`MIN_FRAME_LEN`] ..= [`MAX_FRAME_LEN`]; longer ones get the fail policy |
//! | 28 | 4 | `blob_len`: bytes of the compiled filter, 1 ..= [`MAX_RULES_BLOB`] |
//! | 32 | 8 | reserved, zero |
//! | 40 | `blob_len` | the filter: a compiled rule set (`wanlayer-rules`); packets its `divert` rules match are diverted |
//!
//! Answer ([`DivertInfo`], 16 bytes): header, then the hook's identity (8, [`hook_id`](crate::hook_id)).

use crate::field::{enum_with_unknown, view};
use crate::header;
use crate::limits::{
    MAX_DIVERT_QUEUE, MAX_DIVERT_TIMEOUT_MS, MAX_FRAME_LEN, MAX_RULES_BLOB, MIN_FRAME_LEN,
};
use crate::{Error, Result};

/// Divert sends.
pub const DIVERT_SEND: u8 = 1;
/// Divert receives.
pub const DIVERT_RECEIVE: u8 = 2;

enum_with_unknown! {
    /// What happens to a diverted packet when the program is too slow or gone.
    pub enum FailPolicy(u8) {
        /// Fail open: the packet goes on as if the hook had passed it.
        Pass = 0,
        /// Fail closed: the packet is dropped.
        Drop = 1,
    }
}

view! {
    /// The fixed part of the `DIVERT_OPEN` request.
    pub struct DivertOpen, LEN = 40; {
        /// The altitude.
        altitude / set_altitude @ 8: u32,
        /// Directions diverted.
        directions / set_directions @ 12: u8,
        /// The fail policy.
        fail_policy / set_fail_policy @ 13: u8,
        /// Reserved, zero.
        reserved / set_reserved @ 14: u16,
        /// Packets held at once.
        queue_len / set_queue_len @ 16: u32,
        /// Time limit of a held packet, ms.
        timeout_ms / set_timeout_ms @ 20: u32,
        /// Longest frame diverted.
        max_frame / set_max_frame @ 24: u32,
        /// Bytes of the compiled filter.
        blob_len / set_blob_len @ 28: u32,
        /// Reserved, zero.
        reserved_tail / set_reserved_tail @ 32: u64,
    }
}

/// The parsed `DIVERT_OPEN` request; the filter borrows the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DivertOpenRepr<'a> {
    /// The altitude among the kernel hooks.
    pub altitude: u32,
    /// [`DIVERT_SEND`] and/or [`DIVERT_RECEIVE`].
    pub directions: u8,
    /// What happens to packets not answered in time.
    pub fail_policy: FailPolicy,
    /// Packets held at once.
    pub queue_len: u32,
    /// Time limit of a held packet, ms.
    pub timeout_ms: u32,
    /// Longest frame diverted.
    pub max_frame: u32,
    /// The compiled filter.
    pub blob: &'a [u8],
}

impl<'a> DivertOpenRepr<'a> {
    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; [`Error::BadValue`] for a field out of range
    /// or an unknown policy or direction bit; [`Error::BadSize`] when the size is not
    /// 40 + `blob_len`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &DivertOpen<&'a T>) -> Result<Self> {
        let bytes: &'a [u8] = view.clone().into_inner().as_ref();
        header::check(bytes, DivertOpen::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 || view.reserved_tail() != 0 {
            return Err(Error::Reserved);
        }
        let directions = view.directions();
        let fail_policy = FailPolicy::from(view.fail_policy());
        let blob_len = usize::try_from(view.blob_len()).map_err(|_| Error::BadValue)?;
        let max_frame = usize::try_from(view.max_frame()).map_err(|_| Error::BadValue)?;
        if directions == 0
            || directions & !(DIVERT_SEND | DIVERT_RECEIVE) != 0
            || !fail_policy.is_known()
            || !(1..=MAX_DIVERT_QUEUE).contains(&view.queue_len())
            || !(1..=MAX_DIVERT_TIMEOUT_MS).contains(&view.timeout_ms())
            || !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&max_frame)
            || !(1..=MAX_RULES_BLOB).contains(&blob_len)
        {
            return Err(Error::BadValue);
        }
        let blob = bytes
            .get(DivertOpen::<&[u8]>::LEN..)
            .ok_or(Error::Truncated)?;
        if blob.len() != blob_len {
            return Err(Error::BadSize);
        }
        Ok(Self {
            altitude: view.altitude(),
            directions,
            fail_policy,
            queue_len: view.queue_len(),
            timeout_ms: view.timeout_ms(),
            max_frame: view.max_frame(),
            blob,
        })
    }

    /// Bytes of the request.
    pub fn buffer_len(&self) -> usize {
        DivertOpen::<&[u8]>::LEN + self.blob.len()
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::BadValue`] for a filter over [`MAX_RULES_BLOB`]; [`Error::Truncated`] when the
    /// buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        view: &mut DivertOpen<&mut T>,
    ) -> Result<()> {
        let blob_len = u32::try_from(self.blob.len())
            .ok()
            .filter(|len| *len as usize <= MAX_RULES_BLOB)
            .ok_or(Error::BadValue)?;
        let len = self.buffer_len();
        header::emit(view.as_bytes_mut(), len)?;
        view.set_altitude(self.altitude);
        view.set_directions(self.directions);
        view.set_fail_policy(u8::from(self.fail_policy));
        view.set_reserved(0);
        view.set_queue_len(self.queue_len);
        view.set_timeout_ms(self.timeout_ms);
        view.set_max_frame(self.max_frame);
        view.set_blob_len(blob_len);
        view.set_reserved_tail(0);
        view.as_bytes_mut()[DivertOpen::<&[u8]>::LEN..len].copy_from_slice(self.blob);
        Ok(())
    }
}

view! {
    /// The answer to `DIVERT_OPEN`: the user-mode hook's identity in the hook chain.
    pub struct DivertInfo, LEN = 16; {
        /// The hook's identity ([`hook_id`](crate::hook_id)).
        hook / set_hook @ 8: u64,
    }
}

/// The parsed `DIVERT_OPEN` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DivertInfoRepr {
    /// The hook's identity ([`hook_id`](crate::hook_id)), as `LIST_HOOKS` and `QUERY_STATS` name it.
    pub hook: u64,
}

impl DivertInfoRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &DivertInfo<&T>) -> Result<Self> {
        header::check(view.as_bytes(), DivertInfo::<&[u8]>::LEN, true)?;
        Ok(Self { hook: view.hook() })
    }

    /// Bytes of the answer.
    pub const fn buffer_len(&self) -> usize {
        DivertInfo::<&[u8]>::LEN
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 16 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        view: &mut DivertInfo<&mut T>,
    ) -> Result<()> {
        header::emit(view.as_bytes_mut(), DivertInfo::<&[u8]>::LEN)?;
        view.set_hook(self.hook);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<DivertOpenRepr<'_>> {
        DivertOpenRepr::parse(&DivertOpen::new_unchecked(bytes))
    }

    fn check(bytes: &[u8]) -> Result<()> {
        parse(bytes).map(|_| ())
    }

    #[test]
    fn open_round_trips_and_refuses_bad_fields() {
        let blob = [7u8; 12];
        let repr = DivertOpenRepr {
            altitude: 500,
            directions: DIVERT_SEND | DIVERT_RECEIVE,
            fail_policy: FailPolicy::Drop,
            queue_len: 256,
            timeout_ms: 1000,
            max_frame: 1600,
            blob: &blob,
        };
        let mut buffer = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut DivertOpen::new_unchecked(&mut buffer[..]))
            .unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, check);
        assert_reserved(&buffer, &[14..16, 32..40], check);
        assert_refused(&buffer, 12, &[0], Error::BadValue, check);
        assert_refused(&buffer, 12, &[4], Error::BadValue, check);
        assert_refused(&buffer, 13, &[2], Error::BadValue, check);
        assert_refused(&buffer, 16, &0u32.to_le_bytes(), Error::BadValue, check);
        assert_refused(
            &buffer,
            16,
            &(MAX_DIVERT_QUEUE + 1).to_le_bytes(),
            Error::BadValue,
            check,
        );
        assert_refused(&buffer, 20, &0u32.to_le_bytes(), Error::BadValue, check);
        assert_refused(&buffer, 24, &13u32.to_le_bytes(), Error::BadValue, check);
        assert_refused(&buffer, 28, &11u32.to_le_bytes(), Error::BadSize, check);
        assert_refused(&buffer, 28, &0u32.to_le_bytes(), Error::BadValue, check);
        assert_eq!(
            repr.emit(&mut DivertOpen::new_unchecked(&mut buffer[..40])),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn info_round_trips() {
        let repr = DivertInfoRepr {
            hook: crate::hook_id(3, 9),
        };
        let mut buffer = [0xa5u8; 16];
        repr.emit(&mut DivertInfo::new_unchecked(&mut buffer[..]))
            .unwrap();
        let parse = |bytes: &[u8]| DivertInfoRepr::parse(&DivertInfo::new_unchecked(bytes));
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
    }
}
