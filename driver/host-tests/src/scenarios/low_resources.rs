//! The low-resources sweep (Driver Verifier's low-resources simulation, made exhaustive): each
//! scenario runs once to count the allocations the driver makes (pool, NBL pools, NBLs, MDLs, OID
//! clones), then once per allocation with that one failed. Every run must end without a bug check,
//! with nothing left over (`model::finish()` empty) and, where a step failed, with the failure
//! status that step documents:
//!
//! * `DriverEntry`: `STATUS_INSUFFICIENT_RESOURCES` (`0xC000009A`), nothing registered;
//! * `FilterAttach`: `NDIS_STATUS_RESOURCES` (`0xC000009A`), no module context set;
//! * `FilterOidRequest`: `NDIS_STATUS_RESOURCES` when the clone cannot be allocated;
//! * a WAN line up that cannot be tracked is still passed on (the link is not tracked);
//! * `IRP_MJ_CREATE` on the control device: `STATUS_INSUFFICIENT_RESOURCES`, no handle.
//!
//! Each scenario runs twice: on a kernel with `ExAllocatePool2` and on one without it (before build
//! 19041), where the driver takes `ExAllocatePoolWithTag`.
//!
//! On this host build the engine's own heap (`alloc`) is `std`'s, so the sweep fails the kernel
//! imports' allocations; the built images, whose global allocator is pool, are swept by the
//! emulator through the same `low_resources` API.
//!
//! `tests/low_resources.rs` sweeps them natively (its line: `low-resources sweep: S scenarios, F
//! failed allocations, B bug checks, L leaks`); `driver/emulator` sweeps them against the images.
use super::Target;
use std::ptr;

use crate::common::{name, zeroed, Name, Owned};
use crate::ndiswan::{LineDown, LineUp, NDISWANIP, RAS_MAC};

use wanlayer_kernel_model::invoke;
use wanlayer_kernel_model::low_resources;
use wanlayer_kernel_model::{self as model, OidAnswer};
use wanlayer_ndis::io::{DriverObjectLayout, FileObjectLayout, IoSecurityContext, IoStackLocation, IrpLayout};
use wanlayer_ndis::kernel::{DriverObject, Irp, NtStatus, FILE_READ_DATA, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE};
use wanlayer_ndis::lightweight_filter::{FilterAttachParameters, FilterDriverCharacteristics, NdisOidRequest};
use wanlayer_ndis::types::{object_type, ContextHandle, NdisObjectHeader};

/// `STATUS_INSUFFICIENT_RESOURCES` / `NDIS_STATUS_RESOURCES`: the one failure a refused allocation
/// may produce.
const RESOURCES: u32 = 0xC000_009A;

/// The driver, loaded.
struct Loaded {
    driver_object: Owned<DriverObjectLayout>,
    handlers: FilterDriverCharacteristics,
    _registry_path: Owned<Name>,
}

/// Asserts the run left nothing behind and broke no rule.
fn assert_clean(after: &str) {
    let left = model::finish();
    assert!(
        left.is_empty(),
        "after {after} (failed allocation {:?}): {left:#?}\nlog: {:#?}",
        low_resources::failed_allocation(),
        model::log()
    );
}

/// `DriverEntry`; `None` when it failed — with the documented status and nothing left.
fn load(target: &Target) -> Option<Loaded> {
    let driver_object = zeroed::<DriverObjectLayout>();
    let registry_path = name("\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer");
    // SAFETY: DriverEntry called once per run, as the I/O manager calls it, with a zeroed driver
    // object and the service key's path; the path is derived from its one pointer.
    let path = unsafe { ptr::addr_of_mut!((*registry_path.ptr()).string) };
    // SAFETY: as above.
    let status = unsafe { invoke::call(target.driver_entry, (driver_object.ptr().cast::<DriverObject>(), path)) } as u32;
    if status != 0 {
        assert_eq!(status, RESOURCES, "DriverEntry failed with {status:#010x}: {:#?}", model::log());
        assert_clean("a failed DriverEntry");
        return None;
    }
    let handlers = model::characteristics().expect("the filter registered");
    Some(Loaded { driver_object, handlers, _registry_path: registry_path })
}

fn unload(loaded: Loaded) {
    let unload = loaded.driver_object.driver_unload.expect("DriverEntry set DriverUnload");
    // SAFETY: the unload routine DriverEntry set, called once.
    unsafe { invoke::call(unload, (loaded.driver_object.ptr().cast(),)) };
    assert_clean("unload");
}

/// Begins the model's run for one attempt of a sweep: which allocation fails, and whether the
/// kernel has `ExAllocatePool2`.
fn begin(fail_at: Option<u64>, pool2: bool) -> model::Run {
    let run = model::begin();
    model::set_pool2_absent(!pool2);
    low_resources::plan(fail_at);
    run
}

/// A sweep scenario: DriverEntry, then DriverUnload.
pub fn load_and_unload(target: &Target, fail_at: Option<u64>, pool2: bool) {
    let _run = begin(fail_at, pool2);
    if let Some(loaded) = load(target) {
        unload(loaded);
    }
}

/// An IRP of one stack location for `major` on `file`, with a security context for a create.
struct Request {
    irp: Owned<IrpLayout>,
    _location: Owned<IoStackLocation>,
    _security: Owned<IoSecurityContext>,
}

