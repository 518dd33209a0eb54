#!/usr/bin/env bash
# Builds the distributable wheels of the Python package `tapis-agent`
# (python/) into target/wheels/: both programs and the tapis_agent package,
# one wheel per CPU, each linked against glibc 2.17 at most
# (manylinux_2_17, also tagged manylinux2014: CentOS 7 login nodes such as
# Frontera's, Rocky 8, Vista's aarch64 nodes, Ubuntu Jupyter images).
# maturin and zig come from PyPI into a venv of their own
# (target/build-wheel-venv); zig is the C compiler and linker of both
# targets (ring's C and assembly too), so only Rust and Python 3 are needed.
#
# Also the source distribution (maturin sdist), into the same directory.
#
# Each wheel is proven twice: maturin's compliance check (--auditwheel
# check) fails the build on a symbol newer than the tag allows, and then the
# highest GLIBC_2.* version each binary asks for is read from its ELF
# dynamic symbols and must be 2.17 or lower.
#
# Usage: bash scripts/build-wheel.sh [--target x86_64|aarch64|all] [maturin build options]
#   --target  the CPU to build for; default: all (x86_64, then aarch64).
#             The Rust target of aarch64 is added with rustup when missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/target/build-wheel-venv"
# Pinned: a new zig can break the link step; bump both deliberately.
tools=("maturin==1.16.0" "ziglang==0.17.1")
# The newest glibc the wheels may need; the tag follows from it.
max_glibc="2.17"
compat="manylinux_2_17"

cpus=(x86_64 aarch64)
if [ "${1:-}" = "--target" ]; then
  case "${2:-}" in
    x86_64 | aarch64) cpus=("$2") ;;
    all) ;;
    *)
      echo "build-wheel.sh: --target takes x86_64, aarch64 or all, not '${2:-}'" >&2
      exit 2
      ;;
  esac
  shift 2
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${tools[@]}"

# The highest GLIBC_2.* symbol version an ELF file needs, from its dynamic
# symbol table (readelf is binutils'; the parse is the script's own).
glibc_needed() {
  "$venv/bin/python" - "$1" <<'EOF'
import re, subprocess, sys
out = subprocess.run(["readelf", "--wide", "--dyn-syms", sys.argv[1]],
                     capture_output=True, text=True, check=True).stdout
found = {tuple(map(int, v.split("."))) for v in re.findall(r"@GLIBC_(\d+\.\d+(?:\.\d+)?)", out)}
if not found:
    sys.exit(f"{sys.argv[1]}: no GLIBC_ symbol versions (not a dynamic glibc binary?)")
print(".".join(map(str, max(found))))
EOF
}

for cpu in "${cpus[@]}"; do
  triple="$cpu-unknown-linux-gnu"
  if ! rustup target list --installed | grep -qx "$triple"; then
    rustup target add "$triple"
  fi
  echo "--- wheel for $cpu ($compat)"
  rm -f "$root"/target/wheels/tapis_agent-*"_$cpu.whl"
  # maturin finds zig through `python -m ziglang` of the venv on PATH; with
  # --zig and the manylinux_2_17 policy it links against glibc 2.17's
  # symbols. Its compliance check fails the build on a newer one.
  (
    cd "$root/python"
    PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$root/target" \
      maturin build --release --locked --zig --target "$triple" --compatibility "$compat" \
      --auditwheel check --out "$root/target/wheels" "$@"
  )
  whl="$(ls "$root"/target/wheels/tapis_agent-*"_$cpu.whl")"
  case "$whl" in
    *"-py3-none-manylinux2014_$cpu.${compat}_$cpu.whl") ;;
    *)
      echo "$whl: not tagged manylinux2014_$cpu.${compat}_$cpu" >&2
      exit 1
      ;;
  esac
  # The independent check: unpack the binaries and read their symbol versions.
  unpacked="$(mktemp -d)"
  trap 'rm -rf "$unpacked"' EXIT
  "$venv/bin/python" -m zipfile -e "$whl" "$unpacked"
  for bin in "$unpacked"/tapis_agent-*.data/scripts/*; do
    need="$(glibc_needed "$bin")"
    if [ "$(printf '%s\n%s\n' "$need" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]; then
      echo "$(basename "$bin") in $whl needs GLIBC_$need, newer than $max_glibc" >&2
      exit 1
    fi
    echo "$(basename "$bin") ($cpu): highest symbol version GLIBC_$need, at most $max_glibc"
  done
  rm -rf "$unpacked"
  trap - EXIT
  echo "$whl: $(du -k "$whl" | cut -f1) KiB"
done

# The source distribution, for where no wheel fits (another CPU, musl, an
# older glibc): pip builds it with Rust and a C compiler. A few seconds.
echo "--- source distribution"
rm -f "$root"/target/wheels/tapis_agent-*.tar.gz
(cd "$root/python" && PATH="$venv/bin:$PATH" maturin sdist --out "$root/target/wheels")
