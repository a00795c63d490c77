//! `NDIS_OID_REQUEST`: the requests a lightweight filter passes down by cloning, and the results it
//! copies back into the original when the clone completes.
//!
//! The layout is the public `ndis/oidrequest.h` declaration through `Reserved2`, i.e.
//! `NDIS_SIZEOF_OID_REQUEST_REVISION_1` (`RTL_SIZEOF_THROUGH_FIELD(NDIS_OID_REQUEST, Reserved2)`).
//! NDIS 6.50 appends `SwitchId`, `VPortId` and `Flags` (revision 2); like the NBL prefix of
//! [`crate::nbl`], the structure is never allocated by `size_of` here: NDIS allocates requests
//! and `NdisAllocateCloneOidRequest` allocates clones, so declaring the prefix the filter reads
//! and writes is enough.
//!
//! # The pass-through contract
//!
//! `FilterOidRequest` clones the request (`NdisAllocateCloneOidRequest`, which copies the whole
//! structure, `InformationBuffer` pointer included), keeps the original in the clone's
//! `SourceReserved` ([`set_clone_original`]), copies `RequestId`, and passes the clone down
//! (`NdisFOidRequest`). When the clone completes, [`copy_results`] copies what the miniport
//! reported (the bytes counts, per request type, as Microsoft's LWF sample does; the data itself
//! is already in the original's buffer, which the clone shares), the clone is freed and the
//! original completed.

use crate::types::{NdisHandle, NdisObjectHeader, PortNumber};
use core::ffi::c_void;
use core::mem::size_of;

/// `NDIS_OID`.
pub type NdisOid = u32;

/// `NDIS_OID_REQUEST_NDIS_RESERVED_SIZE`: pointers' worth of `NdisReserved`.
pub const NDIS_OID_REQUEST_NDIS_RESERVED_SIZE: usize = 16;

/// `NDIS_OID_REQUEST_REVISION_1`.
pub const NDIS_OID_REQUEST_REVISION_1: u8 = 1;

/// `NDIS_SIZEOF_OID_REQUEST_REVISION_1`: bytes through `Reserved2`.
pub const SIZEOF_OID_REQUEST_REVISION_1: usize = core::mem::offset_of!(NdisOidRequest, reserved2) + 2;

/// `NDIS_REQUEST_TYPE` (a C enum). Unknown values survive a round trip.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NdisRequestType(pub u32);

impl NdisRequestType {
    /// `NdisRequestQueryInformation`.
    pub const QUERY_INFORMATION: Self = Self(0);
    /// `NdisRequestSetInformation`.
    pub const SET_INFORMATION: Self = Self(1);
    /// `NdisRequestQueryStatistics`.
    pub const QUERY_STATISTICS: Self = Self(2);
    /// `NdisRequestMethod` (the thirteenth enumerator: Open, Close, Send, TransferData, Reset and
    /// Generic1-4 come between).
    pub const METHOD: Self = Self(12);
}

/// `DATA.QUERY_INFORMATION` (also used by `NdisRequestQueryStatistics`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QueryInformation {
    /// `Oid`.
    pub oid: NdisOid,
    /// `InformationBuffer`.
    pub information_buffer: *mut c_void,
    /// `InformationBufferLength`.
    pub information_buffer_length: u32,
    /// `BytesWritten`.
    pub bytes_written: u32,
    /// `BytesNeeded`.
    pub bytes_needed: u32,
}

/// `DATA.SET_INFORMATION`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SetInformation {
    /// `Oid`.
    pub oid: NdisOid,
    /// `InformationBuffer`.
    pub information_buffer: *mut c_void,
    /// `InformationBufferLength`.
    pub information_buffer_length: u32,
    /// `BytesRead`.
    pub bytes_read: u32,
    /// `BytesNeeded`.
    pub bytes_needed: u32,
}

/// `DATA.METHOD_INFORMATION`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MethodInformation {
    /// `Oid`.
    pub oid: NdisOid,
    /// `InformationBuffer`.
    pub information_buffer: *mut c_void,
    /// `InputBufferLength`.
    pub input_buffer_length: u32,
    /// `OutputBufferLength`.
    pub output_buffer_length: u32,
    /// `MethodId`.
    pub method_id: u32,
    /// `BytesWritten`.
    pub bytes_written: u32,
    /// `BytesRead`.
    pub bytes_read: u32,
    /// `BytesNeeded`.
    pub bytes_needed: u32,
}

