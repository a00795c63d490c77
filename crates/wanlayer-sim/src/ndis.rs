//! NDIS services a filter calls that the core's HAL does not name: passing status indications up
//! (`NdisFIndicateStatus`) and the OID calls. The simulated protocol and miniport answer them.

use wanlayer_core::hal::OutOfMemory;
use wanlayer_core::wire::MacAddress;
use wanlayer_core::{ModuleId, NdisStatus};

use crate::edge::Edge;
use crate::faults::Allocation;
use crate::hal::SimHal;
use crate::oid::{OidCompletion, OidDisposition, OidKind, OidRequest, RequestId, OID_802_3_CURRENT_ADDRESS, OID_GEN_CURRENT_PACKET_FILTER,
    OID_GEN_LINK_SPEED, OID_GEN_MAXIMUM_FRAME_SIZE, OID_WAN_CURRENT_ADDRESS};
use crate::trace::TraceEvent;
use crate::verifier::Rule;
use crate::wan_indication::{StatusBuffer, StatusIndication, StatusRecord};
use crate::world::{Deferred, Delivery, OidRecord, OidRole, OidState, ProtocolLink, WorldState, NDIS_STATUS_NOT_SUPPORTED};

/// The `LocalAddress` the simulated protocol fills into the line up of `remote`.
pub fn local_address_for(remote: MacAddress) -> MacAddress {
    let [a, b, ..] = remote.0;
    MacAddress([a ^ 0x12, b, 0x20, 0x52, 0x41, 0x53])
}

/// The `DeviceName` the simulated protocol fills into the line up of `remote`.
pub fn device_name_for(remote: MacAddress) -> String {
    let [a, b, ..] = remote.0;
    format!("\\DEVICE\\{{5A1E0000-0000-4000-8000-0000000{a:02X}{b:02X}0}}")
}

