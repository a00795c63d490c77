//! The answer to `IOCTL_WANLAYER_CAPTURE_START`.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 32 | the request echoed (header, scope, snap length, target, slots) |
//! | 32 | 8 | the engine clock when the capture started (ns): with the caller's own clock read at the answer, it maps record times to wall-clock time |

use crate::capture_start::{CaptureStart, CaptureStartRepr};
use crate::field::view;
use crate::header;
use crate::Result;

view! {
    /// The `CAPTURE_START` answer.
    pub struct CaptureSession, LEN = 40; {
        /// The engine clock at the start (ns).
        start_time_ns / set_start_time_ns @ 32: u64,
    }
}

/// The parsed `CAPTURE_START` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CaptureSessionRepr {
    /// The capture as started.
    pub capture: CaptureStartRepr,
    /// The engine clock at the start (ns).
    pub start_time_ns: u64,
}

impl CaptureSessionRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks and those of [`CaptureStartRepr::parse`] on the echoed request.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &CaptureSession<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        header::check(bytes, CaptureSession::<&[u8]>::LEN, true)?;
        let mut echoed = [0u8; 32];
        echoed.copy_from_slice(&bytes[..32]);
        echoed[..4].copy_from_slice(&32u32.to_le_bytes());
        let capture = CaptureStartRepr::parse(&CaptureStart::new_unchecked(&echoed[..]))?;
        Ok(Self { capture, start_time_ns: view.start_time_ns() })
    }

    /// Bytes of the answer.
    pub const fn buffer_len(&self) -> usize {
        40
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// As [`CaptureStartRepr::emit`]; [`Error::Truncated`](crate::Error::Truncated) when the
    /// buffer is shorter than 40 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut CaptureSession<&mut T>) -> Result<()> {
        view.check_len()?;
        let bytes = view.as_bytes_mut();
        self.capture.emit(&mut CaptureStart::new_unchecked(&mut bytes[..32]))?;
        header::emit(bytes, self.buffer_len())?;
        view.set_start_time_ns(self.start_time_ns);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope_request::Target;
    use crate::testing::{assert_reserved, assert_strict};

    #[test]
    fn round_trips() {
        let parse = |bytes: &[u8]| CaptureSessionRepr::parse(&CaptureSession::new_unchecked(bytes));
        let repr = CaptureSessionRepr { capture: CaptureStartRepr { target: Target::Link(2), snap_len: 96, slots: 8 }, start_time_ns: 5 };
        let mut buffer = [0xa5u8; 40];
        repr.emit(&mut CaptureSession::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[10..12, 28..32], parse);
    }
}
