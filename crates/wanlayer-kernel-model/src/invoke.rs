//! The one way into driver code: every call the model or a test makes into the driver —
//! `DriverEntry`, the filter's handlers, dispatch routines, DPC routines, cancel-safe queue
//! callbacks, timers — goes through [`call`], so that one scenario runs against the driver built
//! for the host and against the shipped image under an emulator alike.
//!
//! With no executor installed, [`call`] is a plain, typed call of the function pointer (what Miri
//! checks). An emulator [`install`]s an [`Executor`]: then the pointer is only an address in the
//! loaded image, and the executor runs the guest code there with the arguments as machine words
//! ([`Word`]) and returns the guest's return register. Calls nest: a handler calls an import, the
//! model's import calls back into the driver (a DPC run by `KeFlushQueuedDpcs`, a queue's lock
//! callbacks), and that call goes through [`call`] again.

use std::alloc::Layout;
use std::sync::Mutex;

use wanlayer_ndis::lightweight_filter::{ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags};
use wanlayer_ndis::kernel::ExPoolPriority;
use wanlayer_ndis::types::{ContextHandle, DeviceHandle, FilterDriverHandle, FilterModuleHandle, NblPoolHandle, NdisHandle};

/// Runs the guest function at `address` with `arguments` (each a machine word, as the ABI passes
/// it) and returns the value of the guest's return register.
pub type Executor = fn(address: usize, arguments: &[u64]) -> u64;

static EXECUTOR: Mutex<Option<Executor>> = Mutex::new(None);

