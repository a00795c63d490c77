//! Authenticode's PKCS #7 `SignedData`: building it around a `SpcIndirectDataContent` (a signed
//! driver image) or a certificate trust list (a catalog), and verifying one.
//!
//! The layout is PKCS #7 v1.5 as Authenticode uses it (and as `signtool` writes it):
//!
//! ```text
//! ContentInfo { signedData, [0] SignedData {
//!     version 1, digestAlgorithms { sha256 },
//!     contentInfo { contentType, [0] content },        -- content DER as is, no OCTET STRING
//!     [0] IMPLICIT certificates,
//!     signerInfos { SignerInfo { version 1, issuerAndSerialNumber, sha256,
//!         [0] IMPLICIT authenticatedAttributes { contentType, SpcSpOpusInfo,
//!                                                 SpcStatementType, messageDigest },
//!         rsaEncryption, encryptedDigest } } } }
//! ```
//!
//! `messageDigest` is the digest of the content's *content octets* (the content's DER without
//! its outer tag and length), as PKCS #7 prescribes for content types other than `data`; the
//! RSA PKCS #1 v1.5 signature covers the attributes re-encoded as a `SET OF`.

use super::asn1::{self, tag, Tlv};
use super::certificate::{self, Signer};
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Object identifiers, as arcs.
pub mod oid {
    /// `signedData` (PKCS #7).
    pub const SIGNED_DATA: &[u64] = &[1, 2, 840, 113_549, 1, 7, 2];
    /// `id-sha1`.
    pub const SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
    /// `id-sha256`.
    pub const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
    /// `rsaEncryption`.
    pub const RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113_549, 1, 1, 1];
    /// `sha256WithRSAEncryption`.
    pub const SHA256_WITH_RSA: &[u64] = &[1, 2, 840, 113_549, 1, 1, 11];
    /// PKCS #9 `contentType`.
    pub const CONTENT_TYPE: &[u64] = &[1, 2, 840, 113_549, 1, 9, 3];
    /// PKCS #9 `messageDigest`.
    pub const MESSAGE_DIGEST: &[u64] = &[1, 2, 840, 113_549, 1, 9, 4];
    /// `SPC_INDIRECT_DATA_OBJID`: the content of an Authenticode signature, and a catalog
    /// member's hash attribute.
    pub const SPC_INDIRECT_DATA: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 2, 1, 4];
    /// `SPC_STATEMENT_TYPE_OBJID`.
    pub const SPC_STATEMENT_TYPE: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 2, 1, 11];
    /// `SPC_SP_OPUS_INFO_OBJID`.
    pub const SPC_SP_OPUS_INFO: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 2, 1, 12];
    /// `SPC_PE_IMAGE_DATAOBJ`: the indirect data describes a PE image.
    pub const SPC_PE_IMAGE_DATA: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 2, 1, 15];
    /// `SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID`.
    pub const SPC_INDIVIDUAL_SP_KEY_PURPOSE: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 2, 1, 21];
    /// `SPC_CAB_DATA_OBJID`: what catalog tools write for flat (non-PE) files.
    pub const SPC_CAB_DATA: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 2, 1, 25];
    /// `szOID_CTL`: the content type of a catalog.
    pub const CTL: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 10, 1];
}

/// The obsolete file link every `SpcLink` of a driver package carries.
const OBSOLETE: &str = "<<<Obsolete>>>";

/// A digest algorithm Authenticode uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// SHA-1 (v1 catalog members).
    Sha1,
    /// SHA-256 (signatures, v2 catalog members).
    Sha256,
}

impl DigestAlgorithm {
    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut hasher = self.hasher();
        hasher.update(data);
        hasher.finish()
    }

    /// An incremental hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            Self::Sha1 => Hasher::Sha1(Sha1::new()),
            Self::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }

    /// The digest size in bytes.
    pub fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// The name tools print.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
        }
    }

    fn oid(self) -> &'static [u64] {
        match self {
            Self::Sha1 => oid::SHA1,
            Self::Sha256 => oid::SHA256,
        }
    }

    /// `AlgorithmIdentifier { oid, NULL }`.
    pub fn algorithm_identifier(self) -> Vec<u8> {
        asn1::sequence(&[&asn1::oid(self.oid()), &asn1::null()])
    }

    /// The algorithm an `AlgorithmIdentifier` names.
    ///
    /// # Errors
    ///
    /// When it is not SHA-1 or SHA-256.
    pub fn from_identifier(what: &'static str, identifier: Tlv<'_>) -> Result<Self, asn1::Error> {
        let parts = identifier.expect(what, tag::SEQUENCE)?.children(what)?;
        match parts.first() {
            Some(oid) if oid.is_oid(oid::SHA1) => Ok(Self::Sha1),
            Some(oid) if oid.is_oid(oid::SHA256) => Ok(Self::Sha256),
            _ => Err(asn1::error(what, "digest algorithm is neither SHA-1 nor SHA-256")),
        }
    }

    fn pkcs1(self) -> Pkcs1v15Sign {
        match self {
            Self::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            Self::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        }
    }
}

