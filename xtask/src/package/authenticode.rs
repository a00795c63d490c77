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
//! `cms`'s `SignedDataBuilder` builds it: its `eContent` is an `Any`, so the content goes in as
//! its own DER (no `OCTET STRING`), and the `messageDigest` it computes covers the content's
//! *content octets*, as PKCS #7 prescribes for content types other than `data`. Two fields are
//! set after building, as Authenticode needs them and RFC 5652 does not: `version` 1 (CMS says 3
//! for a content type other than `data`) and the signer's `rsaEncryption` (the builder names
//! `sha256WithRSAEncryption`, `signtool` writes `rsaEncryption`); the signature covers neither.
//! No signing time and no timestamp are added.
//!
//! `SpcIndirectDataContent` is the `authenticode` crate's; `SpcPeImageData` and the obsolete
//! `SpcLink` are spelled out here, as no crate has them (that crate keeps the data as `Any`).

use super::certificate::{self, Signer};
use ::authenticode::{DigestInfo, SpcAttributeTypeAndOptionalValue, SpcIndirectDataContent};
use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos};
use der::asn1::{BitString, BmpString, ContextSpecific, ObjectIdentifier, OctetString, SetOfVec};
use der::oid::db::{rfc5911, rfc5912};
use der::{Any, Decode, Encode, Sequence, Tag, TagMode, TagNumber, Tagged};
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// The object identifiers of Authenticode and catalogs (the standard ones are `const-oid`'s).
pub mod oid {
    use der::asn1::ObjectIdentifier as Oid;

