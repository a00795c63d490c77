//! The administrator's rule set in a simulated RRAS server: rules compiled in user mode, set
//! through the control device (or the engine's API), run as a built-in hook — drop, count,
//! capture, priorities — replaced atomically under traffic, refused when stale or reserved,
//! kept through failed allocations, persisted across a driver reload, and a corrupt saved set
//! refused at start. Every scenario ends with the verifier clean and every pool back at zero.

use wanlayer_core::event::Event;
use wanlayer_core::hook::Direction;
use wanlayer_core::rules::{ReplaceError, SavedRules, RULES_HOOK_NAME};
use wanlayer_core::stats::DropReason;
use wanlayer_core::NdisStatus;
use wanlayer_kernel_model::low_resources;
use wanlayer_proto::ioctl::{IOCTL_CAPTURE_READ, IOCTL_CAPTURE_START, IOCTL_GET_RULES, IOCTL_RULE_STATS, IOCTL_SET_RULES};
use wanlayer_proto::{
    Access, CaptureBatch, CaptureBatchRepr, CaptureStart, CaptureStartRepr, Expected, HeaderOnly, ReadRequest, ReadRequestRepr,
    RuleStatsEntryRepr, RuleStatsList, RuleStatsListRepr, RuleStatsQuery, RuleStatsQueryRepr, RulesInfo, RulesInfoRepr, RulesSet,
    RulesSetRepr, RulesVersion, RulesVersionRepr, Status, Target,
};
use wanlayer_rules::{compile, Action, RuleSource};
use wanlayer_sim::{Edge, Flow, HandleId, IoOutcome, LinkParams, ReceiveOptions, Rras, SimLink};
use wanlayer_sim_driver::heap::{DriverHeap, HEAP_TAG};
use wanlayer_sim_driver::DriverFilter;
use wanlayer_tests::setup::{completions, counts, drain_events, drops, finish, module, started};

/// The driver's heap is kernel pool, as in the kernel: a rule set's allocations fail through the
/// kernel model.
#[global_allocator]
static HEAP: DriverHeap = DriverHeap;

/// SMB: a TCP flow whose client side is port 445, so sends (server → client) go to port 445.
const SMB: Flow = Flow { transport: wanlayer_sim::Transport::Tcp, server_port: 40_000, client_port: 445, payload_len: 64 };
/// SIP: UDP port 5060 on both sides.
const SIP: Flow = Flow { transport: wanlayer_sim::Transport::Udp, server_port: 5060, client_port: 5060, payload_len: 64 };
/// DNS.
const DNS: Flow = Flow { transport: wanlayer_sim::Transport::Udp, server_port: 53, client_port: 40_000, payload_len: 64 };
/// Web.
const WEB: Flow = Flow { transport: wanlayer_sim::Transport::Tcp, server_port: 443, client_port: 50_000, payload_len: 64 };

/// The driver's `Parameters` key under the service key the simulator's `DriverEntry` is given:
/// where wanlayer.sys keeps the administrator's rule set (`Rules`, `RulesAltitude`).
const PARAMETERS: &str = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer\\Parameters";

/// The registry's `REG_BINARY` (the compiled set) and `REG_DWORD` (its altitude) value types.
const REG_BINARY: u32 = 3;
const REG_DWORD: u32 = 4;

/// Compiles `(id, priority, action, filter)` rules.
fn blob(rules: &[(u32, u32, Action, &str)]) -> Vec<u8> {
    let sources: Vec<RuleSource<'_>> =
        rules.iter().map(|&(id, priority, action, filter)| RuleSource { id, priority, action, filter }).collect();
    compile(&sources).unwrap_or_else(|error| panic!("the rules compile: {error}"))
}

/// The engine's identity of a simulated link.
fn link_id(rras: &Rras<DriverFilter>, link: &SimLink) -> u64 {
    rras.engine().with_link(module(rras, link.edge), &link.remote, |l| l.id().0).expect("the link is up")
}

/// The per-rule counters `(id, send packets, send bytes, receive packets, receive bytes)`.
fn rule_counts(rras: &Rras<DriverFilter>) -> Vec<(u32, u64, u64, u64, u64)> {
    let mut counts = Vec::new();
    rras.engine().visit_rule_counts(0, |rule| {
        counts.push((rule.id, rule.send.0, rule.send.1, rule.receive.0, rule.receive.1));
        true
    });
    counts
}

