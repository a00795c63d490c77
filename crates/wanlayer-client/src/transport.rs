//! How requests reach the control device: one trait, a Windows implementation
//! ([`crate::windows`]) and a simulator one ([`crate::sim`]).

use std::time::Duration;

use crate::Result;

/// A channel to the control device, opened with some access.
pub trait Transport {
    /// Sends one device control and waits for its completion; returns the bytes the driver wrote
    /// to `output`.
    ///
    /// # Errors
    /// [`ClientError::Driver`](crate::ClientError::Driver) with the completion status, or a
    /// system error.
    fn call(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize>;

    /// Sends a device control that may pend (an event read) and waits at most `timeout` (`None`:
    /// as long as it takes); then cancels it. Returns `None` when it was cancelled.
    ///
    /// # Errors
    /// As [`Transport::call`].
    fn call_pending(&mut self, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn call(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        (**self).call(code, input, output)
    }

    fn call_pending(&mut self, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>> {
        (**self).call_pending(code, input, output, timeout)
    }
}
