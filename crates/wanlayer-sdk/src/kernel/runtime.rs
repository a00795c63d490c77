//! What a Rust kernel driver needs and `core` does not give — a global allocator over non-paged
//! pool, a panic that stops the system with its location, and debug output — from
//! [`wanlayer_ndis::runtime`], which `wanlayer.sys` uses too.

use core::fmt;

use wanlayer_ndis::kernel::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL};
pub use wanlayer_ndis::runtime::{bug_check, PoolAllocator};

/// How loud a debug message is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Severity {
    /// Shown by default (`DPFLTR_ERROR_LEVEL`).
    Error,
    /// Shown when the `IHVNETWORK` component's info level is enabled.
    Info,
}

/// `DbgPrintEx(DPFLTR_IHVNETWORK_ID, level, "%s\n", "<prefix>: <message>")`: formatted on the
/// stack (no allocation), never interpreted as a format.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub fn print(severity: Severity, prefix: &str, message: fmt::Arguments<'_>) {
    let level = match severity {
        Severity::Error => DPFLTR_ERROR_LEVEL,
        Severity::Info => DPFLTR_INFO_LEVEL,
    };
    wanlayer_ndis::runtime::print(level, prefix, message);
}
