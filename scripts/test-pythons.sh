#!/usr/bin/env bash
# The Python suite (python/tests), once per Python version named, each in a
# venv of its own (target/python-venv-X.Y, created once) with the real
# tapipy, dapi and pytest from PyPI. The versions run side by side (one
# after the other with --wheel).
#
# Usage: bash scripts/test-pythons.sh [--lint] [--wheel] [X.Y ... | --ends]
#        bash scripts/test-pythons.sh --find X.Y   (prints the interpreter)
#   X.Y     the versions to run on; default: 3.10 3.11 3.12, the ones between
#           the oldest and the newest supported.
#   --ends  the oldest and the newest supported, 3.9 and 3.13 (what the test
#           command runs). CI (CI=true) must have both; elsewhere the missing
#           ones are left out, said, and with neither the machine's own
#           python3 runs the suite.
#   --lint  also ruff and mypy over python/ (package and suite), with mypy
#           in the venv of the first version, checking for 3.9.
#   --wheel the package as users get it: this machine's wheel (built with
#           scripts/build-wheel.sh when missing) and the whole suite, the
#           tests marked `release` too (a fresh venv, pip from a checkout,
#           the sdist). Without it, the package is python/tapis_agent with
#           the debug programs of target/debug (cargo builds them), laid out
#           as the wheel lays them out, and the `release` tests are left out
#           (pytest counts them as deselected).
# Each Python is found under pyenv ($PYENV_ROOT/versions/X.Y.*, the newest
# patch release) or as pythonX.Y on PATH; a missing one fails the run.
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

# The oldest and the newest supported Python, those of them this machine
# has (CI must have both), else its own python3.
ends() {
  local wanted=(3.9 3.13) found=() v own
  for v in "${wanted[@]}"; do
    if find_python "$v" >/dev/null 2>&1; then found+=("$v"); fi
  done
  if [ "${#found[@]}" -lt "${#wanted[@]}" ]; then
    if [ "${CI:-}" = "true" ]; then
      echo "CI runs the Python suite on ${wanted[*]}: install them (pyenv install 3.9 3.13)" >&2
      return 1
    fi
    own="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    echo "note: Python ${wanted[*]} not all found (pyenv install 3.9 3.13 adds them);" \
      "the suite runs on ${found[*]:-$own} only" >&2
    if [ "${#found[@]}" -eq 0 ]; then found=("$own"); fi
  fi
  echo "${found[*]}"
}

if [ "${1:-}" = "--find" ]; then
  find_python "${2:?--find takes a version, e.g. 3.9}"
  exit
fi

lint=0
wheel_mode=0
versions=()
for arg in "$@"; do
  case "$arg" in
    --lint) lint=1 ;;
    --wheel) wheel_mode=1 ;;
    --ends)
      found="$(ends)" || exit 1
      read -r -a found <<<"$found"
      versions+=("${found[@]}")
      ;;
    [0-9]*) versions+=("$arg") ;;
    *)
      echo "test-pythons.sh: unknown argument '$arg' (see the top of the script)" >&2
      exit 2
      ;;
  esac
done
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
suite_env=(TAPIS_FAKE_TAPIS="$fake")
pytest_args=()
if [ "$wheel_mode" = 1 ]; then
  if [ ! -x "$fake" ]; then
    cargo build -p tapis-agent-tests --bin fake-tapis
  fi
  cpu="$(uname -m)"
  if ! ls "$root"/target/wheels/tapis_agent-*"_$cpu.whl" >/dev/null 2>&1; then
    bash scripts/build-wheel.sh --target "$cpu"
  fi
  wheel="$(ls "$root"/target/wheels/tapis_agent-*"_$cpu.whl")"
  # The from-checkout build compiles unoptimised (same steps, a fraction of
  # the time); see python/tests/test_wheel.py.
  suite_env+=(TAPIS_CHECKOUT_BUILD_FAST=1 TAPIS_WHEEL="$wheel")
