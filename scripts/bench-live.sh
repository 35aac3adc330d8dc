#!/usr/bin/env bash
# Live-attach benchmark: gostall dump --pid on a program with 200k goroutines (~20-frame stacks).
#
#   scripts/bench-live.sh [--runs N] [-n GOROUTINES]
#
# Builds bench/manygoroutines with Go 1.27.3 (scripts/install-go.sh), starts it with -probe, and
# while an echo client pings the program every millisecond (its round-trip time is the program's
# own latency), runs N times each (default 5):
#   gostall dump --pid PID                      (default mode: the target is never stopped)
#   gostall dump --pid PID --pause              (the target is frozen for the scheduler snapshot)
# and prints wall time, the phase breakdown (GOSTALL_TIMING=1), how long the target was paused,
# and the worst probe round trip during each mode versus at rest.
# Targets: all 200k goroutines with full stacks in <= 1 s; paused <= 50 ms; no latency jump > 50 ms.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
runs=5
count=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift ;;
    -n) count="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench-live: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
out="$root/target/bench"
mkdir -p "$out"
goroot="$("$here/install-go.sh" 1.27.3)"
(cd "$root/bench/manygoroutines" && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOCACHE="$out/gocache" \
  "$goroot/bin/go" build -o "$out/manygoroutines-live" .)
(cd "$root" && cargo build --release -q)
gostall="${GOSTALL_BIN:-$root/target/release/gostall}"

log="$out/live-target.out"
"$out/manygoroutines-live" -n "$count" -probe > "$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q READY "$log" && break; sleep 0.1; done
grep -q READY "$log" || { echo "bench-live: target never became ready" >&2; exit 1; }
probe="$(awk '/^PROBE/{print $2}' "$log")"
echo "target: pid $pid, $count goroutines ($(grep -E 'Threads' /proc/$pid/status | tr -s '\t ' ' '))"

# ping PROBE for SECONDS, print the worst and median round trip in ms
ping_probe() {
  python3 - "$probe" "$1" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
end = time.monotonic() + float(sys.argv[2])
rtts = []
while time.monotonic() < end:
    t = time.monotonic(); s.sendall(b"x"); s.recv(1); rtts.append((time.monotonic() - t) * 1000)
    time.sleep(0.001)
rtts.sort()
print(f"{rtts[-1]:.1f} {rtts[len(rtts)//2]:.2f} {len(rtts)}")
PY
}

read -r rest_max rest_med rest_n < <(ping_probe 3)
echo "probe at rest: worst ${rest_max} ms, median ${rest_med} ms over ${rest_n} pings"

for mode in default pause; do
  flag=""; [ "$mode" = pause ] && flag="--pause"
  ping_probe $((runs * 3 + 2)) > "$out/probe-$mode.txt" &
  pp=$!
  sleep 0.5
  best=""
  for i in $(seq "$runs"); do
    start=$(date +%s.%N)
    GOSTALL_TIMING=1 "$gostall" dump --pid "$pid" $flag --format json --no-goroutines > "$out/live-$mode.json" 2> "$out/live-$mode.timing"
    end=$(date +%s.%N)
    wall=$(echo "$end - $start" | bc)
    paused=$(python3 -c "import json;d=json.load(open('$out/live-$mode.json'));print(d['live']['paused_us'] or 0)")
    n=$(python3 -c "import json;d=json.load(open('$out/live-$mode.json'));print(d['summary']['goroutines'])")
    printf '%-7s run %d: %s s wall, %s goroutines, paused %s µs\n' "$mode" "$i" "$wall" "$n" "$paused"
    sleep 1
  done
  sed 's/^/         /' "$out/live-$mode.timing"
  wait $pp
  read -r m_max m_med m_n < "$out/probe-$mode.txt"
  echo "probe during $mode: worst ${m_max} ms, median ${m_med} ms over ${m_n} pings"
done
# The full text listing, to show nothing is truncated.
start=$(date +%s.%N); "$gostall" dump --pid "$pid" --color never > "$out/live-dump.txt"; end=$(date +%s.%N)
echo "text listing: $(echo "$end - $start" | bc) s wall, $(wc -c < "$out/live-dump.txt") bytes, $(grep -c ' × \[' "$out/live-dump.txt") groups"
