//! [`Divert`]: a user-mode hook — the packets a filter matches are taken from the data path,
//! read here in batches, and answered with verdicts in batches.
//!
//! ```no_run
//! # fn demo<T: wanlayer_client::Transport>(transport: T) -> wanlayer_client::Result<()> {
//! use std::time::Duration;
//! use wanlayer_client::divert::{Divert, DivertConfig, Verdict};
//! let config = DivertConfig::new(wanlayer_client::divert::compile_filter("udp port 53").expect("a valid filter"));
//! let mut divert = Divert::open(transport, &config)?;
//! let mut verdicts = Vec::new();
//! divert.read_with(256, Some(Duration::from_secs(1)), |packet| verdicts.push((packet.ticket(), Verdict::Pass)))?;
//! divert.answer(&verdicts)?;
//! # Ok(()) }
//! ```
//!
//! Reads wait through [`Transport::call_pending`]: on Windows an overlapped `DeviceIoControl`
//! (cancelled with `CancelIoEx` at the timeout), on the simulator the same inverted call the
//! driver makes. Dropping the [`Divert`] closes the handle: every packet still held gets the
//! hook's fail policy.

use std::time::Duration;

use wanlayer_proto::ioctl::{
    IOCTL_DIVERT_CLOSE, IOCTL_DIVERT_OPEN, IOCTL_DIVERT_READ, IOCTL_DIVERT_VERDICTS,
};
use wanlayer_proto::limits::MAX_READ_BATCH;
pub use wanlayer_proto::{DivertAction, DivertCounters, DivertMeta, FailPolicy};
use wanlayer_proto::{
    DivertBatch, DivertBatchRepr, DivertInfo, DivertInfoRepr, DivertOpen, DivertOpenRepr,
    DivertPacketRepr, DivertResult, DivertResultRepr, DivertVerdict, DivertVerdictRepr,
    DivertVerdicts, DivertVerdictsRepr, HeaderOnly, ReadRequest, ReadRequestRepr, DIVERT_RECEIVE,
    DIVERT_SEND,
};

use crate::{ClientError, Result, Transport};

/// Output room for a batch of `max` packets of up to `max_frame` bytes.
fn batch_room(max: u32, max_frame: u32) -> usize {
    DivertBatch::<&[u8]>::LEN
        + max as usize * wanlayer_proto::divert_packet_len(max_frame as usize).unwrap_or(16_424)
}

/// Compiles a filter (pcap-filter syntax plus `link`, `device`, `send`, `receive`) into the
/// one-rule set `DIVERT_OPEN` carries: `1 0 divert <filter>`.
///
/// # Errors
/// The compiler's message when the filter does not parse.
pub fn compile_filter(filter: &str) -> std::result::Result<Vec<u8>, String> {
    let rule = wanlayer_rules::RuleSource {
        id: 1,
        priority: 0,
        action: wanlayer_rules::Action::Divert,
        filter,
    };
    wanlayer_rules::compile(&[rule]).map_err(|error| error.to_string())
}

/// How a user-mode hook is registered.
#[derive(Clone, Debug)]
pub struct DivertConfig {
    /// The compiled filter ([`compile_filter`], or a set with several rules: the packets its
    /// `divert` rules match are diverted).
    pub filter: Vec<u8>,
    /// Altitude among the kernel hooks.
    pub altitude: u32,
    /// Divert sends.
    pub send: bool,
    /// Divert receives.
    pub receive: bool,
    /// Packets held at once.
    pub queue_len: u32,
    /// Time limit of a held packet.
    pub timeout: Duration,
    /// Longest frame diverted (longer ones get the fail policy).
    pub max_frame: u32,
    /// What happens to packets not answered in time or that find the queue full.
    pub fail: FailPolicy,
}

