//! Certificate names, key generation and PKCS#10 requests (made with `x509_cert::request`, or the
//! caller's own, validated).

use std::net::IpAddr;

use const_oid::db::{rfc4519::COMMON_NAME, rfc5912::ID_EXTENSION_REQ};
use der::{
    Decode, DecodePem, Encode, EncodePem,
    asn1::{Ia5String, Utf8StringRef},
    pem::LineEnding,
};
use p256::{
    ecdsa::{DerSignature, SigningKey, VerifyingKey, signature::Verifier},
    pkcs8::{DecodePublicKey, EncodePrivateKey},
};
use x509_cert::{
    attr::AttributeTypeAndValue,
    builder::Builder,
    ext::pkix::{SubjectAltName, name::GeneralName},
    name::{Name, RdnSequence, RelativeDistinguishedName},
    request::{CertReq, ExtensionReq, RequestBuilder},
};
use zeroize::Zeroizing;

use crate::error::{CaError, shorten};

/// X.520's upper bound for a common name.
const MAX_COMMON_NAME: usize = 64;
/// The OID of ecdsa-with-SHA256, the only CSR signature this client accepts.
const ECDSA_WITH_SHA256: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ECDSA_WITH_SHA_256;

/// One subject alternative name, classified the way step-ca classifies the token's `sans`
/// (IP address, URI, e-mail address, otherwise DNS name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum San {
    Ip(IpAddr),
    Uri(String),
    Email(String),
    Dns(String),
}

impl San {
    fn classify(text: &str) -> Result<San, CaError> {
        if text.is_empty() {
            return Err(CaError::InvalidName("an empty SAN".into()));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CaError::InvalidName(format!(
                "SAN {:?} must be printable ASCII without spaces",
                shorten(text)
            )));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        if let Some((scheme, rest)) = text.split_once(':') {
            let scheme_ok = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if scheme_ok && !rest.is_empty() {
                return Ok(San::Uri(text.to_owned()));
            }
            return Err(CaError::InvalidName(format!(
                "SAN {:?} contains ':' but is neither an IP address nor a URI",
                shorten(text)
            )));
        }
        if text.contains('@') {
            return Ok(San::Email(text.to_owned()));
        }
        Ok(San::Dns(text.to_owned()))
    }

    fn to_general_name(&self) -> Result<GeneralName, CaError> {
        let ia5 = |s: &str| {
            Ia5String::new(s)
                .map_err(|_| CaError::InvalidName(format!("SAN {:?} is not IA5 text", shorten(s))))
        };
        Ok(match self {
            San::Ip(ip) => GeneralName::from(*ip),
            San::Uri(s) => GeneralName::UniformResourceIdentifier(ia5(s)?),
            San::Email(s) => GeneralName::Rfc822Name(ia5(s)?),
            San::Dns(s) => GeneralName::DnsName(ia5(s)?),
        })
    }

    fn from_general_name(name: &GeneralName) -> Result<San, String> {
        Ok(match name {
            GeneralName::DnsName(s) => San::Dns(s.to_string()),
            GeneralName::Rfc822Name(s) => San::Email(s.to_string()),
            GeneralName::UniformResourceIdentifier(s) => San::Uri(s.to_string()),
            GeneralName::IpAddress(bytes) => match bytes.as_bytes().len() {
                4 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(bytes.as_bytes());
                    San::Ip(IpAddr::from(a))
                }
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(bytes.as_bytes());
                    San::Ip(IpAddr::from(a))
                }
                n => return Err(format!("an IP address SAN of {n} bytes")),
            },
            other => {
                return Err(format!(
                    "an unsupported SAN type ({})",
                    general_name_kind(other)
                ));
            }
        })
    }
}

fn general_name_kind(name: &GeneralName) -> &'static str {
    match name {
        GeneralName::OtherName(_) => "otherName",
        GeneralName::Rfc822Name(_) => "rfc822Name",
        GeneralName::DnsName(_) => "dNSName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EdiPartyName(_) => "ediPartyName",
        GeneralName::UniformResourceIdentifier(_) => "uniformResourceIdentifier",
        GeneralName::IpAddress(_) => "iPAddress",
        GeneralName::RegisteredId(_) => "registeredID",
    }
}

/// The validated common name and SANs of a certificate to issue.
#[derive(Clone, Debug)]
pub(crate) struct CertNames {
    pub(crate) common_name: String,
    /// The SANs as the token's `sans` claim lists them.
    pub(crate) sans: Vec<String>,
    /// The same, classified and sorted (for comparisons).
    pub(crate) classified: Vec<San>,
}

