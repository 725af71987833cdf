//! The step-ca template `infra/step-ca/templates/federation.tpl` renders the same extension bytes as
//! this crate's encoder.
//!
//! This renders the template's `value` expressions the way Go's `text/template` + sprig do for these
//! inputs (`printf` with `%c` of an int and `%s` of a string, `b64enc`, `toJson`), without a Go
//! toolchain. The live check against a running step-ca belongs to the CA client's tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use base64::{Engine, engine::general_purpose::STANDARD};
use mosaic_oid::{FederationField, GrantId, OidRegistry, SubjectUserId, Uuid, decode_uuid_value};

fn template() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../infra/step-ca/templates/federation.tpl");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One extension object of the template: `{ "id": ..., "critical": ..., "value": {{ ... }} }`.
#[derive(Debug)]
struct TemplateExtension {
    id: String,
    critical: String,
    value_expression: String,
}

fn extensions(template: &str) -> Vec<TemplateExtension> {
    let mut out = vec![];
    let mut rest = template;
    while let Some(at) = rest.find("\"id\":") {
        rest = &rest[at..];
        let id = between(rest, "\"id\": \"", "\"").to_owned();
        let critical = between(rest, "\"critical\": ", ",").to_owned();
        let value_expression = between(rest, "\"value\": {{", "}}").trim().to_owned();
        out.push(TemplateExtension {
            id,
            critical,
            value_expression,
        });
        rest = &rest[5..];
    }
    out
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not found"))
        + start.len();
    let to = s[from..].find(end).unwrap() + from;
    &s[from..to]
}

/// Unquotes a Go interpreted string literal (the escapes Go supports that a template would use).
fn go_unquote(literal: &str) -> Vec<u8> {
    let inner = literal
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    let bytes = inner.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'x' => {
                out.push(u8::from_str_radix(&inner[i + 2..i + 4], 16).unwrap());
                i += 4;
            }
            b'n' => (out.push(b'\n'), i += 2).1,
            b't' => (out.push(b'\t'), i += 2).1,
            b'\\' => (out.push(b'\\'), i += 2).1,
            b'"' => (out.push(b'"'), i += 2).1,
            other => panic!("escape \\{} not handled by this renderer", other as char),
        }
    }
    out
}

enum GoArg<'a> {
    Int(usize),
    Str(&'a str),
}

