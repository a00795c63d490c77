//! Frame bytes of a `NET_BUFFER`: copied out of, and written back into, its MDL chain.
//!
//! A frame starts `CurrentMdlOffset` bytes into `CurrentMdl` and runs `DataLength` bytes along the
//! MDLs linked through `Next`; each MDL contributes at most its `ByteCount` bytes, from its system
//! address (`MappedSystemVa`, which already includes `ByteOffset`). Zero-length MDLs are skipped.
//!
//! # Kernel path and fallback
//!
//! For header bytes the driver asks NDIS first: `NdisGetDataBuffer` returns a pointer to contiguous
//! bytes (mapping with `MmGetSystemAddressForMdlSafe` as needed) or copies into storage. This walker
//! is the tested fallback copy routine for everything else (frames split across MDLs, copies of
//! whole frames, in-place edits). It only uses MDLs that are already mapped
//! ([`mdl_system_address`]) and reports [`FrameError::Unmapped`] otherwise, so it never needs to map
//! and runs at any IRQL up to `DISPATCH_LEVEL`.
//!
//! Every access is bounded twice: by `DataLength` and by each MDL's `ByteCount`. A chain that is
//! shorter than `DataLength`, an offset past its MDL, or a cycle is an error, never a read past
//! the memory an MDL describes.

use core::fmt;
use core::ptr;


use crate::nbl::{mdl_system_address, nb_current_mdl, nb_current_mdl_offset, nb_data_length, Mdl, NetBuffer};

/// The most MDLs one frame may span before the walk gives up (a cycle or a corrupt chain).
pub const MDL_WALK_LIMIT: usize = 1024;

/// Why the bytes of a frame could not be read or written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// The NBL has no `NET_BUFFER`.
    NoNetBuffer,
    /// `CurrentMdlOffset` lies beyond the end of `CurrentMdl`.
    MdlOffsetOutOfRange {
        /// `CurrentMdlOffset`.
        offset: u32,
        /// `ByteCount` of `CurrentMdl`.
        byte_count: u32,
    },
    /// The MDL chain ends before `DataLength` bytes.
    ChainTooShort {
        /// Frame bytes no MDL describes.
        missing: usize,
    },
    /// An MDL holding frame bytes has no system mapping (no `MDL_MAPPED_TO_SYSTEM_VA` /
    /// `MDL_SOURCE_IS_NONPAGED_POOL`, or a null `MappedSystemVa`).
    Unmapped,
    /// More than [`MDL_WALK_LIMIT`] MDLs: a cycle or a corrupt chain.
    TooManyMdls,
    /// A write outside the frame.
    OutOfRange {
        /// Where the write started.
        offset: usize,
        /// How many bytes it had.
        len: usize,
        /// `DataLength`.
        frame_len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::NoNetBuffer => f.write_str("NBL without NET_BUFFER"),
            FrameError::MdlOffsetOutOfRange { offset, byte_count } => {
                write!(f, "CurrentMdlOffset {offset} beyond MDL of {byte_count} bytes")
            }
            FrameError::ChainTooShort { missing } => write!(f, "MDL chain {missing} bytes short of DataLength"),
            FrameError::Unmapped => f.write_str("MDL without system mapping"),
            FrameError::TooManyMdls => write!(f, "more than {MDL_WALK_LIMIT} MDLs in one frame"),
            FrameError::OutOfRange { offset, len, frame_len } => {
                write!(f, "{len} bytes at {offset} outside a frame of {frame_len}")
            }
        }
    }
}

/// A walk along the frame of one NET_BUFFER, yielding runs of contiguous bytes.
struct Walk {
    mdl: *const Mdl,
    offset_in_mdl: usize,
    remaining: usize,
    visited: usize,
}

impl Walk {
    /// # Safety
    /// `nb` points to a valid NET_BUFFER whose MDL chain from `CurrentMdl` is valid (every `Next`
    /// is null or a valid MDL) for the life of the walk.
    unsafe fn new(nb: *const NetBuffer) -> Walk {
        // SAFETY: forwarded from the caller.
        let mdl = unsafe { nb_current_mdl(nb) };
        // SAFETY: forwarded from the caller.
        let offset_in_mdl = unsafe { nb_current_mdl_offset(nb) } as usize;
        // SAFETY: forwarded from the caller.
        let remaining = unsafe { nb_data_length(nb) } as usize;
        Walk { mdl, offset_in_mdl, remaining, visited: 0 }
    }