else
  # Nothing to do when `cargo test` has built them.
  cargo build --quiet -p tapis-agent -p tapis-cred -p tapis-agent-tests --bin tapis-agent \
    --bin tapis-cred --bin fake-tapis
  pytest_args=(-m "not release")
fi

# Puts the package into venv $1 as the wheel does: tapis_agent in its
# site-packages, both programs in its bin (hard links where they can be, so
# that tapis-cred finds tapis-agent next to itself as in the wheel).
install_checkout() {
  local venv="$1" site
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  rm -rf "$site/tapis_agent"
  cp -r "$root/python/tapis_agent" "$site/tapis_agent"
  find "$site/tapis_agent" -name __pycache__ -prune -exec rm -rf {} +
  for program in tapis-agent tapis-cred; do
    rm -f "$venv/bin/$program"
    ln "$root/target/debug/$program" "$venv/bin/$program" 2>/dev/null \
      || cp "$root/target/debug/$program" "$venv/bin/$program"
  done
}

# Creates or updates the venv of Python $1 (lint tools too when $2 is 1).
setup() {
  local v="$1" with_lint="$2" python venv
  python="$(find_python "$v")"
  venv="$root/target/python-venv-$v"
  echo "Python $v ($python): venv $venv"
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
  fi
  local pip=("$venv/bin/python" -m pip --disable-pip-version-check)
  local extra=()
  if [ "$with_lint" = 1 ]; then extra=("${lint_pins[@]}"); fi
  "${pip[@]}" install --quiet "${pins[@]}" "${extra[@]}"
  if [ "$wheel_mode" = 1 ]; then
    "${pip[@]}" install --quiet --force-reinstall --no-deps "$wheel"
  else
    install_checkout "$venv"
  fi
}

lint_with() {
  local venv="$root/target/python-venv-$1"
  cd python
  "$venv/bin/ruff" check .
  "$venv/bin/ruff" format --check .
  "$venv/bin/mypy"
  "$venv/bin/mypy" tests
}

suite_with() {
  # From the repository root, so that `tapis_agent` is the installed one,
  # not python/tapis_agent.
  env "${suite_env[@]}" "$root/target/python-venv-$1/bin/python" -m pytest python/tests "${pytest_args[@]}"
}

# Runs "$@" in the background, its output in $logs/N-what.log, kept for a
# look while it runs or after the run.
logs="$root/target/python-logs"
rm -rf "$logs"
mkdir -p "$logs"
jobs_pid=()
jobs_name=()
jobs_log=()
started=0
start() {
  local name="$1" log
  shift
  started=$((started + 1))
  log="$logs/$started-$(echo "$name" | tr -c 'A-Za-z0-9.\n' '-').log"
  echo "started: $name (output: $log)"
  "$@" >"$log" 2>&1 &
  jobs_pid+=("$!")
  jobs_name+=("$name")
  jobs_log+=("$log")
}
# Waits for every job started, prints each one's output under a header, and
# fails when any failed.
finish() {
  local i status=0
  for i in "${!jobs_pid[@]}"; do
    if ! wait "${jobs_pid[$i]}"; then
      status=1
      echo "--- ${jobs_name[$i]}: FAILED"
    else
      echo "--- ${jobs_name[$i]}"
    fi
    cat "${jobs_log[$i]}"
  done
  jobs_pid=()
  jobs_name=()
  jobs_log=()
  return "$status"
}

first=1
for v in "${versions[@]}"; do
  start "venv $v" setup "$v" "$((lint && first))"
  first=0
done
finish
if [ "$lint" = 1 ]; then
  start "ruff, mypy (Python ${versions[0]})" lint_with "${versions[0]}"
fi
for v in "${versions[@]}"; do
  start "pytest python/tests (Python $v)" suite_with "$v"
  # pip from a checkout builds in one target directory (test_wheel.py),
  # which two maturin builds at once cannot share: with the wheel, one
  # version after the other.
  if [ "$wheel_mode" = 1 ]; then finish; fi
done
finish
