//! The provider interface for vendor drivers, driven with the driver in the loop through the very
//! path a kernel vendor takes: the SDK's kernel client (`wanlayer_sdk::kernel::Connection`, its
//! imports bound to the kernel model) opens `\Device\WanLayer` and sends
//! `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` as an internal device control IRP, which `wanlayer.sys`'s
//! own handler answers with its table: versioning and sizes, registration checks and limits, stale
//! handles and tickets, link queries, the MTU and frame replacement, altitude order, registration
//! and deregistration under traffic, a vendor that never gives back what it took, and wanlayer's
//! own unload with vendors still registered.

use std::ffi::c_void;
use std::mem::size_of;
use std::sync::atomic::{AtomicU32, Ordering};

use wanlayer_core::hook::Direction as WireDirection;
use wanlayer_core::stats::DropReason;
use wanlayer_core::NdisStatus;
use wanlayer_sdk::abi::{self, FilterRegistration, LinkInfo, ProviderRequest, ProviderTable as RawTable, RawPacket};
use wanlayer_sdk::kernel::Connection;
use wanlayer_sdk::{Direction, ReinjectVerdict, Status, Ticket};
use wanlayer_sim::{Edge, LinkParams, PauseOutcome, ReceiveOptions, Rras, MILLISECOND};
use wanlayer_sim_driver::DriverFilter;
use wanlayer_tests::frames::{checksums_valid, ip_ttl};
use wanlayer_tests::setup::{completions, counts, drops, finish, frames, started, UDP};
use wanlayer_tests::vendors::{
    connect, provider_counts, revoke_all, try_connect, DroppingVendor, RecordingVendor, TakingVendor, TunnelVendor, VendorCall, VendorLog,
};

const TABLE_LEN: usize = size_of::<RawTable>();

/// Sends `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` again through `connection`'s IRP path with
/// `request` and an output buffer of `table_len` bytes, as a C vendor would; returns the status,
/// the bytes written and the table (meaningful when the status is a success).
fn query(rras: &Rras<DriverFilter>, connection: &Connection, request: &ProviderRequest, table_len: usize) -> (Status, usize, RawTable) {
    let mut buffer = vec![0u8; table_len.max(TABLE_LEN)];
    let (status, written) = rras.filter().vendor_call(false, || connection.query(request, &mut buffer[..table_len]));
    // SAFETY: the buffer holds at least one table's bytes (zeroes where nothing was written: a
    // valid value of the table, whose null function pointers read as `None`).
    let table = unsafe { buffer.as_ptr().cast::<RawTable>().read_unaligned() };
    (status, written, table)
}

// ----- the table and its version ----------------------------------------------------------------

#[test]
fn the_table_is_handed_out_for_this_version_and_refused_with_a_clear_status_otherwise() {
    let rras = started();
    {
        let connection = connect(&rras);
        let current = ProviderRequest::current();
        let (status, written, table) = query(&rras, &connection, &current, TABLE_LEN);
        assert_eq!((status, written, table.size, table.version), (Status::SUCCESS, 96, 96, abi::PROVIDER_VERSION));
        assert!(!table.provider.is_null() && table.register_filter.is_some() && table.packet_ticket.is_some());
        let (status, written, _) = query(&rras, &connection, &current, TABLE_LEN + 64);
        assert_eq!((status, written), (Status::SUCCESS, 96), "a longer buffer gets this version's table, and says so");

        let refused = |request: ProviderRequest, table_len: usize| {
            let (status, written, table) = query(&rras, &connection, &request, table_len);
            assert_eq!((written, table.size, table.provider), (0, 0, std::ptr::null_mut()), "nothing written when refused");
            status
        };
        assert_eq!(refused(ProviderRequest { version: 2, ..current }, TABLE_LEN), Status::REVISION_MISMATCH);
        assert_eq!(refused(ProviderRequest { version: 0, ..current }, TABLE_LEN), Status::REVISION_MISMATCH);
        assert_eq!(refused(ProviderRequest { size: 8, ..current }, TABLE_LEN), Status::INFO_LENGTH_MISMATCH);
        assert_eq!(refused(current, TABLE_LEN - 8), Status::INFO_LENGTH_MISMATCH);
        assert_eq!(refused(ProviderRequest { flags: 1, ..current }, TABLE_LEN), Status::INVALID_PARAMETER);
        assert_eq!(refused(ProviderRequest { reserved: 7, ..current }, TABLE_LEN), Status::INVALID_PARAMETER);
        let counts = provider_counts();
        assert_eq!((counts.tables_served, counts.requests_refused), (3, 6), "the connection's own, and the two above");
        assert_eq!(connect(&rras).table().version(), abi::PROVIDER_VERSION, "a second connection");
    }
    finish(rras);
}

