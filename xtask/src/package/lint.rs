//! The INF rules for an NDIS lightweight filter (facts §6), checked on a parsed [`Inf`]: what
//! InfVerif would say about the things that matter to this package, since InfVerif does not
//! run on Linux.
//!
//! | area | rule |
//! | --- | --- |
//! | `[Version]` | `Signature="$Windows NT$"`, `Class=NetService`, the NetService `ClassGUID`, a `Provider`, a well-formed `DriverVer` (`MM/DD/YYYY,w.x.y.z`), a `CatalogFile` naming a `.cat`, `PnpLockdown=1` |
//! | models | `[Manufacturer]` names models sections that exist (decorated `NT<arch>`), whose entries name an install section that exists and a component ID |
//! | install | `Characteristics` has NCF_LW_FILTER (0x40000); `NetCfgInstanceId` is a quoted GUID; every `AddReg` / `CopyFiles` section exists |
//! | `Ndi` | `Service` = the service, `CoServices` a REG_MULTI_SZ with it, `HelpText`, `FilterClass` one of the documented classes, `FilterType` and `FilterRunType` REG_DWORDs of 1 or 2, `Ndi\Interfaces` `UpperRange=noupper`, `LowerRange=nolower`, `FilterMediaTypes` |
//! | service | `<install>.Services` `AddService` names a section with `ServiceType=1`, `StartType=1`, `ErrorControl=1`, `ServiceBinary=%13%\<file>` (a file the install copies), `LoadOrderGroup=NDIS` |
//! | removal | `<install>.Remove.Services` has `DelService=<the service>,0x200` (stop it) |
//! | files | `[SourceDisksNames]` defines the disks `[SourceDisksFiles]` uses; every copied file is in `[SourceDisksFiles]`; every copy section has a destination, 13 (the driver store) for drivers |
//! | strings | every `%strkey%` is defined (reported by the parser) |
//!
//! [`check_identity`] adds the package's own facts (the GUID, component ID and service name are
//! the driver's), and [`check_package_dir`] that every file the INF names is in the package.

use super::identity::Identity;
use super::inf::{number, Entry, Inf, Problem, Section};
use std::collections::HashSet;
use std::path::Path;

/// `{4D36E974-E325-11CE-BFC1-08002BE10318}`: the NetService setup class.
pub const NET_SERVICE_CLASS_GUID: &str = "{4D36E974-E325-11CE-BFC1-08002BE10318}";
/// `NCF_LW_FILTER`.
pub const NCF_LW_FILTER: u64 = 0x4_0000;
/// `SPSVCINST_STOPSERVICE`.
const SPSVCINST_STOPSERVICE: u64 = 0x200;
/// `FLG_ADDREG_TYPE_MULTI_SZ`.
const FLG_ADDREG_TYPE_MULTI_SZ: u64 = 0x0001_0000;
/// `FLG_ADDREG_TYPE_DWORD`.
const FLG_ADDREG_TYPE_DWORD: u64 = 0x0001_0001;
/// The filter classes Windows defines for lightweight filters.
pub const FILTER_CLASSES: [&str; 9] = [
    "scheduler",
    "encryption",
    "compression",
    "vpn",
    "loadbalance",
    "failover",
    "diagnostic",
    "custom",
    "provider_address",
];

/// Every rule of the module doc that fails on `inf`, in line order.
pub fn lint(inf: &Inf) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_version(inf, &mut problems);
    let mut seen = HashSet::new();
    for install in check_models(inf, &mut problems) {
        if seen.insert(install.to_lowercase()) {
            if let Some(section) = inf.section(&install) {
                check_install(inf, section, &mut problems);
            }
        }
    }
    check_files(inf, &mut problems);
    problems.sort_by_key(|problem| problem.line);
    problems
}

/// A required `key` of `section`, or a problem on the section's header line.
fn required<'a>(section: &'a Section, key: &str, why: &str, problems: &mut Vec<Problem>) -> Option<&'a Entry> {
    let entry = section.get(key);
    if entry.is_none() {
        problems.push(Problem::new(section.line, format!("[{}] has no {key}: {why}", section.name)));
    }
    entry
}

