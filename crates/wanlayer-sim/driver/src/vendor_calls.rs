//! Another kernel driver calling into the driver in the loop: a vendor driver that connected
//! through `wanlayer_sdk::kernel::Connection` calls the provider table from its own thread or from
//! its timer's DPC, not from inside one of the driver's handlers the simulator invokes.

use wanlayer_core::hal::PathContext;
use wanlayer_kernel_model::{self as model, DISPATCH_LEVEL};

use crate::DriverFilter;

impl DriverFilter {
    /// Runs `call` as a vendor driver's call into this one — at `PASSIVE_LEVEL` (its own thread:
    /// connecting, registering, deregistering) or, when `at_dispatch`, at `DISPATCH_LEVEL` (its
    /// timer's DPC: reinjecting) — with the model's clock set from the simulator's first (what
    /// `QueryTime` and the driver read), and afterwards what the driver passed on, logged or broke
    /// handed to the simulator, as after one of its handlers.
    ///
    /// # Panics
    /// When the driver is not loaded.
    pub fn vendor_call<R>(&self, at_dispatch: bool, call: impl FnOnce() -> R) -> R {
        let mut entered = self.enter(PathContext::default());
        if at_dispatch {
            model::set_irql(DISPATCH_LEVEL);
            entered = DISPATCH_LEVEL;
        }
        let result = call();
        self.settle(entered, None);
        result
    }
}
