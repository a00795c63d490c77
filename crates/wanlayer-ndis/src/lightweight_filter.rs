//! The NDIS 6 lightweight-filter structures: driver characteristics, attach/pause/restart
//! parameters, filter attributes, status indications, control-device attributes; the callback
//! signatures; the send/receive flags.

use core::ffi::c_void;
use core::ops::BitOr;

use crate::kernel::DriverDispatch;
use crate::nbl::NetBufferList;
pub use crate::oid::NdisOidRequest;
use crate::types::{
    object_type, ContextHandle, FilterDriverHandle, FilterModuleHandle, Guid, NdisHandle, NdisObjectHeader, NetIfIndex,
    NetLuid, PortNumber, RawNdisStatus, Ulong64Alignment, UnicodeString,
};

/// NDIS major version a wanlayer filter registers with.
pub const NDIS_FILTER_MAJOR_VERSION: u8 = 6;
/// NDIS minor version a wanlayer filter registers with: 6.30, Windows 8 and later.
pub const NDIS_FILTER_MINOR_VERSION: u8 = 30;

/// `NDIS_FILTER_CHARACTERISTICS_REVISION_2` (the direct-OID handlers included).
pub const NDIS_FILTER_CHARACTERISTICS_REVISION_2: u8 = 2;
/// `NDIS_FILTER_ATTRIBUTES_REVISION_1`.
pub const NDIS_FILTER_ATTRIBUTES_REVISION_1: u8 = 1;
/// `NDIS_STATUS_INDICATION_REVISION_1`.
pub const NDIS_STATUS_INDICATION_REVISION_1: u8 = 1;
/// `NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1`.
pub const NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1: u8 = 1;

opaque! {
    /// `NET_PNP_EVENT_NOTIFICATION`.
    NetPnpEventNotification
}

opaque! {
    /// `NET_DEVICE_PNP_EVENT`.
    NetDevicePnpEvent
}

opaque! {
    /// `NDIS_RESTART_ATTRIBUTES`.
    NdisRestartAttributes
}

/// `FILTER_SET_OPTIONS`.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
pub type SetOptionsHandler =
    unsafe extern "system" fn(driver: FilterDriverHandle, driver_context: ContextHandle) -> RawNdisStatus;
/// `FILTER_SET_MODULE_OPTIONS`.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
pub type SetFilterModuleOptionsHandler = unsafe extern "system" fn(module_context: ContextHandle) -> RawNdisStatus;
/// `FILTER_ATTACH`: allocate the module context, call `NdisFSetAttributes`, end Paused; send
/// and indicate nothing.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
pub type AttachHandler = unsafe extern "system" fn(
    filter: FilterModuleHandle,
    driver_context: ContextHandle,
    parameters: *mut FilterAttachParameters,
) -> RawNdisStatus;
/// `FILTER_DETACH`: only ever called while Paused.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
pub type DetachHandler = unsafe extern "system" fn(module_context: ContextHandle);
/// `FILTER_RESTART`.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
pub type RestartHandler =
    unsafe extern "system" fn(module_context: ContextHandle, parameters: *mut FilterRestartParameters) -> RawNdisStatus;
/// `FILTER_PAUSE`: must succeed, eventually: complete queued sends, return queued receives, wait
/// for every NBL the filter originated, then return success or call `NdisFPauseComplete` once
/// (within 10 s).
///
/// # IRQL
/// `PASSIVE_LEVEL`.
pub type PauseHandler =
    unsafe extern "system" fn(module_context: ContextHandle, parameters: *mut FilterPauseParameters) -> RawNdisStatus;
/// `FILTER_SEND_NET_BUFFER_LISTS`.
///
/// # Ownership
/// The filter owns the NBLs until it sends them down or completes them.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`; [`SendFlags::at_dispatch`] tells which.
pub type SendNetBufferListsHandler = unsafe extern "system" fn(
    module_context: ContextHandle,
    nbls: *mut NetBufferList,
    port: PortNumber,
    send_flags: SendFlags,
);
/// `FILTER_SEND_NET_BUFFER_LISTS_COMPLETE`.
///
/// # Ownership
/// Sends come back: the protocol's are completed up, the filter's own are freed.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub type SendNetBufferListsCompleteHandler =
    unsafe extern "system" fn(module_context: ContextHandle, nbls: *mut NetBufferList, flags: SendCompleteFlags);
/// `FILTER_CANCEL_SEND_NET_BUFFER_LISTS`: required of a filter that queues sends.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub type CancelSendNetBufferListsHandler =
    unsafe extern "system" fn(module_context: ContextHandle, cancel_id: *mut c_void);
