//! Packets a hook holds (a user-mode divert hook opened through the control device), released by
//! the link's line down and by the module's pause — each completed to the protocol exactly once.
//!
//! Natively: the driver built for the host (the same scenarios run against the images in
//! `driver/emulator`).
#![cfg(not(target_os = "windows"))]

use wanlayer_driver_host_tests::native;
use wanlayer_driver_host_tests::scenarios::held;

#[test]
fn a_line_down_releases_the_packets_a_hook_holds_exactly_once() {
    held::a_line_down_releases_the_packets_a_hook_holds_exactly_once(&native());
}

#[test]
fn a_pause_releases_the_packets_a_hook_holds_exactly_once() {
    held::a_pause_releases_the_packets_a_hook_holds_exactly_once(&native());
}
