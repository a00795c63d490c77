//! `cargo xtask demo`: a simulated RRAS server through a scripted session — two dial-in clients
//! come up, traffic flows both ways through three sample hooks, the links go down and the filter
//! unloads — printed as an administrator would want to read it. The filter is `wanlayer.sys`'s own
//! handlers, built for the host over the kernel model (`DriverFilter`), and the tools reach its
//! control device through the driver's dispatch routines. The session's traffic is captured
//! through the control device (as `wanlayerctl capture` does) into `target/demo/wanlayer-demo.pcapng`.
//!
//! Not on Windows hosts, where `demo_unavailable.rs` answers instead: there the driver's crate is
//! a kernel image, which the xtask binary cannot link.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wanlayer_core::event::{Event, EventRecord};
use wanlayer_core::hook::{Direction, Hook, HookInfo, PacketContext, Ticket, Verdict};
use wanlayer_core::link::LinkSummary;
use wanlayer_core::stats::VerdictCounts;
use wanlayer_core::wire::{clamp_tcp_mss, syn_mss, EtherType, FrameSummary, IpProtocol, MSS_CLAMP_HEADER_LEN};
use wanlayer_client::pcapng::PcapngWriter;
use wanlayer_client::sim::{DriverFilter, SimServer, SimTransport};
use wanlayer_client::Client;
use wanlayer_core::{Engine, Hal, ReinjectVerdict};
use wanlayer_proto::display::BitRate;
use wanlayer_proto::{Access, Expected, Target};
use wanlayer_rules::{compile, Action, RuleSource};
use wanlayer_sim::{Edge, Flow, LinkParams, ReceiveOptions, Rras, SECOND};

/// Bytes of a frame a hook looks at: enough for Ethernet, IPv6 and a TCP header with options.
const HEADER_BYTES: usize = 128;
/// The TCP port the port filter blocks (telnet).
const BLOCKED_PORT: u16 = 23;
/// The UDP port whose traffic the shaper holds back.
const SHAPED_PORT: u16 = 5001;

/// Bytes kept of each captured frame.
const SNAP_LEN: u32 = 2048;
/// Frames the capture ring holds.
const CAPTURE_SLOTS: u32 = 4096;
/// The TCP port the administrator's rule drops (SMTP).
const SMTP_PORT: u16 = 25;
/// The altitude of the administrator's rule set: above the sample hooks.
const RULES_ALTITUDE: u32 = 1000;

/// `cargo xtask demo`: runs the scripted session and prints what wanlayer saw.
pub fn run() -> Result<(), String> {
    session(&crate::test::workspace_root().join("target").join("demo")).map(|_| ())
}