fn check_version(inf: &Inf, problems: &mut Vec<Problem>) {
    let Some(version) = inf.section("Version") else {
        problems.push(Problem::new(0, "no [Version] section: this is not an INF Windows will read"));
        return;
    };
    if let Some(entry) = required(version, "Signature", "Windows reads no INF without it", problems) {
        if !entry.value(0).eq_ignore_ascii_case("$Windows NT$") {
            problems.push(Problem::new(entry.line, format!("Signature is '{}', not \"$Windows NT$\"", entry.value(0))));
        }
    }
    if let Some(entry) = required(version, "Class", "a filter installs in class NetService", problems) {
        if !entry.value(0).eq_ignore_ascii_case("NetService") {
            problems.push(Problem::new(
                entry.line,
                format!("Class is '{}': a lightweight filter is NetService", entry.value(0)),
            ));
        }
    }
    if let Some(entry) = required(version, "ClassGUID", "it must name the NetService class", problems) {
        if !entry.value(0).eq_ignore_ascii_case(NET_SERVICE_CLASS_GUID) {
            problems.push(Problem::new(
                entry.line,
                format!("ClassGUID {} is not the NetService class GUID {NET_SERVICE_CLASS_GUID}", entry.value(0)),
            ));
        }
    }
    if let Some(entry) = required(version, "Provider", "the driver package needs a provider", problems) {
        if entry.value(0).trim().is_empty() {
            problems.push(Problem::new(entry.line, "Provider is empty"));
        }
    }
    if let Some(entry) = required(version, "DriverVer", "stamp the INF (cargo xtask package or stampinf)", problems) {
        if let Err(message) = driver_ver(entry) {
            problems.push(Problem::new(entry.line, message));
        }
    }
    let catalog = version.entries.iter().find(|entry| {
        entry.key.as_deref().is_some_and(|key| {
            let key = key.to_ascii_lowercase();
            key == "catalogfile" || key.starts_with("catalogfile.nt")
        })
    });
    match catalog {
        None => problems.push(Problem::new(version.line, "[Version] has no CatalogFile: the package cannot be signed")),
        Some(entry) => {
            let file = entry.value(0);
            if !file.to_ascii_lowercase().ends_with(".cat") || file.contains(['\\', '/', ':']) {
                problems.push(Problem::new(entry.line, format!("CatalogFile '{file}' is not a bare .cat file name")));
            }
        }
    }
    if let Some(entry) = required(version, "PnpLockdown", "driver files must be protected from change", problems) {
        if number(entry.value(0)) != Some(1) {
            problems.push(Problem::new(entry.line, format!("PnpLockdown is '{}', not 1", entry.value(0))));
        }
    }
}

