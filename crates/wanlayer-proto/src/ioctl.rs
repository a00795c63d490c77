//! The IOCTL codes of `\\.\WanLayer`: `CTL_CODE(FILE_DEVICE_NETWORK, function, METHOD_BUFFERED,
//! access)`. Queries need read access; anything that changes the driver's state or injects
//! traffic needs write access. The I/O manager checks the handle's access against the code's
//! access bits before the driver sees the request; the dispatcher checks it again.

use core::fmt;

use crate::field::enum_with_unknown;

/// `FILE_DEVICE_NETWORK`: the device type of NDIS control devices.
pub const FILE_DEVICE_NETWORK: u32 = 0x12;
/// `METHOD_BUFFERED`: input and output travel through one system buffer.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_READ_ACCESS`.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS`.
pub const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

const fn code(function: u32, access: u32) -> u32 {
    ctl_code(FILE_DEVICE_NETWORK, function, METHOD_BUFFERED, access)
}

/// The access a handle was granted (or a code requires): `FILE_READ_ACCESS` and
/// `FILE_WRITE_ACCESS` bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Access(u32);

impl Access {
    /// No access.
    pub const NONE: Access = Access(0);
    /// Read access (`FILE_READ_DATA`, part of `GENERIC_READ`).
    pub const READ: Access = Access(FILE_READ_ACCESS);
    /// Write access (`FILE_WRITE_DATA`, part of `GENERIC_WRITE`).
    pub const WRITE: Access = Access(FILE_WRITE_ACCESS);
    /// Both.
    pub const READ_WRITE: Access = Access(FILE_READ_ACCESS | FILE_WRITE_ACCESS);

    /// The access bits of an IOCTL code (bits 14..16).
    pub const fn of_code(code: u32) -> Access {
        Access((code >> 14) & 3)
    }
    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Access from raw bits; bits other than read and write are dropped.
    pub const fn from_bits_truncate(bits: u32) -> Access {
        Access(bits & 3)
    }
    /// True when `self` grants everything `required` asks for.
    pub const fn allows(self, required: Access) -> bool {
        self.0 & required.0 == required.0
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            0 => "none",
            1 => "read",
            2 => "write",
            _ => "read+write",
        })
    }
}

