#!/usr/bin/env bash
# End-to-end speed and memory benchmark of `gostall diagnose` on a large real goroutine dump.
#
#   scripts/bench-dump.sh [--regen] [--runs N] [-n GOROUTINES]
#
# Builds bench/manygoroutines with Go 1.27.3 (installed by scripts/install-go.sh), runs it with
# GOTRACEBACK=all until it prints READY, sends SIGQUIT and keeps the dump (~490 MB for 200k
# goroutines) at target/bench/dump-200k.txt; an existing dump is reused unless --regen is given.
# Then builds gostall in release mode and runs, N times each (default 3) under GNU time:
#
#   gostall diagnose DUMP --findings-only --color never > /dev/null
#   gostall diagnose DUMP --format json --no-goroutines > /dev/null
#
# and prints, for the best run of each: input size, wall time, MB/s (input MB / wall s), max RSS
# and max RSS as a percentage of the input. Targets: >= 500 MB/s (goal 1 GB/s), RSS <= 25% of input.
#
# GOSTALL_BIN=path/to/gostall benchmarks that binary instead of building target/release/gostall.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
regen=0
runs=3
count=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --regen) regen=1 ;;
    --runs) runs="$2"; shift ;;
    -n) count="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench-dump: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

out_dir="$root/target/bench"
if [ "$count" = 200000 ]; then
  dump="$out_dir/dump-200k.txt"
else
  dump="$out_dir/dump-$count.txt"
fi
mkdir -p "$out_dir"

if [ ! -x /usr/bin/time ]; then
  echo "bench-dump: installing GNU time" >&2
  apt-get install -y time >&2 || { apt-get update >&2 && apt-get install -y time >&2; }
fi

if [ "$regen" = 1 ] || [ ! -s "$dump" ]; then
  goroot="$("$here/install-go.sh" 1.27.3)"
  echo "bench-dump: GOROOT $goroot" >&2
  prog="$out_dir/manygoroutines"
  (
    cd "$root/bench/manygoroutines"
    GOTOOLCHAIN=local GOFLAGS=-mod=mod GOCACHE="$out_dir/gocache" GOPATH="$out_dir/gopath" \
      "$goroot/bin/go" build -o "$prog" .
  )
  echo "bench-dump: starting $count goroutines and taking a SIGQUIT dump (about a minute)..." >&2
  ready="$out_dir/manygoroutines.out"
  rm -f "$ready" "$dump.tmp"
  GOTRACEBACK=all "$prog" -n "$count" > "$ready" 2> "$dump.tmp" &
  pid=$!
  ok=0
  for _ in $(seq 1200); do
    if grep -q READY "$ready" 2>/dev/null; then ok=1; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ "$ok" != 1 ]; then
    kill -KILL "$pid" 2>/dev/null || true
    echo "bench-dump: the program did not print READY" >&2
    tail -5 "$dump.tmp" >&2 || true
    exit 1
  fi
  kill -QUIT "$pid"
  wait "$pid" || true # exits with status 2 after the dump
  mv "$dump.tmp" "$dump"
fi

if [ -n "${GOSTALL_BIN:-}" ]; then
  bin="$GOSTALL_BIN"
else
  (cd "$root" && cargo build --release --quiet)
  bin="$root/target/release/gostall"
fi
size=$(stat -c %s "$dump")
# Warm the page cache so every run reads the same way.
cat "$dump" > /dev/null

bench() {
  local label="$1"; shift
  local best_wall="" best_rss="" tv
  tv="$(mktemp)"
  for k in $(seq "$runs"); do
    /usr/bin/time -v "$bin" diagnose "$dump" "$@" > /dev/null 2> "$tv" || {
      echo "bench-dump: gostall failed:" >&2; cat "$tv" >&2; rm -f "$tv"; exit 1
    }
    local wall rss
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:00.73"
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$tv")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
    echo "  run $k: wall ${wall}s, max RSS ${rss} KiB"
    if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
      best_wall=$wall
      best_rss=$rss
    fi
  done
  rm -f "$tv"
  awk -v label="$label" -v size="$size" -v wall="$best_wall" -v rss="$best_rss" 'BEGIN {
    mb = size / 1e6
    printf "%s\n", label
    printf "  input     %.1f MB (%d bytes)\n", mb, size
    printf "  wall      %.2f s (best of runs)\n", wall
    printf "  speed     %.0f MB/s\n", (wall > 0 ? mb / wall : 0)
    printf "  max RSS   %.1f MB (%.1f%% of the input)\n", rss * 1024 / 1e6, rss * 1024 * 100 / size
  }'
}

echo "gostall diagnose $dump, best of $runs"
bench "text: --findings-only --color never" --findings-only --color never
bench "json: --format json --no-goroutines" --format json --no-goroutines
