//! A model of the Windows kernel and NDIS for host builds of `wanlayer.sys`: the functions
//! `wanlayer_ndis::imports` declares, defined here by name (`#[no_mangle]`), so that the linker
//! binds the driver's calls to them exactly as the loader binds the image's imports to
//! `ndis.sys` and `ntoskrnl.exe`.
//!
//! Every call is checked against what Driver Verifier checks; a broken rule is recorded as a
//! [`violations`] entry (a test asserts there are none), never silently accepted:
//!
//! * pool: every block freed once, with the tag it was allocated with; nothing left at
//!   [`finish`];
//! * spin locks: never acquired twice, released only when held, to the IRQL they were acquired
//!   from; no call that needs `PASSIVE_LEVEL` above it;
//! * NBL pools, OID clones: freed once, only what was allocated; NBL pools freed empty;
//! * OIDs: an original completed at most once, only one that pended;
//! * rundown: no wait that could never end (the model runs on one thread);
//! * registry: an in-memory registry (keys by full path and value names compared
//!   case-insensitively), reached at `PASSIVE_LEVEL` through kernel handles each closed once,
//!   none left open at [`finish`]; tests seed and read it ([`set_registry_value`],
//!   [`registry_value`]).
//!
//! What NDIS does in answer — calling the filter's handlers — is driven by the test through
//! [`characteristics`] (the handlers the driver registered) and the module contexts it gave
//! ([`module_context`]); what goes down to the miniport or up to the protocol is recorded as
//! [`Event`]s. An import this model does not know panics with its name, so a run that reaches one
//! fails by name.
//!
//! One model serves one driver at a time: the state is global (as the kernel's is), and
//! [`begin`] takes a lock that serialises the runs of a test process and resets the state.

mod buffers;
pub mod low_resources;
mod pool;
mod timers;
mod upcalls;

pub use buffers::{driver_buffers, is_driver_nbl, take_allocated_nbls, take_freed_nbls};
pub use pool::set_pool2_absent;
pub use timers::{advance_time, set_time, time, timers_set};
pub use upcalls::{log_since, set_passed_on_sink, set_status_sink, take_send_flags, violations_since, PassedOnSink, StatusSink};

pub mod exports;
pub mod invoke;
mod io_manager;

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use wanlayer_ndis::csq::{
    IoCsq, IoCsqAcquireLockFn, IoCsqCompleteCanceledIrpFn, IoCsqInsertIrpExFn, IoCsqIrpContext, IoCsqLayout, IoCsqPeekNextIrpFn,
    IoCsqReleaseLockFn, IoCsqRemoveIrpFn, IO_TYPE_CSQ_EX,
};
use wanlayer_ndis::lightweight_filter::{
    DeviceObjectAttributes, FilterAttributes, FilterDriverCharacteristics, NdisOidRequest, NetDevicePnpEvent, NetPnpEventNotification,
    ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags, StatusIndication,
};
use wanlayer_ndis::io::STATUS_INVALID_PARAMETER;
use wanlayer_ndis::kernel::{
    AccessMask, DeviceObject, DriverDispatch, DriverObject, ExPoolPriority, ExRundownRef, Irp, KDeferredRoutine, KDpc, KProcessorMode,
    KSpinLock, Kirql, NtStatus, PoolFlags, IRP_MJ_COUNT,
};
use wanlayer_ndis::nbl::{NetBufferList, NetBufferListPoolParameters};
use wanlayer_ndis::registry::{
    Handle, ObjectAttributes, KEY_QUERY_VALUE, KEY_SET_VALUE, KEY_VALUE_PARTIAL_DATA_OFFSET, KEY_VALUE_PARTIAL_INFORMATION_CLASS,
    OBJ_KERNEL_HANDLE, REG_OPTION_NON_VOLATILE, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
};
use wanlayer_ndis::types::{
    ContextHandle, DeviceHandle, FilterDriverHandle, FilterModuleHandle, NblPoolHandle, NdisHandle, PortNumber, RawNdisStatus,
    UnicodeString,
};

/// `PASSIVE_LEVEL`.
pub const PASSIVE_LEVEL: Kirql = 0;
/// `DISPATCH_LEVEL`.
pub const DISPATCH_LEVEL: Kirql = 2;
/// `NDIS_STATUS_PENDING` / `STATUS_PENDING`.
pub const STATUS_PENDING: u32 = 0x0000_0103;
/// `STATUS_OBJECT_NAME_NOT_FOUND`: what the model's registry answers for a key or value it does
/// not hold.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NtStatus = 0xC000_0034_u32 as NtStatus;
/// Pool blocks are aligned as `ExAllocatePool2` aligns them on 64-bit Windows.
const POOL_ALIGNMENT: usize = 16;

/// What the driver passed down, up or out, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `NdisFOidRequest`: a request passed down, with its `RequestId`.
    OidDown {
        /// The module's filter handle.
        filter: usize,
        /// The request passed down (the driver's clone).
        request: usize,
        /// Its `RequestId`.
        request_id: usize,
    },
    /// `NdisFOidRequestComplete`: an original completed.
    OidCompleted {
        /// The module's filter handle.
        filter: usize,
        /// The original.
        request: usize,
        /// The status.
        status: u32,
    },
    /// `NdisFCancelOidRequest`.
    OidCancelled {
        /// The module's filter handle.
        filter: usize,
        /// The `RequestId` cancelled.
        request_id: usize,
    },
    /// `NdisFCancelSendNetBufferLists`.
    SendsCancelled {
        /// The module's filter handle.
        filter: usize,
        /// The cancel identifier.
        cancel_id: usize,
    },
    /// `NdisFNetPnPEvent`.
    NetPnpEvent {
        /// The module's filter handle.
        filter: usize,
        /// The event passed on.
        event: usize,
    },
    /// `NdisFDevicePnPEventNotify`.
    DevicePnpEvent {
        /// The module's filter handle.
        filter: usize,
        /// The event passed on.
        event: usize,
    },
    /// `NdisFIndicateStatus`.
    Status {
        /// The module's filter handle.
        filter: usize,
        /// `StatusCode`.
        code: u32,
    },
    /// `NdisFPauseComplete`.
    PauseComplete {
        /// The module's filter handle.
        filter: usize,
    },
    /// `NdisFSendNetBufferLists`: NBLs sent down to the miniport.
    SentDown {
        /// The module's filter handle.
        filter: usize,
        /// The NBLs, in chain order.
        nbls: Vec<usize>,
    },
    /// `NdisFSendNetBufferListsComplete`: sends completed to the protocol.
    SendsCompleted {
        /// The module's filter handle.
        filter: usize,
        /// The NBLs, in chain order.
        nbls: Vec<usize>,
    },
    /// `NdisFIndicateReceiveNetBufferLists`: NBLs indicated to the protocol.
    Indicated {
        /// The module's filter handle.
        filter: usize,
        /// The NBLs, in chain order.
        nbls: Vec<usize>,
        /// `NDIS_RECEIVE_FLAGS_RESOURCES`: lent for the call only.
        resources: bool,
    },
    /// `NdisFReturnNetBufferLists`: receives returned to the miniport.
    Returned {
        /// The module's filter handle.
        filter: usize,
        /// The NBLs, in chain order.
        nbls: Vec<usize>,
    },
    /// `IofCompleteRequest`.
    IrpCompleted {
        /// The IRP.
        irp: usize,
        /// `IoStatus.Status`.
        status: NtStatus,
        /// `IoStatus.Information`.
        information: usize,
    },
}

/// How `NdisFOidRequest` answers (what the miniport below does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OidAnswer {
    /// Completes at once with this status.
    Complete(u32),
    /// Pends: the test completes it later through the driver's `OidRequestComplete`.
    Pend,
}

/// The control device the driver registered.
#[derive(Clone, Copy, Debug)]
pub struct ControlDevice {
    /// The device object (its address; the model's storage).
    pub device: *mut DeviceObject,
    /// The dispatch table the driver gave.
    pub dispatch: [Option<DriverDispatch>; IRP_MJ_COUNT],
}

struct Block {
    size: usize,
    tag: u32,
}

struct Device {
    storage: *mut u8,
    extension: *mut u8,
    extension_size: usize,
    dispatch: [Option<DriverDispatch>; IRP_MJ_COUNT],
}

struct State {
    pool: BTreeMap<usize, Block>,
    pool_failures: Vec<u32>,
    nbl_pools: BTreeMap<usize, u32>,
    clones: BTreeMap<usize, usize>,
    pending_originals: BTreeMap<usize, usize>,
    modules: BTreeMap<usize, usize>,
    characteristics: Option<FilterDriverCharacteristics>,
    /// The driver object the filter registered with (`NdisFRegisterFilterDriver`).
    driver_object: usize,
    device: Option<Device>,
    dpcs: BTreeMap<usize, (KDeferredRoutine, usize)>,
    queued_dpcs: Vec<(usize, usize, usize)>,
    cancelable: BTreeMap<usize, usize>,
    oid_answer: OidAnswer,
    pnp_status: u32,
    time_100ns: u64,
    events: Vec<Event>,
    violations: Vec<String>,
    log: Vec<String>,
    handles: Vec<usize>,
    registry: BTreeMap<String, BTreeMap<String, (u32, Vec<u8>)>>,
    key_handles: BTreeMap<usize, (String, AccessMask)>,
}

