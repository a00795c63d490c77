//! The PE/COFF headers and section table, and [`inspect`], which reads a whole image into an
//! [`ImageReport`].
//!
//! Only the headers are required: if they cannot be read, [`inspect`] fails with a
//! [`ParseError`]. Each data directory is read on its own and keeps its own `Result` in the
//! report, so one corrupt directory is reported without hiding the rest of the image.

use super::checksum::pe_checksum;
use super::code::{self, FloatingPointScan};
use super::directories::{self, Certificate, DebugEntry, Exports, ImportedDll, Relocations};
use super::read::{Bytes, ParseError};
use std::fmt;

/// Size of the COFF file header.
const COFF_HEADER_LEN: usize = 20;
/// Size of one section header.
const SECTION_HEADER_LEN: usize = 40;
/// Offset of `CheckSum` in the optional header (PE32 and PE32+ alike).
const CHECKSUM_FIELD: usize = 64;
/// The number of data directories a PE image defines.
pub const DIRECTORY_COUNT: usize = 16;

/// The optional header magic of PE32+ (64-bit) images.
pub const PE32_PLUS_MAGIC: u16 = 0x20B;
/// The optional header magic of PE32 (32-bit) images.
pub const PE32_MAGIC: u16 = 0x10B;

/// `IMAGE_SCN_CNT_CODE`.
pub const SCN_CODE: u32 = 0x0000_0020;
/// `IMAGE_SCN_CNT_INITIALIZED_DATA`.
pub const SCN_INITIALIZED_DATA: u32 = 0x0000_0040;
/// `IMAGE_SCN_CNT_UNINITIALIZED_DATA`.
pub const SCN_UNINITIALIZED_DATA: u32 = 0x0000_0080;
/// `IMAGE_SCN_MEM_DISCARDABLE`.
pub const SCN_DISCARDABLE: u32 = 0x0200_0000;
/// `IMAGE_SCN_MEM_NOT_PAGED`.
pub const SCN_NOT_PAGED: u32 = 0x0800_0000;
/// `IMAGE_SCN_MEM_EXECUTE`.
pub const SCN_EXECUTE: u32 = 0x2000_0000;
/// `IMAGE_SCN_MEM_READ`.
pub const SCN_READ: u32 = 0x4000_0000;
/// `IMAGE_SCN_MEM_WRITE`.
pub const SCN_WRITE: u32 = 0x8000_0000;

/// Data directory indexes (`IMAGE_DIRECTORY_ENTRY_*`) and their names.
pub mod dir {
    /// `IMAGE_DIRECTORY_ENTRY_EXPORT`.
    pub const EXPORT: usize = 0;
    /// `IMAGE_DIRECTORY_ENTRY_IMPORT`.
    pub const IMPORT: usize = 1;
    /// `IMAGE_DIRECTORY_ENTRY_SECURITY` (its address is a file offset, not an RVA).
    pub const SECURITY: usize = 4;
    /// `IMAGE_DIRECTORY_ENTRY_BASERELOC`.
    pub const BASERELOC: usize = 5;
    /// `IMAGE_DIRECTORY_ENTRY_DEBUG`.
    pub const DEBUG: usize = 6;
    /// `IMAGE_DIRECTORY_ENTRY_TLS`.
    pub const TLS: usize = 9;
    /// `IMAGE_DIRECTORY_ENTRY_LOAD_CONFIG`.
    pub const LOAD_CONFIG: usize = 10;
    /// `IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT`.
    pub const DELAY_IMPORT: usize = 13;

    /// The name of every directory, by index.
    pub const NAMES: [&str; super::DIRECTORY_COUNT] = [
        "export",
        "import",
        "resource",
        "exception",
        "security",
        "base relocation",
        "debug",
        "architecture",
        "global pointer",
        "TLS",
        "load config",
        "bound import",
        "IAT",
        "delay import",
        "CLR runtime",
        "reserved",
    ];
}

/// A COFF machine type (`IMAGE_FILE_MACHINE_*`); unknown values survive as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// `IMAGE_FILE_MACHINE_AMD64` (0x8664).
    Amd64,
    /// `IMAGE_FILE_MACHINE_ARM64` (0xaa64).
    Arm64,
    /// `IMAGE_FILE_MACHINE_I386` (0x14c).
    I386,
    /// `IMAGE_FILE_MACHINE_ARMNT` (0x1c4).
    ArmNt,
    /// `IMAGE_FILE_MACHINE_ARM64EC` (0xa641).
    Arm64Ec,
    /// `IMAGE_FILE_MACHINE_ARM64X` (0xa64e).
    Arm64X,
    /// Any other value.
    Unknown(u16),
}

