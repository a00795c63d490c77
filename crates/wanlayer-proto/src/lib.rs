//! The wire formats of wanlayer's control device `\\.\WanLayer`: IOCTL codes, requests, answers
//! and completion statuses. Shared by the driver's dispatcher (`wanlayer_core::control`), the
//! simulator and the user-mode client, so the format lives in one place.
//!
//! # Conventions
//!
//! * Every code is `CTL_CODE(FILE_DEVICE_NETWORK, function, METHOD_BUFFERED, access)`: queries
//!   need read access, anything that changes the driver's state or injects needs write access.
//! * Every message is little-endian with explicit offsets (no `repr(C)` casts) and starts with the
//!   8-byte [`Header`] `{ size, version, reserved }`. A request is exactly `size` bytes; its
//!   version must be [`INTERFACE_VERSION`] (else `STATUS_REVISION_MISMATCH`); reserved fields and
//!   padding must be zero; counts must agree with what follows; variable records are multiples of
//!   8 bytes; enum values in requests must be known. Only the version answer is read from any
//!   version.
//! * No kernel pointer ever crosses: modules, links and hooks are named by ids, handles by the
//!   I/O manager.
//! * Each message is one file: a byte view `Name<T: AsRef<[u8]>>` with `new_unchecked`,
//!   `new_checked` and `check_len`, getters, and setters when `T: AsMut<[u8]>`; and a `NameRepr`
//!   with `parse`, `buffer_len` and `emit`. After `check_len` passes no accessor panics, and no
//!   `parse` panics whatever the bytes.
//! * Tools print and read identifiers, rates and addresses in the one format of [`display`]
//!   (modules and hooks `slot.generation`, links by number, rates in bit/s with SI prefixes); with
//!   the feature `serde`, the parsed answers serialise in the same format.
//!
//! # The IOCTLs
//!
//! | code | name | access | input | output |
//! | --- | --- | --- | --- | --- |
//! | `0x00126000` | `QUERY_VERSION` | read | empty | [`VersionInfo`] |
//! | `0x00126004` | `LIST_MODULES` | read | [`HeaderOnly`] | [`ModuleList`] + [`ModuleEntry`]s |
//! | `0x00126008` | `LIST_LINKS` | read | [`LinkQuery`] | [`LinkList`] + [`LinkEntry`]s |
//! | `0x0012600C` | `LIST_HOOKS` | read | [`HeaderOnly`] | [`HookList`] + [`HookEntry`]s |
//! | `0x00126010` | `QUERY_STATS` | read | [`ScopeRequest`] | [`ModuleStats`], [`LinkStats`] or [`HookStats`] |
//! | `0x0012A014` | `RESET_STATS` | write | [`ScopeRequest`] | none |
//! | `0x00126018` | `SUBSCRIBE_EVENTS` | read | [`Subscribe`] | [`Subscription`] |
//! | `0x0012601C` | `READ_EVENTS` | read | [`ReadRequest`] | [`EventBatch`] + [`EventRecord`]s; may pend |
//! | `0x00126020` | `UNSUBSCRIBE_EVENTS` | read | [`HeaderOnly`] | none |
//! | `0x0012A024` | `CAPTURE_START` | write | [`CaptureStart`] | [`CaptureSession`] |
//! | `0x00126028` | `CAPTURE_READ` | read | [`ReadRequest`] | [`CaptureBatch`] + [`CaptureRecord`]s |
//! | `0x0012A02C` | `CAPTURE_STOP` | write | [`HeaderOnly`] | none |
//! | `0x0012A030` | `INJECT` | write | [`Inject`] + frame | none |
//! | `0x0012A034` | `SET_RULES` | write | [`RulesSet`] + compiled set | [`RulesVersion`] |
//! | `0x00126038` | `GET_RULES` | read | [`HeaderOnly`] | [`RulesInfo`] + compiled set |
//! | `0x0012603C` | `RULE_STATS` | read | [`RuleStatsQuery`] | [`RuleStatsList`] + [`RuleStatsEntry`]s |
//! | `0x0012A040` | `DIVERT_OPEN` | write | [`DivertOpen`] + compiled filter | [`DivertInfo`] |
//! | `0x0012A044` | `DIVERT_READ` | write | [`ReadRequest`] | [`DivertBatch`] + [`DivertPacket`]s; may pend |
//! | `0x0012A048` | `DIVERT_VERDICTS` | write | [`DivertVerdicts`] + [`DivertVerdict`]s | [`DivertResult`] |
//! | `0x0012A04C` | `DIVERT_CLOSE` | write | [`HeaderOnly`] | none |
//!
//! Failures complete with a [`Status`]: an unknown code `STATUS_INVALID_DEVICE_REQUEST`, another
//! interface version `STATUS_REVISION_MISMATCH`, a malformed request `STATUS_INVALID_PARAMETER`,
//! an output too small for the smallest answer `STATUS_BUFFER_TOO_SMALL`, a handle without the
//! code's access `STATUS_ACCESS_DENIED`. `SET_RULES` adds `STATUS_TRANSACTIONAL_CONFLICT` (the set
//! changed since the caller read its version) and `STATUS_NOT_SUPPORTED` (a `divert` rule). The
//! `DIVERT_*` codes (user-mode hooks) answer `STATUS_INVALID_DEVICE_STATE` on a handle that has
//! no hook open (or has one already, for `DIVERT_OPEN`) and `STATUS_TOO_MANY_SESSIONS` when every
//! user-mode hook slot is taken.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// Tests list the reserved byte ranges of a message; a list of one range is still a list.
#![cfg_attr(test, allow(clippy::single_range_in_vec_init))]

