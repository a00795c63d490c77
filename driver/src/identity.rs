//! Who the driver is: the names and GUIDs NDIS, the INF and user-mode tools must agree on.
//!
//! **This file is the one definition.** The packaging step stamps the INF from the same values
//! (`NetCfgInstanceId` = [`FILTER_GUID`], `AddService` = [`SERVICE_NAME`], ...): `cargo xtask`
//! reads them with `build::driver_identity()` (xtask/src/build.rs), which parses every
//! `pub const NAME: &str = "value";` line of this file. Keep each constant on one line, a plain
//! string literal (escapes `\\` and `\"` only), so that parser stays trivial.
//!
//! The kernel wants these as counted UTF-16 (`UNICODE_STRING`); [`wide`] turns each into a
//! `'static` UTF-16 array at compile time, and [`guid`] parses the GUID strings, also at compile
//! time, so a typo fails the build instead of the registration.

use wanlayer_ndis::types::{Guid, UnicodeString};

/// `UniqueName` of the filter: the INF's `NetCfgInstanceId`. Generated for wanlayer; never change
/// it once shipped (NDIS and the network configuration store key the filter by it).
pub const FILTER_GUID: &str = "{7AC7F78C-DAB7-4321-894A-42909841B066}";

/// `ServiceName` of the filter: the INF's `AddService` name and the `.sys` file's base name.
pub const SERVICE_NAME: &str = "wanlayer";

/// `FriendlyName` of the filter: what NDIS and `Get-NetAdapterBinding` show.
pub const FRIENDLY_NAME: &str = "wanlayer NdisWan Filter";

/// The NetCfg component ID: the INF's model (hardware) ID, what `netcfg -i` installs and
/// `Get-NetAdapterBinding -ComponentID` shows. Not used by the kernel code; defined here so the
/// INF and the scripts take it from the same place as the names the driver registers.
pub const COMPONENT_ID: &str = "wl_wanlayer";

/// The INF's `Ndi\HelpText`: the component's description in the network configuration UI.
pub const HELP_TEXT: &str = "wanlayer: tracks NdisWan links and runs vendor hooks over their traffic";

/// The INF's `Provider` and manufacturer.
pub const PROVIDER: &str = "wanlayer";

/// The control device's kernel name.
pub const CONTROL_DEVICE_NAME: &str = "\\Device\\WanLayer";

/// The control device's symbolic link; user mode opens `\\.\WanLayer`.
pub const CONTROL_SYMBOLIC_NAME: &str = "\\DosDevices\\WanLayer";

/// The control device's security: full access for SYSTEM and Administrators, nobody else (never
/// Everyone: facts §3 lists control devices open to Everyone among the known field problems).
pub const CONTROL_DEVICE_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";

/// The control device's class GUID (`IoCreateDeviceSecure`'s `DeviceClassGuid`): lets an
/// administrator override [`CONTROL_DEVICE_SDDL`] through the class's registry key.
pub const CONTROL_DEVICE_CLASS_GUID: &str = "{0EA00B87-7951-4637-93D9-CBFCA0B4F0E6}";

/// The driver's version as NDIS takes it (`MajorDriverVersion`, `MinorDriverVersion`): the
/// crate's major and minor version. (User mode reads the whole version, patch included, from
/// `IOCTL_WANLAYER_QUERY_VERSION`, which the engine answers from the same workspace version.)
pub const NDIS_DRIVER_VERSION: (u8, u8) =
    (version_component(env!("CARGO_PKG_VERSION_MAJOR")), version_component(env!("CARGO_PKG_VERSION_MINOR")));

/// A decimal version component, at compile time.
///
/// # Panics
/// At compile time, when `text` is empty, not decimal, or over 255 (NDIS takes `u8`s).
const fn version_component(text: &str) -> u8 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "empty version component");
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "version component is not a number");
        value = value * 10 + (bytes[i] - b'0') as u32;
        assert!(value <= u8::MAX as u32, "NDIS takes u8 driver versions");
        i += 1;
    }
    value as u8
}

/// An ASCII string as NUL-terminated UTF-16 code units, at compile time (`N` must be its length
/// plus one, for the NUL).
///
/// # Panics
/// At compile time, when the string is not ASCII or `N` is not its length plus one.
pub const fn wide<const N: usize>(text: &str) -> [u16; N] {
    let bytes = text.as_bytes();
    assert!(bytes.len() + 1 == N, "wide: N must be the string's length plus one");
    let mut units = [0u16; N];
    let mut i = 0;
    while i < N - 1 {
        assert!(bytes[i].is_ascii(), "wide: identity strings are ASCII");
        units[i] = bytes[i] as u16;
        i += 1;
    }
    units
}

