//! [`Connection`]: a vendor driver's reference on `\Device\WanLayer` and the table it got through
//! it; [`Attachment`]: a filter registered through a connection, deregistered before the
//! connection is let go.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::{self, NonNull};

use wanlayer_ndis::imports;
use wanlayer_ndis::io::{IoStatusBlock, STATUS_PENDING};
use wanlayer_ndis::kernel::{DeviceObject, FileObject, KEvent, EXECUTIVE, FILE_READ_DATA, KERNEL_MODE, NOTIFICATION_EVENT};
use wanlayer_ndis::types::UnicodeString;

use crate::abi::{self, Status};
use crate::client::{self, Provider, ProviderTable, Registration};
use crate::vendor_filter::VendorFilter;

/// [`abi::CONTROL_DEVICE_NAME`] in UTF-16 (no NUL: a `UNICODE_STRING` is counted).
static DEVICE_NAME: [u16; abi::CONTROL_DEVICE_NAME.len()] = {
    let bytes = abi::CONTROL_DEVICE_NAME.as_bytes();
    let mut units = [0u16; abi::CONTROL_DEVICE_NAME.len()];
    let mut i = 0;
    while i < bytes.len() {
        units[i] = bytes[i] as u16;
        i += 1;
    }
    units
};

/// How long [`Connection::open_waiting`] sleeps between attempts: 100 ms, in the negative
/// (relative) 100 ns units of `KeDelayExecutionThread`.
const RETRY_INTERVAL_100NS: i64 = -1_000_000;

/// A vendor driver's connection to wanlayer: the referenced file object of its control device
/// (which keeps wanlayer.sys loaded) and the provider table it answered with.
pub struct Connection {
    file_object: NonNull<FileObject>,
    device: NonNull<DeviceObject>,
    table: ProviderTable<'static>,
}

// SAFETY: the file object pointer is only ever passed to `ObfDereferenceObject` (once, in `drop`),
// callable from any thread; the device pointer only to `IofCallDriver` (`query`), callable from
// any thread at PASSIVE_LEVEL; the table is `Send + Sync`.
unsafe impl Send for Connection {}
// SAFETY: as above: nothing is mutated through a shared connection.
unsafe impl Sync for Connection {}

/// Drops a reference taken by `IoGetDeviceObjectPointer`.
///
/// # Safety
/// `file_object` carries a reference of the caller's, given up here.
unsafe fn release(file_object: NonNull<FileObject>) {
    // SAFETY: the caller's reference, dropped once (<= DISPATCH_LEVEL).
    unsafe { imports::ObfDereferenceObject(file_object.as_ptr().cast()) };
}

impl Connection {
    /// Opens `\Device\WanLayer` and asks for the provider table.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// [`Status::OBJECT_NAME_NOT_FOUND`] when wanlayer is not loaded (yet); the status the request
    /// failed with ([`Status::REVISION_MISMATCH`] when wanlayer does not serve this SDK's version,
    /// [`Status::DEVICE_NOT_READY`] while it starts); what [`ProviderTable::from_answer`] found.
    pub fn open() -> Result<Self, Status> {
        let mut name = UnicodeString {
            length: (DEVICE_NAME.len() * 2) as u16,
            maximum_length: (DEVICE_NAME.len() * 2) as u16,
            buffer: DEVICE_NAME.as_ptr().cast_mut(),
        };
        let mut file_object: *mut FileObject = ptr::null_mut();
        let mut device: *mut DeviceObject = ptr::null_mut();
        // SAFETY: PASSIVE_LEVEL (the caller's); the name is a counted string in the image, the
        // out pointers are this frame's.
        let status = unsafe { imports::IoGetDeviceObjectPointer(&mut name, FILE_READ_DATA, &mut file_object, &mut device) };
        if status < 0 {
            return Err(Status(status));
        }
        let Some(file_object) = NonNull::new(file_object) else {
            return Err(Status::OBJECT_NAME_NOT_FOUND);
        };
        let Some(device) = NonNull::new(device) else {
            // SAFETY: the reference IoGetDeviceObjectPointer took for us, given up once.
            unsafe { release(file_object) };
            return Err(Status::OBJECT_NAME_NOT_FOUND);
        };
        // SAFETY: `device` is the top of the device's stack, valid while `file_object` is
        // referenced, which it is until the end of this call at least.
        match unsafe { query_table(device) } {
            Ok(table) => Ok(Self { file_object, device, table }),
            Err(status) => {
                // SAFETY: the reference IoGetDeviceObjectPointer took for us, given up once.
                unsafe { release(file_object) };
                Err(status)
            }
        }
    }

    /// [`Connection::open`], retried every 100 ms while wanlayer is not there yet
    /// ([`Status::OBJECT_NAME_NOT_FOUND`], [`Status::DEVICE_NOT_READY`]), for up to `wait_ms`.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// The last status once the time is up, or any other failure at once.
    pub fn open_waiting(wait_ms: u32) -> Result<Self, Status> {
        let mut waited_ms = 0;
        loop {
            match Self::open() {
                Err(Status::OBJECT_NAME_NOT_FOUND | Status::DEVICE_NOT_READY) if waited_ms < wait_ms => {
                    let mut interval = RETRY_INTERVAL_100NS;
                    // SAFETY: PASSIVE_LEVEL (the caller's), a non-alertable relative wait on a
                    // stack variable.
                    let _ = unsafe { imports::KeDelayExecutionThread(KERNEL_MODE, 0, &mut interval) };
                    waited_ms += 100;
                }
                result => return result,
            }
        }
    }

