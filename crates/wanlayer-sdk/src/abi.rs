//! The C ABI of the provider interface: every structure, function type and constant a vendor
//! driver and wanlayer.sys exchange, `#[repr(C)]`, with its C declaration recorded beside it.
//!
//! **This file is the one definition.** `include/wanlayer.h` is generated from the descriptors
//! here ([`CStruct`], [`CFunctionType`], [`CConst`]; `cargo xtask sdk-header`), and so is the C
//! file that makes a C compiler assert, field by field, the sizes and offsets Rust computed. The
//! compile-time assertions at the end of this file pin the layout for 64-bit targets (x64 and
//! ARM64 share it; so does the 64-bit Linux host the tests run on: only fixed-size integers,
//! pointers and arrays of them, no `long`), and [`X86_LAYOUT`] pins it for 32-bit x86, where
//! pointers are 4 bytes and `uint64_t` stays 8-aligned in structures (MSVC's rule, and rustc's
//! `i686-pc-windows-msvc`).
//!
//! # Versioning
//!
//! * Every structure a caller passes in or gets back starts with `Size` and `Version`.
//!   Structures only ever grow by appending fields; a reader accepts any `Size` at least the size
//!   it knows for that version and reads only the fields it knows; a writer writes no more than
//!   the caller's `Size` and reports how much it wrote.
//! * [`PROVIDER_VERSION`] is raised on any change a caller must know about. wanlayer serves every
//!   version from [`PROVIDER_VERSION_MIN`] to [`PROVIDER_VERSION`]; any other is refused with
//!   [`STATUS_REVISION_MISMATCH`], a size below the first version's with
//!   [`STATUS_INFO_LENGTH_MISMATCH`]. Nothing is ever guessed.
//! * Arrays of [`LinkInfo`] carry their element size, so a newer `LinkInfo` can be longer.
//!
//! # Calling convention
//!
//! Every function pointer is `extern "system"` (`WLAPI` in C: `__stdcall`, which x64 and ARM64
//! compilers ignore: there is one calling convention there).

use core::ffi::c_void;
use core::marker::{PhantomData, PhantomPinned};
use core::mem::{align_of, offset_of, size_of};

/// One field of a C structure, as the header declares it and as Rust laid it out.
#[derive(Clone, Copy, Debug)]
pub struct CField {
    /// The C type (`uint32_t`, `void *`, a typedef name).
    pub c_type: &'static str,
    /// The C member name.
    pub name: &'static str,
    /// What follows the name in the declaration (an array bound), or empty.
    pub suffix: &'static str,
    /// The Rust documentation of the field, one line per entry.
    pub doc: &'static [&'static str],
    /// Its offset in the Rust structure.
    pub offset: usize,
    /// Its size in the Rust structure.
    pub size: usize,
}

/// A C structure, as the header declares it and as Rust laid it out.
#[derive(Clone, Copy, Debug)]
pub struct CStruct {
    /// The C name (a typedef of `struct <name>`).
    pub name: &'static str,
    /// The Rust documentation of the structure.
    pub doc: &'static [&'static str],
    /// Its size in Rust.
    pub size: usize,
    /// Its alignment in Rust.
    pub align: usize,
    /// Its fields, in order.
    pub fields: &'static [CField],
}

/// A C function pointer typedef.
#[derive(Clone, Copy, Debug)]
pub struct CFunctionType {
    /// The typedef name.
    pub name: &'static str,
    /// The Rust documentation of the type.
    pub doc: &'static [&'static str],
    /// The C return type.
    pub returns: &'static str,
    /// The parameters: C type and name.
    pub params: &'static [(&'static str, &'static str)],
}

/// The value of a C constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CValue {
    /// An unsigned number, written in decimal.
    U32(u32),
    /// An unsigned number, written in hexadecimal (codes).
    Hex(u32),
    /// An `NTSTATUS` value, written as a `WL_STATUS` cast of its hexadecimal form.
    Status(i32),
    /// A wide-string literal (`L"..."`) of ASCII text.
    WideString(&'static str),
}

/// A C constant (`#define`).
#[derive(Clone, Copy, Debug)]
pub struct CConst {
    /// The macro name.
    pub name: &'static str,
    /// The Rust documentation of the constant.
    pub doc: &'static [&'static str],
    /// Its value.
    pub value: CValue,
}

/// Declares a `#[repr(C)]` structure and its [`CStruct`] descriptor (`<Type>::C`) from one list of
/// fields, each with its C type and member name (and an array bound when it is one).
macro_rules! c_struct {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident as $c_name:literal {
            $(
                $(#[doc = $field_doc:literal])*
                pub $field:ident: $ty:ty => ($c_type:literal, $c_field:literal $(, $suffix:literal)?),
            )+
        }
    ) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            $( $(#[doc = $field_doc])* pub $field: $ty, )+
        }

        impl $name {
            #[doc = concat!("The C declaration of `", $c_name, "` and the Rust layout it must match.")]
            pub const C: CStruct = CStruct {
                name: $c_name,
                doc: &[$($doc),*],
                size: size_of::<$name>(),
                align: align_of::<$name>(),
                fields: &[$(CField {
                    c_type: $c_type,
                    name: $c_field,
                    suffix: c_struct!(@suffix $($suffix)?),
                    doc: &[$($field_doc),*],
                    offset: offset_of!($name, $field),
                    size: size_of::<$ty>(),
                }),+],
            };
        }
    };
    (@suffix) => { "" };
    (@suffix $suffix:literal) => { $suffix };
}