/// `FILTER_RECEIVE_NET_BUFFER_LISTS`.
///
/// # Ownership
/// With [`ReceiveFlags::RESOURCES`] the NBLs are NDIS's again when the call returns (copy what is
/// needed, restore the chain links); otherwise the filter owns them until
/// `NdisFReturnNetBufferLists`.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub type ReceiveNetBufferListsHandler = unsafe extern "system" fn(
    module_context: ContextHandle,
    nbls: *mut NetBufferList,
    port: PortNumber,
    count: u32,
    receive_flags: ReceiveFlags,
);
/// `FILTER_RETURN_NET_BUFFER_LISTS`.
///
/// # Ownership
/// Indications come back, in the condition they went up; the filter's own are freed.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub type ReturnNetBufferListsHandler =
    unsafe extern "system" fn(module_context: ContextHandle, nbls: *mut NetBufferList, return_flags: ReturnFlags);
/// `FILTER_OID_REQUEST` (and `FILTER_DIRECT_OID_REQUEST`): clone, forward, complete the original
/// when the clone completes.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub type OidRequestHandler =
    unsafe extern "system" fn(module_context: ContextHandle, request: *mut NdisOidRequest) -> RawNdisStatus;
/// `FILTER_OID_REQUEST_COMPLETE` (and `FILTER_DIRECT_OID_REQUEST_COMPLETE`).
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub type OidRequestCompleteHandler =
    unsafe extern "system" fn(module_context: ContextHandle, request: *mut NdisOidRequest, status: RawNdisStatus);
/// `FILTER_CANCEL_OID_REQUEST` (and `FILTER_CANCEL_DIRECT_OID_REQUEST`).
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub type CancelOidRequestHandler = unsafe extern "system" fn(module_context: ContextHandle, request_id: *mut c_void);
/// `FILTER_DEVICE_PNP_EVENT_NOTIFY`: forward with `NdisFDevicePnPEventNotify`.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
pub type DevicePnpEventNotifyHandler =
    unsafe extern "system" fn(module_context: ContextHandle, event: *mut NetDevicePnpEvent);
/// `FILTER_NET_PNP_EVENT`: forward with `NdisFNetPnPEvent`.
///
/// # IRQL
/// `PASSIVE_LEVEL`.
pub type NetPnpEventHandler =
    unsafe extern "system" fn(module_context: ContextHandle, event: *mut NetPnpEventNotification) -> RawNdisStatus;
/// `FILTER_STATUS`: required of a filter that receives; pass the indication on with
/// `NdisFIndicateStatus` (see [`Indication`](crate::wan_status::Indication)).
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub type StatusHandler = unsafe extern "system" fn(module_context: ContextHandle, indication: *mut StatusIndication);

/// `NDIS_FILTER_DRIVER_CHARACTERISTICS` at [`NDIS_FILTER_CHARACTERISTICS_REVISION_2`].
///
/// A handler left `None` is one the filter does not supply: NDIS then bypasses the filter for that
/// path. A filter that supplies `receive_net_buffer_lists` must supply `status`; one that queues
/// sends must supply `cancel_send_net_buffer_lists`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FilterDriverCharacteristics {
    /// `Header`.
    pub header: NdisObjectHeader,
    /// `MajorNdisVersion`.
    pub major_ndis_version: u8,
    /// `MinorNdisVersion`.
    pub minor_ndis_version: u8,
    /// `MajorDriverVersion`.
    pub major_driver_version: u8,
    /// `MinorDriverVersion`.
    pub minor_driver_version: u8,
    /// `Flags`.
    pub flags: u32,
    /// `FriendlyName`.
    pub friendly_name: UnicodeString,
    /// `UniqueName`: the INF's `NetCfgInstanceId` GUID.
    pub unique_name: UnicodeString,
    /// `ServiceName`: the INF's `AddService` name.
    pub service_name: UnicodeString,
    /// `SetOptionsHandler`.
    pub set_options: Option<SetOptionsHandler>,
    /// `SetFilterModuleOptionsHandler`.
    pub set_filter_module_options: Option<SetFilterModuleOptionsHandler>,
    /// `AttachHandler`.
    pub attach: Option<AttachHandler>,
    /// `DetachHandler`.
    pub detach: Option<DetachHandler>,
    /// `RestartHandler`.
    pub restart: Option<RestartHandler>,
    /// `PauseHandler`.
    pub pause: Option<PauseHandler>,
    /// `SendNetBufferListsHandler`.
    pub send_net_buffer_lists: Option<SendNetBufferListsHandler>,
    /// `SendNetBufferListsCompleteHandler`.
    pub send_net_buffer_lists_complete: Option<SendNetBufferListsCompleteHandler>,
    /// `CancelSendNetBufferListsHandler`.
    pub cancel_send_net_buffer_lists: Option<CancelSendNetBufferListsHandler>,
    /// `ReceiveNetBufferListsHandler`.
    pub receive_net_buffer_lists: Option<ReceiveNetBufferListsHandler>,
    /// `ReturnNetBufferListsHandler`.
    pub return_net_buffer_lists: Option<ReturnNetBufferListsHandler>,
    /// `OidRequestHandler`.
    pub oid_request: Option<OidRequestHandler>,
    /// `OidRequestCompleteHandler`.
    pub oid_request_complete: Option<OidRequestCompleteHandler>,
    /// `CancelOidRequestHandler`.
    pub cancel_oid_request: Option<CancelOidRequestHandler>,
    /// `DevicePnPEventNotifyHandler`.
    pub device_pnp_event_notify: Option<DevicePnpEventNotifyHandler>,
    /// `NetPnPEventHandler`.
    pub net_pnp_event: Option<NetPnpEventHandler>,
    /// `StatusHandler`.
    pub status: Option<StatusHandler>,
    /// `DirectOidRequestHandler`.
    pub direct_oid_request: Option<OidRequestHandler>,
    /// `DirectOidRequestCompleteHandler`.
    pub direct_oid_request_complete: Option<OidRequestCompleteHandler>,
    /// `CancelDirectOidRequestHandler`.
    pub cancel_direct_oid_request: Option<CancelOidRequestHandler>,
}