impl DivertConfig {
    /// Both directions at altitude 2000, 1024 packets, one second, 1600-byte frames, fail open.
    pub fn new(filter: Vec<u8>) -> Self {
        Self {
            filter,
            altitude: 2000,
            send: true,
            receive: true,
            queue_len: 1024,
            timeout: Duration::from_secs(1),
            max_frame: 1600,
            fail: FailPolicy::Pass,
        }
    }
}

/// Names a diverted packet in a verdict.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DivertTicket {
    /// The module holding it.
    pub module: u32,
    /// The ticket serial.
    pub serial: u64,
}

/// A diverted packet, borrowed from the read's buffer.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    /// Its metadata: module, ticket serial, link, time, direction.
    pub meta: DivertMeta,
    /// The whole frame.
    pub frame: &'a [u8],
}

impl PacketView<'_> {
    /// The ticket to answer it with.
    pub fn ticket(&self) -> DivertTicket {
        DivertTicket {
            module: self.meta.module,
            serial: self.meta.serial,
        }
    }
}

/// What to do with a diverted packet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Hand it on.
    Pass,
    /// Drop it.
    Drop,
    /// Hand this frame on in its place.
    Replace(Vec<u8>),
}

/// What a batch of verdicts did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Answered {
    /// Verdicts applied.
    pub applied: u32,
    /// Verdicts refused (stale ticket, released by the driver, another handle's).
    pub refused: u32,
}

/// A user-mode hook over its own handle of the control device.
pub struct Divert<T: Transport> {
    transport: T,
    hook: u64,
    max_frame: u32,
    output: Vec<u8>,
    input: Vec<u8>,
    counters: DivertCounters,
}

impl<T: Transport> Divert<T> {
    /// Registers the hook (`DIVERT_OPEN`; the handle needs write access).
    ///
    /// # Errors
    /// The transport's errors: `STATUS_INVALID_PARAMETER` for a bad filter or bound,
    /// `STATUS_TOO_MANY_SESSIONS` when every user-mode hook slot is taken.
    pub fn open(mut transport: T, config: &DivertConfig) -> Result<Self> {
        let directions = if config.send { DIVERT_SEND } else { 0 }
            | if config.receive { DIVERT_RECEIVE } else { 0 };
        let timeout_ms = u32::try_from(config.timeout.as_millis()).unwrap_or(u32::MAX);
        let repr = DivertOpenRepr {
            altitude: config.altitude,
            directions,
            fail_policy: config.fail,
            queue_len: config.queue_len,
            timeout_ms,
            max_frame: config.max_frame,
            blob: &config.filter,
        };
        let mut input = vec![0u8; repr.buffer_len()];
        repr.emit(&mut DivertOpen::new_unchecked(&mut input[..]))?;
        let mut output = [0u8; DivertInfo::<&[u8]>::LEN];
        let written = transport.call(IOCTL_DIVERT_OPEN, &input, &mut output)?;
        let info = DivertInfoRepr::parse(&DivertInfo::new_unchecked(
            output.get(..written).unwrap_or_default(),
        ))?;
        Ok(Self {
            transport,
            hook: info.hook,
            max_frame: config.max_frame,
            output: Vec::new(),
            input: Vec::new(),
            counters: DivertCounters::default(),
        })
    }

    /// The hook's identity in the chain (as `wanlayerctl stats --hook` names it).
    pub fn hook(&self) -> u64 {
        self.hook
    }

