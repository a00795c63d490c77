//! `NET_BUFFER_LIST`, `NET_BUFFER`, `MDL`, and functions for what C does with macros.
//!
//! NBLs and NET_BUFFERs are never allocated by `size_of` (they come from NBL pools and their real
//! `NetBufferListInfo` array is longer than the prefix declared here); the structures are only
//! ever read and written through pointers NDIS hands out.
//!
//! Each accessor is an `unsafe fn` over a raw pointer because that is how the callbacks receive
//! them; [`Nbl`](crate::Nbl) wraps them safely once ownership is established.

use core::ffi::c_void;
use core::ptr::NonNull;

use crate::kernel::Eprocess;
use crate::types::object_type;
use crate::types::{NblPoolHandle, NdisHandle, NdisObjectHeader, RawNdisStatus};

/// `MEMORY_ALLOCATION_ALIGNMENT` wrapper: 16 bytes on 64-bit Windows, 8 on 32-bit. The C headers
/// put `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)` on the reserved arrays of NBLs and NET_BUFFERs.
#[cfg_attr(target_pointer_width = "64", repr(C, align(16)))]
#[cfg_attr(not(target_pointer_width = "64"), repr(C, align(8)))]
#[derive(Clone, Copy, Debug)]
pub struct Aligned<T>(pub T);

/// Entries of `NET_BUFFER_LIST.NetBufferListInfo` declared here: indexes 0 to 7, up to
/// [`NblInfo::FrameType`]. Every NDIS 6 header declares more (`MaxNetBufferListInfo`); only these
/// are read.
pub const NBL_INFO_DECLARED: usize = 8;

/// `NDIS_NET_BUFFER_LIST_INFO`: the indexes of `NET_BUFFER_LIST.NetBufferListInfo` this driver uses.
#[repr(usize)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NblInfo {
    /// `TcpIpChecksumNetBufferListInfo`: checksum offload information.
    TcpIpChecksum = 0,
    /// `TcpLargeSendNetBufferListInfo` on a send (large send offload: the MSS and the TCP header's
    /// offset, a plain value); `TcpReceiveNoPush` on a receive.
    TcpLargeSend = 2,
    /// `Ieee8021QNetBufferListInfo`: VLAN tag and priority.
    Ieee8021Q = 4,
    /// `NetBufferListCancelId`: what `NdisFCancelSendNetBufferLists` matches.
    CancelId = 5,
    /// `MediaSpecificInformation`.
    MediaSpecificInformation = 6,
    /// `NetBufferListFrameType`: the EtherType, network byte order, when set.
    FrameType = 7,
}

/// `NET_BUFFER_LIST`.
#[cfg_attr(target_pointer_width = "64", repr(C, align(16)))]
#[cfg_attr(not(target_pointer_width = "64"), repr(C, align(8)))]
pub struct NetBufferList {
    /// `Next`: the next NBL of a chain (the header is a union with `SLIST_HEADER`).
    pub next: *mut NetBufferList,
    /// `FirstNetBuffer`.
    pub first_net_buffer: *mut NetBuffer,
    /// `Context`: the NBL's context stack.
    pub context: *mut NetBufferListContext,
    /// `ParentNetBufferList`: the original of a clone or a copy.
    pub parent_net_buffer_list: *mut NetBufferList,
    /// `NdisPoolHandle`: the pool the NBL came from.
    pub ndis_pool_handle: NblPoolHandle,
    /// `NdisReserved`.
    pub ndis_reserved: Aligned<[*mut c_void; 2]>,
    /// `ProtocolReserved`: the protocol's (the filter's, for NBLs it allocated) scratch space.
    pub protocol_reserved: Aligned<[*mut c_void; 4]>,
    /// `MiniportReserved`: the miniport's (the filter's, for NBLs it allocated) scratch space.
    pub miniport_reserved: Aligned<[*mut c_void; 2]>,
    /// `Scratch`.
    pub scratch: *mut c_void,
    /// `SourceHandle`: who sent or indicated the NBL (for completion routing).
    pub source_handle: NdisHandle,
    /// `NblFlags`.
    pub nbl_flags: u32,
    /// `ChildRefCount`.
    pub child_ref_count: i32,
    /// `Flags`.
    pub flags: u32,
    /// `Status` (a union with `NdisReserved2`).
    pub status: RawNdisStatus,
    /// `NetBufferListInfo`, the first [`NBL_INFO_DECLARED`] entries.
    pub net_buffer_list_info: [*mut c_void; NBL_INFO_DECLARED],
}

/// `union { ULONG DataLength; SIZE_T stDataLength; }` of a `NET_BUFFER`. NDIS and drivers use the
/// `ULONG`; read it with [`nb_data_length`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union NetBufferDataLength {
    /// `DataLength`.
    pub data_length: u32,
    /// `stDataLength`.
    pub st_data_length: usize,
}

