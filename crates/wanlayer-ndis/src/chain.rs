//! Owned NBLs and chains of them: the driver's packets and packet chains (the driver makes them
//! the engine's `PacketIo::Packet` and `PacketChain`).
//!
//! # Ownership
//!
//! An [`Nbl`] is the right and the duty to hand one `NET_BUFFER_LIST` back to NDIS exactly once
//! (send it down, complete it, indicate it up, return it, or free it). It is neither `Clone` nor
//! `Copy`; it is `#[must_use]`, so dropping one on the floor is a warning — and dropping it is a
//! leak: NDIS waits for that NBL forever (a pause that never completes). The same holds for a
//! non-empty [`NblChain`].

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use crate::frame::{net_buffer_check, net_buffer_read, net_buffer_write, FrameError};
use crate::nbl::{
    nb_data_length, nb_next_nb, nbl_cancel_id, nbl_first_nb, nbl_next_nbl, nbl_status, set_nbl_status, NetBufferList,
};
use crate::types::RawNdisStatus;

/// One owned `NET_BUFFER_LIST`.
#[must_use = "an NBL must be handed back to NDIS exactly once; dropping it leaks it"]
#[derive(Debug, PartialEq, Eq)]
pub struct Nbl(NonNull<NetBufferList>);

// SAFETY: an `Nbl` is the exclusive ownership of its NBL (like a `Box`), and NDIS lets an NBL be
// completed, returned or sent from any processor; moving the owner between threads moves no shared
// state.
unsafe impl Send for Nbl {}

impl Nbl {
    /// Takes ownership of an NBL NDIS handed over (a send, a receive without
    /// `NDIS_RECEIVE_FLAGS_RESOURCES`, a completion or return of one the filter originated).
    ///
    /// # Safety
    /// Until the `Nbl` is turned back into a pointer ([`Nbl::into_raw`]):
    /// * `nbl` points to a valid `NET_BUFFER_LIST` (from an NBL pool, or test memory laid out as
    ///   one with `NetBufferListInfo` entries up to `FrameType`);
    /// * the caller owns it exclusively: nothing else reads or writes it, its NET_BUFFERs, or the
    ///   buffers of its MDLs;
    /// * its NET_BUFFER chain is null-terminated and each NET_BUFFER's MDL chain from `CurrentMdl`
    ///   consists of valid MDLs linked by `Next`; a mapped MDL's `MappedSystemVa` is readable for
    ///   `ByteCount` bytes.
    pub unsafe fn from_raw(nbl: NonNull<NetBufferList>) -> Nbl {
        Nbl(nbl)
    }

    /// Gives up ownership: the caller now owes NDIS this NBL.
    pub fn into_raw(self) -> NonNull<NetBufferList> {
        self.0
    }

    /// The NBL's address (for logs and for NDIS calls that borrow it).
    pub fn as_ptr(&self) -> *mut NetBufferList {
        self.0.as_ptr()
    }

    /// `NET_BUFFER_LIST_STATUS`.
    pub fn status(&self) -> RawNdisStatus {
        // SAFETY: valid by the promise of `from_raw`.
        unsafe { nbl_status(self.as_ptr()) }
    }

    /// Sets `NET_BUFFER_LIST_STATUS`, as a completion carries it.
    pub fn set_status(&mut self, status: RawNdisStatus) {
        // SAFETY: valid and exclusively owned by the promise of `from_raw`.
        unsafe { set_nbl_status(self.as_ptr(), status) }
    }

    /// `NDIS_GET_NET_BUFFER_LIST_CANCEL_ID` (null when the sender set none).
    pub fn cancel_id(&self) -> *mut c_void {
        // SAFETY: valid by the promise of `from_raw`.
        unsafe { nbl_cancel_id(self.as_ptr()) }
    }

    /// How many NET_BUFFERs (frames) the NBL carries. The engine sees the first one only; the
    /// driver passes NBLs with more untouched or splits them.
    pub fn net_buffer_count(&self) -> usize {
        // SAFETY: valid by the promise of `from_raw`.
        let mut nb = unsafe { nbl_first_nb(self.as_ptr()) };
        let mut count = 0;
        while !nb.is_null() {
            count += 1;
            // SAFETY: `nb` is a non-null member of the NET_BUFFER chain `from_raw` vouched for.
            nb = unsafe { nb_next_nb(nb) };
        }
        count
    }

