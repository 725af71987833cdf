//! The federation OIDs: constants for the development arc, and a registry for a deployment's own arc.

use core::{fmt, str::FromStr};

use const_oid::{Arc, ObjectIdentifier};

use crate::Error;

/// `1.3.6.1.4.1`: IANA's Private Enterprise Numbers (`iso.org.dod.internet.private.enterprise`).
pub const PRIVATE_ENTERPRISE_ARC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1");

/// The development Private Enterprise Number `99999` used by the setup guide.
///
/// It is not registered to Mosaic. Register your own PEN before any production use with external
/// parties, and configure it with [`OidRegistry::for_private_enterprise`].
pub const DEVELOPMENT_PEN: Arc = 99999;

/// `1.3.6.1.4.1.99999`: the development arc (see [`DEVELOPMENT_PEN`]).
pub const DEVELOPMENT_ARC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999");

/// `1.3.6.1.4.1.99999.1` (`mosaic.federation.grantId`): UUID of the `federation_grants` row
/// authorising the certificate, on the development arc.
pub const GRANT_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");

/// `1.3.6.1.4.1.99999.2` (`mosaic.federation.subjectUserId`): UUID of the local user on whose behalf
/// the certificate is issued, on the development arc.
pub const SUBJECT_USER_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.2");

/// Symbolic name of the grant id extension.
pub const GRANT_ID_NAME: &str = "mosaic.federation.grantId";

/// Symbolic name of the subject user id extension.
pub const SUBJECT_USER_ID_NAME: &str = "mosaic.federation.subjectUserId";

/// The development-arc OIDs with their symbolic names, for lookups and diagnostics.
pub const DEVELOPMENT_OID_NAMES: [(ObjectIdentifier, &str); 2] = [
    (GRANT_ID, GRANT_ID_NAME),
    (SUBJECT_USER_ID, SUBJECT_USER_ID_NAME),
];

/// Which of the two federation extensions a value or an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FederationField {
    /// `mosaic.federation.grantId`, arc `.1` under the registry's base arc.
    GrantId,
    /// `mosaic.federation.subjectUserId`, arc `.2` under the registry's base arc.
    SubjectUserId,
}

impl FederationField {
    /// Both fields, in arc order.
    pub const ALL: [FederationField; 2] =
        [FederationField::GrantId, FederationField::SubjectUserId];

    /// The symbolic name, e.g. `mosaic.federation.grantId`.
    #[must_use]
    pub const fn symbolic_name(self) -> &'static str {
        match self {
            FederationField::GrantId => GRANT_ID_NAME,
            FederationField::SubjectUserId => SUBJECT_USER_ID_NAME,
        }
    }

    /// The last arc of the field's OID under the base arc (`1` or `2`).
    #[must_use]
    pub const fn arc(self) -> Arc {
        match self {
            FederationField::GrantId => 1,
            FederationField::SubjectUserId => 2,
        }
    }

    /// The name of the step-ca token claim that carries this value (`mosaic_grant_id`, ...).
    #[must_use]
    pub const fn token_claim(self) -> &'static str {
        match self {
            FederationField::GrantId => "mosaic_grant_id",
            FederationField::SubjectUserId => "mosaic_subject_user_id",
        }
    }
}

impl fmt::Display for FederationField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbolic_name())
    }
}

/// One federation extension as a deployment numbers it: the field and its OID.
///
/// Errors carry this, so a message always names the OID that was looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionId {
    /// Which value the extension holds.
    pub field: FederationField,
    /// The OID the extension is registered under in the registry that was used.
    pub oid: ObjectIdentifier,
}

impl fmt::Display for ExtensionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.oid, self.field.symbolic_name())
    }
}

/// A base arc under which the two federation OIDs live (`<arc>.1` and `<arc>.2`).
///
/// Usually `1.3.6.1.4.1.<PEN>` for a registered IANA Private Enterprise Number; any arc you control
/// works (for example a sub-arc of your PEN you reserved for Mosaic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OidArc(ObjectIdentifier);