impl FilterDriverCharacteristics {
    /// The header of revision 2, sized to this structure.
    pub const HEADER: NdisObjectHeader = NdisObjectHeader::new(
        object_type::FILTER_DRIVER_CHARACTERISTICS,
        NDIS_FILTER_CHARACTERISTICS_REVISION_2,
        core::mem::size_of::<FilterDriverCharacteristics>(),
    );
}

/// `NDIS_FILTER_ATTACH_PARAMETERS`, through `Flags` (revision 1; later revisions append fields
/// this driver does not read).
#[repr(C)]
pub struct FilterAttachParameters {
    /// `Header`.
    pub header: NdisObjectHeader,
    /// `IfIndex`: the filter module's interface index.
    pub if_index: NetIfIndex,
    _net_luid_alignment: [Ulong64Alignment; 0],
    /// `NetLuid`.
    pub net_luid: NetLuid,
    /// `FilterModuleGuidName`.
    pub filter_module_guid_name: *mut UnicodeString,
    /// `BaseMiniportIfIndex`.
    pub base_miniport_if_index: NetIfIndex,
    /// `BaseMiniportInstanceName`: e.g. "WAN Miniport (IP)".
    pub base_miniport_instance_name: *mut UnicodeString,
    /// `BaseMiniportName`: e.g. `\DEVICE\NDISWANIP`.
    pub base_miniport_name: *mut UnicodeString,
    /// `MediaConnectState` (`NDIS_MEDIA_CONNECT_STATE`).
    pub media_connect_state: u32,
    /// `MediaDuplexState` (`NET_IF_MEDIA_DUPLEX_STATE`).
    pub media_duplex_state: u32,
    _xmit_link_speed_alignment: [Ulong64Alignment; 0],
    /// `XmitLinkSpeed`, bit/s.
    pub xmit_link_speed: u64,
    /// `RcvLinkSpeed`, bit/s.
    pub rcv_link_speed: u64,
    /// `MiniportMediaType` (`NDIS_MEDIUM`; see [`NdisMedium`](crate::types::NdisMedium)).
    pub miniport_media_type: u32,
    /// `MiniportPhysicalMediaType` (`NDIS_PHYSICAL_MEDIUM`).
    pub miniport_physical_media_type: u32,
    /// `MiniportMediaSpecificAttributes`.
    pub miniport_media_specific_attributes: NdisHandle,
    /// `DefaultOffloadConfiguration` (`PNDIS_OFFLOAD`).
    pub default_offload_configuration: *mut c_void,
    /// `MacAddressLength`.
    pub mac_address_length: u16,
    /// `CurrentMacAddress` (`NDIS_MAX_PHYS_ADDRESS_LENGTH` = 32 bytes).
    pub current_mac_address: [u8; 32],
    _base_miniport_net_luid_alignment: [Ulong64Alignment; 0],
    /// `BaseMiniportNetLuid`.
    pub base_miniport_net_luid: NetLuid,
    /// `LowerIfIndex`.
    pub lower_if_index: NetIfIndex,
    _lower_if_net_luid_alignment: [Ulong64Alignment; 0],
    /// `LowerIfNetLuid`.
    pub lower_if_net_luid: NetLuid,
    /// `Flags`.
    pub flags: u32,
}

