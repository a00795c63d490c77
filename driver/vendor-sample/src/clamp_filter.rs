//! [`ClampFilter`]: the MSS clamp and the per-link rate limiter, as one [`VendorFilter`].
//!
//! # Rate limiting
//!
//! Each link has a [`TokenBucket`] and a FIFO queue of at most [`Config::queue_packets`] taken
//! sends. A send passes at once when the link's queue is empty and the bucket holds its length in
//! bytes; otherwise it is taken (`Verdict::Take`) and queued behind the others, or dropped and
//! counted when the queue is full. [`ClampFilter::release`] reinjects queued sends in order as
//! their tokens become available: the kernel driver calls it from a periodic timer's DPC, the
//! simulator tests after advancing virtual time. Receives are never delayed.
//!
//! A queued send whose ticket went stale (wanlayer completed it: the adapter paused, the link went
//! down, the filter deregistered) is skipped when its turn comes, its tokens refunded.
//!
//! # Locking
//!
//! One [`SpinLock`] guards the links; it is never held across a table call (a reinjection runs the
//! rest of the chain and the send down), so `release` moves a batch out under the lock and
//! reinjects it after. One release runs at a time (`releasing`), so a link's packets leave in
//! order even if two timer expiries overlap.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wanlayer_sdk::sync::SpinLock;
use wanlayer_sdk::wire::{clamp_tcp_mss, MSS_CLAMP_HEADER_LEN};
use wanlayer_sdk::{LinkInfo, Packet, Provider, ReinjectVerdict, Status, Ticket, VendorFilter, Verdict};

use crate::bucket::TokenBucket;

/// What the filter does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Config {
    /// The largest TCP MSS a SYN may announce.
    pub mss: u16,
    /// Each link's send rate, in bytes per second (frame bytes, Ethernet header included).
    pub rate_bytes_per_second: u64,
    /// Each link's bucket depth: the burst sent at once after a quiet period, in bytes.
    pub burst_bytes: u64,
    /// Sends queued per link at most; more are dropped.
    pub queue_packets: usize,
    /// Links shaped at once; sends of further links pass unshaped (counted).
    pub max_links: usize,
}

impl Config {
    /// An MSS of 1360 (room for a 40-byte tunnel header on a 1500-byte path), 1 Mbit/s per link
    /// with a 16 KiB burst, 64 queued sends per link, 64 links.
    pub const DEFAULT: Config =
        Config { mss: 1360, rate_bytes_per_second: 125_000, burst_bytes: 16_384, queue_packets: 64, max_links: 64 };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the filter did, as a plain copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ClampStats {
    /// SYNs whose MSS was lowered.
    pub clamped: u64,
    /// Clamps wanlayer refused to write (no memory for a private copy).
    pub edit_failures: u64,
    /// Sends passed at once.
    pub passed: u64,
    /// Sends taken into a queue.
    pub queued: u64,
    /// Queued sends reinjected.
    pub released: u64,
    /// Sends dropped because their link's queue was full.
    pub dropped_queue_full: u64,
    /// Sends passed unshaped: no room for another link (or no memory for its queue).
    pub untracked: u64,
    /// Queued sends wanlayer had completed before their turn (stale tickets).
    pub stale: u64,
    /// Queued sends of links that went down (wanlayer completes them).
    pub discarded_line_down: u64,
    /// Reinjections refused for another reason (the registration is gone).
    pub reinject_failures: u64,
}

#[derive(Default)]
struct Counters {
    clamped: AtomicU64,
    edit_failures: AtomicU64,
    passed: AtomicU64,
    queued: AtomicU64,
    released: AtomicU64,
    dropped_queue_full: AtomicU64,
    untracked: AtomicU64,
    stale: AtomicU64,
    discarded_line_down: AtomicU64,
    reinject_failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A taken send waiting for its tokens.
#[derive(Clone, Copy, Debug)]
struct Queued {
    ticket: Ticket,
    cost: u64,
}

/// One shaped link.
struct LinkState {
    id: u64,
    bucket: TokenBucket,
    queue: VecDeque<Queued>,
}

/// The shaped links, searched linearly (a few dozen at most).
struct Links {
    links: Vec<LinkState>,
}

impl Links {
    fn get(&mut self, id: u64) -> Option<&mut LinkState> {
        self.links.iter_mut().find(|link| link.id == id)
    }

