//! The protocol and the miniport driving the filter: sends, receives, cancels, status
//! indications and WAN links, OID requests.

use wanlayer_core::hal::PathContext;
use wanlayer_core::hook::Direction;
use wanlayer_core::link::LineDown;
use wanlayer_core::wire::{EtherType, IpAddress, MacAddress};
use wanlayer_core::{ModuleId, NdisStatus};

use super::{ReceiveOptions, Rras, Scope, SendOptions};
use crate::edge::{Edge, Irql, NdisState};
use crate::filter_callbacks::FilterDriver;
use crate::ledger::{Holder, Origin};
use crate::ndis::{complete_original, device_name_for, local_address_for, new_request};
use crate::oid::{OidDisposition, OidKind, OidRequest, RequestId};
use crate::sim_nbl::{PacketId, SimChain, SimPacket};
use crate::trace::{TraceEvent, TraceText};
use crate::traffic::{Flow, LinkParams, SimLink};
use crate::verifier::Rule;
use crate::wan_indication::{StatusBuffer, StatusIndication, StatusRecord, WanLineUp};
use crate::world::{list, OidRole, StatusInFlight, WorldState};

impl<F: FilterDriver> Rras<F> {
    // ----- data path ------------------------------------------------------------------------

    fn new_packets(&self, edge: Edge, origin: Origin, frames: Vec<Vec<u8>>, lent: bool, read_only: bool, cancel_id: Option<u64>) -> SimChain {
        self.hal.with_state_mut(|state| {
            let event = match origin {
                Origin::ProtocolSend => TraceEvent::ProtocolSend,
                _ => TraceEvent::ReceiveFromMiniport { resources: lent },
            };
            frames
                .into_iter()
                .map(|frame| {
                    let id = state.ledger.create(origin, edge, Holder::Filter, lent, state.now);
                    state.trace_data(Some(edge), event, Some(id), TraceText::frame(&frame));
                    if let Some(e) = state.edge(edge) {
                        match origin {
                            Origin::ProtocolSend => e.protocol.sent.push(id),
                            _ => e.miniport.indicated.push(id),
                        }
                    }
                    let mut packet = SimPacket::new(id, frame);
                    packet.read_only = read_only;
                    packet.cancel_id = cancel_id;
                    packet
                })
                .collect()
        })
    }

    /// The module of an attached edge, or `None` (traced) when the data would bypass the filter.
    fn data_module(&self, edge: Edge) -> Option<ModuleId> {
        let module = self.hal.with_state(|state| state.edges.get(&edge).filter(|e| e.ndis != NdisState::Detached).and_then(|e| e.module));
        if module.is_none() {
            self.lifecycle(Some(edge), "no filter module: nothing sent");
        }
        module
    }

    /// The protocol sends `frames` as one chain into the filter on `edge`.
    pub fn send(&self, edge: Edge, frames: impl IntoIterator<Item = Vec<u8>>) -> Vec<PacketId> {
        self.send_with(edge, SendOptions::default(), frames)
    }

    /// [`Rras::send`] with options.
    pub fn send_with(&self, edge: Edge, options: SendOptions, frames: impl IntoIterator<Item = Vec<u8>>) -> Vec<PacketId> {
        let Some(module) = self.data_module(edge) else { return Vec::new() };
        let chain = self.new_packets(edge, Origin::ProtocolSend, frames.into_iter().collect(), false, false, options.cancel_id);
        let ids = chain.ids();
        let irql = options.irql.unwrap_or_else(|| self.next_irql());
        let _scope = Scope::enter(&self.hal, "FilterSendNetBufferLists", Some(edge), irql);
        self.filter.send(module, chain, PathContext { check_for_loopback: options.check_for_loopback, ..Self::ctx(irql) });
        ids
    }

    /// The miniport indicates `frames` as one chain into the filter on `edge`, without the
    /// resources flag.
    pub fn receive(&self, edge: Edge, frames: impl IntoIterator<Item = Vec<u8>>) -> Vec<PacketId> {
        self.receive_with(edge, ReceiveOptions::default(), frames)
    }

    /// [`Rras::receive`] with options; with the resources flag, checks that every lent packet
    /// comes back, in order, when the callback returns.
    pub fn receive_with(&self, edge: Edge, options: ReceiveOptions, frames: impl IntoIterator<Item = Vec<u8>>) -> Vec<PacketId> {
        let Some(module) = self.data_module(edge) else { return Vec::new() };
        let chain = self.new_packets(edge, Origin::MiniportReceive, frames.into_iter().collect(), options.resources, options.read_only, None);
        let ids = chain.ids();
        let irql = options.irql.unwrap_or_else(|| self.next_irql());
        let back = {
            let _scope = Scope::enter(&self.hal, "FilterReceiveNetBufferLists", Some(edge), irql);
            self.filter.receive(module, chain, options.resources, Self::ctx(irql))
        };
        self.hal.with_state_mut(|state| check_given_back(state, edge, module, &ids, back, options.resources));
        ids
    }