/// Checks `MM/DD/YYYY,w.x.y.z`.
fn driver_ver(entry: &Entry) -> Result<(), String> {
    let (date, version) = (entry.value(0), entry.value(1));
    let parts: Vec<&str> = date.split('/').collect();
    let parsed: Vec<Option<u32>> = parts
        .iter()
        .map(|part| {
            part.parse()
                .ok()
                .filter(|_| !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    let [Some(month), Some(day), Some(year)] = parsed.as_slice() else {
        return Err(format!("DriverVer date '{date}' is not MM/DD/YYYY"));
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("DriverVer date '{date}' has month {month}")),
    };
    if *day == 0 || *day > days || parts[2].len() != 4 {
        return Err(format!("DriverVer date '{date}' is not a real MM/DD/YYYY date"));
    }
    let fields: Vec<&str> = version.split('.').collect();
    if fields.len() != 4 || !fields.iter().all(|field| field.parse::<u16>().is_ok() && !field.starts_with('+')) {
        return Err(format!("DriverVer version '{version}' is not w.x.y.z with each part 0..65535"));
    }
    Ok(())
}

/// Checks the models sections; returns the install sections they name.
fn check_models(inf: &Inf, problems: &mut Vec<Problem>) -> Vec<String> {
    let mut installs = Vec::new();
    let Some(manufacturer) = inf.section("Manufacturer") else {
        problems.push(Problem::new(0, "no [Manufacturer] section: the INF lists no component to install"));
        return installs;
    };
    for entry in &manufacturer.entries {
        let base = entry.value(0);
        let decorations: Vec<&str> =
            entry.values.iter().skip(1).map(String::as_str).filter(|d| !d.is_empty()).collect();
        let names: Vec<String> = if decorations.is_empty() {
            vec![base.to_string()]
        } else {
            decorations.iter().map(|decoration| format!("{base}.{decoration}")).collect()
        };
        for decoration in &decorations {
            if !decoration.to_ascii_lowercase().starts_with("nt") {
                problems.push(Problem::new(entry.line, format!("target '{decoration}' is not an NT<arch> decoration")));
            }
        }
        for name in names {
            let Some(section) = inf.section(&name) else {
                problems.push(Problem::new(entry.line, format!("models section [{name}] does not exist")));
                continue;
            };
            for model in &section.entries {
                let install = model.value(0);
                if install.is_empty() || model.value(1).is_empty() {
                    problems.push(Problem::new(
                        model.line,
                        "a model needs '<description> = <install section>, <component ID>'",
                    ));
                    continue;
                }
                let decorated = decorations.iter().find_map(|d| inf.section(&format!("{install}.{d}")));
                match decorated.or_else(|| inf.section(install)) {
                    Some(found) => installs.push(found.name.clone()),
                    None => {
                        problems.push(Problem::new(model.line, format!("install section [{install}] does not exist")))
                    }
                }
            }
        }
    }
    installs
}

/// One `HKR` value an `AddReg` section writes.
struct RegistryValue<'a> {
    subkey: String,
    name: String,
    flags: u64,
    entry: &'a Entry,
}

impl RegistryValue<'_> {
    fn data(&self) -> &[String] {
        self.entry.values.get(4..).unwrap_or_default()
    }
}

/// The sections a directive (`AddReg = a, b`) names, checking that each exists.
fn referenced<'a>(inf: &'a Inf, entry: &Entry, problems: &mut Vec<Problem>) -> Vec<&'a Section> {
    let mut found = Vec::new();
    for name in entry.values.iter().map(|name| name.trim()).filter(|name| !name.is_empty() && !name.starts_with('@')) {
        match inf.section(name) {
            Some(section) => found.push(section),
            None => problems.push(Problem::new(
                entry.line,
                format!("{} names section [{name}], which does not exist", entry.key.as_deref().unwrap_or("directive")),
            )),
        }
    }
    found
}

fn registry_values<'a>(inf: &'a Inf, section: &'a Section, problems: &mut Vec<Problem>) -> Vec<RegistryValue<'a>> {
    let mut values = Vec::new();
    for directive in section.all("AddReg") {
        for add_reg in referenced(inf, directive, problems) {
            for entry in add_reg.entries.iter().filter(|entry| entry.key.is_none()) {
                if !entry.value(0).eq_ignore_ascii_case("HKR") {
                    continue;
                }
                values.push(RegistryValue {
                    subkey: entry.value(1).to_ascii_lowercase(),
                    name: entry.value(2).to_ascii_lowercase(),
                    flags: number(entry.value(3)).unwrap_or(0),
                    entry,
                });
            }
        }
    }
    values
}

