//! [`DriverFilter`]: the simulator's filter callbacks played by the driver's own handlers.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use wanlayer::hal::KernelHal;
use wanlayer_core::hal::{Clock, Level, Log, PacketIo, PathContext, PauseCompletion, Pool};
use wanlayer_core::{Engine, ModuleId, NdisStatus};
use wanlayer_kernel_model::{self as model, Event, OidAnswer, DISPATCH_LEVEL, PASSIVE_LEVEL, STATUS_PENDING};
use wanlayer_ndis::lightweight_filter::{FilterAttachParameters as NdisAttachParameters, FilterDriverCharacteristics};
use wanlayer_ndis::lightweight_filter::{ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags, StatusIndication as NdisStatusIndication};
use wanlayer_ndis::io::{DriverObjectLayout, FileObjectLayout};
use wanlayer_ndis::kernel::NtStatus;
use wanlayer_ndis::nbl::NetBufferList;
use wanlayer_ndis::oid::{
    NdisOidRequest, NdisRequestType, QueryInformation, SetInformation, NDIS_OID_REQUEST_REVISION_1, SIZEOF_OID_REQUEST_REVISION_1,
};
use wanlayer_ndis::types::{object_type, ContextHandle, FilterModuleHandle, NblPoolHandle, NdisObjectHeader, UnicodeString};
use wanlayer_ndis::wan::{WanLineDown, WanLineUp as NdisWanLineUp, NDIS_STATUS_WAN_LINE_UP};
use wanlayer_sim::{
    EngineFilter, FilterAttachParameters, FilterDriver, IoId, Irql, OidDisposition, OidKind, OidRequest, RequestId, Rule, SimChain, SimHal,
    StatusBuffer, StatusIndication,
};

use crate::carriers::Carriers;
use crate::control::Request;
use crate::invoke;

/// The service key `DriverEntry` is given.
const SERVICE_KEY: &str = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer";
/// Room for the `DeviceName` the protocol fills in during a line up (UTF-16 units).
const DEVICE_NAME_ROOM: usize = 128;
/// What a data-path call naming a filter handle of no attached module goes to the simulator
/// as: a module it does not know, so that its checked service reports `InvalidModuleHandle` and
/// forfeits the packets, as it does for a filter naming a module that is not attached.
const UNKNOWN_MODULE: ModuleId = ModuleId(u32::MAX);

/// An attached module: the handle NDIS gave its attach and the context the driver set.
#[derive(Clone, Copy)]
struct Module {
    filter: FilterModuleHandle,
    context: ContextHandle,
}

/// The simulator's filter, played by `wanlayer.sys`'s handlers over the kernel model.
pub struct DriverFilter {
    run: Option<model::Run>,
    /// `DriverEntry` succeeded at least once (the world ran the driver).
    loaded_once: Cell<bool>,
    driver_object: *mut DriverObjectLayout,
    handlers: Option<FilterDriverCharacteristics>,
    /// What [`DriverFilter::with_handlers`] does to the handlers the driver registers.
    edit_handlers: Option<fn(&mut FilterDriverCharacteristics)>,
    shared: Rc<Shared>,
}

/// What the translation keeps, shared with the model's sinks: NBLs the driver passes on reach
/// the simulator as the driver passes them, from a handler, a DPC or a hook's reinjection alike.
#[derive(Default)]
pub struct Shared {
    hal: OnceCell<SimHal>,
    modules: RefCell<BTreeMap<ModuleId, Module>>,
    carriers: RefCell<Carriers>,
    log_seen: Cell<usize>,
    violations_seen: Cell<usize>,
    oids: RefCell<Oids>,
    /// The data-path context of the callback in progress (`check_for_loopback` of a send).
    ctx: Cell<PathContext>,
    /// The control device's open handles: their file objects.
    pub(crate) files: RefCell<BTreeMap<u64, *mut FileObjectLayout>>,
    /// The last device control's identity.
    pub(crate) next_io: Cell<u64>,
    /// Device controls the driver pended, kept until it completed them and the world ends.
    pub(crate) pending_irps: RefCell<Vec<(IoId, usize, Request)>>,
    /// The system buffer of the last device control completed at once, for the next one.
    pub(crate) spare_system_buffer: RefCell<Vec<u8>>,
    /// DPCs the driver queued wait ([`DriverFilter::hold_dpcs`]) instead of running when a call
    /// into the driver returns.
    dpcs_held: Cell<bool>,
    /// `IofCompleteRequest`s seen: (IRP, status, information).
    irps_completed: RefCell<Vec<(usize, NtStatus, usize)>>,
}

