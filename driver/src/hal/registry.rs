//! [`RuleStore`] over the registry: the administrator's rule set lives in the driver's service
//! key, `<RegistryPath>\Parameters`, as the values `Rules` (`REG_BINARY`, the compiled set exactly
//! as set; empty for no rules) and `RulesAltitude` (`REG_DWORD`).
//!
//! `DriverEntry` keeps the `RegistryPath` it receives ([`remember_service_key`]) before the engine
//! loads the saved set; every later replacement writes both values. A path longer than
//! [`MAX_KEY_UNITS`] leaves the store disabled: nothing is loaded, and saving fails (logged by
//! the engine). Every call here runs at `PASSIVE_LEVEL` (`DriverEntry`, `IRP_MJ_DEVICE_CONTROL`).

use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use wanlayer_core::hal::{RuleStore, StoreError};
use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::NtStatus;
use wanlayer_ndis::registry::{
    Handle, KeyValuePartialInformation, ObjectAttributes, KEY_QUERY_VALUE, KEY_SET_VALUE, KEY_VALUE_PARTIAL_DATA_OFFSET,
    KEY_VALUE_PARTIAL_INFORMATION_CLASS, REG_BINARY, REG_DWORD, REG_OPTION_NON_VOLATILE, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_OBJECT_NAME_NOT_FOUND,
};
use wanlayer_ndis::types::UnicodeString;

use super::KernelHal;

/// Longest service key path kept, in UTF-16 units (`\REGISTRY\MACHINE\SYSTEM\ControlSet001\
/// Services\wanlayer` is about 60).
pub const MAX_KEY_UNITS: usize = 256;

/// `\Parameters`, appended to the service key.
const PARAMETERS: [u16; 11] = utf16(b"\\Parameters");
/// The value holding the compiled set.
const RULES_VALUE: [u16; 5] = utf16(b"Rules");
/// The value holding its altitude.
const ALTITUDE_VALUE: [u16; 13] = utf16(b"RulesAltitude");

/// The service key `DriverEntry` was given (units, then their count; 0: not kept).
static SERVICE_KEY: [AtomicU16; MAX_KEY_UNITS] = [const { AtomicU16::new(0) }; MAX_KEY_UNITS];
static SERVICE_KEY_UNITS: AtomicUsize = AtomicUsize::new(0);

/// ASCII as UTF-16, at compile time.
const fn utf16<const N: usize>(ascii: &[u8; N]) -> [u16; N] {
    let mut units = [0u16; N];
    let mut at = 0;
    while at < N {
        units[at] = ascii[at] as u16;
        at += 1;
    }
    units
}

/// A `UNICODE_STRING` over `units` (at most 32,767 of them: callers pass short fixed arrays).
fn unicode(units: &[u16]) -> UnicodeString {
    let bytes = u16::try_from(units.len().saturating_mul(2)).unwrap_or(0xFFFE);
    UnicodeString { length: bytes, maximum_length: bytes, buffer: units.as_ptr().cast_mut() }
}

/// Keeps the service key path `DriverEntry` received.
///
/// # IRQL
/// `PASSIVE_LEVEL`, in `DriverEntry` before the engine loads the saved rules.
///
/// # Safety
/// `registry_path` is null or the `UNICODE_STRING` the I/O manager passed to `DriverEntry`
/// (valid for its duration).
pub unsafe fn remember_service_key(registry_path: *const UnicodeString) {
    // SAFETY: the caller's promise: null or a valid UNICODE_STRING.
    let Some(path) = (unsafe { registry_path.as_ref() }) else { return };
    let units = usize::from(path.length / 2);
    if units > MAX_KEY_UNITS || path.buffer.is_null() {
        return;
    }
    // SAFETY: a valid UNICODE_STRING's buffer holds `Length` bytes.
    let source = unsafe { core::slice::from_raw_parts(path.buffer, units) };
    for (place, unit) in SERVICE_KEY.iter().zip(source) {
        place.store(*unit, Ordering::Relaxed);
    }
    SERVICE_KEY_UNITS.store(units, Ordering::Release);
}

