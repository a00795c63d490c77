//! [`PacketIo`] over NBLs: frame bytes, the driver's own NBLs, and the `NdisF*` data-path calls.
//!
//! # The driver's own NBLs
//!
//! The engine asks for a packet of its own when a hook replaces a frame, edits one it may not
//! write in place, or takes one that was only lent. Each is:
//!
//! * an NBL with one NET_BUFFER from the module's NBL pool (`NdisAllocateNetBufferAndNetBufferList`;
//!   the pool is created at attach, see [`crate::filter`]);
//! * over one MDL (`IoAllocateMdl` + `MmBuildMdlForNonPagedPool`) describing
//! * one non-paged pool block tagged [`FRAME_TAG`]: an `OwnFrame` header of [`HEADER`] bytes,
//!   then the frame.
//!
//! `SourceHandle` is set to the module's filter handle, as NDIS requires of NBLs a filter
//! originates. The header records the NBL, its MDL, the block and the *parent* (the original the
//! copy replaced, [`PacketIo::attach_parent`]): the parent is kept in memory that only the driver
//! writes, never in an NBL field another driver may use (`ProtocolReserved` belongs to the
//! protocol above on receive, `MiniportReserved` to the miniport on send, and
//! `ParentNetBufferList` has meaning to NDIS for clones).
//!
//! # Recognising them when they come back
//!
//! [`PacketIo::reclaim`] makes the standard test: `SourceHandle` is one of our module handles —
//! and, stronger, the NBL's pool is that module's pool ([`ModuleTable::originated`](crate::modules::ModuleTable::originated)). Only then is
//! the header looked at, found from the NET_BUFFER's `MdlChain` (our MDL: drivers below and above
//! must undo any retreat before completing or returning an NBL, so the chain is ours again), and
//! checked: its magic and its back-pointer to the NBL must match, or the driver bug checks rather
//! than free memory it does not own.
//!
//! # Frame bytes
//!
//! Reads use the `wanlayer-ndis` MDL walker, which copies from MDLs that are already mapped
//! without mapping anything; when it meets an unmapped MDL (a zero-copy send from user pages) the
//! read falls back on `NdisGetDataBuffer`, which maps as needed — for the whole frame prefix up to
//! [`MAPPED_READ_MAX`] bytes. Writes in place are allowed only into the driver's own NBLs: the
//! protocol's send buffers may be retransmitted or shared and the miniport's receive buffers are
//! its own, so a write to any other NBL answers [`WriteError::ReadOnly`] and the engine copies.
//!
//! NBLs with several NET_BUFFERs (possible on sends) are seen by the engine through their first
//! frame only; copying one would lose the others, so [`PacketIo::allocate`] refuses to copy them
//! (the engine then treats it as an allocation failure).

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::{self, NonNull};

use wanlayer_core::hal::{FrameSource, Level, OutOfMemory, PacketChain, PacketIo, PathContext, Reclaimed, WriteError};
use wanlayer_core::{ModuleId, NdisStatus};
use wanlayer_ndis::lightweight_filter::{ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags};
use wanlayer_ndis::frame::FrameError;
use wanlayer_ndis::imports;
use wanlayer_ndis::nbl::{nbl_first_nb, nbl_info, set_nbl_info, Mdl, NblInfo, NetBuffer, NetBufferList};
use wanlayer_ndis::types::NdisHandle;
use wanlayer_ndis::{Nbl, NblChain};

use super::KernelHal;
use crate::modules::MODULES;

/// Pool tag of the frame buffers of the driver's own NBLs: "WLfr".
pub const FRAME_TAG: u32 = u32::from_le_bytes(*b"WLfr");

/// Bytes before the frame in an own block: room for `OwnFrame`, a multiple of the 16-byte pool
/// alignment so the frame starts aligned too.
pub const HEADER: usize = 64;

/// The most frame bytes a read at a non-zero offset fetches through `NdisGetDataBuffer` when the
/// MDL walker meets an unmapped MDL (a stack buffer: headers, not payloads).
pub const MAPPED_READ_MAX: usize = 256;

/// "WLOWNFRM": marks a live [`OwnFrame`].
const MAGIC: u64 = u64::from_le_bytes(*b"WLOWNFRM");