impl std::ops::Deref for DriverFilter {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

thread_local! {
    /// The translation of the driver loaded on this thread (each test runs on its own).
    static LOADED: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
}

/// The model's sink for NBLs passed on: hands them to the simulator at once.
fn passed_on() {
    let shared = LOADED.with(|loaded| loaded.borrow().clone());
    if let Some(shared) = shared {
        shared.drain();
    }
}

/// A protocol's OID request at the driver: the NDIS original this module built for it and the
/// information buffer it shares with the driver's clone.
struct OriginalOid {
    request: *mut NdisOidRequest,
    buffer: Vec<u8>,
}

/// OID requests in progress: originals at the driver, the driver's clones at the simulated
/// miniport (by the simulator's clone), and what the driver passed down or completed during the
/// call in progress.
#[derive(Default)]
struct Oids {
    originals: HashMap<usize, OriginalOid>,
    clones: HashMap<RequestId, (ModuleId, usize)>,
    passed_down: Vec<usize>,
    completed: Vec<(usize, u32)>,
}

impl Drop for Oids {
    fn drop(&mut self) {
        for original in self.originals.values() {
            // SAFETY: allocated by `Box::into_raw` in `oid_request`, freed once (here or when
            // completed, which removes it).
            drop(unsafe { Box::from_raw(original.request) });
        }
    }
}

impl Default for DriverFilter {
    fn default() -> Self {
        Self::new()
    }
}

/// The environment variable naming a file to which every simulated world that ran the driver
/// appends its test's name (`cargo xtask test` counts them).
pub const SCENARIO_LOG: &str = "WANLAYER_DRIVER_SCENARIOS";

/// Appends the current test's name (its thread's) to the [`SCENARIO_LOG`] file, when one is named.
fn record_scenario() {
    let Some(path) = std::env::var_os(SCENARIO_LOG) else { return };
    let name = std::thread::current().name().unwrap_or("unnamed").to_owned();
    let exe =
        std::env::current_exe().ok().and_then(|exe| exe.file_stem().map(|stem| stem.to_string_lossy().into_owned())).unwrap_or_default();
    let line = format!("{} {name}\n", exe.split('-').next().unwrap_or(&exe));
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()));
    if let Err(error) = appended {
        eprintln!("{SCENARIO_LOG}: {error}");
    }
}

impl Drop for DriverFilter {
    fn drop(&mut self) {
        if self.handlers.is_some() || self.loaded_once.get() {
            record_scenario();
        }
        if self.handlers.is_some() {
            // A world dropped with the driver loaded (a scenario that failed half-way): the
            // system shuts the driver down, so that the next world of this process finds no
            // engine, module or pool charge of this one in the driver's statics.
            self.shut_down();
        }
        if !self.driver_object.is_null() {
            // SAFETY: allocated by `Box::into_raw` in `driver_entry`, freed once here.
            drop(unsafe { Box::from_raw(self.driver_object) });
        }
        self.carriers.replace(Carriers::default());
        self.oids.replace(Oids::default());
        self.pending_irps.borrow_mut().clear();
        for (_, file) in std::mem::take(&mut *self.files.borrow_mut()) {
            // SAFETY: a file object `control_open` allocated, never closed; the driver is gone.
            drop(unsafe { Box::from_raw(file) });
        }
        LOADED.with(|loaded| loaded.borrow_mut().take());
        model::set_status_sink(None);
        model::set_passed_on_sink(None);
        self.run.take();
    }
}

/// What the protocol's answer to a status indication needs while the driver's call is in
/// progress: the simulator, the module, the indication as the simulator made it.
struct StatusInProgress {
    hal: SimHal,
    module: ModuleId,
    indication: StatusIndication,
}

thread_local! {
    static STATUS: RefCell<Option<StatusInProgress>> = const { RefCell::new(None) };
}

/// `NDIS_WAN_LINE_UP` and the room for the `DeviceName` the protocol fills in (the protocol
/// buffer, of the length NdisWan gives, is allocated beside it).
#[repr(C)]
struct LineUpBuffer {
    line_up: NdisWanLineUp,
    /// NdisWan's private bytes past the line up; the first is its "answer later" byte
    /// (`wanlayer_ndis::wan_status::ANSWER_LATER_OFFSET`): zero, the simulated protocol answers at once.
    ndiswan_private: [u8; 16],
    device_name: [u16; DEVICE_NAME_ROOM],
}

/// The protocol above answering `NdisFIndicateStatus`: the simulator's protocol sees the
/// indication as the driver passed it on (a line up's `MaximumTotalSize` possibly lowered) and
/// fills in the line up's `LocalAddress` and `DeviceName`, which go back into NdisWan's buffer.
fn status_to_protocol(_filter: FilterModuleHandle, indication: *mut NdisStatusIndication) {
    STATUS.with(|slot| {
        let mut slot = slot.borrow_mut();
        let Some(progress) = slot.as_mut() else {
            return;
        };
        // SAFETY: (these three) the driver passes on the indication it was given, valid for the call.
        let code = unsafe { (*indication).status_code };
        // SAFETY: as above.
        let buffer = unsafe { (*indication).status_buffer };
        // SAFETY: as above.
        let size = unsafe { (*indication).status_buffer_size };
        progress.indication.code = NdisStatus(code);
        let line_up = buffer.cast::<LineUpBuffer>();
        if let StatusBuffer::LineUp(record) = &mut progress.indication.buffer {
            if code == NDIS_STATUS_WAN_LINE_UP && size as usize >= size_of::<NdisWanLineUp>() {
                // SAFETY: the line up buffer this module built for the call.
                record.maximum_total_size = unsafe { (*line_up).line_up.maximum_total_size };
            }
        }
        progress.hal.indicate_status(progress.module, &mut progress.indication);
        if let StatusBuffer::LineUp(record) = &progress.indication.buffer {
            if code == NDIS_STATUS_WAN_LINE_UP && size as usize >= size_of::<NdisWanLineUp>() {
                let units = record.device_name.len().min(DEVICE_NAME_ROOM);
                // SAFETY: as above; the protocol writes the in/out fields NdisWan left room for.
                let up = unsafe { &mut (*line_up).line_up };
                up.local_address = record.local_address.0;
                // SAFETY: `DeviceName.Buffer` points to the buffer's `device_name`, with room for
                // DEVICE_NAME_ROOM units.
                unsafe { ptr::copy_nonoverlapping(record.device_name.as_ptr(), up.device_name.buffer, units) };
                up.device_name.length = u16::try_from(units * 2).unwrap_or(0);
            }
        }
    });
}

