//! The administrator's rule set (`wanlayer-rules`) as a built-in hook.
//!
//! The set sits in the hook chain at the altitude the administrator chose, under the name
//! [`RULES_HOOK_NAME`], like any hook: sends meet it on their way down, receives on their way up,
//! and its verdicts are counted in its hook statistics. For each packet the engine reads the
//! first [`HEADER_BYTES`] of the frame onto the stack and asks the set which rule matches
//! (no allocation, bounded work); the rule's action decides:
//!
//! * `pass` and `count`: the packet goes on (both are counted per rule, as every match is);
//! * `drop`: the packet is dropped as a hook drop (drop reason `hook` on the module and the link;
//!   the rule's own counters say which rule);
//! * `capture`: the packet goes on, and a copy goes into every capture session started with the
//!   rule scope of that rule id (`CAPTURE_START` with [`Scope::Rule`](wanlayer_proto::Scope::Rule)),
//!   through the same capture rings as every other capture;
//! * `divert`: reserved for user-mode hooks; a set holding such a rule is refused at set time.
//!
//! The set sees what the hook chain sees: the sends and receives of live WAN links (a frame of no
//! link, or of a module that is not on an NdisWan edge, passes untouched, as it does every hook).
//!
//! # Replacement
//! A replacement validates the whole new set and allocates its counters first (charged to
//! [`Pool::Control`]); only then, under the rules lock, does it swap the new set for the old one.
//! The data path classifies a packet entirely under that same lock, so every packet meets the old
//! set or the new one, never a mix, and any failure (a malformed set, a `divert` rule, no memory,
//! a stale version) leaves the old set in force. Each set has a version (0: never set), so an
//! administrator replaces only the set they read. A packet that met the chain just before a
//! replacement that also moves the altitude may meet the new set at the old altitude.
//!
//! # Cost on the data path
//! One acquisition of the rules lock per packet while a set is installed (none while there is
//! none: the built-in hook leaves the chain), as the hook chain's registry is read under its lock
//! per packet. Safe Rust in a `no_std` crate without `unsafe` has no way to share a replaceable
//! set without a lock or a reference count, and `Arc` has no fallible constructor on stable Rust,
//! which kernel code needs. Per-rule counters are relaxed atomics in the set, one cache line
//! written per matched packet.
//!
//! The `device` term needs the link's DeviceName, which lives in the module's link table: for a
//! set whose rules name a device (found at set time from the rules' filter texts), the packet's
//! link is looked up under its module's lock and the set classifies under both locks (module
//! first, then rules: the one order these two locks are ever nested in). Sets without `device`
//! terms never take the module lock here.
//!
//! # Persistence
//! After each successful replacement the set and its altitude are written through the platform's
//! [`RuleStore`](crate::hal::RuleStore); at start [`Engine::load_saved_rules`] puts the saved set back in force. A saved
//! set the validator refuses is logged, reported as a [`Event::RulesRefused`] event, and the engine
//! runs with no rules.

use alloc::vec::Vec;
use core::fmt;
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, Ordering};

use wanlayer_proto::{Expected, Status};
use wanlayer_rules::{Action, LoadError, PacketView, RuleSet, HEADER_BYTES};

use crate::engine::Engine;
use crate::event::Event;
use crate::hal::{Hal, Level, Lock, Locking, Memory, Pool};
use crate::hook::{Direction, HookId, HookName, PacketContext, Verdict};
use crate::stats::Counter;

/// The name the rule set carries in the hook chain.
pub const RULES_HOOK_NAME: &str = "rules";

/// Why a rule set was not put in force. The set in force stays in force.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplaceError {
    /// The set in force is not the version the caller named.
    Conflict {
        /// The version in force.
        current: u64,
    },
    /// Another replacement is in progress.
    Busy,
    /// The compiled set failed validation.
    Invalid(LoadError),
    /// A rule has the reserved `divert` action.
    DivertReserved {
        /// The rule's id.
        id: u32,
    },
    /// No memory for the set or its counters.
    OutOfMemory,
    /// Every hook slot is in use, so the set cannot join the chain.
    NoHookSlot,
}

