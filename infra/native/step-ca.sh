# shellcheck shell=bash
# step-ca for infra/native/up (sourced by it; uses lib.sh's settings and up's helpers).
#
#   binary  built once per machine from Debian's Go sources (golang-github-smallstep-certificates-dev
#           0.19.0) with our main package infra/native/step-ca/main.go, in GOPATH mode, and cached under
#           $MOSAIC_CACHE/step-ca-<debian version>-<main.go hash>/step-ca;
#   PKI     made once, without the step CLI: a P-256 root and intermediate (openssl; keys encrypted with the
#           dev password), then provision.mjs writes the mosaic-fed provisioner key (JWE, as step does)
#           and ca.json;
#   run     127.0.0.1:$STEP_CA_PORT, pid in .state/step-ca/step-ca.pid, log .state/step-ca/step-ca.log.

STEP_SRC_PKG="golang-github-smallstep-certificates-dev"
STEP_MAIN_DIR="$MOSAIC_REPO_ROOT/infra/native/step-ca"

# Sets STEP_CA_BIN, building it only when no cached build of this main.go exists.
step_ca_binary() {
  local main_hash cached
  main_hash="$(sha256sum "$STEP_MAIN_DIR/main.go" | cut -c1-12)"
  for cached in "$MOSAIC_CACHE"/step-ca-*-"$main_hash"/step-ca; do
    if [[ -x $cached ]] && "$cached" --version >/dev/null 2>&1; then
      STEP_CA_BIN="$cached"
      return 0
    fi
  done

  apt_install golang-go "$STEP_SRC_PKG" gcc libc6-dev
  local deb_version dest t0=$SECONDS
  deb_version="$(dpkg-query -W -f='${Version}' "$STEP_SRC_PKG")"
  dest="$MOSAIC_CACHE/step-ca-$deb_version-$main_hash"
  say "building step-ca $deb_version from Debian's Go sources (once per machine; about a minute)"
  mkdir -p "$dest"
  local log="$MOSAIC_STATE/step-ca-build.log"
  # GOPATH mode: Debian ships the sources under /usr/share/gocode, not as modules.
  if ! (cd "$STEP_MAIN_DIR" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$MOSAIC_CACHE/go-build" \
    GOFLAGS="" go build -o "$dest/step-ca.tmp" -ldflags "-X main.version=${deb_version%%-*}" .) >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "building step-ca failed; see $log"
  fi
  mv "$dest/step-ca.tmp" "$dest/step-ca"
  STEP_CA_BIN="$dest/step-ca"
  say "step-ca built in $((SECONDS - t0))s: $STEP_CA_BIN"
}

# The dev password: infra/step-ca/dev-password when present (the Docker path's file), else one generated
# once into .state/. The CA keeps the password it was created with in .state/step-ca/secrets/password.
step_ca_password() {
  local repo_file="$MOSAIC_REPO_ROOT/infra/step-ca/dev-password" pw
  mkdir -p "$STEP_DIR/secrets"
  chmod 700 "$STEP_DIR/secrets"
  if [[ -f $repo_file ]]; then
    pw="$(cat "$repo_file")"
    pw="${pw%%[$'\r\n']*}"
    ((${#pw} >= 16)) || die "infra/step-ca/dev-password has ${#pw} characters; at least 16 are required. Put a longer random password in it (e.g. openssl rand -base64 24)."
    if [[ -f $STEP_PASSWORD_FILE ]]; then
      if [[ $(cat "$STEP_PASSWORD_FILE") != "$pw" ]]; then
        say "warning: infra/step-ca/dev-password differs from the password the native CA was created with; keeping the CA's. To re-create the CA with the new password: infra/native/down --only step-ca && rm -rf .state/step-ca && infra/native/up"
      fi
      return 0
    fi
  elif [[ -s $STEP_PASSWORD_FILE ]]; then
    return 0
  else
    pw="$(openssl rand -base64 32 | tr -d '/+=\n' | cut -c1-32)"
  fi
  (umask 077 && printf '%s' "$pw" >"$STEP_PASSWORD_FILE")
}

step_ca_pki() {
  [[ -f $STEP_DIR/config/ca.json ]] && return 0
  [[ -f $STEP_TEMPLATE ]] || die "the X.509 template $STEP_TEMPLATE is missing (it belongs to the mosaic-oid crate); step-ca cannot be set up without it"
  say "creating the native CA in $STEP_DIR (P-256 root and intermediate, provisioner mosaic-fed)"
  # An unfinished earlier set-up (no ca.json) is moved aside, never reused half-made.
  local d aside=""
  for d in certs config db; do
    if [[ -e $STEP_DIR/$d ]]; then
      aside="${aside:-$STEP_DIR/incomplete-$(date +%Y%m%dT%H%M%S)}"
      mkdir -p "$aside"
      mv "$STEP_DIR/$d" "$aside/"
    fi
  done
  [[ -z $aside ]] || say "moved the files of an unfinished set-up to $aside"
  mkdir -p "$STEP_DIR/certs" "$STEP_DIR/config" "$STEP_DIR/db"
  rm -f "$STEP_DIR"/secrets/{root_ca_key,intermediate_ca_key,mosaic-fed.json}

  local work
  work="$(mktemp -d)"
  local pass=(-pass "file:$STEP_PASSWORD_FILE")
  cat >"$work/ext.cnf" <<'EOF'
[root]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
  {
    # Keys: P-256, PKCS#8 encrypted with the dev password (PBES2, AES-256-CBC), as step-ca can read them.
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc "${pass[@]}" \
      -out "$STEP_DIR/secrets/root_ca_key" &&
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc "${pass[@]}" \
        -out "$STEP_DIR/secrets/intermediate_ca_key" &&
      openssl req -new -sha256 -key "$STEP_DIR/secrets/root_ca_key" -passin "file:$STEP_PASSWORD_FILE" \
        -subj "/O=Mosaic Federation CA/CN=Mosaic Federation CA Root CA" -out "$work/root.csr" &&
      openssl x509 -req -sha256 -days 3650 -in "$work/root.csr" \
        -signkey "$STEP_DIR/secrets/root_ca_key" -passin "file:$STEP_PASSWORD_FILE" \
        -extfile "$work/ext.cnf" -extensions root -out "$STEP_DIR/certs/root_ca.crt"
  } >"$work/openssl.log" 2>&1 || {
    cat "$work/openssl.log" >&2
    die "openssl failed to make the root CA"
  }
  {
    openssl req -new -sha256 -key "$STEP_DIR/secrets/intermediate_ca_key" -passin "file:$STEP_PASSWORD_FILE" \
      -subj "/O=Mosaic Federation CA/CN=Mosaic Federation CA Intermediate CA" -out "$work/intermediate.csr" &&
      openssl x509 -req -sha256 -days 3650 -in "$work/intermediate.csr" \
        -CA "$STEP_DIR/certs/root_ca.crt" -CAkey "$STEP_DIR/secrets/root_ca_key" -passin "file:$STEP_PASSWORD_FILE" \
        -CAcreateserial -CAserial "$work/root.srl" -extfile "$work/ext.cnf" -extensions intermediate \
        -out "$STEP_DIR/certs/intermediate_ca.crt"
  } >>"$work/openssl.log" 2>&1 || {
    cat "$work/openssl.log" >&2
    die "openssl failed to make the intermediate CA"
  }
  openssl verify -CAfile "$STEP_DIR/certs/root_ca.crt" "$STEP_DIR/certs/intermediate_ca.crt" >/dev/null ||
    die "the intermediate CA does not verify against the root"
  rm -rf "$work"

  node "$STEP_MAIN_DIR/provision.mjs" --dir "$STEP_DIR" --password-file "$STEP_PASSWORD_FILE" \
    --template "$STEP_TEMPLATE" --address "127.0.0.1:$STEP_CA_PORT" --dns localhost --dns 127.0.0.1 >&2 ||
    die "writing the mosaic-fed provisioner and ca.json failed"
}

step_ca_ready() {
  curl -fsS --max-time 2 --cacert "$STEP_ROOT_CERT" "https://127.0.0.1:$STEP_CA_PORT/health" 2>/dev/null | grep -q '"ok"'
}

step_ca_up() {
  local t0=$SECONDS
  step_ca_binary
  step_ca_password
  step_ca_pki

  # The port may differ from the one ca.json was written with (STEP_CA_HOST_PORT).
  local ca_json="$STEP_DIR/config/ca.json"
  if ! grep -q "\"address\": \"127.0.0.1:$STEP_CA_PORT\"" "$ca_json"; then
    sed -i "s/\"address\": \"127\.0\.0\.1:[0-9]*\"/\"address\": \"127.0.0.1:$STEP_CA_PORT\"/" "$ca_json"
    if pid_alive "$STEP_PID"; then
      say "step-ca port changed to $STEP_CA_PORT: restarting it"
      bash "$MOSAIC_REPO_ROOT/infra/native/down" --only step-ca >/dev/null
    fi
  fi
  # The template path is absolute; a moved work tree needs it updated.
  if ! grep -qF "\"templateFile\": \"$STEP_TEMPLATE\"" "$ca_json"; then
    sed -i "s|\"templateFile\": \"[^\"]*\"|\"templateFile\": \"$STEP_TEMPLATE\"|" "$ca_json"
    ! pid_alive "$STEP_PID" || bash "$MOSAIC_REPO_ROOT/infra/native/down" --only step-ca >/dev/null
  fi

  if pid_alive "$STEP_PID" && ! step_ca_ready; then
    # Started but not (yet) healthy: give it a moment before restarting it.
    wait_until 10 step-ca "$STEP_LOG" step_ca_ready 2>/dev/null ||
      bash "$MOSAIC_REPO_ROOT/infra/native/down" --only step-ca >/dev/null
  fi
  if ! pid_alive "$STEP_PID"; then
    rm -f "$STEP_PID"
    ensure_port_free "$STEP_CA_PORT" step-ca STEP_CA_HOST_PORT
    say "starting step-ca on https://127.0.0.1:$STEP_CA_PORT (log: $STEP_LOG)"
    # setsid: its own session, so it outlives the shell that started it. The child writes its own pid,
    # then becomes step-ca (exec), so the pid file names step-ca itself.
    STEPPATH="$STEP_DIR" setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' step-ca-launcher "$STEP_PID" \
      "$STEP_CA_BIN" --password-file "$STEP_PASSWORD_FILE" "$ca_json" >>"$STEP_LOG" 2>&1 </dev/null &
    for _ in $(seq 50); do [[ -s $STEP_PID ]] && break; sleep 0.1; done
  fi
  wait_until 30 step-ca "$STEP_LOG" step_ca_ready
  say "step-ca ready on https://127.0.0.1:$STEP_CA_PORT ($((SECONDS - t0))s)"
}
