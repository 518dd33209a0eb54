#!/usr/bin/env bash
# Builds the distributable wheel of the Python package `tapis-agent` (python/)
# into target/wheels/: both programs and the tapis_agent package, linked
# against glibc 2.28 at most (manylinux_2_28: Rocky 8 login nodes, Ubuntu
# Jupyter images). maturin and zig come from PyPI into a venv of their own
# (target/build-wheel-venv); only Rust and Python 3 are needed.
#
# Usage: bash scripts/build-wheel.sh [extra maturin build options]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/target/build-wheel-venv"
# Pinned: a new zig can break the link step; bump both deliberately.
tools=("maturin==1.16.0" "ziglang==0.17.1")

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${tools[@]}"

rm -f "$root"/target/wheels/tapis_agent-*.whl
cd "$root/python"
# maturin finds zig through `python -m ziglang` of the venv on PATH. Its
# compliance check fails the build if a binary needs a newer glibc symbol.
PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$root/target" \
  maturin build --release --locked --zig --compatibility manylinux_2_28 \
  --auditwheel check --out "$root/target/wheels" "$@"
ls "$root"/target/wheels/tapis_agent-*.whl
