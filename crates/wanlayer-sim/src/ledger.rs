//! The packet ledger: who holds each packet and where it came from.
//!
//! Every packet the simulator creates gets a record, and every hand-off through
//! [`SimHal`](crate::SimHal) moves it. The verifier's packet rules are questions put to the ledger:
//! does the filter hold this packet (double completion, use after hand-off)? whose is it (wrong
//! owner, freeing a foreign packet)? what does the filter still hold or have outstanding (pause,
//! detach)?

use std::fmt;

use wanlayer_core::hal::Timestamp;

use crate::edge::Edge;
use crate::sim_nbl::PacketId;

/// Where a packet came from, which decides to whom it must go back.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Origin {
    /// A send of the protocol above: completed back to the protocol.
    ProtocolSend,
    /// A receive of the miniport below: returned to the miniport.
    MiniportReceive,
    /// Allocated by the filter: freed by the filter.
    FilterAllocated,
}

impl Origin {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Origin::ProtocolSend => "protocol send",
            Origin::MiniportReceive => "miniport receive",
            Origin::FilterAllocated => "filter allocation",
        }
    }
}

/// Who holds a packet now.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Holder {
    /// The filter (during a callback or after keeping it).
    Filter,
    /// The miniport below, which will complete it.
    Miniport,
    /// The protocol above, which will return it.
    Protocol,
    /// Attached as the parent of a filter-allocated packet.
    Parent(PacketId),
    /// Back with its owner for good: completed, returned or freed.
    Home,
    /// Taken out of play by the verifier after it reported the filter's hand-off of it (or of the
    /// packet carrying it as a parent) as a violation. What the filter does with it afterwards is
    /// the same mistake and is not reported again.
    Forfeited,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Filter => f.write_str("the filter"),
            Holder::Miniport => f.write_str("the miniport"),
            Holder::Protocol => f.write_str("the protocol"),
            Holder::Parent(child) => write!(f, "{child} as its parent"),
            Holder::Home => f.write_str("its owner (completed, returned or freed)"),
            Holder::Forfeited => f.write_str("nobody: the verifier forfeited it after reporting its hand-off"),
        }
    }
}

/// One packet's record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PacketRecord {
    /// The packet.
    pub id: PacketId,
    /// Where it came from.
    pub origin: Origin,
    /// The edge it belongs to.
    pub edge: Edge,
    /// Who holds it.
    pub holder: Holder,
    /// Lent with the resources flag: the filter must give it back when its receive callback
    /// returns.
    pub lent: bool,
    /// When it was created.
    pub created: Timestamp,
}

/// Why a packet cannot be handed on by the filter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NotHeld {
    /// The simulator never made this packet.
    Unknown,
    /// Someone else holds it.
    HeldBy(Holder),
}

/// Packet counts by holder.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct LedgerCounts {
    /// Packets ever created.
    pub created: usize,
    /// Held by the filter.
    pub with_filter: usize,
    /// Sent down and not yet completed.
    pub with_miniport: usize,
    /// Indicated up and not yet returned.
    pub with_protocol: usize,
    /// Attached as parents.
    pub in_parents: usize,
    /// Back home for good.
    pub home: usize,
    /// Forfeited by the verifier after a violation.
    pub forfeited: usize,
}

impl fmt::Display for LedgerCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} packets: {} home, {} with the filter, {} with the miniport, {} with the protocol, {} as parents, {} forfeited",
            self.created, self.home, self.with_filter, self.with_miniport, self.with_protocol, self.in_parents, self.forfeited
        )
    }
}

/// Every packet's record.
///
/// Identities are given in order from 1 and records are never removed, so the record of
/// `PacketId(n)` is at index `n - 1`: every lookup is one bounds-checked index.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    records: Vec<PacketRecord>,
}

impl Ledger {
    /// Records a new packet and gives it an identity.
    pub(crate) fn create(&mut self, origin: Origin, edge: Edge, holder: Holder, lent: bool, now: Timestamp) -> PacketId {
        let id = PacketId(self.records.len() as u64 + 1);
        self.records.push(PacketRecord { id, origin, edge, holder, lent, created: now });
        id
    }

