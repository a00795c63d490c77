//! Loading a kernel image as the Windows loader does, into this process's memory: headers and
//! sections at their virtual addresses in a page-aligned block, base relocations applied for the
//! block's address, and every import bound to a stub the machine traps (one per import, each
//! naming the kernel model's [`Export`] it calls).

use std::alloc::Layout;

use object::pe::{self, ImageNtHeaders64};
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use object::LittleEndian as LE;
use wanlayer_kernel_model::exports::{self, Export};

/// The page size of every architecture the emulator runs.
pub const PAGE: usize = 0x1000;

/// The instruction set of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// `IMAGE_FILE_MACHINE_AMD64`.
    X64,
    /// `IMAGE_FILE_MACHINE_ARM64`.
    Arm64,
}

impl Arch {
    /// The name `cargo xtask` uses.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X64 => "x64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// What a page of the image may be used for, from its section's characteristics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

/// A loaded image: its memory (owned, freed on drop), entry point and import stubs.
pub struct Image {
    /// The image's file name, for messages.
    pub name: String,
    /// Its instruction set.
    pub arch: Arch,
    base: *mut u8,
    layout: Layout,
    /// `DriverEntry`'s address.
    pub entry: usize,
    /// The access of each page of the image, in order from its base.
    pub pages: Vec<Access>,
    /// The imports, in the order their stubs are laid out: stub `i` calls `imports[i]`.
    pub imports: Vec<&'static Export>,
    /// The IAT slot of each import, for the stub addresses the machine writes.
    iat_slots: Vec<usize>,
}

impl Image {
    /// The image's base address (where its headers are).
    pub fn base(&self) -> usize {
        self.base.addr()
    }

    /// The image's size in memory (`SizeOfImage`, rounded up to pages).
    pub fn size(&self) -> usize {
        self.layout.size()
    }

    /// Writes the address of import `index`'s stub into its IAT slot.
    pub fn bind(&mut self, index: usize, stub: usize) {
        let slot = self.iat_slots[index];
        let entry = self.base.wrapping_add(slot).cast::<u64>();
        // SAFETY: the slot is an 8-byte IAT entry inside the image's block (checked at load).
        unsafe { entry.write_unaligned(stub as u64) };
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: allocated in `load` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.base, self.layout) };
    }
}

