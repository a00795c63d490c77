//! Cross-crate scenario tests for wanlayer live in `tests/`.
