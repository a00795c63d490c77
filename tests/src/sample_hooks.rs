//! Small hooks for the scenarios, each doing one thing a real filter author would do and counting
//! what it did, so a test can compare the hook's own view with the engine's counters.
//!
//! Every hook here is `Send + Sync` (the [`Hook`] contract: called at `DISPATCH_LEVEL`, on any
//! processor); their state is atomics or a `Mutex` held only for a push or a drain.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wanlayer_core::hal::{Hal, PathContext};
use wanlayer_core::hook::{Direction, Hook, PacketContext, Ticket, Verdict};
use wanlayer_core::link::{LinkId, LinkSummary};
use wanlayer_core::wire::{clamp_tcp_mss, MacAddress};
use wanlayer_core::{Engine, ReinjectError, ReinjectVerdict};

use crate::frames;

/// Which packets a hook acts on; the others it passes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Applies {
    /// Sends only.
    Sends,
    /// Receives only.
    Receives,
    /// Both directions.
    Both,
}

impl Applies {
    /// True when a packet travelling `direction` is the hook's business.
    pub fn matches(self, direction: Direction) -> bool {
        match self {
            Applies::Sends => direction == Direction::Send,
            Applies::Receives => direction == Direction::Receive,
            Applies::Both => true,
        }
    }
}

/// The whole frame of the packet a hook is looking at.
pub fn read_frame(packet: &PacketContext<'_>) -> Vec<u8> {
    let mut frame = vec![0; packet.len()];
    let read = packet.read(0, &mut frame);
    frame.truncate(read);
    frame
}

