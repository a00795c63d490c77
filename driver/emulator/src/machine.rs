//! The emulated processor a loaded image runs on, installed as the kernel model's
//! [`Executor`](wanlayer_kernel_model::invoke::Executor).
//!
//! The guest's address space is this process's: the image is loaded in host memory, and every
//! other page the guest touches (the model's pool, the test's NDIS structures, the host stacks
//! the model passes pointers into) is mapped into the guest on its first access at its own
//! address, with the host's permissions (`/proc/self/maps`), so a pointer means the same in the
//! guest and in the model. What the guest may not touch faults and fails the run with its
//! address: memory that is not this process's, the guard page below the guest stack, a write to
//! read-only image pages, execution outside the image's executable pages.
//!
//! Each import is a stub (`ret`) with a code hook before it: the hook reads the arguments as the
//! architecture's ABI passes them (x64: RCX, RDX, R8, R9, then the stack above the shadow space;
//! ARM64: X0-X7, then the stack), calls the model's function and writes its result to RAX / X0;
//! the `ret` returns to the caller. A call into the guest from the model — a DPC, a queue
//! callback, from inside an import — is a nested emulation on a stack frame below the current
//! one, returning to a sentinel address; the processor state is saved and restored around it.
//! A fault, a bug check or a hang stops the emulation at every level and becomes a panic in the
//! caller of [`invoke::call`]. A panic inside one of the model's functions (a rule it enforces by
//! panicking, an import it does not model) cannot unwind out of it (they are `extern "system"`)
//! and ends the process: the emulator's program runs each scenario in a child process for that.

use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use unicorn_engine::unicorn_const::{Arch as UcArch, HookType, MemType, Mode, Permission};
use unicorn_engine::{RegisterX86, Unicorn};
use wanlayer_kernel_model::exports::{Arguments, Export, X86Convention};
use wanlayer_kernel_model::invoke::{self, PoolMemory};

use crate::image::{Access, Arch, Image, PAGE};

/// Unicorn's ARM64 register numbers (`uc_arm64_reg`; the binding's enum is compiled only with its
/// 32-bit ARM support, which this crate does not build).
#[allow(non_snake_case)]
mod RegisterARM64 {
    pub const X0: i32 = 199;
    pub const X1: i32 = 200;
    pub const X2: i32 = 201;
    pub const X3: i32 = 202;
    pub const X4: i32 = 203;
    pub const X5: i32 = 204;
    pub const X6: i32 = 205;
    pub const X7: i32 = 206;
    pub const X30: i32 = 2;
    pub const SP: i32 = 4;
    pub const PC: i32 = 260;
    pub const CPACR_EL1: i32 = 261;
}

/// The instruction sets a machine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    X64,
    Arm64,
    X86,
}

/// Whether this build of the emulator runs images of `arch`: the kernel model and the scenarios
/// build their structures in the host's layouts, so x64 and ARM64 images run under a 64-bit
/// build and x86 images under the 32-bit one (`i686-unknown-linux-gnu`: x86 layouts, every
/// address below 4 GiB).
///
/// # Errors
/// An architecture the other build runs, with which one.
pub fn runs(arch: Arch) -> Result<(), String> {
    match (arch, cfg!(target_pointer_width = "64")) {
        (Arch::X64 | Arch::Arm64, true) | (Arch::X86, false) => Ok(()),
        (Arch::X86, true) => Err("an x86 image runs under the emulator built for i686-unknown-linux-gnu (x86 layouts, addresses below 4 GiB), not this 64-bit build".to_owned()),
        (Arch::X64 | Arch::Arm64, false) => Err(format!("an {} image runs under the emulator's 64-bit build, not this 32-bit one", arch.name())),
    }
}

/// Bytes of stub per import.
const STUB: usize = 16;
/// The guest stack: Windows gives a kernel thread 24 KiB on x64 and ARM64; the emulator gives
/// 64 KiB so that a deeper use is measured rather than faulted, and reports the depth used.
const STACK: usize = 64 * 1024;
/// The paint of unused guest stack, to find how deep a call went.
const PAINT: u8 = 0xA5;
/// How long one top-level call may run before it is reported as hanging (microseconds).
const TIMEOUT_US: u64 = 30_000_000;
/// The deepest nesting of guest calls (import → model → guest → ...).
const MAX_DEPTH: usize = 32;

/// Host memory the guest may touch, with the host's permissions.
#[derive(Clone, Copy)]
struct Region {
    start: usize,
    end: usize,
    read: bool,
    write: bool,
}

