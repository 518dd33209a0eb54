#!/usr/bin/env bash
# One-command demo: builds everything, starts the bundled fake Tapis on
# loopback, starts tapis-agent against it on a private socket, logs in,
# establishes credentials on three systems at once, shows the status,
# revokes one, shows the exit-6 message for a non-TMS system, and stops.
# Touches nothing outside a temporary directory; contacts no real Tapis host.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Building (release)"
cargo build --release --quiet -p tapis-agent -p tapis-cred -p tapis-agent-tests --bins
BIN="$PWD/target/release"
export PATH="$BIN:$PATH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tapis-demo.XXXXXX")
FAKE_PID=""; AGENT_PID=""
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null || true
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say "Starting the fake Tapis on loopback"
mkfifo "$WORK/fake.out"
fake-tapis --listen 127.0.0.1:0 >"$WORK/fake.out" 2>"$WORK/fake.log" &
FAKE_PID=$!
read -r -t 30 first_line <"$WORK/fake.out" || { echo "fake Tapis did not start"; cat "$WORK/fake.log"; exit 1; }
BASE_URL=${first_line#listening on }
echo "fake Tapis: $BASE_URL (user testuser / password testpass)"

say "Starting tapis-agent"
export TAPIS_AGENT_SOCK="$WORK/run/agent.sock"
export XDG_CONFIG_HOME="$WORK/config" XDG_STATE_HOME="$WORK/state"
tapis-agent --base-url "$BASE_URL" 2>"$WORK/agent.log" &
AGENT_PID=$!
# Wait until the agent answers (bounded: 30 s).
for _ in $(seq 300); do
  tapis-cred status >/dev/null 2>&1 && break
  kill -0 "$AGENT_PID" 2>/dev/null || { echo "agent exited:"; cat "$WORK/agent.log"; exit 1; }
  sleep 0.1
done
echo "agent socket: $TAPIS_AGENT_SOCK"

say "Logging in (once)"
printf 'testpass\n' | run tapis-cred login --username testuser --password-stdin

say "Establishing credentials on three systems concurrently"
run tapis-cred establish stampede3 ls6 frontera

say "Again: answered from the agent's cache, no call to Tapis"
run tapis-cred establish stampede3 ls6 frontera

say "Status"
run tapis-cred status

say "Revoking ls6"
run tapis-cred revoke ls6

say "A system that does not use TMS keys (exit code 6, nothing created)"
set +e
run tapis-cred establish corral.pki
code=$?
set -e
echo "exit code: $code"

say "A token for other tools (first 24 characters shown)"
tok=$(tapis-cred token --min-valid 300)
echo "${tok:0:24}..."

say "Calls the fake Tapis received (its /_fake/stats)"
addr=${BASE_URL#http://}
exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}"
printf 'GET /_fake/stats HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
sed '1,/^\r$/d' <&3; echo
exec 3>&-

say "Stopping the agent (SIGTERM: drains, persists, removes its socket)"
kill -TERM "$AGENT_PID"; wait "$AGENT_PID"; echo "agent exit code: $?"; AGENT_PID=""
[ -e "$TAPIS_AGENT_SOCK" ] && echo "socket still there?!" || echo "socket removed"
say "Done"
