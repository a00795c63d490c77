//! Signatures, catalogs, certificates and whole packages, read back by other code: the
//! `authenticode` crate (Authenticode PE hash by the specification's section procedure, and
//! signature parsing), `cms`, `x509-cert` and `der` (which also write them: these check what the
//! adjustments after building and the catalog's own structures made of it), and, independent of
//! all of them, OpenSSL: `osslsigncode` and `openssl` when they are installed.

use super::super::authenticode::{self as ours, oid, DigestAlgorithm, Subject};
use super::super::catalog::{self, Catalog, Member, Version};
use super::super::certificate::{self, Provenance};
use super::super::{package_images, pe, verify_package, Options, Signing};
use super::{identity, signer, signer_key, stamped_inf, Noise, TempDir, BUILD_TIME};
use crate::image::fixture::{put32, Fixture, CHECKSUM_AT, OPTIONAL_AT};
use crate::image::{self, Arch, Policy};
use crate::tools::{require, Tool};
use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Authenticode hash of `file` (PE32+ or PE32) by the `authenticode` crate (section by
/// section) over `object`'s parse.
fn independent_digest(file: &[u8], algorithm: DigestAlgorithm) -> Vec<u8> {
    let parsed: Box<dyn ::authenticode::PeTrait + '_> = match object::read::pe::PeFile64::parse(file) {
        Ok(pe32_plus) => Box::new(pe32_plus),
        Err(_) => Box::new(object::read::pe::PeFile32::parse(file).expect("object parses the image")),
    };
    match algorithm {
        DigestAlgorithm::Sha1 => {
            let mut hasher = sha1::Sha1::new();
            ::authenticode::authenticode_digest(parsed.as_ref(), &mut hasher).expect("authenticode hashes the image");
            hasher.finalize().to_vec()
        }
        DigestAlgorithm::Sha256 => {
            let mut hasher = Sha256::new();
            ::authenticode::authenticode_digest(parsed.as_ref(), &mut hasher).expect("authenticode hashes the image");
            hasher.finalize().to_vec()
        }
    }
}

/// A fixture driver image signed by the test signer.
fn signed_driver(fixture: &Fixture) -> Vec<u8> {
    pe::sign(&fixture.build(), signer()).expect("the fixture signs")
}

/// The PKCS #7 bytes embedded in a signed image.
fn embedded_pkcs7(file: &[u8]) -> &[u8] {
    let (offset, size) = pe::layout(file).expect("layout").certificate_table.expect("signed");
    let length = u32::from_le_bytes(file[offset..offset + 4].try_into().expect("4 bytes")) as usize;
    assert!(length == size && size % 8 == 0 && offset % 8 == 0, "one 8-byte aligned WIN_CERTIFICATE");
    let (element, padding) = super::super::asn1::read("PKCS #7", &file[offset + 8..offset + length]).expect("DER");
    assert!(padding.len() < 8 && padding.iter().all(|&byte| byte == 0), "zero padding to 8 bytes");
    element.raw
}

/// DigestInfo `{ algorithm, digest }` as DER, to find in a catalog.
fn digest_info(algorithm: DigestAlgorithm, digest: &[u8]) -> Vec<u8> {
    let identifier: &[u8] = match algorithm {
        DigestAlgorithm::Sha1 => &[0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00],
        DigestAlgorithm::Sha256 => {
            &[0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00]
        }
    };
    let mut out = vec![0x30, (identifier.len() + 2 + digest.len()) as u8];
    out.extend_from_slice(identifier);
    out.extend_from_slice(&[0x04, digest.len() as u8]);
    out.extend_from_slice(digest);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// A signed catalog of a signed fixture driver and the stamped INF.
fn fixture_catalog(version: Version) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let driver = signed_driver(&Fixture::driver());
    let inf = stamped_inf(Arch::X64).into_bytes();
    let algorithm = version.algorithm();
    let members = vec![
        Member {
            file: "wanlayer.sys".into(),
            subject: Subject::PeImage,
            algorithm,
            digest: pe::digest(&driver, algorithm).expect("hash"),
        },
        Member { file: "wanlayer.inf".into(), subject: Subject::FlatFile, algorithm, digest: algorithm.digest(&inf) },
    ];
    let catalog = Catalog::new(version, Arch::X64, &["wl_wanlayer".into()], members, BUILD_TIME);
    (catalog.sign(signer()).expect("the catalog signs"), driver, inf)
}

/// The signed data of `pkcs7`, decoded by the `cms` crate.
fn cms_signed_data(pkcs7: &[u8]) -> cms::signed_data::SignedData {
    let content_info = cms::content_info::ContentInfo::from_der(pkcs7).expect("cms decodes the ContentInfo");
    assert_eq!(content_info.content_type.to_string(), "1.2.840.113549.1.7.2");
    content_info.content.decode_as().expect("cms decodes the SignedData")
}