// ----- registration through the raw C ABI -------------------------------------------------------

unsafe extern "system" fn pass(_context: *mut c_void, _packet: *mut RawPacket, _link: *const LinkInfo) -> u32 {
    abi::VERDICT_PASS
}

unsafe extern "system" fn not_a_verdict(_context: *mut c_void, _packet: *mut RawPacket, _link: *const LinkInfo) -> u32 {
    7
}

/// A first-version registration named `name` with only an `OnSend`.
fn registration(name: &[u8], on_send: abi::PacketCallback) -> FilterRegistration {
    let mut raw_name = [0u8; abi::FILTER_NAME_MAX as usize];
    raw_name[..name.len()].copy_from_slice(name);
    FilterRegistration {
        size: size_of::<FilterRegistration>() as u32,
        version: abi::PROVIDER_VERSION,
        name: raw_name,
        altitude: 10,
        flags: 0,
        context: std::ptr::null_mut(),
        on_line_up: None,
        on_line_down: None,
        on_send: Some(on_send),
        on_receive: None,
        on_provider_unload: None,
    }
}

/// Calls the table's `RegisterFilter` as a C vendor does.
fn register_raw(table: &RawTable, registration: *const FilterRegistration) -> (Status, u64) {
    let mut handle = 0;
    let register = table.register_filter.expect("the table has RegisterFilter");
    // SAFETY: the driver's own function and pointer, alive while the caller's connection is; the
    // registration is null or a live structure readable for its `Size`; the handle slot is ours.
    let status = unsafe { register(table.provider, registration, &mut handle) };
    (status, handle)
}

/// Calls the table's `DeregisterFilter`.
fn deregister_raw(table: &RawTable, handle: u64) -> Status {
    let deregister = table.deregister_filter.expect("the table has DeregisterFilter");
    // SAFETY: the driver's own function and pointer, alive while the caller's connection is.
    unsafe { deregister(table.provider, handle) }
}

/// Calls the table's `Reinject`.
fn reinject_raw(table: &RawTable, handle: u64, ticket: &Ticket, verdict: u32) -> Status {
    let reinject = table.reinject.expect("the table has Reinject");
    // SAFETY: the driver's own function and pointer, alive while the caller's connection is; the
    // ticket is readable.
    unsafe { reinject(table.provider, handle, ticket, verdict) }
}

