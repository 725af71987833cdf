{{- $uuid := "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$" -}}
{{- if not (kindIs "string" .Token.mosaic_grant_id) -}}
{{- fail "mosaic federation template: the token has no string claim mosaic_grant_id; refusing to issue a federation certificate without OID 1.3.6.1.4.1.99999.1 (put the grant UUID in the token's mosaic_grant_id claim)" -}}
{{- end -}}
{{- if not (regexMatch $uuid (toString .Token.mosaic_grant_id)) -}}
{{- fail "mosaic federation template: token claim mosaic_grant_id is not a lowercase hyphenated UUID (36 characters); refusing to issue OID 1.3.6.1.4.1.99999.1" -}}
{{- end -}}
{{- if not (kindIs "string" .Token.mosaic_subject_user_id) -}}
{{- fail "mosaic federation template: the token has no string claim mosaic_subject_user_id; refusing to issue a federation certificate without OID 1.3.6.1.4.1.99999.2 (put the subject user UUID in the token's mosaic_subject_user_id claim)" -}}
{{- end -}}
{{- if not (regexMatch $uuid (toString .Token.mosaic_subject_user_id)) -}}
{{- fail "mosaic federation template: token claim mosaic_subject_user_id is not a lowercase hyphenated UUID (36 characters); refusing to issue OID 1.3.6.1.4.1.99999.2" -}}
{{- end -}}
{{- $grant := toString .Token.mosaic_grant_id -}}
{{- $subject := toString .Token.mosaic_subject_user_id -}}
{
	"subject": {{ toJson .Subject }},
	"sans": {{ toJson .SANs }},
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": ["clientAuth"],
	"extensions": [
		{
			"id": "1.3.6.1.4.1.99999.1",
			"critical": false,
			"value": {{ printf "\x0c%c%s" (len $grant) $grant | b64enc | toJson }}
		},
		{
			"id": "1.3.6.1.4.1.99999.2",
			"critical": false,
			"value": {{ printf "\x0c%c%s" (len $subject) $subject | b64enc | toJson }}
		}
	]
}