/// Verifies `signed_data`'s one signature with the `cms`, `x509-cert` and `rsa` crates alone.
fn verify_independently(signed_data: &cms::signed_data::SignedData) {
    assert_eq!(signed_data.version, cms::content_info::CmsVersion::V1, "Authenticode signatures are version 1");
    let certificates: Vec<&x509_cert::Certificate> = signed_data
        .certificates
        .as_ref()
        .expect("certificates")
        .0
        .iter()
        .filter_map(|choice| match choice {
            cms::cert::CertificateChoices::Certificate(certificate) => Some(certificate),
            _ => None,
        })
        .collect();
    assert_eq!(certificates.len(), 1);
    let spki = certificates[0].tbs_certificate.subject_public_key_info.to_der().expect("SPKI");
    let key = RsaPublicKey::from_public_key_der(&spki).expect("RSA key");
    let signer_infos: Vec<_> = signed_data.signer_infos.0.iter().collect();
    assert_eq!(signer_infos.len(), 1);
    let info = signer_infos[0];
    let attributes = info.signed_attrs.as_ref().expect("authenticated attributes").to_der().expect("SET OF");
    assert_eq!(attributes[0], 0x31);
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&attributes), info.signature.as_bytes())
        .expect("the signature verifies with the certificate's public key");
    let content = signed_data.encap_content_info.econtent.as_ref().expect("content");
    let message_digest = info
        .signed_attrs
        .as_ref()
        .and_then(|attributes| attributes.iter().find(|a| a.oid.to_string() == "1.2.840.113549.1.9.4"))
        .and_then(|attribute| attribute.values.get(0))
        .expect("messageDigest");
    assert_eq!(message_digest.value(), Sha256::digest(content.value()).as_slice(), "digest of the content octets");
}

#[test]
fn pe_hash_matches_the_authenticode_crate() {
    for fixture in [
        Fixture::driver(),
        Fixture::arm64(),
        Fixture::x86(),
        Fixture { pdb: Some(r"C:\b\w.pdb"), init_section: true, ..Fixture::driver() },
        Fixture { pdb: Some(r"C:\b\w.pdb"), init_section: true, ..Fixture::x86() },
    ] {
        let file = fixture.build();
        for algorithm in [DigestAlgorithm::Sha1, DigestAlgorithm::Sha256] {
            assert_eq!(pe::digest(&file, algorithm), Ok(independent_digest(&file, algorithm)));
        }
        let signed = pe::sign(&file, signer()).expect("signs");
        assert_eq!(
            pe::digest(&signed, DigestAlgorithm::Sha256),
            Ok(independent_digest(&signed, DigestAlgorithm::Sha256))
        );
        assert_eq!(
            pe::digest(&signed, DigestAlgorithm::Sha1),
            pe::digest(&file, DigestAlgorithm::Sha1),
            "aligned: same hash"
        );
    }
}

#[test]
fn pe_hash_skips_checksum_and_security_entry_and_pads_unsigned_files() {
    let file = Fixture::driver().build();
    let base = pe::digest(&file, DigestAlgorithm::Sha256).expect("hash");
    let mut changed = file.clone();
    put32(&mut changed, CHECKSUM_AT, 0x1234_5678);
    assert_eq!(pe::digest(&changed, DigestAlgorithm::Sha256).as_ref(), Ok(&base), "the checksum is not hashed");
    changed[0x200] ^= 1;
    assert_ne!(pe::digest(&changed, DigestAlgorithm::Sha256).as_ref(), Ok(&base), "code is hashed");
    let mut odd = file.clone();
    odd.extend_from_slice(&[1, 2, 3]);
    let mut padded = odd.clone();
    padded.extend_from_slice(&[0; 5]);
    assert_eq!(pe::digest(&odd, DigestAlgorithm::Sha1), pe::digest(&padded, DigestAlgorithm::Sha1));
    let layout = pe::layout(&file).expect("layout");
    assert_eq!(
        (layout.checksum_at, layout.security_entry_at, layout.certificate_table),
        (CHECKSUM_AT, OPTIONAL_AT + 112 + 32, None)
    );
    let layout = pe::layout(&Fixture::x86().build()).expect("layout");
    assert_eq!(
        (layout.checksum_at, layout.security_entry_at, layout.certificate_table),
        (CHECKSUM_AT, OPTIONAL_AT + 96 + 32, None),
        "PE32: the data directories start 16 bytes earlier"
    );
}