mod capture_batch;
mod capture_record;
mod capture_session;
mod capture_start;
mod codes;
mod completion;
pub mod display;
mod divert_batch;
mod divert_open;
mod divert_verdicts;
mod error;
mod event_batch;
mod event_record;
mod field;
mod header;
mod header_only;
mod hook_list;
mod hook_stats;
mod inject;
pub mod ioctl;
pub mod limits;
mod link_entry;
mod link_list;
mod link_query;
mod link_stats;
mod module_list;
mod module_stats;
mod read_request;
mod records;
mod rule_stats;
mod rules_info;
mod rules_set;
mod scope_request;
#[cfg(feature = "serde")]
mod serialize;
mod subscribe;
mod subscription;
mod version;

#[cfg(test)]
mod testing;

pub use capture_batch::{CaptureBatch, CaptureBatchRepr};
pub use capture_record::{
    emit_fixed as emit_capture_record_fixed, record_len as capture_record_len, CaptureRecord, CaptureRecordRepr, RecordMeta,
    CAPTURE_INJECTED,
};
pub use capture_session::{CaptureSession, CaptureSessionRepr};
pub use capture_start::{CaptureStart, CaptureStartRepr};
pub use codes::{hook_id, split_hook_id, Direction, EventKind, ModuleKind, ModuleState, Quality, Scope};
pub use completion::Status;
pub use divert_batch::{
    divert_packet_len, emit_divert_packet_fixed, DivertBatch, DivertBatchRepr, DivertCounters, DivertMeta, DivertPacket, DivertPacketRepr,
};
pub use divert_open::{DivertInfo, DivertInfoRepr, DivertOpen, DivertOpenRepr, FailPolicy, DIVERT_RECEIVE, DIVERT_SEND};
pub use divert_verdicts::{DivertAction, DivertResult, DivertResultRepr, DivertVerdict, DivertVerdictRepr, DivertVerdicts, DivertVerdictsRepr};
pub use error::{Error, Result};
pub use event_batch::{EventBatch, EventBatchRepr};
pub use event_record::{EventBody, EventRecord, EventRecordRepr, LinkEventRepr};
pub use field::align8;
pub use header::{Header, HEADER_LEN, INTERFACE_VERSION};
pub use header_only::HeaderOnly;
pub use hook_list::{HookEntry, HookEntryRepr, HookList, HookListRepr, HookName};
pub use hook_stats::{HookStats, HookStatsRepr, VerdictStats};
pub use inject::{Inject, InjectRepr};
pub use ioctl::{Access, Ioctl};
pub use link_entry::{LinkEntry, LinkEntryRepr, TrafficRepr, LINK_BUFFER_TRUNCATED, LINK_HAS_IPV4, LINK_HAS_IPV6_IID};
pub use link_list::{LinkList, LinkListRepr, LINK_LIST_END};
pub use link_query::{LinkQuery, LinkQueryRepr, LINK_QUERY_PROTOCOL_BUFFER};
pub use link_stats::{LinkStats, LinkStatsRepr};
pub use module_list::{ModuleEntry, ModuleEntryRepr, ModuleList, ModuleListRepr};
pub use module_stats::{DirectionStats, ModuleStats, ModuleStatsRepr, DROP_REASONS};
pub use read_request::{ReadRequest, ReadRequestRepr, READ_WAIT};
pub use records::VariableRecords;
pub use rule_stats::{
    RuleAction, RuleStatsEntry, RuleStatsEntryRepr, RuleStatsList, RuleStatsListRepr, RuleStatsQuery, RuleStatsQueryRepr,
};
pub use rules_info::{RulesInfo, RulesInfoRepr, RULES_BLOB_OMITTED};
pub use rules_set::{Expected, RulesSet, RulesSetRepr, RulesVersion, RulesVersionRepr, RULES_REPLACE_ANY};
pub use scope_request::{ScopeRequest, ScopeRequestRepr, Target};
pub use subscribe::{Subscribe, SubscribeRepr};
pub use subscription::{Subscription, SubscriptionRepr};
pub use version::{
    Features, VersionInfo, VersionInfoRepr, CAP_CAPTURE, CAP_EVENTS, CAP_INJECT, CAP_LINKS, CAP_RESET, CAP_RULES, CAP_STATS,
    VERSION_BASE_LEN,
};
