//! The control device `\\.\WanLayer` as a test sees it: handles, device controls (IRPs) and how
//! they completed. wanlayer.sys's own dispatch routines answer them (`wanlayer-sim-driver`'s
//! `DriverFilter::control_*`: `IRP_MJ_CREATE`, buffered device controls, cancellation through the
//! driver's cancel-safe queues, `IRP_MJ_CLEANUP` and `IRP_MJ_CLOSE`).

use wanlayer_proto::Status;

/// An open handle of the control device.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct HandleId(pub u64);

/// One device control request (an IRP).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct IoId(pub u64);

/// A completed request: its status and the bytes the caller's output buffer received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoCompletion {
    /// The request.
    pub id: IoId,
    /// `IoStatus.Status`.
    pub status: Status,
    /// The first `IoStatus.Information` bytes of the output.
    pub output: Vec<u8>,
}

/// What a device control came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoOutcome {
    /// Completed at once.
    Complete(IoCompletion),
    /// Pending: it completes later (`DriverFilter::control_completion` says how, once it has).
    Pending(IoId),
}