fn bytes_of(frames: &[Vec<u8>]) -> u64 {
    frames.iter().map(|frame| frame.len() as u64).sum()
}

/// The control device of a server (the driver's dispatch routines), with one read-write handle.
struct Device {
    handle: HandleId,
}

impl Device {
    fn install(rras: &Rras<DriverFilter>) -> Self {
        let handle = rras.filter().control_open(Access::READ_WRITE).expect("the device opens");
        Self { handle }
    }

    fn call(&self, rras: &Rras<DriverFilter>, code: u32, input: &[u8], output_len: usize) -> Result<Vec<u8>, Status> {
        match rras.filter().control_ioctl(self.handle, code, input, output_len) {
            IoOutcome::Complete(done) if done.status == Status::Success => Ok(done.output),
            IoOutcome::Complete(done) => Err(done.status),
            IoOutcome::Pending(io) => panic!("{io:?} pended"),
        }
    }

    fn set_rules(&self, rras: &Rras<DriverFilter>, expected: Expected, altitude: u32, blob: &[u8]) -> Result<u64, Status> {
        let request = RulesSetRepr { expected, altitude, blob };
        let mut input = vec![0u8; request.buffer_len()];
        request.emit(&mut RulesSet::new_unchecked(&mut input[..])).unwrap();
        let output = self.call(rras, IOCTL_SET_RULES, &input, 16)?;
        Ok(RulesVersionRepr::parse(&RulesVersion::new_unchecked(&output[..])).unwrap().version)
    }

    /// `(version, altitude, rules, blob)`.
    fn get_rules(&self, rras: &Rras<DriverFilter>) -> (u64, u32, u32, Vec<u8>) {
        let mut input = [0u8; 8];
        HeaderOnly.emit(&mut input).unwrap();
        let output = self.call(rras, IOCTL_GET_RULES, &input, 1 << 16).unwrap();
        let repr = RulesInfoRepr::parse(&RulesInfo::new_unchecked(&output[..])).unwrap();
        (repr.version, repr.altitude, repr.rules, repr.blob.expect("the blob fits").to_vec())
    }

    fn rule_stats(&self, rras: &Rras<DriverFilter>) -> (u64, Vec<RuleStatsEntryRepr>) {
        let mut input = [0u8; 16];
        RuleStatsQueryRepr { first: 0 }.emit(&mut RuleStatsQuery::new_unchecked(&mut input[..])).unwrap();
        let output = self.call(rras, IOCTL_RULE_STATS, &input, 4096).unwrap();
        let view = RuleStatsList::new_unchecked(&output[..]);
        let repr = RuleStatsListRepr::parse(&view).unwrap();
        (repr.version, view.entries().map(Result::unwrap).collect())
    }

    fn start_capture(&self, rras: &Rras<DriverFilter>, target: Target) -> Result<(), Status> {
        let mut input = [0u8; 32];
        CaptureStartRepr { target, snap_len: 2048, slots: 64 }.emit(&mut CaptureStart::new_unchecked(&mut input[..])).unwrap();
        self.call(rras, IOCTL_CAPTURE_START, &input, 40).map(|_| ())
    }

    /// `(link id, frame)` of every record.
    fn read_capture(&self, rras: &Rras<DriverFilter>) -> Vec<(Option<u64>, Vec<u8>)> {
        let mut input = [0u8; 16];
        ReadRequestRepr { max_records: 1000, wait: false }.emit(&mut ReadRequest::new_unchecked(&mut input[..])).unwrap();
        let output = self.call(rras, IOCTL_CAPTURE_READ, &input, 1 << 20).unwrap();
        let view = CaptureBatch::new_unchecked(&output[..]);
        CaptureBatchRepr::parse(&view).unwrap();
        view.records().map(Result::unwrap).map(|record| (record.link_id, record.data.to_vec())).collect()
    }

    fn close(self, rras: &Rras<DriverFilter>) {
        rras.filter().control_close(self.handle);
    }
}