    /// Where the record of `id` is, if the ledger has one.
    fn index(id: PacketId) -> Option<usize> {
        usize::try_from(id.0).ok()?.checked_sub(1)
    }

    /// The record of `id`.
    pub fn get(&self, id: PacketId) -> Option<&PacketRecord> {
        self.records.get(Self::index(id)?)
    }

    fn get_mut(&mut self, id: PacketId) -> Option<&mut PacketRecord> {
        self.records.get_mut(Self::index(id)?)
    }

    /// Every record, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &PacketRecord> {
        self.records.iter()
    }

    /// The record of a packet the filter must hold, or why it does not.
    pub(crate) fn held(&self, id: PacketId) -> Result<PacketRecord, NotHeld> {
        match self.get(id) {
            None => Err(NotHeld::Unknown),
            Some(record) if record.holder == Holder::Filter => Ok(*record),
            Some(record) => Err(NotHeld::HeldBy(record.holder)),
        }
    }

    /// Moves a packet to `holder`.
    pub(crate) fn move_to(&mut self, id: PacketId, holder: Holder) {
        if let Some(record) = self.get_mut(id) {
            record.holder = holder;
        }
    }

    /// Sends a packet home for good (a lent packet given back, or one the checks refused).
    pub(crate) fn send_home(&mut self, id: PacketId) {
        if let Some(record) = self.get_mut(id) {
            record.lent = false;
            record.holder = Holder::Home;
        }
    }

    /// Takes a packet out of play after a violation of its hand-off, with every packet it carries
    /// as a parent (they cannot come back through it any more).
    pub(crate) fn forfeit(&mut self, id: PacketId) {
        let mut next = vec![id];
        while let Some(id) = next.pop() {
            if let Some(record) = self.get_mut(id) {
                record.lent = false;
                record.holder = Holder::Forfeited;
            }
            next.extend(self.records.iter().filter(|r| r.holder == Holder::Parent(id)).map(|r| r.id));
        }
    }

    /// Ends a lend without moving the packet (it went somewhere else already, and was reported).
    pub(crate) fn clear_lend(&mut self, id: PacketId) {
        if let Some(record) = self.get_mut(id) {
            record.lent = false;
        }
    }

    /// Foreign packets of `edge` the filter holds, directly or as parents.
    pub fn foreign_held(&self, edge: Edge) -> Vec<PacketId> {
        self.select(edge, |r| r.origin != Origin::FilterAllocated && matches!(r.holder, Holder::Filter | Holder::Parent(_)))
    }

    /// Packets of `edge` the filter allocated that are out with the miniport or the protocol.
    pub fn originated_outstanding(&self, edge: Edge) -> Vec<PacketId> {
        self.select(edge, |r| r.origin == Origin::FilterAllocated && matches!(r.holder, Holder::Miniport | Holder::Protocol))
    }

    /// Packets of `edge` the filter allocated and has not freed.
    pub fn allocated_not_freed(&self, edge: Edge) -> Vec<PacketId> {
        self.select(edge, |r| r.origin == Origin::FilterAllocated && !matches!(r.holder, Holder::Home | Holder::Forfeited))
    }

    fn select(&self, edge: Edge, keep: impl Fn(&PacketRecord) -> bool) -> Vec<PacketId> {
        self.records.iter().filter(|r| r.edge == edge && keep(r)).map(|r| r.id).collect()
    }

    /// Counts by holder.
    pub fn counts(&self) -> LedgerCounts {
        let mut counts = LedgerCounts { created: self.records.len(), ..LedgerCounts::default() };
        for record in &self.records {
            match record.holder {
                Holder::Filter => counts.with_filter += 1,
                Holder::Miniport => counts.with_miniport += 1,
                Holder::Protocol => counts.with_protocol += 1,
                Holder::Parent(_) => counts.in_parents += 1,
                Holder::Home => counts.home += 1,
                Holder::Forfeited => counts.forfeited += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_is_held_only_while_the_filter_has_it() {
        let mut ledger = Ledger::default();
        let id = ledger.create(Origin::ProtocolSend, Edge::WanIp, Holder::Filter, false, Timestamp(0));
        assert_eq!(ledger.held(id).map(|r| r.origin), Ok(Origin::ProtocolSend));
        ledger.move_to(id, Holder::Miniport);
        assert_eq!(ledger.held(id), Err(NotHeld::HeldBy(Holder::Miniport)));
        assert_eq!(ledger.held(PacketId(99)), Err(NotHeld::Unknown));
        assert_eq!(ledger.held(PacketId(0)), Err(NotHeld::Unknown));
        assert_eq!(ledger.held(PacketId(u64::MAX)), Err(NotHeld::Unknown));
        ledger.move_to(id, Holder::Home);
        assert_eq!(ledger.counts(), LedgerCounts { created: 1, home: 1, ..LedgerCounts::default() });
    }

    #[test]
    fn pause_and_detach_questions_see_the_right_packets() {
        let mut ledger = Ledger::default();
        let now = Timestamp(0);
        let kept = ledger.create(Origin::MiniportReceive, Edge::WanIp, Holder::Filter, false, now);
        let parent = ledger.create(Origin::ProtocolSend, Edge::WanIp, Holder::Filter, false, now);
        let copy = ledger.create(Origin::FilterAllocated, Edge::WanIp, Holder::Miniport, false, now);
        ledger.move_to(parent, Holder::Parent(copy));
        let spare = ledger.create(Origin::FilterAllocated, Edge::WanIp, Holder::Filter, false, now);
        let other_edge = ledger.create(Origin::MiniportReceive, Edge::WanIpv6, Holder::Filter, false, now);
        assert_eq!(ledger.foreign_held(Edge::WanIp), [kept, parent]);
        assert_eq!(ledger.originated_outstanding(Edge::WanIp), [copy]);
        assert_eq!(ledger.allocated_not_freed(Edge::WanIp), [copy, spare]);
        assert_eq!(ledger.foreign_held(Edge::WanIpv6), [other_edge]);
        let counts = ledger.counts();
        assert_eq!((counts.with_filter, counts.with_miniport, counts.in_parents), (3, 1, 1));
        assert!(counts.to_string().starts_with("5 packets: 0 home"));
    }

    #[test]
    fn a_forfeited_packet_takes_the_parents_it_carries_out_of_play() {
        let mut ledger = Ledger::default();
        let now = Timestamp(0);
        let parent = ledger.create(Origin::ProtocolSend, Edge::WanIp, Holder::Filter, false, now);
        let copy = ledger.create(Origin::FilterAllocated, Edge::WanIp, Holder::Filter, false, now);
        let copy_of_copy = ledger.create(Origin::FilterAllocated, Edge::WanIp, Holder::Filter, false, now);
        ledger.move_to(parent, Holder::Parent(copy));
        ledger.move_to(copy, Holder::Parent(copy_of_copy));
        ledger.forfeit(copy_of_copy);
        assert!([parent, copy, copy_of_copy].iter().all(|id| ledger.get(*id).is_some_and(|r| r.holder == Holder::Forfeited)));
        assert_eq!(ledger.held(parent), Err(NotHeld::HeldBy(Holder::Forfeited)));
        assert!(ledger.foreign_held(Edge::WanIp).is_empty() && ledger.allocated_not_freed(Edge::WanIp).is_empty());
        let counts = ledger.counts();
        assert_eq!((counts.created, counts.home, counts.forfeited), (3, 0, 3));
        assert!(counts.to_string().ends_with("3 forfeited"));
    }

    #[test]
    fn a_lend_ends_at_home_or_where_the_packet_went() {
        let mut ledger = Ledger::default();
        let back = ledger.create(Origin::MiniportReceive, Edge::WanIp, Holder::Filter, true, Timestamp(5));
        let astray = ledger.create(Origin::MiniportReceive, Edge::WanIp, Holder::Filter, true, Timestamp(5));
        assert!(ledger.get(back).is_some_and(|r| r.lent));
        ledger.send_home(back);
        ledger.move_to(astray, Holder::Protocol);
        ledger.clear_lend(astray);
        let holders = [back, astray].map(|id| ledger.get(id).map(|r| (r.lent, r.holder)));
        assert_eq!(holders, [Some((false, Holder::Home)), Some((false, Holder::Protocol))]);
        assert_eq!(ledger.records().count(), 2);
    }
}
