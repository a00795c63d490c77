//! The completion status of a device control: an `NTSTATUS`, as the driver completes the IRP with
//! it, and the Win32 error user mode sees after `RtlNtStatusToDosError`.

use core::fmt;

use crate::field::enum_with_unknown;
use crate::Error;

enum_with_unknown! {
    /// The `NTSTATUS` a request completes with.
    pub enum Status(u32) {
        /// `STATUS_SUCCESS`.
        Success = 0x0000_0000,
        /// `STATUS_PENDING`: the request waits (an event read with nothing to read yet).
        Pending = 0x0000_0103,
        /// `STATUS_INVALID_DEVICE_REQUEST`: an IOCTL code the device does not answer.
        InvalidDeviceRequest = 0xC000_0010,
        /// `STATUS_INVALID_PARAMETER`: a malformed request (length, count, value, reserved field).
        InvalidParameter = 0xC000_000D,
        /// `STATUS_ACCESS_DENIED`: the handle lacks the access the IOCTL code requires.
        AccessDenied = 0xC000_0022,
        /// `STATUS_BUFFER_TOO_SMALL`: the output buffer cannot hold the smallest answer.
        BufferTooSmall = 0xC000_0023,
        /// `STATUS_REVISION_MISMATCH`: the request's interface version is not the driver's.
        RevisionMismatch = 0xC000_0059,
        /// `STATUS_INSUFFICIENT_RESOURCES`: no memory for the request.
        InsufficientResources = 0xC000_009A,
        /// `STATUS_DEVICE_NOT_READY`: the filter is not loaded yet, or unloading.
        DeviceNotReady = 0xC000_00A3,
        /// `STATUS_TOO_MANY_SESSIONS`: every event subscriber or capture slot is in use.
        TooManySessions = 0xC000_00CE,
        /// `STATUS_CANCELLED`: a pending request was cancelled, or its handle closed.
        Cancelled = 0xC000_0120,
        /// `STATUS_INVALID_DEVICE_STATE`: not now (module not running, handle not subscribed,
        /// already subscribed or capturing).
        InvalidDeviceState = 0xC000_0184,
        /// `STATUS_NOT_FOUND`: no module, link or hook has that identity.
        NotFound = 0xC000_0225,
        /// `STATUS_NOT_SUPPORTED`: a request this driver understands but does not carry out (a
        /// rule with the reserved `divert` action).
        NotSupported = 0xC000_00BB,
        /// `STATUS_TRANSACTIONAL_CONFLICT`: the rule set changed since the caller read it (its
        /// version is not the one the request names); read it again and retry.
        TransactionalConflict = 0xC019_0001,
    }
}

impl Status {
    /// True for success and informational codes (severity `00` or `01`).
    pub fn is_success(self) -> bool {
        u32::from(self) >> 30 <= 1
    }

