//! The control device `\\.\WanLayer` through the driver's own dispatch routines: handles opened
//! with `IRP_MJ_CREATE` on a file object of their own, device controls as `METHOD_BUFFERED` IRPs
//! (one stack location, the system buffer), and `IRP_MJ_CLEANUP` + `IRP_MJ_CLOSE` at close, as
//! the I/O manager sends them; what `IofCompleteRequest` reported is the answer. A request the
//! driver pends is kept until it completes it (its wake DPC, cleanup, or a cancellation through
//! its cancel-safe queue, as `CancelIoEx` makes one).

use std::ffi::c_void;

use wanlayer_kernel_model as model;
use wanlayer_ndis::io::{FileObjectLayout, IoSecurityContext, IoStackLocation, IrpLayout};
use wanlayer_ndis::kernel::{
    Irp, NtStatus, FILE_READ_DATA, FILE_WRITE_DATA, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL,
};
use wanlayer_proto::ioctl::Access;
use wanlayer_proto::Status;
use wanlayer_sim::{HandleId, IoCompletion, IoId, IoOutcome};

use crate::driver_filter::DriverFilter;
use crate::invoke;

/// `STATUS_PENDING`.
const STATUS_PENDING: NtStatus = 0x103;
/// `STATUS_OBJECT_NAME_NOT_FOUND`: what opening `\\.\WanLayer` answers while no driver made it.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NtStatus = 0xC000_0034_u32 as NtStatus;

/// An IRP with its one stack location, security context and system buffer, reached only through
/// raw pointers (the driver keeps the IRP's address while it pends).
pub(crate) struct Request {
    irp: *mut IrpLayout,
    location: *mut IoStackLocation,
    security: *mut IoSecurityContext,
    /// The system buffer: a `Vec`'s elements, of this capacity.
    buffer: *mut [u8],
    capacity: usize,
}

/// A zeroed I/O structure (all-zero is valid for these: integers, raw pointers, unions of them).
fn zeroed<T>() -> *mut T {
    // SAFETY: only instantiated with `repr(C)` I/O manager structures, for which all-zero bytes
    // are a valid value.
    Box::into_raw(Box::new(unsafe { std::mem::zeroed::<T>() }))
}

impl Request {
    fn new(major: usize, file: *mut FileObjectLayout, buffer: Vec<u8>) -> Self {
        let (irp, location, security) = (zeroed::<IrpLayout>(), zeroed::<IoStackLocation>(), zeroed::<IoSecurityContext>());
        let mut buffer = std::mem::ManuallyDrop::new(buffer);
        let capacity = buffer.capacity();
        let buffer = std::ptr::slice_from_raw_parts_mut(buffer.as_mut_ptr(), buffer.len());
        // SAFETY: (these writes) the structures just allocated, reached only through these pointers.
        unsafe { (*location).major_function = u8::try_from(major).unwrap_or(u8::MAX) };
        // SAFETY: as above.
        unsafe { (*location).file_object = file.cast() };
        // SAFETY: as above.
        unsafe { (*irp).current_stack_location = location };
        // SAFETY: as above.
        unsafe { (*irp).stack_count = 1 };
        // SAFETY: as above.
        unsafe { (*irp).current_location = 1 };
        Self { irp, location, security, buffer, capacity }
    }

    /// The system buffer of a completed IRP, for another request (the IRP keeps an empty one).
    fn take_buffer(&mut self) -> Vec<u8> {
        let empty = std::ptr::slice_from_raw_parts_mut(std::ptr::NonNull::<u8>::dangling().as_ptr(), 0);
        let buffer = std::mem::replace(&mut self.buffer, empty);
        let capacity = std::mem::replace(&mut self.capacity, 0);
        // SAFETY: the elements and capacity of the `Vec` `new` took apart (or of an empty one),
        // given back once: the request now holds an empty buffer of capacity 0.
        unsafe { Vec::from_raw_parts(buffer.cast::<u8>(), buffer.len(), capacity) }
    }

    fn as_irp(&self) -> *mut Irp {
        self.irp.cast()
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // SAFETY: (each) allocated by `Box::into_raw` in `new`/`zeroed`, freed once here, after the
        // driver completed the IRP.
        drop(unsafe { Box::from_raw(self.irp) });
        // SAFETY: as above.
        drop(unsafe { Box::from_raw(self.location) });
        // SAFETY: as above.
        drop(unsafe { Box::from_raw(self.security) });
        drop(self.take_buffer());
    }
}

