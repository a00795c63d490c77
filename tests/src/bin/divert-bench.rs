//! `divert-bench pps|measure engine|sim BATCH PACKETS`: packets through a user-mode hook — taken
//! on the send path, queued, read in batches of BATCH (`DIVERT_READ`), answered (pass) in one
//! verdict write each (`DIVERT_VERDICTS`), reinjected, sent down and completed — as
//! `cargo xtask bench divert` measures them. `pps` prints packets per second (wall time);
//! `pps` prints packets per second twice: over wall time, and over the CPU time the thread ran
//! (what one core does when other processes share it); `measure` runs the same loop inside
//! `measured_loop_*` for callgrind.
//!
//! Two transports:
//! * `engine`: the engine on `wanlayer-bench`'s minimal platform (`BenchHal`: boxed frames, an
//!   uncontended mutex per lock), its control dispatcher called as the driver's device control
//!   handler calls it — one system buffer per request, the input copied in and the answer copied
//!   out as the I/O manager does for `METHOD_BUFFERED`. Every instruction of the kernel side is
//!   the code `wanlayer.sys` runs (the send path, the take, the queue, the batch encoding, the
//!   verdict decoding, reinjection, completion); only the platform under it is the bench's.
//! * `sim`: the simulator's transport (the client's `Divert` over the control device of
//!   `wanlayer.sys`'s own handlers, `DriverFilter`, in a simulated server): the same engine calls
//!   through the driver's dispatch routines and NDIS handlers over the kernel model, with the
//!   simulator's packets, ledger, verifier and trace.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wanlayer_bench::{frame, take_parked, Bench, Chain, Frame, HookKind, Parked, Scenario};
use wanlayer_client::divert::{compile_filter, Divert, DivertConfig, DivertTicket, Verdict};
use wanlayer_client::sim::SimServer;
use wanlayer_core::control::{Completion, ControlHandle};
use wanlayer_core::hal::{PacketChain, PathContext};
use wanlayer_proto::ioctl::{IOCTL_DIVERT_OPEN, IOCTL_DIVERT_READ, IOCTL_DIVERT_VERDICTS};
use wanlayer_proto::{
    Access, DivertAction, DivertBatch, DivertOpen, DivertOpenRepr, DivertVerdict, DivertVerdictRepr, DivertVerdicts, DivertVerdictsRepr,
    FailPolicy, ReadRequest, ReadRequestRepr, Status, DIVERT_SEND,
};
use wanlayer_sim::{Edge, LinkParams, SimLink};
use wanlayer_tests::setup::{started, UDP};

/// Frame length of the `engine` transport's packets (an IPv4 UDP packet of 100 bytes).
const FRAME_LEN: usize = 114;
/// Longest frame the hook takes.
const MAX_FRAME: u32 = 1600;

/// The I/O manager's part of one `METHOD_BUFFERED` request: the system buffer (kept between
/// requests, as a lookaside list keeps it), the input copied in, the answer copied back out.
struct IoManager {
    system: Vec<u8>,
    user_output: Vec<u8>,
}

impl IoManager {
    fn call(&mut self, bench: &Bench, handle: &ControlHandle, code: u32, input: &[u8], output_len: usize) -> Result<usize, Status> {
        let len = input.len().max(output_len);
        if self.system.len() < len {
            self.system.resize(len, 0);
        }
        self.system[..input.len()].copy_from_slice(input);
        let completion = kernel_dispatch(bench, handle, code, &mut self.system[..len], input.len(), output_len);
        match completion {
            Completion::Complete { status: Status::Success, written } => {
                if self.user_output.len() < written {
                    self.user_output.resize(written, 0);
                }
                self.user_output[..written].copy_from_slice(&self.system[..written]);
                Ok(written)
            }
            Completion::Complete { status, .. } => Err(status),
            Completion::Pending => Err(Status::Pending),
        }
    }
}

/// The kernel side, entry 1: the protocol's send (`FilterSendNetBufferLists`).
#[inline(never)]
fn kernel_send(bench: &Bench, chain: Chain) {
    bench.engine.send(bench.module, chain, PathContext::default());
}