    /// `DataLength` of the first NET_BUFFER; zero without one.
    pub fn frame_len(&self) -> usize {
        // SAFETY: valid by the promise of `from_raw`.
        let nb = unsafe { nbl_first_nb(self.as_ptr()) };
        if nb.is_null() {
            return 0;
        }
        // SAFETY: `nb` is non-null and valid by the promise of `from_raw`.
        unsafe { nb_data_length(nb) as usize }
    }

    /// Checks that the first NET_BUFFER's frame is entirely described by mapped MDLs; returns its
    /// length.
    ///
    /// # Errors
    /// [`FrameError::NoNetBuffer`], or what the MDL walk meets.
    pub fn check_frame(&self) -> Result<usize, FrameError> {
        let nb = self.first_nb()?;
        // SAFETY: valid by the promise of `from_raw`.
        unsafe { net_buffer_check(nb) }
    }

    /// Copies frame bytes of the first NET_BUFFER from `offset` into `out`; returns how many (fewer
    /// at the end of the frame).
    ///
    /// # Errors
    /// [`FrameError::NoNetBuffer`], or what the MDL walk meets.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<usize, FrameError> {
        let nb = self.first_nb()?;
        // SAFETY: valid, exclusively owned and readable by the promise of `from_raw`.
        unsafe { net_buffer_read(nb, offset, out) }
    }

    /// Overwrites frame bytes of the first NET_BUFFER at `offset`, in place; all or nothing.
    ///
    /// # Safety
    /// The NBL's data may be modified in place: its mapped buffers are writable memory and the
    /// NDIS rules for this path let the filter edit them (e.g. a send it will pass down).
    ///
    /// # Errors
    /// [`FrameError::OutOfRange`] beyond the frame, [`FrameError::NoNetBuffer`], or what the MDL walk
    /// meets.
    pub unsafe fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), FrameError> {
        let nb = self.first_nb()?;
        // SAFETY: valid and exclusively owned by the promise of `from_raw`; writable by the caller's.
        unsafe { net_buffer_write(nb, offset, data) }
    }

    fn first_nb(&self) -> Result<*mut crate::nbl::NetBuffer, FrameError> {
        // SAFETY: valid by the promise of `from_raw`.
        let nb = unsafe { nbl_first_nb(self.as_ptr()) };
        if nb.is_null() {
            Err(FrameError::NoNetBuffer)
        } else {
            Ok(nb)
        }
    }
}

/// An owned chain of NBLs linked through `NET_BUFFER_LIST.Next`, with O(1) append and length.
///
/// The chain keeps the links of its NBLs right at all times: [`NblChain::into_raw`] hands NDIS a
/// null-terminated chain without a further walk.
#[must_use = "a chain of NBLs must be handed back to NDIS; dropping a non-empty one leaks them"]
#[derive(Debug, Default)]
pub struct NblChain {
    head: Option<Nbl>,
    tail: Option<NonNull<NetBufferList>>,
    len: usize,
}

// SAFETY: the chain exclusively owns every NBL in it (`tail` only aliases the last of them), so it
// is `Send` for the same reason `Nbl` is.
unsafe impl Send for NblChain {}

impl NblChain {
    /// An empty chain.
    pub const fn new() -> Self {
        Self { head: None, tail: None, len: 0 }
    }

    /// Takes ownership of the chain starting at `head` (null for an empty chain), counting it.
    ///
    /// # Safety
    /// `head` is null or the first of a null-terminated chain of NBLs, each of which satisfies the
    /// promise of [`Nbl::from_raw`].
    pub unsafe fn from_raw(head: *mut NetBufferList) -> Self {
        let mut chain = Self::new();
        let mut next = head;
        while let Some(nbl) = NonNull::new(next) {
            // SAFETY: `nbl` is a member of the chain the caller vouched for.
            next = unsafe { nbl_next_nbl(nbl.as_ptr()) };
            // SAFETY: as above: each member satisfies the promise of `Nbl::from_raw`.
            chain.push_back(unsafe { Nbl::from_raw(nbl) });
        }
        chain
    }

