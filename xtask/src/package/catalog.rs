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

use super::asn1::{self, tag, CivilTime, Tlv};
use super::authenticode::{self, oid, DigestAlgorithm, Subject};
use super::certificate::Signer;
use crate::image::Arch;

/// `szOID_CATALOG_LIST`.
const CATALOG_LIST: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 12, 1, 1];
/// `szOID_CATALOG_LIST_MEMBER` (v1 catalogs).
const CATALOG_LIST_MEMBER: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 12, 1, 2];
/// `szOID_CATALOG_LIST_MEMBER2` (v2 catalogs).
const CATALOG_LIST_MEMBER2: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 12, 1, 3];
/// `CAT_NAMEVALUE_OBJID`.
const NAME_VALUE: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 12, 2, 1];
/// `CAT_MEMBERINFO_OBJID`.
const MEMBER_INFO: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 12, 2, 2];
/// `CAT_MEMBERINFO2_OBJID`.
const MEMBER_INFO2: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 12, 2, 3];
/// `CRYPTCAT_ATTR_AUTHENTICATED | CRYPTCAT_ATTR_DATAASCII | CRYPTCAT_ATTR_NAMEASCII`.
const NAME_VALUE_FLAGS: u64 = 0x1001_0001;
/// The SIP subject of PE images.
const PE_IMAGE_SIP: &str = "{C689AAB8-8E78-11D0-8C47-00C04FC295EE}";
/// The SIP subject of flat files.
const FLAT_FILE_SIP: &str = "{DE351A42-8E59-11D0-8C47-00C04FC295EE}";
/// The `OSAttr` of a Windows 10 (and later) catalog and its members.
pub const OS_ATTR: &str = "2:10.0";

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
                asn1::utf16le_nul(&hex)
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
}

/// The catalog `OS` attribute of an architecture.
pub fn os_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X64 => "_v100_X64",
        Arch::Arm64 => "_v100_ARM64",
        // inf2cat writes `_v100` for Windows 10 x86 (x86-facts §6; there is no x86 Windows 11).
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
    pub this_update: CivilTime,
    /// Catalog-level name/value attributes (`OS`, `OSAttr`, `HWID1`, ...), in order.
    pub attributes: Vec<(String, String)>,
    /// The members.
    pub members: Vec<Member>,
}

impl Catalog {
    /// A catalog of `members` for `arch`, with the hardware (component) IDs `hwids`.
    pub fn new(version: Version, arch: Arch, hwids: &[String], members: Vec<Member>, now_unix: u64) -> Self {
        let mut attributes = vec![("OS".to_string(), os_name(arch).to_string()), ("OSAttr".into(), OS_ATTR.into())];
        for (index, hwid) in hwids.iter().enumerate() {
            attributes.push((format!("HWID{}", index + 1), hwid.to_lowercase()));
        }
        let list_identifier = rand::random();
        Self { version, list_identifier, this_update: CivilTime::from_unix(now_unix), attributes, members }
    }

    /// The member listing `file` (names compare case-insensitively, as Windows does).
    pub fn member(&self, file: &str) -> Option<&Member> {
        self.members.iter().find(|member| member.file.eq_ignore_ascii_case(file))
    }

    /// The CTL's DER.
    pub fn to_der(&self) -> Vec<u8> {
        let mut members: Vec<(Vec<u8>, Vec<u8>)> = self
            .members
            .iter()
            .map(|member| {
                let tag = self.version.tag(&member.digest);
                let entry = asn1::sequence(&[&asn1::octet_string(&tag), &self.member_attributes(member)]);
                (tag, entry)
            })
            .collect();
        members.sort();
        let entries: Vec<u8> = members.into_iter().flat_map(|(_, entry)| entry).collect();
        let extensions: Vec<Vec<u8>> = self
            .attributes
            .iter()
            .map(|(name, value)| {
                asn1::sequence(&[&asn1::oid(NAME_VALUE), &asn1::octet_string(&name_value(name, value))])
            })
            .collect();
        let member_algorithm = match self.version {
            Version::V1 => CATALOG_LIST_MEMBER,
            Version::V2 => CATALOG_LIST_MEMBER2,
        };
        asn1::sequence(&[
            &asn1::sequence(&[&asn1::oid(CATALOG_LIST)]),
            &asn1::octet_string(&self.list_identifier),
            &asn1::utc_time(&self.this_update),
            &asn1::sequence(&[&asn1::oid(member_algorithm), &asn1::null()]),
            &asn1::tlv(tag::SEQUENCE, &entries),
            &asn1::context(0, &asn1::sequence(&[&extensions.concat()])),
        ])
    }