/// Loads `data` (a PE32+ kernel image named `name`) into memory of this process.
///
/// # Errors
/// A file that is not a PE32+ image for x64 or ARM64, a section or relocation outside the image,
/// a relocation type other than `DIR64`, an import by ordinal, or imports the kernel model does
/// not define (all of them named).
pub fn load(name: &str, data: &[u8]) -> Result<Image, String> {
    let file = PeFile64::parse(data).map_err(|error| format!("{name}: not a PE32+ image: {error}"))?;
    let headers = file.nt_headers();
    let arch = match headers.file_header().machine.get(LE) {
        pe::IMAGE_FILE_MACHINE_AMD64 => Arch::X64,
        pe::IMAGE_FILE_MACHINE_ARM64 => Arch::Arm64,
        other => return Err(format!("{name}: machine {other:#x} is neither x64 nor ARM64")),
    };
    let optional = headers.optional_header();
    let size = (optional.size_of_image() as usize).next_multiple_of(PAGE);
    let layout = Layout::from_size_align(size, PAGE).map_err(|error| format!("{name}: {error}"))?;
    // SAFETY: a non-zero size (an image has headers).
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    if base.is_null() {
        return Err(format!("{name}: out of memory for {size} bytes"));
    }
    let mut image =
        Image { name: name.to_owned(), arch, base, layout, entry: 0, pages: Vec::new(), imports: Vec::new(), iat_slots: Vec::new() };
    let memory = |offset: usize, length: usize| -> Result<*mut u8, String> {
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(format!("{name}: {length} bytes at {offset:#x} outside the image of {size:#x}"));
        }
        Ok(base.wrapping_add(offset))
    };
    let header_size = (optional.size_of_headers() as usize).min(data.len());
    // SAFETY: `memory` checked the destination; the source is within `data`.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), memory(0, header_size)?, header_size) };
    let read_only = Access { read: true, write: false, execute: false };
    image.pages = vec![read_only; size / PAGE];
    for section in file.section_table().iter() {
        let address = section.virtual_address.get(LE) as usize;
        let virtual_size = section.virtual_size.get(LE) as usize;
        let (offset, raw_size) = section.pe_file_range();
        let copied = (raw_size as usize).min(virtual_size);
        let source = data.get(offset as usize..offset as usize + copied).ok_or_else(|| format!("{name}: a section beyond the file"))?;
        // SAFETY: `memory` checked the destination; the source is a slice of `data`.
        unsafe { std::ptr::copy_nonoverlapping(source.as_ptr(), memory(address, copied)?, copied) };
        let characteristics = section.characteristics.get(LE);
        let access = Access {
            read: characteristics & pe::IMAGE_SCN_MEM_READ != 0,
            write: characteristics & pe::IMAGE_SCN_MEM_WRITE != 0,
            execute: characteristics & pe::IMAGE_SCN_MEM_EXECUTE != 0,
        };
        for page in address / PAGE..(address + virtual_size).div_ceil(PAGE) {
            if let Some(slot) = image.pages.get_mut(page) {
                *slot = access;
            }
        }
    }
    let delta = (base.addr() as u64).wrapping_sub(optional.image_base());
    let sections = file.section_table();
    if let Some(mut blocks) = file.data_directories().relocation_blocks(data, &sections).map_err(|error| format!("{name}: {error}"))? {
        while let Some(block) = blocks.next().map_err(|error| format!("{name}: {error}"))? {
            for relocation in block {
                match relocation.typ {
                    pe::IMAGE_REL_BASED_ABSOLUTE => {}
                    pe::IMAGE_REL_BASED_DIR64 => {
                        let target = memory(relocation.virtual_address as usize, 8)?.cast::<u64>();
                        // SAFETY: `memory` checked that the 8 bytes are inside the image.
                        let value = unsafe { target.read_unaligned() };
                        // SAFETY: as above.
                        unsafe { target.write_unaligned(value.wrapping_add(delta)) };
                    }
                    other => return Err(format!("{name}: relocation type {other} at {:#x}", relocation.virtual_address)),
                }
            }
        }
    }
    let mut unknown = Vec::new();
    if let Some(table) = file.import_table().map_err(|error| format!("{name}: {error}"))? {
        let mut descriptors = table.descriptors().map_err(|error| format!("{name}: {error}"))?;
        while let Some(descriptor) = descriptors.next().map_err(|error| format!("{name}: {error}"))? {
            let module =
                String::from_utf8_lossy(table.name(descriptor.name.get(LE)).map_err(|error| format!("{name}: {error}"))?).into_owned();
            let first_thunk = descriptor.first_thunk.get(LE);
            let lookup = match descriptor.original_first_thunk.get(LE) {
                0 => first_thunk,
                original => original,
            };
            let mut thunks = table.thunks(lookup).map_err(|error| format!("{name}: {error}"))?;
            let mut index = 0usize;
            while let Some(thunk) = thunks.next::<ImageNtHeaders64>().map_err(|error| format!("{name}: {error}"))? {
                let slot = first_thunk as usize + index * 8;
                memory(slot, 8)?;
                index += 1;
                match table.import::<ImageNtHeaders64>(thunk).map_err(|error| format!("{name}: {error}"))? {
                    object::read::pe::Import::Name(_, function) => {
                        let function = String::from_utf8_lossy(function);
                        match exports::find(&module, &function) {
                            Some(export) => {
                                image.imports.push(export);
                                image.iat_slots.push(slot);
                            }
                            None => unknown.push(format!("{module}!{function}")),
                        }
                    }
                    object::read::pe::Import::Ordinal(ordinal) => unknown.push(format!("{module}!#{ordinal}")),
                }
            }
        }
    }
    if !unknown.is_empty() {
        return Err(format!("{name}: imports the kernel model does not define: {}", unknown.join(", ")));
    }
    image.entry = base.addr() + optional.address_of_entry_point() as usize;
    Ok(image)
}
