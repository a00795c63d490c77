//! Driver catalogs (`.cat`): a certificate trust list of file hashes inside PKCS #7 signed data.
//!
//! ```text
//! CTL ::= SEQUENCE {
//!   SEQUENCE { catalogList 1.3.6.1.4.1.311.12.1.1 }
//!   OCTET STRING (16)                 -- list identifier, random
//!   UTCTime                           -- this update
//!   AlgorithmIdentifier { catalogListMember (v1 .12.1.2 | v2 .12.1.3), NULL }
//!   SEQUENCE OF SEQUENCE {            -- members, sorted by tag
//!     OCTET STRING tag                -- v1: UTF-16LE upper-case hex SHA-1 + NUL; v2: SHA-256
//!     SET OF Attribute {
//!       1.3.6.1.4.1.311.12.2.1 NameValue { "File", 0x10010001, "wanlayer.sys" } (and "OSAttr")
//!       v1: 1.3.6.1.4.1.311.12.2.2 MemberInfo { subject GUID, 512 }
//!       v2: 1.3.6.1.4.1.311.12.2.3 MemberInfo2 { [2] }
//!       1.3.6.1.4.1.311.2.1.4 SpcIndirectDataContent (PE image or flat file, digest) } }
//!   [0] EXPLICIT SEQUENCE OF Extension { 1.3.6.1.4.1.311.12.2.1, NameValue }  -- OS, OSAttr, HWID1
//! }
//! ```
//!
//! Member subject GUIDs are the Windows SIP identifiers: `{C689AAB8-8E78-11D0-8C47-00C04FC295EE}`
//! (PE image) for the driver and `{DE351A42-8E59-11D0-8C47-00C04FC295EE}` (flat file) for the
//! INF, as `makecat` and `inf2cat` write them.
//!
//! No crate writes or reads certificate trust lists, so their structures are declared here; the
//! `der` crate derives their encoding, and the member hash is `authenticode`'s
//! `SpcIndirectDataContent` (see [`authenticode::indirect_data`]).

use super::authenticode::{self, oid, DigestAlgorithm, Subject};
use super::certificate::Signer;
use crate::image::Arch;
use der::asn1::{BmpString, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Any, DateTime, Decode, Encode, Sequence, Tag, TagNumber};
use std::time::Duration;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

/// `szOID_CATALOG_LIST`.
const CATALOG_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.1");
/// `szOID_CATALOG_LIST_MEMBER` (v1 catalogs).
const CATALOG_LIST_MEMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.2");
/// `szOID_CATALOG_LIST_MEMBER2` (v2 catalogs).
const CATALOG_LIST_MEMBER2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.3");
/// `CAT_NAMEVALUE_OBJID`.
const NAME_VALUE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.1");
/// `CAT_MEMBERINFO_OBJID`.
const MEMBER_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.2");
/// `CAT_MEMBERINFO2_OBJID`.
const MEMBER_INFO2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.3");
/// `CRYPTCAT_ATTR_AUTHENTICATED | CRYPTCAT_ATTR_DATAASCII | CRYPTCAT_ATTR_NAMEASCII`.
const NAME_VALUE_FLAGS: u32 = 0x1001_0001;
/// The SIP subject of PE images.
const PE_IMAGE_SIP: &str = "{C689AAB8-8E78-11D0-8C47-00C04FC295EE}";
/// The SIP subject of flat files.
const FLAT_FILE_SIP: &str = "{DE351A42-8E59-11D0-8C47-00C04FC295EE}";
/// The `OSAttr` of a Windows 10 (and later) catalog and its members.
pub const OS_ATTR: &str = "2:10.0";

/// The certificate trust list of a catalog (`CTL_INFO` without the fields catalogs leave out).
#[derive(Sequence)]
struct TrustList {
    subject_usage: Vec<ObjectIdentifier>,
    list_identifier: OctetString,
    this_update: Time,
    subject_algorithm: AlgorithmIdentifierOwned,
    entries: Vec<TrustedSubject>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// One member: its tag and its attributes.
#[derive(Sequence)]
struct TrustedSubject {
    identifier: OctetString,
    attributes: SetOfVec<Attribute>,
}

/// `NameValue ::= SEQUENCE { BMPString name, INTEGER flags, OCTET STRING UTF-16LE value + NUL }`.
#[derive(Sequence)]
struct NameValue {
    name: BmpString,
    flags: u32,
    value: OctetString,
}

/// `MemberInfo ::= SEQUENCE { BMPString subject GUID, INTEGER certificate version }` (v1).
#[derive(Sequence)]
struct MemberInfo {
    subject_guid: BmpString,
    cert_version: u32,
}

/// The catalog format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// SHA-1 member hashes and tags: what Windows is reported to find most reliably.
    V1,
    /// SHA-256 member hashes, raw tags.
    V2,
}

impl Version {
    /// The member digest algorithm.
    pub fn algorithm(self) -> DigestAlgorithm {
        match self {
            Self::V1 => DigestAlgorithm::Sha1,
            Self::V2 => DigestAlgorithm::Sha256,
        }
    }