    fn member_attributes(&self, member: &Member) -> Vec<u8> {
        let sip = match member.subject {
            Subject::PeImage => PE_IMAGE_SIP,
            Subject::FlatFile => FLAT_FILE_SIP,
        };
        let member_info = match self.version {
            Version::V1 => attribute(MEMBER_INFO, &asn1::sequence(&[&asn1::bmp_string(sip), &asn1::integer(512)])),
            Version::V2 => attribute(MEMBER_INFO2, &asn1::context_primitive(2, &[])),
        };
        let indirect = authenticode::indirect_data(member.subject, member.algorithm, &member.digest);
        asn1::set_of(vec![
            attribute(NAME_VALUE, &name_value("File", &member.file)),
            attribute(NAME_VALUE, &name_value("OSAttr", OS_ATTR)),
            member_info,
            attribute(oid::SPC_INDIRECT_DATA, &indirect),
        ])
    }

    /// The catalog signed by `signer`: the `.cat` file's bytes.
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn sign(&self, signer: &Signer) -> Result<Vec<u8>, String> {
        authenticode::sign(oid::CTL, &self.to_der(), signer)
    }

    /// Reads a CTL.
    ///
    /// # Errors
    ///
    /// When it is malformed, or a member's tag, hash or names are inconsistent.
    pub fn parse(ctl: Tlv<'_>) -> Result<Self, String> {
        parse_ctl(ctl).map_err(|error| error.to_string())
    }
}

/// `NameValue ::= SEQUENCE { BMPString name, INTEGER flags, OCTET STRING UTF-16LE value + NUL }`.
fn name_value(name: &str, value: &str) -> Vec<u8> {
    asn1::sequence(&[
        &asn1::bmp_string(name),
        &asn1::integer(NAME_VALUE_FLAGS),
        &asn1::octet_string(&asn1::utf16le_nul(value)),
    ])
}

/// `Attribute ::= SEQUENCE { type, SET { value } }`.
fn attribute(kind: &[u64], value: &[u8]) -> Vec<u8> {
    asn1::sequence(&[&asn1::oid(kind), &asn1::set_of(vec![value.to_vec()])])
}

fn parse_name_value(element: Tlv<'_>) -> Result<(String, String), asn1::Error> {
    const WHAT: &str = "catalog name/value";
    let fields = element.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let [name, _flags, value] = fields.as_slice() else {
        return Err(asn1::error(WHAT, "not { name, flags, value }"));
    };
    let value = asn1::utf16le_text(WHAT, value.expect(WHAT, tag::OCTET_STRING)?.content)?;
    Ok((name.bmp_text(WHAT)?, value))
}

fn parse_time(element: Tlv<'_>) -> Result<CivilTime, asn1::Error> {
    const WHAT: &str = "catalog thisUpdate";
    let text =
        std::str::from_utf8(element.expect(WHAT, tag::UTC_TIME)?.content).map_err(|_| asn1::error(WHAT, "not text"))?;
    let digits = text.strip_suffix('Z').filter(|d| d.len() == 12 && d.bytes().all(|b| b.is_ascii_digit()));
    let digits = digits.ok_or_else(|| asn1::error(WHAT, "not YYMMDDhhmmssZ"))?;
    let field = |at: usize| digits.get(at..at + 2).and_then(|d| d.parse::<u32>().ok()).unwrap_or_default();
    let year = field(0) + if field(0) >= 50 { 1900 } else { 2000 };
    Ok(CivilTime { year, month: field(2), day: field(4), hour: field(6), minute: field(8), second: field(10) })
}