/// What decides whether [`DropHook`] drops a packet.
pub type DropPredicate = Box<dyn Fn(&PacketContext<'_>) -> bool + Send + Sync>;

/// Drops every packet its predicate picks ([`Verdict::Drop`]) and passes the rest.
pub struct DropHook {
    predicate: DropPredicate,
    dropped: AtomicU64,
}

impl DropHook {
    /// Drops what `predicate` picks.
    pub fn new(predicate: impl Fn(&PacketContext<'_>) -> bool + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self { predicate: Box::new(predicate), dropped: AtomicU64::new(0) })
    }

    /// Drops every packet travelling the ways `applies` names.
    pub fn all(applies: Applies) -> Arc<Self> {
        Self::new(move |packet| applies.matches(packet.direction()))
    }

    /// Packets it dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn decide(&self, packet: &PacketContext<'_>) -> Verdict {
        if (self.predicate)(packet) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

impl Hook for DropHook {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.decide(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.decide(packet)
    }
}

/// Clamps the MSS option of TCP SYNs (both directions) to at most `clamp`, in place: only the TCP
/// header is written back, its checksum adjusted (RFC 1624) by the engine's one clamp,
/// [`clamp_tcp_mss`].
pub struct MssClampHook {
    clamp: u16,
    clamped: AtomicU64,
    edit_errors: AtomicU64,
}

impl MssClampHook {
    /// Clamps to `clamp`.
    pub fn new(clamp: u16) -> Arc<Self> {
        Arc::new(Self { clamp, clamped: AtomicU64::new(0), edit_errors: AtomicU64::new(0) })
    }

    /// SYNs whose MSS it lowered.
    pub fn clamped(&self) -> u64 {
        self.clamped.load(Ordering::Relaxed)
    }

    /// Edits the engine refused (no memory for the copy of a read-only packet).
    pub fn edit_errors(&self) -> u64 {
        self.edit_errors.load(Ordering::Relaxed)
    }

    fn clamp_packet(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let mut frame = read_frame(packet);
        let Some(clamp) = clamp_tcp_mss(&mut frame, self.clamp) else { return Verdict::Pass };
        match packet.write(clamp.tcp_header.start, &frame[clamp.tcp_header]) {
            Ok(()) => {
                self.clamped.fetch_add(1, Ordering::Relaxed);
                Verdict::Modify
            }
            Err(_) => {
                self.edit_errors.fetch_add(1, Ordering::Relaxed);
                Verdict::Pass
            }
        }
    }
}

impl Hook for MssClampHook {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.clamp_packet(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.clamp_packet(packet)
    }
}

/// Rewrites the IPv4 TTL (with the header checksum fixed) or the IPv6 hop limit by replacing the
/// whole frame through [`PacketContext::replace`].
pub struct TtlRewriteHook {
    ttl: u8,
    applies: Applies,
    replaced: AtomicU64,
    edit_errors: AtomicU64,
}

impl TtlRewriteHook {
    /// Rewrites to `ttl` the packets `applies` names.
    pub fn new(ttl: u8, applies: Applies) -> Arc<Self> {
        Arc::new(Self { ttl, applies, replaced: AtomicU64::new(0), edit_errors: AtomicU64::new(0) })
    }

    /// Packets it replaced.
    pub fn replaced(&self) -> u64 {
        self.replaced.load(Ordering::Relaxed)
    }

    /// Replacements the engine refused (no packet could be allocated).
    pub fn edit_errors(&self) -> u64 {
        self.edit_errors.load(Ordering::Relaxed)
    }

    fn rewrite(&self, packet: &mut PacketContext<'_>) -> Verdict {
        if !self.applies.matches(packet.direction()) {
            return Verdict::Pass;
        }
        let mut frame = read_frame(packet);
        if !frames::set_ttl(&mut frame, self.ttl) {
            return Verdict::Pass;
        }
        match packet.replace(&frame) {
            Ok(()) => {
                self.replaced.fetch_add(1, Ordering::Relaxed);
                Verdict::Modify
            }
            Err(_) => {
                self.edit_errors.fetch_add(1, Ordering::Relaxed);
                Verdict::Pass
            }
        }
    }
}

impl Hook for TtlRewriteHook {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.rewrite(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.rewrite(packet)
    }
}

/// Takes the packets `applies` names ([`Verdict::Take`]) while taking is on, queueing their
/// [`Ticket`]s in arrival order for a later [`Engine::reinject`] — a shaper's or a delay line's
/// skeleton.
pub struct QueueHook {
    applies: Applies,
    taking: AtomicBool,
    tickets: Mutex<VecDeque<Ticket>>,
}

impl QueueHook {
    /// Takes what `applies` names, starting now.
    pub fn new(applies: Applies) -> Arc<Self> {
        Arc::new(Self { applies, taking: AtomicBool::new(true), tickets: Mutex::new(VecDeque::new()) })
    }

    /// Turns taking on or off; packets met while off pass.
    pub fn set_taking(&self, taking: bool) {
        self.taking.store(taking, Ordering::Relaxed);
    }

    /// Tickets queued and not yet drained.
    pub fn queued(&self) -> usize {
        self.lock().len()
    }

    /// Removes and returns every queued ticket, oldest first.
    pub fn drain(&self) -> Vec<Ticket> {
        self.lock().drain(..).collect()
    }

    /// Removes and returns up to `count` queued tickets, oldest first.
    pub fn drain_oldest(&self, count: usize) -> Vec<Ticket> {
        let mut tickets = self.lock();
        let count = count.min(tickets.len());
        tickets.drain(..count).collect()
    }

    /// Drains the queue and reinjects every ticket with `verdict`, oldest first, as a timer at
    /// `PASSIVE_LEVEL` would; returns each result.
    pub fn reinject_all<H: Hal>(&self, engine: &Engine<H>, verdict: ReinjectVerdict) -> Vec<Result<(), ReinjectError>> {
        self.drain().into_iter().map(|ticket| engine.reinject(ticket, verdict, PathContext::default())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Ticket>> {
        self.tickets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn decide(&self, packet: &PacketContext<'_>) -> Verdict {
        if !self.taking.load(Ordering::Relaxed) || !self.applies.matches(packet.direction()) {
            return Verdict::Pass;
        }
        self.lock().push_back(packet.ticket());
        Verdict::Take
    }
}

impl Hook for QueueHook {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.decide(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.decide(packet)
    }
}

/// How often each callback of a [`CountingHook`] ran.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CallCounts {
    /// `on_send` calls.
    pub sends: u64,
    /// `on_receive` calls.
    pub receives: u64,
    /// `on_line_up` calls.
    pub line_ups: u64,
    /// `on_line_down` calls.
    pub line_downs: u64,
}

/// Counts every callback and passes everything.
#[derive(Default)]
pub struct CountingHook {
    sends: AtomicU64,
    receives: AtomicU64,
    line_ups: AtomicU64,
    line_downs: AtomicU64,
}

impl CountingHook {
    /// A hook that has seen nothing.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// What it has seen so far.
    pub fn calls(&self) -> CallCounts {
        CallCounts {
            sends: self.sends.load(Ordering::Relaxed),
            receives: self.receives.load(Ordering::Relaxed),
            line_ups: self.line_ups.load(Ordering::Relaxed),
            line_downs: self.line_downs.load(Ordering::Relaxed),
        }
    }
}

impl Hook for CountingHook {
    fn on_line_up(&self, _link: &LinkSummary) -> Option<u32> {
        self.line_ups.fetch_add(1, Ordering::Relaxed);
        None
    }
    fn on_line_down(&self, _link: &LinkSummary) {
        self.line_downs.fetch_add(1, Ordering::Relaxed);
    }
    fn on_send(&self, _packet: &mut PacketContext<'_>) -> Verdict {
        self.sends.fetch_add(1, Ordering::Relaxed);
        Verdict::Pass
    }
    fn on_receive(&self, _packet: &mut PacketContext<'_>) -> Verdict {
        self.receives.fetch_add(1, Ordering::Relaxed);
        Verdict::Pass
    }
}

/// Asks for a lower `MaximumTotalSize` on every line up (room for an encapsulation).
pub struct MtuHook {
    size: u32,
}

impl MtuHook {
    /// Asks for `size`.
    pub fn new(size: u32) -> Arc<Self> {
        Arc::new(Self { size })
    }
}

impl Hook for MtuHook {
    fn on_line_up(&self, _link: &LinkSummary) -> Option<u32> {
        Some(self.size)
    }
}

/// One callback a [`RecordingHook`] saw.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Callback {
    /// `on_line_up`.
    LineUp,
    /// `on_line_down`.
    LineDown,
    /// `on_send` or `on_receive`.
    Packet(Direction),
}

/// One entry of a [`CallLog`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Call {
    /// The recording hook's name.
    pub hook: &'static str,
    /// The callback.
    pub callback: Callback,
    /// The link it concerned.
    pub link: LinkId,
    /// That link's remote address.
    pub remote: MacAddress,
}

/// A log several [`RecordingHook`]s share, in call order.
#[derive(Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>);

impl CallLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().clone()
    }

    /// The hook names of the calls of one kind, in order.
    pub fn order(&self, callback: Callback) -> Vec<&'static str> {
        self.lock().iter().filter(|call| call.callback == callback).map(|call| call.hook).collect()
    }

    /// Forgets every call.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Call>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, hook: &'static str, callback: Callback, link: &LinkSummary) {
        self.lock().push(Call { hook, callback, link: link.id, remote: link.remote_address });
    }
}

/// Logs every callback, with its direction and link, into a shared [`CallLog`]; passes everything.
pub struct RecordingHook {
    name: &'static str,
    log: CallLog,
}

impl RecordingHook {
    /// Records as `name` into `log`.
    pub fn new(name: &'static str, log: &CallLog) -> Arc<Self> {
        Arc::new(Self { name, log: log.clone() })
    }
}

impl Hook for RecordingHook {
    fn on_line_up(&self, link: &LinkSummary) -> Option<u32> {
        self.log.push(self.name, Callback::LineUp, link);
        None
    }
    fn on_line_down(&self, link: &LinkSummary) {
        self.log.push(self.name, Callback::LineDown, link);
    }
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.log.push(self.name, Callback::Packet(Direction::Send), packet.link());
        Verdict::Pass
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.log.push(self.name, Callback::Packet(Direction::Receive), packet.link());
        Verdict::Pass
    }
}
