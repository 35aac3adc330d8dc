#!/usr/bin/env bash
# Builds and runs the real-world corpus (realworld/) with one Go version, and checks each program
# against realworld/manifest.json from its goroutine dumps.
#
#   scripts/realworld-check.sh VERSION [PROGRAM...]     # e.g. 1.21.13, or 1.27.3 http-maxconns
#
# Steps: Go from scripts/install-go.sh; packages from scripts/install-realworld.sh (installs only
# what is missing); `go build -o OUT/bin ./...` (CGO_ENABLED=1, GOPROXY=off, GOFLAGS=-mod=mod);
# PostgreSQL and Redis through scripts/realworld-servers.sh in OUT/servers; then every program in
# turn is started (server settings in its environment only when the manifest lists servers; a
# private TMPDIR; GOTRACEBACK=all) and run until its GOSTALL_READY line (20 s at most); its
# /debug/pprof/goroutine?debug=2 dump is saved as OUT/NAME/debug2.txt and the program left running.
# Once all are up, the script holds them for REALWORLD_HOLD seconds (default 60), saves a second
# dump (OUT/NAME/debug2-later.txt), sends SIGQUIT and keeps what it printed (OUT/NAME/stderr.txt:
# its log, then the SIGQUIT dump). Everything started is stopped on exit, also on failure or ^C.
#
# Checks, per program: it got ready; for each expectation, exactly `waiters` goroutines have the
# expected function as their innermost package-main frame (and `frame`, when given, on their
# stack), blocked, with the same goroutine ids in both dumps and in the SIGQUIT dump (no progress); it is still alive after the hold. Controls: the work counter they
# serve on /debug/progress went up during the hold. OUT/summary.txt has the table printed at the
# end: for each group of goroutines with a package-main frame, its count, wait reason and
# innermost frame. Exit status 0 when every check passed.
#
# OUT is $REALWORLD_OUT or target/realworld-check/VERSION.
set -euo pipefail
trap 'echo "realworld-check: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

