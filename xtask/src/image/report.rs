//! The human-readable report of an inspected image: what a driver engineer wants to read
//! before loading it.

use super::directories::{CodeView, ImportedFunction, DEBUG_TYPE_CODEVIEW};
use super::pe::{
    dir, ImageReport, Section, DIRECTORY_COUNT, PE32_MAGIC, PE32_PLUS_MAGIC, SCN_CODE, SCN_EXECUTE,
    SCN_INITIALIZED_DATA, SCN_NOT_PAGED, SCN_READ, SCN_UNINITIALIZED_DATA, SCN_WRITE,
};
use super::policy::subsystem_name;
use std::fmt::{self, Write as _};

/// `IMAGE_FILE_*` bits worth naming.
const COFF_FLAGS: &[(u16, &str)] = &[
    (0x0001, "RELOCS_STRIPPED"),
    (0x0002, "EXECUTABLE_IMAGE"),
    (0x0004, "LINE_NUMS_STRIPPED"),
    (0x0008, "LOCAL_SYMS_STRIPPED"),
    (0x0020, "LARGE_ADDRESS_AWARE"),
    (0x0100, "32BIT_MACHINE"),
    (0x0200, "DEBUG_STRIPPED"),
    (0x1000, "SYSTEM"),
    (0x2000, "DLL"),
];

/// `IMAGE_DLLCHARACTERISTICS_*` bits.
const DLL_FLAGS: &[(u16, &str)] = &[
    (0x0020, "HIGH_ENTROPY_VA"),
    (0x0040, "DYNAMIC_BASE"),
    (0x0080, "FORCE_INTEGRITY"),
    (0x0100, "NX_COMPAT"),
    (0x0200, "NO_ISOLATION"),
    (0x0400, "NO_SEH"),
    (0x0800, "NO_BIND"),
    (0x1000, "APPCONTAINER"),
    (0x2000, "WDM_DRIVER"),
    (0x4000, "GUARD_CF"),
    (0x8000, "TERMINAL_SERVER_AWARE"),
];

fn flag_names(value: u16, table: &[(u16, &str)]) -> String {
    let mut names: Vec<String> =
        table.iter().filter(|(bit, _)| value & bit != 0).map(|(_, name)| name.to_string()).collect();
    let unnamed = table.iter().fold(value, |rest, (bit, _)| rest & !bit);
    if unnamed != 0 {
        names.push(format!("{unnamed:#06x}"));
    }
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" | ")
    }
}

fn section_flags(section: &Section) -> String {
    let mut text = String::new();
    for (flag, letter) in [(SCN_READ, 'R'), (SCN_WRITE, 'W'), (SCN_EXECUTE, 'X')] {
        text.push(if section.has(flag) { letter } else { '-' });
    }
    for (flag, name) in [(SCN_CODE, "code"), (SCN_INITIALIZED_DATA, "data"), (SCN_UNINITIALIZED_DATA, "bss")] {
        if section.has(flag) {
            let _ = write!(text, " {name}");
        }
    }
    if section.has(SCN_NOT_PAGED) {
        text.push_str(" nonpaged");
    }
    if section.is_discardable() {
        text.push_str(" discardable");
    }
    text
}

fn debug_type_name(kind: u32) -> &'static str {
    match kind {
        1 => "COFF",
        DEBUG_TYPE_CODEVIEW => "CodeView",
        4 => "MISC",
        12 => "VC_FEATURE",
        13 => "POGO",
        14 => "ILTCG",
        16 => "REPRO",
        20 => "EX_DLLCHARACTERISTICS",
        _ => "other",
    }
}

/// The GUID in registry format, from its file byte order (first three fields little-endian).
fn guid_text(guid: &[u8; 16]) -> String {
    let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = *guid;
    let tail: String = rest.iter().map(|byte| format!("{byte:02X}")).collect();
    format!(
        "{{{:08X}-{:04X}-{:04X}-{}-{}}}",
        u32::from_le_bytes([a0, a1, a2, a3]),
        u16::from_le_bytes([b0, b1]),
        u16::from_le_bytes([c0, c1]),
        &tail[..4],
        &tail[4..]
    )
}

