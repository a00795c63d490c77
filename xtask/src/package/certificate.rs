//! The signing identity: the project's test certificate (created on first use and kept), or
//! the user's own from a PKCS #12 (`.pfx`) file.
//!
//! The test certificate is a self-signed RSA 3072 / SHA-256 code-signing certificate,
//! `CN=wanlayer test signing`, with `basicConstraints=critical,CA:FALSE`,
//! `keyUsage=critical,digitalSignature`, `extendedKeyUsage=codeSigning` and a subject key
//! identifier. It lives in `target/package/test-certificate/`:
//!
//! | file | what |
//! | --- | --- |
//! | `wanlayer-test.key` | the private key, PKCS #8 PEM (owner-only on Unix) |
//! | `wanlayer-test.cer` | the certificate, DER: what the test machine imports |
//! | `wanlayer-test.pfx` | both, PKCS #12 with password [`TEST_PFX_PASSWORD`], for `signtool` |

use super::asn1::{self, tag, CivilTime};
use super::authenticode::oid;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The test certificate's subject common name.
pub const TEST_SUBJECT: &str = "wanlayer test signing";
/// The test certificate's RSA modulus size.
pub const TEST_KEY_BITS: usize = 3072;
/// The password of the test certificate's `.pfx` (it protects nothing: the key is beside it).
pub const TEST_PFX_PASSWORD: &str = "wanlayer";
/// The file stem of the test certificate's files.
pub const TEST_FILE_STEM: &str = "wanlayer-test";
/// How long a new test certificate is valid.
const TEST_VALIDITY_DAYS: u64 = 10 * 365;
/// `id-kp-codeSigning`.
const CODE_SIGNING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 3];
/// `id-ce-extKeyUsage`.
const EXTENDED_KEY_USAGE: &[u64] = &[2, 5, 29, 37];

/// A private key and the certificates that go with it into every signature.
#[derive(Clone)]
pub struct Signer {
    key: RsaPrivateKey,
    /// DER certificates: the signer's own first, then the rest of its chain.
    certificates: Vec<Vec<u8>>,
    issuer: Vec<u8>,
    serial_number: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("certificates", &self.certificates.len()).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from `key` and `certificates` (the key's own certificate first).
    ///
    /// # Errors
    ///
    /// When there is no certificate, the first cannot be read, or its public key is not `key`'s.
    pub fn new(key: RsaPrivateKey, certificates: Vec<Vec<u8>>) -> Result<Self, String> {
        let leaf = certificates.first().ok_or("no certificate goes with the key")?;
        let parsed = parse(leaf)?;
        let public = RsaPublicKey::from(&key).to_public_key_der().map_err(|error| error.to_string())?;
        if public.as_bytes() != parsed.public_key {
            return Err("the private key does not belong to the certificate".into());
        }
        let (issuer, serial_number) = (parsed.issuer.to_vec(), parsed.serial_number.to_vec());
        Ok(Self { key, certificates, issuer, serial_number })
    }

    /// The RSA PKCS #1 v1.5 signature of a SHA-256 `digest`.
    ///
    /// # Errors
    ///
    /// When the key cannot sign (a key too small for the digest).
    pub fn sign(&self, digest: &[u8]) -> Result<Vec<u8>, String> {
        self.key.sign(Pkcs1v15Sign::new::<Sha256>(), digest).map_err(|error| format!("RSA signing failed: {error}"))
    }

    /// Every certificate, the signer's own first.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// The signer's own certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        self.certificates.first().map_or(&[], Vec::as_slice)
    }

    /// The DER `Name` of the certificate's issuer.
    pub fn issuer(&self) -> &[u8] {
        &self.issuer
    }

    /// The DER `INTEGER` serial number of the certificate.
    pub fn serial_number(&self) -> &[u8] {
        &self.serial_number
    }
}

/// The fields of an X.509 certificate the signer and the verifier need, as DER slices.
#[derive(Debug, Clone, Copy)]
pub struct Parsed<'a> {
    /// `serialNumber` (the whole `INTEGER`).
    pub serial_number: &'a [u8],
    /// `issuer` (the whole `Name`).
    pub issuer: &'a [u8],
    /// `subjectPublicKeyInfo` (the whole structure).
    pub public_key: &'a [u8],
    /// `validity.notAfter` (the whole `Time`).
    pub not_after: &'a [u8],
    /// `extensions` content, when present.
    pub extensions: Option<&'a [u8]>,
}

