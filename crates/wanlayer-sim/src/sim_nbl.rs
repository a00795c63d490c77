//! Simulated `NET_BUFFER_LIST`s and chains of them.
//!
//! A [`SimPacket`] is deliberately [`Clone`]: C code can complete the same NBL pointer twice, and the
//! simulator must be able to express (and catch) that. A clone keeps the [`PacketId`], which is
//! what the [ledger](crate::ledger) tracks, so the second hand-off of a clone is a double
//! completion, exactly as the second hand-off of the same pointer would be.

use std::collections::VecDeque;
use std::fmt;

use wanlayer_core::hal::PacketChain;
use wanlayer_core::NdisStatus;

/// The identity of a simulated packet: its "address", shared by every clone of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct PacketId(pub u64);

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nbl#{}", self.0)
    }
}

/// One simulated `NET_BUFFER_LIST` with a single `NET_BUFFER` holding one frame.
///
/// Only the simulator creates packets (the protocol's sends, the miniport's receives, and
/// [`PacketIo::allocate`](wanlayer_core::hal::PacketIo::allocate) for the filter); filters change
/// them only through [`SimHal`](crate::SimHal), which checks that they hold them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPacket {
    pub(crate) id: PacketId,
    pub(crate) frame: Vec<u8>,
    pub(crate) status: NdisStatus,
    pub(crate) read_only: bool,
    pub(crate) cancel_id: Option<u64>,
    pub(crate) parent: Option<Box<SimPacket>>,
}

impl SimPacket {
    pub(crate) fn new(id: PacketId, frame: Vec<u8>) -> Self {
        Self { id, frame, status: NdisStatus::SUCCESS, read_only: false, cancel_id: None, parent: None }
    }

    /// The packet's identity.
    pub fn id(&self) -> PacketId {
        self.id
    }

    /// The frame bytes.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The completion status (`NET_BUFFER_LIST_STATUS`).
    pub fn status(&self) -> NdisStatus {
        self.status
    }

    /// True when the buffers may not be written in place (a miniport's read-only receive buffers).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The cancel identifier the protocol gave the send (`NDIS_GET_NET_BUFFER_LIST_CANCEL_ID`).
    pub fn cancel_id(&self) -> Option<u64> {
        self.cancel_id
    }

    /// The original packet a filter-allocated one replaced (`ParentNetBufferList`).
    pub fn parent(&self) -> Option<&SimPacket> {
        self.parent.as_deref()
    }
}

/// A chain of packets (`NET_BUFFER_LIST` linked through `Next`), in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimChain(VecDeque<SimPacket>);

impl SimChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty chain with room for `packets` packets.
    pub fn with_capacity(packets: usize) -> Self {
        Self(VecDeque::with_capacity(packets))
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the chain holds no packet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The packets, first to last.
    pub fn iter(&self) -> impl Iterator<Item = &SimPacket> {
        self.0.iter()
    }

    /// The identities of the packets, first to last.
    pub fn ids(&self) -> Vec<PacketId> {
        self.0.iter().map(SimPacket::id).collect()
    }

    /// Appends a packet.
    pub fn push(&mut self, packet: SimPacket) {
        self.0.push_back(packet);
    }

    /// Removes the first packet.
    pub fn pop(&mut self) -> Option<SimPacket> {
        self.0.pop_front()
    }
}

impl PacketChain<SimPacket> for SimChain {
    fn push_back(&mut self, packet: SimPacket) {
        self.0.push_back(packet);
    }

    fn pop_front(&mut self) -> Option<SimPacket> {
        self.0.pop_front()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<SimPacket> for SimChain {
    fn from_iter<I: IntoIterator<Item = SimPacket>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl IntoIterator for SimChain {
    type Item = SimPacket;
    type IntoIter = std::collections::vec_deque::IntoIter<SimPacket>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a SimChain {
    type Item = &'a SimPacket;
    type IntoIter = std::collections::vec_deque::Iter<'a, SimPacket>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(id: u64) -> SimPacket {
        SimPacket::new(PacketId(id), vec![id as u8; 3])
    }

    #[test]
    fn a_chain_keeps_its_order_through_both_interfaces() {
        let mut chain: SimChain = [packet(1), packet(2)].into_iter().collect();
        PacketChain::push_back(&mut chain, packet(3));
        assert_eq!(chain.ids(), [PacketId(1), PacketId(2), PacketId(3)]);
        assert_eq!(PacketChain::pop_front(&mut chain).map(|p| p.id()), Some(PacketId(1)));
        assert_eq!(chain.pop().map(|p| p.id()), Some(PacketId(2)));
        assert_eq!(chain.len(), 1);
        assert!(SimChain::with_capacity(4).is_empty());
        assert!(!PacketChain::is_empty(&chain));
    }

    #[test]
    fn a_clone_is_the_same_packet_to_the_ledger() {
        let original = packet(7);
        let copy = original.clone();
        assert_eq!(copy.id(), original.id());
        assert_eq!(copy, original);
        assert_eq!(original.id().to_string(), "nbl#7");
        assert!(original.parent().is_none() && !original.is_read_only() && original.cancel_id().is_none());
        assert_eq!(original.status(), NdisStatus::SUCCESS);
    }
}
