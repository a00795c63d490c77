//! The request of `IOCTL_WANLAYER_CAPTURE_START`: capture the traffic of one link, one module or
//! everything into this handle's ring.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 2 | [`Scope`]: all, module, link or rule |
//! | 10 | 2 | reserved, zero |
//! | 12 | 4 | `snap_len`: bytes kept of each frame, 1 ..= [`MAX_SNAP_LEN`] |
//! | 16 | 8 | target: module id, link id or rule id; zero for all |
//! | 24 | 4 | `slots`: records the ring holds, 1 ..= [`MAX_CAPTURE_SLOTS`] |
//! | 28 | 4 | reserved, zero |
//!
//! `slots × snap_len` is at most [`MAX_CAPTURE_BYTES`]. [`Scope::All`] survives adapter churn
//! (modules detaching and attaching again under new identities); a module or link scope ends
//! with its module or link. A rule scope records the packets matched by the rule set's `capture`
//! rule of that id (and only those: the other scopes record what the data path sees, rule
//! captures go to rule sessions only); it survives rule set replacements, and captures nothing
//! while no capture rule has that id.

use crate::codes::Scope;
use crate::field::view;
use crate::header;
use crate::limits::{MAX_CAPTURE_BYTES, MAX_CAPTURE_SLOTS, MAX_SNAP_LEN};
use crate::scope_request::Target;
use crate::{Error, Result};

view! {
    /// The `CAPTURE_START` request.
    pub struct CaptureStart, LEN = 32; {
        /// The scope.
        scope / set_scope @ 8: u16,
        /// Reserved, zero.
        reserved_a / set_reserved_a @ 10: u16,
        /// Bytes kept of each frame.
        snap_len / set_snap_len @ 12: u32,
        /// The module or link.
        target / set_target @ 16: u64,
        /// Ring records.
        slots / set_slots @ 24: u32,
        /// Reserved, zero.
        reserved_b / set_reserved_b @ 28: u32,
    }
}

/// The parsed `CAPTURE_START` request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CaptureStartRepr {
    /// What to capture: [`Target::All`], [`Target::Module`], [`Target::Link`] or [`Target::Rule`].
    pub target: Target,
    /// Bytes kept of each frame.
    pub snap_len: u32,
    /// Ring records.
    pub slots: u32,
}

impl CaptureStartRepr {
    /// Checks the values a request must hold.
    fn check(&self) -> Result<()> {
        let bytes = u64::from(self.slots) * u64::from(self.snap_len);
        let sized =
            (1..=MAX_SNAP_LEN).contains(&self.snap_len) && (1..=MAX_CAPTURE_SLOTS).contains(&self.slots) && bytes <= MAX_CAPTURE_BYTES;
        if sized && !matches!(self.target, Target::Hook(_)) {
            Ok(())
        } else {
            Err(Error::BadValue)
        }
    }

    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::Reserved`]; [`Error::BadValue`] for a hook scope, a bad
    /// target or sizes out of range.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &CaptureStart<&T>) -> Result<Self> {
        header::check(view.as_bytes(), CaptureStart::<&[u8]>::LEN, true)?;
        if view.reserved_a() != 0 || view.reserved_b() != 0 {
            return Err(Error::Reserved);
        }
        let repr = Self { target: Target::from_wire(view.scope(), view.target())?, snap_len: view.snap_len(), slots: view.slots() };
        repr.check()?;
        Ok(repr)
    }

    /// Bytes of the request.
    pub const fn buffer_len(&self) -> usize {
        32
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::BadValue`] for values [`parse`](Self::parse) would refuse; [`Error::Truncated`]
    /// when the buffer is shorter than 32 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut CaptureStart<&mut T>) -> Result<()> {
        self.check()?;
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        let (scope, target): (Scope, u64) = self.target.to_wire();
        view.set_scope(scope.into());
        view.set_reserved_a(0);
        view.set_snap_len(self.snap_len);
        view.set_target(target);
        view.set_slots(self.slots);
        view.set_reserved_b(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<CaptureStartRepr> {
        CaptureStartRepr::parse(&CaptureStart::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_and_refuses_bad_sizes_and_scopes() {
        for target in [Target::All, Target::Module(0x0001_0000), Target::Link(4), Target::Rule(7)] {
            let repr = CaptureStartRepr { target, snap_len: 1600, slots: 1024 };
            let mut buffer = [0xa5u8; 32];
            repr.emit(&mut CaptureStart::new_unchecked(&mut buffer[..])).unwrap();
            assert_eq!(parse(&buffer), Ok(repr));
            assert_strict(&buffer, parse);
            assert_reserved(&buffer, &[10..12, 28..32], parse);
            assert_refused(&buffer, 12, &0u32.to_le_bytes(), Error::BadValue, parse);
            assert_refused(&buffer, 24, &0u32.to_le_bytes(), Error::BadValue, parse);
            assert_refused(&buffer, 24, &MAX_CAPTURE_SLOTS.to_le_bytes(), Error::BadValue, parse);
            assert_refused(&buffer, 8, &3u16.to_le_bytes(), Error::BadValue, parse);
            assert_refused(&buffer, 8, &5u16.to_le_bytes(), Error::BadValue, parse);
        }
        let hook = CaptureStartRepr { target: Target::Hook(1), snap_len: 1, slots: 1 };
        assert_eq!(hook.emit(&mut CaptureStart::new_unchecked(&mut [0u8; 32][..])), Err(Error::BadValue));
    }
}