impl OidArc {
    /// The development arc `1.3.6.1.4.1.99999`.
    pub const DEVELOPMENT: OidArc = OidArc(DEVELOPMENT_ARC);

    /// `1.3.6.1.4.1.<pen>` for a registered IANA Private Enterprise Number.
    ///
    /// # Errors
    /// [`Error::InvalidArc`] if the resulting OID does not fit (it always does for a `u32` PEN).
    pub fn private_enterprise(pen: Arc) -> Result<Self, Error> {
        let base = PRIVATE_ENTERPRISE_ARC
            .push_arc(pen)
            .map_err(|e| Error::invalid_arc(format!("1.3.6.1.4.1.{pen}"), e))?;
        Self::new(base)
    }

    /// Any base arc; the federation OIDs become `<base>.1` and `<base>.2`.
    ///
    /// # Errors
    /// [`Error::InvalidArc`] if `<base>.2` does not fit in an [`ObjectIdentifier`].
    pub fn new(base: ObjectIdentifier) -> Result<Self, Error> {
        // Check up front that both children can be formed, so `OidRegistry::new` cannot fail later.
        for field in FederationField::ALL {
            base.push_arc(field.arc())
                .map_err(|e| Error::invalid_arc(base.to_string(), e))?;
        }
        Ok(OidArc(base))
    }

    /// The base OID.
    #[must_use]
    pub const fn oid(&self) -> ObjectIdentifier {
        self.0
    }

    /// Is this the development arc `1.3.6.1.4.1.99999`?
    #[must_use]
    pub fn is_development(&self) -> bool {
        self.0 == DEVELOPMENT_ARC
    }
}

impl Default for OidArc {
    fn default() -> Self {
        OidArc::DEVELOPMENT
    }
}

impl fmt::Display for OidArc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for OidArc {
    type Err = Error;

    /// Parses a dotted arc such as `1.3.6.1.4.1.12345`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let oid = ObjectIdentifier::new(s).map_err(|e| Error::invalid_arc(s.to_owned(), e))?;
        OidArc::new(oid)
    }
}

/// The OIDs a deployment uses for the two federation extensions.
///
/// The default is the development arc (`1.3.6.1.4.1.99999.1` and `.2`). A deployment with its own
/// IANA Private Enterprise Number uses [`OidRegistry::for_private_enterprise`], and must configure the
/// same arc in its step-ca template (`infra/step-ca/templates/federation.tpl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OidRegistry {
    arc: OidArc,
    grant_id: ObjectIdentifier,
    subject_user_id: ObjectIdentifier,
}

impl OidRegistry {
    /// The development registry: `1.3.6.1.4.1.99999.1` and `1.3.6.1.4.1.99999.2`.
    pub const DEVELOPMENT: OidRegistry = OidRegistry {
        arc: OidArc::DEVELOPMENT,
        grant_id: GRANT_ID,
        subject_user_id: SUBJECT_USER_ID,
    };

    /// The registry for a base arc.
    #[must_use]
    pub fn new(arc: OidArc) -> Self {
        // `OidArc::new` checked that both children fit; fall back to the development OIDs is
        // unreachable, but keeps this infallible without `expect`.
        let child = |field: FederationField| arc.0.push_arc(field.arc()).unwrap_or(arc.0);
        OidRegistry {
            arc,
            grant_id: child(FederationField::GrantId),
            subject_user_id: child(FederationField::SubjectUserId),
        }
    }

    /// The registry for `1.3.6.1.4.1.<pen>`.
    ///
    /// # Errors
    /// [`Error::InvalidArc`] if the arc cannot be formed.
    pub fn for_private_enterprise(pen: Arc) -> Result<Self, Error> {
        Ok(Self::new(OidArc::private_enterprise(pen)?))
    }

    /// The base arc.
    #[must_use]
    pub const fn arc(&self) -> OidArc {
        self.arc
    }

    /// The OID of `mosaic.federation.grantId`.
    #[must_use]
    pub const fn grant_id_oid(&self) -> ObjectIdentifier {
        self.grant_id
    }