impl Shared {
    fn hal(&self) -> &SimHal {
        self.hal.get().expect("driver_entry gave the filter its world")
    }

    /// Forgets what `IofCompleteRequest` reported for an earlier IRP at the address `irp`.
    pub(crate) fn forget_irp_completion(&self, irp: usize) {
        self.irps_completed.borrow_mut().retain(|(done, _, _)| *done != irp);
    }

    /// How the driver completed the IRP at `irp`, once it did.
    pub(crate) fn take_irp_completion(&self, irp: usize) -> Option<(NtStatus, usize)> {
        let mut completed = self.irps_completed.borrow_mut();
        let at = completed.iter().position(|(done, _, _)| *done == irp)?;
        let (_, status, information) = completed.remove(at);
        Some((status, information))
    }

    fn module_of_filter(&self, filter: usize) -> Option<ModuleId> {
        self.modules.borrow().iter().find(|(_, m)| m.filter.as_raw().addr() == filter).map(|(id, _)| *id)
    }

    fn module_of_pool(&self, pool: NblPoolHandle) -> Option<ModuleId> {
        let modules = self.modules.borrow();
        modules.keys().copied().find(|&module| wanlayer::modules::MODULES.handles(module).is_some_and(|handles| handles.pool == pool))
    }

    /// Hands the simulator what the driver passed on since the last time, in order, and frees in
    /// the ledger the driver's own NBLs it freed.
    fn drain(&self) {
        let hal = self.hal().clone();
        let ctx = self.ctx.get();
        for nbl in model::take_allocated_nbls() {
            // SAFETY: an NBL the driver just allocated from one of its modules' pools.
            let pool = unsafe { (*ptr::with_exposed_provenance::<NetBufferList>(nbl)).ndis_pool_handle };
            if let Some(module) = self.module_of_pool(pool) {
                self.carriers.borrow_mut().allocated(&hal, module, nbl);
            }
        }
        let mut send_flags = model::take_send_flags().into_iter();
        for event in model::take_events() {
            // A send goes down with the flags the driver gave NdisFSendNetBufferLists.
            let ctx = match &event {
                Event::SentDown { .. } => {
                    let flags = send_flags.next().map_or(SendFlags(0), SendFlags);
                    PathContext { check_for_loopback: flags.check_for_loopback(), ..ctx }
                }
                _ => ctx,
            };
            self.deliver(&hal, event, ctx);
        }
        for nbl in model::take_freed_nbls() {
            let packet = self.carriers.borrow_mut().freed(nbl);
            if let Some(packet) = packet {
                // The copy's parent is the driver's to give back (its own record, not the
                // ledger's).
                let _ = hal.free(packet);
            }
        }
    }

    /// One thing the driver passed down, up or back, handed to the simulator's checked service.
    fn deliver(&self, hal: &SimHal, event: Event, ctx: PathContext) {
        let ctx = PathContext { at_dispatch: hal.irql() == Irql::Dispatch, ..ctx };
        match event {
            Event::SentDown { filter, nbls } => {
                let module = self.module_of_filter(filter).unwrap_or(UNKNOWN_MODULE);
                let chain = self.carriers.borrow_mut().take(hal, module, &nbls, "NdisFSendNetBufferLists");
                hal.send_down(module, chain, ctx);
            }
            Event::SendsCompleted { filter, nbls } => {
                let module = self.module_of_filter(filter).unwrap_or(UNKNOWN_MODULE);
                let chain = self.carriers.borrow_mut().take(hal, module, &nbls, "NdisFSendNetBufferListsComplete");
                let ids = chain.ids();
                hal.complete_sends(module, chain, ctx);
                self.carriers.borrow_mut().forget(&ids);
            }
            Event::Indicated { filter, nbls, resources } => {
                let module = self.module_of_filter(filter).unwrap_or(UNKNOWN_MODULE);
                let chain = self.carriers.borrow_mut().take(hal, module, &nbls, "NdisFIndicateReceiveNetBufferLists");
                let back = hal.indicate_up(module, chain, resources, ctx);
                self.carriers.borrow_mut().hold(back);
            }
            Event::Returned { filter, nbls } => {
                let module = self.module_of_filter(filter).unwrap_or(UNKNOWN_MODULE);
                let chain = self.carriers.borrow_mut().take(hal, module, &nbls, "NdisFReturnNetBufferLists");
                let ids = chain.ids();
                hal.return_receives(module, chain, ctx);
                self.carriers.borrow_mut().forget(&ids);
            }
            Event::PauseComplete { filter } => {
                if let Some(module) = self.module_of_filter(filter) {
                    hal.pause_complete(module);
                }
            }
            Event::OidDown { request, .. } => self.oids.borrow_mut().passed_down.push(request),
            Event::IrpCompleted { irp, status, information } => self.irps_completed.borrow_mut().push((irp, status, information)),
            Event::OidCompleted { request, status, .. } => self.oids.borrow_mut().completed.push((request, status)),
            // Answered during the call (the status sink), or with nothing to do for the
            // simulated drivers around the filter.
            _ => {}
        }
    }
}

impl DriverFilter {
    /// A driver not loaded yet; holds the kernel model's run (one driver per process at a time)
    /// until dropped.
    pub fn new() -> Self {
        Self {
            run: Some(model::begin()),
            loaded_once: Cell::new(false),
            driver_object: ptr::null_mut(),
            handlers: None,
            edit_handlers: None,
            shared: Rc::new(Shared::default()),
        }
    }

