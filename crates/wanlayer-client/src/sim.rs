//! The simulator transport: the client talking to `wanlayer.sys`'s own control device — the
//! driver's dispatch routines, built for the host over the kernel model ([`DriverFilter`]) — in a
//! simulated RRAS server, so the same client code runs (and is tested) on a host without Windows.
//!
//! Each request is an IRP sent to the driver's `IRP_MJ_DEVICE_CONTROL` routine on a handle opened
//! with `IRP_MJ_CREATE`; dropping the transport sends `IRP_MJ_CLEANUP` and `IRP_MJ_CLOSE`, as
//! closing a handle does. A request the driver pends (an event or divert read) is completed
//! later, as overlapped I/O is: by the driver's wake DPC once something arrives, by cleanup, or by
//! cancellation (`CancelIoEx`) through the driver's cancel-safe queue.
//!
//! Time is virtual: a pending read waits while the server's script has steps left to run (each
//! step may publish events or divert packets), and is cancelled — like a timeout — once the
//! script is done. [`SimOverlapped`] is the same handle with requests that stay in flight
//! ([`OverlappedTransport`]), for the asynchronous reads of [`crate::divert_async`] and
//! [`crate::events_async`].
//!
//! Not on Windows hosts: there the driver's crate is a kernel image (its own allocator and panic
//! handler, `raw-dylib` imports from `ntoskrnl.exe`), which a user-mode program cannot link.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use wanlayer_core::hook::{Hook, PacketContext, Verdict};
use wanlayer_core::wire::FrameSummary;
use wanlayer_proto::{Access, Status};
use wanlayer_sim::{Edge, Flow, HandleId, IoCompletion, IoId, IoOutcome, LinkParams, ReceiveOptions, Rras, SimLink};
use wanlayer_sim_driver::control::STATUS_OBJECT_NAME_NOT_FOUND;
/// The server's filter: `wanlayer.sys`'s handlers over the kernel model.
pub use wanlayer_sim_driver::DriverFilter;

use crate::overlapped::{OverlappedTransport, Started};
use crate::{ClientError, Result, Transport};

/// One step of a script: something the simulated server does.
pub type Step = Box<dyn FnOnce(&Rras<DriverFilter>)>;

/// A simulated RRAS server running `wanlayer.sys`'s handlers, and an optional script of things to
/// come.
pub struct SimServer {
    rras: Rras<DriverFilter>,
    script: RefCell<VecDeque<Step>>,
}

impl SimServer {
    /// Serves `rras`, whose filter is the driver's handlers ([`DriverFilter`]); its control device
    /// exists once the server started (`DriverEntry` created it).
    pub fn new(rras: Rras<DriverFilter>) -> Self {
        Self { rras, script: RefCell::new(VecDeque::new()) }
    }

    /// Adds a step to the script.
    pub fn then(self, step: impl FnOnce(&Rras<DriverFilter>) + 'static) -> Self {
        self.script.borrow_mut().push_back(Box::new(step));
        self
    }

    /// The server.
    pub fn rras(&self) -> &Rras<DriverFilter> {
        &self.rras
    }

    /// Steps left in the script.
    pub fn steps_left(&self) -> usize {
        self.script.borrow().len()
    }

    /// Runs the next step of the script, lets the world settle, and lets the driver's wake DPC
    /// run (a step that called the engine directly, adding a hook say, queued it outside any call
    /// into the driver). False when the script is done.
    pub fn step(&self) -> bool {
        let Some(step) = self.script.borrow_mut().pop_front() else { return false };
        step(&self.rras);
        self.rras.run_until_idle();
        self.rras.filter().control_service();
        true
    }

    /// Runs the whole script.
    pub fn run_script(&self) {
        while self.step() {}
    }

