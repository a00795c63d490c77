//! `cargo xtask package` and `cargo xtask lint-inf`: the driver package — INF, catalog,
//! signatures and the Windows-side scripts — built on Linux with no Windows tool.
//!
//! `package` takes the built `wanlayer.sys` of each architecture ([`driver_images`], the
//! integration point with the driver build) and writes `target/package/<arch>/`:
//!
//! 1. the INF, stamped from `inf/wanlayer.inx` ([`stamp`]) and linted ([`lint`]) — a failing
//!    rule stops the package;
//! 2. `wanlayer.sys` with an embedded Authenticode signature ([`pe`], [`authenticode`]);
//! 3. `wanlayer.cat`, a signed v1 (or `--catalog-version 2`) catalog of the `.sys` and the
//!    `.inf` ([`catalog`]);
//! 4. `wanlayer-test.cer`, the signing certificate ([`certificate`]), and the scripts;
//! 5. beside them, the SDK's sample vendor driver ([`vendor`]): `wlclamp.sys` signed, its own
//!    catalog `wlclamp.cat`, and the scripts that install it as a plain kernel service;
//!
//! then reads it all back and verifies it ([`verify_package`], [`vendor::verify_vendor`]) and
//! prints a manifest. On a Windows host with the WDK, steps 1 to 3 are done by stampinf,
//! infverif, signtool and inf2cat instead ([`wdk`]), and the result is verified the same way.

mod asn1;
mod authenticode;
mod catalog;
pub mod certificate;
mod identity;
mod inf;
mod lint;
mod pe;
mod stamp;
mod vendor;
mod wdk;

#[cfg(test)]
mod tests;

use crate::image::{self, Arch};
use crate::test::workspace_root;
use authenticode::{oid, Subject};
pub use catalog::Version as CatalogVersion;
use certificate::Signer;
use identity::Identity;
use inf::Problem;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The package's certificate file, which the test machine imports.
const CERTIFICATE_FILE: &str = "wanlayer-test.cer";

/// What `cargo xtask package` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The architectures to package.
    pub arches: Vec<Arch>,
    /// A PKCS #12 file to sign with, instead of the test certificate.
    pub pfx: Option<PathBuf>,
    /// The password of `pfx`.
    pub pfx_password: String,
    /// The catalog format.
    pub catalog_version: catalog::Version,
    /// Built images to package instead of the driver build's.
    pub images: Vec<PathBuf>,
    /// Built vendor images to package beside them (at most one per architecture).
    pub vendor_images: Vec<PathBuf>,
    /// Use the WDK's tools when on a Windows host that has them.
    pub use_wdk: bool,
}

impl Default for Options {
    /// Every architecture, built here, signed with the test certificate (or `--pfx` with
    /// `$WANLAYER_PFX_PASSWORD`), a v1 catalog, the WDK's tools when present.
    fn default() -> Self {
        Self {
            arches: Arch::ALL.to_vec(),
            pfx: None,
            pfx_password: std::env::var("WANLAYER_PFX_PASSWORD").unwrap_or_default(),
            catalog_version: catalog::Version::V1,
            images: Vec::new(),
            vendor_images: Vec::new(),
            use_wdk: true,
        }
    }
}

/// Where packages go: `<workspace>/target/package`.
pub fn package_root() -> PathBuf {
    workspace_root().join("target").join("package")
}

/// Builds `wanlayer.sys` and the sample vendor driver (release) for each of `arches` and gives
/// back the verified images.
///
/// # Errors
///
/// When the build or the image verification fails.
pub fn driver_images(arches: &[Arch]) -> Result<Vec<crate::build::Built>, String> {
    crate::build::build(arches, true)
}

/// Seconds since 1970 now.
fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// The time stamped into the INF and the catalog: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else now.
fn build_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|text| text.trim().parse().ok()).unwrap_or_else(now_unix)
}

/// The signer and the PKCS #12 file that holds it (for signtool).
pub struct Signing {
    /// The key and certificates.
    pub signer: Signer,
    /// A PKCS #12 file with the same key and certificates.
    pub pfx: PathBuf,
    /// Its password.
    pub password: String,
    /// Where the certificate came from, for the manifest.
    pub description: String,
}