#[test]
fn tcp_to_445_is_dropped_on_one_link_only_and_counted_per_rule() {
    let rras = started();
    let ppp = rras.link_up(Edge::WanIp, LinkParams::new());
    let other = rras.link_up(Edge::WanIp, LinkParams::new());
    let rules = blob(&[(10, 100, Action::Drop, &format!("link {} and tcp dst port 445", link_id(&rras, &ppp)))]);
    assert_eq!(rras.engine().replace_rules(Expected::Version(0), 500, &rules), Ok(1));

    let dropped = rras.send_flow(&ppp, &SMB, 3);
    let passed = rras.send_flow(&other, &SMB, 2);
    let web = rras.send_flow(&ppp, &WEB, 2);
    rras.run_until_idle();

    let protocol = rras.protocol(Edge::WanIp);
    assert_eq!(completions(&protocol, &dropped), vec![Some(NdisStatus::FAILURE); 3], "SMB to the PPP link is dropped");
    assert_eq!(completions(&protocol, &passed), vec![Some(NdisStatus::SUCCESS); 2], "SMB on another link passes");
    assert_eq!(completions(&protocol, &web), vec![Some(NdisStatus::SUCCESS); 2], "other traffic on the link passes");
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((drops(&seen.send, DropReason::Hook), seen.send.traffic.drops), (3, 3), "a rule drop is a hook drop on the module");
    let smb = (0..3).map(|seq| ppp.frame(Direction::Send, &SMB, seq)).collect::<Vec<_>>();
    assert_eq!(rule_counts(&rras), [(10, 3, bytes_of(&smb), 0, 0)]);
    let mut listed = Vec::new();
    rras.engine().visit_hooks(|hook| listed.push((hook.name.as_str().to_owned(), hook.altitude, hook.send.dropped)));
    assert_eq!(listed, [(RULES_HOOK_NAME.to_owned(), 500, 3)], "the set is a hook in the chain, at its altitude");
    finish(rras);
}

#[test]
fn a_device_rule_matches_the_link_whose_device_name_it_names() {
    let rras = started();
    let named = rras.link_up(Edge::WanIp, LinkParams::new());
    let other = rras.link_up(Edge::WanIp, LinkParams::new());
    assert!(!named.device_name.is_empty() && named.device_name != other.device_name);
    let filter = format!("device \"{}\" and udp", named.device_name.to_ascii_lowercase());
    rras.engine().replace_rules(Expected::Any, 500, &blob(&[(40, 100, Action::Drop, &filter)])).unwrap();
    let dropped = rras.send_flow(&named, &DNS, 2);
    let passed = rras.send_flow(&other, &DNS, 2);
    rras.run_until_idle();
    let protocol = rras.protocol(Edge::WanIp);
    assert_eq!(completions(&protocol, &dropped), vec![Some(NdisStatus::FAILURE); 2], "the named device, ignoring ASCII case");
    assert_eq!(completions(&protocol, &passed), vec![Some(NdisStatus::SUCCESS); 2]);
    finish(rras);
}

#[test]
fn a_count_rule_counts_a_subnet_both_ways_and_passes_it() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let rules = blob(&[(20, 100, Action::Count, "net 10.100.0.0/16")]);
    rras.engine().replace_rules(Expected::Any, 500, &rules).unwrap();
    let sent = rras.send_flow(&link, &DNS, 4);
    rras.receive_flow(&link, &DNS, 3, ReceiveOptions::default());
    rras.run_until_idle();

    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 4]);
    assert_eq!(rras.protocol(Edge::WanIp).received_frames().len(), 3, "counted receives go on up");
    let send_bytes = bytes_of(&(0..4).map(|seq| link.frame(Direction::Send, &DNS, seq)).collect::<Vec<_>>());
    let receive_bytes = bytes_of(&(0..3).map(|seq| link.frame(Direction::Receive, &DNS, seq)).collect::<Vec<_>>());
    assert_eq!(rule_counts(&rras), [(20, 4, send_bytes, 3, receive_bytes)]);
    let device = Device::install(&rras);
    let (version, stats) = device.rule_stats(&rras);
    assert_eq!(
        (version, stats.len(), stats[0].send, stats[0].receive),
        (1, 1, (4, send_bytes), (3, receive_bytes)),
        "RULE_STATS says the same"
    );
    device.close(&rras);
    finish(rras);
}