/// `NDIS_FILTER_ATTRIBUTES`, given to `NdisFSetAttributes` in `FilterAttach`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FilterAttributes {
    /// `Header`.
    pub header: NdisObjectHeader,
    /// `Flags` (reserved, zero).
    pub flags: u32,
}

impl FilterAttributes {
    /// Revision-1 attributes.
    pub const fn new() -> Self {
        Self {
            header: NdisObjectHeader::new(
                object_type::FILTER_ATTRIBUTES,
                NDIS_FILTER_ATTRIBUTES_REVISION_1,
                core::mem::size_of::<FilterAttributes>(),
            ),
            flags: 0,
        }
    }
}

impl Default for FilterAttributes {
    fn default() -> Self {
        Self::new()
    }
}

/// `NDIS_FILTER_PAUSE_PARAMETERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FilterPauseParameters {
    /// `Header`.
    pub header: NdisObjectHeader,
    /// `Flags` (reserved).
    pub flags: u32,
    /// `PauseReason` (`NDIS_PAUSE_*`, deprecated from NDIS 6.40: for logs only).
    pub pause_reason: u32,
}

/// `NDIS_FILTER_RESTART_PARAMETERS`.
#[repr(C)]
pub struct FilterRestartParameters {
    /// `Header`.
    pub header: NdisObjectHeader,
    /// `MiniportMediaType`.
    pub miniport_media_type: u32,
    /// `MiniportPhysicalMediaType`.
    pub miniport_physical_media_type: u32,
    /// `RestartAttributes`: a list the filter may extend (unused here).
    pub restart_attributes: *mut NdisRestartAttributes,
    /// `LowerIfIndex`.
    pub lower_if_index: NetIfIndex,
    _lower_if_net_luid_alignment: [Ulong64Alignment; 0],
    /// `LowerIfNetLuid`.
    pub lower_if_net_luid: NetLuid,
    /// `Flags`.
    pub flags: u32,
}

/// `NDIS_STATUS_INDICATION`: what `FilterStatus` receives and `NdisFIndicateStatus` passes on.
#[repr(C)]
pub struct StatusIndication {
    /// `Header`.
    pub header: NdisObjectHeader,
    /// `SourceHandle`.
    pub source_handle: NdisHandle,
    /// `PortNumber`.
    pub port_number: PortNumber,
    /// `StatusCode`: an `NDIS_STATUS_*` value.
    pub status_code: RawNdisStatus,
    /// `Flags`.
    pub flags: u32,
    /// `DestinationHandle`.
    pub destination_handle: NdisHandle,
    /// `RequestId`.
    pub request_id: *mut c_void,
    /// `StatusBuffer`: what the status code says (an `NDIS_WAN_LINE_UP` for
    /// `NDIS_STATUS_WAN_LINE_UP`).
    pub status_buffer: *mut c_void,
    /// `StatusBufferSize`: bytes at `status_buffer`.
    pub status_buffer_size: u32,
    /// `Guid`.
    pub guid: Guid,
    /// `NdisReserved`.
    pub ndis_reserved: [*mut c_void; 4],
}

/// `NDIS_DEVICE_OBJECT_ATTRIBUTES` for `NdisRegisterDeviceEx`.
#[repr(C)]
pub struct DeviceObjectAttributes {
    /// `Header`: [`object_type::DEVICE_OBJECT_ATTRIBUTES`], revision 1.
    pub header: NdisObjectHeader,
    /// `DeviceName`: `\Device\...`.
    pub device_name: *mut UnicodeString,
    /// `SymbolicName`: `\DosDevices\...`.
    pub symbolic_name: *mut UnicodeString,
    /// `MajorFunctions`: [`IRP_MJ_COUNT`](crate::kernel::IRP_MJ_COUNT) entries.
    pub major_functions: *mut Option<DriverDispatch>,
    /// `ExtensionSize`: bytes of `NdisGetDeviceReservedExtension`.
    pub extension_size: u32,
    /// `DefaultSDDLString`: e.g. `D:P(A;;GA;;;SY)(A;;GA;;;BA)` (SYSTEM and Administrators only).
    pub default_sddl_string: *const UnicodeString,
    /// `DeviceClassGuid`.
    pub device_class_guid: *const Guid,
}

impl DeviceObjectAttributes {
    /// The header of revision 1, sized to this structure.
    pub const HEADER: NdisObjectHeader = NdisObjectHeader::new(
        object_type::DEVICE_OBJECT_ATTRIBUTES,
        NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1,
        core::mem::size_of::<DeviceObjectAttributes>(),
    );
}