impl Machine {
    /// The machine type of a COFF header field.
    pub fn from_u16(value: u16) -> Self {
        match value {
            0x8664 => Self::Amd64,
            0xAA64 => Self::Arm64,
            0x014C => Self::I386,
            0x01C4 => Self::ArmNt,
            0xA641 => Self::Arm64Ec,
            0xA64E => Self::Arm64X,
            other => Self::Unknown(other),
        }
    }

    /// The COFF header field value.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Amd64 => 0x8664,
            Self::Arm64 => 0xAA64,
            Self::I386 => 0x014C,
            Self::ArmNt => 0x01C4,
            Self::Arm64Ec => 0xA641,
            Self::Arm64X => 0xA64E,
            Self::Unknown(other) => other,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Amd64 => "AMD64",
            Self::Arm64 => "ARM64",
            Self::I386 => "I386",
            Self::ArmNt => "ARMNT",
            Self::Arm64Ec => "ARM64EC",
            Self::Arm64X => "ARM64X",
            Self::Unknown(_) => "unknown",
        };
        write!(f, "{name} ({:#06x})", self.to_u16())
    }
}

/// One data directory entry: an RVA (a file offset for the security directory) and a size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataDirectory {
    /// `VirtualAddress`.
    pub rva: u32,
    /// `Size`.
    pub size: u32,
}

impl DataDirectory {
    /// True when either field is non-zero: the loader would look at it.
    pub fn is_present(self) -> bool {
        self.rva != 0 || self.size != 0
    }
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The 8-byte name, NULs trimmed, decoded lossily.
    pub name: String,
    /// `VirtualAddress` (an RVA).
    pub rva: u32,
    /// `VirtualSize`.
    pub virtual_size: u32,
    /// `PointerToRawData`.
    pub raw_offset: u32,
    /// `SizeOfRawData`.
    pub raw_size: u32,
    /// `Characteristics` (`IMAGE_SCN_*`).
    pub characteristics: u32,
}

impl Section {
    /// Bytes the section spans in memory (`VirtualSize`, or `SizeOfRawData` when that is 0).
    pub fn extent(&self) -> u32 {
        if self.virtual_size != 0 {
            self.virtual_size
        } else {
            self.raw_size
        }
    }

    /// True when `rva` lies within the section in memory.
    pub fn contains(&self, rva: u32) -> bool {
        rva >= self.rva && u64::from(rva) < u64::from(self.rva) + u64::from(self.extent())
    }

    /// True when every bit of `flags` is set in the characteristics.
    pub fn has(&self, flags: u32) -> bool {
        self.characteristics & flags == flags
    }

    /// True when the section is executable (`IMAGE_SCN_MEM_EXECUTE`).
    pub fn is_executable(&self) -> bool {
        self.has(SCN_EXECUTE)
    }

    /// True when the section is writable (`IMAGE_SCN_MEM_WRITE`).
    pub fn is_writable(&self) -> bool {
        self.has(SCN_WRITE)
    }

    /// True when the section is discarded after initialisation (`IMAGE_SCN_MEM_DISCARDABLE`,
    /// or named `INIT`, which the kernel loader discards after `DriverEntry` returns).
    pub fn is_discardable(&self) -> bool {
        self.has(SCN_DISCARDABLE) || self.name.eq_ignore_ascii_case("INIT")
    }

    /// File offset one past the section's raw data.
    pub fn raw_end(&self) -> u64 {
        u64::from(self.raw_offset) + u64::from(self.raw_size)
    }
}