/// The kernel side, entry 2: the device control handler's call into the dispatcher.
#[inline(never)]
fn kernel_dispatch(bench: &Bench, handle: &ControlHandle, code: u32, buffer: &mut [u8], input_len: usize, output_len: usize) -> Completion {
    bench.engine.control().dispatch(handle, code, Access::READ_WRITE, buffer, input_len, output_len)
}

/// The kernel side, entry 3: the miniport's send completion (`FilterSendNetBufferListsComplete`).
#[inline(never)]
fn kernel_send_complete(bench: &Bench, chain: Chain) {
    bench.engine.send_complete(bench.module, chain, PathContext::default());
}

/// The `engine` transport: the engine, a handle that is a user-mode hook, and the user side's
/// buffers.
struct EngineLoop {
    bench: Bench,
    handle: ControlHandle,
    io: IoManager,
    verdicts: Vec<u8>,
    free: Chain,
}

impl EngineLoop {
    fn new(batch: u32) -> Result<Self, String> {
        let scenario =
            Scenario { receive: false, chain: batch as usize, frame_len: FRAME_LEN, hooks: 0, hook_kind: HookKind::Pass, links: 1 };
        let bench = Bench::new(scenario);
        let handle = ControlHandle::new(1);
        let blob = compile_filter("udp")?;
        let open = DivertOpenRepr {
            altitude: 2000,
            directions: DIVERT_SEND,
            fail_policy: FailPolicy::Pass,
            queue_len: 4096,
            timeout_ms: 60_000,
            max_frame: MAX_FRAME,
            blob: &blob,
        };
        let mut input = vec![0u8; open.buffer_len()];
        open.emit(&mut DivertOpen::new_unchecked(&mut input[..])).map_err(|error| format!("DIVERT_OPEN: {error}"))?;
        let mut io = IoManager { system: Vec::new(), user_output: Vec::new() };
        io.call(&bench, &handle, IOCTL_DIVERT_OPEN, &input, 16).map_err(|status| format!("DIVERT_OPEN: {status:?}"))?;
        let mut free = Chain::default();
        for serial in 0..u64::from(batch) {
            free.push_back(Frame::new(frame(FRAME_LEN, 0, false), serial));
        }
        Ok(Self { bench, handle, io, verdicts: Vec::new(), free })
    }

    /// One round: `batch` sends taken, one read, one verdict write, the reinjected packets sent
    /// down and completed; returns the packets answered.
    fn round(&mut self, batch: u32) -> u64 {
        kernel_send(&self.bench, core::mem::take(&mut self.free));
        let mut request = [0u8; 16];
        if (ReadRequestRepr { max_records: batch, wait: false }).emit(&mut ReadRequest::new_unchecked(&mut request[..])).is_err() {
            return 0;
        }
        let room = DivertBatch::<&[u8]>::LEN + batch as usize * wanlayer_proto::divert_packet_len(MAX_FRAME as usize).unwrap_or(0);
        let Ok(written) = self.io.call(&self.bench, &self.handle, IOCTL_DIVERT_READ, &request, room) else { return 0 };
        let answer = &self.io.user_output[..written];
        let view = DivertBatch::new_unchecked(answer);
        let record_len = DivertVerdictRepr { module: 0, serial: 0, action: DivertAction::Pass, frame: &[] }.buffer_len().unwrap_or(0);
        self.verdicts.clear();
        self.verdicts.resize(DivertVerdicts::<&[u8]>::LEN, 0);
        let mut count = 0u32;
        for packet in view.packets() {
            let Ok(packet) = packet else { break };
            let at = self.verdicts.len();
            self.verdicts.resize(at + record_len, 0);
            let verdict =
                DivertVerdictRepr { module: packet.meta.module, serial: packet.meta.serial, action: DivertAction::Pass, frame: &[] };
            if verdict.emit(&mut DivertVerdict::new_unchecked(&mut self.verdicts[at..])).is_err() {
                return 0;
            }
            count += 1;
        }
        let size = self.verdicts.len();
        if (DivertVerdictsRepr { count, size }).emit(&mut DivertVerdicts::new_unchecked(&mut self.verdicts[..])).is_err() {
            return 0;
        }
        let verdicts = core::mem::take(&mut self.verdicts);
        let answered = self.io.call(&self.bench, &self.handle, IOCTL_DIVERT_VERDICTS, &verdicts, 16);
        self.verdicts = verdicts;
        if answered.is_err() {
            return 0;
        }
        let down = take_parked(Parked::Down);
        kernel_send_complete(&self.bench, down);
        self.free = take_parked(Parked::Completed);
        u64::from(count)
    }
}

