#!/usr/bin/env bash
# Regenerates crates/ingest/testdata/dumps/sigquit-*.txt: real SIGQUIT dumps of a small program that
# shows the header forms the parser must handle (mutex waiters, WaitGroup, nil chan, locked thread,
# deep recursion with elided frames, a running goroutine).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../crates/ingest/testdata/dumps"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cp "$here/testdata-gen/dumpfmt/main.go" "$work/"
printf 'module fmt.test\ngo 1.21\n' > "$work/go.mod"
for pair in 1.21.13:1.21 1.27.3:1.27; do
  v="${pair%%:*}"; short="${pair##*:}"
  goroot="$("$here/install-go.sh" "$v")"
  (cd "$work" && GOTOOLCHAIN=local "$goroot/bin/go" build -o prog .)
  GOTRACEBACK=all "$work/prog" > "$work/out" 2> "$out/sigquit-$short.txt" & pid=$!
  for _ in $(seq 100); do grep -q READY "$work/out" 2>/dev/null && break; sleep 0.05; done
  kill -QUIT "$pid"; wait "$pid" || true
done