/// Padding that C's union of the `NET_BUFFER` header with `SLIST_HEADER` (16 bytes, 16-aligned on
/// 64-bit Windows) adds after `DataOffset`.
#[cfg(target_pointer_width = "64")]
const NB_HEADER_PADDING: usize = 4;
#[cfg(not(target_pointer_width = "64"))]
const NB_HEADER_PADDING: usize = 0;

/// `NET_BUFFER`: one frame's data, described by an MDL chain.
#[cfg_attr(target_pointer_width = "64", repr(C, align(16)))]
#[cfg_attr(not(target_pointer_width = "64"), repr(C, align(8)))]
pub struct NetBuffer {
    /// `Next`: the next NET_BUFFER of the same NBL.
    pub next: *mut NetBuffer,
    /// `CurrentMdl`: the MDL holding the first data byte.
    pub current_mdl: *mut Mdl,
    /// `CurrentMdlOffset`: where the data starts in `CurrentMdl`.
    pub current_mdl_offset: u32,
    /// `DataLength` / `stDataLength`.
    pub data_length: NetBufferDataLength,
    /// `MdlChain`: the first MDL of the whole chain (data space included).
    pub mdl_chain: *mut Mdl,
    /// `DataOffset`: where the data starts, counted from the start of `MdlChain`.
    pub data_offset: u32,
    _header_padding: [u8; NB_HEADER_PADDING],
    /// `ChecksumBias`.
    pub checksum_bias: u16,
    /// `Reserved`.
    pub reserved: u16,
    /// `NdisPoolHandle`.
    pub ndis_pool_handle: NdisHandle,
    /// `NdisReserved`.
    pub ndis_reserved: Aligned<[*mut c_void; 2]>,
    /// `ProtocolReserved`.
    pub protocol_reserved: Aligned<[*mut c_void; 6]>,
    /// `MiniportReserved`.
    pub miniport_reserved: Aligned<[*mut c_void; 4]>,
    /// `DataPhysicalAddress` (`PHYSICAL_ADDRESS`).
    pub data_physical_address: i64,
    /// `SharedMemoryInfo` / `ScatterGatherList`.
    pub shared_memory_info: *mut c_void,
}

/// `MDL_MAPPED_TO_SYSTEM_VA`: `MappedSystemVa` is valid.
pub const MDL_MAPPED_TO_SYSTEM_VA: u16 = 0x0001;
/// `MDL_PAGES_LOCKED`.
pub const MDL_PAGES_LOCKED: u16 = 0x0002;
/// `MDL_SOURCE_IS_NONPAGED_POOL`: `MappedSystemVa` is valid (set by `MmBuildMdlForNonPagedPool`).
pub const MDL_SOURCE_IS_NONPAGED_POOL: u16 = 0x0004;

/// `MDL`: a memory descriptor list entry (the page-frame array that follows it is not declared).
#[repr(C)]
pub struct Mdl {
    /// `Next`.
    pub next: *mut Mdl,
    /// `Size`: bytes of the MDL including its page-frame array.
    pub size: i16,
    /// `MdlFlags` (a `CSHORT`; compare its bits as `u16` with the `MDL_*` constants).
    pub mdl_flags: i16,
    /// `AllocationProcessorNumber` (64-bit Windows only: on x86 `Process` follows `MdlFlags`).
    #[cfg(target_pointer_width = "64")]
    pub allocation_processor_number: u16,
    /// `Reserved` (64-bit Windows only).
    #[cfg(target_pointer_width = "64")]
    pub reserved: u16,
    /// `Process`.
    pub process: *mut Eprocess,
    /// `MappedSystemVa`: the system address of the buffer's first byte (`ByteOffset` included).
    pub mapped_system_va: *mut c_void,
    /// `StartVa`: the page-aligned virtual address the buffer starts in.
    pub start_va: *mut c_void,
    /// `ByteCount`: bytes the MDL describes.
    pub byte_count: u32,
    /// `ByteOffset`: offset of the buffer in its first page.
    pub byte_offset: u32,
}

