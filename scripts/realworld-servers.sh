#!/usr/bin/env bash
# Private PostgreSQL and Redis servers for the real-world corpus (realworld/), on free loopback
# ports, with their data in DIR.
#
#   scripts/realworld-servers.sh start DIR   # starts both, waits until they answer, writes DIR/env
#   scripts/realworld-servers.sh stop DIR    # stops both; safe to call twice, or after a failed start
#
# DIR/env holds the connection settings, one VAR=value a line, ready for `set -a; . DIR/env`:
#   PGHOST=127.0.0.1 PGPORT=… PGUSER=postgres PGDATABASE=postgres PGSSLMODE=disable REDIS_ADDR=127.0.0.1:…
# `start` prints the same lines on stdout. The programs create their own tables.
#
# PostgreSQL refuses to run as root: as root, initdb and postgres run as the `postgres` user
# (runuser), otherwise as the calling user. Trust authentication, loopback only, no Unix socket,
# fsync off (the data is thrown away). Redis: no persistence (--save '' --appendonly no).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"

pgbin=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
  if [ -x "$d/initdb" ]; then pgbin="$d"; break; fi
done

# Runs a command as the PostgreSQL owner: `postgres` when we are root, else ourselves.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A TCP port on 127.0.0.1 that nothing listens on now (bash's /dev/tcp connect fails).
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "realworld-servers: no free port found" >&2
  return 1
}

stop_all() {
  # PostgreSQL: pg_ctl knows the postmaster from its pid file.
  local pgdata
  pgdata="$(cat "$dir/pgdata" 2>/dev/null || true)"
  if [ -n "$pgdata" ] && [ -f "$pgdata/postmaster.pid" ] && [ -n "$pgbin" ]; then
    as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w -t 30 stop >/dev/null 2>&1 || {
      local pid; pid="$(head -1 "$pgdata/postmaster.pid" 2>/dev/null || true)"
      [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    }
  fi
  # Redis: by the pid it wrote.
  if [ -f "$dir/redis/redis.pid" ]; then
    local rpid; rpid="$(cat "$dir/redis/redis.pid" 2>/dev/null || true)"
    if [ -n "$rpid" ] && kill -0 "$rpid" 2>/dev/null && grep -q redis "/proc/$rpid/cmdline" 2>/dev/null; then
      kill -TERM "$rpid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.05; done
      kill -0 "$rpid" 2>/dev/null && kill -KILL "$rpid" 2>/dev/null || true
    fi
    rm -f "$dir/redis/redis.pid"
  fi
  # A data directory outside DIR (see start) is ours to remove.
  if [ -f "$dir/pgdata-external" ] && [ -n "$pgdata" ]; then
    rm -rf "$(dirname "$pgdata")"
    rm -f "$dir/pgdata-external"
  fi
  rm -f "$dir/env"
}

start_all() {
  [ -n "$pgbin" ] || { echo "realworld-servers: PostgreSQL not installed (run scripts/install-realworld.sh)" >&2; exit 1; }
  command -v redis-server >/dev/null || { echo "realworld-servers: redis-server not installed (run scripts/install-realworld.sh)" >&2; exit 1; }
  if [ -f "$dir/env" ]; then
    echo "realworld-servers: $dir/env exists: servers already started there (stop them first)" >&2
    exit 1
  fi
  trap 'echo "realworld-servers: start failed; stopping what was started" >&2; stop_all' ERR

  # PostgreSQL data: DIR/postgres when the postgres user can use it, else a private temporary
  # directory (removed by stop) when DIR's parents are closed to that user.
  local pgroot="$dir/postgres"
  mkdir -p "$pgroot"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$pgroot"
    if ! runuser -u postgres -- test -w "$pgroot"; then
      rmdir "$pgroot"
      pgroot="$(mktemp -d /tmp/gostall-pg.XXXXXX)"
      chmod 755 "$pgroot"; chown postgres: "$pgroot"
      touch "$dir/pgdata-external"
    fi
  fi
  local pgdata="$pgroot/data"
  echo "$pgdata" > "$dir/pgdata"
  rm -rf "$pgdata"
  as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C >"$pgroot/initdb.log" 2>&1 || {
    echo "realworld-servers: initdb failed:" >&2; tail -20 "$pgroot/initdb.log" >&2; false; }
  cat > "$pgdata/pg_hba.conf" <<'EOF'
host all all 127.0.0.1/32 trust
EOF
  local pgport; pgport="$(free_port)"
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$pgroot/server.log" -w -t 30 \
    -o "-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c shared_buffers=32MB" \
    start >/dev/null || { echo "realworld-servers: postgres did not start:" >&2; tail -20 "$pgroot/server.log" >&2; false; }
  local ok=""
  for _ in $(seq 1 100); do
    if "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "realworld-servers: postgres does not accept connections on 127.0.0.1:$pgport" >&2; false; }

  mkdir -p "$dir/redis"
  local rport; rport="$(free_port)"
  redis-server --port "$rport" --bind 127.0.0.1 --protected-mode yes --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" --dir "$dir/redis" \
    --maxclients 1000 >/dev/null
  ok=""
  for _ in $(seq 1 100); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$rport" ping 2>/dev/null)" = PONG ]; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "realworld-servers: redis does not answer on 127.0.0.1:$rport" >&2; tail -20 "$dir/redis/redis.log" >&2; false; }

  trap - ERR
  cat > "$dir/env" <<EOF
PGHOST=127.0.0.1
PGPORT=$pgport
PGUSER=postgres
PGDATABASE=postgres
PGSSLMODE=disable
REDIS_ADDR=127.0.0.1:$rport
EOF
  cat "$dir/env"
}

case "$cmd" in
  start) start_all ;;
  stop) stop_all ;;
  *) usage ;;
esac
