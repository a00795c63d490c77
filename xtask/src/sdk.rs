//! `cargo xtask sdk-header [--check]`: writes `crates/wanlayer-sdk/include/wanlayer.h` and
//! `crates/wanlayer-sdk/tests/c/wanlayer_layout.c` from the SDK's Rust definitions
//! ([`wanlayer_sdk::header`]), or with `--check` fails when the checked-in files are not what the
//! definitions generate. [`compile_c`] then compiles, as strict C99, the header alone, the layout
//! check (whose assertions fail the compilation when the C compiler lays a structure out unlike
//! Rust) and the C example vendor filter — natively and for 32-bit x86 ([`X86_FLAGS`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use wanlayer_sdk::header;

use crate::test::workspace_root;

/// The C compiler flags of the check: strict C99, every warning an error, no output.
pub const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"];

/// The SDK crate's directory.
pub fn sdk_dir() -> PathBuf {
    workspace_root().join("crates").join("wanlayer-sdk")
}

/// The generated files: path and what it must contain.
fn generated() -> [(PathBuf, String); 2] {
    let dir = sdk_dir();
    [(dir.join(header::HEADER_PATH), header::header()), (dir.join(header::LAYOUT_CHECK_PATH), header::layout_check())]
}

/// The generated files that differ from what is checked in (or are missing).
pub fn stale_files() -> Vec<PathBuf> {
    generated()
        .into_iter()
        .filter(|(path, text)| std::fs::read_to_string(path).map_or(true, |current| current != *text))
        .map(|(path, _)| path)
        .collect()
}

/// Writes the generated files.
fn write() -> Result<(), String> {
    for (path, text) in generated() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        println!("sdk-header: wrote {}", path.display());
    }
    Ok(())
}

/// Fails when a checked-in file is not what the Rust definitions generate.
///
/// # Errors
/// Names the stale files and the command that regenerates them.
pub fn check() -> Result<(), String> {
    let stale = stale_files();
    if stale.is_empty() {
        println!("sdk-header: include/wanlayer.h and its layout check are up to date");
        return Ok(());
    }
    let names: Vec<String> = stale.iter().map(|path| path.display().to_string()).collect();
    Err(format!("out of date with crates/wanlayer-sdk/src/abi.rs: {} (run `cargo xtask sdk-header`)", names.join(", ")))
}

/// The C compiler: `$CC`, else `cc`.
pub fn c_compiler() -> String {
    std::env::var("CC").ok().filter(|cc| !cc.trim().is_empty()).unwrap_or_else(|| "cc".to_string())
}

/// The C sources the check compiles, relative to the SDK crate: the header on its own, the
/// generated layout check, the example vendor filter.
pub const C_SOURCES: &[&str] = &[header::HEADER_PATH, header::LAYOUT_CHECK_PATH, "tests/c/example_filter.c"];

/// The flags that make the C compiler target 32-bit x86 as Windows lays it out: `-m32`, and
/// `-malign-double` for the 8-byte alignment of `uint64_t` in structures that MSVC (and rustc's
/// `i686-pc-windows-msvc`) use and the 32-bit System V ABI does not.
pub const X86_FLAGS: &[&str] = &["-m32", "-malign-double"];

/// Compiles every [`C_SOURCES`] with `compiler` and [`C_FLAGS`], natively and then for 32-bit x86
/// ([`X86_FLAGS`]). Without a 32-bit C library (Debian: `gcc-multilib`) the x86 compilation is
/// skipped with a message, and under CI fails.
///
/// # Errors
/// The compiler cannot be started, or fails (its output is in the message).
pub fn compile_c(compiler: &str) -> Result<(), String> {
    compile_c_with(compiler, &[])?;
    println!("sdk-header: wanlayer.h compiles as C99, its layout matches Rust's, the example filter compiles");
    if !compiles_for_x86(compiler) {
        let message = format!("{compiler} {} cannot compile C with a C library (install gcc-multilib)", X86_FLAGS.join(" "));
        if crate::tools::under_ci() {
            return Err(format!("the SDK's x86 layout check: {message}"));
        }
        println!("sdk-header: skipped the x86 (32-bit) layout check: {message}");
        return Ok(());
    }
    compile_c_with(compiler, X86_FLAGS)?;
    println!("sdk-header: and for 32-bit x86 ({}): the layout matches rustc's i686 layout", X86_FLAGS.join(" "));
    Ok(())
}

