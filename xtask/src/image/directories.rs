//! The data directories the verifier reads: imports, exports, base relocations, debug,
//! security (Authenticode) and the COFF symbol table.
//!
//! Every loop is bounded by the bytes of its view and by an explicit entry limit, so a hostile
//! file can make a directory unreadable but can neither panic the reader nor make it spin.

use super::pe::{DataDirectory, Image};
use super::read::{Bytes, ParseError};

/// Most DLLs accepted in an import directory.
const MAX_IMPORT_DLLS: usize = 1024;
/// Most functions accepted over all imported DLLs.
const MAX_IMPORTED_FUNCTIONS: usize = 65_536;
/// Most named exports accepted.
const MAX_EXPORTS: usize = 65_536;
/// Most debug directory entries accepted.
const MAX_DEBUG_ENTRIES: usize = 256;
/// Size of `IMAGE_IMPORT_DESCRIPTOR`.
const IMPORT_DESCRIPTOR_LEN: usize = 20;
/// Size of `IMAGE_EXPORT_DIRECTORY`.
const EXPORT_DIRECTORY_LEN: u32 = 40;
/// Size of `IMAGE_DEBUG_DIRECTORY`.
const DEBUG_ENTRY_LEN: usize = 28;
/// Size of one COFF symbol record.
const SYMBOL_LEN: usize = 18;
/// `IMAGE_DEBUG_TYPE_CODEVIEW`.
pub const DEBUG_TYPE_CODEVIEW: u32 = 2;
/// The relocation type that pads a block (`IMAGE_REL_BASED_ABSOLUTE`).
const REL_BASED_ABSOLUTE: u16 = 0;

/// One imported function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportedFunction {
    /// Imported by name, with the loader's hint into the export name table.
    Name {
        /// The hint.
        hint: u16,
        /// The function name.
        name: String,
    },
    /// Imported by ordinal only.
    Ordinal(u16),
}

/// The functions imported from one DLL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedDll {
    /// The DLL name as written in the image.
    pub name: String,
    /// The functions, in import lookup table order.
    pub functions: Vec<ImportedFunction>,
}

/// One named export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The exported name.
    pub name: String,
    /// The RVA it names (for a forwarder, the RVA of the forwarder string).
    pub rva: u32,
}

/// The export directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exports {
    /// The image name recorded by the linker.
    pub dll_name: String,
    /// Named exports (exports by ordinal only are not listed).
    pub named: Vec<Export>,
}

/// A summary of the base relocation directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocations {
    /// Relocation blocks (one per 4 KiB page with fixups).
    pub blocks: u32,
    /// Fixups, not counting `IMAGE_REL_BASED_ABSOLUTE` padding.
    pub fixups: u32,
}

/// A CodeView `RSDS` record: what a debugger needs to find the PDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeView {
    /// The PDB signature GUID, in file byte order.
    pub guid: [u8; 16],
    /// The PDB age.
    pub age: u32,
    /// The PDB path recorded by the linker.
    pub pdb_path: String,
}

/// One debug directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugEntry {
    /// `Type` (`IMAGE_DEBUG_TYPE_*`).
    pub kind: u32,
    /// `SizeOfData`.
    pub size: u32,
    /// The CodeView record, when the entry is CodeView in `RSDS` format.
    pub codeview: Option<CodeView>,
}

/// The first `WIN_CERTIFICATE` of the security directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Certificate {
    /// File offset of the certificate table.
    pub offset: u32,
    /// Size of the certificate table.
    pub size: u32,
    /// `wRevision` of the first certificate (0x0200 is `WIN_CERT_REVISION_2_0`).
    pub revision: u16,
    /// `wCertificateType` of the first certificate (2 is `WIN_CERT_TYPE_PKCS_SIGNED_DATA`).
    pub kind: u16,
}

/// Reads the import directory: descriptors until the all-zero one, each DLL's lookup table
/// (`OriginalFirstThunk`, or `FirstThunk` when that is 0) until its zero entry.
pub fn imports(image: &Image<'_>, directory: DataDirectory) -> Result<Vec<ImportedDll>, ParseError> {
    if directory.rva == 0 {
        return Ok(Vec::new());
    }
    let descriptors = image.at_rva("import directory", directory.rva)?;
    let mut dlls = Vec::new();
    let mut total = 0;
    for index in 0.. {
        let at = index * IMPORT_DESCRIPTOR_LEN;
        let descriptor = descriptors.view("import descriptor", at, IMPORT_DESCRIPTOR_LEN)?;
        if descriptor.bytes(0, IMPORT_DESCRIPTOR_LEN)?.iter().all(|&b| b == 0) {
            break;
        }
        if index == MAX_IMPORT_DLLS {
            return Err(ParseError::TooMany { what: "import descriptors", limit: MAX_IMPORT_DLLS });
        }
        let name = image.at_rva("imported DLL name", descriptor.u32(12)?)?.name(0)?;
        let lookup = match descriptor.u32(0)? {
            0 => descriptor.u32(16)?,
            rva => rva,
        };
        let functions = import_lookup_table(image, lookup, &mut total)?;
        dlls.push(ImportedDll { name, functions });
    }
    Ok(dlls)
}

