//! The answer to `IOCTL_WANLAYER_QUERY_VERSION` (whose input is empty): who the driver is and what
//! it can do. The first 24 bytes are the layout the driver answered with before this crate
//! existed; the rest was appended, and a reader reads what the size says is there.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | header; `version` is the driver's interface version, whatever the caller's |
//! | 8 | 2 × 3 | driver version major, minor, patch |
//! | 14 | 2 | reserved, zero |
//! | 16 | 4 | engine module slots |
//! | 20 | 4 | engine event queue capacity |
//! | 24 | 4 | capabilities ([`CAP_LINKS`], ...) |
//! | 28 | 2 | event subscriber slots |
//! | 30 | 2 | capture session slots |
//! | 32 | 4 | largest subscriber ring, in records |
//! | 36 | 4 | largest snap length |
//! | 40 | 4 | largest capture ring, in bytes |
//! | 44 | 2 | most links per `LIST_LINKS` answer |
//! | 46 | 2 | hook slots |
//!
//! Unlike every other message, the answer is accepted from any interface version: it is how a
//! tool learns the driver's. Sizes other than 24 or at least 48 are refused; bytes after 48 (a
//! later driver's appendix) are ignored.

use crate::field::view;
use crate::header::{Header, HEADER_LEN};
use crate::{Error, Result};

/// The engine answers link listings.
pub const CAP_LINKS: u32 = 1 << 0;
/// The engine answers statistics queries.
pub const CAP_STATS: u32 = 1 << 1;
/// The engine resets statistics.
pub const CAP_RESET: u32 = 1 << 2;
/// The engine publishes events to subscribers.
pub const CAP_EVENTS: u32 = 1 << 3;
/// The engine captures packets.
pub const CAP_CAPTURE: u32 = 1 << 4;
/// The engine injects packets.
pub const CAP_INJECT: u32 = 1 << 5;

/// The engine runs an administrator's rule set (`SET_RULES`, `GET_RULES`, `RULE_STATS`).
pub const CAP_RULES: u32 = 1 << 6;

/// Bytes of the answer of the first driver (no [`Features`]).
pub const VERSION_BASE_LEN: usize = 24;

view! {
    /// The answer to `IOCTL_WANLAYER_QUERY_VERSION`.
    pub struct VersionInfo, LEN = 48; {
        /// Driver version, major.
        driver_major / set_driver_major @ 8: u16,
        /// Driver version, minor.
        driver_minor / set_driver_minor @ 10: u16,
        /// Driver version, patch.
        driver_patch / set_driver_patch @ 12: u16,
        /// Reserved, zero.
        reserved / set_reserved @ 14: u16,
        /// The engine's module slots.
        max_modules / set_max_modules @ 16: u32,
        /// The engine's own event queue capacity.
        event_capacity / set_event_capacity @ 20: u32,
        /// Capability bits.
        capabilities / set_capabilities @ 24: u32,
        /// Event subscriber slots.
        max_subscribers / set_max_subscribers @ 28: u16,
        /// Capture session slots.
        max_capture_sessions / set_max_capture_sessions @ 30: u16,
        /// Largest subscriber ring, in records.
        max_subscriber_capacity / set_max_subscriber_capacity @ 32: u32,
        /// Largest snap length.
        max_snap_len / set_max_snap_len @ 36: u32,
        /// Largest capture ring, in bytes.
        max_capture_bytes / set_max_capture_bytes @ 40: u32,
        /// Most links per listing answer.
        max_link_batch / set_max_link_batch @ 44: u16,
        /// Hook slots.
        max_hooks / set_max_hooks @ 46: u16,
    }
}

/// What a driver of this interface can do, and its limits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Features {
    /// Capability bits (`CAP_*`).
    pub capabilities: u32,
    /// Event subscriber slots.
    pub max_subscribers: u16,
    /// Capture session slots.
    pub max_capture_sessions: u16,
    /// Largest subscriber ring, in records.
    pub max_subscriber_capacity: u32,
    /// Largest snap length.
    pub max_snap_len: u32,
    /// Largest capture ring, in bytes.
    pub max_capture_bytes: u32,
    /// Most links per listing answer.
    pub max_link_batch: u16,
    /// Hook slots.
    pub max_hooks: u16,
}

/// The parsed answer to `IOCTL_WANLAYER_QUERY_VERSION`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionInfoRepr {
    /// The driver's interface version.
    pub interface_version: u16,
    /// Driver version (major, minor, patch).
    pub driver_version: [u16; 3],
    /// The engine's module slots.
    pub max_modules: u32,
    /// The engine's own event queue capacity.
    pub event_capacity: u32,
    /// What the driver can do; `None` from the first driver, which answered 24 bytes.
    pub features: Option<Features>,
}