/// `<service key>\Parameters` into `path`; the units used, `None` when no key was kept.
fn parameters_key(path: &mut [u16; MAX_KEY_UNITS + PARAMETERS.len()]) -> Option<usize> {
    let units = SERVICE_KEY_UNITS.load(Ordering::Acquire);
    if units == 0 || units > MAX_KEY_UNITS {
        return None;
    }
    for (place, unit) in path.iter_mut().zip(SERVICE_KEY.iter().take(units)) {
        *place = unit.load(Ordering::Relaxed);
    }
    path.get_mut(units..units + PARAMETERS.len())?.copy_from_slice(&PARAMETERS);
    Some(units + PARAMETERS.len())
}

fn failed(status: NtStatus) -> StoreError {
    StoreError(status as u32)
}

fn no_memory() -> StoreError {
    failed(wanlayer_ndis::io::STATUS_INSUFFICIENT_RESOURCES)
}

/// An open registry key, closed when dropped.
struct Key(Handle);

impl Key {
    /// Opens (`create`: creating) the service key's `Parameters` subkey with `access`; `None`
    /// when it does not exist and may not be created.
    fn parameters(access: u32, create: bool) -> Result<Option<Key>, StoreError> {
        let mut path = [0u16; MAX_KEY_UNITS + PARAMETERS.len()];
        let units = parameters_key(&mut path).ok_or(StoreError(STATUS_OBJECT_NAME_NOT_FOUND as u32))?;
        let name = unicode(&path[..units]);
        let attributes = ObjectAttributes::kernel(&name);
        let mut handle: Handle = ptr::null_mut();
        let status = if create {
            // SAFETY: at PASSIVE_LEVEL; `attributes` names a kernel handle and points at `name`,
            // which points at `path`, all alive for the call; class and disposition may be null.
            unsafe { imports::ZwCreateKey(&mut handle, access, &attributes, 0, ptr::null(), REG_OPTION_NON_VOLATILE, ptr::null_mut()) }
        } else {
            // SAFETY: as above, without the optional arguments.
            unsafe { imports::ZwOpenKey(&mut handle, access, &attributes) }
        };
        match status {
            0 => Ok(Some(Key(handle))),
            STATUS_OBJECT_NAME_NOT_FOUND if !create => Ok(None),
            status => Err(failed(status)),
        }
    }

