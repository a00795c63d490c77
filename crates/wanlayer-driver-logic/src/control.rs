//! The control device's decisions: which creates open a handle and with what access, the handle
//! tokens the waker names, and how a dispatched device control is settled.

use wanlayer_core::Completion;
use wanlayer_ndis::io::{METHOD_BUFFERED, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND};
use wanlayer_ndis::kernel::{AccessMask, NtStatus, FILE_READ_DATA, FILE_WRITE_DATA};
use wanlayer_proto::{Access, Status};

/// Handles of the control device that can be open at once (tools and vendor drivers together):
/// the slots of the token table.
pub const MAX_HANDLES: usize = 64;

/// The engine's access for a create that asked for `desired_access`: `FILE_READ_DATA` grants
/// [`Access::READ`], `FILE_WRITE_DATA` [`Access::WRITE`], nothing else grants anything. The I/O
/// manager has mapped generic rights and checked them against the device's security descriptor
/// (SYSTEM and Administrators only) before the IRP is built, so what is asked for here was
/// granted.
pub fn granted_access(desired_access: AccessMask) -> Access {
    let mut bits = 0;
    if desired_access & FILE_READ_DATA != 0 {
        bits |= Access::READ.bits();
    }
    if desired_access & FILE_WRITE_DATA != 0 {
        bits |= Access::WRITE.bits();
    }
    Access::from_bits_truncate(bits)
}

/// The parameters of an `IRP_MJ_CREATE` the decision reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// The IRP has a file object.
    pub has_file_object: bool,
    /// `FileObject->FileName.Length`: non-zero for a name below the device (`\\.\WanLayer\x`).
    pub file_name_length: u16,
    /// `FileObject->RelatedFileObject` is set: an open relative to another handle.
    pub has_related_file_object: bool,
}

/// Whether a create opens a handle: only opens of the device itself do, since the I/O manager
/// checks the device's security descriptor only for those. The status to fail it with otherwise.
///
/// # Errors
/// `STATUS_INVALID_PARAMETER` without a file object, `STATUS_OBJECT_NAME_NOT_FOUND` for a name
/// below the device or a relative open.
pub fn check_create(request: CreateRequest) -> Result<(), NtStatus> {
    if !request.has_file_object {
        Err(STATUS_INVALID_PARAMETER)
    } else if request.file_name_length != 0 || request.has_related_file_object {
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    } else {
        Ok(())
    }
}

/// The token of a handle in `slot` with `generation`: `generation << 32 | slot`.
pub const fn token(slot: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | slot as u64
}

/// The slot a token names, if it is a slot at all (below [`MAX_HANDLES`]).
pub fn token_slot(token: u64) -> Option<usize> {
    usize::try_from(token & u64::from(u32::MAX)).ok().filter(|slot| *slot < MAX_HANDLES)
}

/// The generation a token names.
pub const fn token_generation(token: u64) -> u32 {
    (token >> 32) as u32
}

/// The generation a slot gets when it is given to a new handle: one more than its last,
/// wrapping, never 0 (0 is never handed out, so a zeroed token names nothing).
pub const fn next_generation(last: u32) -> u32 {
    match last.wrapping_add(1) {
        0 => 1,
        next => next,
    }
}

/// True for an IOCTL code of transfer type `METHOD_BUFFERED` (every wanlayer IOCTL is; only for
/// those does the system buffer hold `max(input, output)` bytes).
pub const fn is_buffered(code: u32) -> bool {
    code & 3 == METHOD_BUFFERED
}

/// An `NTSTATUS` from the protocol's status.
pub fn nt_status(status: Status) -> NtStatus {
    u32::from(status) as NtStatus
}

/// What becomes of a dispatched device control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Complete the IRP with `status`, `Information = written`.
    Complete {
        /// The completion status.
        status: NtStatus,
        /// `IoStatus.Information`: never more than the caller's output buffer (the I/O manager
        /// copies that many bytes of the system buffer out).
        written: usize,
    },
    /// Queue it in the handle's cancel-safe queue and return `STATUS_PENDING`.
    Queue,
}

/// Settles the engine's answer to a device control whose output buffer holds `output_len` bytes.
/// `may_pend` says whether the request may be queued (event reads only: a queued request is
/// dispatched again from the wake DPC, at `DISPATCH_LEVEL`); any other that pends is completed
/// `STATUS_INVALID_DEVICE_STATE` (an engine bug, reported by the caller).
pub fn settle(completion: Completion, output_len: usize, may_pend: bool) -> Settled {
    match completion {
        Completion::Complete { status, written } => Settled::Complete { status: nt_status(status), written: written.min(output_len) },
        Completion::Pending if may_pend => Settled::Queue,
        Completion::Pending => Settled::Complete { status: nt_status(Status::InvalidDeviceState), written: 0 },
    }
}

