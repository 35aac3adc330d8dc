#!/usr/bin/env bash
# Reachability-proof benchmark: gostall diagnose --pid on a big live Go process.
#
#   scripts/bench-proof.sh [--runs N] [-n GOROUTINES] [--heap MIB] [--leaks N] [--go VERSION] [--busy]
#
# Builds bench/bigheap (Go 1.27.3 by default, through scripts/install-go.sh) and gostall (release),
# starts the bench (200k goroutines, a 1024 MiB live heap and 300 leaked goroutines by default)
# and, once it is READY, runs N times (default 5), in the default mode (no --pause):
#   GOSTALL_TIMING=1 gostall diagnose --pid PID
# then once more with --format json, checking that the proof found exactly the bench's leaked
# goroutines, all in its leak functions, with heap and stacks scanned precisely, and reading the
# pause (live.paused_us; null: the target was never stopped); then once with --no-proof (the
# baseline). Prints wall time (median/min/max), gostall's peak RSS (/usr/bin/time -v) against the
# heap it scanned, and the GOSTALL_TIMING phase lines (proof: …) of the median run.
# An idle target (the default: every goroutine parked, as in a stuck service) runs nothing during
# the first mark, so gostall takes one mark (proof.quiescent); with --busy a goroutine of the
# target keeps computing (taking one of the machine's cores) and gostall takes a second,
# confirming mark; that goroutine's stack is scanned conservatively (it is running).
# Targets: <= 3 s wall with the proof; any pause <= 100 ms; peak RSS <= 25 % of the heap.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
runs=5
count=200000
heap_mib=1024
leaks=300
gover=1.27.3
busy=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift ;;
    -n) count="$2"; shift ;;
    --heap) heap_mib="$2"; shift ;;
    --leaks) leaks="$2"; shift ;;
    --go) gover="$2"; shift ;;
    --busy) busy=(-busy) ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench-proof: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
out="$root/target/bench"
mkdir -p "$out"
goroot="$("$here/install-go.sh" "$gover")"
bin="$out/bigheap-$gover"
(cd "$root/bench/bigheap" && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOCACHE="$out/gocache-$gover" \
  "$goroot/bin/go" build -o "$bin" .)
(cd "$root" && cargo build --release -q -p gostall)
gostall="${GOSTALL_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/gostall}"

log="$out/proof-target.out"
"$bin" -n "$count" -heap "$heap_mib" -leaks "$leaks" "${busy[@]}" > "$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1800); do
  grep -q READY "$log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
grep -q READY "$log" || { echo "bench-proof: target never became ready:" >&2; cat "$log" >&2; exit 1; }
ready="$(grep READY "$log")"
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<< "$ready"; }
heap_alloc="$(field heap_alloc)"
heap_inuse="$(field heap_inuse)"
echo "target: pid $pid, Go $gover, $(field goroutines) goroutines ($leaks leaked), heap: $((heap_alloc >> 20)) MiB live, $((heap_inuse >> 20)) MiB in use (built in $(field built_in)); RSS $(awk '/VmRSS/{print int($2/1024)}' /proc/$pid/status) MiB"

# run NAME ARGS…: one timed diagnose; leaves $out/proof-NAME.{out,timing,time}
run() {
  local name="$1"; shift
  local start end rc=0
  start=$(date +%s.%N)
  GOSTALL_TIMING=1 /usr/bin/time -v -o "$out/proof-$name.time" \
    "$gostall" diagnose --pid "$pid" "$@" > "$out/proof-$name.out" 2> "$out/proof-$name.timing" || rc=$?
  end=$(date +%s.%N)
  # 0: nothing to fail on; 1: --fail-on met. Anything else is an error.
  if [ "$rc" -gt 1 ]; then
    echo "bench-proof: gostall exited with $rc:" >&2
    cat "$out/proof-$name.timing" >&2
    exit 1
  fi
  echo "$end - $start" | bc
}
rss_mib() { awk -F: '/Maximum resident set size/{printf "%.0f", $2/1024}' "$out/proof-$1.time"; }
cpu_s() { awk -F: '/User time/{u=$2} /System time/{s=$2} END {printf "%.2f", u+s}' "$out/proof-$1.time"; }