    /// Reads value `name` (`KEY_VALUE_PARTIAL_INFORMATION`) into a fallibly allocated buffer;
    /// `None` when the value does not exist.
    fn query(&self, name: &[u16]) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        let name = unicode(name);
        let mut header = [0u8; KEY_VALUE_PARTIAL_DATA_OFFSET + 4];
        let mut needed = 0u32;
        // SAFETY: at PASSIVE_LEVEL, an open key; `header` is writable for the length given and
        // `needed` receives the length the value would take.
        let status = unsafe {
            imports::ZwQueryValueKey(
                self.0,
                &name,
                KEY_VALUE_PARTIAL_INFORMATION_CLASS,
                header.as_mut_ptr().cast::<c_void>(),
                header.len() as u32,
                &mut needed,
            )
        };
        let mut buffer = Vec::new();
        match status {
            0 => {
                buffer.try_reserve_exact(header.len()).map_err(|_| no_memory())?;
                #[allow(clippy::disallowed_methods, reason = "within the capacity just reserved: no allocation")]
                buffer.extend_from_slice(&header);
            }
            STATUS_OBJECT_NAME_NOT_FOUND => return Ok(None),
            STATUS_BUFFER_OVERFLOW | STATUS_BUFFER_TOO_SMALL => {
                let len = usize::try_from(needed).map_err(|_| failed(STATUS_BUFFER_OVERFLOW))?;
                buffer.try_reserve_exact(len).map_err(|_| no_memory())?;
                #[allow(clippy::disallowed_methods, reason = "within the capacity just reserved: no allocation")]
                buffer.resize(len, 0);
                let mut written = 0u32;
                // SAFETY: at PASSIVE_LEVEL, an open key; `buffer` holds `len` writable bytes.
                let status = unsafe {
                    imports::ZwQueryValueKey(
                        self.0,
                        &name,
                        KEY_VALUE_PARTIAL_INFORMATION_CLASS,
                        buffer.as_mut_ptr().cast::<c_void>(),
                        needed,
                        &mut written,
                    )
                };
                if status != 0 {
                    return Err(failed(status));
                }
            }
            status => return Err(failed(status)),
        }
        let fixed = buffer.get(..KEY_VALUE_PARTIAL_DATA_OFFSET).ok_or(failed(STATUS_BUFFER_TOO_SMALL))?;
        let field = |at: usize| fixed.get(at..at + 4).and_then(|bytes| bytes.try_into().ok()).map_or(0, u32::from_le_bytes);
        let info = KeyValuePartialInformation { title_index: field(0), value_type: field(4), data_length: field(8) };
        let data_len = usize::try_from(info.data_length).map_err(|_| failed(STATUS_BUFFER_OVERFLOW))?;
        let end = KEY_VALUE_PARTIAL_DATA_OFFSET.checked_add(data_len).ok_or(failed(STATUS_BUFFER_OVERFLOW))?;
        if end > buffer.len() {
            return Err(failed(STATUS_BUFFER_OVERFLOW));
        }
        buffer.truncate(end);
        buffer.drain(..KEY_VALUE_PARTIAL_DATA_OFFSET);
        Ok(Some((info.value_type, buffer)))
    }

    /// Writes value `name`.
    fn set(&self, name: &[u16], value_type: u32, data: &[u8]) -> Result<(), StoreError> {
        let name = unicode(name);
        let size = u32::try_from(data.len()).map_err(|_| failed(STATUS_BUFFER_OVERFLOW))?;
        // SAFETY: at PASSIVE_LEVEL, a key opened with KEY_SET_VALUE; `data` is readable for
        // `size` bytes.
        let status = unsafe { imports::ZwSetValueKey(self.0, &name, 0, value_type, data.as_ptr().cast::<c_void>(), size) };
        if status == 0 {
            Ok(())
        } else {
            Err(failed(status))
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: a handle ZwOpenKey / ZwCreateKey returned, closed once, at PASSIVE_LEVEL.
        let _ = unsafe { imports::ZwClose(self.0) };
    }
}

impl RuleStore for KernelHal {
    fn load_rules(&self, found: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        if SERVICE_KEY_UNITS.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let Some(key) = Key::parameters(KEY_QUERY_VALUE, false)? else { return Ok(()) };
        // Whatever its type, the value goes to the engine's validation: a value that is not a
        // valid set (a wrong type among others) is refused and reported there.
        let Some((_, blob)) = key.query(&RULES_VALUE)? else { return Ok(()) };
        let altitude = match key.query(&ALTITUDE_VALUE)? {
            Some((REG_DWORD, bytes)) => bytes.get(..4).and_then(|bytes| bytes.try_into().ok()).map_or(0, u32::from_le_bytes),
            _ => 0,
        };
        drop(key);
        found(altitude, &blob);
        Ok(())
    }

    fn save_rules(&self, altitude: u32, blob: &[u8]) -> Result<(), StoreError> {
        let Some(key) = Key::parameters(KEY_QUERY_VALUE | KEY_SET_VALUE, true)? else {
            return Err(StoreError(STATUS_OBJECT_NAME_NOT_FOUND as u32));
        };
        key.set(&RULES_VALUE, REG_BINARY, blob)?;
        key.set(&ALTITUDE_VALUE, REG_DWORD, &altitude.to_le_bytes())
    }
}
