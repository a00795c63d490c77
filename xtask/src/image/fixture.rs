//! A test-only PE writer: small driver images, and broken ones, built in memory.
//!
//! The layout follows what lld-link produces for a driver: headers, `.text`, `.rdata` (import
//! directory, lookup tables and IAT, names, optional export and debug directories), `.data`
//! (one absolute pointer), an optional discardable `INIT`, and `.reloc` with the fixup for that
//! pointer. The checksum is computed here independently of [`super::checksum`].

use super::pe::{SCN_CODE, SCN_DISCARDABLE, SCN_EXECUTE, SCN_INITIALIZED_DATA, SCN_READ, SCN_WRITE};

/// Where the fixture puts the PE signature (`e_lfanew`).
pub const E_LFANEW: usize = 0x80;
/// File offset of the optional header.
pub const OPTIONAL_AT: usize = E_LFANEW + 24;
/// File offset of the optional header's `CheckSum`.
pub const CHECKSUM_AT: usize = OPTIONAL_AT + 64;
/// `.text` characteristics: code, readable, executable.
pub const TEXT: u32 = SCN_CODE | SCN_EXECUTE | SCN_READ;
const RDATA: u32 = SCN_INITIALIZED_DATA | SCN_READ;
const DATA: u32 = SCN_INITIALIZED_DATA | SCN_READ | SCN_WRITE;
const RELOC: u32 = SCN_INITIALIZED_DATA | SCN_READ | SCN_DISCARDABLE;
const INIT: u32 = TEXT | SCN_DISCARDABLE;
const TEXT_LEN: usize = 0x40;
/// The PDB GUID the fixture's CodeView record carries, in file byte order.
pub const PDB_GUID: [u8; 16] =
    [0x78, 0x56, 0x34, 0x12, 0xBC, 0x9A, 0xF0, 0xDE, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];

/// One entry of an import lookup table.
#[derive(Debug, Clone, Copy)]
pub enum Thunk {
    /// By name (hint 0).
    Name(&'static str),
    /// By ordinal.
    Ordinal(u16),
}

/// Where `AddressOfEntryPoint` points.
#[derive(Debug, Clone, Copy)]
pub enum Entry {
    /// At this offset into `.text`.
    Text(u32),
    /// At this offset into `.data`.
    Data(u32),
    /// At this RVA.
    Rva(u32),
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub machine: u16,
    pub pe32: bool,
    pub coff_characteristics: u16,
    pub subsystem: u16,
    pub dll_characteristics: u16,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub text_characteristics: u32,
    pub imports: Vec<(&'static str, Vec<Thunk>)>,
    pub relocations: bool,
    pub entry: Entry,
    /// `None`: the correct checksum; `Some(value)`: store `value`.
    pub checksum: Option<u32>,
    /// Export `DriverEntry` at this offset into `.text`.
    pub export_driver_entry: Option<u32>,
    /// Add a COFF symbol table whose `DriverEntry` is at this offset into `.text`.
    pub symbol_driver_entry: Option<u32>,
    pub tls: bool,
    pub delay_imports: bool,
    pub pdb: Option<&'static str>,
    pub signature: bool,
    pub init_section: bool,
}

impl Fixture {
    /// A proper x64 driver importing `ntoskrnl.exe!memcpy` and `ndis.sys!NdisFSendNetBufferLists`.
    pub fn driver() -> Self {
        Self {
            machine: 0x8664,
            pe32: false,
            coff_characteristics: 0x0022,
            subsystem: 1,
            dll_characteristics: 0x01E0,
            section_alignment: 0x1000,
            file_alignment: 0x200,
            text_characteristics: TEXT,
            imports: vec![
                ("ntoskrnl.exe", vec![Thunk::Name("memcpy")]),
                ("ndis.sys", vec![Thunk::Name("NdisFSendNetBufferLists")]),
            ],
            relocations: true,
            entry: Entry::Text(0),
            checksum: None,
            export_driver_entry: None,
            symbol_driver_entry: None,
            tls: false,
            delay_imports: false,
            pdb: None,
            signature: false,
            init_section: false,
        }
    }

    /// The same driver for ARM64.
    pub fn arm64() -> Self {
        Self { machine: 0xAA64, ..Self::driver() }
    }