impl Parsed<'_> {
    /// True when the extended key usage extension lists code signing, or there is none.
    pub fn allows_code_signing(&self) -> bool {
        let Some(extensions) = self.extensions else { return true };
        let Ok(list) = asn1::read_one("extensions", extensions, tag::SEQUENCE).and_then(|e| e.children("extensions"))
        else {
            return false;
        };
        for extension in list {
            let Ok(fields) = extension.children("extension") else { return false };
            if fields.first().is_some_and(|kind| kind.is_oid(EXTENDED_KEY_USAGE)) {
                let Some(value) = fields.last() else { return false };
                return asn1::read_one("EKU", value.content, tag::SEQUENCE)
                    .and_then(|usages| usages.children("EKU"))
                    .is_ok_and(|usages| usages.iter().any(|usage| usage.is_oid(CODE_SIGNING)));
            }
        }
        true
    }

    /// `notAfter` as `YYYYMMDDhhmmss`, comparable as text with [`stamp`].
    pub fn not_after_stamp(&self) -> Option<String> {
        let (element, _) = asn1::read("notAfter", self.not_after).ok()?;
        let text = std::str::from_utf8(element.content).ok()?.trim_end_matches('Z');
        match element.tag {
            tag::UTC_TIME if text.len() == 12 => {
                let century = if text.get(..2)?.parse::<u32>().ok()? >= 50 { "19" } else { "20" };
                Some(format!("{century}{text}"))
            }
            tag::GENERALIZED_TIME if text.len() == 14 => Some(text.to_string()),
            _ => None,
        }
    }
}

/// `time` as `YYYYMMDDhhmmss`.
pub fn stamp(time: &CivilTime) -> String {
    format!("{:04}{:02}{:02}{:02}{:02}{:02}", time.year, time.month, time.day, time.hour, time.minute, time.second)
}

/// Reads the fields of a DER certificate.
///
/// # Errors
///
/// When it is not an X.509 certificate.
pub fn parse(der: &[u8]) -> Result<Parsed<'_>, String> {
    parse_inner(der).map_err(|error| error.to_string())
}

fn parse_inner(der: &[u8]) -> Result<Parsed<'_>, asn1::Error> {
    const WHAT: &str = "certificate";
    let certificate = asn1::read_one(WHAT, der, tag::SEQUENCE)?.children(WHAT)?;
    let tbs = certificate.first().ok_or_else(|| asn1::error(WHAT, "empty"))?.expect(WHAT, tag::SEQUENCE)?;
    let mut fields = tbs.children(WHAT)?.into_iter().peekable();
    if fields.peek().is_some_and(|field| field.tag == 0xA0) {
        fields.next();
    }
    let mut next = |name: &'static str| fields.next().ok_or_else(|| asn1::error(WHAT, format!("no {name}")));
    let serial_number = next("serialNumber")?.expect(WHAT, tag::INTEGER)?.raw;
    next("signature")?;
    let issuer = next("issuer")?.expect(WHAT, tag::SEQUENCE)?.raw;
    let validity = next("validity")?.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let not_after = validity.get(1).ok_or_else(|| asn1::error(WHAT, "validity has no notAfter"))?.raw;
    next("subject")?.expect(WHAT, tag::SEQUENCE)?;
    let public_key = next("subjectPublicKeyInfo")?.expect(WHAT, tag::SEQUENCE)?.raw;
    let extensions = fields.find(|field| field.tag == 0xA3).map(|field| field.content);
    Ok(Parsed { serial_number, issuer, public_key, not_after, extensions })
}

/// `Name ::= { { commonName = cn } }`.
fn common_name(cn: &str) -> Vec<u8> {
    let attribute = asn1::sequence(&[&asn1::oid(&[2, 5, 4, 3]), &asn1::utf8_string(cn)]);
    asn1::sequence(&[&asn1::set_of(vec![attribute])])
}