    /// The link's state, created (with its queue's memory reserved, so queueing never allocates)
    /// unless the table is full or memory is short.
    fn get_or_insert(&mut self, id: u64, now: u64, config: &Config) -> Option<&mut LinkState> {
        if let Some(index) = self.links.iter().position(|link| link.id == id) {
            return self.links.get_mut(index);
        }
        if self.links.len() >= config.max_links || self.links.try_reserve(1).is_err() {
            return None;
        }
        let mut queue = VecDeque::new();
        queue.try_reserve_exact(config.queue_packets).ok()?;
        #[allow(clippy::disallowed_methods, reason = "reserved fallibly above: no allocation")]
        self.links.push(LinkState { id, bucket: TokenBucket::new(config.rate_bytes_per_second, config.burst_bytes, now), queue });
        self.links.last_mut()
    }
}

/// What the rate limiter decided about a send.
enum Shaped {
    Pass,
    Queued,
    Full,
    Untracked,
}

/// Sends a release moves out of the queues per lock hold.
const RELEASE_BATCH: usize = 16;

/// The MSS clamp and per-link rate limiter.
pub struct ClampFilter {
    config: Config,
    links: SpinLock<Links>,
    counters: Counters,
    releasing: AtomicBool,
    revoked: AtomicBool,
}

impl ClampFilter {
    /// A filter with `config` and no link yet.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            links: SpinLock::new(Links { links: Vec::new() }),
            counters: Counters::default(),
            releasing: AtomicBool::new(false),
            revoked: AtomicBool::new(false),
        }
    }

    /// What the filter did so far.
    pub fn stats(&self) -> ClampStats {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ClampStats {
            clamped: load(&c.clamped),
            edit_failures: load(&c.edit_failures),
            passed: load(&c.passed),
            queued: load(&c.queued),
            released: load(&c.released),
            dropped_queue_full: load(&c.dropped_queue_full),
            untracked: load(&c.untracked),
            stale: load(&c.stale),
            discarded_line_down: load(&c.discarded_line_down),
            reinject_failures: load(&c.reinject_failures),
        }
    }

    /// Sends queued on link `id` now, and the whole bytes its bucket held at its last refill;
    /// `None` for a link the filter does not shape.
    pub fn link_state(&self, id: u64) -> Option<(usize, u64)> {
        self.links.with(|links| links.get(id).map(|link| (link.queue.len(), link.bucket.available())))
    }

    /// Reinjects, in order, the queued sends whose tokens are there now; returns how many were
    /// handed back. A no-op once wanlayer revoked the registration, and while another release
    /// runs.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL` (the kernel driver's timer DPC).
    pub fn release(&self, provider: &Provider<'_>) -> usize {
        if self.revoked.load(Ordering::Acquire) || self.releasing.swap(true, Ordering::Acquire) {
            return 0;
        }
        let mut released = 0;
        loop {
            let now = provider.now();
            let mut batch = [None::<(u64, Queued)>; RELEASE_BATCH];
            let mut found = 0;
            self.links.with(|links| {
                for link in &mut links.links {
                    link.bucket.refill(now);
                    while found < RELEASE_BATCH {
                        let Some(head) = link.queue.front().copied() else { break };
                        if !link.bucket.try_take(head.cost) {
                            break;
                        }
                        link.queue.pop_front();
                        batch[found] = Some((link.id, head));
                        found += 1;
                    }
                }
            });
            let mut refunded = false;
            for (link, queued) in batch.iter().flatten() {
                match provider.reinject(queued.ticket, ReinjectVerdict::Pass) {
                    Ok(()) => {
                        bump(&self.counters.released);
                        released += 1;
                    }
                    Err(Status::NOT_FOUND) => {
                        bump(&self.counters.stale);
                        refunded = true;
                        self.links.with(|links| {
                            if let Some(link) = links.get(*link) {
                                link.bucket.refund(queued.cost);
                            }
                        });
                    }
                    Err(_) => bump(&self.counters.reinject_failures),
                }
            }
            // Go on while batches fill up, or while refunds may pay for what is behind them.
            if (found < RELEASE_BATCH && !refunded) || self.revoked.load(Ordering::Acquire) {
                break;
            }
        }
        self.releasing.store(false, Ordering::Release);
        released
    }

