//! NDIS basics: status values, handles, `UNICODE_STRING`, `NDIS_OBJECT_HEADER`, `GUID`, media.

use core::ffi::c_void;
use core::fmt;
use core::ptr;

/// `NDIS_STATUS` as it crosses the ABI (a C `int`; the bits are what matter).
///
/// This crate depends on no other of the workspace, so it speaks the raw value; the engine's
/// `wanlayer_core::NdisStatus` is the typed one (`NdisStatus(raw)`, `status.0`).
pub type RawNdisStatus = u32;

/// `NDIS_PORT_NUMBER`.
pub type PortNumber = u32;

/// `NET_IFINDEX`.
pub type NetIfIndex = u32;

/// `NET_LUID` (a `ULONG64` union; only its value is used).
pub type NetLuid = u64;

/// A zero-sized field placed before a `ULONG64` / `NET_LUID` field of a C structure: it aligns
/// that field to 8 bytes where the target's C ABI aligns 8-byte integers to 4 only (32-bit x86
/// outside Windows: the kernel model's 32-bit host build, which the emulator runs x86 images
/// against), as MSVC does on x86; elsewhere it changes nothing.
#[cfg_attr(all(target_arch = "x86", not(target_os = "windows")), repr(C, align(8)))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Ulong64Alignment;

macro_rules! ndis_handle {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(*mut c_void);

        impl $name {
            /// The null handle.
            pub const NULL: Self = Self(ptr::null_mut());

            /// Wraps a raw handle value.
            pub const fn from_raw(raw: *mut c_void) -> Self {
                Self(raw)
            }

            /// The raw handle value.
            pub const fn as_raw(self) -> *mut c_void {
                self.0
            }

            /// True for the null handle.
            pub fn is_null(self) -> bool {
                self.0.is_null()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:p})"), self.0)
            }
        }

        // SAFETY: a handle is an opaque token that NDIS accepts from any processor; this crate never
        // dereferences it, so moving it between threads cannot race on anything.
        unsafe impl Send for $name {}
        // SAFETY: as for `Send`: sharing `&handle` only shares the token value.
        unsafe impl Sync for $name {}
    };
}

ndis_handle! {
    /// Any `NDIS_HANDLE`: what functions that accept several kinds of handle take
    /// (`NdisAllocateMemoryWithTagPriority`, `NdisAllocateNetBufferListPool`).
    NdisHandle
}

ndis_handle! {
    /// The `NdisFilterDriverHandle` `NdisFRegisterFilterDriver` returns.
    FilterDriverHandle
}

ndis_handle! {
    /// The `NdisFilterHandle` NDIS passes to `FilterAttach`: identifies one filter module in every
    /// `NdisF*` call.
    FilterModuleHandle
}

ndis_handle! {
    /// A `NET_BUFFER_LIST` pool (`NdisAllocateNetBufferListPool`).
    NblPoolHandle
}

ndis_handle! {
    /// The `NdisDeviceHandle` of a control device (`NdisRegisterDeviceEx`).
    DeviceHandle
}

ndis_handle! {
    /// A context of the filter's own that NDIS passes back: the `FilterDriverContext` given to
    /// `NdisFRegisterFilterDriver`, the `FilterModuleContext` given to `NdisFSetAttributes`.
    ContextHandle
}

macro_rules! into_ndis_handle {
    ($($name:ident),+) => {$(
        impl From<$name> for NdisHandle {
            fn from(handle: $name) -> Self {
                NdisHandle(handle.0)
            }
        }
    )+};
}

into_ndis_handle!(FilterDriverHandle, FilterModuleHandle, NblPoolHandle, DeviceHandle);

/// `UNICODE_STRING` (and `NDIS_STRING`): counted UTF-16, not necessarily NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UnicodeString {
    /// `Length`: bytes in use, not counting any terminating NUL.
    pub length: u16,
    /// `MaximumLength`: bytes the buffer holds.
    pub maximum_length: u16,
    /// `Buffer`.
    pub buffer: *mut u16,
}