fn check_install(inf: &Inf, install: &Section, problems: &mut Vec<Problem>) {
    if let Some(entry) =
        required(install, "Characteristics", "a lightweight filter sets NCF_LW_FILTER (0x40000)", problems)
    {
        match number(entry.value(0)) {
            Some(value) if value & NCF_LW_FILTER != 0 => {}
            _ => problems.push(Problem::new(
                entry.line,
                format!("Characteristics '{}' lacks NCF_LW_FILTER (0x40000): NDIS would not load it as a lightweight filter", entry.value(0)),
            )),
        }
    }
    if let Some(entry) = required(install, "NetCfgInstanceId", "it is the filter's UniqueName", problems) {
        if !is_guid(entry.value(0)) {
            problems.push(Problem::new(entry.line, format!("NetCfgInstanceId '{}' is not a {{GUID}}", entry.value(0))));
        }
    }
    let before = problems.len();
    let copied = copied_files(inf, install, problems);
    let copies_known = problems.len() == before;
    let registry = registry_values(inf, install, problems);
    let registry_known = problems.len() == before;
    let registry_line = install.get("AddReg").map_or(install.line, |entry| entry.line);
    let service = check_services(inf, install, copies_known.then_some(copied.as_slice()), problems);
    if registry_known {
        check_ndi(&registry, registry_line, service.as_deref(), problems);
    }
    if install.get("AddReg").is_none() {
        problems.push(Problem::new(
            install.line,
            format!("[{}] has no AddReg: the Ndi keys are never written", install.name),
        ));
    }
}

/// The source file names the install section's `CopyFiles` copy, checking the sections exist.
fn copied_files(inf: &Inf, install: &Section, problems: &mut Vec<Problem>) -> Vec<String> {
    let mut files = Vec::new();
    for directive in install.all("CopyFiles") {
        files.extend(directive.values.iter().filter_map(|value| value.trim().strip_prefix('@')).map(str::to_string));
        for section in referenced(inf, directive, problems) {
            files.extend(section.entries.iter().map(|entry| entry.value(0).to_string()));
        }
    }
    files
}

