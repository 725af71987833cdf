//! Arbitrary bytes through every mosaic-oid decoder: certificate extraction (DER, PEM, DER-or-PEM),
//! the value decoders and the id text parsers (`FromStr`). None may panic; anything accepted must
//! re-encode to the same bytes (or print back to the same text).
#![no_main]

use der::{Decode, SliceReader};
use libfuzzer_sys::fuzz_target;
use mosaic_oid::{
    FederationField, FederationIdentity, GrantId, OidRegistry, SubjectUserId, decode_uuid_value,
};

fuzz_target!(|data: &[u8]| {
    let registry = OidRegistry::DEVELOPMENT;
    let own = OidRegistry::for_private_enterprise(32473).expect("a u32 PEN always fits");

    if let Ok(identity) = FederationIdentity::from_der(data, &registry) {
        // An accepted certificate holds exactly the canonical encodings of what was extracted.
        for encoded in [
            identity.grant_id.to_der_bytes(),
            identity.subject_user_id.to_der_bytes(),
        ] {
            assert!(data.windows(encoded.len()).any(|w| w == encoded));
        }
    }
    let _ = FederationIdentity::from_der(data, &own);
    let _ = FederationIdentity::from_pem_or_der(data, &registry);
    let _ = FederationIdentity::from_pem(data, &registry);

    let extension = registry.extension_id(FederationField::GrantId);
    let strict = decode_uuid_value(data, extension);
    if let Ok(uuid) = strict {
        assert_eq!(GrantId::new(uuid).to_der_bytes().as_slice(), data);
    }
    assert_eq!(GrantId::from_der(data).map(GrantId::into_uuid), strict);
    let _ = SubjectUserId::from_der_in(data, &own);
    if let Ok(mut reader) = SliceReader::new(data) {
        let _ = GrantId::decode(&mut reader);
    }

    if let Ok(text) = std::str::from_utf8(data) {
        // Only the canonical text parses, so what parses prints back unchanged, for both ids alike.
        if let Ok(grant) = text.parse::<GrantId>() {
            assert_eq!(grant.to_string(), text);
        }
        if let Ok(user) = text.parse::<SubjectUserId>() {
            assert_eq!(user.to_string(), text);
        }
        assert_eq!(
            text.parse::<GrantId>().is_ok(),
            text.parse::<SubjectUserId>().is_ok()
        );
    }
});