#[cfg(test)]
mod tests {
    use wanlayer_ndis::kernel::{FILE_READ_DATA, FILE_WRITE_DATA};
    use wanlayer_proto::ioctl::{IOCTL_INJECT, IOCTL_QUERY_VERSION, IOCTL_READ_EVENTS};

    use super::*;

    /// `SYNCHRONIZE`, `READ_CONTROL`, `FILE_READ_ATTRIBUTES`: what `CreateFile` adds to any open.
    const HOUSEKEEPING: AccessMask = 0x0010_0000 | 0x0002_0000 | 0x0080;
    /// `FILE_APPEND_DATA`, `FILE_EXECUTE`, `DELETE`, `WRITE_DAC`: rights that grant nothing here.
    const UNRELATED: AccessMask = 0x0004 | 0x0020 | 0x0001_0000 | 0x0004_0000;

    #[test]
    fn read_and_write_data_map_to_read_and_write_access() {
        assert_eq!(granted_access(0), Access::NONE);
        assert_eq!(granted_access(HOUSEKEEPING | UNRELATED), Access::NONE);
        assert_eq!(granted_access(FILE_READ_DATA | HOUSEKEEPING), Access::READ);
        assert_eq!(granted_access(FILE_WRITE_DATA), Access::WRITE);
        assert_eq!(granted_access(FILE_READ_DATA | FILE_WRITE_DATA | UNRELATED), Access::READ_WRITE);
        // GENERIC_READ / GENERIC_WRITE are mapped by the I/O manager before the IRP: unmapped
        // generic bits alone grant nothing.
        assert_eq!(granted_access(0x8000_0000 | 0x4000_0000), Access::NONE);
    }

    #[test]
    fn a_read_only_handle_may_not_use_write_ioctls() {
        let read_only = granted_access(FILE_READ_DATA | HOUSEKEEPING);
        assert!(read_only.allows(Access::of_code(IOCTL_QUERY_VERSION)));
        assert!(!read_only.allows(Access::of_code(IOCTL_INJECT)));
        assert!(granted_access(FILE_READ_DATA | FILE_WRITE_DATA).allows(Access::of_code(IOCTL_INJECT)));
    }

    #[test]
    fn only_opens_of_the_device_itself_succeed() {
        let device = CreateRequest { has_file_object: true, file_name_length: 0, has_related_file_object: false };
        assert_eq!(check_create(device), Ok(()));
        assert_eq!(check_create(CreateRequest { has_file_object: false, ..device }), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(check_create(CreateRequest { file_name_length: 2, ..device }), Err(STATUS_OBJECT_NAME_NOT_FOUND));
        assert_eq!(check_create(CreateRequest { has_related_file_object: true, ..device }), Err(STATUS_OBJECT_NAME_NOT_FOUND));
    }

    #[test]
    fn tokens_name_a_slot_and_a_generation() {
        let t = token(5, 7);
        assert_eq!((token_slot(t), token_generation(t)), (Some(5), 7));
        assert_eq!(token_slot(token(MAX_HANDLES - 1, u32::MAX)), Some(MAX_HANDLES - 1));
        assert_eq!(token_slot(token(MAX_HANDLES, 1)), None);
        assert_eq!(token_slot(u64::MAX), None);
        assert_eq!(next_generation(0), 1);
        assert_eq!(next_generation(41), 42);
        assert_eq!(next_generation(u32::MAX), 1, "0 is never handed out");
    }

    #[test]
    fn only_buffered_codes_are_dispatched() {
        assert!(is_buffered(IOCTL_READ_EVENTS));
        for method in 1..=3 {
            assert!(!is_buffered(IOCTL_READ_EVENTS | method));
        }
    }

    #[test]
    fn completions_never_report_more_than_the_output_buffer() {
        let complete = Completion::Complete { status: Status::Success, written: 100 };
        assert_eq!(settle(complete, 40, false), Settled::Complete { status: 0, written: 40 });
        assert_eq!(settle(complete, 400, true), Settled::Complete { status: 0, written: 100 });
        let refused = Completion::Complete { status: Status::AccessDenied, written: 0 };
        assert_eq!(settle(refused, 8, false), Settled::Complete { status: nt_status(Status::AccessDenied), written: 0 });
    }

    #[test]
    fn only_requests_that_may_pend_are_queued() {
        assert_eq!(settle(Completion::Pending, 64, true), Settled::Queue);
        assert_eq!(settle(Completion::Pending, 64, false), Settled::Complete { status: 0xC000_0184_u32 as NtStatus, written: 0 });
    }
}
