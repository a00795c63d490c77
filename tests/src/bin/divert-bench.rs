//! `divert-bench pps|measure BATCH PACKETS`: packets through a user-mode hook in the simulator's
//! transport (the client's `Divert` over the control device of `wanlayer.sys`'s own handlers,
//! `DriverFilter`) — taken on the send path, queued, read in batches of BATCH, answered (pass) in
//! one verdict write each, reinjected and completed — as `cargo xtask bench divert` measures them.
//! `pps` prints packets per second (wall time); `measure` runs the same loop inside
//! `measured_loop` for callgrind.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use wanlayer_client::divert::{compile_filter, Divert, DivertConfig, DivertTicket, Verdict};
use wanlayer_client::sim::SimServer;
use wanlayer_proto::Access;
use wanlayer_sim::{Edge, LinkParams, SimLink};
use wanlayer_tests::setup::{started, UDP};

/// Sends `packets` in rounds of `batch` through the hook; returns how many came back answered.
#[inline(never)]
fn measured_loop<T: wanlayer_client::Transport>(server: &SimServer, link: &SimLink, divert: &mut Divert<T>, batch: u32, packets: u64) -> u64 {
    let mut verdicts: Vec<(DivertTicket, Verdict)> = Vec::with_capacity(batch as usize);
    let mut answered = 0;
    for _ in 0..packets / u64::from(batch) {
        server.rras().send_flow(link, &UDP, batch);
        verdicts.clear();
        let read = divert.read_with(batch, None, |packet| verdicts.push((packet.ticket(), Verdict::Pass)));
        if read.is_err() {
            break;
        }
        answered += divert.answer(&verdicts).map_or(0, |answer| u64::from(answer.applied));
        server.rras().run_until_idle();
    }
    answered
}

fn run(args: &[String]) -> Result<(), String> {
    let [mode, batch, packets] = args else { return Err("usage: divert-bench pps|measure BATCH PACKETS".to_owned()) };
    let batch: u32 = batch.parse().map_err(|_| format!("BATCH: '{batch}' is not a number"))?;
    let packets: u64 = packets.parse().map_err(|_| format!("PACKETS: '{packets}' is not a number"))?;
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let server = SimServer::new(rras);
    let filter = compile_filter("udp").map_err(|error| format!("filter: {error}"))?;
    let config = DivertConfig { queue_len: 4096, timeout: Duration::from_secs(60), ..DivertConfig::new(filter) };
    let transport = server.open(Access::READ_WRITE).map_err(|error| error.to_string())?;
    let mut divert = Divert::open(transport, &config).map_err(|error| error.to_string())?;
    measured_loop(&server, &link, &mut divert, batch, u64::from(batch) * 4);
    let started_at = Instant::now();
    let answered = measured_loop(&server, &link, &mut divert, batch, packets);
    let elapsed = started_at.elapsed();
    if answered != packets / u64::from(batch) * u64::from(batch) {
        return Err(format!("{answered} of {packets} packets were answered"));
    }
    if mode == "pps" {
        println!("{:.0}", answered as f64 / elapsed.as_secs_f64());
    }
    drop(divert);
    let rras = server.into_rras();
    rras.run_until_idle();
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("divert-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
