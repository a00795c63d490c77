//! What can go wrong talking to the driver.

use std::fmt;

use wanlayer_proto::Status;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The control device does not exist: the driver is not installed or not running.
    DriverNotFound,
    /// The device could not be opened with the access asked for (administrators only).
    AccessDenied,
    /// The driver completed the request with this status.
    Driver(Status),
    /// The driver's answer failed validation.
    Malformed(wanlayer_proto::Error),
    /// The driver speaks another interface version.
    Incompatible {
        /// The driver's interface version.
        driver: u16,
    },
    /// Another operating-system error (a Win32 error code) in `context`.
    Os {
        /// The Win32 error.
        code: u32,
        /// What was being done.
        context: &'static str,
    },
}

impl ClientError {
    /// True when the driver or the system refused for lack of access.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, ClientError::AccessDenied | ClientError::Driver(Status::AccessDenied))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::DriverNotFound => f.write_str("the wanlayer driver is not running (no \\\\.\\WanLayer device)"),
            ClientError::AccessDenied => f.write_str("access to \\\\.\\WanLayer denied: run as an administrator"),
            ClientError::Driver(Status::AccessDenied) => {
                f.write_str("access denied: this needs a handle opened for writing (drop --read-only, run as an administrator)")
            }
            ClientError::Driver(status) => write!(f, "the driver refused: {status}"),
            ClientError::Malformed(error) => write!(f, "the driver's answer is malformed: {error}"),
            ClientError::Incompatible { driver } => write!(
                f,
                "the driver speaks control interface version {driver}, this tool version {}: update one of them",
                wanlayer_proto::INTERFACE_VERSION
            ),
            ClientError::Os { code, context } => write!(f, "{context} failed with Windows error {code}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<wanlayer_proto::Error> for ClientError {
    fn from(error: wanlayer_proto::Error) -> Self {
        ClientError::Malformed(error)
    }
}

/// The result of a client call.
pub type Result<T> = std::result::Result<T, ClientError>;
