//! Small vendor filters written against the SDK, as a third-party driver would write them: each
//! implements `wanlayer_sdk::VendorFilter` only, and the scenarios register them through the
//! provider interface's C-ABI table: the table `wanlayer.sys`'s handlers (the driver in the loop)
//! hand out to the SDK's kernel client ([`connect`]), the path a kernel vendor takes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use wanlayer_sdk::kernel::Connection;
use wanlayer_sdk::provider::HostCounts;
use wanlayer_sdk::{Direction, LinkInfo, Packet, Provider, ReinjectVerdict, Status, Ticket, VendorFilter, Verdict};
use wanlayer_sim::Rras;
use wanlayer_sim_driver::DriverFilter;

use crate::frames;

/// Connects to the driver in the loop as a kernel vendor's `DriverEntry` does, at
/// `PASSIVE_LEVEL`: `\Device\WanLayer` opened (`IoGetDeviceObjectPointer`, an `IRP_MJ_CREATE`
/// to the driver's dispatch routine) and `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` sent as an
/// internal device control IRP, answered by the driver's handler, the answer checked.
///
/// # Errors
/// The status opening or the request failed with.
pub fn try_connect(rras: &Rras<DriverFilter>) -> Result<Connection, Status> {
    rras.filter().vendor_call(false, Connection::open)
}

/// [`try_connect`], which must succeed.
///
/// # Panics
/// When the driver does not answer with its table.
#[track_caller]
pub fn connect(rras: &Rras<DriverFilter>) -> Connection {
    try_connect(rras).expect("wanlayer.sys hands out its table")
}

/// What the loaded driver's provider did (`wanlayer::provider::host`).
///
/// # Panics
/// When the driver is not loaded.
#[track_caller]
pub fn provider_counts() -> HostCounts {
    wanlayer::provider::host().expect("wanlayer.sys is loaded").counts()
}

/// What the driver's `DriverUnload` does first with the registrations still there
/// (`wanlayer::provider::shutdown`: `Host::revoke_all`), while its engine and modules are still
/// up. Returns how many were revoked.
///
/// # Panics
/// When the driver is not loaded.
#[track_caller]
pub fn revoke_all(rras: &Rras<DriverFilter>) -> usize {
    let host = wanlayer::provider::host().expect("wanlayer.sys is loaded");
    rras.filter().vendor_call(false, || host.revoke_all())
}

/// One callback a [`RecordingVendor`] saw.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VendorCall {
    /// `on_line_up`.
    LineUp,
    /// `on_line_down`.
    LineDown,
    /// `on_send` / `on_receive`.
    Packet(Direction),
}

/// One entry of a [`VendorLog`]: the vendor's name, the callback, the link's identity.
pub type VendorEntry = (&'static str, VendorCall, u64);

/// A log several vendors share, in call order.
#[derive(Clone, Default)]
pub struct VendorLog(Arc<Mutex<Vec<VendorEntry>>>);

impl VendorLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<VendorEntry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The vendor names of the calls of one kind, in order.
    pub fn order(&self, call: VendorCall) -> Vec<&'static str> {
        self.lock().iter().filter(|(_, kind, _)| *kind == call).map(|(name, _, _)| *name).collect()
    }

    /// Forgets every call.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn push(&self, name: &'static str, call: VendorCall, link: &LinkInfo) {
        self.lock().push((name, call, link.link_id));
    }
}

/// Logs every callback into a shared [`VendorLog`] and passes everything.
pub struct RecordingVendor {
    name: &'static str,
    log: VendorLog,
}

impl RecordingVendor {
    /// Records as `name` into `log`.
    pub fn new(name: &'static str, log: &VendorLog) -> Self {
        Self { name, log: log.clone() }
    }
}