/// State the hooks and the executor share.
struct Shared {
    arch: Isa,
    /// Stub `i` calls `imports[i]`: the image's imports, then routines found at run time
    /// (`MmGetSystemRoutineAddress`).
    imports: RefCell<Vec<&'static Export>>,
    stubs: usize,
    sentinels: usize,
    stack_base: usize,
    stack_top: usize,
    guard: usize,
    failure: RefCell<Option<String>>,
    depth: Cell<usize>,
    deepest: Cell<usize>,
    import_calls: Cell<u64>,
    regions: RefCell<Vec<Region>>,
    mapped: RefCell<BTreeSet<usize>>,
    /// Pages the guest may never touch, with the reason: pool guard pages, freed pool blocks.
    forbidden: RefCell<BTreeMap<usize, String>>,
    /// Live pool blocks: block address -> (its region's address, the region's pages).
    pool_blocks: RefCell<BTreeMap<usize, (usize, usize)>>,
    /// Regions of freed pool blocks, kept so that their addresses are not reused in the run.
    quarantine: RefCell<Vec<(usize, usize)>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let live: Vec<(usize, usize)> = self.pool_blocks.borrow().values().copied().collect();
        for (region, pages) in live.into_iter().chain(self.quarantine.borrow_mut().drain(..)) {
            // SAFETY: a region `pool_allocate` allocated with this layout, freed once (the engine
            // that mapped its pages is closed: `Shared` outlives the owner's engine).
            unsafe { std::alloc::dealloc(std::ptr::with_exposed_provenance_mut(region), region_layout(pages)) };
        }
    }
}

fn region_layout(pages: usize) -> Layout {
    Layout::from_size_align(pages * PAGE, PAGE).expect("pool region layout")
}

impl Shared {
    fn fail(&self, message: String) {
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(message);
        }
    }

    /// The host's permissions for `page`, reading `/proc/self/maps` again when it is not known.
    fn host_region(&self, page: usize) -> Option<Region> {
        let find = |regions: &[Region]| regions.iter().copied().find(|region| region.start <= page && page < region.end);
        if let Some(region) = find(&self.regions.borrow()) {
            return Some(region);
        }
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let regions: Vec<Region> = maps
            .lines()
            .filter_map(|line| {
                let (range, rest) = line.split_once(' ')?;
                let (start, end) = range.split_once('-')?;
                let permissions = rest.as_bytes();
                Some(Region {
                    start: usize::from_str_radix(start, 16).ok()?,
                    end: usize::from_str_radix(end, 16).ok()?,
                    read: permissions.first() == Some(&b'r'),
                    write: permissions.get(1) == Some(&b'w'),
                })
            })
            .collect();
        let found = find(&regions);
        *self.regions.borrow_mut() = regions;
        found
    }
}

/// An emulated processor with its images loaded (and their memory kept alive).
#[derive(Clone)]
pub struct Machine {
    owner: Rc<Owner>,
    shared: Rc<Shared>,
}

/// The engine (with its hooks) and the memory it maps; the engine is closed first.
struct Owner {
    engine: Unicorn<'static, ()>,
    memory: Memory,
}

/// The host memory the machine's guest owns: the image, the stub pages, the stack.
struct Memory {
    images: Vec<Image>,
    stubs: *mut u8,
    stack: *mut u8,
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated in `Machine::new` with these layouts, freed once.
        unsafe { std::alloc::dealloc(self.stubs, stub_layout()) };
        // SAFETY: as above.
        unsafe { std::alloc::dealloc(self.stack, stack_layout()) };
    }
}

fn stub_layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(2 * PAGE, PAGE).expect("two pages")
}

fn stack_layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(PAGE + STACK, PAGE).expect("guard page and stack")
}

fn permission(access: Access) -> Permission {
    let mut permission = Permission::NONE;
    if access.read {
        permission |= Permission::READ;
    }
    if access.write {
        permission |= Permission::WRITE;
    }
    if access.execute {
        permission |= Permission::EXEC;
    }
    permission
}

thread_local! {
    static CURRENT: RefCell<Option<Machine>> = const { RefCell::new(None) };
}

/// The executor the model calls: runs the guest function on this thread's machine.
fn execute(address: usize, arguments: &[u64]) -> u64 {
    let machine = CURRENT.with(|current| current.borrow().clone()).expect("emulator: a guest call with no machine running");
    machine.call(address, arguments)
}

/// A machine installed as the model's executor and pool memory; uninstalled on drop.
pub struct Running {
    _installed: invoke::Installed,
    _pool: invoke::PoolInstalled,
}

/// The model's `ExAllocatePool2` on this thread's machine: special pool.
fn special_allocate(layout: Layout) -> *mut u8 {
    match CURRENT.with(|current| current.borrow().clone()) {
        Some(machine) => machine.pool_allocate(layout),
        None => std::ptr::null_mut(),
    }
}

/// The model's `ExFreePoolWithTag` on this thread's machine.
///
/// # Safety
/// `block` came from [`special_allocate`] on this thread's machine, freed once.
unsafe fn special_free(block: *mut u8, _layout: Layout) {
    if let Some(machine) = CURRENT.with(|current| current.borrow().clone()) {
        machine.pool_free(block.addr());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
    }
}

