//! The INF reader, the lint rules (each fails on a crafted INF, on the right line), stamping,
//! and garbage input.

use super::super::inf::{self, Problem};
use super::super::lint;
use super::super::stamp;
use super::super::lint_bytes;
use super::{identity, stamped_inf, Noise, TempDir};
use crate::image::Arch;

/// The problems of INF text.
fn problems(text: &str) -> Vec<Problem> {
    lint_bytes(text.as_bytes(), None)
}

/// The 1-based line of the first line of `text`, not a comment, containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| !line.trim_start().starts_with(';') && line.contains(needle))
        .map(|index| index + 1)
        .unwrap_or_else(|| panic!("'{needle}' not in the INF"))
}

/// The stamped x64 INF with the first line containing `find` replaced by `replace` (an empty
/// `replace` deletes the line).
fn mutated(find: &str, replace: &str) -> String {
    let text = stamped_inf(Arch::X64);
    let at = line_of(&text, find) - 1;
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| match index == at {
            true if replace.is_empty() => None,
            true => Some(replace.to_string()),
            false => Some(line.to_string()),
        })
        .map(|line| line + "\n")
        .collect()
}

/// Asserts that `text` has exactly one problem, on `line`, whose message contains `expected`.
fn assert_one(text: &str, line: usize, expected: &str) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "expected one problem mentioning '{expected}', got {found:#?}");
    assert_eq!(found[0].line, line, "wrong line for {:?}", found[0]);
    assert!(found[0].message.contains(expected), "'{}' does not mention '{expected}'", found[0].message);
}

#[test]
fn stamped_inf_passes_lint_and_names_the_driver_for_both_architectures() {
    for (arch, decoration) in [(Arch::X64, "NTamd64.10.0...17763"), (Arch::Arm64, "NTarm64.10.0...17763")] {
        let text = stamped_inf(arch);
        assert_eq!(problems(&text), [], "{arch}");
        let (parsed, syntax) = inf::parse(&text);
        assert_eq!(syntax, []);
        assert_eq!(lint::check_identity(&parsed, &identity()), [], "{arch}");
        assert!(parsed.section(&format!("Models.{decoration}")).is_some(), "{arch}: models section");
        let version = parsed.section("Version").expect("[Version]");
        let driver_ver = version.get("DriverVer").expect("DriverVer");
        assert_eq!(driver_ver.values, ["03/07/2025", "0.1.0.0"]);
        assert_eq!(version.get("CatalogFile").map(|entry| entry.value(0)), Some("wanlayer.cat"));
        let install = parsed.section("Install").expect("[Install]");
        assert_eq!(install.get("NetCfgInstanceId").map(|entry| entry.value(0)), Some(identity().filter_guid.as_str()));
        assert_eq!(install.get("Characteristics").and_then(|entry| inf::number(entry.value(0))), Some(0x40000));
        assert!(!text.replace("$Windows NT$", "").contains('$'), "{arch}: a token is left");
        assert!(text.is_ascii(), "{arch}: Windows reads a BOM-less INF in the ANSI code page");
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count(), "{arch}: CRLF line ends");
    }
}

#[test]
fn stamping_rejects_unknown_tokens_and_a_missing_driver_ver() {
    let with_token = format!("{}\n[Extra]\nValue = $NOT_A_TOKEN$\n", stamp::INX);
    let error = stamp::stamp_inf(&with_token, &identity(), Arch::X64, "01/02/2025,0.1.0.0").expect_err("unknown token");
    assert!(error.contains("$NOT_A_TOKEN$"), "{error}");
    let without = stamp::INX.replace("DriverVer   =", "; no driver version");
    assert!(stamp::stamp_inf(&without, &identity(), Arch::X64, "01/02/2025,0.1.0.0").is_err());
    let script = stamp::stamp_script("x.ps1", "'@COMPONENT_ID@' '@UNKNOWN@'", &identity(), Arch::X64, "0.1.0");
    assert!(script.expect_err("unknown script token").contains("@UNKNOWN@"));
}