impl CertNames {
    /// Validates a CN and the SANs (`[cn]` when none are given, as step-ca does).
    pub(crate) fn new(common_name: &str, sans: Option<&[String]>) -> Result<Self, CaError> {
        if common_name.is_empty() {
            return Err(CaError::InvalidName("the common name is empty".into()));
        }
        if common_name.chars().count() > MAX_COMMON_NAME {
            return Err(CaError::InvalidName(format!(
                "the common name {:?} is longer than {MAX_COMMON_NAME} characters",
                shorten(common_name)
            )));
        }
        if common_name.chars().any(char::is_control) {
            return Err(CaError::InvalidName(
                "the common name contains control characters".into(),
            ));
        }
        let sans: Vec<String> = match sans {
            Some(list) if !list.is_empty() => list.to_vec(),
            _ => vec![common_name.to_owned()],
        };
        let mut classified = sans
            .iter()
            .map(|s| San::classify(s))
            .collect::<Result<Vec<_>, _>>()?;
        classified.sort();
        if classified.windows(2).any(|w| w[0] == w[1]) {
            return Err(CaError::InvalidName("a SAN is listed twice".into()));
        }
        Ok(Self {
            common_name: common_name.to_owned(),
            sans,
            classified,
        })
    }

    /// The subject: a single CN attribute, as a UTF8String.
    pub(crate) fn subject(&self) -> Result<Name, CaError> {
        let value = der::asn1::Any::encode_from(
            &Utf8StringRef::new(&self.common_name)
                .map_err(|e| CaError::InvalidName(e.to_string()))?,
        )
        .map_err(|e| CaError::Internal(format!("encoding the subject: {e}")))?;
        let rdn = RelativeDistinguishedName::try_from(vec![AttributeTypeAndValue {
            oid: COMMON_NAME,
            value,
        }])
        .map_err(|e| CaError::Internal(format!("encoding the subject: {e}")))?;
        let mut seq = RdnSequence::default();
        seq.push(rdn);
        // `Name` has no safe constructor from an RdnSequence; the two share one DER encoding.
        let der = seq
            .to_der()
            .map_err(|e| CaError::Internal(format!("encoding the subject: {e}")))?;
        Name::from_der(&der).map_err(|e| CaError::Internal(format!("encoding the subject: {e}")))
    }

    /// The subjectAltName extension value.
    pub(crate) fn subject_alt_name(&self) -> Result<SubjectAltName, CaError> {
        Ok(SubjectAltName(
            self.classified
                .iter()
                .map(San::to_general_name)
                .collect::<Result<_, _>>()?,
        ))
    }

    /// Checks a certificate's (or CSR's) names against these. `what` says which object is checked.
    pub(crate) fn check(
        &self,
        subject: &Name,
        san: Option<&SubjectAltName>,
        what: &str,
    ) -> Result<(), String> {
        let cn = common_name_of(subject).map_err(|e| format!("{what}: {e}"))?;
        if cn.as_deref() != Some(self.common_name.as_str()) {
            return Err(format!(
                "{what} has common name {:?}, expected {:?}",
                cn.as_deref().map(shorten).unwrap_or_default(),
                shorten(&self.common_name)
            ));
        }
        let mut found = Vec::new();
        for name in san.map(|s| s.0.as_slice()).unwrap_or_default() {
            found.push(San::from_general_name(name).map_err(|e| format!("{what} has {e}"))?);
        }
        found.sort();
        if found != self.classified {
            return Err(format!(
                "{what} has SANs {:?}, expected exactly {:?}",
                found.iter().map(san_text).collect::<Vec<_>>(),
                self.sans
            ));
        }
        Ok(())
    }
}

fn san_text(san: &San) -> String {
    match san {
        San::Ip(ip) => ip.to_string(),
        San::Uri(s) | San::Email(s) | San::Dns(s) => s.clone(),
    }
}

/// The single common name of a name, if any (two CNs are refused).
pub(crate) fn common_name_of(name: &Name) -> Result<Option<String>, String> {
    let mut cns = name.iter().filter(|atv| atv.oid == COMMON_NAME);
    let Some(first) = cns.next() else {
        return Ok(None);
    };
    if cns.next().is_some() {
        return Err("more than one common name".into());
    }
    let text = x509_cert::ext::pkix::name::DirectoryString::try_from(&first.value)
        .map_err(|e| format!("the common name is not a directory string ({e})"))?;
    Ok(Some(String::from(text)))
}