/// The executor installed now, if any.
pub fn executor() -> Option<Executor> {
    *EXECUTOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An installed executor; dropping it puts back the one installed before.
#[must_use = "the executor is uninstalled when this is dropped"]
pub struct Installed {
    previous: Option<Executor>,
}

/// Installs `executor` for every [`call`] until the returned guard is dropped.
pub fn install(executor: Executor) -> Installed {
    let previous = EXECUTOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(executor);
    Installed { previous }
}

impl Drop for Installed {
    fn drop(&mut self) {
        *EXECUTOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = self.previous;
    }
}

/// Where `ExAllocatePool2` takes its blocks from and `ExFreePoolWithTag` gives them back to,
/// while installed: an emulator places each block at the end of its pages before an inaccessible
/// guard page and makes freed blocks inaccessible (special pool). Blocks are zeroed, aligned as
/// the layout asks.
#[derive(Clone, Copy)]
pub struct PoolMemory {
    /// Allocates a zeroed block of `layout` (null when it cannot).
    pub allocate: fn(layout: Layout) -> *mut u8,
    /// Frees a block `allocate` returned for `layout`.
    ///
    /// # Safety
    /// `block` came from `allocate` with this `layout` and is freed once.
    pub free: unsafe fn(block: *mut u8, layout: Layout),
}

static POOL: Mutex<Option<PoolMemory>> = Mutex::new(None);

/// Installed pool memory; dropping it puts back what was installed before (the host's heap).
#[must_use = "the pool memory is uninstalled when this is dropped"]
pub struct PoolInstalled {
    previous: Option<PoolMemory>,
}

/// Makes `ExAllocatePool2` / `ExFreePoolWithTag` use `pool` until the guard is dropped.
pub fn install_pool(pool: PoolMemory) -> PoolInstalled {
    let previous = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(pool);
    PoolInstalled { previous }
}

impl Drop for PoolInstalled {
    fn drop(&mut self) {
        *POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = self.previous;
    }
}

fn pool() -> Option<PoolMemory> {
    *POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A zeroed pool block of `layout` (a non-zero size) from the installed pool memory or the heap.
pub(crate) fn pool_allocate(layout: Layout) -> *mut u8 {
    match pool() {
        Some(pool) => (pool.allocate)(layout),
        // SAFETY: the caller passes a non-zero size.
        None => unsafe { std::alloc::alloc_zeroed(layout) },
    }
}

/// Frees a block [`pool_allocate`] returned.
///
/// # Safety
/// `block` came from [`pool_allocate`] with `layout`, under the same pool memory, freed once.
pub(crate) unsafe fn pool_free(block: *mut u8, layout: Layout) {
    match pool() {
        // SAFETY: the caller's promise.
        Some(pool) => unsafe { (pool.free)(block, layout) },
        // SAFETY: the caller's promise: a heap block of this layout.
        None => unsafe { std::alloc::dealloc(block, layout) },
    }
}

/// A value passed in one machine word (an integer register or stack slot): what the driver's
/// functions and the kernel's take and return.
pub trait Word: Copy {
    /// The value as the word a caller passes (narrow integers zero-extended).
    fn to_word(self) -> u64;
    /// The value a callee finds in `word` (narrow integers are its low bits).
    fn from_word(word: u64) -> Self;
}

macro_rules! integer_word {
    ($($integer:ty => $unsigned:ty),* $(,)?) => {$(
        impl Word for $integer {
            fn to_word(self) -> u64 {
                // Zero-extension through the unsigned type of the same width: the callee reads
                // only the low bits of a narrow argument.
                u64::from(self as $unsigned)
            }
            fn from_word(word: u64) -> Self {
                word as $unsigned as $integer
            }
        }
    )*};
}

integer_word!(u8 => u8, i8 => u8, u16 => u16, i16 => u16, u32 => u32, i32 => u32, u64 => u64, i64 => u64);

impl Word for usize {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Self {
        word as usize
    }
}

impl Word for isize {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Self {
        word as isize
    }
}

impl Word for () {
    fn to_word(self) -> u64 {
        0
    }
    fn from_word(_word: u64) -> Self {}
}

impl<T> Word for *mut T {
    fn to_word(self) -> u64 {
        self.expose_provenance() as u64
    }
    fn from_word(word: u64) -> Self {
        std::ptr::with_exposed_provenance_mut(word as usize)
    }
}

impl<T> Word for *const T {
    fn to_word(self) -> u64 {
        self.expose_provenance() as u64
    }
    fn from_word(word: u64) -> Self {
        std::ptr::with_exposed_provenance(word as usize)
    }
}

macro_rules! handle_word {
    ($($handle:ty),* $(,)?) => {$(
        impl Word for $handle {
            fn to_word(self) -> u64 {
                self.as_raw().to_word()
            }
            fn from_word(word: u64) -> Self {
                Self::from_raw(Word::from_word(word))
            }
        }
    )*};
}

handle_word!(NdisHandle, FilterDriverHandle, FilterModuleHandle, NblPoolHandle, DeviceHandle, ContextHandle);

macro_rules! flags_word {
    ($($flags:ty),* $(,)?) => {$(
        impl Word for $flags {
            fn to_word(self) -> u64 {
                self.0.to_word()
            }
            fn from_word(word: u64) -> Self {
                Self(Word::from_word(word))
            }
        }
    )*};
}

flags_word!(SendFlags, SendCompleteFlags, ReceiveFlags, ReturnFlags, ExPoolPriority);

/// A function pointer type whose arguments and result are [`Word`]s: what [`call`] calls.
pub trait Function<Arguments>: Copy {
    /// The return type.
    type Output: Word;
    /// The function's address (in the emulator: the guest address).
    fn address(self) -> usize;
    /// The arguments as words, in order.
    fn words(arguments: Arguments) -> Vec<u64>;
    /// Calls the function natively.
    ///
    /// # Safety
    /// The function's own contract for these arguments; it is native code.
    unsafe fn call_native(self, arguments: Arguments) -> Self::Output;
}

macro_rules! function {
    ($($argument:ident: $value:ident),*) => {
        impl<Output: Word, $($argument: Word),*> Function<($($argument,)*)> for unsafe extern "system" fn($($argument),*) -> Output {
            type Output = Output;

            fn address(self) -> usize {
                self as usize
            }

            #[allow(clippy::unused_unit)]
            fn words(($($value,)*): ($($argument,)*)) -> Vec<u64> {
                vec![$($value.to_word()),*]
            }

            #[allow(clippy::unused_unit)]
            unsafe fn call_native(self, ($($value,)*): ($($argument,)*)) -> Output {
                // SAFETY: the caller's promise (the function's contract).
                unsafe { self($($value),*) }
            }
        }

        impl<Output: Word, $($argument: Word),*> Word for unsafe extern "system" fn($($argument),*) -> Output {
            fn to_word(self) -> u64 {
                self as usize as u64
            }
            fn from_word(word: u64) -> Self {
                assert_ne!(word, 0, "kernel model: a null function pointer passed where the kernel needs one");
                // SAFETY: a non-null address is a valid value of a function pointer type; what
                // it points at matters only if it is called, and a guest's code is only ever
                // called through the executor, which runs it as guest code.
                unsafe { std::mem::transmute::<usize, Self>(word as usize) }
            }
        }
    };
}

function!();
function!(A: a);
function!(A: a, B: b);
function!(A: a, B: b, C: c);
function!(A: a, B: b, C: c, D: d);
function!(A: a, B: b, C: c, D: d, E: e);
function!(A: a, B: b, C: c, D: d, E: e, F: f);
function!(A: a, B: b, C: c, D: d, E: e, F: f, G: g);

thread_local! {
    /// Calls into driver code under way on this thread ([`call`] nests).
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Whose code runs on this thread now: the driver's (`true`), or the kernel's and the test's.
    static DRIVER_CODE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the code running on this thread now is the driver's: inside a call into driver code
/// ([`call`], or a test bed's own way in, [`driver_code`]) and not inside one of the kernel's
/// functions the driver called (each import of the model is [`kernel_code`]). A host test
/// binary's global allocator asks it to give the driver's heap allocations kernel pool, as the
/// image's own allocator does, and the model's own bookkeeping the host's heap.
pub fn in_driver_code() -> bool {
    // No destructor: readable until the thread is gone (`false` if it ever is not).
    DRIVER_CODE.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// Whose code runs on this thread, until dropped ([`driver_code`], [`kernel_code`]); then what
/// ran before runs again.
#[must_use = "the code runs as the driver's or the kernel's only while this is alive"]
pub struct CodeOwner {
    previous: bool,
}

fn owned_by(driver: bool) -> CodeOwner {
    let previous = DRIVER_CODE.try_with(|owner| owner.replace(driver)).unwrap_or(false);
    CodeOwner { previous }
}

/// From now until the guard drops, this thread runs the driver's code: a call into it.
pub fn driver_code() -> CodeOwner {
    owned_by(true)
}

/// From now until the guard drops, this thread runs the kernel's code: one of the model's
/// imports (and what it calls: the drivers around the filter, through the model's sinks).
pub fn kernel_code() -> CodeOwner {
    owned_by(false)
}

impl Drop for CodeOwner {
    fn drop(&mut self) {
        let _ = DRIVER_CODE.try_with(|owner| owner.set(self.previous));
    }
}

/// Calls into driver code under way on this thread: 0 while the caller's own code runs (a panic
/// hook tells a failed check of a scenario from a panic inside a call into the driver).
pub fn depth() -> usize {
    DEPTH.with(std::cell::Cell::get)
}

/// Calls driver code: natively, or through the installed [`Executor`].
///
/// # Safety
/// `function` is driver code (native, or at an address in the loaded image when an executor is
/// installed) and the arguments meet its contract.
pub unsafe fn call<Arguments, F: Function<Arguments>>(function: F, arguments: Arguments) -> F::Output {
    let address = function.address();
    DEPTH.with(|depth| depth.set(depth.get() + 1));
    let driver = driver_code();
    let output = match executor() {
        Some(execute) => {
            let words = F::words(arguments);
            <F::Output as Word>::from_word(execute(address, &words))
        }
        // SAFETY: the caller's promise.
        None => unsafe { function.call_native(arguments) },
    };
    drop(driver);
    DEPTH.with(|depth| depth.set(depth.get() - 1));
    if size_of::<F::Output>() == 4 {
        // An NTSTATUS / NDIS_STATUS: the low-resources sweep records the failures the driver returns.
        crate::low_resources::driver_returned(address, output.to_word() as u32);
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "system" fn add(a: u32, b: i8, c: *mut u64) -> i32 {
        // SAFETY: the test passes a valid pointer.
        unsafe { *c += 1 };
        a as i32 + i32::from(b)
    }

    fn echo(address: usize, arguments: &[u64]) -> u64 {
        assert_ne!(address, 0);
        arguments.iter().take(2).sum()
    }

    #[test]
    fn calls_are_native_without_an_executor_and_words_with_one() {
        let _run = crate::begin();
        let mut counter = 0u64;
        let function: unsafe extern "system" fn(u32, i8, *mut u64) -> i32 = add;
        // SAFETY: a native function called with a valid pointer.
        assert_eq!(unsafe { call(function, (40, 2, &raw mut counter)) }, 42);
        assert_eq!(counter, 1);
        let words = <unsafe extern "system" fn(u32, i8, *mut u64) -> i32 as Function<_>>::words((7, -1, std::ptr::null_mut()));
        assert_eq!(words, [7, 0xFF, 0]);
        let _installed = install(echo);
        // SAFETY: the executor does not run the function.
        assert_eq!(unsafe { call(function, (7, -1, std::ptr::null_mut())) }, 7 + 0xFF);
        assert_eq!(i32::from_word(0xFFFF_FFFF_0000_0005), 5);
        assert_eq!(i8::from_word(0xFF), -1);
    }
}