// SAFETY: the raw pointers in the state are addresses the model allocated (device storage) or
// handler pointers the driver registered; they are only used by the model's functions, under the
// state's mutex.
unsafe impl Send for State {}

impl State {
    const fn new() -> Self {
        Self {
            pool: BTreeMap::new(),
            pool_failures: Vec::new(),
            nbl_pools: BTreeMap::new(),
            clones: BTreeMap::new(),
            pending_originals: BTreeMap::new(),
            modules: BTreeMap::new(),
            characteristics: None,
            driver_object: 0,
            device: None,
            dpcs: BTreeMap::new(),
            queued_dpcs: Vec::new(),
            cancelable: BTreeMap::new(),
            oid_answer: OidAnswer::Complete(0),
            pnp_status: 0,
            time_100ns: 0,
            events: Vec::new(),
            violations: Vec::new(),
            log: Vec::new(),
            handles: Vec::new(),
            registry: BTreeMap::new(),
            key_handles: BTreeMap::new(),
        }
    }

    fn violation(&mut self, rule: impl Into<String>) {
        self.violations.push(rule.into());
    }

    /// A fresh, unique, non-null handle value (an address the model owns).
    fn new_handle(&mut self) -> *mut c_void {
        let handle = Box::into_raw(Box::new(0u64)).cast::<c_void>();
        self.handles.push(handle.expose_provenance());
        handle
    }

    fn require_passive(&mut self, function: &str) {
        let irql = irql();
        if irql != PASSIVE_LEVEL {
            self.violation(format!("{function} called at IRQL {irql}, needs PASSIVE_LEVEL"));
        }
    }
}

static STATE: Mutex<State> = Mutex::new(State::new());
/// The IRQL of the model's processor. Every spin lock call reads and writes it, so it is kept
/// out of the state's mutex: a spin lock pair is then two plain loads and stores, and takes the
/// mutex only to report a broken rule.
static IRQL: AtomicU8 = AtomicU8::new(PASSIVE_LEVEL);
static RUNS: Mutex<()> = Mutex::new(());

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One driver's run against the model: holds the lock that serialises runs in a test process.
/// The state is reset when it begins.
pub struct Run {
    _serialised: MutexGuard<'static, ()>,
}

/// Begins a run: waits for any other run of this process to end, then resets the model.
pub fn begin() -> Run {
    let serialised = RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    release_handles();
    buffers::reset();
    timers::reset();
    io_manager::reset();
    low_resources::reset();
    pool::reset();
    set_status_sink(None);
    set_passed_on_sink(None);
    take_send_flags();
    *state() = State::new();
    set_irql(PASSIVE_LEVEL);
    Run { _serialised: serialised }
}

impl Drop for Run {
    fn drop(&mut self) {
        if std::thread::panicking() {
            low_resources::tear_down_after_panic();
        }
        low_resources::end_run();
        release_handles();
        buffers::reset();
    }
}

/// Frees the handle values the model handed out.
fn release_handles() {
    let mut state = state();
    for handle in state.handles.drain(..) {
        // SAFETY: every handle is a `Box<u64>` the model leaked in `new_handle`, freed once here
        // (drained).
        drop(unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut::<u64>(handle)) });
    }
}

/// The characteristics the driver registered (`NdisFRegisterFilterDriver`), while registered.
pub fn characteristics() -> Option<FilterDriverCharacteristics> {
    state().characteristics
}

/// The driver object the filter driver registered with, while registered (null otherwise).
pub fn driver_object() -> *mut DriverObject {
    let state = state();
    let address = if state.characteristics.is_some() { state.driver_object } else { 0 };
    std::ptr::with_exposed_provenance_mut(address)
}

/// The filter module context the driver gave `NdisFSetAttributes` for `filter`.
pub fn module_context(filter: FilterModuleHandle) -> Option<ContextHandle> {
    state().modules.get(&filter.as_raw().addr()).map(|&context| ContextHandle::from_raw(std::ptr::with_exposed_provenance_mut(context)))
}

/// A new filter module handle for an attach (what NDIS passes `FilterAttach`).
pub fn new_filter_module_handle() -> FilterModuleHandle {
    FilterModuleHandle::from_raw(state().new_handle())
}

/// The control device the driver registered, while registered.
pub fn control_device() -> Option<ControlDevice> {
    state().device.as_ref().map(|device| ControlDevice { device: device.storage.cast(), dispatch: device.dispatch })
}

/// How `NdisFOidRequest` answers from now on.
pub fn set_oid_answer(answer: OidAnswer) {
    state().oid_answer = answer;
}

/// The status `NdisFNetPnPEvent` returns from now on.
pub fn set_pnp_status(status: u32) {
    state().pnp_status = status;
}

/// Fails the next `ExAllocatePool2` of `tag` (Driver Verifier's low-resources simulation, aimed).
pub fn fail_next_allocation(tag: u32) {
    state().pool_failures.push(tag);
}

/// The IRQL the model's current processor runs at.
pub fn irql() -> Kirql {
    IRQL.load(Ordering::Relaxed)
}

/// Sets the IRQL the next calls into the driver run at (as NDIS calls a handler at `DISPATCH_LEVEL`).
pub fn set_irql(irql: Kirql) {
    IRQL.store(irql, Ordering::Relaxed);
}

/// Takes the events recorded so far.
pub fn take_events() -> Vec<Event> {
    std::mem::take(&mut state().events)
}

/// The rules broken so far.
pub fn violations() -> Vec<String> {
    state().violations.clone()
}

/// The debug output so far (`DbgPrintEx`).
pub fn log() -> Vec<String> {
    state().log.clone()
}

/// Pool blocks allocated and not freed, as `(tag, bytes)`.
pub fn pool_outstanding() -> Vec<(u32, usize)> {
    state().pool.values().map(|block| (block.tag, block.size)).collect()
}

/// Runs the DPCs queued so far (the model's processor drops below `DISPATCH_LEVEL`).
pub fn run_dpcs() {
    loop {
        let next = {
            let mut state = state();
            if state.queued_dpcs.is_empty() {
                return;
            }
            let (dpc, argument1, argument2) = state.queued_dpcs.remove(0);
            state.dpcs.get(&dpc).map(|&(routine, context)| (routine, dpc, context, argument1, argument2))
        };
        if let Some((routine, dpc, context, argument1, argument2)) = next {
            let previous = irql();
            set_irql(DISPATCH_LEVEL);
            // SAFETY: the routine and context the driver gave `KeInitializeDpc` for this DPC,
            // called at DISPATCH_LEVEL as the kernel calls a DPC.
            unsafe {
                invoke::call(
                    routine,
                    (
                        std::ptr::with_exposed_provenance_mut(dpc),
                        std::ptr::with_exposed_provenance_mut(context),
                        std::ptr::with_exposed_provenance_mut(argument1),
                        std::ptr::with_exposed_provenance_mut(argument2),
                    ),
                )
            };
            set_irql(previous);
        }
    }
}

/// Ends a run's checks: everything NDIS would find at unload. Returns every rule broken, the
/// ones recorded during the run and what is left over (pool blocks, NBL pools, OID clones, a
/// registration, a device).
pub fn finish() -> Vec<String> {
    let state = state();
    let mut found = state.violations.clone();
    for block in state.pool.values() {
        found.push(format!("pool block of {} bytes, tag {:?}, not freed", block.size, tag_text(block.tag)));
    }
    if !state.nbl_pools.is_empty() {
        found.push(format!("{} NBL pools not freed", state.nbl_pools.len()));
    }
    if !state.clones.is_empty() {
        found.push(format!("{} OID clones not freed", state.clones.len()));
    }
    if !state.pending_originals.is_empty() {
        found.push(format!("{} OID requests never completed", state.pending_originals.len()));
    }
    if state.characteristics.is_some() {
        found.push("the filter driver is still registered".into());
    }
    if state.device.is_some() {
        found.push("the control device is still registered".into());
    }
    if !state.cancelable.is_empty() {
        found.push(format!("{} IRPs still queued", state.cancelable.len()));
    }
    if !state.queued_dpcs.is_empty() {
        found.push(format!("{} DPCs queued and never run", state.queued_dpcs.len()));
    }
    for (path, _) in state.key_handles.values() {
        found.push(format!("a handle to registry key {path} not closed"));
    }
    drop(state);
    found.extend(buffers::leftovers());
    found.extend(timers::leftovers());
    found.extend(io_manager::leftovers());
    found
}

