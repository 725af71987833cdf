#!/bin/bash
# Entrypoint of the step-ca service in docker-compose.federated.yml (image smallstep/step-ca:0.27.4).
#
# First boot (no $STEPPATH/config/ca.json in the volume):
#   1. `step ca init` makes the PKI: a P-256 root and intermediate, encrypted with the dev password;
#   2. `step crypto jwk create` makes the `mosaic-fed` provisioner key pair, the private half encrypted
#      with the dev password (JWE, PBES2-HS256+A128KW / A256GCM) in $STEPPATH/secrets/mosaic-fed.json,
#      the file the gateway's STEP_CA_PROVISIONER_KEY_JSON is read from;
#   3. ca.json is written with ONE JWK provisioner `mosaic-fed` whose options.x509.templateFile is
#      templates/federation.tpl beside this script, and the same claims as the native stack.
# Later boots change nothing: they start step-ca on the existing keys and configuration.
#
# Environment (set by the compose file):
#   STEP_CA_PASSWORD_FILE      the dev password (>= 16 characters), default /opt/mosaic/step-ca/dev-password
#   MOSAIC_STEP_CA_DNS_NAMES   comma-separated DNS names/IPs of the CA (default localhost,127.0.0.1,step-ca)
set -euo pipefail

STEPPATH="${STEPPATH:-/home/step}"
export STEPPATH
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PASSWORD_FILE="${STEP_CA_PASSWORD_FILE:-$HERE/dev-password}"
DNS_NAMES="${MOSAIC_STEP_CA_DNS_NAMES:-localhost,127.0.0.1,step-ca}"
TEMPLATE_FILE="$HERE/templates/federation.tpl"
CA_JSON="$STEPPATH/config/ca.json"

fail() {
  printf 'mosaic step-ca init: %s\n' "$*" >&2
  exit 1
}

# The dev password: present, readable, at least 16 characters (trailing newlines do not count; step trims
# them too).
[[ -e $PASSWORD_FILE ]] ||
  fail "no dev password at $PASSWORD_FILE. Create it on the host: cp infra/step-ca/dev-password.example infra/step-ca/dev-password, then put a random password of at least 16 characters in it."
[[ -f $PASSWORD_FILE ]] ||
  fail "$PASSWORD_FILE is not a regular file (a missing bind-mounted file becomes a directory). Remove it on the host and create infra/step-ca/dev-password from dev-password.example."
[[ -r $PASSWORD_FILE ]] ||
  fail "$PASSWORD_FILE is not readable by the container user $(id -un) (uid $(id -u)). On the host: chmod 644 infra/step-ca/dev-password (or chown it to uid $(id -u))."
password="$(cat "$PASSWORD_FILE")"
password="${password%%[$'\r\n']*}"
if ((${#password} < 16)); then
  fail "the dev password in infra/step-ca/dev-password has ${#password} characters; at least 16 are required. Put a longer random password in it (e.g. openssl rand -base64 24) and restart the service."
fi
[[ -f $TEMPLATE_FILE ]] || fail "the X.509 template $TEMPLATE_FILE is missing; mount infra/step-ca at $HERE."

if [[ ! -f $CA_JSON ]]; then
  echo "mosaic step-ca init: first boot, initialising the CA in $STEPPATH"
  # A first boot that died half-way leaves files but no ca.json: keep them aside, never delete them.
  leftovers=()
  for d in certs secrets config db templates; do [[ -e $STEPPATH/$d ]] && leftovers+=("$d"); done
  if ((${#leftovers[@]})); then
    aside="$STEPPATH/incomplete-init-$(date +%Y%m%dT%H%M%S)"
    mkdir -p "$aside"
    for d in "${leftovers[@]}"; do mv "$STEPPATH/$d" "$aside/"; done
    echo "mosaic step-ca init: moved the files of an unfinished first boot to $aside"
  fi

  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  printf '%s' "$password" >"$work/password"

  dns_args=()
  IFS=',' read -r -a names <<<"$DNS_NAMES"
  for n in "${names[@]}"; do dns_args+=(--dns "$n"); done
  # step ca init insists on a provisioner; ca.json is rewritten below with mosaic-fed as the only one.
  step ca init --deployment-type standalone --name "Mosaic Federation CA" "${dns_args[@]}" \
    --address ":9000" --provisioner "mosaic-fed" \
    --password-file "$work/password" --provisioner-password-file "$work/password"
  rm -f "$CA_JSON"

  step crypto jwk create "$STEPPATH/certs/mosaic-fed.pub.json" "$STEPPATH/secrets/mosaic-fed.json" \
    --kty EC --crv P-256 --use sig --password-file "$work/password" --force
  encrypted_key="$(step crypto jose format <"$STEPPATH/secrets/mosaic-fed.json")"
  public_jwk="$(cat "$STEPPATH/certs/mosaic-fed.pub.json")"

  dns_json=""
  for n in "${names[@]}"; do dns_json+="${dns_json:+, }\"$n\""; done
  cat >"$work/ca.json" <<JSON
{
  "root": "$STEPPATH/certs/root_ca.crt",
  "crt": "$STEPPATH/certs/intermediate_ca.crt",
  "key": "$STEPPATH/secrets/intermediate_ca_key",
  "address": ":9000",
  "dnsNames": [$dns_json],
  "logger": {"format": "text"},
  "db": {"type": "badgerv2", "dataSource": "$STEPPATH/db"},
  "authority": {
    "provisioners": [
      {
        "type": "JWK",
        "name": "mosaic-fed",
        "key": $public_jwk,
        "encryptedKey": "$encrypted_key",
        "claims": {
          "minTLSCertDuration": "1m",
          "defaultTLSCertDuration": "24h",
          "maxTLSCertDuration": "720h"
        },
        "options": {"x509": {"templateFile": "$TEMPLATE_FILE"}}
      }
    ]
  }
}
JSON
  mkdir -p "$STEPPATH/config"
  # ca.json is written last: its presence marks a finished first boot.
  mv "$work/ca.json" "$CA_JSON"
  echo "mosaic step-ca init: CA ready. Root certificate: $STEPPATH/certs/root_ca.crt;" \
    "provisioner key (encrypted): $STEPPATH/secrets/mosaic-fed.json"
else
  echo "mosaic step-ca init: existing CA in $STEPPATH, nothing to change"
fi

exec step-ca --password-file "$PASSWORD_FILE" "$CA_JSON"