    /// Gives up ownership of the whole chain: its first NBL (null when empty), linked through
    /// `Next` and null-terminated.
    pub fn into_raw(self) -> *mut NetBufferList {
        self.head.map_or(ptr::null_mut(), |head| head.into_raw().as_ptr())
    }

    /// Number of NBLs (`NumberOfNetBufferLists` for an indication).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the chain holds no NBL.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first NBL, without taking it.
    pub fn front(&self) -> Option<&Nbl> {
        self.head.as_ref()
    }

    /// Appends an NBL, making it the end of the chain.
    pub fn push_back(&mut self, nbl: Nbl) {
        let raw = nbl.into_raw();
        // SAFETY: `raw` is valid and now owned by the chain (promise of `Nbl::from_raw`).
        unsafe { (*raw.as_ptr()).next = ptr::null_mut() };
        match self.tail {
            // SAFETY: `tail` is the last NBL of this chain, valid and owned by it.
            Some(tail) => unsafe { (*tail.as_ptr()).next = raw.as_ptr() },
            None => self.head = Some(Nbl(raw)),
        }
        self.tail = Some(raw);
        self.len += 1;
    }

    /// Removes the first NBL, unlinked from the rest.
    pub fn pop_front(&mut self) -> Option<Nbl> {
        let head = self.head.take()?.into_raw();
        // SAFETY: `head` is valid and owned by the chain.
        let next = unsafe { nbl_next_nbl(head.as_ptr()) };
        // SAFETY: as above.
        unsafe { (*head.as_ptr()).next = ptr::null_mut() };
        self.head = NonNull::new(next).map(Nbl);
        if self.head.is_none() {
            self.tail = None;
        }
        self.len -= 1;
        Some(Nbl(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nbl::testing::{free, leak, zeroed, Frame};
    use crate::nbl::{set_nbl_info, NblInfo};
    use std::vec::Vec;

    /// `n` leaked, zeroed NBLs, linked in order.
    fn raw_chain(n: usize) -> Vec<*mut NetBufferList> {
        let nbls: Vec<*mut NetBufferList> = (0..n).map(|_| leak(zeroed::<NetBufferList>())).collect();
        for pair in nbls.windows(2) {
            // SAFETY: both NBLs were just leaked and only this test uses them.
            unsafe { (*pair[0]).next = pair[1] };
        }
        nbls
    }

    fn take(nbl: *mut NetBufferList) -> Nbl {
        // SAFETY: test NBLs are valid, zeroed (no NET_BUFFERs) and owned by the test.
        unsafe { Nbl::from_raw(NonNull::new(nbl).unwrap()) }
    }

    fn free_all(nbls: Vec<*mut NetBufferList>) {
        for nbl in nbls {
            // SAFETY: each came from `leak` and the test no longer uses it.
            unsafe { free(nbl) };
        }
    }

    fn next_of(nbl: *mut NetBufferList) -> *mut NetBufferList {
        // SAFETY: test NBLs stay alive until `free_all`.
        unsafe { nbl_next_nbl(nbl) }
    }

    #[test]
    fn push_and_pop_keep_order_and_links() {
        let nbls = raw_chain(3);
        let mut chain = NblChain::new();
        for &nbl in nbls.iter().rev() {
            chain.push_back(take(nbl));
        }
        assert_eq!(chain.len(), 3);
        assert_eq!(next_of(nbls[2]), nbls[1], "push_back relinks");
        assert!(next_of(nbls[0]).is_null(), "the tail is null-terminated");
        assert_eq!(chain.front().map(Nbl::as_ptr), Some(nbls[2]));
        let first = chain.pop_front().unwrap();
        assert_eq!(first.as_ptr(), nbls[2]);
        assert!(next_of(nbls[2]).is_null(), "a popped NBL is unlinked");
        let rest = chain.into_raw();
        assert_eq!(rest, nbls[1]);
        assert_eq!(next_of(rest), nbls[0]);
        let _ = first.into_raw();
        free_all(nbls);
    }

    #[test]
    fn from_raw_counts_and_into_raw_round_trips() {
        let nbls = raw_chain(5);
        // SAFETY: a null-terminated chain of valid test NBLs the test owns.
        let mut chain = unsafe { NblChain::from_raw(nbls[0]) };
        assert_eq!(chain.len(), 5);
        let extra = raw_chain(1);
        chain.push_back(take(extra[0]));
        assert_eq!(next_of(nbls[4]), extra[0], "append after from_raw links to the old tail");
        assert_eq!(chain.len(), 6);
        let head = chain.into_raw();
        assert_eq!(head, nbls[0]);
        // SAFETY: as above.
        let again = unsafe { NblChain::from_raw(head) };
        assert_eq!(again.len(), 6);
        let _ = again.into_raw();
        free_all(nbls);
        free_all(extra);
    }

    #[test]
    fn an_empty_chain_is_null() {
        // SAFETY: null is the empty chain.
        let chain = unsafe { NblChain::from_raw(ptr::null_mut()) };
        assert!(chain.is_empty() && chain.front().is_none());
        assert!(chain.into_raw().is_null());
        let mut chain = NblChain::default();
        assert!(chain.pop_front().is_none());
        let nbls = raw_chain(1);
        chain.push_back(take(nbls[0]));
        let only = chain.pop_front().unwrap();
        assert!(chain.is_empty());
        assert!(chain.into_raw().is_null(), "popping the last NBL clears the tail too");
        let _ = only.into_raw();
        free_all(nbls);
    }

    #[test]
    fn a_chain_drains_in_order_and_is_send() {
        let nbls = raw_chain(4);
        let mut chain = NblChain::default();
        for &nbl in &nbls {
            chain.push_back(take(nbl));
        }
        assert!(!chain.is_empty());
        let mut drained = Vec::new();
        while let Some(nbl) = chain.pop_front() {
            drained.push(nbl.into_raw().as_ptr());
        }
        assert_eq!(drained, nbls);
        assert!(chain.is_empty());
        free_all(nbls);
        fn assert_send<T: Send>() {}
        assert_send::<Nbl>();
        assert_send::<NblChain>();
    }

    #[test]
    fn an_nbl_reads_writes_and_reports_its_frame() {
        let frame = Frame::new(&[b"__abc", b"def"], 2, 6);
        let mut nbl = take(frame.nbl);
        assert_eq!(nbl.frame_len(), 6);
        assert_eq!(nbl.check_frame(), Ok(6));
        assert_eq!(nbl.net_buffer_count(), 1);
        let mut out = [0u8; 8];
        assert_eq!(nbl.read(1, &mut out), Ok(5));
        assert_eq!(&out[..5], b"bcdef");
        // SAFETY: the test owns the frame's buffers, which are ordinary writable memory.
        unsafe { nbl.write(2, b"CD") }.unwrap();
        assert_eq!(frame.buffer(0), b"__abC");
        assert_eq!(frame.buffer(1), b"Def");
        nbl.set_status(0xC000_009A);
        assert_eq!(nbl.status(), 0xC000_009A);
        assert!(nbl.cancel_id().is_null());
        let id = ptr::without_provenance_mut::<c_void>(7);
        // SAFETY: the frame's NBL is alive and owned by the test.
        unsafe { set_nbl_info(frame.nbl, NblInfo::CancelId, id) };
        assert_eq!(nbl.cancel_id(), id);
        let _ = nbl.into_raw();
    }

    #[test]
    fn an_nbl_without_net_buffer_has_no_frame() {
        let nbls = raw_chain(1);
        let mut nbl = take(nbls[0]);
        assert_eq!(nbl.frame_len(), 0);
        assert_eq!(nbl.net_buffer_count(), 0);
        assert_eq!(nbl.check_frame(), Err(FrameError::NoNetBuffer));
        assert_eq!(nbl.read(0, &mut [0u8; 4]), Err(FrameError::NoNetBuffer));
        // SAFETY: nothing is written: there is no NET_BUFFER.
        assert_eq!(unsafe { nbl.write(0, b"x") }, Err(FrameError::NoNetBuffer));
        let _ = nbl.into_raw();
        free_all(nbls);
    }
}