impl VersionInfoRepr {
    /// Parses an answer that fills the buffer exactly.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadSize`] or [`Error::Reserved`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &VersionInfo<&T>) -> Result<Self> {
        let bytes = view.as_bytes();
        let header = Header::new_checked(bytes)?;
        let size = usize::try_from(header.size()).map_err(|_| Error::BadSize)?;
        if size != bytes.len() {
            return Err(if size > bytes.len() { Error::Truncated } else { Error::BadSize });
        }
        if header.reserved() != 0 {
            return Err(Error::Reserved);
        }
        if size < VERSION_BASE_LEN {
            return Err(Error::Truncated);
        }
        if size != VERSION_BASE_LEN && size < VersionInfo::<&[u8]>::LEN {
            return Err(Error::BadSize);
        }
        let read = VersionInfo::new_unchecked(bytes);
        if read.reserved() != 0 {
            return Err(Error::Reserved);
        }
        let features = (size >= VersionInfo::<&[u8]>::LEN).then(|| Features {
            capabilities: read.capabilities(),
            max_subscribers: read.max_subscribers(),
            max_capture_sessions: read.max_capture_sessions(),
            max_subscriber_capacity: read.max_subscriber_capacity(),
            max_snap_len: read.max_snap_len(),
            max_capture_bytes: read.max_capture_bytes(),
            max_link_batch: read.max_link_batch(),
            max_hooks: read.max_hooks(),
        });
        Ok(Self {
            interface_version: header.version(),
            driver_version: [read.driver_major(), read.driver_minor(), read.driver_patch()],
            max_modules: read.max_modules(),
            event_capacity: read.event_capacity(),
            features,
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 48, or 24 without features.
    pub fn buffer_len(&self) -> usize {
        if self.features.is_some() {
            VersionInfo::<&[u8]>::LEN
        } else {
            VERSION_BASE_LEN
        }
    }

    /// Writes the answer; the header carries `interface_version`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len);
    /// nothing is written then.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, view: &mut VersionInfo<&mut T>) -> Result<()> {
        let len = self.buffer_len();
        let bytes = view.as_bytes_mut();
        crate::header::emit(bytes, len)?;
        Header::new_unchecked(&mut *bytes).set_version(self.interface_version);
        let base = &mut bytes[HEADER_LEN..VERSION_BASE_LEN];
        base[0..2].copy_from_slice(&self.driver_version[0].to_le_bytes());
        base[2..4].copy_from_slice(&self.driver_version[1].to_le_bytes());
        base[4..6].copy_from_slice(&self.driver_version[2].to_le_bytes());
        base[6..8].copy_from_slice(&[0, 0]);
        base[8..12].copy_from_slice(&self.max_modules.to_le_bytes());
        base[12..16].copy_from_slice(&self.event_capacity.to_le_bytes());
        if let Some(features) = self.features {
            let mut view = VersionInfo::new_unchecked(&mut *bytes);
            view.set_capabilities(features.capabilities);
            view.set_max_subscribers(features.max_subscribers);
            view.set_max_capture_sessions(features.max_capture_sessions);
            view.set_max_subscriber_capacity(features.max_subscriber_capacity);
            view.set_max_snap_len(features.max_snap_len);
            view.set_max_capture_bytes(features.max_capture_bytes);
            view.set_max_link_batch(features.max_link_batch);
            view.set_max_hooks(features.max_hooks);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_reserved, assert_strict_lengths};

    fn sample() -> VersionInfoRepr {
        VersionInfoRepr {
            interface_version: 1,
            driver_version: [0, 1, 2],
            max_modules: 64,
            event_capacity: 1024,
            features: Some(Features {
                capabilities: CAP_LINKS | CAP_EVENTS,
                max_subscribers: 16,
                max_capture_sessions: 8,
                max_subscriber_capacity: 65_536,
                max_snap_len: 65_535,
                max_capture_bytes: 16 << 20,
                max_link_batch: 1024,
                max_hooks: 16,
            }),
        }
    }

    fn parse(bytes: &[u8]) -> Result<VersionInfoRepr> {
        VersionInfoRepr::parse(&VersionInfo::new_unchecked(bytes))
    }

    #[test]
    fn round_trips_with_and_without_features() {
        for repr in [sample(), VersionInfoRepr { features: None, ..sample() }] {
            let mut buffer = [0xa5u8; 64];
            repr.emit(&mut VersionInfo::new_unchecked(&mut buffer[..])).unwrap();
            assert_eq!(parse(&buffer[..repr.buffer_len()]), Ok(repr));
        }
    }

    #[test]
    fn reads_the_first_drivers_24_byte_answer() {
        let mut old = [0u8; 24];
        old[0] = 24;
        old[4] = 1;
        old[8] = 0;
        old[10] = 1;
        old[16] = 64;
        old[20..22].copy_from_slice(&1024u16.to_le_bytes());
        let repr = parse(&old).unwrap();
        assert_eq!((repr.driver_version, repr.max_modules, repr.event_capacity, repr.features), ([0, 1, 0], 64, 1024, None));
    }

    #[test]
    fn any_interface_version_is_read_and_malformed_answers_are_refused() {
        let repr = VersionInfoRepr { interface_version: 9, ..sample() };
        let mut buffer = [0u8; 48];
        repr.emit(&mut VersionInfo::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(parse(&buffer).map(|r| r.interface_version), Ok(9));
        let mut longer = [0u8; 56];
        longer[..48].copy_from_slice(&buffer);
        longer[0] = 56;
        assert!(parse(&longer).is_ok(), "a later driver's appendix is ignored");
        let mut odd = buffer;
        odd[0] = 40;
        assert_eq!(parse(&odd[..40]), Err(Error::BadSize));
        assert_strict_lengths(&buffer, parse);
        assert_reserved(&buffer, &[6..8, 14..16], parse);
        assert_eq!(repr.emit(&mut VersionInfo::new_unchecked(&mut [0u8; 47][..])), Err(Error::Truncated));
    }
}