impl DriverFilter {
    /// Sends `request` to the control device's dispatch routine for `major` at `PASSIVE_LEVEL`
    /// and returns what it returned and, if the driver completed it, `(status, information)`.
    fn dispatch(&self, major: usize, request: &Request) -> (NtStatus, Option<(NtStatus, usize)>) {
        let Some(device) = model::control_device() else { return (wanlayer_ndis::io::STATUS_INVALID_PARAMETER, None) };
        let Some(dispatch) = device.dispatch.get(major).copied().flatten() else {
            return (wanlayer_ndis::io::STATUS_INVALID_PARAMETER, None);
        };
        // An IRP about to be sent has no completion yet: one recorded at its address is stale, left
        // by an earlier IRP there that this module did not send (a vendor driver's internal device
        // control through the SDK's kernel client), whose memory the new one reuses.
        self.forget_irp_completion(request.as_irp().addr());
        let entered = self.enter(wanlayer_core::hal::PathContext::default());
        // SAFETY: an IRP for the driver's device in the I/O manager's layout, at PASSIVE_LEVEL,
        // not completed yet; its memory lives until the driver completed it.
        let returned = unsafe { invoke::dispatch(dispatch, device.device, request.as_irp()) };
        self.settle(entered, None);
        let completed = self.take_irp_completion(request.as_irp().addr());
        (returned, completed)
    }

    /// Opens a handle on the control device with `access` (`FILE_READ_DATA` for reading,
    /// `FILE_WRITE_DATA` for writing).
    ///
    /// # Errors
    /// The status the driver's `IRP_MJ_CREATE` completed with; [`STATUS_OBJECT_NAME_NOT_FOUND`]
    /// while the driver is not loaded (no control device).
    pub fn control_open(&self, access: Access) -> Result<HandleId, NtStatus> {
        if model::control_device().is_none() {
            return Err(STATUS_OBJECT_NAME_NOT_FOUND);
        }
        let file = zeroed::<FileObjectLayout>();
        let request = Request::new(IRP_MJ_CREATE, file, Vec::new());
        let mut desired = 0;
        if access.allows(Access::READ) {
            desired |= FILE_READ_DATA;
        }
        if access.allows(Access::WRITE) {
            desired |= FILE_WRITE_DATA;
        }
        // SAFETY: (both) the request's own structures, not yet given to the driver.
        unsafe { (*request.security).desired_access = desired };
        // SAFETY: as above.
        let parameters = unsafe { &mut (*request.location).parameters };
        // SAFETY: `create` is the union member of IRP_MJ_CREATE (all-zero valid).
        let create = unsafe { &mut parameters.create };
        create.security_context = request.security;
        let (returned, completed) = self.dispatch(IRP_MJ_CREATE, &request);
        let status = completed.map_or(returned, |(status, _)| status);
        if status != 0 {
            // SAFETY: the file object allocated above, which the driver refused.
            drop(unsafe { Box::from_raw(file) });
            return Err(status);
        }
        let id = HandleId(file.expose_provenance() as u64);
        self.files.borrow_mut().insert(id.0, file);
        Ok(id)
    }

