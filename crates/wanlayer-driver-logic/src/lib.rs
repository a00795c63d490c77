//! The decisions `wanlayer.sys`'s handlers make, as plain functions the host tests call and the
//! driver links (`no_std`, no allocation, no `unsafe`).
//!
//! A handler in `driver/src/filter/` or `driver/src/control/` reads NDIS's or the I/O manager's
//! structures, calls one of these, and carries the answer out with kernel calls. What is decided
//! here is tested here, and the simulator's filter (`wanlayer-sim`) decides with the same
//! functions:
//!
//! * [`attach`]: refuse or accept an adapter from its medium, the module kind from
//!   `BaseMiniportName`, the MAC read from the attach parameters, the warning when the signals
//!   disagree;
//! * [`lifecycle`]: the status `FilterRestart` and `FilterPause` return for the engine's answer,
//!   and which path a status indication takes;
//! * [`lent`]: how a lent receive chain is linked again before NDIS takes it back;
//! * [`modules`]: the module table (engine [`ModuleId`](wanlayer_core::ModuleId) to NDIS
//!   handles) with its publish / retire / lookup / ownership rules;
//! * [`control`]: the control device's create checks, the access a create grants, handle tokens,
//!   and how a dispatched device control is settled.
#![no_std]
// Kernel code never allocates infallibly: clippy.toml lists what aborts on a failed allocation.
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod attach;
pub mod control;
pub mod lent;
pub mod lifecycle;
pub mod modules;
