//! The client over the simulator transport: the same `Client` code a Windows tool runs, against
//! `wanlayer.sys`'s own control device (its dispatch routines over the kernel model) in a
//! simulated RRAS server.
#![cfg(all(feature = "simulator", not(windows)))]

use std::time::Duration;

use wanlayer_client::pcapng::PcapngWriter;
use wanlayer_client::sim::SimServer;
use wanlayer_client::{Client, ClientError};
use wanlayer_core::wire::{EtherType, MacAddress};
use wanlayer_core::NdisStatus;
use wanlayer_proto::display::{capability_names, ProtocolText};
use wanlayer_proto::{Access, Direction, EventKind, ModuleKind, RuleAction, Status, Target};
use wanlayer_sim::{Edge, Flow, Rras, StatusBuffer, StatusIndication, WanLineUp};
use wanlayer_sim_driver::DriverFilter;

fn finish(server: SimServer) {
    let mut rras = server.into_rras();
    rras.unload();
    rras.verifier().assert_clean();
    assert!(rras.pools().iter().all(|(_, usage)| usage.current == 0), "pools back to zero: {:?}", rras.pools());
}

#[test]
fn queries_of_the_scripted_server() {
    let server = SimServer::scripted().unwrap();
    {
        let mut client = Client::connect(server.open(Access::READ).unwrap()).unwrap();
        let version = client.version().unwrap();
        assert_eq!(version.interface_version, wanlayer_proto::INTERFACE_VERSION);
        assert!(capability_names(version.features.unwrap().capabilities).any(|name| name == "capture"));
        let modules = client.modules().unwrap();
        let kinds: Vec<ModuleKind> = modules.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, [ModuleKind::NdisWanIp, ModuleKind::NdisWanIpv6, ModuleKind::Other]);
        assert_eq!(modules[0].id, 0x0001_0000);
        let links: Vec<_> = client.links(None, false).unwrap().iter().map(|l| l.entry().link_id).collect();
        assert_eq!(links.len(), 3);
        let protocols: Vec<String> =
            client.links(None, false).unwrap().iter().map(|l| ProtocolText(l.entry().protocol_type).to_string()).collect();
        assert_eq!(protocols, ["IPv4", "IPv4", "IPv6"]);
        let first = client.links(None, false).unwrap()[0].clone();
        assert_eq!(first.entry().link_speed_100bps, 20_480);
        assert!(first.entry().protocol_buffer.is_empty());
        let with_buffer = client.links(Some(modules[0].id), true).unwrap();
        assert_eq!((with_buffer.len(), with_buffer[0].entry().protocol_buffer.len()), (2, 600));
        let hooks = client.hooks().unwrap();
        assert_eq!((hooks.len(), hooks[0].name.as_str()), (1, "telnet-block"));
        let stats = client.module_stats(modules[0].id).unwrap();
        assert_eq!(stats.send.packets, 2 * 4);
        let link_stats = client.link_stats(links[2]).unwrap();
        assert_eq!((link_stats.send.packets, link_stats.receive.packets), (4, 4));
        assert_eq!(client.hook_stats(hooks[0].id).unwrap().receive.seen, 12);
        assert_eq!(client.link_stats(4242), Err(ClientError::Driver(Status::NotFound)));
        let denied = client.reset_stats(Target::All).unwrap_err();
        assert!(denied.is_access_denied(), "a read-only handle cannot reset: {denied}");
    }
    finish(server);
}

#[test]
fn many_links_come_in_several_batches() {
    let rras = Rras::new(DriverFilter::new());
    rras.start().unwrap();
    for n in 0u32..3000 {
        let b = n.to_be_bytes();
        let line_up = WanLineUp {
            link_speed_100bps: 1,
            maximum_total_size: 1400,
            quality: wanlayer_core::link::WanQuality::Raw,
            send_window: 1,
            remote_address: MacAddress([0x3e, b[1], b[2], b[3], 0x41, 0x53]),
            local_address: MacAddress([0; 6]),
            protocol_type: EtherType::Ipv4,
            device_name: Vec::new(),
            protocol_buffer: Vec::new(),
        };
        rras.indicate_status(Edge::WanIp, StatusIndication::new(NdisStatus::WAN_LINE_UP, StatusBuffer::LineUp(line_up)));
    }
    let server = SimServer::new(rras);
    {
        let mut client = Client::connect(server.open(Access::READ).unwrap()).unwrap();
        let first = client.links_batch(None, 0, false).unwrap();
        assert_eq!((first.links.len(), first.end, first.next_cursor), (1024, false, 1024));
        let all = client.links(None, false).unwrap();
        assert_eq!(all.iter().map(|l| l.entry().link_id).collect::<Vec<_>>(), (1..=3000).collect::<Vec<u64>>());
    }
    finish(server);
}