/// One `Extension { extnID, critical, extnValue }`.
fn extension(kind: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        asn1::sequence(&[&asn1::oid(kind), &asn1::boolean(true), &asn1::octet_string(value)])
    } else {
        asn1::sequence(&[&asn1::oid(kind), &asn1::octet_string(value)])
    }
}

/// A new self-signed code-signing certificate for `key`, valid from a day before `now`
/// (clock skew between this machine and the test machine) for `days` days.
///
/// # Errors
///
/// When the key cannot be encoded or cannot sign.
pub fn self_signed(key: &RsaPrivateKey, subject: &str, now_unix: u64, days: u64) -> Result<Vec<u8>, String> {
    let public_key = RsaPublicKey::from(key).to_public_key_der().map_err(|error| error.to_string())?;
    let spki = asn1::read_one("public key", public_key.as_bytes(), tag::SEQUENCE).map_err(|e| e.to_string())?;
    let key_bits = spki.children("public key").map_err(|e| e.to_string())?;
    let bit_string = key_bits.get(1).ok_or("public key without key bits")?;
    let key_identifier = Sha1::digest(bit_string.content.get(1..).unwrap_or_default());
    let mut serial = rand::random::<[u8; 16]>();
    serial[0] = (serial[0] & 0x7F) | 0x40;
    let name = common_name(subject);
    let algorithm = asn1::sequence(&[&asn1::oid(oid::SHA256_WITH_RSA), &asn1::null()]);
    let not_before = CivilTime::from_unix(now_unix.saturating_sub(86_400));
    let not_after = CivilTime::from_unix(now_unix.saturating_add(days.saturating_mul(86_400)));
    let extensions = asn1::sequence(&[
        &extension(&[2, 5, 29, 19], true, &asn1::sequence(&[])),
        &extension(&[2, 5, 29, 15], true, &asn1::bit_string(&[0x80], 7)),
        &extension(EXTENDED_KEY_USAGE, false, &asn1::sequence(&[&asn1::oid(CODE_SIGNING)])),
        &extension(&[2, 5, 29, 14], false, &asn1::octet_string(&key_identifier)),
    ]);
    let tbs = asn1::sequence(&[
        &asn1::context(0, &asn1::integer(2)),
        &asn1::unsigned_integer(&serial),
        &algorithm,
        &name,
        &asn1::sequence(&[&asn1::x509_time(&not_before), &asn1::x509_time(&not_after)]),
        &name,
        public_key.as_bytes(),
        &asn1::context(3, &extensions),
    ]);
    let signature = key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&tbs))
        .map_err(|error| format!("RSA signing failed: {error}"))?;
    Ok(asn1::sequence(&[&tbs, &algorithm, &asn1::bit_string(&signature, 0)]))
}

/// The files of the test certificate in `directory`.
#[derive(Debug, Clone)]
pub struct TestCertificateFiles {
    /// The private key (PKCS #8 PEM).
    pub key: PathBuf,
    /// The certificate (DER).
    pub certificate: PathBuf,
    /// Both as PKCS #12, password [`TEST_PFX_PASSWORD`].
    pub pfx: PathBuf,
}

impl TestCertificateFiles {
    /// The file names under `directory`.
    pub fn in_directory(directory: &Path) -> Self {
        Self {
            key: directory.join(format!("{TEST_FILE_STEM}.key")),
            certificate: directory.join(format!("{TEST_FILE_STEM}.cer")),
            pfx: directory.join(format!("{TEST_FILE_STEM}.pfx")),
        }
    }
}

/// What [`test_signer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// The kept certificate was used.
    Kept,
    /// A new one was created (none was there, or the kept one expires within 30 days).
    Created,
}

