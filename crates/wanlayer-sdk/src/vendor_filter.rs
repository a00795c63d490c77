//! [`VendorFilter`]: the one trait a vendor implements. The same implementation runs in a kernel
//! driver (`kernel`) and in the simulator (`kernel` built for the host, against wanlayer.sys's
//! own handlers over the kernel model), registered both times through the C-ABI table of
//! [`crate::abi`].

use crate::abi::{self, LinkInfo};
use crate::client::{Packet, Provider};

/// Which way a packet travels.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Direction {
    /// From the IP layer down to NdisWan.
    Send,
    /// From NdisWan up to the IP layer.
    Receive,
}

/// What a filter decides about a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Verdict {
    /// Hand it on unchanged.
    Pass,
    /// Drop it: a send is completed with a failure status, a receive is returned. Counted.
    Drop,
    /// Hand it on after the edits made through [`Packet::write`] or [`Packet::replace`].
    Modify,
    /// Keep it under [`Packet::ticket`] until [`Provider::reinject`]. wanlayer completes it
    /// itself (and the ticket goes stale) when the adapter pauses, the link goes down or the
    /// filter deregisters, so a filter that never gives a packet back cannot wedge anything.
    Take,
}

impl Verdict {
    /// The `WL_VERDICT_*` value.
    pub fn to_raw(self) -> u32 {
        match self {
            Verdict::Pass => abi::VERDICT_PASS,
            Verdict::Drop => abi::VERDICT_DROP,
            Verdict::Modify => abi::VERDICT_MODIFY,
            Verdict::Take => abi::VERDICT_TAKE,
        }
    }

    /// The verdict of a `WL_VERDICT_*` value; `None` for any other.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            abi::VERDICT_PASS => Some(Verdict::Pass),
            abi::VERDICT_DROP => Some(Verdict::Drop),
            abi::VERDICT_MODIFY => Some(Verdict::Modify),
            abi::VERDICT_TAKE => Some(Verdict::Take),
            _ => None,
        }
    }
}

/// What happens to a taken packet handed back with [`Provider::reinject`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ReinjectVerdict {
    /// Continue along the chain after the filter, then on to the destination.
    Pass,
    /// Drop it (counted as the filter's drop).
    Drop,
}

impl ReinjectVerdict {
    /// The `WL_REINJECT_*` value.
    pub fn to_raw(self) -> u32 {
        match self {
            ReinjectVerdict::Pass => abi::REINJECT_PASS,
            ReinjectVerdict::Drop => abi::REINJECT_DROP,
        }
    }

    /// The verdict of a `WL_REINJECT_*` value; `None` for any other.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            abi::REINJECT_PASS => Some(ReinjectVerdict::Pass),
            abi::REINJECT_DROP => Some(ReinjectVerdict::Drop),
            _ => None,
        }
    }
}

/// A filter between NdisWan and the IP layer, registered through wanlayer's provider interface.
///
/// # IRQL
/// Every method but [`VendorFilter::on_provider_unload`] may be called at `DISPATCH_LEVEL`, on any
/// processor, concurrently with the others and with itself: never block; guard shared state with
/// [`crate::sync::SpinLock`] and call no table function while holding it.
///
/// # Ownership
/// A packet is the filter's only during the call, unless it returns [`Verdict::Take`]; then it is
/// wanlayer's, held under its ticket, until [`Provider::reinject`] (or until wanlayer completes
/// it: see [`Verdict::Take`]).
pub trait VendorFilter: Send + Sync + 'static {
    /// A link came up or changed. Return a `MaximumTotalSize` lower than the link's to have the
    /// lower one reported to the IP layer.
    fn on_line_up(&self, provider: &Provider<'_>, link: &LinkInfo) -> Option<u32> {
        let _ = (provider, link);
        None
    }

    /// A link went down. Packets of it the filter still holds are completed by wanlayer after this
    /// returns; their tickets go stale.
    fn on_line_down(&self, provider: &Provider<'_>, link: &LinkInfo) {
        let _ = (provider, link);
    }

    /// A packet on its way down.
    fn on_send(&self, provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        let _ = (provider, packet);
        Verdict::Pass
    }

    /// A packet on its way up.
    fn on_receive(&self, provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        let _ = (provider, packet);
        Verdict::Pass
    }

    /// wanlayer revoked the registration while unloading (the vendor let go of its reference to
    /// the control device before deregistering): no callback runs any more, every packet the
    /// filter took has been handed on. Stop every use of the table (timers included) before
    /// returning.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    fn on_provider_unload(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_round_trip_through_their_raw_values() {
        for verdict in [Verdict::Pass, Verdict::Drop, Verdict::Modify, Verdict::Take] {
            assert_eq!(Verdict::from_raw(verdict.to_raw()), Some(verdict));
        }
        assert_eq!(Verdict::from_raw(4), None);
        for verdict in [ReinjectVerdict::Pass, ReinjectVerdict::Drop] {
            assert_eq!(ReinjectVerdict::from_raw(verdict.to_raw()), Some(verdict));
        }
        assert_eq!(ReinjectVerdict::from_raw(2), None);
    }
}
