//! The Windows transports: `\\.\WanLayer` opened for overlapped I/O.
//!
//! * [`WindowsTransport`]: every request is a `DeviceIoControl` waited for; an event read that
//!   pends is waited for with a timeout and cancelled (`CancelIoEx`) when it runs out.
//! * [`WindowsOverlapped`]: the same blocking calls, and requests that stay in flight
//!   ([`OverlappedTransport`], for [`AsyncDivert`](crate::divert_async::AsyncDivert) and
//!   [`AsyncEvents`](crate::events_async::AsyncEvents)). The handle is bound to an I/O completion
//!   port with one thread, which delivers each completion to the request whose `OVERLAPPED` it
//!   names and wakes its future; the requests, their buffers and their `OVERLAPPED`s are the
//!   platform-neutral [`Registry`]'s, which frees none of them before the kernel completed it.
//!   I/O on a handle bound to a completion port is thread-agnostic (Windows Vista and later): it
//!   is not tied to the thread that issued it, so a future may be polled by any thread of an
//!   executor, and a thread that exits does not cancel its reads. Both transports are `Send`.
//!
//! Every wanlayer IOCTL is `METHOD_BUFFERED`: the I/O manager copies the input into the system
//! buffer when the request is issued and the answer out of it when the request completes (for
//! completion-port I/O, at the latest when the port's thread dequeues the completion), so the
//! output buffer is written only between `DeviceIoControl` and the delivery of the completion.
//! The driver completes device controls with success or error statuses, never warnings (the
//! transport still handles a warning as the I/O manager does: completed, its packet queued).
//!
//! This module is compile-checked for x64, ARM64 and x86 (`cargo xtask test`) but is not run in
//! this project's CI, which has no Windows machine: the state machine it drives
//! ([`crate::overlapped`]) is what the tests exercise, against a fake system.

use std::ptr;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use wanlayer_proto::{Access, Status};
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_IO_PENDING, ERROR_OPERATION_ABORTED, ERROR_PATH_NOT_FOUND,
    GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, STATUS_PENDING, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, SetFileCompletionNotificationModes, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Threading::{CreateEventW, INFINITE};
use windows_sys::Win32::System::WindowsProgramming::{FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, FILE_SKIP_SET_EVENT_ON_HANDLE};
use windows_sys::Win32::System::IO::{
    CancelIoEx, CreateIoCompletionPort, DeviceIoControl, GetOverlappedResult, GetOverlappedResultEx, GetQueuedCompletionStatus,
    PostQueuedCompletionStatus, OVERLAPPED,
};

use crate::overlapped::{InFlight, Issued, OverlappedOs, OverlappedTransport, Registry, Started};
use crate::{ClientError, Result, Transport};

/// The control device's path.
pub const DEVICE_PATH: &str = r"\\.\WanLayer";

fn error_of(code: u32, context: &'static str) -> ClientError {
    match Status::from_win32_error(code) {
        Some(status) => ClientError::Driver(status),
        None => ClientError::Os { code, context },
    }
}

fn last_error() -> u32 {
    // SAFETY: GetLastError only reads the calling thread's last-error value.
    unsafe { GetLastError() }
}

/// An open handle of `\\.\WanLayer` and the event its blocking calls wait on.
struct Device {
    handle: HANDLE,
    event: HANDLE,
}

impl Device {
    fn open(access: Access) -> Result<Self> {
        let path: Vec<u16> = DEVICE_PATH.encode_utf16().chain(Some(0)).collect();
        let mut desired = 0;
        if access.allows(Access::READ) {
            desired |= GENERIC_READ;
        }
        if access.allows(Access::WRITE) {
            desired |= GENERIC_WRITE;
        }
        // SAFETY: `path` is a NUL-terminated UTF-16 string alive for the call; no security
        // attributes or template are passed.
        let handle = unsafe {
            CreateFileW(
                path.as_ptr(),
                desired,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                ptr::null_mut(),
            )
        };
        if handle == INVALID_HANDLE_VALUE {
            return Err(match last_error() {
                ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => ClientError::DriverNotFound,
                ERROR_ACCESS_DENIED => ClientError::AccessDenied,
                code => ClientError::Os { code, context: "opening \\\\.\\WanLayer" },
            });
        }
        // SAFETY: creates an unnamed manual-reset event; no pointers are passed but null ones.
        let event = unsafe { CreateEventW(ptr::null(), 1, 0, ptr::null()) };
        if event.is_null() {
            let code = last_error();
            // SAFETY: `handle` is the handle just opened, closed once here.
            unsafe { CloseHandle(handle) };
            return Err(ClientError::Os { code, context: "creating an event" });
        }
        Ok(Self { handle, event })
    }

