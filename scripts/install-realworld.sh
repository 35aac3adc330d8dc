#!/usr/bin/env bash
# Installs what the real-world corpus (realworld/) needs, from Debian: the Go libraries as source
# under /usr/share/gocode/src (realworld/go.mod points its replace directives there), the SQLite
# library the cgo driver links against, PostgreSQL, Redis, and the tools the scripts and tests use
# (gdb: the core tests take cores with its gcore and open gostall's captures with it).
#
#   scripts/install-realworld.sh          # installs what is missing; does nothing when all is there
#
# Idempotent: each package is checked with dpkg first; `apt-get update` runs only when
# something has to be installed. Needs root (or sudo) only in that case.
set -euo pipefail

# Every Debian package whose source realworld/go.mod replaces a module with, the servers, and the
# C toolchain for the cgo programs. The library packages pull in each other; they are listed one by
# one so that an alternative dependency (golang-github-golang-protobuf-1-5-dev, which needs
# google.golang.org/protobuf and would not build against this grpc) is never chosen instead.
PACKAGES=(
  golang-github-lib-pq-dev
  golang-github-mattn-go-sqlite3-dev libsqlite3-dev
  golang-github-gomodule-redigo-dev
  golang-github-jackc-pgx-v4-dev golang-github-jackc-pgconn-dev golang-github-jackc-pgio-dev
  golang-github-jackc-pgproto3-v2-dev golang-github-jackc-pgtype-dev golang-github-jackc-puddle-dev
  golang-github-jackc-chunkreader-v2-dev golang-github-jackc-pgpassfile-dev
  golang-github-jackc-pgservicefile-dev
  golang-google-grpc-dev golang-github-golang-protobuf-1-3-dev golang-google-genproto-dev
  golang-golang-x-net-dev golang-golang-x-sys-dev golang-golang-x-text-dev golang-golang-x-crypto-dev
  golang-golang-x-sync-dev
  postgresql redis-server
  gcc libc6-dev curl gdb
)

# `dpkg -s`, reduced to its Status field (no pipe into grep -q: under pipefail, grep closing the
# pipe early makes dpkg fail with SIGPIPE on packages with long descriptions).
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-realworld: all ${#PACKAGES[@]} packages present" >&2
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "install-realworld: missing packages (${missing[*]}) and not root: run as root" >&2
    exit 1
  fi
fi

echo "install-realworld: installing ${missing[*]}" >&2
if ! "${SUDO[@]}" apt-get update -qq >&2; then
  echo "install-realworld: apt-get update failed" >&2
  exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
  echo "install-realworld: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi

# The Debian postgresql package may start a cluster on port 5432 through its service scripts where
# an init system runs; the corpus does not use it (scripts/realworld-servers.sh runs private
# servers on free ports), so it is left alone.
for p in "${missing[@]}"; do
  if ! installed "$p"; then
    echo "install-realworld: $p still not installed after apt-get" >&2
    exit 1
  fi
done
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || {
  echo "install-realworld: no PostgreSQL initdb under /usr/lib/postgresql/*/bin" >&2; exit 1; }
echo "install-realworld: done" >&2
