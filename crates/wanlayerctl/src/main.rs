//! `wanlayerctl`: administer wanlayer through its control device `\\.\WanLayer`.
//!
//! Exit codes: 0 success; 1 the driver refused or another error; 2 bad usage; 3 the driver is not
//! running; 4 access denied. `--json` prints machine-readable output (`watch`: one JSON object per
//! line). `--simulate` runs against a scripted simulated RRAS server instead of the driver (on hosts
//! other than Windows: its filter is wanlayer.sys's own handlers over the kernel model).
//!
//! Identifiers, in and out: modules and hooks are `slot.generation` (`0.1`), links their number
//! (`3`); link speeds print in bit/s with SI prefixes (`2.048 Mb/s`). See
//! [`wanlayer_proto::display`].

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use wanlayer_client::{Client, ClientError};
use wanlayer_proto::display::{HookIdText, ModuleIdText};
use wanlayer_proto::Access;

mod commands;
mod divert;
mod output;
mod rules;

/// Administer the wanlayer NdisWan filter.
///
/// Modules and hooks are named `slot.generation` (e.g. `0.1`), links by their number, in what
/// this prints and in what it reads.
#[derive(Parser, Debug)]
#[command(name = "wanlayerctl", version, about, long_about)]
pub struct Cli {
    /// Run against a scripted simulated RRAS server instead of the driver.
    #[arg(long, global = true)]
    simulate: bool,
    /// Print JSON (`watch`: one object per line).
    #[arg(long, global = true)]
    json: bool,
    /// Open the device for reading only (queries, statistics, events).
    #[arg(long, global = true)]
    read_only: bool,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The driver's version and capabilities.
    Version,
    /// The attached filter modules.
    Modules,
    /// The live WAN links with all their fields.
    Links {
        /// Only this module's links (`slot.generation`, e.g. 0.1).
        #[arg(long)]
        module: Option<ModuleIdText>,
        /// Include each link's raw protocol buffer (hex).
        #[arg(long)]
        protocol_buffer: bool,
    },
    /// The hook chain, bottom up.
    Hooks,
    /// Statistics of a module, a link or a hook; without a target, of every module and hook.
    Stats(TargetArgs),
    /// Zero the statistics of a module, a link or a hook; without a target, all of them.
    Reset(TargetArgs),
    /// Print events as they happen.
    Watch {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
        /// Stop when no event came for this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
        /// Only these kinds (comma separated: line-up, line-updated, line-down, module-attached,
        /// module-detached, module-paused, module-restarted, hook-added, hook-removed, rules-replaced,
        /// rules-refused).
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// Events the driver keeps for this watcher before counting them lost.
        #[arg(long, default_value_t = 4096)]
        capacity: u32,
    },
    /// Capture frames into a pcapng file (one interface per link).
    Capture {
        /// The pcapng file to write.
        #[arg(long, short)]
        output: std::path::PathBuf,
        /// Capture this link only.
        #[arg(long, conflicts_with_all = ["module", "rule"])]
        link: Option<u64>,
        /// Capture what the `capture` rule with this id matches (see `rules`).
        #[arg(long, conflicts_with = "module")]
        rule: Option<u32>,
        /// Capture this module only (`slot.generation`).
        #[arg(long)]
        module: Option<ModuleIdText>,
        /// Stop after this many frames.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<u64>,
        /// Bytes kept of each frame.
        #[arg(long, default_value_t = 2048)]
        snaplen: u32,
        /// Frames the driver buffers before counting drops.
        #[arg(long, default_value_t = 4096)]
        ring: u32,
    },
    /// Inject a packet on a link.
    Inject {
        /// The link.
        #[arg(long)]
        link: u64,
        /// The link's module (`slot.generation`; found automatically when omitted).
        #[arg(long)]
        module: Option<ModuleIdText>,
        /// Down to NdisWan (`send`) or up to the IP layer (`receive`).
        #[arg(long, value_enum)]
        direction: DirectionArg,
        /// The bytes, in hexadecimal.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        hex: Option<String>,
        /// A file holding the bytes.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The bytes are a whole Ethernet frame (by default an IP packet; the Ethernet header is
        /// added). The MAC addresses are always the link's.
        #[arg(long)]
        frame: bool,
    },
    /// The administrator's rule set: list, change, save, statistics, test a packet.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Divert the packets a filter matches to this program: print and pass them, drop them, or
    /// pipe each through a command (a user-mode hook).
    Divert(divert::DivertArgs),
}