[ $# -ge 1 ] || { echo "usage: $0 VERSION [PROGRAM...]" >&2; exit 2; }
version="$1"; shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${REALWORLD_OUT:-$root/target/realworld-check/$version}"
hold="${REALWORLD_HOLD:-60}"
manifest="$root/realworld/manifest.json"
t_start=$(date +%s)

py="$(command -v python3 || command -v python || true)"
[ -n "$py" ] || { echo "realworld-check: python3 is needed" >&2; exit 1; }

goroot="$("$root/scripts/install-go.sh" "$version")"
"$root/scripts/install-realworld.sh"

rm -rf "$out"
mkdir -p "$out/bin" "$out/tmp"

export GOROOT="$goroot" PATH="$goroot/bin:$PATH" GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off \
  GOFLAGS=-mod=mod CGO_ENABLED=1
echo "realworld-check: building with $(go version)" >&2
t0=$(date +%s)
(cd "$root/realworld" && go build -o "$out/bin/" ./...)
echo "realworld-check: built in $(( $(date +%s) - t0 )) s" >&2

# The programs to run: all of the manifest's, or those named.
mapfile -t entries < <("$py" - "$manifest" "$@" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
want = set(sys.argv[2:])
names = [p["name"] for p in m["scenarios"]]
for w in want - set(names):
    sys.exit("realworld-check: no program %s in the manifest" % w)
for p in m["scenarios"]:
    if want and p["name"] not in want:
        continue
    env = " ".join("%s=%s" % kv for kv in sorted(p.get("env", {}).items()))
    print("%s|%s|%s" % (p["name"], ",".join(p.get("servers", [])), env))
EOF
)

declare -A pids=()
cleanup() {
  local name pid
  for name in "${!pids[@]}"; do
    pid="${pids[$name]}"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  "$root/scripts/realworld-servers.sh" stop "$out/servers" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_servers=""
for e in "${entries[@]}"; do
  IFS='|' read -r _ servers _ <<<"$e"
  [ -n "$servers" ] && need_servers=1
done
if [ -n "$need_servers" ]; then
  "$root/scripts/realworld-servers.sh" start "$out/servers" >/dev/null
  echo "realworld-check: servers: $(tr '\n' ' ' < "$out/servers/env")" >&2
fi

# curl with a bound; the pprof endpoint of a healthy program answers at once.
fetch() { curl -sS --max-time 20 -o "$2" "http://$1$3"; }

declare -A addrs=() ready_ms=()
for e in "${entries[@]}"; do
  IFS='|' read -r name servers extra_env <<<"$e"
  dir="$out/$name"
  mkdir -p "$dir" "$out/tmp/$name"
  envs=(GOTRACEBACK=all "TMPDIR=$out/tmp/$name")
  if [ -n "$servers" ]; then
    while IFS= read -r line; do [ -n "$line" ] && envs+=("$line"); done < "$out/servers/env"
  fi
  for kv in $extra_env; do envs+=("$kv"); done
  t0=$(date +%s%N)
  env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGSSLMODE -u REDIS_ADDR "${envs[@]}" \
    "$out/bin/$name" > "$dir/stdout.txt" 2> "$dir/stderr.txt" < /dev/null &
  pids[$name]=$!
  addr=""
  for _ in $(seq 1 400); do
    addr="$(sed -n 's/^GOSTALL_READY pprof=//p' "$dir/stdout.txt" 2>/dev/null | head -1 || true)"
    [ -n "$addr" ] && break
    kill -0 "${pids[$name]}" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$addr" ]; then
    echo "realworld-check: $name did not get ready (stderr: $dir/stderr.txt):" >&2
    tail -5 "$dir/stderr.txt" >&2
    echo "NOTREADY" > "$dir/status"
    continue
  fi
  ready_ms[$name]=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "${ready_ms[$name]}" > "$dir/ready_ms"
  addrs[$name]="$addr"
  sleep 0.3 # let the goroutine that printed the line park again
  fetch "$addr" "$dir/debug2.txt" "/debug/pprof/goroutine?debug=2" || echo "realworld-check: $name: dump failed" >&2
  fetch "$addr" "$dir/progress-ready.txt" "/debug/progress" || true
  echo "realworld-check: $name ready in ${ready_ms[$name]} ms" >&2
done

if [ "$hold" -gt 0 ]; then
  echo "realworld-check: holding every program for $hold s" >&2
  sleep "$hold"
fi

for name in "${!addrs[@]}"; do
  dir="$out/$name"
  pid="${pids[$name]}"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "DIED" > "$dir/status"
    continue
  fi
  fetch "${addrs[$name]}" "$dir/debug2-later.txt" "/debug/pprof/goroutine?debug=2" || true
  fetch "${addrs[$name]}" "$dir/progress-later.txt" "/debug/progress" || true
  kill -QUIT "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "pids[$name]"
  echo "ALIVE" > "$dir/status"
done

"$root/scripts/realworld-servers.sh" stop "$out/servers" >/dev/null 2>&1 || true

set +e
"$py" - "$manifest" "$out" "$version" "${entries[@]%%|*}" <<'EOF' | tee "$out/summary.txt"
import json, os, re, sys

manifest, out, version = sys.argv[1], sys.argv[2], sys.argv[3]
names = sys.argv[4:]
progs = {p["name"]: p for p in json.load(open(manifest))["scenarios"]}

def strip_args(s):
    s = s.rstrip()
    if not s.endswith(")"):
        return s
    depth = 0
    for i in range(len(s) - 1, -1, -1):
        if s[i] == ")":
            depth += 1
        elif s[i] == "(":
            depth -= 1
            if depth == 0:
                return s[:i]
    return s

def parse(path):
    gs, cur = [], None
    if not os.path.exists(path):
        return None
    for line in open(path, errors="replace"):
        m = re.match(r"^goroutine (\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[([^\]]*)\]:", line)
        if m:
            cur = {"id": int(m.group(1)), "status": m.group(2), "frames": []}
            gs.append(cur)
            continue
        if cur is None:
            continue
        if not line.strip():
            cur = None
            continue
        if line.startswith("\t") or line.startswith("created by"):
            continue
        cur["frames"].append(strip_args(line.strip()))
    return gs

def main_frame(g):
    return next((f for f in g["frames"] if f.startswith("main.")), None)

def reason(g):
    return re.sub(r", \d+ minutes?", "", g["status"]).replace(", locked to thread", "")

RUNNING = {"running", "runnable"}
failures = 0
print("realworld-check: Go %s" % version)
for name in names:
    p = progs[name]
    d = os.path.join(out, name)
    status = open(os.path.join(d, "status")).read().strip() if os.path.exists(os.path.join(d, "status")) else "?"
    ready = open(os.path.join(d, "ready_ms")).read().strip() if os.path.exists(os.path.join(d, "ready_ms")) else "-"
    problems = []
    if status != "ALIVE":
        problems.append("status " + status)
    g1 = parse(os.path.join(d, "debug2.txt"))
    g2 = parse(os.path.join(d, "debug2-later.txt"))
    g3 = parse(os.path.join(d, "stderr.txt")) if status == "ALIVE" else None
    if status == "ALIVE" and not g3:
        problems.append("no SIGQUIT dump on stderr")
    if g1 is None:
        problems.append("no dump")
        g1 = []
    print("\n%s  (%s, ready in %s ms, %d goroutines)" % (name, "control" if p.get("control") else "stuck", ready, len(g1)))
    groups = {}
    for g in g1:
        mf = main_frame(g)
        if mf is None:
            continue
        groups.setdefault((mf, reason(g), g["frames"][0]), []).append(g["id"])
    for (mf, r, top), ids in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print("  %4d  %-48s [%s]  %s" % (len(ids), mf, r, top))
    for e in p.get("expect", []):
        fn, want, frame = e["function"], e.get("waiters"), e.get("frame", "")
        def stuck(gs):
            return sorted(g["id"] for g in gs if main_frame(g) == fn and reason(g) not in RUNNING
                          and (not frame or any(f.startswith(frame) for f in g["frames"])))
        a = stuck(g1)
        reasons = sorted({reason(g) for g in g1 if g["id"] in set(a)})
        line = "  expect %s at %s%s: %d blocked (want %s) [%s]" % (
            e["kind"], fn, " via " + frame if frame else "", len(a), want, ", ".join(reasons))
        if want is not None and len(a) != want:
            problems.append("%s: %d blocked, want %d" % (fn, len(a), want))
        if g2 is not None:
            b = stuck(g2)
            if a != b:
                problems.append("%s: the blocked goroutines changed during the hold (%d -> %d)" % (fn, len(a), len(b)))
            else:
                line += "; unchanged after the hold"
        if g3:
            c = stuck(g3)
            if c != a:
                problems.append("%s: SIGQUIT dump has %d blocked, want the same %d" % (fn, len(c), len(a)))
            else:
                line += "; same in the SIGQUIT dump"
        print(line)
    if p.get("control"):
        try:
            n1 = int(open(os.path.join(d, "progress-ready.txt")).read())
            n2 = int(open(os.path.join(d, "progress-later.txt")).read())
            print("  progress %d -> %d" % (n1, n2))
            if n2 <= n1:
                problems.append("no progress during the hold")
        except (OSError, ValueError):
            problems.append("no progress counter")
    if problems:
        failures += 1
        print("  FAIL: " + "; ".join(problems))
    else:
        print("  ok")
print("\nrealworld-check: Go %s: %d of %d programs failed" % (version, failures, len(names)))
sys.exit(1 if failures else 0)
EOF
rc=${PIPESTATUS[0]}
set -e
echo "realworld-check: $(( $(date +%s) - t_start )) s in all; artifacts in $out" >&2
exit "$rc"