#[test]
fn a_registration_is_checked_field_by_field_and_may_come_from_a_newer_build() {
    let rras = started();
    {
        let connection = connect(&rras);
        let (_, _, table) = query(&rras, &connection, &ProviderRequest::current(), TABLE_LEN);
        let good = registration(b"c-vendor", pass);
        let check = |registration: FilterRegistration| register_raw(&table, &registration).0;
        assert_eq!(register_raw(&table, std::ptr::null()).0, Status::INVALID_PARAMETER);
        assert_eq!(check(FilterRegistration { size: 40, ..good }), Status::INFO_LENGTH_MISMATCH);
        assert_eq!(check(FilterRegistration { version: 2, ..good }), Status::REVISION_MISMATCH);
        assert_eq!(check(FilterRegistration { flags: 1, ..good }), Status::INVALID_PARAMETER);
        assert_eq!(check(registration(b"", pass)), Status::INVALID_PARAMETER, "an empty name");
        assert_eq!(check(registration(&[0xFF, 0xFE], pass)), Status::INVALID_PARAMETER, "not UTF-8");
        assert_eq!(check(registration(b"ab\0c", pass)), Status::INVALID_PARAMETER, "bytes after the NUL");
        assert_eq!(provider_counts().registrations, 0);

        // A later version's registration is longer; this provider reads the fields it knows.
        #[repr(C)]
        struct Longer {
            registration: FilterRegistration,
            later_fields: [u64; 4],
        }
        let longer = Longer {
            registration: FilterRegistration { size: size_of::<Longer>() as u32, ..registration(&[b'x'; 32], pass) },
            later_fields: [u64::MAX; 4],
        };
        let (status, handle) = register_raw(&table, &longer.registration);
        assert_eq!(status, Status::SUCCESS, "a 32-byte name without a NUL, in a longer structure");
        assert_ne!(handle, 0);
        assert_eq!(deregister_raw(&table, handle), Status::SUCCESS);
        assert_eq!(deregister_raw(&table, handle), Status::INVALID_HANDLE, "a handle names one registration");
        assert_eq!(deregister_raw(&table, 0), Status::INVALID_HANDLE);
        let counts = provider_counts();
        assert_eq!((counts.registrations, counts.registrations_refused, counts.deregistrations), (1, 0, 1));
    }
    finish(rras);
}

#[test]
fn sixteen_filters_fit_and_a_seventeenth_is_refused_with_quota_exceeded() {
    let rras = started();
    {
        let connection = connect(&rras);
        let table = connection.table();
        let log = VendorLog::new();
        let registered: Vec<_> = (0..abi::MAX_FILTERS)
            .map(|altitude| table.register("recorder", altitude, RecordingVendor::new("recorder", &log)).expect("a free slot"))
            .collect();
        let refused = table.register("one-too-many", 99, RecordingVendor::new("late", &log)).map(|_| ());
        assert_eq!(refused, Err(Status::QUOTA_EXCEEDED));
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        rras.send_flow(&link, &UDP, 1);
        assert_eq!(log.order(VendorCall::Packet(Direction::Send)).len(), 16, "every registered filter saw the send");
        let handles: Vec<u64> = registered.iter().map(|registration| registration.handle()).collect();
        drop(registered);
        assert_eq!(provider_counts().registered, 0);
        let again = table.register("again", 1, RecordingVendor::new("again", &log)).expect("a slot freed");
        assert!(!handles.contains(&again.handle()), "a reused slot gets a new handle");
    }
    finish(rras);
}

#[test]
fn an_unknown_verdict_passes_the_packet_and_is_counted() {
    let rras = started();
    {
        let connection = connect(&rras);
        let (_, _, table) = query(&rras, &connection, &ProviderRequest::current(), TABLE_LEN);
        let (status, handle) = register_raw(&table, &registration(b"confused", not_a_verdict));
        assert_eq!(status, Status::SUCCESS);
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        rras.send_flow(&link, &UDP, 3);
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 3);
        assert_eq!(provider_counts().invalid_verdicts, 3);
        assert_eq!(deregister_raw(&table, handle), Status::SUCCESS);
    }
    finish(rras);
}

// ----- handles, tickets, links, time ------------------------------------------------------------