    /// The OID of `mosaic.federation.subjectUserId`.
    #[must_use]
    pub const fn subject_user_id_oid(&self) -> ObjectIdentifier {
        self.subject_user_id
    }

    /// The OID of a field.
    #[must_use]
    pub const fn oid(&self, field: FederationField) -> ObjectIdentifier {
        match field {
            FederationField::GrantId => self.grant_id,
            FederationField::SubjectUserId => self.subject_user_id,
        }
    }

    /// The field and OID of a field, as errors report it.
    #[must_use]
    pub const fn extension_id(&self, field: FederationField) -> ExtensionId {
        ExtensionId {
            field,
            oid: self.oid(field),
        }
    }

    /// Which field an OID is, if it is one of this registry's.
    #[must_use]
    pub fn field_of(&self, oid: &ObjectIdentifier) -> Option<FederationField> {
        FederationField::ALL
            .into_iter()
            .find(|f| self.oid(*f) == *oid)
    }

    /// The symbolic name of an OID, if it is one of this registry's.
    #[must_use]
    pub fn name_of(&self, oid: &ObjectIdentifier) -> Option<&'static str> {
        self.field_of(oid).map(FederationField::symbolic_name)
    }
}

impl Default for OidRegistry {
    fn default() -> Self {
        OidRegistry::DEVELOPMENT
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn development_registry_matches_the_setup_guide() {
        let r = OidRegistry::default();
        assert_eq!(r.grant_id_oid().to_string(), "1.3.6.1.4.1.99999.1");
        assert_eq!(r.subject_user_id_oid().to_string(), "1.3.6.1.4.1.99999.2");
        assert!(r.arc().is_development());
        assert_eq!(OidRegistry::new(OidArc::DEVELOPMENT), r);
        assert_eq!(
            OidRegistry::for_private_enterprise(DEVELOPMENT_PEN).unwrap(),
            r
        );
        assert_eq!(r.name_of(&GRANT_ID), Some("mosaic.federation.grantId"));
        assert_eq!(
            r.name_of(&SUBJECT_USER_ID),
            Some("mosaic.federation.subjectUserId")
        );
        assert_eq!(r.name_of(&DEVELOPMENT_ARC), None);
    }

    #[test]
    fn own_pen_arc() {
        let r = OidRegistry::for_private_enterprise(4_294_967_295).unwrap();
        assert_eq!(r.grant_id_oid().to_string(), "1.3.6.1.4.1.4294967295.1");
        assert_eq!(
            r.subject_user_id_oid().to_string(),
            "1.3.6.1.4.1.4294967295.2"
        );
        assert!(!r.arc().is_development());
        assert_eq!(r.field_of(&GRANT_ID), None);

        let arc: OidArc = "1.3.6.1.4.1.32473.7".parse().unwrap();
        let r = OidRegistry::new(arc);
        assert_eq!(
            r.oid(FederationField::GrantId).to_string(),
            "1.3.6.1.4.1.32473.7.1"
        );
        assert_eq!(
            r.extension_id(FederationField::SubjectUserId).to_string(),
            "1.3.6.1.4.1.32473.7.2 (mosaic.federation.subjectUserId)"
        );
    }

    #[test]
    fn bad_arcs_are_refused_with_the_text() {
        let err = "1.3.6.1.4.1.".parse::<OidArc>().unwrap_err();
        assert_eq!(err.code(), "invalid_arc");
        assert!(err.to_string().contains("1.3.6.1.4.1."), "{err}");
        assert!("banana".parse::<OidArc>().is_err());
        // An arc whose children no longer fit in an ObjectIdentifier.
        let long = ["4294967295"; 7].join(".");
        let base = format!("1.3.{long}.1.1.1");
        assert!(ObjectIdentifier::new(&base).is_ok(), "the base itself fits");
        let err = base.parse::<OidArc>().unwrap_err();
        assert_eq!(err.code(), "invalid_arc");
    }
}