/// A PKCS#10 request ready to send, with what verification needs later. `Debug` hides the key.
pub(crate) struct PreparedCsr {
    pub(crate) der: Vec<u8>,
    pub(crate) pem: String,
    /// The request's SubjectPublicKeyInfo, DER, to compare with the issued certificate's.
    pub(crate) spki_der: Vec<u8>,
    /// The private key as PKCS#8 PEM, when this client generated it.
    pub(crate) key_pem: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for PreparedCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCsr")
            .field("pem", &self.pem)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn internal(what: &str) -> impl Fn(der::Error) -> CaError + '_ {
    move |e| CaError::Internal(format!("{what}: {e}"))
}

/// Generates a fresh P-256 key and a CSR for `names`.
pub(crate) fn generate(names: &CertNames) -> Result<PreparedCsr, CaError> {
    use p256::elliptic_curve::Generate;
    let key = SigningKey::try_generate_from_rng(&mut getrandom::SysRng)
        .map_err(|e| CaError::Internal(format!("random number generator: {e}")))?;
    let mut builder = RequestBuilder::new(names.subject()?)
        .map_err(|e| CaError::Internal(format!("starting the CSR: {e}")))?;
    builder
        .add_extension(&names.subject_alt_name()?)
        .map_err(internal("adding the SAN extension"))?;
    let csr = builder
        .build::<_, DerSignature>(&key)
        .map_err(|e| CaError::Internal(format!("signing the CSR: {e}")))?;
    let der = csr.to_der().map_err(internal("encoding the CSR"))?;
    let pem = csr
        .to_pem(LineEnding::LF)
        .map_err(internal("encoding the CSR"))?;
    let spki_der = csr
        .info
        .public_key
        .to_der()
        .map_err(internal("encoding the public key"))?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| CaError::Internal(format!("encoding the private key: {e}")))?;
    Ok(PreparedCsr {
        der,
        pem,
        spki_der,
        key_pem: Some(Zeroizing::new(key_pem.as_str().to_owned())),
    })
}

