#!/usr/bin/env bash
# Start a throw-away PostgreSQL for the `postgres`-marked tests, from the distribution's packages.
#
#   scripts/ci-postgres.sh start   -> installs postgresql (apt-get) if missing, initialises a private cluster
#                                     in $DXL_PG_DIR (default /tmp/dxl-ci-postgres) on a free loopback port,
#                                     starts it and prints the URL to use as DXL_TEST_POSTGRES_URL
#   scripts/ci-postgres.sh stop    -> stops that cluster (and only that one)
#   scripts/ci-postgres.sh restart -> starts that cluster's server again on its port, its data kept (after a
#                                     crash: `make reliability`'s PostgreSQL profile kills it with SIGKILL)
#
# The system cluster (if any) is never touched. Authentication is `trust` on 127.0.0.1 only: this is a CI
# database with nothing in it but test rows.
set -euo pipefail

PG_DIR="${DXL_PG_DIR:-/tmp/dxl-ci-postgres}"
DB_NAME="dxl_test"

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [[ -n "$dir" ]] && echo "$dir"
}

as_owner() {
  # PostgreSQL refuses to run as root: run as the packages' postgres user when we are root.
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

serve() {
  as_owner "$1/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$2 -c unix_socket_directories=$PG_DIR -c fsync=off" start >&2
}

start() {
  if [[ -z "$(pg_bin)" ]]; then
    echo "installing postgresql from the distribution's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
  local bin port
  bin="$(pg_bin)"
  if [[ -f "$PG_DIR/port" ]] && as_owner "$bin/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    port="$(cat "$PG_DIR/port")"
  else
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR"
    [[ "$(id -u)" == 0 ]] && chown postgres "$PG_DIR"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    as_owner "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
    serve "$bin" "$port"
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB_NAME"
    echo "$port" >"$PG_DIR/port.tmp" && mv "$PG_DIR/port.tmp" "$PG_DIR/port"
  fi
  echo "postgresql+psycopg://postgres@127.0.0.1:${port}/${DB_NAME}"
}

restart() {
  [[ -f "$PG_DIR/port" ]] || { echo "no cluster in $PG_DIR to restart" >&2; exit 1; }
  serve "$(pg_bin)" "$(cat "$PG_DIR/port")"
}

stop() {
  local bin
  bin="$(pg_bin)" || exit 0
  [[ -d "$PG_DIR/data" ]] && as_owner "$bin/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >&2 || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) restart ;;
  *) echo "usage: $0 [start|stop|restart]" >&2; exit 2 ;;
esac