    /// Opens a handle of the control device with `access` (`IRP_MJ_CREATE`).
    ///
    /// # Errors
    /// [`ClientError::DriverNotFound`] while the driver is not loaded (before the server started,
    /// after it unloaded); [`ClientError::AccessDenied`] or [`ClientError::Driver`] with the status
    /// the driver's create completed with.
    pub fn open(&self, access: Access) -> Result<SimTransport<'_>> {
        match self.rras.filter().control_open(access) {
            Ok(handle) => Ok(SimTransport { server: self, handle }),
            Err(STATUS_OBJECT_NAME_NOT_FOUND) => Err(ClientError::DriverNotFound),
            Err(status) => Err(match Status::from(status as u32) {
                Status::AccessDenied => ClientError::AccessDenied,
                status => ClientError::Driver(status),
            }),
        }
    }

    /// Gives back the server (to unload it).
    pub fn into_rras(self) -> Rras<DriverFilter> {
        self.rras
    }

    /// The session `wanlayerctl --simulate` runs against: NdisWan's two edges and an Ethernet
    /// adapter, a telnet-blocking hook, three dial-in links with some traffic; then a script of
    /// traffic, a fourth link coming up, links going down, an edge pausing and restarting, and a
    /// hook added and removed.
    ///
    /// # Errors
    /// A message when the simulated filter does not start.
    pub fn scripted() -> std::result::Result<Self, String> {
        let rras = Rras::builder().ethernet().build(DriverFilter::new());
        rras.start().map_err(|error| format!("the simulated filter did not start: {error}"))?;
        rras.engine().add_hook("telnet-block", 200, Arc::new(TelnetBlock)).map_err(|error| error.to_string())?;
        let links = Rc::new(RefCell::new(vec![
            rras.link_up(Edge::WanIp, LinkParams::new().mtu(1500).speed_bps(2_048_000)),
            rras.link_up(Edge::WanIp, LinkParams::new().mtu(1400).speed_bps(56_000)),
            rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1400).speed_bps(100_000_000)),
        ]));
        for link in links.borrow().iter() {
            traffic(&rras, link, 3);
        }
        rras.run_until_idle();
        let server = Self::new(rras);
        let (l1, l2, l3, l4) = (Rc::clone(&links), Rc::clone(&links), Rc::clone(&links), Rc::clone(&links));
        Ok(server
            .then(move |rras| l1.borrow().iter().for_each(|link| traffic(rras, link, 5)))
            .then(move |rras| l2.borrow_mut().push(rras.link_up(Edge::WanIp, LinkParams::new().mtu(1500))))
            .then(move |rras| {
                let links = l3.borrow();
                if let Some(link) = links.last() {
                    traffic(rras, link, 4);
                    rras.receive_flow(link, &Flow::tcp(23, 50_023), 2, ReceiveOptions::default());
                }
            })
            .then(move |rras| {
                if let Some(link) = l4.borrow().get(1) {
                    rras.link_down(link);
                }
            })
            .then(|rras| {
                let _ = rras.pause_and_settle(Edge::WanIpv6);
                let _ = rras.restart(Edge::WanIpv6);
            })
            .then(|rras| {
                if let Ok(id) = rras.engine().add_hook("sampler", 50, Arc::new(TelnetBlock)) {
                    let _ = rras.engine().remove_hook(id);
                }
            })
            .then(move |rras| {
                let links = links.borrow();
                for link in links.iter().filter(|link| link.index != 2) {
                    traffic(rras, link, 2);
                }
                if let Some(link) = links.get(3) {
                    rras.link_down(link);
                }
            }))
    }
}

/// Sends and receives a little of everything on `link`.
fn traffic(rras: &Rras<DriverFilter>, link: &SimLink, count: u32) {
    rras.send_flow(link, &Flow::tcp(443, 50_443).payload(600), count);
    rras.receive_flow(link, &Flow::tcp(443, 50_443).payload(100), count, ReceiveOptions::default());
    rras.send_flow(link, &Flow::udp(53, 50_053).payload(48), 1);
    rras.receive_flow(link, &Flow::udp(53, 50_053).payload(48), 1, ReceiveOptions::resources());
}

/// The sample hook of the scripted server: drops TCP to or from port 23.
struct TelnetBlock;

impl Hook for TelnetBlock {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        Self::verdict(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        Self::verdict(packet)
    }
}

