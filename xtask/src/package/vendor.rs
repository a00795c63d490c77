//! The SDK's sample vendor driver (`wlclamp.sys`) in the package, beside `wanlayer.sys`.
//!
//! A vendor driver that loads through wanlayer is a plain kernel service, not a network
//! component: it has no INF (nothing to bind, nothing for netcfg), so it is not part of
//! wanlayer's driver package and not a member of `wanlayer.cat` (which `inf2cat` makes from the
//! INF's files in the WDK flow). Each architecture's package gets, per vendor:
//!
//! * `wlclamp.sys` with an embedded Authenticode signature — what the kernel checks when the
//!   service control manager loads a service's image (test signing on, the test certificate
//!   trusted: `install.ps1` does both);
//! * `wlclamp.cat`, a signed catalog listing exactly `wlclamp.sys` (for `signtool verify /c`, and
//!   for a system catalog database should the vendor be distributed that way);
//! * `install-wlclamp.ps1` (`sc.exe create wlclamp type= kernel start= demand ...
//!   depend= wanlayer`, then `sc.exe start`) and `uninstall-wlclamp.ps1`.
//!
//! The signing and the catalog are the built-in code's in both flows (the WDK has no tool that
//! catalogues files without an INF but MakeCat, which it does not ship).

use std::path::Path;

use super::authenticode::Subject;
use super::catalog::{self, Catalog, Member};
use super::certificate::Signer;
use super::identity::Identity;
use super::{pe, read, stamp, write};
use crate::build::VendorIdentity;
use crate::image::{self, Arch, Policy};

/// The install and uninstall scripts of a vendor driver, by the name they are stamped from.
const SCRIPTS: [(&str, &str); 2] = [
    ("install", include_str!("../../../driver/vendor-sample/install.ps1")),
    ("uninstall", include_str!("../../../driver/vendor-sample/uninstall.ps1")),
];

impl VendorIdentity {
    /// The image, `<service>.sys`.
    pub fn driver_file(&self) -> String {
        format!("{}.sys", self.service_name)
    }

    /// Its catalog, `<service>.cat`.
    pub fn catalog_file(&self) -> String {
        format!("{}.cat", self.service_name)
    }

    /// The package's script files: `install-<service>.ps1`, `uninstall-<service>.ps1`.
    pub fn script_files(&self) -> [String; 2] {
        SCRIPTS.map(|(verb, _)| format!("{verb}-{}.ps1", self.service_name))
    }

    /// Checks that the names can be stamped into a PowerShell script as they are.
    ///
    /// # Errors
    /// Naming the first one that cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.service_name.is_empty() || !self.service_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("vendor service name '{}': letters, digits, _ only", self.service_name));
        }
        if self.display_name.trim().is_empty() || self.display_name.chars().any(|c| !c.is_ascii() || c.is_control() || "\"'`$@".contains(c)) {
            return Err(format!("vendor display name '{}': printable ASCII without quotes, $ @ or `", self.display_name));
        }
        Ok(())
    }
}

/// Verifies `path` as a vendor image for `arch` and packages it into `dir`.
///
/// # Errors
/// When the image fails the vendor policy, signing fails, or a script does not stamp.
pub fn package_vendor(
    vendor: &VendorIdentity,
    identity: &Identity,
    path: &Path,
    arch: Arch,
    version: catalog::Version,
    signer: &Signer,
    dir: &Path,
) -> Result<(), String> {
    vendor.validate()?;
    image::verify_file_with(path, &Policy::vendor(Some(arch)))?.into_result()?;
    let signed = pe::sign(&read(path)?, signer)?;
    write(&dir.join(vendor.driver_file()), &signed)?;
    let algorithm = version.algorithm();
    let member = Member { file: vendor.driver_file(), subject: Subject::PeImage, algorithm, digest: pe::digest(&signed, algorithm)? };
    let catalog = Catalog::new(version, arch, &[], vec![member], super::build_time());
    write(&dir.join(vendor.catalog_file()), &catalog.sign(signer)?)?;
    for ((_, script), file) in SCRIPTS.iter().zip(vendor.script_files()) {
        let text = script.replace("@VENDOR_SERVICE@", &vendor.service_name).replace("@VENDOR_DISPLAY_NAME@", &vendor.display_name);
        write(&dir.join(&file), stamp::stamp_script(&file, &text, identity, arch, env!("CARGO_PKG_VERSION"))?.as_bytes())?;
    }
    Ok(())
}

/// Reads back the vendor part of the package in `dir`: the image (vendor policy, signature by
/// `signer_certificate`), its catalog (signature, exactly the image with its current hash, the
/// architecture) and the scripts.
///
/// # Errors
/// Every failed check, one per line.
pub fn verify_vendor(dir: &Path, vendor: &VendorIdentity, arch: Arch, signer_certificate: &[u8]) -> Result<(), String> {
    let mut failures = Vec::new();
    let driver_file = vendor.driver_file();
    let driver_path = dir.join(&driver_file);
    let driver = read(&driver_path)?;
    match image::verify_file_with(&driver_path, &Policy::vendor(Some(arch))).and_then(image::Verdict::into_result) {
        Ok(_) => {}
        Err(error) => failures.push(error),
    }
    match pe::verify(&driver) {
        Ok(signature) if signature.signer_certificate != signer_certificate => {
            failures.push(format!("{driver_file}: signed by another certificate"));
        }
        Ok(_) => {}
        Err(error) => failures.push(format!("{driver_file}: {error}")),
    }
    if let Err(error) = verify_catalog(&read(&dir.join(vendor.catalog_file()))?, &driver, vendor, arch, signer_certificate) {
        failures.push(format!("{}: {error}", vendor.catalog_file()));
    }
    for script in vendor.script_files() {
        if !dir.join(&script).is_file() {
            failures.push(format!("{script} is missing"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("the vendor driver in {} does not verify:\n  {}", dir.display(), failures.join("\n  ")))
    }
}

fn verify_catalog(bytes: &[u8], driver: &[u8], vendor: &VendorIdentity, arch: Arch, signer_certificate: &[u8]) -> Result<(), String> {
    let verified = super::authenticode::verify(bytes, super::authenticode::oid::CTL)?;
    if verified.signer_certificate != signer_certificate {
        return Err("signed by another certificate".into());
    }
    let catalog = Catalog::parse(verified.content)?;
    let os = catalog.attributes.iter().find(|(name, _)| name == "OS").map(|(_, value)| value.as_str());
    if os != Some(catalog::os_name(arch)) {
        return Err(format!("its OS attribute {os:?} is not for {arch}"));
    }
    let file = vendor.driver_file();
    if catalog.members.len() != 1 {
        return Err(format!("it lists {} files; it must list {file} only", catalog.members.len()));
    }
    let member = catalog.member(&file).ok_or_else(|| format!("{file} is not a member"))?;
    if member.subject != Subject::PeImage || member.digest != pe::digest(driver, member.algorithm)? {
        return Err(format!("{file}'s {} hash differs from the listed one: the file changed", member.algorithm.name()));
    }
    Ok(())
}
