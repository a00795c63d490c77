//! The Authenticode side of a PE image: its hash, an embedded signature, and checking one.
//!
//! The headers are read by the verifier's PE reader ([`crate::image::pe::headers`], PE32 and
//! PE32+): there is one PE reader in xtask.
//!
//! # The Authenticode PE hash
//!
//! The whole file is hashed except three things: the optional header's `CheckSum`, the
//! security directory entry (data directory 4), and the certificate table it points at, which
//! must be the last thing in the file. An unsigned file whose length is not a multiple of 8 is
//! hashed as if padded with zeros to one, because signing pads it so (`osslsigncode` and
//! Windows agree). For an image whose sections follow each other from `SizeOfHeaders` with
//! nothing between them — what lld-link writes — this equals the section-by-section procedure
//! of Microsoft's Authenticode specification; the tests check it against an independent
//! implementation of that procedure.
//!
//! # Embedding
//!
//! [`sign`] drops any certificate table already there, pads the file with zeros to a multiple
//! of 8, hashes it, appends `WIN_CERTIFICATE { dwLength, wRevision 0x0200,
//! wCertificateType 2 (PKCS_SIGNED_DATA), PKCS #7 }` padded to a multiple of 8, points the
//! security directory at it and recomputes the checksum over the result.

use super::asn1;
use super::authenticode::{self, oid, DigestAlgorithm, IndirectData, Subject};
use super::certificate::Signer;
use crate::image::checksum::pe_checksum;
use crate::image::pe::{self, dir};
use crate::image::read::Bytes;

