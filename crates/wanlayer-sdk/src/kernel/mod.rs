//! Kernel vendor drivers (the `kernel` feature): reaching wanlayer and the small runtime a Rust
//! kernel driver needs.
//!
//! Built for Windows, every kernel function this module calls is a `raw-dylib` import of
//! `wanlayer-ndis`. Built for any other OS (the scenario tests), the same declarations resolve by
//! name to the kernel model's definitions (`crates/wanlayer-kernel-model`, which the test binary
//! links), as the driver's own host build does: a vendor filter then connects to `wanlayer.sys`'s
//! handlers running in the simulator (`wanlayer-sim-driver`) through the very IRPs below, and gets
//! the driver's own table.
//!
//! # Connecting
//!
//! [`Connection::open`] opens `\Device\WanLayer` with `IoGetDeviceObjectPointer` (which
//! references the device's file object for the caller) and sends
//! `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` as an internal device control
//! (`IoBuildDeviceIoControlRequest(..., InternalDeviceIoControl = TRUE, ...)` + `IofCallDriver`):
//! the vendor driver imports nothing from wanlayer.sys, so either can load first.
//!
//! * **Load order.** A vendor that starts before wanlayer gets `STATUS_OBJECT_NAME_NOT_FOUND`;
//!   [`Connection::open_waiting`] retries every 100 ms up to a deadline (from `DriverEntry`, at
//!   `PASSIVE_LEVEL`: a demand-start service may wait there). Installing the vendor service with
//!   `depend= wanlayer` makes the service control manager start wanlayer first, so the wait is
//!   only for the moment between wanlayer's `NdisFRegisterFilterDriver` and its control device.
//! * **Lifetime.** The [`Connection`] keeps the file object referenced until it is dropped, and
//!   the I/O manager does not call wanlayer's `DriverUnload` while a file object of its device is
//!   referenced ("Unload Routine Environment": the Unload routine runs only when no references
//!   remain to the driver's device objects). So while a vendor holds a `Connection`, the table's
//!   code and the provider behind it stay loaded; [`Attachment`] ties a registration to its
//!   connection so that deregistration always comes first. If wanlayer nevertheless revokes the
//!   registration, [`crate::VendorFilter::on_provider_unload`] says so.
//!
//! # Runtime
//!
//! [`PoolAllocator`] (non-paged pool, any alignment), [`bug_check`] for the panic handler,
//! [`print`] (`DbgPrintEx`), [`Global`] for the driver's state between `DriverEntry` and
//! `DriverUnload` (the cell wanlayer.sys keeps its engine in), [`PeriodicTimer`] (`KTIMER` + `KDPC`), and what a `DriverEntry` signature and
//! its `DriverUnload` need ([`DriverObject`], [`UnicodeString`], [`NtStatus`],
//! [`set_driver_unload`]).

mod connection;
mod runtime;
mod timer;

pub use connection::{Attachment, Connection};
pub use runtime::{bug_check, print, PoolAllocator, Severity};
pub use timer::PeriodicTimer;
pub use wanlayer_ndis::io::set_driver_unload;
pub use wanlayer_ndis::kernel::{DriverObject, NtStatus};
pub use wanlayer_ndis::pool::find_pool2;
pub use wanlayer_ndis::sync::Global;
pub use wanlayer_ndis::types::UnicodeString;