impl ReplaceError {
    /// The status a `SET_RULES` request completes with.
    pub fn status(self) -> Status {
        match self {
            ReplaceError::Conflict { .. } | ReplaceError::Busy => Status::TransactionalConflict,
            ReplaceError::OutOfMemory | ReplaceError::NoHookSlot => Status::InsufficientResources,
            ReplaceError::Invalid(_) => Status::InvalidParameter,
            ReplaceError::DivertReserved { .. } => Status::NotSupported,
        }
    }
}

impl fmt::Display for ReplaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplaceError::Conflict { current } => write!(f, "the rule set in force is version {current}"),
            ReplaceError::Busy => f.write_str("another rule set replacement is in progress"),
            ReplaceError::Invalid(error) => write!(f, "the rule set is invalid (error {}): {error}", error.code()),
            ReplaceError::DivertReserved { id } => write!(f, "rule {id}: divert is reserved for user-mode hooks"),
            ReplaceError::OutOfMemory => f.write_str("no memory for the rule set"),
            ReplaceError::NoHookSlot => f.write_str("every hook slot is in use"),
        }
    }
}

/// What happened to the saved set at start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SavedRules {
    /// Nothing was saved (or an empty set): no rules.
    None,
    /// The saved set is in force.
    Loaded {
        /// Its version.
        version: u64,
        /// Rules in it.
        rules: usize,
    },
    /// The saved set was refused; the engine runs with no rules.
    Refused(ReplaceError),
    /// The store could not be read; the engine runs with no rules.
    Unreadable(crate::hal::StoreError),
}

/// One rule's counters, as a plain copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RuleCounts {
    /// The rule's id.
    pub id: u32,
    /// Its action.
    pub action: Action,
    /// Sends matched: packets, bytes.
    pub send: (u64, u64),
    /// Receives matched: packets, bytes.
    pub receive: (u64, u64),
}

/// The set in force, as tools see it (borrowed under the rules lock).
#[derive(Clone, Copy, Debug)]
pub struct RulesView<'a> {
    /// Its version (0: never set).
    pub version: u64,
    /// Its altitude.
    pub altitude: u32,
    /// The set.
    pub set: &'a RuleSet,
}

/// Matched packets and bytes of one rule, by direction: relaxed atomics.
#[derive(Debug, Default)]
struct RuleCounters {
    send_packets: Counter,
    send_bytes: Counter,
    receive_packets: Counter,
    receive_bytes: Counter,
}

impl RuleCounters {
    fn count(&self, direction: Direction, bytes: usize) {
        let (packets, total) = match direction {
            Direction::Send => (&self.send_packets, &self.send_bytes),
            Direction::Receive => (&self.receive_packets, &self.receive_bytes),
        };
        packets.increment();
        total.add(bytes as u64);
    }

    fn reset(&self) {
        [&self.send_packets, &self.send_bytes, &self.receive_packets, &self.receive_bytes].into_iter().for_each(Counter::reset);
    }
}

/// A validated set with its counters.
struct Installed {
    set: RuleSet,
    counters: Vec<RuleCounters>,
    /// Some rule's filter names a device: the data path must look up the link's DeviceName.
    uses_device: bool,
}

/// True when `filter` holds the word `device` (in any case): a conservative test, since a
/// false positive only costs the device name lookup.
fn names_device(filter: &str) -> bool {
    filter.split(|c: char| !c.is_ascii_alphanumeric()).any(|word| word.eq_ignore_ascii_case("device"))
}

/// What the rules lock guards.
struct Current {
    installed: Option<Installed>,
    version: u64,
    altitude: u32,
    hook: Option<HookId>,
    charged: usize,
}

/// The engine's rule state.
pub(crate) struct RulesState<H: Locking> {
    current: H::Lock<Current>,
    replacing: AtomicBool,
}