    /// A buffered device control on `handle`.
    pub fn control_ioctl(&self, handle: HandleId, code: u32, input: &[u8], output_len: usize) -> IoOutcome {
        let io = IoId(self.next_io.get() + 1);
        self.next_io.set(io.0);
        let Some(&file) = self.files.borrow().get(&handle.0) else {
            return IoOutcome::Complete(IoCompletion { id: io, status: Status::InvalidParameter, output: Vec::new() });
        };
        // The last completed request's system buffer, zeroed again: no allocation per request
        // (under Miri a new one each time, so that a driver writing one it completed is caught).
        let mut buffer = if cfg!(miri) { Vec::new() } else { std::mem::take(&mut *self.spare_system_buffer.borrow_mut()) };
        buffer.clear();
        buffer.resize(input.len().max(output_len), 0);
        buffer[..input.len()].copy_from_slice(input);
        let mut request = Request::new(IRP_MJ_DEVICE_CONTROL, file, buffer);
        // SAFETY: (these writes) the request's own structures, not yet given to the driver;
        // `device_io_control` is the union member of IRP_MJ_DEVICE_CONTROL.
        unsafe { (*request.irp).system_buffer = request.buffer.cast::<c_void>() };
        // SAFETY: as above.
        let parameters = unsafe { &mut (*request.location).parameters };
        // SAFETY: `device_io_control` is the union member of IRP_MJ_DEVICE_CONTROL (all-zero valid).
        let parameters = unsafe { &mut parameters.device_io_control };
        parameters.io_control_code = code;
        parameters.input_buffer_length = u32::try_from(input.len()).unwrap_or(u32::MAX);
        parameters.output_buffer_length = u32::try_from(output_len).unwrap_or(u32::MAX);
        let (returned, completed) = self.dispatch(IRP_MJ_DEVICE_CONTROL, &request);
        match completed {
            Some((status, information)) => {
                // SAFETY: the system buffer, completed: the driver no longer writes it.
                let output = unsafe { &*request.buffer };
                let written = information.min(output_len).min(output.len());
                let output = output[..written].to_vec();
                *self.spare_system_buffer.borrow_mut() = request.take_buffer();
                IoOutcome::Complete(IoCompletion { id: io, status: Status::from(status as u32), output })
            }
            None if returned == STATUS_PENDING => {
                self.pending_irps.borrow_mut().push((io, output_len, request));
                IoOutcome::Pending(io)
            }
            None => IoOutcome::Complete(IoCompletion { id: io, status: Status::from(returned as u32), output: Vec::new() }),
        }
    }

    /// How a device control that pended was completed, once the driver completed it (then it is
    /// forgotten: asked again, `None`).
    pub fn control_completion(&self, io: IoId) -> Option<IoCompletion> {
        let mut pending = self.pending_irps.borrow_mut();
        let at = pending.iter().position(|(pended, _, _)| *pended == io)?;
        let (status, information) = self.take_irp_completion(pending[at].2.as_irp().addr())?;
        let (_, output_len, request) = pending.remove(at);
        // SAFETY: the system buffer of a completed IRP: the driver no longer writes it.
        let output = unsafe { &*request.buffer };
        let written = information.min(output_len).min(output.len());
        Some(IoCompletion { id: io, status: Status::from(status as u32), output: output[..written].to_vec() })
    }

    /// Cancels a device control that pended, as `CancelIoEx` does: if the driver's cancel-safe
    /// queue still holds it, the queue gives it up and the driver completes it
    /// `STATUS_CANCELLED` ([`DriverFilter::control_completion`] then says so). False when no queue
    /// holds it (completed already, or being serviced).
    pub fn control_cancel(&self, io: IoId) -> bool {
        let irp = {
            let pending = self.pending_irps.borrow();
            let Some((_, _, request)) = pending.iter().find(|(pended, _, _)| *pended == io) else { return false };
            request.as_irp()
        };
        let entered = self.enter(wanlayer_core::hal::PathContext::default());
        // SAFETY: an IRP built here and sent to the driver, which pended it; it stays allocated in
        // `pending_irps` until its completion is taken or the world ends.
        let cancelled = unsafe { model::cancel_irp(irp) };
        self.settle(entered, None);
        cancelled
    }

    /// Lets the processor run what the driver queued while no call into it was in progress: the
    /// kernel's clock moves to the simulator's, so the driver's timers that came due fire (the
    /// divert expiry timer), and the DPCs queued meanwhile run — an engine call made from outside
    /// the driver's handlers (a test adding a hook, a script step) may have queued the wake DPC,
    /// which completes the pending reads it finds something for. Nothing while the driver is not
    /// loaded.
    pub fn control_service(&self) {
        if model::control_device().is_none() {
            return;
        }
        let entered = self.enter(wanlayer_core::hal::PathContext::default());
        self.settle(entered, None);
    }

    /// Closes `handle`: `IRP_MJ_CLEANUP` (the driver completes what it still has pending), then
    /// `IRP_MJ_CLOSE`.
    pub fn control_close(&self, handle: HandleId) {
        let Some(file) = self.files.borrow_mut().remove(&handle.0) else { return };
        for major in [IRP_MJ_CLEANUP, IRP_MJ_CLOSE] {
            let request = Request::new(major, file, Vec::new());
            self.dispatch(major, &request);
        }
        // SAFETY: the handle's file object, closed: the driver no longer refers to it.
        drop(unsafe { Box::from_raw(file) });
    }
}
