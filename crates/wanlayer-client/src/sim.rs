//! The simulator transport: the client talking to the engine's dispatcher through the simulated
//! control device ([`SimControl`]) of a simulated RRAS server, so the same client code runs (and
//! is tested) on any host.
//!
//! Time is virtual: a pending event read waits while the server's script has steps left to run
//! (each step may publish events), and is cancelled — like a timeout — once the script is done.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use wanlayer_core::hook::{Hook, PacketContext, Verdict};
use wanlayer_core::wire::FrameSummary;
use wanlayer_proto::{Access, Status};
use wanlayer_sim::{CoreFilter, Edge, Flow, HandleId, IoOutcome, LinkParams, ReceiveOptions, Rras, SimControl, SimLink};

use crate::{ClientError, Result, Transport};

/// One step of a script: something the simulated server does.
pub type Step = Box<dyn FnOnce(&Rras<CoreFilter>)>;

/// A simulated RRAS server with its control device, and an optional script of things to come.
pub struct SimServer {
    rras: Rras<CoreFilter>,
    device: SimControl,
    script: RefCell<VecDeque<Step>>,
}

impl SimServer {
    /// Serves `rras` (running the [`CoreFilter`]); installs its control device.
    pub fn new(rras: Rras<CoreFilter>) -> Self {
        let device = SimControl::install(&rras);
        Self { rras, device, script: RefCell::new(VecDeque::new()) }
    }

    /// Adds a step to the script.
    pub fn then(self, step: impl FnOnce(&Rras<CoreFilter>) + 'static) -> Self {
        self.script.borrow_mut().push_back(Box::new(step));
        self
    }

    /// The server.
    pub fn rras(&self) -> &Rras<CoreFilter> {
        &self.rras
    }

    /// The control device.
    pub fn device(&self) -> &SimControl {
        &self.device
    }

    /// Steps left in the script.
    pub fn steps_left(&self) -> usize {
        self.script.borrow().len()
    }

    /// Runs the next step of the script, lets the world settle, and services the control device.
    /// False when the script is done.
    pub fn step(&self) -> bool {
        let Some(step) = self.script.borrow_mut().pop_front() else { return false };
        step(&self.rras);
        self.rras.run_until_idle();
        self.device.service(&self.rras);
        true
    }

    /// Runs the whole script.
    pub fn run_script(&self) {
        while self.step() {}
    }

    /// Opens a handle of the control device with `access`.
    pub fn open(&self, access: Access) -> SimTransport<'_> {
        SimTransport { server: self, handle: self.device.open(access) }
    }

    /// Gives back the server (to unload it).
    pub fn into_rras(self) -> Rras<CoreFilter> {
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
        let rras = Rras::builder().ethernet().build(CoreFilter::default());
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
fn traffic(rras: &Rras<CoreFilter>, link: &SimLink, count: u32) {
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

/// A handle of a simulated control device.
pub struct SimTransport<'s> {
    server: &'s SimServer,
    handle: HandleId,
}

impl SimTransport<'_> {
    fn finish(output: &mut [u8], status: Status, bytes: &[u8]) -> Result<usize> {
        if status != Status::Success {
            return Err(ClientError::Driver(status));
        }
        let place = output.get_mut(..bytes.len()).ok_or(ClientError::Driver(Status::BufferTooSmall))?;
        place.copy_from_slice(bytes);
        Ok(bytes.len())
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
        let io = match server.device.ioctl(&server.rras, self.handle, code, input, output.len()) {
            IoOutcome::Complete(done) => return Self::finish(output, done.status, &done.output).map(Some),
            IoOutcome::Pending(io) => io,
        };
        loop {
            server.device.service(&server.rras);
            if let Some(done) = server.device.take_completion(io) {
                return Self::finish(output, done.status, &done.output).map(Some);
            }
            if !server.step() {
                server.device.cancel(io);
                let done = server.device.take_completion(io);
                return match done {
                    Some(done) if done.status == Status::Cancelled => Ok(None),
                    Some(done) => Self::finish(output, done.status, &done.output).map(Some),
                    None => Ok(None),
                };
            }
        }
    }
}

impl Drop for SimTransport<'_> {
    fn drop(&mut self) {
        self.server.device.close(&self.server.rras, self.handle);
    }
}