/// `NET_BUFFER_LIST_CONTEXT`. Opaque: only NDIS's context functions touch it.
#[repr(C)]
pub struct NetBufferListContext {
    _opaque: [u8; 0],
    _not_send_sync_unpin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

/// `NDIS_PROTOCOL_ID_DEFAULT`: what filters put in [`NetBufferListPoolParameters::protocol_id`].
pub const NDIS_PROTOCOL_ID_DEFAULT: u8 = 0;
/// `NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1`.
pub const NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: u8 = 1;
/// `NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1`: through `DataSize`.
pub const SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: usize =
    core::mem::offset_of!(NetBufferListPoolParameters, data_size) + 4;

/// `NET_BUFFER_LIST_POOL_PARAMETERS` for `NdisAllocateNetBufferListPool`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NetBufferListPoolParameters {
    /// `Header`: [`object_type::DEFAULT`], revision 1.
    pub header: NdisObjectHeader,
    /// `ProtocolId`: [`NDIS_PROTOCOL_ID_DEFAULT`] for filters.
    pub protocol_id: u8,
    /// `fAllocateNetBuffer` (`BOOLEAN`): allocate one NET_BUFFER with each NBL.
    pub allocate_net_buffer: u8,
    /// `ContextSize`: a multiple of `MEMORY_ALLOCATION_ALIGNMENT`.
    pub context_size: u16,
    /// `PoolTag`.
    pub pool_tag: u32,
    /// `DataSize`: bytes of data buffer NDIS allocates with each NBL (0: the caller's MDLs).
    pub data_size: u32,
    /// `Flags` (revision 2 only; ignored at revision 1).
    pub flags: u32,
}

impl NetBufferListPoolParameters {
    /// Revision-1 parameters for a pool whose NBLs each come with one NET_BUFFER and no data
    /// buffer (the filter supplies MDLs to `NdisAllocateNetBufferAndNetBufferList`).
    pub const fn with_net_buffer(pool_tag: u32, context_size: u16) -> Self {
        Self {
            header: NdisObjectHeader::new(
                object_type::DEFAULT,
                NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
                SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            ),
            protocol_id: NDIS_PROTOCOL_ID_DEFAULT,
            allocate_net_buffer: 1,
            context_size,
            pool_tag,
            data_size: 0,
            flags: 0,
        }
    }
}

/// `NET_BUFFER_LIST_FIRST_NB`.
///
/// # Safety
/// `nbl` points to a valid `NET_BUFFER_LIST`.
pub unsafe fn nbl_first_nb(nbl: *const NetBufferList) -> *mut NetBuffer {
    // SAFETY: the caller guarantees `nbl` points to a valid NBL.
    unsafe { (*nbl).first_net_buffer }
}

/// `NET_BUFFER_LIST_NEXT_NBL`.
///
/// # Safety
/// `nbl` points to a valid `NET_BUFFER_LIST`.
pub unsafe fn nbl_next_nbl(nbl: *const NetBufferList) -> *mut NetBufferList {
    // SAFETY: the caller guarantees `nbl` points to a valid NBL.
    unsafe { (*nbl).next }
}

/// `NET_BUFFER_NEXT_NB`.
///
/// # Safety
/// `nb` points to a valid `NET_BUFFER`.
pub unsafe fn nb_next_nb(nb: *const NetBuffer) -> *mut NetBuffer {
    // SAFETY: the caller guarantees `nb` points to a valid NET_BUFFER.
    unsafe { (*nb).next }
}

/// `NET_BUFFER_DATA_LENGTH`: the frame's length in bytes.
///
/// # Safety
/// `nb` points to a valid `NET_BUFFER`.
pub unsafe fn nb_data_length(nb: *const NetBuffer) -> u32 {
    // Stays in bounds of the NET_BUFFER, so the projection is plain address arithmetic.
    let field = nb.wrapping_byte_add(core::mem::offset_of!(NetBuffer, data_length)).cast::<u32>();
    // SAFETY: the caller guarantees `nb` is valid, so `field` is the in-bounds, aligned `ULONG` of
    // the DataLength union, which NDIS keeps initialised.
    unsafe { field.read() }
}

/// `NET_BUFFER_CURRENT_MDL`.
///
/// # Safety
/// `nb` points to a valid `NET_BUFFER`.
pub unsafe fn nb_current_mdl(nb: *const NetBuffer) -> *mut Mdl {
    // SAFETY: the caller guarantees `nb` points to a valid NET_BUFFER.
    unsafe { (*nb).current_mdl }
}

/// `NET_BUFFER_CURRENT_MDL_OFFSET`.
///
/// # Safety
/// `nb` points to a valid `NET_BUFFER`.
pub unsafe fn nb_current_mdl_offset(nb: *const NetBuffer) -> u32 {
    // SAFETY: the caller guarantees `nb` points to a valid NET_BUFFER.
    unsafe { (*nb).current_mdl_offset }
}

/// `NET_BUFFER_LIST_STATUS` (read).
///
/// # Safety
/// `nbl` points to a valid `NET_BUFFER_LIST`.
pub unsafe fn nbl_status(nbl: *const NetBufferList) -> RawNdisStatus {
    // SAFETY: the caller guarantees `nbl` points to a valid NBL.
    unsafe { (*nbl).status }
}

/// `NET_BUFFER_LIST_STATUS(nbl) = status`.
///
/// # Safety
/// `nbl` points to a valid `NET_BUFFER_LIST` the caller may write (one it owns).
pub unsafe fn set_nbl_status(nbl: *mut NetBufferList, status: RawNdisStatus) {
    // SAFETY: the caller guarantees `nbl` is valid and writable by it.
    unsafe { (*nbl).status = status }
}