impl SimHal {
    /// `NdisFIndicateStatus`: passes a status indication up to the protocol, which fills in the
    /// in/out fields of a line up (`LocalAddress`, `DeviceName`) before this returns.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`, no lock held.
    pub fn indicate_status(&self, module: ModuleId, indication: &mut StatusIndication) {
        const API: &str = "NdisFIndicateStatus";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), None);
            let Some(edge) = state.resolve(module, API) else { return };
            let mut indicated_total_size = None;
            if let Some(in_flight) = state.status.as_mut().filter(|s| s.serial == indication.serial && indication.serial != 0) {
                in_flight.forwarded += 1;
                indicated_total_size = in_flight.indicated_total_size;
            }
            match &mut indication.buffer {
                StatusBuffer::LineUp(line_up) => {
                    if let Some(indicated) = indicated_total_size.filter(|size| line_up.maximum_total_size > *size) {
                        let detail = format!(
                            "the line up of {} reached the protocol with MaximumTotalSize {} > NdisWan's {indicated}",
                            line_up.remote_address, line_up.maximum_total_size
                        );
                        state.violate(Rule::LineUpSizeRaised, Some(module), None, detail);
                    }
                    line_up.local_address = local_address_for(line_up.remote_address);
                    let name = device_name_for(line_up.remote_address);
                    line_up.device_name = name.encode_utf16().collect();
                    let link = ProtocolLink {
                        remote: line_up.remote_address,
                        local: line_up.local_address,
                        total_size: line_up.maximum_total_size,
                        device_name: name,
                    };
                    let text = format!("line up {} MTU {}", link.remote, link.total_size);
                    if let Some(e) = state.edge(edge) {
                        e.protocol.links.insert(link.remote, link);
                    }
                    state.trace(Some(edge), TraceEvent::StatusToProtocol, None, text);
                }
                StatusBuffer::LineDown(line_down) => {
                    let remote = line_down.remote_address;
                    if let Some(e) = state.edge(edge) {
                        e.protocol.links.remove(&remote);
                    }
                    state.trace(Some(edge), TraceEvent::StatusToProtocol, None, format!("line down {remote}"));
                }
                StatusBuffer::Raw(bytes) => {
                    let text = format!("{} with {} raw bytes", indication.code, bytes.len());
                    state.trace(Some(edge), TraceEvent::StatusToProtocol, None, text);
                }
            }
            let record = StatusRecord { indication: indication.clone(), indicated_total_size };
            if let Some(e) = state.edge(edge) {
                e.protocol.statuses.push(record);
            }
        });
    }

    /// `NdisAllocateCloneOidRequest`: a clone of `original` to pass down. Counts as an allocation
    /// for fault injection.
    ///
    /// # Errors
    /// [`OutOfMemory`] when fault injection refuses it.
    pub fn allocate_clone_oid(&self, module: ModuleId, original: &OidRequest) -> Result<OidRequest, OutOfMemory> {
        const API: &str = "NdisAllocateCloneOidRequest";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), None);
            let edge = state.resolve(module, API).ok_or(OutOfMemory)?;
            if !state.faults.attempt(Allocation::OidClone) {
                let attempt = state.faults.attempts();
                state.trace(Some(edge), TraceEvent::Fault, None, format!("allocation #{attempt} refused: an OID clone"));
                return Err(OutOfMemory);
            }
            let id = new_request(state, edge, OidRole::Clone);
            Ok(OidRequest::new(id, original.oid, original.kind, original.data.clone()))
        })
    }

    /// `NdisFOidRequest`: passes a clone down to the miniport, which completes it later through
    /// the filter's `oid_complete` ([`OidDisposition::Pending`]). A request for a module that is
    /// not attached comes straight back, failed.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`, no lock held.
    pub fn oid_request(&self, module: ModuleId, request: OidRequest) -> OidDisposition {
        const API: &str = "NdisFOidRequest";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), None);
            let Some(edge) = state.resolve(module, API) else { return OidDisposition::Complete(request, NdisStatus::FAILURE) };
            let record = state.oids.get(&request.id).copied();
            let problem = match record {
                None => Some("was never allocated".to_owned()),
                Some(OidRecord { role: OidRole::Original, .. }) => {
                    Some("is the protocol's request, pending at the filter: pass down a clone".to_owned())
                }
                Some(OidRecord { state: OidState::AtMiniport, .. }) => Some("is already pending at the miniport".to_owned()),
                Some(OidRecord { state: OidState::Freed, .. }) => Some("was freed".to_owned()),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                state.violate(Rule::NdisOidDoubleRequest, Some(module), None, format!("{API}: {} {problem}", request.id));
                // The request is discarded: an original the filter gave away is taken out of
                // play, so it is not reported again as late or as outstanding at detach.
                if let Some(original) = state.oids.get_mut(&request.id).filter(|r| r.role == OidRole::Original) {
                    original.state = OidState::Completed;
                }
                return OidDisposition::Pending;
            }
            if let Some(record) = state.oids.get_mut(&request.id) {
                record.state = OidState::AtMiniport;
            }
            state.trace(Some(edge), TraceEvent::OidToMiniport, None, format!("{} OID 0x{:08X}", request.id, request.oid));
            if let Some(e) = state.edge(edge) {
                e.miniport.oid_requests.push(request.id);
            }
            let (answered, status) = answer_oid(edge, request);
            match state.config.oid_completion {
                Delivery::After(delay) => state.schedule(delay, Deferred::CompleteOid { edge, request: answered, status }),
                Delivery::Hold => state.held_oids.push((edge, answered, status)),
            }
            OidDisposition::Pending
        })
    }

    /// `NdisFreeCloneOidRequest`.
    pub fn free_clone_oid(&self, request: OidRequest) {
        const API: &str = "NdisFreeCloneOidRequest";
        self.with_state_mut(|state| {
            self.call_checks(state, API, None, None);
            let record = state.oids.get(&request.id).copied();
            let problem = match record {
                Some(OidRecord { role: OidRole::Clone, state: OidState::AtFilter, .. }) => None,
                Some(OidRecord { role: OidRole::Original, .. }) => Some("is the protocol's request, not a clone"),
                Some(OidRecord { state: OidState::AtMiniport, .. }) => Some("is still pending at the miniport"),
                Some(_) => Some("was freed already"),
                None => Some("was never allocated"),
            };
            if let Some(problem) = problem {
                state.violate(Rule::NdisOidDoubleComplete, None, None, format!("{API}: {} {problem}", request.id));
                return;
            }
            if let Some(record) = state.oids.get_mut(&request.id) {
                record.state = OidState::Freed;
            }
        });
    }

    /// `NdisFOidRequestComplete`: completes the protocol's original request.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`, no lock held.
    pub fn oid_request_complete(&self, module: ModuleId, request: OidRequest, status: NdisStatus) {
        const API: &str = "NdisFOidRequestComplete";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), None);
            complete_original(state, module, request, status, API);
        });
    }
}

