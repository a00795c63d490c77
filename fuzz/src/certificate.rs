//! The `--pfx` reader and the certificate reader of `cargo xtask package`
//! ([`xtask::package::certificate`]): X.509 fields, the extended key usage, `notAfter`, the
//! signer built from a key and a chain, and PKCS #12 files.
//!
//! The first byte chooses: the rest is a DER certificate read on its own; a chain handed to
//! [`Signer::new`] with this target's fixed key; a PKCS #12 file read with the test password; or
//! a chain wrapped into a PKCS #12 file with the fixed key (so the MAC and the encryption are
//! right and the reader gets to the certificates) and read back.
//!
//! Invariants: no panic, whatever the bytes; a signer read from a file has the certificate the
//! file carried first, and it allows code signing.

use crate::bytes::Bytes;
use rand::SeedableRng;
use rsa::pkcs8::EncodePrivateKey;
use rsa::RsaPrivateKey;
use sha1::{Digest, Sha1};
use std::sync::OnceLock;
use xtask::package::certificate::{self, Signer, TEST_PFX_PASSWORD};

/// Bits of the fixed key: small, so that making it and checking it cost little; large enough to
/// sign a SHA-256 digest.
const KEY_BITS: usize = 768;

/// The fixed key of this target and of its seed certificates, made from a fixed seed.
pub fn fixed_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x7761_6e6c_6179_6572);
        RsaPrivateKey::new(&mut rng, KEY_BITS).expect("a fixed-seed key is made")
    })
}

/// A PKCS #12 file holding `key` and `chain`, encrypted and authenticated with `password`, as
/// `signtool` and `--pfx` expect (the encoding `cargo xtask package` writes).
///
/// # Errors
/// When a certificate is not one `p12-keystore` takes, or encoding fails.
pub fn pfx(key: &RsaPrivateKey, chain: &[Vec<u8>], password: &str) -> Result<Vec<u8>, String> {
    let key_der = key.to_pkcs8_der().map_err(|error| error.to_string())?;
    let certificates = chain
        .iter()
        .map(|der| p12_keystore::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key_id = Sha1::digest(chain.first().map_or(&[][..], Vec::as_slice));
    let mut store = p12_keystore::KeyStore::new();
    let entry = p12_keystore::PrivateKeyChain::new(key_der.as_bytes(), key_id, certificates);
    store.add_entry(certificate::TEST_SUBJECT, p12_keystore::KeyStoreEntry::PrivateKeyChain(entry));
    store
        .writer(password)
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1)
        .write()
        .map_err(|error| error.to_string())
}

/// Splits the input into certificates: each a `u16` length, then that many bytes.
fn chain(input: &mut Bytes<'_>) -> Vec<Vec<u8>> {
    let mut chain = Vec::new();
    while !input.is_empty() && chain.len() < 4 {
        let len = usize::from(input.u16());
        chain.push(input.take(len).to_vec());
    }
    chain
}

fn read_certificate(der: &[u8]) {
    if let Ok(parsed) = certificate::parse(der) {
        let _ = (certificate::allows_code_signing(&parsed), certificate::public_key(&parsed));
    }
}

fn check_signer(signer: &Signer, chain: Option<&[Vec<u8>]>) {
    if let Some(chain) = chain {
        assert_eq!(signer.certificates(), chain, "the signer keeps the chain as given");
    }
    let parsed = certificate::parse(signer.certificate()).expect("a signer's certificate reads");
    assert_eq!(&parsed.tbs_certificate.issuer, signer.issuer());
    assert_eq!(&parsed, signer.leaf());
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    match input.u8() % 4 {
        0 => read_certificate(input.rest()),
        1 => {
            let chain = chain(&mut input);
            for der in &chain {
                read_certificate(der);
            }
            if let Ok(signer) = Signer::new(fixed_key().clone(), chain.clone()) {
                check_signer(&signer, Some(&chain));
            }
        }
        2 => {
            if let Ok(signer) = certificate::pfx_signer_from_bytes(input.rest(), TEST_PFX_PASSWORD) {
                check_signer(&signer, None);
                assert!(certificate::allows_code_signing(signer.leaf()));
            }
        }
        _ => {
            let chain = chain(&mut input);
            let Ok(file) = pfx(fixed_key(), &chain, TEST_PFX_PASSWORD) else { return };
            if let Ok(signer) = certificate::pfx_signer_from_bytes(&file, TEST_PFX_PASSWORD) {
                check_signer(&signer, None);
                assert_eq!(signer.certificate(), chain[0], "the key's certificate comes first");
                assert!(certificate::allows_code_signing(signer.leaf()));
            }
        }
    }
}