    /// Has `edit` change the handlers the driver registers, each time `DriverEntry` registers
    /// them and before any is called: how a verifier proof puts a deliberately broken handler —
    /// its own `extern "system"` code calling the NDIS imports, around or instead of the driver's
    /// — in the driver's place, over the same kernel model and the same translation.
    pub fn with_handlers(mut self, edit: fn(&mut FilterDriverCharacteristics)) -> Self {
        self.edit_handlers = Some(edit);
        self
    }

    /// Holds the DPCs the driver queues from now on (`true`) — a processor busy at
    /// `DISPATCH_LEVEL` — or lets them run, the held ones at once (`false`): how a test opens the
    /// window between an event waking a handle and the wake DPC running.
    pub fn hold_dpcs(&self, hold: bool) {
        self.dpcs_held.set(hold);
        if !hold && self.handlers.is_some() {
            let entered = self.enter(PathContext::default());
            self.settle(entered, None);
        }
    }

    /// Cancels every device control the driver holds in its cancel-safe queue (`CancelIoEx` on
    /// each), as the I/O manager does; how the driver completed them is then what
    /// [`control_completion`](Self::control_completion) answers. Returns how many were cancelled.
    pub fn cancel_queued_irps(&self) -> usize {
        if self.handlers.is_none() {
            return 0;
        }
        let entered = self.enter(PathContext::default());
        let cancelled = model::cancel_queued_irps();
        self.settle(entered, None);
        cancelled
    }

    /// What the system does to a loaded driver at shutdown: every module paused (completion not
    /// awaited) and detached, then `DriverUnload`. Nothing is delivered to the simulator any more.
    fn shut_down(&mut self) {
        LOADED.with(|loaded| loaded.borrow_mut().take());
        model::set_status_sink(None);
        model::set_passed_on_sink(None);
        let Some(handlers) = self.handlers.take() else { return };
        let modules: Vec<Module> = self.modules.borrow().values().copied().collect();
        for module in modules {
            model::set_irql(PASSIVE_LEVEL);
            // SAFETY: the context of an attached module, at PASSIVE_LEVEL, as NDIS pauses and
            // detaches it when the driver is removed.
            unsafe { invoke::pause(&handlers, module.context) };
            // SAFETY: as above.
            unsafe { invoke::detach(&handlers, module.context) };
        }
        self.modules.borrow_mut().clear();
        model::set_irql(PASSIVE_LEVEL);
        // SAFETY: the driver is loaded and its modules are detached; PASSIVE_LEVEL.
        unsafe { invoke::driver_unload(self.driver_object) };
        let _ = model::take_events();
    }

    fn handlers(&self) -> Option<FilterDriverCharacteristics> {
        self.handlers
    }

    fn module(&self, module: ModuleId) -> Option<Module> {
        self.modules.borrow().get(&module).copied()
    }

    /// Gives the model the simulator's IRQL and clock before a call into the driver.
    pub(crate) fn enter(&self, ctx: PathContext) -> u8 {
        self.ctx.set(ctx);
        let hal = self.hal();
        model::set_time(hal.now().0 / 100);
        let irql = if hal.irql() == Irql::Dispatch { DISPATCH_LEVEL } else { PASSIVE_LEVEL };
        model::set_irql(irql);
        irql
    }

    /// After a call into the driver: it must return at the IRQL it was called at; then what it
    /// passed on goes to the simulator, its debug output to the trace, and the rules the model
    /// saw broken to the verifier.
    pub(crate) fn settle(&self, entered: u8, module: Option<ModuleId>) {
        let hal = self.hal().clone();
        let left = model::irql();
        if left != entered {
            hal.report(Rule::LockHeldAcrossCall, module, format!("the handler returned at IRQL {left}, called at {entered}"));
            model::set_irql(entered);
        }
        self.drain();
        if !self.dpcs_held.get() {
            // The processor drops below DISPATCH_LEVEL: the DPCs the call queued run.
            model::run_dpcs();
            self.drain();
        }
        let log = model::log_since(self.log_seen.get());
        for line in &log {
            hal.log(Level::Info, format_args!("{}", line.trim_end()));
        }
        self.log_seen.set(self.log_seen.get() + log.len());
        let violations = model::violations_since(self.violations_seen.get());
        for violation in &violations {
            hal.report(rule_of(violation), module, format!("kernel model: {violation}"));
        }
        self.violations_seen.set(self.violations_seen.get() + violations.len());
        // Back in the test's code between callbacks: PASSIVE_LEVEL, no data-path context.
        model::set_irql(PASSIVE_LEVEL);
        self.ctx.set(PathContext::default());
    }

