//! The answer to `IOCTL_WANLAYER_SUBSCRIBE_EVENTS`.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 4 | ring capacity, in records |
//! | 12 | 4 | mask of the kinds wanted |
//! | 16 | 8 | the sequence number the next event will carry |

use crate::field::view;
use crate::header;
use crate::Result;

view! {
    /// The `SUBSCRIBE_EVENTS` answer.
    pub struct Subscription, LEN = 24; {
        /// Ring capacity in records.
        capacity / set_capacity @ 8: u32,
        /// Kinds wanted.
        mask / set_mask @ 12: u32,
        /// Sequence number of the next event.
        next_sequence / set_next_sequence @ 16: u64,
    }
}

/// The parsed `SUBSCRIBE_EVENTS` answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SubscriptionRepr {
    /// Ring capacity in records.
    pub capacity: u32,
    /// Kinds wanted.
    pub mask: u32,
    /// Sequence number of the next event.
    pub next_sequence: u64,
}

impl SubscriptionRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &Subscription<&T>) -> Result<Self> {
        header::check(view.as_bytes(), Subscription::<&[u8]>::LEN, true)?;
        Ok(Self { capacity: view.capacity(), mask: view.mask(), next_sequence: view.next_sequence() })
    }

    /// Bytes of the answer.
    pub const fn buffer_len(&self) -> usize {
        24
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// [`Error::Truncated`](crate::Error::Truncated) when the buffer is shorter than 24 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut Subscription<&mut T>) -> Result<()> {
        header::emit(view.as_bytes_mut(), self.buffer_len())?;
        view.set_capacity(self.capacity);
        view.set_mask(self.mask);
        view.set_next_sequence(self.next_sequence);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_strict;

    #[test]
    fn round_trips() {
        let repr = SubscriptionRepr { capacity: 64, mask: 0x1ff, next_sequence: 12 };
        let mut buffer = [0xa5u8; 24];
        repr.emit(&mut Subscription::new_unchecked(&mut buffer[..])).unwrap();
        let parse = |bytes: &[u8]| SubscriptionRepr::parse(&Subscription::new_unchecked(bytes));
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
    }
}