fn import_lookup_table(image: &Image<'_>, rva: u32, total: &mut usize) -> Result<Vec<ImportedFunction>, ParseError> {
    let table = image.at_rva("import lookup table", rva)?;
    let width = if image.pe32_plus { 8 } else { 4 };
    let mut functions = Vec::new();
    for index in 0.. {
        let (entry, by_ordinal) = if image.pe32_plus {
            let entry = table.u64(index * width)?;
            (entry, entry & (1 << 63) != 0)
        } else {
            let entry = u64::from(table.u32(index * width)?);
            (entry, entry & (1 << 31) != 0)
        };
        if entry == 0 {
            break;
        }
        *total += 1;
        if *total > MAX_IMPORTED_FUNCTIONS {
            return Err(ParseError::TooMany { what: "imported functions", limit: MAX_IMPORTED_FUNCTIONS });
        }
        functions.push(if by_ordinal {
            ImportedFunction::Ordinal(entry as u16)
        } else {
            let hint_name = image.at_rva("import hint/name", (entry & 0x7FFF_FFFF) as u32)?;
            ImportedFunction::Name { hint: hint_name.u16(0)?, name: hint_name.name(2)? }
        });
    }
    Ok(functions)
}

/// Reads the named exports of the export directory.
pub fn exports(image: &Image<'_>, directory: DataDirectory) -> Result<Option<Exports>, ParseError> {
    if directory.rva == 0 {
        return Ok(None);
    }
    let header = image.at_rva_len("export directory", directory.rva, EXPORT_DIRECTORY_LEN)?;
    let dll_name = image.at_rva("export DLL name", header.u32(12)?)?.name(0)?;
    let function_count = header.u32(20)? as usize;
    let name_count = header.u32(24)? as usize;
    if name_count > MAX_EXPORTS || function_count > MAX_EXPORTS {
        return Err(ParseError::TooMany { what: "exports", limit: MAX_EXPORTS });
    }
    let functions =
        image.at_rva("export address table", header.u32(28)?)?.view("export address table", 0, function_count * 4)?;
    let names =
        image.at_rva("export name pointers", header.u32(32)?)?.view("export name pointers", 0, name_count * 4)?;
    let ordinals = image.at_rva("export ordinals", header.u32(36)?)?.view("export ordinals", 0, name_count * 2)?;
    let mut named = Vec::with_capacity(name_count);
    for index in 0..name_count {
        let name = image.at_rva("export name", names.u32(index * 4)?)?.name(0)?;
        let slot = usize::from(ordinals.u16(index * 2)?);
        let rva = functions.u32(slot * 4)?;
        named.push(Export { name, rva });
    }
    Ok(Some(Exports { dll_name, named }))
}

/// Counts the blocks and fixups of the base relocation directory.
pub fn relocations(image: &Image<'_>, directory: DataDirectory) -> Result<Option<Relocations>, ParseError> {
    if !directory.is_present() {
        return Ok(None);
    }
    let data = image.at_rva_len("base relocation directory", directory.rva, directory.size)?;
    let mut summary = Relocations { blocks: 0, fixups: 0 };
    let mut at = 0;
    while at < data.len() {
        let block_size = data.u32(at + 4)? as usize;
        if block_size < 8 || block_size % 2 != 0 {
            return Err(ParseError::Invalid {
                what: "base relocation block",
                detail: format!("SizeOfBlock {block_size:#x} at offset {at:#x}"),
            });
        }
        let block = data.view("base relocation block", at, block_size)?;
        for entry in (8..block_size).step_by(2) {
            if block.u16(entry)? >> 12 != REL_BASED_ABSOLUTE {
                summary.fixups += 1;
            }
        }
        summary.blocks += 1;
        at += block_size;
    }
    Ok(Some(summary))
}

