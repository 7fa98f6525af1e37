#!/usr/bin/env bash
# Creates (or refreshes) the Python venv of the real-client tests at target/pyenv.
# Idempotent and cached: a stamp holding the requirements' checksum skips the work
# when nothing changed. Concurrent callers (parallel test binaries) wait on a lock.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/pyenv"
req="$root/tests/python/requirements.txt"
mkdir -p "$target"
exec 9>"$target/pyenv.lock"
flock 9
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
py="${PYTHON:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "setup-venv: $py not found; the interop tests need Python 3.9+ with venv and pip" >&2
  exit 1
fi
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" >"$venv/.stamp"
echo "setup-venv: Python test clients installed in $venv" >&2
