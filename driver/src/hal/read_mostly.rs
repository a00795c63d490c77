//! [`PerProcessorLock`]: the engine's [`ReadMostly`] — a value behind one `KSPIN_LOCK` per
//! processor (each on a cache line of its own), read under the lock of the reader's processor and
//! written under all of them, so that the data path's readers on different processors never write
//! the same line.

use alloc::vec::Vec;
use core::cell::UnsafeCell;

use wanlayer_core::hal::{Lock, OutOfMemory, ReadMostly};
use wanlayer_ndis::sync::SpinLock;

/// Shards beyond this share locks (processor index modulo the count): 64 lines of 64 bytes.
const MAX_SHARDS: usize = 64;

/// One processor's `KSPIN_LOCK`, alone on its cache line.
#[repr(align(64))]
struct Shard(SpinLock<()>);

/// A value behind per-processor spin locks, as the engine's [`ReadMostly`].
///
/// # IRQL
/// Both sides raise to `DISPATCH_LEVEL` for the closure and restore the caller's IRQL. A reader
/// holds the lock of the processor it started on (it cannot move once raised); a writer takes
/// every lock in index order, so two writers cannot deadlock and a writer waits for the readers
/// in progress. Callable at `<= DISPATCH_LEVEL`; the closures must not wait or call out of the
/// filter. Lives in non-paged memory (the engine's tables, the shards in pool).
pub struct PerProcessorLock<T> {
    shards: Vec<Shard>,
    value: UnsafeCell<T>,
}

// SAFETY: readers on several processors hold `&T` at once (`T: Sync`); a writer holds every
// shard's lock, so it has the only reference, on whichever processor it runs (`T: Send`).
unsafe impl<T: Send + Sync> Sync for PerProcessorLock<T> {}
// SAFETY: moving the lock needs ownership: nobody holds any of its locks then.
unsafe impl<T: Send> Send for PerProcessorLock<T> {}

impl<T> PerProcessorLock<T> {
    /// A released lock around `value` with a shard for each of `processors` processors (at most
    /// [`MAX_SHARDS`]).
    ///
    /// # Errors
    /// [`OutOfMemory`] when the shards cannot be allocated.
    pub fn new(value: T, processors: usize) -> Result<Self, OutOfMemory> {
        let count = processors.clamp(1, MAX_SHARDS);
        let mut shards = Vec::new();
        shards.try_reserve_exact(count).map_err(|_| OutOfMemory)?;
        while shards.len() < count {
            #[allow(clippy::disallowed_methods, reason = "within the capacity reserved just before: never allocates")]
            shards.push(Shard(SpinLock::new(())));
        }
        Ok(Self { shards, value: UnsafeCell::new(value) })
    }

    /// Runs `inner` holding every shard's lock from `shards` on.
    fn with_all<R>(shards: &[Shard], inner: impl FnOnce() -> R) -> R {
        match shards.split_first() {
            Some((first, rest)) => first.0.with(|()| Self::with_all(rest, inner)),
            None => inner(),
        }
    }
}

impl<T> Lock<T> for PerProcessorLock<T> {
    fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
        Self::with_all(&self.shards, || {
            // SAFETY: every shard's lock is held until `with_all` returns, after the closure: no
            // reader (each holds one shard's lock) and no other writer has a reference.
            critical_section(unsafe { &mut *self.value.get() })
        })
    }
}

impl<T> ReadMostly<T> for PerProcessorLock<T> {
    fn read<R>(&self, reader: impl FnOnce(&T) -> R) -> R {
        let processor = crate::hal::current_processor_index();
        // `new` made at least one shard, so the modulo is in range.
        let shard = &self.shards[processor % self.shards.len()];
        shard.0.with(|()| {
            // SAFETY: this shard's lock is held until the closure returns: a writer, which needs
            // every shard's lock, cannot hold a `&mut` meanwhile; other readers only share.
            reader(unsafe { &*self.value.get() })
        })
    }
}
