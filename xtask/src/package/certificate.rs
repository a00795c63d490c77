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

use der::asn1::{GeneralizedTime, ObjectIdentifier};
use der::oid::db::rfc5280;
use der::oid::AssociatedOid;
use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

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

/// A private key and the certificates that go with it into every signature.
#[derive(Clone)]
pub struct Signer {
    key: RsaPrivateKey,
    /// The certificates, the signer's own first, then the rest of its chain.
    certificates: Vec<Certificate>,
    /// Their DER, in the same order.
    encoded: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("certificates", &self.certificates.len()).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from `key` and DER `certificates` (the key's own certificate first).
    ///
    /// # Errors
    ///
    /// When there is no certificate, one cannot be read, or the first one's public key is not
    /// `key`'s.
    pub fn new(key: RsaPrivateKey, encoded: Vec<Vec<u8>>) -> Result<Self, String> {
        let certificates = encoded.iter().map(|der| parse(der)).collect::<Result<Vec<_>, _>>()?;
        let leaf = certificates.first().ok_or("no certificate goes with the key")?;
        if public_key(leaf)? != RsaPublicKey::from(&key) {
            return Err("the private key does not belong to the certificate".into());
        }
        Ok(Self { key, certificates, encoded })
    }

    /// The key as an RSA PKCS #1 v1.5 signer over SHA-256 digests.
    pub fn signing_key(&self) -> SigningKey<Sha256> {
        SigningKey::new(self.key.clone())
    }

    /// Every certificate (DER, as given), the signer's own first.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.encoded
    }

    /// Every certificate, decoded, the signer's own first.
    pub fn x509_certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    /// The signer's own certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        self.encoded.first().map_or(&[], Vec::as_slice)
    }

    /// The signer's own certificate, decoded.
    pub fn leaf(&self) -> &Certificate {
        // `new` refuses an empty list.
        &self.certificates[0]
    }

    /// The issuer of the signer's own certificate.
    pub fn issuer(&self) -> &Name {
        &self.leaf().tbs_certificate.issuer
    }
}

/// Reads a DER X.509 certificate.
///
/// # Errors
///
/// When it is not one.
pub fn parse(der: &[u8]) -> Result<Certificate, String> {
    Certificate::from_der(der).map_err(|error| format!("not an X.509 certificate: {error}"))
}

/// The RSA public key of `certificate`.
///
/// # Errors
///
/// When it is not an RSA key.
pub fn public_key(certificate: &Certificate) -> Result<RsaPublicKey, String> {
    let spki = certificate.tbs_certificate.subject_public_key_info.to_der().map_err(|error| error.to_string())?;
    RsaPublicKey::from_public_key_der(&spki)
        .map_err(|error| format!("the certificate's key is not RSA ({error}); Authenticode here signs with RSA"))
}

/// True when `certificate`'s extended key usage lists code signing, or it has none.
pub fn allows_code_signing(certificate: &Certificate) -> bool {
    let extensions = certificate.tbs_certificate.extensions.as_deref().unwrap_or_default();
    extensions.iter().filter(|extension| extension.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE).all(|extension| {
        ExtendedKeyUsage::from_der(extension.extn_value.as_bytes())
            .is_ok_and(|usages| usages.0.contains(&rfc5280::ID_KP_CODE_SIGNING))
    })
}

/// `extendedKeyUsage` marked non-critical, as code-signing certificates carry it (`x509-cert`
/// marks it critical unless `anyExtendedKeyUsage` is listed).
struct CodeSigningUsage(ExtendedKeyUsage);

impl AssociatedOid for CodeSigningUsage {
    const OID: ObjectIdentifier = ExtendedKeyUsage::OID;
}

impl Encode for CodeSigningUsage {
    fn encoded_len(&self) -> der::Result<der::Length> {
        self.0.encoded_len()
    }

    fn encode(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        self.0.encode(writer)
    }
}

impl AsExtension for CodeSigningUsage {
    fn critical(&self, _subject: &Name, _extensions: &[Extension]) -> bool {
        false
    }
}

/// A new self-signed code-signing certificate for `key`, valid from a day before `now`
/// (clock skew between this machine and the test machine) for `days` days.
///
/// # Errors
///
/// When the key cannot be encoded or cannot sign, or the validity ends after 9999.
pub fn self_signed(key: &RsaPrivateKey, subject: &str, now_unix: u64, days: u64) -> Result<Vec<u8>, String> {
    let text = |error: &dyn std::fmt::Display| format!("certificate: {error}");
    let signing_key = SigningKey::<Sha256>::new(key.clone());
    let public_key = SubjectPublicKeyInfoOwned::from_key(RsaPublicKey::from(key)).map_err(|e| text(&e))?;
    let mut serial = rand::random::<[u8; 16]>();
    serial[0] = (serial[0] & 0x7F) | 0x40;
    let time = |seconds: u64| {
        GeneralizedTime::from_unix_duration(Duration::from_secs(seconds)).map(Time::from).map_err(|e| text(&e))
    };
    let validity = Validity {
        not_before: time(now_unix.saturating_sub(86_400))?,
        not_after: time(now_unix.saturating_add(days.saturating_mul(86_400)))?,
    };
    let name = Name::from_str(&format!("CN={subject}")).map_err(|e| text(&e))?;
    let serial_number = SerialNumber::new(&serial).map_err(|e| text(&e))?;
    let mut builder = CertificateBuilder::new(
        Profile::Manual { issuer: None },
        serial_number,
        validity,
        name,
        public_key.clone(),
        &signing_key,
    )
    .map_err(|e| text(&e))?;
    builder.add_extension(&BasicConstraints { ca: false, path_len_constraint: None }).map_err(|e| text(&e))?;
    builder.add_extension(&KeyUsage(KeyUsages::DigitalSignature.into())).map_err(|e| text(&e))?;
    builder
        .add_extension(&CodeSigningUsage(ExtendedKeyUsage(vec![rfc5280::ID_KP_CODE_SIGNING])))
        .map_err(|e| text(&e))?;
    let key_identifier = SubjectKeyIdentifier::try_from(public_key.owned_to_ref()).map_err(|e| text(&e))?;
    builder.add_extension(&key_identifier).map_err(|e| text(&e))?;
    builder.build::<Signature>().map_err(|e| text(&e))?.to_der().map_err(|e| text(&e))
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
        let expires = signer.leaf().tbs_certificate.validity.not_after.to_unix_duration().as_secs();
        if expires > now_unix.saturating_add(30 * 86_400) {
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
        .encoded
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
    if !allows_code_signing(signer.leaf()) {
        return Err("the certificate's extended key usage does not include code signing".into());
    }
    Ok(signer)
}
