//! A request with nothing but the common header: `LIST_MODULES`, `LIST_HOOKS`,
//! `UNSUBSCRIBE_EVENTS`, `CAPTURE_STOP` (8 bytes).

use crate::header::{self, HEADER_LEN};
use crate::Result;

/// A request with no body.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct HeaderOnly;

impl HeaderOnly {
    /// Bytes of the request.
    pub const LEN: usize = HEADER_LEN;

    /// Checks a request that fills `buffer` exactly.
    ///
    /// # Errors
    /// As the common header's checks; any byte beyond the header is [`Error::BadSize`](crate::Error::BadSize).
    pub fn parse(buffer: &[u8]) -> Result<Self> {
        header::check(buffer, Self::LEN, true)?;
        Ok(HeaderOnly)
    }

    /// Writes the request into the start of `buffer`; returns its length.
    ///
    /// # Errors
    /// [`Error::Truncated`](crate::Error::Truncated) when `buffer` is shorter than 8 bytes.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize> {
        header::emit(buffer, Self::LEN)?;
        Ok(Self::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_reserved, assert_strict};

    #[test]
    fn round_trips_and_refuses_everything_else() {
        let mut buffer = [0xa5u8; 8];
        assert_eq!(HeaderOnly.emit(&mut buffer), Ok(8));
        assert_eq!(HeaderOnly::parse(&buffer), Ok(HeaderOnly));
        assert_strict(&buffer, HeaderOnly::parse);
        assert_reserved(&buffer, &[6..8], HeaderOnly::parse);
    }
}