impl Machine {
    /// A machine for `images` (one architecture; a vendor driver beside wanlayer.sys): their
    /// pages, their import stubs and a guest stack mapped.
    ///
    /// # Errors
    /// Images of different architectures, more imports than a stub page holds, unicorn refusing
    /// to start or to map the memory.
    pub fn new(mut images: Vec<Image>) -> Result<Self, String> {
        let error = |what: &'static str| move |error| format!("emulator: {what}: {error:?}");
        let Some(first) = images.first() else { return Err("emulator: no image".to_owned()) };
        let machine_arch = first.arch;
        if let Some(other) = images.iter().find(|image| image.arch != machine_arch) {
            return Err(format!("{}: {:?}, not {machine_arch:?} as the images before", other.name, other.arch));
        }
        runs(machine_arch).map_err(|why| format!("{}: {why}", first.name))?;
        let isa = match machine_arch {
            Arch::X64 => Isa::X64,
            Arch::Arm64 => Isa::Arm64,
            Arch::X86 => Isa::X86,
        };
        let (arch, mode) = match isa {
            Isa::X64 => (UcArch::X86, Mode::MODE_64),
            Isa::Arm64 => (UcArch::ARM64, Mode::ARM),
            Isa::X86 => (UcArch::X86, Mode::MODE_32),
        };
        let mut engine = Unicorn::new(arch, mode).map_err(error("open"))?;
        if isa == Isa::Arm64 {
            // CPACR_EL1.FPEN: SIMD and floating point enabled (compiled code moves with them).
            engine.reg_write(RegisterARM64::CPACR_EL1, 3 << 20).map_err(error("CPACR_EL1"))?;
        }
        // SAFETY: non-zero sizes.
        let stubs = unsafe { std::alloc::alloc_zeroed(stub_layout()) };
        // SAFETY: as above.
        let stack = unsafe { std::alloc::alloc_zeroed(stack_layout()) };
        assert!(!stubs.is_null() && !stack.is_null(), "emulator: out of memory");
        let all_imports: Vec<&'static Export> = images.iter().flat_map(|image| image.imports.iter().copied()).collect();
        if all_imports.len() * STUB > PAGE {
            return Err("emulator: more imports than one stub page holds".to_owned());
        }
        let ret: &[u8] = match isa {
            Isa::X64 | Isa::X86 => &[0xC3],
            Isa::Arm64 => &[0xC0, 0x03, 0x5F, 0xD6],
        };
        for index in 0..PAGE / STUB {
            for at in [index * STUB, PAGE + index * STUB] {
                // SAFETY: inside the two stub pages (a stub per 16 bytes of the first, a sentinel
                // per 16 bytes of the second).
                unsafe { std::ptr::copy_nonoverlapping(ret.as_ptr(), stubs.wrapping_add(at), ret.len()) };
            }
        }
        let mut stub = 0;
        for image in &mut images {
            for index in 0..image.imports.len() {
                image.bind(index, stubs.addr() + stub * STUB);
                stub += 1;
            }
            for (index, access) in image.pages.iter().enumerate() {
                let page = image.base() + index * PAGE;
                // SAFETY: the image's block, alive as long as the machine (kept in `Memory`).
                unsafe { engine.mem_map_ptr(page as u64, PAGE, permission(*access), std::ptr::with_exposed_provenance_mut(page)) }
                    .map_err(error("map the image"))?;
            }
        }
        // SAFETY: the stub pages, alive as long as the machine.
        unsafe { engine.mem_map_ptr(stubs.addr() as u64, 2 * PAGE, Permission::READ | Permission::EXEC, stubs.cast()) }
            .map_err(error("map the stubs"))?;
        // SAFETY: the stack above its guard page, alive as long as the machine.
        unsafe {
            engine.mem_map_ptr(
                stack.addr() as u64 + PAGE as u64,
                STACK,
                Permission::READ | Permission::WRITE,
                stack.wrapping_add(PAGE).cast(),
            )
        }
        .map_err(error("map the stack"))?;
        let shared = Rc::new(Shared {
            arch: isa,
            imports: RefCell::new(all_imports),
            stubs: stubs.addr(),
            sentinels: stubs.addr() + PAGE,
            stack_base: stack.addr() + PAGE,
            stack_top: stack.addr() + PAGE + STACK,
            guard: stack.addr(),
            failure: RefCell::new(None),
            depth: Cell::new(0),
            deepest: Cell::new(0),
            import_calls: Cell::new(0),
            regions: RefCell::new(Vec::new()),
            mapped: RefCell::new(BTreeSet::new()),
            forbidden: RefCell::new(BTreeMap::new()),
            pool_blocks: RefCell::new(BTreeMap::new()),
            quarantine: RefCell::new(Vec::new()),
        });
        let hooked = Rc::clone(&shared);
        engine
            .add_code_hook(shared.stubs as u64, (shared.stubs + PAGE - 1) as u64, move |engine, address, _| {
                let outcome = catch_unwind(AssertUnwindSafe(|| import(engine, &hooked, address as usize)));
                if let Err(panic) = outcome {
                    hooked.fail(panic_text(&*panic));
                    let _ = engine.emu_stop();
                }
            })
            .map_err(error("hook the stubs"))?;
        let hooked = Rc::clone(&shared);
        engine
            .add_mem_hook(HookType::MEM_UNMAPPED, 1, 0, move |engine, kind, address, size, _| {
                catch_unwind(AssertUnwindSafe(|| fault(engine, &hooked, kind, address as usize, size))).unwrap_or(false)
            })
            .map_err(error("hook faults"))?;
        Ok(Machine { owner: Rc::new(Owner { engine, memory: Memory { images, stubs, stack } }), shared })
    }

