//! Every `wanlayer-proto` message, both ways.
//!
//! The first byte chooses a message; with its top bit clear the rest is parsed, with it set the
//! rest fills the fields of a request-side `Repr` that is emitted and parsed back.
//!
//! Invariants:
//! * no parser panics, whatever the bytes;
//! * parsing is canonical: when bytes parse, emitting the `Repr` over a copy whose emitted part
//!   was overwritten (`0xa5`) gives the same bytes back, and they parse to the same `Repr`;
//! * a list that parses yields exactly `count` records, each of which parses and round-trips;
//! * a `Repr` built from valid field values that emits parses back to itself;
//! * every on-wire number survives its enum (`Ioctl`, `Status`, `Target`, hook ids).

use crate::bytes::Bytes;
use wanlayer_proto::*;

/// Parses `$bytes`; when that succeeds, checks the canonical round trip over a copy whose first
/// `$fill` bytes are overwritten before `emit`. Evaluates to the parse result.
macro_rules! round_trip {
    ($bytes:expr, $fill:expr, |$b:ident| $parse:expr, |$r:ident, $out:ident| $emit:expr) => {{
        let original: &[u8] = $bytes;
        let parsed = {
            let $b = original;
            $parse
        };
        if let Ok(repr) = &parsed {
            let mut copy = original.to_vec();
            let fill = usize::min($fill, copy.len());
            copy[..fill].fill(0xa5);
            {
                let $r = repr;
                let $out = &mut copy[..];
                $emit
            }
            .expect("a parsed message emits");
            assert_eq!(copy, original, "emit(parse(bytes)) gives the bytes back");
            let again = {
                let $b = &copy[..];
                $parse
            };
            assert_eq!(again.as_ref(), Ok(repr), "the emitted bytes parse to the same message");
        }
        parsed
    }};
}

/// Emits `$repr` into a fresh `0xa5` buffer of `$len` bytes: what parses is `$repr` itself, and a
/// `$valid` one (every value within the bounds the parser enforces) parses.
macro_rules! emit_parses_back {
    ($repr:expr, $len:expr, |$r:ident, $out:ident| $emit:expr, |$b:ident| $parse:expr) => {
        emit_parses_back!($repr, true, $len, |$r, $out| $emit, |$b| $parse)
    };
    ($repr:expr, $valid:expr, $len:expr, |$r:ident, $out:ident| $emit:expr, |$b:ident| $parse:expr) => {{
        let repr = $repr;
        let mut buffer = vec![0xa5u8; $len];
        let emitted = {
            let $r = &repr;
            let $out = &mut buffer[..];
            $emit
        };
        if emitted.is_ok() {
            let $b = &buffer[..];
            match $parse {
                Ok(parsed) => assert_eq!(parsed, repr, "an emitted message parses back to itself"),
                Err(error) => assert!(!$valid, "a valid message was emitted and refused: {error:?}, {repr:?}"),
            }
        }
    }};
}

/// Messages in parse mode; the selector is taken modulo this.
const PARSED: u8 = 24;

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let selector = input.u8();
    if selector & 0x80 == 0 {
        parse_one(selector % PARSED, input.rest());
    } else {
        build_one(selector & 0x7f, &mut input);
    }
}

