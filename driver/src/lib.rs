//! `wanlayer.sys`: the NDIS 6 lightweight filter that sits between NdisWan's IP/IPv6 miniport edges
//! and the IP layer, running the platform-neutral [`wanlayer_core::Engine`] over NDIS.
//!
//! Every NDIS callback is translated into one engine call; what a handler decides on its own is a
//! host-tested function of `wanlayer_driver_logic`, and the engine's platform traits are
//! implemented over the kernel in [`hal`]:
//!
//! * [`driver`]: `DriverEntry` and `DriverUnload`, the global state, and the unwinding of a failed
//!   entry.
//! * [`filter`]: the filter characteristics and every handler: attach, detach, restart, pause, the
//!   data path, status, OID pass-through by cloning, PnP.
//! * [`modules`]: the driver's instance of the module table (`wanlayer_driver_logic::modules`) that
//!   maps an engine [`ModuleId`](wanlayer_core::ModuleId) to its NDIS filter module handle and NBL
//!   pool, and is the filter module context NDIS passes back.
//! * [`control`]: the control device `\\.\WanLayer`: per-handle contexts, every IOCTL through
//!   the engine's control dispatcher, pending event reads in cancel-safe queues serviced by a
//!   DPC; and the internal device control through which vendor drivers obtain the provider table.
//! * [`provider`]: the provider interface for vendor drivers (`wanlayer_sdk::provider::Host` over
//!   the engine), installed in `DriverEntry` and revoked in `DriverUnload`.
//! * [`hal`]: non-paged pool with tags (and the global allocator), spin locks, time, waiting,
//!   debug output, NBLs, and the bug check a panic becomes.
//! * [`identity`]: the filter's GUID and names, defined once for the driver and the INF.
//! * [`platform`]: the only place the xtask build and the windows-drivers-rs (`wdk` feature)
//!   build differ.
//!
//! # Safety
//!
//! This crate is where NDIS's promises become Rust's. Every `unsafe` block holds one unsafe
//! operation and a `// SAFETY:` comment naming the NDIS or kernel rule it relies on; every callback
//! documents its IRQL and what it owns under `# IRQL` and `# Ownership`.
#![no_std]
// Kernel code never allocates infallibly: clippy.toml lists what aborts on a failed allocation.
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::multiple_unsafe_ops_per_block)]

extern crate alloc;

pub mod control;
pub mod driver;
pub mod filter;
pub mod hal;
pub mod identity;
pub mod modules;
pub mod platform;
pub mod provider;