#[test]
fn a_capture_rule_copies_sip_of_one_link_into_its_rule_session() {
    let rras = started();
    let voice = rras.link_up(Edge::WanIp, LinkParams::new());
    let other = rras.link_up(Edge::WanIp, LinkParams::new());
    let voice_id = link_id(&rras, &voice);
    let device = Device::install(&rras);
    let rules = blob(&[(30, 100, Action::Capture, &format!("link {voice_id} and udp port 5060"))]);
    device.set_rules(&rras, Expected::Version(0), 500, &rules).unwrap();
    device.start_capture(&rras, Target::Rule(30)).unwrap();

    let sip = rras.send_flow(&voice, &SIP, 2);
    rras.receive_flow(&voice, &SIP, 1, ReceiveOptions::default());
    rras.send_flow(&other, &SIP, 2);
    rras.send_flow(&voice, &DNS, 2);
    rras.run_until_idle();

    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sip), vec![Some(NdisStatus::SUCCESS); 2], "captured packets go on");
    let captured = device.read_capture(&rras);
    let expected = vec![
        (Some(voice_id), voice.frame(Direction::Send, &SIP, 0)),
        (Some(voice_id), voice.frame(Direction::Send, &SIP, 1)),
        (Some(voice_id), voice.frame(Direction::Receive, &SIP, 0)),
    ];
    assert_eq!(captured, expected, "only SIP of the voice link, whole frames, in order");
    assert_eq!(rule_counts(&rras).first().map(|counts| (counts.1, counts.3)), Some((2, 1)));
    device.close(&rras);
    finish(rras);
}

#[test]
fn the_lowest_priority_value_wins_and_equal_priorities_keep_file_order() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let rules = blob(&[
        (1, 200, Action::Drop, "udp"),
        (2, 100, Action::Pass, "udp port 53"),
        (3, 300, Action::Count, "tcp"),
        (4, 300, Action::Drop, "tcp"),
    ]);
    rras.engine().replace_rules(Expected::Any, 500, &rules).unwrap();
    let dns = rras.send_flow(&link, &DNS, 2);
    let sip = rras.send_flow(&link, &SIP, 2);
    let web = rras.send_flow(&link, &WEB, 2);
    rras.run_until_idle();

    let protocol = rras.protocol(Edge::WanIp);
    assert_eq!(completions(&protocol, &dns), vec![Some(NdisStatus::SUCCESS); 2], "priority 100 pass beats priority 200 drop");
    assert_eq!(completions(&protocol, &sip), vec![Some(NdisStatus::FAILURE); 2], "other UDP meets the drop");
    assert_eq!(completions(&protocol, &web), vec![Some(NdisStatus::SUCCESS); 2], "of two equal priorities the earlier rule (count) wins");
    let mut matched: Vec<(u32, u64)> = rule_counts(&rras).into_iter().map(|(id, packets, ..)| (id, packets)).collect();
    matched.sort_unstable();
    assert_eq!(matched, [(1, 2), (2, 2), (3, 2), (4, 0)]);
    finish(rras);
}

#[test]
fn a_replacement_under_traffic_gives_every_packet_the_old_set_or_the_new_one() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let dropping = blob(&[(1, 100, Action::Drop, "udp port 53"), (2, 200, Action::Count, "udp")]);
    let counting = blob(&[(3, 100, Action::Count, "udp port 53"), (4, 200, Action::Drop, "udp")]);
    let mut version = 0;
    for round in 0..12u32 {
        let (set, dns_fate, sip_fate) = if round % 2 == 0 {
            (&dropping, NdisStatus::FAILURE, NdisStatus::SUCCESS)
        } else {
            (&counting, NdisStatus::SUCCESS, NdisStatus::FAILURE)
        };
        version = rras.engine().replace_rules(Expected::Version(version), 500 + round, set).unwrap();
        // A chain whose first packets the set meets now and whose last ones it meets after the
        // deferred completions of the previous round ran: no packet may see half of each set.
        let dns = rras.send(Edge::WanIp, (0..3).map(|seq| link.frame(Direction::Send, &DNS, round * 10 + seq)));
        let sip = rras.send(Edge::WanIp, (0..3).map(|seq| link.frame(Direction::Send, &SIP, round * 10 + seq)));
        rras.run_until_idle();
        let protocol = rras.protocol(Edge::WanIp);
        assert_eq!(completions(&protocol, &dns), vec![Some(dns_fate); 3], "round {round}: DNS");
        assert_eq!(completions(&protocol, &sip), vec![Some(sip_fate); 3], "round {round}: SIP");
        let matched: u64 = rule_counts(&rras).iter().map(|counts| counts.1).sum();
        assert_eq!(matched, 6, "round {round}: every packet counted once, by the set in force");
    }
    assert_eq!(version, 12);
    finish(rras);
}