/// `NET_BUFFER_LIST_INFO(nbl, index)` (read).
///
/// # Safety
/// `nbl` points to a valid `NET_BUFFER_LIST` (from an NBL pool, whose info array is always longer
/// than [`NBL_INFO_DECLARED`]).
pub unsafe fn nbl_info(nbl: *const NetBufferList, index: NblInfo) -> *mut c_void {
    // SAFETY: the caller guarantees `nbl` is valid; `index` is below NBL_INFO_DECLARED by
    // construction of `NblInfo`.
    unsafe { (*nbl).net_buffer_list_info[index as usize] }
}

/// `NET_BUFFER_LIST_INFO(nbl, index) = value`.
///
/// # Safety
/// `nbl` points to a valid `NET_BUFFER_LIST` the caller may write (one it owns).
pub unsafe fn set_nbl_info(nbl: *mut NetBufferList, index: NblInfo, value: *mut c_void) {
    // SAFETY: the caller guarantees `nbl` is valid and writable by it; `index` is in bounds.
    unsafe { (*nbl).net_buffer_list_info[index as usize] = value }
}

/// `NDIS_GET_NET_BUFFER_LIST_CANCEL_ID`: the identifier `NdisFCancelSendNetBufferLists` matches
/// (null when the sender set none).
///
/// # Safety
/// `nbl` points to a valid `NET_BUFFER_LIST`.
pub unsafe fn nbl_cancel_id(nbl: *const NetBufferList) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { nbl_info(nbl, NblInfo::CancelId) }
}

/// The system address of an MDL's buffer, when it has one without mapping:
/// `MmGetSystemAddressForMdlSafe`'s fast path (`MDL_MAPPED_TO_SYSTEM_VA` or
/// `MDL_SOURCE_IS_NONPAGED_POOL` set: `MappedSystemVa`). `MappedSystemVa` already includes
/// `ByteOffset`; it is not added again.
///
/// `None` for an MDL that would need `MmMapLockedPagesSpecifyCache` (or whose flags claim a
/// mapping but whose `MappedSystemVa` is null).
///
/// # Safety
/// `mdl` points to a valid `MDL`.
pub unsafe fn mdl_system_address(mdl: *const Mdl) -> Option<NonNull<u8>> {
    // SAFETY: the caller guarantees `mdl` points to a valid MDL.
    let flags = unsafe { (*mdl).mdl_flags } as u16;
    if flags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) == 0 {
        return None;
    }
    // SAFETY: as above.
    NonNull::new(unsafe { (*mdl).mapped_system_va }.cast::<u8>())
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(NetBufferList, next) == 0x00);
    assert!(offset_of!(NetBufferList, first_net_buffer) == 0x08);
    assert!(offset_of!(NetBufferList, context) == 0x10);
    assert!(offset_of!(NetBufferList, parent_net_buffer_list) == 0x18);
    assert!(offset_of!(NetBufferList, ndis_pool_handle) == 0x20);
    assert!(offset_of!(NetBufferList, ndis_reserved) == 0x30);
    assert!(offset_of!(NetBufferList, protocol_reserved) == 0x40);
    assert!(offset_of!(NetBufferList, miniport_reserved) == 0x60);
    assert!(offset_of!(NetBufferList, scratch) == 0x70);
    assert!(offset_of!(NetBufferList, source_handle) == 0x78);
    assert!(offset_of!(NetBufferList, nbl_flags) == 0x80);
    assert!(offset_of!(NetBufferList, child_ref_count) == 0x84);
    assert!(offset_of!(NetBufferList, flags) == 0x88);
    assert!(offset_of!(NetBufferList, status) == 0x8C);
    assert!(offset_of!(NetBufferList, net_buffer_list_info) == 0x90);
    // The declared prefix only: 0x90 + 8 entries.
    assert!(size_of::<NetBufferList>() == 0xD0 && align_of::<NetBufferList>() == 16);

    assert!(offset_of!(NetBuffer, next) == 0x00);
    assert!(offset_of!(NetBuffer, current_mdl) == 0x08);
    assert!(offset_of!(NetBuffer, current_mdl_offset) == 0x10);
    assert!(offset_of!(NetBuffer, data_length) == 0x18);
    assert!(offset_of!(NetBuffer, mdl_chain) == 0x20);
    assert!(offset_of!(NetBuffer, data_offset) == 0x28);
    assert!(offset_of!(NetBuffer, checksum_bias) == 0x30);
    assert!(offset_of!(NetBuffer, reserved) == 0x32);
    assert!(offset_of!(NetBuffer, ndis_pool_handle) == 0x38);
    assert!(offset_of!(NetBuffer, ndis_reserved) == 0x40);
    assert!(offset_of!(NetBuffer, protocol_reserved) == 0x50);
    assert!(offset_of!(NetBuffer, miniport_reserved) == 0x80);
    assert!(offset_of!(NetBuffer, data_physical_address) == 0xA0);
    assert!(offset_of!(NetBuffer, shared_memory_info) == 0xA8);
    assert!(size_of::<NetBuffer>() == 0xB0 && align_of::<NetBuffer>() == 16);

    assert!(offset_of!(Mdl, next) == 0x00);
    assert!(offset_of!(Mdl, size) == 0x08);
    assert!(offset_of!(Mdl, mdl_flags) == 0x0A);
    assert!(offset_of!(Mdl, allocation_processor_number) == 0x0C);
    assert!(offset_of!(Mdl, reserved) == 0x0E);
    assert!(offset_of!(Mdl, process) == 0x10);
    assert!(offset_of!(Mdl, mapped_system_va) == 0x18);
    assert!(offset_of!(Mdl, start_va) == 0x20);
    assert!(offset_of!(Mdl, byte_count) == 0x28);
    assert!(offset_of!(Mdl, byte_offset) == 0x2C);
    assert!(size_of::<Mdl>() == 0x30);

    assert!(offset_of!(NetBufferListPoolParameters, protocol_id) == 4);
    assert!(offset_of!(NetBufferListPoolParameters, allocate_net_buffer) == 5);
    assert!(offset_of!(NetBufferListPoolParameters, context_size) == 6);
    assert!(offset_of!(NetBufferListPoolParameters, pool_tag) == 8);
    assert!(offset_of!(NetBufferListPoolParameters, data_size) == 12);
    assert!(offset_of!(NetBufferListPoolParameters, flags) == 16);
    assert!(size_of::<NetBufferListPoolParameters>() == 20);
    assert!(SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 == 16);
};

