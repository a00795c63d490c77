//! The PowerShell scripts of a package, as `cargo xtask package` writes them (stamped, CRLF),
//! parsed with the tree-sitter PowerShell grammar — any syntax error fails — and checked against
//! what the package holds:
//!
//! * every file a script's strings name (`wanlayer-test.cer`, `"$ServiceName.inf"`,
//!   `.\uninstall-wlclamp.ps1`, `RUNBOOK.md`, ...; the script's own `$Name = '...'` assignments
//!   substituted) is in the package directory; paths elsewhere (`System32\drivers\...`) are not
//!   the package's and are left alone;
//! * the filter's names are the INF's: `$ComponentId` is the hardware id of its model,
//!   `$ServiceName` and the vendor scripts' `$FilterService` its `AddService` name, verifier's
//!   `$Driver` its `ServiceBinary`;
//! * the native programs a script runs with `&` are the Windows tools the runbook names (`sc`
//!   alone would be PowerShell's `Set-Content`).
//!
//! The grammar is stricter than PowerShell in one place the scripts met: a `switch` whose clauses
//! share one line without `;` is refused, so the scripts write one clause a line.

use std::collections::BTreeMap;
use std::path::Path;

use tree_sitter::{Node, Parser, Tree};

use super::super::catalog::Version;
use super::super::{inf, package_images};
use super::signing::{options, signing, write_images};
use super::{identity, TempDir};
use crate::image::fixture::{Fixture, Thunk};
use crate::image::Arch;

/// The native programs the scripts may run (`& program ...`).
const WINDOWS_TOOLS: [&str; 5] = ["netcfg", "sc.exe", "bcdedit", "verifier", "pnputil"];

/// The extensions of the files a package holds, which a script's strings may name.
const PACKAGE_EXTENSIONS: [&str; 6] = ["inf", "sys", "cat", "cer", "ps1", "md"];

/// `text` parsed as PowerShell.
fn parse(text: &str) -> Tree {
    let mut parser = Parser::new();
    parser.set_language(&tree_sitter_powershell::LANGUAGE.into()).expect("the grammar loads");
    parser.parse(text, None).expect("the parser returns a tree")
}

/// Every node of `tree`, depth first.
fn nodes(tree: &Tree) -> Vec<Node<'_>> {
    let mut all = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        all.push(node);
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    all
}

fn text_of<'t>(node: Node<'_>, text: &'t str) -> &'t str {
    text.get(node.byte_range()).unwrap_or("")
}

/// The syntax errors of `text`: `line:column: what`, with the line.
fn syntax_errors(text: &str) -> Vec<String> {
    let tree = parse(text);
    nodes(&tree)
        .into_iter()
        .filter(|node| node.is_error() || node.is_missing())
        .map(|node| {
            let at = node.start_position();
            let what = if node.is_missing() { format!("missing {}", node.kind()) } else { "syntax error".into() };
            format!("{}:{}: {what}: {}", at.row + 1, at.column + 1, text.lines().nth(at.row).unwrap_or("").trim())
        })
        .collect()
}

/// What a script says, read from its syntax tree.
#[derive(Debug, Default)]
struct Script {
    /// `$Name = 'literal'` assignments, by name.
    constants: BTreeMap<String, String>,
    /// The contents of its string literals, quotes removed.
    strings: Vec<String>,
    /// The programs it runs with `&`.
    native_commands: Vec<String>,
}