/// Reads the debug directory and the CodeView record of each CodeView entry.
pub fn debug(image: &Image<'_>, directory: DataDirectory) -> Result<Vec<DebugEntry>, ParseError> {
    if directory.rva == 0 {
        return Ok(Vec::new());
    }
    let size = directory.size as usize;
    if size % DEBUG_ENTRY_LEN != 0 {
        return Err(ParseError::Invalid {
            what: "debug directory",
            detail: format!("size {size:#x} is not a multiple of {DEBUG_ENTRY_LEN}"),
        });
    }
    if size / DEBUG_ENTRY_LEN > MAX_DEBUG_ENTRIES {
        return Err(ParseError::TooMany { what: "debug directory entries", limit: MAX_DEBUG_ENTRIES });
    }
    let table = image.at_rva_len("debug directory", directory.rva, directory.size)?;
    (0..size / DEBUG_ENTRY_LEN)
        .map(|index| {
            let entry = table.view("debug directory entry", index * DEBUG_ENTRY_LEN, DEBUG_ENTRY_LEN)?;
            let kind = entry.u32(12)?;
            let data_size = entry.u32(16)?;
            let codeview = if kind == DEBUG_TYPE_CODEVIEW { codeview(image, entry, data_size)? } else { None };
            Ok(DebugEntry { kind, size: data_size, codeview })
        })
        .collect()
}

fn codeview(image: &Image<'_>, entry: Bytes<'_>, size: u32) -> Result<Option<CodeView>, ParseError> {
    const WHAT: &str = "CodeView record";
    let record = match entry.u32(24)? {
        0 => image.at_rva_len(WHAT, entry.u32(20)?, size)?,
        offset => image.file.view(WHAT, offset as usize, size as usize)?,
    };
    if size < 24 || record.bytes(0, 4)? != b"RSDS" {
        return Ok(None);
    }
    let pdb_path = match record.name(24) {
        Ok(path) => path,
        Err(ParseError::UnterminatedName { .. }) => {
            String::from_utf8_lossy(record.bytes(24, record.len() - 24)?).into_owned()
        }
        Err(other) => return Err(other),
    };
    Ok(Some(CodeView { guid: record.guid(4)?, age: record.u32(20)?, pdb_path }))
}

/// Reads the header of the first certificate in the security directory (a file offset).
pub fn certificate(image: &Image<'_>, directory: DataDirectory) -> Result<Option<Certificate>, ParseError> {
    if !directory.is_present() {
        return Ok(None);
    }
    let table = image.file.view("security directory", directory.rva as usize, directory.size as usize)?;
    Ok(Some(Certificate { offset: directory.rva, size: directory.size, revision: table.u16(4)?, kind: table.u16(6)? }))
}

/// Looks `DriverEntry` up in the COFF symbol table, if the image has one, and returns its RVA.
pub fn driver_entry_symbol(image: &Image<'_>, table_offset: u32, count: u32) -> Result<Option<u32>, ParseError> {
    if table_offset == 0 || count == 0 {
        return Ok(None);
    }
    let table_len = (count as usize)
        .checked_mul(SYMBOL_LEN)
        .ok_or(ParseError::TooMany { what: "COFF symbols", limit: usize::MAX / SYMBOL_LEN })?;
    let symbols = image.file.view("COFF symbol table", table_offset as usize, table_len)?;
    let strings_at = table_offset as usize + table_len;
    let strings_len = image.file.view("COFF string table", strings_at, 4)?.u32(0)? as usize;
    let strings = image.file.view("COFF string table", strings_at, strings_len)?;
    let mut index = 0;
    while index < count as usize {
        let symbol = symbols.view("COFF symbol", index * SYMBOL_LEN, SYMBOL_LEN)?;
        let name = match symbol.u32(0)? {
            0 => strings.name(symbol.u32(4)? as usize)?,
            _ => {
                let short = symbol.bytes(0, 8)?;
                let len = short.iter().position(|&b| b == 0).unwrap_or(short.len());
                String::from_utf8_lossy(short.get(..len).unwrap_or_default()).into_owned()
            }
        };
        if name == "DriverEntry" {
            let section_number = symbol.u16(12)?;
            let section = usize::from(section_number)
                .checked_sub(1)
                .and_then(|slot| image.sections.get(slot))
                .ok_or_else(|| ParseError::Invalid {
                    what: "COFF symbol DriverEntry",
                    detail: format!("section number {section_number} names no section"),
                })?;
            return section.rva.checked_add(symbol.u32(8)?).map(Some).ok_or_else(|| ParseError::Invalid {
                what: "COFF symbol DriverEntry",
                detail: "value overflows the RVA".to_string(),
            });
        }
        index += 1 + usize::from(symbol.u8(17)?);
    }
    Ok(None)
}