// x86 (`x86-facts.md` §3, from the WDK headers): 4-byte pointers, NBLs and NET_BUFFERs 8-aligned
// (`MEMORY_ALLOCATION_ALIGNMENT`), `PHYSICAL_ADDRESS` still 8-aligned.
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(NetBufferList, next) == 0x00);
    assert!(offset_of!(NetBufferList, first_net_buffer) == 0x04);
    assert!(offset_of!(NetBufferList, context) == 0x08);
    assert!(offset_of!(NetBufferList, parent_net_buffer_list) == 0x0C);
    assert!(offset_of!(NetBufferList, ndis_pool_handle) == 0x10);
    assert!(offset_of!(NetBufferList, ndis_reserved) == 0x18);
    assert!(offset_of!(NetBufferList, protocol_reserved) == 0x20);
    assert!(offset_of!(NetBufferList, miniport_reserved) == 0x30);
    assert!(offset_of!(NetBufferList, scratch) == 0x38);
    assert!(offset_of!(NetBufferList, source_handle) == 0x3C);
    assert!(offset_of!(NetBufferList, nbl_flags) == 0x40);
    assert!(offset_of!(NetBufferList, child_ref_count) == 0x44);
    assert!(offset_of!(NetBufferList, flags) == 0x48);
    assert!(offset_of!(NetBufferList, status) == 0x4C);
    assert!(offset_of!(NetBufferList, net_buffer_list_info) == 0x50);
    // The declared prefix only: 0x50 + 8 entries.
    assert!(size_of::<NetBufferList>() == 0x70 && align_of::<NetBufferList>() == 8);

    assert!(offset_of!(NetBuffer, next) == 0x00);
    assert!(offset_of!(NetBuffer, current_mdl) == 0x04);
    assert!(offset_of!(NetBuffer, current_mdl_offset) == 0x08);
    assert!(offset_of!(NetBuffer, data_length) == 0x0C);
    assert!(offset_of!(NetBuffer, mdl_chain) == 0x10);
    assert!(offset_of!(NetBuffer, data_offset) == 0x14);
    assert!(offset_of!(NetBuffer, checksum_bias) == 0x18);
    assert!(offset_of!(NetBuffer, reserved) == 0x1A);
    assert!(offset_of!(NetBuffer, ndis_pool_handle) == 0x1C);
    assert!(offset_of!(NetBuffer, ndis_reserved) == 0x20);
    assert!(offset_of!(NetBuffer, protocol_reserved) == 0x28);
    assert!(offset_of!(NetBuffer, miniport_reserved) == 0x40);
    assert!(offset_of!(NetBuffer, data_physical_address) == 0x50);
    assert!(offset_of!(NetBuffer, shared_memory_info) == 0x58);
    assert!(size_of::<NetBuffer>() == 0x60 && align_of::<NetBuffer>() == 8);

    assert!(offset_of!(Mdl, next) == 0x00);
    assert!(offset_of!(Mdl, size) == 0x04);
    assert!(offset_of!(Mdl, mdl_flags) == 0x06);
    assert!(offset_of!(Mdl, process) == 0x08);
    assert!(offset_of!(Mdl, mapped_system_va) == 0x0C);
    assert!(offset_of!(Mdl, start_va) == 0x10);
    assert!(offset_of!(Mdl, byte_count) == 0x14);
    assert!(offset_of!(Mdl, byte_offset) == 0x18);
    assert!(size_of::<Mdl>() == 0x1C);

    assert!(offset_of!(NetBufferListPoolParameters, pool_tag) == 8);
    assert!(offset_of!(NetBufferListPoolParameters, data_size) == 12);
    assert!(offset_of!(NetBufferListPoolParameters, flags) == 16);
    assert!(size_of::<NetBufferListPoolParameters>() == 20);
    assert!(SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 == 16);
};