fn parse_ctl(ctl: Tlv<'_>) -> Result<Catalog, asn1::Error> {
    const WHAT: &str = "catalog";
    let fields = ctl.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let [usage, identifier, this_update, algorithm, entries, rest @ ..] = fields.as_slice() else {
        return Err(asn1::error(WHAT, "too few fields for a certificate trust list"));
    };
    if !usage.children(WHAT)?.first().is_some_and(|usage| usage.is_oid(CATALOG_LIST)) {
        return Err(asn1::error(WHAT, "subject usage is not a catalog list"));
    }
    let list_identifier = identifier.expect(WHAT, tag::OCTET_STRING)?.content.try_into().unwrap_or([0; 16]);
    let algorithm = algorithm.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let version = match algorithm.first() {
        Some(kind) if kind.is_oid(CATALOG_LIST_MEMBER) => Version::V1,
        Some(kind) if kind.is_oid(CATALOG_LIST_MEMBER2) => Version::V2,
        _ => return Err(asn1::error(WHAT, "unknown catalog member format")),
    };
    let mut members = Vec::new();
    for entry in entries.expect(WHAT, tag::SEQUENCE)?.children(WHAT)? {
        members.extend(parse_member(entry, version)?);
    }
    let mut attributes = Vec::new();
    if let Some(extensions) = rest.iter().find(|element| element.tag == 0xA0) {
        let list = asn1::read_one(WHAT, extensions.content, tag::SEQUENCE)?;
        for extension in list.children(WHAT)? {
            let parts = extension.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
            if parts.first().is_some_and(|kind| kind.is_oid(NAME_VALUE)) {
                let value = parts.last().ok_or_else(|| asn1::error(WHAT, "empty extension"))?;
                let inner = asn1::read_one(WHAT, value.expect(WHAT, tag::OCTET_STRING)?.content, tag::SEQUENCE)?;
                attributes.push(parse_name_value(inner)?);
            }
        }
    }
    Ok(Catalog { version, list_identifier, this_update: parse_time(*this_update)?, attributes, members })
}

/// One member; `None` for an entry without a hash attribute (`inf2cat` adds SHA-1 tag-only
/// entries beside the SHA-256 ones of a v2 catalog).
fn parse_member(entry: Tlv<'_>, version: Version) -> Result<Option<Member>, asn1::Error> {
    const WHAT: &str = "catalog member";
    let fields = entry.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
    let [member_tag, attributes] = fields.as_slice() else {
        return Err(asn1::error(WHAT, "not { tag, attributes }"));
    };
    let member_tag = member_tag.expect(WHAT, tag::OCTET_STRING)?.content;
    let mut file = None;
    let mut indirect = None;
    for attribute in attributes.expect(WHAT, tag::SET)?.children(WHAT)? {
        let parts = attribute.expect(WHAT, tag::SEQUENCE)?.children(WHAT)?;
        let [kind, values] = parts.as_slice() else {
            return Err(asn1::error(WHAT, "attribute is not { type, values }"));
        };
        let value = *values
            .expect(WHAT, tag::SET)?
            .children(WHAT)?
            .first()
            .ok_or_else(|| asn1::error(WHAT, "attribute without a value"))?;
        if kind.is_oid(NAME_VALUE) {
            let (name, text) = parse_name_value(value)?;
            if name.eq_ignore_ascii_case("File") {
                file = Some(text);
            }
        } else if kind.is_oid(oid::SPC_INDIRECT_DATA) {
            indirect = Some(authenticode::parse_indirect_data(value)?);
        }
    }
    let Some(indirect) = indirect else { return Ok(None) };
    let file = file.ok_or_else(|| asn1::error(WHAT, "no File name attribute"))?;
    if indirect.algorithm == version.algorithm() && version.tag(&indirect.digest) != member_tag {
        return Err(asn1::error(WHAT, format!("{file}: the member tag does not match its hash")));
    }
    Ok(Some(Member { file, subject: indirect.subject, algorithm: indirect.algorithm, digest: indirect.digest }))
}