fn tag_text(tag: u32) -> String {
    String::from_utf8_lossy(&tag.to_le_bytes()).into_owned()
}

fn not_modelled(function: &str) -> ! {
    panic!("kernel model: the driver called {function}, which the model does not know")
}

// ---- ndis.sys ----

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFRegisterFilterDriver(
    driver_object: *mut DriverObject,
    _context: ContextHandle,
    characteristics: *mut FilterDriverCharacteristics,
    handle: *mut FilterDriverHandle,
) -> RawNdisStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("NdisFRegisterFilterDriver");
    if state.characteristics.is_some() {
        state.violation("NdisFRegisterFilterDriver twice");
        return 0xC000_0001;
    }
    // SAFETY: the driver passes valid characteristics for the call (the import's contract).
    let registered = unsafe { characteristics.read() };
    if registered.header != FilterDriverCharacteristics::HEADER {
        state.violation("NdisFRegisterFilterDriver: characteristics header is not revision 2 of its size");
    }
    state.characteristics = Some(registered);
    state.driver_object = driver_object.expose_provenance();
    let new = FilterDriverHandle::from_raw(state.new_handle());
    // SAFETY: the driver's out parameter, valid for a write.
    unsafe { handle.write(new) };
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFDeregisterFilterDriver(_handle: FilterDriverHandle) {
    let _kernel = crate::invoke::kernel_code();
    let (characteristics, modules) = {
        let mut state = state();
        state.require_passive("NdisFDeregisterFilterDriver");
        (state.characteristics, state.modules.clone())
    };
    let Some(characteristics) = characteristics else {
        state().violation("NdisFDeregisterFilterDriver without a registration");
        return;
    };
    // NDIS pauses and detaches every module first.
    for (filter, context) in modules {
        let context = ContextHandle::from_raw(std::ptr::with_exposed_provenance_mut(context));
        if let Some(pause) = characteristics.pause {
            let mut parameters = std::mem::MaybeUninit::zeroed();
            // SAFETY: the driver's pause handler for a module it attached, at PASSIVE_LEVEL.
            let status = unsafe { invoke::call(pause, (context, parameters.as_mut_ptr())) };
            if status as u32 == STATUS_PENDING {
                let completed = state().events.contains(&Event::PauseComplete { filter });
                if !completed {
                    state().violation("a pause pended at deregistration and never completed");
                }
            }
        }
        if let Some(detach) = characteristics.detach {
            // SAFETY: the driver's detach handler for a paused module it attached.
            unsafe { invoke::call(detach, (context,)) };
        }
        state().modules.remove(&filter);
    }
    state().characteristics = None;
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFSetAttributes(
    filter: FilterModuleHandle,
    context: ContextHandle,
    _attributes: *mut FilterAttributes,
) -> RawNdisStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("NdisFSetAttributes");
    if context.as_raw().is_null() {
        state.violation("NdisFSetAttributes with a null module context");
    }
    state.modules.insert(filter.as_raw().addr(), context.as_raw().expose_provenance());
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisAllocateNetBufferListPool(
    _handle: NdisHandle,
    parameters: *mut NetBufferListPoolParameters,
) -> NblPoolHandle {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    // SAFETY: the driver passes valid parameters for the call.
    let tag = unsafe { (*parameters).pool_tag };
    if state.pool_failures.first() == Some(&tag) {
        state.pool_failures.remove(0);
        return NblPoolHandle::NULL;
    }
    if low_resources::fail_allocation(low_resources::AllocationKind::NblPool) {
        return NblPoolHandle::NULL;
    }
    let pool = state.new_handle();
    state.nbl_pools.insert(pool.addr(), tag);
    NblPoolHandle::from_raw(pool)
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFreeNetBufferListPool(pool: NblPoolHandle) {
    let _kernel = crate::invoke::kernel_code();
    let outstanding = buffers::allocated_from(pool.as_raw().addr());
    let mut state = state();
    if state.nbl_pools.remove(&pool.as_raw().addr()).is_none() {
        state.violation("NdisFreeNetBufferListPool of a pool never allocated or already freed");
    }
    if outstanding > 0 {
        state.violation(format!("NdisFreeNetBufferListPool with {outstanding} of its NBLs not freed"));
    }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisAllocateCloneOidRequest(
    _filter: FilterModuleHandle,
    request: *mut NdisOidRequest,
    tag: u32,
    clone: *mut *mut NdisOidRequest,
) -> RawNdisStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    if state.pool_failures.first() == Some(&tag) {
        state.pool_failures.remove(0);
        return 0xC000_009A;
    }
    if low_resources::fail_allocation(low_resources::AllocationKind::OidClone) {
        return 0xC000_009A;
    }
    // SAFETY: the driver passes NDIS's valid request; the clone is a byte copy, as NDIS makes it.
    let copy = Box::into_raw(Box::new(unsafe { request.read() }));
    state.clones.insert(copy.expose_provenance(), request.expose_provenance());
    // SAFETY: the driver's out parameter, valid for a write.
    unsafe { clone.write(copy) };
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFreeCloneOidRequest(_filter: FilterModuleHandle, clone: *mut NdisOidRequest) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    if state.clones.remove(&clone.addr()).is_none() {
        state.violation("NdisFreeCloneOidRequest of a request that is not a live clone");
        return;
    }
    // SAFETY: a clone `NdisAllocateCloneOidRequest` boxed, freed once (removed above).
    drop(unsafe { Box::from_raw(clone) });
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFOidRequest(filter: FilterModuleHandle, request: *mut NdisOidRequest) -> RawNdisStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    if !state.clones.contains_key(&request.addr()) {
        state.violation("NdisFOidRequest of a request that is not a clone the filter allocated");
    }
    // SAFETY: the driver passes a valid request.
    let request_id = unsafe { (*request).request_id }.addr();
    state.events.push(Event::OidDown { filter: filter.as_raw().addr(), request: request.addr(), request_id });
    match state.oid_answer {
        OidAnswer::Complete(status) => status,
        OidAnswer::Pend => {
            if let Some(&original) = state.clones.get(&request.addr()) {
                state.pending_originals.insert(original, request.addr());
            }
            STATUS_PENDING
        }
    }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFOidRequestComplete(filter: FilterModuleHandle, request: *mut NdisOidRequest, status: RawNdisStatus) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    if state.pending_originals.remove(&request.addr()).is_none() {
        state.violation("NdisFOidRequestComplete of a request that did not pend, or completed twice");
    }
    state.events.push(Event::OidCompleted { filter: filter.as_raw().addr(), request: request.addr(), status });
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFCancelOidRequest(filter: FilterModuleHandle, request_id: *mut c_void) {
    let _kernel = crate::invoke::kernel_code();
    state().events.push(Event::OidCancelled { filter: filter.as_raw().addr(), request_id: request_id.addr() });
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFCancelSendNetBufferLists(filter: FilterModuleHandle, cancel_id: *mut c_void) {
    let _kernel = crate::invoke::kernel_code();
    state().events.push(Event::SendsCancelled { filter: filter.as_raw().addr(), cancel_id: cancel_id.addr() });
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFNetPnPEvent(filter: FilterModuleHandle, event: *mut NetPnpEventNotification) -> RawNdisStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("NdisFNetPnPEvent");
    state.events.push(Event::NetPnpEvent { filter: filter.as_raw().addr(), event: event.addr() });
    state.pnp_status
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFDevicePnPEventNotify(filter: FilterModuleHandle, event: *mut NetDevicePnpEvent) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("NdisFDevicePnPEventNotify");
    state.events.push(Event::DevicePnpEvent { filter: filter.as_raw().addr(), event: event.addr() });
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFIndicateStatus(filter: FilterModuleHandle, indication: *mut StatusIndication) {
    let _kernel = crate::invoke::kernel_code();
    // SAFETY: the driver passes the valid indication it received.
    let code = unsafe { (*indication).status_code };
    state().events.push(Event::Status { filter: filter.as_raw().addr(), code });
    upcalls::status_indicated(filter, indication);
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFPauseComplete(filter: FilterModuleHandle) {
    let _kernel = crate::invoke::kernel_code();
    state().events.push(Event::PauseComplete { filter: filter.as_raw().addr() });
    upcalls::passed_on();
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFRestartComplete(_filter: FilterModuleHandle, _status: RawNdisStatus) {
    let _kernel = crate::invoke::kernel_code();
    not_modelled("NdisFRestartComplete")
}

/// The NBLs of a null-terminated chain, in order; a violation for an empty chain or one longer
/// than any NDIS builds (a loop).
///
/// # Safety
/// `head` is null or a valid, null-terminated NBL chain.
unsafe fn chain(state: &mut State, function: &str, head: *mut NetBufferList) -> Vec<usize> {
    let mut nbls = Vec::new();
    let mut next = head;
    while !next.is_null() {
        if nbls.len() == 1 << 16 {
            state.violation(format!("{function}: an NBL chain that does not end"));
            break;
        }
        nbls.push(next.addr());
        // SAFETY: a member of the caller's valid chain.
        next = unsafe { (*next).next };
    }
    if nbls.is_empty() {
        state.violation(format!("{function} with an empty chain"));
    }
    nbls
}

/// A data-path call must run at `<= DISPATCH_LEVEL`, and its `*_DISPATCH_LEVEL` flag must tell
/// the truth.
fn check_dispatch_flag(state: &mut State, function: &str, at_dispatch: bool) {
    let irql = irql();
    if irql > DISPATCH_LEVEL {
        state.violation(format!("{function} at IRQL {irql}"));
    } else if at_dispatch != (irql == DISPATCH_LEVEL) {
        state.violation(format!("{function}: the DISPATCH_LEVEL flag says {at_dispatch} at IRQL {irql}"));
    }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFSendNetBufferLists(filter: FilterModuleHandle, nbls: *mut NetBufferList, _port: PortNumber, flags: SendFlags) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    check_dispatch_flag(&mut state, "NdisFSendNetBufferLists", flags.at_dispatch());
    // SAFETY: the driver passes a valid chain it gives up.
    let nbls = unsafe { chain(&mut state, "NdisFSendNetBufferLists", nbls) };
    state.events.push(Event::SentDown { filter: filter.as_raw().addr(), nbls });
    drop(state);
    upcalls::sent_with(flags.0);
    upcalls::passed_on();
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFSendNetBufferListsComplete(filter: FilterModuleHandle, nbls: *mut NetBufferList, flags: SendCompleteFlags) {
    let _kernel = crate::invoke::kernel_code();
    let mut next = nbls;
    while !next.is_null() {
        // SAFETY: the driver passes a valid chain it gives back (walked again, checked, below).
        let nbl = unsafe { &*next };
        low_resources::driver_completed(nbl.status, "a send completed (NdisFSendNetBufferListsComplete)");
        next = nbl.next;
    }
    let mut state = state();
    check_dispatch_flag(&mut state, "NdisFSendNetBufferListsComplete", flags.at_dispatch());
    // SAFETY: the driver passes a valid chain it gives back.
    let nbls = unsafe { chain(&mut state, "NdisFSendNetBufferListsComplete", nbls) };
    state.events.push(Event::SendsCompleted { filter: filter.as_raw().addr(), nbls });
    drop(state);
    upcalls::passed_on();
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFIndicateReceiveNetBufferLists(
    filter: FilterModuleHandle,
    nbls: *mut NetBufferList,
    _port: PortNumber,
    count: u32,
    flags: ReceiveFlags,
) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    check_dispatch_flag(&mut state, "NdisFIndicateReceiveNetBufferLists", flags.at_dispatch());
    // SAFETY: the driver passes a valid chain.
    let nbls = unsafe { chain(&mut state, "NdisFIndicateReceiveNetBufferLists", nbls) };
    if usize::try_from(count).ok() != Some(nbls.len()) {
        let len = nbls.len();
        state.violation(format!("NdisFIndicateReceiveNetBufferLists: NumberOfNetBufferLists {count} for a chain of {len}"));
    }
    state.events.push(Event::Indicated { filter: filter.as_raw().addr(), nbls, resources: flags.contains(ReceiveFlags::RESOURCES) });
    drop(state);
    upcalls::passed_on();
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFReturnNetBufferLists(filter: FilterModuleHandle, nbls: *mut NetBufferList, flags: ReturnFlags) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    check_dispatch_flag(&mut state, "NdisFReturnNetBufferLists", flags.at_dispatch());
    // SAFETY: the driver passes a valid chain it gives back.
    let nbls = unsafe { chain(&mut state, "NdisFReturnNetBufferLists", nbls) };
    state.events.push(Event::Returned { filter: filter.as_raw().addr(), nbls });
    drop(state);
    upcalls::passed_on();
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisRegisterDeviceEx(
    _filter_driver: FilterDriverHandle,
    attributes: *mut DeviceObjectAttributes,
    device: *mut *mut DeviceObject,
    handle: *mut DeviceHandle,
) -> RawNdisStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("NdisRegisterDeviceEx");
    if state.device.is_some() {
        state.violation("NdisRegisterDeviceEx twice");
        return 0xC000_0001;
    }
    // SAFETY: the driver passes valid attributes for the call.
    let attributes = unsafe { &*attributes };
    let mut dispatch = [None; IRP_MJ_COUNT];
    // SAFETY: `MajorFunctions` points to IRP_MJ_COUNT entries (the attribute's contract).
    let table = unsafe { std::slice::from_raw_parts(attributes.major_functions, IRP_MJ_COUNT) };
    dispatch.copy_from_slice(table);
    let extension_size = attributes.extension_size as usize;
    let layout = std::alloc::Layout::from_size_align(64 + extension_size, POOL_ALIGNMENT).expect("device layout");
    // SAFETY: a non-zero size.
    let storage = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!storage.is_null(), "kernel model: out of memory for a device");
    let extension = storage.wrapping_add(64);
    state.device = Some(Device { storage, extension, extension_size, dispatch });
    // SAFETY: the attributes' device name is null or a valid UNICODE_STRING (the call's contract).
    io_manager::device_named(unsafe { unicode_text(attributes.device_name) });
    let new = DeviceHandle::from_raw(state.new_handle());
    // SAFETY: the driver's out parameters, valid for writes.
    unsafe { device.write(storage.cast()) };
    // SAFETY: as above.
    unsafe { handle.write(new) };
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisDeregisterDeviceEx(_handle: DeviceHandle) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("NdisDeregisterDeviceEx");
    let Some(device) = state.device.take() else {
        state.violation("NdisDeregisterDeviceEx without a device");
        return;
    };
    io_manager::device_named(None);
    let layout = std::alloc::Layout::from_size_align(64 + device.extension_size, POOL_ALIGNMENT).expect("device layout");
    // SAFETY: allocated in `NdisRegisterDeviceEx` with this layout, freed once (taken above).
    unsafe { std::alloc::dealloc(device.storage, layout) };
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisGetDeviceReservedExtension(device: *mut DeviceObject) -> *mut c_void {
    let _kernel = crate::invoke::kernel_code();
    let state = state();
    match &state.device {
        Some(registered) if registered.storage.cast::<DeviceObject>() == device => registered.extension.cast(),
        _ => std::ptr::null_mut(),
    }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisAllocateMemoryWithTagPriority(_handle: NdisHandle, _length: u32, _tag: u32, _priority: ExPoolPriority) -> *mut c_void {
    let _kernel = crate::invoke::kernel_code();
    not_modelled("NdisAllocateMemoryWithTagPriority")
}

#[unsafe(no_mangle)]
unsafe extern "system" fn NdisFreeMemory(_address: *mut c_void, _length: u32, _flags: u32) {
    let _kernel = crate::invoke::kernel_code();
    not_modelled("NdisFreeMemory")
}

// ---- ntoskrnl.exe ----

#[unsafe(no_mangle)]
unsafe extern "system" fn ExAllocatePool2(_flags: PoolFlags, size: usize, tag: u32) -> *mut c_void {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    if state.pool_failures.first() == Some(&tag) {
        state.pool_failures.remove(0);
        return std::ptr::null_mut();
    }
    if low_resources::fail_pool_allocation(tag) {
        return std::ptr::null_mut();
    }
    let Ok(layout) = std::alloc::Layout::from_size_align(size.max(1), POOL_ALIGNMENT) else { return std::ptr::null_mut() };
    let block = invoke::pool_allocate(layout);
    if !block.is_null() {
        state.pool.insert(block.expose_provenance(), Block { size: size.max(1), tag });
    }
    block.cast()
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ExFreePoolWithTag(block: *mut c_void, tag: u32) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    let Some(allocated) = state.pool.remove(&block.addr()) else {
        state.violation(format!("ExFreePoolWithTag of {block:p}: not a live pool block (double free?)"));
        return;
    };
    if allocated.tag != tag {
        let (freed, was) = (tag_text(tag), tag_text(allocated.tag));
        state.violation(format!("ExFreePoolWithTag with tag {freed:?} of a block allocated with {was:?}"));
    }
    let layout = std::alloc::Layout::from_size_align(allocated.size, POOL_ALIGNMENT).expect("pool layout");
    // SAFETY: allocated by `ExAllocatePool2` with this layout, freed once (removed above).
    unsafe { invoke::pool_free(block.cast(), layout) };
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeAcquireSpinLockRaiseToDpc(lock: *mut KSpinLock) -> Kirql {
    let _kernel = crate::invoke::kernel_code();
    // SAFETY: the driver passes a valid spin lock.
    let held = unsafe { lock.read() };
    if held != 0 {
        state().violation("KeAcquireSpinLockRaiseToDpc of a lock already held (a deadlock on one processor)");
    }
    let previous = irql();
    if previous > DISPATCH_LEVEL {
        state().violation("KeAcquireSpinLockRaiseToDpc above DISPATCH_LEVEL");
    }
    // SAFETY: as above.
    unsafe { lock.write(1) };
    set_irql(DISPATCH_LEVEL);
    previous
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeReleaseSpinLock(lock: *mut KSpinLock, new_irql: Kirql) {
    let _kernel = crate::invoke::kernel_code();
    // SAFETY: the driver passes a valid spin lock.
    if unsafe { lock.read() } == 0 {
        state().violation("KeReleaseSpinLock of a lock not held");
    }
    // SAFETY: as above.
    unsafe { lock.write(0) };
    set_irql(new_irql);
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeQueryInterruptTimePrecise(qpc: *mut u64) -> u64 {
    let _kernel = crate::invoke::kernel_code();
    let state = state();
    if !qpc.is_null() {
        // SAFETY: the driver's out parameter, valid for a write when not null.
        unsafe { qpc.write(state.time_100ns) };
    }
    state.time_100ns
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeQueryUnbiasedInterruptTime() -> u64 {
    let _kernel = crate::invoke::kernel_code();
    state().time_100ns
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> ! {
    let _kernel = crate::invoke::kernel_code();
    panic!("kernel model: KeBugCheckEx({code:#010x}, {p1:#x}, {p2:#x}, {p3:#x}, {p4:#x})")
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ExInitializeRundownProtection(rundown: *mut ExRundownRef) {
    let _kernel = crate::invoke::kernel_code();
    // SAFETY: the driver passes a valid rundown reference; its value is the kernel's to write.
    unsafe { rundown.cast::<usize>().write(0) };
}

/// The rundown's "wait in progress" bit, as the kernel keeps it; references count in twos.
const RUNDOWN_ACTIVE: usize = 1;

#[unsafe(no_mangle)]
unsafe extern "system" fn ExAcquireRundownProtection(rundown: *mut ExRundownRef) -> u8 {
    let _kernel = crate::invoke::kernel_code();
    let _state = state();
    let value = rundown.cast::<usize>();
    // SAFETY: a valid rundown reference (initialised by `ExInitializeRundownProtection`).
    let current = unsafe { value.read() };
    if current & RUNDOWN_ACTIVE != 0 {
        return 0;
    }
    // SAFETY: as above.
    unsafe { value.write(current + 2) };
    1
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ExReleaseRundownProtection(rundown: *mut ExRundownRef) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    let value = rundown.cast::<usize>();
    // SAFETY: a valid rundown reference.
    let current = unsafe { value.read() };
    if current < 2 {
        state.violation("ExReleaseRundownProtection without a reference");
        return;
    }
    // SAFETY: as above.
    unsafe { value.write(current - 2) };
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ExWaitForRundownProtectionRelease(rundown: *mut ExRundownRef) {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("ExWaitForRundownProtectionRelease");
    let value = rundown.cast::<usize>();
    // SAFETY: a valid rundown reference.
    let current = unsafe { value.read() };
    if current >= 2 {
        state.violation("ExWaitForRundownProtectionRelease with references held: it would never return");
    }
    // SAFETY: as above.
    unsafe { value.write(current | RUNDOWN_ACTIVE) };
}

/// The model runs on one processor.
#[unsafe(no_mangle)]
unsafe extern "system" fn KeGetCurrentProcessorNumberEx(processor_number: *mut c_void) -> u32 {
    let _kernel = crate::invoke::kernel_code();
    if !processor_number.is_null() {
        // SAFETY: a `PROCESSOR_NUMBER` (group u16, number u8, reserved u8) when not null.
        unsafe { processor_number.cast::<u32>().write(0) };
    }
    0
}

/// The model runs on one processor.
#[unsafe(no_mangle)]
unsafe extern "system" fn KeQueryActiveProcessorCountEx(_group: u16) -> u32 {
    let _kernel = crate::invoke::kernel_code();
    1
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeDelayExecutionThread(_mode: KProcessorMode, _alertable: u8, interval: *mut i64) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    {
        let mut state = state();
        state.require_passive("KeDelayExecutionThread");
        // SAFETY: the driver passes a valid interval.
        let relative = unsafe { interval.read() };
        state.time_100ns += relative.unsigned_abs();
    }
    // Another processor's DPCs run while this thread waits.
    run_dpcs();
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IofCompleteRequest(irp: *mut Irp, _boost: i8) {
    let _kernel = crate::invoke::kernel_code();
    // SAFETY: the driver passes an IRP it owns, laid out as `IrpLayout`, with its `IoStatus` set.
    let io_status = unsafe { &(*irp.cast::<wanlayer_ndis::io::IrpLayout>()).io_status };
    let (status, information) = (io_status.status, io_status.information);
    state().events.push(Event::IrpCompleted { irp: irp.addr(), status, information });
    io_manager::completed(irp, status, information);
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeInitializeDpc(dpc: *mut KDpc, routine: KDeferredRoutine, context: *mut c_void) {
    let _kernel = crate::invoke::kernel_code();
    state().dpcs.insert(dpc.expose_provenance(), (routine, context.expose_provenance()));
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeInsertQueueDpc(dpc: *mut KDpc, argument1: *mut c_void, argument2: *mut c_void) -> u8 {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    let key = dpc.addr();
    if !state.dpcs.contains_key(&key) {
        state.violation("KeInsertQueueDpc of a DPC never initialised");
        return 0;
    }
    if state.queued_dpcs.iter().any(|&(queued, _, _)| queued == key) {
        return 0;
    }
    state.queued_dpcs.push((key, argument1.expose_provenance(), argument2.expose_provenance()));
    1
}

#[unsafe(no_mangle)]
unsafe extern "system" fn KeFlushQueuedDpcs() {
    let _kernel = crate::invoke::kernel_code();
    state().require_passive("KeFlushQueuedDpcs");
    run_dpcs();
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IoCsqInitializeEx(
    csq: *mut IoCsq,
    insert: IoCsqInsertIrpExFn,
    remove: IoCsqRemoveIrpFn,
    peek: IoCsqPeekNextIrpFn,
    acquire: IoCsqAcquireLockFn,
    release: IoCsqReleaseLockFn,
    complete_canceled: IoCsqCompleteCanceledIrpFn,
) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    let layout = IoCsqLayout {
        csq_type: IO_TYPE_CSQ_EX,
        csq_insert_irp: insert as *mut c_void,
        csq_remove_irp: Some(remove),
        csq_peek_next_irp: Some(peek),
        csq_acquire_lock: Some(acquire),
        csq_release_lock: Some(release),
        csq_complete_canceled_irp: Some(complete_canceled),
        reserve_pointer: std::ptr::null_mut(),
    };
    // SAFETY: the driver passes its queue's storage, an `IO_CSQ` (laid out as `IoCsqLayout`),
    // which the kernel fills in.
    unsafe { csq.cast::<IoCsqLayout>().write(layout) };
    0
}

/// The callbacks of a queue `IoCsqInitializeEx` filled in.
struct Queue {
    insert: IoCsqInsertIrpExFn,
    remove: IoCsqRemoveIrpFn,
    peek: IoCsqPeekNextIrpFn,
    acquire: IoCsqAcquireLockFn,
    release: IoCsqReleaseLockFn,
    complete_canceled: IoCsqCompleteCanceledIrpFn,
}

/// # Safety
/// `csq` was filled in by `IoCsqInitializeEx`.
unsafe fn queue(csq: *mut IoCsq) -> Queue {
    // SAFETY: the caller's promise: an initialised `IO_CSQ`.
    let layout = unsafe { &*csq.cast::<IoCsqLayout>() };
    let (Some(remove), Some(peek), Some(acquire), Some(release), Some(complete_canceled)) = (
        layout.csq_remove_irp,
        layout.csq_peek_next_irp,
        layout.csq_acquire_lock,
        layout.csq_release_lock,
        layout.csq_complete_canceled_irp,
    ) else {
        panic!("kernel model: a cancel-safe queue used before IoCsqInitializeEx")
    };
    assert_eq!(layout.csq_type, IO_TYPE_CSQ_EX, "kernel model: only IoCsqInitializeEx queues are modelled");
    // SAFETY: `IoCsqInitializeEx` stored an `IoCsqInsertIrpExFn` here (IO_TYPE_CSQ_EX).
    let insert = unsafe { std::mem::transmute::<*mut c_void, IoCsqInsertIrpExFn>(layout.csq_insert_irp) };
    Queue { insert, remove, peek, acquire, release, complete_canceled }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IoCsqInsertIrpEx(csq: *mut IoCsq, irp: *mut Irp, _context: *mut IoCsqIrpContext, insert_context: *mut c_void) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    // SAFETY: the driver's initialised queue.
    let queue = unsafe { queue(csq) };
    let mut irql = 0;
    // SAFETY: the driver's callbacks, called as the kernel calls them: lock, insert, unlock.
    unsafe { invoke::call(queue.acquire, (csq, &raw mut irql)) };
    // SAFETY: as above, with the lock held.
    let status = unsafe { invoke::call(queue.insert, (csq, irp, insert_context)) };
    if status >= 0 {
        state().cancelable.insert(irp.expose_provenance(), csq.expose_provenance());
    }
    // SAFETY: as above.
    unsafe { invoke::call(queue.release, (csq, irql)) };
    status
}

#[unsafe(no_mangle)]
unsafe extern "system" fn IoCsqRemoveNextIrp(csq: *mut IoCsq, peek_context: *mut c_void) -> *mut Irp {
    let _kernel = crate::invoke::kernel_code();
    // SAFETY: the driver's initialised queue.
    let queue = unsafe { queue(csq) };
    let mut irql = 0;
    // SAFETY: the driver's callbacks, called as the kernel calls them: lock, peek, remove, unlock.
    unsafe { invoke::call(queue.acquire, (csq, &raw mut irql)) };
    // SAFETY: as above, with the lock held.
    let irp = unsafe { invoke::call(queue.peek, (csq, std::ptr::null_mut(), peek_context)) };
    if !irp.is_null() {
        // SAFETY: as above: an IRP the peek found in the queue.
        unsafe { invoke::call(queue.remove, (csq, irp)) };
        state().cancelable.remove(&irp.addr());
    }
    // SAFETY: as above.
    unsafe { invoke::call(queue.release, (csq, irql)) };
    irp
}

/// Cancels `irp` as the I/O manager does when its thread or handle goes: if a cancel-safe queue
/// holds it, the queue removes it and completes it through the driver's `CsqCompleteCanceledIrp`.
/// Returns whether a queue held it.
///
/// # Safety
/// `irp` is an IRP the test built and sent to the driver, still allocated.
pub unsafe fn cancel_irp(irp: *mut Irp) -> bool {
    let Some(csq) = state().cancelable.remove(&irp.addr()) else { return false };
    let csq = std::ptr::with_exposed_provenance_mut::<IoCsq>(csq);
    // SAFETY: the queue the IRP was inserted into, initialised by the driver.
    let queue = unsafe { queue(csq) };
    let mut irql = 0;
    // SAFETY: the driver's callbacks, called as the kernel's cancel routine calls them.
    unsafe { invoke::call(queue.acquire, (csq, &raw mut irql)) };
    // SAFETY: as above, with the lock held; the IRP is in the queue.
    unsafe { invoke::call(queue.remove, (csq, irp)) };
    // SAFETY: as above.
    unsafe { invoke::call(queue.release, (csq, irql)) };
    // SAFETY: as above, without the lock: the cancelled IRP goes to the driver to complete.
    unsafe { invoke::call(queue.complete_canceled, (csq, irp)) };
    true
}

/// Cancels every IRP still in a driver's cancel-safe queue, as the I/O manager does when their
/// threads end; returns how many.
pub fn cancel_queued_irps() -> usize {
    let queued: Vec<usize> = state().cancelable.keys().copied().collect();
    let mut cancelled = 0;
    for irp in queued {
        // SAFETY: an IRP the driver inserted into its queue and has not removed: alive until it
        // completes it (the cancel routine's contract).
        if unsafe { cancel_irp(std::ptr::with_exposed_provenance_mut(irp)) } {
            cancelled += 1;
        }
    }
    cancelled
}

/// IRPs in cancel-safe queues now.
pub fn queued_irps() -> usize {
    state().cancelable.len()
}

/// `REG_CREATED_NEW_KEY`: `ZwCreateKey`'s disposition for a key it created.
pub const REG_CREATED_NEW_KEY: u32 = 1;
/// `REG_OPENED_EXISTING_KEY`: `ZwCreateKey`'s disposition for a key that existed.
pub const REG_OPENED_EXISTING_KEY: u32 = 2;
const STATUS_ACCESS_DENIED: NtStatus = 0xC000_0022_u32 as NtStatus;
const STATUS_INVALID_HANDLE: NtStatus = 0xC000_0008_u32 as NtStatus;

/// A registry key or value name as the registry compares it: case-insensitively.
fn registry_name(name: &str) -> String {
    name.to_uppercase()
}

/// The parent of a full key path (`\REGISTRY\MACHINE\X` → `\REGISTRY\MACHINE`); `None` at the root.
fn parent_key(path: &str) -> Option<&str> {
    path.rfind('\\').filter(|&at| at > 0).map(|at| &path[..at])
}

/// The text of a `UNICODE_STRING` the driver passed.
///
/// # Safety
/// `name` is null or points at a valid `UNICODE_STRING`.
unsafe fn unicode_text(name: *const UnicodeString) -> Option<String> {
    // SAFETY: the caller's promise.
    let name = unsafe { name.as_ref() }?;
    if name.length == 0 {
        return Some(String::new());
    }
    if name.buffer.is_null() || name.length % 2 != 0 || name.length > name.maximum_length {
        return None;
    }
    // SAFETY: a valid UNICODE_STRING's buffer holds `Length` bytes.
    let units = unsafe { std::slice::from_raw_parts(name.buffer, usize::from(name.length / 2)) };
    Some(String::from_utf16_lossy(units))
}

/// The absolute key name of `ZwOpenKey` / `ZwCreateKey`'s attributes (a violation, and `None`, for
/// a relative name, a user-mode handle or a malformed name).
///
/// # Safety
/// `attributes` is null or points at a valid `OBJECT_ATTRIBUTES`.
unsafe fn key_name(state: &mut State, function: &str, attributes: *const ObjectAttributes) -> Option<String> {
    // SAFETY: the caller's promise.
    let Some(attributes) = (unsafe { attributes.as_ref() }) else {
        state.violation(format!("{function} with null object attributes"));
        return None;
    };
    if attributes.length as usize != std::mem::size_of::<ObjectAttributes>() || !attributes.root_directory.is_null() {
        state.violation(format!("{function}: object attributes of a wrong length or relative to a root directory"));
        return None;
    }
    if attributes.attributes & OBJ_KERNEL_HANDLE == 0 {
        state.violation(format!("{function} without OBJ_KERNEL_HANDLE: a handle in the current process"));
    }
    // SAFETY: the attributes' name is null or a valid UNICODE_STRING (the caller's promise).
    let Some(name) = (unsafe { unicode_text(attributes.object_name) }).filter(|name| name.starts_with('\\')) else {
        state.violation(format!("{function} with a missing, malformed or relative key name"));
        return None;
    };
    Some(name)
}

/// The key an open handle names, when it has `access`; the status to answer otherwise.
fn open_key(state: &mut State, function: &str, handle: Handle, access: AccessMask) -> Result<String, NtStatus> {
    match state.key_handles.get(&handle.addr()) {
        Some((path, granted)) if granted & access == access => Ok(path.clone()),
        Some(_) => Err(STATUS_ACCESS_DENIED),
        None => {
            state.violation(format!("{function} of {handle:p}: not an open key handle"));
            Err(STATUS_INVALID_HANDLE)
        }
    }
}

/// Creates the key at `path` and every key above it (the registry's own keys, and what an
/// installer writes, exist before the driver runs).
pub fn create_key(path: &str) {
    let mut state = state();
    let mut at = Some(path);
    while let Some(key) = at {
        state.registry.entry(registry_name(key)).or_default();
        at = parent_key(key);
    }
}

/// Writes value `name` of key `key` (created with its parents if absent) before the driver reads
/// it: a saved rule set, a corrupt one.
pub fn set_registry_value(key: &str, name: &str, value_type: u32, data: &[u8]) {
    create_key(key);
    let mut state = state();
    let values = state.registry.entry(registry_name(key)).or_default();
    values.insert(registry_name(name), (value_type, data.to_vec()));
}

/// Value `name` of key `key` as (type, bytes); `None` when the key or the value does not exist.
pub fn registry_value(key: &str, name: &str) -> Option<(u32, Vec<u8>)> {
    state().registry.get(&registry_name(key))?.get(&registry_name(name)).cloned()
}

/// Key handles open now.
pub fn open_key_handles() -> usize {
    state().key_handles.len()
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ZwOpenKey(key: *mut Handle, access: AccessMask, attributes: *const ObjectAttributes) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("ZwOpenKey");
    // SAFETY: the driver passes valid object attributes (the import's contract).
    let Some(name) = (unsafe { key_name(&mut state, "ZwOpenKey", attributes) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let path = registry_name(&name);
    if !state.registry.contains_key(&path) {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    let handle = state.new_handle();
    state.key_handles.insert(handle.addr(), (path, access));
    // SAFETY: `key` is writable (the import's contract).
    unsafe { key.write(handle) };
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ZwCreateKey(
    key: *mut Handle,
    access: AccessMask,
    attributes: *const ObjectAttributes,
    title_index: u32,
    class: *const UnicodeString,
    options: u32,
    disposition: *mut u32,
) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("ZwCreateKey");
    if title_index != 0 || !class.is_null() || options != REG_OPTION_NON_VOLATILE {
        drop(state);
        not_modelled("ZwCreateKey with a title index, a class or options other than REG_OPTION_NON_VOLATILE");
    }
    // SAFETY: the driver passes valid object attributes (the import's contract).
    let Some(name) = (unsafe { key_name(&mut state, "ZwCreateKey", attributes) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let path = registry_name(&name);
    let created = if state.registry.contains_key(&path) {
        REG_OPENED_EXISTING_KEY
    } else {
        // As the registry does, only the last component is created: its parent must exist.
        if !parent_key(&path).is_some_and(|parent| state.registry.contains_key(parent)) {
            return STATUS_OBJECT_NAME_NOT_FOUND;
        }
        state.registry.insert(path.clone(), BTreeMap::new());
        REG_CREATED_NEW_KEY
    };
    let handle = state.new_handle();
    state.key_handles.insert(handle.addr(), (path, access));
    // SAFETY: `key` is writable (the import's contract).
    unsafe { key.write(handle) };
    // SAFETY: `disposition` is null or writable (the import's contract).
    if let Some(disposition) = unsafe { disposition.as_mut() } {
        *disposition = created;
    }
    0
}

/// `ZwQueryValueKey(KeyValuePartialInformation)` as the configuration manager answers it: a
/// buffer shorter than the fixed part gets `STATUS_BUFFER_TOO_SMALL` and nothing written; one
/// that holds the fixed part but not all the data gets the fixed part, as much data as fits and
/// `STATUS_BUFFER_OVERFLOW`; in every case `ResultLength` is the length the whole answer takes.
#[unsafe(no_mangle)]
unsafe extern "system" fn ZwQueryValueKey(
    key: Handle,
    name: *const UnicodeString,
    class: u32,
    information: *mut c_void,
    length: u32,
    result_length: *mut u32,
) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("ZwQueryValueKey");
    if class != KEY_VALUE_PARTIAL_INFORMATION_CLASS {
        drop(state);
        not_modelled("ZwQueryValueKey of an information class other than KeyValuePartialInformation");
    }
    let path = match open_key(&mut state, "ZwQueryValueKey", key, KEY_QUERY_VALUE) {
        Ok(path) => path,
        Err(status) => return status,
    };
    // SAFETY: the driver passes a valid UNICODE_STRING (the import's contract).
    let Some(name) = (unsafe { unicode_text(name) }) else {
        state.violation("ZwQueryValueKey with a malformed value name");
        return STATUS_INVALID_PARAMETER;
    };
    let Some((value_type, data)) = state.registry.get(&path).and_then(|values| values.get(&registry_name(&name))) else {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    let needed = KEY_VALUE_PARTIAL_DATA_OFFSET + data.len();
    let length = length as usize;
    // SAFETY: `result_length` is writable (the import's contract).
    unsafe { result_length.write(u32::try_from(needed).expect("a modelled value fits a ULONG")) };
    if length < KEY_VALUE_PARTIAL_DATA_OFFSET {
        return STATUS_BUFFER_TOO_SMALL;
    }
    let mut answer = Vec::with_capacity(needed);
    answer.extend_from_slice(&0u32.to_le_bytes());
    answer.extend_from_slice(&value_type.to_le_bytes());
    answer.extend_from_slice(&u32::try_from(data.len()).expect("as above").to_le_bytes());
    answer.extend_from_slice(data);
    let written = needed.min(length);
    // SAFETY: `information` is writable for `length` bytes (the import's contract) and
    // `written <= length`; the model's vector does not overlap the driver's buffer.
    unsafe { std::ptr::copy_nonoverlapping(answer.as_ptr(), information.cast::<u8>(), written) };
    if written < needed {
        STATUS_BUFFER_OVERFLOW
    } else {
        0
    }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ZwSetValueKey(
    key: Handle,
    name: *const UnicodeString,
    title_index: u32,
    kind: u32,
    data: *const c_void,
    size: u32,
) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    state.require_passive("ZwSetValueKey");
    if title_index != 0 {
        state.violation("ZwSetValueKey with a TitleIndex: device drivers pass zero");
    }
    let path = match open_key(&mut state, "ZwSetValueKey", key, KEY_SET_VALUE) {
        Ok(path) => path,
        Err(status) => return status,
    };
    // SAFETY: the driver passes a valid UNICODE_STRING (the import's contract).
    let Some(name) = (unsafe { unicode_text(name) }) else {
        state.violation("ZwSetValueKey with a malformed value name");
        return STATUS_INVALID_PARAMETER;
    };
    let bytes = if size == 0 {
        Vec::new()
    } else {
        // SAFETY: `data` is readable for `size` bytes (the import's contract).
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) }.to_vec()
    };
    let Some(values) = state.registry.get_mut(&path) else {
        return STATUS_INVALID_HANDLE;
    };
    values.insert(registry_name(&name), (kind, bytes));
    0
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ZwClose(handle: Handle) -> NtStatus {
    let _kernel = crate::invoke::kernel_code();
    let mut state = state();
    if state.key_handles.remove(&handle.addr()).is_none() {
        state.violation(format!("ZwClose of {handle:p}: not an open key handle (closed twice?)"));
        return STATUS_INVALID_HANDLE;
    }
    0
}

/// `DbgPrintEx(ComponentId, Level, "%s\n", message)`, the only form the driver uses
/// (`wanlayer_ndis::runtime::print`); on the host `wanlayer-ndis` declares it with exactly these
/// four parameters (stable Rust cannot define a variadic function).
#[unsafe(no_mangle)]
unsafe extern "C" fn DbgPrintEx(_component: u32, _level: u32, format: *const c_char, message: *const c_char) -> u32 {
    let _kernel = crate::invoke::kernel_code();
    // SAFETY: the driver passes NUL-terminated strings.
    let format = unsafe { CStr::from_ptr(format) };
    if format != c"%s\n" {
        state().violation(format!("DbgPrintEx with a format the model does not know: {format:?}"));
        return 0;
    }
    // SAFETY: as above: `%s` takes a NUL-terminated string.
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    if std::env::var_os("WANLAYER_MODEL_LOG").is_some() {
        eprintln!("{message}");
    }
    low_resources::driver_logged(&message);
    state().log.push(message);
    0
}

// ---- hal.dll ----

#[unsafe(no_mangle)]
unsafe extern "system" fn KeStallExecutionProcessor(microseconds: u32) {
    let _kernel = crate::invoke::kernel_code();
    state().time_100ns += u64::from(microseconds) * 10;
}

/// Each check is live: a broken call is reported (the model's own proofs, as the simulator's
/// verifier has its broken filters).
#[cfg(test)]
mod tests {
    use super::*;

    const TAG: u32 = u32::from_le_bytes(*b"Test");
    const OTHER: u32 = u32::from_le_bytes(*b"Othr");

    #[test]
    fn pool_blocks_are_freed_once_with_their_tag_and_leaks_are_found() {
        let _run = begin();
        // SAFETY: (each call below) the model's functions called as the driver calls them.
        let block = unsafe { ExAllocatePool2(0x40, 24, TAG) };
        assert!(!block.is_null());
        // SAFETY: as above.
        unsafe { ExFreePoolWithTag(block, OTHER) };
        assert_eq!(violations().len(), 1, "{:?}", violations());
        assert!(violations()[0].contains("\"Test\""));
        let leaked = {
            // SAFETY: as above.
            unsafe { ExAllocatePool2(0x40, 8, TAG) }
        };
        assert_eq!(pool_outstanding(), [(TAG, 8)]);
        let found = finish();
        assert!(found.iter().any(|rule| rule.contains("not freed")), "{found:?}");
        // SAFETY: as above; freed once.
        unsafe { ExFreePoolWithTag(leaked, TAG) };
        fail_next_allocation(TAG);
        // SAFETY: as above.
        assert!(unsafe { ExAllocatePool2(0x40, 8, TAG) }.is_null(), "an aimed failure");
    }

    #[test]
    fn spin_locks_pair_and_restore_the_irql() {
        let _run = begin();
        let mut lock: KSpinLock = 0;
        // SAFETY: as above, with a lock the test owns.
        let previous = unsafe { KeAcquireSpinLockRaiseToDpc(&mut lock) };
        assert_eq!((previous, irql()), (PASSIVE_LEVEL, DISPATCH_LEVEL));
        // SAFETY: as above: acquired twice on one processor.
        let again = unsafe { KeAcquireSpinLockRaiseToDpc(&mut lock) };
        // SAFETY: as above.
        unsafe { KeReleaseSpinLock(&mut lock, again) };
        // SAFETY: as above: released while not held.
        unsafe { KeReleaseSpinLock(&mut lock, previous) };
        assert_eq!(irql(), PASSIVE_LEVEL);
        let found = violations();
        assert!(found[0].contains("already held") && found[1].contains("not held"), "{found:?}");
    }

    #[test]
    fn passive_level_calls_at_dispatch_level_are_reported() {
        let _run = begin();
        set_irql(DISPATCH_LEVEL);
        let mut interval = -10;
        // SAFETY: as above.
        unsafe { KeDelayExecutionThread(0, 0, &mut interval) };
        assert!(violations()[0].contains("needs PASSIVE_LEVEL"), "{:?}", violations());
    }

    #[test]
    fn oid_clones_and_completions_are_checked() {
        let _run = begin();
        // SAFETY: an all-zero NDIS_OID_REQUEST is a valid value (integers and raw pointers).
        let mut original: NdisOidRequest = unsafe { std::mem::MaybeUninit::zeroed().assume_init() };
        let mut clone = std::ptr::null_mut();
        let filter = new_filter_module_handle();
        // SAFETY: as above.
        assert_eq!(unsafe { NdisAllocateCloneOidRequest(filter, &mut original, TAG, &mut clone) }, 0);
        set_oid_answer(OidAnswer::Pend);
        // SAFETY: as above.
        assert_eq!(unsafe { NdisFOidRequest(filter, clone) }, STATUS_PENDING);
        // SAFETY: as above: the original completed twice.
        unsafe { NdisFOidRequestComplete(filter, &mut original, 0) };
        // SAFETY: as above.
        unsafe { NdisFOidRequestComplete(filter, &mut original, 0) };
        // SAFETY: as above.
        unsafe { NdisFreeCloneOidRequest(filter, clone) };
        // SAFETY: as above: the clone freed twice (the model checks before touching it).
        unsafe { NdisFreeCloneOidRequest(filter, clone) };
        let found = violations();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("completed twice") && found[1].contains("not a live clone"), "{found:?}");
        // SAFETY: as above: a request that is not a clone passed down.
        unsafe { NdisFOidRequest(filter, &mut original) };
        assert!(violations()[2].contains("not a clone"), "{:?}", violations());
    }

    #[test]
    fn receive_counts_and_dispatch_flags_must_tell_the_truth() {
        let _run = begin();
        // SAFETY: an all-zero NBL is a valid value.
        let mut nbl: NetBufferList = unsafe { std::mem::MaybeUninit::zeroed().assume_init() };
        let filter = new_filter_module_handle();
        // SAFETY: as above: a one-NBL chain indicated as two, with the DISPATCH_LEVEL flag at
        // PASSIVE_LEVEL.
        unsafe { NdisFIndicateReceiveNetBufferLists(filter, &mut nbl, 0, 2, ReceiveFlags::DISPATCH_LEVEL) };
        let found = violations();
        assert!(found.iter().any(|rule| rule.contains("flag says true")), "{found:?}");
        assert!(found.iter().any(|rule| rule.contains("NumberOfNetBufferLists 2 for a chain of 1")), "{found:?}");
    }

    const SERVICE: &str = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\test";

    fn name(units: &[u16]) -> UnicodeString {
        let bytes = u16::try_from(units.len() * 2).expect("short name");
        UnicodeString { length: bytes, maximum_length: bytes, buffer: units.as_ptr().cast_mut() }
    }

    #[test]
    fn registry_keys_are_created_below_existing_ones_found_case_insensitively_and_answer_partial_queries() {
        let _run = begin();
        create_key(SERVICE);
        let missing: Vec<u16> = format!("{SERVICE}\\Missing\\Parameters").encode_utf16().collect();
        let missing = name(&missing);
        let mut handle: Handle = std::ptr::null_mut();
        let mut disposition = 0u32;
        let attributes = ObjectAttributes::kernel(&missing);
        // SAFETY: (each call below) the model's functions called as the driver calls them.
        let status = unsafe { ZwCreateKey(&mut handle, KEY_SET_VALUE, &attributes, 0, std::ptr::null(), 0, &mut disposition) };
        assert_eq!(status, STATUS_OBJECT_NAME_NOT_FOUND, "a parent that does not exist is not created");
        let path: Vec<u16> = format!("{SERVICE}\\Parameters").encode_utf16().collect();
        let path = name(&path);
        // SAFETY: as above.
        let status = unsafe { ZwOpenKey(&mut handle, KEY_QUERY_VALUE, &ObjectAttributes::kernel(&path)) };
        assert_eq!(status, STATUS_OBJECT_NAME_NOT_FOUND);
        let attributes = ObjectAttributes::kernel(&path);
        // SAFETY: as above.
        let status = unsafe { ZwCreateKey(&mut handle, KEY_SET_VALUE, &attributes, 0, std::ptr::null(), 0, &mut disposition) };
        assert_eq!((status, disposition), (0, REG_CREATED_NEW_KEY));
        let value: Vec<u16> = "Blob".encode_utf16().collect();
        let value = name(&value);
        let data = [1u8, 2, 3, 4, 5, 6];
        // SAFETY: as above.
        assert_eq!(unsafe { ZwSetValueKey(handle, &value, 0, 3, data.as_ptr().cast(), 6) }, 0);
        let mut answer = [0u8; 16];
        let mut needed = 0u32;
        // SAFETY: as above.
        let status = unsafe { ZwQueryValueKey(handle, &value, 2, answer.as_mut_ptr().cast(), 16, &mut needed) };
        assert_eq!(status, STATUS_ACCESS_DENIED, "opened without KEY_QUERY_VALUE");
        // SAFETY: as above.
        assert_eq!(unsafe { ZwClose(handle) }, 0);
        assert_eq!(registry_value(&format!("{SERVICE}\\PARAMETERS"), "blob"), Some((3, data.to_vec())));

        let upper: Vec<u16> = format!("{SERVICE}\\PARAMETERS").to_uppercase().encode_utf16().collect();
        let upper = name(&upper);
        // SAFETY: as above.
        assert_eq!(unsafe { ZwOpenKey(&mut handle, KEY_QUERY_VALUE, &ObjectAttributes::kernel(&upper),) }, 0);
        // SAFETY: as above.
        let status = unsafe { ZwQueryValueKey(handle, &value, 2, answer.as_mut_ptr().cast(), 8, &mut needed) };
        assert_eq!((status, needed), (STATUS_BUFFER_TOO_SMALL, 18), "shorter than the fixed part");
        // SAFETY: as above.
        let status = unsafe { ZwQueryValueKey(handle, &value, 2, answer.as_mut_ptr().cast(), 16, &mut needed) };
        assert_eq!((status, needed), (STATUS_BUFFER_OVERFLOW, 18), "the fixed part and part of the data");
        assert_eq!(answer, [0, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0, 1, 2, 3, 4]);
        let mut whole = [0u8; 18];
        // SAFETY: as above.
        let status = unsafe { ZwQueryValueKey(handle, &value, 2, whole.as_mut_ptr().cast(), 18, &mut needed) };
        assert_eq!((status, needed, &whole[12..]), (0, 18, &data[..]));
        // SAFETY: as above.
        assert_eq!(unsafe { ZwClose(handle) }, 0);
        assert!(finish().is_empty(), "{:?}", finish());
    }

    #[test]
    fn registry_handles_leaked_or_closed_twice_and_calls_above_passive_are_reported() {
        let _run = begin();
        create_key(SERVICE);
        let path: Vec<u16> = SERVICE.encode_utf16().collect();
        let path = name(&path);
        let mut first: Handle = std::ptr::null_mut();
        let mut second: Handle = std::ptr::null_mut();
        // SAFETY: (each call below) the model's functions called as the driver calls them.
        assert_eq!(unsafe { ZwOpenKey(&mut first, KEY_QUERY_VALUE, &ObjectAttributes::kernel(&path),) }, 0);
        set_irql(DISPATCH_LEVEL);
        // SAFETY: as above.
        assert_eq!(unsafe { ZwOpenKey(&mut second, KEY_QUERY_VALUE, &ObjectAttributes::kernel(&path),) }, 0);
        set_irql(PASSIVE_LEVEL);
        assert_eq!(open_key_handles(), 2);
        // SAFETY: as above.
        assert_eq!(unsafe { ZwClose(first) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { ZwClose(first) }, STATUS_INVALID_HANDLE);
        let found = finish();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("ZwOpenKey called at IRQL 2"), "{found:?}");
        assert!(found[1].contains("closed twice"), "{found:?}");
        assert!(found[2].contains("not closed"), "{found:?}");
    }
}
