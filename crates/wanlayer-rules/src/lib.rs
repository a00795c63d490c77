//! wanlayer's rules (skeleton: the API is fixed, the implementation follows).
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