/// The `engine` transport's loop, measured.
#[inline(never)]
fn measured_loop_engine(engine: &mut EngineLoop, batch: u32, packets: u64) -> u64 {
    rounds_engine(engine, batch, packets)
}

/// `packets` in rounds of `batch` (the warm-up calls it directly: callgrind counts only inside
/// `measured_loop_*`).
#[inline(never)]
fn rounds_engine(engine: &mut EngineLoop, batch: u32, packets: u64) -> u64 {
    let mut answered = 0;
    for _ in 0..packets / u64::from(batch) {
        answered += black_box(engine.round(batch));
    }
    answered
}

/// The `sim` transport's loop, measured.
#[inline(never)]
fn measured_loop_sim<T: wanlayer_client::Transport>(
    server: &SimServer,
    link: &SimLink,
    divert: &mut Divert<T>,
    batch: u32,
    packets: u64,
) -> u64 {
    rounds_sim(server, link, divert, batch, packets)
}

/// Sends `packets` in rounds of `batch` through the hook; returns how many came back answered.
#[inline(never)]
fn rounds_sim<T: wanlayer_client::Transport>(server: &SimServer, link: &SimLink, divert: &mut Divert<T>, batch: u32, packets: u64) -> u64 {
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

/// The CPU time this thread has run (user and system), from `/proc/thread-self/stat` (clock
/// ticks); `None` where that is not readable.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Runs the warm-up and the timed loop; returns (answered, wall time, this thread's CPU time).
fn run_transport(transport: &str, batch: u32, packets: u64) -> Result<(u64, Duration, Option<Duration>), String> {
    match transport {
        "engine" => {
            let mut engine = EngineLoop::new(batch)?;
            rounds_engine(&mut engine, batch, u64::from(batch) * 4);
            let (started_at, cpu_before) = (Instant::now(), thread_cpu_time());
            let answered = measured_loop_engine(&mut engine, batch, packets);
            let cpu = thread_cpu_time().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
            Ok((answered, started_at.elapsed(), cpu))
        }
        "sim" => {
            let rras = started();
            let link = rras.link_up(Edge::WanIp, LinkParams::new());
            let server = SimServer::new(rras);
            let filter = compile_filter("udp").map_err(|error| format!("filter: {error}"))?;
            let config = DivertConfig { queue_len: 4096, timeout: Duration::from_secs(60), ..DivertConfig::new(filter) };
            let transport = server.open(Access::READ_WRITE).map_err(|error| error.to_string())?;
            let mut divert = Divert::open(transport, &config).map_err(|error| error.to_string())?;
            rounds_sim(&server, &link, &mut divert, batch, u64::from(batch) * 4);
            let (started_at, cpu_before) = (Instant::now(), thread_cpu_time());
            let answered = measured_loop_sim(&server, &link, &mut divert, batch, packets);
            let elapsed = started_at.elapsed();
            let cpu = thread_cpu_time().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
            drop(divert);
            let rras = server.into_rras();
            rras.run_until_idle();
            Ok((answered, elapsed, cpu))
        }
        other => Err(format!("transport '{other}': engine or sim")),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let [mode, transport, batch, packets] = args else { return Err("usage: divert-bench pps|measure engine|sim BATCH PACKETS".to_owned()) };
    let batch: u32 = batch.parse().map_err(|_| format!("BATCH: '{batch}' is not a number"))?;
    let packets: u64 = packets.parse().map_err(|_| format!("PACKETS: '{packets}' is not a number"))?;
    if batch == 0 {
        return Err("BATCH: at least 1".to_owned());
    }
    let (answered, elapsed, cpu) = run_transport(transport, batch, packets)?;
    if answered != packets / u64::from(batch) * u64::from(batch) {
        return Err(format!("{answered} of {packets} packets were answered"));
    }
    if mode == "pps" {
        let wall = answered as f64 / elapsed.as_secs_f64();
        let on_cpu = cpu.map_or(wall, |cpu| answered as f64 / cpu.as_secs_f64().max(f64::MIN_POSITIVE));
        println!("{wall:.0} {on_cpu:.0}");
    }
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