/// True when `compiler` with [`X86_FLAGS`] compiles a file that includes the C library's headers.
fn compiles_for_x86(compiler: &str) -> bool {
    let probe = std::env::temp_dir().join(format!("wanlayer-x86-probe-{}.c", std::process::id()));
    if std::fs::write(&probe, "#include <stdint.h>\nint wl_probe(void) { return (int)sizeof(uint64_t); }\n").is_err() {
        return false;
    }
    let compiled = Command::new(compiler).args(X86_FLAGS).args(C_FLAGS).arg(&probe).output().is_ok_and(|output| output.status.success());
    std::fs::remove_file(&probe).ok();
    compiled
}

/// Compiles every [`C_SOURCES`] with `compiler`, `target_flags` and [`C_FLAGS`].
fn compile_c_with(compiler: &str, target_flags: &[&str]) -> Result<(), String> {
    let dir = sdk_dir();
    for source in C_SOURCES {
        let mut command = Command::new(compiler);
        command.args(target_flags).args(C_FLAGS).arg("-I").arg(dir.join("include"));
        if Path::new(source).extension().is_some_and(|extension| extension == "h") {
            command.args(["-x", "c"]);
        }
        command.arg(dir.join(source));
        let flags: Vec<&str> = target_flags.iter().chain(C_FLAGS).copied().collect();
        println!("xtask: $ {compiler} {} -I include {source}", flags.join(" "));
        let output = command.output().map_err(|error| format!("could not start the C compiler '{compiler}': {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "{compiler} rejects {source} ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(())
}

/// `cargo xtask sdk-header [--check]`: writes the files (or, with `check`, checks they are
/// current), then compiles them.
pub fn run(check_only: bool) -> Result<(), String> {
    if check_only {
        check()?;
    } else {
        write()?;
    }
    compile_c(&c_compiler())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{require, Tool};

    #[test]
    fn the_checked_in_header_and_layout_check_are_current() {
        assert_eq!(stale_files(), Vec::<PathBuf>::new(), "run `cargo xtask sdk-header`");
    }

    #[test]
    fn the_header_compiles_as_c99_and_its_layout_is_rusts() {
        if require(Tool::CCompiler).is_none() {
            return;
        }
        compile_c(&c_compiler()).unwrap();
    }

    #[test]
    fn a_layout_mismatch_fails_the_compilation() {
        if require(Tool::CCompiler).is_none() {
            return;
        }
        let compiler = c_compiler();
        let work = std::env::temp_dir().join(format!("wanlayer-sdk-mismatch-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let wrong = header::layout_check().replace("sizeof(WL_PROVIDER_TABLE) == 96", "sizeof(WL_PROVIDER_TABLE) == 88");
        let source = work.join("wrong.c");
        std::fs::write(&source, wrong).unwrap();
        let output = Command::new(&compiler)
            .args(C_FLAGS)
            .arg("-I")
            .arg(sdk_dir().join("include"))
            .arg(&source)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&work).ok();
        assert!(!output.status.success(), "a wrong size must not compile");
        assert!(String::from_utf8_lossy(&output.stderr).contains("WL_PROVIDER_TABLE_size"));
    }

    #[test]
    fn the_x86_layout_check_needs_8_aligned_uint64() {
        if require(Tool::CCompiler).is_none() || !compiles_for_x86(&c_compiler()) {
            return;
        }
        compile_c_with(&c_compiler(), X86_FLAGS).unwrap();
        // Without -malign-double, gcc lays a uint64_t after a byte at offset 4 (System V i386).
        let error = compile_c_with(&c_compiler(), &["-m32"]).expect_err("System V's 4-aligned uint64_t is not Windows' layout");
        assert!(error.contains("uint64_alignment"), "{error}");
    }
}
