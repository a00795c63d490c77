//! The control device's dispatch routines in the loop: `IRP_MJ_CREATE` (opens of the device,
//! refused names, the access granted), `IRP_MJ_DEVICE_CONTROL` (answered at once, refused for a
//! read-only handle, an event read that pends in the cancel-safe queue and is cancelled, or is
//! completed by `IRP_MJ_CLEANUP` or by an event through the wake DPC), `IRP_MJ_CLEANUP`,
//! `IRP_MJ_CLOSE` and the vendors' `IRP_MJ_INTERNAL_DEVICE_CONTROL`, with IRPs and stack locations
//! in `wanlayer-ndis` layouts, against the kernel model.
//!
//! Natively: the driver built for the host (the same scenarios run against the images in
//! `driver/emulator`).
#![cfg(not(target_os = "windows"))]

use wanlayer_driver_host_tests::native;
use wanlayer_driver_host_tests::scenarios::control;

#[test]
fn handles_open_answer_refuse_and_close_through_the_dispatch_routines() {
    control::handles_open_answer_refuse_and_close_through_the_dispatch_routines(&native());
}

#[test]
fn a_pending_event_read_is_cancelled_or_completed_by_cleanup() {
    control::a_pending_event_read_is_cancelled_or_completed_by_cleanup(&native());
}

#[test]
fn an_event_completes_a_pending_read_through_the_wake_dpc() {
    control::an_event_completes_a_pending_read_through_the_wake_dpc(&native());
}

#[test]
fn internal_device_controls_from_user_mode_or_with_other_codes_are_refused() {
    control::internal_device_controls_from_user_mode_or_with_other_codes_are_refused(&native());
}