/// `union _REQUEST_DATA`: which member is live is said by [`NdisOidRequest::request_type`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union RequestData {
    /// `Oid`, common to every member.
    pub oid: NdisOid,
    /// `QUERY_INFORMATION`.
    pub query_information: QueryInformation,
    /// `SET_INFORMATION`.
    pub set_information: SetInformation,
    /// `METHOD_INFORMATION`.
    pub method_information: MethodInformation,
}

/// `NDIS_OID_REQUEST` through `Reserved2` (revision 1).
#[repr(C)]
pub struct NdisOidRequest {
    /// `Header`: [`object_type::OID_REQUEST`](crate::types::object_type::OID_REQUEST).
    pub header: NdisObjectHeader,
    /// `RequestType`.
    pub request_type: NdisRequestType,
    /// `PortNumber`.
    pub port_number: PortNumber,
    /// `Timeout`, seconds (0: infinite).
    pub timeout: u32,
    /// `RequestId`: what `NdisFCancelOidRequest` matches; a filter copies it into its clone.
    pub request_id: *mut c_void,
    /// `RequestHandle`.
    pub request_handle: NdisHandle,
    /// `DATA`.
    pub data: RequestData,
    /// `NdisReserved`.
    pub ndis_reserved: [u8; NDIS_OID_REQUEST_NDIS_RESERVED_SIZE * size_of::<usize>()],
    /// `MiniportReserved`.
    pub miniport_reserved: [u8; 2 * size_of::<usize>()],
    /// `SourceReserved`: the originator's (for a clone: the filter's) scratch space.
    pub source_reserved: [u8; 2 * size_of::<usize>()],
    /// `SupportedRevision`.
    pub supported_revision: u8,
    /// `Reserved1`.
    pub reserved1: u8,
    /// `Reserved2`.
    pub reserved2: u16,
}

/// Keeps `original` in the first pointer of `clone`'s `SourceReserved`.
///
/// # Safety
/// `clone` points to a valid, writable `NDIS_OID_REQUEST` the caller owns (a clone it allocated
/// and has not passed down yet).
pub unsafe fn set_clone_original(clone: *mut NdisOidRequest, original: *mut NdisOidRequest) {
    // Address arithmetic inside the request; SourceReserved is a byte array (alignment 1 as
    // declared), so the pointer is written unaligned.
    let slot = clone.wrapping_byte_add(core::mem::offset_of!(NdisOidRequest, source_reserved)).cast::<*mut NdisOidRequest>();
    // SAFETY: the caller guarantees `clone` is valid and writable; `slot` lies within its
    // SourceReserved (16 bytes on 64-bit, 8 on 32-bit: room for one pointer).
    unsafe { slot.write_unaligned(original) }
}

/// The original request [`set_clone_original`] kept in `clone`.
///
/// # Safety
/// `clone` points to a valid `NDIS_OID_REQUEST` whose `SourceReserved` was set with
/// [`set_clone_original`].
pub unsafe fn clone_original(clone: *const NdisOidRequest) -> *mut NdisOidRequest {
    let slot = clone.wrapping_byte_add(core::mem::offset_of!(NdisOidRequest, source_reserved)).cast::<*mut NdisOidRequest>();
    // SAFETY: the caller guarantees `clone` is valid; `slot` lies within its SourceReserved.
    unsafe { slot.read_unaligned() }
}

