//! The small on-wire enums several messages share. Each keeps unknown values (`Unknown(n)`): a
//! request carrying one is refused, a response carrying one is shown as it is.

use crate::field::enum_with_unknown;

enum_with_unknown! {
    /// What a filter module is attached to.
    pub enum ModuleKind(u16) {
        /// NdisWan's IPv4 edge, "WAN Miniport (IP)".
        NdisWanIp = 1,
        /// NdisWan's IPv6 edge, "WAN Miniport (IPv6)".
        NdisWanIpv6 = 2,
        /// Any other adapter (traffic passes through).
        Other = 3,
    }
}

enum_with_unknown! {
    /// The state of a filter module.
    pub enum ModuleState(u16) {
        /// Being attached.
        Attaching = 1,
        /// Attached and quiet.
        Paused = 2,
        /// Restart in progress.
        Restarting = 3,
        /// Passing traffic.
        Running = 4,
        /// Pause in progress.
        Pausing = 5,
        /// Gone.
        Detached = 6,
    }
}

enum_with_unknown! {
    /// Which way a packet travels.
    pub enum Direction(u8) {
        /// From the IP layer down to NdisWan.
        Send = 1,
        /// From NdisWan up to the IP layer.
        Receive = 2,
    }
}

enum_with_unknown! {
    /// What a statistics query, a reset or a capture applies to.
    pub enum Scope(u16) {
        /// Everything (resets and captures only; the target is zero).
        All = 0,
        /// One filter module (target: the module id).
        Module = 1,
        /// One WAN link (target: the link id).
        Link = 2,
        /// One hook (target: the hook id, see [`hook_id`](crate::hook_id)).
        Hook = 3,
        /// The packets one rule of the rule set captures (captures only; the target is the rule
        /// id, at most 32 bits).
        Rule = 4,
    }
}

enum_with_unknown! {
    /// `NDIS_WAN_QUALITY` of a link.
    pub enum Quality(i32) {
        /// `NdisWanRaw`.
        Raw = 0,
        /// `NdisWanErrorControl`.
        ErrorControl = 1,
        /// `NdisWanReliable`.
        Reliable = 2,
    }
}

enum_with_unknown! {
    /// What an event is about.
    pub enum EventKind(u16) {
        /// A filter module attached to an adapter.
        ModuleAttached = 1,
        /// A filter module detached.
        ModuleDetached = 2,
        /// A filter module finished pausing.
        ModulePaused = 3,
        /// A filter module restarted.
        ModuleRestarted = 4,
        /// A WAN link came up.
        LineUp = 5,
        /// A live WAN link was updated by another line up.
        LineUpdated = 6,
        /// A WAN link went down.
        LineDown = 7,
        /// A hook was added to the chain.
        HookAdded = 8,
        /// A hook was removed from the chain.
        HookRemoved = 9,
        /// The rule set was replaced (through the control device, or loaded at start).
        RulesReplaced = 10,
        /// A saved rule set was refused at start: the filter runs with no rules.
        RulesRefused = 11,
    }
}

impl EventKind {
    /// Every known kind.
    pub const ALL: [EventKind; 11] = [
        EventKind::ModuleAttached,
        EventKind::ModuleDetached,
        EventKind::ModulePaused,
        EventKind::ModuleRestarted,
        EventKind::LineUp,
        EventKind::LineUpdated,
        EventKind::LineDown,
        EventKind::HookAdded,
        EventKind::HookRemoved,
        EventKind::RulesReplaced,
        EventKind::RulesRefused,
    ];

    /// The mask of every known kind.
    pub const ALL_MASK: u32 = (1 << EventKind::ALL.len()) - 1;

    /// The kind's bit in a subscription mask (`1 << (kind - 1)`); zero for an unknown kind.
    pub fn mask_bit(self) -> u32 {
        match u16::from(self) {
            kind @ 1..=32 if self.is_known() => 1 << (kind - 1),
            _ => 0,
        }
    }

    /// A short name for tools.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ModuleAttached => "module-attached",
            EventKind::ModuleDetached => "module-detached",
            EventKind::ModulePaused => "module-paused",
            EventKind::ModuleRestarted => "module-restarted",
            EventKind::LineUp => "line-up",
            EventKind::LineUpdated => "line-updated",
            EventKind::LineDown => "line-down",
            EventKind::HookAdded => "hook-added",
            EventKind::HookRemoved => "hook-removed",
            EventKind::RulesReplaced => "rules-replaced",
            EventKind::RulesRefused => "rules-refused",
            EventKind::Unknown(_) => "unknown",
        }
    }
}

/// The on-wire identity of a hook: `generation << 16 | slot`.
pub const fn hook_id(slot: u16, generation: u32) -> u64 {
    ((generation as u64) << 16) | slot as u64
}

/// The slot and generation of an on-wire hook identity, `None` when bits above 48 are set.
pub const fn split_hook_id(id: u64) -> Option<(u16, u32)> {
    if id >> 48 != 0 {
        return None;
    }
    Some((id as u16, (id >> 16) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_keep_unknown_values_and_masks_cover_every_kind() {
        assert_eq!(ModuleKind::from(7), ModuleKind::Unknown(7));
        assert_eq!(u16::from(ModuleKind::Unknown(7)), 7);
        assert_eq!(Quality::from(-1), Quality::Unknown(-1));
        assert_eq!(Direction::from(2), Direction::Receive);
        assert_eq!(Scope::from(0), Scope::All);
        let mask = EventKind::ALL.iter().fold(0, |mask, kind| mask | kind.mask_bit());
        assert_eq!(mask, EventKind::ALL_MASK);
        assert_eq!(EventKind::Unknown(12).mask_bit(), 0);
        assert_eq!(EventKind::LineDown.mask_bit(), 1 << 6);
        assert_eq!(split_hook_id(hook_id(3, 70_000)), Some((3, 70_000)));
        assert_eq!(split_hook_id(1 << 48), None);
    }
}
