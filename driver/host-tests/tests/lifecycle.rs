//! `wanlayer.sys`'s handlers in the loop: `DriverEntry`, attach (accepted, refused by medium,
//! failing its NBL pool), restart, OIDs passed down (completed at once; pended, cancelled and
//! completed later), PnP events, send cancellation, a status indication, pause, detach and
//! `DriverUnload`, each through the driver's real `extern "system"` handler with NDIS structures
//! in `wanlayer-ndis` layouts, against the kernel model. Every run ends with nothing left over and
//! no rule broken.
//!
//! Natively: the driver built for the host (the same scenarios run against the images in
//! `driver/emulator`).
#![cfg(not(target_os = "windows"))]

use wanlayer_driver_host_tests::native;
use wanlayer_driver_host_tests::scenarios::lifecycle;

#[test]
fn a_module_lives_its_whole_life_through_the_drivers_handlers() {
    lifecycle::a_module_lives_its_whole_life_through_the_drivers_handlers(&native());
}

#[test]
fn a_wan_link_comes_up_and_goes_down_through_the_drivers_status_handler() {
    lifecycle::a_wan_link_comes_up_and_goes_down_through_the_drivers_status_handler(&native());
}

#[test]
fn attaches_the_driver_refuses_leave_nothing_behind() {
    lifecycle::attaches_the_driver_refuses_leave_nothing_behind(&native());
}