    /// The member tag for `digest`.
    pub fn tag(self, digest: &[u8]) -> Vec<u8> {
        match self {
            Self::V1 => {
                let hex: String = digest.iter().map(|byte| format!("{byte:02X}")).collect();
                utf16le_nul(&hex)
            }
            Self::V2 => digest.to_vec(),
        }
    }

    /// `1` or `2`.
    pub fn number(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// The `subjectAlgorithm` naming the member format.
    fn member_format(self) -> ObjectIdentifier {
        match self {
            Self::V1 => CATALOG_LIST_MEMBER,
            Self::V2 => CATALOG_LIST_MEMBER2,
        }
    }
}

/// The catalog `OS` attribute of an architecture.
pub fn os_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X64 => "_v100_X64",
        Arch::Arm64 => "_v100_ARM64",
        Arch::X86 => "_v100",
    }
}

/// One file to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The file name, as the INF names it.
    pub file: String,
    /// PE image or flat file.
    pub subject: Subject,
    /// The hash algorithm: the catalog version's in catalogs written here; `inf2cat` may list an
    /// already signed image with the hash of its embedded signature instead.
    pub algorithm: DigestAlgorithm,
    /// Its hash (the Authenticode hash for a PE image).
    pub digest: Vec<u8>,
}

/// Everything a catalog says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// The format.
    pub version: Version,
    /// The list identifier.
    pub list_identifier: [u8; 16],
    /// When it was made.
    pub this_update: DateTime,
    /// Catalog-level name/value attributes (`OS`, `OSAttr`, `HWID1`, ...), in order.
    pub attributes: Vec<(String, String)>,
    /// The members.
    pub members: Vec<Member>,
}

impl Catalog {
    /// A catalog of `members` for `arch`, with the hardware (component) IDs `hwids`, made at
    /// `now_unix` (which must lie in 1970..2049, as the catalog's `UTCTime` does).
    pub fn new(version: Version, arch: Arch, hwids: &[String], members: Vec<Member>, now_unix: u64) -> Self {
        let mut attributes = vec![("OS".to_string(), os_name(arch).to_string()), ("OSAttr".into(), OS_ATTR.into())];
        for (index, hwid) in hwids.iter().enumerate() {
            attributes.push((format!("HWID{}", index + 1), hwid.to_lowercase()));
        }
        let list_identifier = rand::random();
        let this_update = DateTime::from_unix_duration(Duration::from_secs(now_unix)).unwrap_or(DateTime::INFINITY);
        Self { version, list_identifier, this_update, attributes, members }
    }

    /// The member listing `file` (names compare case-insensitively, as Windows does).
    pub fn member(&self, file: &str) -> Option<&Member> {
        self.members.iter().find(|member| member.file.eq_ignore_ascii_case(file))
    }

    /// The CTL's DER.
    ///
    /// # Errors
    ///
    /// When [`Catalog::this_update`] is outside 1950..2049 (a `UTCTime`) or a value is too long
    /// for DER.
    pub fn to_der(&self) -> Result<Vec<u8>, String> {
        self.trust_list().and_then(|list| list.to_der()).map_err(|error| format!("catalog: {error}"))
    }

    fn trust_list(&self) -> der::Result<TrustList> {
        let mut entries = self
            .members
            .iter()
            .map(|member| {
                Ok(TrustedSubject {
                    identifier: OctetString::new(self.version.tag(&member.digest))?,
                    attributes: self.member_attributes(member)?,
                })
            })
            .collect::<der::Result<Vec<_>>>()?;
        entries.sort_by(|a, b| a.identifier.as_bytes().cmp(b.identifier.as_bytes()));
        let extensions = self
            .attributes
            .iter()
            .map(|(name, value)| {
                Ok(Extension {
                    extn_id: NAME_VALUE,
                    critical: false,
                    extn_value: OctetString::new(name_value(name, value)?.to_der()?)?,
                })
            })
            .collect::<der::Result<Vec<_>>>()?;
        Ok(TrustList {
            subject_usage: vec![CATALOG_LIST],
            list_identifier: OctetString::new(self.list_identifier)?,
            this_update: Time::UtcTime(UtcTime::from_date_time(self.this_update)?),
            subject_algorithm: AlgorithmIdentifierOwned {
                oid: self.version.member_format(),
                parameters: Some(Any::null()),
            },
            entries,
            extensions: Some(extensions),
        })
    }