/// Runs the session, writing its capture into `out_dir`; returns the capture's path.
fn session(out_dir: &Path) -> Result<PathBuf, String> {
    let server = SimServer::new(Rras::new(DriverFilter::new()));
    let rras = server.rras();
    heading("DriverEntry, then NDIS attaches and restarts the filter on both NdisWan edges");
    rras.start().map_err(|error| format!("the simulated filter did not start: {error}"))?;
    let engine = rras.engine();
    let mut capture = Client::new(server.open(Access::READ_WRITE).map_err(|error| error.to_string())?);
    let started = capture.start_capture(Target::All, SNAP_LEN, CAPTURE_SLOTS).map_err(|error| error.to_string())?;
    println!(
        "  a tool opened \\\\.\\WanLayer and captures every frame ({} bytes each, a ring of {})",
        started.capture.snap_len, started.capture.slots
    );
    for module in engine.modules() {
        println!("  {} attached as {} ({}), adapter {}", module.id, module.kind.name(), module.state.name(), module.mac_address);
    }

    heading("four sample hooks register");
    let shaper = Arc::new(Shaper::default());
    engine.add_hook("vpn-encapsulation", 400, Arc::new(VpnEncapsulation)).map_err(|e| e.to_string())?;
    engine.add_hook("mss-clamp", 300, Arc::new(MssClamp)).map_err(|e| e.to_string())?;
    engine.add_hook("telnet-block", 200, Arc::new(PortBlock)).map_err(|e| e.to_string())?;
    let shaper_id = engine.add_hook("udp-5001-shaper", 100, shaper.clone()).map_err(|e| e.to_string())?;
    engine.visit_hooks(|hook| println!("  {}  altitude {:>3}  {}", hook.id, hook.altitude, hook.name));

    heading("the administrator sets two rules through the control device (as `wanlayerctl rules load`)");
    let mut admin = Client::new(server.open(Access::READ_WRITE).map_err(|error| error.to_string())?);
    let rules = [
        RuleSource { id: 1, priority: 100, action: Action::Count, filter: "udp port 53" },
        RuleSource { id: 2, priority: 200, action: Action::Drop, filter: &format!("tcp port {SMTP_PORT}") },
    ];
    let blob = compile(&rules).map_err(|error| error.to_string())?;
    let version = admin.set_rules(Expected::Version(0), RULES_ALTITUDE, &blob).map_err(|error| error.to_string())?;
    for rule in &rules {
        println!("  rule {} priority {} {:?}: {}", rule.id, rule.priority, rule.action, rule.filter);
    }
    println!("  rule set version {version} in force at altitude {RULES_ALTITUDE}, {} bytes compiled", blob.len());

    heading("two clients dial in: a PPP link over IPv4 and an IKEv2 link over IPv6");
    let ppp = rras.link_up(Edge::WanIp, LinkParams::new().mtu(1500).speed_bps(2_048_000));
    let ikev2 = rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1400).speed_bps(100_000_000));
    println!("  {ppp}\n  {ikev2}");

    heading("traffic both ways");
    let web = Flow::tcp(443, 50_123).payload(1200);
    let dns = Flow::udp(53, 61_000).payload(48);
    for link in [&ppp, &ikev2] {
        rras.send(link.edge, [link.syn_frame(Direction::Send, Some(1460))]);
        rras.receive(link.edge, [link.syn_frame(Direction::Receive, Some(1460))]);
        rras.send_flow(link, &web, 20);
        rras.receive_flow(link, &web, 20, ReceiveOptions::default());
        rras.receive_flow(link, &dns, 5, ReceiveOptions::resources());
        rras.send_flow(link, &dns, 5);
        rras.receive_flow(link, &Flow::tcp(BLOCKED_PORT, 51_000), 3, ReceiveOptions::default());
        rras.receive_flow(link, &Flow::udp(SHAPED_PORT, 52_000).payload(900), 10, ReceiveOptions::default());
        rras.send_flow(link, &Flow::tcp(SMTP_PORT, 53_000), 3);
    }
    rras.run_until_idle();
    println!("  the shaper holds {} packets; releasing them one second later", shaper.held());
    rras.advance(SECOND);
    shaper.release(engine);
    rras.run_until_idle();
    for link in [&ppp, &ikev2] {
        let protocol = rras.protocol(link.edge);
        let miniport = rras.miniport(link.edge);
        println!(
            "  {}: {} frames reached NdisWan, {} frames reached the IP layer, clamped MSS seen upward: {}",
            link.edge.friendly_name(),
            miniport.sent.len(),
            protocol.received.len(),
            clamped_mss(&protocol.received_frames()).map_or_else(|| "none".to_string(), |mss| mss.to_string()),
        );
    }

    heading("WAN links as the filter tracks them (the link table `wanlayerctl links` prints)");
    for edge in [Edge::WanIp, Edge::WanIpv6] {
        print!("{}", rras.link_report(edge));
    }

    heading("hook statistics");
    engine.visit_hooks(print_hook);

    heading("rule statistics, as `wanlayerctl rules stats` reads them");
    let stats = admin.rule_stats().map_err(|error| error.to_string())?;
    println!("  rule set version {}", stats.version);
    for rule in &stats.rules {
        println!(
            "  rule {:>2} {:<7} sends {:>3} packets / {:>6} bytes, receives {:>3} packets / {:>6} bytes",
            rule.id,
            rule.action.name(),
            rule.send.0,
            rule.send.1,
            rule.receive.0,
            rule.receive.1
        );
    }
    drop(admin);

    heading("the clients hang up, the shaper is removed, NDIS pauses and detaches the filter");
    rras.link_down(&ppp);
    rras.link_down(&ikev2);
    let removed = engine.remove_hook(shaper_id).map_err(|e| e.to_string())?;
    println!("  removed '{}' after it saw {} receives", removed.name, removed.receive.seen);
    for edge in [Edge::WanIp, Edge::WanIpv6] {
        if let Some(counts) = rras.counts(edge) {
            print!("{counts}");
        }
    }
    rras.detach_all().map_err(|error| format!("the simulated filter did not detach: {error}"))?;

    heading("the session's capture, as a tool read it from the control device");
    let path = write_capture(&mut capture, out_dir)?;
    drop(capture);

    heading("events, in order");
    while let Some(record) = engine.next_event() {
        print_event(&record);
    }
    println!("  lost events: {}", engine.lost_events());

    let mut rras = server.into_rras();
    rras.unload();
    heading("the simulated server after unload");
    println!("{}", rras.summary());
    let violations = rras.verifier().violations();
    if violations.is_empty() {
        println!("\ndemo: finished; the verifier saw no NDIS rule broken and every pool is back to zero");
        println!("demo: the capture is {} (Wireshark, or `tshark -r`)", path.display());
        Ok(path)
    } else {
        Err(format!("the verifier caught {} violation(s):\n{}", violations.len(), rras.verifier().report()))
    }
}

