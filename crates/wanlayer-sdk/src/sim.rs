//! Vendor filters beside the simulator's own engine (`wanlayer_sim::CoreFilter`), through the very
//! interface a kernel vendor gets.
//!
//! With the driver in the loop (`wanlayer-sim-driver`), a vendor needs nothing from here: the
//! `kernel` feature built for the host connects to wanlayer.sys's own handlers over the kernel
//! model, IRPs and all (the provider and sample-vendor scenarios of `tests/` run that way). This
//! module is for a world without the driver — the randomized soak, and Miri's run of the table's
//! implementation (`provider`'s tests).
//!
//! [`SimProvider`] is what wanlayer.sys is to a kernel vendor: a [`Host`] beside the simulated
//! engine, answering `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` with [`Host::answer`].
//! [`SimProvider::connect`] makes that request exactly as `kernel::Connection` does after
//! opening `\Device\WanLayer`, and checks the answer the same way ([`ProviderTable::from_answer`]);
//! a filter registered through the result is called through the same C-ABI callbacks, packet
//! functions and reinjection as in the kernel. Only the transport (an IRP) is missing.
//!
//! ```
//! use wanlayer_sdk::sim::SimProvider;
//! use wanlayer_sdk::{Packet, Provider, Verdict, VendorFilter};
//! use wanlayer_sim::{CoreFilter, Edge, Flow, LinkParams, Rras};
//!
//! struct DropAll;
//! impl VendorFilter for DropAll {
//!     fn on_send(&self, _provider: &Provider<'_>, _packet: &mut Packet<'_>) -> Verdict {
//!         Verdict::Drop
//!     }
//! }
//!
//! let mut rras = Rras::new(CoreFilter::default());
//! rras.start().unwrap();
//! let link = rras.link_up(Edge::WanIp, LinkParams::new());
//! {
//!     let wanlayer = SimProvider::new(rras.engine());
//!     let table = wanlayer.connect().unwrap();
//!     let registration = table.register("drop-all", 100, DropAll).unwrap();
//!     rras.send_flow(&link, &Flow::udp(53, 40000), 3);
//!     rras.run_until_idle();
//!     assert!(rras.miniport(Edge::WanIp).sent.is_empty());
//!     registration.deregister().unwrap();
//! }
//! rras.unload();
//! rras.verifier().assert_clean();
//! ```

use alloc::boxed::Box;
use alloc::vec;
use core::mem::size_of;

use wanlayer_core::hal::PathContext;
use wanlayer_core::Engine;
use wanlayer_sim::{Irql, SimHal};

use crate::abi::{self, Status};
use crate::client::{self, ProviderTable};
use crate::provider::{CallerContext, Host};

impl CallerContext for SimHal {
    fn caller_context(&self) -> PathContext {
        PathContext { at_dispatch: self.irql() == Irql::Dispatch, ..PathContext::default() }
    }
}

/// wanlayer's provider in the simulator.
pub struct SimProvider<'r> {
    // Boxed: tables point to the host, which must not move while the provider lives.
    host: Box<Host<'r, SimHal>>,
}

impl<'r> SimProvider<'r> {
    /// A provider over the simulated engine (`rras.engine()`), with no registration.
    pub fn new(engine: &'r Engine<SimHal>) -> Self {
        Self { host: Box::new(Host::new(engine)) }
    }

    /// The provider.
    pub fn host(&self) -> &Host<'r, SimHal> {
        &self.host
    }

    /// Sends `request` with an output buffer of `table_len` bytes, as a kernel caller would, and
    /// returns what came back: the status, the bytes written and the table (meaningful when the
    /// status is a success).
    pub fn query(&self, request: &abi::ProviderRequest, table_len: usize) -> (Status, usize, abi::ProviderTable) {
        let mut buffer = vec![0u8; table_len.max(size_of::<abi::ProviderTable>())];
        // SAFETY: the request is readable for its size, the buffer writable for `table_len` bytes
        // (at least that: it is never shorter than a table); the host is boxed and outlives every
        // table handed out through `self` (`connect` ties them to `&self`).
        let (status, written) =
            unsafe { self.host.answer(request, size_of::<abi::ProviderRequest>(), buffer.as_mut_ptr().cast(), table_len) };
        // SAFETY: the buffer holds at least one table's bytes (zeroes where nothing was written: a
        // valid value of the table, whose null function pointers read as `None`).
        let table = unsafe { buffer.as_ptr().cast::<abi::ProviderTable>().read_unaligned() };
        (status, written, table)
    }

    /// Asks for the table exactly as a kernel vendor's `Connection` does, and checks it.
    ///
    /// # Errors
    /// The status the request was refused with, or what [`ProviderTable::from_answer`] found.
    pub fn connect(&self) -> Result<ProviderTable<'_>, Status> {
        let (status, written, table) = self.query(&client::request(), size_of::<abi::ProviderTable>());
        if !status.is_success() {
            return Err(status);
        }
        // SAFETY: written by this provider's host, which lives (boxed, in place) as long as
        // `self`, to which the table's lifetime is tied.
        unsafe { ProviderTable::from_answer(&table, written) }
    }

    /// What wanlayer's `DriverUnload` does with registrations that are still there:
    /// [`Host::revoke_all`]. Returns how many were revoked.
    pub fn unload(&self) -> usize {
        self.host.revoke_all()
    }
}
