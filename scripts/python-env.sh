#!/usr/bin/env bash
# Makes .state/venv with the Python tools in scripts/requirements.txt (idempotent: reinstalls
# only when the requirements changed). Prints the venv's bin folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.state/venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$root/scripts/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin"
