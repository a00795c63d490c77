//! Stamping: `inf/wanlayer.inx` into a `wanlayer.inf` for one architecture, and the Windows
//! scripts, with the identity, the version and the date.
//!
//! The INX uses stampinf's `$ARCH$` (`NT$ARCH$` becomes `NTamd64` / `NTarm64` / `NTx86`) and an empty
//! `DriverVer` that is replaced by `MM/DD/YYYY,w.x.y.z`, so the same file also goes through
//! `stampinf` on a Windows host. The identity tokens (`$FILTER_GUID$`, `$COMPONENT_ID$`,
//! `$SERVICE_NAME$`, `$FRIENDLY_NAME$`, `$HELP_TEXT$`, `$PROVIDER$`) are always stamped here.
//! The scripts use `@TOKEN@` (`@COMPONENT_ID@`, `@SERVICE_NAME@`, `@FILTER_GUID@`,
//! `@ARCH@`, `@VERSION@`), which a PowerShell reader cannot mistake for a variable.
//!
//! Everything stamped is ASCII with CRLF line ends: Windows reads a BOM-less INF or script in
//! the ANSI code page, where ASCII is the only text that reads the same everywhere.

use super::asn1::CivilTime;
use super::identity::Identity;
use crate::image::Arch;

/// The INF source.
pub const INX: &str = include_str!("../../../inf/wanlayer.inx");
/// The Windows-side scripts and the runbook, by package file name.
pub const SCRIPTS: [(&str, &str); 4] = [
    ("install.ps1", include_str!("../../../inf/install.ps1")),
    ("uninstall.ps1", include_str!("../../../inf/uninstall.ps1")),
    ("verifier.ps1", include_str!("../../../inf/verifier.ps1")),
    ("RUNBOOK.md", include_str!("../../../inf/RUNBOOK.md")),
];

/// The stampinf `$ARCH$` value of an architecture.
pub fn inf_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X64 => "amd64",
        Arch::Arm64 => "arm64",
        Arch::X86 => "x86",
    }
}

/// A four-part driver version from the workspace's `major.minor.patch[-pre]`.
///
/// # Errors
///
/// When a part is missing or above 65535.
pub fn driver_version(semver: &str) -> Result<[u16; 4], String> {
    let core = semver.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return Err(format!("version '{semver}' is not major.minor.patch"));
    };
    let part = |text: &str| text.parse::<u16>().map_err(|_| format!("version '{semver}': '{text}' is not 0..65535"));
    Ok([part(major)?, part(minor)?, part(patch)?, 0])
}

/// `MM/DD/YYYY,w.x.y.z`.
pub fn driver_ver(date: &CivilTime, version: [u16; 4]) -> String {
    let [w, x, y, z] = version;
    format!("{:02}/{:02}/{:04},{w}.{x}.{y}.{z}", date.month, date.day, date.year)
}

/// `text` with CRLF line ends, whatever it had.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Fails unless `text` is ASCII.
fn ascii(name: &str, text: &str) -> Result<(), String> {
    match text.lines().position(|line| !line.is_ascii()) {
        Some(index) => {
            Err(format!("{name}: line {} is not ASCII (Windows would read it in the ANSI code page)", index + 1))
        }
        None => Ok(()),
    }
}

/// `text` as an INF string value: quotes doubled, `%` doubled.
fn inf_escape(text: &str) -> String {
    text.replace('"', "\"\"").replace('%', "%%")
}

/// The INX with the identity tokens stamped (for `stampinf`, which does the rest).
pub fn identity_tokens(inx: &str, identity: &Identity) -> String {
    [
        ("$FILTER_GUID$", identity.filter_guid.as_str()),
        ("$COMPONENT_ID$", identity.component_id.as_str()),
        ("$SERVICE_NAME$", identity.service_name.as_str()),
        ("$FRIENDLY_NAME$", identity.friendly_name.as_str()),
        ("$HELP_TEXT$", identity.help_text.as_str()),
        ("$PROVIDER$", identity.provider.as_str()),
    ]
    .iter()
    .fold(inx.to_string(), |text, (token, value)| text.replace(token, &inf_escape(value)))
}

/// The INF for `arch`: identity, `$ARCH$` and `DriverVer` stamped.
///
/// # Errors
///
/// When the INX has no `DriverVer` line in `[Version]`, or a `$TOKEN$` is left unstamped.
pub fn stamp_inf(inx: &str, identity: &Identity, arch: Arch, driver_ver: &str) -> Result<String, String> {
    let text = identity_tokens(inx, identity).replace("$ARCH$", inf_arch(arch));
    let mut in_version = false;
    let mut stamped = false;
    let mut out = String::with_capacity(text.len() + 32);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_version = trimmed.to_ascii_lowercase().starts_with("[version]");
        }
        let is_driver_ver = trimmed.get(..9).is_some_and(|key| key.eq_ignore_ascii_case("DriverVer"))
            && trimmed.get(9..).is_some_and(|rest| rest.trim_start().starts_with('='));
        if in_version && is_driver_ver && !stamped {
            out.push_str(&format!("DriverVer   = {driver_ver}\n"));
            stamped = true;
        } else {
            out.push_str(line);
        }
    }
    if !stamped {
        return Err("the INX has no 'DriverVer =' line in [Version] to stamp".into());
    }
    if let Some(token) = leftover(&out, '$', &["$Windows NT$"]) {
        return Err(format!("the INX token {token} is not stamped by cargo xtask package"));
    }
    ascii("the stamped INF", &out)?;
    Ok(crlf(&out))
}

/// A script with its `@TOKEN@`s stamped.
///
/// # Errors
///
/// When an `@TOKEN@` is left unstamped.
pub fn stamp_script(
    name: &str,
    script: &str,
    identity: &Identity,
    arch: Arch,
    version: &str,
) -> Result<String, String> {
    let text = [
        ("@COMPONENT_ID@", identity.component_id.as_str()),
        ("@SERVICE_NAME@", identity.service_name.as_str()),
        ("@FILTER_GUID@", identity.filter_guid.as_str()),
        ("@ARCH@", arch.to_string().as_str()),
        ("@VERSION@", version),
    ]
    .iter()
    .fold(script.to_string(), |text, (token, value)| text.replace(token, value));
    if let Some(token) = leftover(&text, '@', &[]) {
        return Err(format!("{name}: the token {token} is not stamped by cargo xtask package"));
    }
    ascii(name, &text)?;
    Ok(crlf(&text))
}

/// The first `<mark>UPPER_CASE<mark>` token in `text` not in `allowed`.
fn leftover(text: &str, mark: char, allowed: &[&str]) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find(mark) {
        let after = &rest[start + 1..];
        let name_len = after.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').count();
        if name_len > 0 && after[name_len..].starts_with(mark) {
            let token = format!("{mark}{}{mark}", &after[..name_len]);
            if !allowed.contains(&token.as_str()) {
                return Some(token);
            }
        }
        rest = after;
    }
    None
}