    /// The next run of frame bytes (its system address and length), `None` at the end of the frame.
    ///
    /// # Safety
    /// The promise of [`Walk::new`] still holds.
    unsafe fn next_run(&mut self) -> Result<Option<(*mut u8, usize)>, FrameError> {
        while self.remaining > 0 {
            if self.mdl.is_null() {
                return Err(FrameError::ChainTooShort { missing: self.remaining });
            }
            self.visited += 1;
            if self.visited > MDL_WALK_LIMIT {
                return Err(FrameError::TooManyMdls);
            }
            // SAFETY: `self.mdl` is non-null and, by the promise of `new`, a valid MDL.
            let byte_count = unsafe { (*self.mdl).byte_count };
            let Some(available) = (byte_count as usize).checked_sub(self.offset_in_mdl) else {
                return Err(FrameError::MdlOffsetOutOfRange { offset: self.offset_in_mdl as u32, byte_count });
            };
            let start = self.offset_in_mdl;
            let mdl = self.mdl;
            // SAFETY: as above.
            self.mdl = unsafe { (*mdl).next };
            self.offset_in_mdl = 0;
            if available == 0 {
                continue;
            }
            // SAFETY: as above.
            let base = unsafe { mdl_system_address(mdl) }.ok_or(FrameError::Unmapped)?;
            let len = available.min(self.remaining);
            self.remaining -= len;
            // `start + len <= ByteCount`: the run stays inside the buffer the MDL describes.
            return Ok(Some((base.as_ptr().wrapping_add(start), len)));
        }
        Ok(None)
    }
}

/// Calls `visit(address, position_in_range, len)` for each run of the frame bytes
/// `start..start + len`, in order. The caller has checked `start + len <= DataLength`.
///
/// # Safety
/// As for [`Walk::new`].
unsafe fn for_each_run(
    nb: *const NetBuffer,
    start: usize,
    len: usize,
    mut visit: impl FnMut(*mut u8, usize, usize),
) -> Result<(), FrameError> {
    // SAFETY: forwarded from the caller.
    let mut walk = unsafe { Walk::new(nb) };
    let end = start + len;
    let mut position = 0;
    while position < end {
        // SAFETY: forwarded from the caller.
        let Some((address, run)) = (unsafe { walk.next_run() })? else {
            break;
        };
        let run_end = position + run;
        if run_end > start {
            let from = start.max(position);
            let to = end.min(run_end);
            visit(address.wrapping_add(from - position), from - start, to - from);
        }
        position = run_end;
    }
    Ok(())
}

/// Checks that the whole frame of `nb` is described by mapped MDLs; returns `DataLength`.
///
/// # Safety
/// `nb` points to a valid `NET_BUFFER` whose MDL chain from `CurrentMdl` is valid (each `Next`
/// null or a valid MDL) for the duration of the call.
///
/// # Errors
/// The first [`FrameError`] the walk meets.
pub unsafe fn net_buffer_check(nb: *const NetBuffer) -> Result<usize, FrameError> {
    // SAFETY: forwarded from the caller.
    let frame_len = unsafe { nb_data_length(nb) } as usize;
    // SAFETY: forwarded from the caller.
    unsafe { for_each_run(nb, 0, frame_len, |_, _, _| ()) }?;
    Ok(frame_len)
}

