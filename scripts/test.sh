#!/usr/bin/env bash
# The whole test suite, the README's test command:
#   1. cargo test --workspace, then the client's suites again with the
#      statically linked tapis-cred
#   2. the distributable wheel (scripts/build-wheel.sh)
#   3. a venv (target/python-venv) with that wheel, the real tapipy, pytest,
#      ruff and mypy from PyPI; ruff and mypy over python/
#   4. the Python suite (python/tests) against the wheel's tapis-agent and
#      tapis-cred and target/debug/fake-tapis
# A missing prerequisite (no python3, no network for pip) fails the run;
# TAPIS_SKIP_PYTHON=1 skips steps 2-4 on purpose, and says so.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Everything the run starts carries this mark, and none of it may outlive
# the run: a tapis-agent, tapis-cred or fake-tapis left running fails it.
export TAPIS_TEST_RUN="$$.$(date +%s%N)"
finish() {
  local status=$?
  echo "--- leftover processes (scripts/leftovers.sh)"
  bash "$root/scripts/leftovers.sh" "$TAPIS_TEST_RUN" || status=1
  exit "$status"
}
trap finish EXIT

echo "--- cargo test --workspace"
cargo test --workspace

# The fastest tapis-cred is linked statically (docs/development.md); the suites
# that run the client binary run again with that build. A static glibc build
# needs an explicit --target, else proc-macro crates cannot be built.
echo "--- static tapis-cred: the client suites again"
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build -p tapis-cred --target "$host" \
  --config "target.$host.rustflags=[\"-C\", \"target-feature=+crt-static\"]"
static_cred="$root/target/$host/debug/tapis-cred"
if readelf -l "$static_cred" | grep -q INTERP; then
  echo "$static_cred is not statically linked" >&2
  exit 1
fi
TAPIS_CRED_BIN="$static_cred" cargo test -p tapis-cred --test cli
TAPIS_CRED_BIN="$static_cred" cargo test -p tapis-agent-tests --test binaries_e2e --test deploy_autostart

if [ "${TAPIS_SKIP_PYTHON:-}" = "1" ]; then
  echo "--- Python suite SKIPPED (TAPIS_SKIP_PYTHON=1)"
  exit 0
fi

echo "--- wheel (scripts/build-wheel.sh)"
bash scripts/build-wheel.sh

echo "--- Python suite venv"
venv="$root/target/python-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
# Pinned, so that a new release of a linter cannot fail an unchanged tree.
"${pip[@]}" install --quiet "tapipy==25.4.0" "pytest==9.2.0" "ruff==0.17.6" "mypy==2.4.1" "auditwheel==6.8.2" "dapi==0.6.3"
"${pip[@]}" install --quiet --force-reinstall --no-deps "$root"/target/wheels/tapis_agent-*.whl

echo "--- ruff, mypy"
(
  cd python
  "$venv/bin/ruff" check .
  "$venv/bin/ruff" format --check .
  "$venv/bin/mypy"
  "$venv/bin/mypy" --python-version 3.11 tests
)

echo "--- pytest python/tests"
# From the repository root, so that `tapis_agent` is the wheel's, not
# python/tapis_agent. The from-checkout build compiles unoptimised (same
# steps, a fraction of the time); see python/tests/test_wheel.py.
TAPIS_FAKE_TAPIS="$root/target/debug/fake-tapis" TAPIS_CHECKOUT_BUILD_FAST=1 \
  "$venv/bin/python" -m pytest python/tests
