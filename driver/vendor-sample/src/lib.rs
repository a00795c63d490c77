//! `wlclamp.sys`, the sample vendor driver of the wanlayer SDK: a per-link TCP MSS clamp and
//! rate limiter for the PPP links NdisWan carries, sitting between NdisWan and the IP layer
//! through wanlayer — it has no NDIS filter of its own and imports nothing from wanlayer.sys.
//!
//! * the MSS option of TCP SYNs (both directions) is lowered to [`Config::mss`] in place, the TCP
//!   checksum adjusted (RFC 1624), by the SDK's `wire::clamp_tcp_mss` — the engine's own clamp.
//! * [`bucket`]: a token bucket per link in exact integer arithmetic.
//! * [`clamp_filter`]: [`ClampFilter`], the SDK's one trait implemented: sends over the link's rate
//!   are taken (`Verdict::Take`) into a bounded per-link queue and reinjected in order as tokens
//!   allow ([`ClampFilter::release`]); a send that finds the queue full is dropped; everything is
//!   counted.
//! * `attach` (the `connect` feature): connecting and registering through the SDK's kernel client,
//!   and the release timer's tick.
//! * `driver` (the `kernel` feature): `DriverEntry` attaches, starts a periodic timer whose DPC
//!   calls the tick, and `DriverUnload` stops the timer before deregistering.
//!
//! The same `ClampFilter` runs in the root workspace's scenario tests, attached by the same
//! `attach` functions (`connect` without `kernel`) to `wanlayer.sys`'s own handlers running in the
//! simulator over the kernel model: the very IRPs and C-ABI table this driver uses.
#![no_std]
// Kernel code never allocates infallibly: clippy.toml lists what aborts on a failed allocation.
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::multiple_unsafe_ops_per_block)]

extern crate alloc;

pub mod bucket;
pub mod clamp_filter;

#[cfg(feature = "connect")]
pub mod attach;
#[cfg(feature = "kernel")]
mod driver;

pub use clamp_filter::{ClampFilter, ClampStats, Config};

/// The driver's service name (and image name, `wlclamp.sys`); the install script creates the
/// service under it. Read by `cargo xtask package`: keep it a one-line string literal.
pub const SERVICE_NAME: &str = "wlclamp";

/// The service's display name.
pub const DISPLAY_NAME: &str = "wlclamp: wanlayer sample vendor filter (MSS clamp, rate limiter)";

/// The filter's name in wanlayer's chain.
pub const FILTER_NAME: &str = "wlclamp";

/// The filter's altitude: above a capture filter at the NdisWan end, below an encryption filter
/// near the IP layer.
pub const ALTITUDE: u32 = 300;
