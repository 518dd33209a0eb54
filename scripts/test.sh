#!/usr/bin/env bash
# The whole test suite, the README's test command:
#   1. cargo test --workspace, then the client's suites again with the
#      statically linked tapis-cred
#   2. the distributable wheel of this machine's CPU (scripts/build-wheel.sh)
#   3. ruff and mypy over python/, checking for Python 3.9
#   4. the Python suite (python/tests) against the wheel's tapis-agent and
#      tapis-cred and target/debug/fake-tapis, on Python 3.9 and on 3.13,
#      each in a venv with the wheel and the real tapipy from PyPI
#      (scripts/test-pythons.sh; it runs 3.10-3.12 when given no versions)
# A missing prerequisite (no python3, a missing Python version, no network
# for pip) fails the run;
# TAPIS_SKIP_PYTHON=1 skips steps 2-4 on purpose, and says so.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# A section header, with the seconds the run has taken so far.
section() { echo "--- $* (at ${SECONDS} s)"; }

# Everything the run starts carries this mark, and none of it may outlive
# the run: a tapis-agent, tapis-cred or fake-tapis left running fails it.
export TAPIS_TEST_RUN="$$.$(date +%s%N)"
finish() {
  local status=$?
  section "leftover processes (scripts/leftovers.sh)"
  bash "$root/scripts/leftovers.sh" "$TAPIS_TEST_RUN" || status=1
  exit "$status"
}
trap finish EXIT

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
TAPIS_CRED_BIN="$static_cred" cargo test -p tapis-agent-tests --test binaries_e2e --test deploy_autostart

if [ "${TAPIS_SKIP_PYTHON:-}" = "1" ]; then
  section "Python suite SKIPPED (TAPIS_SKIP_PYTHON=1)"
  exit 0
fi

# The wheel of this machine's CPU only: the aarch64 wheel is built and run
# under an arm64 userland by scripts/test-arm64.sh (README, "Two commands").
section "wheel (scripts/build-wheel.sh --target $(uname -m))"
bash scripts/build-wheel.sh --target "$(uname -m)"

# The oldest and the newest supported Python; scripts/test-pythons.sh with
# no arguments runs the ones between. CI has both (pyenv) and must run them;
# a machine with neither runs the suite on its own python3, and says what it
# left out.
wanted=(3.9 3.13)
pythons=()
for v in "${wanted[@]}"; do
  if bash scripts/test-pythons.sh --find "$v" >/dev/null 2>&1; then pythons+=("$v"); fi
done
if [ "${#pythons[@]}" -lt "${#wanted[@]}" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "CI runs the Python suite on ${wanted[*]}: install them (pyenv install 3.9 3.13)" >&2
    exit 1
  fi
  own="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  echo "note: Python ${wanted[*]} not all found (pyenv install 3.9 3.13 adds them);" \
    "the suite runs on ${pythons[*]:-$own} only" >&2
  if [ "${#pythons[@]}" -eq 0 ]; then pythons=("$own"); fi
fi
section "Python suite on ${pythons[*]} (scripts/test-pythons.sh)"
bash scripts/test-pythons.sh --lint "${pythons[@]}"