impl<H: Locking> RulesState<H> {
    pub(crate) fn new(hal: &H) -> Self {
        Self {
            current: hal.new_lock(Current { installed: None, version: 0, altitude: 0, hook: None, charged: 0 }),
            replacing: AtomicBool::new(false),
        }
    }

    /// Releases the charge of the set in force (engine drop).
    pub(crate) fn release(&self, memory: &impl Memory) {
        let charged = self.current.with(|current| {
            current.installed = None;
            core::mem::take(&mut current.charged)
        });
        memory.release(Pool::Control, charged);
    }
}

/// Ends a replacement when dropped.
struct Replacing<'a>(&'a AtomicBool);

impl Drop for Replacing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn wire_direction(direction: Direction) -> wanlayer_rules::Direction {
    match direction {
        Direction::Send => wanlayer_rules::Direction::Send,
        Direction::Receive => wanlayer_rules::Direction::Receive,
    }
}

impl<H: Hal> Engine<H> {
    /// The rule set's verdict on a packet, and the capture rule to copy it for.
    pub(crate) fn rules_verdict(&self, packet: &PacketContext<'_>) -> (Verdict, Option<u32>) {
        let mut header = [0u8; HEADER_BYTES];
        let read = packet.read(0, &mut header);
        let direction = packet.direction();
        let len = packet.len();
        let link = packet.link();
        let view = PacketView {
            frame: header.get(..read).unwrap_or(&[]),
            frame_len: u32::try_from(len).unwrap_or(u32::MAX),
            direction: wire_direction(direction),
            link: link.id.0,
            device: &[],
        };
        // `Err(())`: the set needs the link's device name, which `device` does not hold yet.
        let classify = |device: Option<&[u16]>| {
            self.rules.current.with(|current| {
                let Some(installed) = current.installed.as_ref() else { return Ok(None) };
                if installed.uses_device && device.is_none() {
                    return Err(());
                }
                let matched = installed.set.classify(&PacketView { device: device.unwrap_or(&[]), ..view });
                if let Some(counters) = matched.and_then(|matched| installed.counters.get(matched.index)) {
                    counters.count(direction, len);
                }
                Ok(matched)
            })
        };
        let matched = classify(None).unwrap_or_else(|()| {
            self.with_link(link.module, &link.remote_address, |found| classify(Some(found.device_name_utf16())))
                .unwrap_or_else(|| classify(Some(&[])))
                .unwrap_or(None)
        });
        match matched.map(|matched| (matched.action, matched.id)) {
            Some((Action::Drop, _)) => (Verdict::Drop, None),
            Some((Action::Capture, id)) => (Verdict::Pass, Some(id)),
            Some((Action::Pass | Action::Count | Action::Divert, _)) | None => (Verdict::Pass, None),
        }
    }

    /// Validates `blob` and allocates its counters, charging [`Pool::Control`]; returns the set
    /// and the bytes charged.
    fn prepare_rules(&self, blob: &[u8]) -> Result<(Installed, usize), ReplaceError> {
        self.hal.try_charge(Pool::Control, blob.len()).map_err(|_| ReplaceError::OutOfMemory)?;
        let set = match RuleSet::load(blob) {
            Ok(set) => set,
            Err(error) => {
                self.hal.release(Pool::Control, blob.len());
                // A load that ran out of memory says nothing about the blob: it is reported (and
                // logged) as no memory, not as an invalid set.
                return Err(match error {
                    LoadError::OutOfMemory => ReplaceError::OutOfMemory,
                    invalid => ReplaceError::Invalid(invalid),
                });
            }
        };
        let divert = (0..set.len()).filter_map(|index| set.rule(index)).find(|rule| rule.action == Action::Divert);
        if let Some(rule) = divert {
            self.hal.release(Pool::Control, blob.len());
            return Err(ReplaceError::DivertReserved { id: rule.id });
        }
        let counters_bytes = set.len().saturating_mul(size_of::<RuleCounters>());
        if self.hal.try_charge(Pool::Control, counters_bytes).is_err() {
            self.hal.release(Pool::Control, blob.len());
            return Err(ReplaceError::OutOfMemory);
        }
        let mut counters = Vec::new();
        if counters.try_reserve_exact(set.len()).is_err() {
            self.hal.release(Pool::Control, blob.len() + counters_bytes);
            return Err(ReplaceError::OutOfMemory);
        }
        if crate::memory::fill_within_capacity(&mut counters, set.len(), RuleCounters::default).is_err() {
            self.hal.release(Pool::Control, blob.len() + counters_bytes);
            return Err(ReplaceError::OutOfMemory);
        }
        let uses_device = (0..set.len()).filter_map(|index| set.rule(index)).any(|rule| names_device(rule.filter));
        Ok((Installed { set, counters, uses_device }, blob.len() + counters_bytes))
    }

