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

use wanlayer_kernel_model::low_resources::Sweep;
use wanlayer_kernel_model::{self as model, invoke};
use wanlayer_ndis::io::DriverObjectLayout;
use wanlayer_ndis::kernel::{DriverObject, NtStatus, IRP_MJ_CLEANUP, IRP_MJ_CLOSE};
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

/// The low-resources sweep of any scenario of [`ALL`]: it runs once counting the allocations the
/// driver makes, then once per allocation with that one failed (every run the scenario begins
/// fails it: [`model::low_resources::plan_every_run`]). `with_target` gives each run its target (the
/// emulator a fresh load of the image). A run whose check fails is torn down by [`tear_down`]
/// before its model run ends and judged by [`model::low_resources::sweep`]: the documented failure
/// (a routine returned `STATUS_INSUFFICIENT_RESOURCES`, nothing left after the teardown), or a
/// defect. `limit` bounds the allocations failed ([`model::low_resources::sweep_bounded`]).
pub fn sweep(scenario: &Scenario, limit: Option<u64>, mut with_target: impl FnMut(&mut dyn FnMut(&Target))) -> Sweep {
    model::low_resources::set_teardown(Some(tear_down));
    let sweep = model::low_resources::sweep_bounded(limit, |fail_at| {
        model::low_resources::plan_every_run(fail_at);
        crate::common::take_open_handles();
        crate::common::free_kept();
        with_target(&mut |target| {
            model::low_resources::name_routine(target.driver_entry as usize, "DriverEntry");
            (scenario.run)(target);
        });
    });
    model::low_resources::plan_every_run(None);
    model::low_resources::set_teardown(None);
    crate::common::free_kept();
    sweep
}

/// The generic teardown of a scenario stopped by a failed check, with what the model knows is
/// still there: the IRPs queued in the driver are cancelled, the DPCs queued run, the handles
/// still open on the control device are cleaned up and closed, and the driver
/// is unloaded through the `DriverUnload` of the driver object it registered with (its
/// deregistration pauses and detaches every module still attached, as NDIS does). The scenario's
/// own structures are still allocated ([`Owned`](crate::common::Owned) keeps them while
/// panicking). Does not panic: it runs while the scenario unwinds.
pub fn tear_down() {
    model::set_irql(0);
    model::cancel_queued_irps();
    model::run_dpcs();
    if model::control_device().is_some() {
        for file in crate::common::take_open_handles() {
            for major in [IRP_MJ_CLEANUP, IRP_MJ_CLOSE] {
                control::Request::new(major, file).send(major);
            }
        }
        model::run_dpcs();
    }
    let driver_object = model::driver_object();
    if driver_object.is_null() {
        return;
    }
    // SAFETY: the driver object the driver registered with: the scenario's, kept allocated.
    let unload = unsafe { (*driver_object.cast::<DriverObjectLayout>()).driver_unload };
    if let Some(unload) = unload {
        // SAFETY: the unload routine DriverEntry set, called once, at PASSIVE_LEVEL.
        unsafe { invoke::call(unload, (driver_object,)) };
    }
    model::run_dpcs();
}