fn codeview_text(codeview: &CodeView) -> String {
    format!("PDB {}  GUID {}  age {}", codeview.pdb_path, guid_text(&codeview.guid), codeview.age)
}

impl ImageReport {
    fn entry_point_text(&self) -> String {
        match self.section_of(self.entry_point) {
            _ if self.entry_point == 0 => "0 (none)".to_string(),
            Some(section) => format!("{:#x} in {}", self.entry_point, section.name),
            None => format!("{:#x} in no section", self.entry_point),
        }
    }

    fn driver_entry_text(&self) -> String {
        let exported = match &self.exports {
            Ok(Some(exports)) => exports.named.iter().find(|export| export.name == "DriverEntry"),
            _ => None,
        };
        let mut found = Vec::new();
        if let Some(export) = exported {
            found.push(format!("exported at {:#x}", export.rva));
        }
        if let Ok(Some(rva)) = self.driver_entry_symbol {
            found.push(format!("COFF symbol at {rva:#x}"));
        }
        if found.is_empty() {
            "neither exported nor in a COFF symbol table: only the link's /ENTRY:DriverEntry names it".to_string()
        } else {
            found.join("; ")
        }
    }

    fn write_headers(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match self.magic {
            PE32_PLUS_MAGIC => "PE32+".to_string(),
            PE32_MAGIC => "PE32".to_string(),
            other => format!("magic {other:#x}"),
        };
        let (linker_major, linker_minor) = self.linker_version;
        let (os_major, os_minor) = self.os_version;
        let (subsystem_major, subsystem_minor) = self.subsystem_version;
        writeln!(f, "  file size        {} bytes ({:#x})", self.file_len, self.file_len)?;
        writeln!(f, "  image size       {:#x} (SizeOfImage), headers {:#x}", self.size_of_image, self.size_of_headers)?;
        writeln!(f, "  machine          {}", self.machine)?;
        writeln!(
            f,
            "  format           {format}, linker {linker_major}.{linker_minor}, timestamp {:#010x}",
            self.timestamp
        )?;
        writeln!(
            f,
            "  COFF flags       {:#06x} {}",
            self.coff_characteristics,
            flag_names(self.coff_characteristics, COFF_FLAGS)
        )?;
        writeln!(
            f,
            "  subsystem        {} ({}) {subsystem_major}.{subsystem_minor}, OS version {os_major}.{os_minor}",
            subsystem_name(self.subsystem),
            self.subsystem
        )?;
        writeln!(f, "  image base       {:#x}", self.image_base)?;
        writeln!(f, "  alignment        section {:#x}, file {:#x}", self.section_alignment, self.file_alignment)?;
        writeln!(f, "  entry point      {}", self.entry_point_text())?;
        writeln!(f, "  DriverEntry      {}", self.driver_entry_text())?;
        writeln!(
            f,
            "  DLL flags        {:#06x} {}",
            self.dll_characteristics,
            flag_names(self.dll_characteristics, DLL_FLAGS)
        )?;
        writeln!(f, "  checksum         {:#010x} stored, {:#010x} computed", self.checksum, self.computed_checksum)?;
        let present: Vec<String> = (0..DIRECTORY_COUNT)
            .filter(|&index| self.directory(index).is_present())
            .map(|index| {
                let entry = self.directory(index);
                format!("{} {:#x}+{:#x}", dir::NAMES[index], entry.rva, entry.size)
            })
            .collect();
        writeln!(f, "  directories      {} of {} stored: {}", present.len(), self.directory_count, present.join(", "))
    }

    fn write_sections(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sections ({})", self.sections.len())?;
        writeln!(
            f,
            "  {:<8}  {:>10}  {:>10}  {:>10}  {:>10}  characteristics",
            "name", "RVA", "size", "file off", "file size"
        )?;
        for section in &self.sections {
            writeln!(
                f,
                "  {:<8}  {:>#10x}  {:>#10x}  {:>#10x}  {:>#10x}  {:#010x} {}",
                section.name,
                section.rva,
                section.virtual_size,
                section.raw_offset,
                section.raw_size,
                section.characteristics,
                section_flags(section)
            )?;
        }
        let discardable: Vec<&str> = self
            .sections
            .iter()
            .filter(|section| section.is_discardable())
            .map(|section| section.name.as_str())
            .collect();
        if !discardable.is_empty() {
            writeln!(f, "  note: discarded once the driver is loaded: {}", discardable.join(", "))?;
        }
        Ok(())
    }