/// The user's certificate (`--pfx`) or the test certificate under `root/test-certificate/`.
///
/// # Errors
///
/// When the PKCS #12 file cannot be used, or the test certificate cannot be created.
pub fn signing(options: &Options, root: &Path) -> Result<Signing, String> {
    if let Some(pfx) = &options.pfx {
        let signer = certificate::pfx_signer(pfx, &options.pfx_password)?;
        return Ok(Signing {
            signer,
            pfx: pfx.clone(),
            password: options.pfx_password.clone(),
            description: format!("the certificate of {}", pfx.display()),
        });
    }
    let directory = root.join("test-certificate");
    let started = Instant::now();
    let (signer, provenance) = certificate::test_signer(&directory, now_unix())?;
    let description = match provenance {
        certificate::Provenance::Kept => format!("the test certificate in {}", directory.display()),
        certificate::Provenance::Created => format!(
            "a new test certificate (RSA {}, generated in {:.1} s) in {}",
            certificate::TEST_KEY_BITS,
            started.elapsed().as_secs_f64(),
            directory.display()
        ),
    };
    let files = certificate::TestCertificateFiles::in_directory(&directory);
    Ok(Signing { signer, pfx: files.pfx, password: certificate::TEST_PFX_PASSWORD.into(), description })
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The file name.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hexadecimal.
    pub sha256: String,
}

/// A written and verified package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Its architecture.
    pub arch: Arch,
    /// Its directory.
    pub dir: PathBuf,
    /// Its files.
    pub manifest: Vec<ManifestEntry>,
}

/// Packages the built `images` (the driver build's outputs; each image's architecture comes
/// from its machine type and must be one of `options.arches`) into `root/<arch>/`, each with the
/// vendor image of its architecture from `options.vendor_images`, if there is one.
///
/// # Errors
///
/// When an image fails `verify-image`, the stamped INF fails lint, signing fails, a WDK tool
/// fails, or the written package does not verify.
pub fn package_images(
    identity: &Identity,
    images: &[PathBuf],
    options: &Options,
    signing: &Signing,
    root: &Path,
) -> Result<Vec<Package>, String> {
    identity.validate()?;
    let tools = if options.use_wdk { wdk::detect() } else { None };
    let vendors = vendor_images(&options.vendor_images)?;
    let mut packages = Vec::new();
    for path in images {
        let verdict = image::verify_file(path, None)?;
        let arch = verdict.arch.ok_or_else(|| format!("{}: not an x64, ARM64 or x86 image", path.display()))?;
        if !options.arches.contains(&arch) {
            return Err(format!("{} is an {arch} image; --arch asked for other architectures", path.display()));
        }
        if packages.iter().any(|package: &Package| package.arch == arch) {
            return Err(format!("two images for {arch}"));
        }
        verdict.into_result()?;
        let dir = root.join(arch.to_string());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|error| format!("cannot clear {}: {error}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        let driver = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        match &tools {
            Some(tools) => package_with_wdk(tools, identity, arch, &driver, signing, &dir)?,
            None => package_with_rust(identity, arch, &driver, options.catalog_version, &signing.signer, &dir)?,
        }
        write(&dir.join(CERTIFICATE_FILE), signing.signer.certificate())?;
        let version = env!("CARGO_PKG_VERSION");
        for (name, script) in stamp::SCRIPTS {
            write(&dir.join(name), stamp::stamp_script(name, script, identity, arch, version)?.as_bytes())?;
        }
        let mut manifest = verify_package(&dir, identity, arch, signing.signer.certificate())?;
        if let Some((_, vendor_path)) = vendors.iter().find(|(vendor_arch, _)| *vendor_arch == arch) {
            let vendor_identity = crate::build::vendor_identity()?;
            let certificate = signing.signer.certificate();
            vendor::package_vendor(&vendor_identity, identity, vendor_path, arch, options.catalog_version, &signing.signer, &dir)?;
            vendor::verify_vendor(&dir, &vendor_identity, arch, certificate)?;
            manifest = self::manifest(&dir)?;
        }
        packages.push(Package { arch, dir, manifest });
    }
    if let Some((arch, path)) = vendors.iter().find(|(arch, _)| !packages.iter().any(|package| package.arch == *arch)) {
        return Err(format!("{}: a vendor image for {arch}, but no wanlayer image for {arch}", path.display()));
    }
    Ok(packages)
}

