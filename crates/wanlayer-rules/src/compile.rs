//! The compiler.

use crate::packet::Action;
use crate::parse::ParseError;
use alloc::vec::Vec;
use core::fmt;

/// One rule as an administrator writes it.
#[derive(Clone, Copy, Debug)]
pub struct RuleSource<'a> {
    /// The administrator's id for the rule.
    pub id: u32,
    /// Lower values are tried first.
    pub priority: u32,
    /// What the rule does.
    pub action: Action,
    /// The filter expression.
    pub filter: &'a str,
}

/// Why a rule set does not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// A rule's filter does not parse.
    Parse {
        /// The rule's id.
        id: u32,
        /// What is wrong with its filter.
        error: ParseError,
    },
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Parse { id, error } => write!(f, "rule {id}: {error}"),
        }
    }
}

/// Compiles a rule set into the blob the driver loads.
pub fn compile(rules: &[RuleSource<'_>]) -> Result<Vec<u8>, CompileError> {
    for rule in rules {
        crate::parse::parse(rule.filter)
            .map_err(|error| CompileError::Parse { id: rule.id, error })?;
    }
    Ok(Vec::new())
}