    /// The protocol sends `count` frames of `flow` to the client of `link`, as one chain.
    pub fn send_flow(&self, link: &SimLink, flow: &Flow, count: u32) -> Vec<PacketId> {
        self.send(link.edge, (0..count).map(|seq| link.frame(Direction::Send, flow, seq)))
    }

    /// The miniport indicates `count` frames of `flow` from the client of `link`, as one chain.
    pub fn receive_flow(&self, link: &SimLink, flow: &Flow, count: u32, options: ReceiveOptions) -> Vec<PacketId> {
        self.receive_with(link.edge, options, (0..count).map(|seq| link.frame(Direction::Receive, flow, seq)))
    }

    /// The protocol cancels its sends with `cancel_id` (`FilterCancelSendNetBufferLists`).
    pub fn cancel_sends(&self, edge: Edge, cancel_id: u64) {
        let Some(module) = self.data_module(edge) else { return };
        self.hal.with_state_mut(|state| state.trace(Some(edge), TraceEvent::CancelSend, None, format!("cancel id {cancel_id}")));
        let irql = self.next_irql();
        let _scope = Scope::enter(&self.hal, "FilterCancelSendNetBufferLists", Some(edge), irql);
        self.filter.cancel_send(module, cancel_id);
    }

    // ----- status and links -----------------------------------------------------------------

    /// The miniport indicates a status on `edge`; checks it was passed up. Returns what reached the
    /// protocol.
    pub fn indicate_status(&self, edge: Edge, mut indication: StatusIndication) -> Option<StatusRecord> {
        let module = self.data_module(edge)?;
        let irql = self.next_irql();
        self.hal.with_state_mut(|state| {
            state.next_status += 1;
            indication.serial = state.next_status;
            let indicated_total_size = match &indication.buffer {
                StatusBuffer::LineUp(line_up) => Some(line_up.maximum_total_size),
                _ => None,
            };
            state.status = Some(StatusInFlight { serial: indication.serial, indicated_total_size, forwarded: 0 });
            state.trace(Some(edge), TraceEvent::StatusFromMiniport, None, format!("{}", indication.code));
        });
        {
            let _scope = Scope::enter(&self.hal, "FilterStatus", Some(edge), irql);
            self.filter.status(module, &mut indication);
        }
        self.hal.with_state_mut(|state| {
            let forwarded = state.status.take().map_or(0, |s| s.forwarded);
            if forwarded == 0 {
                let detail = format!("{} on {edge} was never passed up with NdisFIndicateStatus", indication.code);
                state.violate(Rule::StatusSwallowed, Some(module), None, detail);
                return None;
            }
            state.edges.get(&edge).and_then(|e| e.protocol.statuses.last().cloned())
        })
    }

    /// NdisWan brings a new link up on `edge` (`NDIS_STATUS_WAN_LINE_UP`).
    pub fn link_up(&self, edge: Edge, params: LinkParams) -> SimLink {
        let index = self.next_link.get() + 1;
        self.next_link.set(index);
        let (remote, server_ip, client_ip) = SimLink::addresses(edge, index);
        let protocol_type = edge.protocol_type().unwrap_or(EtherType::Ipv4);
        let record = line_up_record(remote, protocol_type, client_ip, &params);
        let seen = self.indicate_status(edge, StatusIndication::new(NdisStatus::WAN_LINE_UP, StatusBuffer::LineUp(record)));
        let reported_total_size = seen.and_then(|record| match record.indication.buffer {
            StatusBuffer::LineUp(line_up) => Some(line_up.maximum_total_size),
            _ => None,
        });
        let link = SimLink {
            edge,
            index,
            remote,
            local: local_address_for(remote),
            protocol_type,
            maximum_total_size: params.maximum_total_size,
            reported_total_size,
            device_name: device_name_for(remote),
            server_ip,
            client_ip,
        };
        self.links.borrow_mut().insert(remote, link.clone());
        link
    }

    /// NdisWan indicates another line up for the live `link` (same remote address and protocol
    /// type) with `params`, as it does when a link's parameters change. Returns what reached the
    /// protocol.
    pub fn line_up_again(&self, link: &SimLink, params: &LinkParams) -> Option<StatusRecord> {
        let record = line_up_record(link.remote, link.protocol_type, link.client_ip, params);
        self.indicate_status(link.edge, StatusIndication::new(NdisStatus::WAN_LINE_UP, StatusBuffer::LineUp(record)))
    }