    fn member_attributes(&self, member: &Member) -> der::Result<SetOfVec<Attribute>> {
        let sip = match member.subject {
            Subject::PeImage => PE_IMAGE_SIP,
            Subject::FlatFile => FLAT_FILE_SIP,
        };
        let member_info = match self.version {
            Version::V1 => attribute(
                MEMBER_INFO,
                Any::encode_from(&MemberInfo { subject_guid: BmpString::from_utf8(sip)?, cert_version: 512 })?,
            ),
            // `[2] IMPLICIT` nothing.
            Version::V2 => attribute(
                MEMBER_INFO2,
                Any::new(Tag::ContextSpecific { constructed: false, number: TagNumber::N2 }, Vec::new())?,
            ),
        }?;
        let indirect = Any::from_der(&authenticode::indirect_data(member.subject, member.algorithm, &member.digest))?;
        SetOfVec::try_from(vec![
            attribute(NAME_VALUE, Any::encode_from(&name_value("File", &member.file)?)?)?,
            attribute(NAME_VALUE, Any::encode_from(&name_value("OSAttr", OS_ATTR)?)?)?,
            member_info,
            attribute(oid::SPC_INDIRECT_DATA, indirect)?,
        ])
    }

    /// The catalog signed by `signer`: the `.cat` file's bytes.
    ///
    /// # Errors
    ///
    /// When encoding or signing fails.
    pub fn sign(&self, signer: &Signer) -> Result<Vec<u8>, String> {
        authenticode::sign(oid::CTL, &self.to_der()?, signer)
    }

    /// Reads a CTL.
    ///
    /// # Errors
    ///
    /// When it is malformed, or a member's tag, hash or names are inconsistent.
    pub fn parse(ctl: Any) -> Result<Self, String> {
        let error = |detail: &dyn std::fmt::Display| format!("catalog: {detail}");
        let list: TrustList = ctl.decode_as().map_err(|e| error(&e))?;
        if list.subject_usage.first() != Some(&CATALOG_LIST) {
            return Err(error(&"subject usage is not a catalog list"));
        }
        let version = match list.subject_algorithm.oid {
            CATALOG_LIST_MEMBER => Version::V1,
            CATALOG_LIST_MEMBER2 => Version::V2,
            _ => return Err(error(&"unknown catalog member format")),
        };
        let mut members = Vec::new();
        for entry in &list.entries {
            members.extend(parse_member(entry, version).map_err(|detail| format!("catalog member: {detail}"))?);
        }
        let mut attributes = Vec::new();
        for extension in list.extensions.iter().flatten().filter(|extension| extension.extn_id == NAME_VALUE) {
            attributes
                .push(parse_name_value(NameValue::from_der(extension.extn_value.as_bytes()).map_err(|e| error(&e))?)?);
        }
        Ok(Catalog {
            version,
            list_identifier: list.list_identifier.as_bytes().try_into().unwrap_or([0; 16]),
            this_update: list.this_update.to_date_time(),
            attributes,
            members,
        })
    }
}

/// `text` as UTF-16LE with a terminating NUL, as catalogs store names and values.
fn utf16le_nul(text: &str) -> Vec<u8> {
    text.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

/// A catalog name/value pair.
fn name_value(name: &str, value: &str) -> der::Result<NameValue> {
    Ok(NameValue {
        name: BmpString::from_utf8(name)?,
        flags: NAME_VALUE_FLAGS,
        value: OctetString::new(utf16le_nul(value))?,
    })
}

/// `Attribute ::= SEQUENCE { type, SET { value } }`.
fn attribute(kind: ObjectIdentifier, value: Any) -> der::Result<Attribute> {
    Ok(Attribute { oid: kind, values: SetOfVec::try_from(vec![value])? })
}

/// The name and the value (UTF-16LE, optionally NUL-terminated) of a name/value pair.
fn parse_name_value(pair: NameValue) -> Result<(String, String), String> {
    let bytes = pair.value.as_bytes();
    if bytes.len() % 2 != 0 {
        return Err("catalog name/value: UTF-16 text of odd length".into());
    }
    let mut units: Vec<u16> = bytes.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]])).collect();
    if units.last() == Some(&0) {
        units.pop();
    }
    let value = String::from_utf16(&units).map_err(|_| "catalog name/value: not UTF-16")?;
    Ok((pair.name.to_string(), value))
}

/// One member; `None` for an entry without a hash attribute (`inf2cat` adds SHA-1 tag-only
/// entries beside the SHA-256 ones of a v2 catalog).
fn parse_member(entry: &TrustedSubject, version: Version) -> Result<Option<Member>, String> {
    let mut file = None;
    let mut indirect = None;
    for attribute in entry.attributes.iter() {
        let value = attribute.values.get(0).ok_or("attribute without a value")?;
        if attribute.oid == NAME_VALUE {
            let (name, text) = parse_name_value(value.decode_as().map_err(|error| error.to_string())?)?;
            if name.eq_ignore_ascii_case("File") {
                file = Some(text);
            }
        } else if attribute.oid == oid::SPC_INDIRECT_DATA {
            indirect = Some(authenticode::parse_indirect_data(value.clone())?);
        }
    }
    let Some(indirect) = indirect else { return Ok(None) };
    let file = file.ok_or("no File name attribute")?;
    if indirect.algorithm == version.algorithm() && version.tag(&indirect.digest) != entry.identifier.as_bytes() {
        return Err(format!("{file}: the member tag does not match its hash"));
    }
    Ok(Some(Member { file, subject: indirect.subject, algorithm: indirect.algorithm, digest: indirect.digest }))
}