/// Copies frame bytes from `offset` into `out`; returns how many were copied: fewer than
/// `out.len()` at the end of the frame, zero from `DataLength` on.
///
/// # Safety
/// `nb` points to a valid `NET_BUFFER` whose MDL chain from `CurrentMdl` is valid, and every mapped
/// MDL's `MappedSystemVa` is readable for `ByteCount` bytes, for the duration of the call; nothing
/// writes those bytes meanwhile.
///
/// # Errors
/// A [`FrameError`] when the MDLs do not describe the bytes asked for; `out` may then hold part of
/// them.
pub unsafe fn net_buffer_read(nb: *const NetBuffer, offset: usize, out: &mut [u8]) -> Result<usize, FrameError> {
    // SAFETY: forwarded from the caller.
    let frame_len = unsafe { nb_data_length(nb) } as usize;
    let len = out.len().min(frame_len.saturating_sub(offset));
    let out_ptr = out.as_mut_ptr();
    let copy = |source: *mut u8, at: usize, n: usize| {
        // SAFETY: `source..source + n` lies inside one mapped MDL buffer (the walk bounds it by
        // `ByteCount`), readable by the caller's promise; `at + n <= len <= out.len()`, so the
        // destination is inside `out`, which cannot overlap MDL memory the caller vouched for.
        unsafe { ptr::copy_nonoverlapping(source, out_ptr.wrapping_add(at), n) }
    };
    // SAFETY: forwarded from the caller.
    unsafe { for_each_run(nb, offset, len, copy) }?;
    Ok(len)
}

/// Overwrites frame bytes at `offset` with `data`, in place. Nothing is written unless the whole
/// range is described by mapped MDLs.
///
/// # Safety
/// As for [`net_buffer_read`], and the caller may modify these buffers in place (they belong to an
/// NBL it owns and whose data the NDIS rules let it edit); nothing else reads or writes them
/// meanwhile.
///
/// # Errors
/// [`FrameError::OutOfRange`] when `offset + data.len()` exceeds `DataLength`; any other
/// [`FrameError`] the walk meets.
pub unsafe fn net_buffer_write(nb: *mut NetBuffer, offset: usize, data: &[u8]) -> Result<(), FrameError> {
    // SAFETY: forwarded from the caller.
    let frame_len = unsafe { nb_data_length(nb) } as usize;
    if offset.checked_add(data.len()).is_none_or(|end| end > frame_len) {
        return Err(FrameError::OutOfRange { offset, len: data.len(), frame_len });
    }
    // SAFETY: forwarded from the caller; this first pass only validates.
    unsafe { for_each_run(nb, offset, data.len(), |_, _, _| ()) }?;
    let copy = |target: *mut u8, at: usize, n: usize| {
        // SAFETY: `target..target + n` lies inside one mapped MDL buffer the caller may write;
        // `at + n <= data.len()`; `data` is a shared slice the caller holds, not MDL memory being
        // written.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr().wrapping_add(at), target, n) }
    };
    // SAFETY: forwarded from the caller.
    unsafe { for_each_run(nb, offset, data.len(), copy) }
}

