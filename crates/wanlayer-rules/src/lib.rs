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
#![forbid(unsafe_code)]

extern crate alloc;

mod classify;
mod format;
mod packet;
mod set;

#[cfg(feature = "compiler")]
mod compile;
#[cfg(feature = "compiler")]
mod parse;

pub use packet::{Action, Direction, Match, PacketView, RuleInfo, HEADER_BYTES};
pub use set::{LoadError, RuleSet};

#[cfg(feature = "compiler")]
pub use compile::{compile, CompileError, RuleSource};
#[cfg(feature = "compiler")]
pub use parse::{parse, AddrDir, Expr, Family, LoadBase, Net, Operand, ParseError, RelOp, Term};