/// Declares an `unsafe extern "system"` function pointer type and its [`CFunctionType`]
/// descriptor (the constant named after `=`), from one parameter list with the C types.
macro_rules! c_function {
    (
        $(#[doc = $doc:literal])*
        pub type $name:ident as $c_name:literal, $descriptor:ident =
            fn($($param:ident: $param_ty:ty => ($c_param_ty:literal, $c_param:literal)),* $(,)?)
            $(-> $ret:ty)? => $c_ret:literal;
    ) => {
        $(#[doc = $doc])*
        pub type $name = unsafe extern "system" fn($($param: $param_ty),*) $(-> $ret)?;

        #[doc = concat!("The C declaration of `", $c_name, "`.")]
        pub const $descriptor: CFunctionType = CFunctionType {
            name: $c_name,
            doc: &[$($doc),*],
            returns: $c_ret,
            params: &[$(($c_param_ty, $c_param)),*],
        };
    };
}

/// Declares constants and [`CONSTANTS`], their descriptors in header order.
macro_rules! c_consts {
    ($(
        $(#[doc = $doc:literal])*
        pub const $name:ident: $ty:ty = $value:expr => $c_name:literal as $kind:ident;
    )+) => {
        $( $(#[doc = $doc])* pub const $name: $ty = $value; )+

        /// Every constant of the header, in order.
        pub const CONSTANTS: &[CConst] = &[$(CConst { name: $c_name, doc: &[$($doc),*], value: CValue::$kind($name) }),+];
    };
}

c_consts! {
    /// The interface version this build speaks: raised on any change a caller must know about.
    pub const PROVIDER_VERSION: u32 = 1 => "WL_PROVIDER_VERSION" as U32;
    /// The oldest interface version wanlayer still serves.
    pub const PROVIDER_VERSION_MIN: u32 = 1 => "WL_PROVIDER_VERSION_MIN" as U32;
    /// Bytes of a filter name (UTF-8, NUL-padded; a name of exactly this length has no NUL).
    pub const FILTER_NAME_MAX: u32 = 32 => "WL_FILTER_NAME_MAX" as U32;
    /// Filters that can be registered at once, every vendor together.
    pub const MAX_FILTERS: u32 = 16 => "WL_MAX_FILTERS" as U32;
    /// `CTL_CODE(FILE_DEVICE_NETWORK, 0x880, METHOD_NEITHER, FILE_ANY_ACCESS)`: the internal
    /// device control (`IRP_MJ_INTERNAL_DEVICE_CONTROL`, kernel callers only) that fills in a
    /// `WL_PROVIDER_TABLE`. Input: a `WL_PROVIDER_REQUEST` (`Type3InputBuffer`). Output: the
    /// table (`Irp->UserBuffer`), `OutputBufferLength` bytes at least the first version's table;
    /// `IoStatus.Information` says how many bytes were written.
    pub const IOCTL_WANLAYER_PROVIDER_QUERY_TABLE: u32 = 0x0012_2203 => "IOCTL_WANLAYER_PROVIDER_QUERY_TABLE" as Hex;
    /// The control device a vendor opens with `IoGetDeviceObjectPointer`.
    pub const CONTROL_DEVICE_NAME: &str = "\\Device\\WanLayer" => "WL_CONTROL_DEVICE_NAME" as WideString;
    /// Verdict: hand the packet on unchanged.
    pub const VERDICT_PASS: u32 = 0 => "WL_VERDICT_PASS" as U32;
    /// Verdict: drop it (a send is completed with a failure status, a receive is returned).
    pub const VERDICT_DROP: u32 = 1 => "WL_VERDICT_DROP" as U32;
    /// Verdict: hand it on after the edits made with `PacketWrite` / `PacketReplace`.
    pub const VERDICT_MODIFY: u32 = 2 => "WL_VERDICT_MODIFY" as U32;
    /// Verdict: keep it under the ticket `PacketTicket` gave, until `Reinject`.
    pub const VERDICT_TAKE: u32 = 3 => "WL_VERDICT_TAKE" as U32;
    /// Reinjection: continue along the chain after the filter, then on to the destination.
    pub const REINJECT_PASS: u32 = 0 => "WL_REINJECT_PASS" as U32;
    /// Reinjection: drop the packet (counted as the filter's drop).
    pub const REINJECT_DROP: u32 = 1 => "WL_REINJECT_DROP" as U32;
    /// `STATUS_SUCCESS`.
    pub const STATUS_SUCCESS: i32 = 0 => "WL_STATUS_SUCCESS" as Status;
    /// `STATUS_BUFFER_OVERFLOW` (a warning): `QueryLinks` filled the array and `*Count` says how
    /// many links there are.
    pub const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005_u32 as i32 => "WL_STATUS_BUFFER_OVERFLOW" as Status;
    /// `STATUS_DEVICE_BUSY` (a warning): the filter is still being registered; try again.
    pub const STATUS_DEVICE_BUSY: i32 = 0x8000_0011_u32 as i32 => "WL_STATUS_DEVICE_BUSY" as Status;
    /// `STATUS_INFO_LENGTH_MISMATCH`: a `Size` (or buffer length) below the first version's.
    pub const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32 as i32 => "WL_STATUS_INFO_LENGTH_MISMATCH" as Status;
    /// `STATUS_INVALID_HANDLE`: no filter is registered under that handle (any more).
    pub const STATUS_INVALID_HANDLE: i32 = 0xC000_0008_u32 as i32 => "WL_STATUS_INVALID_HANDLE" as Status;
    /// `STATUS_INVALID_PARAMETER`: a null pointer, a bad name, a reserved field not zero, an
    /// unknown verdict, or an edit outside the frame.
    pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32 => "WL_STATUS_INVALID_PARAMETER" as Status;
    /// `STATUS_INVALID_DEVICE_REQUEST`: an internal device control wanlayer does not answer.
    pub const STATUS_INVALID_DEVICE_REQUEST: i32 = 0xC000_0010_u32 as i32 => "WL_STATUS_INVALID_DEVICE_REQUEST" as Status;
    /// `STATUS_ACCESS_DENIED`: the request did not come from kernel mode, or a `Reinject` named a
    /// packet another filter took.
    pub const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32 => "WL_STATUS_ACCESS_DENIED" as Status;
    /// `STATUS_OBJECT_NAME_NOT_FOUND`: `\Device\WanLayer` does not exist (wanlayer is not loaded
    /// yet): wait and try again.
    pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32 => "WL_STATUS_OBJECT_NAME_NOT_FOUND" as Status;
    /// `STATUS_QUOTA_EXCEEDED`: `WL_MAX_FILTERS` filters are registered.
    pub const STATUS_QUOTA_EXCEEDED: i32 = 0xC000_0044_u32 as i32 => "WL_STATUS_QUOTA_EXCEEDED" as Status;
    /// `STATUS_REVISION_MISMATCH`: a `Version` outside `WL_PROVIDER_VERSION_MIN` ..
    /// `WL_PROVIDER_VERSION` of the provider.
    pub const STATUS_REVISION_MISMATCH: i32 = 0xC000_0059_u32 as i32 => "WL_STATUS_REVISION_MISMATCH" as Status;
    /// `STATUS_INSUFFICIENT_RESOURCES`: no memory (for a copy or a replacement frame).
    pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32 => "WL_STATUS_INSUFFICIENT_RESOURCES" as Status;
    /// `STATUS_DEVICE_NOT_READY`: the control device exists but wanlayer is not ready yet.
    pub const STATUS_DEVICE_NOT_READY: i32 = 0xC000_00A3_u32 as i32 => "WL_STATUS_DEVICE_NOT_READY" as Status;
    /// `STATUS_INVALID_BUFFER_SIZE`: a replacement frame that is empty or too large.
    pub const STATUS_INVALID_BUFFER_SIZE: i32 = 0xC000_0206_u32 as i32 => "WL_STATUS_INVALID_BUFFER_SIZE" as Status;
    /// `STATUS_NOT_FOUND`: no packet is held under that ticket (reinjected already, or completed
    /// by wanlayer when the adapter paused or the link went down).
    pub const STATUS_NOT_FOUND: i32 = 0xC000_0225_u32 as i32 => "WL_STATUS_NOT_FOUND" as Status;
    /// `STATUS_DEVICE_REMOVED`: wanlayer revoked every registration because it is unloading;
    /// the table must not be used any more.
    pub const STATUS_DEVICE_REMOVED: i32 = 0xC000_02B6_u32 as i32 => "WL_STATUS_DEVICE_REMOVED" as Status;
}

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// `FILE_DEVICE_NETWORK`.
const FILE_DEVICE_NETWORK: u32 = 0x12;
/// `METHOD_NEITHER`: the input and output buffers are the caller's own (kernel) pointers.
const METHOD_NEITHER: u32 = 3;
/// `FILE_ANY_ACCESS`.
const FILE_ANY_ACCESS: u32 = 0;

const _: () = assert!(
    IOCTL_WANLAYER_PROVIDER_QUERY_TABLE == ctl_code(FILE_DEVICE_NETWORK, 0x880, METHOD_NEITHER, FILE_ANY_ACCESS)
);

/// An `NTSTATUS`, as every table function returns it (`WL_STATUS` in C).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Status(pub i32);

impl Status {
    /// [`STATUS_SUCCESS`].
    pub const SUCCESS: Self = Self(STATUS_SUCCESS);
    /// [`STATUS_BUFFER_OVERFLOW`].
    pub const BUFFER_OVERFLOW: Self = Self(STATUS_BUFFER_OVERFLOW);
    /// [`STATUS_DEVICE_BUSY`].
    pub const DEVICE_BUSY: Self = Self(STATUS_DEVICE_BUSY);
    /// [`STATUS_INFO_LENGTH_MISMATCH`].
    pub const INFO_LENGTH_MISMATCH: Self = Self(STATUS_INFO_LENGTH_MISMATCH);
    /// [`STATUS_INVALID_HANDLE`].
    pub const INVALID_HANDLE: Self = Self(STATUS_INVALID_HANDLE);
    /// [`STATUS_INVALID_PARAMETER`].
    pub const INVALID_PARAMETER: Self = Self(STATUS_INVALID_PARAMETER);
    /// [`STATUS_INVALID_DEVICE_REQUEST`].
    pub const INVALID_DEVICE_REQUEST: Self = Self(STATUS_INVALID_DEVICE_REQUEST);
    /// [`STATUS_ACCESS_DENIED`].
    pub const ACCESS_DENIED: Self = Self(STATUS_ACCESS_DENIED);
    /// [`STATUS_OBJECT_NAME_NOT_FOUND`].
    pub const OBJECT_NAME_NOT_FOUND: Self = Self(STATUS_OBJECT_NAME_NOT_FOUND);
    /// [`STATUS_QUOTA_EXCEEDED`].
    pub const QUOTA_EXCEEDED: Self = Self(STATUS_QUOTA_EXCEEDED);
    /// [`STATUS_REVISION_MISMATCH`].
    pub const REVISION_MISMATCH: Self = Self(STATUS_REVISION_MISMATCH);
    /// [`STATUS_INSUFFICIENT_RESOURCES`].
    pub const INSUFFICIENT_RESOURCES: Self = Self(STATUS_INSUFFICIENT_RESOURCES);
    /// [`STATUS_DEVICE_NOT_READY`].
    pub const DEVICE_NOT_READY: Self = Self(STATUS_DEVICE_NOT_READY);
    /// [`STATUS_INVALID_BUFFER_SIZE`].
    pub const INVALID_BUFFER_SIZE: Self = Self(STATUS_INVALID_BUFFER_SIZE);
    /// [`STATUS_NOT_FOUND`].
    pub const NOT_FOUND: Self = Self(STATUS_NOT_FOUND);
    /// [`STATUS_DEVICE_REMOVED`].
    pub const DEVICE_REMOVED: Self = Self(STATUS_DEVICE_REMOVED);

    /// `NT_SUCCESS`: success and informational values (the sign bit clear; warnings such as
    /// [`Status::BUFFER_OVERFLOW`] have it set).
    pub fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// The header's name of a status this interface returns, or `None`.
    pub fn name(self) -> Option<&'static str> {
        CONSTANTS.iter().find(|constant| constant.value == CValue::Status(self.0)).map(|constant| constant.name)
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#010x})", self.0 as u32),
            None => write!(f, "NTSTATUS {:#010x}", self.0 as u32),
        }
    }
}

/// A filter's identity for the table functions (`WL_FILTER_HANDLE`): opaque, never zero, and
/// never reused for another registration, so a stale handle is refused.
pub type FilterHandle = u64;

/// The packet a packet callback is looking at (`WL_PACKET`, an incomplete type in C): valid only
/// during that callback, and only through the table's `Packet*` functions.
#[repr(C)]
pub struct RawPacket {
    _opaque: [u8; 0],
    _not_send_sync_unpin: PhantomData<(*mut u8, PhantomPinned)>,
}

c_struct! {
    /// A taken packet's name, for `Reinject`.
    pub struct Ticket as "WL_TICKET" {
        /// The filter module (adapter attachment) holding the packet.
        pub module: u32 => ("uint32_t", "Module"),
        /// Zero.
        pub reserved: u32 => ("uint32_t", "Reserved"),
        /// Unique per module and never reused, so a stale ticket is refused.
        pub serial: u64 => ("uint64_t", "Serial"),
    }
}

c_struct! {
    /// One WAN link, as callbacks see it and `QueryLinks` lists it.
    pub struct LinkInfo as "WL_LINK_INFO" {
        /// The link's identity: unique for the life of wanlayer, never reused.
        pub link_id: u64 => ("uint64_t", "LinkId"),
        /// The filter module (adapter attachment) the link lives on.
        pub module: u32 => ("uint32_t", "Module"),
        /// `LinkSpeed` of the line up, in units of 100 bit/s.
        pub link_speed_100bps: u32 => ("uint32_t", "LinkSpeed100bps"),
        /// `MaximumTotalSize` as NdisWan indicated it.
        pub maximum_total_size: u32 => ("uint32_t", "MaximumTotalSize"),
        /// `MaximumTotalSize` as reported to the IP layer, after filters lowered it.
        pub reported_total_size: u32 => ("uint32_t", "ReportedTotalSize"),
        /// The link's EtherType: 0x0800 (IPv4) or 0x86DD (IPv6).
        pub protocol_type: u16 => ("uint16_t", "ProtocolType"),
        /// `RemoteAddress`: the destination address of the link's sends.
        pub remote_address: [u8; 6] => ("uint8_t", "RemoteAddress", "[6]"),
        /// `LocalAddress`, zero until the IP layer filled it in.
        pub local_address: [u8; 6] => ("uint8_t", "LocalAddress", "[6]"),
        /// Zero.
        pub reserved: u16 => ("uint16_t", "Reserved"),
    }
}

c_struct! {
    /// The input of `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE`.
    pub struct ProviderRequest as "WL_PROVIDER_REQUEST" {
        /// `sizeof(WL_PROVIDER_REQUEST)`.
        pub size: u32 => ("uint32_t", "Size"),
        /// The interface version the caller was built for (`WL_PROVIDER_VERSION`).
        pub version: u32 => ("uint32_t", "Version"),
        /// Zero.
        pub flags: u32 => ("uint32_t", "Flags"),
        /// Zero.
        pub reserved: u32 => ("uint32_t", "Reserved"),
    }
}

c_function! {
    /// A link came up or changed: return a `MaximumTotalSize` lower than `Link->MaximumTotalSize`
    /// to have the lower one reported to the IP layer (room for an encapsulation), or 0 for no
    /// change. `<= DISPATCH_LEVEL`, any processor, concurrently with the other callbacks.
    pub type LineUpCallback as "WL_LINE_UP_CALLBACK", LINE_UP_CALLBACK =
        fn(context: *mut c_void => ("void *", "Context"), link: *const LinkInfo => ("const WL_LINK_INFO *", "Link")) -> u32 => "uint32_t";
}

c_function! {
    /// A link went down; packets of it the filter still holds are completed by wanlayer after
    /// this returns (their tickets then answer `WL_STATUS_NOT_FOUND`). `<= DISPATCH_LEVEL`.
    pub type LineDownCallback as "WL_LINE_DOWN_CALLBACK", LINE_DOWN_CALLBACK =
        fn(context: *mut c_void => ("void *", "Context"), link: *const LinkInfo => ("const WL_LINK_INFO *", "Link")) => "void";
}

c_function! {
    /// A packet on its way down (send) or up (receive): return a `WL_VERDICT_*`. `Packet` is valid
    /// only until the callback returns. `<= DISPATCH_LEVEL`, any processor, concurrently: never
    /// block, never deregister from here.
    pub type PacketCallback as "WL_PACKET_CALLBACK", PACKET_CALLBACK =
        fn(
            context: *mut c_void => ("void *", "Context"),
            packet: *mut RawPacket => ("WL_PACKET *", "Packet"),
            link: *const LinkInfo => ("const WL_LINK_INFO *", "Link"),
        ) -> u32 => "uint32_t";
}

c_function! {
    /// wanlayer revoked the registration (it is unloading although the vendor still holds the
    /// table): no callback runs any more and the filter's taken packets were handed on. Stop
    /// every use of the table before returning. `PASSIVE_LEVEL`.
    pub type ProviderUnloadCallback as "WL_PROVIDER_UNLOAD_CALLBACK", PROVIDER_UNLOAD_CALLBACK =
        fn(context: *mut c_void => ("void *", "Context")) => "void";
}

c_struct! {
    /// What `RegisterFilter` is given.
    pub struct FilterRegistration as "WL_FILTER_REGISTRATION" {
        /// `sizeof(WL_FILTER_REGISTRATION)`.
        pub size: u32 => ("uint32_t", "Size"),
        /// `WL_PROVIDER_VERSION`.
        pub version: u32 => ("uint32_t", "Version"),
        /// The filter's name: UTF-8, NUL-padded, not empty.
        pub name: [u8; FILTER_NAME_MAX as usize] => ("uint8_t", "Name", "[WL_FILTER_NAME_MAX]"),
        /// Higher is closer to the IP layer: sends meet high altitudes first, receives low ones;
        /// equal altitudes meet sends in registration order and receives in reverse.
        pub altitude: u32 => ("uint32_t", "Altitude"),
        /// Zero.
        pub flags: u32 => ("uint32_t", "Flags"),
        /// Passed to every callback.
        pub context: *mut c_void => ("void *", "Context"),
        /// Optional.
        pub on_line_up: Option<LineUpCallback> => ("WL_LINE_UP_CALLBACK", "OnLineUp"),
        /// Optional.
        pub on_line_down: Option<LineDownCallback> => ("WL_LINE_DOWN_CALLBACK", "OnLineDown"),
        /// Optional (null: every send passes).
        pub on_send: Option<PacketCallback> => ("WL_PACKET_CALLBACK", "OnSend"),
        /// Optional (null: every receive passes).
        pub on_receive: Option<PacketCallback> => ("WL_PACKET_CALLBACK", "OnReceive"),
        /// Optional.
        pub on_provider_unload: Option<ProviderUnloadCallback> => ("WL_PROVIDER_UNLOAD_CALLBACK", "OnProviderUnload"),
    }
}

c_function! {
    /// Registers a filter. `*Filter` is written before the first callback can run. `PASSIVE_LEVEL`.
    pub type RegisterFilterFn as "WL_REGISTER_FILTER", REGISTER_FILTER =
        fn(
            provider: *mut c_void => ("void *", "Provider"),
            registration: *const FilterRegistration => ("const WL_FILTER_REGISTRATION *", "Registration"),
            filter: *mut FilterHandle => ("WL_FILTER_HANDLE *", "Filter"),
        ) -> Status => "WL_STATUS";
}

c_function! {
    /// Deregisters a filter: returns once none of its callbacks is running and every packet it
    /// took has been handed on (along the rest of the chain). `PASSIVE_LEVEL`; never from a
    /// callback of the filter.
    pub type DeregisterFilterFn as "WL_DEREGISTER_FILTER", DEREGISTER_FILTER =
        fn(provider: *mut c_void => ("void *", "Provider"), filter: FilterHandle => ("WL_FILTER_HANDLE", "Filter")) -> Status => "WL_STATUS";
}

c_function! {
    /// Hands back a taken packet: `WL_REINJECT_PASS` continues along the chain after the filter,
    /// `WL_REINJECT_DROP` drops it. `<= DISPATCH_LEVEL`, callbacks included.
    pub type ReinjectFn as "WL_REINJECT", REINJECT =
        fn(
            provider: *mut c_void => ("void *", "Provider"),
            filter: FilterHandle => ("WL_FILTER_HANDLE", "Filter"),
            ticket: *const Ticket => ("const WL_TICKET *", "Ticket"),
            verdict: u32 => ("uint32_t", "Verdict"),
        ) -> Status => "WL_STATUS";
}

c_function! {
    /// Lists the live links: writes up to `Capacity` entries of `ElementSize` bytes (at least
    /// `sizeof(WL_LINK_INFO)` of version 1; bytes of an entry past the fields wanlayer knows are
    /// left as they were) and sets `*Count` to the number of links; `WL_STATUS_BUFFER_OVERFLOW`
    /// when that is more than `Capacity`. `Links` must be non-paged memory (it is written under
    /// a spin lock). `<= DISPATCH_LEVEL`.
    pub type QueryLinksFn as "WL_QUERY_LINKS", QUERY_LINKS =
        fn(
            provider: *mut c_void => ("void *", "Provider"),
            links: *mut LinkInfo => ("WL_LINK_INFO *", "Links"),
            capacity: u32 => ("uint32_t", "Capacity"),
            element_size: u32 => ("uint32_t", "ElementSize"),
            count: *mut u32 => ("uint32_t *", "Count"),
        ) -> Status => "WL_STATUS";
}

c_function! {
    /// wanlayer's monotonic clock in nanoseconds (the simulator's virtual time in tests).
    /// Any IRQL.
    pub type QueryTimeFn as "WL_QUERY_TIME", QUERY_TIME =
        fn(provider: *mut c_void => ("void *", "Provider")) -> u64 => "uint64_t";
}

c_function! {
    /// The frame length in bytes (Ethernet header included). During a packet callback only.
    pub type PacketLengthFn as "WL_PACKET_LENGTH", PACKET_LENGTH =
        fn(packet: *const RawPacket => ("const WL_PACKET *", "Packet")) -> u32 => "uint32_t";
}

c_function! {
    /// Copies frame bytes from `Offset` into `Buffer`; returns how many were copied (fewer at the
    /// end of the frame). During a packet callback only.
    pub type PacketReadFn as "WL_PACKET_READ", PACKET_READ =
        fn(
            packet: *const RawPacket => ("const WL_PACKET *", "Packet"),
            offset: u32 => ("uint32_t", "Offset"),
            buffer: *mut c_void => ("void *", "Buffer"),
            length: u32 => ("uint32_t", "Length"),
        ) -> u32 => "uint32_t";
}

c_function! {
    /// Overwrites frame bytes at `Offset` (in place, or in a private copy when the buffers are
    /// read-only); return `WL_VERDICT_MODIFY` afterwards. During a packet callback only.
    pub type PacketWriteFn as "WL_PACKET_WRITE", PACKET_WRITE =
        fn(
            packet: *mut RawPacket => ("WL_PACKET *", "Packet"),
            offset: u32 => ("uint32_t", "Offset"),
            data: *const c_void => ("const void *", "Data"),
            length: u32 => ("uint32_t", "Length"),
        ) -> Status => "WL_STATUS";
}

c_function! {
    /// Replaces the whole frame; return `WL_VERDICT_MODIFY` afterwards. During a packet callback
    /// only.
    pub type PacketReplaceFn as "WL_PACKET_REPLACE", PACKET_REPLACE =
        fn(
            packet: *mut RawPacket => ("WL_PACKET *", "Packet"),
            frame: *const c_void => ("const void *", "Frame"),
            length: u32 => ("uint32_t", "Length"),
        ) -> Status => "WL_STATUS";
}

c_function! {
    /// The ticket the packet is held under if the callback returns `WL_VERDICT_TAKE`. During a
    /// packet callback only.
    pub type PacketTicketFn as "WL_PACKET_TICKET", PACKET_TICKET =
        fn(
            packet: *const RawPacket => ("const WL_PACKET *", "Packet"),
            ticket: *mut Ticket => ("WL_TICKET *", "Ticket"),
        ) -> Status => "WL_STATUS";
}

c_struct! {
    /// The output of `IOCTL_WANLAYER_PROVIDER_QUERY_TABLE`: the functions of the interface, every
    /// one non-null. Valid while the caller keeps the file object of `\Device\WanLayer` referenced
    /// (that reference is what keeps wanlayer.sys loaded).
    pub struct ProviderTable as "WL_PROVIDER_TABLE" {
        /// Bytes wanlayer wrote.
        pub size: u32 => ("uint32_t", "Size"),
        /// The interface version wanlayer serves this caller (the one it asked for).
        pub version: u32 => ("uint32_t", "Version"),
        /// The first argument of the provider functions.
        pub provider: *mut c_void => ("void *", "Provider"),
        /// `WL_REGISTER_FILTER`.
        pub register_filter: Option<RegisterFilterFn> => ("WL_REGISTER_FILTER", "RegisterFilter"),
        /// `WL_DEREGISTER_FILTER`.
        pub deregister_filter: Option<DeregisterFilterFn> => ("WL_DEREGISTER_FILTER", "DeregisterFilter"),
        /// `WL_REINJECT`.
        pub reinject: Option<ReinjectFn> => ("WL_REINJECT", "Reinject"),
        /// `WL_QUERY_LINKS`.
        pub query_links: Option<QueryLinksFn> => ("WL_QUERY_LINKS", "QueryLinks"),
        /// `WL_QUERY_TIME`.
        pub query_time: Option<QueryTimeFn> => ("WL_QUERY_TIME", "QueryTime"),
        /// `WL_PACKET_LENGTH`.
        pub packet_length: Option<PacketLengthFn> => ("WL_PACKET_LENGTH", "PacketLength"),
        /// `WL_PACKET_READ`.
        pub packet_read: Option<PacketReadFn> => ("WL_PACKET_READ", "PacketRead"),
        /// `WL_PACKET_WRITE`.
        pub packet_write: Option<PacketWriteFn> => ("WL_PACKET_WRITE", "PacketWrite"),
        /// `WL_PACKET_REPLACE`.
        pub packet_replace: Option<PacketReplaceFn> => ("WL_PACKET_REPLACE", "PacketReplace"),
        /// `WL_PACKET_TICKET`.
        pub packet_ticket: Option<PacketTicketFn> => ("WL_PACKET_TICKET", "PacketTicket"),
    }
}

/// Every structure of the header, in declaration order.
pub const STRUCTS: &[CStruct] =
    &[Ticket::C, LinkInfo::C, ProviderRequest::C, FilterRegistration::C, ProviderTable::C];

/// Every function pointer typedef of the header, in declaration order.
pub const FUNCTION_TYPES: &[CFunctionType] = &[
    LINE_UP_CALLBACK,
    LINE_DOWN_CALLBACK,
    PACKET_CALLBACK,
    PROVIDER_UNLOAD_CALLBACK,
    REGISTER_FILTER,
    DEREGISTER_FILTER,
    REINJECT,
    QUERY_LINKS,
    QUERY_TIME,
    PACKET_LENGTH,
    PACKET_READ,
    PACKET_WRITE,
    PACKET_REPLACE,
    PACKET_TICKET,
];

impl ProviderRequest {
    /// The request of this build: [`PROVIDER_VERSION`], its own size.
    pub const fn current() -> Self {
        Self { size: size_of::<Self>() as u32, version: PROVIDER_VERSION, flags: 0, reserved: 0 }
    }
}

// The layout every C compiler for x64 and ARM64 produces from the header, pinned here; the
// generated `tests/c/wanlayer_layout.c` asserts the same numbers from the C side.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<Status>() == 4);
    assert!(size_of::<Ticket>() == 16 && offset_of!(Ticket, serial) == 8);

    assert!(offset_of!(LinkInfo, module) == 8);
    assert!(offset_of!(LinkInfo, link_speed_100bps) == 12);
    assert!(offset_of!(LinkInfo, maximum_total_size) == 16);
    assert!(offset_of!(LinkInfo, reported_total_size) == 20);
    assert!(offset_of!(LinkInfo, protocol_type) == 24);
    assert!(offset_of!(LinkInfo, remote_address) == 26);
    assert!(offset_of!(LinkInfo, local_address) == 32);
    assert!(offset_of!(LinkInfo, reserved) == 38);
    assert!(size_of::<LinkInfo>() == 40 && align_of::<LinkInfo>() == 8);

    assert!(size_of::<ProviderRequest>() == 16);

    assert!(offset_of!(FilterRegistration, name) == 8);
    assert!(offset_of!(FilterRegistration, altitude) == 40);
    assert!(offset_of!(FilterRegistration, flags) == 44);
    assert!(offset_of!(FilterRegistration, context) == 48);
    assert!(offset_of!(FilterRegistration, on_line_up) == 56);
    assert!(offset_of!(FilterRegistration, on_line_down) == 64);
    assert!(offset_of!(FilterRegistration, on_send) == 72);
    assert!(offset_of!(FilterRegistration, on_receive) == 80);
    assert!(offset_of!(FilterRegistration, on_provider_unload) == 88);
    assert!(size_of::<FilterRegistration>() == 96);

    assert!(offset_of!(ProviderTable, provider) == 8);
    assert!(offset_of!(ProviderTable, register_filter) == 16);
    assert!(offset_of!(ProviderTable, deregister_filter) == 24);
    assert!(offset_of!(ProviderTable, reinject) == 32);
    assert!(offset_of!(ProviderTable, query_links) == 40);
    assert!(offset_of!(ProviderTable, query_time) == 48);
    assert!(offset_of!(ProviderTable, packet_length) == 56);
    assert!(offset_of!(ProviderTable, packet_read) == 64);
    assert!(offset_of!(ProviderTable, packet_write) == 72);
    assert!(offset_of!(ProviderTable, packet_replace) == 80);
    assert!(offset_of!(ProviderTable, packet_ticket) == 88);
    assert!(size_of::<ProviderTable>() == 96);

    // A null function pointer is `None`: C's NULL reads as "absent", never as a bad pointer.
    assert!(size_of::<Option<PacketCallback>>() == 8);
    assert!(size_of::<RawPacket>() == 0);
};

/// The layout of one structure on 32-bit x86: its C name, `sizeof`, and the offset of each field
/// in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct X86Layout {
    /// The C name, as in [`CStruct::name`].
    pub name: &'static str,
    /// `sizeof` on x86.
    pub size: usize,
    /// The offsets of the fields on x86, in the order of [`CStruct::fields`].
    pub offsets: &'static [usize],
}

/// Every structure of [`STRUCTS`] as a C compiler for 32-bit x86 Windows lays it out (4-byte
/// pointers, 8-aligned `uint64_t`): asserted against Rust's layout when the SDK is built for
/// `i686-pc-windows-msvc` (below) and against the C compiler's by the generated layout check
/// when it compiles for a 32-bit target.
pub const X86_LAYOUT: &[X86Layout] = &[
    X86Layout { name: "WL_TICKET", size: 16, offsets: &[0, 4, 8] },
    X86Layout { name: "WL_LINK_INFO", size: 40, offsets: &[0, 8, 12, 16, 20, 24, 26, 32, 38] },
    X86Layout { name: "WL_PROVIDER_REQUEST", size: 16, offsets: &[0, 4, 8, 12] },
    X86Layout { name: "WL_FILTER_REGISTRATION", size: 72, offsets: &[0, 4, 8, 40, 44, 48, 52, 56, 60, 64, 68] },
    X86Layout { name: "WL_PROVIDER_TABLE", size: 52, offsets: &[0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48] },
];

// On x86 the descriptors hold rustc's i686 layout: it must be the one C compilers produce.
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<Status>() == 4 && size_of::<FilterHandle>() == 8);
    assert!(size_of::<Option<PacketCallback>>() == 4);
    assert!(align_of::<LinkInfo>() == 8 && align_of::<Ticket>() == 8);
    assert!(STRUCTS.len() == X86_LAYOUT.len());
    let mut index = 0;
    while index < STRUCTS.len() {
        let (rust, x86) = (&STRUCTS[index], &X86_LAYOUT[index]);
        assert!(rust.size == x86.size && rust.fields.len() == x86.offsets.len());
        let mut field = 0;
        while field < rust.fields.len() {
            assert!(rust.fields[field].offset == x86.offsets[field]);
            field += 1;
        }
        index += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x86_layout_names_every_structure_and_field() {
        assert_eq!(STRUCTS.len(), X86_LAYOUT.len());
        for (structure, x86) in STRUCTS.iter().zip(X86_LAYOUT) {
            assert_eq!(structure.name, x86.name);
            assert_eq!(structure.fields.len(), x86.offsets.len(), "{}", x86.name);
            assert!(x86.offsets.windows(2).all(|pair| pair[0] < pair[1]), "{} offsets ascend", x86.name);
            assert_eq!(x86.size % 4, 0, "{}", x86.name);
            // Fields before the first pointer sit where they do on 64-bit targets.
            let is_pointer = |field: &&CField| field.size == size_of::<usize>() && field.c_type != "uint64_t";
            for (field, &offset) in structure.fields.iter().take_while(|field| !is_pointer(field)).zip(x86.offsets) {
                assert_eq!(offset, field.offset, "{}.{}", x86.name, field.name);
            }
        }
    }

    #[test]
    fn descriptors_carry_the_rust_layout() {
        for structure in STRUCTS {
            let mut end = 0;
            for field in structure.fields {
                assert!(field.offset >= end, "{}.{} overlaps the field before it", structure.name, field.name);
                end = field.offset + field.size;
            }
            assert!(end <= structure.size, "{} fields run past its size", structure.name);
            assert_eq!(structure.size % structure.align, 0, "{}", structure.name);
            assert!(structure.fields.iter().all(|field| !field.doc.is_empty()), "{} has an undocumented field", structure.name);
        }
        let table = ProviderTable::C;
        assert_eq!(table.fields.len(), 13);
        assert_eq!((table.fields[12].name, table.fields[12].offset), ("PacketTicket", 88));
        assert_eq!(FilterRegistration::C.fields[2].suffix, "[WL_FILTER_NAME_MAX]");
    }

    #[test]
    fn every_versioned_structure_starts_with_size_and_version() {
        for structure in [ProviderRequest::C, FilterRegistration::C, ProviderTable::C] {
            assert_eq!((structure.fields[0].name, structure.fields[0].offset), ("Size", 0), "{}", structure.name);
            assert_eq!((structure.fields[1].name, structure.fields[1].offset), ("Version", 4), "{}", structure.name);
        }
    }

    #[test]
    fn statuses_are_named_and_classified() {
        assert!(Status::SUCCESS.is_success());
        assert!(!Status::BUFFER_OVERFLOW.is_success(), "a warning is not NT_SUCCESS");
        assert!(!Status::REVISION_MISMATCH.is_success());
        assert_eq!(Status::REVISION_MISMATCH.0 as u32, 0xC000_0059);
        assert_eq!(Status::DEVICE_REMOVED.name(), Some("WL_STATUS_DEVICE_REMOVED"));
        assert_eq!(Status(0x1234).name(), None);
        let names: usize = CONSTANTS.iter().filter(|constant| matches!(constant.value, CValue::Status(_))).count();
        assert_eq!(names, 16, "every status the interface returns has a header name");
    }

    #[test]
    fn the_ioctl_is_an_internal_method_neither_network_code() {
        assert_eq!(IOCTL_WANLAYER_PROVIDER_QUERY_TABLE & 3, METHOD_NEITHER);
        assert_eq!(IOCTL_WANLAYER_PROVIDER_QUERY_TABLE >> 16, FILE_DEVICE_NETWORK);
        assert_eq!((IOCTL_WANLAYER_PROVIDER_QUERY_TABLE >> 2) & 0xFFF, 0x880);
        assert_eq!(ProviderRequest::current().size, 16);
    }
}