    /// Sends a device control and waits for it (at most `timeout`, then cancels it).
    fn call(&mut self, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        let input_len = u32::try_from(input.len()).map_err(|_| ClientError::Driver(Status::InvalidParameter))?;
        let output_len = u32::try_from(output.len()).map_err(|_| ClientError::Driver(Status::InvalidParameter))?;
        // SAFETY: OVERLAPPED is a plain C structure for which all-zero is the documented initial
        // state.
        let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
        // The event's low-order bit set: no completion packet for this request even when the
        // handle is bound to a completion port (WindowsOverlapped); the wait ignores the bit.
        overlapped.hEvent = self.event.map_addr(|address| address | 1);
        let mut returned = 0u32;
        // SAFETY: the buffers and `overlapped` outlive the request: this function does not return
        // before it completed (or its cancellation did).
        let done = unsafe {
            DeviceIoControl(
                self.handle,
                code,
                input.as_ptr().cast(),
                input_len,
                output.as_mut_ptr().cast(),
                output_len,
                &mut returned,
                &mut overlapped,
            )
        };
        if done != 0 {
            return Ok(Some(returned as usize));
        }
        let error = last_error();
        if error != ERROR_IO_PENDING {
            return Err(error_of(error, "DeviceIoControl"));
        }
        let millis = timeout.map_or(INFINITE, |t| u32::try_from(t.as_millis()).unwrap_or(INFINITE - 1).min(INFINITE - 1));
        // SAFETY: `overlapped` is the one the pending request uses; `returned` is writable.
        let waited = unsafe { GetOverlappedResultEx(self.handle, &overlapped, &mut returned, millis, 0) };
        if waited != 0 {
            return Ok(Some(returned as usize));
        }
        let error = last_error();
        if error != WAIT_TIMEOUT {
            return Err(error_of(error, "waiting for DeviceIoControl"));
        }
        // SAFETY: cancels only the request that uses `overlapped`, still pending.
        unsafe { CancelIoEx(self.handle, &overlapped) };
        // SAFETY: waits for the cancelled request to complete, so the buffers can be released.
        let finished = unsafe { GetOverlappedResult(self.handle, &overlapped, &mut returned, 1) };
        if finished != 0 {
            return Ok(Some(returned as usize));
        }
        match last_error() {
            ERROR_OPERATION_ABORTED => Ok(None),
            error => Err(error_of(error, "cancelling DeviceIoControl")),
        }
    }

    /// Closes both handles (`IRP_MJ_CLEANUP`: the driver completes the handle's pending reads);
    /// once.
    fn close(&mut self) {
        for handle in [&mut self.event, &mut self.handle] {
            if !handle.is_null() {
                // SAFETY: opened by `open`, closed once: nulled here.
                unsafe { CloseHandle(*handle) };
                *handle = ptr::null_mut();
            }
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.close();
    }
}

// SAFETY: handles are process-wide values, usable from any thread; `&mut self` serialises the
// blocking calls that share the event.
unsafe impl Send for Device {}

/// An open handle of `\\.\WanLayer`.
pub struct WindowsTransport {
    device: Device,
}

impl WindowsTransport {
    /// Opens the control device with `access` (read for queries and event reads; write for
    /// resets, captures and injection).
    ///
    /// # Errors
    /// [`ClientError::DriverNotFound`] when the device does not exist,
    /// [`ClientError::AccessDenied`] when its security descriptor refuses the caller.
    pub fn open(access: Access) -> Result<Self> {
        Ok(Self { device: Device::open(access)? })
    }
}

impl Transport for WindowsTransport {
    fn call(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        self.device.call(code, input, output, None)?.ok_or(ClientError::Driver(Status::Cancelled))
    }

