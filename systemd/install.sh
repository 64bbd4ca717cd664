#!/usr/bin/env bash
# `make install-service`: install cofid as a systemd service from this checkout.
#
#   /opt/cofi/venv                 a virtual environment with cofi installed from the repo
#                                  (not editable; extras from COFI_EXTRAS, default "cpu")
#   /etc/systemd/system/cofid.service
#   /usr/lib/sysusers.d/cofi.conf  the cofi user and group (created now)
#   /usr/lib/tmpfiles.d/cofi.conf  /etc/cofi, /srv/cofi/batches (created now)
#   /etc/cofi/cofid.toml           from cofid.toml.example, only when absent
#   /etc/cofi/ops.token            a random operator token, only when absent
#
# Idempotent: run it again after `git pull` to upgrade the code; the configuration and
# the token are never overwritten, the service is neither enabled nor restarted for you.
# Environment: PYTHON (default python3, >= 3.11), COFI_EXTRAS ("" for a remote-GPU-only
# install without faster-whisper), COFI_PREFIX (default /opt/cofi).
set -euo pipefail

PREFIX="${COFI_PREFIX:-/opt/cofi}"
die() { printf 'install-service: %s\n' "$*" >&2; exit 1; }
# Refuse first: without root nothing else is worth resolving.
if [ "$(id -u)" != 0 ]; then
  die "must run as root: it creates the cofi user and writes $PREFIX, /etc and /usr/lib (try: sudo make install-service)"
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$PREFIX/venv"
PYTHON="${PYTHON:-python3}"
EXTRAS="${COFI_EXTRAS-cpu}"
UNIT=/etc/systemd/system/cofid.service
CONF_DIR=/etc/cofi

say() { printf 'install-service: %s\n' "$*"; }
for tool in systemd-sysusers systemd-tmpfiles; do
  command -v "$tool" >/dev/null || die "$tool not found: this host has no systemd (Debian: apt-get install systemd)"
done
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=/path/to/python3.11+)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); cofi needs Python >= 3.11"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || die "$PYTHON cannot create virtual environments (Debian: apt-get install python3-venv)"

say "user and group cofi"
install -D -m 0644 "$REPO/systemd/cofid.sysusers" /usr/lib/sysusers.d/cofi.conf
systemd-sysusers /usr/lib/sysusers.d/cofi.conf

say "directories"
install -D -m 0644 "$REPO/systemd/cofid.tmpfiles" /usr/lib/tmpfiles.d/cofi.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/cofi.conf

say "virtual environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  install -d -m 0755 "$PREFIX"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip
spec="$REPO"
[ -n "$EXTRAS" ] && spec="$REPO[$EXTRAS]"
"$VENV/bin/pip" install -q "$spec"
# The version rarely changes between commits: reinstall the package itself every time.
"$VENV/bin/pip" install -q --no-deps --force-reinstall "$REPO"
install -m 0644 "$REPO/README.md" "$PREFIX/README.md"

say "configuration"
if [ ! -e "$CONF_DIR/cofid.toml" ]; then
  install -m 0640 -o root -g cofi "$REPO/systemd/cofid.toml.example" "$CONF_DIR/cofid.toml"
  say "wrote $CONF_DIR/cofid.toml from the example: review it (database, batch roots, GPUs)"
else
  say "kept $CONF_DIR/cofid.toml (the example is $REPO/systemd/cofid.toml.example)"
fi
if [ ! -e "$CONF_DIR/ops.token" ]; then
  (umask 0027; head -c 32 /dev/urandom | base64 | tr -d '=+/\n' > "$CONF_DIR/ops.token"; echo >> "$CONF_DIR/ops.token")
  chown root:cofi "$CONF_DIR/ops.token"
  chmod 0640 "$CONF_DIR/ops.token"
  say "wrote a new operator token to $CONF_DIR/ops.token"
fi
if ! "$VENV/bin/cofid" --config "$CONF_DIR/cofid.toml" check-config >/dev/null; then
  say "WARNING: $CONF_DIR/cofid.toml does not load (above); fix it before starting cofid"
fi

say "unit $UNIT"
install -m 0644 "$REPO/systemd/cofid.service" "$UNIT"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if systemctl is-active --quiet cofid; then
    say "cofid is running the previous code: systemctl restart cofid (batches in flight drain and resume)"
  else
    say "start it with: systemctl enable --now cofid"
  fi
else
  say "systemd is not running here (a container?): the unit is installed but not loaded"
fi
say "done"