/// The `NetBufferListInfo` entries a copy carries over from its original: plain values that
/// describe the frame (checksum offload requests, large send offload, 802.1Q tag, frame type).
/// Pointer-valued entries (cancel identifier, media-specific information) stay with the original.
///
/// Large send offload is kept deliberately: a copy is the same bytes, so the MSS and TCP header
/// offset the protocol asked the miniport to segment with stay true, and dropping them would send
/// one frame larger than the link's MTU. (NdisWan's IP miniports advertise no LSO, so TCP/IP does
/// not ask for it there; the copy still keeps what it was given.) A replacement frame
/// (`FrameSource::Bytes`) carries no offload information at all: its bytes are the hook's.
const COPIED_INFO: [NblInfo; 4] = [NblInfo::TcpIpChecksum, NblInfo::TcpLargeSend, NblInfo::Ieee8021Q, NblInfo::FrameType];

/// The header of an own block.
#[repr(C, align(16))]
struct OwnFrame {
    magic: u64,
    nbl: *mut NetBufferList,
    mdl: *mut Mdl,
    parent: *mut NetBufferList,
}

const _: () = assert!(size_of::<OwnFrame>() <= HEADER && HEADER % 16 == 0);

/// The NBL's first NET_BUFFER (null without one).
fn first_nb(nbl: &Nbl) -> *mut NetBuffer {
    // SAFETY: an `Nbl` is a valid NBL by the promise of `Nbl::from_raw`.
    unsafe { nbl_first_nb(nbl.as_ptr()) }
}

/// The header of one of the driver's own NBLs, or `None` for anyone else's.
///
/// # Panics
/// When the NBL passes the ownership test but its header does not match: its MDL chain was not
/// restored by a driver it went through, or memory is corrupt.
fn own_frame(nbl: &Nbl) -> Option<NonNull<OwnFrame>> {
    // SAFETY: an `Nbl` is a valid NBL owned by the caller (promise of `Nbl::from_raw`); a shared
    // reference for the duration of these reads aliases no writer.
    let raw = unsafe { &*nbl.as_ptr() };
    if !MODULES.originated(raw.source_handle, raw.ndis_pool_handle) {
        return None;
    }
    let nb = raw.first_net_buffer;
    assert!(!nb.is_null(), "own NBL without its NET_BUFFER");
    // SAFETY: `nb` is the NET_BUFFER allocated with this NBL.
    let mdl = unsafe { (*nb).mdl_chain };
    assert!(!mdl.is_null(), "own NBL without its MDL");
    // SAFETY: `mdl` heads the NET_BUFFER's chain, which for our NBLs is our MDL again by the time
    // NDIS hands the NBL back (no driver keeps a retreat past completion or return).
    let data = unsafe { (*mdl).mapped_system_va }.cast::<u8>();
    let header = NonNull::new(data.wrapping_sub(HEADER).cast::<OwnFrame>())?;
    // SAFETY: for our MDL, `data` is `HEADER` bytes into a block that starts with an `OwnFrame`.
    let frame = unsafe { header.as_ref() };
    assert!(frame.magic == MAGIC && frame.nbl == nbl.as_ptr(), "own NBL whose MDL chain is not ours");
    Some(header)
}

/// Frees an own NBL, its MDL and its block; gives back its parent.
fn free_own(nbl: Nbl, header: NonNull<OwnFrame>) -> Option<Nbl> {
    // SAFETY: `header` is the live header of `nbl` (checked by `own_frame`); nothing else uses the
    // block, which the driver owns with the NBL.
    let frame = unsafe { header.as_ptr().read() };
    // SAFETY: as above; clearing the magic makes a stale pointer to the block fail the check.
    unsafe { (*header.as_ptr()).magic = 0 };
    let raw = nbl.into_raw();
    // SAFETY: the NBL came from NdisAllocateNetBufferAndNetBufferList, is back in the driver's
    // hands and is never used again.
    unsafe { imports::NdisFreeNetBufferList(raw.as_ptr()) };
    // SAFETY: the MDL came from IoAllocateMdl and was only used by the NBL just freed.
    unsafe { imports::IoFreeMdl(frame.mdl) };
    // SAFETY: the block came from ExAllocatePool2 with FRAME_TAG and nothing refers to it now.
    unsafe { imports::ExFreePoolWithTag(header.as_ptr().cast::<c_void>(), FRAME_TAG) };
    // SAFETY: a parent was attached as an owned NBL (`attach_parent`) and is handed back as one.
    NonNull::new(frame.parent).map(|parent| unsafe { Nbl::from_raw(parent) })
}

