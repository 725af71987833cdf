//! Property tests: round trips over arbitrary UUIDs; no panic on arbitrary bytes; the fast DER walk
//! agrees with extraction from x509-cert's full decode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use der::{Decode, Encode, SliceReader};
use mosaic_oid::{
    FederationField, FederationIdentity, GrantId, OidRegistry, SubjectUserId, Uuid,
    decode_uuid_value, extract_identity,
};
use proptest::prelude::*;
use x509_cert::Certificate;

fn good_der() -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good.der"))
        .unwrap()
}

fn grant_ext() -> mosaic_oid::ExtensionId {
    OidRegistry::DEVELOPMENT.extension_id(FederationField::GrantId)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_uuid_round_trips(bytes in any::<[u8; 16]>()) {
        let uuid = Uuid::from_bytes(bytes);
        let grant = GrantId::new(uuid);
        let der = grant.to_der().unwrap();
        prop_assert_eq!(der.as_slice(), &grant.to_der_bytes()[..]);
        prop_assert_eq!(der.len(), 38);
        prop_assert_eq!(&der[..2], &[0x0C, 0x24]);
        let text = uuid.hyphenated().to_string();
        prop_assert_eq!(&der[2..], text.as_bytes());
        prop_assert_eq!(GrantId::from_der(&der).unwrap(), grant);
        prop_assert_eq!(SubjectUserId::from_der(&der).unwrap().into_uuid(), uuid);
        prop_assert_eq!(decode_uuid_value(&der, grant_ext()).unwrap(), uuid);
        let mut reader = SliceReader::new(&der).unwrap();
        prop_assert_eq!(GrantId::decode(&mut reader).unwrap(), grant);
    }

    #[test]
    fn any_id_text_round_trips(bytes in any::<[u8; 16]>()) {
        let grant = GrantId::new(Uuid::from_bytes(bytes));
        let text = grant.to_string();
        prop_assert_eq!(text.parse::<GrantId>().unwrap(), grant);
        prop_assert_eq!(text.parse::<SubjectUserId>().unwrap().into_uuid(), grant.into_uuid());
    }

    #[test]
    fn id_text_parsing_never_panics_and_accepts_only_the_canonical_form(text in ".{0,50}") {
        let parsed = text.parse::<GrantId>();
        // The reference: the uuid crate's lenient parser, then "prints back to the same text".
        let canonical = Uuid::try_parse(&text)
            .ok()
            .filter(|uuid| uuid.hyphenated().to_string() == text);
        prop_assert_eq!(parsed.as_ref().ok().map(|id| id.into_uuid()), canonical);
        if let Err(err) = parsed {
            prop_assert_eq!(err.code(), "invalid_id_text");
        }
    }

    #[test]
    fn near_canonical_id_texts_parse_like_the_reference(
        bytes in any::<[u8; 16]>(),
        at in 0usize..36,
        with in prop_oneof![Just(b'-'), Just(b'A'), Just(b'g'), Just(b'0'), any::<u8>()],
    ) {
        let mut text = Uuid::from_bytes(bytes).hyphenated().to_string().into_bytes();
        text[at] = with;
        if let Ok(text) = String::from_utf8(text) {
            let canonical = Uuid::try_parse(&text)
                .ok()
                .filter(|uuid| uuid.hyphenated().to_string() == text);
            prop_assert_eq!(text.parse::<SubjectUserId>().ok().map(SubjectUserId::into_uuid), canonical);
        }
    }

    #[test]
    fn value_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let strict = decode_uuid_value(&bytes, grant_ext());
        // The der::Decode impl agrees with the strict decoder.
        prop_assert_eq!(&GrantId::from_der(&bytes).map(GrantId::into_uuid), &strict);
        let mut reader = SliceReader::new(&bytes).unwrap();
        let _ = GrantId::decode(&mut reader);
        // Anything accepted is exactly the canonical encoding of what it decoded to.
        if let Ok(uuid) = strict {
            let encoded = GrantId::new(uuid).to_der_bytes();
            prop_assert_eq!(&encoded[..], bytes.as_slice());
        }
    }

    #[test]
    fn near_miss_values_never_panic(
        tag in prop_oneof![Just(0x0Cu8), Just(0x13), Just(0x16), Just(0x2C), any::<u8>()],
        length in prop_oneof![Just(vec![0x24u8]), Just(vec![0x81, 0x24]), Just(vec![0x80]), proptest::collection::vec(any::<u8>(), 0..4)],
        text in "[0-9a-fA-F-]{30,40}",
        tail in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let bytes = [&[tag][..], &length, text.as_bytes(), &tail].concat();
        let result = decode_uuid_value(&bytes, grant_ext());
        if let Ok(uuid) = result {
            let encoded = GrantId::new(uuid).to_der_bytes();
            prop_assert_eq!(&encoded[..], bytes.as_slice());
        }
    }

    #[test]
    fn extraction_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = extract_identity(&bytes);
        let _ = FederationIdentity::from_pem_or_der(&bytes, &OidRegistry::default());
        let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        pem.extend_from_slice(&bytes);
        pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
        let _ = FederationIdentity::from_pem(&pem, &OidRegistry::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Mutations of a real certificate: never a panic, and whenever both the fast walk and x509-cert
    /// accept the input they find the same identity. The walk may refuse more (it also checks the
    /// federation extensions' `critical` flag is DER), never less.
    #[test]
    fn mutated_certificates_agree_with_full_decoding(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut der = good_der();
        for (index, byte) in edits {
            let at = index.index(der.len());
            der[at] = byte;
        }
        if let Some(cut) = cut {
            der.truncate(cut.index(der.len()));
        }
        let registry = OidRegistry::default();
        let fast = FederationIdentity::from_der(&der, &registry);
        if let Ok(cert) = Certificate::from_der(&der) {
            let full = FederationIdentity::from_certificate(&cert, &registry);
            match (&fast, &full) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Ok(a), Err(e)) => prop_assert!(false, "walk accepted {a:?}, full decode refused: {e}"),
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (Err(a), Ok(_)) => prop_assert!(
                    a.code() == "not_der" && a.to_string().contains("critical flag"),
                    "walk refused what x509-cert accepts: {a}"
                ),
            }
        }
    }
}
