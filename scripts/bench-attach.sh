#!/usr/bin/env bash
# What reading a stripped binary costs: `gostall dump --pid` of the same program built with DWARF
# and a symbol table and built with -ldflags='-s -w', timed as whole processes, pair by pair.
#
#   scripts/bench-attach.sh [-n GOROUTINES] [--runs N]
#
# Builds bench/manygoroutines with Go 1.27.3 both ways, starts both with N goroutines (default
# 10000), and times `gostall dump --pid` of each (farm-bench, A = stripped, B = with DWARF). The
# difference of the medians is the cost of finding layouts in the recorded tables and the globals
# through the runtime's code instead of DWARF and the symbol table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
count=10000
runs=10
while [ $# -gt 0 ]; do
  case "$1" in
    -n) count="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-attach: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
out="$root/target/bench"
mkdir -p "$out"
goroot="$("$here/install-go.sh" 1.27.3)"
build() {
  (cd "$root/bench/manygoroutines" && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOCACHE="$out/gocache" \
    "$goroot/bin/go" build "$@")
}
build -o "$out/manygoroutines-dwarf" .
build -ldflags='-s -w' -o "$out/manygoroutines-stripped" .
(cd "$root" && cargo build --release -q)
gostall="${GOSTALL_BIN:-$root/target/release/gostall}"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
start() {
  "$out/$1" -n "$count" > "$out/$1.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 600); do grep -q READY "$out/$1.out" && break; sleep 0.1; done
  grep -q READY "$out/$1.out" || { echo "bench-attach: $1 never became ready" >&2; exit 1; }
}
start manygoroutines-dwarf
dwarf=${pids[0]}
start manygoroutines-stripped
stripped=${pids[1]}
echo "targets: $count goroutines each; with DWARF pid $dwarf, stripped pid $stripped"
farm-bench -n "$runs" --vs "$gostall dump --pid $dwarf --format json --no-goroutines" -- \
  "$gostall" dump --pid "$stripped" --format json --no-goroutines
