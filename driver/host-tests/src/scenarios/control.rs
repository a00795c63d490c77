//! The control device's dispatch routines in the loop: `IRP_MJ_CREATE` (opens of the device,
//! refused names, the access granted), `IRP_MJ_DEVICE_CONTROL` (answered at once, refused for a
//! read-only handle, an event read that pends in the cancel-safe queue and is cancelled, or is
//! completed by `IRP_MJ_CLEANUP` or by an event through the wake DPC), `IRP_MJ_CLEANUP`,
//! `IRP_MJ_CLOSE` and the vendors' `IRP_MJ_INTERNAL_DEVICE_CONTROL`, with IRPs and stack locations
//! in `wanlayer-ndis` layouts, against the kernel model.

use super::Target;
use std::ffi::c_void;
use std::ptr;

use crate::common::{zeroed, Owned};

use wanlayer_kernel_model::invoke;
use wanlayer_kernel_model::{self as model, Event};
use wanlayer_ndis::lightweight_filter::FilterAttachParameters;
use wanlayer_ndis::io::{DriverObjectLayout, FileObjectLayout, IoSecurityContext, IoStackLocation, IrpLayout};
use wanlayer_ndis::kernel::{
    DriverObject, Irp, NtStatus, FILE_READ_DATA, FILE_WRITE_DATA, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL,
    IRP_MJ_INTERNAL_DEVICE_CONTROL,
};
use wanlayer_ndis::types::{object_type, ContextHandle, NdisObjectHeader, UnicodeString};
use wanlayer_proto::ioctl::{IOCTL_LIST_LINKS, IOCTL_QUERY_VERSION, IOCTL_READ_EVENTS, IOCTL_RESET_STATS, IOCTL_SUBSCRIBE_EVENTS};
use wanlayer_proto::{EventKind, LinkList, LinkListRepr, LinkQuery, LinkQueryRepr, ReadRequest, ReadRequestRepr, Subscribe, SubscribeRepr};

const STATUS_PENDING: NtStatus = 0x103;
const STATUS_ACCESS_DENIED: NtStatus = 0xC000_0022_u32 as NtStatus;
const STATUS_OBJECT_NAME_NOT_FOUND: NtStatus = 0xC000_0034_u32 as NtStatus;
const STATUS_INVALID_DEVICE_REQUEST: NtStatus = 0xC000_0010_u32 as NtStatus;
/// `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` (the SDK's ABI).
const IOCTL_PROVIDER_QUERY_TABLE: u32 = 0x0012_2203;
const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D_u32 as NtStatus;
const STATUS_CANCELLED: NtStatus = 0xC000_0120_u32 as NtStatus;

/// An IRP with its one stack location, security context and system buffer.
pub(super) struct Request {
    irp: Owned<IrpLayout>,
    _location: Owned<IoStackLocation>,
    _security: Owned<IoSecurityContext>,
    pub(super) buffer: Vec<u8>,
}

impl Request {
    pub(super) fn new(major: usize, file: *mut FileObjectLayout) -> Self {
        let mut location = zeroed::<IoStackLocation>();
        location.major_function = u8::try_from(major).expect("major function");
        location.file_object = file.cast();
        let mut irp = zeroed::<IrpLayout>();
        irp.current_stack_location = location.ptr();
        irp.stack_count = 1;
        irp.current_location = 1;
        Request { irp, _location: location, _security: zeroed(), buffer: Vec::new() }
    }

    fn create(file: *mut FileObjectLayout, desired_access: u32) -> Self {
        let mut request = Self::new(IRP_MJ_CREATE, file);
        request._security.desired_access = desired_access;
        let security = request._security.ptr();
        // SAFETY: the stack location this request owns (boxed, alive as long as the request).
        let location = unsafe { &mut *request.irp.current_stack_location };
        location.parameters.create.security_context = security;
        request
    }

