#!/usr/bin/env bash
# The release checks: what users install, built as it ships, beyond the
# test command (scripts/test.sh), which tests the same code in debug builds.
#   1. this machine's manylinux_2_17 wheel and the sdist
#      (scripts/build-wheel.sh)
#   2. the Python suite against that wheel on Python 3.9 and 3.13, with the
#      tests marked `release`: the wheel's tag and contents, a fresh venv
#      with nothing but the wheel, `pip install ./python`, the sdist where
#      no wheel fits (scripts/test-pythons.sh --wheel)
# About 3 minutes on two cores after scripts/test.sh. Before a release, also
# scripts/test-arm64.sh (the aarch64 wheel) and scripts/test-pythons.sh
# --wheel (3.10 to 3.12).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. scripts/run-common.sh

# The wheel of this machine's CPU only: the aarch64 wheel is built and run
# under an arm64 userland by scripts/test-arm64.sh.
section "wheel and sdist (scripts/build-wheel.sh --target $(uname -m))"
bash scripts/build-wheel.sh --target "$(uname -m)"

section "Python suite against the wheel (scripts/test-pythons.sh --wheel --ends)"
cargo build -p tapis-agent-tests --bin fake-tapis
bash scripts/test-pythons.sh --wheel --ends