    fn call_pending(&mut self, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        self.device.call(code, input, output, timeout)
    }
}

/// The system part of [`WindowsOverlapped`]'s requests: `DeviceIoControl` and `CancelIoEx` on a
/// handle bound to a completion port with `FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`.
pub struct WindowsOs {
    device: HANDLE,
}

// SAFETY: a handle is a process-wide value, usable from any thread.
unsafe impl Send for WindowsOs {}
// SAFETY: as above; the calls made through it are thread-safe system calls.
unsafe impl Sync for WindowsOs {}

// SAFETY: a request that returns `Pending` has its completion packet queued to the handle's port
// (`ERROR_IO_PENDING`, or a warning status, which the I/O manager completes like a pending
// request), and the port's one thread delivers each packet to the registry once, after the I/O
// manager wrote the answer and the OVERLAPPED; a request that succeeds at once queues no packet
// (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) and one that fails at once with an error status queues
// none either, and neither touches its buffers again. OVERLAPPED is plain data.
unsafe impl OverlappedOs for WindowsOs {
    type Record = OVERLAPPED;

    fn record() -> OVERLAPPED {
        // SAFETY: OVERLAPPED is a plain C structure for which all-zero is the documented initial
        // state (no event: completion through the port).
        unsafe { std::mem::zeroed() }
    }

    unsafe fn issue(
        &self,
        code: u32,
        input: *const u8,
        input_len: usize,
        output: *mut u8,
        output_len: usize,
        record: *mut OVERLAPPED,
    ) -> Issued {
        let (Ok(input_len), Ok(output_len)) = (u32::try_from(input_len), u32::try_from(output_len)) else {
            return Issued::Finished(Err(ClientError::Driver(Status::InvalidParameter)));
        };
        let input = if input_len == 0 { ptr::null() } else { input.cast() };
        let output = if output_len == 0 { ptr::null_mut() } else { output.cast() };
        // SAFETY: the caller's promise: `record` is valid and the request's own.
        unsafe { (*record).Internal = STATUS_PENDING as u32 as usize };
        // SAFETY: the caller's promise: the buffers and the record stay valid until the request
        // finished or its completion was delivered; the handle stays open until every completion
        // was delivered (WindowsOverlapped's drop).
        let done = unsafe { DeviceIoControl(self.device, code, input, input_len, output, output_len, ptr::null_mut(), record) };
        if done != 0 {
            let mut written = 0u32;
            // SAFETY: the request finished at once; this reads its byte count from `record`.
            let read = unsafe { GetOverlappedResult(self.device, record, &mut written, 0) };
            return Issued::Finished(if read != 0 { Ok(written as usize) } else { Err(error_of(last_error(), "DeviceIoControl")) });
        }
        let error = last_error();
        if error == ERROR_IO_PENDING {
            return Issued::Pending;
        }
        // SAFETY: the caller's promise, as above; the system wrote the status it completed with
        // here, or left STATUS_PENDING when it failed the request before completing it.
        let status = unsafe { (*record).Internal } as u32;
        if status >> 30 == 2 {
            // A warning (NT_WARNING): completed, and its packet is queued.
            Issued::Pending
        } else {
            Issued::Finished(Err(error_of(error, "DeviceIoControl")))
        }
    }