#[test]
fn scripts_stamp_completely() {
    for (name, script) in stamp::SCRIPTS {
        let stamped = stamp::stamp_script(name, script, &identity(), Arch::Arm64, "0.1.0").expect(name);
        if name.ends_with(".ps1") {
            assert!(stamped.starts_with("#Requires -RunAsAdministrator"), "{name}");
            assert!(stamped.contains(&format!("'{}", identity().service_name)), "{name}: service name");
        }
    }
    let install =
        stamp::stamp_script("install.ps1", stamp::SCRIPTS[0].1, &identity(), Arch::X64, "0.1.0").expect("stamps");
    assert!(install.contains("netcfg -v -l $Inf -c s -i $ComponentId"));
    assert!(install.contains(&format!("$ComponentId = '{}'", identity().component_id)));
    let verifier = stamp::SCRIPTS.iter().find(|(name, _)| *name == "verifier.ps1").expect("verifier.ps1").1;
    assert!(verifier.contains("$Flags = '0x2209BB'") && verifier.contains("verifier /reset"));
}

#[test]
fn driver_version_comes_from_the_workspace_version() {
    assert_eq!(stamp::driver_version("0.1.0"), Ok([0, 1, 0, 0]));
    assert_eq!(stamp::driver_version("1.22.333-beta.1"), Ok([1, 22, 333, 0]));
    assert!(stamp::driver_version("1.2").is_err());
    assert!(stamp::driver_version("1.2.70000").is_err());
    assert_eq!(stamp::driver_version(env!("CARGO_PKG_VERSION")).map(|v| v[3]), Ok(0));
}

#[test]
fn parser_reads_quotes_comments_continuations_and_strings() {
    let text = "[Version]\r\n\
        Signature = \"$Windows NT$\" ; comment with \"quote\r\n\
        [Sec]\n\
        HKR, Ndi, HelpText,, %Help% ; trailing\n\
        Key = \"a \"\"quoted\"\" word\", plain  value , \\\n\
        \x20  continued, %%literal%%, %13%\\x.sys\n\
        ; only a comment\n\
        \n\
        [sec]\n\
        Merged = 1\n\
        [Strings]\n\
        Help = \"Help, with a comma\"\n";
    let (parsed, problems) = inf::parse(text);
    assert_eq!(problems, []);
    let section = parsed.section("SEC").expect("sections are case-insensitive");
    assert_eq!(section.entries.len(), 3, "same-name sections merge");
    assert_eq!(section.entries[0].values, ["HKR", "Ndi", "HelpText", "", "Help, with a comma"]);
    assert_eq!(section.entries[0].line, 4);
    let key = section.get("key").expect("keys are case-insensitive");
    assert_eq!(key.values, ["a \"quoted\" word", "plain  value", "continued", "%literal%", "%13%\\x.sys"]);
    assert_eq!(key.line, 5);
    assert_eq!(section.get("Merged").map(|entry| entry.line), Some(10));
    assert_eq!(parsed.section("Version").and_then(|s| s.get("Signature")).map(|e| e.value(0)), Some("$Windows NT$"));
}

#[test]
fn utf16le_and_utf8_bom_read_like_utf8() {
    let text = stamped_inf(Arch::X64).replace('\n', "\r\n");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(inf::decode(&utf16).as_deref(), Ok(text.as_str()));
    assert_eq!(lint_bytes(&utf16, None), []);
    let utf8_bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
    assert_eq!(lint_bytes(&utf8_bom, None), []);
    let broken = mutated("PnpLockdown", "PnpLockdown = 0");
    let mut broken16 = vec![0xFF, 0xFE];
    broken16.extend(broken.encode_utf16().flat_map(u16::to_le_bytes));
    let found = lint_bytes(&broken16, None);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, line_of(&broken, "PnpLockdown"), "UTF-16 keeps line numbers");
}

#[test]
fn undecodable_text_is_reported_on_its_line() {
    let mut ansi = b"[Version]\nSignature=\"$Windows NT$\"\nProvider = caf".to_vec();
    ansi.extend_from_slice(&[0xE9, b'\n']);
    assert_eq!(inf::decode(&ansi).map_err(|p| p.line), Err(3));
    assert!(inf::decode(&[0xFE, 0xFF, 0, b'[']).is_err(), "UTF-16BE");
    let odd = [0xFF, 0xFE, b'[', 0, b'\n', 0, b'x'];
    assert_eq!(inf::decode(&odd).map_err(|p| p.line), Err(2));
    let surrogate = [0xFF, 0xFE, b'\n', 0, 0x00, 0xD8, b'x', 0];
    assert_eq!(inf::decode(&surrogate).map_err(|p| p.line), Err(2));
    let nul = b"[Version]\n\nSig\0nature\n";
    let problem = inf::decode(nul).expect_err("NUL");
    assert_eq!(problem.line, 3);
    assert!(problem.message.contains("NUL"));
}

