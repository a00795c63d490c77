//! The answer to `IOCTL_WANLAYER_QUERY_STATS` for [`Scope::Link`](crate::Scope::Link).
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 24 | the request's prefix echoed |
//! | 24 | 8 × 3 | send packets, bytes, drops |
//! | 48 | 8 × 3 | receive packets, bytes, drops |
//! | 72 | 4 | the module the link lives on |
//! | 76 | 4 | reserved, zero |

use crate::field::view;
use crate::header;
use crate::link_entry::TrafficRepr;
use crate::scope_request::{emit_prefix, parse_prefix, Target};
use crate::{Error, Result};

view! {
    /// The link statistics answer.
    pub struct LinkStats, LEN = 80; {
        /// Packets sent.
        send_packets / set_send_packets @ 24: u64,
        /// Bytes sent.
        send_bytes / set_send_bytes @ 32: u64,
        /// Sends dropped.
        send_drops / set_send_drops @ 40: u64,
        /// Packets received.
        receive_packets / set_receive_packets @ 48: u64,
        /// Bytes received.
        receive_bytes / set_receive_bytes @ 56: u64,
        /// Receives dropped.
        receive_drops / set_receive_drops @ 64: u64,
        /// The link's module.
        module / set_module @ 72: u32,
        /// Reserved, zero.
        reserved / set_reserved @ 76: u32,
    }
}

/// The parsed link statistics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LinkStatsRepr {
    /// The link.
    pub link: u64,
    /// Its module.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serialize::module_id"))]
    pub module: u32,
    /// Sends.
    pub send: TrafficRepr,
    /// Receives.
    pub receive: TrafficRepr,
}

impl LinkStatsRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks, [`Error::Reserved`], [`Error::BadValue`] when the prefix does not
    /// name a link.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &LinkStats<&T>) -> Result<Self> {
        header::check(view.as_bytes(), LinkStats::<&[u8]>::LEN, true)?;
        let Target::Link(link) = parse_prefix(view.as_bytes())? else { return Err(Error::BadValue) };
        if view.reserved() != 0 {
            return Err(Error::Reserved);
        }
        Ok(Self {
            link,
            module: view.module(),
            send: TrafficRepr { packets: view.send_packets(), bytes: view.send_bytes(), drops: view.send_drops() },
            receive: TrafficRepr { packets: view.receive_packets(), bytes: view.receive_bytes(), drops: view.receive_drops() },
        })
    }

    /// Bytes of the answer.
    pub const fn buffer_len(&self) -> usize {
        80
    }

    /// Writes the answer.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 80 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut LinkStats<&mut T>) -> Result<()> {
        emit_prefix(view.as_bytes_mut(), self.buffer_len(), Target::Link(self.link))?;
        view.set_send_packets(self.send.packets);
        view.set_send_bytes(self.send.bytes);
        view.set_send_drops(self.send.drops);
        view.set_receive_packets(self.receive.packets);
        view.set_receive_bytes(self.receive.bytes);
        view.set_receive_drops(self.receive.drops);
        view.set_module(self.module);
        view.set_reserved(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<LinkStatsRepr> {
        LinkStatsRepr::parse(&LinkStats::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_and_refuses_malformed_answers() {
        let repr = LinkStatsRepr {
            link: 12,
            module: 0x0001_0001,
            send: TrafficRepr { packets: 1, bytes: 2, drops: 3 },
            receive: TrafficRepr { packets: 4, bytes: 5, drops: 6 },
        };
        let mut buffer = [0xa5u8; 80];
        repr.emit(&mut LinkStats::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer), Ok(repr));
        assert_strict(&buffer, parse);
        assert_reserved(&buffer, &[10..16, 76..80], parse);
        assert_refused(&buffer, 8, &1u16.to_le_bytes(), Error::BadValue, parse);
    }
}