    /// Completes the driver's clone at `clone` with the simulated miniport's answer `sim_clone`
    /// (which carries the protocol's original): the results go into the information buffer the
    /// clone shares with the original and into the clone's counts, the driver copies them to its
    /// original and completes it. The protocol's original with those results, once the driver
    /// completed it; the simulator's clone is freed when `simulated` (it was allocated there).
    fn complete_clone(
        &self,
        module: ModuleId,
        clone: usize,
        mut sim_clone: OidRequest,
        status: NdisStatus,
        simulated: bool,
    ) -> Option<OidRequest> {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else { return None };
        let hal = self.hal().clone();
        let mut sim_original = sim_clone.take_original();
        let clone_ptr = ptr::with_exposed_provenance_mut::<NdisOidRequest>(clone);
        // SAFETY: the driver's clone, passed down and not completed: the miniport's to fill in.
        let request_type = unsafe { (*clone_ptr).request_type };
        if simulated && request_type == NdisRequestType::QUERY_INFORMATION {
            // SAFETY: as above.
            let data = unsafe { &mut (*clone_ptr).data };
            // SAFETY: a query's union member.
            let query = unsafe { &mut data.query_information };
            let room = usize::try_from(query.information_buffer_length).unwrap_or(0);
            let written = sim_clone.data.len().min(room);
            if !query.information_buffer.is_null() {
                // SAFETY: the information buffer the clone shares with the original (this
                // module's), `room` bytes long.
                unsafe { ptr::copy_nonoverlapping(sim_clone.data.as_ptr(), query.information_buffer.cast::<u8>(), written) };
            }
            query.bytes_written = u32::try_from(sim_clone.bytes_done).unwrap_or(u32::MAX);
        } else if simulated {
            // SAFETY: as above.
            let data = unsafe { &mut (*clone_ptr).data };
            // SAFETY: a set's union member.
            let set = unsafe { &mut data.set_information };
            set.bytes_read = u32::try_from(sim_clone.bytes_done).unwrap_or(u32::MAX);
        }
        if simulated {
            hal.free_clone_oid(sim_clone);
        }
        let entered = self.enter(PathContext::default());
        // SAFETY: the module's context and a clone the driver passed down, completed once.
        unsafe { invoke::oid_request_complete(&handlers, m.context, clone_ptr, status.0) };
        self.settle(entered, Some(module));
        let completed = std::mem::take(&mut self.oids.borrow_mut().completed);
        let mut result = None;
        for (original, _) in completed {
            match sim_original.take() {
                Some(request) => result = Some(self.finish_original(original, request)),
                None => hal.report(Rule::NdisOidDoubleComplete, Some(module), "the driver completed an original twice"),
            }
        }
        result
    }

    /// The protocol's `request` with the results the driver left in its NDIS original at
    /// `original`, which is freed.
    fn finish_original(&self, original: usize, mut request: OidRequest) -> OidRequest {
        let Some(entry) = self.oids.borrow_mut().originals.remove(&original) else { return request };
        // SAFETY: allocated by `Box::into_raw` in `oid_request`, completed, freed once (removed).
        let ndis = unsafe { Box::from_raw(entry.request) };
        match request.kind {
            OidKind::Query => {
                // SAFETY: a query's union member.
                let written = unsafe { ndis.data.query_information.bytes_written };
                // What the miniport wrote: the first BytesWritten bytes of the shared buffer.
                let written = (written as usize).min(entry.buffer.len());
                request.data = entry.buffer.get(..written).map(<[u8]>::to_vec).unwrap_or_default();
                request.bytes_done = written;
            }
            OidKind::Set => {
                // SAFETY: a set's union member.
                request.bytes_done = unsafe { ndis.data.set_information.bytes_read } as usize;
            }
        }
        request
    }

    /// A chain given to the driver, with the flags' `DISPATCH_LEVEL` bit from `ctx`.
    fn give(&self, chain: SimChain) -> *mut wanlayer_ndis::nbl::NetBufferList {
        self.carriers.borrow_mut().give(self.hal(), chain).0
    }
}

/// The simulator's rule for what the kernel model reports.
fn rule_of(violation: &str) -> Rule {
    let lower = violation.to_ascii_lowercase();
    if lower.contains("dispatch_level flag") {
        Rule::IrqlSendRcvFunction
    } else if lower.contains("irql") || lower.contains("passive_level") {
        Rule::IrqlFilterDriverFunction
    } else if lower.contains("spin lock") || lower.contains("spinlock") {
        Rule::LockHeldAcrossCall
    } else if lower.contains("oid") {
        Rule::NdisOidDoubleComplete
    } else if lower.contains("not a live pool block") {
        // A block freed twice or never allocated: more released than held.
        Rule::PoolOverRelease
    } else if lower.contains("not an nbl the driver allocated") {
        // NdisFreeNetBufferList of an NBL another driver owns (a protocol's send, a miniport's
        // receive).
        Rule::FreeForeignPacket
    } else if lower.contains("pool") || lower.contains("not freed") {
        Rule::PoolLeak
    } else if lower.contains("numberofnetbufferlists") || lower.contains("nbl") {
        Rule::WrongOwner
    } else {
        Rule::DoubleComplete
    }
}

fn unicode(units: &mut [u16]) -> UnicodeString {
    let bytes = u16::try_from(units.len() * 2).unwrap_or(u16::MAX);
    UnicodeString { length: bytes, maximum_length: bytes, buffer: units.as_mut_ptr() }
}

fn ctx_flags(ctx: PathContext) -> bool {
    ctx.at_dispatch
}

/// The engine inside the loaded driver (`wanlayer::driver::engine`), between `DriverEntry` and
/// `DriverUnload`.
impl EngineFilter for DriverFilter {
    type Hal = KernelHal;

    fn engine(&self) -> Option<&Engine<KernelHal>> {
        self.handlers.is_some().then(wanlayer::driver::engine)
    }

    /// The driver's own per-pool counters (`wanlayer::hal::pool_usage`).
    fn pool_charged(&self, pool: Pool) -> usize {
        wanlayer::hal::pool_usage().find(|usage| usage.pool == pool).map_or(0, |usage| usage.current)
    }
}