/// Whether `DataOffset` agrees with `CurrentMdl`/`CurrentMdlOffset`: the `ByteCount`s of the MDLs
/// before `CurrentMdl` in `MdlChain`, plus `CurrentMdlOffset`, equal `DataOffset`. NDIS keeps them
/// in step; a mismatch means someone edited a NET_BUFFER by hand.
///
/// # Safety
/// `nb` points to a valid `NET_BUFFER` whose MDL chain from `MdlChain` is valid.
///
/// # Errors
/// [`FrameError::TooManyMdls`] when `CurrentMdl` is not found within [`MDL_WALK_LIMIT`] MDLs.
pub unsafe fn net_buffer_offsets_agree(nb: *const NetBuffer) -> Result<bool, FrameError> {
    // SAFETY: forwarded from the caller.
    let current = unsafe { nb_current_mdl(nb) }.cast_const();
    // SAFETY: forwarded from the caller.
    let mut mdl = unsafe { (*nb).mdl_chain }.cast_const();
    let mut before: u64 = 0;
    for _ in 0..MDL_WALK_LIMIT {
        if mdl == current {
            // SAFETY: forwarded from the caller.
            let offset = unsafe { nb_current_mdl_offset(nb) };
            // SAFETY: forwarded from the caller.
            let data_offset = unsafe { (*nb).data_offset };
            return Ok(before + u64::from(offset) == u64::from(data_offset));
        }
        if mdl.is_null() {
            return Ok(false);
        }
        // SAFETY: `mdl` is non-null and part of the chain the caller vouched for.
        before += u64::from(unsafe { (*mdl).byte_count });
        // SAFETY: as above.
        mdl = unsafe { (*mdl).next };
    }
    Err(FrameError::TooManyMdls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nbl::testing::Frame;
    use crate::nbl::MDL_SOURCE_IS_NONPAGED_POOL;
    use std::vec;
    use std::vec::Vec;

    /// Reads the whole frame through the walker.
    fn read_all(frame: &Frame) -> Result<Vec<u8>, FrameError> {
        // SAFETY: the frame's NET_BUFFER and MDLs are alive and only this test touches them.
        let len = unsafe { nb_data_length(frame.nb) } as usize;
        let mut out = vec![0xa5; len];
        // SAFETY: as above.
        let n = unsafe { net_buffer_read(frame.nb, 0, &mut out) }?;
        out.truncate(n);
        Ok(out)
    }

    #[test]
    fn reads_a_frame_in_one_mdl() {
        let frame = Frame::whole(&[b"hello, wan"]);
        assert_eq!(read_all(&frame).unwrap(), b"hello, wan");
        // SAFETY: the frame is alive.
        assert_eq!(unsafe { net_buffer_check(frame.nb) }, Ok(10));
    }

    #[test]
    fn reads_a_frame_across_mdls_with_a_start_offset() {
        // Data starts 3 bytes into the first MDL (a header the protocol retreated past) and ends
        // 2 bytes before the end of the last.
        let frame = Frame::new(&[b"xxxABC", b"DEFG", b"HIyy"], 3, 9);
        assert_eq!(read_all(&frame).unwrap(), b"ABCDEFGHI");
        // SAFETY: the frame is alive.
        assert_eq!(unsafe { net_buffer_offsets_agree(frame.nb) }, Ok(true));
    }

    #[test]
    fn reads_at_every_offset_and_length() {
        let frame = Frame::whole(&[b"0123", b"", b"45", b"6789ab"]);
        let whole = b"0123456789ab";
        for offset in 0..=whole.len() + 2 {
            for len in 0..=whole.len() + 2 {
                let mut out = vec![0xa5; len];
                // SAFETY: the frame is alive.
                let n = unsafe { net_buffer_read(frame.nb, offset, &mut out) }.unwrap();
                let expected = &whole[offset.min(whole.len())..(offset + len).min(whole.len())];
                assert_eq!(&out[..n], expected, "offset {offset} len {len}");
                assert!(out[n..].iter().all(|&b| b == 0xa5), "bytes past the frame untouched");
            }
        }
    }

    #[test]
    fn byte_offset_is_not_added_again() {
        // MmBuildMdlForNonPagedPool-style MDL: MappedSystemVa is StartVa + ByteOffset already.
        let frame = Frame::whole(&[b"payload"]);
        let mdl = frame.mdls[0];
        // SAFETY: the frame's MDL is alive and only this test touches it.
        unsafe { (*mdl).byte_offset = 0x123 };
        // SAFETY: as above.
        unsafe { (*mdl).mdl_flags = MDL_SOURCE_IS_NONPAGED_POOL as i16 };
        assert_eq!(read_all(&frame).unwrap(), b"payload");
    }

    #[test]
    fn a_chain_shorter_than_data_length_is_an_error() {
        let frame = Frame::new(&[b"abc", b"de"], 0, 8);
        assert_eq!(read_all(&frame), Err(FrameError::ChainTooShort { missing: 3 }));
        // SAFETY: the frame is alive.
        assert_eq!(unsafe { net_buffer_check(frame.nb) }, Err(FrameError::ChainTooShort { missing: 3 }));
        let mut out = [0u8; 5];
        // The first five bytes are there: reading only them succeeds.
        // SAFETY: the frame is alive.
        assert_eq!(unsafe { net_buffer_read(frame.nb, 0, &mut out) }, Ok(5));
        assert_eq!(&out, b"abcde");
    }

    #[test]
    fn an_offset_past_the_current_mdl_is_an_error() {
        let frame = Frame::new(&[b"abc", b"defg"], 4, 3);
        assert_eq!(read_all(&frame), Err(FrameError::MdlOffsetOutOfRange { offset: 4, byte_count: 3 }));
        // An offset exactly at the end of the MDL starts the data in the next one.
        let at_end = Frame::new(&[b"abc", b"defg"], 3, 4);
        assert_eq!(read_all(&at_end).unwrap(), b"defg");
    }

    #[test]
    fn unmapped_mdls_are_reported_not_read() {
        let frame = Frame::whole(&[b"abc", b"def"]);
        let second = frame.mdls[1];
        // SAFETY: the frame's MDL is alive and only this test touches it.
        unsafe { (*second).mdl_flags = 0 };
        assert_eq!(read_all(&frame), Err(FrameError::Unmapped));
        let mut out = [0u8; 3];
        // SAFETY: the frame is alive.
        assert_eq!(unsafe { net_buffer_read(frame.nb, 0, &mut out) }, Ok(3));
    }

    #[test]
    fn a_cycle_of_empty_mdls_stops_at_the_limit() {
        let frame = Frame::new(&[b"", b""], 0, 4);
        let (first, second) = (frame.mdls[0], frame.mdls[1]);
        // SAFETY: the frame's MDLs are alive and only this test touches them.
        unsafe { (*second).next = first };
        assert_eq!(read_all(&frame), Err(FrameError::TooManyMdls));
    }

    #[test]
    fn writes_in_place_across_mdls() {
        let frame = Frame::new(&[b"..ab", b"cd", b"ef.."], 2, 6);
        // SAFETY: the frame is alive and this test owns its buffers.
        unsafe { net_buffer_write(frame.nb, 1, b"XYZW") }.unwrap();
        assert_eq!(read_all(&frame).unwrap(), b"aXYZWf");
        assert_eq!(frame.buffer(0), b"..aX");
        assert_eq!(frame.buffer(1), b"YZ");
        assert_eq!(frame.buffer(2), b"Wf..");
    }

    #[test]
    fn writes_outside_the_frame_or_into_unmapped_mdls_change_nothing() {
        let frame = Frame::whole(&[b"abc", b"def"]);
        // SAFETY: the frame is alive and this test owns its buffers.
        let past_end = unsafe { net_buffer_write(frame.nb, 4, b"xyz") };
        assert_eq!(past_end, Err(FrameError::OutOfRange { offset: 4, len: 3, frame_len: 6 }));
        // SAFETY: as above.
        let overflow = unsafe { net_buffer_write(frame.nb, usize::MAX, b"x") };
        assert!(matches!(overflow, Err(FrameError::OutOfRange { .. })));
        let second = frame.mdls[1];
        // SAFETY: the frame's MDL is alive and only this test touches it.
        unsafe { (*second).mdl_flags = 0 };
        // SAFETY: as above.
        assert_eq!(unsafe { net_buffer_write(frame.nb, 1, b"XYZ") }, Err(FrameError::Unmapped));
        assert_eq!(frame.buffer(0), b"abc", "validated before the first byte is written");
        // SAFETY: as above.
        assert_eq!(unsafe { net_buffer_write(frame.nb, 0, b"AB") }, Ok(()));
        assert_eq!(frame.buffer(0), b"ABc");
    }

    #[test]
    fn data_offset_disagreement_is_detected() {
        let frame = Frame::new(&[b"abcd", b"efgh"], 1, 5);
        // SAFETY: the frame's NET_BUFFER is alive and only this test touches it.
        unsafe { (*frame.nb).current_mdl = frame.mdls[1] };
        // SAFETY: as above.
        assert_eq!(unsafe { net_buffer_offsets_agree(frame.nb) }, Ok(false));
        // SAFETY: as above.
        unsafe { (*frame.nb).data_offset = 5 };
        // SAFETY: as above.
        assert_eq!(unsafe { net_buffer_offsets_agree(frame.nb) }, Ok(true));
        // The walker follows CurrentMdl: from "f", the chain ends two bytes short of DataLength.
        assert_eq!(read_all(&frame), Err(FrameError::ChainTooShort { missing: 2 }));
    }

    #[test]
    fn a_truncated_data_length_limits_every_read() {
        let frame = Frame::whole(&[b"abcdef"]);
        // SAFETY: the frame's NET_BUFFER is alive and only this test touches it.
        let data_length = unsafe { &mut (*frame.nb).data_length };
        data_length.data_length = 2;
        assert_eq!(read_all(&frame).unwrap(), b"ab");
        assert_eq!(
            std::format!("{}", FrameError::ChainTooShort { missing: 3 }),
            "MDL chain 3 bytes short of DataLength"
        );
    }
}
