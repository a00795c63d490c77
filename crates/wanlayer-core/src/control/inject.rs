//! Injection: a frame handed to NdisWan (send) or to the IP layer (receive) on one link, as the
//! engine's own packet.

use core::fmt;

use crate::datapath::Outbox;
use crate::engine::Engine;
use crate::hal::{FrameSource, Hal, Lock, ModuleId, PathContext, ReadMostly};
use crate::hook::Direction;
use crate::link::{Link, LinkId, LinkSummary};
use crate::module::ModuleCore;
use crate::taken::{Held, Origin};
use crate::wire::ETHERNET_HEADER_LEN;

/// Why an injection was refused. Refusals of a known module are counted in its
/// `injections_refused`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InjectError {
    /// No module has that identity, or no module has the link.
    UnknownModule,
    /// The module has no link with that identity.
    UnknownLink(LinkId),
    /// The module is not Running.
    NotRunning(ModuleId),
    /// No packet could be allocated.
    OutOfMemory,
    /// The frame is shorter than an Ethernet header.
    BadFrame,
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectError::UnknownModule => f.write_str("no such module"),
            InjectError::UnknownLink(link) => write!(f, "{link} is not up"),
            InjectError::NotRunning(module) => write!(f, "{module} is not running"),
            InjectError::OutOfMemory => f.write_str("no packet could be allocated"),
            InjectError::BadFrame => f.write_str("the frame is shorter than an Ethernet header"),
        }
    }
}

impl<H: Hal> Engine<H> {
    /// Injects `frame` on `link`: sent down to NdisWan (`Send`) or indicated up to the IP layer
    /// (`Receive`) as a packet of the engine's own, bypassing the hooks. The frame's MAC addresses
    /// are replaced by the link's (send: destination remote, source local; receive: the reverse).
    /// It is counted as the link's traffic and in the module's `injected`, and captured.
    ///
    /// With `module` `None`, the link is looked for on every module.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`; `ctx.at_dispatch` says which.
    ///
    /// # Errors
    /// [`InjectError`]; nothing was sent then.
    pub fn inject(
        &self,
        module: Option<ModuleId>,
        link: LinkId,
        direction: Direction,
        frame: &[u8],
        ctx: PathContext,
    ) -> Result<(), InjectError> {
        let module = match module {
            Some(module) => module,
            None => self.find_link(link, |module, _| module).ok_or(InjectError::UnknownModule)?,
        };
        let slot = self.slot(module).ok_or(InjectError::UnknownModule)?;
        if frame.len() < ETHERNET_HEADER_LEN {
            slot.counters.injections_refused.increment();
            return Err(InjectError::BadFrame);
        }
        let entered = slot.core.with(|core| {
            if !core.is(module) {
                return Err(InjectError::UnknownModule);
            }
            core.enter_data_path(module).ok_or(InjectError::NotRunning(module))?;
            slot.links.read(|links| links.get_by_id(link).map(Link::summary).ok_or(InjectError::UnknownLink(link)))
        });
        let summary: LinkSummary = match entered {
            Ok(summary) => summary,
            Err(error) => {
                if error != InjectError::UnknownModule {
                    slot.counters.injections_refused.increment();
                }
                if matches!(error, InjectError::UnknownLink(_)) && slot.core.with(ModuleCore::leave_data_path) {
                    self.finish_pause(module);
                }
                return Err(error);
            }
        };
        let mut addresses = [0u8; 12];
        let (destination, source) = match direction {
            Direction::Send => (summary.remote_address, summary.local_address),
            Direction::Receive => (summary.local_address, summary.remote_address),
        };
        addresses[..6].copy_from_slice(&destination.0);
        addresses[6..].copy_from_slice(&source.0);
        let packet =
            self.hal.allocate(module, FrameSource::Bytes(frame)).and_then(|mut packet| match self.hal.write(&mut packet, 0, &addresses) {
                Ok(()) => Ok(packet),
                Err(_) => {
                    let _no_parent = self.hal.free(packet);
                    Err(crate::hal::OutOfMemory)
                }
            });
        let Ok(packet) = packet else {
            slot.counters.injections_refused.increment();
            if slot.core.with(ModuleCore::leave_data_path) {
                self.finish_pause(module);
            }
            return Err(InjectError::OutOfMemory);
        };
        slot.counters.direction(direction).count_injected();
        slot.links.read(|links| {
            if let Some(link) = links.get(&summary.remote_address) {
                link.counters(direction).count_packet(frame.len());
            }
        });
        self.capture(module, Some(summary.id), direction, &packet, true);
        let mut out = Outbox::<H>::default();
        out.forward(direction, Held { packet, origin: Origin::Own });
        self.commit(module, slot, out, ctx);
        Ok(())
    }
}
