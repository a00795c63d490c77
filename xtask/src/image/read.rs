//! Bounds-checked little-endian reads from a byte slice.
//!
//! The promise of this file: every read is checked against the end of its view and returns
//! [`ParseError`] instead of panicking, whatever the offsets and lengths a hostile file supplies.

use std::fmt;

/// Longest name (DLL, function, section string, PDB path) read from an image before giving up.
const MAX_NAME: usize = 4096;

/// Why an image, or one of its directories, could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Reading `len` bytes of `what` at file offset `offset` would pass the end of the file
    /// (or of the structure that holds it).
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// File offset of the read, as far as it can be computed.
        offset: u64,
        /// Bytes wanted.
        len: u64,
    },
    /// The file does not start with the DOS signature `MZ`.
    NoDosSignature,
    /// `e_lfanew` does not point at the signature `PE\0\0`.
    NoPeSignature {
        /// The value of `e_lfanew`.
        offset: u32,
    },
    /// The optional header's magic is neither PE32 (0x10b) nor PE32+ (0x20b).
    UnknownOptionalMagic(u16),
    /// `SizeOfOptionalHeader` is too small for the fields its magic promises.
    OptionalHeaderTooSmall {
        /// `SizeOfOptionalHeader`.
        size: u16,
        /// Bytes the header needs up to its data directories.
        needed: u16,
    },
    /// An RVA of `what` lies neither in the headers nor in the file data of any section.
    RvaNotInFile {
        /// The structure the RVA points at.
        what: &'static str,
        /// The RVA.
        rva: u32,
    },
    /// A NUL-terminated name of `what` does not end within its view (or within 4096 bytes).
    UnterminatedName {
        /// The structure holding the name.
        what: &'static str,
    },
    /// More entries of `what` than this inspector accepts: a corrupt or hostile file.
    TooMany {
        /// The entries being counted.
        what: &'static str,
        /// The largest accepted count.
        limit: usize,
    },
    /// A field of `what` holds a value that makes the structure unreadable.
    Invalid {
        /// The structure.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, offset, len } => {
                write!(f, "{what}: {len} byte(s) at file offset {offset:#x} pass the end of the data")
            }
            Self::NoDosSignature => f.write_str("not a PE image: no 'MZ' signature at offset 0"),
            Self::NoPeSignature { offset } => {
                write!(f, "not a PE image: no 'PE\\0\\0' signature at e_lfanew ({offset:#x})")
            }
            Self::UnknownOptionalMagic(magic) => {
                write!(f, "optional header magic {magic:#06x} is neither PE32 (0x10b) nor PE32+ (0x20b)")
            }
            Self::OptionalHeaderTooSmall { size, needed } => {
                write!(f, "SizeOfOptionalHeader {size:#x} is smaller than the {needed:#x} bytes its fields need")
            }
            Self::RvaNotInFile { what, rva } => {
                write!(f, "{what}: RVA {rva:#x} lies in no section's file data")
            }
            Self::UnterminatedName { what } => write!(f, "{what}: name without a terminating NUL"),
            Self::TooMany { what, limit } => write!(f, "{what}: more than {limit} entries"),
            Self::Invalid { what, detail } => write!(f, "{what}: {detail}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A window on the file: `data` starts at file offset `offset` and holds the structure `what`.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a> {
    data: &'a [u8],
    offset: u64,
    what: &'static str,
}

impl<'a> Bytes<'a> {
    /// The whole file.
    pub fn file(data: &'a [u8]) -> Self {
        Self { data, offset: 0, what: "file" }
    }

    /// Bytes in the view.
    pub fn len(self) -> usize {
        self.data.len()
    }

    /// True for a view of no bytes.
    pub fn is_empty(self) -> bool {
        self.data.is_empty()
    }

    fn truncated(self, at: usize, len: usize) -> ParseError {
        ParseError::Truncated { what: self.what, offset: self.offset.saturating_add(at as u64), len: len as u64 }
    }

    /// The `len` bytes at `at`, as a view holding `what`.
    pub fn view(self, what: &'static str, at: usize, len: usize) -> Result<Bytes<'a>, ParseError> {
        let data = at.checked_add(len).and_then(|end| self.data.get(at..end)).ok_or(ParseError::Truncated {
            what,
            offset: self.offset.saturating_add(at as u64),
            len: len as u64,
        })?;
        Ok(Bytes { data, offset: self.offset.saturating_add(at as u64), what })
    }

    /// The raw `len` bytes at `at`.
    pub fn bytes(self, at: usize, len: usize) -> Result<&'a [u8], ParseError> {
        at.checked_add(len).and_then(|end| self.data.get(at..end)).ok_or_else(|| self.truncated(at, len))
    }

    fn array<const N: usize>(self, at: usize) -> Result<[u8; N], ParseError> {
        let bytes = self.bytes(at, N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// The byte at `at`.
    pub fn u8(self, at: usize) -> Result<u8, ParseError> {
        self.data.get(at).copied().ok_or_else(|| self.truncated(at, 1))
    }

    /// The little-endian `u16` at `at`.
    pub fn u16(self, at: usize) -> Result<u16, ParseError> {
        self.array(at).map(u16::from_le_bytes)
    }

    /// The little-endian `u32` at `at`.
    pub fn u32(self, at: usize) -> Result<u32, ParseError> {
        self.array(at).map(u32::from_le_bytes)
    }

    /// The little-endian `u64` at `at`.
    pub fn u64(self, at: usize) -> Result<u64, ParseError> {
        self.array(at).map(u64::from_le_bytes)
    }

    /// The 16 bytes at `at` (a GUID).
    pub fn guid(self, at: usize) -> Result<[u8; 16], ParseError> {
        self.array(at)
    }

    /// The NUL-terminated name at `at`, without its NUL, decoded lossily.
    pub fn name(self, at: usize) -> Result<String, ParseError> {
        let tail = self.data.get(at..).ok_or_else(|| self.truncated(at, 1))?;
        let tail = &tail[..tail.len().min(MAX_NAME)];
        let end = tail.iter().position(|&b| b == 0).ok_or(ParseError::UnterminatedName { what: self.what })?;
        Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
    }
}