    /// The same driver for x86: I386, PE32, and NO_SEH as rust-lld sets it for an image linked
    /// with `/SAFESEH` that has no exception handlers.
    pub fn x86() -> Self {
        Self { machine: 0x014C, pe32: true, dll_characteristics: 0x05E0, ..Self::driver() }
    }

    /// Adds an import to the list of `dll`, creating it if needed.
    pub fn import(mut self, dll: &'static str, thunk: Thunk) -> Self {
        match self.imports.iter_mut().find(|(name, _)| *name == dll) {
            Some((_, thunks)) => thunks.push(thunk),
            None => self.imports.push((dll, vec![thunk])),
        }
        self
    }

    /// The image bytes.
    pub fn build(&self) -> Vec<u8> {
        let (sa, fa) = (self.section_alignment as usize, self.file_alignment as usize);
        let optional_len = if self.pe32 { 224 } else { 240 };
        let section_count = 3 + usize::from(self.relocations) + usize::from(self.init_section);
        let size_of_headers = align(E_LFANEW + 24 + optional_len + 40 * section_count, fa);
        let mut directories = [(0u32, 0u32); 16];

        let text_rva = align(size_of_headers, sa);
        let mut text = vec![0xCC; TEXT_LEN];
        text[0] = 0xC3;
        let rdata_rva = align(text_rva + TEXT_LEN, sa);
        let rdata_raw = size_of_headers + align(TEXT_LEN, fa);
        let rdata = self.rdata(rdata_rva, rdata_raw, text_rva, &mut directories);
        let data_rva = align(rdata_rva + rdata.len(), sa);
        let image_base: u64 = if self.pe32 { 0x1_0000 } else { 0x1_4000_0000 };
        let mut data = (image_base + text_rva as u64).to_le_bytes().to_vec();
        data.extend_from_slice(&[0x5A; 8]);
        let mut sections =
            vec![(".text", text_rva, text, self.text_characteristics), (".rdata", rdata_rva, rdata, RDATA)];
        sections.push((".data", data_rva, data, DATA));
        let mut next_rva = align(data_rva + 16, sa);
        if self.init_section {
            sections.push(("INIT", next_rva, vec![0xC3; 16], INIT));
            next_rva = align(next_rva + 16, sa);
        }
        if self.relocations {
            let kind: u16 = if self.pe32 { 3 } else { 10 };
            let mut block = Vec::new();
            block.extend_from_slice(&((data_rva & !0xFFF) as u32).to_le_bytes());
            block.extend_from_slice(&12u32.to_le_bytes());
            block.extend_from_slice(&((kind << 12) | (data_rva & 0xFFF) as u16).to_le_bytes());
            block.extend_from_slice(&0u16.to_le_bytes());
            directories[5] = (next_rva as u32, block.len() as u32);
            sections.push((".reloc", next_rva, block, RELOC));
        }
        let size_of_image = sections.last().map_or(0, |(_, rva, bytes, _)| align(rva + bytes.len(), sa));

        let mut image = vec![0u8; size_of_headers];
        let mut headers = Vec::new();
        for (name, rva, bytes, characteristics) in &sections {
            let raw_offset = image.len();
            image.extend_from_slice(bytes);
            image.resize(align(image.len(), fa), 0);
            let mut header = [0u8; 40];
            header[..name.len()].copy_from_slice(name.as_bytes());
            put32(&mut header, 8, bytes.len() as u32);
            put32(&mut header, 12, *rva as u32);
            put32(&mut header, 16, (image.len() - raw_offset) as u32);
            put32(&mut header, 20, raw_offset as u32);
            put32(&mut header, 36, *characteristics);
            headers.extend_from_slice(&header);
        }
        let (symbol_table, symbol_count) = match self.symbol_driver_entry {
            Some(offset) => {
                image.resize(align(image.len(), 4), 0);
                let at = image.len();
                image.extend_from_slice(&symbol(*b".text\0\0\0", 0, 3));
                image.extend_from_slice(&symbol([0, 0, 0, 0, 4, 0, 0, 0], offset, 2));
                image.extend_from_slice(&16u32.to_le_bytes());
                image.extend_from_slice(b"DriverEntry\0");
                (at as u32, 2)
            }
            None => (0, 0),
        };
        if self.signature {
            image.resize(align(image.len(), 8), 0);
            directories[4] = (image.len() as u32, 24);
            image.extend_from_slice(&24u32.to_le_bytes());
            image.extend_from_slice(&0x0200u16.to_le_bytes());
            image.extend_from_slice(&2u16.to_le_bytes());
            image.extend_from_slice(&[0x30; 16]);
        }

        image[..2].copy_from_slice(b"MZ");
        put32(&mut image, 0x3C, E_LFANEW as u32);
        image[E_LFANEW..E_LFANEW + 4].copy_from_slice(b"PE\0\0");
        let coff = E_LFANEW + 4;
        put16(&mut image, coff, self.machine);
        put16(&mut image, coff + 2, sections.len() as u16);
        put32(&mut image, coff + 4, 0x6400_0000);
        put32(&mut image, coff + 8, symbol_table);
        put32(&mut image, coff + 12, symbol_count);
        put16(&mut image, coff + 16, optional_len as u16);
        put16(&mut image, coff + 18, self.coff_characteristics);
        let o = OPTIONAL_AT;
        put16(&mut image, o, if self.pe32 { 0x10B } else { 0x20B });
        image[o + 2] = 14;
        put32(&mut image, o + 4, align(TEXT_LEN, fa) as u32);
        let entry = match self.entry {
            Entry::Text(offset) => text_rva as u32 + offset,
            Entry::Data(offset) => data_rva as u32 + offset,
            Entry::Rva(rva) => rva,
        };
        put32(&mut image, o + 16, entry);
        put32(&mut image, o + 20, text_rva as u32);
        let directories_at = if self.pe32 {
            put32(&mut image, o + 24, rdata_rva as u32);
            put32(&mut image, o + 28, image_base as u32);
            for (index, value) in [0x4_0000u32, 0x1000, 0x10_0000, 0x1000].into_iter().enumerate() {
                put32(&mut image, o + 72 + index * 4, value);
            }
            put32(&mut image, o + 92, 16);
            o + 96
        } else {
            image[o + 24..o + 32].copy_from_slice(&image_base.to_le_bytes());
            for (index, value) in [0x4_0000u64, 0x1000, 0x10_0000, 0x1000].into_iter().enumerate() {
                image[o + 72 + index * 8..o + 80 + index * 8].copy_from_slice(&value.to_le_bytes());
            }
            put32(&mut image, o + 108, 16);
            o + 112
        };
        put32(&mut image, o + 32, self.section_alignment);
        put32(&mut image, o + 36, self.file_alignment);
        put16(&mut image, o + 40, 10);
        put16(&mut image, o + 48, 10);
        put32(&mut image, o + 56, size_of_image as u32);
        put32(&mut image, o + 60, size_of_headers as u32);
        put16(&mut image, o + 68, self.subsystem);
        put16(&mut image, o + 70, self.dll_characteristics);
        for (index, (rva, size)) in directories.iter().enumerate() {
            put32(&mut image, directories_at + index * 8, *rva);
            put32(&mut image, directories_at + index * 8 + 4, *size);
        }
        let table = o + optional_len;
        image[table..table + headers.len()].copy_from_slice(&headers);
        match self.checksum {
            Some(value) => put32(&mut image, CHECKSUM_AT, value),
            None => fix_checksum(&mut image),
        }
        image
    }