#[test]
fn signed_image_verifies_and_keeps_a_valid_checksum() {
    for fixture in [Fixture::driver(), Fixture::arm64(), Fixture::x86()] {
        let unsigned = fixture.build();
        let signed = pe::sign(&unsigned, signer()).expect("signs");
        let signature = pe::verify(&signed).expect("the signature verifies");
        assert_eq!(signature.signer_certificate, signer().certificate());
        assert_eq!(signature.indirect.algorithm, DigestAlgorithm::Sha256);
        assert_eq!(signature.indirect.digest, independent_digest(&signed, DigestAlgorithm::Sha256));
        let report = image::inspect(&signed).expect("the image verifier reads it");
        assert_ne!(report.checksum, 0);
        assert_eq!(report.checksum, report.computed_checksum, "the checksum covers the signature");
        let certificate = report.certificate.clone().expect("readable").expect("present");
        assert_eq!((certificate.revision, certificate.kind), (0x0200, 2));
        assert_eq!(certificate.offset as usize, unsigned.len().next_multiple_of(8));
        assert_eq!((certificate.offset + certificate.size) as usize, signed.len());
        let arch = Arch::from_machine(report.machine);
        assert_eq!(report.problems(&Policy::for_arch(arch)), [], "still a proper driver");
    }
}

#[test]
fn signature_decodes_with_the_authenticode_and_cms_crates() {
    let signed = signed_driver(&Fixture::driver());
    let parsed = object::read::pe::PeFile64::parse(signed.as_slice()).expect("object parses the signed image");
    let mut certificates = ::authenticode::AttributeCertificateIterator::new(&parsed).expect("table").expect("present");
    let first = certificates.next().expect("one certificate").expect("readable");
    let signature = first.get_authenticode_signature().expect("the authenticode crate parses the signature");
    assert_eq!(signature.digest(), independent_digest(&signed, DigestAlgorithm::Sha256).as_slice());
    assert!(certificates.next().is_none());
    let signed_data = cms_signed_data(embedded_pkcs7(&signed));
    assert_eq!(signed_data.encap_content_info.econtent_type.to_string(), "1.3.6.1.4.1.311.2.1.4");
    verify_independently(&signed_data);
}

#[test]
fn changing_the_image_breaks_the_signature() {
    let signed = signed_driver(&Fixture::driver());
    let mut code = signed.clone();
    code[0x201] ^= 0x40;
    let error = pe::verify(&code).expect_err("changed code");
    assert!(error.contains("changed after signing"), "{error}");
    let mut checksum = signed.clone();
    checksum[CHECKSUM_AT] ^= 1;
    assert!(pe::verify(&checksum).is_ok(), "the checksum is outside the signed hash");
    let report = image::inspect(&checksum).expect("reads");
    assert_ne!(report.checksum, report.computed_checksum, "but the image verifier sees the bad checksum");
    let mut signature = signed.clone();
    let last = signed.len() - 1 - signed.iter().rev().take_while(|&&byte| byte == 0).count();
    signature[last] ^= 1;
    assert!(pe::verify(&signature).expect_err("changed signature").contains("RSA signature"));
    let mut header = signed.clone();
    header[0x3C - 8] ^= 1;
    assert!(pe::verify(&header).expect_err("changed DOS header").contains("changed after signing"));
}

#[test]
fn every_byte_of_the_driver_and_the_inf_is_covered() {
    let (cat, driver, inf) = fixture_catalog(Version::V1);
    let layout = pe::layout(&driver).expect("layout");
    let (table, _) = layout.certificate_table.expect("signed");
    let skipped = |at: usize| {
        (layout.checksum_at..layout.checksum_at + 4).contains(&at)
            || (layout.security_entry_at..layout.security_entry_at + 8).contains(&at)
    };
    let verify = |driver: &[u8], inf: &[u8]| {
        super::super::verify_catalog(&cat, driver, inf, &identity(), Arch::X64, signer().certificate())
    };
    for at in (0..table).filter(|&at| !skipped(at)) {
        let mut changed = driver.clone();
        changed[at] ^= 0x01;
        assert!(pe::verify(&changed).is_err(), "byte {at:#x} of the image is not covered by its signature");
        assert!(verify(&changed, &inf).is_err(), "byte {at:#x} of the image is not covered by the catalog");
    }
    for at in 0..inf.len() {
        let mut changed = inf.clone();
        changed[at] ^= 0x01;
        assert!(verify(&driver, &changed).is_err(), "byte {at} of the INF is not covered by the catalog");
    }
    assert_eq!(verify(&driver, &inf), Ok(()));
}

#[test]
fn resigning_replaces_the_signature() {
    let once = signed_driver(&Fixture::driver());
    let twice = pe::sign(&once, signer()).expect("re-signs");
    assert_eq!(once.len(), twice.len());
    assert_eq!(pe::layout(&once).map(|l| l.certificate_table), pe::layout(&twice).map(|l| l.certificate_table));
    assert!(pe::verify(&twice).is_ok());
}

