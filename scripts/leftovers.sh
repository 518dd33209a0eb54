#!/usr/bin/env bash
# Fails when a tapis-agent, tapis-cred or fake-tapis that this test run
# started is still running: every test stops what it starts, agents that
# tapis-cred autostarted included. scripts/test.sh and test-release.sh mark
# everything they start with TAPIS_TEST_RUN=MARK in the environment; such processes get a
# few seconds to finish, then are named, killed, and the run fails.
#   bash scripts/leftovers.sh MARK
set -euo pipefail
mark="TAPIS_TEST_RUN=${1:?usage: leftovers.sh MARK}"

ours() {
  local d comm
  for d in /proc/[0-9]*; do
    comm="$(cat "$d/comm" 2>/dev/null)" || continue
    case "$comm" in
      tapis-agent | tapis-cred | fake-tapis) ;;
      *) continue ;;
    esac
    # A process may end between the two reads: its environ is then gone.
    if { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qxF "$mark"; then
      echo "${d#/proc/}"
    fi
  done
}

for _ in $(seq 50); do
  left="$(ours)"
  [ -z "$left" ] && exit 0
  sleep 0.1
done
echo "processes this test run started are still running:" >&2
for pid in $left; do
  echo "  $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" >&2
done
# shellcheck disable=SC2086
kill $left 2>/dev/null || true
exit 1