#[test]
fn two_watchers_see_the_script_and_a_small_ring_counts_what_it_lost() {
    let server = SimServer::scripted().unwrap();
    {
        let mut wide = Client::connect(server.open(Access::READ).unwrap()).unwrap();
        let mut narrow = Client::connect(server.open(Access::READ).unwrap()).unwrap();
        wide.subscribe(1024, EventKind::ALL_MASK).unwrap();
        narrow.subscribe(2, EventKind::ALL_MASK).unwrap();
        assert_eq!(wide.subscribe(8, 1), Err(ClientError::Driver(Status::InvalidDeviceState)));
        let empty = wide.read_events(16, None).unwrap();
        assert!(empty.events.is_empty(), "nothing happened yet: a read that does not wait returns at once");
        let mut seen = Vec::new();
        loop {
            let batch = wide.read_events(16, Some(Duration::from_secs(1))).unwrap();
            if batch.events.is_empty() {
                break;
            }
            seen.extend(batch.events);
        }
        assert_eq!(server.steps_left(), 0, "waiting ran the script to its end");
        let kinds: Vec<&str> = seen.iter().map(|e| e.body.kind().name()).collect();
        for kind in ["line-up", "line-down", "module-paused", "module-restarted", "hook-added", "hook-removed"] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        assert!(seen.windows(2).all(|w| w[0].sequence < w[1].sequence));
        let narrow_batch = narrow.read_events(16, None).unwrap();
        assert_eq!(narrow_batch.events.len(), 2);
        assert_eq!(narrow_batch.lost as usize, seen.len() - 2, "the small ring lost the rest, counted");
        assert_eq!(narrow_batch.events[..], seen[..2], "the same events");
        narrow.unsubscribe().unwrap();
        assert_eq!(narrow.read_events(1, None), Err(ClientError::Driver(Status::InvalidDeviceState)));
    }
    assert_eq!(server.rras().engine().control().sessions().subscribers, 0, "closing the handles released the rings");
    finish(server);
}

#[test]
fn capture_to_pcapng_and_injection_both_ways() {
    let server = SimServer::scripted().unwrap();
    {
        let mut client = Client::connect(server.open(Access::READ_WRITE).unwrap()).unwrap();
        let started = client.start_capture(Target::All, 2048, 4096).unwrap();
        assert_eq!(started.capture.slots, 4096);
        server.run_script();
        let link = client.links(None, false).unwrap()[0].entry().link_id;
        let module = client.links(None, false).unwrap()[0].entry().module;
        let frame = server.rras().links()[0].frame(wanlayer_core::hook::Direction::Send, &Flow::udp(7, 7), 0);
        client.inject(None, link, Direction::Send, &frame).unwrap();
        client.inject(Some(module), link, Direction::Receive, &frame).unwrap();
        server.rras().run_until_idle();
        assert_eq!(client.inject(None, 999, Direction::Send, &frame), Err(ClientError::Driver(Status::NotFound)));
        let mut frames = Vec::new();
        loop {
            let batch = client.read_capture(100).unwrap();
            if batch.frames.is_empty() {
                assert_eq!(batch.dropped, 0);
                break;
            }
            frames.extend(batch.frames);
        }
        assert!(frames.len() > 50, "{} frames", frames.len());
        let injected: Vec<_> = frames.iter().map(|f| f.record()).filter(|f| f.injected).collect();
        assert_eq!(injected.len(), 2);
        assert_eq!((injected[0].direction, injected[1].direction), (Direction::Send, Direction::Receive));
        assert_eq!(client.module_stats(module).unwrap().send.injected, 1);
        let mut writer = PcapngWriter::new(Vec::new(), "test").unwrap();
        for frame in &frames {
            writer.write_frame(frame, frame.record().time_ns).unwrap();
        }
        assert!(writer.interfaces() >= 4, "one interface per link: {}", writer.interfaces());
        let bytes = writer.finish().unwrap();
        assert_eq!(bytes[..4], [0x0A, 0x0D, 0x0D, 0x0A]);
        client.stop_capture().unwrap();
        assert_eq!(client.read_capture(1).unwrap_err(), ClientError::Driver(Status::InvalidDeviceState));
        client.reset_stats(Target::All).unwrap();
        assert_eq!(client.module_stats(module).unwrap().send.packets, 0);
    }
    let read_only = server.open(Access::READ).unwrap();
    let mut client = Client::new(read_only);
    let denied = client.inject(None, 1, Direction::Send, &[0; 20]).unwrap_err();
    assert!(denied.is_access_denied());
    assert!(denied.to_string().contains("access denied"));
    drop(client);
    finish(server);
}

#[test]
fn rules_are_set_with_the_version_read_read_back_and_counted() {
    use wanlayer_proto::Expected;
    use wanlayer_rules::{compile, Action, RuleSource};

    let server = SimServer::scripted().unwrap();
    {
        let mut client = Client::connect(server.open(Access::READ_WRITE).unwrap()).unwrap();
        assert!(capability_names(client.version().unwrap().features.unwrap().capabilities).any(|name| name == "rules"));
        let empty = client.rules().unwrap();
        assert_eq!((empty.version, empty.rules, empty.blob.len()), (0, 0, 0));
        let blob = compile(&[RuleSource { id: 9, priority: 1, action: Action::Count, filter: "ip or ip6" }]).unwrap();
        assert_eq!(client.set_rules(Expected::Version(0), 1000, &blob), Ok(1));
        assert_eq!(client.set_rules(Expected::Version(0), 1000, &blob), Err(ClientError::Driver(Status::TransactionalConflict)));
        let read = client.rules().unwrap();
        assert_eq!((read.version, read.altitude, read.rules, read.blob), (1, 1000, 1, blob));
        server.run_script();
        let stats = client.rule_stats().unwrap();
        assert_eq!((stats.version, stats.rules.len(), stats.rules[0].id, stats.rules[0].action), (1, 1, 9, RuleAction::Count));
        assert!(stats.rules[0].send.0 + stats.rules[0].receive.0 > 0, "the script's traffic was counted: {stats:?}");
        assert_eq!(client.set_rules(Expected::Any, 1000, &[]), Ok(2));
    }
    finish(server);
}