    /// `DriverEntry`'s address in the guest (of the first image).
    pub fn entry(&self) -> usize {
        self.entry_of(0)
    }

    /// `DriverEntry`'s address of image `index` (in the order given to [`Machine::new`]).
    ///
    /// # Panics
    /// When there is no such image.
    pub fn entry_of(&self, index: usize) -> usize {
        self.owner.memory.images[index].entry
    }

    /// Makes this machine the model's executor on this thread until the guard is dropped.
    pub fn run(&self) -> Running {
        CURRENT.with(|current| *current.borrow_mut() = Some(self.clone()));
        Running {
            _installed: invoke::install(execute),
            _pool: invoke::install_pool(PoolMemory { allocate: special_allocate, free: special_free }),
        }
    }

    /// A special-pool block (Driver Verifier's special pool): the block ends where an
    /// inaccessible guard page begins, so an overrun faults at its first byte past a 16-byte
    /// granule; zeroed; null when the host is out of memory.
    fn pool_allocate(&self, layout: Layout) -> *mut u8 {
        let size = layout.size().max(1).next_multiple_of(layout.align().max(16));
        let pages = size.div_ceil(PAGE) + 1;
        // SAFETY: a non-zero size.
        let region = unsafe { std::alloc::alloc_zeroed(region_layout(pages)) };
        if region.is_null() {
            return region;
        }
        let guard = region.addr() + (pages - 1) * PAGE;
        let block = guard - size;
        let reason = format!("the guard page after the pool block of {} bytes at {block:#x} (an overrun)", layout.size());
        self.shared.forbidden.borrow_mut().insert(guard, reason);
        self.shared.pool_blocks.borrow_mut().insert(block, (region.expose_provenance(), pages));
        region.wrapping_add((pages - 1) * PAGE - size)
    }

    /// Frees a special-pool block: its pages become inaccessible to the guest (unmapped if they
    /// were mapped) and stay allocated until the machine goes, so a use after free faults.
    fn pool_free(&self, block: usize) {
        let Some((region, pages)) = self.shared.pool_blocks.borrow_mut().remove(&block) else { return };
        let mut engine = self.engine();
        for page in (region..region + (pages - 1) * PAGE).step_by(PAGE) {
            self.shared.forbidden.borrow_mut().insert(page, format!("the pool block at {block:#x}, freed (a use after free)"));
            if self.shared.mapped.borrow_mut().remove(&page) {
                let _ = engine.mem_unmap(page as u64, PAGE);
            }
        }
        self.shared.quarantine.borrow_mut().push((region, pages));
    }

    /// The most guest stack any top-level call used so far, in bytes.
    pub fn deepest_stack(&self) -> usize {
        self.shared.deepest.get()
    }

    /// Imports called so far.
    pub fn import_calls(&self) -> u64 {
        self.shared.import_calls.get()
    }

