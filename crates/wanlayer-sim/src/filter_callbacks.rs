//! The NDIS lightweight filter callback set at simulator level, and [`CoreFilter`], which runs the
//! wanlayer engine behind it.
//!
//! [`CoreFilter`] is a second translation of NDIS's callbacks into engine calls, beside the
//! driver's own (`driver/src/filter/`): what either decides — attach or refuse and as which
//! module kind, the status a pause or restart returns, the route of a status indication — is
//! decided by the same functions, [`wanlayer_driver_logic`]. The NDIS structures themselves
//! (NBLs, MDLs, status buffers, OID clones, lent-chain relinking) are the driver's alone and are
//! not exercised here.

use wanlayer_core::hal::{Level, Log, PathContext, Pool};
use wanlayer_core::link::LineDown;
use wanlayer_core::module::ModuleKind;
use wanlayer_core::wire::MacAddress;
use wanlayer_core::{AttachParams, Engine, EngineConfig, ModuleId, NdisStatus};
use wanlayer_driver_logic::attach::{self, AttachDecision};
use wanlayer_driver_logic::lifecycle::{pause_status, restart_status, status_route, StatusRoute};
use wanlayer_ndis::types::NdisMedium;

use crate::edge::Irql;
use crate::hal::SimHal;
use crate::oid::{OidDisposition, OidRequest};
use crate::sim_nbl::SimChain;
use crate::wan_indication::{StatusBuffer, StatusIndication};

/// `NdisMedium802_3`.
pub const NDIS_MEDIUM_802_3: u32 = 0;
/// `NdisMediumWan`.
pub const NDIS_MEDIUM_WAN: u32 = 3;
/// `NDIS_STATUS_INVALID_PARAMETER`: what an attach to a medium the filter does not handle returns.
pub const NDIS_STATUS_INVALID_PARAMETER: NdisStatus = NdisStatus(0xC000_000D);

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

/// A filter that runs a wanlayer engine behind its callbacks — [`CoreFilter`], or wanlayer.sys's
/// own handlers in the loop (`wanlayer-sim-driver`) — so scenarios reach the engine whichever
/// plays the filter.
pub trait EngineFilter: FilterDriver {
    /// The engine's platform.
    type Hal: wanlayer_core::hal::Hal;

    /// The engine, between driver entry and unload.
    fn engine(&self) -> Option<&Engine<Self::Hal>>;

    /// Bytes the engine has charged to `pool` now, as its platform counts them.
    fn pool_charged(&self, pool: Pool) -> usize;
}

impl EngineFilter for CoreFilter {
    type Hal = SimHal;

    fn engine(&self) -> Option<&Engine<SimHal>> {
        CoreFilter::engine(self)
    }

    fn pool_charged(&self, pool: Pool) -> usize {
        self.engine.as_ref().map_or(0, |engine| engine.hal().pool_usage(pool).current)
    }
}

/// The wanlayer engine behind the filter callbacks: the same translation the kernel driver does.
pub struct CoreFilter {
    config: EngineConfig,
    engine: Option<Engine<SimHal>>,
}

impl Default for CoreFilter {
    fn default() -> Self {
        Self::new(EngineConfig::default())
    }
}

impl CoreFilter {
    /// A filter that creates its engine with `config` at driver entry.
    pub fn new(config: EngineConfig) -> Self {
        Self { config, engine: None }
    }

    /// The engine, between driver entry and unload.
    pub fn engine(&self) -> Option<&Engine<SimHal>> {
        self.engine.as_ref()
    }

    /// What an adapter is, from its attach parameters ([`attach::module_kind`], as the driver
    /// decides it).
    pub fn module_kind(params: &FilterAttachParameters) -> ModuleKind {
        let name: Vec<u16> = params.base_miniport_name.encode_utf16().collect();
        attach::module_kind(&name)
    }

    /// Takes the original out of a completed clone, copies the results into it and frees the clone.
    fn finish_clone(hal: &SimHal, mut clone: OidRequest) -> Option<OidRequest> {
        let mut original = clone.take_original();
        if let Some(original) = original.as_mut() {
            clone.copy_results_to(original);
        }
        hal.free_clone_oid(clone);
        original
    }

    /// The path context of a callback that NDIS gives no flags (status, cancel): the truth about
    /// the current IRQL, as the kernel driver reads it with `KeGetCurrentIrql`.
    fn current_context(engine: &Engine<SimHal>) -> PathContext {
        PathContext { at_dispatch: engine.hal().irql() == Irql::Dispatch, ..PathContext::default() }
    }

    fn line_up(engine: &Engine<SimHal>, module: ModuleId, indication: &mut StatusIndication) {
        let hal = engine.hal();
        let StatusBuffer::LineUp(record) = &mut indication.buffer else {
            engine.count_malformed_status(module);
            hal.indicate_status(module, indication);
            return;
        };
        let tracked = engine.line_up(module, &record.as_line_up());
        if let Ok(outcome) = &tracked {
            record.maximum_total_size = outcome.reported_total_size;
        }
        hal.indicate_status(module, indication);
        if let (Ok(_), StatusBuffer::LineUp(record)) = (tracked, &indication.buffer) {
            engine.line_up_indicated(module, record.remote_address, record.local_address, &record.device_name);
        }
    }
}