/// Parses `bytes` as message `which`.
fn parse_one(which: u8, bytes: &[u8]) {
    match which {
        0 => {
            let _ = round_trip!(bytes, 8, |b| HeaderOnly::parse(b), |r, out| r.emit(out).map(|_| ()));
        }
        1 => {
            // The version answer is read from any later interface too, so a longer answer keeps
            // only what this build knows: the known part round-trips, with its own size.
            if let Ok(version) = VersionInfoRepr::parse(&VersionInfo::new_unchecked(bytes)) {
                let len = version.buffer_len();
                let mut buffer = vec![0xa5u8; len];
                version.emit(&mut VersionInfo::new_unchecked(&mut buffer[..])).expect("a parsed answer emits");
                assert_eq!(buffer.get(4..), bytes.get(4..len), "the known part is emitted as it was read");
                assert_eq!(VersionInfoRepr::parse(&VersionInfo::new_unchecked(&buffer[..])), Ok(version));
            }
        }
        2 => {
            let fixed = ModuleList::<&[u8]>::LEN;
            if let Ok(list) = round_trip!(bytes, fixed, |b| ModuleListRepr::parse(&ModuleList::new_unchecked(b)), |r, out| r
                .emit(&mut ModuleList::new_unchecked(out)))
            {
                let entries: Vec<_> = ModuleList::new_unchecked(bytes).entries().collect();
                assert_eq!(entries.len(), list.count as usize, "every module entry is listed");
                for entry in entries {
                    module_entry_round_trip(entry.expect("a checked list's entries parse"));
                }
            }
        }
        3 => {
            let _ = round_trip!(
                bytes,
                ModuleEntry::<&[u8]>::LEN,
                |b| ModuleEntryRepr::parse(&ModuleEntry::new_unchecked(b)),
                |r, out| r.emit(&mut ModuleEntry::new_unchecked(out))
            );
        }
        4 => {
            let _ = round_trip!(bytes, bytes.len(), |b| LinkQueryRepr::parse(&LinkQuery::new_unchecked(b)), |r, out| r
                .emit(&mut LinkQuery::new_unchecked(out)));
        }
        5 => {
            let fixed = LinkList::<&[u8]>::LEN;
            if let Ok(list) = round_trip!(bytes, fixed, |b| LinkListRepr::parse(&LinkList::new_unchecked(b)), |r, out| r
                .emit(&mut LinkList::new_unchecked(out)))
            {
                let view = LinkList::new_unchecked(bytes);
                let entries: Vec<_> = view.entries().collect();
                assert_eq!(entries.len(), list.count as usize, "every link entry is listed");
                for entry in entries {
                    link_entry_round_trip(&entry.expect("a checked list's entries parse"));
                }
            }
        }
        6 => {
            if let Ok(entry) =
                round_trip!(bytes, bytes.len(), |b| LinkEntryRepr::parse(&LinkEntry::new_unchecked(b)), |r, out| r
                    .emit(&mut LinkEntry::new_unchecked(out)))
            {
                assert_eq!(entry.buffer_len(), Ok(bytes.len()));
                let _ = entry.device_name_chars().count();
            }
        }
        7 => {
            let fixed = HookList::<&[u8]>::LEN;
            if let Ok(list) = round_trip!(bytes, fixed, |b| HookListRepr::parse(&HookList::new_unchecked(b)), |r, out| r
                .emit(&mut HookList::new_unchecked(out)))
            {
                assert_eq!(list.buffer_len(), bytes.len());
                let entries: Vec<_> = HookList::new_unchecked(bytes).entries().collect();
                assert_eq!(entries.len(), list.count as usize, "every hook entry is listed");
                for entry in entries {
                    hook_entry_round_trip(entry.expect("a checked list's entries parse"));
                }
            }
        }
        8 => {
            let _ =
                round_trip!(bytes, HookEntry::<&[u8]>::LEN, |b| HookEntryRepr::parse(&HookEntry::new_unchecked(b)), |r, out| r
                    .emit(&mut HookEntry::new_unchecked(out)));
        }
        9 => {
            let _ = round_trip!(bytes, bytes.len(), |b| ScopeRequestRepr::parse(&ScopeRequest::new_unchecked(b)), |r, out| r
                .emit(&mut ScopeRequest::new_unchecked(out)));
        }
        10 => {
            let _ = round_trip!(bytes, bytes.len(), |b| ModuleStatsRepr::parse(&ModuleStats::new_unchecked(b)), |r, out| r
                .emit(&mut ModuleStats::new_unchecked(out)));
        }
        11 => {
            let _ = round_trip!(bytes, bytes.len(), |b| LinkStatsRepr::parse(&LinkStats::new_unchecked(b)), |r, out| r
                .emit(&mut LinkStats::new_unchecked(out)));
        }
        12 => {
            let _ = round_trip!(bytes, bytes.len(), |b| HookStatsRepr::parse(&HookStats::new_unchecked(b)), |r, out| r
                .emit(&mut HookStats::new_unchecked(out)));
        }
        13 => {
            let _ = round_trip!(bytes, bytes.len(), |b| SubscribeRepr::parse(&Subscribe::new_unchecked(b)), |r, out| r
                .emit(&mut Subscribe::new_unchecked(out)));
        }
        14 => {
            let _ = round_trip!(bytes, bytes.len(), |b| SubscriptionRepr::parse(&Subscription::new_unchecked(b)), |r, out| r
                .emit(&mut Subscription::new_unchecked(out)));
        }
        15 => {
            let _ = round_trip!(bytes, bytes.len(), |b| ReadRequestRepr::parse(&ReadRequest::new_unchecked(b)), |r, out| r
                .emit(&mut ReadRequest::new_unchecked(out)));
        }
        16 => {
            let fixed = EventBatch::<&[u8]>::LEN;
            if let Ok(batch) = round_trip!(bytes, fixed, |b| EventBatchRepr::parse(&EventBatch::new_unchecked(b)), |r, out| r
                .emit(&mut EventBatch::new_unchecked(out)))
            {
                assert_eq!(batch.buffer_len(), bytes.len());
                let records: Vec<_> = EventBatch::new_unchecked(bytes).records().collect();
                assert_eq!(records.len(), batch.count as usize, "every event record is listed");
                for record in records {
                    event_record_round_trip(record.expect("a checked batch's records parse"));
                }
            }
        }
        17 => match EventRecordRepr::parse(&EventRecord::new_unchecked(bytes)) {
            // A kind this build does not know keeps no payload, so it is re-emitted without it.
            Ok(record) if matches!(record.body, EventBody::Unknown(_)) => event_record_round_trip(record),
            _ => {
                let _ = round_trip!(
                    bytes,
                    EventRecord::<&[u8]>::LEN,
                    |b| EventRecordRepr::parse(&EventRecord::new_unchecked(b)),
                    |r, out| r.emit(&mut EventRecord::new_unchecked(out))
                );
            }
        },
        18 => {
            let _ = round_trip!(bytes, bytes.len(), |b| CaptureStartRepr::parse(&CaptureStart::new_unchecked(b)), |r, out| r
                .emit(&mut CaptureStart::new_unchecked(out)));
        }
        19 => {
            let _ =
                round_trip!(bytes, bytes.len(), |b| CaptureSessionRepr::parse(&CaptureSession::new_unchecked(b)), |r, out| r
                    .emit(&mut CaptureSession::new_unchecked(out)));
        }
        20 => {
            let fixed = CaptureBatch::<&[u8]>::LEN;
            if let Ok(batch) =
                round_trip!(bytes, fixed, |b| CaptureBatchRepr::parse(&CaptureBatch::new_unchecked(b)), |r, out| r
                    .emit(&mut CaptureBatch::new_unchecked(out)))
            {
                assert_eq!(batch.size, bytes.len());
                let view = CaptureBatch::new_unchecked(bytes);
                let records: Vec<_> = view.records().collect();
                assert_eq!(records.len(), batch.count as usize, "every capture record is listed");
                for record in records {
                    capture_record_round_trip(&record.expect("a checked batch's records parse"));
                }
            }
        }
        21 => {
            if let Ok(record) =
                round_trip!(bytes, bytes.len(), |b| CaptureRecordRepr::parse(&CaptureRecord::new_unchecked(b)), |r, out| r
                    .emit(&mut CaptureRecord::new_unchecked(out)))
            {
                assert_eq!(record.buffer_len(), Ok(bytes.len()));
            }
        }
        22 => {
            if let Ok(inject) = round_trip!(bytes, bytes.len(), |b| InjectRepr::parse(&Inject::new_unchecked(b)), |r, out| r
                .emit(&mut Inject::new_unchecked(out)))
            {
                assert_eq!(inject.buffer_len(), bytes.len());
            }
        }
        _ => numbers(&mut Bytes::new(bytes)),
    }
}