/// An incremental SHA-1 or SHA-256.
pub enum Hasher {
    /// SHA-1.
    Sha1(Sha1),
    /// SHA-256.
    Sha256(Sha256),
}

impl Hasher {
    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(hasher) => hasher.update(data),
            Self::Sha256(hasher) => hasher.update(data),
        }
    }

    /// The digest.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha1(hasher) => hasher.finalize().to_vec(),
            Self::Sha256(hasher) => hasher.finalize().to_vec(),
        }
    }
}

/// What a `SpcIndirectDataContent` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A PE image (`SpcPeImageData`): the digest is the Authenticode PE hash.
    PeImage,
    /// A flat file (`SPC_CAB_DATA_OBJID` with an obsolete link): the digest is of the whole file.
    FlatFile,
}

/// `SpcLink ::= [2] EXPLICIT SpcString ::= [0] IMPLICIT BMPString "<<<Obsolete>>>"`.
fn obsolete_link() -> Vec<u8> {
    let text: Vec<u8> = OBSOLETE.encode_utf16().flat_map(u16::to_be_bytes).collect();
    asn1::context(2, &asn1::context_primitive(0, &text))
}

/// `SpcIndirectDataContent { SpcAttributeTypeAndOptionalValue, DigestInfo }` for `subject`.
pub fn indirect_data(subject: Subject, algorithm: DigestAlgorithm, digest: &[u8]) -> Vec<u8> {
    let data = match subject {
        // SpcPeImageData { flags BIT STRING {} (no flags), file [0] EXPLICIT SpcLink }.
        Subject::PeImage => asn1::sequence(&[
            &asn1::oid(oid::SPC_PE_IMAGE_DATA),
            &asn1::sequence(&[&asn1::bit_string(&[], 0), &asn1::context(0, &obsolete_link())]),
        ]),
        Subject::FlatFile => asn1::sequence(&[&asn1::oid(oid::SPC_CAB_DATA), &obsolete_link()]),
    };
    let digest_info = asn1::sequence(&[&algorithm.algorithm_identifier(), &asn1::octet_string(digest)]);
    asn1::sequence(&[&data, &digest_info])
}

/// What a `SpcIndirectDataContent` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndirectData {
    /// What it describes.
    pub subject: Subject,
    /// The digest algorithm.
    pub algorithm: DigestAlgorithm,
    /// The digest.
    pub digest: Vec<u8>,
}

/// Reads a `SpcIndirectDataContent`.
///
/// # Errors
///
/// When it is malformed, describes something other than a PE image or a flat file, or its
/// digest has the wrong length for its algorithm.
pub fn parse_indirect_data(element: Tlv<'_>) -> Result<IndirectData, asn1::Error> {
    const WHAT: &str = "SpcIndirectDataContent";
    let parts = element.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let [data, digest_info] = parts.as_slice() else {
        return Err(asn1::error(WHAT, format!("{} elements where 2 were expected", parts.len())));
    };
    let data_parts = data.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let subject = match data_parts.first() {
        Some(kind) if kind.is_oid(oid::SPC_PE_IMAGE_DATA) => Subject::PeImage,
        Some(kind) if kind.is_oid(oid::SPC_CAB_DATA) => Subject::FlatFile,
        _ => return Err(asn1::error(WHAT, "describes neither a PE image nor a flat file")),
    };
    let info = digest_info.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let [algorithm, digest] = info.as_slice() else {
        return Err(asn1::error(WHAT, "DigestInfo is not { algorithm, digest }"));
    };
    let algorithm = DigestAlgorithm::from_identifier(WHAT, *algorithm)?;
    let digest = digest.expect(WHAT, tag::OCTET_STRING)?.content.to_vec();
    if digest.len() != algorithm.len() {
        return Err(asn1::error(WHAT, format!("{}-byte digest for {}", digest.len(), algorithm.name())));
    }
    Ok(IndirectData { subject, algorithm, digest })
}