#[test]
fn unsigned_damaged_and_garbage_images_fail_cleanly() {
    let unsigned = Fixture::driver().build();
    assert!(pe::verify(&unsigned).expect_err("unsigned").contains("not signed"));
    let mut outside = Fixture { signature: true, ..Fixture::driver() }.build();
    let entry = OPTIONAL_AT + 112 + 32;
    put32(&mut outside, entry + 4, 0x10_0000);
    assert!(pe::layout(&outside).expect_err("outside").contains("does not end"));
    let dummy = Fixture { signature: true, ..Fixture::driver() }.build();
    assert!(pe::verify(&dummy).is_err(), "a certificate table that is not PKCS #7");
    let signed = signed_driver(&Fixture::driver());
    for end in (0..signed.len()).step_by(61) {
        let _ = pe::verify(&signed[..end]);
        let _ = pe::digest(&signed[..end], DigestAlgorithm::Sha1);
    }
    let mut noise = Noise(77);
    for _ in 0..200 {
        let mut damaged = signed.clone();
        for _ in 0..4 {
            let at = (noise.next() as usize) % damaged.len();
            damaged[at] = noise.next() as u8;
        }
        let _ = pe::verify(&damaged);
        let _ = pe::sign(&damaged, signer());
        let len = (noise.next() % 600) as usize;
        let garbage = noise.bytes(len);
        let _ = pe::verify(&garbage);
        let _ = pe::layout(&garbage);
    }
}

#[test]
fn catalog_lists_both_files_with_independently_computed_hashes() {
    for version in [Version::V1, Version::V2] {
        let (cat, driver, inf) = fixture_catalog(version);
        let algorithm = version.algorithm();
        let signed_data = cms_signed_data(&cat);
        assert_eq!(signed_data.encap_content_info.econtent_type.to_string(), "1.3.6.1.4.1.311.10.1");
        verify_independently(&signed_data);
        let ctl = signed_data.encap_content_info.econtent.as_ref().expect("the CTL").to_der().expect("DER");
        let fields: Vec<der::Any> = der::Any::from_der(&ctl).expect("CTL").decode_as().expect("SEQUENCE of fields");
        let members: Vec<der::Any> = fields[4].decode_as().expect("SEQUENCE OF members");
        assert_eq!(members.len(), 2, "exactly the driver and the INF");
        let driver_hash = independent_digest(&driver, algorithm);
        let inf_hash = match algorithm {
            DigestAlgorithm::Sha1 => sha1::Sha1::digest(&inf).to_vec(),
            DigestAlgorithm::Sha256 => Sha256::digest(&inf).to_vec(),
        };
        for hash in [&driver_hash, &inf_hash] {
            assert!(contains(&ctl, &digest_info(algorithm, hash)), "{version:?}: DigestInfo of a member");
            let tag = match version {
                Version::V1 => hash
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<String>()
                    .encode_utf16()
                    .chain([0])
                    .flat_map(u16::to_le_bytes)
                    .collect(),
                Version::V2 => hash.to_vec(),
            };
            assert!(
                members.iter().any(|member| contains(&member.to_der().expect("DER"), &tag)),
                "{version:?}: member tag"
            );
        }
        for text in ["wanlayer.sys", "wanlayer.inf", "_v100_X64", "2:10.0", "wl_wanlayer", "<<<Obsolete>>>"] {
            let utf16le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let utf16be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            assert!(contains(&ctl, &utf16le) || contains(&ctl, &utf16be), "{version:?}: {text}");
        }
        let verified = ours::verify(&cat, oid::CTL).expect("our verifier agrees");
        let parsed = Catalog::parse(verified.content).expect("our reader agrees");
        assert_eq!(parsed.version, version);
        assert_eq!(
            parsed.member("WANLAYER.SYS").map(|m| (m.subject, m.digest.clone())),
            Some((Subject::PeImage, driver_hash))
        );
        assert_eq!(
            parsed.member("wanlayer.inf").map(|m| (m.subject, m.digest.clone())),
            Some((Subject::FlatFile, inf_hash))
        );
        assert!(parsed.attributes.contains(&("OS".into(), "_v100_X64".into())));
        assert!(parsed.attributes.contains(&("HWID1".into(), "wl_wanlayer".into())));
    }
}

#[test]
fn catalog_os_attribute_follows_the_architecture() {
    let catalog = Catalog::new(Version::V1, Arch::Arm64, &[], Vec::new(), BUILD_TIME);
    assert!(catalog.attributes.contains(&("OS".into(), "_v100_ARM64".into())));
    assert!(catalog.attributes.contains(&("OSAttr".into(), catalog::OS_ATTR.into())));
    let der = catalog.to_der().expect("encodes");
    let element = der::Any::from_der(&der).expect("reads");
    assert_eq!(Catalog::parse(element).expect("parses").this_update, catalog.this_update);
}