impl Request {
    fn new(major: usize, file: *mut FileObjectLayout) -> Self {
        let mut location = zeroed::<IoStackLocation>();
        location.major_function = u8::try_from(major).expect("major function");
        location.file_object = file.cast();
        let mut irp = zeroed::<IrpLayout>();
        irp.current_stack_location = location.ptr();
        irp.stack_count = 1;
        irp.current_location = 1;
        let mut security = zeroed::<IoSecurityContext>();
        security.desired_access = FILE_READ_DATA;
        let security_ptr = security.ptr();
        if major == IRP_MJ_CREATE {
            location.parameters.create.security_context = security_ptr;
        }
        Request { irp, _location: location, _security: security }
    }

    /// Sends it to the control device's dispatch routine for `major`.
    fn send(&mut self, major: usize) -> NtStatus {
        let device = model::control_device().expect("the control device");
        let dispatch = device.dispatch[major].expect("a dispatch routine");
        // SAFETY: the dispatch routine the driver registered, with its device and a valid IRP.
        let status = unsafe { invoke::call(dispatch, (device.device, self.irp.ptr().cast::<Irp>())) };
        // SAFETY: this request's IRP, of one stack location.
        unsafe { crate::common::note_handle(self.irp.ptr(), status) };
        status
    }
}

/// DriverEntry → a handle opened on the control device (its context is pool) → cleanup and close
/// → DriverUnload.
pub fn a_control_handle(target: &Target, fail_at: Option<u64>, pool2: bool) {
    let _run = begin(fail_at, pool2);
    let Some(loaded) = load(target) else { return };
    let pool = if pool2 { "pool: ExAllocatePool2" } else { "pool: ExAllocatePoolWithTag" };
    assert!(model::log().iter().any(|line| line.contains(pool)), "the driver did not take {pool}: {:#?}", model::log());
    let file = zeroed::<FileObjectLayout>();
    let status = Request::new(IRP_MJ_CREATE, file.ptr()).send(IRP_MJ_CREATE) as u32;
    if status == 0 {
        assert_eq!(Request::new(IRP_MJ_CLEANUP, file.ptr()).send(IRP_MJ_CLEANUP), 0);
        assert_eq!(Request::new(IRP_MJ_CLOSE, file.ptr()).send(IRP_MJ_CLOSE), 0);
    } else {
        assert_eq!(status, RESOURCES, "IRP_MJ_CREATE failed with {status:#010x}");
        assert!(file.fs_context.is_null(), "a refused create left a handle context");
    }
    unload(loaded);
}

/// DriverEntry → attach to NdisWan's IP edge → restart → an OID passed down → WAN line up → line
/// down → pause → detach → DriverUnload; any step may meet the failed allocation.
pub fn a_wan_module_and_link(target: &Target, fail_at: Option<u64>, pool2: bool) {
    let _run = begin(fail_at, pool2);
    let Some(loaded) = load(target) else { return };
    let handlers = loaded.handlers;
    let adapter_name = name(NDISWANIP);
    let mut parameters = zeroed::<FilterAttachParameters>();
    parameters.header = NdisObjectHeader::new(object_type::FILTER_ATTACH_PARAMETERS, 1, size_of::<FilterAttachParameters>());
    // SAFETY: `adapter_name` is alive for the run and reached through its one pointer.
    parameters.base_miniport_name = unsafe { ptr::addr_of_mut!((*adapter_name.ptr()).string) };
    parameters.mac_address_length = 6;
    parameters.current_mac_address[..6].copy_from_slice(&RAS_MAC);
    parameters.base_miniport_if_index = 7;
    let filter = model::new_filter_module_handle();
    // SAFETY: FilterAttach as NDIS calls it, at PASSIVE_LEVEL, with valid parameters.
    let attached = unsafe { invoke::call(handlers.attach.expect("attach"), (filter, ContextHandle::NULL, parameters.ptr())) };
    if attached != 0 {
        assert_eq!(attached, RESOURCES, "attach failed with {attached:#010x}");
        assert!(model::module_context(filter).is_none(), "a refused attach set a module context");
        unload(loaded);
        return;
    }
    let context = model::module_context(filter).expect("NdisFSetAttributes gave a context");
    // SAFETY: (this and each handler call below) the module's context, as NDIS passes it, at
    // PASSIVE_LEVEL, with structures valid for the call.
    assert_eq!(unsafe { invoke::call(handlers.restart.expect("restart"), (context, ptr::null_mut()),) }, 0);

    model::set_oid_answer(OidAnswer::Complete(0));
    let request = zeroed::<NdisOidRequest>();
    // SAFETY: as above.
    let oid = unsafe { invoke::call(handlers.oid_request.expect("oid"), (context, request.ptr())) };
    assert!(oid == 0 || oid == RESOURCES, "an OID failed with {oid:#010x}");

    let line_up = LineUp::new();
    // SAFETY: as above.
    unsafe { invoke::call(handlers.status.expect("status"), (context, line_up.indication())) };
    let line_down = LineDown::new();
    // SAFETY: as above.
    unsafe { invoke::call(handlers.status.expect("status"), (context, line_down.indication())) };

    // SAFETY: as above.
    assert_eq!(unsafe { invoke::call(handlers.pause.expect("pause"), (context, ptr::null_mut(),)) }, 0);
    // SAFETY: as above; the module is paused.
    unsafe { invoke::call(handlers.detach.expect("detach"), (context,)) };
    unload(loaded);
}

/// A sweep scenario: the target, which allocation to fail (none: count), whether the kernel has
/// `ExAllocatePool2`.
pub type SweepFn = fn(&Target, Option<u64>, bool);

/// The scenarios the sweep runs, by name.
pub const SWEEP: [(&str, SweepFn); 3] =
    [("load and unload", load_and_unload), ("a WAN module and link", a_wan_module_and_link), ("a control handle", a_control_handle)];