fn read_script(text: &str) -> Script {
    let tree = parse(text);
    let mut script = Script::default();
    for node in nodes(&tree) {
        match node.kind() {
            "assignment_expression" => {
                let (Some(left), Some(value)) = (node.child(0), node.child_by_field_name("value")) else { continue };
                let (name, value) = (text_of(left, text).trim(), text_of(value, text).trim());
                let literal = value.strip_prefix('\'').and_then(|rest| rest.strip_suffix('\'')).filter(|inner| !inner.contains('\''));
                if let (Some(name), Some(literal)) = (name.strip_prefix('$'), literal) {
                    script.constants.insert(name.to_owned(), literal.to_owned());
                }
            }
            "string_literal" => {
                let quoted = text_of(node, text);
                let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or("");
                script.strings.push(inner.to_owned());
            }
            "command" if node.child(0).is_some_and(|first| first.kind() == "command_invokation_operator") => {
                if let Some(name) = node.child_by_field_name("command_name") {
                    script.native_commands.push(text_of(name, text).to_owned());
                }
            }
            _ => {}
        }
    }
    script
}

impl Script {
    /// `text` with the script's constants put in for `$Name` and `${Name}`.
    fn substitute(&self, text: &str) -> String {
        self.constants
            .iter()
            .fold(text.to_owned(), |text, (name, value)| text.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value))
    }

    /// The package files its strings name: a word ending in a package extension, optionally
    /// after `.\`, with no other path.
    fn package_files(&self) -> Vec<String> {
        let mut files = Vec::new();
        for string in &self.strings {
            let text = self.substitute(string);
            for word in text.split(|c: char| c.is_whitespace() || "'\"()".contains(c)) {
                let word = word.trim_end_matches(['.', ',', ';', ':']);
                let name = word.strip_prefix(".\\").unwrap_or(word);
                let is_file = name.rsplit_once('.').is_some_and(|(stem, extension)| {
                    !stem.is_empty() && PACKAGE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
                });
                if is_file && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                    files.push(name.to_owned());
                }
            }
        }
        files.sort();
        files.dedup();
        files
    }
}

/// The problems of the script `name` in the package directory `dir`: syntax errors, files it
/// names that the package does not hold, native programs that are not the Windows tools.
fn script_problems(dir: &Path, name: &str, text: &str) -> Vec<String> {
    let mut problems: Vec<String> = syntax_errors(text).into_iter().map(|error| format!("{name}:{error}")).collect();
    let script = read_script(text);
    for file in script.package_files() {
        if !dir.join(&file).is_file() {
            problems.push(format!("{name}: names {file}, which the package does not hold"));
        }
    }
    for command in &script.native_commands {
        if !WINDOWS_TOOLS.contains(&command.as_str()) {
            problems.push(format!("{name}: runs '{command}', not one of {WINDOWS_TOOLS:?}"));
        }
    }
    problems
}

/// A vendor image for `arch` with the imports of the SDK's kernel module.
fn vendor_image(arch: Arch) -> Vec<u8> {
    let base = if arch == Arch::Arm64 { Fixture::arm64() } else { Fixture::driver() };
    let imports = vec![("ntoskrnl.exe", vec![Thunk::Name("IoGetDeviceObjectPointer"), Thunk::Name("KeSetTimerEx")])];
    Fixture { imports, ..base }.build()
}