    /// Replaces the whole rule set with the compiled set `blob` (empty: no rules), to run at
    /// `altitude`, if the set in force is the one `expected` names. Returns the new version.
    /// Saves the new set through the platform's [`RuleStore`](crate::hal::RuleStore) (a failure to save is logged; the
    /// set stays in force).
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL` (a set leaving the chain waits for calls in progress; the store writes
    /// the registry).
    ///
    /// # Errors
    /// [`ReplaceError`]; the set in force stays in force.
    pub fn replace_rules(&self, expected: Expected, altitude: u32, blob: &[u8]) -> Result<u64, ReplaceError> {
        let version = self.swap_rules(expected, altitude, blob)?;
        if let Err(error) = self.hal.save_rules(altitude, blob) {
            self.hal.log(Level::Warning, format_args!("rule set version {version} is in force but was not saved: {error}"));
        }
        Ok(version)
    }

    fn swap_rules(&self, expected: Expected, altitude: u32, blob: &[u8]) -> Result<u64, ReplaceError> {
        if self.rules.replacing.swap(true, Ordering::Acquire) {
            return Err(ReplaceError::Busy);
        }
        let _replacing = Replacing(&self.rules.replacing);
        let current_version = self.rules.current.with(|current| current.version);
        if let Expected::Version(wanted) = expected {
            if wanted != current_version {
                return Err(ReplaceError::Conflict { current: current_version });
            }
        }
        let prepared = if blob.is_empty() { None } else { Some(self.prepare_rules(blob)?) };
        let rules = prepared.as_ref().map_or(0, |(installed, _)| installed.set.len());
        let (installed, charged) = match prepared {
            Some((installed, charged)) => (Some(installed), charged),
            None => (None, 0),
        };
        let joining = installed.is_some();
        let (old, old_charged, hook, old_altitude, version) = self.rules.current.with(|current| {
            let old = core::mem::replace(&mut current.installed, installed);
            let old_charged = core::mem::replace(&mut current.charged, charged);
            let old_altitude = core::mem::replace(&mut current.altitude, altitude);
            current.version = current.version.saturating_add(1);
            (old, old_charged, current.hook, old_altitude, current.version)
        });
        drop(old);
        self.hal.release(Pool::Control, old_charged);
        match (hook, joining) {
            (Some(id), true) => {
                self.hooks.with(|registry| registry.move_to(id, altitude));
            }
            (Some(id), false) => {
                self.rules.current.with(|current| current.hook = None);
                // The entry is registered (only replacements, serialised here, remove it).
                let _ = self.remove_hook(id);
            }
            (None, true) => {
                if let Err(error) = self.add_rules_hook(altitude) {
                    let undone = self.rules.current.with(|current| {
                        current.version = current_version;
                        current.altitude = old_altitude;
                        (current.installed.take(), core::mem::take(&mut current.charged))
                    });
                    drop(undone.0);
                    self.hal.release(Pool::Control, undone.1);
                    return Err(error);
                }
            }
            (None, false) => {}
        }
        self.hal.log(Level::Info, format_args!("rule set version {version}: {rules} rules at altitude {altitude}"));
        self.push_event(Event::RulesReplaced { version, altitude, rules: u32::try_from(rules).unwrap_or(u32::MAX) });
        Ok(version)
    }

    /// Puts the rule set into the hook chain.
    fn add_rules_hook(&self, altitude: u32) -> Result<(), ReplaceError> {
        let id = self.hooks.with(|registry| registry.add(RULES_HOOK_NAME, altitude, None)).map_err(|_| ReplaceError::NoHookSlot)?;
        self.hook_slots[usize::from(id.slot)].reset();
        self.rules.current.with(|current| current.hook = Some(id));
        self.hal.log(Level::Info, format_args!("{id} '{RULES_HOOK_NAME}' added at altitude {altitude}"));
        self.push_event(Event::HookAdded { id, name: HookName::new(RULES_HOOK_NAME), altitude });
        Ok(())
    }

    /// Puts the saved rule set back in force (driver entry, after [`Engine::new`]). A saved set
    /// the validator refuses is logged and reported as [`Event::RulesRefused`]; the engine then
    /// runs with no rules. Never fails the start.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    pub fn load_saved_rules(&self) -> SavedRules {
        let mut outcome = SavedRules::None;
        let read = self.hal.load_rules(&mut |altitude, blob| {
            if blob.is_empty() {
                return;
            }
            outcome = match self.swap_rules(Expected::Any, altitude, blob) {
                Ok(version) => {
                    SavedRules::Loaded { version, rules: self.rules.current.with(|c| c.installed.as_ref().map_or(0, |i| i.set.len())) }
                }
                Err(error) => {
                    self.hal.log(Level::Error, format_args!("the saved rule set was refused, starting with no rules: {error}"));
                    let code = match error {
                        ReplaceError::Invalid(load) => load.code(),
                        _ => 0,
                    };
                    let blob_len = u32::try_from(blob.len()).unwrap_or(u32::MAX);
                    self.push_event(Event::RulesRefused { error: code, altitude, blob_len });
                    SavedRules::Refused(error)
                }
            };
        });
        if let Err(error) = read {
            self.hal.log(Level::Error, format_args!("the saved rule set could not be read, starting with no rules: {error}"));
            return SavedRules::Unreadable(error);
        }
        outcome
    }

    /// Reads the set in force under the rules lock (no rules: an empty set). `read` must not
    /// call out of the filter or block.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn with_rules<R>(&self, read: impl FnOnce(RulesView<'_>) -> R) -> R {
        let none = RuleSet::empty();
        self.rules.current.with(|current| {
            let set = current.installed.as_ref().map_or(&none, |installed| &installed.set);
            read(RulesView { version: current.version, altitude: current.altitude, set })
        })
    }

    /// Visits the counters of the rules from index `first` on, in set order, under the rules
    /// lock, until `visit` returns false; returns the set's version and its number of rules.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn visit_rule_counts(&self, first: usize, mut visit: impl FnMut(RuleCounts) -> bool) -> (u64, usize) {
        self.rules.current.with(|current| {
            let Some(installed) = current.installed.as_ref() else { return (current.version, 0) };
            for (index, counters) in installed.counters.iter().enumerate().skip(first) {
                let Some(rule) = installed.set.rule(index) else { break };
                let counts = RuleCounts {
                    id: rule.id,
                    action: rule.action,
                    send: (counters.send_packets.get(), counters.send_bytes.get()),
                    receive: (counters.receive_packets.get(), counters.receive_bytes.get()),
                };
                if !visit(counts) {
                    break;
                }
            }
            (current.version, installed.set.len())
        })
    }

    /// Zeroes every rule's counters.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn reset_rule_counters(&self) {
        self.rules.current.with(|current| {
            if let Some(installed) = &current.installed {
                installed.counters.iter().for_each(RuleCounters::reset);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::names_device;

    #[test]
    fn device_terms_are_found_by_word() {
        assert!(names_device("device \\DEVICE\\NDISWANIP and udp"));
        assert!(names_device("(DEVICE ppp*) or tcp"));
        assert!(!names_device("host 10.0.0.1 and tcp port 445"));
        assert!(!names_device("link 3 and devices"), "a longer word is not the term");
    }
}