fn check_ndi(registry: &[RegistryValue<'_>], line: usize, service: Option<&str>, problems: &mut Vec<Problem>) {
    let find = |subkey: &str, name: &str| registry.iter().find(|value| value.subkey == subkey && value.name == name);
    let missing = |subkey: &str, name: &str, why: &str| {
        Problem::new(line, format!("the AddReg sections write no HKR,{subkey},{name}: {why}"))
    };
    match find("ndi", "service") {
        None => problems.push(missing("Ndi", "Service", "NetCfg would not know the filter's driver service")),
        Some(value) => {
            if let Some(service) =
                service.filter(|service| !value.data().first().is_some_and(|data| data.eq_ignore_ascii_case(service)))
            {
                problems.push(Problem::new(
                    value.entry.line,
                    format!("Ndi Service is not the AddService name '{service}'"),
                ));
            }
        }
    }
    match find("ndi", "coservices") {
        None => problems.push(missing("Ndi", "CoServices", "the filter service would not start with the component")),
        Some(value) => {
            if value.flags & FLG_ADDREG_TYPE_DWORD != FLG_ADDREG_TYPE_MULTI_SZ {
                problems.push(Problem::new(value.entry.line, "Ndi CoServices must be REG_MULTI_SZ (flags 0x00010000)"));
            }
            if let Some(service) =
                service.filter(|service| !value.data().iter().any(|data| data.eq_ignore_ascii_case(service)))
            {
                problems.push(Problem::new(
                    value.entry.line,
                    format!("Ndi CoServices does not list the service '{service}'"),
                ));
            }
        }
    }
    match find("ndi", "helptext") {
        Some(value) if value.data().iter().any(|data| !data.trim().is_empty()) => {}
        Some(value) => problems.push(Problem::new(value.entry.line, "Ndi HelpText is empty")),
        None => problems.push(missing("Ndi", "HelpText", "Windows shows it for the component")),
    }
    match find("ndi", "filterclass") {
        Some(value)
            if value
                .data()
                .first()
                .is_some_and(|class| FILTER_CLASSES.contains(&class.to_ascii_lowercase().as_str())) => {}
        Some(value) => problems.push(Problem::new(
            value.entry.line,
            format!("FilterClass '{}' is not one of {}", value.data().join(","), FILTER_CLASSES.join(", ")),
        )),
        None => problems.push(missing("Ndi", "FilterClass", "it decides where the filter sits in the stack")),
    }
    for (name, display, meaning) in [
        ("filtertype", "FilterType", "1 monitoring, 2 modifying"),
        ("filterruntype", "FilterRunType", "1 mandatory, 2 optional"),
    ] {
        match find("ndi", name) {
            None => problems.push(missing("Ndi", display, meaning)),
            Some(value) => {
                let data = value.data().first().and_then(|data| number(data));
                if value.flags != FLG_ADDREG_TYPE_DWORD || !matches!(data, Some(1 | 2)) {
                    problems.push(Problem::new(
                        value.entry.line,
                        format!("{display} must be a REG_DWORD (flags 0x00010001) of 1 or 2 ({meaning})"),
                    ));
                }
            }
        }
    }
    for (name, display, expected) in [("upperrange", "UpperRange", "noupper"), ("lowerrange", "LowerRange", "nolower")]
    {
        match find("ndi\\interfaces", name) {
            None => problems.push(missing("Ndi\\Interfaces", display, "a filter binds through FilterMediaTypes only")),
            Some(value) if value.data().first().is_some_and(|data| data.eq_ignore_ascii_case(expected)) => {}
            Some(value) => {
                problems.push(Problem::new(value.entry.line, format!("{display} must be \"{expected}\" for a filter")))
            }
        }
    }
    match find("ndi\\interfaces", "filtermediatypes") {
        None => problems.push(missing("Ndi\\Interfaces", "FilterMediaTypes", "the filter would bind to no adapter")),
        Some(value) => {
            let types: Vec<&str> = value.data().iter().flat_map(|data| data.split(',')).map(str::trim).collect();
            if types.iter().all(|kind| kind.is_empty()) || types.iter().any(|kind| kind.contains(char::is_whitespace)) {
                problems.push(Problem::new(
                    value.entry.line,
                    "FilterMediaTypes must list media types, e.g. \"ethernet, wan, ppip\"",
                ));
            }
        }
    }
}

/// Checks `<install>.Services` and `<install>.Remove.Services`; returns the service name.
/// `copied` is `None` when a missing `CopyFiles` section leaves the copied files unknown.
fn check_services(
    inf: &Inf,
    install: &Section,
    copied: Option<&[String]>,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let services_name = format!("{}.Services", install.name);
    let Some(services) = inf.section(&services_name) else {
        problems.push(Problem::new(
            install.line,
            format!("no [{services_name}] section: the driver service is never created"),
        ));
        return None;
    };
    let add = required(services, "AddService", "the driver service is never created", problems)?;
    let service = add.value(0).to_string();
    match inf.section(add.value(2)) {
        None => problems
            .push(Problem::new(add.line, format!("AddService names section [{}], which does not exist", add.value(2)))),
        Some(section) => check_service_section(section, copied, problems),
    }
    let remove_name = format!("{}.Remove.Services", install.name);
    match inf.section(&remove_name) {
        None => problems.push(Problem::new(
            install.line,
            format!("no [{remove_name}] section: uninstalling would leave the driver service behind"),
        )),
        Some(remove) => {
            if let Some(delete) =
                required(remove, "DelService", "uninstalling would leave the driver service", problems)
            {
                if !delete.value(0).eq_ignore_ascii_case(&service) {
                    problems.push(Problem::new(
                        delete.line,
                        format!("DelService names '{}', not the service '{service}'", delete.value(0)),
                    ));
                }
                if number(delete.value(1)).is_none_or(|flags| flags & SPSVCINST_STOPSERVICE == 0) {
                    problems.push(Problem::new(
                        delete.line,
                        "DelService flags lack 0x200 (SPSVCINST_STOPSERVICE): the driver keeps running",
                    ));
                }
            }
        }
    }
    Some(service)
}

fn check_service_section(section: &Section, copied: Option<&[String]>, problems: &mut Vec<Problem>) {
    for (key, expected, meaning) in [
        ("ServiceType", 1, "SERVICE_KERNEL_DRIVER"),
        ("StartType", 1, "SERVICE_SYSTEM_START: NDIS filters load at boot"),
        ("ErrorControl", 1, "SERVICE_ERROR_NORMAL"),
    ] {
        if let Some(entry) = required(section, key, meaning, problems) {
            if number(entry.value(0)) != Some(expected) {
                problems.push(Problem::new(
                    entry.line,
                    format!("{key} is '{}', expected {expected} ({meaning})", entry.value(0)),
                ));
            }
        }
    }
    if let Some(entry) = required(section, "LoadOrderGroup", "NDIS filters load in group NDIS", problems) {
        if !entry.value(0).eq_ignore_ascii_case("NDIS") {
            problems.push(Problem::new(entry.line, format!("LoadOrderGroup is '{}', expected NDIS", entry.value(0))));
        }
    }
    if let Some(entry) = required(section, "ServiceBinary", "the service has no driver file", problems) {
        match entry.value(0).strip_prefix("%13%\\") {
            None => problems.push(Problem::new(
                entry.line,
                format!("ServiceBinary '{}' is not under %13%\\ (run from the driver store)", entry.value(0)),
            )),
            Some(file)
                if copied.is_some_and(|copied| !copied.iter().any(|copied| copied.eq_ignore_ascii_case(file))) =>
            {
                problems.push(Problem::new(
                    entry.line,
                    format!("ServiceBinary '{file}' is not copied by the install section's CopyFiles"),
                ))
            }
            Some(_) => {}
        }
    }
}

/// The sections `[name]`, `[name.amd64]`, ... that decorate `name` by platform.
fn platform_sections<'a>(inf: &'a Inf, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
    inf.sections.iter().filter(move |section| {
        let lower = section.name.to_ascii_lowercase();
        let base = name.to_ascii_lowercase();
        lower == base || lower.strip_prefix(&base).is_some_and(|rest| rest.starts_with('.'))
    })
}