/// Reads frame bytes from `offset` (see the module documentation for the fallback).
fn read_frame(nbl: &Nbl, offset: usize, out: &mut [u8]) -> usize {
    let want = out.len().min(nbl.frame_len().saturating_sub(offset));
    if want == 0 {
        return 0;
    }
    let out = &mut out[..want];
    match nbl.read(offset, out) {
        Ok(count) => count,
        Err(FrameError::Unmapped) => read_mapping(nbl, offset, out),
        Err(_) => 0,
    }
}

/// Reads `out.len()` frame bytes from `offset` through `NdisGetDataBuffer`, which maps MDLs as
/// needed; 0 when NDIS cannot (no mapping resources) or the range is past [`MAPPED_READ_MAX`].
fn read_mapping(nbl: &Nbl, offset: usize, out: &mut [u8]) -> usize {
    let nb = first_nb(nbl);
    let Some(end) = offset.checked_add(out.len()) else { return 0 };
    let Ok(needed) = u32::try_from(end) else { return 0 };
    if nb.is_null() {
        return 0;
    }
    let mut scratch = [0u8; MAPPED_READ_MAX];
    let storage: *mut u8 = if offset == 0 {
        out.as_mut_ptr()
    } else if end <= MAPPED_READ_MAX {
        scratch.as_mut_ptr()
    } else {
        return 0;
    };
    // SAFETY: `nb` is the NBL's valid NET_BUFFER, `needed` bytes are within DataLength (checked by
    // the caller), and `storage` has room for `needed` bytes (`out` when reading from 0, else the
    // scratch buffer, end <= MAPPED_READ_MAX).
    let data = unsafe { imports::NdisGetDataBuffer(nb, needed, storage.cast(), 1, 0) }.cast::<u8>();
    if data.is_null() {
        return 0;
    }
    let source = data.wrapping_add(offset);
    if source != out.as_mut_ptr() {
        // SAFETY: NDIS returned `needed` contiguous readable bytes at `data` (in the MDL or copied
        // into `storage`); `source..source + out.len()` is their tail; `out` is a distinct buffer
        // unless `source == out`, excluded here.
        unsafe { ptr::copy_nonoverlapping(source, out.as_mut_ptr(), out.len()) };
    }
    out.len()
}

/// Allocates the pool block, MDL and NBL of an own frame of `len` bytes; fills the frame with
/// `fill`; returns the NBL with its header written.
fn allocate_own(
    filter: NdisHandle,
    pool: wanlayer_ndis::types::NblPoolHandle,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> bool,
) -> Result<NonNull<NetBufferList>, OutOfMemory> {
    let described = len.max(1);
    let mdl_len = u32::try_from(described).map_err(|_| OutOfMemory)?;
    let block_len = HEADER.checked_add(described).ok_or(OutOfMemory)?;
    // Zeroed non-paged pool, at <= DISPATCH_LEVEL.
    let block = wanlayer_ndis::pool::allocate(block_len, FRAME_TAG).cast::<u8>();
    if block.is_null() {
        return Err(OutOfMemory);
    }
    let free_block = || {
        // SAFETY: `block` came from `pool::allocate` with FRAME_TAG and nothing else refers to it.
        unsafe { imports::ExFreePoolWithTag(block.cast(), FRAME_TAG) }
    };
    let data = block.wrapping_add(HEADER);
    // SAFETY: the block holds `HEADER + described >= HEADER + len` bytes, zeroed, owned here.
    let frame = unsafe { core::slice::from_raw_parts_mut(data, len) };
    if !fill(frame) {
        free_block();
        return Err(OutOfMemory);
    }
    // SAFETY: `data..data + mdl_len` is non-paged pool owned by the driver; no IRP.
    let mdl = unsafe { imports::IoAllocateMdl(data.cast(), mdl_len, 0, 0, ptr::null_mut()) };
    if mdl.is_null() {
        free_block();
        return Err(OutOfMemory);
    }
    // SAFETY: `mdl` describes non-paged pool; this fills in its pages and MappedSystemVa (= data).
    unsafe { imports::MmBuildMdlForNonPagedPool(mdl) };
    // SAFETY: `pool` is the module's live NBL pool (allocated with a NET_BUFFER each); `mdl`
    // describes `described >= len` bytes.
    let nbl = unsafe { imports::NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, mdl, 0, len) };
    let Some(nbl) = NonNull::new(nbl) else {
        // SAFETY: the MDL came from IoAllocateMdl and no NBL uses it.
        unsafe { imports::IoFreeMdl(mdl) };
        free_block();
        return Err(OutOfMemory);
    };
    // SAFETY: the NBL was just allocated and is ours alone; a filter sets SourceHandle on the NBLs
    // it originates to its filter module handle.
    unsafe { (*nbl.as_ptr()).source_handle = filter };
    let header = OwnFrame { magic: MAGIC, nbl: nbl.as_ptr(), mdl, parent: ptr::null_mut() };
    // SAFETY: the block starts 16-aligned with room for the header (HEADER >= its size).
    unsafe { block.cast::<OwnFrame>().write(header) };
    Ok(nbl)
}

