#!/usr/bin/env bash
# Measures how often reading a running program races it into a false leak verdict, and that the
# reachability proof's second mark removes every one: runs scenarios/control-request-churn (64
# clients parked on reply channels whose only references keep moving between a slot table and
# the hands of rebalancer goroutines — nothing is ever leaked) and diagnoses it N times without a
# pause. Prints, per run, the goroutines the first mark alone found leaked (proof.disagreed) and
# those reported (proof.leaked, must be 0).
#
#   scripts/bench-torn.sh [RUNS] [GO_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100}"
goroot="$(scripts/install-go.sh "${2:-1.27.3}")"
cargo build --release -q -p gostall
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd scenarios && GOROOT="$goroot" PATH="$goroot/bin:$PATH" GOTOOLCHAIN=local GOFLAGS=-mod=mod \
  go build -o "$work/churn" ./control-request-churn)
"$work/churn" > "$work/out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q GOSTALL_READY "$work/out" && break; sleep 0.1; done
single=0; reported=0; racy=0
for _ in $(seq "$runs"); do
  read -r leaked disagreed < <(target/release/gostall diagnose --pid "$pid" --format json --sample-interval 0 |
    python3 -c 'import json,sys; p=json.load(sys.stdin)["proof"]; print(len(p["leaked"]), p["disagreed"])')
  single=$((single + disagreed)); reported=$((reported + leaked))
  [ "$disagreed" -gt 0 ] && racy=$((racy + 1))
done
echo "runs: $runs; runs whose first mark alone saw a false leak: $racy (false leaks in all: $single); leaks reported after two agreeing marks: $reported"
[ "$reported" -eq 0 ]