/// Validates a caller's CSR (PEM or DER): it parses, is signed by its own P-256 key with
/// ecdsa-with-SHA256, and its CN and SANs are exactly `names`.
pub(crate) fn validate(input: &[u8], names: &CertNames) -> Result<PreparedCsr, CaError> {
    let bad = |msg: String| CaError::InvalidCsr(msg);
    let trimmed = input.trim_ascii_start();
    let csr = if trimmed.starts_with(b"-----BEGIN") {
        let text =
            std::str::from_utf8(trimmed).map_err(|_| bad("the PEM is not UTF-8 text".into()))?;
        CertReq::from_pem(text).map_err(|e| bad(format!("not a PEM CERTIFICATE REQUEST: {e}")))?
    } else {
        CertReq::from_der(input).map_err(|e| bad(format!("not a DER PKCS#10 request: {e}")))?
    };
    if csr.algorithm.oid != ECDSA_WITH_SHA256 {
        return Err(bad(format!(
            "signed with {}; only ecdsa-with-SHA256 over a P-256 key is accepted",
            csr.algorithm.oid
        )));
    }
    let spki_der = csr
        .info
        .public_key
        .to_der()
        .map_err(|e| bad(format!("public key: {e}")))?;
    let verifying_key = VerifyingKey::from_public_key_der(&spki_der)
        .map_err(|_| bad("the public key is not a P-256 EC key".into()))?;
    let info_der = csr
        .info
        .to_der()
        .map_err(|e| bad(format!("request info: {e}")))?;
    let signature = DerSignature::try_from(csr.signature.raw_bytes())
        .map_err(|_| bad("the signature is not a DER ECDSA signature".into()))?;
    verifying_key.verify(&info_der, &signature).map_err(|_| {
        bad(
            "the self-signature does not verify (the CSR was altered or signed by another key)"
                .into(),
        )
    })?;

    let mut san = None;
    for attr in csr
        .info
        .attributes
        .iter()
        .filter(|a| a.oid == ID_EXTENSION_REQ)
    {
        for value in attr.values.iter() {
            let ext_req: ExtensionReq = value
                .decode_as()
                .map_err(|e| bad(format!("the extensionRequest attribute is malformed: {e}")))?;
            for ext in ext_req
                .0
                .iter()
                .filter(|e| e.extn_id == <SubjectAltName as const_oid::AssociatedOid>::OID)
            {
                if san.is_some() {
                    return Err(bad("the CSR requests subjectAltName twice".into()));
                }
                san = Some(
                    SubjectAltName::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| bad(format!("the subjectAltName is malformed: {e}")))?,
                );
            }
        }
    }
    names
        .check(&csr.info.subject, san.as_ref(), "the CSR")
        .map_err(bad)?;
    let der = csr.to_der().map_err(|e| bad(format!("re-encoding: {e}")))?;
    let pem = csr
        .to_pem(LineEnding::LF)
        .map_err(|e| bad(format!("re-encoding: {e}")))?;
    Ok(PreparedCsr {
        der,
        pem,
        spki_der,
        key_pem: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn names_default_to_the_common_name_and_classify_like_step() {
        let n = CertNames::new("peer-1.example", None).unwrap();
        assert_eq!(n.sans, vec!["peer-1.example"]);
        assert_eq!(n.classified, vec![San::Dns("peer-1.example".into())]);
        let sans = vec![
            "10.0.0.1".to_owned(),
            "::1".to_owned(),
            "spiffe://mosaic/peer".to_owned(),
            "ops@example.org".to_owned(),
            "peer-1.example".to_owned(),
        ];
        let n = CertNames::new("peer-1.example", Some(&sans)).unwrap();
        assert!(n.classified.contains(&San::Ip("10.0.0.1".parse().unwrap())));
        assert!(
            n.classified
                .contains(&San::Uri("spiffe://mosaic/peer".into()))
        );
        assert!(n.classified.contains(&San::Email("ops@example.org".into())));
    }

    #[test]
    fn bad_names_are_invalid_name() {
        let long = "a".repeat(65);
        for (cn, sans) in [
            ("", None),
            (long.as_str(), None),
            ("has\ncontrol", None),
            ("has space", None),
            ("ok", Some(vec!["dup".to_owned(), "dup".to_owned()])),
            ("ok", Some(vec!["host:port:x y".to_owned()])),
            ("ok", Some(vec!["ünïcode".to_owned()])),
        ] {
            let err = CertNames::new(cn, sans.as_deref()).unwrap_err();
            assert_eq!(err.code(), "INVALID_NAME", "{cn:?}: {err}");
        }
    }

    #[test]
    fn generated_csr_validates_and_carries_the_names() {
        let names = CertNames::new(
            "peer-1.example",
            Some(&["peer-1.example".to_owned(), "127.0.0.1".to_owned()]),
        )
        .unwrap();
        let prepared = generate(&names).unwrap();
        assert!(
            prepared
                .pem
                .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
        );
        assert!(
            prepared
                .key_pem
                .as_ref()
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        // Our own validator accepts it, from PEM and from DER.
        let again = validate(prepared.pem.as_bytes(), &names).unwrap();
        assert_eq!(again.der, prepared.der);
        assert_eq!(again.spki_der, prepared.spki_der);
        assert!(again.key_pem.is_none());
        validate(&prepared.der, &names).unwrap();
        // But not for other names.
        let other = CertNames::new("peer-2.example", None).unwrap();
        let err = validate(&prepared.der, &other).unwrap_err();
        assert_eq!(err.code(), "INVALID_CSR");
        assert!(err.to_string().contains("common name"), "{err}");
        let fewer = CertNames::new("peer-1.example", None).unwrap();
        let err = validate(&prepared.der, &fewer).unwrap_err();
        assert!(err.to_string().contains("SANs"), "{err}");
    }

    #[test]
    fn tampered_or_garbage_csrs_are_invalid_csr() {
        let names = CertNames::new("peer-1.example", None).unwrap();
        let prepared = generate(&names).unwrap();
        // Flip a byte inside the CN text: still DER, but the signature no longer matches.
        let mut tampered = prepared.der.clone();
        let pos = tampered.windows(6).position(|w| w == b"peer-1").unwrap();
        tampered[pos] = b'q';
        let err =
            validate(&tampered, &CertNames::new("qeer-1.example", None).unwrap()).unwrap_err();
        assert_eq!(err.code(), "INVALID_CSR");
        assert!(err.to_string().contains("self-signature"), "{err}");
        for garbage in [
            &b""[..],
            b"\x30\x03\x02\x01",
            b"-----BEGIN CERTIFICATE REQUEST-----\nxx\n",
            b"hello",
        ] {
            assert_eq!(validate(garbage, &names).unwrap_err().code(), "INVALID_CSR");
        }
    }
}