#[test]
fn a_stale_version_is_refused_and_replace_any_is_not() {
    let rras = started();
    let device = Device::install(&rras);
    let first = blob(&[(1, 100, Action::Drop, "tcp port 23")]);
    let second = blob(&[(2, 100, Action::Drop, "tcp port 21")]);
    assert_eq!(device.get_rules(&rras), (0, 0, 0, Vec::new()), "no set yet: version 0");
    assert_eq!(device.set_rules(&rras, Expected::Version(0), 300, &first), Ok(1), "the first administrator read version 0");
    assert_eq!(
        device.set_rules(&rras, Expected::Version(0), 300, &second),
        Err(Status::TransactionalConflict),
        "the second administrator read version 0 too: refused"
    );
    assert_eq!(device.get_rules(&rras), (1, 300, 1, first.clone()), "the first set stays, exactly as set");
    assert_eq!(device.set_rules(&rras, Expected::Version(1), 400, &second), Ok(2), "after reading again it works");
    assert_eq!(device.set_rules(&rras, Expected::Any, 400, &first), Ok(3), "replace-any ignores the version");
    assert_eq!(device.set_rules(&rras, Expected::Version(3), 400, &[1, 2, 3]), Err(Status::InvalidParameter), "a malformed set");
    assert_eq!(device.set_rules(&rras, Expected::Version(3), 400, &[]), Ok(4), "an empty set clears the rules");
    assert_eq!(device.get_rules(&rras).2, 0);
    let mut hooks = 0;
    rras.engine().visit_hooks(|_| hooks += 1);
    assert_eq!(hooks, 0, "with no rules the set leaves the chain");
    device.close(&rras);
    finish(rras);
}

#[test]
fn setting_rules_needs_write_access_reading_them_read_access() {
    let rras = started();
    let control = rras.filter();
    let reader = control.control_open(Access::READ).expect("opens");
    let request = RulesSetRepr { expected: Expected::Any, altitude: 1, blob: &[] };
    let mut input = vec![0u8; request.buffer_len()];
    request.emit(&mut RulesSet::new_unchecked(&mut input[..])).unwrap();
    let status = |outcome: IoOutcome| match outcome {
        IoOutcome::Complete(done) => done.status,
        IoOutcome::Pending(io) => panic!("{io:?} pended"),
    };
    assert_eq!(status(control.control_ioctl(reader, IOCTL_SET_RULES, &input, 16)), Status::AccessDenied);
    let mut header = [0u8; 8];
    HeaderOnly.emit(&mut header).unwrap();
    assert_eq!(status(control.control_ioctl(reader, IOCTL_GET_RULES, &header, 64)), Status::Success);
    assert_eq!(status(control.control_ioctl(reader, IOCTL_GET_RULES, &header, 31)), Status::BufferTooSmall);
    let writer = control.control_open(Access::READ_WRITE).expect("opens");
    assert_eq!(
        status(control.control_ioctl(writer, IOCTL_SET_RULES, &input, 15)),
        Status::BufferTooSmall,
        "checked before anything changes"
    );
    assert_eq!(rras.engine().with_rules(|rules| rules.version), 0);
    control.control_close(reader);
    control.control_close(writer);
    finish(rras);
}

#[test]
fn divert_is_refused_until_user_mode_hooks_exist() {
    let rras = started();
    let device = Device::install(&rras);
    let first = blob(&[(1, 100, Action::Count, "udp")]);
    device.set_rules(&rras, Expected::Any, 300, &first).unwrap();
    let diverting = blob(&[(1, 100, Action::Count, "udp"), (2, 50, Action::Divert, "tcp port 80")]);
    assert_eq!(device.set_rules(&rras, Expected::Version(1), 300, &diverting), Err(Status::NotSupported));
    assert_eq!(
        rras.engine().replace_rules(Expected::Version(1), 300, &diverting),
        Err(ReplaceError::DivertReserved { id: 2 }),
        "the engine says which rule"
    );
    assert_eq!(device.get_rules(&rras), (1, 300, 1, first), "the set in force stays");
    device.close(&rras);
    finish(rras);
}