#[test]
fn catalog_verification_names_strangers_and_reads_other_hash_algorithms() {
    let driver = signed_driver(&Fixture::driver());
    let inf = stamped_inf(Arch::X64).into_bytes();
    let member = |file: &str, subject, algorithm: DigestAlgorithm, bytes: &[u8]| Member {
        file: file.into(),
        subject,
        algorithm,
        digest: match subject {
            Subject::PeImage => pe::digest(bytes, algorithm).expect("hash"),
            Subject::FlatFile => algorithm.digest(bytes),
        },
    };
    let members = vec![
        member("wanlayer.sys", Subject::PeImage, DigestAlgorithm::Sha256, &driver),
        member("wanlayer.inf", Subject::FlatFile, DigestAlgorithm::Sha1, &inf),
    ];
    let cat = Catalog::new(Version::V1, Arch::X64, &[], members.clone(), BUILD_TIME).sign(signer()).expect("signs");
    let verify =
        |cat: &[u8]| super::super::verify_catalog(cat, &driver, &inf, &identity(), Arch::X64, signer().certificate());
    assert_eq!(verify(&cat), Ok(()), "a SHA-256 image hash in a v1 catalog, as inf2cat writes for signed images");
    let parsed = Catalog::parse(ours::verify(&cat, oid::CTL).expect("verifies").content).expect("parses");
    assert_eq!(parsed.members.len(), 2);
    assert_eq!(parsed.member("wanlayer.sys").map(|m| m.algorithm), Some(DigestAlgorithm::Sha256));
    let mut more = members;
    more.push(member("extra.dll", Subject::FlatFile, DigestAlgorithm::Sha1, b"extra"));
    let cat = Catalog::new(Version::V1, Arch::X64, &[], more, BUILD_TIME).sign(signer()).expect("signs");
    assert!(verify(&cat).expect_err("a stranger").contains("extra.dll"));
    let cat = Catalog::new(Version::V1, Arch::Arm64, &[], Vec::new(), BUILD_TIME).sign(signer()).expect("signs");
    assert!(verify(&cat).expect_err("ARM64 catalog").contains("not for x64"));
}

#[test]
fn changing_the_catalog_breaks_its_signature() {
    let (cat, _, _) = fixture_catalog(Version::V1);
    let mut changed = cat.clone();
    let at = cat
        .windows(11)
        .position(|w| w == [0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0C, 0x01])
        .expect("catalog list OID");
    changed[at + 14] ^= 0xFF;
    let error = ours::verify(&changed, oid::CTL).expect_err("a changed list");
    assert!(error.contains("messageDigest"), "{error}");
    for end in (0..cat.len()).step_by(37) {
        assert!(ours::verify(&cat[..end], oid::CTL).is_err());
    }
    let mut noise = Noise(3);
    for _ in 0..200 {
        let mut damaged = cat.clone();
        let at = (noise.next() as usize) % damaged.len();
        damaged[at] = noise.next() as u8;
        if let Ok(verified) = ours::verify(&damaged, oid::CTL) {
            let _ = Catalog::parse(verified.content);
        }
        assert!(certificate::Signer::new(signer_key().clone(), vec![noise.bytes(300)]).is_err());
    }
}

#[test]
fn test_certificate_has_the_required_fields() {
    let der = signer().certificate();
    let certificate = x509_cert::Certificate::from_der(der).expect("x509-cert decodes it");
    let tbs = &certificate.tbs_certificate;
    assert_eq!(tbs.version, x509_cert::certificate::Version::V3);
    assert_eq!(tbs.subject.to_string(), "CN=wanlayer test signing");
    assert_eq!(tbs.issuer, tbs.subject, "self-signed");
    assert_eq!(certificate.signature_algorithm.oid.to_string(), "1.2.840.113549.1.1.11", "sha256WithRSAEncryption");
    let extensions = tbs.extensions.as_ref().expect("extensions");
    let find = |id: &str| extensions.iter().find(|e| e.extn_id.to_string() == id).expect(id);
    let basic = find("2.5.29.19");
    assert!(basic.critical);
    let constraints =
        x509_cert::ext::pkix::BasicConstraints::from_der(basic.extn_value.as_bytes()).expect("basicConstraints");
    assert!(!constraints.ca);
    let usage = find("2.5.29.15");
    assert!(usage.critical);
    let usage = x509_cert::ext::pkix::KeyUsage::from_der(usage.extn_value.as_bytes()).expect("keyUsage");
    assert!(usage.digital_signature());
    assert_eq!(usage.0.bits(), 1, "digitalSignature (bit 0) only");
    assert!(!find("2.5.29.37").critical, "extendedKeyUsage is not critical");
    let eku = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(find("2.5.29.37").extn_value.as_bytes()).expect("EKU");
    assert_eq!(eku.0.iter().map(ToString::to_string).collect::<Vec<_>>(), ["1.3.6.1.5.5.7.3.3"]);
    find("2.5.29.14");
    let spki = tbs.subject_public_key_info.to_der().expect("SPKI");
    let key = RsaPublicKey::from_public_key_der(&spki).expect("RSA");
    assert_eq!(rsa::traits::PublicKeyParts::size(&key) * 8, certificate::TEST_KEY_BITS);
    let signed = tbs.to_der().expect("TBS");
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&signed), certificate.signature.raw_bytes())
        .expect("self-signature");
    assert!(certificate::allows_code_signing(&certificate));
}

