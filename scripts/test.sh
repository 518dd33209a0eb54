#!/usr/bin/env bash
# The whole test suite, the README's test command:
#   1. cargo test --workspace: unit tests, and the end-to-end suite
#      (tests/tests/suite) against the fake Tapis; then the client's suites
#      again with the statically linked tapis-cred
#   2. ruff and mypy over python/, checking for Python 3.9
#   3. the Python suite (python/tests) on Python 3.9 and on 3.13 side by
#      side, each in a venv with the real tapipy and dapi from PyPI and the
#      package as the wheel lays it out, with the debug programs cargo built
#      (scripts/test-pythons.sh)
# The release checks (the manylinux wheel, the sdist, pip from a checkout,
# the suite against the wheel) are scripts/test-release.sh; other CPUs and
# Pythons scripts/test-arm64.sh and scripts/test-pythons.sh.
# A missing prerequisite (no python3, a missing Python version in CI, no
# network for pip) fails the run; TAPIS_SKIP_PYTHON=1 skips steps 2-3 on
# purpose, and says so.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. scripts/run-common.sh

section "cargo test --workspace"
cargo test --workspace

# The fastest tapis-cred is linked statically (docs/development.md); the suites
# that run the client binary run again with that build. A static glibc build
# needs an explicit --target, else proc-macro crates cannot be built.
section "static tapis-cred: the client suites again"
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build -p tapis-cred --target "$host" \
  --config "target.$host.rustflags=[\"-C\", \"target-feature=+crt-static\"]"
static_cred="$root/target/$host/debug/tapis-cred"
if readelf -l "$static_cred" | grep -q INTERP; then
  echo "$static_cred is not statically linked" >&2
  exit 1
fi
TAPIS_CRED_BIN="$static_cred" cargo test -p tapis-cred --test cli
TAPIS_CRED_BIN="$static_cred" cargo test -p tapis-agent-tests --test suite -- binaries_e2e:: deploy_autostart::

if [ "${TAPIS_SKIP_PYTHON:-}" = "1" ]; then
  section "Python suite SKIPPED (TAPIS_SKIP_PYTHON=1)"
  exit 0
fi
section "Python suite, 3.9 and 3.13 (scripts/test-pythons.sh --lint --ends)"
bash scripts/test-pythons.sh --lint --ends