#[test]
fn syntax_errors_are_reported_on_their_lines() {
    let text =
        "stray text\n[Version]\nKey = \"open\n[Broken\n[]\n= value\n[Ok] trailing\nName = %Undefined%\nBad = %open\n";
    let (_, found) = inf::parse(text);
    let lines: Vec<usize> = found.iter().map(|problem| problem.line).collect();
    assert_eq!(lines, [1, 3, 4, 5, 6, 7, 8, 9], "{found:#?}");
    assert!(found[0].message.contains("before the first section"));
    assert!(found[1].message.contains("closing '\"'"));
    assert!(found[2].message.contains("no closing ']'"));
    assert!(found[6].message.contains("%Undefined% is not defined"));
    assert!(found.iter().all(|problem| !problem.to_string().is_empty()));
}

/// One test per lint rule: the stamped INF with one line replaced (or deleted) fails with one
/// problem, on the replaced line or on the line of the `at:` text in the changed INF.
macro_rules! rule {
    ($name:ident, $find:expr, $replace:expr, $expected:expr) => {
        #[test]
        fn $name() {
            let text = mutated($find, $replace);
            assert_one(&text, line_of(&stamped_inf(Arch::X64), $find), $expected);
        }
    };
    ($name:ident, $find:expr, $replace:expr, $expected:expr, at: $line_text:expr) => {
        #[test]
        fn $name() {
            let text = mutated($find, $replace);
            assert_one(&text, line_of(&text, $line_text), $expected);
        }
    };
}

