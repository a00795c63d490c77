//! The rule set's persistence in the loop: `DriverEntry` reads `<RegistryPath>\Parameters`
//! (`Rules`, `RulesAltitude`) from the kernel model's registry, `SET_RULES` through the control
//! device writes them, a reload puts the saved set back in force, and a corrupt saved set is
//! refused (logged) with the driver starting without rules; every key handle is closed.
//!
//! Natively: the driver built for the host (the same scenarios run against the images in
//! `driver/emulator`).
#![cfg(not(target_os = "windows"))]

use wanlayer_driver_host_tests::native;
use wanlayer_driver_host_tests::scenarios::registry;

#[test]
fn a_set_rules_is_saved_and_in_force_again_after_a_reload() {
    registry::a_set_rules_is_saved_and_in_force_again_after_a_reload(&native());
}

#[test]
fn a_corrupt_saved_set_is_refused_and_the_driver_starts_without_rules() {
    registry::a_corrupt_saved_set_is_refused_and_the_driver_starts_without_rules(&native());
}