    /// Runs the guest function at `address` with `arguments` and returns its return register.
    ///
    /// # Panics
    /// When the guest faults, hangs, or the model panics under it (the run's failure).
    pub fn call(&self, address: usize, arguments: &[u64]) -> u64 {
        let shared = &self.shared;
        let mut engine = self.engine();
        let depth = shared.depth.get();
        assert!(depth < MAX_DEPTH, "emulator: guest calls nested {MAX_DEPTH} deep");
        let saved = engine.context_init().expect("emulator: save the processor state");
        let sp = if depth == 0 {
            // SAFETY: the guest stack, owned by the machine and not in use at the top level.
            unsafe { std::ptr::write_bytes(std::ptr::with_exposed_provenance_mut::<u8>(shared.stack_base), PAINT, STACK) };
            shared.stack_top
        } else {
            (self.stack_pointer() - 0x100) & !0xF
        };
        let sentinel = shared.sentinels + depth * STUB;
        let outcome = self.enter(&mut engine, address, arguments, sp, sentinel);
        shared.depth.set(depth + 1);
        let started = engine.emu_start(address as u64, sentinel as u64, if depth == 0 { TIMEOUT_US } else { 0 }, 0);
        shared.depth.set(depth);
        let pc = self.program_counter();
        let result = match self.shared.arch {
            Isa::X64 => engine.reg_read(RegisterX86::RAX),
            Isa::Arm64 => engine.reg_read(RegisterARM64::X0),
            // EDX:EAX (a 64-bit result); a narrower one is EAX, the rest dropped by its `Word`.
            Isa::X86 => {
                engine.reg_read(RegisterX86::EAX).and_then(|low| Ok(engine.reg_read(RegisterX86::EDX)? << 32 | (low & 0xFFFF_FFFF)))
            }
        }
        .unwrap_or(0);
        engine.context_restore(&saved).expect("emulator: restore the processor state");
        if depth == 0 {
            let used = self.stack_used();
            shared.deepest.set(shared.deepest.get().max(used));
        }
        let failure = shared.failure.borrow_mut().take();
        let failure = match (failure, outcome, started) {
            (Some(failure), _, _) => Some(failure),
            (None, Err(error), _) => Some(error),
            (None, Ok(()), Err(error)) => Some(format!("{error:?} at {pc:#x}")),
            (None, Ok(()), Ok(())) if pc != sentinel => Some(format!("the call of {address:#x} did not return (stopped at {pc:#x})")),
            _ => None,
        };
        if let Some(failure) = failure {
            if depth > 0 {
                // Stop the caller too: the failure goes up as a panic through the model.
                shared.fail(failure.clone());
            }
            panic!("{failure}");
        }
        result
    }

    /// Sets the registers and stack for a call of `address`, returning to `sentinel`.
    fn enter(
        &self,
        engine: &mut Unicorn<'static, ()>,
        address: usize,
        arguments: &[u64],
        sp: usize,
        sentinel: usize,
    ) -> Result<(), String> {
        let error = |error| format!("emulator: registers for the call of {address:#x}: {error:?}");
        match self.shared.arch {
            Isa::X64 => {
                let frame = (0x28 + 8 * arguments.len()).next_multiple_of(16);
                let entry_sp = sp - frame - 8;
                let mut words = vec![sentinel as u64, 0, 0, 0, 0];
                words.extend(arguments.iter().skip(4));
                write_words(entry_sp, &words);
                for (register, value) in [RegisterX86::RCX, RegisterX86::RDX, RegisterX86::R8, RegisterX86::R9].into_iter().zip(arguments) {
                    engine.reg_write(register, *value).map_err(error)?;
                }
                engine.reg_write(RegisterX86::RSP, entry_sp as u64).map_err(error)?;
            }
            Isa::Arm64 => {
                let stacked: Vec<u64> = arguments.iter().skip(8).copied().collect();
                let entry_sp = (sp - 8 * stacked.len()) & !0xF;
                write_words(entry_sp, &stacked);
                let registers = [
                    RegisterARM64::X0,
                    RegisterARM64::X1,
                    RegisterARM64::X2,
                    RegisterARM64::X3,
                    RegisterARM64::X4,
                    RegisterARM64::X5,
                    RegisterARM64::X6,
                    RegisterARM64::X7,
                ];
                for (register, value) in registers.into_iter().zip(arguments) {
                    engine.reg_write(register, *value).map_err(error)?;
                }
                engine.reg_write(RegisterARM64::X30, sentinel as u64).map_err(error)?;
                engine.reg_write(RegisterARM64::SP, entry_sp as u64).map_err(error)?;
            }
            Isa::X86 => {
                // `__stdcall`: the arguments pushed right to left above the return address, one
                // 4-byte slot each (no function of the driver the model calls takes a 64-bit one).
                let mut slots = vec![u32::try_from(sentinel).map_err(|_| format!("the sentinel {sentinel:#x} above 4 GiB"))?];
                for (index, argument) in arguments.iter().enumerate() {
                    slots.push(u32::try_from(*argument).map_err(|_| {
                        format!("emulator: argument {index} ({argument:#x}) of the call of {address:#x} does not fit the 4-byte slot of an x86 call")
                    })?);
                }
                let entry_sp = ((sp - 4 * arguments.len()) & !0xF) - 4;
                for (index, slot) in slots.iter().enumerate() {
                    // SAFETY: inside the guest stack the machine owns, below the caller's frame.
                    unsafe { std::ptr::with_exposed_provenance_mut::<u32>(entry_sp + 4 * index).write_unaligned(*slot) };
                }
                engine.reg_write(RegisterX86::ESP, entry_sp as u64).map_err(error)?;
            }
        }
        Ok(())
    }