/// `IOCTL_WANLAYER_QUERY_VERSION` (`0x00126000`): no input; a [`VersionInfo`](crate::VersionInfo).
pub const IOCTL_QUERY_VERSION: u32 = code(0x800, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_LIST_MODULES`: a header-only request; a [`ModuleList`](crate::ModuleList).
pub const IOCTL_LIST_MODULES: u32 = code(0x801, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_LIST_LINKS`: a [`LinkQuery`](crate::LinkQuery); a
/// [`LinkList`](crate::LinkList).
pub const IOCTL_LIST_LINKS: u32 = code(0x802, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_LIST_HOOKS`: a header-only request; a [`HookList`](crate::HookList).
pub const IOCTL_LIST_HOOKS: u32 = code(0x803, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_QUERY_STATS`: a [`ScopeRequest`](crate::ScopeRequest) naming a module, link
/// or hook; a [`ModuleStats`](crate::ModuleStats), [`LinkStats`](crate::LinkStats) or
/// [`HookStats`](crate::HookStats).
pub const IOCTL_QUERY_STATS: u32 = code(0x804, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_RESET_STATS`: a [`ScopeRequest`](crate::ScopeRequest); no output.
pub const IOCTL_RESET_STATS: u32 = code(0x805, FILE_WRITE_ACCESS);
/// `IOCTL_WANLAYER_SUBSCRIBE_EVENTS`: a [`Subscribe`](crate::Subscribe); a
/// [`Subscription`](crate::Subscription).
pub const IOCTL_SUBSCRIBE_EVENTS: u32 = code(0x806, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_READ_EVENTS`: a [`ReadRequest`](crate::ReadRequest); an
/// [`EventBatch`](crate::EventBatch). Pends (the inverted call) when nothing is queued and the
/// request asks to wait.
pub const IOCTL_READ_EVENTS: u32 = code(0x807, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_UNSUBSCRIBE_EVENTS`: a header-only request; no output.
pub const IOCTL_UNSUBSCRIBE_EVENTS: u32 = code(0x808, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_CAPTURE_START`: a [`CaptureStart`](crate::CaptureStart); a
/// [`CaptureSession`](crate::CaptureSession).
pub const IOCTL_CAPTURE_START: u32 = code(0x809, FILE_WRITE_ACCESS);
/// `IOCTL_WANLAYER_CAPTURE_READ`: a [`ReadRequest`](crate::ReadRequest); a
/// [`CaptureBatch`](crate::CaptureBatch).
pub const IOCTL_CAPTURE_READ: u32 = code(0x80A, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_CAPTURE_STOP`: a header-only request; no output.
pub const IOCTL_CAPTURE_STOP: u32 = code(0x80B, FILE_WRITE_ACCESS);
/// `IOCTL_WANLAYER_INJECT`: an [`Inject`](crate::Inject); no output.
pub const IOCTL_INJECT: u32 = code(0x80C, FILE_WRITE_ACCESS);
/// `IOCTL_WANLAYER_SET_RULES`: a [`RulesSet`](crate::RulesSet) with the compiled rule set; a
/// [`RulesVersion`](crate::RulesVersion). Replaces the whole set at once.
pub const IOCTL_SET_RULES: u32 = code(0x80D, FILE_WRITE_ACCESS);
/// `IOCTL_WANLAYER_GET_RULES`: a header-only request; a [`RulesInfo`](crate::RulesInfo).
pub const IOCTL_GET_RULES: u32 = code(0x80E, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_RULE_STATS`: a [`RuleStatsQuery`](crate::RuleStatsQuery); a
/// [`RuleStatsList`](crate::RuleStatsList).
pub const IOCTL_RULE_STATS: u32 = code(0x80F, FILE_READ_ACCESS);
/// `IOCTL_WANLAYER_DIVERT_OPEN`: a [`DivertOpen`](crate::DivertOpen) with the compiled filter;
/// a [`DivertInfo`](crate::DivertInfo). The handle becomes a user-mode hook.
pub const IOCTL_DIVERT_OPEN: u32 = code(0x810, FILE_WRITE_ACCESS);
/// `IOCTL_WANLAYER_DIVERT_READ`: a [`ReadRequest`](crate::ReadRequest); a
/// [`DivertBatch`](crate::DivertBatch). Pends (the inverted call) when nothing is queued and the
/// request asks to wait.
pub const IOCTL_DIVERT_READ: u32 = code(0x811, FILE_WRITE_ACCESS);
/// `IOCTL_WANLAYER_DIVERT_VERDICTS`: a [`DivertVerdicts`](crate::DivertVerdicts); a
/// [`DivertResult`](crate::DivertResult).
pub const IOCTL_DIVERT_VERDICTS: u32 = code(0x812, FILE_WRITE_ACCESS);
/// `IOCTL_WANLAYER_DIVERT_CLOSE`: a header-only request; no output. Every held packet gets the
/// fail policy and the hook leaves the chain (as closing the handle does).
pub const IOCTL_DIVERT_CLOSE: u32 = code(0x813, FILE_WRITE_ACCESS);

enum_with_unknown! {
    /// Every IOCTL code of the control device, by name. A shipped code is never renamed or reused.
    pub enum Ioctl(u32) {
        /// [`IOCTL_QUERY_VERSION`].
        QueryVersion = 0x0012_6000,
        /// [`IOCTL_LIST_MODULES`].
        ListModules = 0x0012_6004,
        /// [`IOCTL_LIST_LINKS`].
        ListLinks = 0x0012_6008,
        /// [`IOCTL_LIST_HOOKS`].
        ListHooks = 0x0012_600C,
        /// [`IOCTL_QUERY_STATS`].
        QueryStats = 0x0012_6010,
        /// [`IOCTL_RESET_STATS`].
        ResetStats = 0x0012_A014,
        /// [`IOCTL_SUBSCRIBE_EVENTS`].
        SubscribeEvents = 0x0012_6018,
        /// [`IOCTL_READ_EVENTS`].
        ReadEvents = 0x0012_601C,
        /// [`IOCTL_UNSUBSCRIBE_EVENTS`].
        UnsubscribeEvents = 0x0012_6020,
        /// [`IOCTL_CAPTURE_START`].
        CaptureStart = 0x0012_A024,
        /// [`IOCTL_CAPTURE_READ`].
        CaptureRead = 0x0012_6028,
        /// [`IOCTL_CAPTURE_STOP`].
        CaptureStop = 0x0012_A02C,
        /// [`IOCTL_INJECT`].
        Inject = 0x0012_A030,
        /// [`IOCTL_SET_RULES`].
        SetRules = 0x0012_A034,
        /// [`IOCTL_GET_RULES`].
        GetRules = 0x0012_6038,
        /// [`IOCTL_RULE_STATS`].
        RuleStats = 0x0012_603C,
        /// [`IOCTL_DIVERT_OPEN`].
        DivertOpen = 0x0012_A040,
        /// [`IOCTL_DIVERT_READ`].
        DivertRead = 0x0012_A044,
        /// [`IOCTL_DIVERT_VERDICTS`].
        DivertVerdicts = 0x0012_A048,
        /// [`IOCTL_DIVERT_CLOSE`].
        DivertClose = 0x0012_A04C,
    }
}

impl Ioctl {
    /// Every known code, in function order.
    pub const ALL: [Ioctl; 20] = [
        Ioctl::QueryVersion,
        Ioctl::ListModules,
        Ioctl::ListLinks,
        Ioctl::ListHooks,
        Ioctl::QueryStats,
        Ioctl::ResetStats,
        Ioctl::SubscribeEvents,
        Ioctl::ReadEvents,
        Ioctl::UnsubscribeEvents,
        Ioctl::CaptureStart,
        Ioctl::CaptureRead,
        Ioctl::CaptureStop,
        Ioctl::Inject,
        Ioctl::SetRules,
        Ioctl::GetRules,
        Ioctl::RuleStats,
        Ioctl::DivertOpen,
        Ioctl::DivertRead,
        Ioctl::DivertVerdicts,
        Ioctl::DivertClose,
    ];

    /// The access a handle needs for this code (from the code's access bits).
    pub fn required_access(self) -> Access {
        Access::of_code(u32::from(self))
    }

    /// The name of the code, as C headers would spell it.
    pub fn name(self) -> &'static str {
        match self {
            Ioctl::QueryVersion => "IOCTL_WANLAYER_QUERY_VERSION",
            Ioctl::ListModules => "IOCTL_WANLAYER_LIST_MODULES",
            Ioctl::ListLinks => "IOCTL_WANLAYER_LIST_LINKS",
            Ioctl::ListHooks => "IOCTL_WANLAYER_LIST_HOOKS",
            Ioctl::QueryStats => "IOCTL_WANLAYER_QUERY_STATS",
            Ioctl::ResetStats => "IOCTL_WANLAYER_RESET_STATS",
            Ioctl::SubscribeEvents => "IOCTL_WANLAYER_SUBSCRIBE_EVENTS",
            Ioctl::ReadEvents => "IOCTL_WANLAYER_READ_EVENTS",
            Ioctl::UnsubscribeEvents => "IOCTL_WANLAYER_UNSUBSCRIBE_EVENTS",
            Ioctl::CaptureStart => "IOCTL_WANLAYER_CAPTURE_START",
            Ioctl::CaptureRead => "IOCTL_WANLAYER_CAPTURE_READ",
            Ioctl::CaptureStop => "IOCTL_WANLAYER_CAPTURE_STOP",
            Ioctl::Inject => "IOCTL_WANLAYER_INJECT",
            Ioctl::SetRules => "IOCTL_WANLAYER_SET_RULES",
            Ioctl::GetRules => "IOCTL_WANLAYER_GET_RULES",
            Ioctl::RuleStats => "IOCTL_WANLAYER_RULE_STATS",
            Ioctl::DivertOpen => "IOCTL_WANLAYER_DIVERT_OPEN",
            Ioctl::DivertRead => "IOCTL_WANLAYER_DIVERT_READ",
            Ioctl::DivertVerdicts => "IOCTL_WANLAYER_DIVERT_VERDICTS",
            Ioctl::DivertClose => "IOCTL_WANLAYER_DIVERT_CLOSE",
            Ioctl::Unknown(_) => "unknown IOCTL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_ctl_codes_with_the_access_their_kind_needs() {
        assert_eq!(IOCTL_QUERY_VERSION, 0x0012_6000, "the driver's version query code is kept");
        let codes = [
            IOCTL_QUERY_VERSION,
            IOCTL_LIST_MODULES,
            IOCTL_LIST_LINKS,
            IOCTL_LIST_HOOKS,
            IOCTL_QUERY_STATS,
            IOCTL_RESET_STATS,
            IOCTL_SUBSCRIBE_EVENTS,
            IOCTL_READ_EVENTS,
            IOCTL_UNSUBSCRIBE_EVENTS,
            IOCTL_CAPTURE_START,
            IOCTL_CAPTURE_READ,
            IOCTL_CAPTURE_STOP,
            IOCTL_INJECT,
            IOCTL_SET_RULES,
            IOCTL_GET_RULES,
            IOCTL_RULE_STATS,
            IOCTL_DIVERT_OPEN,
            IOCTL_DIVERT_READ,
            IOCTL_DIVERT_VERDICTS,
            IOCTL_DIVERT_CLOSE,
        ];
        for (ioctl, raw) in Ioctl::ALL.into_iter().zip(codes) {
            assert_eq!(u32::from(ioctl), raw, "{}", ioctl.name());
            assert_eq!(Ioctl::from(raw), ioctl);
            assert_eq!(raw >> 16, FILE_DEVICE_NETWORK);
            assert_eq!(raw & 3, METHOD_BUFFERED);
        }
        let writers = [
            Ioctl::ResetStats,
            Ioctl::CaptureStart,
            Ioctl::CaptureStop,
            Ioctl::Inject,
            Ioctl::SetRules,
            Ioctl::DivertOpen,
            Ioctl::DivertRead,
            Ioctl::DivertVerdicts,
            Ioctl::DivertClose,
        ];
        for ioctl in Ioctl::ALL {
            let expected = if writers.contains(&ioctl) { Access::WRITE } else { Access::READ };
            assert_eq!(ioctl.required_access(), expected, "{}", ioctl.name());
        }
        assert_eq!(Ioctl::from(0x0012_6050), Ioctl::Unknown(0x0012_6050));
        assert!(!Ioctl::from(0x0012_6050).is_known());
    }

    #[test]
    fn access_checks_need_every_required_bit() {
        assert!(Access::READ_WRITE.allows(Access::WRITE));
        assert!(!Access::READ.allows(Access::WRITE));
        assert!(Access::READ.allows(Access::NONE));
        assert_eq!(Access::from_bits_truncate(0xFF), Access::READ_WRITE);
        assert_eq!(format!("{} {} {}", Access::NONE, Access::READ, Access::READ_WRITE), "none read read+write");
    }
}