/// `WIN_CERT_REVISION_2_0`.
const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA`.
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 2;
/// Size of the `WIN_CERTIFICATE` header.
const WIN_CERTIFICATE_HEADER: usize = 8;

/// Where the fields Authenticode skips are in a PE image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// File offset of the optional header's `CheckSum`.
    pub checksum_at: usize,
    /// File offset of the security directory entry (`VirtualAddress`, `Size`).
    pub security_entry_at: usize,
    /// The certificate table (file offset, size), when the image has one.
    pub certificate_table: Option<(usize, usize)>,
}

/// Finds the checksum, the security directory entry and the certificate table of `file`.
///
/// # Errors
///
/// When the headers cannot be read, the image has fewer than five data directories, or the
/// certificate table lies outside the file or is not at its end.
pub fn layout(file: &[u8]) -> Result<Layout, String> {
    let headers = pe::headers(file).map_err(|error| error.to_string())?;
    let security_entry_at = headers.directory_entry_at(dir::SECURITY).ok_or_else(|| {
        format!("the image has {} data directories: no room for the security directory", headers.directory_count)
    })?;
    let security = headers.directories[dir::SECURITY];
    let certificate_table = match (security.rva, security.size) {
        (0, 0) => None,
        (offset, size) => {
            let (offset, size) = (offset as usize, size as usize);
            if offset.checked_add(size) != Some(file.len()) {
                return Err(format!(
                    "the certificate table ({size} bytes at {offset:#x}) does not end the {}-byte file",
                    file.len()
                ));
            }
            if offset < security_entry_at + 8 {
                return Err("the certificate table overlaps the headers".into());
            }
            Some((offset, size))
        }
    };
    Ok(Layout { checksum_at: headers.checksum_at(), security_entry_at, certificate_table })
}

/// The Authenticode hash of `file` with `algorithm`.
///
/// # Errors
///
/// As [`layout`].
pub fn digest(file: &[u8], algorithm: DigestAlgorithm) -> Result<Vec<u8>, String> {
    let layout = layout(file)?;
    let end = layout.certificate_table.map_or(file.len(), |(offset, _)| offset);
    let mut hasher = algorithm.hasher();
    hasher.update(&file[..layout.checksum_at]);
    hasher.update(&file[layout.checksum_at + 4..layout.security_entry_at]);
    hasher.update(&file[layout.security_entry_at + 8..end]);
    if layout.certificate_table.is_none() && end % 8 != 0 {
        hasher.update(&[0; 8][..8 - end % 8]);
    }
    Ok(hasher.finish())
}

fn put32(file: &mut [u8], at: usize, value: u32) {
    file[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// `file` with an embedded SHA-256 Authenticode signature by `signer` (see the module doc).
///
/// # Errors
///
/// As [`layout`], or when signing fails.
pub fn sign(file: &[u8], signer: &Signer) -> Result<Vec<u8>, String> {
    let layout = layout(file)?;
    let mut image = file[..layout.certificate_table.map_or(file.len(), |(offset, _)| offset)].to_vec();
    image.resize(image.len().next_multiple_of(8), 0);
    put32(&mut image, layout.security_entry_at, 0);
    put32(&mut image, layout.security_entry_at + 4, 0);
    let hash = digest(&image, DigestAlgorithm::Sha256)?;
    let content = authenticode::indirect_data(Subject::PeImage, DigestAlgorithm::Sha256, &hash);
    let pkcs7 = authenticode::sign(oid::SPC_INDIRECT_DATA, &content, signer)?;
    let length = (WIN_CERTIFICATE_HEADER + pkcs7.len()).next_multiple_of(8);
    let (offset, size) = (u32::try_from(image.len()), u32::try_from(length));
    let (Ok(offset), Ok(size)) = (offset, size) else {
        return Err("the signed image would exceed 4 GiB".into());
    };
    image.extend_from_slice(&size.to_le_bytes());
    image.extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
    image.extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
    image.extend_from_slice(&pkcs7);
    image.resize(offset as usize + length, 0);
    put32(&mut image, layout.security_entry_at, offset);
    put32(&mut image, layout.security_entry_at + 4, size);
    let checksum = pe_checksum(&image, layout.checksum_at);
    put32(&mut image, layout.checksum_at, checksum);
    Ok(image)
}

/// An embedded signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSignature {
    /// The signer's certificate (DER).
    pub signer_certificate: Vec<u8>,
    /// The signed Authenticode hash and its algorithm.
    pub indirect: IndirectData,
}

/// Verifies the embedded signature of `file`: a `WIN_CERTIFICATE` of PKCS #7 signed data whose
/// signature verifies, whose indirect data describes a PE image, and whose hash equals the
/// Authenticode hash of the file as it is.
///
/// # Errors
///
/// A message naming the first check that fails.
pub fn verify(file: &[u8]) -> Result<EmbeddedSignature, String> {
    let layout = layout(file)?;
    let (offset, size) = layout.certificate_table.ok_or("the image is not signed (no security directory)")?;
    let table = &file[offset..offset + size];
    let header = Bytes::file(table);
    let length = header.u32(0).map_err(|e| e.to_string())? as usize;
    let revision = header.u16(4).map_err(|e| e.to_string())?;
    let kind = header.u16(6).map_err(|e| e.to_string())?;
    if revision != WIN_CERT_REVISION_2_0 || kind != WIN_CERT_TYPE_PKCS_SIGNED_DATA {
        return Err(format!("WIN_CERTIFICATE revision {revision:#06x} type {kind}: not an Authenticode signature"));
    }
    let body = table
        .get(WIN_CERTIFICATE_HEADER..length)
        .ok_or_else(|| format!("WIN_CERTIFICATE dwLength {length} does not fit the {size}-byte table"))?;
    let (element, _padding) = asn1::read("PKCS #7 signature", body).map_err(|e| e.to_string())?;
    let verified = authenticode::verify(element.raw, oid::SPC_INDIRECT_DATA)?;
    let indirect = authenticode::parse_indirect_data(verified.content).map_err(|e| e.to_string())?;
    if indirect.subject != Subject::PeImage {
        return Err("the signature does not describe a PE image".into());
    }
    if digest(file, indirect.algorithm)? != indirect.digest {
        return Err(format!(
            "the image's {} Authenticode hash differs from the signed one: the file was changed after signing",
            indirect.algorithm.name()
        ));
    }
    Ok(EmbeddedSignature { signer_certificate: verified.signer_certificate.to_vec(), indirect })
}
