//! The wanlayer SDK: how a third-party filter driver sits between NdisWan and the IP layer by
//! registering with wanlayer, instead of writing an NDIS lightweight filter of its own.
//!
//! A vendor implements **one trait**, [`VendorFilter`] (line up, line down, send, receive over a
//! [`Packet`] view, with a [`Provider`] handle to reinject what it took and to list links). The
//! same implementation
//!
//! * builds into a kernel driver (`kernel`, Windows targets): it opens `\Device\WanLayer`, gets
//!   the provider table with an internal device control and registers through it — no import
//!   from wanlayer.sys, any load order;
//! * runs unchanged in the scenario tests: `kernel` built for the host makes the same IRPs to
//!   wanlayer.sys's own handlers running in the simulator over the kernel model
//!   (`wanlayer-sim-driver`), and gets the driver's own table.
//!
//! C vendors get the same interface from `include/wanlayer.h`, generated from [`abi`]
//! (`cargo xtask sdk-header`) and compiled as C99 by `cargo xtask test`.
//!
//! | module | feature | what |
//! | --- | --- | --- |
//! | [`abi`] | | the `#[repr(C)]` interface: structures, function types, constants, statuses |
//! | [`vendor_filter`], [`client`] | | the trait, the packet view, the provider handle, registration |
//! | [`sync`] | | the spin lock a filter guards its state with |
//! | [`wire`] | | the engine's packet views (Ethernet, IPv4, IPv6, TCP, UDP) and the TCP MSS clamp |
//! | `kernel` | `kernel` | connecting from a kernel driver (or, on the host, to the driver in the loop); allocator, bug check, print, timer |
//! | `provider` | `provider` | the table's implementation over `wanlayer_core::Engine` |
//! | `header` | `header` | the generator of the C header and its layout check |
#![no_std]
// Kernel code never allocates infallibly: clippy.toml lists what aborts on a failed allocation.
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::multiple_unsafe_ops_per_block)]

extern crate alloc;

pub mod abi;
pub mod client;
pub mod heap;
pub mod sync;
pub mod vendor_filter;

// The header generator runs in user mode only (xtask, the tests): the driver never links it, so
// the kernel's ban on infallible allocation does not apply.
#[cfg(feature = "header")]
#[allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types, reason = "user mode only")]
pub mod header;
#[cfg(feature = "kernel")]
pub mod kernel;
#[cfg(feature = "provider")]
pub mod provider;

/// The packet views a filter reads and edits frames with — the engine's own
/// (`wanlayer_core::wire`): Ethernet, IPv4, IPv6, TCP and UDP, checksums, and the TCP MSS clamp
/// ([`wire::clamp_tcp_mss`]).
pub use wanlayer_core::wire;

pub use abi::{FilterHandle, LinkInfo, Status, Ticket};
pub use client::{Packet, Provider, ProviderTable, Registration};
pub use vendor_filter::{Direction, ReinjectVerdict, VendorFilter, Verdict};