macro_rules! ndis_flags {
    ($(#[$attr:meta])* $name:ident { $($(#[$flag_attr:meta])* $flag:ident = $value:expr;)+ }) => {
        $(#[$attr])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$flag_attr])* pub const $flag: Self = Self($value);)+

            /// True when every bit of `flags` is set (`NDIS_TEST_*_FLAG`).
            pub const fn contains(self, flags: Self) -> bool {
                self.0 & flags.0 == flags.0
            }

            /// Sets the bits of `flags` (`NDIS_SET_*_FLAG`).
            pub fn insert(&mut self, flags: Self) {
                self.0 |= flags.0;
            }

            /// The caller runs at `DISPATCH_LEVEL` (`NDIS_TEST_*_AT_DISPATCH_LEVEL`).
            pub const fn at_dispatch(self) -> bool {
                self.contains(Self::DISPATCH_LEVEL)
            }
        }

        impl BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }
    };
}

ndis_flags! {
    /// `SendFlags` of `FilterSendNetBufferLists` and `NdisFSendNetBufferLists`.
    SendFlags {
        /// `NDIS_SEND_FLAGS_DISPATCH_LEVEL`.
        DISPATCH_LEVEL = 0x1;
        /// `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`.
        CHECK_FOR_LOOPBACK = 0x2;
    }
}

ndis_flags! {
    /// `SendCompleteFlags` of `FilterSendNetBufferListsComplete` and
    /// `NdisFSendNetBufferListsComplete`.
    SendCompleteFlags {
        /// `NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL`.
        DISPATCH_LEVEL = 0x1;
    }
}

ndis_flags! {
    /// `ReceiveFlags` of `FilterReceiveNetBufferLists` and `NdisFIndicateReceiveNetBufferLists`.
    ReceiveFlags {
        /// `NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL`.
        DISPATCH_LEVEL = 0x1;
        /// `NDIS_RECEIVE_FLAGS_RESOURCES`: the NBLs are NDIS's again when the call returns.
        RESOURCES = 0x2;
    }
}

ndis_flags! {
    /// `ReturnFlags` of `FilterReturnNetBufferLists` and `NdisFReturnNetBufferLists`.
    ReturnFlags {
        /// `NDIS_RETURN_FLAGS_DISPATCH_LEVEL`.
        DISPATCH_LEVEL = 0x1;
    }
}

impl SendFlags {
    /// `NDIS_TEST_SEND_FLAG(flags, NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK)`.
    pub const fn check_for_loopback(self) -> bool {
        self.contains(Self::CHECK_FOR_LOOPBACK)
    }
}

impl ReceiveFlags {
    /// `NDIS_TEST_RECEIVE_CANNOT_PEND`: the NBLs must not be kept past the call.
    pub const fn resources(self) -> bool {
        self.contains(Self::RESOURCES)
    }
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    type C = FilterDriverCharacteristics;
    assert!(offset_of!(C, header) == 0x00);
    assert!(offset_of!(C, major_ndis_version) == 0x04);
    assert!(offset_of!(C, minor_ndis_version) == 0x05);
    assert!(offset_of!(C, major_driver_version) == 0x06);
    assert!(offset_of!(C, minor_driver_version) == 0x07);
    assert!(offset_of!(C, flags) == 0x08);
    assert!(offset_of!(C, friendly_name) == 0x10);
    assert!(offset_of!(C, unique_name) == 0x20);
    assert!(offset_of!(C, service_name) == 0x30);
    assert!(offset_of!(C, set_options) == 0x40);
    assert!(offset_of!(C, set_filter_module_options) == 0x48);
    assert!(offset_of!(C, attach) == 0x50);
    assert!(offset_of!(C, detach) == 0x58);
    assert!(offset_of!(C, restart) == 0x60);
    assert!(offset_of!(C, pause) == 0x68);
    assert!(offset_of!(C, send_net_buffer_lists) == 0x70);
    assert!(offset_of!(C, send_net_buffer_lists_complete) == 0x78);
    assert!(offset_of!(C, cancel_send_net_buffer_lists) == 0x80);
    assert!(offset_of!(C, receive_net_buffer_lists) == 0x88);
    assert!(offset_of!(C, return_net_buffer_lists) == 0x90);
    assert!(offset_of!(C, oid_request) == 0x98);
    assert!(offset_of!(C, oid_request_complete) == 0xA0);
    assert!(offset_of!(C, cancel_oid_request) == 0xA8);
    assert!(offset_of!(C, device_pnp_event_notify) == 0xB0);
    assert!(offset_of!(C, net_pnp_event) == 0xB8);
    assert!(offset_of!(C, status) == 0xC0);
    assert!(offset_of!(C, direct_oid_request) == 0xC8);
    assert!(offset_of!(C, direct_oid_request_complete) == 0xD0);
    assert!(offset_of!(C, cancel_direct_oid_request) == 0xD8);
    assert!(size_of::<C>() == 0xE0);