#[cfg(test)]
pub(crate) mod testing {
    //! NBLs, NET_BUFFERs and MDLs built in test memory exactly as NDIS lays them out. Every piece is
    //! a leaked `Box` reached only through raw pointers (as NDIS memory is) and freed on drop.

    use super::*;
    use core::ptr;
    use std::boxed::Box;
    use std::vec::Vec;

    /// An all-zero value of an FFI structure: null pointers, zero integers.
    pub fn zeroed<T: ZeroValid>() -> T {
        // SAFETY: `ZeroValid` is only implemented for structures of integers, raw pointers, handles
        // and arrays of them, for which all-zero bytes are a valid value.
        unsafe { core::mem::zeroed() }
    }

    /// Structures whose all-zero bit pattern is a valid value.
    pub trait ZeroValid {}
    impl ZeroValid for NetBufferList {}
    impl ZeroValid for NetBuffer {}
    impl ZeroValid for Mdl {}

    /// Moves `value` to the heap and forgets the box: the test owns the pointer.
    pub fn leak<T>(value: T) -> *mut T {
        Box::into_raw(Box::new(value))
    }

    /// Frees what [`leak`] made.
    ///
    /// # Safety
    /// `p` came from [`leak`] (or `Box::into_raw`) and is not used afterwards.
    pub unsafe fn free<T: ?Sized>(p: *mut T) {
        // SAFETY: forwarded from the caller.
        drop(unsafe { Box::from_raw(p) });
    }

    /// One frame split over MDLs, each with its own buffer, plus a NET_BUFFER and an NBL over it.
    pub struct Frame {
        pub buffers: Vec<*mut [u8]>,
        pub mdls: Vec<*mut Mdl>,
        pub nb: *mut NetBuffer,
        pub nbl: *mut NetBufferList,
    }

    impl Frame {
        /// Mapped MDLs over `pieces` (each a whole buffer), data starting `offset` bytes into the
        /// first MDL and `data_length` long.
        pub fn new(pieces: &[&[u8]], offset: u32, data_length: u32) -> Frame {
            let buffers: Vec<*mut [u8]> = pieces.iter().map(|p| Box::into_raw(Box::<[u8]>::from(*p))).collect();
            let mut mdls = Vec::new();
            let mut next: *mut Mdl = ptr::null_mut();
            for &buffer in buffers.iter().rev() {
                let mut mdl: Mdl = zeroed();
                mdl.next = next;
                mdl.mapped_system_va = buffer.cast();
                mdl.mdl_flags = MDL_MAPPED_TO_SYSTEM_VA as i16;
                mdl.byte_count = u32::try_from(buffer.len()).unwrap();
                next = leak(mdl);
                mdls.push(next);
            }
            mdls.reverse();
            let mut nb: NetBuffer = zeroed();
            nb.current_mdl = next;
            nb.mdl_chain = next;
            nb.current_mdl_offset = offset;
            nb.data_offset = offset;
            // The `ULONG` NDIS reads, whatever the byte order (the rest of the union stays zero).
            nb.data_length.data_length = data_length;
            let nb = leak(nb);
            let mut nbl: NetBufferList = zeroed();
            nbl.first_net_buffer = nb;
            Frame { buffers, mdls, nb, nbl: leak(nbl) }
        }

        /// All the pieces as one frame (every byte of every buffer).
        pub fn whole(pieces: &[&[u8]]) -> Frame {
            let total: usize = pieces.iter().map(|p| p.len()).sum();
            Frame::new(pieces, 0, u32::try_from(total).unwrap())
        }

        /// The bytes of buffer `i` as they are now.
        pub fn buffer(&self, i: usize) -> Vec<u8> {
            // SAFETY: the buffer is alive until `self` drops; nothing writes it during this copy.
            unsafe { &*self.buffers[i] }.to_vec()
        }
    }

