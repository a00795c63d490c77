//! OID requests: the protocol's queries and sets, which a filter passes down by cloning.
//!
//! The contract (facts §4): allocate a clone (`NdisAllocateCloneOidRequest`), keep the original in
//! the clone's `SourceReserved`, pass the clone down (`NdisFOidRequest`); on completion copy the
//! results back, free the clone, complete the original (`NdisFOidRequestComplete`). The simulator's
//! services for each step are on [`SimHal`](crate::SimHal).

use std::fmt;

/// `OID_GEN_MAXIMUM_FRAME_SIZE`.
pub const OID_GEN_MAXIMUM_FRAME_SIZE: u32 = 0x0001_0106;
/// `OID_GEN_LINK_SPEED`.
pub const OID_GEN_LINK_SPEED: u32 = 0x0001_0107;
/// `OID_802_3_CURRENT_ADDRESS`.
pub const OID_802_3_CURRENT_ADDRESS: u32 = 0x0101_0102;
/// `OID_GEN_CURRENT_PACKET_FILTER`.
pub const OID_GEN_CURRENT_PACKET_FILTER: u32 = 0x0001_010E;
/// `OID_WAN_CURRENT_ADDRESS`.
pub const OID_WAN_CURRENT_ADDRESS: u32 = 0x0401_0102;

/// Identity of an OID request (its address in the kernel).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oid-request#{}", self.0)
    }
}

/// `RequestType`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OidKind {
    /// `NdisRequestQueryInformation`.
    Query,
    /// `NdisRequestSetInformation`.
    Set,
}

/// One `NDIS_OID_REQUEST`. [`Clone`] on purpose, so that broken filters can complete one twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidRequest {
    pub(crate) id: RequestId,
    /// The OID.
    pub oid: u32,
    /// Query or set.
    pub kind: OidKind,
    /// `InformationBuffer`: what a set sends, what a query gets back.
    pub data: Vec<u8>,
    /// `BytesWritten` (query) or `BytesRead` (set).
    pub bytes_done: usize,
    source_reserved: Option<Box<OidRequest>>,
}

impl OidRequest {
    pub(crate) fn new(id: RequestId, oid: u32, kind: OidKind, data: Vec<u8>) -> Self {
        Self { id, oid, kind, data, bytes_done: 0, source_reserved: None }
    }

    /// The request's identity.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Keeps `original` in this clone's `SourceReserved`.
    pub fn set_original(&mut self, original: OidRequest) {
        self.source_reserved = Some(Box::new(original));
    }

    /// Takes back the original kept in `SourceReserved`.
    pub fn take_original(&mut self) -> Option<OidRequest> {
        self.source_reserved.take().map(|original| *original)
    }

    /// Copies the results of a completed clone into `original`.
    pub fn copy_results_to(&self, original: &mut OidRequest) {
        if self.kind == OidKind::Query {
            original.data.clone_from(&self.data);
        }
        original.bytes_done = self.bytes_done;
    }
}

/// What a filter's `oid_request` callback did with a request.
#[derive(Debug)]
pub enum OidDisposition {
    /// Passed on: it completes later through `NdisFOidRequestComplete`.
    Pending,
    /// Completed synchronously (results in the request) with this status.
    Complete(OidRequest, wanlayer_core::NdisStatus),
}

/// What the protocol saw of one of its OID requests when it completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidCompletion {
    /// The request as completed.
    pub request: OidRequest,
    /// Its status.
    pub status: wanlayer_core::NdisStatus,
    /// Virtual nanoseconds from issue to completion.
    pub latency_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_carries_its_original_and_results_go_back() {
        let original = OidRequest::new(RequestId(1), OID_GEN_LINK_SPEED, OidKind::Query, vec![0; 4]);
        let mut clone = OidRequest::new(RequestId(2), original.oid, original.kind, original.data.clone());
        clone.set_original(original);
        clone.data = vec![1, 2, 3, 4];
        clone.bytes_done = 4;
        let mut back = clone.take_original().expect("kept in SourceReserved");
        assert!(clone.take_original().is_none());
        clone.copy_results_to(&mut back);
        assert_eq!((back.id(), back.data.as_slice(), back.bytes_done), (RequestId(1), &[1, 2, 3, 4][..], 4));
        assert_eq!(RequestId(3).to_string(), "oid-request#3");
    }

    #[test]
    fn a_set_keeps_its_own_data() {
        let mut original = OidRequest::new(RequestId(1), OID_GEN_CURRENT_PACKET_FILTER, OidKind::Set, vec![9]);
        let mut clone = original.clone();
        clone.data = vec![0];
        clone.bytes_done = 1;
        clone.copy_results_to(&mut original);
        assert_eq!((original.data.as_slice(), original.bytes_done), (&[9][..], 1));
    }
}