    /// A second handle on the engine (hooks stay with the owner's).
    fn engine(&self) -> Unicorn<'static, ()> {
        // SAFETY: the owner's open engine, alive as long as `self`; the handle does not close it.
        unsafe { Unicorn::from_handle(self.owner.engine.get_handle()) }.expect("emulator: the engine's handle")
    }

    fn stack_pointer(&self) -> usize {
        stack_pointer(&self.engine(), self.shared.arch)
    }

    fn program_counter(&self) -> usize {
        let engine = self.engine();
        let register = match self.shared.arch {
            Isa::X64 => engine.reg_read(RegisterX86::RIP),
            Isa::Arm64 => engine.reg_read(RegisterARM64::PC),
            Isa::X86 => engine.reg_read(RegisterX86::EIP),
        };
        register.unwrap_or(0) as usize
    }

    /// Bytes of the guest stack written since it was painted.
    fn stack_used(&self) -> usize {
        // SAFETY: the guest stack, owned by the machine; the guest is not running.
        let stack = unsafe { std::slice::from_raw_parts(std::ptr::with_exposed_provenance::<u8>(self.shared.stack_base), STACK) };
        STACK - stack.iter().position(|&byte| byte != PAINT).unwrap_or(STACK)
    }
}

fn stack_pointer(engine: &Unicorn<'_, ()>, arch: Isa) -> usize {
    let register = match arch {
        Isa::X64 => engine.reg_read(RegisterX86::RSP),
        Isa::Arm64 => engine.reg_read(RegisterARM64::SP),
        Isa::X86 => engine.reg_read(RegisterX86::ESP),
    };
    register.unwrap_or(0) as usize
}

/// Writes `words` at `address` (guest memory is host memory).
fn write_words(address: usize, words: &[u64]) {
    for (index, word) in words.iter().enumerate() {
        // SAFETY: `address` is inside the guest stack the machine owns, below the caller's frame.
        unsafe { std::ptr::with_exposed_provenance_mut::<u64>(address + 8 * index).write_unaligned(*word) };
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<String>(), panic.downcast_ref::<&str>()) {
        (Some(text), _) => text.clone(),
        (None, Some(text)) => (*text).to_owned(),
        _ => "a panic".to_owned(),
    }
}

/// An import's stub was reached: call the model's function with the guest's arguments.
fn import(engine: &mut Unicorn<'_, ()>, shared: &Shared, address: usize) {
    let index = (address - shared.stubs) / STUB;
    let Some(export) = shared.imports.borrow().get(index).copied() else {
        shared.fail(format!("execution in the import stubs at {address:#x}, not at a stub"));
        let _ = engine.emu_stop();
        return;
    };
    shared.import_calls.set(shared.import_calls.get() + 1);
    let sp = stack_pointer(engine, shared.arch);
    if shared.arch == Isa::X86 {
        import_x86(engine, shared, export, sp);
        return;
    }
    let mut arguments = Vec::with_capacity(export.arity);
    for index in 0..export.arity {
        let value = match shared.arch {
            Isa::X64 => match index {
                0 => engine.reg_read(RegisterX86::RCX),
                1 => engine.reg_read(RegisterX86::RDX),
                2 => engine.reg_read(RegisterX86::R8),
                3 => engine.reg_read(RegisterX86::R9),
                // SAFETY: the caller's stack arguments, above the return address and shadow space.
                _ => Ok(unsafe { std::ptr::with_exposed_provenance::<u64>(sp + 0x28 + 8 * (index - 4)).read_unaligned() }),
            },
            Isa::Arm64 => match index {
                0..=7 => engine.reg_read(RegisterARM64::X0 + index as i32),
                // SAFETY: the caller's stack arguments at its stack pointer.
                _ => Ok(unsafe { std::ptr::with_exposed_provenance::<u64>(sp + 8 * (index - 8)).read_unaligned() }),
            },
            Isa::X86 => unreachable!("x86 imports are called by import_x86"),
        };
        arguments.push(value.unwrap_or(0));
    }
    if let Err(refused) = runtime_ranges_allowed(shared, export, &arguments) {
        shared.fail(refused);
        let _ = engine.emu_stop();
        return;
    }
    if export.diverges {
        let arguments: Vec<String> = arguments.iter().map(|argument| format!("{argument:#x}")).collect();
        shared.fail(format!("{}!{}({}): the image bug-checked the machine", export.module, export.name, arguments.join(", ")));
        let _ = engine.emu_stop();
        return;
    }
    // SAFETY: the guest's own call of the import, with the arguments as its ABI passed them; the
    // model checks what it can and panics (caught by the hook) on what it refuses.
    let result = unsafe { export.call_words(&arguments) };
    let result = routine_stub(shared, export, result, arguments[..].first().copied().unwrap_or(0));
    let written = match shared.arch {
        Isa::X64 => engine.reg_write(RegisterX86::RAX, result),
        Isa::Arm64 => engine.reg_write(RegisterARM64::X0, result),
        Isa::X86 => unreachable!("x86 imports are called by import_x86"),
    };
    if shared.failure.borrow().is_some() || written.is_err() {
        let _ = engine.emu_stop();
    }
}

