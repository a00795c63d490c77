//! The registry's kernel interface, as the driver uses it to keep the administrator's rule set in
//! its service key (`ZwOpenKey`, `ZwCreateKey`, `ZwQueryValueKey`, `ZwSetValueKey`, `ZwClose`):
//! `OBJECT_ATTRIBUTES`, the `KEY_VALUE_PARTIAL_INFORMATION` header, and the constants those calls
//! take, with their `wdm.h` values and layouts (the same on x64 and ARM64).

use core::ffi::c_void;

use crate::types::UnicodeString;

/// A kernel handle (`HANDLE`).
pub type Handle = *mut c_void;

/// `OBJECT_ATTRIBUTES`: names the key to open or create.
#[repr(C)]
#[derive(Debug)]
pub struct ObjectAttributes {
    /// `Length`: `size_of::<ObjectAttributes>()`.
    pub length: u32,
    /// `RootDirectory`: null for an absolute name.
    pub root_directory: Handle,
    /// `ObjectName`.
    pub object_name: *const UnicodeString,
    /// `Attributes`: `OBJ_*` flags.
    pub attributes: u32,
    /// `SecurityDescriptor`: null for the default.
    pub security_descriptor: *mut c_void,
    /// `SecurityQualityOfService`: null.
    pub security_quality_of_service: *mut c_void,
}

impl ObjectAttributes {
    /// `InitializeObjectAttributes(name, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, NULL)`:
    /// a kernel handle to an absolute, case-insensitive name.
    pub const fn kernel(name: *const UnicodeString) -> Self {
        Self {
            length: core::mem::size_of::<ObjectAttributes>() as u32,
            root_directory: core::ptr::null_mut(),
            object_name: name,
            attributes: OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE,
            security_descriptor: core::ptr::null_mut(),
            security_quality_of_service: core::ptr::null_mut(),
        }
    }
}

/// The fixed part of `KEY_VALUE_PARTIAL_INFORMATION`; the value's bytes follow at
/// [`KEY_VALUE_PARTIAL_DATA_OFFSET`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyValuePartialInformation {
    /// `TitleIndex`.
    pub title_index: u32,
    /// `Type`: `REG_*`.
    pub value_type: u32,
    /// `DataLength`: bytes of the value.
    pub data_length: u32,
}

/// Where the value's bytes start in a `KEY_VALUE_PARTIAL_INFORMATION` (`Data`).
pub const KEY_VALUE_PARTIAL_DATA_OFFSET: usize = 12;
/// `KeyValuePartialInformation` of `KEY_VALUE_INFORMATION_CLASS`.
pub const KEY_VALUE_PARTIAL_INFORMATION_CLASS: u32 = 2;
/// `OBJ_CASE_INSENSITIVE`.
pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
/// `OBJ_KERNEL_HANDLE`: the handle is the kernel's, not the current process's.
pub const OBJ_KERNEL_HANDLE: u32 = 0x200;
/// `KEY_QUERY_VALUE`.
pub const KEY_QUERY_VALUE: u32 = 0x0001;
/// `KEY_SET_VALUE`.
pub const KEY_SET_VALUE: u32 = 0x0002;
/// `REG_OPTION_NON_VOLATILE`: the key survives reboots.
pub const REG_OPTION_NON_VOLATILE: u32 = 0;
/// `REG_BINARY`.
pub const REG_BINARY: u32 = 3;
/// `REG_DWORD` (little-endian).
pub const REG_DWORD: u32 = 4;
/// `STATUS_OBJECT_NAME_NOT_FOUND`: no such key or value.
pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
/// `STATUS_BUFFER_OVERFLOW`: the value did not fit; `ResultLength` says what would.
pub const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005_u32 as i32;
/// `STATUS_BUFFER_TOO_SMALL`: the buffer cannot even hold the fixed part.
pub const STATUS_BUFFER_TOO_SMALL: i32 = 0xC000_0023_u32 as i32;

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(ObjectAttributes, length) == 0);
    assert!(offset_of!(ObjectAttributes, root_directory) == 8);
    assert!(offset_of!(ObjectAttributes, object_name) == 16);
    assert!(offset_of!(ObjectAttributes, attributes) == 24);
    assert!(offset_of!(ObjectAttributes, security_descriptor) == 32);
    assert!(offset_of!(ObjectAttributes, security_quality_of_service) == 40);
    assert!(size_of::<ObjectAttributes>() == 48 && align_of::<ObjectAttributes>() == 8);
    assert!(offset_of!(KeyValuePartialInformation, title_index) == 0);
    assert!(offset_of!(KeyValuePartialInformation, value_type) == 4);
    assert!(offset_of!(KeyValuePartialInformation, data_length) == 8);
    assert!(size_of::<KeyValuePartialInformation>() == KEY_VALUE_PARTIAL_DATA_OFFSET);
};

// x86 (`wdm.h`: `ULONG Length; HANDLE RootDirectory; PUNICODE_STRING ObjectName; ULONG Attributes;
// PVOID SecurityDescriptor; PVOID SecurityQualityOfService;`, every field 4 bytes).
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(ObjectAttributes, length) == 0);
    assert!(offset_of!(ObjectAttributes, root_directory) == 4);
    assert!(offset_of!(ObjectAttributes, object_name) == 8);
    assert!(offset_of!(ObjectAttributes, attributes) == 12);
    assert!(offset_of!(ObjectAttributes, security_descriptor) == 16);
    assert!(offset_of!(ObjectAttributes, security_quality_of_service) == 20);
    assert!(size_of::<ObjectAttributes>() == 24 && align_of::<ObjectAttributes>() == 4);
    assert!(offset_of!(KeyValuePartialInformation, data_length) == 8);
    assert!(size_of::<KeyValuePartialInformation>() == KEY_VALUE_PARTIAL_DATA_OFFSET);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_attributes_name_a_kernel_handle_case_insensitively() {
        let name = UnicodeString::from_static(&[0x41]);
        let attributes = ObjectAttributes::kernel(&name);
        assert_eq!(attributes.length, 48);
        assert_eq!(attributes.attributes, 0x240);
        assert!(attributes.root_directory.is_null());
        assert_eq!(STATUS_OBJECT_NAME_NOT_FOUND as u32, 0xC000_0034);
    }
}