impl FilterDriver for CoreFilter {
    fn driver_entry(&mut self, hal: &SimHal) -> Result<(), NdisStatus> {
        let engine = Engine::new(hal.clone(), self.config).map_err(|_| NdisStatus::RESOURCES)?;
        // As the driver does: the saved rule set goes back in force (a refused one is logged
        // and reported; the filter starts with no rules either way).
        let _saved = engine.load_saved_rules();
        self.engine = Some(engine);
        Ok(())
    }

    fn unload(&mut self) {
        self.engine = None;
    }

    fn attach(&self, params: &FilterAttachParameters) -> Result<ModuleId, NdisStatus> {
        let engine = self.engine.as_ref().ok_or(NdisStatus::FAILURE)?;
        let name: Vec<u16> = params.base_miniport_name.encode_utf16().collect();
        let medium = NdisMedium::from(params.medium);
        let accepted = match attach::decide(medium, 6, &params.mac_address.0, &name) {
            AttachDecision::Attach(accepted) => accepted,
            AttachDecision::RefuseMedium(medium) => {
                engine.hal().log(Level::Info, format_args!("attach refused: medium {medium:?}"));
                return Err(NDIS_STATUS_INVALID_PARAMETER);
            }
        };
        if let Some(warning) = accepted.warning {
            engine.hal().log(Level::Warning, format_args!("attach to {}: {warning}", accepted.mac));
        }
        engine
            .attach(AttachParams { kind: accepted.kind, mac_address: accepted.mac, if_index: params.if_index })
            .map_err(|_| NdisStatus::RESOURCES)
    }

    fn detach(&self, module: ModuleId) {
        if let Some(engine) = &self.engine {
            if let Err(error) = engine.detach(module) {
                engine.hal().log(Level::Error, format_args!("detach: {error}"));
            }
        }
    }

    fn restart(&self, module: ModuleId) -> NdisStatus {
        match self.engine.as_ref().map(|engine| engine.restart(module)) {
            Some(restarted) => restart_status(&restarted),
            None => NdisStatus::FAILURE,
        }
    }

    fn pause(&self, module: ModuleId) -> NdisStatus {
        let Some(engine) = &self.engine else { return NdisStatus::SUCCESS };
        let paused = engine.pause(module);
        if let Err(error) = &paused {
            engine.hal().log(Level::Error, format_args!("pause: {error}"));
        }
        pause_status(&paused)
    }

    fn send(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        if let Some(engine) = &self.engine {
            engine.send(module, chain, ctx);
        }
    }

    fn send_complete(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        if let Some(engine) = &self.engine {
            engine.send_complete(module, chain, ctx);
        }
    }

    fn cancel_send(&self, module: ModuleId, cancel_id: u64) {
        if let Some(engine) = &self.engine {
            let ctx = Self::current_context(engine);
            engine.cancel_sends(module, |packet| packet.cancel_id() == Some(cancel_id), ctx);
        }
    }

    fn receive(&self, module: ModuleId, chain: SimChain, resources: bool, ctx: PathContext) -> SimChain {
        match &self.engine {
            Some(engine) => engine.receive(module, chain, resources, ctx),
            None => chain,
        }
    }

    fn return_receives(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        if let Some(engine) = &self.engine {
            engine.return_receives(module, chain, ctx);
        }
    }

    fn status(&self, module: ModuleId, indication: &mut StatusIndication) {
        let Some(engine) = &self.engine else { return };
        match status_route(indication.code) {
            StatusRoute::LineUp => Self::line_up(engine, module, indication),
            StatusRoute::LineDown => {
                match &indication.buffer {
                    StatusBuffer::LineDown(line_down) => {
                        let down = LineDown { remote_address: line_down.remote_address, local_address: line_down.local_address };
                        engine.line_down(module, &down, Self::current_context(engine));
                    }
                    _ => engine.count_malformed_status(module),
                }
                engine.hal().indicate_status(module, indication);
            }
            StatusRoute::PassOn => engine.hal().indicate_status(module, indication),
        }
    }

    fn oid_request(&self, module: ModuleId, request: OidRequest) -> OidDisposition {
        let Some(engine) = &self.engine else { return OidDisposition::Complete(request, NdisStatus::FAILURE) };
        let hal = engine.hal();
        let mut clone = match hal.allocate_clone_oid(module, &request) {
            Ok(clone) => clone,
            Err(_) => return OidDisposition::Complete(request, NdisStatus::RESOURCES),
        };
        clone.set_original(request);
        match hal.oid_request(module, clone) {
            OidDisposition::Pending => OidDisposition::Pending,
            OidDisposition::Complete(clone, status) => match Self::finish_clone(hal, clone) {
                Some(original) => OidDisposition::Complete(original, status),
                None => OidDisposition::Pending,
            },
        }
    }

    fn oid_complete(&self, module: ModuleId, request: OidRequest, status: NdisStatus) {
        let Some(engine) = &self.engine else { return };
        let hal = engine.hal();
        if let Some(original) = Self::finish_clone(hal, request) {
            hal.oid_request_complete(module, original, status);
        }
    }
}
