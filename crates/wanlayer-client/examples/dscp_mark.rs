//! Marks DSCP on the way out: a user-mode hook that diverts the UDP sends of every link, sets
//! the IPv4 DSCP field to Expedited Forwarding (46), fixes the header checksum, and hands each
//! packet on rewritten, in batches.
//!
//! Runs against a simulated RRAS server whose filter is `wanlayer.sys`'s own handlers over the
//! kernel model (`cargo run -p wanlayer-client --example dscp_mark`, on a host other than
//! Windows); on a Windows server the same `Divert` code runs over `windows::WindowsTransport`.

// On Windows only `main` below is built: the marking code waits for a transport there.
#![cfg_attr(windows, allow(dead_code))]

#[cfg(not(windows))]
use {
    std::time::Duration,
    wanlayer_client::divert::{compile_filter, Divert, DivertConfig, Verdict},
    wanlayer_client::sim::{DriverFilter, SimServer},
    wanlayer_proto::Access,
    wanlayer_sim::{Edge, Flow, LinkParams, Rras},
};

/// Expedited Forwarding.
const DSCP_EF: u8 = 46;
/// Bytes of the Ethernet header NdisWan's edges carry.
const ETHERNET: usize = 14;

/// The frame with its IPv4 DSCP set to `dscp` and the header checksum recomputed; `None` for a
/// frame that is not IPv4.
fn mark(frame: &[u8], dscp: u8) -> Option<Vec<u8>> {
    let mut frame = frame.to_vec();
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let header_len = usize::from(frame.get(ETHERNET)? & 0x0f) * 4;
    let header = frame.get_mut(ETHERNET..ETHERNET + header_len)?;
    header[1] = (dscp << 2) | (header[1] & 0x03);
    header[10..12].fill(0);
    let sum = header
        .chunks(2)
        .map(|word| u32::from(u16::from_be_bytes([word[0], *word.get(1).unwrap_or(&0)])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !(((folded & 0xffff) + (folded >> 16)) as u16);
    header[10..12].copy_from_slice(&checksum.to_be_bytes());
    Some(frame)
}

#[cfg(not(windows))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rras = Rras::builder().build(DriverFilter::new());
    rras.start()
        .map_err(|error| format!("the simulated server did not start: {error}"))?;
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let server = SimServer::new(rras);
    let filter = compile_filter("udp and send").map_err(|error| format!("filter: {error}"))?;
    let mut divert = Divert::open(
        server.open(Access::READ_WRITE)?,
        &DivertConfig {
            receive: false,
            ..DivertConfig::new(filter)
        },
    )?;

    server.rras().send_flow(&link, &Flow::udp(5060, 5060), 8);
    server.rras().run_until_idle();
    let mut verdicts = Vec::new();
    divert.read_with(256, Some(Duration::ZERO), |packet| {
        let verdict = mark(packet.frame, DSCP_EF).map_or(Verdict::Pass, Verdict::Replace);
        verdicts.push((packet.ticket(), verdict));
    })?;
    let answered = divert.answer(&verdicts)?;
    server.rras().run_until_idle();
    let sent = server.rras().miniport(Edge::WanIp).sent_frames();
    let marked = sent
        .iter()
        .filter(|frame| {
            frame
                .get(ETHERNET + 1)
                .is_some_and(|tos| tos >> 2 == DSCP_EF)
        })
        .count();
    println!(
        "{} packets diverted, {} rewritten, {marked} of {} sent frames carry DSCP {DSCP_EF}",
        verdicts.len(),
        answered.applied,
        sent.len()
    );
    drop(divert);
    let mut rras = server.into_rras();
    rras.unload();
    if !rras.verifier().violations().is_empty() {
        return Err(rras.verifier().report().into());
    }
    Ok(())
}

/// The simulated server runs the driver's handlers, which a Windows host cannot link into a
/// user-mode program.
#[cfg(windows)]
fn main() {
    eprintln!("dscp_mark: the simulated server runs on hosts other than Windows; on Windows, use windows::WindowsTransport");
}