impl UnicodeString {
    /// A string describing `units`, for names that live as long as the driver (`FriendlyName`,
    /// `UniqueName`, `ServiceName`, device and link names). NDIS never writes through them.
    ///
    /// # Panics
    /// When `units` is longer than 32,767 code units (`Length` is a byte count in a `u16`); in a
    /// `const` that is a compile error.
    pub const fn from_static(units: &'static [u16]) -> Self {
        assert!(units.len() <= (u16::MAX / 2) as usize, "UNICODE_STRING longer than 32767 units");
        let bytes = (units.len() * 2) as u16;
        Self { length: bytes, maximum_length: bytes, buffer: units.as_ptr().cast_mut() }
    }
}

/// `NDIS_OBJECT_HEADER`: type, revision and size at the start of every NDIS 6 structure.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdisObjectHeader {
    /// `Type`: one of [`object_type`].
    pub object_type: u8,
    /// `Revision`.
    pub revision: u8,
    /// `Size`: bytes of the structure as of `revision`.
    pub size: u16,
}

impl NdisObjectHeader {
    /// A header for a structure of `size` bytes.
    ///
    /// # Panics
    /// When `size` does not fit in a `u16` (every NDIS structure does; in a `const` this is a
    /// compile error).
    pub const fn new(object_type: u8, revision: u8, size: usize) -> Self {
        assert!(size <= u16::MAX as usize, "NDIS structure larger than 64 KiB");
        Self { object_type, revision, size: size as u16 }
    }
}

/// `NDIS_OBJECT_TYPE_*` values for [`NdisObjectHeader::object_type`].
pub mod object_type {
    /// `NDIS_OBJECT_TYPE_DEFAULT` (e.g. `NET_BUFFER_LIST_POOL_PARAMETERS`).
    pub const DEFAULT: u8 = 0x80;
    /// `NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES`.
    pub const DEVICE_OBJECT_ATTRIBUTES: u8 = 0x85;
    /// `NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS`.
    pub const FILTER_DRIVER_CHARACTERISTICS: u8 = 0x8B;
    /// `NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES`.
    pub const FILTER_ATTRIBUTES: u8 = 0x8D;
    /// `NDIS_OBJECT_TYPE_OID_REQUEST`.
    pub const OID_REQUEST: u8 = 0x96;
    /// `NDIS_OBJECT_TYPE_STATUS_INDICATION`.
    pub const STATUS_INDICATION: u8 = 0x98;
    /// `NDIS_OBJECT_TYPE_FILTER_ATTACH_PARAMETERS`.
    pub const FILTER_ATTACH_PARAMETERS: u8 = 0x99;
    /// `NDIS_OBJECT_TYPE_FILTER_PAUSE_PARAMETERS`.
    pub const FILTER_PAUSE_PARAMETERS: u8 = 0x9A;
    /// `NDIS_OBJECT_TYPE_FILTER_RESTART_PARAMETERS`.
    pub const FILTER_RESTART_PARAMETERS: u8 = 0x9B;
}

/// `GUID`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Guid {
    /// `Data1`.
    pub data1: u32,
    /// `Data2`.
    pub data2: u16,
    /// `Data3`.
    pub data3: u16,
    /// `Data4`.
    pub data4: [u8; 8],
}

/// `NDIS_MEDIUM`, as the `MiniportMediaType` of attach and restart parameters carries it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum NdisMedium {
    /// `NdisMedium802_3` (0): Ethernet. NdisWan's IP and IPv6 edges present themselves so.
    Ethernet,
    /// `NdisMediumWan` (3): NdisWan's network-monitor edge.
    Wan,
    /// `NdisMediumWirelessWan` (9).
    WirelessWan,
    /// A value without a name here, kept as it was.
    Unknown(u32),
}

impl From<u32> for NdisMedium {
    fn from(value: u32) -> Self {
        match value {
            0 => Self::Ethernet,
            3 => Self::Wan,
            9 => Self::WirelessWan,
            other => Self::Unknown(other),
        }
    }
}