    pub(super) fn device_control(file: *mut FileObjectLayout, code: u32, input: &[u8], output_len: usize) -> Self {
        let mut request = Self::new(IRP_MJ_DEVICE_CONTROL, file);
        request.buffer = vec![0; input.len().max(output_len)];
        request.buffer[..input.len()].copy_from_slice(input);
        request.irp.system_buffer = request.buffer.as_mut_ptr().cast::<c_void>();
        // SAFETY: the stack location this request owns (boxed, alive as long as the request).
        let location = unsafe { &mut *request.irp.current_stack_location };
        // SAFETY: `device_io_control` is the union member of IRP_MJ_DEVICE_CONTROL; the stack
        // location was zeroed, a valid value of it.
        let parameters = unsafe { &mut location.parameters.device_io_control };
        parameters.io_control_code = code;
        parameters.input_buffer_length = u32::try_from(input.len()).expect("short input");
        parameters.output_buffer_length = u32::try_from(output_len).expect("short output");
        request
    }

    fn as_ptr(&mut self) -> *mut Irp {
        self.irp.ptr().cast()
    }

    /// Sends the IRP to the control device's dispatch routine, as the I/O manager does.
    pub(super) fn send(&mut self, major: usize) -> NtStatus {
        let device = model::control_device().expect("the control device");
        let dispatch = device.dispatch[major].expect("a dispatch routine");
        // SAFETY: an IRP for the driver's device, built in the I/O manager's layout, at
        // PASSIVE_LEVEL, not completed yet.
        let status = unsafe { invoke::call(dispatch, (device.device, self.as_ptr())) };
        // SAFETY: this request's IRP, of one stack location.
        unsafe { crate::common::note_handle(self.irp.ptr(), status) };
        status
    }

    /// The `IofCompleteRequest` of this IRP among `events`, as (status, information).
    pub(super) fn completion(&mut self, events: &[Event]) -> Option<(NtStatus, usize)> {
        let irp = self.as_ptr().addr();
        events.iter().find_map(|event| match *event {
            Event::IrpCompleted { irp: completed, status, information } if completed == irp => Some((status, information)),
            _ => None,
        })
    }
}

/// Opens a handle: a new file object and an `IRP_MJ_CREATE` on it.
pub(super) fn open(desired_access: u32) -> (Owned<FileObjectLayout>, NtStatus) {
    let file = zeroed::<FileObjectLayout>();
    let mut create = Request::create(file.ptr(), desired_access);
    let status = create.send(IRP_MJ_CREATE);
    assert_eq!(create.completion(&model::take_events()), Some((status, 0)), "create completes with its status");
    (file, status)
}

pub(super) fn close(file: &Owned<FileObjectLayout>) {
    let mut cleanup = Request::new(IRP_MJ_CLEANUP, file.ptr());
    assert_eq!(cleanup.send(IRP_MJ_CLEANUP), 0);
    let mut close = Request::new(IRP_MJ_CLOSE, file.ptr());
    assert_eq!(close.send(IRP_MJ_CLOSE), 0);
    assert!(file.fs_context.is_null(), "close gives FsContext back");
}

fn subscribe_input() -> [u8; 16] {
    let mut input = [0u8; 16];
    SubscribeRepr { capacity: 16, mask: EventKind::ALL_MASK }.emit(&mut Subscribe::new_unchecked(&mut input[..])).expect("subscribe");
    input
}

fn read_input() -> [u8; 16] {
    let mut input = [0u8; 16];
    ReadRequestRepr { max_records: 4, wait: true }.emit(&mut ReadRequest::new_unchecked(&mut input[..])).expect("read");
    input
}

struct Loaded {
    driver_object: Owned<DriverObjectLayout>,
}