/// `wanlayerctl rules …`. Rules files hold one rule per line, `<id> <priority> <action>
/// <filter>`, `#` comments; see the crate documentation.
#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// The rules in force, with the set's version and altitude.
    List,
    /// Add one rule: `<id> <priority> <action> <filter>` (e.g. `10 100 drop tcp dst port 445`).
    Add {
        /// The rule, as a line of a rules file.
        #[arg(required = true, num_args = 4.., allow_hyphen_values = true)]
        rule: Vec<String>,
        /// The altitude of the set (by default the set's, or 1000 for a first set).
        #[arg(long)]
        altitude: Option<u32>,
    },
    /// Delete the rule with this id.
    Delete {
        /// The rule's id.
        id: u32,
    },
    /// Replace the whole set with the rules of a file.
    Load {
        /// The rules file.
        file: std::path::PathBuf,
        /// The altitude of the set (by default the set's, or 1000 for a first set).
        #[arg(long)]
        altitude: Option<u32>,
        /// Replace whatever set is in force, even one changed since it was read.
        #[arg(long)]
        force: bool,
    },
    /// Write the set in force as a rules file (to standard output without a file).
    Save {
        /// The rules file to write.
        file: Option<std::path::PathBuf>,
    },
    /// Packets and bytes each rule matched, by direction.
    Stats,
    /// Which rule a packet would match, without sending it.
    Test {
        /// The packet in hexadecimal (an IP packet; with --frame a whole Ethernet frame).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        hex: Option<String>,
        /// A pcapng file holding the packet.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Which packet of the pcapng file (from 0).
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// --hex is a whole Ethernet frame.
        #[arg(long)]
        frame: bool,
        /// The link the packet travels on.
        #[arg(long, default_value_t = 0)]
        link: u64,
        /// Down to NdisWan (`send`) or up to the IP layer (`receive`).
        #[arg(long, value_enum, default_value = "send")]
        direction: DirectionArg,
        /// Test against the rules of this file instead of the set in force.
        #[arg(long)]
        rules: Option<std::path::PathBuf>,
        /// The link's DeviceName, for `device` rules.
        #[arg(long, default_value = "")]
        device: String,
    },
}

/// A module, link or hook.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// A module (`slot.generation`, e.g. 0.1).
    #[arg(long, conflicts_with_all = ["link", "hook"])]
    module: Option<ModuleIdText>,
    /// A link (its number).
    #[arg(long, conflicts_with = "hook")]
    link: Option<u64>,
    /// A hook (`slot.generation`, e.g. 0.1).
    #[arg(long)]
    hook: Option<HookIdText>,
}

/// A packet's way.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DirectionArg {
    /// Down to NdisWan.
    Send,
    /// Up to the IP layer.
    Receive,
}

/// Why a command failed, and its exit code.
#[derive(Debug)]
pub enum Failure {
    /// The driver, the device or the transport.
    Client(ClientError),
    /// A bad argument.
    Usage(String),
    /// A local error (files).
    Local(String),
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure::Client(error)
    }
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Client(ClientError::DriverNotFound) => 3,
            Failure::Client(error) if error.is_access_denied() => 4,
            Failure::Usage(_) => 2,
            Failure::Client(_) | Failure::Local(_) => 1,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Client(ClientError::DriverNotFound) if !cfg!(windows) => {
                write!(f, "{}; this is not Windows: --simulate runs against the simulator", ClientError::DriverNotFound)
            }
            Failure::Client(error) => error.fmt(f),
            Failure::Usage(message) | Failure::Local(message) => f.write_str(message),
        }
    }
}

/// What a command may do between reads that found nothing: the simulator runs its script's next
/// step (false once it is done); the real driver waits a little (false once a deadline passed).
pub type Idle<'a> = dyn FnMut() -> bool + 'a;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("wanlayerctl: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let access = if cli.read_only { Access::READ } else { Access::READ_WRITE };
    if cli.simulate {
        return simulated(cli, access);
    }
    real_device(cli, access)
}

/// `--simulate`: the scripted server, whose filter and control device are wanlayer.sys's own
/// handlers and dispatch routines over the kernel model.
#[cfg(not(windows))]
fn simulated(cli: &Cli, access: Access) -> Result<(), Failure> {
    let server = wanlayer_client::sim::SimServer::scripted().map_err(Failure::Local)?;
    let client = Client::connect(server.open(access)?)?;
    commands::execute(cli, client, &mut || server.step(), true)
}

/// `--simulate` on Windows: the simulated server runs the driver's handlers built for the host,
/// which a Windows user-mode program cannot link (there the driver's crate is the kernel image).
#[cfg(windows)]
fn simulated(_cli: &Cli, _access: Access) -> Result<(), Failure> {
    Err(Failure::Usage("--simulate runs on hosts other than Windows (its server runs the driver's own handlers)".to_string()))
}

#[cfg(windows)]
fn real_device(cli: &Cli, access: Access) -> Result<(), Failure> {
    let client = Client::connect(wanlayer_client::windows::WindowsTransport::open(access)?)?;
    commands::execute(
        cli,
        client,
        &mut || {
            std::thread::sleep(Duration::from_millis(100));
            true
        },
        false,
    )
}

#[cfg(not(windows))]
fn real_device(_cli: &Cli, _access: Access) -> Result<(), Failure> {
    Err(Failure::Client(ClientError::DriverNotFound))
}

/// How long an event read waits: the command's timeout, or as long as it takes.
pub fn event_wait(timeout: Option<u64>) -> Duration {
    timeout.map_or(Duration::MAX, Duration::from_secs)
}