#[test]
fn openssl_reads_the_test_certificate_as_a_code_signing_leaf() {
    let Some(openssl) = require(Tool::Openssl) else { return };
    let dir = TempDir::new("openssl-x509");
    std::fs::write(dir.path().join("cert.der"), signer().certificate()).expect("write");
    let output = Command::new(openssl)
        .args(["x509", "-inform", "DER", "-in", "cert.der", "-noout", "-text"])
        .current_dir(dir.path())
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for expected in [
        "Version: 3 (0x2)",
        "Signature Algorithm: sha256WithRSAEncryption",
        "Issuer: CN = wanlayer test signing",
        "Subject: CN = wanlayer test signing",
        "Public-Key: (3072 bit)",
        "X509v3 Basic Constraints: critical\n                CA:FALSE",
        "X509v3 Key Usage: critical\n                Digital Signature\n",
        "X509v3 Extended Key Usage: \n                Code Signing\n",
        "X509v3 Subject Key Identifier:",
    ] {
        assert!(text.contains(expected), "'{expected}' missing from:\n{text}");
    }
}

#[test]
fn test_certificate_is_created_once_then_kept() {
    let dir = TempDir::new("test-certificate");
    let now = super::super::now_unix();
    let (first, provenance) = certificate::test_signer(dir.path(), now).expect("created");
    assert_eq!(provenance, Provenance::Created);
    let files = certificate::TestCertificateFiles::in_directory(dir.path());
    assert_eq!(std::fs::read(&files.certificate).expect("the .cer"), first.certificate());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.key).expect("the key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the private key is the owner's only");
    }
    let (second, provenance) = certificate::test_signer(dir.path(), now).expect("kept");
    assert_eq!(provenance, Provenance::Kept);
    assert_eq!(second.certificate(), first.certificate());
    let from_pfx = certificate::pfx_signer(&files.pfx, certificate::TEST_PFX_PASSWORD).expect("the .pfx opens");
    assert_eq!(from_pfx.certificate(), first.certificate());
    let later = now + 10 * 365 * 86_400;
    let (third, provenance) = certificate::test_signer(dir.path(), later).expect("renewed");
    assert_eq!(provenance, Provenance::Created, "a certificate about to expire is replaced");
    assert_ne!(third.certificate(), first.certificate());
}

#[test]
fn pfx_round_trips_and_bad_input_fails_cleanly() {
    let dir = TempDir::new("pfx");
    let path = dir.path().join("signer.pfx");
    certificate::write_pfx(&path, signer(), "s3cret").expect("writes");
    let read = certificate::pfx_signer(&path, "s3cret").expect("reads");
    assert_eq!(read.certificate(), signer().certificate());
    assert_eq!(read.issuer(), signer().issuer());
    assert!(certificate::pfx_signer(&path, "wrong").expect_err("wrong password").contains("password"));
    assert!(certificate::pfx_signer(&dir.path().join("missing.pfx"), "").is_err());
    let bytes = std::fs::read(&path).expect("read");
    for end in (0..bytes.len()).step_by(97) {
        assert!(certificate::pfx_signer_from_bytes(&bytes[..end], "s3cret").is_err());
    }
    let mut noise = Noise(11);
    for _ in 0..100 {
        let mut damaged = bytes.clone();
        let at = (noise.next() as usize) % damaged.len();
        damaged[at] = noise.next() as u8;
        let _ = certificate::pfx_signer_from_bytes(&damaged, "s3cret");
        let _ = certificate::pfx_signer_from_bytes(&noise.bytes(200), "");
    }
}

