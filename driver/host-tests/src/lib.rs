//! The driver in the loop: `tests/` runs `wanlayer.sys`'s own handlers — built for the host from
//! the same source as the image — against the kernel model (`wanlayer-kernel-model`), which
//! binds every import by name and checks each call. This library is empty; on Windows targets the
//! tests are too.
