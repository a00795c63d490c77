//! Tests of the driver package: the INF reader, lint rules and stamping ([`inf`]); signatures,
//! catalogs, certificates and whole packages ([`signing`]), each read back by other code (the
//! `authenticode`, `cms`, `x509-cert` and `object` crates) and, when installed, by OpenSSL
//! (`osslsigncode`, `openssl`); the sample vendor driver beside the filter ([`vendor`]); the PowerShell
//! scripts, parsed and checked against the package ([`scripts`]).

mod inf;
mod scripts;
mod signing;
mod vendor;

use super::asn1::CivilTime;
use super::certificate::{self, Signer};
use super::identity::{driver_identity, Identity};
use super::stamp;
use crate::image::Arch;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A fixed build time: 2025-03-07 12:00:00 UTC.
const BUILD_TIME: u64 = 1_741_348_800;

/// The stamped INF for `arch`, as `cargo xtask package` writes it on [`BUILD_TIME`].
fn stamped_inf(arch: Arch) -> String {
    let identity = driver_identity().expect("the driver identity file");
    let version = stamp::driver_version("0.1.0").expect("the workspace version is major.minor.patch");
    let driver_ver = stamp::driver_ver(&CivilTime::from_unix(BUILD_TIME), version);
    stamp::stamp_inf(stamp::INX, &identity, arch, &driver_ver).expect("the INX stamps")
}

/// The identity the tests package.
fn identity() -> Identity {
    driver_identity().expect("the driver identity file")
}

/// One RSA 3072 key and its self-signed certificate for the whole test run (key generation
/// takes seconds).
fn keys() -> &'static (rsa::RsaPrivateKey, Signer) {
    static KEYS: OnceLock<(rsa::RsaPrivateKey, Signer)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), certificate::TEST_KEY_BITS).expect("key generation");
        let certificate =
            certificate::self_signed(&key, certificate::TEST_SUBJECT, super::now_unix(), 365).expect("certificate");
        let signer = Signer::new(key.clone(), vec![certificate]).expect("the certificate is the key's");
        (key, signer)
    })
}

/// The test signer.
fn signer() -> &'static Signer {
    &keys().1
}

/// The test signer's private key.
fn signer_key() -> &'static rsa::RsaPrivateKey {
    &keys().0
}

/// A directory under the system temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "wanlayer-package-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A deterministic byte generator (xorshift) for the garbage-input tests.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}