/// An authenticated attribute `{ type, SET { value } }`.
fn attribute(kind: &[u64], value: &[u8]) -> Vec<u8> {
    asn1::sequence(&[&asn1::oid(kind), &asn1::set_of(vec![value.to_vec()])])
}

/// `ContentInfo { signedData, SignedData }` signing `content` (a DER element) of type
/// `content_type` with SHA-256 and `signer`'s key, carrying `signer`'s certificates.
///
/// # Errors
///
/// When `content` is not one DER element, or the key cannot sign.
pub fn sign(content_type: &[u64], content: &[u8], signer: &Signer) -> Result<Vec<u8>, String> {
    let algorithm = DigestAlgorithm::Sha256;
    let element = asn1::read_one("signed content", content, tag::SEQUENCE).map_err(|error| error.to_string())?;
    let message_digest = algorithm.digest(element.content);
    let attributes = asn1::set_of(vec![
        attribute(oid::CONTENT_TYPE, &asn1::oid(content_type)),
        attribute(oid::SPC_SP_OPUS_INFO, &asn1::sequence(&[])),
        attribute(oid::SPC_STATEMENT_TYPE, &asn1::sequence(&[&asn1::oid(oid::SPC_INDIVIDUAL_SP_KEY_PURPOSE)])),
        attribute(oid::MESSAGE_DIGEST, &asn1::octet_string(&message_digest)),
    ]);
    let signature = signer.sign(algorithm.digest(&attributes).as_slice())?;
    let mut implicit_attributes = attributes;
    implicit_attributes[0] = 0xA0;
    let signer_info = asn1::sequence(&[
        &asn1::integer(1),
        &asn1::sequence(&[signer.issuer(), signer.serial_number()]),
        &algorithm.algorithm_identifier(),
        &implicit_attributes,
        &asn1::sequence(&[&asn1::oid(oid::RSA_ENCRYPTION), &asn1::null()]),
        &asn1::octet_string(&signature),
    ]);
    let signed_data = asn1::sequence(&[
        &asn1::integer(1),
        &asn1::set_of(vec![algorithm.algorithm_identifier()]),
        &asn1::sequence(&[&asn1::oid(content_type), &asn1::context(0, content)]),
        &asn1::context(0, &signer.certificates().concat()),
        &asn1::set_of(vec![signer_info]),
    ]);
    Ok(asn1::sequence(&[&asn1::oid(oid::SIGNED_DATA), &asn1::context(0, &signed_data)]))
}

/// A `SignedData` whose signature was verified.
#[derive(Debug, Clone)]
pub struct Verified<'a> {
    /// The signed content (its whole DER element).
    pub content: Tlv<'a>,
    /// The signer's certificate (DER).
    pub signer_certificate: &'a [u8],
}

/// Reads `der` as `ContentInfo { signedData }` of version 1 (as Authenticode requires) with
/// content type `content_type` and one signer, and verifies that signer's signature with the public key of the certificate (carried
/// in the structure) its issuer and serial number name.
///
/// Verifies the cryptography, not trust: which certificates are trusted is the verifier's
/// business (compare [`Verified::signer_certificate`]).
///
/// # Errors
///
/// A message naming what is malformed or does not verify.
pub fn verify<'a>(der: &'a [u8], content_type: &[u64]) -> Result<Verified<'a>, String> {
    verify_inner(der, content_type).map_err(|error| error.to_string())
}

