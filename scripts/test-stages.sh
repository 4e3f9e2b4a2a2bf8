#!/usr/bin/env bash
# `make test`: every stage CI runs, in order, each timed. A failed stage does not stop the later ones
# (the teardown check always runs last, so no cluster is left running); the exit status is non-zero
# when any stage failed. The end prints each stage's wall time, every skipped test with its reason,
# and the test counts.
set -uo pipefail
cd "$(dirname "$0")/.."
results=results
mkdir -p "$results"
record=$results/tests.jsonl
stages=$results/stages.txt
: >"$record"
: >"$stages"
status=0

# stage NAME COMMAND...: runs COMMAND, prints and records its wall time and result.
stage() {
	local name=$1 result t0=$SECONDS d
	shift
	echo "=== stage $name: $*"
	if "$@"; then result=ok; else result=FAILED status=1; fi
	d=$((SECONDS - t0))
	printf '=== stage %s: %s in %dm%02ds\n' "$name" "$result" $((d / 60)) $((d % 60))
	printf '  %-14s %-7s %3dm%02ds\n' "$name" "$result" $((d / 60)) $((d % 60)) >>"$stages"
}

# skip NAME REASON: records a stage that does not run here, and why.
skip() {
	echo "=== stage $1: skipped: $2"
	printf '  %-14s skipped: %s\n' "$1" "$2" >>"$stages"
}

m() { make --no-print-directory "$@"; }

stage tools m deps
stage lint m lint
stage render m test-render
stage unit m test-unit
stage bench m bench
if [ -n "${KUBECONFIG:-}" ]; then
	why="KUBECONFIG names another cluster ($KUBECONFIG); the local cluster is not tested"
	for s in build soak smoke-2-nodes teardown; do skip "$s" "$why"; done
	skip examples "the example's rollout needs its images in the cluster: run it as examples/hello/README.md says"
	stage demo m test-demo
	stage smoke m test-live
	stage e2e m e2e
else
	stage build m cluster-build
	stage soak m cluster-soak CYCLES="${SOAK_CYCLES:-2}"
	stage smoke-1-node m test-live NODES=1
	stage smoke-2-nodes m test-live NODES=2
	stage examples m examples
	stage demo m test-demo
	stage e2e m e2e
	stage teardown m test-teardown
fi

echo
echo "stage times (wall clock, $(nproc) cores):"
cat "$stages"
bin/testlog -summary "$record" || status=1
exit $status
