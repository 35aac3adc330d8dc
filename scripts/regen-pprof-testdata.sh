#!/usr/bin/env bash
# Regenerates crates/ingest/testdata/pprof/*.pb.gz (goroutine, mutex, block, threadcreate, heap
# profiles written by runtime/pprof) from scripts/pprof-testdata/main.go with Go 1.27.3.
# The output depends on timing and addresses, so it differs from run to run; the tests in
# crates/ingest/src/pprof.rs only check what the generator guarantees (kinds, counts, functions, labels).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
goroot="$("$root/scripts/install-go.sh" 1.27.3)"
out="$root/crates/ingest/testdata/pprof"
mkdir -p "$out"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$root/scripts/pprof-testdata/main.go" "$work/main.go"
cd "$work"
export GOROOT="$goroot" PATH="$goroot/bin:$PATH" GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$work/gocache}" GOPATH="$work/gopath"
go mod init example.com/pprof-testdata >/dev/null 2>&1
go build -trimpath -o pprof-testdata .
./pprof-testdata "$out"
ls -l "$out"
