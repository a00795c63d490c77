//! wanlayer's rules: a filter language administrators already read (pcap-filter(7) syntax for
//! what it covers, plus WAN terms `link`, `device`, `send`, `receive`), its compiler to a compact,
//! position-independent, little-endian blob, and the kernel's validator and classifier.
//!
//! * Always built (`no_std`, kernel-safe: fallible allocation only, no panics on any input,
//!   bounded work per packet): [`RuleSet::load`] validates a blob completely and
//!   [`RuleSet::classify`] finds the first matching rule in priority order through a hashed
//!   prefix index, without allocating.
//! * Feature `compiler` (user mode): `parse` and `compile`.
//!
//! The grammar and the semantics (libpcap's, with the deviations listed) follow, from the
//! crate's README; the compiled layout is documented in `format.rs`.
//!
#![doc = include_str!("../README.md")]
#![no_std]
// Kernel code never allocates infallibly: clippy.toml lists what aborts on a failed allocation.
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![forbid(unsafe_code)]

extern crate alloc;

mod classifier_io;
mod classify;
mod format;
mod set;

// The compiler runs in user mode only (wanlayerctl, the tests): the driver links the classifier
// and the validator above, never these, so the kernel's ban on infallible allocation
// (`clippy.toml`) does not apply to them.
#[cfg(feature = "compiler")]
#[allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types, reason = "user mode only")]
mod compile;
#[cfg(feature = "compiler")]
#[allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types, reason = "user mode only")]
mod parse;

pub use classifier_io::{Action, Direction, Match, PacketView, RuleInfo, HEADER_BYTES};
pub use set::{LoadError, RuleSet};

#[cfg(feature = "compiler")]
pub use compile::{compile, CompileError, RuleSource};
#[cfg(feature = "compiler")]
pub use parse::{parse, AddrDir, Expr, Family, LoadBase, Net, Operand, ParseError, RelOp, Term};