#[test]
fn every_failed_allocation_during_a_replacement_keeps_the_old_set() {
    // The rule set is the engine's memory: the driver's heap, pool tagged `WLrs` (this binary's
    // global allocator is `DriverHeap`), replaced through the control device as an administrator
    // replaces it; the kernel model fails its allocations.
    let rras = started();
    let device = Device::install(&rras);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let old = blob(&[(1, 100, Action::Drop, "udp port 53")]);
    let new = blob(&[(2, 100, Action::Drop, "tcp port 443"), (3, 200, Action::Count, "udp")]);
    device.set_rules(&rras, Expected::Any, 500, &old).unwrap();
    low_resources::refuse_pool_tag(HEAP_TAG);
    assert_eq!(device.set_rules(&rras, Expected::Version(1), 500, &new), Err(Status::InsufficientResources));
    low_resources::allow_pool_tag(HEAP_TAG);
    let mut failures = 0;
    for step in 1.. {
        low_resources::plan(Some(low_resources::allocations() + step));
        let result = device.set_rules(&rras, Expected::Version(1), 600, &new);
        low_resources::heal();
        if result.is_ok() {
            break;
        }
        failures += 1;
        assert_eq!(result, Err(Status::InsufficientResources), "allocation {step} of the replacement");
        let kept = rras.engine().with_rules(|rules| (rules.version, rules.altitude, rules.set.blob().to_vec()));
        assert_eq!(kept, (1, 500, old.clone()), "allocation {step} failed: the old set is in force");
        let dns = rras.send_flow(&link, &DNS, 1);
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(Edge::WanIp), &dns), [Some(NdisStatus::FAILURE)], "and it still drops DNS");
    }
    assert!(failures >= 2, "the set and its counters are both allocated: {failures} failure points");
    println!("the replacement failed cleanly at each of its {failures} allocations");
    let web = rras.send_flow(&link, &WEB, 1);
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &web), [Some(NdisStatus::FAILURE)], "the new set, once allocations succeed");
    device.close(&rras);
    finish(rras);
}

#[test]
fn the_rule_set_survives_a_driver_reload_in_the_same_world() {
    // The kernel model's registry: the driver's own save, DriverUnload, DriverEntry and load.
    let mut rras = started();
    let rules = blob(&[(7, 100, Action::Drop, "udp port 53")]);
    rras.engine().replace_rules(Expected::Any, 700, &rules).unwrap();
    let saved =
        (wanlayer_kernel_model::registry_value(PARAMETERS, "Rules"), wanlayer_kernel_model::registry_value(PARAMETERS, "RulesAltitude"));
    assert_eq!(saved, (Some((REG_BINARY, rules.clone())), Some((REG_DWORD, 700u32.to_le_bytes().to_vec()))), "saved after the replacement");
    rras.unload();
    rras.verifier().assert_clean();
    assert_eq!(wanlayer_kernel_model::open_key_handles(), 0, "every key handle closed");
    rras.reload().expect("the driver loads again");
    rras.start().expect("the server starts again");

    let kept = rras.engine().with_rules(|set| (set.version, set.altitude, set.set.blob().to_vec()));
    assert_eq!(kept, (1, 700, rules), "loaded at driver entry, with its altitude");
    let events: Vec<Event> = drain_events(rras.engine()).into_iter().map(|record| record.event).collect();
    assert!(events.contains(&Event::RulesReplaced { version: 1, altitude: 700, rules: 1 }), "{events:?}");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let dns = rras.send_flow(&link, &DNS, 2);
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &dns), vec![Some(NdisStatus::FAILURE); 2], "and it is in force");
    finish(rras);
}

#[test]
fn a_corrupt_saved_set_is_refused_at_start_reported_and_the_filter_runs_with_no_rules() {
    // The kernel model's registry, read by the driver's DriverEntry.
    let mut rras = started();
    rras.unload();
    wanlayer_kernel_model::set_registry_value(PARAMETERS, "Rules", REG_BINARY, &[0x57, 0x4c, 0x52, 0x31, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    wanlayer_kernel_model::set_registry_value(PARAMETERS, "RulesAltitude", REG_DWORD, &900u32.to_le_bytes());
    rras.reload().expect("a corrupt saved set never fails the start");
    rras.start().expect("the server starts");

    assert_eq!(rras.engine().with_rules(|rules| (rules.version, rules.set.len())), (0, 0), "no rules");
    let refused = drain_events(rras.engine()).into_iter().find_map(|record| match record.event {
        Event::RulesRefused { error, altitude, blob_len } => Some((error != 0, altitude, blob_len)),
        _ => None,
    });
    assert_eq!(refused, Some((true, 900, 11)), "reported as an event with the loader's error code");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let dns = rras.send_flow(&link, &DNS, 2);
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &dns), vec![Some(NdisStatus::SUCCESS); 2]);
    finish(rras);
}