/// Reads every captured frame and writes them as pcapng, one interface per link; returns the path.
fn write_capture(capture: &mut Client<SimTransport<'_>>, out_dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(out_dir).map_err(|error| format!("{}: {error}", out_dir.display()))?;
    let path = out_dir.join("wanlayer-demo.pcapng");
    let file = File::create(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut writer = PcapngWriter::new(BufWriter::new(file), "cargo xtask demo").map_err(|error| format!("{}: {error}", path.display()))?;
    let (mut dropped, mut truncated);
    loop {
        let batch = capture.read_capture(1024).map_err(|error| error.to_string())?;
        (dropped, truncated) = (batch.dropped, batch.truncated);
        if batch.frames.is_empty() {
            break;
        }
        for frame in &batch.frames {
            // The simulator's clock starts at zero: stamp the frames from the Unix epoch as they are.
            writer.write_frame(frame, frame.record().time_ns).map_err(|error| format!("{}: {error}", path.display()))?;
        }
    }
    capture.stop_capture().map_err(|error| error.to_string())?;
    let (frames, links) = (writer.frames(), writer.interfaces());
    writer.finish().map_err(|error| format!("{}: {error}", path.display()))?;
    println!("  {frames} frames on {links} interfaces ({dropped} dropped, {truncated} cut to {SNAP_LEN} bytes) written to {}", path.display());
    Ok(path)
}

fn heading(title: &str) {
    println!("\n== {title}");
}

fn print_hook(hook: &HookInfo) {
    let line = |name: &str, counts: &VerdictCounts| {
        format!(
            "{name} {} seen / {} bytes: {} passed, {} dropped, {} modified, {} taken",
            counts.seen, counts.bytes, counts.passed, counts.dropped, counts.modified, counts.taken
        )
    };
    println!(
        "  {} '{}' (altitude {}): saw {} line ups, lowered the MTU of {}",
        hook.id, hook.name, hook.altitude, hook.line_ups, hook.sizes_lowered
    );
    println!("      {}", line("send   ", &hook.send));
    println!("      {}", line("receive", &hook.receive));
}

fn print_event(record: &EventRecord) {
    let what = match record.event {
        Event::ModuleAttached { module, kind } => format!("{module} attached ({})", kind.name()),
        Event::ModulePaused(module) => format!("{module} paused"),
        Event::ModuleRestarted(module) => format!("{module} restarted"),
        Event::ModuleDetached { module, links_dropped } => format!("{module} detached ({links_dropped} links dropped)"),
        Event::LineUp(link) => format!("line up   {}", describe(&link)),
        Event::LineUpdated(link) => format!("line upd  {}", describe(&link)),
        Event::LineDown(link) => format!("line down {}", describe(&link)),
        Event::HookAdded { id, name, altitude } => format!("{id} '{name}' added at altitude {altitude}"),
        Event::HookRemoved { id, name } => format!("{id} '{name}' removed"),
        Event::RulesReplaced { version, altitude, rules } => format!("rule set version {version}: {rules} rules at altitude {altitude}"),
        Event::RulesRefused { error, altitude, blob_len } => {
            format!("saved rule set refused (error {error}, {blob_len} bytes, altitude {altitude})")
        }
    };
    println!("  #{:<3} {:>9.3} s  {what}", record.sequence, record.time.0 as f64 / 1e9);
}

fn describe(link: &LinkSummary) -> String {
    format!(
        "{} on {}: remote {} {}, MTU {} reported {}",
        link.id,
        link.module,
        link.remote_address,
        BitRate::from_100bps(link.link_speed_100bps),
        link.maximum_total_size,
        link.reported_total_size
    )
}

/// The MSS of the first SYN among `frames`.
fn clamped_mss(frames: &[Vec<u8>]) -> Option<u16> {
    frames.iter().find_map(|frame| syn_mss(frame))
}

/// Lowers every link's MTU by the 60 bytes an encapsulation would need.
struct VpnEncapsulation;

impl Hook for VpnEncapsulation {
    fn on_line_up(&self, link: &LinkSummary) -> Option<u32> {
        Some(link.maximum_total_size.saturating_sub(60))
    }
}

/// Clamps the MSS of TCP SYNs to what fits the MTU reported for the link, in place (the engine's
/// one clamp, `clamp_tcp_mss`, on a copy of the headers, whose TCP header is written back).
struct MssClamp;

impl MssClamp {
    fn clamp(packet: &mut PacketContext<'_>) -> Verdict {
        let mut header = [0u8; MSS_CLAMP_HEADER_LEN];
        let len = packet.read(0, &mut header);
        let link = *packet.link();
        let ip_overhead = if link.protocol_type == EtherType::Ipv6 { 60 } else { 40 };
        let limit = u16::try_from(link.reported_total_size.saturating_sub(ip_overhead)).unwrap_or(u16::MAX);
        let Some(clamp) = clamp_tcp_mss(&mut header[..len], limit) else { return Verdict::Pass };
        match packet.write(clamp.tcp_header.start, &header[clamp.tcp_header]) {
            Ok(()) => Verdict::Modify,
            Err(_) => Verdict::Pass,
        }
    }
}

impl Hook for MssClamp {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        Self::clamp(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        Self::clamp(packet)
    }
}

/// Drops TCP traffic to or from the telnet port.
struct PortBlock;

impl PortBlock {
    fn verdict(packet: &PacketContext<'_>) -> Verdict {
        let mut header = [0u8; HEADER_BYTES];
        let len = packet.read(0, &mut header);
        let blocked = FrameSummary::parse(&header[..len])
            .ok()
            .and_then(|frame| frame.ip)
            .filter(|ip| ip.protocol == IpProtocol::Tcp)
            .and_then(|ip| ip.ports)
            .is_some_and(|ports| ports.src == BLOCKED_PORT || ports.dst == BLOCKED_PORT);
        if blocked {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

impl Hook for PortBlock {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        Self::verdict(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        Self::verdict(packet)
    }
}

/// Holds back received UDP datagrams to one port and releases them on demand.
#[derive(Default)]
struct Shaper {
    held: Mutex<Vec<Ticket>>,
}

impl Shaper {
    fn held(&self) -> usize {
        self.held.lock().map_or(0, |held| held.len())
    }

    fn release<H: Hal>(&self, engine: &Engine<H>) {
        let tickets = self.held.lock().map(|mut held| std::mem::take(&mut *held)).unwrap_or_default();
        for ticket in tickets {
            if let Err(error) = engine.reinject(ticket, ReinjectVerdict::Pass, Default::default()) {
                println!("  shaper: {error}");
            }
        }
    }
}

impl Hook for Shaper {
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let mut header = [0u8; HEADER_BYTES];
        let len = packet.read(0, &mut header);
        let shaped = wanlayer_core::wire::FrameSummary::parse(&header[..len])
            .ok()
            .and_then(|frame| frame.ip)
            .and_then(|ip| ip.ports)
            .is_some_and(|ports| ports.dst == SHAPED_PORT);
        match self.held.lock() {
            Ok(mut held) if shaped => {
                held.push(packet.ticket());
                Verdict::Take
            }
            _ => Verdict::Pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_writes_a_capture_that_tshark_reads() {
        let out_dir = std::env::temp_dir().join(format!("wanlayer-demo-test-{}", std::process::id()));
        let path = session(&out_dir).expect("the demo runs clean");
        let bytes = std::fs::read(&path).expect("the capture exists");
        assert_eq!(bytes[..4], [0x0A, 0x0D, 0x0D, 0x0A], "a pcapng section header");
        let path_text = path.to_str().expect("a UTF-8 path");
        if let Some(tshark) = crate::tools::require(crate::tools::Tool::Tshark) {
            let output = std::process::Command::new(tshark)
                .args(["-r", path_text, "-T", "fields", "-e", "frame.interface_name", "-e", "ip.proto", "-e", "ipv6.nxt"])
                .output()
                .expect("tshark runs");
            assert!(output.status.success(), "tshark could not read the demo capture: {}", String::from_utf8_lossy(&output.stderr));
            let text = String::from_utf8_lossy(&output.stdout);
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines.len() > 100, "tshark read {} frames", lines.len());
            let interfaces: std::collections::BTreeSet<&str> = lines.iter().filter_map(|line| line.split('\t').next()).collect();
            assert_eq!(interfaces.into_iter().collect::<Vec<_>>(), ["link-1", "link-2"], "one interface per link");
        }
        let _ = std::fs::remove_dir_all(&out_dir);
    }
}
