//! `wanlayerctl divert FILTER…`: a user-mode hook from the command line. The packets the filter
//! matches are diverted here in batches and, by `--action`, printed and passed, dropped, or piped
//! one by one through a command (the frame on its standard input; what it writes on its standard
//! output replaces the frame, nothing drops it, a failure passes it unchanged).

use std::io::Write;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use wanlayer_client::divert::{compile_filter, Divert, DivertConfig, DivertTicket, FailPolicy, PacketView, Verdict};
use wanlayer_client::Transport;
use wanlayer_proto::display::ModuleIdText;

use crate::{Cli, Failure, Idle};

/// Packets read per batch.
const BATCH: u32 = 256;

/// `wanlayerctl divert`.
#[derive(Args, Debug)]
pub struct DivertArgs {
    /// The filter (pcap-filter syntax plus `link`, `device`, `send`, `receive`).
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
    filter: Vec<String>,
    /// What to do with each diverted packet.
    #[arg(long, value_enum, default_value = "print")]
    action: DivertActionArg,
    /// The command `--action pipe` runs for each packet (through `sh -c`, or `cmd /C` on Windows).
    #[arg(long, required_if_eq("action", "pipe"))]
    command: Option<String>,
    /// Altitude among the kernel hooks.
    #[arg(long, default_value_t = 2000)]
    altitude: u32,
    /// Packets the driver holds for this program at once.
    #[arg(long, default_value_t = 1024)]
    queue: u32,
    /// Milliseconds a held packet may wait for its verdict.
    #[arg(long, default_value_t = 1000)]
    time_limit: u32,
    /// What happens to packets not answered in time or that find the queue full.
    #[arg(long, value_enum, default_value = "open")]
    fail: FailArg,
    /// Divert sends only.
    #[arg(long, conflicts_with = "receive_only")]
    send_only: bool,
    /// Divert receives only.
    #[arg(long)]
    receive_only: bool,
    /// Stop after this many packets.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<u64>,
}

/// What `divert` does with a packet.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DivertActionArg {
    /// Print it and pass it.
    Print,
    /// Drop it.
    Drop,
    /// Pipe it through `--command`.
    Pipe,
}

/// The fail policy.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FailArg {
    /// Pass what is not answered in time.
    Open,
    /// Drop it.
    Closed,
}

/// Runs `divert` over its own handle.
pub fn run<T: Transport>(cli: &Cli, args: &DivertArgs, transport: T, idle: &mut Idle<'_>) -> Result<(), Failure> {
    let filter = args.filter.join(" ");
    let blob = compile_filter(&filter).map_err(|error| Failure::Usage(format!("the filter does not compile: {error}")))?;
    let config = DivertConfig {
        filter: blob,
        altitude: args.altitude,
        send: !args.receive_only,
        receive: !args.send_only,
        queue_len: args.queue,
        timeout: Duration::from_millis(u64::from(args.time_limit)),
        max_frame: 16_384,
        fail: match args.fail {
            FailArg::Open => FailPolicy::Pass,
            FailArg::Closed => FailPolicy::Drop,
        },
    };
    let mut divert = Divert::open(transport, &config)?;
    if !cli.json {
        println!("diverting '{filter}' as hook {:#x} ({:?})", divert.hook(), args.action);
    }
    let deadline = args.duration.map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let mut seen = 0u64;
    let mut verdicts: Vec<(DivertTicket, Verdict)> = Vec::new();
    loop {
        let want = args.count.map_or(BATCH, |count| u32::try_from(count - seen).unwrap_or(BATCH).min(BATCH));
        verdicts.clear();
        let mut failure = None;
        let read = divert.read_with(want, Some(Duration::from_millis(200)), |packet| match decide(cli, args, &packet) {
            Ok(verdict) => verdicts.push((packet.ticket(), verdict)),
            Err(error) => {
                verdicts.push((packet.ticket(), Verdict::Pass));
                failure.get_or_insert(error);
            }
        })?;
        if !verdicts.is_empty() {
            divert.answer(&verdicts)?;
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        seen += read as u64;
        let done = args.count.is_some_and(|count| seen >= count) || deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if done || (read == 0 && !idle()) {
            break;
        }
    }
    let counters = divert.counters();
    divert.close()?;
    if cli.json {
        println!(
            "{}",
            serde_json::json!({ "packets": seen, "diverted": counters.diverted, "queue_full": counters.queue_full,
                "expired": counters.expired, "refused": counters.refused })
        );
    } else {
        println!(
            "{seen} packets; diverted {}, queue full {}, expired {}, verdicts refused {}",
            counters.diverted, counters.queue_full, counters.expired, counters.refused
        );
    }
    Ok(())
}

/// The verdict on one packet.
fn decide(cli: &Cli, args: &DivertArgs, packet: &PacketView<'_>) -> Result<Verdict, Failure> {
    match args.action {
        DivertActionArg::Print => {
            print_packet(cli, packet);
            Ok(Verdict::Pass)
        }
        DivertActionArg::Drop => Ok(Verdict::Drop),
        DivertActionArg::Pipe => pipe(args.command.as_deref().unwrap_or_default(), packet.frame),
    }
}

fn print_packet(cli: &Cli, packet: &PacketView<'_>) {
    let meta = packet.meta;
    let direction = meta.direction;
    let head: String = packet.frame.iter().take(48).map(|byte| format!("{byte:02x}")).collect();
    if cli.json {
        println!(
            "{}",
            serde_json::json!({ "ticket": meta.serial, "module": ModuleIdText(meta.module).to_string(), "link": meta.link_id, "direction": direction.to_string(),
                "time_ns": meta.time_ns, "len": packet.frame.len(), "head": head })
        );
    } else {
        println!("#{} link {} {direction} {} bytes {head}", meta.serial, meta.link_id, packet.frame.len());
    }
}

/// Runs `command` with `frame` on its standard input: its output replaces the frame (nothing:
/// drop); a failure passes the frame unchanged.
fn pipe(command: &str, frame: &[u8]) -> Result<Verdict, Failure> {
    let (shell, flag) = if cfg!(windows) { ("cmd", "/C") } else { ("sh", "-c") };
    let mut child = Process::new(shell)
        .args([flag, command])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| Failure::Local(format!("could not run '{command}': {error}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input still answers.
        let _ = stdin.write_all(frame);
    }
    let output = child.wait_with_output().map_err(|error| Failure::Local(format!("'{command}': {error}")))?;
    Ok(match (output.status.success(), output.stdout.is_empty()) {
        (false, _) => Verdict::Pass,
        (true, true) => Verdict::Drop,
        (true, false) if output.stdout == frame => Verdict::Pass,
        (true, false) => Verdict::Replace(output.stdout),
    })
}
