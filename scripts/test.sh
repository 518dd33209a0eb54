#!/usr/bin/env bash
# The whole test suite, the README's test command:
#   1. cargo test --workspace: unit tests, and the end-to-end suite
#      (tests/tests/suite) against the fake Tapis
#   2. ruff and mypy over python/, checking for Python 3.9
#   3. the Python suite (python/tests) on Python 3.9 and on 3.13 side by
#      side, each in a venv with the real tapipy and dapi from PyPI and the
#      package as the wheel lays it out, with the debug programs cargo built
#      (scripts/test-pythons.sh)
# The release checks (the static tapis-cred, the manylinux wheel, the sdist,
# pip from a checkout, the suite against the wheel) are
# scripts/test-release.sh; other CPUs and Pythons scripts/test-arm64.sh and
# scripts/test-pythons.sh.
# A missing prerequisite (no python3, a missing Python version in CI, no
# network for pip) fails the run; TAPIS_SKIP_PYTHON=1 skips steps 2-3 on
# purpose, and says so.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. scripts/run-common.sh

section "cargo test --workspace"
cargo test --workspace

if [ "${TAPIS_SKIP_PYTHON:-}" = "1" ]; then
  section "Python suite SKIPPED (TAPIS_SKIP_PYTHON=1)"
  exit 0
fi
section "Python suite, 3.9 and 3.13 (scripts/test-pythons.sh --lint --ends)"
bash scripts/test-pythons.sh --lint --ends