/// PEM armour for a DER certificate.
fn pem(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let value =
            chunk.iter().enumerate().fold(0u32, |value, (index, &byte)| value | u32::from(byte) << (16 - 8 * index));
        for index in 0..4 {
            text.push(if index <= chunk.len() {
                ALPHABET[(value >> (18 - 6 * index) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    let lines: Vec<&str> =
        text.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap_or_default()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

#[test]
fn pfx_written_by_openssl_is_read() {
    let Some(openssl) = require(Tool::Openssl) else { return };
    let dir = TempDir::new("openssl-pfx");
    let key = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(signer_key(), rsa::pkcs8::LineEnding::LF).expect("PEM");
    std::fs::write(dir.path().join("key.pem"), key.as_bytes()).expect("write");
    std::fs::write(dir.path().join("cert.pem"), pem(signer().certificate())).expect("write");
    let status = Command::new(openssl)
        .args(["pkcs12", "-export", "-inkey", "key.pem", "-in", "cert.pem", "-passout", "pass:pw", "-out", "x.pfx"])
        .current_dir(dir.path())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let read =
        certificate::pfx_signer(&dir.path().join("x.pfx"), "pw").expect("an OpenSSL 3 (AES-256, PBKDF2) PKCS #12 file");
    assert_eq!(read.certificate(), signer().certificate());
}

/// Writes `files` into a new directory with the certificate as `ca.pem` and runs
/// `osslsigncode verify -CAfile ca.pem <args>` there.
fn osslsigncode(files: &[(&str, &[u8])], args: &[&str]) -> Option<(bool, String)> {
    let program = require(Tool::Osslsigncode)?;
    let dir = TempDir::new("osslsigncode");
    std::fs::write(dir.path().join("ca.pem"), pem(signer().certificate())).expect("write");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write");
    }
    let output = Command::new(program)
        .args(["verify", "-CAfile", "ca.pem"])
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("osslsigncode runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Some((output.status.success(), text))
}

#[test]
fn osslsigncode_verifies_the_signed_driver() {
    let signed = signed_driver(&Fixture::driver());
    let Some((ok, text)) = osslsigncode(&[("wanlayer.sys", &signed)], &["-in", "wanlayer.sys"]) else { return };
    assert!(ok, "osslsigncode rejects the signed driver:\n{text}");
    let mut changed = signed.clone();
    changed[0x201] ^= 0x40;
    let (ok, text) = osslsigncode(&[("wanlayer.sys", &changed)], &["-in", "wanlayer.sys"]).expect("installed");
    assert!(!ok, "osslsigncode accepts a changed driver:\n{text}");
}

#[test]
fn osslsigncode_verifies_catalog_membership() {
    for version in [Version::V1, Version::V2] {
        let (cat, driver, _) = fixture_catalog(version);
        let files: [(&str, &[u8]); 2] = [("wanlayer.cat", &cat), ("wanlayer.sys", &driver)];
        let Some((ok, text)) = osslsigncode(&files, &["-catalog", "wanlayer.cat", "-in", "wanlayer.sys"]) else {
            return;
        };
        assert!(ok, "{version:?}: osslsigncode does not find the driver in the catalog:\n{text}");
        let (ok, text) = osslsigncode(&files[..1], &["-in", "wanlayer.cat"]).expect("installed");
        assert!(ok, "{version:?}: osslsigncode rejects the catalog's signature:\n{text}");
        let other = signed_driver(&Fixture::arm64());
        let files: [(&str, &[u8]); 2] = [("wanlayer.cat", &cat), ("wanlayer.sys", &other)];
        let (ok, text) = osslsigncode(&files, &["-catalog", "wanlayer.cat", "-in", "wanlayer.sys"]).expect("installed");
        assert!(!ok, "{version:?}: osslsigncode finds a driver that is not in the catalog:\n{text}");
    }
}

/// Signing with the test signer, for [`package_images`].
pub(super) fn signing() -> Signing {
    Signing { signer: signer().clone(), pfx: PathBuf::new(), password: String::new(), description: "test".into() }
}

pub(super) fn write_images(dir: &Path) -> Vec<PathBuf> {
    [("x64.sys", Fixture::driver()), ("arm64.sys", Fixture::arm64())]
        .into_iter()
        .map(|(name, fixture)| {
            let path = dir.join(name);
            std::fs::write(&path, fixture.build()).expect("write the image");
            path
        })
        .collect()
}

pub(super) fn options(arches: Vec<Arch>, catalog_version: Version) -> Options {
    Options {
        arches,
        pfx: None,
        pfx_password: String::new(),
        catalog_version,
        images: Vec::new(),
        vendor_images: Vec::new(),
        use_wdk: false,
    }
}

#[test]
fn package_writes_and_verifies_both_architectures() {
    let work = TempDir::new("package");
    let images = write_images(work.path());
    let root = work.path().join("out");
    let packages =
        package_images(&identity(), &images, &options(vec![Arch::X64, Arch::Arm64], Version::V1), &signing(), &root)
            .expect("the fixtures package");
    assert_eq!(packages.iter().map(|p| p.arch).collect::<Vec<_>>(), [Arch::X64, Arch::Arm64]);
    for package in &packages {
        let names: Vec<&str> = package.manifest.iter().map(|entry| entry.file.as_str()).collect();
        assert_eq!(
            names,
            [
                "RUNBOOK.md",
                "install.ps1",
                "uninstall.ps1",
                "verifier.ps1",
                "wanlayer-test.cer",
                "wanlayer.cat",
                "wanlayer.inf",
                "wanlayer.sys"
            ]
        );
        for entry in &package.manifest {
            let bytes = std::fs::read(package.dir.join(&entry.file)).expect("read");
            assert_eq!(entry.size, bytes.len() as u64);
            assert_eq!(entry.sha256, Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect::<String>());
        }
        let inf = std::fs::read_to_string(package.dir.join("wanlayer.inf")).expect("the INF");
        let decoration = if package.arch == Arch::X64 { "NTamd64.10.0...17763" } else { "NTarm64.10.0...17763" };
        assert!(inf.contains(&format!("[Models.{decoration}]")));
        assert_eq!(
            verify_package(&package.dir, &identity(), package.arch, signer().certificate()).as_ref(),
            Ok(&package.manifest)
        );
    }
}

#[test]
fn verify_package_detects_every_changed_file() {
    let work = TempDir::new("tamper");
    let images = write_images(work.path());
    let root = work.path().join("out");
    let packages = package_images(&identity(), &images[..1], &options(vec![Arch::X64], Version::V2), &signing(), &root)
        .expect("packages");
    let dir = &packages[0].dir;
    let check = || verify_package(dir, &identity(), Arch::X64, signer().certificate());
    let tamper = |file: &str, change: &dyn Fn(&mut Vec<u8>), expected: &[&str]| {
        let path = dir.join(file);
        let original = std::fs::read(&path).expect("read");
        let mut changed = original.clone();
        change(&mut changed);
        std::fs::write(&path, &changed).expect("write");
        let error = check().expect_err(file);
        for text in expected {
            assert!(error.contains(text), "{file}: '{text}' missing from:\n{error}");
        }
        std::fs::write(&path, original).expect("restore");
        assert!(check().is_ok());
    };
    tamper(
        "wanlayer.inf",
        &|bytes| bytes.extend_from_slice(b"; a new comment\n"),
        &["wanlayer.inf's SHA-256 hash differs"],
    );
    tamper(
        "wanlayer.sys",
        &|bytes| bytes[0x201] ^= 1,
        &["changed after signing", "wanlayer.sys's SHA-256 hash differs", "checksum"],
    );
    tamper("wanlayer.cat", &|bytes| bytes[100] ^= 1, &["wanlayer.cat:"]);
    tamper("wanlayer-test.cer", &|bytes| bytes.truncate(10), &["not the signing certificate"]);
    assert!(verify_package(dir, &identity(), Arch::Arm64, signer().certificate()).is_err(), "the wrong architecture");
    let stranger = certificate::self_signed(signer_key(), "someone else", BUILD_TIME, 1).expect("certificate");
    assert!(check().is_ok());
    assert!(verify_package(dir, &identity(), Arch::X64, &stranger)
        .expect_err("another signer")
        .contains("another certificate"));
}

#[test]
fn package_refuses_bad_images_and_other_architectures() {
    let work = TempDir::new("refuse");
    let images = write_images(work.path());
    let root = work.path().join("out");
    let error = package_images(&identity(), &images[1..], &options(vec![Arch::X64], Version::V1), &signing(), &root)
        .expect_err("an ARM64 image for an x64 package");
    assert!(error.contains("arm64"), "{error}");
    let bad = work.path().join("bad.sys");
    std::fs::write(&bad, Fixture { subsystem: 2, ..Fixture::driver() }.build()).expect("write");
    let error = package_images(&identity(), &[bad], &options(vec![Arch::X64], Version::V1), &signing(), &root)
        .expect_err("a GUI-subsystem image");
    assert!(error.contains("verify-image"), "{error}");
    let twice = [images[0].clone(), images[0].clone()];
    assert!(package_images(&identity(), &twice, &options(vec![Arch::X64], Version::V1), &signing(), &root).is_err());
}

#[test]
fn package_writes_and_verifies_an_x86_package() {
    let work = TempDir::new("package-x86");
    let image = work.path().join("x86.sys");
    std::fs::write(&image, Fixture::x86().build()).expect("write the image");
    let root = work.path().join("out");
    let packages = package_images(&identity(), &[image], &options(vec![Arch::X86], Version::V1), &signing(), &root)
        .expect("the x86 fixture packages");
    let package = &packages[0];
    assert_eq!((package.arch, package.dir.file_name().and_then(|name| name.to_str())), (Arch::X86, Some("x86")));
    let inf = std::fs::read_to_string(package.dir.join("wanlayer.inf")).expect("the INF");
    assert!(inf.contains("[Models.NTx86"), "the x86 models decoration:\n{inf}");
    let utf16 = |text: &str| text.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let catalog = std::fs::read(package.dir.join("wanlayer.cat")).expect("the catalog");
    assert!(catalog.windows(12).any(|window| window == utf16("_v100").as_slice()), "the catalog's OS is _v100");
    assert_eq!(
        verify_package(&package.dir, &identity(), Arch::X86, signer().certificate()).as_ref(),
        Ok(&package.manifest)
    );
    assert!(verify_package(&package.dir, &identity(), Arch::X64, signer().certificate()).is_err(), "the wrong architecture");
    let signed = std::fs::read(package.dir.join("wanlayer.sys")).expect("the driver");
    assert_eq!(pe::verify(&signed).expect("the PE32 signature verifies").indirect.digest, independent_digest(&signed, DigestAlgorithm::Sha256));
}