    /// The provider table, valid while the connection is.
    pub fn table(&self) -> ProviderTable<'_> {
        self.table
    }

    /// Sends `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` again, as a vendor that speaks the interface
    /// itself does (a C vendor, one of another version): `request` as it is, and `table` as the
    /// output buffer, all of it. Returns the status wanlayer completed the request with and the
    /// bytes it wrote (`IoStatus.Information`); nothing is checked.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    pub fn query(&self, request: &abi::ProviderRequest, table: &mut [u8]) -> (Status, usize) {
        let table_len = u32::try_from(table.len()).unwrap_or(u32::MAX);
        // SAFETY: PASSIVE_LEVEL (the caller's); the device is referenced through `self`; the
        // request is readable for its size and the buffer writable for `table_len` bytes, both
        // until the call returns.
        unsafe { send_query(self.device, request, table.as_mut_ptr().cast(), table_len) }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: the reference `open` took, given up once.
        unsafe { release(self.file_object) };
    }
}

/// Sends `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` to `device` and checks the answer.
///
/// # Safety
/// `PASSIVE_LEVEL`; `device` is wanlayer's control device, referenced by the caller until the
/// table is no longer used (hence `'static` here: the caller keeps its file object referenced).
unsafe fn query_table(device: NonNull<DeviceObject>) -> Result<ProviderTable<'static>, Status> {
    let request = client::request();
    let mut table = abi::ProviderTable {
        size: 0,
        version: 0,
        provider: ptr::null_mut(),
        register_filter: None,
        deregister_filter: None,
        reinject: None,
        query_links: None,
        query_time: None,
        packet_length: None,
        packet_read: None,
        packet_write: None,
        packet_replace: None,
        packet_ticket: None,
    };
    let size = size_of::<abi::ProviderTable>() as u32;
    // SAFETY: the caller's promises; the request and the table are this frame's.
    let (status, written) = unsafe { send_query(device, &request, ptr::from_mut(&mut table).cast(), size) };
    if !status.is_success() {
        return Err(status);
    }
    // SAFETY: written by wanlayer's provider, which stays loaded while the caller's file object is
    // referenced (the caller's promise).
    unsafe { ProviderTable::from_answer(&table, written) }
}

/// Sends `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE` with `request` and an output buffer of `table_len`
/// bytes at `table` to `device` as an internal device control, waits for it if it is pended, and
/// returns its `IoStatus` (status, bytes written).
///
/// # Safety
/// `PASSIVE_LEVEL`; `device` is wanlayer's control device, referenced by the caller; `table` is
/// writable for `table_len` bytes until this returns.
unsafe fn send_query(device: NonNull<DeviceObject>, request: &abi::ProviderRequest, table: *mut c_void, table_len: u32) -> (Status, usize) {
    let event = KEvent::new();
    let mut io_status = IoStatusBlock::new();
    // SAFETY: a notification event on this (resident, kernel-mode waiting) stack.
    unsafe { imports::KeInitializeEvent(event.as_ptr(), NOTIFICATION_EVENT, 0) };
    // SAFETY: PASSIVE_LEVEL; METHOD_NEITHER passes the request and the table as they are: the
    // caller's, which outlive the request (completed or waited for below). The provider only reads
    // the request.
    let irp = unsafe {
        imports::IoBuildDeviceIoControlRequest(
            abi::IOCTL_WANLAYER_PROVIDER_QUERY_TABLE,
            device.as_ptr(),
            ptr::from_ref(request).cast_mut().cast::<c_void>(),
            size_of::<abi::ProviderRequest>() as u32,
            table,
            table_len,
            1,
            event.as_ptr(),
            &mut io_status,
        )
    };
    if irp.is_null() {
        return (Status::INSUFFICIENT_RESOURCES, 0);
    }
    // SAFETY: the IRP just built for `device`, handed over once.
    let mut status = unsafe { imports::IofCallDriver(device.as_ptr(), irp) };
    if status == STATUS_PENDING {
        // SAFETY: the request's event, waited for in kernel mode (the stack stays resident).
        let _ = unsafe { imports::KeWaitForSingleObject(event.as_ptr().cast(), EXECUTIVE, KERNEL_MODE, 0, ptr::null_mut()) };
        status = io_status.status;
    }
    (Status(status), io_status.information)
}

/// A filter registered through its own [`Connection`]: dropping it deregisters first (returning
/// once no callback runs and what the filter took is handed on), then lets go of the connection.
pub struct Attachment<F: VendorFilter> {
    // Field order is drop order: the registration goes while the connection still keeps
    // wanlayer loaded.
    registration: Registration<'static, F>,
    _connection: Connection,
}

impl<F: VendorFilter> Attachment<F> {
    /// Connects (waiting up to `wait_ms` for wanlayer to appear) and registers `filter` as `name`
    /// at `altitude`.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// The status connecting or registering failed with.
    pub fn attach(name: &str, altitude: u32, filter: F, wait_ms: u32) -> Result<Self, Status> {
        let connection = Connection::open_waiting(wait_ms)?;
        // The table is valid as long as the connection, which the attachment keeps until after
        // the registration is gone (field order).
        let table = connection.table;
        let registration = table.register(name, altitude, filter)?;
        Ok(Self { registration, _connection: connection })
    }

    /// The filter.
    pub fn filter(&self) -> &F {
        self.registration.filter()
    }

    /// The filter's handle on the provider, for reinjection from a timer.
    pub fn provider(&self) -> Provider<'_> {
        self.registration.provider()
    }

    /// True once wanlayer revoked the registration.
    pub fn is_revoked(&self) -> bool {
        self.registration.is_revoked()
    }

    /// Deregisters, then lets go of the connection.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// The status deregistration failed with (the connection is let go regardless).
    pub fn detach(self) -> Result<(), Status> {
        let Self { registration, _connection } = self;
        registration.deregister()
    }
}
