//! What the classifier sees of a packet, and what it answers.

/// How many leading frame bytes the classifier may read.
pub const HEADER_BYTES: usize = 160;

/// What a matching rule does (wire values are the discriminants).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Hand the packet on.
    Pass = 0,
    /// Drop the packet.
    Drop = 1,
    /// Count the packet and hand it on.
    Count = 2,
    /// Copy the packet into the capture ring and hand it on.
    Capture = 3,
    /// Reserved for user-mode hooks.
    Divert = 4,
}

impl Action {
    /// The action with wire value `value`, if there is one.
    pub const fn from_u8(value: u8) -> Option<Action> {
        match value {
            0 => Some(Action::Pass),
            1 => Some(Action::Drop),
            2 => Some(Action::Count),
            3 => Some(Action::Capture),
            4 => Some(Action::Divert),
            _ => None,
        }
    }
}

/// Which way a packet travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the IP layer down to NdisWan.
    Send,
    /// From NdisWan up to the IP layer.
    Receive,
}

/// What the classifier sees of a packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    /// The first bytes of the frame as NdisWan's edges carry it (14-byte Ethernet II header, then
    /// IPv4 or IPv6): up to [`HEADER_BYTES`], possibly fewer for a short frame.
    pub frame: &'a [u8],
    /// The whole frame's length in bytes (for `len` / `greater` / `less`).
    pub frame_len: u32,
    /// Which way the packet travels.
    pub direction: Direction,
    /// The WAN link's numeric id (`wanlayer_core::link::LinkId.0`); 0 when the packet belongs to
    /// no link.
    pub link: u64,
    /// The link's DeviceName (UTF-16 as NdisWan reported it), empty when unknown.
    pub device: &'a [u16],
}

/// One rule of a loaded set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInfo<'a> {
    /// The administrator's id for the rule.
    pub id: u32,
    /// Lower values are tried first.
    pub priority: u32,
    /// What the rule does.
    pub action: Action,
    /// The filter text the rule was compiled from.
    pub filter: &'a str,
}

/// The rule a packet matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    /// The rule's index in the set (blob order).
    pub index: usize,
    /// The rule's id.
    pub id: u32,
    /// The rule's action.
    pub action: Action,
}
