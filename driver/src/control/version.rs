//! `IOCTL_WANLAYER_QUERY_VERSION` and its answer, [`VersionInfo`]: a small versioned structure,
//! little-endian, laid out byte by byte (no `repr(C)` cast, so no padding or endianness surprise):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | `struct_size`: bytes of the structure as this driver writes it ([`VersionInfo::LEN`]) |
//! | 4 | 4 | `interface_version`: [`INTERFACE_VERSION`], raised on any incompatible change |
//! | 8 | 2 | driver version major |
//! | 10 | 2 | driver version minor |
//! | 12 | 2 | driver version patch |
//! | 14 | 2 | reserved, zero |
//! | 16 | 4 | engine `max_modules` |
//! | 20 | 4 | engine `event_capacity` |
//!
//! A later interface may append fields: a reader checks `struct_size` and reads what it knows.
//! The format belongs with the other user-mode wire formats once `wanlayer-proto` exists.

use wanlayer_core::EngineConfig;
use wanlayer_ndis::io::{ctl_code, FILE_DEVICE_NETWORK, FILE_READ_ACCESS, METHOD_BUFFERED};

/// `CTL_CODE(FILE_DEVICE_NETWORK, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS)` = `0x00126000`: no
/// input, [`VersionInfo::LEN`] bytes of output.
pub const IOCTL_WANLAYER_QUERY_VERSION: u32 = ctl_code(FILE_DEVICE_NETWORK, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS);

/// The control interface version.
pub const INTERFACE_VERSION: u32 = 1;

const fn parse_version(text: &str) -> u16 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "empty version component");
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "version component is not a number");
        value = value * 10 + (bytes[i] - b'0') as u32;
        assert!(value <= u16::MAX as u32, "version component too large");
        i += 1;
    }
    value as u16
}

/// The driver's major version (the crate's).
pub const DRIVER_MAJOR: u16 = parse_version(env!("CARGO_PKG_VERSION_MAJOR"));
/// The driver's minor version.
pub const DRIVER_MINOR: u16 = parse_version(env!("CARGO_PKG_VERSION_MINOR"));
/// The driver's patch version.
pub const DRIVER_PATCH: u16 = parse_version(env!("CARGO_PKG_VERSION_PATCH"));

/// True when a version component fits the `u8` NDIS takes (`MajorDriverVersion`, ...).
const fn fits_ndis(component: u16) -> bool {
    component <= u8::MAX as u16
}

const _: () = assert!(fits_ndis(DRIVER_MAJOR) && fits_ndis(DRIVER_MINOR), "NDIS takes u8 driver versions");

/// The answer to [`IOCTL_WANLAYER_QUERY_VERSION`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionInfo {
    /// The control interface version.
    pub interface_version: u32,
    /// Driver version (major, minor, patch).
    pub driver_version: (u16, u16, u16),
    /// The engine's module table size.
    pub max_modules: u32,
    /// The engine's event queue size.
    pub event_capacity: u32,
}

impl VersionInfo {
    /// Bytes of the encoded structure.
    pub const LEN: usize = 24;

    /// This driver's answer for an engine configured with `config`.
    pub fn current(config: &EngineConfig) -> Self {
        Self {
            interface_version: INTERFACE_VERSION,
            driver_version: (DRIVER_MAJOR, DRIVER_MINOR, DRIVER_PATCH),
            max_modules: u32::try_from(config.max_modules).unwrap_or(u32::MAX),
            event_capacity: u32::try_from(config.event_capacity).unwrap_or(u32::MAX),
        }
    }

    /// Writes the structure into the first [`Self::LEN`] bytes of `out`; returns the bytes written,
    /// or `None` (nothing written) when `out` is shorter.
    pub fn emit(&self, out: &mut [u8]) -> Option<usize> {
        let out = out.get_mut(..Self::LEN)?;
        out[0..4].copy_from_slice(&(Self::LEN as u32).to_le_bytes());
        out[4..8].copy_from_slice(&self.interface_version.to_le_bytes());
        out[8..10].copy_from_slice(&self.driver_version.0.to_le_bytes());
        out[10..12].copy_from_slice(&self.driver_version.1.to_le_bytes());
        out[12..14].copy_from_slice(&self.driver_version.2.to_le_bytes());
        out[14..16].copy_from_slice(&0u16.to_le_bytes());
        out[16..20].copy_from_slice(&self.max_modules.to_le_bytes());
        out[20..24].copy_from_slice(&self.event_capacity.to_le_bytes());
        Some(Self::LEN)
    }
}