/// Everything read from an image; [`ImageReport::problems`] judges it and its `Display` prints
/// it for a driver engineer.
#[derive(Debug, Clone)]
pub struct ImageReport {
    /// File size in bytes.
    pub file_len: usize,
    /// COFF `Machine`.
    pub machine: Machine,
    /// COFF `Characteristics` (`IMAGE_FILE_*`).
    pub coff_characteristics: u16,
    /// COFF `TimeDateStamp` (a hash when the linker was asked for reproducible output).
    pub timestamp: u32,
    /// Optional header magic ([`PE32_PLUS_MAGIC`] or [`PE32_MAGIC`]).
    pub magic: u16,
    /// Linker major and minor version.
    pub linker_version: (u8, u8),
    /// Required OS major and minor version.
    pub os_version: (u16, u16),
    /// Subsystem major and minor version.
    pub subsystem_version: (u16, u16),
    /// `AddressOfEntryPoint` (an RVA).
    pub entry_point: u32,
    /// `ImageBase`.
    pub image_base: u64,
    /// `SectionAlignment`.
    pub section_alignment: u32,
    /// `FileAlignment`.
    pub file_alignment: u32,
    /// `SizeOfImage`.
    pub size_of_image: u32,
    /// `SizeOfHeaders`.
    pub size_of_headers: u32,
    /// `CheckSum` as stored.
    pub checksum: u32,
    /// The checksum recomputed over the file.
    pub computed_checksum: u32,
    /// `Subsystem` (`IMAGE_SUBSYSTEM_*`).
    pub subsystem: u16,
    /// `DllCharacteristics` (`IMAGE_DLLCHARACTERISTICS_*`).
    pub dll_characteristics: u16,
    /// The data directories; those beyond `NumberOfRvaAndSizes` are zero.
    pub directories: [DataDirectory; DIRECTORY_COUNT],
    /// `NumberOfRvaAndSizes` as stored.
    pub directory_count: u32,
    /// The section table.
    pub sections: Vec<Section>,
    /// The import directory, grouped by DLL (empty when there is none).
    pub imports: Result<Vec<ImportedDll>, ParseError>,
    /// The export directory, if any.
    pub exports: Result<Option<Exports>, ParseError>,
    /// The base relocation directory, if any.
    pub relocations: Result<Option<Relocations>, ParseError>,
    /// The debug directory entries.
    pub debug: Result<Vec<DebugEntry>, ParseError>,
    /// The first entry of the security (Authenticode) directory, if any.
    pub certificate: Result<Option<Certificate>, ParseError>,
    /// COFF `NumberOfSymbols` (images normally have no COFF symbol table).
    pub symbol_count: u32,
    /// The RVA of the COFF symbol `DriverEntry`, if a COFF symbol table holds it.
    pub driver_entry_symbol: Result<Option<u32>, ParseError>,
    /// I386 images only: what a decode of the executable sections found ([`code::scan_x86`]).
    pub x86_code: Option<FloatingPointScan>,
}

impl ImageReport {
    /// True for a PE32+ (64-bit) optional header.
    pub fn is_pe32_plus(&self) -> bool {
        self.magic == PE32_PLUS_MAGIC
    }

    /// The section holding `rva` in memory, if any.
    pub fn section_of(&self, rva: u32) -> Option<&Section> {
        self.sections.iter().find(|section| section.contains(rva))
    }

    /// Data directory `index` (see [`dir`]).
    pub fn directory(&self, index: usize) -> DataDirectory {
        self.directories.get(index).copied().unwrap_or_default()
    }
}

/// The parsed headers plus the file, for reading what RVAs point at.
pub struct Image<'a> {
    /// The whole file.
    pub file: Bytes<'a>,
    /// The section table.
    pub sections: Vec<Section>,
    /// `SizeOfHeaders`: RVAs below it (outside every section) map to the same file offset.
    pub size_of_headers: u32,
    /// True for PE32+: import thunks are 8 bytes wide, not 4.
    pub pe32_plus: bool,
}