/// The on-wire numbers: codes, statuses, scopes, hook ids.
fn numbers(input: &mut Bytes<'_>) {
    let raw = input.u32();
    let ioctl = Ioctl::from(raw);
    assert_eq!(u32::from(ioctl), raw);
    let _ = (ioctl.required_access(), ioctl.name(), Access::of_code(raw));
    let status = Status::from(raw);
    assert_eq!(u32::from(status), raw);
    let _ = (status.name(), status.meaning(), status.is_success());
    if let Some(error) = status.win32_error() {
        if status.is_known() {
            assert_eq!(Status::from_win32_error(error), Some(status), "a named status maps back from its Win32 error");
        }
    }
    let _ = Status::from_win32_error(raw);
    let (scope, target) = (input.u16(), input.u64());
    if let Ok(parsed) = Target::from_wire(scope, target) {
        assert_eq!(parsed.to_wire(), (Scope::from(scope), target));
    }
    if let Some((slot, generation)) = split_hook_id(target) {
        assert_eq!(hook_id(slot, generation), target);
    }
    let kind = EventKind::from(input.u16());
    if kind.is_known() {
        let _ = (kind.mask_bit(), kind.name());
    }
    let _ = align8(input.u64() as usize);
}

fn module_entry_round_trip(entry: ModuleEntryRepr) {
    emit_parses_back!(entry, ModuleEntry::<&[u8]>::LEN, |r, out| r.emit(&mut ModuleEntry::new_unchecked(out)), |b| {
        ModuleEntryRepr::parse(&ModuleEntry::new_unchecked(b))
    });
}

