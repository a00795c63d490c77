//! The platform-neutral engine of wanlayer, the NDIS 6 lightweight filter that sits between
//! NdisWan's IP/IPv6 miniport edges and the IP layer above them.
//!
//! The engine knows nothing of NDIS pointers: it is generic over the small traits of [`hal`], which
//! the kernel driver implements over NDIS and the host simulator (`wanlayer-sim`) implements over
//! plain Rust values. Everything the filter decides — module state, which WAN link a frame belongs
//! to, what the hook chain says about it, what is counted — lives here, in safe Rust.
//!
//! * [`Engine`] holds what is shared by every attached filter module: the hook chain and the event
//!   queue.
//! * A filter module ([`ModuleId`]) is one attachment to one adapter: its state machine, its WAN
//!   link table, its statistics and the packets it holds. The engine owns the modules; the platform
//!   keeps only the identity in its filter module context.
//! * [`wire`] parses frames as zero-copy views.
//! * [`control`] answers the control device's IOCTLs ([`wanlayer_proto`]): queries, statistics,
//!   event subscriptions with pending reads, packet capture and injection.
//! * [`rules`] runs the administrator's rule set (`wanlayer-rules`) as a built-in hook, and keeps
//!   it across restarts through a [`hal::RuleStore`].
#![no_std]
// Kernel code never allocates infallibly: clippy.toml lists what aborts on a failed allocation.
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod control;
pub mod event;
pub mod hal;
pub mod hook;
pub mod link;
pub mod module;
pub mod ndis_status;
pub mod rules;
pub mod stats;
pub mod wire;

mod datapath;
mod engine;
mod gate;
mod memory;
mod taken;
#[cfg(test)]
mod testing;

pub use control::{Completion, Control, ControlHandle, EventWaker, EventWakerRef, InjectError};
pub use datapath::{ReinjectError, ReinjectVerdict};
pub use engine::Engine;
pub use engine::EngineConfig;
pub use engine::{AttachError, LineUpError, LineUpOutcome, RemoveHookError};
pub use hal::{Hal, ModuleId};
pub use module::{AttachParams, ModuleKind, ModuleState};
pub use ndis_status::NdisStatus;
