//! The filter language.

use alloc::boxed::Box;
use core::fmt;

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Both sides match.
    And(Box<Expr>, Box<Expr>),
    /// Either side matches.
    Or(Box<Expr>, Box<Expr>),
    /// The inner expression does not match.
    Not(Box<Expr>),
}

/// Why a filter expression does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the text.
    pub offset: usize,
    /// What the parser expected there.
    pub expected: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: expected {}", self.offset, self.expected)
    }
}

/// Parses one filter expression.
pub fn parse(filter: &str) -> Result<Expr, ParseError> {
    let _ = filter;
    Err(ParseError {
        offset: 0,
        expected: "an expression",
    })
}
