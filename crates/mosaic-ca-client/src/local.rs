//! [`LocalCa`]: an in-process development CA with the federation certificate profile.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use der::{Decode, DecodePem, Encode, EncodePem, pem::LineEnding};
use mosaic_oid::OidRegistry;
use p256::{
    ecdsa::{DerSignature, SigningKey},
    elliptic_curve::Generate,
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
};
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::{
    Certificate,
    builder::{Builder, CertificateBuilder, profile::BuilderProfile},
    certificate::TbsCertificate,
    ext::{
        Extension, ToExtension,
        pkix::{
            AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
            SubjectKeyIdentifier,
        },
    },
    name::Name,
    serial_number::SerialNumber,
    time::{Time, Validity},
};
use zeroize::Zeroizing;

use crate::{
    IssuedCertificate,
    csr::CertNames,
    error::CaError,
    request::{self, DEFAULT_MAX_VALIDITY, DEFAULT_MIN_VALIDITY, IssueRequest},
    verify::{self, Expected},
};

/// How long the development root and intermediate are valid (step's default for a new PKI).
pub(crate) const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// The validity of a leaf when the request names none (step-ca's default).
const DEFAULT_LEAF_VALIDITY: Duration = Duration::from_secs(24 * 60 * 60);
/// How far back a leaf's notBefore is set, like step-ca's default backdate, for clock skew.
pub(crate) const BACKDATE: Duration = Duration::from_secs(60);

/// **For development and tests only.** An in-process certificate authority with a P-256 root and
/// intermediate, issuing the same certificate profile as step-ca with the federation template
/// (CN and SANs from the request, `keyUsage` digitalSignature, `extKeyUsage` clientAuth, and the two
/// non-critical federation extensions), and returning certificates only after the same
/// verification [`StepCaClient`](crate::StepCaClient) runs.
///
/// Its keys live in process memory (or wherever you write [`intermediate_key_pem`](Self::intermediate_key_pem));
/// there is no revocation, no audit trail, no replay protection and no policy. Never use it to
/// authorise real peers: use step-ca for anything beyond a developer's machine or a test.
pub struct LocalCa {
    root: Certificate,
    root_der: Vec<u8>,
    intermediate: Certificate,
    intermediate_der: Vec<u8>,
    intermediate_key: SigningKey,
    registry: OidRegistry,
    min_validity: Duration,
    max_validity: Duration,
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCa")
            .field(
                "root_subject",
                &self.root.tbs_certificate().subject().to_string(),
            )
            .field("intermediate_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The certificate profiles this module's CAs issue ([`LocalCa`] and [`ServerCa`](crate::ServerCa)).
pub(crate) enum Kind {
    /// A self-signed root that may sign `path_len` CA certificates below it.
    Root { path_len: u8 },
    /// An intermediate that signs leaves only.
    Intermediate,
    /// A federation client certificate (step-ca's `mosaic-fed` profile).
    Leaf {
        names: CertNames,
        federation: Vec<Extension>,
    },
    /// A TLS server certificate: `serverAuth`, the given SANs.
    Server { names: CertNames },
}

pub(crate) struct Profile {
    pub(crate) kind: Kind,
    pub(crate) subject: Name,
    pub(crate) issuer: Name,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts: Vec<Extension> = Vec::new();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        let issuer_ski = SubjectKeyIdentifier::try_from(issuer_spk)?;
        let subject = tbs.subject();
        match &self.kind {
            Kind::Root { .. } | Kind::Intermediate => {
                let path_len = match self.kind {
                    Kind::Root { path_len } => path_len,
                    _ => 0,
                };
                exts.push(
                    BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(path_len),
                    }
                    .to_extension(subject, &exts)?,
                );
                exts.push(
                    KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
                        .to_extension(subject, &exts)?,
                );
            }
            Kind::Leaf { names, federation } => {
                exts.push(
                    KeyUsage(KeyUsages::DigitalSignature.into()).to_extension(subject, &exts)?,
                );
                exts.push(ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]).to_extension(subject, &exts)?);
                let san = names
                    .subject_alt_name()
                    .map_err(|_| x509_cert::builder::Error::MissingAttributes)?;
                exts.push(san.to_extension(subject, &exts)?);
                exts.extend(federation.iter().cloned());
            }
            Kind::Server { names } => {
                exts.push(
                    KeyUsage(KeyUsages::DigitalSignature.into()).to_extension(subject, &exts)?,
                );
                exts.push(ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]).to_extension(subject, &exts)?);
                let san = names
                    .subject_alt_name()
                    .map_err(|_| x509_cert::builder::Error::MissingAttributes)?;
                exts.push(san.to_extension(subject, &exts)?);
            }
        }
        exts.push(ski.to_extension(subject, &exts)?);
        if !matches!(self.kind, Kind::Root { .. }) {
            exts.push(
                AuthorityKeyIdentifier {
                    key_identifier: Some(issuer_ski.0),
                    ..Default::default()
                }
                .to_extension(subject, &exts)?,
            );
        }
        Ok(exts)
    }
}

fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| CaError::Internal(format!("random number generator: {e}")))?;
    // Positive and without a leading zero byte, so the DER INTEGER is exactly these 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes).map_err(|e| CaError::Internal(format!("serial number: {e}")))
}

pub(crate) fn new_key() -> Result<SigningKey, CaError> {
    SigningKey::try_generate_from_rng(&mut getrandom::SysRng)
        .map_err(|e| CaError::Internal(format!("random number generator: {e}")))
}

/// Whether `issuer`'s key signed `cert` (ECDSA P-256 with SHA-256, the only kind this CA makes).
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    use p256::ecdsa::{VerifyingKey, signature::Verifier};
    use p256::pkcs8::DecodePublicKey;
    let Ok(spki) = issuer.tbs_certificate().subject_public_key_info().to_der() else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_public_key_der(&spki) else {
        return false;
    };
    let Ok(signature) = DerSignature::try_from(cert.signature().raw_bytes()) else {
        return false;
    };
    let Ok(tbs) = cert.tbs_certificate().to_der() else {
        return false;
    };
    cert.tbs_certificate().issuer() == issuer.tbs_certificate().subject()
        && key.verify(&tbs, &signature).is_ok()
}

/// A name with just a CN; the leaf's subject encoder without its SAN checks.
pub(crate) fn plain_name(cn: &str) -> Result<Name, CaError> {
    let names = CertNames {
        common_name: cn.to_owned(),
        sans: Vec::new(),
        classified: Vec::new(),
    };
    names.subject()
}

pub(crate) fn sign_cert(
    profile: Profile,
    validity: Validity,
    spki: SubjectPublicKeyInfoOwned,
    signer: &SigningKey,
) -> Result<Certificate, CaError> {
    let builder = CertificateBuilder::new(profile, random_serial()?, validity, spki)
        .map_err(|e| CaError::Internal(format!("certificate builder: {e}")))?;
    builder
        .build::<_, DerSignature>(signer)
        .map_err(|e| CaError::Internal(format!("signing a certificate: {e}")))
}

pub(crate) fn validity(not_before: SystemTime, not_after: SystemTime) -> Result<Validity, CaError> {
    let time = |t: SystemTime| {
        Time::try_from(t).map_err(|e| CaError::Internal(format!("certificate time: {e}")))
    };
    Ok(Validity::new(time(not_before)?, time(not_after)?))
}

