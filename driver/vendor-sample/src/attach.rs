//! What `DriverEntry` and the release timer's DPC do with wanlayer, apart from the driver around
//! them (the `connect` feature, which `kernel` implies): the scenario tests call these same
//! functions on the host, where the SDK's kernel client reaches `wanlayer.sys`'s own handlers over
//! the kernel model.

use wanlayer_sdk::kernel::Attachment;
use wanlayer_sdk::Status;

use crate::{ClampFilter, Config, ALTITUDE, FILTER_NAME};

/// Connects to wanlayer (waiting up to `wait_ms` for `\Device\WanLayer` to appear) and registers a
/// [`ClampFilter`] doing `config` as [`FILTER_NAME`] at [`ALTITUDE`].
///
/// # IRQL
/// `PASSIVE_LEVEL`.
///
/// # Errors
/// The status connecting or registering failed with.
pub fn attach(config: Config, wait_ms: u32) -> Result<Attachment<ClampFilter>, Status> {
    Attachment::attach(FILTER_NAME, ALTITUDE, ClampFilter::new(config), wait_ms)
}

/// One tick of the release timer: reinjects the queued sends whose tokens are there
/// ([`ClampFilter::release`]); returns how many.
///
/// # IRQL
/// `<= DISPATCH_LEVEL` (the timer's DPC).
pub fn release(attachment: &Attachment<ClampFilter>) -> usize {
    attachment.filter().release(&attachment.provider())
}