rule!(rule_signature, "Signature   =", "Signature = \"$Chicago$\"", "Signature is '$Chicago$'");
rule!(rule_class, "Class       =", "Class = Net", "NetService");
rule!(
    rule_class_guid,
    "ClassGUID",
    "ClassGUID = {4D36E972-E325-11CE-BFC1-08002BE10318}",
    "not the NetService class GUID"
);
rule!(rule_provider, "Provider    =", "Provider = \"\"", "Provider is empty");
rule!(rule_driver_ver_month, "DriverVer", "DriverVer = 13/01/2025,0.1.0.0", "month 13");
rule!(rule_driver_ver_day, "DriverVer", "DriverVer = 02/30/2025,0.1.0.0", "not a real MM/DD/YYYY date");
rule!(rule_driver_ver_version, "DriverVer", "DriverVer = 02/28/2025,0.1.0", "not w.x.y.z");
rule!(rule_driver_ver_missing, "DriverVer", "", "has no DriverVer", at: "[Version]");
rule!(rule_catalog_missing, "CatalogFile", "", "no CatalogFile", at: "[Version]");
rule!(rule_catalog_name, "CatalogFile", "CatalogFile = sub\\wanlayer.cat", "not a bare .cat file name");
rule!(rule_pnp_lockdown, "PnpLockdown", "PnpLockdown = 0", "PnpLockdown is '0'");
rule!(rule_characteristics, "Characteristics", "Characteristics = 0x4", "lacks NCF_LW_FILTER");
rule!(rule_characteristics_missing, "Characteristics", "", "has no Characteristics", at: "[Install]");
rule!(rule_instance_id, "NetCfgInstanceId", "NetCfgInstanceId = \"{1234}\"", "is not a {GUID}");
rule!(rule_filter_class, "FilterClass", "HKR, Ndi, FilterClass,, sniffer", "FilterClass 'sniffer'");
rule!(rule_filter_type, "FilterType", "HKR, Ndi, FilterType, 0x00010001, 3", "FilterType must be a REG_DWORD");
rule!(rule_filter_type_flags, "FilterType", "HKR, Ndi, FilterType,, 2", "FilterType must be a REG_DWORD");
rule!(rule_filter_run_type_missing, "FilterRunType", "", "HKR,Ndi,FilterRunType", at: "AddReg           =");
rule!(
    rule_upper_range,
    "UpperRange",
    "HKR, Ndi\\Interfaces, UpperRange, , \"ndis5\"",
    "UpperRange must be \"noupper\""
);
rule!(
    rule_lower_range,
    "LowerRange",
    "HKR, Ndi\\Interfaces, LowerRange, , \"ethernet\"",
    "LowerRange must be \"nolower\""
);
rule!(
    rule_media_types,
    "FilterMediaTypes",
    "HKR, Ndi\\Interfaces, FilterMediaTypes, , \"\"",
    "FilterMediaTypes must list"
);
rule!(rule_media_types_missing, "FilterMediaTypes", "", "FilterMediaTypes", at: "AddReg           =");
rule!(rule_co_services_type, "CoServices", "HKR, Ndi, CoServices,, \"wanlayer\"", "REG_MULTI_SZ");
rule!(rule_ndi_service, "HKR, Ndi, Service", "HKR, Ndi, Service,, \"other\"", "not the AddService name");
rule!(rule_help_text, "HKR, Ndi, HelpText", "", "HKR,Ndi,HelpText", at: "AddReg           =");
rule!(rule_service_binary, "ServiceBinary", "ServiceBinary = %12%\\wanlayer.sys", "not under %13%");
rule!(rule_service_binary_not_copied, "ServiceBinary", "ServiceBinary = %13%\\other.sys", "not copied");
rule!(rule_service_type, "ServiceType    =", "ServiceType = 2", "ServiceType is '2'");
rule!(rule_start_type, "StartType      =", "StartType = 3", "StartType is '3'");
rule!(rule_error_control, "ErrorControl   =", "ErrorControl = 0", "ErrorControl is '0'");
rule!(rule_load_order_group, "LoadOrderGroup", "LoadOrderGroup = PNP_TDI", "expected NDIS");
rule!(rule_del_service_flags, "DelService", "DelService = wanlayer", "lack 0x200");
rule!(rule_del_service_name, "DelService", "DelService = other, 0x200", "not the service 'wanlayer'");
rule!(rule_remove_section, "[Install.Remove.Services]", "[Install.Uninstall]", "no [Install.Remove.Services]", at: "[Install]");
rule!(rule_add_reg_section, "AddReg           =", "AddReg = Missing.AddReg", "[Missing.AddReg], which does not exist");
rule!(
    rule_copy_files_section,
    "CopyFiles        =",
    "CopyFiles = Missing.Copy",
    "[Missing.Copy], which does not exist"
);
rule!(
    rule_service_section,
    "AddService",
    "AddService = wanlayer,, Missing.Service",
    "[Missing.Service], which does not exist"
);
rule!(rule_models_section, "%Provider% = Models", "%Provider% = Models, NTx86", "[Models.NTx86] does not exist");
rule!(rule_install_section, "= Install,", "%FriendlyName% = Missing, wl_wanlayer", "[Missing] does not exist");
rule!(rule_source_disk, "wanlayer.sys = 1", "wanlayer.sys = 2", "disk '2' is not defined");
rule!(rule_source_file, "wanlayer.sys = 1", "other.sys = 1", "'wanlayer.sys' is copied but not listed", at: "wanlayer.sys,,,2");
rule!(rule_destination, "Install.CopyFiles.Driver =", "Install.CopyFiles.Driver = 12", "not 13 (the driver store)");
rule!(rule_undefined_string, "HelpText,", "HKR, Ndi, HelpText,, %NoSuchString%", "%NoSuchString% is not defined");

#[test]
fn whole_file_rules_report_line_zero() {
    let no_manufacturer = mutated("[Manufacturer]", "[NotManufacturer]");
    let found = problems(&no_manufacturer);
    assert!(found.iter().any(|p| p.line == 0 && p.message.contains("no [Manufacturer]")), "{found:#?}");
    assert!(problems("[Strings]\n").iter().any(|p| p.line == 0 && p.message.contains("no [Version]")));
    assert!(Problem::new(0, "x").to_string().starts_with("(whole file)"));
}