/// Records a new OID request.
pub(crate) fn new_request(state: &mut WorldState, edge: Edge, role: OidRole) -> RequestId {
    state.next_request += 1;
    let id = RequestId(state.next_request);
    state.oids.insert(id, OidRecord { edge, role, state: OidState::AtFilter, issued: state.now, timed_out: false });
    id
}

/// Completes an original request to the protocol, once.
pub(crate) fn complete_original(state: &mut WorldState, module: ModuleId, request: OidRequest, status: NdisStatus, api: &str) {
    let record = state.oids.get(&request.id).copied();
    let problem = match record {
        Some(OidRecord { role: OidRole::Original, state: OidState::AtFilter, .. }) => None,
        Some(OidRecord { role: OidRole::Original, .. }) => Some("was completed already"),
        Some(OidRecord { role: OidRole::Clone, .. }) => Some("is the filter's clone: complete the original it carries"),
        None => Some("was never issued"),
    };
    if let Some(problem) = problem {
        state.violate(Rule::NdisOidDoubleComplete, Some(module), None, format!("{api}: {} {problem}", request.id));
        return;
    }
    let Some(record) = state.oids.get_mut(&request.id) else { return };
    record.state = OidState::Completed;
    let (edge, issued) = (record.edge, record.issued);
    let latency_ns = state.now.since(issued);
    state.trace(Some(edge), TraceEvent::OidToProtocol, None, format!("{} {status}", request.id));
    if let Some(e) = state.edge(edge) {
        e.protocol.oid_completions.push(OidCompletion { request, status, latency_ns });
    }
}

/// What the simulated miniport answers to an OID request.
fn answer_oid(edge: Edge, mut request: OidRequest) -> (OidRequest, NdisStatus) {
    let answer = match (request.kind, request.oid) {
        (OidKind::Query, OID_GEN_MAXIMUM_FRAME_SIZE) => Some(1500u32.to_le_bytes().to_vec()),
        (OidKind::Query, OID_GEN_LINK_SPEED) => Some(10_000_000u32.to_le_bytes().to_vec()),
        (OidKind::Query, OID_802_3_CURRENT_ADDRESS | OID_WAN_CURRENT_ADDRESS) => Some(edge.mac_address().0.to_vec()),
        (OidKind::Set, OID_GEN_CURRENT_PACKET_FILTER) => Some(request.data.clone()),
        _ => None,
    };
    match answer {
        Some(data) => {
            request.bytes_done = data.len();
            if request.kind == OidKind::Query {
                request.data = data;
            }
            (request, NdisStatus::SUCCESS)
        }
        None => (request, NDIS_STATUS_NOT_SUPPORTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_fills_ndiswan_style_local_addresses() {
        let remote = MacAddress([0x3c, 0x07, 0x20, 0x52, 0x41, 0x53]);
        let local = local_address_for(remote);
        assert_eq!(local, MacAddress([0x2e, 0x07, 0x20, 0x52, 0x41, 0x53]));
        assert!(local.is_ndiswan() && local.is_unicast());
        assert_eq!(device_name_for(remote), "\\DEVICE\\{5A1E0000-0000-4000-8000-00000003C070}");
    }

    #[test]
    fn the_miniport_answers_known_queries_and_refuses_the_rest() {
        let query = OidRequest::new(RequestId(1), OID_802_3_CURRENT_ADDRESS, OidKind::Query, vec![0; 6]);
        let (answered, status) = answer_oid(Edge::WanIp, query);
        assert_eq!((status, answered.data.as_slice(), answered.bytes_done), (NdisStatus::SUCCESS, &Edge::WanIp.mac_address().0[..], 6));
        let unknown = OidRequest::new(RequestId(2), 0x0102_0304, OidKind::Set, vec![1]);
        assert_eq!(answer_oid(Edge::WanIp, unknown).1, NDIS_STATUS_NOT_SUPPORTED);
    }
}