fn hook_entry_round_trip(entry: HookEntryRepr) {
    emit_parses_back!(entry, HookEntry::<&[u8]>::LEN, |r, out| r.emit(&mut HookEntry::new_unchecked(out)), |b| {
        HookEntryRepr::parse(&HookEntry::new_unchecked(b))
    });
}

fn event_record_round_trip(record: EventRecordRepr) {
    emit_parses_back!(record, EventRecord::<&[u8]>::LEN, |r, out| r.emit(&mut EventRecord::new_unchecked(out)), |b| {
        EventRecordRepr::parse(&EventRecord::new_unchecked(b))
    });
}

fn link_entry_round_trip(entry: &LinkEntryRepr<'_>) {
    let len = entry.buffer_len().expect("a parsed entry has a length");
    let mut buffer = vec![0xa5u8; len];
    entry.emit(&mut LinkEntry::new_unchecked(&mut buffer[..])).expect("a parsed entry emits");
    assert_eq!(LinkEntryRepr::parse(&LinkEntry::new_unchecked(&buffer[..])).as_ref(), Ok(entry));
}

fn capture_record_round_trip(record: &CaptureRecordRepr<'_>) {
    let len = record.buffer_len().expect("a parsed record has a length");
    let mut buffer = vec![0xa5u8; len];
    record.emit(&mut CaptureRecord::new_unchecked(&mut buffer[..])).expect("a parsed record emits");
    assert_eq!(CaptureRecordRepr::parse(&CaptureRecord::new_unchecked(&buffer[..])).as_ref(), Ok(record));
}

/// A target the parser accepts, from the input: `All`, or a nonzero id of a scope.
fn target(input: &mut Bytes<'_>) -> Target {
    let id = input.u64().max(1);
    match input.u8() % 4 {
        0 => Target::All,
        1 => Target::Module(u32::try_from(id).unwrap_or(1)),
        2 => Target::Link(id),
        _ => split_hook_id(id).map_or(Target::All, |(slot, generation)| Target::Hook(hook_id(slot, generation))),
    }
}

/// A value in `low..=high`.
fn within(input: &mut Bytes<'_>, low: u32, high: u32) -> u32 {
    low + input.u32() % (high - low + 1)
}

fn direction(input: &mut Bytes<'_>) -> Direction {
    if input.bool() {
        Direction::Send
    } else {
        Direction::Receive
    }
}