    impl Drop for Frame {
        fn drop(&mut self) {
            // SAFETY: each pointer below came from `leak`/`Box::into_raw` in `new` and is freed once.
            unsafe { free(self.nbl) };
            // SAFETY: as above.
            unsafe { free(self.nb) };
            for &mdl in &self.mdls {
                // SAFETY: as above.
                unsafe { free(mdl) };
            }
            for &buffer in &self.buffers {
                // SAFETY: as above.
                unsafe { free(buffer) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{free, leak, zeroed, Frame};
    use super::*;
    use core::mem::{offset_of, size_of};
    use core::ptr;

    #[test]
    fn net_buffer_list_layout_matches_the_facts() {
        crate::check_offsets(
            "NET_BUFFER_LIST.",
            &[
                ("Next", offset_of!(NetBufferList, next), 0x00),
                ("FirstNetBuffer", offset_of!(NetBufferList, first_net_buffer), 0x08),
                ("Context", offset_of!(NetBufferList, context), 0x10),
                ("ParentNetBufferList", offset_of!(NetBufferList, parent_net_buffer_list), 0x18),
                ("NdisPoolHandle", offset_of!(NetBufferList, ndis_pool_handle), 0x20),
                ("NdisReserved", offset_of!(NetBufferList, ndis_reserved), 0x30),
                ("ProtocolReserved", offset_of!(NetBufferList, protocol_reserved), 0x40),
                ("MiniportReserved", offset_of!(NetBufferList, miniport_reserved), 0x60),
                ("Scratch", offset_of!(NetBufferList, scratch), 0x70),
                ("SourceHandle", offset_of!(NetBufferList, source_handle), 0x78),
                ("NblFlags", offset_of!(NetBufferList, nbl_flags), 0x80),
                ("ChildRefCount", offset_of!(NetBufferList, child_ref_count), 0x84),
                ("Flags", offset_of!(NetBufferList, flags), 0x88),
                ("Status", offset_of!(NetBufferList, status), 0x8C),
                ("NetBufferListInfo", offset_of!(NetBufferList, net_buffer_list_info), 0x90),
            ],
        );
        assert_eq!(core::mem::align_of::<NetBufferList>(), 16);
    }

    #[test]
    fn net_buffer_layout_matches_the_facts() {
        crate::check_offsets(
            "NET_BUFFER.",
            &[
                ("Next", offset_of!(NetBuffer, next), 0x00),
                ("CurrentMdl", offset_of!(NetBuffer, current_mdl), 0x08),
                ("CurrentMdlOffset", offset_of!(NetBuffer, current_mdl_offset), 0x10),
                ("DataLength", offset_of!(NetBuffer, data_length), 0x18),
                ("MdlChain", offset_of!(NetBuffer, mdl_chain), 0x20),
                ("DataOffset", offset_of!(NetBuffer, data_offset), 0x28),
                ("ChecksumBias", offset_of!(NetBuffer, checksum_bias), 0x30),
                ("Reserved", offset_of!(NetBuffer, reserved), 0x32),
                ("NdisPoolHandle", offset_of!(NetBuffer, ndis_pool_handle), 0x38),
                ("NdisReserved", offset_of!(NetBuffer, ndis_reserved), 0x40),
                ("ProtocolReserved", offset_of!(NetBuffer, protocol_reserved), 0x50),
                ("MiniportReserved", offset_of!(NetBuffer, miniport_reserved), 0x80),
                ("DataPhysicalAddress", offset_of!(NetBuffer, data_physical_address), 0xA0),
                ("SharedMemoryInfo", offset_of!(NetBuffer, shared_memory_info), 0xA8),
            ],
        );
        assert_eq!(size_of::<NetBuffer>(), 0xB0);
    }

    #[test]
    fn mdl_layout_matches_the_facts() {
        crate::check_offsets(
            "MDL.",
            &[
                ("Next", offset_of!(Mdl, next), 0x00),
                ("Size", offset_of!(Mdl, size), 0x08),
                ("MdlFlags", offset_of!(Mdl, mdl_flags), 0x0A),
                ("AllocationProcessorNumber", offset_of!(Mdl, allocation_processor_number), 0x0C),
                ("Reserved", offset_of!(Mdl, reserved), 0x0E),
                ("Process", offset_of!(Mdl, process), 0x10),
                ("MappedSystemVa", offset_of!(Mdl, mapped_system_va), 0x18),
                ("StartVa", offset_of!(Mdl, start_va), 0x20),
                ("ByteCount", offset_of!(Mdl, byte_count), 0x28),
                ("ByteOffset", offset_of!(Mdl, byte_offset), 0x2C),
            ],
        );
        assert_eq!(size_of::<Mdl>(), 0x30);
        let pool = NetBufferListPoolParameters::with_net_buffer(u32::from_le_bytes(*b"WLnb"), 0);
        assert_eq!((pool.header.object_type, pool.header.revision, pool.header.size), (0x80, 1, 16));
        assert_eq!(pool.allocate_net_buffer, 1);
    }

    #[test]
    fn macro_accessors_follow_the_links() {
        let first = Frame::whole(&[b"abcdef"]);
        let second = Frame::whole(&[b"xyz"]);
        let extra_nb = leak(zeroed::<NetBuffer>());
        // SAFETY: both frames are alive; the test owns them and nothing else touches them.
        unsafe { (*first.nbl).next = second.nbl };
        // SAFETY: as above.
        unsafe { (*first.nb).next = extra_nb };
        // SAFETY: the pointers come from the live frames above.
        assert_eq!(unsafe { nbl_next_nbl(first.nbl) }, second.nbl);
        // SAFETY: as above.
        assert!(unsafe { nbl_next_nbl(second.nbl) }.is_null());
        // SAFETY: as above.
        let nb = unsafe { nbl_first_nb(first.nbl) };
        assert_eq!(nb, first.nb);
        // SAFETY: as above.
        assert_eq!(unsafe { nb_data_length(nb) }, 6);
        // SAFETY: as above.
        assert_eq!(unsafe { nb_current_mdl(nb) }, first.mdls[0]);
        // SAFETY: as above.
        assert_eq!(unsafe { nb_current_mdl_offset(nb) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { nb_next_nb(nb) }, extra_nb);
        // SAFETY: `extra_nb` came from `leak` and is not used afterwards.
        unsafe { free(extra_nb) };
    }

    #[test]
    fn data_length_reads_only_the_ulong() {
        let mut nb: NetBuffer = zeroed();
        nb.data_length = NetBufferDataLength { st_data_length: usize::MAX };
        // Only the `ULONG`'s own bytes change: the rest of the `SIZE_T` stays all ones.
        nb.data_length.data_length = 1500;
        // SAFETY: `nb` is a valid, initialised NET_BUFFER on the stack.
        assert_eq!(unsafe { nb_data_length(&nb) }, 1500);
    }

    #[test]
    fn status_and_info_round_trip() {
        let nbl = leak(zeroed::<NetBufferList>());
        let cancel = ptr::without_provenance_mut::<c_void>(0xC0FFEE);
        // SAFETY: `nbl` points to the leaked NBL, alive until the `free`.
        assert_eq!(unsafe { nbl_status(nbl) }, 0, "NDIS_STATUS_SUCCESS");
        // SAFETY: as above.
        unsafe { set_nbl_status(nbl, 0xC023_002A) };
        // SAFETY: as above.
        assert_eq!(unsafe { nbl_status(nbl) }, 0xC023_002A, "NDIS_STATUS_PAUSED");
        // SAFETY: as above.
        assert!(unsafe { nbl_cancel_id(nbl) }.is_null());
        // SAFETY: as above.
        unsafe { set_nbl_info(nbl, NblInfo::CancelId, cancel) };
        // SAFETY: as above.
        assert_eq!(unsafe { nbl_cancel_id(nbl) }, cancel);
        // SAFETY: as above.
        assert!(unsafe { nbl_info(nbl, NblInfo::FrameType) }.is_null());
        // SAFETY: as above.
        let raw = unsafe { ptr::read(nbl) };
        assert_eq!(raw.status, 0xC023_002A);
        assert_eq!(raw.net_buffer_list_info[5], cancel);
        // SAFETY: `nbl` came from `leak` and is not used afterwards.
        unsafe { free(nbl) };
        assert_eq!(NblInfo::TcpIpChecksum as usize, 0);
        assert_eq!(NblInfo::TcpLargeSend as usize, 2);
        assert_eq!(NblInfo::Ieee8021Q as usize, 4);
        assert_eq!(NblInfo::MediaSpecificInformation as usize, 6);
        assert_eq!(NblInfo::FrameType as usize, 7);
    }

    #[test]
    fn system_address_needs_a_mapping_flag() {
        let mut buffer = [0u8; 8];
        let base = NonNull::new(buffer.as_mut_ptr());
        let mut mdl: Mdl = zeroed();
        mdl.mapped_system_va = buffer.as_mut_ptr().cast();
        mdl.byte_count = 8;
        // SAFETY: `mdl` is a valid, initialised MDL on the stack.
        assert_eq!(unsafe { mdl_system_address(&mdl) }, None);
        mdl.mdl_flags = MDL_SOURCE_IS_NONPAGED_POOL as i16;
        // SAFETY: as above.
        assert_eq!(unsafe { mdl_system_address(&mdl) }, base);
        mdl.mdl_flags = (MDL_MAPPED_TO_SYSTEM_VA | MDL_PAGES_LOCKED) as i16;
        // SAFETY: as above.
        assert_eq!(unsafe { mdl_system_address(&mdl) }, base);
        mdl.mapped_system_va = ptr::null_mut();
        // SAFETY: as above.
        assert_eq!(unsafe { mdl_system_address(&mdl) }, None);
    }
}
