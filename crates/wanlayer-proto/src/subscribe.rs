//! The request of `IOCTL_WANLAYER_SUBSCRIBE_EVENTS`: make this handle an event subscriber.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | `capacity`: the handle's event ring, in records, 1 ..= [`MAX_SUBSCRIBER_CAPACITY`] |
//! | 12 | 4 | `mask`: the [`EventKind`]s wanted ([`EventKind::mask_bit`]), nonzero, known bits only |
//!
//! The ring is the handle's own: several tools watch at once, each losing (and counting) only
//! what its own ring could not hold. It lives until the handle's cleanup or
//! `UNSUBSCRIBE_EVENTS`.

use crate::codes::EventKind;
use crate::field::view;
use crate::header;
use crate::limits::MAX_SUBSCRIBER_CAPACITY;
use crate::{Error, Result};

view! {
    /// The `SUBSCRIBE_EVENTS` request.
    pub struct Subscribe, LEN = 16; {
        /// Ring capacity in records.
        capacity / set_capacity @ 8: u32,
        /// Kinds wanted.
        mask / set_mask @ 12: u32,
    }
}

/// The parsed `SUBSCRIBE_EVENTS` request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SubscribeRepr {
    /// Ring capacity in records.
    pub capacity: u32,
    /// Kinds wanted.
    pub mask: u32,
}

impl SubscribeRepr {
    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks; [`Error::BadValue`] for a capacity out of range, an empty mask or
    /// unknown mask bits.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &Subscribe<&T>) -> Result<Self> {
        header::check(view.as_bytes(), Subscribe::<&[u8]>::LEN, true)?;
        let (capacity, mask) = (view.capacity(), view.mask());
        if !(1..=MAX_SUBSCRIBER_CAPACITY).contains(&capacity) || mask == 0 || mask & !EventKind::ALL_MASK != 0 {
            return Err(Error::BadValue);
        }
        Ok(Self { capacity, mask })
    }

    /// Bytes of the request.
    pub const fn buffer_len(&self) -> usize {
        16
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 16 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut Subscribe<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_capacity(self.capacity);
        view.set_mask(self.mask);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_strict};

    fn parse(bytes: &[u8]) -> Result<SubscribeRepr> {
        SubscribeRepr::parse(&Subscribe::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_and_refuses_bad_capacities_and_masks() {
        let repr = SubscribeRepr { capacity: 256, mask: EventKind::ALL_MASK };
        let mut buffer = [0xa5u8; 16];
        repr.emit(&mut Subscribe::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
        assert_refused(&buffer, 8, &0u32.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 8, &(MAX_SUBSCRIBER_CAPACITY + 1).to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 12, &0u32.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 12, &(1u32 << 11).to_le_bytes(), Error::BadValue, parse);
    }
}