    /// The hook's counters, as of the last read.
    pub fn counters(&self) -> DivertCounters {
        self.counters
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Reads up to `max` diverted packets (`DIVERT_READ`), handing each to `visit` without
    /// copying it; returns how many. With `wait`, waits up to that long for the first one
    /// (`Duration::MAX`: as long as it takes); without, returns at once.
    ///
    /// # Errors
    /// The transport's errors; a malformed answer.
    pub fn read_with(
        &mut self,
        max: u32,
        wait: Option<Duration>,
        mut visit: impl FnMut(PacketView<'_>),
    ) -> Result<usize> {
        let max = max.clamp(1, MAX_READ_BATCH);
        let mut request = [0u8; 16];
        ReadRequestRepr {
            max_records: max,
            wait: wait.is_some(),
        }
        .emit(&mut ReadRequest::new_unchecked(&mut request[..]))?;
        self.output.resize(batch_room(max, self.max_frame), 0);
        let written = match wait {
            None => Some(
                self.transport
                    .call(IOCTL_DIVERT_READ, &request, &mut self.output)?,
            ),
            Some(timeout) => {
                let timeout = (timeout != Duration::MAX).then_some(timeout);
                self.transport.call_pending(
                    IOCTL_DIVERT_READ,
                    &request,
                    &mut self.output,
                    timeout,
                )?
            }
        };
        let Some(written) = written else { return Ok(0) };
        let answer = self
            .output
            .get(..written)
            .ok_or(ClientError::Malformed(wanlayer_proto::Error::BadSize))?;
        let view = DivertBatch::new_unchecked(answer);
        let repr = DivertBatchRepr::parse(&view)?;
        self.counters = repr.counters;
        let mut count = 0;
        for packet in view.packets() {
            let packet: DivertPacketRepr<'_> = packet?;
            visit(PacketView {
                meta: packet.meta,
                frame: packet.frame,
            });
            count += 1;
        }
        Ok(count)
    }

    /// Answers a batch of packets (`DIVERT_VERDICTS`), in order.
    ///
    /// # Errors
    /// The transport's errors; `STATUS_INVALID_PARAMETER` for a replacement frame of a bad
    /// length or more than [`MAX_READ_BATCH`] verdicts.
    pub fn answer(&mut self, verdicts: &[(DivertTicket, Verdict)]) -> Result<Answered> {
        let count = u32::try_from(verdicts.len())
            .map_err(|_| ClientError::Malformed(wanlayer_proto::Error::BadCount))?;
        let mut size = DivertVerdicts::<&[u8]>::LEN;
        let records: Vec<DivertVerdictRepr<'_>> = verdicts
            .iter()
            .map(|(ticket, verdict)| {
                let (action, frame): (DivertAction, &[u8]) = match verdict {
                    Verdict::Pass => (DivertAction::Pass, &[]),
                    Verdict::Drop => (DivertAction::Drop, &[]),
                    Verdict::Replace(frame) => (DivertAction::Replace, frame),
                };
                DivertVerdictRepr {
                    module: ticket.module,
                    serial: ticket.serial,
                    action,
                    frame,
                }
            })
            .collect();
        for record in &records {
            size += record.buffer_len()?;
        }
        self.input.clear();
        self.input.resize(size, 0);
        DivertVerdictsRepr { count, size }
            .emit(&mut DivertVerdicts::new_unchecked(&mut self.input[..]))?;
        let mut at = DivertVerdicts::<&[u8]>::LEN;
        for record in &records {
            let len = record.buffer_len()?;
            record.emit(&mut DivertVerdict::new_unchecked(
                &mut self.input[at..at + len],
            ))?;
            at += len;
        }
        let mut output = [0u8; DivertResult::<&[u8]>::LEN];
        let written = self
            .transport
            .call(IOCTL_DIVERT_VERDICTS, &self.input, &mut output)?;
        let result = DivertResultRepr::parse(&DivertResult::new_unchecked(
            output.get(..written).unwrap_or_default(),
        ))?;
        Ok(Answered {
            applied: result.applied,
            refused: result.refused,
        })
    }

    /// Closes the hook (`DIVERT_CLOSE`): every packet still held gets the fail policy, and the
    /// hook leaves the chain. Returns the transport (the handle stays open).
    ///
    /// # Errors
    /// The transport's errors.
    pub fn close(mut self) -> Result<T> {
        let mut input = [0u8; HeaderOnly::LEN];
        HeaderOnly.emit(&mut input)?;
        self.transport.call(IOCTL_DIVERT_CLOSE, &input, &mut [])?;
        Ok(self.transport)
    }
}