    type A = FilterAttachParameters;
    assert!(offset_of!(A, if_index) == 0x04);
    assert!(offset_of!(A, net_luid) == 0x08);
    assert!(offset_of!(A, filter_module_guid_name) == 0x10);
    assert!(offset_of!(A, base_miniport_if_index) == 0x18);
    assert!(offset_of!(A, base_miniport_instance_name) == 0x20);
    assert!(offset_of!(A, base_miniport_name) == 0x28);
    assert!(offset_of!(A, media_connect_state) == 0x30);
    assert!(offset_of!(A, media_duplex_state) == 0x34);
    assert!(offset_of!(A, xmit_link_speed) == 0x38);
    assert!(offset_of!(A, rcv_link_speed) == 0x40);
    assert!(offset_of!(A, miniport_media_type) == 0x48);
    assert!(offset_of!(A, miniport_physical_media_type) == 0x4C);
    assert!(offset_of!(A, miniport_media_specific_attributes) == 0x50);
    assert!(offset_of!(A, default_offload_configuration) == 0x58);
    assert!(offset_of!(A, mac_address_length) == 0x60);
    assert!(offset_of!(A, current_mac_address) == 0x62);
    assert!(offset_of!(A, base_miniport_net_luid) == 0x88);
    assert!(offset_of!(A, lower_if_index) == 0x90);
    assert!(offset_of!(A, lower_if_net_luid) == 0x98);
    assert!(offset_of!(A, flags) == 0xA0);
    assert!(size_of::<A>() == 0xA8);

    assert!(offset_of!(FilterAttributes, flags) == 4 && size_of::<FilterAttributes>() == 8);
    assert!(offset_of!(FilterPauseParameters, flags) == 4);
    assert!(offset_of!(FilterPauseParameters, pause_reason) == 8);
    assert!(size_of::<FilterPauseParameters>() == 12);

    type R = FilterRestartParameters;
    assert!(offset_of!(R, miniport_media_type) == 0x04);
    assert!(offset_of!(R, miniport_physical_media_type) == 0x08);
    assert!(offset_of!(R, restart_attributes) == 0x10);
    assert!(offset_of!(R, lower_if_index) == 0x18);
    assert!(offset_of!(R, lower_if_net_luid) == 0x20);
    assert!(offset_of!(R, flags) == 0x28);
    assert!(size_of::<R>() == 0x30);

    type S = StatusIndication;
    assert!(offset_of!(S, source_handle) == 8);
    assert!(offset_of!(S, port_number) == 16);
    assert!(offset_of!(S, status_code) == 20);
    assert!(offset_of!(S, flags) == 24);
    assert!(offset_of!(S, destination_handle) == 32);
    assert!(offset_of!(S, request_id) == 40);
    assert!(offset_of!(S, status_buffer) == 48);
    assert!(offset_of!(S, status_buffer_size) == 56);
    assert!(offset_of!(S, guid) == 60);
    assert!(offset_of!(S, ndis_reserved) == 80);
    assert!(size_of::<S>() == 112);

    type D = DeviceObjectAttributes;
    assert!(offset_of!(D, device_name) == 8);
    assert!(offset_of!(D, symbolic_name) == 16);
    assert!(offset_of!(D, major_functions) == 24);
    assert!(offset_of!(D, extension_size) == 32);
    assert!(offset_of!(D, default_sddl_string) == 40);
    assert!(offset_of!(D, device_class_guid) == 48);
    assert!(size_of::<D>() == 56);

    assert!(size_of::<SendFlags>() == 4 && size_of::<ReceiveFlags>() == 4);
};

