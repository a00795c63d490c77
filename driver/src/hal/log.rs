//! Levelled debug output: `DbgPrintEx(DPFLTR_IHVNETWORK_ID, level, "%s", message)`.
//!
//! The message is formatted into a fixed buffer on the stack and passed as the argument of a
//! constant `"%s\n"` format ([`wanlayer_ndis::runtime::print`]), so it works at `DISPATCH_LEVEL`
//! and when pool is exhausted, and a `%` in a message is never interpreted.
//!
//! Enable the levels with the `IHVNETWORK` component filter: `ed nt!Kd_IHVNETWORK_Mask 0xf` in the
//! debugger, or `HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Debug Print Filter`,
//! value `IHVNETWORK`.

use core::fmt;

use wanlayer_core::hal::Level;
use wanlayer_ndis::kernel::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, DPFLTR_TRACE_LEVEL, DPFLTR_WARNING_LEVEL};

/// Every message starts with this, so `!dbgprint` output can be filtered.
const PREFIX: &str = "wanlayer";

/// The `DPFLTR_*_LEVEL` of a level.
fn filter_level(level: Level) -> u32 {
    match level {
        Level::Error => DPFLTR_ERROR_LEVEL,
        Level::Warning => DPFLTR_WARNING_LEVEL,
        Level::Info => DPFLTR_INFO_LEVEL,
        Level::Trace => DPFLTR_TRACE_LEVEL,
    }
}

/// Formats and prints one message ([`wanlayer_ndis::runtime::print`]).
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub fn dbg_print(level: Level, message: fmt::Arguments<'_>) {
    wanlayer_ndis::runtime::print(filter_level(level), PREFIX, message);
}
