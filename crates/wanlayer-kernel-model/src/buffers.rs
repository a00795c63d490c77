//! NBLs and MDLs the driver allocates itself (frames a hook copies or replaces): NBLs with one
//! NET_BUFFER from the driver's NBL pools, MDLs over its non-paged pool, and `NdisGetDataBuffer`.
//!
//! Checked as Driver Verifier checks them: an NBL comes from a live pool and is freed once, never
//! while a pool it came from is freed; an MDL is freed once and only when no live NBL describes
//! its buffer with it; nothing is left at [`finish`](crate::finish). `MmBuildMdlForNonPagedPool`
//! is what makes an MDL's buffer reachable at its system address.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};

use wanlayer_ndis::kernel::Irp;
use wanlayer_ndis::nbl::{Mdl, NetBuffer, NetBufferList, MDL_SOURCE_IS_NONPAGED_POOL};
use wanlayer_ndis::types::NblPoolHandle;

use crate::state;

/// An NBL and its one NET_BUFFER, allocated together as `NdisAllocateNetBufferAndNetBufferList`
/// allocates them.
#[repr(C)]
struct NblBlock {
    nbl: NetBufferList,
    net_buffer: NetBuffer,
}

/// The NBLs and MDLs the driver holds, by address.
struct Buffers {
    /// NBL address -> the pool it came from.
    nbls: BTreeMap<usize, usize>,
    /// MDL addresses.
    mdls: BTreeMap<usize, ()>,
    /// Every NBL the driver freed, in order (taken by [`take_freed_nbls`]).
    freed: Vec<usize>,
    /// Every NBL the driver allocated, in order (taken by [`take_allocated_nbls`]).
    allocated: Vec<usize>,
}

static BUFFERS: Mutex<Buffers> =
    Mutex::new(Buffers { nbls: BTreeMap::new(), mdls: BTreeMap::new(), freed: Vec::new(), allocated: Vec::new() });

fn buffers() -> MutexGuard<'static, Buffers> {
    BUFFERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Frees what a run left and forgets it (at [`begin`](crate::begin) and when a run ends); the
/// leftovers were reported by [`finish`](crate::finish).
pub(crate) fn reset() {
    let mut buffers = buffers();
    for (nbl, _) in std::mem::take(&mut buffers.nbls) {
        // SAFETY: a block leaked by `NdisAllocateNetBufferAndNetBufferList`, never freed (still in
        // the map), freed once here (taken).
        drop(unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut::<NblBlock>(nbl)) });
    }
    for (mdl, _) in std::mem::take(&mut buffers.mdls) {
        // SAFETY: as above, for an MDL leaked by `IoAllocateMdl`.
        drop(unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut::<Mdl>(mdl)) });
    }
    buffers.freed.clear();
    buffers.allocated.clear();
}

/// What [`finish`](crate::finish) reports: NBLs and MDLs allocated and never freed.
pub(crate) fn leftovers() -> Vec<String> {
    let buffers = buffers();
    let mut found = Vec::new();
    if !buffers.nbls.is_empty() {
        found.push(format!("{} NBLs the driver allocated not freed", buffers.nbls.len()));
    }
    if !buffers.mdls.is_empty() {
        found.push(format!("{} MDLs the driver allocated not freed", buffers.mdls.len()));
    }
    found
}

/// NBLs from `pool` still allocated (what `NdisFreeNetBufferListPool` must not find).
pub(crate) fn allocated_from(pool: usize) -> usize {
    buffers().nbls.values().filter(|&&from| from == pool).count()
}

/// Whether `nbl` is one the driver allocated and has not freed.
pub fn is_driver_nbl(nbl: usize) -> bool {
    buffers().nbls.contains_key(&nbl)
}

/// The NBLs the driver freed since the last call, in order.
pub fn take_freed_nbls() -> Vec<usize> {
    std::mem::take(&mut buffers().freed)
}

/// The NBLs the driver allocated since the last call, in order (with their frames filled in:
/// the driver fills a frame before it describes it with an NBL).
pub fn take_allocated_nbls() -> Vec<usize> {
    std::mem::take(&mut buffers().allocated)
}

/// NBLs and MDLs the driver holds now.
pub fn driver_buffers() -> (usize, usize) {
    let buffers = buffers();
    (buffers.nbls.len(), buffers.mdls.len())
}