/// The C runtime's imports (`memcpy`, `memmove`, `memset`, `memcmp`) run in the host, where the
/// special pool's guard pages, its freed blocks and the guard page below the guest stack are
/// ordinary memory: the ranges they would write and read are checked against those first, as the
/// guest's own accesses are; the refusal names the range and the reason.
fn runtime_ranges_allowed(shared: &Shared, export: &Export, arguments: &[u64]) -> Result<(), String> {
    let argument = |index: usize| arguments.get(index).copied().unwrap_or(0);
    let ranges = match export.name {
        "memcpy" | "memmove" => [("WRITE", argument(0), argument(2)), ("READ", argument(1), argument(2))],
        "memset" => [("WRITE", argument(0), argument(2)), ("READ", 0, 0)],
        "memcmp" => [("READ", argument(0), argument(2)), ("READ", argument(1), argument(2))],
        _ => return Ok(()),
    };
    for (kind, start, length) in ranges.into_iter().filter(|&(_, _, length)| length > 0) {
        let (start, length) = (start as usize, length as usize);
        let end =
            start.checked_add(length).ok_or_else(|| format!("{}: {kind} of {length} bytes at {start:#x} wraps around", export.name))?;
        for page in (start & !(PAGE - 1)..end).step_by(PAGE) {
            let reason = match shared.forbidden.borrow().get(&page) {
                Some(reason) => reason.clone(),
                None if page == shared.guard => "the guard page below the guest stack (stack overflow)".to_owned(),
                None => continue,
            };
            return Err(format!("{kind} of {length} bytes at {start:#x} by {}: {reason}", export.name));
        }
    }
    Ok(())
}

/// `MmGetSystemRoutineAddress`'s `result` for the guest: the model answers its own (host)
/// function; the guest gets a stub of that export (named by the `UNICODE_STRING` at `name`).
fn routine_stub(shared: &Shared, export: &Export, result: u64, name: u64) -> u64 {
    if export.name != "MmGetSystemRoutineAddress" || result == 0 {
        return result;
    }
    // SAFETY: the guest's UNICODE_STRING argument, which the model just read.
    let name = unsafe { routine_name(name as usize) };
    match wanlayer_kernel_model::exports::find("ntoskrnl.exe", &name) {
        Some(routine) => stub_of(shared, routine) as u64,
        None => {
            shared.fail(format!("MmGetSystemRoutineAddress answered {name:?}, which the model does not export"));
            0
        }
    }
}

/// An x86 caller's arguments: `FASTCALL`'s first two narrow ones from ECX and EDX, the rest from
/// its stack above the return address, in 4-byte slots (a 64-bit argument in two, low half first).
struct X86Arguments {
    registers: std::collections::VecDeque<u64>,
    /// The first stack argument's address.
    stack: usize,
    /// Bytes of stack arguments read.
    stacked: usize,
}

impl Arguments for X86Arguments {
    fn next(&mut self, bytes: usize) -> u64 {
        if bytes <= 4 {
            if let Some(register) = self.registers.pop_front() {
                return register;
            }
        }
        let slot = |offset: usize| -> u64 {
            // SAFETY: the caller's stack arguments, above its return address on the guest stack.
            u64::from(unsafe { std::ptr::with_exposed_provenance::<u32>(self.stack + offset).read_unaligned() })
        };
        let value = if bytes > 4 { slot(self.stacked) | slot(self.stacked + 4) << 32 } else { slot(self.stacked) };
        self.stacked += bytes.div_ceil(4).max(1) * 4;
        value
    }
}