    /// NdisWan takes `link` down (`NDIS_STATUS_WAN_LINE_DOWN`).
    pub fn link_down(&self, link: &SimLink) {
        self.links.borrow_mut().remove(&link.remote);
        let line_down = LineDown { remote_address: link.remote, local_address: link.local };
        self.indicate_status(link.edge, StatusIndication::new(NdisStatus::WAN_LINE_DOWN, StatusBuffer::LineDown(line_down)));
    }

    /// The links NdisWan has up, oldest first.
    pub fn links(&self) -> Vec<SimLink> {
        let mut links: Vec<SimLink> = self.links.borrow().values().cloned().collect();
        links.sort_by_key(|link| link.index);
        links
    }

    // ----- OIDs -----------------------------------------------------------------------------

    /// The protocol queries `oid` on `edge`.
    pub fn oid_query(&self, edge: Edge, oid: u32) -> Option<RequestId> {
        self.oid(edge, oid, OidKind::Query, vec![0; 16])
    }

    /// The protocol sets `oid` on `edge` to `data`.
    pub fn oid_set(&self, edge: Edge, oid: u32, data: Vec<u8>) -> Option<RequestId> {
        self.oid(edge, oid, OidKind::Set, data)
    }

    fn oid(&self, edge: Edge, oid: u32, kind: OidKind, data: Vec<u8>) -> Option<RequestId> {
        let module = self.data_module(edge)?;
        let request = self.hal.with_state_mut(|state| {
            let id = new_request(state, edge, OidRole::Original);
            state.trace(Some(edge), TraceEvent::OidFromProtocol, None, format!("{id} {kind:?} OID 0x{oid:08X}"));
            OidRequest::new(id, oid, kind, data)
        });
        let id = request.id();
        let disposition = {
            let _scope = Scope::enter(&self.hal, "FilterOidRequest", Some(edge), Irql::Passive);
            self.filter.oid_request(module, request)
        };
        if let OidDisposition::Complete(request, status) = disposition {
            self.hal.with_state_mut(|state| complete_original(state, module, request, status, "FilterOidRequest (synchronous)"));
        }
        Some(id)
    }

}

/// After a receive callback: with the resources flag, every lent packet must be in `back`, in the
/// order lent; without it, `back` must be empty.
fn check_given_back(state: &mut WorldState, edge: Edge, module: ModuleId, lent: &[PacketId], back: SimChain, resources: bool) {
    if !resources {
        for packet in back {
            let detail = format!("{} handed back from a receive indicated without the resources flag", packet.id);
            state.violate(Rule::WrongOwner, Some(module), Some(packet.id), detail);
            state.ledger.forfeit(packet.id);
        }
        return;
    }
    let back_ids = back.ids();
    for id in &back_ids {
        if !lent.contains(id) {
            state.violate(Rule::LentPacketKept, Some(module), Some(*id), format!("{id} handed back from a receive that did not lend it"));
        }
    }
    let returned: Vec<PacketId> = back_ids.iter().copied().filter(|id| lent.contains(id)).collect();
    let expected: Vec<PacketId> = lent.iter().copied().filter(|id| returned.contains(id)).collect();
    if returned != expected {
        let detail = format!("the lent chain came back in another order: [{}] for [{}]", list(&returned), list(&expected));
        state.violate(Rule::LentPacketKept, Some(module), returned.first().copied(), detail);
    }
    for id in lent {
        let holder = state.ledger.get(*id).map(|r| r.holder);
        if returned.contains(id) {
            state.trace(Some(edge), TraceEvent::LentBack, Some(*id), String::new());
            if let Some(e) = state.edge(edge) {
                e.miniport.returned += 1;
            }
            state.ledger.send_home(*id);
        } else if holder == Some(Holder::Filter) {
            state.violate(Rule::LentPacketKept, Some(module), Some(*id), format!("{id} was lent and kept after the receive callback returned"));
            state.ledger.forfeit(*id);
        } else {
            state.ledger.clear_lend(*id);
        }
    }
}

/// The `NDIS_WAN_LINE_UP` NdisWan indicates for the link to `remote` with `params` (the protocol
/// buffer generated for `client_ip` unless `params` gives one); `LocalAddress` and `DeviceName` are
/// left for the protocol above.
fn line_up_record(remote: MacAddress, protocol_type: EtherType, client_ip: IpAddress, params: &LinkParams) -> WanLineUp {
    WanLineUp {
        link_speed_100bps: params.link_speed_100bps,
        maximum_total_size: params.maximum_total_size,
        quality: params.quality,
        send_window: params.send_window,
        remote_address: remote,
        local_address: MacAddress([0; 6]),
        protocol_type,
        device_name: Vec::new(),
        protocol_buffer: params.protocol_buffer.clone().unwrap_or_else(|| SimLink::protocol_buffer_for(client_ip)),
    }
}