impl FilterDriver for DriverFilter {
    fn driver_entry(&mut self, hal: &SimHal) -> Result<(), NdisStatus> {
        let _ = self.shared.hal.set(hal.clone());
        LOADED.with(|loaded| *loaded.borrow_mut() = Some(Rc::clone(&self.shared)));
        model::set_passed_on_sink(Some(passed_on));
        if self.driver_object.is_null() {
            // SAFETY: a driver object is plain C data; all-zero is what the I/O manager's looks
            // like before DriverEntry.
            self.driver_object = Box::into_raw(Box::new(unsafe { std::mem::zeroed::<DriverObjectLayout>() }));
        }
        // The service key exists before the driver loads (the installer made it): the driver
        // keeps its rule set in its `Parameters` subkey.
        model::create_key(SERVICE_KEY);
        let mut path: Vec<u16> = SERVICE_KEY.encode_utf16().collect();
        let mut registry_path = unicode(&mut path);
        let entered = self.enter(PathContext::default());
        // SAFETY: a driver object is plain C data; all-zero is a new one.
        let fresh = unsafe { std::mem::zeroed::<DriverObjectLayout>() };
        // SAFETY: the driver object allocated above; the I/O manager's is new each load.
        unsafe { self.driver_object.write(fresh) };
        // SAFETY: PASSIVE_LEVEL, a zeroed driver object, the service key valid for the call.
        let status = unsafe { invoke::driver_entry(self.driver_object, &mut registry_path) };
        self.settle(entered, None);
        if status != 0 {
            return Err(NdisStatus(status as u32));
        }
        self.handlers = model::characteristics();
        if let (Some(edit), Some(handlers)) = (self.edit_handlers, self.handlers.as_mut()) {
            edit(handlers);
        }
        self.loaded_once.set(true);
        model::set_status_sink(Some(status_to_protocol));
        // The simulated miniport answers every request the driver passes down, later or at once.
        model::set_oid_answer(OidAnswer::Pend);
        Ok(())
    }

    fn unload(&mut self) {
        let entered = self.enter(PathContext::default());
        // SAFETY: loaded, every module detached, PASSIVE_LEVEL.
        unsafe { invoke::driver_unload(self.driver_object) };
        self.settle(entered, None);
        self.handlers = None;
        let hal = self.hal().clone();
        let reported = model::violations().len();
        for leftover in model::finish().into_iter().skip(reported) {
            hal.report(Rule::PoolLeak, None, format!("kernel model at unload: {leftover}"));
        }
    }

    fn attach(&self, params: &FilterAttachParameters) -> Result<ModuleId, NdisStatus> {
        let handlers = self.handlers().ok_or(NdisStatus::FAILURE)?;
        let mut name: Vec<u16> = params.base_miniport_name.encode_utf16().collect();
        let mut friendly: Vec<u16> = params.friendly_name.encode_utf16().collect();
        let mut miniport_name = unicode(&mut name);
        let mut instance_name = unicode(&mut friendly);
        // SAFETY: attach parameters are plain C data; all-zero is a valid start.
        let mut parameters: Box<NdisAttachParameters> = Box::new(unsafe { std::mem::zeroed() });
        parameters.header = NdisObjectHeader::new(object_type::FILTER_ATTACH_PARAMETERS, 1, size_of::<NdisAttachParameters>());
        parameters.base_miniport_if_index = params.if_index;
        parameters.base_miniport_name = &raw mut miniport_name;
        parameters.base_miniport_instance_name = &raw mut instance_name;
        parameters.miniport_media_type = params.medium;
        parameters.mac_address_length = 6;
        parameters.current_mac_address[..6].copy_from_slice(&params.mac_address.0);
        let filter = model::new_filter_module_handle();
        let entered = self.enter(PathContext::default());
        let parameters = Box::into_raw(parameters);
        // SAFETY: a new module handle, the parameters valid for the call, PASSIVE_LEVEL.
        let status = unsafe { invoke::attach(&handlers, filter, parameters) };
        // SAFETY: leaked just above, freed once after the call.
        drop(unsafe { Box::from_raw(parameters) });
        self.settle(entered, None);
        if status != 0 {
            return Err(NdisStatus(status));
        }
        let context = model::module_context(filter).ok_or(NdisStatus::FAILURE)?;
        // SAFETY: the context the driver gave NdisFSetAttributes: an entry of its module table.
        let module = unsafe { wanlayer::modules::module_entry(context) }.module();
        self.modules.borrow_mut().insert(module, Module { filter, context });
        Ok(module)
    }