impl VendorFilter for RecordingVendor {
    fn on_line_up(&self, _provider: &Provider<'_>, link: &LinkInfo) -> Option<u32> {
        self.log.push(self.name, VendorCall::LineUp, link);
        None
    }
    fn on_line_down(&self, _provider: &Provider<'_>, link: &LinkInfo) {
        self.log.push(self.name, VendorCall::LineDown, link);
    }
    fn on_send(&self, _provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        self.log.push(self.name, VendorCall::Packet(Direction::Send), packet.link());
        Verdict::Pass
    }
    fn on_receive(&self, _provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        self.log.push(self.name, VendorCall::Packet(Direction::Receive), packet.link());
        Verdict::Pass
    }
}

/// Takes every packet travelling `direction` (`None`: both) and keeps the tickets, never giving
/// anything back unless asked: the vendor that must not be able to wedge a pause.
pub struct TakingVendor {
    direction: Option<Direction>,
    tickets: Mutex<Vec<Ticket>>,
    unloaded: AtomicBool,
}

impl TakingVendor {
    /// Takes what travels `direction` (`None`: everything).
    pub fn new(direction: Option<Direction>) -> Self {
        Self { direction, tickets: Mutex::new(Vec::new()), unloaded: AtomicBool::new(false) }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Ticket>> {
        self.tickets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tickets taken and not handed back.
    pub fn held(&self) -> usize {
        self.lock().len()
    }

    /// Hands every ticket back with `verdict`, oldest first; returns each result.
    pub fn give_back(&self, provider: &Provider<'_>, verdict: ReinjectVerdict) -> Vec<Result<(), Status>> {
        let tickets: Vec<Ticket> = self.lock().drain(..).collect();
        tickets.into_iter().map(|ticket| provider.reinject(ticket, verdict)).collect()
    }

    /// True once wanlayer revoked the registration.
    pub fn was_unloaded(&self) -> bool {
        self.unloaded.load(Ordering::Acquire)
    }

    fn decide(&self, packet: &Packet<'_>) -> Verdict {
        if self.direction.is_some_and(|direction| direction != packet.direction()) {
            return Verdict::Pass;
        }
        self.lock().push(packet.ticket());
        Verdict::Take
    }
}

impl VendorFilter for TakingVendor {
    fn on_send(&self, _provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        self.decide(packet)
    }
    fn on_receive(&self, _provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        self.decide(packet)
    }
    fn on_provider_unload(&self) {
        self.unloaded.store(true, Ordering::Release);
    }
}

/// Drops everything.
#[derive(Default)]
pub struct DroppingVendor {
    dropped: AtomicU64,
}

impl DroppingVendor {
    /// Packets it dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl VendorFilter for DroppingVendor {
    fn on_send(&self, _provider: &Provider<'_>, _packet: &mut Packet<'_>) -> Verdict {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        Verdict::Drop
    }
    fn on_receive(&self, _provider: &Provider<'_>, _packet: &mut Packet<'_>) -> Verdict {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        Verdict::Drop
    }
}

/// Asks for a lower `MaximumTotalSize` on every line up, and rewrites the TTL (IPv4) or hop limit
/// (IPv6) of sends by replacing the whole frame: the packet view's `replace`.
pub struct TunnelVendor {
    mtu: u32,
    ttl: u8,
    replaced: AtomicU64,
}

impl TunnelVendor {
    /// Lowers the MTU to `mtu`, rewrites sends' TTL to `ttl`.
    pub fn new(mtu: u32, ttl: u8) -> Self {
        Self { mtu, ttl, replaced: AtomicU64::new(0) }
    }

    /// Frames it replaced.
    pub fn replaced(&self) -> u64 {
        self.replaced.load(Ordering::Relaxed)
    }
}

impl VendorFilter for TunnelVendor {
    fn on_line_up(&self, _provider: &Provider<'_>, _link: &LinkInfo) -> Option<u32> {
        Some(self.mtu)
    }
    fn on_send(&self, _provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        let mut frame = vec![0; packet.len()];
        let read = packet.read(0, &mut frame);
        frame.truncate(read);
        if !frames::set_ttl(&mut frame, self.ttl) || packet.replace(&frame).is_err() {
            return Verdict::Pass;
        }
        self.replaced.fetch_add(1, Ordering::Relaxed);
        Verdict::Modify
    }
}
