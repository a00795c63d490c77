//! The request of `IOCTL_WANLAYER_QUERY_STATS` and `IOCTL_WANLAYER_RESET_STATS`: what to read or
//! zero.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header |
//! | 8 | 2 | [`Scope`] |
//! | 10 | 2 | reserved, zero |
//! | 12 | 4 | reserved, zero |
//! | 16 | 8 | target: module id, link id or hook id; zero for [`Scope::All`] |
//!
//! The statistics answers start with the same 24 bytes, the request's scope and target echoed.

use crate::codes::{split_hook_id, Scope};
use crate::field::view;
use crate::header;
use crate::{Error, Result};

view! {
    /// A request naming a scope (and the answers' common prefix).
    pub struct ScopeRequest, LEN = 24; {
        /// The scope.
        scope / set_scope @ 8: u16,
        /// Reserved, zero.
        reserved_a / set_reserved_a @ 10: u16,
        /// Reserved, zero.
        reserved_b / set_reserved_b @ 12: u32,
        /// The target's identity.
        target / set_target @ 16: u64,
    }
}

/// What a request applies to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// Everything.
    All,
    /// One module.
    Module(u32),
    /// One link.
    Link(u64),
    /// One hook (its on-wire identity).
    Hook(u64),
    /// What one rule of the rule set captures (its id); `CAPTURE_START` only.
    Rule(u32),
}

impl Target {
    /// Reads a scope and a target.
    ///
    /// # Errors
    /// [`Error::BadValue`] for an unknown scope, a nonzero target of [`Scope::All`], a zero
    /// target otherwise (but a rule's, which may be zero), a module id or rule id over 32 bits or
    /// a malformed hook id.
    pub fn from_wire(scope: u16, target: u64) -> Result<Self> {
        let parsed = match Scope::from(scope) {
            Scope::All if target == 0 => Target::All,
            Scope::Module if target != 0 => Target::Module(u32::try_from(target).map_err(|_| Error::BadValue)?),
            Scope::Link if target != 0 => Target::Link(target),
            Scope::Hook if target != 0 && split_hook_id(target).is_some() => Target::Hook(target),
            Scope::Rule => Target::Rule(u32::try_from(target).map_err(|_| Error::BadValue)?),
            _ => return Err(Error::BadValue),
        };
        Ok(parsed)
    }

    /// The scope and target as written.
    pub fn to_wire(self) -> (Scope, u64) {
        match self {
            Target::All => (Scope::All, 0),
            Target::Module(id) => (Scope::Module, u64::from(id)),
            Target::Link(id) => (Scope::Link, id),
            Target::Hook(id) => (Scope::Hook, id),
            Target::Rule(id) => (Scope::Rule, u64::from(id)),
        }
    }
}

/// Checks the 24-byte prefix of a scope request or a statistics answer.
pub(crate) fn parse_prefix(bytes: &[u8]) -> Result<Target> {
    let view = ScopeRequest::new_checked(bytes)?;
    if view.reserved_a() != 0 || view.reserved_b() != 0 {
        return Err(Error::Reserved);
    }
    Target::from_wire(view.scope(), view.target())
}

/// Writes the 24-byte prefix (header included) of a message of `size` bytes.
pub(crate) fn emit_prefix(bytes: &mut [u8], size: usize, target: Target) -> Result<()> {
    header::emit(bytes, size)?;
    let (scope, id) = target.to_wire();
    let mut view = ScopeRequest::new_unchecked(bytes);
    view.set_scope(scope.into());
    view.set_reserved_a(0);
    view.set_reserved_b(0);
    view.set_target(id);
    Ok(())
}

/// The parsed request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ScopeRequestRepr {
    /// What it applies to.
    pub target: Target,
}

impl ScopeRequestRepr {
    /// Parses a request that fills the buffer exactly.
    ///
    /// # Errors
    /// As the header's checks, [`Error::Reserved`], and [`Target::from_wire`]'s;
    /// [`Error::BadValue`] for a rule scope (per-rule statistics have their own request).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &ScopeRequest<&T>) -> Result<Self> {
        header::check(view.as_bytes(), ScopeRequest::<&[u8]>::LEN, true)?;
        match parse_prefix(view.as_bytes())? {
            Target::Rule(_) => Err(Error::BadValue),
            target => Ok(Self { target }),
        }
    }

    /// Bytes of the request.
    pub const fn buffer_len(&self) -> usize {
        24
    }

    /// Writes the request.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 24 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut ScopeRequest<&mut T>) -> Result<()> {
        emit_prefix(view.as_bytes_mut(), self.buffer_len(), self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_refused, assert_reserved, assert_strict};

    fn parse(bytes: &[u8]) -> Result<ScopeRequestRepr> {
        ScopeRequestRepr::parse(&ScopeRequest::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_every_target_and_refuses_bad_ones() {
        for target in [Target::All, Target::Module(0x0001_0002), Target::Link(9), Target::Hook(crate::hook_id(2, 5))] {
            let mut buffer = [0xa5u8; 24];
            ScopeRequestRepr { target }.emit(&mut ScopeRequest::new_unchecked(&mut buffer[..])).unwrap();
            assert_eq!(parse(&buffer), Ok(ScopeRequestRepr { target }));
            assert_strict(&buffer, parse);
            assert_reserved(&buffer, &[10..16], parse);
        }
        let mut buffer = [0u8; 24];
        ScopeRequestRepr { target: Target::Link(9) }.emit(&mut ScopeRequest::new_unchecked(&mut buffer[..])).unwrap();
        assert_refused(&buffer, 8, &7u16.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 16, &0u64.to_le_bytes(), Error::BadValue, parse);
        assert_refused(&buffer, 8, &0u16.to_le_bytes(), Error::BadValue, parse);
        let mut wide = buffer;
        wide[8] = 1;
        assert_refused(&wide, 16, &(1u64 << 40).to_le_bytes(), Error::BadValue, parse);
        let mut hook = buffer;
        hook[8] = 3;
        assert_refused(&hook, 16, &(1u64 << 50).to_le_bytes(), Error::BadValue, parse);
        let mut rule = buffer;
        rule[8] = 4;
        assert_refused(&rule, 16, &5u64.to_le_bytes(), Error::BadValue, parse);
        assert_eq!(Target::from_wire(4, 0), Ok(Target::Rule(0)));
        assert_eq!(Target::from_wire(4, 1 << 32), Err(Error::BadValue));
    }
}
