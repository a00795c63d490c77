//! A validated rule set and its classifier.

use crate::packet::{Match, PacketView, RuleInfo};
use alloc::vec::Vec;
use core::fmt;

/// A validated rule set, owning a fallibly allocated copy of its blob.
#[derive(Debug)]
pub struct RuleSet {
    blob: Vec<u8>,
}

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The blob is shorter than its header.
    Truncated,
    /// No memory for the copy.
    OutOfMemory,
}

impl LoadError {
    /// A stable number tools can show.
    pub fn code(&self) -> u32 {
        match self {
            LoadError::Truncated => 1,
            LoadError::OutOfMemory => 2,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Truncated => f.write_str("the rule set is truncated"),
            LoadError::OutOfMemory => f.write_str("no memory for the rule set"),
        }
    }
}

impl RuleSet {
    /// No rules; never allocates.
    pub const fn empty() -> RuleSet {
        RuleSet { blob: Vec::new() }
    }

    /// Copies `blob` (fallibly) and validates it completely.
    pub fn load(blob: &[u8]) -> Result<RuleSet, LoadError> {
        let _ = blob;
        Err(LoadError::Truncated)
    }

    /// How many rules the set holds.
    pub fn len(&self) -> usize {
        0
    }

    /// Whether the set holds no rule.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rule at `index` (in blob order).
    pub fn rule(&self, index: usize) -> Option<RuleInfo<'_>> {
        let _ = index;
        None
    }

    /// The exact validated bytes.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The matching rule with the lowest `priority` value (ties: the lower index), or None.
    pub fn classify(&self, packet: &PacketView<'_>) -> Option<Match> {
        let _ = packet;
        None
    }
}

impl Default for RuleSet {
    fn default() -> RuleSet {
        RuleSet::empty()
    }
}
