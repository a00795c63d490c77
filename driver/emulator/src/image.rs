//! Loading a kernel image as the Windows loader does, into this process's memory: headers and
//! sections at their virtual addresses in a page-aligned block, base relocations applied for the
//! block's address, and every import bound to a stub the machine traps (one per import, each
//! naming the kernel model's [`Export`] it calls).
//!
//! An x86 image (PE32) is loaded below 4 GiB (`mmap` with `MAP_32BIT`), as a 32-bit guest can
//! only reach such addresses; its `HIGHLOW` relocations are applied and its 4-byte IAT slots
//! bound the same way.

use std::alloc::Layout;

use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile, PeFile32, PeFile64};
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
    /// `IMAGE_FILE_MACHINE_I386`.
    X86,
}

impl Arch {
    /// The name `cargo xtask` uses.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X64 => "x64",
            Arch::Arm64 => "arm64",
            Arch::X86 => "x86",
        }
    }

    /// Bytes of a pointer (an IAT slot).
    pub fn pointer_size(self) -> usize {
        match self {
            Arch::X64 | Arch::Arm64 => 8,
            Arch::X86 => 4,
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
    /// Whether the block was mapped below 4 GiB (`munmap` on drop) rather than allocated.
    low: bool,
    /// `DriverEntry`'s address.
    pub entry: usize,
    /// The access of each page of the image, in order from its base.
    pub pages: Vec<Access>,
    /// The imports, in the order their stubs are laid out: stub `i` calls `imports[i]`.
    pub imports: Vec<&'static Export>,
    /// Base relocations applied.
    pub relocations: usize,
    /// Relocated addresses that point outside the image (each a defect of the image or the loader).
    pub relocated_outside: usize,
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
    ///
    /// # Panics
    /// An x86 image given a stub above 4 GiB.
    pub fn bind(&mut self, index: usize, stub: usize) {
        let slot = self.iat_slots[index];
        match self.arch {
            Arch::X64 | Arch::Arm64 => {
                let entry = self.base.wrapping_add(slot).cast::<u64>();
                // SAFETY: the slot is an 8-byte IAT entry inside the image's block (checked at load).
                unsafe { entry.write_unaligned(stub as u64) };
            }
            Arch::X86 => {
                let stub = u32::try_from(stub).expect("an x86 image's stub below 4 GiB");
                let entry = self.base.wrapping_add(slot).cast::<u32>();
                // SAFETY: the slot is a 4-byte IAT entry inside the image's block (checked at load).
                unsafe { entry.write_unaligned(stub) };
            }
        }
    }

    /// Counts a relocation applied, whose relocated address is `address`.
    fn count_relocation(&mut self, address: u64) {
        self.relocations += 1;
        let base = self.base.addr() as u64;
        if !(base..=base + self.layout.size() as u64).contains(&address) {
            self.relocated_outside += 1;
        }
    }

    /// The IAT slot (offset from the base) of each import, in the order of [`Image::imports`].
    pub fn iat_slots(&self) -> &[usize] {
        &self.iat_slots
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if self.low {
            // SAFETY: mapped in `low_block` with this size, unmapped once.
            unsafe { low_memory::munmap(self.base.cast(), self.layout.size()) };
        } else {
            // SAFETY: allocated in `load` with this layout, freed once.
            unsafe { std::alloc::dealloc(self.base, self.layout) };
        }
    }
}

/// `mmap` / `munmap` of the C library this process links (Linux x86-64: `MAP_32BIT` places a
/// mapping in the first 2 GiB; a 32-bit process ignores it: all its memory is there).
mod low_memory {
    use std::ffi::c_void;

    pub const PROT_READ_WRITE: i32 = 0x1 | 0x2;
    pub const MAP_PRIVATE_ANONYMOUS_32BIT: i32 = 0x02 | 0x20 | 0x40;

    extern "C" {
        pub fn mmap(address: *mut c_void, length: usize, protection: i32, flags: i32, fd: i32, offset: std::ffi::c_long) -> *mut c_void;
        pub fn munmap(address: *mut c_void, length: usize) -> i32;
    }
}

/// `size` zeroed bytes mapped below 4 GiB (anonymous memory is zeroed); null when refused.
fn low_block(size: usize) -> *mut u8 {
    // SAFETY: a new anonymous private mapping the kernel places; no existing memory is touched.
    let block = unsafe {
        low_memory::mmap(std::ptr::null_mut(), size, low_memory::PROT_READ_WRITE, low_memory::MAP_PRIVATE_ANONYMOUS_32BIT, -1, 0)
    };
    if block.addr() == usize::MAX || block.addr().checked_add(size).is_none_or(|end| u64::try_from(end).unwrap_or(u64::MAX) > 1 << 32) {
        return std::ptr::null_mut();
    }
    block.cast()
}

/// Loads `data` (a PE32+ kernel image for x64 or ARM64, or a PE32 one for x86, named `name`) into
/// memory of this process; an x86 image below 4 GiB.
///
/// # Errors
/// A file that is not such an image, a section or relocation outside the image, a relocation
/// type other than `DIR64` (PE32+) or `HIGHLOW` (PE32), an import by ordinal, or imports the
/// kernel model does not define (all of them named); no memory below 4 GiB for an x86 image.
pub fn load(name: &str, data: &[u8]) -> Result<Image, String> {
    let (image, unknown) = load_naming_unknown_imports(name, data)?;
    if !unknown.is_empty() {
        return Err(format!("{name}: imports the kernel model does not define: {}", unknown.join(", ")));
    }
    Ok(image)
}

/// As [`load`], but an import the kernel model does not define is left unbound and named in the
/// list returned beside the image rather than refused.
///
/// # Errors
/// What [`load`] refuses, but for unknown imports.
pub fn load_naming_unknown_imports(name: &str, data: &[u8]) -> Result<(Image, Vec<String>), String> {
    match object::FileKind::parse(data) {
        Ok(object::FileKind::Pe32) => {
            load_pe(name, data, PeFile32::parse(data).map_err(|error| format!("{name}: not a PE32 image: {error}"))?)
        }
        _ => load_pe(name, data, PeFile64::parse(data).map_err(|error| format!("{name}: not a PE32+ image: {error}"))?),
    }
}

fn load_pe<Pe: ImageNtHeaders>(name: &str, data: &[u8], file: PeFile<'_, Pe>) -> Result<(Image, Vec<String>), String> {
    let headers = file.nt_headers();
    let arch = match (headers.file_header().machine.get(LE), headers.is_type_64()) {
        (pe::IMAGE_FILE_MACHINE_AMD64, true) => Arch::X64,
        (pe::IMAGE_FILE_MACHINE_ARM64, true) => Arch::Arm64,
        (pe::IMAGE_FILE_MACHINE_I386, false) => Arch::X86,
        (other, _) => return Err(format!("{name}: machine {other:#x} is not x64 or ARM64 (PE32+) or x86 (PE32)")),
    };
    let optional = headers.optional_header();
    let size = (optional.size_of_image() as usize).next_multiple_of(PAGE);
    let layout = Layout::from_size_align(size, PAGE).map_err(|error| format!("{name}: {error}"))?;
    let low = arch == Arch::X86;
    let base = if low {
        low_block(size)
    } else {
        // SAFETY: a non-zero size (an image has headers).
        unsafe { std::alloc::alloc_zeroed(layout) }
    };
    if base.is_null() {
        return Err(format!("{name}: no memory for {size} bytes{}", if low { " below 4 GiB" } else { "" }));
    }
    let mut image = Image {
        name: name.to_owned(),
        arch,
        base,
        layout,
        low,
        entry: 0,
        pages: Vec::new(),
        imports: Vec::new(),
        relocations: 0,
        relocated_outside: 0,
        iat_slots: Vec::new(),
    };
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
                        image.count_relocation(value.wrapping_add(delta));
                    }
                    pe::IMAGE_REL_BASED_HIGHLOW if arch == Arch::X86 => {
                        let target = memory(relocation.virtual_address as usize, 4)?.cast::<u32>();
                        // SAFETY: `memory` checked that the 4 bytes are inside the image.
                        let value = unsafe { target.read_unaligned() };
                        // SAFETY: as above; the image is below 4 GiB, so the delta fits 32 bits.
                        unsafe { target.write_unaligned(value.wrapping_add(delta as u32)) };
                        image.count_relocation(u64::from(value.wrapping_add(delta as u32)));
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
            while let Some(thunk) = thunks.next::<Pe>().map_err(|error| format!("{name}: {error}"))? {
                let slot = first_thunk as usize + index * arch.pointer_size();
                memory(slot, arch.pointer_size())?;
                index += 1;
                match table.import::<Pe>(thunk).map_err(|error| format!("{name}: {error}"))? {
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
    image.entry = base.addr() + optional.address_of_entry_point() as usize;
    Ok((image, unknown))
}
