//! The request of `IOCTL_WANLAYER_INJECT`: hand a frame to NdisWan (send) or to the IP layer
//! (receive) on one link, as the filter's own packet.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header; `size` is 24 + `frame_len` |
//! | 8 | 4 | module id, or 0 to find the link on any module |
//! | 12 | 1 | [`Direction`] |
//! | 13 | 1 | reserved, zero |
//! | 14 | 2 | `frame_len`: [`MIN_FRAME_LEN`] ..= [`MAX_FRAME_LEN`] |
//! | 16 | 8 | link id |
//! | 24 | `frame_len` | the Ethernet frame; its two MAC addresses are replaced by the link's |

use crate::codes::Direction;
use crate::field::view;
use crate::header;
use crate::limits::{MAX_FRAME_LEN, MIN_FRAME_LEN};
use crate::{Error, Result};

view! {
    /// The fixed part of the `INJECT` request.
    pub struct Inject, LEN = 24; {
        /// The module, or 0.
        module / set_module @ 8: u32,
        /// Direction.
        direction / set_direction @ 12: u8,
        /// Reserved, zero.
        reserved / set_reserved @ 13: u8,
        /// Bytes of the frame.
        frame_len / set_frame_len @ 14: u16,
        /// The link.
        link_id / set_link_id @ 16: u64,
    }
}

/// The parsed `INJECT` request; the frame borrows the buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InjectRepr<'a> {
    /// The module, `None` to find the link on any module.
    pub module: Option<u32>,
    /// Which way the frame goes.
    pub direction: Direction,
    /// The link.
    pub link_id: u64,
    /// The frame.
    pub frame: &'a [u8],
}

impl<'a> InjectRepr<'a> {
    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; [`Error::BadValue`] for an unknown direction,
    /// a zero link or a frame length out of range; [`Error::BadSize`] when the size is not
    /// 24 + `frame_len`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &Inject<&'a T>) -> Result<Self> {
        let bytes: &'a [u8] = view.clone().into_inner().as_ref();
        header::check(bytes, Inject::<&[u8]>::LEN, false)?;
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        let direction = Direction::from(view.direction());
        let frame_len = usize::from(view.frame_len());
        if !direction.is_known() || view.link_id() == 0 || !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame_len) {
            return Err(Error::BadValue);
        }
        if bytes.len() != Inject::<&[u8]>::LEN + frame_len {
            return Err(Error::BadSize);
        }
        Ok(Self {
            module: Some(view.module()).filter(|module| *module != 0),
            direction,
            link_id: view.link_id(),
            frame: &bytes[Inject::<&[u8]>::LEN..],
        })
    }

    /// Bytes of the request.
    pub fn buffer_len(&self) -> usize {
        Inject::<&[u8]>::LEN + self.frame.len()
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::BadValue`] for values [`parse`](Self::parse) would refuse; [`Error::Truncated`]
    /// when the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut Inject<&mut T>) -> Result<()> {
        if !self.direction.is_known() || self.link_id == 0 || !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&self.frame.len()) {
            return Err(Error::BadValue);
        }
        let len = self.buffer_len();
        header::emit(view.as_bytes_mut(), len)?;
        view.set_module(self.module.unwrap_or(0));
        view.set_direction(self.direction.into());
        view.set_reserved(0);
        view.set_frame_len(self.frame.len() as u16);
        view.set_link_id(self.link_id);
        view.as_bytes_mut()[Inject::<&[u8]>::LEN..len].copy_from_slice(self.frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<InjectRepr<'_>> {
        InjectRepr::parse(&Inject::new_unchecked(bytes))
    }

    fn check(bytes: &[u8]) -> Result<()> {
        parse(bytes).map(|_| ())
    }

    #[test]
    fn round_trips_and_refuses_bad_frames() {
        let frame = [0x11u8; 60];
        let repr = InjectRepr { module: None, direction: Direction::Send, link_id: 7, frame: &frame };
        let mut buffer = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Inject::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, check);
        assert_reserved(&buffer, &[13..14], check);
        assert_refused(&buffer, 12, &[0], Error::BadValue, check);
        assert_refused(&buffer, 16, &0u64.to_le_bytes(), Error::BadValue, check);
        assert_refused(&buffer, 14, &13u16.to_le_bytes(), Error::BadValue, check);
        assert_refused(&buffer, 14, &59u16.to_le_bytes(), Error::BadSize, check);
        let short = InjectRepr { frame: &frame[..10], ..repr };
        assert_eq!(short.emit(&mut Inject::new_unchecked(&mut buffer[..])), Err(Error::BadValue));
    }
}