    /// `.rdata` at `rva` (file offset `raw`): imports, exports, debug, TLS and delay-load stubs.
    fn rdata(&self, rva: usize, raw: usize, text_rva: usize, directories: &mut [(u32, u32); 16]) -> Vec<u8> {
        let mut blob = Blob { base: rva, bytes: Vec::new() };
        if !self.imports.is_empty() {
            let table_len = 20 * (self.imports.len() + 1);
            let descriptors = blob.alloc(&vec![0; table_len]);
            directories[1] = (descriptors as u32, table_len as u32);
            let mut iat_span = (usize::MAX, 0);
            for (index, (dll, thunks)) in self.imports.iter().enumerate() {
                let name = blob.alloc(&[dll.as_bytes(), b"\0"].concat());
                let mut lookup = Vec::new();
                for thunk in thunks.iter().map(Some).chain([None]) {
                    let entry: u64 = match thunk {
                        Some(Thunk::Name(function)) => {
                            blob.alloc(&[&[0, 0], function.as_bytes(), b"\0"].concat()) as u64
                        }
                        Some(Thunk::Ordinal(ordinal)) if self.pe32 => (1 << 31) | u64::from(*ordinal),
                        Some(Thunk::Ordinal(ordinal)) => (1 << 63) | u64::from(*ordinal),
                        None => 0,
                    };
                    if self.pe32 {
                        lookup.extend_from_slice(&(entry as u32).to_le_bytes());
                    } else {
                        lookup.extend_from_slice(&entry.to_le_bytes());
                    }
                }
                let ilt = blob.alloc(&lookup);
                let iat = blob.alloc(&lookup);
                iat_span = (iat_span.0.min(iat), iat + lookup.len());
                let at = descriptors + index * 20;
                blob.put32(at, ilt as u32);
                blob.put32(at + 12, name as u32);
                blob.put32(at + 16, iat as u32);
            }
            directories[12] = (iat_span.0 as u32, (iat_span.1 - iat_span.0) as u32);
        }
        if let Some(offset) = self.export_driver_entry {
            let name = blob.alloc(b"DriverEntry\0");
            let dll = blob.alloc(b"wanlayer.sys\0");
            let functions = blob.alloc(&(text_rva as u32 + offset).to_le_bytes());
            let names = blob.alloc(&(name as u32).to_le_bytes());
            let ordinals = blob.alloc(&0u16.to_le_bytes());
            let mut header = [0u8; 40];
            for (at, value) in [(12, dll), (16, 1), (20, 1), (24, 1), (28, functions), (32, names), (36, ordinals)] {
                put32(&mut header, at, value as u32);
            }
            directories[0] = (blob.alloc(&header) as u32, 40);
        }
        if let Some(path) = self.pdb {
            let record = [b"RSDS".as_slice(), &PDB_GUID, &1u32.to_le_bytes(), path.as_bytes(), b"\0"].concat();
            let record_rva = blob.alloc(&record);
            let mut entries = [0u8; 56];
            put32(&mut entries, 12, 2);
            put32(&mut entries, 16, record.len() as u32);
            put32(&mut entries, 20, record_rva as u32);
            put32(&mut entries, 24, (record_rva - rva + raw) as u32);
            put32(&mut entries, 28 + 12, 16);
            directories[6] = (blob.alloc(&entries) as u32, 56);
        }
        if self.tls {
            directories[9] = (blob.alloc(&[0; 40]) as u32, 40);
        }
        if self.delay_imports {
            directories[13] = (blob.alloc(&[0; 32]) as u32, 32);
        }
        blob.bytes
    }
}

/// `.rdata` under construction: `alloc` appends 8-byte aligned data and returns its RVA.
struct Blob {
    base: usize,
    bytes: Vec<u8>,
}

impl Blob {
    fn alloc(&mut self, data: &[u8]) -> usize {
        self.bytes.resize(align(self.bytes.len(), 8), 0);
        let rva = self.base + self.bytes.len();
        self.bytes.extend_from_slice(data);
        rva
    }