pub(crate) fn spki_of(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned, CaError> {
    SubjectPublicKeyInfoOwned::from_key(key.verifying_key())
        .map_err(|e| CaError::Internal(format!("encoding a public key: {e}")))
}

pub(crate) fn der_of(cert: &Certificate) -> Result<Vec<u8>, CaError> {
    cert.to_der()
        .map_err(|e| CaError::Internal(format!("encoding a certificate: {e}")))
}

impl LocalCa {
    /// A fresh development CA: a P-256 root "`<name>` Development Root CA" and an intermediate
    /// "`<name>` Development Intermediate CA", valid ten years. The root key is dropped as soon as
    /// the intermediate is signed.
    ///
    /// # Errors
    /// [`CaError::InvalidName`] for an unusable name, [`CaError::Internal`] if the RNG fails.
    pub fn generate(name: &str) -> Result<Self, CaError> {
        let root_key = new_key()?;
        let intermediate_key = new_key()?;
        let now = SystemTime::now();
        let span = validity(now - BACKDATE, now + CA_VALIDITY)?;
        let root_name = plain_name(&format!("{name} Development Root CA"))?;
        let intermediate_name = plain_name(&format!("{name} Development Intermediate CA"))?;
        let root = sign_cert(
            Profile {
                kind: Kind::Root { path_len: 1 },
                subject: root_name.clone(),
                issuer: root_name.clone(),
            },
            span,
            spki_of(&root_key)?,
            &root_key,
        )?;
        let intermediate = sign_cert(
            Profile {
                kind: Kind::Intermediate,
                subject: intermediate_name,
                issuer: root_name,
            },
            span,
            spki_of(&intermediate_key)?,
            &root_key,
        )?;
        drop(root_key);
        Self::assemble(root, intermediate, intermediate_key)
    }

    /// A CA from saved parts: the root and intermediate certificates (PEM) and the intermediate's
    /// PKCS#8 private key (PEM). Checks the key belongs to the intermediate and that the
    /// intermediate chains to the root.
    ///
    /// # Errors
    /// [`CaError::Config`] when a part is malformed or the parts do not belong together.
    pub fn from_pem(
        root_pem: &str,
        intermediate_pem: &str,
        intermediate_key_pem: &str,
    ) -> Result<Self, CaError> {
        let root = Certificate::from_pem(root_pem)
            .map_err(|e| CaError::Config(format!("the local CA's root certificate: {e}")))?;
        let intermediate = Certificate::from_pem(intermediate_pem).map_err(|e| {
            CaError::Config(format!("the local CA's intermediate certificate: {e}"))
        })?;
        let key = SigningKey::from_pkcs8_pem(intermediate_key_pem).map_err(|_| {
            CaError::Config("the local CA's intermediate key is not a P-256 PKCS#8 PEM key".into())
        })?;
        if spki_of(&key)? != *intermediate.tbs_certificate().subject_public_key_info() {
            return Err(CaError::Config(
                "the local CA's intermediate key does not match its certificate".into(),
            ));
        }
        Self::assemble(root, intermediate, key)
    }

    fn assemble(
        root: Certificate,
        intermediate: Certificate,
        intermediate_key: SigningKey,
    ) -> Result<Self, CaError> {
        let root_der = der_of(&root)?;
        let intermediate_der = der_of(&intermediate)?;
        let root_cert = rustls_pki_types::CertificateDer::from(root_der.as_slice());
        webpki::anchor_from_trusted_cert(&root_cert).map_err(|e| {
            CaError::Config(format!("the local CA's root is not a trust anchor: {e}"))
        })?;
        if !signed_by(&intermediate, &root) {
            return Err(CaError::Config(
                "the local CA's intermediate was not issued by its root".into(),
            ));
        }
        Ok(Self {
            root,
            root_der,
            intermediate,
            intermediate_der,
            intermediate_key,
            registry: OidRegistry::default(),
            min_validity: DEFAULT_MIN_VALIDITY,
            max_validity: DEFAULT_MAX_VALIDITY,
        })
    }

    /// Use another OID arc for the federation extensions (default: the development arc).
    #[must_use]
    pub fn with_oid_registry(mut self, registry: OidRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// The validity bounds requests are checked against (default 5 minutes to 24 hours).
    #[must_use]
    pub fn with_validity_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_validity = min;
        self.max_validity = max;
        self
    }

    /// The root certificate, DER (the trust anchor for what this CA issues).
    #[must_use]
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The root certificate, PEM.
    #[must_use]
    pub fn root_pem(&self) -> String {
        self.root.to_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The intermediate certificate, PEM.
    #[must_use]
    pub fn intermediate_pem(&self) -> String {
        self.intermediate.to_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The intermediate's private key, PKCS#8 PEM, to save the CA for [`from_pem`](Self::from_pem).
    ///
    /// # Errors
    /// [`CaError::Internal`] if encoding fails.
    pub fn intermediate_key_pem(&self) -> Result<Zeroizing<String>, CaError> {
        self.intermediate_key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| Zeroizing::new(pem.as_str().to_owned()))
            .map_err(|e| CaError::Internal(format!("encoding the intermediate key: {e}")))
    }

    /// Issues and verifies a certificate, synchronously (what [`Issuer::issue`](crate::Issuer::issue)
    /// runs for this CA).
    ///
    /// # Errors
    /// The request's own errors (ids, names, validity, CSR), then any verification error.
    pub fn issue_now(&self, request: &IssueRequest) -> Result<IssuedCertificate, CaError> {
        let checked = request::check(request, (self.min_validity, self.max_validity))?;
        let now = SystemTime::now();
        let lifetime = checked.validity.unwrap_or(DEFAULT_LEAF_VALIDITY);
        let spki = SubjectPublicKeyInfoOwned::from_der(&checked.csr.spki_der)
            .map_err(|e| CaError::Internal(format!("decoding the CSR's key: {e}")))?;
        let federation = checked
            .identity
            .extensions(&self.registry)
            .map_err(|e| CaError::Internal(format!("encoding the federation extensions: {e}")))?;
        let leaf = sign_cert(
            Profile {
                kind: Kind::Leaf {
                    names: checked.names.clone(),
                    federation: federation.to_vec(),
                },
                subject: checked.names.subject()?,
                issuer: self.intermediate.tbs_certificate().subject().clone(),
            },
            validity(now - BACKDATE, now + lifetime)?,
            spki,
            &self.intermediate_key,
        )?;
        let leaf_der = der_of(&leaf)?;
        let expected = Expected {
            identity: checked.identity,
            names: &checked.names,
            spki_der: &checked.csr.spki_der,
            registry: &self.registry,
        };
        let mut issued = verify::verify_issued(
            &self.root_der,
            &leaf_der,
            std::slice::from_ref(&self.intermediate_der),
            &expected,
            now,
        )?;
        issued.key = checked.csr.key_pem;
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::Issuer;
    use mosaic_oid::{FederationIdentity, GrantId, SubjectUserId, uuid::Uuid};

    const GRANT: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    const USER: &str = "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11";

    impl LocalCa {
        /// Signs a leaf with arbitrary federation extensions, names and key, bypassing the checks:
        /// a CA that misbehaves, which a real step-ca with the right template cannot be made to do.
        fn sign_leaf_raw(
            &self,
            names: &CertNames,
            federation: Vec<Extension>,
            spki: SubjectPublicKeyInfoOwned,
            not_before: SystemTime,
            not_after: SystemTime,
        ) -> Vec<u8> {
            let leaf = sign_cert(
                Profile {
                    kind: Kind::Leaf {
                        names: names.clone(),
                        federation,
                    },
                    subject: names.subject().unwrap(),
                    issuer: self.intermediate.tbs_certificate().subject().clone(),
                },
                validity(not_before, not_after).unwrap(),
                spki,
                &self.intermediate_key,
            )
            .unwrap();
            der_of(&leaf).unwrap()
        }
    }

    fn identity(grant: &str, user: &str) -> FederationIdentity {
        FederationIdentity {
            grant_id: GrantId::new(Uuid::parse_str(grant).unwrap()),
            subject_user_id: SubjectUserId::new(Uuid::parse_str(user).unwrap()),
        }
    }

    #[tokio::test]
    async fn issues_a_verified_certificate_through_the_issuer_trait() {
        let ca = LocalCa::generate("unit").unwrap();
        let issuer: &dyn Issuer = &ca;
        let cert = issuer
            .issue(
                &IssueRequest::new(GRANT, USER, "peer-1.example")
                    .with_sans(["peer-1.example", "127.0.0.1"]),
            )
            .await
            .unwrap();
        assert_eq!(cert.identity, identity(GRANT, USER));
        assert_eq!(cert.serial.len(), 32);
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(cert.chain_pem, ca.intermediate_pem());
        let lifetime = cert.not_after.duration_since(cert.not_before).unwrap();
        assert_eq!(lifetime, DEFAULT_LEAF_VALIDITY + BACKDATE);
        // The key we got back is the certificate's key.
        let key = SigningKey::from_pkcs8_pem(cert.key.as_ref().unwrap()).unwrap();
        let leaf = Certificate::from_der(&cert.cert_der).unwrap();
        assert_eq!(
            &spki_of(&key).unwrap(),
            leaf.tbs_certificate().subject_public_key_info()
        );
        // The extension bytes are exactly the guide's encoding: 0C 24 <36 ASCII bytes>.
        let ext = leaf
            .tbs_certificate()
            .extensions()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == mosaic_oid::GRANT_ID)
            .unwrap();
        assert!(!ext.critical);
        let mut expected = vec![0x0c, 0x24];
        expected.extend_from_slice(GRANT.as_bytes());
        assert_eq!(ext.extn_value.as_bytes(), expected.as_slice());
        // Debug hides the key.
        assert!(!format!("{cert:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn a_callers_csr_is_used_and_no_key_is_returned() {
        let ca = LocalCa::generate("unit").unwrap();
        let names = CertNames::new("peer-2.example", None).unwrap();
        let csr = crate::csr::generate(&names).unwrap();
        let cert = ca
            .issue_now(&IssueRequest::new(GRANT, USER, "peer-2.example").with_csr(csr.pem.clone()))
            .unwrap();
        assert!(cert.key.is_none());
        let leaf = Certificate::from_der(&cert.cert_der).unwrap();
        assert_eq!(
            leaf.tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .unwrap(),
            csr.spki_der
        );
        // A CSR for other names is refused before anything is signed.
        let err = ca
            .issue_now(&IssueRequest::new(GRANT, USER, "peer-3.example").with_csr(csr.pem))
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_CSR");
    }

    #[test]
    fn requested_validity_is_honoured_within_bounds() {
        let ca = LocalCa::generate("unit")
            .unwrap()
            .with_validity_bounds(Duration::from_secs(60), Duration::from_secs(3600));
        let cert = ca
            .issue_now(&IssueRequest::new(GRANT, USER, "p").with_validity(Duration::from_secs(120)))
            .unwrap();
        assert_eq!(
            cert.not_after.duration_since(cert.not_before).unwrap(),
            Duration::from_secs(180)
        );
        let err = ca
            .issue_now(
                &IssueRequest::new(GRANT, USER, "p").with_validity(Duration::from_secs(7200)),
            )
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_VALIDITY");
    }

    #[test]
    fn saved_parts_round_trip_and_mismatches_are_refused() {
        let ca = LocalCa::generate("unit").unwrap();
        let key = ca.intermediate_key_pem().unwrap();
        let again = LocalCa::from_pem(&ca.root_pem(), &ca.intermediate_pem(), &key).unwrap();
        assert_eq!(again.root_der(), ca.root_der());
        let cert = again
            .issue_now(&IssueRequest::new(GRANT, USER, "p"))
            .unwrap();
        // Verifies against the original's root.
        let names = CertNames::new("p", None).unwrap();
        let leaf = Certificate::from_der(&cert.cert_der).unwrap();
        let spki = leaf
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap();
        let expected = Expected {
            identity: identity(GRANT, USER),
            names: &names,
            spki_der: &spki,
            registry: &OidRegistry::default(),
        };
        verify::verify_issued(
            ca.root_der(),
            &cert.cert_der,
            std::slice::from_ref(&ca.intermediate_der),
            &expected,
            SystemTime::now(),
        )
        .unwrap();

        let other = LocalCa::generate("other").unwrap();
        let err = LocalCa::from_pem(&other.root_pem(), &ca.intermediate_pem(), &key).unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        let err = LocalCa::from_pem(
            &ca.root_pem(),
            &ca.intermediate_pem(),
            &other.intermediate_key_pem().unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(!format!("{ca:?}").contains("PRIVATE"));
    }

    /// Each way a CA could hand back a wrong certificate gives its own code.
    #[test]
    fn verification_refuses_every_misissued_certificate() {
        let ca = LocalCa::generate("unit").unwrap();
        let names = CertNames::new("peer-1.example", None).unwrap();
        let csr = crate::csr::generate(&names).unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_der(&csr.spki_der).unwrap();
        let want = identity(GRANT, USER);
        let registry = OidRegistry::default();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let good_ext = want.extensions(&registry).unwrap().to_vec();
        let verify_with = |der: &[u8], root: &[u8], names: &CertNames| {
            let expected = Expected {
                identity: want,
                names,
                spki_der: &csr.spki_der,
                registry: &registry,
            };
            verify::verify_issued(
                root,
                der,
                std::slice::from_ref(&ca.intermediate_der),
                &expected,
                now,
            )
        };

        // The control: a correct certificate passes.
        let good = ca.sign_leaf_raw(
            &names,
            good_ext.clone(),
            spki.clone(),
            now - BACKDATE,
            now + day,
        );
        verify_with(&good, ca.root_der(), &names).unwrap();

        let other = identity(GRANT, "00000000-0000-4000-8000-000000000000");
        let wrong_user = ca.sign_leaf_raw(
            &names,
            other.extensions(&registry).unwrap().to_vec(),
            spki.clone(),
            now - BACKDATE,
            now + day,
        );
        let err = verify_with(&wrong_user, ca.root_der(), &names).unwrap_err();
        assert_eq!(err.code(), "OID_MISMATCH", "{err}");
        assert!(
            err.to_string()
                .contains("00000000-0000-4000-8000-000000000000")
        );

        let missing = ca.sign_leaf_raw(
            &names,
            vec![good_ext[0].clone()],
            spki.clone(),
            now - BACKDATE,
            now + day,
        );
        let err = verify_with(&missing, ca.root_der(), &names).unwrap_err();
        assert_eq!(err.code(), "OID_MISSING", "{err}");
        assert!(err.to_string().contains("1.3.6.1.4.1.99999.2"), "{err}");

        let mut empty_value = good_ext.clone();
        empty_value[0].extn_value = der::asn1::OctetString::new(vec![0x0c, 0x00]).unwrap();
        let zero = ca.sign_leaf_raw(&names, empty_value, spki.clone(), now - BACKDATE, now + day);
        let err = verify_with(&zero, ca.root_der(), &names).unwrap_err();
        assert_eq!(err.code(), "OID_MALFORMED", "{err}");

        let mut critical = good_ext.clone();
        critical[0].critical = true;
        let crit = ca.sign_leaf_raw(&names, critical, spki.clone(), now - BACKDATE, now + day);
        let err = verify_with(&crit, ca.root_der(), &names).unwrap_err();
        assert_eq!(err.code(), "CHAIN_INVALID", "{err}");
        assert!(err.to_string().contains("critical"), "{err}");

        let other_key = spki_of(&new_key().unwrap()).unwrap();
        let swapped = ca.sign_leaf_raw(
            &names,
            good_ext.clone(),
            other_key,
            now - BACKDATE,
            now + day,
        );
        assert_eq!(
            verify_with(&swapped, ca.root_der(), &names)
                .unwrap_err()
                .code(),
            "KEY_MISMATCH"
        );

        let expired = ca.sign_leaf_raw(
            &names,
            good_ext.clone(),
            spki.clone(),
            now - 2 * day,
            now - day,
        );
        let err = verify_with(&expired, ca.root_der(), &names).unwrap_err();
        assert_eq!(err.code(), "CHAIN_INVALID");
        assert!(err.to_string().contains("expired"), "{err}");

        let stranger = LocalCa::generate("stranger").unwrap();
        let err = verify_with(&good, stranger.root_der(), &names).unwrap_err();
        assert_eq!(err.code(), "CHAIN_INVALID");
        assert!(err.to_string().contains("unknown issuer"), "{err}");

        let other_names = CertNames::new(
            "peer-1.example",
            Some(&["peer-1.example".to_owned(), "evil.example".to_owned()]),
        )
        .unwrap();
        let renamed = ca.sign_leaf_raw(
            &other_names,
            good_ext.clone(),
            spki.clone(),
            now - BACKDATE,
            now + day,
        );
        assert_eq!(
            verify_with(&renamed, ca.root_der(), &names)
                .unwrap_err()
                .code(),
            "SUBJECT_MISMATCH"
        );

        let err = verify_with(b"\x30\x03\x02\x01\x01", ca.root_der(), &names).unwrap_err();
        assert_eq!(err.code(), "CERT_PARSE");
    }
}