/// Go's `fmt.Sprintf` for the verbs the template uses: `%c` of an int writes the rune as UTF-8, `%s`
/// of a string writes its bytes, `%%` writes `%`.
fn go_sprintf(format: &[u8], args: &[GoArg<'_>]) -> Vec<u8> {
    let mut out = vec![];
    let mut args = args.iter();
    let mut i = 0;
    while i < format.len() {
        if format[i] != b'%' {
            out.push(format[i]);
            i += 1;
            continue;
        }
        match (format[i + 1], args.next()) {
            (b'%', _) => out.push(b'%'),
            (b'c', Some(GoArg::Int(n))) => {
                let rune = char::from_u32(u32::try_from(*n).unwrap()).unwrap();
                out.extend_from_slice(rune.encode_utf8(&mut [0; 4]).as_bytes());
            }
            (b's', Some(GoArg::Str(s))) => out.extend_from_slice(s.as_bytes()),
            (verb, _) => panic!("verb %{} not handled by this renderer", verb as char),
        }
        i += 2;
    }
    out
}

/// Renders `printf "<fmt>" (len $v) $v | b64enc | toJson` for a claim value; returns the JSON string
/// the template emits and the DER bytes it stands for.
fn render_value(expression: &str, claim_value: &str) -> (String, Vec<u8>) {
    let stages: Vec<&str> = expression.split('|').map(str::trim).collect();
    assert_eq!(stages[1..], ["b64enc", "toJson"], "{expression}");
    let printf = stages[0].strip_prefix("printf ").unwrap();
    let format_end = printf[1..].find('"').unwrap() + 2;
    let (format, args) = printf.split_at(format_end);
    let args: Vec<&str> = args.split_whitespace().collect();
    assert_eq!(args.len(), 3, "{args:?}");
    assert_eq!(args[0], "(len");
    let variable = args[1].strip_suffix(')').unwrap();
    assert_eq!(args[2], variable, "len and %s must be of the same value");
    let bytes = go_sprintf(
        &go_unquote(format),
        &[GoArg::Int(claim_value.len()), GoArg::Str(claim_value)],
    );
    let b64 = STANDARD.encode(&bytes);
    (format!("\"{b64}\""), bytes)
}

/// The template variable bound to a claim: `{{- $grant := toString .Token.mosaic_grant_id -}}`.
fn variable_of(template: &str, claim: &str) -> String {
    let binding = format!(":= toString .Token.{claim} ");
    let line = template.lines().find(|l| l.contains(&binding)).unwrap();
    between(line, "{{- ", " :=").to_owned()
}

#[test]
fn template_values_equal_the_crate_encoder() {
    let template = template();
    let exts = extensions(&template);
    assert_eq!(exts.len(), 2, "{exts:?}");
    let registry = OidRegistry::DEVELOPMENT;
    for (ext, field) in exts.iter().zip(FederationField::ALL) {
        assert_eq!(ext.id, registry.oid(field).to_string());
        assert_eq!(ext.critical, "false", "{} must be non-critical", ext.id);
        let variable = variable_of(&template, field.token_claim());
        assert!(
            ext.value_expression.contains(&variable),
            "{ext:?} uses {variable}"
        );

        for uuid in [
            Uuid::nil(),
            Uuid::max(),
            Uuid::parse_str("0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70").unwrap(),
            Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        ] {
            let claim = uuid.hyphenated().to_string();
            let (json, der) = render_value(&ext.value_expression, &claim);
            let expected = match field {
                FederationField::GrantId => GrantId::new(uuid).to_der_bytes(),
                FederationField::SubjectUserId => SubjectUserId::new(uuid).to_der_bytes(),
            };
            assert_eq!(der, expected, "{} for {claim}", ext.id);
            assert_eq!(json, format!("\"{}\"", STANDARD.encode(expected)));
            assert_eq!(
                decode_uuid_value(&der, registry.extension_id(field)).unwrap(),
                uuid
            );
        }
    }
}

#[test]
fn length_byte_is_computed_not_hard_coded() {
    let template = template();
    assert!(
        !template.contains("\\x24"),
        "the length must come from (len X)"
    );
    let exts = extensions(&template);
    // For a short value the computed length byte is that value's length: no `0x24` baked in.
    let (_, der) = render_value(&exts[0].value_expression, "abc");
    assert_eq!(der, [0x0C, 0x03, b'a', b'b', b'c']);
    // Go's %c of 200 writes the rune U+00C8 as two UTF-8 bytes, which is not a DER length; that is
    // why the template only lets 36-character UUIDs through (see `claims_are_checked_before_use`).
    let long = "a".repeat(200);
    let (_, der) = render_value(&exts[0].value_expression, &long);
    assert_eq!(&der[..3], [0x0C, 0xC3, 0x88]);
}

#[test]
fn claims_are_checked_before_use() {
    let template = template();
    let canonical = r#""^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$""#;
    let regex_variable = template
        .lines()
        .find(|l| l.contains(canonical))
        .map(|l| between(l, "{{- ", " :=").to_owned())
        .expect("the template binds the canonical lowercase UUID pattern");
    let first_use = template.find("\"extensions\"").unwrap();
    for field in FederationField::ALL {
        let claim = field.token_claim();
        for guard in [
            format!("{{{{- if not (kindIs \"string\" .Token.{claim}) -}}}}\n{{{{- fail \""),
            format!(
                "{{{{- if not (regexMatch {regex_variable} (toString .Token.{claim})) -}}}}\n{{{{- fail \""
            ),
        ] {
            let at = template
                .find(&guard)
                .unwrap_or_else(|| panic!("missing guard {guard:?}"));
            assert!(at < first_use, "the guard must come before the extensions");
            let message = between(&template[at..], "fail \"", "\"");
            assert!(message.contains(claim), "{message}");
            assert!(
                message.contains(&OidRegistry::DEVELOPMENT.oid(field).to_string()),
                "{message}"
            );
        }
    }
    // keyUsage and extKeyUsage as the issue asks.
    assert!(template.contains(r#""keyUsage": ["digitalSignature"]"#));
    assert!(template.contains(r#""extKeyUsage": ["clientAuth"]"#));
    assert!(template.contains(r#""subject": {{ toJson .Subject }}"#));
    assert!(template.contains(r#""sans": {{ toJson .SANs }}"#));
}