/// Builds request `which` from the input's fields, emits it, and parses it back.
fn build_one(which: u8, input: &mut Bytes<'_>) {
    match which % 10 {
        0 => emit_parses_back!(
            ScopeRequestRepr { target: target(input) },
            ScopeRequest::<&[u8]>::LEN,
            |r, out| r.emit(&mut ScopeRequest::new_unchecked(out)),
            |b| ScopeRequestRepr::parse(&ScopeRequest::new_unchecked(b))
        ),
        1 => emit_parses_back!(
            SubscribeRepr {
                capacity: within(input, 1, limits::MAX_SUBSCRIBER_CAPACITY),
                mask: within(input, 1, EventKind::ALL_MASK)
            },
            Subscribe::<&[u8]>::LEN,
            |r, out| r.emit(&mut Subscribe::new_unchecked(out)),
            |b| SubscribeRepr::parse(&Subscribe::new_unchecked(b))
        ),
        2 => emit_parses_back!(
            ReadRequestRepr { max_records: within(input, 1, limits::MAX_READ_BATCH), wait: input.bool() },
            ReadRequest::<&[u8]>::LEN,
            |r, out| r.emit(&mut ReadRequest::new_unchecked(out)),
            |b| ReadRequestRepr::parse(&ReadRequest::new_unchecked(b))
        ),
        3 => emit_parses_back!(
            LinkQueryRepr {
                module: Some(input.u32()).filter(|m| *m != 0),
                protocol_buffer: input.bool(),
                cursor: input.u64(),
                max_entries: within(input, 1, limits::MAX_LINK_BATCH)
            },
            LinkQuery::<&[u8]>::LEN,
            |r, out| r.emit(&mut LinkQuery::new_unchecked(out)),
            |b| LinkQueryRepr::parse(&LinkQuery::new_unchecked(b))
        ),
        4 => {
            let repr = CaptureStartRepr {
                target: target(input),
                snap_len: within(input, 1, limits::MAX_SNAP_LEN),
                slots: within(input, 1, limits::MAX_CAPTURE_SLOTS),
            };
            let valid = !matches!(repr.target, Target::Hook(_))
                && u64::from(repr.snap_len) * u64::from(repr.slots) <= limits::MAX_CAPTURE_BYTES;
            emit_parses_back!(
                repr,
                valid,
                CaptureStart::<&[u8]>::LEN,
                |r, out| r.emit(&mut CaptureStart::new_unchecked(out)),
                |b| CaptureStartRepr::parse(&CaptureStart::new_unchecked(b))
            )
        }
        5 => {
            let repr = InjectRepr {
                module: Some(input.u32()).filter(|m| *m != 0),
                direction: direction(input),
                link_id: input.u64().max(1),
                frame: input.rest(),
            };
            let valid = (limits::MIN_FRAME_LEN..=limits::MAX_FRAME_LEN).contains(&repr.frame.len());
            emit_parses_back!(repr, valid, repr.buffer_len(), |r, out| r.emit(&mut Inject::new_unchecked(out)), |b| {
                InjectRepr::parse(&Inject::new_unchecked(b))
            })
        }
        6 => {
            let name_len = usize::from(input.u8() % 40);
            let name = String::from_utf8_lossy(input.take(name_len)).into_owned();
            emit_parses_back!(
                HookEntryRepr { id: input.u64(), altitude: input.u32(), name: HookName::new(&name) },
                HookEntry::<&[u8]>::LEN,
                |r, out| r.emit(&mut HookEntry::new_unchecked(out)),
                |b| HookEntryRepr::parse(&HookEntry::new_unchecked(b))
            )
        }
        7 => {
            let repr = CaptureRecordRepr {
                module: input.u32(),
                link_id: Some(input.u64()).filter(|id| *id != 0),
                time_ns: input.u64(),
                original_len: input.u32(),
                direction: direction(input),
                injected: input.bool(),
                data: input.rest(),
            };
            if let Ok(len) = repr.buffer_len() {
                emit_parses_back!(repr, len, |r, out| r.emit(&mut CaptureRecord::new_unchecked(out)), |b| {
                    CaptureRecordRepr::parse(&CaptureRecord::new_unchecked(b))
                })
            }
        }
        8 => emit_parses_back!(
            SubscriptionRepr { capacity: input.u32(), mask: input.u32(), next_sequence: input.u64() },
            Subscription::<&[u8]>::LEN,
            |r, out| r.emit(&mut Subscription::new_unchecked(out)),
            |b| SubscriptionRepr::parse(&Subscription::new_unchecked(b))
        ),
        _ => {
            let link = LinkEventRepr {
                link_id: input.u64(),
                remote_address: input.array(),
                local_address: input.array(),
                protocol_type: input.u16(),
                link_speed_100bps: input.u32(),
                maximum_total_size: input.u32(),
                reported_total_size: input.u32(),
            };
            let body = match input.u8() % 3 {
                0 => EventBody::LineUp(link),
                1 => EventBody::LineUpdated(link),
                _ => EventBody::LineDown(link),
            };
            emit_parses_back!(
                EventRecordRepr { sequence: input.u64(), time_ns: input.u64(), module: input.u32(), body },
                EventRecord::<&[u8]>::LEN,
                |r, out| r.emit(&mut EventRecord::new_unchecked(out)),
                |b| EventRecordRepr::parse(&EventRecord::new_unchecked(b))
            )
        }
    }
}