#[test]
fn a_set_that_finds_every_hook_slot_taken_is_refused_and_nothing_changes() {
    let rras = started();
    let hooks: Vec<_> = (0..wanlayer_core::hook::MAX_HOOKS)
        .map(|n| rras.engine().add_hook("vendor", n as u32, wanlayer_tests::sample_hooks::CountingHook::new()).expect("a free hook slot"))
        .collect();
    let rules = blob(&[(1, 1, Action::Drop, "udp")]);
    assert_eq!(rras.engine().replace_rules(Expected::Version(0), 500, &rules), Err(ReplaceError::NoHookSlot));
    assert_eq!(rras.engine().with_rules(|set| (set.version, set.altitude, set.set.len())), (0, 0, 0), "no half-installed set");
    rras.engine().remove_hook(hooks[0]).unwrap();
    assert_eq!(rras.engine().replace_rules(Expected::Version(0), 500, &rules), Ok(1), "a free slot, and it joins");
    finish(rras);
}

#[test]
fn malformed_rules_requests_are_refused_without_harm() {
    let rras = started();
    let device = Device::install(&rras);
    let rules = blob(&[(1, 100, Action::Count, "udp port 53"), (2, 200, Action::Drop, "tcp port 23")]);
    let request = RulesSetRepr { expected: Expected::Any, altitude: 10, blob: &rules };
    let mut valid = vec![0u8; request.buffer_len()];
    request.emit(&mut RulesSet::new_unchecked(&mut valid[..])).unwrap();
    let mut query = [0u8; 16];
    RuleStatsQueryRepr { first: 0 }.emit(&mut RuleStatsQuery::new_unchecked(&mut query[..])).unwrap();
    let mut refused = 0;
    for at in 0..valid.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut changed = valid.clone();
            changed[at] = value;
            for output_len in [0, 15, 16, 64] {
                if device.call(&rras, IOCTL_SET_RULES, &changed, output_len).is_err() {
                    refused += 1;
                }
            }
            let _ = device.call(&rras, IOCTL_GET_RULES, &changed[..8], 40);
        }
        let mut stats = query;
        stats[at % query.len()] ^= 0xff;
        let _ = device.call(&rras, IOCTL_RULE_STATS, &stats, at % 200);
    }
    for len in 0..valid.len() {
        assert!(device.call(&rras, IOCTL_SET_RULES, &valid[..len], 16).is_err(), "a request cut to {len} bytes is refused");
    }
    assert!(refused > 0);
    let (version, _, _, blob_in_force) = device.get_rules(&rras);
    assert!(blob_in_force.is_empty() || wanlayer_rules::RuleSet::load(&blob_in_force).is_ok(), "only validated sets are ever in force");
    assert_eq!(rras.engine().with_rules(|rules| rules.version), version);
    device.close(&rras);
    finish(rras);
}

#[test]
fn load_saved_rules_reports_what_it_did() {
    // The kernel model's registry, read through the driver's rule store.
    let rras = started();
    assert_eq!(rras.engine().load_saved_rules(), SavedRules::None, "nothing saved");
    let rules = blob(&[(1, 1, Action::Count, "ip")]);
    wanlayer_kernel_model::set_registry_value(PARAMETERS, "Rules", REG_BINARY, &rules);
    wanlayer_kernel_model::set_registry_value(PARAMETERS, "RulesAltitude", REG_DWORD, &5u32.to_le_bytes());
    assert_eq!(rras.engine().load_saved_rules(), SavedRules::Loaded { version: 1, rules: 1 });
    wanlayer_kernel_model::set_registry_value(PARAMETERS, "Rules", REG_BINARY, &[9; 4]);
    assert!(matches!(rras.engine().load_saved_rules(), SavedRules::Refused(ReplaceError::Invalid(_))));
    assert_eq!(rras.engine().with_rules(|rules| rules.version), 1, "a refused set leaves the one in force");
    finish(rras);
}