fn verify_inner<'a>(der: &'a [u8], content_type: &[u64]) -> Result<Verified<'a>, asn1::Error> {
    const WHAT: &str = "PKCS #7 SignedData";
    let outer = asn1::read_one(WHAT, der, tag::SEQUENCE)?.children(WHAT)?;
    let [kind, explicit] = outer.as_slice() else {
        return Err(asn1::error(WHAT, "ContentInfo is not { contentType, content }"));
    };
    if !kind.is_oid(oid::SIGNED_DATA) {
        return Err(asn1::error(WHAT, "content type is not signedData"));
    }
    let signed_data = asn1::read_one(WHAT, explicit.expect(WHAT, 0xA0)?.content, tag::SEQUENCE)?;
    let mut fields = signed_data.children(WHAT)?.into_iter();
    let mut next = |name: &'static str| fields.next().ok_or_else(|| asn1::error(WHAT, format!("{name} is missing")));
    let version = next("version")?.small_integer(WHAT)?;
    if version != 1 {
        return Err(asn1::error(WHAT, format!("version {version}: Authenticode signatures are version 1")));
    }
    next("digestAlgorithms")?.expect(WHAT, tag::SET)?;
    let encapsulated = next("contentInfo")?.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let [inner_type, inner_explicit] = encapsulated.as_slice() else {
        return Err(asn1::error(WHAT, "contentInfo carries no content"));
    };
    if !inner_type.is_oid(content_type) {
        return Err(asn1::error(WHAT, "signed content has an unexpected content type"));
    }
    let content = asn1::read_one(WHAT, inner_explicit.expect(WHAT, 0xA0)?.content, tag::SEQUENCE)?;
    let mut element = next("signerInfos")?;
    let mut certificates = Vec::new();
    if element.tag == 0xA0 {
        let holder = element;
        certificates = holder.children(WHAT)?;
        element = next("signerInfos")?;
    }
    if element.tag == 0xA1 {
        element = next("signerInfos")?;
    }
    let signer_infos = element.expect(WHAT, tag::SET)?.children(WHAT)?;
    let [signer_info] = signer_infos.as_slice() else {
        return Err(asn1::error(WHAT, format!("{} signers where one was expected", signer_infos.len())));
    };
    let signer_certificate = verify_signer(*signer_info, &certificates, inner_type.raw, content.content)?;
    Ok(Verified { content, signer_certificate })
}

/// Checks one `SignerInfo` and returns the signer's certificate.
fn verify_signer<'a>(
    signer_info: Tlv<'a>,
    certificates: &[Tlv<'a>],
    content_type: &[u8],
    content_octets: &[u8],
) -> Result<&'a [u8], asn1::Error> {
    const WHAT: &str = "SignerInfo";
    let parts = signer_info.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let [_version, sid, digest_algorithm, attributes, signature_algorithm, signature, ..] = parts.as_slice() else {
        return Err(asn1::error(WHAT, "too few fields (authenticated attributes are required)"));
    };
    let algorithm = DigestAlgorithm::from_identifier(WHAT, *digest_algorithm)?;
    let signature_kind = signature_algorithm.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    if !signature_kind.first().is_some_and(|kind| kind.is_oid(oid::RSA_ENCRYPTION) || kind.is_oid(oid::SHA256_WITH_RSA))
    {
        return Err(asn1::error(WHAT, "the signature algorithm is not RSA"));
    }
    let attributes = attributes.expect(WHAT, 0xA0)?;
    let mut message_digest = None;
    let mut signed_content_type = None;
    for attribute in attributes.children(WHAT)? {
        let fields = attribute.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
        let [kind, values] = fields.as_slice() else {
            return Err(asn1::error(WHAT, "attribute is not { type, values }"));
        };
        let values = values.expect(WHAT, tag::SET)?.children(WHAT)?;
        if kind.is_oid(oid::MESSAGE_DIGEST) {
            message_digest = values.first().map(|value| value.expect(WHAT, tag::OCTET_STRING)).transpose()?;
        } else if kind.is_oid(oid::CONTENT_TYPE) {
            signed_content_type = values.first().copied();
        }
    }
    let message_digest = message_digest.ok_or_else(|| asn1::error(WHAT, "no messageDigest attribute"))?;
    if message_digest.content != algorithm.digest(content_octets).as_slice() {
        return Err(asn1::error(WHAT, "messageDigest does not match the signed content (it was changed)"));
    }
    if signed_content_type.map(|value| value.raw) != Some(content_type) {
        return Err(asn1::error(WHAT, "contentType attribute does not match the content"));
    }
    let sid = sid.expect(WHAT, tag::SEQUENCE)?;
    let certificate = certificates
        .iter()
        .find(|certificate| {
            certificate::parse(certificate.raw)
                .is_ok_and(|parsed| [parsed.issuer, parsed.serial_number].concat() == sid.content)
        })
        .ok_or_else(|| asn1::error(WHAT, "the signer's certificate is not in the signature"))?;
    let parsed = certificate::parse(certificate.raw).map_err(|error| asn1::error(WHAT, error))?;
    let key = <RsaPublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(parsed.public_key)
        .map_err(|_| asn1::error(WHAT, "the signer's key is not RSA"))?;
    let mut signed = attributes.raw.to_vec();
    signed[0] = tag::SET;
    let signature = signature.expect(WHAT, tag::OCTET_STRING)?.content;
    RsaPublicKey::verify(&key, algorithm.pkcs1(), &algorithm.digest(&signed), signature)
        .map_err(|_| asn1::error(WHAT, "the RSA signature does not verify with the signer's certificate"))?;
    Ok(certificate.raw)
}