/// The test certificate in `directory`, created (RSA key generation takes seconds) when absent,
/// unreadable or about to expire.
///
/// # Errors
///
/// When the directory cannot be written or the key cannot be generated.
pub fn test_signer(directory: &Path, now_unix: u64) -> Result<(Signer, Provenance), String> {
    let files = TestCertificateFiles::in_directory(directory);
    if let Ok(signer) = load_test_signer(&files) {
        let soon = stamp(&CivilTime::from_unix(now_unix.saturating_add(30 * 86_400)));
        let expires = parse(signer.certificate()).ok().and_then(|parsed| parsed.not_after_stamp());
        if expires.is_some_and(|not_after| not_after > soon) {
            if !files.pfx.exists() {
                write_pfx(&files.pfx, &signer, TEST_PFX_PASSWORD)?;
            }
            return Ok((signer, Provenance::Kept));
        }
    }
    let mut rng = rand::thread_rng();
    let key = RsaPrivateKey::new(&mut rng, TEST_KEY_BITS).map_err(|error| format!("RSA key generation: {error}"))?;
    let certificate = self_signed(&key, TEST_SUBJECT, now_unix, TEST_VALIDITY_DAYS)?;
    std::fs::create_dir_all(directory).map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|error| error.to_string())?;
    write_private(&files.key, pem.as_bytes())?;
    std::fs::write(&files.certificate, &certificate)
        .map_err(|error| format!("cannot write {}: {error}", files.certificate.display()))?;
    let signer = Signer::new(key, vec![certificate])?;
    write_pfx(&files.pfx, &signer, TEST_PFX_PASSWORD)?;
    Ok((signer, Provenance::Created))
}

fn load_test_signer(files: &TestCertificateFiles) -> Result<Signer, String> {
    let pem = std::fs::read_to_string(&files.key).map_err(|error| error.to_string())?;
    let key = RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|error| error.to_string())?;
    let certificate = std::fs::read(&files.certificate).map_err(|error| error.to_string())?;
    Signer::new(key, vec![certificate])
}

/// Writes `bytes` readable by the owner only (on Unix).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Writes `signer`'s key and certificates as PKCS #12 (3DES and HMAC-SHA1, which every
/// `signtool` and `certutil` reads).
///
/// # Errors
///
/// When encoding or writing fails.
pub fn write_pfx(path: &Path, signer: &Signer, password: &str) -> Result<(), String> {
    let key = signer.key.to_pkcs8_der().map_err(|error| error.to_string())?;
    let chain = signer
        .certificates
        .iter()
        .map(|der| p12_keystore::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("certificate for PKCS #12: {error}"))?;
    let key_id = Sha1::digest(signer.certificate());
    let mut store = p12_keystore::KeyStore::new();
    let entry = p12_keystore::PrivateKeyChain::new(key.as_bytes(), key_id, chain);
    store.add_entry(TEST_SUBJECT, p12_keystore::KeyStoreEntry::PrivateKeyChain(entry));
    let bytes = store
        .writer(password)
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1)
        .write()
        .map_err(|error| format!("PKCS #12 encoding: {error}"))?;
    write_private(path, &bytes)
}

/// The signer in a PKCS #12 file: its first private key with its certificate chain.
///
/// # Errors
///
/// When the file cannot be read or decrypted (wrong password), holds no private key, the key is
/// not RSA, or the certificate does not allow code signing.
pub fn pfx_signer(path: &Path, password: &str) -> Result<Signer, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    pfx_signer_from_bytes(&bytes, password).map_err(|error| format!("{}: {error}", path.display()))
}

/// [`pfx_signer`] on the file's bytes.
///
/// # Errors
///
/// As [`pfx_signer`].
pub fn pfx_signer_from_bytes(bytes: &[u8], password: &str) -> Result<Signer, String> {
    let store = p12_keystore::KeyStore::from_pkcs12(bytes, password)
        .map_err(|error| format!("not a readable PKCS #12 file, or the wrong password ({error})"))?;
    let (_, chain) = store.private_key_chain().ok_or("the PKCS #12 file holds no private key")?;
    let key = RsaPrivateKey::from_pkcs8_der(chain.key())
        .map_err(|error| format!("the private key is not an RSA key ({error}); Authenticode here signs with RSA"))?;
    let certificates: Vec<Vec<u8>> = chain.chain().iter().map(|certificate| certificate.as_der().to_vec()).collect();
    let signer = Signer::new(key, certificates)?;
    if !parse(signer.certificate())?.allows_code_signing() {
        return Err("the certificate's extended key usage does not include code signing".into());
    }
    Ok(signer)
}