fn check_files(inf: &Inf, problems: &mut Vec<Problem>) {
    let disks: Vec<&Entry> = platform_sections(inf, "SourceDisksNames").flat_map(|section| &section.entries).collect();
    if disks.is_empty() {
        problems.push(Problem::new(0, "no [SourceDisksNames] entries: the package's files have no source"));
    }
    let sources: Vec<&Entry> =
        platform_sections(inf, "SourceDisksFiles").flat_map(|section| &section.entries).collect();
    for entry in &sources {
        if !disks.iter().any(|disk| disk.key.as_deref() == Some(entry.value(0))) {
            problems.push(Problem::new(
                entry.line,
                format!("disk '{}' is not defined in [SourceDisksNames]", entry.value(0)),
            ));
        }
    }
    let destinations = inf.section("DestinationDirs");
    if destinations.is_none() {
        problems.push(Problem::new(0, "no [DestinationDirs] section: copied files have no destination"));
    }
    let default = destinations.and_then(|section| section.get("DefaultDestDir"));
    let mut copy_sections: Vec<&Section> = Vec::new();
    for section in &inf.sections {
        for directive in section.all("CopyFiles") {
            for name in directive.values.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
                if let Some(file) = name.strip_prefix('@') {
                    check_source(file, directive.line, &sources, problems);
                } else if let Some(copy) = inf.section(name) {
                    if !copy_sections.iter().any(|known| std::ptr::eq(*known, copy)) {
                        copy_sections.push(copy);
                    }
                }
            }
        }
    }
    for copy in copy_sections {
        let destination = destinations.and_then(|section| section.get(&copy.name)).or(default);
        for entry in &copy.entries {
            let source = if entry.value(1).is_empty() { entry.value(0) } else { entry.value(1) };
            check_source(source, entry.line, &sources, problems);
            let is_driver = entry.value(0).to_ascii_lowercase().ends_with(".sys");
            match destination {
                None => problems.push(Problem::new(
                    entry.line,
                    format!("[DestinationDirs] gives no destination for [{}] and no DefaultDestDir", copy.name),
                )),
                Some(directory) if is_driver && number(directory.value(0)) != Some(13) => problems.push(Problem::new(
                    directory.line,
                    format!(
                        "driver files of [{}] go to DIRID {}, not 13 (the driver store)",
                        copy.name,
                        directory.value(0)
                    ),
                )),
                Some(_) => {}
            }
        }
    }
}