// x86 (`x86-facts.md` §3, from the WDK headers): 4-byte pointers and handles; `NET_LUID` and the
// link speeds (`ULONG64`) stay 8-aligned, so padding appears before them.
#[cfg(target_pointer_width = "32")]
const _: () = {
    use core::mem::{offset_of, size_of};
    type C = FilterDriverCharacteristics;
    assert!(offset_of!(C, flags) == 0x08);
    assert!(offset_of!(C, friendly_name) == 0x0C);
    assert!(offset_of!(C, unique_name) == 0x14);
    assert!(offset_of!(C, service_name) == 0x1C);
    assert!(offset_of!(C, set_options) == 0x24);
    assert!(offset_of!(C, set_filter_module_options) == 0x28);
    assert!(offset_of!(C, attach) == 0x2C);
    assert!(offset_of!(C, detach) == 0x30);
    assert!(offset_of!(C, restart) == 0x34);
    assert!(offset_of!(C, pause) == 0x38);
    assert!(offset_of!(C, send_net_buffer_lists) == 0x3C);
    assert!(offset_of!(C, send_net_buffer_lists_complete) == 0x40);
    assert!(offset_of!(C, cancel_send_net_buffer_lists) == 0x44);
    assert!(offset_of!(C, receive_net_buffer_lists) == 0x48);
    assert!(offset_of!(C, return_net_buffer_lists) == 0x4C);
    assert!(offset_of!(C, oid_request) == 0x50);
    assert!(offset_of!(C, oid_request_complete) == 0x54);
    assert!(offset_of!(C, cancel_oid_request) == 0x58);
    assert!(offset_of!(C, device_pnp_event_notify) == 0x5C);
    assert!(offset_of!(C, net_pnp_event) == 0x60);
    assert!(offset_of!(C, status) == 0x64);
    assert!(offset_of!(C, direct_oid_request) == 0x68);
    assert!(offset_of!(C, direct_oid_request_complete) == 0x6C);
    assert!(offset_of!(C, cancel_direct_oid_request) == 0x70);
    // NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2.
    assert!(size_of::<C>() == 0x74);

    type A = FilterAttachParameters;
    assert!(offset_of!(A, if_index) == 0x04);
    assert!(offset_of!(A, net_luid) == 0x08);
    assert!(offset_of!(A, filter_module_guid_name) == 0x10);
    assert!(offset_of!(A, base_miniport_if_index) == 0x14);
    assert!(offset_of!(A, base_miniport_instance_name) == 0x18);
    assert!(offset_of!(A, base_miniport_name) == 0x1C);
    assert!(offset_of!(A, media_connect_state) == 0x20);
    assert!(offset_of!(A, media_duplex_state) == 0x24);
    assert!(offset_of!(A, xmit_link_speed) == 0x28);
    assert!(offset_of!(A, rcv_link_speed) == 0x30);
    assert!(offset_of!(A, miniport_media_type) == 0x38);
    assert!(offset_of!(A, miniport_physical_media_type) == 0x3C);
    assert!(offset_of!(A, miniport_media_specific_attributes) == 0x40);
    assert!(offset_of!(A, default_offload_configuration) == 0x44);
    assert!(offset_of!(A, mac_address_length) == 0x48);
    assert!(offset_of!(A, current_mac_address) == 0x4A);
    assert!(offset_of!(A, base_miniport_net_luid) == 0x70);
    assert!(offset_of!(A, lower_if_index) == 0x78);
    assert!(offset_of!(A, lower_if_net_luid) == 0x80);
    assert!(offset_of!(A, flags) == 0x88);
    // Through `Flags` (REVISION_1 is 0x8C), rounded up to the 8-byte alignment of `NET_LUID`.
    assert!(size_of::<A>() == 0x90);

    assert!(offset_of!(FilterAttributes, flags) == 4 && size_of::<FilterAttributes>() == 8);
    assert!(offset_of!(FilterPauseParameters, pause_reason) == 8);
    assert!(size_of::<FilterPauseParameters>() == 12);

    type R = FilterRestartParameters;
    assert!(offset_of!(R, miniport_media_type) == 0x04);
    assert!(offset_of!(R, miniport_physical_media_type) == 0x08);
    assert!(offset_of!(R, restart_attributes) == 0x0C);
    assert!(offset_of!(R, lower_if_index) == 0x10);
    assert!(offset_of!(R, lower_if_net_luid) == 0x18);
    assert!(offset_of!(R, flags) == 0x20);
    assert!(size_of::<R>() == 0x28);

    type S = StatusIndication;
    assert!(offset_of!(S, source_handle) == 0x04);
    assert!(offset_of!(S, port_number) == 0x08);
    assert!(offset_of!(S, status_code) == 0x0C);
    assert!(offset_of!(S, flags) == 0x10);
    assert!(offset_of!(S, destination_handle) == 0x14);
    assert!(offset_of!(S, request_id) == 0x18);
    assert!(offset_of!(S, status_buffer) == 0x1C);
    assert!(offset_of!(S, status_buffer_size) == 0x20);
    assert!(offset_of!(S, guid) == 0x24);
    assert!(offset_of!(S, ndis_reserved) == 0x34);
    assert!(size_of::<S>() == 0x44);

    type D = DeviceObjectAttributes;
    assert!(offset_of!(D, device_name) == 0x04);
    assert!(offset_of!(D, symbolic_name) == 0x08);
    assert!(offset_of!(D, major_functions) == 0x0C);
    assert!(offset_of!(D, extension_size) == 0x10);
    assert!(offset_of!(D, default_sddl_string) == 0x14);
    assert!(offset_of!(D, device_class_guid) == 0x18);
    assert!(size_of::<D>() == 0x1C);

    assert!(size_of::<SendFlags>() == 4 && size_of::<ReceiveFlags>() == 4);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn characteristics_layout_matches_the_facts() {
        type C = FilterDriverCharacteristics;
        crate::check_offsets(
            "NDIS_FILTER_DRIVER_CHARACTERISTICS.",
            &[
                ("Flags", offset_of!(C, flags), 0x08),
                ("FriendlyName", offset_of!(C, friendly_name), 0x10),
                ("UniqueName", offset_of!(C, unique_name), 0x20),
                ("ServiceName", offset_of!(C, service_name), 0x30),
                ("SetOptionsHandler", offset_of!(C, set_options), 0x40),
                ("AttachHandler", offset_of!(C, attach), 0x50),
                ("PauseHandler", offset_of!(C, pause), 0x68),
                ("SendNetBufferListsHandler", offset_of!(C, send_net_buffer_lists), 0x70),
                ("CancelSendNetBufferListsHandler", offset_of!(C, cancel_send_net_buffer_lists), 0x80),
                ("ReceiveNetBufferListsHandler", offset_of!(C, receive_net_buffer_lists), 0x88),
                ("OidRequestHandler", offset_of!(C, oid_request), 0x98),
                ("DevicePnPEventNotifyHandler", offset_of!(C, device_pnp_event_notify), 0xB0),
                ("StatusHandler", offset_of!(C, status), 0xC0),
                ("CancelDirectOidRequestHandler", offset_of!(C, cancel_direct_oid_request), 0xD8),
            ],
        );
        assert_eq!(size_of::<C>(), 0xE0);
        let header = FilterDriverCharacteristics::HEADER;
        assert_eq!((header.object_type, header.revision, header.size), (0x8B, 2, 0xE0));
    }

    #[test]
    fn attach_status_and_device_layouts_match_the_facts() {
        crate::check_offsets(
            "NDIS_FILTER_ATTACH_PARAMETERS.",
            &[
                ("MiniportMediaType", offset_of!(FilterAttachParameters, miniport_media_type), 0x48),
                ("MiniportPhysicalMediaType", offset_of!(FilterAttachParameters, miniport_physical_media_type), 0x4C),
                ("MacAddressLength", offset_of!(FilterAttachParameters, mac_address_length), 0x60),
                ("CurrentMacAddress", offset_of!(FilterAttachParameters, current_mac_address), 0x62),
            ],
        );
        crate::check_offsets(
            "NDIS_STATUS_INDICATION.",
            &[
                ("StatusCode", offset_of!(StatusIndication, status_code), 20),
                ("StatusBuffer", offset_of!(StatusIndication, status_buffer), 48),
                ("StatusBufferSize", offset_of!(StatusIndication, status_buffer_size), 56),
            ],
        );
        assert_eq!(size_of::<StatusIndication>(), 112);
        crate::check_offsets(
            "NDIS_DEVICE_OBJECT_ATTRIBUTES.",
            &[
                ("DeviceName", offset_of!(DeviceObjectAttributes, device_name), 8),
                ("SymbolicName", offset_of!(DeviceObjectAttributes, symbolic_name), 16),
                ("MajorFunctions", offset_of!(DeviceObjectAttributes, major_functions), 24),
                ("ExtensionSize", offset_of!(DeviceObjectAttributes, extension_size), 32),
                ("DefaultSDDLString", offset_of!(DeviceObjectAttributes, default_sddl_string), 40),
                ("DeviceClassGuid", offset_of!(DeviceObjectAttributes, device_class_guid), 48),
            ],
        );
        assert_eq!(size_of::<DeviceObjectAttributes>(), 56);
        let header = DeviceObjectAttributes::HEADER;
        assert_eq!((header.object_type, header.revision, header.size), (0x85, 1, 56));
        let attributes = FilterAttributes::default();
        assert_eq!((attributes.header.object_type, attributes.header.size, attributes.flags), (0x8D, 8, 0));
    }

    #[test]
    fn flags_test_and_set_like_the_macros() {
        let mut send = SendFlags::default();
        assert!(!send.at_dispatch() && !send.check_for_loopback());
        send.insert(SendFlags::DISPATCH_LEVEL);
        assert!(send.at_dispatch());
        assert_eq!(send | SendFlags::CHECK_FOR_LOOPBACK, SendFlags(3));
        assert!(SendFlags(3).check_for_loopback());
        let receive = ReceiveFlags(2);
        assert!(receive.resources() && !receive.at_dispatch());
        assert!((ReceiveFlags::DISPATCH_LEVEL | ReceiveFlags::RESOURCES).contains(ReceiveFlags(3)));
        assert!(SendCompleteFlags(1).at_dispatch() && ReturnFlags(1).at_dispatch());
        assert!(!ReturnFlags(0).at_dispatch());
    }
}