fn load(target: &Target) -> Loaded {
    let driver_object = zeroed::<DriverObjectLayout>();
    let mut path: Vec<u16> = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer".encode_utf16().collect();
    let bytes = u16::try_from(path.len() * 2).expect("short path");
    let mut registry_path = UnicodeString { length: bytes, maximum_length: bytes, buffer: path.as_mut_ptr() };
    // SAFETY: DriverEntry called once per run with a zeroed driver object and the service key.
    let status = unsafe { invoke::call(target.driver_entry, (driver_object.ptr().cast::<DriverObject>(), &mut registry_path)) };
    assert_eq!(status, 0, "{:?}", model::log());
    Loaded { driver_object }
}

fn unload(loaded: Loaded) {
    let unload = loaded.driver_object.driver_unload.expect("DriverUnload");
    // SAFETY: the unload routine DriverEntry set, called once after every handle closed.
    unsafe { invoke::call(unload, (loaded.driver_object.ptr().cast(),)) };
    let left = model::finish();
    assert!(left.is_empty(), "after unload: {left:#?}\nlog: {:#?}", model::log());
}

/// A scenario (see the module doc).
pub fn handles_open_answer_refuse_and_close_through_the_dispatch_routines(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);

    // A name below the device, or a relative open, is not the device.
    let mut named = zeroed::<FileObjectLayout>();
    let mut below: Vec<u16> = "\\x".encode_utf16().collect();
    named.file_name = UnicodeString { length: 4, maximum_length: 4, buffer: below.as_mut_ptr() };
    let mut create = Request::create(named.ptr(), FILE_READ_DATA);
    assert_eq!(create.send(IRP_MJ_CREATE), STATUS_OBJECT_NAME_NOT_FOUND);
    assert!(named.fs_context.is_null());
    model::take_events();

    let (read_only, status) = open(FILE_READ_DATA);
    assert_eq!(status, 0);
    assert!(!read_only.fs_context.is_null(), "the handle's context is in FsContext");

    let mut version = Request::device_control(read_only.ptr(), IOCTL_QUERY_VERSION, &[], 64);
    let status = version.send(IRP_MJ_DEVICE_CONTROL);
    assert_eq!(status, 0);
    let (_, written) = version.completion(&model::take_events()).expect("completed");
    assert!(written > 0 && written <= 64, "{written}");

    let mut reset = Request::device_control(read_only.ptr(), IOCTL_RESET_STATS, &[], 0);
    assert_eq!(reset.send(IRP_MJ_DEVICE_CONTROL), STATUS_ACCESS_DENIED, "a read-only handle may not reset");
    model::take_events();

    let (read_write, status) = open(FILE_READ_DATA | FILE_WRITE_DATA);
    assert_eq!(status, 0);
    // Granted write access: the request gets past the access check to its (empty, so invalid)
    // input.
    let mut reset = Request::device_control(read_write.ptr(), IOCTL_RESET_STATS, &[], 0);
    assert_eq!(reset.send(IRP_MJ_DEVICE_CONTROL), STATUS_INVALID_PARAMETER);
    model::take_events();

    close(&read_only);
    close(&read_write);
    // A device control after cleanup finds no handle.
    let mut late = Request::device_control(read_write.ptr(), IOCTL_QUERY_VERSION, &[], 64);
    assert_eq!(late.send(IRP_MJ_DEVICE_CONTROL), STATUS_INVALID_PARAMETER);
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// A scenario (see the module doc).
pub fn a_pending_event_read_is_cancelled_or_completed_by_cleanup(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    let (file, status) = open(FILE_READ_DATA);
    assert_eq!(status, 0);
    let mut subscribe = Request::device_control(file.ptr(), IOCTL_SUBSCRIBE_EVENTS, &subscribe_input(), 24);
    assert_eq!(subscribe.send(IRP_MJ_DEVICE_CONTROL), 0, "{:?}", model::log());
    model::take_events();

    // Nothing to read: the read pends in the handle's cancel-safe queue; cancelling it (the
    // thread exits) completes it STATUS_CANCELLED through the queue.
    let mut read = Request::device_control(file.ptr(), IOCTL_READ_EVENTS, &read_input(), 24 + 80 * 4);
    let status = read.send(IRP_MJ_DEVICE_CONTROL);
    assert_eq!(status, STATUS_PENDING, "{:?}", model::take_events());
    assert_eq!(model::queued_irps(), 1);
    // SAFETY: the read's IRP, alive (owned by `read`).
    assert!(unsafe { model::cancel_irp(read.as_ptr()) });
    assert_eq!(read.completion(&model::take_events()), Some((STATUS_CANCELLED, 0)));

    // Another read pends; the handle's cleanup completes it STATUS_CANCELLED.
    let mut second = Request::device_control(file.ptr(), IOCTL_READ_EVENTS, &read_input(), 24 + 80 * 4);
    assert_eq!(second.send(IRP_MJ_DEVICE_CONTROL), STATUS_PENDING);
    let mut cleanup = Request::new(IRP_MJ_CLEANUP, file.ptr());
    assert_eq!(cleanup.send(IRP_MJ_CLEANUP), 0);
    let events = model::take_events();
    assert_eq!(second.completion(&events), Some((STATUS_CANCELLED, 0)), "{events:?}");
    assert_eq!(model::queued_irps(), 0);
    // A cancel racing with cleanup finds the IRP gone.
    // SAFETY: the second read's IRP, alive (owned by `second`).
    assert!(!unsafe { model::cancel_irp(second.as_ptr()) });
    let mut close = Request::new(IRP_MJ_CLOSE, file.ptr());
    assert_eq!(close.send(IRP_MJ_CLOSE), 0);
    model::run_dpcs();
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// A scenario (see the module doc).
pub fn an_event_completes_a_pending_read_through_the_wake_dpc(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    let (file, status) = open(FILE_READ_DATA);
    assert_eq!(status, 0);
    let mut subscribe = Request::device_control(file.ptr(), IOCTL_SUBSCRIBE_EVENTS, &subscribe_input(), 24);
    assert_eq!(subscribe.send(IRP_MJ_DEVICE_CONTROL), 0);
    let mut read = Request::device_control(file.ptr(), IOCTL_READ_EVENTS, &read_input(), 24 + 80 * 4);
    assert_eq!(read.send(IRP_MJ_DEVICE_CONTROL), STATUS_PENDING);
    model::take_events();

    // An adapter attaches: the engine records the event and wakes the handle; the wake DPC
    // services its queue and completes the read with the event.
    let handlers = model::characteristics().expect("registered");
    let mut name: Vec<u16> = "\\DEVICE\\{NIC}".encode_utf16().collect();
    let mut miniport_name = UnicodeString { length: 26, maximum_length: 26, buffer: name.as_mut_ptr() };
    let mut parameters = zeroed::<FilterAttachParameters>();
    parameters.header = NdisObjectHeader::new(object_type::FILTER_ATTACH_PARAMETERS, 1, size_of::<FilterAttachParameters>());
    parameters.base_miniport_name = &mut miniport_name;
    let filter = model::new_filter_module_handle();
    // SAFETY: FilterAttach as NDIS calls it, with parameters valid for the call.
    assert_eq!(unsafe { invoke::call(handlers.attach.expect("attach"), (filter, ContextHandle::NULL, parameters.ptr()),) }, 0);
    assert_eq!(model::queued_irps(), 1, "the read is still queued until the DPC runs");
    model::run_dpcs();
    let (status, written) = read.completion(&model::take_events()).expect("the wake DPC completed the read");
    assert_eq!(status, 0);
    assert!(written > 24, "the read carries the attach event: {written} bytes");
    assert_eq!(model::queued_irps(), 0);
    close(&file);
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// A scenario (see the module doc).
pub fn internal_device_controls_from_user_mode_or_with_other_codes_are_refused(target: &Target) {
    let _run = model::begin();
    let loaded = load(target);
    let mut from_user = Request::new(IRP_MJ_INTERNAL_DEVICE_CONTROL, ptr::null_mut());
    from_user.irp.requestor_mode = 1;
    assert_eq!(from_user.send(IRP_MJ_INTERNAL_DEVICE_CONTROL), STATUS_ACCESS_DENIED);
    let mut other = Request::new(IRP_MJ_INTERNAL_DEVICE_CONTROL, ptr::null_mut());
    // SAFETY: the stack location this request owns.
    let location = unsafe { &mut *other.irp.current_stack_location };
    location.parameters.device_io_control.io_control_code = IOCTL_QUERY_VERSION;
    assert_eq!(other.send(IRP_MJ_INTERNAL_DEVICE_CONTROL), STATUS_INVALID_DEVICE_REQUEST);
    // The provider query with no request in it: refused by the provider table, completed.
    let mut empty = Request::new(IRP_MJ_INTERNAL_DEVICE_CONTROL, ptr::null_mut());
    // SAFETY: the stack location this request owns.
    let location = unsafe { &mut *empty.irp.current_stack_location };
    location.parameters.device_io_control.io_control_code = IOCTL_PROVIDER_QUERY_TABLE;
    let status = empty.send(IRP_MJ_INTERNAL_DEVICE_CONTROL);
    assert!(status < 0, "{status:#x}");
    let events = model::take_events();
    assert_eq!(from_user.completion(&events), Some((STATUS_ACCESS_DENIED, 0)));
    assert_eq!(empty.completion(&events), Some((status, 0)));
    assert!(model::violations().is_empty(), "{:#?}", model::violations());
    unload(loaded);
}

/// Loads the driver, opens a read-only handle and sends `IOCTL_QUERY_VERSION` with `system_buffer`
/// as the I/O manager's buffer and `output_length` as the output length; returns the dispatch
/// routine's status. The emulator's probe of special pool gives it a buffer shorter than the
/// length it claims (which the I/O manager never does): the driver's answer runs past the block.
/// Leaves the driver loaded and the handle open.
pub fn query_version_into(target: &Target, system_buffer: *mut c_void, output_length: usize) -> NtStatus {
    let loaded = load(target);
    let (file, status) = open(FILE_READ_DATA);
    assert_eq!(status, 0);
    let mut version = Request::device_control(file.ptr(), IOCTL_QUERY_VERSION, &[], 0);
    version.irp.system_buffer = system_buffer;
    // SAFETY: the stack location this request owns.
    let location = unsafe { &mut *version.irp.current_stack_location };
    location.parameters.device_io_control.output_buffer_length = u32::try_from(output_length).expect("short output");
    let status = version.send(IRP_MJ_DEVICE_CONTROL);
    std::mem::forget((loaded, file, version));
    status
}

/// The links `IOCTL_LIST_LINKS` answers on a read-only handle opened and closed for it (every
/// module, the first batch of up to 64). Called with no model event pending; takes the events
/// of its own requests.
pub fn listed_links() -> u32 {
    assert_eq!(model::take_events(), [], "listed_links is called with no event pending");
    let (file, status) = open(FILE_READ_DATA);
    assert_eq!(status, 0);
    let mut input = [0u8; 32];
    LinkQueryRepr { module: None, protocol_buffer: false, cursor: 0, max_entries: 64 }
        .emit(&mut LinkQuery::new_unchecked(&mut input[..]))
        .expect("link query");
    let mut list = Request::device_control(file.ptr(), IOCTL_LIST_LINKS, &input, 64 * 1024);
    assert_eq!(list.send(IRP_MJ_DEVICE_CONTROL), 0, "LIST_LINKS: {:?}", model::log());
    let (status, written) = list.completion(&model::take_events()).expect("LIST_LINKS completed");
    assert_eq!(status, 0);
    let answer = LinkListRepr::parse(&LinkList::new_unchecked(&list.buffer[..written])).expect("a LIST_LINKS answer");
    close(&file);
    model::take_events();
    answer.count
}