    /// Clamps the MSS of a SYN (the SDK's [`clamp_tcp_mss`] on a copy of the headers, whose TCP
    /// header is written back); true when the packet was changed.
    fn clamp(&self, packet: &mut Packet<'_>) -> bool {
        let mut head = [0u8; MSS_CLAMP_HEADER_LEN];
        let read = packet.read(0, &mut head);
        let Some(head) = head.get_mut(..read) else { return false };
        let Some(clamp) = clamp_tcp_mss(head, self.config.mss) else { return false };
        let Some(tcp_header) = head.get(clamp.tcp_header.clone()) else { return false };
        match packet.write(clamp.tcp_header.start, tcp_header) {
            Ok(()) => {
                bump(&self.counters.clamped);
                true
            }
            Err(_) => {
                bump(&self.counters.edit_failures);
                false
            }
        }
    }

    fn shape(&self, provider: &Provider<'_>, packet: &Packet<'_>) -> Shaped {
        let cost = packet.len() as u64;
        let ticket = packet.ticket();
        let now = provider.now();
        let config = &self.config;
        self.links.with(|links| {
            let Some(link) = links.get_or_insert(packet.link().link_id, now, config) else { return Shaped::Untracked };
            link.bucket.refill(now);
            if link.queue.is_empty() && link.bucket.try_take(cost) {
                Shaped::Pass
            } else if link.queue.len() >= config.queue_packets {
                Shaped::Full
            } else {
                // Below `queue_packets`, the capacity reserved when the link was created.
                #[allow(clippy::disallowed_methods, reason = "within the reserved capacity: no allocation")]
                link.queue.push_back(Queued { ticket, cost });
                Shaped::Queued
            }
        })
    }
}

impl VendorFilter for ClampFilter {
    fn on_line_up(&self, provider: &Provider<'_>, link: &LinkInfo) -> Option<u32> {
        // Shape the link from its first packet on (no room: its sends will pass, counted).
        let now = provider.now();
        let config = &self.config;
        self.links.with(|links| {
            let _ = links.get_or_insert(link.link_id, now, config);
        });
        None
    }

    fn on_line_down(&self, _provider: &Provider<'_>, link: &LinkInfo) {
        let discarded = self.links.with(|links| {
            let index = links.links.iter().position(|state| state.id == link.link_id)?;
            Some(links.links.swap_remove(index).queue.len())
        });
        if let Some(discarded) = discarded {
            self.counters.discarded_line_down.fetch_add(discarded as u64, Ordering::Relaxed);
        }
    }

    fn on_send(&self, provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        let clamped = self.clamp(packet);
        let passed = if clamped { Verdict::Modify } else { Verdict::Pass };
        match self.shape(provider, packet) {
            Shaped::Pass => {
                bump(&self.counters.passed);
                passed
            }
            Shaped::Untracked => {
                bump(&self.counters.untracked);
                passed
            }
            // A clamped SYN is queued with its edit: the engine holds the edited packet.
            Shaped::Queued => {
                bump(&self.counters.queued);
                Verdict::Take
            }
            Shaped::Full => {
                bump(&self.counters.dropped_queue_full);
                Verdict::Drop
            }
        }
    }

    fn on_receive(&self, _provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        if self.clamp(packet) {
            Verdict::Modify
        } else {
            Verdict::Pass
        }
    }

    fn on_provider_unload(&self) {
        self.revoked.store(true, Ordering::Release);
        // A release in progress on another processor may still be calling the table: wait for it.
        while self.releasing.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
    }
}