    /// `SPC_INDIRECT_DATA_OBJID`: the content of an Authenticode signature, and a catalog
    /// member's hash attribute.
    pub const SPC_INDIRECT_DATA: Oid = ::authenticode::SPC_INDIRECT_DATA_OBJID;
    /// `SPC_STATEMENT_TYPE_OBJID`.
    pub const SPC_STATEMENT_TYPE: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.11");
    /// `SPC_SP_OPUS_INFO_OBJID`.
    pub const SPC_SP_OPUS_INFO: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.12");
    /// `SPC_PE_IMAGE_DATAOBJ`: the indirect data describes a PE image.
    pub const SPC_PE_IMAGE_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.15");
    /// `SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID`.
    pub const SPC_INDIVIDUAL_SP_KEY_PURPOSE: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.21");
    /// `SPC_CAB_DATA_OBJID`: what catalog tools write for flat (non-PE) files.
    pub const SPC_CAB_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.25");
    /// `szOID_CTL`: the content type of a catalog.
    pub const CTL: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.10.1");
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

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => rfc5912::ID_SHA_1,
            Self::Sha256 => rfc5912::ID_SHA_256,
        }
    }

    /// `AlgorithmIdentifier { oid, NULL }`.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned { oid: self.oid(), parameters: Some(Any::null()) }
    }

    /// The algorithm an `AlgorithmIdentifier` names.
    ///
    /// # Errors
    ///
    /// When it is not SHA-1 or SHA-256.
    pub fn from_identifier(identifier: &AlgorithmIdentifierOwned) -> Result<Self, String> {
        match identifier.oid {
            rfc5912::ID_SHA_1 => Ok(Self::Sha1),
            rfc5912::ID_SHA_256 => Ok(Self::Sha256),
            other => Err(format!("digest algorithm {other} is neither SHA-1 nor SHA-256")),
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

/// `SpcLink ::= [2] EXPLICIT SpcString ::= [0] IMPLICIT BMPString`.
type SpcLink = ContextSpecific<ContextSpecific<BmpString>>;

/// `SpcPeImageData ::= SEQUENCE { flags BIT STRING, file [0] EXPLICIT SpcLink }`.
#[derive(Sequence)]
struct SpcPeImageData {
    flags: BitString,
    file: ContextSpecific<SpcLink>,
}

/// `value` under a context-specific tag `number`.
fn context<T>(number: TagNumber, tag_mode: TagMode, value: T) -> ContextSpecific<T> {
    ContextSpecific { tag_number: number, tag_mode, value }
}

/// The `SpcLink` every file link of a driver package carries: `"<<<Obsolete>>>"`.
fn obsolete_link() -> der::Result<SpcLink> {
    Ok(context(
        TagNumber::N2,
        TagMode::Explicit,
        context(TagNumber::N0, TagMode::Implicit, BmpString::from_utf8(OBSOLETE)?),
    ))
}

/// `SpcIndirectDataContent { SpcAttributeTypeAndOptionalValue, DigestInfo }` for `subject`, as DER.
///
/// Encoding fails only for a digest over 256 MiB; the result is then empty, which [`sign`]
/// refuses as not a `SEQUENCE`.
pub fn indirect_data(subject: Subject, algorithm: DigestAlgorithm, digest: &[u8]) -> Vec<u8> {
    let encode = || -> der::Result<Vec<u8>> {
        let (value_type, value) = match subject {
            Subject::PeImage => {
                let data = SpcPeImageData {
                    flags: BitString::from_bytes(&[])?,
                    file: context(TagNumber::N0, TagMode::Explicit, obsolete_link()?),
                };
                (oid::SPC_PE_IMAGE_DATA, Any::encode_from(&data)?)
            }
            Subject::FlatFile => (oid::SPC_CAB_DATA, Any::encode_from(&obsolete_link()?)?),
        };
        SpcIndirectDataContent {
            data: SpcAttributeTypeAndOptionalValue { value_type, value },
            message_digest: DigestInfo {
                digest_algorithm: algorithm.algorithm_identifier(),
                digest: OctetString::new(digest)?,
            },
        }
        .to_der()
    };
    encode().unwrap_or_default()
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
pub fn parse_indirect_data(element: Any) -> Result<IndirectData, String> {
    let error = |detail: &dyn std::fmt::Display| format!("SpcIndirectDataContent: {detail}");
    let content: SpcIndirectDataContent = element.decode_as().map_err(|e| error(&e))?;
    let subject = match content.data.value_type {
        oid::SPC_PE_IMAGE_DATA => Subject::PeImage,
        oid::SPC_CAB_DATA => Subject::FlatFile,
        _ => return Err(error(&"describes neither a PE image nor a flat file")),
    };
    let algorithm =
        DigestAlgorithm::from_identifier(&content.message_digest.digest_algorithm).map_err(|e| error(&e))?;
    let digest = content.message_digest.digest.into_bytes();
    if digest.len() != algorithm.len() {
        return Err(error(&format!("{}-byte digest for {}", digest.len(), algorithm.name())));
    }
    Ok(IndirectData { subject, algorithm, digest })
}

/// A signed attribute `{ type, SET { value } }`.
fn attribute(kind: ObjectIdentifier, value: Any) -> der::Result<Attribute> {
    Ok(Attribute { oid: kind, values: SetOfVec::try_from(vec![value])? })
}

/// `ContentInfo { signedData, SignedData }` signing `content` (one DER `SEQUENCE`) of type
/// `content_type` with SHA-256 and `signer`'s key, carrying `signer`'s certificates.
///
/// # Errors
///
/// When `content` is not one DER `SEQUENCE`, or the key cannot sign.
pub fn sign(content_type: ObjectIdentifier, content: &[u8], signer: &Signer) -> Result<Vec<u8>, String> {
    let content = Any::from_der(content).map_err(|error| format!("signed content: {error}"))?;
    if content.tag() != Tag::Sequence {
        return Err(format!("signed content: {} where a SEQUENCE was expected", content.tag()));
    }
    let encapsulated = EncapsulatedContentInfo { econtent_type: content_type, econtent: Some(content) };
    let algorithm = DigestAlgorithm::Sha256.algorithm_identifier();
    let leaf = &signer.leaf().tbs_certificate;
    let sid = IssuerAndSerialNumber { issuer: leaf.issuer.clone(), serial_number: leaf.serial_number.clone() };
    let signing_key = signer.signing_key();
    let error = |error: &dyn std::fmt::Display| format!("PKCS #7 signing: {error}");
    let mut signer_info = SignerInfoBuilder::new(
        &signing_key,
        SignerIdentifier::IssuerAndSerialNumber(sid),
        algorithm.clone(),
        &encapsulated,
        None,
    )
    .map_err(|e| error(&e))?;
    let authenticode_attributes = || -> der::Result<[Attribute; 2]> {
        Ok([
            attribute(oid::SPC_SP_OPUS_INFO, Any::new(Tag::Sequence, Vec::new())?)?,
            attribute(oid::SPC_STATEMENT_TYPE, Any::encode_from(&vec![oid::SPC_INDIVIDUAL_SP_KEY_PURPOSE])?)?,
        ])
    };
    for attribute in authenticode_attributes().map_err(|e| error(&e))? {
        signer_info.add_signed_attribute(attribute).map_err(|e| error(&e))?;
    }
    let mut builder = SignedDataBuilder::new(&encapsulated);
    builder.add_digest_algorithm(algorithm).map_err(|e| error(&e))?;
    for certificate in signer.x509_certificates() {
        builder.add_certificate(CertificateChoices::Certificate(certificate.clone())).map_err(|e| error(&e))?;
    }
    builder.add_signer_info::<_, rsa::pkcs1v15::Signature>(signer_info).map_err(|e| error(&e))?;
    let built = builder.build().map_err(|e| error(&e))?;
    let mut signed_data: SignedData = built.content.decode_as().map_err(|e| error(&e))?;
    signed_data.version = CmsVersion::V1;
    let rsa_encryption = AlgorithmIdentifierOwned { oid: rfc5912::RSA_ENCRYPTION, parameters: Some(Any::null()) };
    let signer_infos: Vec<SignerInfo> = Vec::from(signed_data.signer_infos.0)
        .into_iter()
        .map(|info| SignerInfo { signature_algorithm: rsa_encryption.clone(), ..info })
        .collect();
    signed_data.signer_infos = SignerInfos(SetOfVec::try_from(signer_infos).map_err(|e| error(&e))?);
    let content = Any::encode_from(&signed_data).map_err(|e| error(&e))?;
    ContentInfo { content_type: rfc5911::ID_SIGNED_DATA, content }.to_der().map_err(|e| error(&e))
}

/// A `SignedData` whose signature was verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signed content (its whole DER element).
    pub content: Any,
    /// The signer's certificate (DER).
    pub signer_certificate: Vec<u8>,
}

/// Reads `der` as `ContentInfo { signedData }` of version 1 (as Authenticode requires) with
/// content type `content_type` and one signer, and verifies that signer's signature with the
/// public key of the certificate (carried in the structure) its issuer and serial number name.
///
/// Verifies the cryptography, not trust: which certificates are trusted is the verifier's
/// business (compare [`Verified::signer_certificate`]).
///
/// # Errors
///
/// A message naming what is malformed or does not verify.
pub fn verify(der: &[u8], content_type: ObjectIdentifier) -> Result<Verified, String> {
    let error = |detail: &dyn std::fmt::Display| format!("PKCS #7 SignedData: {detail}");
    let content_info = ContentInfo::from_der(der).map_err(|e| error(&e))?;
    if content_info.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(error(&"content type is not signedData"));
    }
    let signed_data: SignedData = content_info.content.decode_as().map_err(|e| error(&e))?;
    if signed_data.version != CmsVersion::V1 {
        return Err(error(&format!("version {:?}: Authenticode signatures are version 1", signed_data.version)));
    }
    let encapsulated = signed_data.encap_content_info;
    if encapsulated.econtent_type != content_type {
        return Err(error(&"signed content has an unexpected content type"));
    }
    let content = encapsulated.econtent.ok_or_else(|| error(&"contentInfo carries no content"))?;
    if content.tag() != Tag::Sequence {
        return Err(error(&"the signed content is not a SEQUENCE"));
    }
    let [signer_info] = signed_data.signer_infos.0.as_slice() else {
        return Err(error(&format!("{} signers where one was expected", signed_data.signer_infos.0.len())));
    };
    let certificates = signed_data.certificates.map(|set| Vec::from(set.0)).unwrap_or_default();
    let signer_certificate = verify_signer(signer_info, &certificates, content_type, content.value())
        .map_err(|detail| format!("SignerInfo: {detail}"))?;
    Ok(Verified { content, signer_certificate })
}

/// Checks one `SignerInfo` and returns the signer's certificate (DER).
fn verify_signer(
    signer_info: &SignerInfo,
    certificates: &[CertificateChoices],
    content_type: ObjectIdentifier,
    content_octets: &[u8],
) -> Result<Vec<u8>, String> {
    let algorithm = DigestAlgorithm::from_identifier(&signer_info.digest_alg)?;
    if ![rfc5912::RSA_ENCRYPTION, rfc5912::SHA_256_WITH_RSA_ENCRYPTION].contains(&signer_info.signature_algorithm.oid) {
        return Err("the signature algorithm is not RSA".into());
    }
    let attributes = signer_info.signed_attrs.as_ref().ok_or("authenticated attributes are required")?;
    let value = |kind: ObjectIdentifier| {
        attributes.iter().find(|attribute| attribute.oid == kind).and_then(|attribute| attribute.values.get(0))
    };
    let message_digest = value(rfc5911::ID_MESSAGE_DIGEST).and_then(|value| value.decode_as::<OctetString>().ok());
    let message_digest = message_digest.ok_or("no messageDigest attribute")?;
    if message_digest.as_bytes() != algorithm.digest(content_octets).as_slice() {
        return Err("messageDigest does not match the signed content (it was changed)".into());
    }
    if value(rfc5911::ID_CONTENT_TYPE).and_then(|value| value.decode_as::<ObjectIdentifier>().ok())
        != Some(content_type)
    {
        return Err("contentType attribute does not match the content".into());
    }
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &signer_info.sid else {
        return Err("the signer is not named by issuer and serial number".into());
    };
    let certificate = certificates
        .iter()
        .find_map(|choice| match choice {
            CertificateChoices::Certificate(certificate)
                if certificate.tbs_certificate.issuer == sid.issuer
                    && certificate.tbs_certificate.serial_number == sid.serial_number =>
            {
                Some(certificate)
            }
            _ => None,
        })
        .ok_or("the signer's certificate is not in the signature")?;
    let key = certificate::public_key(certificate)?;
    let signed = attributes.to_der().map_err(|error| error.to_string())?;
    RsaPublicKey::verify(&key, algorithm.pkcs1(), &algorithm.digest(&signed), signer_info.signature.as_bytes())
        .map_err(|_| "the RSA signature does not verify with the signer's certificate")?;
    certificate.to_der().map_err(|error| error.to_string())
}