/// The vendor images by architecture (from their machine types), one per architecture.
fn vendor_images(paths: &[PathBuf]) -> Result<Vec<(Arch, PathBuf)>, String> {
    let mut found: Vec<(Arch, PathBuf)> = Vec::new();
    for path in paths {
        let report = image::inspect(&read(path)?).map_err(|error| format!("{}: {error}", path.display()))?;
        let arch = Arch::from_machine(report.machine).ok_or_else(|| format!("{}: not an x64, ARM64 or x86 image", path.display()))?;
        if found.iter().any(|(other, _)| *other == arch) {
            return Err(format!("two vendor images for {arch}"));
        }
        found.push((arch, path.clone()));
    }
    Ok(found)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// The problems of INF `bytes` (decoding, syntax, rules), and of the package in `package_dir`.
pub fn lint_bytes(bytes: &[u8], package_dir: Option<&Path>) -> Vec<Problem> {
    let text = match inf::decode(bytes) {
        Ok(text) => text,
        Err(problem) => return vec![problem],
    };
    let (parsed, mut problems) = inf::parse(&text);
    problems.extend(lint::lint(&parsed));
    if let Some(dir) = package_dir {
        problems.extend(lint::check_package_dir(&parsed, dir));
    }
    problems.sort_by_key(|problem| problem.line);
    problems
}

/// `problems` of `file` as one message, compiler style (`file:line: message`).
fn report(file: &str, problems: &[Problem]) -> String {
    let mut message = format!("{} problem(s) in {file}", problems.len());
    for problem in problems {
        match problem.line {
            0 => message.push_str(&format!("\n  {file}: {}", problem.message)),
            line => message.push_str(&format!("\n  {file}:{line}: {}", problem.message)),
        }
    }
    message
}

/// The built-in flow: stamp, lint, sign, catalogue.
fn package_with_rust(
    identity: &Identity,
    arch: Arch,
    driver: &[u8],
    version: catalog::Version,
    signer: &Signer,
    dir: &Path,
) -> Result<(), String> {
    let time = build_time();
    let driver_version = stamp::driver_version(env!("CARGO_PKG_VERSION"))?;
    let date = asn1::CivilTime::from_unix(time);
    let inf_text = stamp::stamp_inf(stamp::INX, identity, arch, &stamp::driver_ver(&date, driver_version))?;
    let (parsed, mut problems) = inf::parse(&inf_text);
    problems.extend(lint::lint(&parsed));
    problems.extend(lint::check_identity(&parsed, identity));
    if !problems.is_empty() {
        return Err(format!("the stamped INF fails lint: {}", report(&identity.inf_file(), &problems)));
    }
    write(&dir.join(identity.inf_file()), inf_text.as_bytes())?;
    let signed = pe::sign(driver, signer)?;
    write(&dir.join(identity.driver_file()), &signed)?;
    let algorithm = version.algorithm();
    let members = vec![
        catalog::Member {
            file: identity.driver_file(),
            subject: Subject::PeImage,
            algorithm,
            digest: pe::digest(&signed, algorithm)?,
        },
        catalog::Member {
            file: identity.inf_file(),
            subject: Subject::FlatFile,
            algorithm,
            digest: algorithm.digest(inf_text.as_bytes()),
        },
    ];
    let catalog = catalog::Catalog::new(version, arch, &[identity.component_id.to_string()], members, time);
    write(&dir.join(identity.catalog_file()), &catalog.sign(signer)?)
}

/// The WDK flow: stampinf, infverif, signtool, inf2cat.
fn package_with_wdk(
    tools: &wdk::Tools,
    identity: &Identity,
    arch: Arch,
    driver: &[u8],
    signing: &Signing,
    dir: &Path,
) -> Result<(), String> {
    let [w, x, y, z] = stamp::driver_version(env!("CARGO_PKG_VERSION"))?;
    let date = asn1::CivilTime::from_unix(build_time());
    write(&dir.join(identity.inf_file()), stamp::identity_tokens(stamp::INX, identity).as_bytes())?;
    write(&dir.join(identity.driver_file()), driver)?;
    let (inf, driver_file, catalog) = (identity.inf_file(), identity.driver_file(), identity.catalog_file());
    let job = wdk::Job {
        dir,
        arch,
        inf: &inf,
        driver: &driver_file,
        catalog: &catalog,
        date: format!("{:02}/{:02}/{:04}", date.month, date.day, date.year),
        version: format!("{w}.{x}.{y}.{z}"),
        pfx: (&signing.pfx, &signing.password),
    };
    wdk::package(tools, &job)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// Reads back the package in `dir` and checks everything: the driver's signature (by
/// `signer_certificate`), its Authenticode hash and PE checksum; the INF's lint, identity and
/// files; the catalog's signature and that it lists exactly the driver and the INF with their
/// current hashes; the exported certificate. Returns the manifest.
///
/// # Errors
///
/// Every failed check, one per line.
pub fn verify_package(
    dir: &Path,
    identity: &Identity,
    arch: Arch,
    signer_certificate: &[u8],
) -> Result<Vec<ManifestEntry>, String> {
    let mut failures = Vec::new();
    let driver = read(&dir.join(identity.driver_file()))?;
    let inf_bytes = read(&dir.join(identity.inf_file()))?;
    let catalog_bytes = read(&dir.join(identity.catalog_file()))?;
    match image::inspect(&driver) {
        Ok(report) if report.checksum == 0 || report.checksum != report.computed_checksum => failures.push(format!(
            "{}: PE checksum {:#010x}, computed {:#010x}",
            identity.driver_file(),
            report.checksum,
            report.computed_checksum
        )),
        Ok(report) if report.machine != arch.machine() => {
            failures.push(format!("{}: machine {} in the {arch} package", identity.driver_file(), report.machine));
        }
        Ok(_) => {}
        Err(error) => failures.push(format!("{}: {error}", identity.driver_file())),
    }
    match pe::verify(&driver) {
        Ok(signature) if signature.signer_certificate != signer_certificate => {
            failures.push(format!("{}: signed by another certificate", identity.driver_file()));
        }
        Ok(_) => {}
        Err(error) => failures.push(format!("{}: {error}", identity.driver_file())),
    }
    let inf_problems = match inf::decode(&inf_bytes) {
        Ok(text) => {
            let (parsed, mut problems) = inf::parse(&text);
            problems.extend(lint::lint(&parsed));
            problems.extend(lint::check_identity(&parsed, identity));
            problems.extend(lint::check_package_dir(&parsed, dir));
            problems
        }
        Err(problem) => vec![problem],
    };
    if !inf_problems.is_empty() {
        failures.push(report(&identity.inf_file(), &inf_problems));
    }
    if let Err(error) = verify_catalog(&catalog_bytes, &driver, &inf_bytes, identity, arch, signer_certificate) {
        failures.push(format!("{}: {error}", identity.catalog_file()));
    }
    if read(&dir.join(CERTIFICATE_FILE))? != signer_certificate {
        failures.push(format!("{CERTIFICATE_FILE} is not the signing certificate"));
    }
    if !failures.is_empty() {
        return Err(format!("the package in {} does not verify:\n  {}", dir.display(), failures.join("\n  ")));
    }
    manifest(dir)
}

fn verify_catalog(
    catalog_bytes: &[u8],
    driver: &[u8],
    inf_bytes: &[u8],
    identity: &Identity,
    arch: Arch,
    signer_certificate: &[u8],
) -> Result<(), String> {
    let verified = authenticode::verify(catalog_bytes, oid::CTL)?;
    if verified.signer_certificate != signer_certificate {
        return Err("signed by another certificate".into());
    }
    let catalog = catalog::Catalog::parse(verified.content)?;
    let os = catalog.attributes.iter().find(|(name, _)| name == "OS").map(|(_, value)| value.as_str());
    let suffix = catalog::os_name(arch).rsplit('_').next().unwrap_or_default();
    if !os.is_some_and(|os| os.split(',').any(|os| os.ends_with(&format!("_{suffix}")))) {
        return Err(format!("its OS attribute {os:?} is not for {arch}"));
    }
    let (driver_file, inf_file) = (identity.driver_file(), identity.inf_file());
    if let Some(stranger) =
        catalog.members.iter().find(|m| ![&driver_file, &inf_file].iter().any(|f| m.file.eq_ignore_ascii_case(f)))
    {
        return Err(format!("it lists {}, which is not in the package", stranger.file));
    }
    let expected: [(&str, Subject, &[u8]); 2] =
        [(&driver_file, Subject::PeImage, driver), (&inf_file, Subject::FlatFile, inf_bytes)];
    for (file, subject, bytes) in expected {
        let member = catalog.member(file).ok_or_else(|| format!("{file} is not a member"))?;
        if member.subject != subject {
            return Err(format!("{file} is listed as {:?}, not {subject:?}", member.subject));
        }
        let digest = match subject {
            Subject::PeImage => pe::digest(bytes, member.algorithm)?,
            Subject::FlatFile => member.algorithm.digest(bytes),
        };
        if member.digest != digest {
            return Err(format!(
                "{file}'s {} hash differs from the listed one: the file changed",
                member.algorithm.name()
            ));
        }
    }
    Ok(())
}

/// Every file of `dir` with its size and SHA-256, by name.
fn manifest(dir: &Path) -> Result<Vec<ManifestEntry>, String> {
    let mut entries = Vec::new();
    let listing = std::fs::read_dir(dir).map_err(|error| format!("cannot list {}: {error}", dir.display()))?;
    for entry in listing.filter_map(Result::ok).filter(|entry| entry.path().is_file()) {
        let bytes = read(&entry.path())?;
        let sha256 = Sha256::digest(&bytes).iter().map(|byte| format!("{byte:02x}")).collect();
        entries.push(ManifestEntry {
            file: entry.file_name().to_string_lossy().into_owned(),
            size: bytes.len() as u64,
            sha256,
        });
    }
    entries.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(entries)
}

/// `cargo xtask package`.
pub fn run(mut options: Options) -> Result<(), String> {
    let started = Instant::now();
    let identity = identity::driver_identity()?;
    identity.validate()?;
    if options.images.is_empty() {
        for built in driver_images(&options.arches)? {
            options.images.push(built.driver);
            options.vendor_images.push(built.vendor);
        }
    }
    let images = options.images.clone();
    let root = package_root();
    let signing = signing(&options, &root)?;
    println!("package: signing with {}", signing.description);
    let flow = match (options.use_wdk, wdk::detect()) {
        (true, Some(_)) => "the WDK's stampinf, infverif, signtool and inf2cat".to_string(),
        _ => format!("built-in stamping and signing, v{} catalog", options.catalog_version.number()),
    };
    println!("package: {flow}");
    for package in package_images(&identity, &images, &options, &signing, &root)? {
        println!("package: {} ({}), verified:", package.dir.display(), package.arch);
        for entry in &package.manifest {
            println!("  {:<20} {:>9}  {}", entry.file, entry.size, entry.sha256);
        }
    }
    println!("package: OK in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo xtask lint-inf <file.inf> [--package-dir <dir>]`.
pub fn run_lint(file: &Path, package_dir: Option<&Path>) -> Result<(), String> {
    let bytes = read(file)?;
    let problems = lint_bytes(&bytes, package_dir);
    let name = file.display().to_string();
    if problems.is_empty() {
        println!("lint-inf: OK ({name})");
        Ok(())
    } else {
        Err(format!("lint-inf: {}", report(&name, &problems)))
    }
}