/// Copies the results of a completed clone into its original, per request type, as Microsoft's
/// LWF sample does: a method's `OutputBufferLength`, `BytesRead`, `BytesNeeded` and
/// `BytesWritten`; a set's `BytesRead` and `BytesNeeded`; a query's (and every other type's)
/// `BytesWritten` and `BytesNeeded`.
///
/// # Safety
/// `original` and `clone` point to valid `NDIS_OID_REQUEST`s, `original` writable by the caller
/// (it owns it until it completes it), and `clone` is a clone of `original` (same request type).
pub unsafe fn copy_results(original: *mut NdisOidRequest, clone: *const NdisOidRequest) {
    // SAFETY: the caller guarantees `clone` is valid for reads, and only the caller's own code
    // (this function, reading) touches it meanwhile.
    let clone = unsafe { &*clone };
    let (request_type, from) = (clone.request_type, clone.data);
    let target = original.wrapping_byte_add(core::mem::offset_of!(NdisOidRequest, data)).cast::<RequestData>();
    // SAFETY: `target` is the `DATA` union inside `original`, valid and writable by the caller's
    // promise, and nothing else accesses it during this call.
    let to = unsafe { &mut *target };
    match request_type {
        NdisRequestType::METHOD => {
            // SAFETY: a method request: `method_information` is the live member of both unions
            // (plain integers and a pointer, every bit pattern valid).
            let mut result = unsafe { to.method_information };
            // SAFETY: as above, for the clone's union.
            let from = unsafe { from.method_information };
            result.output_buffer_length = from.output_buffer_length;
            result.bytes_read = from.bytes_read;
            result.bytes_needed = from.bytes_needed;
            result.bytes_written = from.bytes_written;
            to.method_information = result;
        }
        NdisRequestType::SET_INFORMATION => {
            // SAFETY: a set request: `set_information` is the live member of both unions.
            let mut result = unsafe { to.set_information };
            // SAFETY: as above, for the clone's union.
            let from = unsafe { from.set_information };
            result.bytes_read = from.bytes_read;
            result.bytes_needed = from.bytes_needed;
            to.set_information = result;
        }
        _ => {
            // SAFETY: a query (or another type laid out as one): `query_information` is live.
            let mut result = unsafe { to.query_information };
            // SAFETY: as above, for the clone's union.
            let from = unsafe { from.query_information };
            result.bytes_written = from.bytes_written;
            result.bytes_needed = from.bytes_needed;
            to.query_information = result;
        }
    }
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{align_of, offset_of};
    type R = NdisOidRequest;
    assert!(offset_of!(R, header) == 0);
    assert!(offset_of!(R, request_type) == 4);
    assert!(offset_of!(R, port_number) == 8);
    assert!(offset_of!(R, timeout) == 12);
    assert!(offset_of!(R, request_id) == 16);
    assert!(offset_of!(R, request_handle) == 24);
    assert!(offset_of!(R, data) == 32);
    assert!(offset_of!(R, ndis_reserved) == 72);
    assert!(offset_of!(R, miniport_reserved) == 200);
    assert!(offset_of!(R, source_reserved) == 216);
    assert!(offset_of!(R, supported_revision) == 232);
    assert!(offset_of!(R, reserved1) == 233);
    assert!(offset_of!(R, reserved2) == 234);
    assert!(SIZEOF_OID_REQUEST_REVISION_1 == 236);
    assert!(align_of::<R>() == 8);

    assert!(size_of::<RequestData>() == 40);
    assert!(offset_of!(QueryInformation, information_buffer) == 8);
    assert!(offset_of!(QueryInformation, information_buffer_length) == 16);
    assert!(offset_of!(QueryInformation, bytes_written) == 20);
    assert!(offset_of!(QueryInformation, bytes_needed) == 24);
    assert!(offset_of!(SetInformation, bytes_read) == 20);
    assert!(offset_of!(SetInformation, bytes_needed) == 24);
    assert!(offset_of!(MethodInformation, input_buffer_length) == 16);
    assert!(offset_of!(MethodInformation, output_buffer_length) == 20);
    assert!(offset_of!(MethodInformation, method_id) == 24);
    assert!(offset_of!(MethodInformation, bytes_written) == 28);
    assert!(offset_of!(MethodInformation, bytes_read) == 32);
    assert!(offset_of!(MethodInformation, bytes_needed) == 36);
};