#[test]
fn stale_handles_and_tickets_and_bad_arguments_get_clear_statuses() {
    let rras = started();
    {
        let connection = connect(&rras);
        let (_, _, raw) = query(&rras, &connection, &ProviderRequest::current(), TABLE_LEN);
        let table = connection.table();
        let taker = table.register("taker", 10, TakingVendor::new(Some(Direction::Send))).expect("registered");
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        let passed = rras.send_flow(&link, &UDP, 3);
        let provider = taker.provider();
        let handle = taker.handle();
        assert_eq!(taker.filter().give_back(&provider, ReinjectVerdict::Pass), vec![Ok(()); 3], "each ticket names its packet");
        let dropped = rras.send_flow(&link, &UDP, 1);
        assert_eq!(taker.filter().give_back(&provider, ReinjectVerdict::Drop), vec![Ok(())], "a reinjection may drop");
        rras.run_until_idle();
        let protocol = rras.protocol(Edge::WanIp);
        assert_eq!(completions(&protocol, &passed), vec![Some(NdisStatus::SUCCESS); 3]);
        assert_eq!(completions(&protocol, &dropped), vec![Some(NdisStatus::FAILURE)]);

        let stale = Ticket { module: 0, reserved: 0, serial: u64::MAX };
        assert_eq!(provider.reinject(stale, ReinjectVerdict::Pass), Err(Status::NOT_FOUND), "no packet held under it");
        assert_eq!(reinject_raw(&raw, handle, &stale, 9), Status::INVALID_PARAMETER, "no such verdict");
        assert_eq!(reinject_raw(&raw, handle, &Ticket { reserved: 1, ..stale }, 0), Status::INVALID_PARAMETER);
        assert_eq!(reinject_raw(&raw, handle ^ 0x1_0000, &stale, 0), Status::INVALID_HANDLE, "another generation");

        rras.send_flow(&link, &UDP, 1);
        assert_eq!(taker.filter().held(), 1);
        taker.deregister().expect("deregistered");
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 4, "the packet it held went down at deregistration");
        let kept = provider.reinject(stale, ReinjectVerdict::Pass);
        assert_eq!(kept, Err(Status::INVALID_HANDLE), "a provider copy kept after deregistration");
    }
    finish(rras);
}

#[test]
fn links_and_time_come_from_the_engine() {
    let rras = started();
    {
        let connection = connect(&rras);
        let table = connection.table();
        let four = rras.link_up(Edge::WanIp, LinkParams::new().mtu(1400).speed_bps(56_000));
        let six = rras.link_up(Edge::WanIpv6, LinkParams::new());
        let empty = LinkInfo {
            link_id: 0,
            module: 0,
            link_speed_100bps: 0,
            maximum_total_size: 0,
            reported_total_size: 0,
            protocol_type: 0,
            remote_address: [0; 6],
            local_address: [0; 6],
            reserved: 0,
        };
        assert_eq!(table.links(&mut []), Ok(2), "the count without room for any");
        let mut one = [empty];
        assert_eq!(table.links(&mut one), Ok(2), "the first link, and the count");
        let mut links = [empty; 4];
        assert_eq!(table.links(&mut links), Ok(2));
        links[..2].sort_by_key(|link| link.protocol_type);
        assert_eq!((links[0].remote_address, links[0].protocol_type), (four.remote.0, 0x0800));
        assert_eq!((links[0].maximum_total_size, links[0].link_speed_100bps), (1400, 560));
        assert_eq!((links[1].remote_address, links[1].protocol_type), (six.remote.0, 0x86DD));
        assert_eq!(links[0].local_address, four.local.0, "the address the IP layer filled in");

        let (_, _, raw) = query(&rras, &connection, &ProviderRequest::current(), TABLE_LEN);
        let query = raw.query_links.expect("QueryLinks");
        let mut count = 0;
        // SAFETY: the provider's own function; the array holds 4 elements of the stated size.
        let status = unsafe { query(raw.provider, links.as_mut_ptr(), 4, 24, &mut count) };
        assert_eq!(status, Status::INFO_LENGTH_MISMATCH, "an element smaller than the first version's");
        // SAFETY: as above; a null array with no capacity only counts.
        let status = unsafe { query(raw.provider, std::ptr::null_mut(), 0, size_of::<LinkInfo>() as u32, &mut count) };
        assert_eq!((status, count), (Status::BUFFER_OVERFLOW, 2));

        let now = || rras.filter().vendor_call(false, || table.now());
        assert_eq!(now(), rras.now().0, "the simulator's virtual time, through the driver's clock");
        rras.advance(5 * MILLISECOND);
        assert_eq!(now(), rras.now().0);
    }
    finish(rras);
}

// ----- what filters do to links and frames ------------------------------------------------------

