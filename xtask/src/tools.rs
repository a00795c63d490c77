//! The external tools some checks need, and the one rule for when one is missing: under CI (the
//! `CI` environment variable set, as `.ci/run` sets it) the check that needs it fails, saying
//! which tool and how to install it; on a developer's machine it is skipped, and `cargo xtask test`
//! first takes a [`census`] that prints a visible `skipped:` line per missing tool — libtest
//! swallows what a passing test prints, so the tests' own notices would go unseen.

use std::path::{Path, PathBuf};

/// A tool some checks need and the repository cannot build itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tool {
    /// OpenSSL's command line: writes a PKCS #12 file that the `--pfx` reader must read.
    Openssl,
    /// osslsigncode: verifies our Authenticode signatures and catalogs independently.
    Osslsigncode,
    /// The C compiler (`$CC`, else `cc`): compiles the SDK's header as C99 with its layout check.
    CCompiler,
    /// tshark: reads the pcapng captures that wanlayerctl and the demo write.
    Tshark,
}

impl Tool {
    /// Every tool, in census order.
    pub const ALL: [Tool; 4] = [Tool::Openssl, Tool::Osslsigncode, Tool::CCompiler, Tool::Tshark];

    /// The program to run (for the C compiler, `$CC` or `cc`).
    pub fn program(self) -> String {
        match self {
            Tool::Openssl => "openssl".to_owned(),
            Tool::Osslsigncode => "osslsigncode".to_owned(),
            Tool::CCompiler => crate::sdk::c_compiler(),
            Tool::Tshark => "tshark".to_owned(),
        }
    }

    /// The Debian package that provides it.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Openssl => "openssl",
            Tool::Osslsigncode => "osslsigncode",
            Tool::CCompiler => "gcc",
            Tool::Tshark => "tshark",
        }
    }

    /// What is not checked without it.
    pub fn skips(self) -> &'static str {
        match self {
            Tool::Openssl => "reading a PKCS #12 file written by OpenSSL (xtask package tests)",
            Tool::Osslsigncode => "the independent check of our driver signatures and catalogs (xtask package tests)",
            Tool::CCompiler => "compiling the SDK's C header as C99 and its layout check (xtask sdk tests)",
            Tool::Tshark => {
                "reading the pcapng captures of `wanlayerctl capture` and the demo with tshark (their structure is still checked)"
            }
        }
    }

    /// The tool's path: the program as given when it names a file, else found on `PATH`.
    pub fn find(self) -> Option<PathBuf> {
        let program = self.program();
        let program = program.split_whitespace().next().unwrap_or_default().to_owned();
        if program.is_empty() {
            return None;
        }
        if program.contains(std::path::MAIN_SEPARATOR) {
            return Path::new(&program).is_file().then(|| PathBuf::from(program));
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|dir| dir.join(&program)).find(|candidate| candidate.is_file())
    }

    /// What is missing and what goes unchecked without it.
    pub fn missing_line(self) -> String {
        format!("{} is not installed: {} (apt-get install {})", self.program(), self.skips(), self.package())
    }

    /// The line that says what is skipped without it.
    pub fn skipped_line(self) -> String {
        format!("skipped: {}", self.missing_line())
    }
}

/// True when running under CI: `CI` is set and is neither empty, `0` nor `false`.
pub fn under_ci() -> bool {
    means_ci(std::env::var("CI").ok().as_deref())
}

/// Whether a value of `CI` (`None`: unset) means CI.
fn means_ci(value: Option<&str>) -> bool {
    value.is_some_and(|value| !matches!(value.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// The tool's path for a check that needs it; `None` (the check skips) on a developer's machine
/// when it is missing.
///
/// # Panics
/// Under CI when the tool is missing: the check fails instead of passing silently.
#[track_caller]
pub fn require(tool: Tool) -> Option<PathBuf> {
    let found = tool.find();
    if found.is_none() {
        assert!(!under_ci(), "required under CI: {}", tool.missing_line());
        eprintln!("{}", tool.skipped_line());
    }
    found
}

/// Prints a `skipped:` line for every missing tool, where `cargo xtask test` shows it before the
/// tests run. Returns the missing tools.
///
/// # Errors
/// Under CI, when any tool is missing (naming each and its package).
pub fn census() -> Result<Vec<Tool>, String> {
    let missing: Vec<Tool> = Tool::ALL.into_iter().filter(|tool| tool.find().is_none()).collect();
    if missing.is_empty() {
        println!("xtask: tools: every external tool the checks use is installed (openssl, osslsigncode, a C compiler, tshark)");
        return Ok(missing);
    }
    if under_ci() {
        let lines: Vec<String> = missing.iter().map(|tool| format!("  {}", tool.missing_line())).collect();
        return Err(format!("CI needs every tool the checks use; missing:\n{}", lines.join("\n")));
    }
    for tool in &missing {
        println!("xtask: {}", tool.skipped_line());
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_any_value_of_ci_but_empty_zero_or_false() {
        assert!(means_ci(Some("true")) && means_ci(Some("1")) && means_ci(Some("yes")));
        assert!(!means_ci(None) && !means_ci(Some("")) && !means_ci(Some("0")) && !means_ci(Some("False")));
    }

    #[test]
    fn every_tool_says_what_is_skipped_without_it_and_how_to_install_it() {
        for tool in Tool::ALL {
            let line = tool.skipped_line();
            assert!(
                line.starts_with("skipped: ")
                    && line.contains(tool.skips())
                    && line.ends_with(&format!("(apt-get install {})", tool.package()))
            );
        }
    }
}