    /// The symbolic name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Status::Success => "STATUS_SUCCESS",
            Status::Pending => "STATUS_PENDING",
            Status::InvalidDeviceRequest => "STATUS_INVALID_DEVICE_REQUEST",
            Status::InvalidParameter => "STATUS_INVALID_PARAMETER",
            Status::AccessDenied => "STATUS_ACCESS_DENIED",
            Status::BufferTooSmall => "STATUS_BUFFER_TOO_SMALL",
            Status::RevisionMismatch => "STATUS_REVISION_MISMATCH",
            Status::InsufficientResources => "STATUS_INSUFFICIENT_RESOURCES",
            Status::DeviceNotReady => "STATUS_DEVICE_NOT_READY",
            Status::TooManySessions => "STATUS_TOO_MANY_SESSIONS",
            Status::Cancelled => "STATUS_CANCELLED",
            Status::InvalidDeviceState => "STATUS_INVALID_DEVICE_STATE",
            Status::NotFound => "STATUS_NOT_FOUND",
            Status::NotSupported => "STATUS_NOT_SUPPORTED",
            Status::TransactionalConflict => "STATUS_TRANSACTIONAL_CONFLICT",
            Status::Unknown(_) => "NTSTATUS",
        }
    }

    /// What it means, for an administrator.
    pub fn meaning(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Pending => "the request is pending",
            Status::InvalidDeviceRequest => "the driver does not know this request (a newer tool than driver?)",
            Status::InvalidParameter => "the driver refused a malformed request",
            Status::AccessDenied => "access denied: this needs a handle opened for writing, by an administrator",
            Status::BufferTooSmall => "the answer does not fit the buffer given",
            Status::RevisionMismatch => "the driver speaks another version of the control interface",
            Status::InsufficientResources => "the driver is out of memory",
            Status::DeviceNotReady => "the filter is not running",
            Status::TooManySessions => "every event subscriber or capture slot is in use",
            Status::Cancelled => "the request was cancelled",
            Status::InvalidDeviceState => "not possible in the current state",
            Status::NotFound => "no such module, link or hook",
            Status::NotSupported => "not supported by this driver (divert rules wait for user-mode hooks)",
            Status::TransactionalConflict => "the rule set changed since it was read: read it again and retry",
            Status::Unknown(_) => "unknown status",
        }
    }

    /// The Win32 error `RtlNtStatusToDosError` turns this status into (what `GetLastError`
    /// returns after `DeviceIoControl` fails); `None` for success and pending.
    pub fn win32_error(self) -> Option<u32> {
        Some(match self {
            Status::Success | Status::Pending => return None,
            Status::InvalidDeviceRequest => 1,     // ERROR_INVALID_FUNCTION
            Status::InvalidParameter => 87,        // ERROR_INVALID_PARAMETER
            Status::AccessDenied => 5,             // ERROR_ACCESS_DENIED
            Status::BufferTooSmall => 122,         // ERROR_INSUFFICIENT_BUFFER
            Status::RevisionMismatch => 1306,      // ERROR_REVISION_MISMATCH
            Status::InsufficientResources => 1450, // ERROR_NO_SYSTEM_RESOURCES
            Status::DeviceNotReady => 21,          // ERROR_NOT_READY
            Status::TooManySessions => 69,         // ERROR_TOO_MANY_SESS
            Status::Cancelled => 995,              // ERROR_OPERATION_ABORTED
            Status::InvalidDeviceState => 22,      // ERROR_BAD_COMMAND
            Status::NotFound => 1168,              // ERROR_NOT_FOUND
            Status::NotSupported => 50,            // ERROR_NOT_SUPPORTED
            Status::TransactionalConflict => 6800, // ERROR_TRANSACTIONAL_CONFLICT
            Status::Unknown(_) => return None,
        })
    }

    /// The status a Win32 error of `DeviceIoControl` came from, when it is one of ours.
    pub fn from_win32_error(error: u32) -> Option<Status> {
        const KNOWN: [Status; 13] = [
            Status::InvalidDeviceRequest,
            Status::InvalidParameter,
            Status::AccessDenied,
            Status::BufferTooSmall,
            Status::RevisionMismatch,
            Status::InsufficientResources,
            Status::DeviceNotReady,
            Status::TooManySessions,
            Status::Cancelled,
            Status::InvalidDeviceState,
            Status::NotFound,
            Status::NotSupported,
            Status::TransactionalConflict,
        ];
        KNOWN.into_iter().find(|status| status.win32_error() == Some(error))
    }
}

impl From<Error> for Status {
    /// A request that fails validation: a version mismatch is
    /// [`Status::RevisionMismatch`], anything else [`Status::InvalidParameter`].
    fn from(error: Error) -> Self {
        match error {
            Error::BadVersion(_) => Status::RevisionMismatch,
            _ => Status::InvalidParameter,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:08X}): {}", self.name(), u32::from(*self), self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_map_to_win32_and_back_and_print() {
        for raw in [0, 0x103, 0xC000_0010, 0xC000_0059, 0xC000_0225, 0xDEAD_BEEF] {
            assert_eq!(u32::from(Status::from(raw)), raw);
        }
        assert!(Status::Success.is_success() && Status::Pending.is_success() && !Status::Cancelled.is_success());
        for status in [
            Status::AccessDenied,
            Status::NotFound,
            Status::RevisionMismatch,
            Status::Cancelled,
            Status::NotSupported,
            Status::TransactionalConflict,
        ] {
            assert_eq!(status.win32_error().and_then(Status::from_win32_error), Some(status));
        }
        assert_eq!(Status::from_win32_error(2), None);
        assert_eq!(Status::Success.win32_error(), None);
        assert_eq!(Status::from(Error::BadVersion(2)), Status::RevisionMismatch);
        assert_eq!(Status::from(Error::Reserved), Status::InvalidParameter);
        assert!(format!("{}", Status::InvalidDeviceRequest).starts_with("STATUS_INVALID_DEVICE_REQUEST (0xC0000010)"));
    }
}