#[test]
fn identity_mismatches_are_reported_on_their_lines() {
    let text = mutated("NetCfgInstanceId", "NetCfgInstanceId = \"{00000000-0000-0000-0000-000000000000}\"");
    let (parsed, _) = inf::parse(&text);
    let found = lint::check_identity(&parsed, &identity());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].line, line_of(&text, "NetCfgInstanceId"));
    assert!(found[0].message.contains("UniqueName"));
    let other = super::super::identity::Identity { component_id: "other_id".into(), ..identity() };
    let (parsed, _) = inf::parse(&stamped_inf(Arch::X64));
    assert!(lint::check_identity(&parsed, &other).iter().any(|p| p.message.contains("other_id")));
    assert!(other.validate().is_ok());
    assert!(super::super::identity::Identity { filter_guid: "{bad}".into(), ..identity() }.validate().is_err());
    assert!(super::super::identity::Identity { friendly_name: "a \"quote\"".into(), ..identity() }.validate().is_err());
    assert!(super::super::identity::Identity { help_text: "caf\u{e9}".into(), ..identity() }.validate().is_err());
    assert!(super::super::identity::Identity { service_name: "wan layer".into(), ..identity() }.validate().is_err());
}

#[test]
fn package_directory_must_hold_every_named_file() {
    let text = stamped_inf(Arch::X64);
    let dir = TempDir::new("lint-dir");
    let found = lint_bytes(text.as_bytes(), Some(dir.path()));
    assert!(!found.is_empty());
    assert!(found.iter().all(|p| p.message.contains("'wanlayer.sys' is not in the package directory")), "{found:#?}");
    assert!(found.iter().any(|p| p.line == line_of(&text, "wanlayer.sys = 1")));
    std::fs::write(dir.path().join("WANLAYER.SYS"), b"MZ").expect("write");
    assert_eq!(lint_bytes(text.as_bytes(), Some(dir.path())), [], "names compare case-insensitively");
}

#[test]
fn garbage_never_panics_and_problems_name_real_lines() {
    let text = stamped_inf(Arch::Arm64);
    let bytes = text.as_bytes();
    let line_count = text.lines().count();
    for end in (0..bytes.len()).step_by(7) {
        for problem in lint_bytes(&bytes[..end], None) {
            assert!(problem.line <= line_count + 1, "{problem:?} for a {end}-byte prefix");
        }
    }
    const SYMBOLS: &[u8] = b"[]=,;\"%\\\n\r \tAz09";
    let mut noise = Noise(0x5EED);
    for round in 0..300 {
        let len = (noise.next() % 400) as usize;
        let mut garbage = noise.bytes(len);
        let prefix: &[u8] = match round % 4 {
            0 => &[0xFF, 0xFE],
            1 => &[0xEF, 0xBB, 0xBF],
            _ => &[],
        };
        garbage.splice(0..0, prefix.iter().copied());
        let _ = lint_bytes(&garbage, None);
        let mut flipped = bytes.to_vec();
        let at = (noise.next() as usize) % flipped.len();
        flipped[at] = noise.next() as u8;
        let _ = lint_bytes(&flipped, None);
        let symbols: Vec<u8> = (0..len).map(|_| SYMBOLS[(noise.next() % SYMBOLS.len() as u64) as usize]).collect();
        let _ = lint_bytes(&symbols, None);
    }
}

#[test]
fn lint_inf_command_reads_files_and_reports_problems() {
    let dir = TempDir::new("lint-cli");
    let good = dir.path().join("good.inf");
    std::fs::write(&good, stamped_inf(Arch::X64)).expect("write");
    assert_eq!(super::super::run_lint(&good, None), Ok(()));
    let bad = dir.path().join("bad.inf");
    std::fs::write(&bad, mutated("PnpLockdown", "PnpLockdown = 2")).expect("write");
    let error = super::super::run_lint(&bad, None).expect_err("a bad INF fails");
    assert!(
        error.contains(&format!("bad.inf:{}: PnpLockdown", line_of(&stamped_inf(Arch::X64), "PnpLockdown"))),
        "{error}"
    );
    let error = super::super::run_lint(&good, Some(dir.path())).expect_err("no wanlayer.sys");
    assert!(error.contains("not in the package directory"), "{error}");
    assert!(super::super::run_lint(&dir.path().join("missing.inf"), None).is_err());
}