#[test]
fn a_vendor_lowers_the_reported_mtu_and_replaces_frames() {
    let rras = started();
    {
        let connection = connect(&rras);
        let table = connection.table();
        let tunnel = table.register("tunnel", 100, TunnelVendor::new(1400, 9)).expect("registered");
        let link = rras.link_up(Edge::WanIp, LinkParams::new().mtu(1500));
        assert_eq!(link.reported_total_size, Some(1400), "the IP layer was told the lower size");
        let six = rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1500));
        assert_eq!(six.reported_total_size, Some(1400), "above the IPv6 minimum of 1280");
        rras.send_flow(&link, &UDP, 2);
        rras.send_flow(&six, &UDP, 2);
        let mut down = rras.miniport(Edge::WanIp).sent_frames();
        down.extend(rras.miniport(Edge::WanIpv6).sent_frames());
        assert_eq!(down.len(), 4);
        assert!(down.iter().all(|frame| ip_ttl(frame) == Some(9) && checksums_valid(frame)));
        assert_eq!(tunnel.filter().replaced(), 4);
    }
    finish(rras);
}

#[test]
fn vendors_meet_packets_in_altitude_order_whatever_the_registration_order() {
    let rras = started();
    {
        let connection = connect(&rras);
        let table = connection.table();
        let log = VendorLog::new();
        let _low = table.register("low", 100, RecordingVendor::new("low", &log)).expect("registered");
        let _high = table.register("high", 300, RecordingVendor::new("high", &log)).expect("registered");
        let _first = table.register("mid-1", 200, RecordingVendor::new("mid-1", &log)).expect("registered");
        let _second = table.register("mid-2", 200, RecordingVendor::new("mid-2", &log)).expect("registered");
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        rras.send_flow(&link, &UDP, 1);
        rras.receive_flow(&link, &UDP, 1, ReceiveOptions::default());
        assert_eq!(log.order(VendorCall::Packet(Direction::Send)), ["high", "mid-1", "mid-2", "low"], "down: high first");
        assert_eq!(log.order(VendorCall::Packet(Direction::Receive)), ["low", "mid-2", "mid-1", "high"], "up: low first");
        assert_eq!(log.order(VendorCall::LineUp).len(), 4);
    }
    finish(rras);
}

// ----- robustness -------------------------------------------------------------------------------

#[test]
fn vendors_register_and_deregister_at_any_time_under_traffic_and_every_packet_comes_home() {
    let rras = started();
    let four = rras.link_up(Edge::WanIp, LinkParams::new());
    let six = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let mut sent = Vec::new();
    let mut received = 0usize;
    {
        let connection = connect(&rras);
        let table = connection.table();
        let log = VendorLog::new();
        let mut takers = std::collections::VecDeque::new();
        let mut recorders = std::collections::VecDeque::new();
        for round in 0..24u32 {
            let link = if round % 2 == 0 { &four } else { &six };
            sent.extend(rras.send(link.edge, frames(link, WireDirection::Send, &UDP, round * 4, 4)));
            let options = if round % 3 == 0 { ReceiveOptions::resources() } else { ReceiveOptions::default() };
            rras.receive_with(link.edge, options, frames(link, WireDirection::Receive, &UDP, round * 4, 3));
            received += 3;
            match round % 4 {
                0 => takers.push_back(table.register("taker", 50 + round, TakingVendor::new(None)).expect("registered")),
                1 => {
                    recorders.push_back(table.register("recorder", 10 + round, RecordingVendor::new("recorder", &log)).expect("registered"))
                }
                2 => {
                    // A taker gives part of what it holds back, from outside any callback (a timer).
                    if let Some(taker) = takers.back() {
                        for result in taker.filter().give_back(&taker.provider(), ReinjectVerdict::Pass) {
                            assert_eq!(result, Ok(()));
                        }
                    }
                }
                _ => {
                    // The oldest taker leaves while it holds packets: they are handed on.
                    if let Some(taker) = takers.pop_front() {
                        taker.deregister().expect("deregistered");
                    }
                    if round % 8 == 7 {
                        recorders.pop_front();
                    }
                }
            }
            rras.step();
            rras.step();
        }
        let counts = provider_counts();
        assert_eq!(counts.registrations, 12);
        assert!(counts.deregistrations >= 6);
        drop(takers);
        drop(recorders);
        assert_eq!(provider_counts().registered, 0);
    }
    rras.run_until_idle();
    let protocol = (rras.protocol(Edge::WanIp), rras.protocol(Edge::WanIpv6));
    let done = |id| protocol.0.completion_of(id).or_else(|| protocol.1.completion_of(id));
    assert!(sent.iter().all(|id| done(*id) == Some(NdisStatus::SUCCESS)), "every send went down and completed");
    assert_eq!(protocol.0.received.len() + protocol.1.received.len(), received, "every receive went up");
    finish(rras);
}

