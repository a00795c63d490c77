//! The Windows transport: `\\.\WanLayer` opened for overlapped I/O; every request is a
//! `DeviceIoControl` waited for, and an event read that pends is waited for with a timeout and
//! cancelled (`CancelIoEx`) when it runs out.

use std::ptr;
use std::time::Duration;

use wanlayer_proto::{Access, Status};
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_IO_PENDING, ERROR_OPERATION_ABORTED, ERROR_PATH_NOT_FOUND,
    GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING};
use windows_sys::Win32::System::Threading::{CreateEventW, INFINITE};
use windows_sys::Win32::System::IO::{CancelIoEx, DeviceIoControl, GetOverlappedResult, GetOverlappedResultEx, OVERLAPPED};

use crate::{ClientError, Result, Transport};

/// The control device's path.
pub const DEVICE_PATH: &str = r"\\.\WanLayer";

/// An open handle of `\\.\WanLayer`.
pub struct WindowsTransport {
    device: HANDLE,
    event: HANDLE,
}

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

impl WindowsTransport {
    /// Opens the control device with `access` (read for queries and event reads; write for
    /// resets, captures and injection).
    ///
    /// # Errors
    /// [`ClientError::DriverNotFound`] when the device does not exist,
    /// [`ClientError::AccessDenied`] when its security descriptor refuses the caller.
    pub fn open(access: Access) -> Result<Self> {
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
        let device = unsafe {
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
        if device == INVALID_HANDLE_VALUE {
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
            // SAFETY: `device` is the handle just opened, closed once here.
            unsafe { CloseHandle(device) };
            return Err(ClientError::Os { code, context: "creating an event" });
        }
        Ok(Self { device, event })
    }

    /// Sends a device control and waits for it (at most `timeout`, then cancels it).
    fn issue(&mut self, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        let input_len = u32::try_from(input.len()).map_err(|_| ClientError::Driver(Status::InvalidParameter))?;
        let output_len = u32::try_from(output.len()).map_err(|_| ClientError::Driver(Status::InvalidParameter))?;
        // SAFETY: OVERLAPPED is a plain C structure for which all-zero is the documented initial
        // state.
        let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
        overlapped.hEvent = self.event;
        let mut returned = 0u32;
        // SAFETY: the buffers and `overlapped` outlive the request: this function does not return
        // before it completed (or its cancellation did).
        let done = unsafe {
            DeviceIoControl(
                self.device,
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
        let waited = unsafe { GetOverlappedResultEx(self.device, &overlapped, &mut returned, millis, 0) };
        if waited != 0 {
            return Ok(Some(returned as usize));
        }
        let error = last_error();
        if error != WAIT_TIMEOUT {
            return Err(error_of(error, "waiting for DeviceIoControl"));
        }
        // SAFETY: cancels only the request that uses `overlapped`, still pending.
        unsafe { CancelIoEx(self.device, &overlapped) };
        // SAFETY: waits for the cancelled request to complete, so the buffers can be released.
        let finished = unsafe { GetOverlappedResult(self.device, &overlapped, &mut returned, 1) };
        if finished != 0 {
            return Ok(Some(returned as usize));
        }
        match last_error() {
            ERROR_OPERATION_ABORTED => Ok(None),
            error => Err(error_of(error, "cancelling DeviceIoControl")),
        }
    }
}

impl Transport for WindowsTransport {
    fn call(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        self.issue(code, input, output, None)?.ok_or(ClientError::Driver(Status::Cancelled))
    }

    fn call_pending(&mut self, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        self.issue(code, input, output, timeout)
    }
}

impl Drop for WindowsTransport {
    fn drop(&mut self) {
        // SAFETY: both handles were opened by `open` and are closed once, here.
        unsafe { CloseHandle(self.event) };
        // SAFETY: as above.
        unsafe { CloseHandle(self.device) };
    }
}