impl TelnetBlock {
    fn verdict(packet: &PacketContext<'_>) -> Verdict {
        let mut header = [0u8; 80];
        let len = packet.read(0, &mut header);
        let telnet = FrameSummary::parse(&header[..len])
            .ok()
            .and_then(|frame| frame.ip)
            .and_then(|ip| ip.ports)
            .is_some_and(|ports| ports.src == 23 || ports.dst == 23);
        if telnet {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

/// A handle of the driver's control device in a simulated server.
pub struct SimTransport<'s> {
    server: &'s SimServer,
    handle: HandleId,
}

impl SimTransport<'_> {
    fn finish(output: &mut [u8], done: &IoCompletion) -> Result<usize> {
        if done.status != Status::Success {
            return Err(ClientError::Driver(done.status));
        }
        let place = output.get_mut(..done.output.len()).ok_or(ClientError::Driver(Status::BufferTooSmall))?;
        place.copy_from_slice(&done.output);
        Ok(done.output.len())
    }
}

impl Transport for SimTransport<'_> {
    fn call(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        match self.call_pending(code, input, output, Some(Duration::ZERO))? {
            Some(written) => Ok(written),
            None => Err(ClientError::Driver(Status::Cancelled)),
        }
    }

    fn call_pending(&mut self, code: u32, input: &[u8], output: &mut [u8], _timeout: Option<Duration>) -> Result<Option<usize>> {
        let server = self.server;
        let driver = server.rras.filter();
        let io = match driver.control_ioctl(self.handle, code, input, output.len()) {
            IoOutcome::Complete(done) => return Self::finish(output, &done).map(Some),
            IoOutcome::Pending(io) => io,
        };
        loop {
            if let Some(done) = driver.control_completion(io) {
                return Self::finish(output, &done).map(Some);
            }
            if !server.step() {
                // The wait is over: cancelled as `CancelIoEx` cancels it, unless the driver
                // completed it first.
                driver.control_cancel(io);
                return match driver.control_completion(io) {
                    Some(done) if done.status == Status::Cancelled => Ok(None),
                    Some(done) => Self::finish(output, &done).map(Some),
                    None => Ok(None),
                };
            }
        }
    }
}

impl Drop for SimTransport<'_> {
    fn drop(&mut self) {
        self.server.rras.filter().control_close(self.handle);
    }
}

/// A handle of the driver's control device in a simulated server, with overlapped requests: an
/// IRP the driver pends stays in flight until its wake DPC, cleanup or a cancellation completes
/// it. Its blocking calls are [`SimTransport`]'s.
pub struct SimOverlapped<'s> {
    transport: SimTransport<'s>,
}

impl<'s> SimOverlapped<'s> {
    /// Opens a handle with `access` (`IRP_MJ_CREATE`).
    ///
    /// # Errors
    /// As [`SimServer::open`].
    pub fn open(server: &'s SimServer, access: Access) -> Result<Self> {
        Ok(Self { transport: server.open(access)? })
    }

    fn answer(done: IoCompletion) -> Result<Vec<u8>> {
        if done.status == Status::Success {
            Ok(done.output)
        } else {
            Err(ClientError::Driver(done.status))
        }
    }
}

impl Transport for SimOverlapped<'_> {
    fn call(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        self.transport.call(code, input, output)
    }

    fn call_pending(&mut self, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        self.transport.call_pending(code, input, output, timeout)
    }
}

impl OverlappedTransport for SimOverlapped<'_> {
    type Request = IoId;

    fn start(&mut self, code: u32, input: &[u8], output_len: usize) -> Result<Started<IoId>> {
        match self.transport.server.rras.filter().control_ioctl(self.transport.handle, code, input, output_len) {
            IoOutcome::Complete(done) => Self::answer(done).map(Started::Done),
            IoOutcome::Pending(io) => Ok(Started::Pending(io)),
        }
    }

    /// Completed: the answer. Otherwise the world moves one step of the server's script (time
    /// passing) and the waker is woken to poll again; with the script done, `Pending` with no
    /// wake: nothing in the simulated world will complete it any more.
    fn poll_request(&mut self, request: &mut IoId, waker: &Waker) -> Poll<Result<Vec<u8>>> {
        let server = self.transport.server;
        let driver = server.rras.filter();
        if let Some(done) = driver.control_completion(*request) {
            return Poll::Ready(Self::answer(done));
        }
        if server.step() {
            if let Some(done) = driver.control_completion(*request) {
                return Poll::Ready(Self::answer(done));
            }
            waker.wake_by_ref();
        }
        Poll::Pending
    }

    fn cancel(&mut self, request: IoId) {
        let driver = self.transport.server.rras.filter();
        driver.control_cancel(request);
        let _ = driver.control_completion(request);
    }
}