fn check_source(file: &str, line: usize, sources: &[&Entry], problems: &mut Vec<Problem>) {
    if !sources.iter().any(|source| source.key.as_deref().is_some_and(|key| key.eq_ignore_ascii_case(file))) {
        problems.push(Problem::new(line, format!("'{file}' is copied but not listed in [SourceDisksFiles]")));
    }
}

/// True for `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (hexadecimal digits).
pub fn is_guid(text: &str) -> bool {
    let Some(inner) = text.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) else { return false };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks that `inf` installs this driver: its GUID, component ID, service and file names.
pub fn check_identity(inf: &Inf, identity: &Identity) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut component_found = false;
    for section in &inf.sections {
        for entry in &section.entries {
            if entry.has_key("NetCfgInstanceId") && !entry.value(0).eq_ignore_ascii_case(&identity.filter_guid) {
                problems.push(Problem::new(
                    entry.line,
                    format!(
                        "NetCfgInstanceId {} is not the driver's UniqueName {}",
                        entry.value(0),
                        identity.filter_guid
                    ),
                ));
            }
            if entry.has_key("AddService") && !entry.value(0).eq_ignore_ascii_case(&identity.service_name) {
                problems.push(Problem::new(
                    entry.line,
                    format!(
                        "AddService '{}' is not the driver's ServiceName '{}'",
                        entry.value(0),
                        identity.service_name
                    ),
                ));
            }
            if entry.has_key("ServiceBinary")
                && !entry.value(0).eq_ignore_ascii_case(&format!("%13%\\{}", identity.driver_file()))
            {
                problems
                    .push(Problem::new(entry.line, format!("ServiceBinary is not %13%\\{}", identity.driver_file())));
            }
            if entry.has_key("CatalogFile") && !entry.value(0).eq_ignore_ascii_case(&identity.catalog_file()) {
                problems.push(Problem::new(entry.line, format!("CatalogFile is not {}", identity.catalog_file())));
            }
            component_found |= section.name.to_ascii_lowercase().contains(".nt")
                && entry.values.iter().skip(1).any(|id| id.eq_ignore_ascii_case(&identity.component_id));
        }
    }
    if !component_found {
        problems
            .push(Problem::new(0, format!("no models section installs the component ID '{}'", identity.component_id)));
    }
    problems.sort_by_key(|problem| problem.line);
    problems
}

/// Checks that every file the INF names in `[SourceDisksFiles]` and `CopyFiles` is in `dir`.
pub fn check_package_dir(inf: &Inf, dir: &Path) -> Vec<Problem> {
    let present: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).map(|entry| entry.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut named: Vec<(&str, usize)> = Vec::new();
    for section in platform_sections(inf, "SourceDisksFiles") {
        named.extend(section.entries.iter().filter_map(|entry| Some((entry.key.as_deref()?, entry.line))));
    }
    for section in &inf.sections {
        for directive in section.all("CopyFiles") {
            named.extend(
                directive
                    .values
                    .iter()
                    .filter_map(|value| value.trim().strip_prefix('@'))
                    .map(|file| (file, directive.line)),
            );
            for copy in directive.values.iter().filter_map(|name| inf.section(name.trim())) {
                named.extend(copy.entries.iter().map(|entry| {
                    (if entry.value(1).is_empty() { entry.value(0) } else { entry.value(1) }, entry.line)
                }));
            }
        }
    }
    for (file, line) in named {
        if !present.iter().any(|name| name.eq_ignore_ascii_case(file)) {
            problems.push(Problem::new(line, format!("'{file}' is not in the package directory {}", dir.display())));
        }
    }
    problems.sort_by_key(|problem| problem.line);
    problems.dedup();
    problems
}
