//! What the drivers around the filter do while a call of the filter's is still in progress:
//! the protocol above answers a status indication inside `NdisFIndicateStatus` (it fills in a
//! line up's `LocalAddress` and `DeviceName`, which the filter reads when the call returns), and
//! NBLs the driver passes down, up or back (or frees) reach the miniport and the protocol as the
//! call is made, whether the driver's handler, a DPC or a hook's reinjection made it. A test bed
//! that plays those drivers installs a [`StatusSink`] and a [`PassedOnSink`]; without them
//! indications and NBLs are only recorded as [`Event`](crate::Event)s.

use std::sync::Mutex;

use wanlayer_ndis::lightweight_filter::StatusIndication;
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

/// Told each time the driver passed NBLs on (`NdisFSendNetBufferLists`,
/// `NdisFSendNetBufferListsComplete`, `NdisFIndicateReceiveNetBufferLists`,
/// `NdisFReturnNetBufferLists`), completed a pause or freed an NBL of its own: the events are
/// waiting in [`take_events`](crate::take_events) and [`take_freed_nbls`](crate::take_freed_nbls).
pub type PassedOnSink = fn();

static PASSED_ON_SINK: Mutex<Option<PassedOnSink>> = Mutex::new(None);

/// Installs (or, with `None`, removes) what is told when the driver passed NBLs on.
pub fn set_passed_on_sink(sink: Option<PassedOnSink>) {
    *PASSED_ON_SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = sink;
}

static SEND_FLAGS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Records the `SendFlags` of an `NdisFSendNetBufferLists` call, in call order.
pub(crate) fn sent_with(flags: u32) {
    SEND_FLAGS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(flags);
}

/// The `SendFlags` of each `NdisFSendNetBufferLists` call since the last time, in the order of
/// their [`Event::SentDown`](crate::Event::SentDown)s.
pub fn take_send_flags() -> Vec<u32> {
    std::mem::take(&mut *SEND_FLAGS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Tells the installed sink, if any, that events are waiting (no model lock held).
pub(crate) fn passed_on() {
    let sink = *PASSED_ON_SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(sink) = sink {
        sink();
    }
}

/// The debug output from line `from` on (a test bed that follows it as it grows reads only what
/// is new).
pub fn log_since(from: usize) -> Vec<String> {
    crate::state().log.get(from..).map(<[String]>::to_vec).unwrap_or_default()
}

/// The rules broken from the `from`th report on.
pub fn violations_since(from: usize) -> Vec<String> {
    crate::state().violations.get(from..).map(<[String]>::to_vec).unwrap_or_default()
}
