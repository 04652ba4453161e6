# Shared by ops/start and ops/test: install what the project needs on Debian 12.
# Source it; it defines install_debian_packages and make_venv.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FDBMAIL_VENV:-$ROOT/.venv}"

install_debian_packages() {
  # Installs only what is missing; needs root (or sudo) the first time.
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "ops: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$py"; return 0
    fi
  done
  echo "ops: Python 3.11 or newer is needed" >&2
  return 1
}

make_venv() {
  # make_venv EXTRAS: a virtualenv at $VENV with the project installed (editable).
  local extras="$1" py
  py="$(pick_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    "$py" -m venv "$VENV" 2>/dev/null || {
      install_debian_packages python3-venv
      "$py" -m venv "$VENV"
    }
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -q -e "$ROOT${extras:+[$extras]}" 2>&1 | grep -v '^WARNING: Location' >&2 || true
  "$VENV/bin/python" -c 'import server, fdb_layers, mailtext' || { echo "ops: install failed" >&2; return 1; }
}

install_postfix() {
  # Postfix for the LMTP tests, which run a private instance of their own. The package
  # is installed unconfigured ("No configuration": no main.cf, nothing to start) and
  # with invoke-rc.d refused, so no system Postfix starts, here or in a container.
  # Another MTA already installed is left alone (Postfix would replace it): the
  # Postfix tests are then skipped, with the reason.
  dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "ok installed" && return 0
  if dpkg-query -W -f='${Status} ${Provides}\n' 2>/dev/null | grep "ok installed" \
      | grep -q "mail-transport-agent"; then
    echo "ops: another MTA is installed; not installing postfix (its tests are skipped)" >&2
    return 0
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  install_without_starting postfix
}

install_without_starting() {
  # Debian packages whose daemons the tests run privately (on loopback, free ports):
  # installed with invoke-rc.d refused, so no system daemon starts, here or in a container.
  local sudo="" guard=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null
    $sudo chmod 755 "$guard"
  fi
  install_debian_packages "$@" || { [ -n "$guard" ] && $sudo rm -f "$guard"; return 1; }
  [ -n "$guard" ] && $sudo rm -f "$guard"
  return 0
}