impl From<NdisMedium> for u32 {
    fn from(value: NdisMedium) -> Self {
        match value {
            NdisMedium::Ethernet => 0,
            NdisMedium::Wan => 3,
            NdisMedium::WirelessWan => 9,
            NdisMedium::Unknown(other) => other,
        }
    }
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<NdisHandle>() == 8 && size_of::<ContextHandle>() == 8);
    assert!(offset_of!(UnicodeString, length) == 0);
    assert!(offset_of!(UnicodeString, maximum_length) == 2);
    assert!(offset_of!(UnicodeString, buffer) == 8);
    assert!(size_of::<UnicodeString>() == 16);
    assert!(offset_of!(NdisObjectHeader, object_type) == 0);
    assert!(offset_of!(NdisObjectHeader, revision) == 1);
    assert!(offset_of!(NdisObjectHeader, size) == 2);
    assert!(size_of::<NdisObjectHeader>() == 4);
    assert!(offset_of!(Guid, data2) == 4 && offset_of!(Guid, data3) == 6 && offset_of!(Guid, data4) == 8);
    assert!(size_of::<Guid>() == 16 && align_of::<Guid>() == 4);
};

// x86 (`x86-facts.md` §3): handles and `UNICODE_STRING.Buffer` are 4 bytes.
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<NdisHandle>() == 4 && size_of::<ContextHandle>() == 4);
    assert!(offset_of!(UnicodeString, maximum_length) == 2);
    assert!(offset_of!(UnicodeString, buffer) == 4);
    assert!(size_of::<UnicodeString>() == 8);
    assert!(size_of::<NdisObjectHeader>() == 4);
    assert!(size_of::<Guid>() == 16 && align_of::<Guid>() == 4);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};
    use std::println;

    #[test]
    fn basic_layouts_match_the_headers() {
        let unicode = [
            ("Length", offset_of!(UnicodeString, length), 0),
            ("MaximumLength", offset_of!(UnicodeString, maximum_length), 2),
            ("Buffer", offset_of!(UnicodeString, buffer), 8),
        ];
        for (name, got, want) in unicode {
            println!("UNICODE_STRING.{name} @ {got:#x}");
            assert_eq!(got, want, "UNICODE_STRING.{name}");
        }
        assert_eq!(size_of::<UnicodeString>(), 16);
        assert_eq!(size_of::<NdisObjectHeader>(), 4);
        assert_eq!(offset_of!(NdisObjectHeader, size), 2);
        assert_eq!(size_of::<Guid>(), 16);
    }

    #[test]
    fn handles_convert_and_print() {
        let raw = ptr::without_provenance_mut::<c_void>(0x1000);
        let module = FilterModuleHandle::from_raw(raw);
        assert_eq!(NdisHandle::from(module).as_raw(), raw);
        assert!(!module.is_null());
        assert!(FilterDriverHandle::NULL.is_null());
        assert_eq!(std::format!("{module:?}"), "FilterModuleHandle(0x1000)");
    }

    #[test]
    fn unicode_string_from_static_counts_bytes() {
        static NAME: [u16; 5] = [b'w' as u16, b'a' as u16, b'n' as u16, b'l' as u16, b'r' as u16];
        const S: UnicodeString = UnicodeString::from_static(&NAME);
        assert_eq!((S.length, S.maximum_length), (10, 10));
        assert_eq!(S.buffer.cast_const(), NAME.as_ptr());
        let header = NdisObjectHeader::new(object_type::FILTER_ATTRIBUTES, 1, 8);
        assert_eq!((header.object_type, header.revision, header.size), (0x8D, 1, 8));
    }

    #[test]
    fn medium_round_trips_every_value() {
        for value in (0..=12).chain([u32::MAX]) {
            assert_eq!(u32::from(NdisMedium::from(value)), value);
        }
        assert_eq!(NdisMedium::from(0), NdisMedium::Ethernet);
        assert_eq!(NdisMedium::from(3), NdisMedium::Wan);
        assert_eq!(NdisMedium::from(9), NdisMedium::WirelessWan);
        assert_eq!(NdisMedium::from(7), NdisMedium::Unknown(7));
    }
}
