//! The sample vendor driver in the package: signed, alone in its own catalog, with the scripts
//! that install it as a plain kernel service; refused when its image imports beyond the vendor
//! policy or comes without a wanlayer image of its architecture.

use super::super::catalog::Version;
use super::super::package_images;
use super::super::vendor::verify_vendor;
use super::signing::{options, signing, write_images};
use super::{identity, signer, TempDir};
use crate::build::vendor_identity;
use crate::image::fixture::{Fixture, Thunk};
use crate::image::Arch;
use std::path::{Path, PathBuf};

/// A vendor image for `arch` that imports what the SDK's kernel module does.
fn vendor_fixture(arch: Arch) -> Fixture {
    let base = match arch {
        Arch::X64 => Fixture::driver(),
        Arch::Arm64 => Fixture::arm64(),
        Arch::X86 => Fixture::x86(),
    };
    Fixture {
        imports: vec![(
            "ntoskrnl.exe",
            vec![Thunk::Name("IoGetDeviceObjectPointer"), Thunk::Name("IoBuildDeviceIoControlRequest"), Thunk::Name("KeSetTimerEx")],
        )],
        ..base
    }
}

fn write(dir: &Path, name: &str, fixture: &Fixture) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, fixture.build()).expect("write the image");
    path
}

#[test]
fn the_vendor_driver_is_packaged_signed_in_its_own_catalog_with_its_scripts() {
    let work = TempDir::new("vendor");
    let images = write_images(work.path());
    let vendors = vec![write(work.path(), "v64.sys", &vendor_fixture(Arch::X64)), write(work.path(), "va64.sys", &vendor_fixture(Arch::Arm64))];
    let root = work.path().join("out");
    let options = super::super::Options { vendor_images: vendors, ..options(vec![Arch::X64, Arch::Arm64], Version::V1) };
    let packages = package_images(&identity(), &images, &options, &signing(), &root).expect("the fixtures package");
    let vendor = vendor_identity().expect("the vendor identity");
    for package in &packages {
        let names: Vec<&str> = package.manifest.iter().map(|entry| entry.file.as_str()).collect();
        for expected in ["wlclamp.sys", "wlclamp.cat", "install-wlclamp.ps1", "uninstall-wlclamp.ps1", "wanlayer.sys", "wanlayer.cat"] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        assert_eq!(verify_vendor(&package.dir, &vendor, package.arch, signer().certificate()), Ok(()));
        let install = std::fs::read_to_string(package.dir.join("install-wlclamp.ps1")).expect("the script");
        assert!(install.contains("& sc.exe create $VendorService type= kernel start= demand error= normal"), "a plain kernel service");
        assert!(install.contains("$VendorService = 'wlclamp'") && install.contains("$FilterService = 'wanlayer'"));
        assert!(install.contains("depend= $FilterService"), "the service control manager starts wanlayer first");
        assert!(!install.contains("@VENDOR") && install.contains("\r\n") && install.is_ascii());
    }

    // Any change to the image or its catalog is found.
    let dir = &packages[0].dir;
    let image = dir.join("wlclamp.sys");
    let mut bytes = std::fs::read(&image).expect("the image");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&image, &bytes).expect("tamper");
    let error = verify_vendor(dir, &vendor, Arch::X64, signer().certificate()).expect_err("a changed image");
    assert!(error.contains("wlclamp"), "{error}");
    assert!(verify_vendor(&packages[1].dir, &vendor, Arch::X64, signer().certificate()).is_err(), "the wrong architecture");
}

#[test]
fn a_vendor_image_beyond_the_vendor_policy_or_without_a_filter_image_is_refused() {
    let work = TempDir::new("vendor-refused");
    let images = write_images(work.path());
    let root = work.path().join("out");
    let ndis = Fixture { imports: vec![("ndis.sys", vec![Thunk::Name("NdisFSendNetBufferLists")])], ..vendor_fixture(Arch::X64) };
    let options_with = |vendor: PathBuf| super::super::Options { vendor_images: vec![vendor], ..options(vec![Arch::X64, Arch::Arm64], Version::V1) };
    let error = package_images(&identity(), &images[..1], &options_with(write(work.path(), "ndis.sys", &ndis)), &signing(), &root)
        .expect_err("a vendor driver may not import from ndis.sys");
    assert!(error.contains("ndis.sys"), "{error}");
    let arm = write(work.path(), "arm.sys", &vendor_fixture(Arch::Arm64));
    let error = package_images(&identity(), &images[..1], &options_with(arm), &signing(), &root).expect_err("no arm64 filter image");
    assert!(error.contains("no wanlayer image for arm64"), "{error}");
}