#[test]
fn a_vendor_cannot_hand_on_or_drop_what_another_vendor_took() {
    let rras = started();
    {
        let connection = connect(&rras);
        let table = connection.table();
        let owner = table.register("owner", 20, TakingVendor::new(Some(Direction::Send))).expect("registered");
        let other = table.register("other", 10, TakingVendor::new(Some(Direction::Receive))).expect("registered");
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        let sent = rras.send_flow(&link, &UDP, 2);
        assert_eq!(owner.filter().held(), 2);
        let stolen = owner.filter().give_back(&other.provider(), ReinjectVerdict::Drop);
        assert_eq!(stolen, vec![Err(Status::ACCESS_DENIED); 2], "the tickets are another vendor's");
        assert!(rras.miniport(Edge::WanIp).sent.is_empty(), "still held for the vendor that took them");
        owner.deregister().expect("deregistered");
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 2, "handed on when the vendor that took them left");
        other.deregister().expect("deregistered");
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 2]);
    }
    finish(rras);
}

#[test]
fn a_vendor_that_never_gives_back_what_it_took_cannot_wedge_a_pause() {
    let rras = started();
    {
        let connection = connect(&rras);
        let table = connection.table();
        let taker = table.register("hoarder", 10, TakingVendor::new(None)).expect("registered");
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        let sent = rras.send_flow(&link, &UDP, 5);
        rras.receive_flow(&link, &UDP, 4, ReceiveOptions::resources());
        assert_eq!(taker.filter().held(), 9);
        assert_eq!(rras.pause(Edge::WanIp), Ok(PauseOutcome::Complete), "the pause completes at once");
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::PAUSED); 5]);
        let seen = counts(&rras, Edge::WanIp);
        assert_eq!((drops(&seen.send, DropReason::Paused), drops(&seen.receive, DropReason::Paused)), (5, 4), "bounded, counted");
        let given = taker.filter().give_back(&taker.provider(), ReinjectVerdict::Pass);
        assert_eq!(given, vec![Err(Status::NOT_FOUND); 9], "its tickets went stale");
        rras.restart(Edge::WanIp).expect("restarts");
        taker.deregister().expect("deregistered");
        let after = rras.send_flow(&link, &UDP, 2);
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &after), vec![Some(NdisStatus::SUCCESS); 2]);
    }
    finish(rras);
}

#[test]
fn a_vendor_that_drops_everything_cannot_wedge_a_pause_either() {
    let rras = started();
    {
        let connection = connect(&rras);
        let table = connection.table();
        let dropper = table.register("black-hole", 10, DroppingVendor::default()).expect("registered");
        let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
        let sent = rras.send_flow(&link, &UDP, 3);
        rras.receive_flow(&link, &UDP, 3, ReceiveOptions::default());
        assert_eq!(completions(&rras.protocol(Edge::WanIpv6), &sent), vec![Some(NdisStatus::FAILURE); 3]);
        assert_eq!(rras.pause(Edge::WanIpv6), Ok(PauseOutcome::Complete));
        assert_eq!(dropper.filter().dropped(), 6);
        let seen = counts(&rras, Edge::WanIpv6);
        assert_eq!((drops(&seen.send, DropReason::Hook), drops(&seen.receive, DropReason::Hook)), (3, 3));
    }
    finish(rras);
}

