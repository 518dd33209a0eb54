#!/usr/bin/env bash
# The Python suite (python/tests) against this machine's wheel, once per
# Python version named, each in a venv of its own (target/python-venv-X.Y,
# created once) with the wheel, the real tapipy and pytest from PyPI.
#
# Usage: bash scripts/test-pythons.sh [--lint] [X.Y ...]
#        bash scripts/test-pythons.sh --find X.Y   (prints the interpreter)
#   X.Y     the versions to run on; default: 3.10 3.11 3.12, the ones between
#           the oldest (3.9) and the newest (3.13) that scripts/test.sh runs.
#   --lint  also ruff and mypy over python/ (package and suite), with mypy
#           in the venv of the first version named, checking for 3.9.
# Each Python is found under pyenv ($PYENV_ROOT/versions/X.Y.*, the newest
# patch release) or as pythonX.Y on PATH; a missing one fails the run.
# The wheel is built first when missing (scripts/build-wheel.sh --target
# of this machine); target/debug/fake-tapis must be built (cargo build -p
# tapis-agent-tests --bin fake-tapis).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# The interpreter of Python X.Y: pyenv's newest X.Y.N, else pythonX.Y.
find_python() {
  local want="$1" dir found=""
  dir="${PYENV_ROOT:-$HOME/.pyenv}/versions"
  if [ -d "$dir" ]; then
    found="$(find "$dir" -mindepth 1 -maxdepth 1 -name "$want.*" -printf '%f\n' \
      | grep -E "^${want//./\\.}\.[0-9]+$" | sort -V | tail -1 || true)"
    [ -n "$found" ] && found="$dir/$found/bin/python$want"
  fi
  if [ -z "$found" ] || [ ! -x "$found" ]; then
    found="$(command -v "python$want" || true)"
  fi
  if [ -z "$found" ]; then
    echo "Python $want not found (neither under ${dir} nor python$want on PATH):" \
      "install it, e.g. pyenv install $want" >&2
    return 1
  fi
  local got
  got="$("$found" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if [ "$got" != "$want" ]; then
    echo "$found is Python $got, not $want" >&2
    return 1
  fi
  echo "$found"
}

if [ "${1:-}" = "--find" ]; then
  find_python "${2:?--find takes a version, e.g. 3.9}"
  exit
fi

lint=0
if [ "${1:-}" = "--lint" ]; then
  lint=1
  shift
fi
versions=("$@")
if [ "${#versions[@]}" -eq 0 ]; then
  versions=(3.10 3.11 3.12)
fi

# Pinned, so that a new release cannot fail an unchanged tree. pytest 9 and
# the newest auditwheel need 3.10; mypy 2 cannot check for 3.9, so the type
# check runs mypy 1.19 (its last release that can).
pins=(
  "tapipy==25.4.0"
  "dapi==0.6.3"
  "pytest==9.2.0; python_version >= '3.10'"
  "pytest==8.4.2; python_version < '3.10'"
  "auditwheel==6.8.2; python_version >= '3.10'"
  "auditwheel==6.4.2; python_version < '3.10'"
)
# requests on 3.9 (2.32) predates its inline types: the stubs stand in.
lint_pins=("ruff==0.17.6" "mypy==1.19.1" "types-requests==2.32.4.20260107")


fake="$root/target/debug/fake-tapis"
if [ ! -x "$fake" ]; then
  echo "$fake is missing: cargo build -p tapis-agent-tests --bin fake-tapis" >&2
  exit 1
fi
cpu="$(uname -m)"
if ! ls "$root"/target/wheels/tapis_agent-*"_$cpu.whl" >/dev/null 2>&1; then
  bash scripts/build-wheel.sh --target "$cpu"
fi
wheel="$(ls "$root"/target/wheels/tapis_agent-*"_$cpu.whl")"

first=1
for v in "${versions[@]}"; do
  python="$(find_python "$v")"
  venv="$root/target/python-venv-$v"
  echo "--- Python $v ($python): venv $venv"
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
  fi
  pip=("$venv/bin/python" -m pip --disable-pip-version-check)
  extra=()
  if [ "$lint" = 1 ] && [ "$first" = 1 ]; then extra=("${lint_pins[@]}"); fi
  "${pip[@]}" install --quiet "${pins[@]}" "${extra[@]}"
  "${pip[@]}" install --quiet --force-reinstall --no-deps "$wheel"

  if [ "$lint" = 1 ] && [ "$first" = 1 ]; then
    echo "--- ruff, mypy (Python $v)"
    (
      cd python
      "$venv/bin/ruff" check .
      "$venv/bin/ruff" format --check .
      "$venv/bin/mypy"
      "$venv/bin/mypy" tests
    )
  fi
  first=0

  echo "--- pytest python/tests (Python $v)"
  # From the repository root, so that `tapis_agent` is the wheel's, not
  # python/tapis_agent. The from-checkout build compiles unoptimised (same
  # steps, a fraction of the time); see python/tests/test_wheel.py.
  TAPIS_FAKE_TAPIS="$fake" TAPIS_CHECKOUT_BUILD_FAST=1 TAPIS_WHEEL="$wheel" \
    "$venv/bin/python" -m pytest python/tests
done