/// An x86 import's stub was reached (ESP = `sp`, at the return address): calls the model's
/// function with the arguments its convention passes, returns its result in EDX:EAX and, for
/// `__stdcall` and `__fastcall`, removes the stack arguments as the callee does (the return
/// address moved up over them; the stub's `ret` returns from there).
fn import_x86(engine: &mut Unicorn<'_, ()>, shared: &Shared, export: &'static Export, sp: usize) {
    let convention = export.x86_convention();
    let registers = match convention {
        X86Convention::Fastcall => {
            [RegisterX86::ECX, RegisterX86::EDX].into_iter().map(|register| engine.reg_read(register).unwrap_or(0)).collect()
        }
        X86Convention::Stdcall | X86Convention::Cdecl => std::collections::VecDeque::new(),
    };
    // SAFETY: the caller's first stack slot, above its return address on the guest stack.
    let first_slot = u64::from(unsafe { std::ptr::with_exposed_provenance::<u32>(sp + 4).read_unaligned() });
    if export.diverges {
        let arguments: Vec<String> = (0..export.arity)
            // SAFETY: the caller's stack arguments (a diverging export takes 4-byte ones).
            .map(|index| format!("{:#x}", unsafe { std::ptr::with_exposed_provenance::<u32>(sp + 4 + 4 * index).read_unaligned() }))
            .collect();
        shared.fail(format!("{}!{}({}): the image bug-checked the machine", export.module, export.name, arguments.join(", ")));
        let _ = engine.emu_stop();
        return;
    }
    if convention == X86Convention::Cdecl {
        let slots: Vec<u64> = (0..export.arity)
            // SAFETY: the caller's stack arguments (the C runtime's are 4-byte ones).
            .map(|index| u64::from(unsafe { std::ptr::with_exposed_provenance::<u32>(sp + 4 + 4 * index).read_unaligned() }))
            .collect();
        if let Err(refused) = runtime_ranges_allowed(shared, export, &slots) {
            shared.fail(refused);
            let _ = engine.emu_stop();
            return;
        }
    }
    let mut arguments = X86Arguments { registers, stack: sp + 4, stacked: 0 };
    let first = match convention {
        X86Convention::Fastcall => arguments.registers.front().copied().unwrap_or(0),
        X86Convention::Stdcall | X86Convention::Cdecl => first_slot,
    };
    // SAFETY: the guest's own call of the import, with the arguments as its convention passed
    // them; the model checks what it can and panics (caught by the hook) on what it refuses.
    let result = unsafe { (export.call)(&mut arguments) };
    let result = routine_stub(shared, export, result, first);
    let mut written =
        engine.reg_write(RegisterX86::EAX, result & 0xFFFF_FFFF).and_then(|()| engine.reg_write(RegisterX86::EDX, result >> 32));
    let popped = match convention {
        X86Convention::Stdcall | X86Convention::Fastcall => arguments.stacked,
        X86Convention::Cdecl => 0,
    };
    if popped > 0 {
        // SAFETY: the return address, on the guest stack.
        let return_address = unsafe { std::ptr::with_exposed_provenance::<u32>(sp).read_unaligned() };
        // SAFETY: the last argument slot, on the guest stack (the callee's to overwrite).
        unsafe { std::ptr::with_exposed_provenance_mut::<u32>(sp + popped).write_unaligned(return_address) };
        written = written.and_then(|()| engine.reg_write(RegisterX86::ESP, (sp + popped) as u64));
    }
    if shared.failure.borrow().is_some() || written.is_err() {
        let _ = engine.emu_stop();
    }
}

/// The stub that calls `export`, laid out after the image's if it has none yet.
fn stub_of(shared: &Shared, export: &'static Export) -> usize {
    let mut imports = shared.imports.borrow_mut();
    let index = match imports.iter().position(|known| std::ptr::eq(*known, export)) {
        Some(index) => index,
        None => {
            imports.push(export);
            imports.len() - 1
        }
    };
    assert!(index < PAGE / STUB, "emulator: more routines than one stub page holds");
    shared.stubs + index * STUB
}

/// The text of a `UNICODE_STRING` at `address`.
///
/// # Safety
/// `address` points at a valid `UNICODE_STRING` in this process.
unsafe fn routine_name(address: usize) -> String {
    // SAFETY: the caller's promise.
    let name = unsafe { std::ptr::with_exposed_provenance::<wanlayer_ndis::types::UnicodeString>(address).read_unaligned() };
    if name.buffer.is_null() {
        return String::new();
    }
    // SAFETY: a valid UNICODE_STRING's buffer holds `Length` bytes.
    let units = unsafe { std::slice::from_raw_parts(name.buffer, usize::from(name.length / 2)) };
    String::from_utf16_lossy(units)
}

/// The guest touched an unmapped page: map it if it is memory of this process, else fail.
fn fault(engine: &mut Unicorn<'_, ()>, shared: &Shared, kind: MemType, address: usize, size: usize) -> bool {
    let page = address & !(PAGE - 1);
    let refuse = |why: &str| {
        shared.fail(format!("{kind:?} of {size} bytes at {address:#x}: {why}"));
        false
    };
    if kind == MemType::FETCH_UNMAPPED {
        return refuse("execution outside the image");
    }
    if page == shared.guard {
        return refuse("the guard page below the guest stack (stack overflow)");
    }
    if let Some(reason) = shared.forbidden.borrow().get(&page) {
        return refuse(reason);
    }
    if shared.mapped.borrow().contains(&page) {
        return refuse("a page already mapped");
    }
    let Some(region) = shared.host_region(page) else { return refuse("not memory of this process") };
    if !region.read {
        return refuse("memory of this process the host does not allow reading");
    }
    let mut permission = Permission::READ;
    if region.write {
        permission |= Permission::WRITE;
    }
    // SAFETY: a page this process has mapped (its own heap, stacks, data), mapped into the guest
    // at its own address with the host's permissions; the guest is the driver under test, whose
    // every access the model's contract covers.
    let mapped = unsafe { engine.mem_map_ptr(page as u64, PAGE, permission, std::ptr::with_exposed_provenance_mut(page)) };
    if mapped.is_err() {
        return refuse("unicorn refused to map it");
    }
    shared.mapped.borrow_mut().insert(page);
    true
}