#[test]
fn wanlayer_unloading_with_vendors_registered_revokes_them_and_stale_calls_get_device_removed() {
    let rras = started();
    {
        let connection = connect(&rras);
        let table = connection.table();
        let log = VendorLog::new();
        let taker = table.register("taker", 200, TakingVendor::new(Some(Direction::Send))).expect("registered");
        let recorder = table.register("below", 100, RecordingVendor::new("below", &log)).expect("registered");
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        let sent = rras.send_flow(&link, &UDP, 3);
        assert!(rras.miniport(Edge::WanIp).sent.is_empty());
        let provider = taker.provider();
        let stale = Ticket { module: 0, reserved: 0, serial: 1 };

        assert_eq!(revoke_all(&rras), 2, "what DriverUnload does first with registrations left");
        assert!(taker.is_revoked() && taker.filter().was_unloaded(), "OnProviderUnload was called");
        assert!(recorder.is_revoked());
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 3, "what the taker held was handed on, down the chain");
        let below = log.order(VendorCall::Packet(Direction::Send));
        assert_eq!(below.len(), 3, "through the filter below it, still registered while the taker was revoked");
        rras.send_flow(&link, &UDP, 2);
        assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 5, "traffic passes");
        assert_eq!(log.order(VendorCall::Packet(Direction::Send)).len(), 3, "no callback after revocation");
        assert_eq!(taker.filter().held(), 3, "no callback reached the taker");

        assert_eq!(provider.reinject(stale, ReinjectVerdict::Pass), Err(Status::DEVICE_REMOVED));
        assert_eq!(provider.links(&mut []), Err(Status::DEVICE_REMOVED));
        assert_eq!(table.register("late", 1, DroppingVendor::default()).map(|_| ()), Err(Status::DEVICE_REMOVED));
        assert_eq!(try_connect(&rras).map(|_| ()), Err(Status::DEVICE_REMOVED), "no table is handed out any more");
        let counts = provider_counts();
        assert_eq!((counts.revocations, counts.registered, counts.deregistrations), (2, 0, 0));
        // Dropping the registrations makes no call into the revoked provider.
        drop(taker);
        drop(recorder);
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 3]);
    }
    finish(rras);
}

unsafe extern "system" fn count_unload(context: *mut c_void) {
    // SAFETY: the registration's context: the scenario's counter, which outlives the driver.
    let unloads = unsafe { &*context.cast::<AtomicU32>() };
    unloads.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn driver_unload_revokes_a_registration_whose_vendor_let_go_of_the_control_device_first() {
    let mut rras = started();
    let unloads = AtomicU32::new(0);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    {
        let connection = connect(&rras);
        let (_, _, table) = query(&rras, &connection, &ProviderRequest::current(), TABLE_LEN);
        let c_vendor = FilterRegistration {
            context: std::ptr::from_ref(&unloads).cast_mut().cast(),
            on_provider_unload: Some(count_unload),
            ..registration(b"careless", pass)
        };
        let (status, handle) = register_raw(&table, &c_vendor);
        assert_eq!((status, provider_counts().registered), (Status::SUCCESS, 1));
        assert_ne!(handle, 0);
        // The contract broken: the reference on \Device\WanLayer dropped with the registration
        // still there (IRP_MJ_CLEANUP and IRP_MJ_CLOSE reach the driver), so nothing keeps the
        // I/O manager from unloading wanlayer.sys.
        rras.filter().vendor_call(false, || drop(connection));
    }
    rras.send_flow(&link, &UDP, 2);
    assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 2, "the registration still sees traffic");
    rras.run_until_idle();
    rras.unload();
    assert_eq!(unloads.load(Ordering::Relaxed), 1, "DriverUnload called its OnProviderUnload, once");
    let said = "unload: revoked 1 vendor registration(s) whose driver let go of \\Device\\WanLayer first";
    assert!(rras.log().iter().any(|line| line.contains(said)), "and logged it as an error: {:?}", rras.log());
    rras.verifier().assert_clean();
    wanlayer_tests::setup::assert_settled(&rras);
}