impl<'a> Image<'a> {
    /// The file bytes from `rva` to the end of the section's raw data (or of the headers).
    pub fn at_rva(&self, what: &'static str, rva: u32) -> Result<Bytes<'a>, ParseError> {
        let (start, available) = match self.sections.iter().find(|section| section.contains(rva)) {
            Some(section) => {
                let delta = rva - section.rva;
                if delta >= section.raw_size {
                    return Err(ParseError::RvaNotInFile { what, rva });
                }
                (u64::from(section.raw_offset) + u64::from(delta), u64::from(section.raw_size - delta))
            }
            None if rva < self.size_of_headers => (u64::from(rva), u64::from(self.size_of_headers - rva)),
            None => return Err(ParseError::RvaNotInFile { what, rva }),
        };
        let file_len = self.file.len() as u64;
        if start >= file_len {
            return Err(ParseError::Truncated { what, offset: start, len: available });
        }
        let len = available.min(file_len - start);
        self.file.view(what, start as usize, len as usize)
    }

    /// Exactly `len` file bytes at `rva`.
    pub fn at_rva_len(&self, what: &'static str, rva: u32, len: u32) -> Result<Bytes<'a>, ParseError> {
        self.at_rva(what, rva)?.view(what, 0, len as usize)
    }
}

/// The headers every reader of an image starts from — the verifier's [`inspect`] and the
/// Authenticode code of `cargo xtask package` (`package/pe.rs`), which needs the file offsets of
/// `CheckSum` and of the security directory entry — for PE32 and PE32+ alike.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    /// The whole file.
    pub file: Bytes<'a>,
    /// The COFF file header.
    pub coff: Bytes<'a>,
    /// File offset of the optional header.
    pub optional_at: usize,
    /// The optional header (`SizeOfOptionalHeader` bytes).
    pub optional: Bytes<'a>,
    /// The optional header magic: [`PE32_MAGIC`] or [`PE32_PLUS_MAGIC`].
    pub magic: u16,
    /// Offset of the data directories in the optional header (96 for PE32, 112 for PE32+).
    directories_at: usize,
    /// `NumberOfRvaAndSizes` as stored.
    pub directory_count: u32,
    /// The data directories (the first 16 at most; absent ones are zero).
    pub directories: [DataDirectory; DIRECTORY_COUNT],
}

impl Headers<'_> {
    /// True for a PE32+ (64-bit) optional header.
    pub fn is_pe32_plus(&self) -> bool {
        self.magic == PE32_PLUS_MAGIC
    }

    /// File offset of the optional header's `CheckSum` (the same field offset in PE32 and PE32+).
    pub fn checksum_at(&self) -> usize {
        self.optional_at + CHECKSUM_FIELD
    }

    /// File offset of data directory entry `index` (see [`dir`]), when the header holds it.
    pub fn directory_entry_at(&self, index: usize) -> Option<usize> {
        let at = self.directories_at + index * 8;
        let held = index < (self.directory_count as usize).min(DIRECTORY_COUNT) && at + 8 <= self.optional.len();
        held.then_some(self.optional_at + at)
    }
}

/// Reads the DOS header, the PE signature, the COFF header, the optional header and its data
/// directories.
///
/// # Errors
///
/// A [`ParseError`] when one of them cannot be read or the optional header is neither PE32 nor
/// PE32+.
pub fn headers(data: &[u8]) -> Result<Headers<'_>, ParseError> {
    let file = Bytes::file(data);
    if file.bytes(0, 2).map_err(|_| ParseError::NoDosSignature)? != b"MZ" {
        return Err(ParseError::NoDosSignature);
    }
    let e_lfanew = file.view("DOS header", 0, 0x40)?.u32(0x3C)?;
    let pe = e_lfanew as usize;
    if file.view("PE signature", pe, 4)?.bytes(0, 4)? != b"PE\0\0" {
        return Err(ParseError::NoPeSignature { offset: e_lfanew });
    }
    let coff_at = pe.checked_add(4).ok_or(ParseError::NoPeSignature { offset: e_lfanew })?;
    let coff = file.view("COFF file header", coff_at, COFF_HEADER_LEN)?;
    let optional_size = coff.u16(16)?;
    let optional_at = coff_at + COFF_HEADER_LEN;
    let optional = file.view("optional header", optional_at, usize::from(optional_size))?;

    let magic = optional.u16(0)?;
    let directories_at = match magic {
        PE32_PLUS_MAGIC => 112,
        PE32_MAGIC => 96,
        other => return Err(ParseError::UnknownOptionalMagic(other)),
    };
    if usize::from(optional_size) < directories_at {
        return Err(ParseError::OptionalHeaderTooSmall { size: optional_size, needed: directories_at as u16 });
    }
    let directory_count = optional.u32(directories_at - 4)?;
    let mut directories = [DataDirectory::default(); DIRECTORY_COUNT];
    for (index, entry) in directories.iter_mut().enumerate().take(directory_count.min(16) as usize) {
        let at = directories_at + index * 8;
        *entry = DataDirectory { rva: optional.u32(at)?, size: optional.u32(at + 4)? };
    }
    Ok(Headers { file, coff, optional_at, optional, magic, directories_at, directory_count, directories })
}

