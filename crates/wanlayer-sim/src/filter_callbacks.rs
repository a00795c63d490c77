//! The NDIS lightweight filter callback set at simulator level ([`FilterDriver`]), and
//! [`EngineFilter`], a filter with a wanlayer engine behind it.
//!
//! The simulator has no translation of its own of these callbacks into engine calls: the filter
//! it runs is wanlayer.sys's own handlers (`wanlayer-sim-driver`'s `DriverFilter`), or, in the
//! simulator's own tests, a deliberately simple or broken test filter.

use wanlayer_core::hal::{PathContext, Pool};
use wanlayer_core::wire::MacAddress;
use wanlayer_core::{Engine, ModuleId, NdisStatus};

use crate::hal::SimHal;
use crate::oid::{OidDisposition, OidRequest};
use crate::sim_nbl::SimChain;
use crate::wan_indication::StatusIndication;

/// `NdisMedium802_3`.
pub const NDIS_MEDIUM_802_3: u32 = 0;

/// `NDIS_FILTER_ATTACH_PARAMETERS`, the fields a filter reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterAttachParameters {
    /// `BaseMiniportIfIndex`.
    pub if_index: u32,
    /// `BaseMiniportName`, e.g. `\DEVICE\NDISWANIP`.
    pub base_miniport_name: String,
    /// `BaseMiniportInstanceName`, the adapter's friendly name.
    pub friendly_name: String,
    /// `MiniportMediaType` (NdisWan's IP edges present Ethernet: [`NDIS_MEDIUM_802_3`]).
    pub medium: u32,
    /// `CurrentMacAddress`.
    pub mac_address: MacAddress,
}

/// The callbacks NDIS makes into a lightweight filter (`NDIS_FILTER_DRIVER_CHARACTERISTICS`), at
/// simulator level.
///
/// Every callback gets the module context the filter returned from [`FilterDriver::attach`]. The
/// filter answers through [`SimHal`]: the core's traits (packets, pause completion) and the NDIS
/// services of [`crate::ndis`] (status, OIDs). The simulator never calls a filter re-entrantly.
pub trait FilterDriver {
    /// `DriverEntry` and `NdisFRegisterFilterDriver`: keep `hal` for every later call.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// A failure status makes the driver fail to load; no callback follows.
    fn driver_entry(&mut self, hal: &SimHal) -> Result<(), NdisStatus>;

    /// `DriverUnload` after every module detached: free everything (pool tracking checks).
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Ownership
    /// Every pool charge must be released by the time this returns.
    fn unload(&mut self);

    /// `FilterAttach`: set up a module for an adapter; it ends Paused.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Ownership
    /// Nothing may be sent down or indicated up yet.
    ///
    /// # Errors
    /// A failure status; the filter must have freed whatever it allocated.
    fn attach(&self, params: &FilterAttachParameters) -> Result<ModuleId, NdisStatus>;

    /// `FilterDetach`: the module is Paused; free it.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Ownership
    /// The filter must hold no packet and have nothing outstanding when this returns.
    fn detach(&self, module: ModuleId);

    /// `FilterRestart`: Paused → Running.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Ownership
    /// Data may flow once this returns success.
    fn restart(&self, module: ModuleId) -> NdisStatus;

    /// `FilterPause`: return `NDIS_STATUS_SUCCESS` once nothing is held or outstanding, or
    /// `NDIS_STATUS_PENDING` and call `pause_complete` later (within 10 s). Never fail.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Ownership
    /// Queued sends are completed (`NDIS_STATUS_PAUSED`), queued receives returned, and the
    /// packets the filter originated waited for; from the call on, nothing new is originated.
    fn pause(&self, module: ModuleId) -> NdisStatus;

    /// `FilterSendNetBufferLists`.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`, as `ctx.at_dispatch` says.
    ///
    /// # Ownership
    /// The chain is the filter's until it sends it down or completes it, each packet once.
    fn send(&self, module: ModuleId, chain: SimChain, ctx: PathContext);

    /// `FilterSendNetBufferListsComplete`: the miniport completed sends.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`, as `ctx.at_dispatch` says.
    ///
    /// # Ownership
    /// Protocol packets go on to the protocol; the filter's own are freed.
    fn send_complete(&self, module: ModuleId, chain: SimChain, ctx: PathContext);

    /// `FilterCancelSendNetBufferLists`: complete the sends the filter queues whose cancel
    /// identifier is `cancel_id`.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Ownership
    /// The cancelled sends go back to the protocol, completed with
    /// `NDIS_STATUS_SEND_ABORTED`.
    fn cancel_send(&self, module: ModuleId, cancel_id: u64);

    /// `FilterReceiveNetBufferLists`.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`, as `ctx.at_dispatch` says.
    ///
    /// # Ownership
    /// With `resources` the packets are only lent: return every one of them, in order, as the
    /// result (indicating one up again only with the resources flag). Without it the filter owns
    /// them until it returns them through `return_receives`, and the result must be empty.
    fn receive(&self, module: ModuleId, chain: SimChain, resources: bool, ctx: PathContext) -> SimChain;

    /// `FilterReturnNetBufferLists`: the protocol returned received packets.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`, as `ctx.at_dispatch` says.
    ///
    /// # Ownership
    /// Miniport packets go back to the miniport; the filter's own are freed.
    fn return_receives(&self, module: ModuleId, chain: SimChain, ctx: PathContext);

    /// `FilterStatus`: pass the indication up with [`SimHal::indicate_status`] (a line up with its
    /// `MaximumTotalSize` possibly lowered); the protocol fills in the line up's in/out fields
    /// during that call.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Ownership
    /// The indication is NDIS's; the filter may change the buffer before passing it on, and
    /// reads the protocol's in/out fields after [`SimHal::indicate_status`] returns.
    fn status(&self, module: ModuleId, indication: &mut StatusIndication);

    /// `FilterOidRequest`: pass a clone down, or complete the request now.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Ownership
    /// A pending request is the filter's until it completes it, once.
    fn oid_request(&self, module: ModuleId, request: OidRequest) -> OidDisposition;

    /// `FilterOidRequestComplete`: the miniport completed a clone the filter passed down.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Ownership
    /// Copy the results to the original, free the clone, complete the original.
    fn oid_complete(&self, module: ModuleId, request: OidRequest, status: NdisStatus);
}

/// A filter that runs a wanlayer engine behind its callbacks — wanlayer.sys's own handlers in the
/// loop (`wanlayer-sim-driver`'s `DriverFilter`) — so scenarios reach its engine.
pub trait EngineFilter: FilterDriver {
    /// The engine's platform.
    type Hal: wanlayer_core::hal::Hal;

    /// The engine, between driver entry and unload.
    fn engine(&self) -> Option<&Engine<Self::Hal>>;

    /// Bytes the engine has charged to `pool` now, as its platform counts them.
    fn pool_charged(&self, pool: Pool) -> usize;
}