#[test]
fn the_package_scripts_parse_and_name_only_what_the_package_holds() {
    let work = TempDir::new("scripts");
    let images = write_images(work.path());
    let vendors: Vec<_> = [(Arch::X64, "v64.sys"), (Arch::Arm64, "va64.sys")]
        .into_iter()
        .map(|(arch, name)| {
            let path = work.path().join(name);
            std::fs::write(&path, vendor_image(arch)).expect("write the vendor image");
            path
        })
        .collect();
    let options = super::super::Options { vendor_images: vendors, ..options(vec![Arch::X64, Arch::Arm64], Version::V1) };
    let packages = package_images(&identity(), &images, &options, &signing(), &work.path().join("out")).expect("the fixtures package");
    let expected_scripts = ["install-wlclamp.ps1", "install.ps1", "uninstall-wlclamp.ps1", "uninstall.ps1", "verifier.ps1"];
    for package in &packages {
        let dir = &package.dir;
        let inf_text = std::fs::read_to_string(dir.join("wanlayer.inf")).expect("the stamped INF");
        let (parsed, inf_problems) = inf::parse(&inf_text);
        assert!(inf_problems.is_empty(), "{inf_problems:?}");
        let service = parsed.section("Install.Services").and_then(|section| section.get("AddService")).expect("AddService").value(0);
        let binary = parsed.section("Service.Install").and_then(|section| section.get("ServiceBinary")).expect("ServiceBinary").value(0);
        let binary = binary.rsplit('\\').next().unwrap_or(binary);
        let model = parsed.sections.iter().find(|section| section.name.starts_with("Models.")).expect("a models section");
        let component_id = model.entries.first().expect("a model").value(1);

        let mut scripts: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("the package directory")
            .map(|entry| entry.expect("an entry").path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "ps1"))
            .map(|path| {
                let name = path.file_name().and_then(|name| name.to_str()).expect("a UTF-8 name").to_owned();
                (name, std::fs::read_to_string(&path).expect("the script"))
            })
            .collect();
        scripts.sort();
        assert_eq!(scripts.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), expected_scripts, "{}", package.arch);

        let mut named = 0;
        for (name, text) in &scripts {
            let problems = script_problems(dir, name, text);
            assert!(problems.is_empty(), "{}:\n  {}", package.arch, problems.join("\n  "));
            let script = read_script(text);
            named += script.package_files().len();
            let constant = |key: &str| script.constants.get(key).map(String::as_str);
            if let Some(filter) = constant("ServiceName").or(constant("FilterService")) {
                assert_eq!(filter, service, "{name}: the filter's service is the INF's AddService");
            }
            if let Some(id) = constant("ComponentId") {
                assert_eq!(id, component_id, "{name}: the component id is the INF model's");
            }
            if let Some(driver) = constant("Driver") {
                assert_eq!(driver, binary, "{name}: Driver Verifier watches the INF's ServiceBinary");
            }
        }
        let install = read_script(&scripts[1].1);
        assert_eq!(
            install.package_files(),
            ["RUNBOOK.md", "verifier.ps1", "wanlayer-test.cer", "wanlayer.cat", "wanlayer.inf", "wanlayer.sys"]
        );
        assert!(install.native_commands.iter().any(|command| command == "netcfg"));
        assert!(named >= 12, "{}: the scripts name {named} package files", package.arch);
    }
}

#[test]
fn a_syntax_error_an_unknown_file_and_a_bare_sc_are_found() {
    let dir = TempDir::new("scripts-broken");
    std::fs::write(dir.path().join("wanlayer.inf"), "").expect("a file");
    let good = "$ServiceName = 'wanlayer'\r\n$Inf = Join-Path $PSScriptRoot \"$ServiceName.inf\"\r\n& netcfg -v -l $Inf\r\n";
    assert_eq!(script_problems(dir.path(), "good.ps1", good), Vec::<String>::new());
    let unclosed = "if ($true) {\r\n    Write-Host 'x'\r\n";
    assert!(script_problems(dir.path(), "unclosed.ps1", unclosed).iter().any(|problem| problem.starts_with("unclosed.ps1:")));
    let unterminated = "Write-Host \"no end\r\n";
    assert!(!script_problems(dir.path(), "string.ps1", unterminated).is_empty());
    let missing = "$ServiceName = 'wanlayer'\r\nWrite-Host \"run .\\install-$ServiceName.ps1 first\"\r\n";
    assert_eq!(
        script_problems(dir.path(), "missing.ps1", missing),
        ["missing.ps1: names install-wanlayer.ps1, which the package does not hold"]
    );
    let bare_sc = "& sc query wanlayer\r\n";
    assert_eq!(script_problems(dir.path(), "sc.ps1", bare_sc).len(), 1, "sc is PowerShell's Set-Content");
    let elsewhere = "$Target = Join-Path $env:SystemRoot \"System32\\drivers\\wlclamp.sys\"\r\n";
    assert!(script_problems(dir.path(), "elsewhere.ps1", elsewhere).is_empty(), "a path outside the package is not checked");
}