    unsafe fn cancel(&self, record: *mut OVERLAPPED) {
        // SAFETY: the caller's promise: `record` names a request of this handle whose OVERLAPPED
        // is alive; CancelIoEx fails harmlessly (ERROR_NOT_FOUND) if it completed meanwhile.
        unsafe { CancelIoEx(self.device, record) };
    }
}

/// A handle of a completion port.
struct Port(HANDLE);

// SAFETY: a handle is a process-wide value, usable from any thread.
unsafe impl Send for Port {}

/// The completion port's thread: delivers every completion packet to the registry, until a packet
/// with no OVERLAPPED (posted by [`WindowsOverlapped`]'s drop) or a failure of the port.
fn deliver_completions(port: Port, registry: Arc<Registry<WindowsOs>>) {
    loop {
        let (mut transferred, mut key, mut overlapped) = (0u32, 0usize, ptr::null_mut::<OVERLAPPED>());
        // SAFETY: out-pointers to locals; the port stays open until this thread is joined.
        let dequeued = unsafe { GetQueuedCompletionStatus(port.0, &mut transferred, &mut key, &mut overlapped, INFINITE) };
        if overlapped.is_null() {
            return;
        }
        let result = if dequeued != 0 { Ok(transferred as usize) } else { Err(error_of(last_error(), "completing DeviceIoControl")) };
        // A waker that panics must not stop the deliveries: the drop of the transport waits for
        // every completion. The registry let go of the request before waking it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| registry.complete(overlapped, result)));
    }
}

/// A handle of `\\.\WanLayer` bound to its own I/O completion port: blocking calls as
/// [`WindowsTransport`]'s, and requests in flight for [`AsyncDivert`](crate::divert_async::AsyncDivert)
/// and [`AsyncEvents`](crate::events_async::AsyncEvents).
///
/// Dropping it cancels every request in flight, closes the handle (`IRP_MJ_CLEANUP`: the driver
/// completes whatever is still pending), and waits until every completion was delivered before it
/// stops the port's thread: the kernel never writes memory that was freed.
pub struct WindowsOverlapped {
    device: Device,
    registry: Arc<Registry<WindowsOs>>,
    port: Port,
    completions: Option<JoinHandle<()>>,
}

impl WindowsOverlapped {
    /// Opens the control device with `access`, binds the handle to a new completion port
    /// (success at once queues no packet) and starts the port's thread.
    ///
    /// # Errors
    /// As [`WindowsTransport::open`]; a system error creating the port or its thread.
    pub fn open(access: Access) -> Result<Self> {
        let device = Device::open(access)?;
        // SAFETY: `device.handle` is open for overlapped I/O; creates a new port for it.
        let port = unsafe { CreateIoCompletionPort(device.handle, ptr::null_mut(), 0, 1) };
        if port.is_null() {
            return Err(ClientError::Os { code: last_error(), context: "creating an I/O completion port" });
        }
        let modes = (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE) as u8;
        // SAFETY: `device.handle` is open.
        if unsafe { SetFileCompletionNotificationModes(device.handle, modes) } == 0 {
            let code = last_error();
            // SAFETY: the port just created, closed once; no thread uses it.
            unsafe { CloseHandle(port) };
            return Err(ClientError::Os { code, context: "setting completion notification modes" });
        }
        let registry = Arc::new(Registry::new(WindowsOs { device: device.handle }));
        let (thread_port, thread_registry) = (Port(port), Arc::clone(&registry));
        let spawned = std::thread::Builder::new()
            .name("wanlayer-completions".into())
            .spawn(move || deliver_completions(thread_port, thread_registry));
        match spawned {
            Ok(thread) => Ok(Self { device, registry, port: Port(port), completions: Some(thread) }),
            Err(error) => {
                // SAFETY: the port just created, closed once; its thread never started.
                unsafe { CloseHandle(port) };
                Err(ClientError::Os {
                    code: error.raw_os_error().and_then(|code| u32::try_from(code).ok()).unwrap_or(0),
                    context: "starting the completion thread",
                })
            }
        }
    }
}

impl Transport for WindowsOverlapped {
    fn call(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        self.device.call(code, input, output, None)?.ok_or(ClientError::Driver(Status::Cancelled))
    }

    fn call_pending(&mut self, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        self.device.call(code, input, output, timeout)
    }
}

impl OverlappedTransport for WindowsOverlapped {
    type Request = InFlight<WindowsOs>;

    fn start(&mut self, code: u32, input: &[u8], output_len: usize) -> Result<Started<InFlight<WindowsOs>>> {
        self.registry.start(code, input, output_len)
    }

    fn poll_request(&mut self, request: &mut InFlight<WindowsOs>, waker: &Waker) -> Poll<Result<Vec<u8>>> {
        self.registry.poll(request, waker)
    }

    fn cancel(&mut self, request: InFlight<WindowsOs>) {
        self.registry.cancel(request);
    }
}

impl Drop for WindowsOverlapped {
    fn drop(&mut self) {
        self.registry.cancel_all();
        self.device.close();
        self.registry.wait_idle();
        // SAFETY: a packet with no OVERLAPPED: the port's thread returns when it dequeues it.
        let posted = unsafe { PostQueuedCompletionStatus(self.port.0, 0, 0, ptr::null()) };
        if posted == 0 {
            // The thread cannot be told to stop: the port stays open for it (closing it under a
            // thread that may call GetQueuedCompletionStatus again could hand it a reused handle).
            return;
        }
        if let Some(thread) = self.completions.take() {
            let _ = thread.join();
        }
        // SAFETY: the port created by `open`, closed once; its thread has stopped.
        unsafe { CloseHandle(self.port.0) };
    }
}

// Both transports, and the futures over the overlapped one, may move between an executor's threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<WindowsTransport>();
    send::<WindowsOverlapped>();
    send::<crate::divert_async::ReadFuture<'static, WindowsOverlapped>>();
    send::<crate::events_async::NextEvent<'static, WindowsOverlapped>>();
};