fn violation(rule: String) {
    state().violation(rule);
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisAllocateNetBufferAndNetBufferList(
    pool: NblPoolHandle,
    context_size: u16,
    _context_backfill: u16,
    mdl: *mut Mdl,
    offset: u32,
    length: usize,
) -> *mut NetBufferList {
    let _kernel = crate::invoke::kernel_code();
    let pool = pool.as_raw().addr();
    let live_pool = state().nbl_pools.contains_key(&pool);
    if !live_pool {
        violation("NdisAllocateNetBufferAndNetBufferList from a pool never allocated or already freed".into());
        return std::ptr::null_mut();
    }
    if context_size != 0 {
        // The driver's pools carry no context area; the model allocates none.
        violation(format!("NdisAllocateNetBufferAndNetBufferList with a context of {context_size} bytes from a pool without one"));
        return std::ptr::null_mut();
    }
    let Ok(data_length) = u32::try_from(length) else {
        violation(format!("NdisAllocateNetBufferAndNetBufferList of {length} bytes: more than a NET_BUFFER describes"));
        return std::ptr::null_mut();
    };
    if !mdl.is_null() {
        // SAFETY: the driver passes a valid MDL (checked below to be one the model allocated).
        let described = unsafe { (*mdl).byte_count };
        let known = buffers().mdls.contains_key(&mdl.addr());
        if !known || u64::from(offset) + length as u64 > u64::from(described) {
            violation(format!("NdisAllocateNetBufferAndNetBufferList: offset {offset} + {length} bytes over an MDL of {described} bytes"));
        }
    }
    if crate::low_resources::fail_allocation(crate::low_resources::AllocationKind::Nbl) {
        return std::ptr::null_mut();
    }
    // SAFETY: an NBL and a NET_BUFFER are plain C structures; all zeroes is their freshly
    // allocated state.
    let mut block = Box::new(unsafe { std::mem::zeroed::<NblBlock>() });
    block.nbl.ndis_pool_handle = NblPoolHandle::from_raw(std::ptr::with_exposed_provenance_mut(pool));
    block.net_buffer.mdl_chain = mdl;
    block.net_buffer.current_mdl = mdl;
    block.net_buffer.current_mdl_offset = offset;
    block.net_buffer.data_offset = offset;
    block.net_buffer.data_length.data_length = data_length;
    let block = Box::into_raw(block);
    // SAFETY: `block` was just leaked; the NET_BUFFER is inside it.
    let net_buffer = unsafe { &raw mut (*block).net_buffer };
    // SAFETY: as above.
    unsafe { (*block).nbl.first_net_buffer = net_buffer };
    {
        let mut buffers = buffers();
        buffers.nbls.insert(block.expose_provenance(), pool);
        buffers.allocated.push(block.addr());
    }
    crate::upcalls::passed_on();
    block.cast()
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFreeNetBufferList(nbl: *mut NetBufferList) {
    let _kernel = crate::invoke::kernel_code();
    let known = {
        let mut buffers = buffers();
        let known = buffers.nbls.remove(&nbl.addr()).is_some();
        if known {
            buffers.freed.push(nbl.addr());
        }
        known
    };
    if !known {
        violation(format!("NdisFreeNetBufferList of {nbl:p}: not an NBL the driver allocated, or freed twice"));
        return;
    }
    // SAFETY: allocated by `NdisAllocateNetBufferAndNetBufferList` as an `NblBlock` (the NBL is
    // its first field), freed once (removed from the map above).
    drop(unsafe { Box::from_raw(nbl.cast::<NblBlock>()) });
    crate::upcalls::passed_on();
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IoAllocateMdl(va: *mut c_void, length: u32, secondary: u8, _charge: u8, irp: *mut Irp) -> *mut Mdl {
    let _kernel = crate::invoke::kernel_code();
    if secondary != 0 || !irp.is_null() {
        violation("IoAllocateMdl for an IRP: the driver's MDLs describe its own pool".into());
    }
    if va.is_null() || length == 0 {
        violation(format!("IoAllocateMdl of {length} bytes at {va:p}"));
        return std::ptr::null_mut();
    }
    if crate::low_resources::fail_allocation(crate::low_resources::AllocationKind::Mdl) {
        return std::ptr::null_mut();
    }
    // SAFETY: an MDL is a plain C structure; all zeroes is a fresh one.
    let mut mdl = Box::new(unsafe { std::mem::zeroed::<Mdl>() });
    let byte_offset = va.addr() & 0xFFF;
    mdl.start_va = va.wrapping_byte_sub(byte_offset);
    mdl.byte_offset = u32::try_from(byte_offset).unwrap_or(0);
    mdl.byte_count = length;
    mdl.size = i16::try_from(size_of::<Mdl>()).unwrap_or(i16::MAX);
    let mdl = Box::into_raw(mdl);
    buffers().mdls.insert(mdl.expose_provenance(), ());
    mdl
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IoFreeMdl(mdl: *mut Mdl) {
    let _kernel = crate::invoke::kernel_code();
    let in_use = {
        let buffers = buffers();
        buffers.nbls.keys().any(|&nbl| {
            // SAFETY: a live block of the model's.
            let first = unsafe { (*std::ptr::with_exposed_provenance::<NblBlock>(nbl)).net_buffer.mdl_chain };
            first == mdl
        })
    };
    if in_use {
        violation(format!("IoFreeMdl of {mdl:p}, which a live NBL still describes its buffer with"));
    }
    if buffers().mdls.remove(&mdl.addr()).is_none() {
        violation(format!("IoFreeMdl of {mdl:p}: not an MDL of IoAllocateMdl, or freed twice"));
        return;
    }
    // SAFETY: allocated by `IoAllocateMdl`, freed once (removed above).
    drop(unsafe { Box::from_raw(mdl) });
}

#[unsafe(no_mangle)]
unsafe extern "system" fn MmBuildMdlForNonPagedPool(mdl: *mut Mdl) {
    let _kernel = crate::invoke::kernel_code();
    if !buffers().mdls.contains_key(&mdl.addr()) {
        violation(format!("MmBuildMdlForNonPagedPool of {mdl:p}: not an MDL of IoAllocateMdl"));
        return;
    }
    // SAFETY: a live MDL of the model's, which the driver holds.
    let mdl = unsafe { &mut *mdl };
    mdl.mapped_system_va = mdl.start_va.wrapping_byte_add(mdl.byte_offset as usize);
    mdl.mdl_flags |= MDL_SOURCE_IS_NONPAGED_POOL as i16;
}

/// `NdisGetDataBuffer`: `bytes` contiguous bytes from the NET_BUFFER's data start — in place when
/// the current MDL holds them all, else copied into `storage` (null without storage).
#[unsafe(no_mangle)]
unsafe extern "system" fn NdisGetDataBuffer(nb: *mut NetBuffer, bytes: u32, storage: *mut c_void, align: u32, _offset: u32) -> *mut c_void {
    let _kernel = crate::invoke::kernel_code();
    if align == 0 || !align.is_power_of_two() {
        violation(format!("NdisGetDataBuffer with AlignMultiple {align}"));
        return std::ptr::null_mut();
    }
    // SAFETY: the driver passes a valid NET_BUFFER it holds.
    let nb = unsafe { &*nb };
    // SAFETY: `DataLength` is the union's member NDIS keeps for a NET_BUFFER (plain bytes).
    if bytes > unsafe { nb.data_length.data_length } {
        return std::ptr::null_mut();
    }
    let mut mdl = nb.current_mdl;
    let mut skip = nb.current_mdl_offset as usize;
    let mut wanted = bytes as usize;
    let mut copied = 0usize;
    let mut in_place = true;
    while wanted > 0 {
        if mdl.is_null() {
            violation(format!("NdisGetDataBuffer: the MDL chain ends before DataLength ({bytes} bytes wanted)"));
            return std::ptr::null_mut();
        }
        // SAFETY: a member of the NET_BUFFER's valid MDL chain.
        let current = unsafe { &*mdl };
        // SAFETY: as above.
        let Some(data) = (unsafe { wanlayer_ndis::nbl::mdl_system_address(mdl) }) else {
            return std::ptr::null_mut();
        };
        let available = (current.byte_count as usize).saturating_sub(skip);
        let take = available.min(wanted);
        if in_place && take == wanted {
            return data.as_ptr().wrapping_add(skip).cast();
        }
        in_place = false;
        if storage.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: `take` bytes from `skip` lie in the MDL's buffer; `storage` has room for
        // `bytes` (the caller's promise) and `copied + take <= bytes`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr().wrapping_add(skip), storage.cast::<u8>().wrapping_add(copied), take) };
        copied += take;
        wanted -= take;
        skip = 0;
        mdl = current.next;
    }
    storage
}

#[cfg(test)]
mod tests {
    use wanlayer_ndis::nbl::NetBufferListPoolParameters;
    use wanlayer_ndis::types::NdisHandle;

    use super::*;
    use crate::{begin, finish, violations, NdisAllocateNetBufferListPool, NdisFreeNetBufferListPool};

    const TAG: u32 = u32::from_le_bytes(*b"Test");

    fn pool() -> NblPoolHandle {
        let mut parameters = NetBufferListPoolParameters::with_net_buffer(TAG, 0);
        // SAFETY: the model's function called as the driver calls it.
        unsafe { NdisAllocateNetBufferListPool(NdisHandle::NULL, &mut parameters) }
    }

    /// An MDL over `bytes`, built for non-paged pool.
    fn mdl(bytes: &mut [u8]) -> *mut Mdl {
        let length = u32::try_from(bytes.len()).expect("short");
        // SAFETY: (both calls) the model's functions called as the driver calls them, over a
        // buffer that outlives the MDL.
        let mdl = unsafe { IoAllocateMdl(bytes.as_mut_ptr().cast(), length, 0, 0, std::ptr::null_mut()) };
        // SAFETY: as above.
        unsafe { MmBuildMdlForNonPagedPool(mdl) };
        mdl
    }

    #[test]
    fn an_own_nbl_describes_its_mdl_from_a_live_pool_and_is_freed_once() {
        let _run = begin();
        let pool = pool();
        let mut frame: Vec<u8> = (0..40).collect();
        let mdl = mdl(&mut frame);
        // SAFETY: (each call below) the model's functions called as the driver calls them.
        let nbl = unsafe { NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, mdl, 0, 40) };
        assert!(!nbl.is_null() && is_driver_nbl(nbl.addr()));
        assert_eq!(take_allocated_nbls(), [nbl.addr()]);
        // SAFETY: the NBL just allocated.
        let nb = unsafe { (*nbl).first_net_buffer };
        // SAFETY: as above: 14 bytes in the one MDL, in place.
        let data = unsafe { NdisGetDataBuffer(nb, 14, std::ptr::null_mut(), 1, 0) };
        assert_eq!(data.cast::<u8>(), frame.as_mut_ptr());
        // SAFETY: as above: more than DataLength.
        assert!(unsafe { NdisGetDataBuffer(nb, 41, std::ptr::null_mut(), 1, 0) }.is_null());
        // SAFETY: as above: the pool still has the NBL out.
        unsafe { IoFreeMdl(mdl) };
        assert!(violations().iter().any(|rule| rule.contains("a live NBL still describes")), "{:?}", violations());
        let mdl = self::mdl(&mut frame);
        let nbl = {
            // SAFETY: the first NBL, freed once.
            unsafe { NdisFreeNetBufferList(nbl) };
            // SAFETY: as above.
            unsafe { NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, mdl, 0, 40) }
        };
        // SAFETY: freed once, then a second time: the mistake the model reports.
        unsafe { NdisFreeNetBufferList(nbl) };
        assert_eq!(take_freed_nbls().len(), 2);
        // SAFETY: as above.
        unsafe { NdisFreeNetBufferList(nbl) };
        assert!(violations().iter().any(|rule| rule.contains("freed twice")), "{:?}", violations());
        // SAFETY: as above.
        unsafe { IoFreeMdl(mdl) };
        // SAFETY: as above: an empty pool.
        unsafe { NdisFreeNetBufferListPool(pool) };
        assert_eq!(driver_buffers(), (0, 0));
        assert_eq!(finish().len(), 2, "only the two mistakes: {:?}", finish());
    }

    #[test]
    fn data_spanning_two_mdls_is_copied_into_storage_and_leftovers_are_reported() {
        let _run = begin();
        let pool = pool();
        let (mut first, mut second): (Vec<u8>, Vec<u8>) = ((0..8).collect(), (8..16).collect());
        let (head, tail) = (mdl(&mut first), mdl(&mut second));
        // SAFETY: the head MDL, held here; the chain goes on with the tail.
        unsafe { (*head).next = tail };
        // SAFETY: (each call below) the model's functions called as the driver calls them.
        let nbl = unsafe { NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, head, 2, 6) };
        // SAFETY: the NBL just allocated; its NET_BUFFER's DataLength covers both MDLs.
        let nb = unsafe { (*nbl).first_net_buffer };
        // SAFETY: as above.
        let length = unsafe { &mut (*nb).data_length };
        length.data_length = 12;
        let mut storage = [0u8; 12];
        // SAFETY: as above: 12 bytes from offset 2, over both MDLs, with room in `storage`.
        let data = unsafe { NdisGetDataBuffer(nb, 12, storage.as_mut_ptr().cast(), 1, 0) };
        assert_eq!(data.cast::<u8>(), storage.as_mut_ptr());
        assert_eq!(storage, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
        // SAFETY: as above: without storage a split range cannot be given.
        assert!(unsafe { NdisGetDataBuffer(nb, 12, std::ptr::null_mut(), 1, 0) }.is_null());
        // SAFETY: as above: the pool with its NBL still out.
        unsafe { NdisFreeNetBufferListPool(pool) };
        let found = finish();
        assert!(found.iter().any(|rule| rule.contains("1 of its NBLs not freed")), "{found:?}");
        assert!(found.iter().any(|rule| rule.contains("1 NBLs the driver allocated not freed")), "{found:?}");
        assert!(found.iter().any(|rule| rule.contains("2 MDLs the driver allocated not freed")), "{found:?}");
    }
}