    fn write_imports(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dlls = match &self.imports {
            Ok(dlls) => dlls,
            Err(error) => return writeln!(f, "imports: unreadable: {error}"),
        };
        let total: usize = dlls.iter().map(|dll| dll.functions.len()).sum();
        writeln!(f, "imports ({} DLL(s), {total} function(s))", dlls.len())?;
        for dll in dlls {
            writeln!(f, "  {}", dll.name)?;
            for function in &dll.functions {
                match function {
                    ImportedFunction::Name { hint, name } => writeln!(f, "    {name} (hint {hint})")?,
                    ImportedFunction::Ordinal(ordinal) => writeln!(f, "    #{ordinal} (by ordinal)")?,
                }
            }
        }
        Ok(())
    }

    fn write_directories(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.exports {
            Ok(None) => writeln!(f, "exports: none")?,
            Ok(Some(exports)) => {
                writeln!(f, "exports of {} ({} named)", exports.dll_name, exports.named.len())?;
                for export in &exports.named {
                    writeln!(f, "  {} at {:#x}", export.name, export.rva)?;
                }
            }
            Err(error) => writeln!(f, "exports: unreadable: {error}")?,
        }
        match &self.relocations {
            Ok(None) => writeln!(f, "base relocations: none")?,
            Ok(Some(relocations)) => {
                writeln!(f, "base relocations: {} block(s), {} fixup(s)", relocations.blocks, relocations.fixups)?;
            }
            Err(error) => writeln!(f, "base relocations: unreadable: {error}")?,
        }
        match &self.debug {
            Ok(entries) if entries.is_empty() => writeln!(f, "debug directory: none")?,
            Ok(entries) => {
                writeln!(f, "debug directory ({} entries)", entries.len())?;
                for entry in entries {
                    match &entry.codeview {
                        Some(codeview) => writeln!(f, "  CodeView RSDS: {}", codeview_text(codeview))?,
                        None => writeln!(
                            f,
                            "  {} (type {}), {} bytes",
                            debug_type_name(entry.kind),
                            entry.kind,
                            entry.size
                        )?,
                    }
                }
            }
            Err(error) => writeln!(f, "debug directory: unreadable: {error}")?,
        }
        match &self.certificate {
            Ok(None) => writeln!(f, "Authenticode: none (the security directory is empty: unsigned)")?,
            Ok(Some(certificate)) => writeln!(
                f,
                "Authenticode: present, {:#x} bytes at file offset {:#x}, revision {:#06x}, type {}{}",
                certificate.size,
                certificate.offset,
                certificate.revision,
                certificate.kind,
                if certificate.kind == 2 { " (PKCS_SIGNED_DATA)" } else { "" }
            )?,
            Err(error) => writeln!(f, "Authenticode: unreadable: {error}")?,
        }
        let tls = if self.directory(dir::TLS).is_present() { "present" } else { "none" };
        let delay = if self.directory(dir::DELAY_IMPORT).is_present() { "present" } else { "none" };
        writeln!(f, "TLS directory: {tls}; delay-load imports: {delay}; COFF symbols: {}", self.symbol_count)?;
        if let Some(scan) = &self.x86_code {
            write!(
                f,
                "x86 code: {} instructions decoded, {} touching x87/MMX/SSE state, {} undecodable bytes",
                scan.instructions, scan.floating_point, scan.undecodable
            )?;
            match &scan.first {
                Some((rva, name)) => writeln!(f, "; the first at RVA {rva:#x} ({name})")?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for ImageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_headers(f)?;
        self.write_sections(f)?;
        self.write_imports(f)?;
        self.write_directories(f)
    }
}