# check NAME: the proof found the bench's leaks, precisely; prints "leaked passes disagreed paused_us"
check() {
  python3 - "$out/proof-$1.out" "$leaks" "${#busy[@]}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
p = d.get("proof")
if p is None:
    sys.exit(f"no proof: {d['live']['notes']}")
leak_fns = {"main.leakSend.func1", "main.leakRecv.func1"}
by_id = {g["id"]: g for g in d["goroutines"]}
wrong = [i for i in p["leaked"] if not any(f["function"] in leak_fns for f in by_id[i]["stack"])]
problems = []
if len(p["leaked"]) != want:
    problems.append(f"{len(p['leaked'])} leaked, want {want}")
if wrong:
    problems.append(f"{len(wrong)} leaked goroutines outside the leak functions (e.g. {wrong[:5]})")
# With --busy the computing goroutine is running: its stack is scanned conservatively.
busy = sys.argv[3] != "0"
for k in ("heap_scan", "stack_scan"):
    if p[k] != "precise" and not (busy and k == "stack_scan" and p[k] == "mixed"):
        problems.append(f"{k} is {p[k]}")
if problems:
    sys.exit("bench-proof: " + "; ".join(problems) + f"; notes: {p['notes']}")
paused = d["live"]["paused_us"]
print(len(p["leaked"]), p["passes"], p["disagreed"], "null" if paused is None else paused,
      p["objects_marked"], p["bytes_scanned"] >> 20, p["spans"], str(p.get("quiescent", False)).lower())
PY
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (the box is shared: other jobs slow the two-thread mark)"
walls=(); rsss=(); cpus=()
for i in $(seq "$runs"); do
  w=$(run "$i")
  r=$(rss_mib "$i")
  walls+=("$w"); rsss+=("$r"); cpus+=("$(cpu_s "$i")")
  pause="$(grep -o -m1 -E '(not paused|paused [^·]*)' "$out/proof-$i.out" | sed 's/ *$//')"
  printf 'run %d: %.2f s wall, %s s cpu, peak RSS %s MiB, %s, %s\n' "$i" "$w" "$(cpu_s "$i")" "$r" "$pause" "$(grep -E '^proof: [0-9.]+m?s$' "$out/proof-$i.timing")"
  sleep 1
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
w=$(run json --format json)
read -r nleak passes disagreed paused marked scanned spans quiescent < <(check json)
printf 'json run: %.2f s wall, peak RSS %s MiB, paused_us %s; proof: %s leaked (want %s; %s passes, %s disagreed, quiescent %s), heap and stacks precise, %s objects marked, %s MiB scanned, %s spans\n' \
  "$w" "$(rss_mib json)" "$paused" "$nleak" "$leaks" "$passes" "$disagreed" "$quiescent" "$marked" "$scanned" "$spans"
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "median %.2f, min %.2f, max %.2f", a[int((NR+1)/2)], a[1], a[NR]}'; }
median_run=$(for i in $(seq "$runs"); do echo "${walls[$((i-1))]} $i"; done | sort -g | awk -v n="$runs" 'NR==int((n+1)/2){print $2}')
echo "with the proof: wall $(stats "${walls[@]}") s; cpu (user+sys) $(stats "${cpus[@]}") s; peak RSS $(stats "${rsss[@]}") MiB"
rss_med=$(printf '%s\n' "${rsss[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
rss_max=$(printf '%s\n' "${rsss[@]}" | sort -g | tail -1)
awk -v m="$rss_med" -v x="$rss_max" -v h="$heap_mib" -v a="$heap_alloc" 'BEGIN {
  printf "peak RSS vs heap: median %.1f %%, max %.1f %% of the %d MiB heap (%.1f %% of the %d MiB live)\n",
    100*m/h, 100*x/h, h, 100*x/(a/1048576), a/1048576 }'
echo "phases of the median run ($median_run):"
sed 's/^/    /' "$out/proof-$median_run.timing"

w=$(run noproof --no-proof)
echo "baseline --no-proof: $(printf '%.2f' "$w") s wall, $(cpu_s noproof) s cpu, peak RSS $(rss_mib noproof) MiB"
sed 's/^/    /' "$out/proof-noproof.timing"