    fn detach(&self, module: ModuleId) {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return;
        };
        let entered = self.enter(PathContext::default());
        // SAFETY: the context of a paused module, PASSIVE_LEVEL.
        unsafe { invoke::detach(&handlers, m.context) };
        self.settle(entered, Some(module));
        self.modules.borrow_mut().remove(&module);
    }

    fn restart(&self, module: ModuleId) -> NdisStatus {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return NdisStatus::FAILURE;
        };
        let entered = self.enter(PathContext::default());
        // SAFETY: the context of a paused module, PASSIVE_LEVEL.
        let status = unsafe { invoke::restart(&handlers, m.context) };
        self.settle(entered, Some(module));
        NdisStatus(status)
    }

    fn pause(&self, module: ModuleId) -> NdisStatus {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return NdisStatus::SUCCESS;
        };
        let entered = self.enter(PathContext::default());
        // SAFETY: the context of a running module, PASSIVE_LEVEL.
        let status = unsafe { invoke::pause(&handlers, m.context) };
        self.settle(entered, Some(module));
        NdisStatus(status)
    }

    fn send(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return;
        };
        let mut flags = if ctx_flags(ctx) { SendFlags::DISPATCH_LEVEL } else { SendFlags(0) };
        if ctx.check_for_loopback {
            flags = flags | SendFlags::CHECK_FOR_LOOPBACK;
        }
        let head = self.give(chain);
        if head.is_null() {
            return;
        }
        let entered = self.enter(ctx);
        // SAFETY: the module's context and a chain given up to the driver.
        unsafe { invoke::send(&handlers, m.context, head, flags) };
        self.settle(entered, Some(module));
    }

    fn send_complete(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return;
        };
        let flags = if ctx_flags(ctx) { SendCompleteFlags::DISPATCH_LEVEL } else { SendCompleteFlags(0) };
        let head = self.give(chain);
        if head.is_null() {
            return;
        }
        let entered = self.enter(ctx);
        // SAFETY: the module's context and NBLs the driver sent down.
        unsafe { invoke::send_complete(&handlers, m.context, head, flags) };
        self.settle(entered, Some(module));
    }

    fn cancel_send(&self, module: ModuleId, cancel_id: u64) {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return;
        };
        let id = ptr::without_provenance_mut::<c_void>(usize::try_from(cancel_id).unwrap_or(usize::MAX));
        let entered = self.enter(PathContext::default());
        // SAFETY: the module's context.
        unsafe { invoke::cancel_send(&handlers, m.context, id) };
        self.settle(entered, Some(module));
    }

    fn receive(&self, module: ModuleId, chain: SimChain, resources: bool, ctx: PathContext) -> SimChain {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return chain;
        };
        let count = u32::try_from(chain.len()).unwrap_or(u32::MAX);
        let mut flags = if ctx_flags(ctx) { ReceiveFlags::DISPATCH_LEVEL } else { ReceiveFlags(0) };
        if resources {
            flags = flags | ReceiveFlags::RESOURCES;
        }
        let (head, order) = self.carriers.borrow_mut().give(self.hal(), chain);
        if head.is_null() {
            return SimChain::new();
        }
        let entered = self.enter(ctx);
        // SAFETY: the module's context and a chain of `count` NBLs.
        unsafe { invoke::receive(&handlers, m.context, head, count, flags) };
        self.settle(entered, Some(module));
        if !resources {
            return SimChain::new();
        }
        let hal = self.hal();
        let mut linked = Vec::new();
        let mut next = head;
        while !next.is_null() && linked.len() <= order.len() {
            linked.push(next.addr());
            // SAFETY: a member of the lent chain, which the driver gave back with the call.
            next = unsafe { (*next).next };
        }
        if linked != order {
            let detail = format!("the lent chain came back linked as {} NBLs, not as the {} lent", linked.len(), order.len());
            hal.report(Rule::LentPacketKept, Some(module), detail);
        }
        let back = self.carriers.borrow_mut().take(hal, module, &order, "the lent receive chain");
        self.carriers.borrow_mut().forget(&back.ids());
        back
    }

    fn return_receives(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return;
        };
        let flags = if ctx_flags(ctx) { ReturnFlags::DISPATCH_LEVEL } else { ReturnFlags(0) };
        let head = self.give(chain);
        if head.is_null() {
            return;
        }
        let entered = self.enter(ctx);
        // SAFETY: the module's context and NBLs the driver indicated up.
        unsafe { invoke::return_receives(&handlers, m.context, head, flags) };
        self.settle(entered, Some(module));
    }

    fn status(&self, module: ModuleId, indication: &mut StatusIndication) {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return;
        };
        // SAFETY: plain C data, all-zero valid.
        let mut line_up: Box<LineUpBuffer> = Box::new(unsafe { std::mem::zeroed() });
        let mut line_down = match &indication.buffer {
            StatusBuffer::LineDown(down) => WanLineDown { remote_address: down.remote_address.0, local_address: down.local_address.0 },
            _ => WanLineDown { remote_address: [0; 6], local_address: [0; 6] },
        };
        let mut raw = Vec::new();
        let mut protocol: Vec<u8> = Vec::new();
        let line_up_ptr: *mut LineUpBuffer = &raw mut *line_up;
        let (buffer, size): (*mut c_void, usize) = match &indication.buffer {
            StatusBuffer::LineUp(record) => {
                protocol.clone_from(&record.protocol_buffer);
                let protocol_length = protocol.len();
                // SAFETY: the buffer allocated above, written through its one pointer.
                let b = unsafe { &mut *line_up_ptr };
                let name_units = record.device_name.len().min(DEVICE_NAME_ROOM);
                b.device_name[..name_units].copy_from_slice(&record.device_name[..name_units]);
                b.line_up = NdisWanLineUp {
                    link_speed: record.link_speed_100bps,
                    maximum_total_size: record.maximum_total_size,
                    quality: i32::from(record.quality),
                    send_window: record.send_window,
                    remote_address: record.remote_address.0,
                    local_address: record.local_address.0,
                    protocol_buffer_length: u32::try_from(protocol_length).unwrap_or(0),
                    protocol_buffer: protocol.as_mut_ptr(),
                    protocol_type: u16::from(record.protocol_type),
                    device_name: UnicodeString {
                        length: u16::try_from(name_units * 2).unwrap_or(0),
                        maximum_length: u16::try_from(DEVICE_NAME_ROOM * 2).unwrap_or(0),
                        buffer: b.device_name.as_mut_ptr(),
                    },
                };
                (line_up_ptr.cast(), size_of::<LineUpBuffer>())
            }
            StatusBuffer::LineDown(_) => ((&raw mut line_down).cast(), size_of::<WanLineDown>()),
            StatusBuffer::Raw(bytes) => {
                raw.clone_from(bytes);
                (raw.as_mut_ptr().cast(), raw.len())
            }
        };
        // SAFETY: plain C data, all-zero valid.
        let mut ndis: NdisStatusIndication = unsafe { std::mem::zeroed() };
        ndis.header = NdisObjectHeader::new(object_type::STATUS_INDICATION, 1, size_of::<NdisStatusIndication>());
        ndis.status_code = indication.code.0;
        ndis.status_buffer = buffer;
        ndis.status_buffer_size = u32::try_from(size).unwrap_or(0);
        ndis.source_handle = m.filter.into();
        STATUS.with(|slot| *slot.borrow_mut() = Some(StatusInProgress { hal: self.hal().clone(), module, indication: indication.clone() }));
        let entered = self.enter(PathContext::default());
        // SAFETY: the module's context and an indication valid for the call.
        unsafe { invoke::status(&handlers, m.context, &raw mut ndis) };
        if let Some(progress) = STATUS.with(|slot| slot.borrow_mut().take()) {
            *indication = progress.indication;
        }
        self.settle(entered, Some(module));
        // The buffers of the indication live until the driver's call returned.
        drop((line_up, protocol, raw));
    }

    fn oid_request(&self, module: ModuleId, request: OidRequest) -> OidDisposition {
        let (Some(handlers), Some(m)) = (self.handlers(), self.module(module)) else {
            return OidDisposition::Complete(request, NdisStatus::FAILURE);
        };
        let mut buffer = request.data.clone();
        let length = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        // SAFETY: plain C data, all-zero valid.
        let mut ndis: NdisOidRequest = unsafe { std::mem::zeroed() };
        ndis.header = NdisObjectHeader::new(object_type::OID_REQUEST, NDIS_OID_REQUEST_REVISION_1, SIZEOF_OID_REQUEST_REVISION_1);
        ndis.request_id = ptr::without_provenance_mut(usize::try_from(request.id().0).unwrap_or(usize::MAX));
        let information = buffer.as_mut_ptr().cast::<c_void>();
        match request.kind {
            OidKind::Query => {
                ndis.request_type = NdisRequestType::QUERY_INFORMATION;
                ndis.data.query_information = QueryInformation {
                    oid: request.oid,
                    information_buffer: information,
                    information_buffer_length: length,
                    bytes_written: 0,
                    bytes_needed: 0,
                };
            }
            OidKind::Set => {
                ndis.request_type = NdisRequestType::SET_INFORMATION;
                ndis.data.set_information = SetInformation {
                    oid: request.oid,
                    information_buffer: information,
                    information_buffer_length: length,
                    bytes_read: 0,
                    bytes_needed: 0,
                };
            }
        }
        let original = Box::into_raw(Box::new(ndis));
        self.oids.borrow_mut().originals.insert(original.addr(), OriginalOid { request: original, buffer });
        let entered = self.enter(PathContext::default());
        // SAFETY: the module's context and a request that stays valid until completed (kept in
        // `oids` until then).
        let status = unsafe { invoke::oid_request(&handlers, m.context, original) };
        self.settle(entered, Some(module));
        let passed_down = std::mem::take(&mut self.oids.borrow_mut().passed_down);
        if status != STATUS_PENDING {
            // Completed by the driver without a clone reaching the miniport.
            return OidDisposition::Complete(self.finish_original(original.addr(), request), NdisStatus(status));
        }
        let hal = self.hal().clone();
        let mut request = Some(request);
        for clone in passed_down {
            let Some(original_request) = request.take() else {
                hal.report(Rule::NdisOidDoubleRequest, Some(module), "the driver passed one request down twice");
                continue;
            };
            let Ok(mut sim_clone) = hal.allocate_clone_oid(module, &original_request) else {
                // The simulated NdisAllocateCloneOidRequest refused: the driver's clone completes
                // with RESOURCES at once, its results untouched.
                let mut placeholder = original_request.clone();
                placeholder.set_original(original_request);
                if let Some(original) = self.complete_clone(module, clone, placeholder, NdisStatus::RESOURCES, false) {
                    return OidDisposition::Complete(original, NdisStatus::RESOURCES);
                }
                continue;
            };
            sim_clone.set_original(original_request);
            let clone_id = sim_clone.id();
            match hal.oid_request(module, sim_clone) {
                OidDisposition::Pending => {
                    self.oids.borrow_mut().clones.insert(clone_id, (module, clone));
                }
                OidDisposition::Complete(sim_clone, status) => {
                    if let Some(original) = self.complete_clone(module, clone, sim_clone, status, true) {
                        return OidDisposition::Complete(original, status);
                    }
                }
            }
        }
        OidDisposition::Pending
    }

    fn oid_complete(&self, module: ModuleId, request: OidRequest, status: NdisStatus) {
        let Some((_, clone)) = self.oids.borrow_mut().clones.remove(&request.id()) else {
            let detail = format!("{} completed to the filter, which never passed it down", request.id());
            self.hal().report(Rule::NdisOidDoubleComplete, Some(module), detail);
            return;
        };
        if let Some(original) = self.complete_clone(module, clone, request, status, true) {
            self.hal().oid_request_complete(module, original, status);
        }
    }
}