// x86 (`x86-facts.md` §3, from the WDK headers; DATA offsets relative to the union at 0x18).
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{align_of, offset_of};
    type R = NdisOidRequest;
    assert!(offset_of!(R, request_type) == 0x04);
    assert!(offset_of!(R, port_number) == 0x08);
    assert!(offset_of!(R, timeout) == 0x0C);
    assert!(offset_of!(R, request_id) == 0x10);
    assert!(offset_of!(R, request_handle) == 0x14);
    assert!(offset_of!(R, data) == 0x18);
    assert!(offset_of!(R, ndis_reserved) == 0x38);
    assert!(offset_of!(R, miniport_reserved) == 0x78);
    assert!(offset_of!(R, source_reserved) == 0x80);
    assert!(offset_of!(R, supported_revision) == 0x88);
    assert!(offset_of!(R, reserved1) == 0x89);
    assert!(offset_of!(R, reserved2) == 0x8A);
    assert!(SIZEOF_OID_REQUEST_REVISION_1 == 0x8C);
    assert!(align_of::<R>() == 4);

    assert!(size_of::<RequestData>() == 0x20);
    assert!(offset_of!(QueryInformation, information_buffer) == 0x1C - 0x18);
    assert!(offset_of!(QueryInformation, information_buffer_length) == 0x20 - 0x18);
    assert!(offset_of!(QueryInformation, bytes_written) == 0x24 - 0x18);
    assert!(offset_of!(QueryInformation, bytes_needed) == 0x28 - 0x18);
    assert!(offset_of!(SetInformation, bytes_read) == 0x24 - 0x18);
    assert!(offset_of!(MethodInformation, input_buffer_length) == 0x20 - 0x18);
    assert!(offset_of!(MethodInformation, output_buffer_length) == 0x24 - 0x18);
    assert!(offset_of!(MethodInformation, method_id) == 0x28 - 0x18);
    assert!(offset_of!(MethodInformation, bytes_written) == 0x2C - 0x18);
    assert!(offset_of!(MethodInformation, bytes_read) == 0x30 - 0x18);
    assert!(offset_of!(MethodInformation, bytes_needed) == 0x34 - 0x18);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use core::ptr;
    use std::boxed::Box;

    fn zeroed_request() -> Box<NdisOidRequest> {
        // SAFETY: every field is an integer, a raw pointer, a handle or a union/array of them, for
        // which all-zero bytes are a valid value.
        Box::new(unsafe { core::mem::zeroed() })
    }

    #[test]
    fn oid_request_layout_matches_the_header() {
        let fields = [
            ("RequestType", offset_of!(NdisOidRequest, request_type), 4),
            ("RequestId", offset_of!(NdisOidRequest, request_id), 16),
            ("DATA", offset_of!(NdisOidRequest, data), 32),
            ("NdisReserved", offset_of!(NdisOidRequest, ndis_reserved), 72),
            ("SourceReserved", offset_of!(NdisOidRequest, source_reserved), 216),
            ("Reserved2", offset_of!(NdisOidRequest, reserved2), 234),
        ];
        crate::check_offsets("NDIS_OID_REQUEST.", &fields);
        assert_eq!(SIZEOF_OID_REQUEST_REVISION_1, 236);
    }

    #[test]
    fn the_original_rides_in_source_reserved() {
        let mut original = zeroed_request();
        let mut clone = zeroed_request();
        let original_ptr: *mut NdisOidRequest = &mut *original;
        // SAFETY: both requests are alive, zeroed and owned by the test.
        unsafe { set_clone_original(&mut *clone, original_ptr) };
        // SAFETY: as above; set just now.
        assert_eq!(unsafe { clone_original(&*clone) }, original_ptr);
        assert!(clone.ndis_reserved.iter().all(|&b| b == 0), "nothing outside SourceReserved changes");
    }

    #[test]
    fn results_are_copied_per_request_type() {
        let mut original = zeroed_request();
        let mut clone = zeroed_request();
        clone.request_type = NdisRequestType::QUERY_INFORMATION;
        clone.data.query_information = QueryInformation {
            oid: 0x0001_0107,
            information_buffer: ptr::null_mut(),
            information_buffer_length: 4,
            bytes_written: 4,
            bytes_needed: 9,
        };
        // SAFETY: both requests are alive and owned by the test.
        unsafe { copy_results(&mut *original, &*clone) };
        // SAFETY: written as a query just now.
        let query = unsafe { original.data.query_information };
        assert_eq!((query.bytes_written, query.bytes_needed, query.oid), (4, 9, 0), "only the results are copied");

        let mut original = zeroed_request();
        clone.request_type = NdisRequestType::SET_INFORMATION;
        clone.data.set_information = SetInformation {
            oid: 1,
            information_buffer: ptr::null_mut(),
            information_buffer_length: 4,
            bytes_read: 3,
            bytes_needed: 7,
        };
        // SAFETY: as above.
        unsafe { copy_results(&mut *original, &*clone) };
        // SAFETY: written as a set just now.
        let set = unsafe { original.data.set_information };
        assert_eq!((set.bytes_read, set.bytes_needed), (3, 7));

        let mut original = zeroed_request();
        clone.request_type = NdisRequestType::METHOD;
        clone.data.method_information = MethodInformation {
            oid: 1,
            information_buffer: ptr::null_mut(),
            input_buffer_length: 8,
            output_buffer_length: 6,
            method_id: 2,
            bytes_written: 5,
            bytes_read: 8,
            bytes_needed: 1,
        };
        // SAFETY: as above.
        unsafe { copy_results(&mut *original, &*clone) };
        // SAFETY: written as a method just now.
        let method = unsafe { original.data.method_information };
        assert_eq!(
            (
                method.output_buffer_length,
                method.bytes_written,
                method.bytes_read,
                method.bytes_needed,
                method.input_buffer_length
            ),
            (6, 5, 8, 1, 0)
        );
    }
}
