//! The driver-in-the-loop scenarios, parameterised by how the driver is reached ([`Target`]):
//! natively (the driver built for the host from the same source, `tests/`), or as the shipped
//! image on an emulated processor (`driver/emulator`). Every call into driver code goes through
//! the kernel model's one invocation layer (`wanlayer_kernel_model::invoke`), which the emulator
//! replaces; the scenarios are the same code either way.

pub mod control;
pub mod datapath;
pub mod held;
pub mod lifecycle;
pub mod low_resources;
pub mod registry;

use wanlayer_ndis::kernel::{DriverObject, NtStatus};
use wanlayer_ndis::types::{ContextHandle, UnicodeString};

/// `DRIVER_INITIALIZE`: the image's entry point.
pub type DriverEntryFn = unsafe extern "system" fn(driver: *mut DriverObject, registry_path: *mut UnicodeString) -> NtStatus;

/// The links the engine tracks for a module, read from the driver's own state (only a host build
/// can: an image's state is reached through its handlers only).
pub type LinksFn = unsafe fn(module_context: ContextHandle) -> usize;

/// How the scenarios reach the driver.
pub struct Target {
    /// What runs: "host build" or the image's name.
    pub name: &'static str,
    /// `DriverEntry` (native, or its address in the loaded image).
    pub driver_entry: DriverEntryFn,
    /// The driver's link count by module, when the driver's state can be read directly.
    pub links: Option<LinksFn>,
}

/// A scenario by name.
pub struct Scenario {
    /// Its name (the native test's name).
    pub name: &'static str,
    /// Runs it against a target (panics on a failed check).
    pub run: fn(&Target),
}

macro_rules! scenarios {
    ($($module:ident::$name:ident),* $(,)?) => {
        /// Every scenario, in order.
        pub const ALL: &[Scenario] = &[$(Scenario { name: stringify!($name), run: $module::$name }),*];
    };
}

scenarios!(
    lifecycle::a_module_lives_its_whole_life_through_the_drivers_handlers,
    lifecycle::a_wan_link_comes_up_and_goes_down_through_the_drivers_status_handler,
    lifecycle::attaches_the_driver_refuses_leave_nothing_behind,
    datapath::lent_receives_come_back_linked_as_they_came,
    datapath::a_receive_whose_count_disagrees_with_its_chain_is_handled_by_the_chain,
    datapath::owned_receives_are_returned_and_sends_completed_through_the_drivers_handlers,
    datapath::nbls_with_several_net_buffers_pass_through_whole,
    control::handles_open_answer_refuse_and_close_through_the_dispatch_routines,
    control::a_pending_event_read_is_cancelled_or_completed_by_cleanup,
    control::an_event_completes_a_pending_read_through_the_wake_dpc,
    control::internal_device_controls_from_user_mode_or_with_other_codes_are_refused,
    held::a_line_down_releases_the_packets_a_hook_holds_exactly_once,
    held::a_pause_releases_the_packets_a_hook_holds_exactly_once,
    registry::a_set_rules_is_saved_and_in_force_again_after_a_reload,
    registry::a_corrupt_saved_set_is_refused_and_the_driver_starts_without_rules,
);
