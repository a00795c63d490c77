//! What the drivers around the filter do while a call of the filter's is still in progress:
//! the protocol above answers a status indication inside `NdisFIndicateStatus` (it fills in a
//! line up's `LocalAddress` and `DeviceName`, which the filter reads when the call returns). A
//! test bed that plays the protocol installs a [`StatusSink`]; without one the indication is only
//! recorded as an [`Event::Status`](crate::Event::Status).

use std::sync::Mutex;

use wanlayer_ndis::filter::StatusIndication;
use wanlayer_ndis::types::FilterModuleHandle;

/// The protocol above, answering `NdisFIndicateStatus` for a module before the call returns.
pub type StatusSink = fn(filter: FilterModuleHandle, indication: *mut StatusIndication);

static STATUS_SINK: Mutex<Option<StatusSink>> = Mutex::new(None);

/// Installs (or, with `None`, removes) the protocol that answers status indications.
pub fn set_status_sink(sink: Option<StatusSink>) {
    *STATUS_SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = sink;
}

/// Hands an indication the driver passed on to the installed sink, if any (no model lock held).
pub(crate) fn status_indicated(filter: FilterModuleHandle, indication: *mut StatusIndication) {
    let sink = *STATUS_SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(sink) = sink {
        sink(filter, indication);
    }
}
