//! Test support shared by the engine's unit tests.

use core::cell::Cell;

use crate::hal::{Memory, OutOfMemory, Pool};

/// [`Memory`] with a budget: refuses a charge beyond what is left, and counts what is outstanding.
/// Made with [`Budget::for_pool`], it also checks that every charge names that pool.
pub(crate) struct Budget {
    left: Cell<usize>,
    outstanding: Cell<usize>,
    only: Option<Pool>,
}

impl Budget {
    /// A budget of `bytes` for any pool.
    pub(crate) fn new(bytes: usize) -> Self {
        Self { left: Cell::new(bytes), outstanding: Cell::new(0), only: None }
    }

    /// A budget of `bytes` that only `pool` may charge.
    pub(crate) fn for_pool(pool: Pool, bytes: usize) -> Self {
        Self { only: Some(pool), ..Self::new(bytes) }
    }

    /// Bytes not charged.
    pub(crate) fn left(&self) -> usize {
        self.left.get()
    }

    /// Bytes charged and not released.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.get()
    }
}

impl Memory for Budget {
    fn try_charge(&self, pool: Pool, bytes: usize) -> Result<(), OutOfMemory> {
        if let Some(only) = self.only {
            assert_eq!(pool, only, "a charge to another pool");
        }
        let left = self.left.get().checked_sub(bytes).ok_or(OutOfMemory)?;
        self.left.set(left);
        self.outstanding.set(self.outstanding.get() + bytes);
        Ok(())
    }

    fn release(&self, _: Pool, bytes: usize) {
        self.left.set(self.left.get() + bytes);
        self.outstanding.set(self.outstanding.get() - bytes);
    }
}
