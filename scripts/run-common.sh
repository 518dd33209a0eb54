# Sourced by scripts/test.sh and scripts/test-release.sh: section headers, and
# the rule that nothing a run starts outlives it.

# A section header, with the seconds the run has taken so far (since .ci/run
# started, when it runs this).
: "${TAPIS_RUN_START:=$(date +%s)}"
export TAPIS_RUN_START
section() { echo "--- $* (at $(($(date +%s) - TAPIS_RUN_START)) s)"; }

# Everything the run starts carries this mark, and none of it may outlive
# the run: a tapis-agent, tapis-cred or fake-tapis left running fails it
# (scripts/leftovers.sh).
export TAPIS_TEST_RUN="$$.$(date +%s%N)"
finish_run() {
  local status=$?
  section "leftover processes (scripts/leftovers.sh)"
  bash "$root/scripts/leftovers.sh" "$TAPIS_TEST_RUN" || status=1
  exit "$status"
}
trap finish_run EXIT