/// A `UNICODE_STRING` over a NUL-terminated array [`wide`] made: `Length` excludes the NUL,
/// `MaximumLength` includes it (what `RtlInitUnicodeString` produces for a literal).
pub const fn unicode(units: &'static [u16]) -> UnicodeString {
    assert!(!units.is_empty() && units[units.len() - 1] == 0, "unicode: NUL-terminated units");
    assert!(units.len() <= (u16::MAX / 2) as usize, "unicode: too long");
    UnicodeString {
        length: ((units.len() - 1) * 2) as u16,
        maximum_length: (units.len() * 2) as u16,
        buffer: units.as_ptr().cast_mut(),
    }
}

const fn hex_digit(byte: u8) -> u32 {
    match byte {
        b'0'..=b'9' => (byte - b'0') as u32,
        b'a'..=b'f' => (byte - b'a' + 10) as u32,
        b'A'..=b'F' => (byte - b'A' + 10) as u32,
        _ => panic!("guid: not a hex digit"),
    }
}

const fn hex(bytes: &[u8], start: usize, digits: usize) -> u32 {
    let mut value = 0;
    let mut i = 0;
    while i < digits {
        value = value << 4 | hex_digit(bytes[start + i]);
        i += 1;
    }
    value
}

/// Parses `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` at compile time.
///
/// # Panics
/// At compile time, when `text` is not a braced GUID.
pub const fn guid(text: &str) -> Guid {
    let b = text.as_bytes();
    assert!(b.len() == 38 && b[0] == b'{' && b[37] == b'}', "guid: braces and 36 characters");
    assert!(b[9] == b'-' && b[14] == b'-' && b[19] == b'-' && b[24] == b'-', "guid: dashes");
    let mut data4 = [0u8; 8];
    data4[0] = hex(b, 20, 2) as u8;
    data4[1] = hex(b, 22, 2) as u8;
    let mut i = 0;
    while i < 6 {
        data4[2 + i] = hex(b, 25 + 2 * i, 2) as u8;
        i += 1;
    }
    Guid { data1: hex(b, 1, 8), data2: hex(b, 10, 4) as u16, data3: hex(b, 15, 4) as u16, data4 }
}

/// [`FRIENDLY_NAME`] in UTF-16, NUL-terminated (as are the arrays below).
pub static FRIENDLY_NAME_W: [u16; FRIENDLY_NAME.len() + 1] = wide(FRIENDLY_NAME);
/// [`FILTER_GUID`] in UTF-16.
pub static FILTER_GUID_W: [u16; FILTER_GUID.len() + 1] = wide(FILTER_GUID);
/// [`SERVICE_NAME`] in UTF-16.
pub static SERVICE_NAME_W: [u16; SERVICE_NAME.len() + 1] = wide(SERVICE_NAME);
/// [`CONTROL_DEVICE_NAME`] in UTF-16.
pub static CONTROL_DEVICE_NAME_W: [u16; CONTROL_DEVICE_NAME.len() + 1] = wide(CONTROL_DEVICE_NAME);
/// [`CONTROL_SYMBOLIC_NAME`] in UTF-16.
pub static CONTROL_SYMBOLIC_NAME_W: [u16; CONTROL_SYMBOLIC_NAME.len() + 1] = wide(CONTROL_SYMBOLIC_NAME);
/// [`CONTROL_DEVICE_SDDL`] in UTF-16.
pub static CONTROL_DEVICE_SDDL_W: [u16; CONTROL_DEVICE_SDDL.len() + 1] = wide(CONTROL_DEVICE_SDDL);
/// [`CONTROL_DEVICE_CLASS_GUID`], parsed.
pub static CONTROL_DEVICE_CLASS: Guid = guid(CONTROL_DEVICE_CLASS_GUID);

const _: () = {
    // The filter GUID must parse too (NDIS takes it as a string, the INF as a GUID).
    let parsed = guid(FILTER_GUID);
    assert!(parsed.data1 == 0x7AC7_F78C && parsed.data4[7] == 0x66);
    let class = guid(CONTROL_DEVICE_CLASS_GUID);
    assert!(class.data1 == 0x0EA0_0B87 && class.data2 == 0x7951 && class.data3 == 0x4637);
    assert!(class.data4[0] == 0x93 && class.data4[1] == 0xD9 && class.data4[2] == 0xCB && class.data4[7] == 0xE6);
};