    fn put32(&mut self, rva: usize, value: u32) {
        put32(&mut self.bytes, rva - self.base, value);
    }
}

/// One 18-byte COFF symbol in section 1.
fn symbol(name: [u8; 8], value: u32, storage_class: u8) -> [u8; 18] {
    let mut record = [0u8; 18];
    record[..8].copy_from_slice(&name);
    put32(&mut record, 8, value);
    put16(&mut record, 12, 1);
    put16(&mut record, 14, 0x20);
    record[16] = storage_class;
    record
}

fn align(value: usize, alignment: usize) -> usize {
    value.div_ceil(alignment) * alignment
}

/// Writes a little-endian `u16` at `at`.
pub fn put16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Writes a little-endian `u32` at `at`.
pub fn put32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Stores the correct checksum, summing 16-bit words into a wide accumulator and folding once
/// at the end (the reference folds at every step; the two agree).
pub fn fix_checksum(image: &mut [u8]) {
    put32(image, CHECKSUM_AT, 0);
    let mut padded = image.to_vec();
    padded.resize(align(padded.len(), 2), 0);
    let mut sum: u64 = padded.chunks_exact(2).map(|word| u64::from(u16::from_le_bytes([word[0], word[1]]))).sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    put32(image, CHECKSUM_AT, sum as u32 + image.len() as u32);
}