/// Reads `data` as a PE image.
///
/// # Errors
///
/// A [`ParseError`] when the DOS header, PE signature, COFF header, optional header or section
/// table cannot be read. Problems in the data directories do not fail the call: they are kept
/// in the report's `Result` fields.
pub fn inspect(data: &[u8]) -> Result<ImageReport, ParseError> {
    let Headers { file, coff, optional_at, optional, magic, directory_count, directories, .. } = headers(data)?;
    let pe32_plus = magic == PE32_PLUS_MAGIC;
    let section_count = coff.u16(2)?;
    let image_base = if pe32_plus { optional.u64(24)? } else { u64::from(optional.u32(28)?) };

    let table_at = optional_at + optional.len();
    let table = file.view("section table", table_at, usize::from(section_count) * SECTION_HEADER_LEN)?;
    let sections = (0..usize::from(section_count))
        .map(|index| read_section(table, index * SECTION_HEADER_LEN))
        .collect::<Result<Vec<_>, _>>()?;

    let size_of_headers = optional.u32(60)?;
    let image = Image { file, sections, size_of_headers, pe32_plus };
    let symbol_table_at = coff.u32(8)?;
    let symbol_count = coff.u32(12)?;
    let machine = Machine::from_u16(coff.u16(0)?);
    Ok(ImageReport {
        file_len: data.len(),
        coff_characteristics: coff.u16(18)?,
        timestamp: coff.u32(4)?,
        magic,
        linker_version: (optional.u8(2)?, optional.u8(3)?),
        os_version: (optional.u16(40)?, optional.u16(42)?),
        subsystem_version: (optional.u16(48)?, optional.u16(50)?),
        entry_point: optional.u32(16)?,
        image_base,
        section_alignment: optional.u32(32)?,
        file_alignment: optional.u32(36)?,
        size_of_image: optional.u32(56)?,
        size_of_headers,
        checksum: optional.u32(CHECKSUM_FIELD)?,
        computed_checksum: pe_checksum(data, optional_at + CHECKSUM_FIELD),
        subsystem: optional.u16(68)?,
        dll_characteristics: optional.u16(70)?,
        directory_count,
        imports: directories::imports(&image, directories[dir::IMPORT]),
        exports: directories::exports(&image, directories[dir::EXPORT]),
        relocations: directories::relocations(&image, directories[dir::BASERELOC]),
        debug: directories::debug(&image, directories[dir::DEBUG]),
        certificate: directories::certificate(&image, directories[dir::SECURITY]),
        driver_entry_symbol: directories::driver_entry_symbol(&image, symbol_table_at, symbol_count),
        symbol_count,
        directories,
        x86_code: (machine == Machine::I386).then(|| {
            let executable = image.sections.iter().filter(|section| section.is_executable());
            code::scan_x86(executable.map(|section| (section.rva, code_bytes(data, section))))
        }),
        sections: image.sections,
        machine,
    })
}

/// The raw bytes of `section` that are in memory (`SizeOfRawData` cut to `VirtualSize`: the rest
/// is file alignment padding), as far as the file holds them.
fn code_bytes<'a>(data: &'a [u8], section: &Section) -> &'a [u8] {
    let start = usize::try_from(section.raw_offset).unwrap_or(usize::MAX).min(data.len());
    let len = usize::try_from(section.raw_size.min(section.extent())).unwrap_or(usize::MAX);
    let rest = data.get(start..).unwrap_or_default();
    rest.get(..len.min(rest.len())).unwrap_or_default()
}

fn read_section(table: Bytes<'_>, at: usize) -> Result<Section, ParseError> {
    let raw_name = table.bytes(at, 8)?;
    let name_len = raw_name.iter().position(|&b| b == 0).unwrap_or(raw_name.len());
    Ok(Section {
        name: String::from_utf8_lossy(raw_name.get(..name_len).unwrap_or_default()).into_owned(),
        virtual_size: table.u32(at + 8)?,
        rva: table.u32(at + 12)?,
        raw_size: table.u32(at + 16)?,
        raw_offset: table.u32(at + 20)?,
        characteristics: table.u32(at + 36)?,
    })
}