/// The engine's packet chain: the FFI crate's [`NblChain`] (which knows nothing of the engine),
/// given the engine's [`PacketChain`] here.
#[must_use = "a chain of NBLs must be handed back to NDIS; dropping a non-empty one leaks them"]
#[derive(Debug, Default)]
pub struct KernelChain(pub NblChain);

impl PacketChain<Nbl> for KernelChain {
    fn push_back(&mut self, packet: Nbl) {
        self.0.push_back(packet);
    }

    fn pop_front(&mut self) -> Option<Nbl> {
        self.0.pop_front()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a failed write into an NBL's frame means to the engine: an MDL without a mapping means
/// "copy instead"; every other failure is a range the frame does not really have.
fn write_error(error: FrameError) -> WriteError {
    match error {
        FrameError::Unmapped => WriteError::ReadOnly,
        _ => WriteError::OutOfRange,
    }
}

impl PacketIo for KernelHal {
    type Packet = Nbl;
    type Chain = KernelChain;

    fn frame_len(&self, packet: &Nbl) -> usize {
        packet.frame_len()
    }

    fn read(&self, packet: &Nbl, offset: usize, out: &mut [u8]) -> usize {
        read_frame(packet, offset, out)
    }

    fn write(&self, packet: &mut Nbl, offset: usize, data: &[u8]) -> Result<(), WriteError> {
        if offset.checked_add(data.len()).is_none_or(|end| end > packet.frame_len()) {
            return Err(WriteError::OutOfRange);
        }
        if own_frame(packet).is_none() {
            return Err(WriteError::ReadOnly);
        }
        // SAFETY: the NBL is one of the driver's own (checked just now): its one MDL maps the
        // driver's pool block, writable and not shared with anyone while the driver holds it.
        unsafe { packet.write(offset, data) }.map_err(write_error)
    }

    fn status(&self, packet: &Nbl) -> NdisStatus {
        NdisStatus(packet.status())
    }

    fn set_status(&self, packet: &mut Nbl, status: NdisStatus) {
        packet.set_status(status.0);
    }

    fn allocate(&self, module: ModuleId, source: FrameSource<'_, Nbl>) -> Result<Nbl, OutOfMemory> {
        let handles = MODULES.handles(module).ok_or(OutOfMemory)?;
        let filter = NdisHandle::from(handles.filter);
        let nbl = match source {
            FrameSource::Bytes(bytes) => allocate_own(filter, handles.pool, bytes.len(), |frame| {
                frame.copy_from_slice(bytes);
                true
            })?,
            FrameSource::CopyOf(original) => {
                if original.net_buffer_count() != 1 {
                    self.log_refusal(module, original.net_buffer_count());
                    return Err(OutOfMemory);
                }
                let len = original.frame_len();
                let nbl = allocate_own(filter, handles.pool, len, |frame| read_frame(original, 0, frame) == len)?;
                for index in COPIED_INFO {
                    // SAFETY: the original is a valid NBL the caller holds.
                    let value = unsafe { nbl_info(original.as_ptr(), index) };
                    // SAFETY: the copy was just allocated and is ours alone; the entries copied are
                    // plain values, not pointers to the original's memory.
                    unsafe { set_nbl_info(nbl.as_ptr(), index, value) };
                }
                nbl
            }
        };
        // SAFETY: a freshly allocated NBL with one NET_BUFFER over one mapped MDL, owned by the
        // driver alone: the promise of `Nbl::from_raw`.
        Ok(unsafe { Nbl::from_raw(nbl) })
    }

    fn attach_parent(&self, child: &mut Nbl, parent: Nbl) {
        let header = own_frame(child).expect("attach_parent on an NBL the driver did not allocate");
        // SAFETY: `header` is the live header of `child`, which the caller holds; the parent
        // becomes the block's until `reclaim` or `free` hands it back.
        let slot = unsafe { &mut (*header.as_ptr()).parent };
        assert!(slot.is_null(), "attach_parent on an NBL that already has a parent");
        // The child stands for its parent on the way down: it carries the protocol's cancel
        // identifier, so that FilterCancelSendNetBufferLists finds it among the sends hooks hold.
        // SAFETY: the parent is a valid NBL the caller hands to the child.
        let cancel_id = unsafe { nbl_info(parent.as_ptr(), NblInfo::CancelId) };
        // SAFETY: the child is one of the driver's own NBLs, which the caller holds.
        unsafe { set_nbl_info(child.as_ptr(), NblInfo::CancelId, cancel_id) };
        *slot = parent.into_raw().as_ptr();
    }

    fn reclaim(&self, packet: Nbl) -> Reclaimed<Nbl> {
        match own_frame(&packet) {
            Some(header) => {
                let status = NdisStatus(packet.status());
                Reclaimed::Own { parent: free_own(packet, header), status }
            }
            None => Reclaimed::Foreign(packet),
        }
    }

    fn free(&self, packet: Nbl) -> Option<Nbl> {
        let header = own_frame(&packet).expect("free of an NBL the driver did not allocate");
        free_own(packet, header)
    }

    fn send_down(&self, module: ModuleId, KernelChain(chain): KernelChain, ctx: PathContext) {
        if chain.is_empty() {
            return;
        }
        let filter = Self::filter_of(module);
        let mut flags = if ctx.at_dispatch { SendFlags::DISPATCH_LEVEL } else { SendFlags::default() };
        if ctx.check_for_loopback {
            flags.insert(SendFlags::CHECK_FOR_LOOPBACK);
        }
        // SAFETY: the chain is the driver's (owned NBLs, null-terminated) and is given up here; the
        // flag tells the truth about the IRQL (the engine's `ctx` contract).
        unsafe { imports::NdisFSendNetBufferLists(filter, chain.into_raw(), ctx.port, flags) };
    }

    fn complete_sends(&self, module: ModuleId, KernelChain(chain): KernelChain, ctx: PathContext) {
        if chain.is_empty() {
            return;
        }
        let filter = Self::filter_of(module);
        let flags = if ctx.at_dispatch { SendCompleteFlags::DISPATCH_LEVEL } else { SendCompleteFlags::default() };
        // SAFETY: the protocol's sends, each with its status set, given back exactly once.
        unsafe { imports::NdisFSendNetBufferListsComplete(filter, chain.into_raw(), flags) };
    }

    fn indicate_up(&self, module: ModuleId, KernelChain(chain): KernelChain, resources: bool, ctx: PathContext) -> KernelChain {
        if chain.is_empty() {
            return KernelChain::default();
        }
        let filter = Self::filter_of(module);
        let mut flags = if ctx.at_dispatch { ReceiveFlags::DISPATCH_LEVEL } else { ReceiveFlags::default() };
        if resources {
            flags.insert(ReceiveFlags::RESOURCES);
        }
        let count = u32::try_from(chain.len()).unwrap_or(u32::MAX);
        let head = chain.into_raw();
        // SAFETY: `head` is a null-terminated chain of `count` NBLs the driver holds; without the
        // resources flag they are the protocol's until returned, with it they are the driver's
        // again when the call returns (links restored by the protocol).
        unsafe { imports::NdisFIndicateReceiveNetBufferLists(filter, head, ctx.port, count, flags) };
        if resources {
            // SAFETY: with NDIS_RECEIVE_FLAGS_RESOURCES the NBLs came back with the call, in the
            // chain they went up in.
            KernelChain(unsafe { NblChain::from_raw(head) })
        } else {
            KernelChain::default()
        }
    }

    fn return_receives(&self, module: ModuleId, KernelChain(chain): KernelChain, ctx: PathContext) {
        if chain.is_empty() {
            return;
        }
        let filter = Self::filter_of(module);
        let flags = if ctx.at_dispatch { ReturnFlags::DISPATCH_LEVEL } else { ReturnFlags::default() };
        // SAFETY: the miniport's receives, in the condition they were indicated, returned once.
        unsafe { imports::NdisFReturnNetBufferLists(filter, chain.into_raw(), flags) };
    }
}

impl KernelHal {
    fn log_refusal(&self, module: ModuleId, net_buffers: usize) {
        use wanlayer_core::hal::Log;
        self.log(
            Level::Warning,
            format_args!("{module}: not copying an NBL of {net_buffers} NET_BUFFERs (only the first is visible to hooks)"),
        );
    }
}
