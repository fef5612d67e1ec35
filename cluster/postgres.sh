#!/usr/bin/env bash
# The store's PostgreSQL: a private server on a data directory and port, reachable on 127.0.0.1 only.
# On a cluster the head runs it (ray_cluster.yaml); the drivers, the Serve API and the dashboard there
# reach it as postgresql+psycopg://flowcut@127.0.0.1:5432/flowcut. Workers never touch the store.
#
#   cluster/postgres.sh start    # initdb on first use, start, create role and database "flowcut"; prints the URL
#   cluster/postgres.sh url      # the store URL (SQLAlchemy, psycopg 3)
#   cluster/postgres.sh status
#   cluster/postgres.sh stop
#
# Settings (environment):
#   FLOWCUT_PG_DIR      data/, server.log and the socket (default ~/flowcut-pg; /var/lib/flowcut-pg as root)
#   FLOWCUT_PG_PORT     5432
#   FLOWCUT_PG_OPTS     extra server options, e.g. "-c fsync=off" for throw-away test servers
#   FLOWCUT_PG_OS_USER  the account the server runs as when this script runs as root (default nobody):
#                       PostgreSQL refuses to run as root, so initdb and pg_ctl go through runuser
#
# Authentication is "trust" for 127.0.0.1 and the socket, and there is no other listener: right for a
# head node whose users all own the cluster. Start and stop are idempotent.
set -euo pipefail

if [ "$(id -u)" = 0 ]; then
  DIR=${FLOWCUT_PG_DIR:-/var/lib/flowcut-pg}
  OS_USER=${FLOWCUT_PG_OS_USER:-nobody}
else
  DIR=${FLOWCUT_PG_DIR:-$HOME/flowcut-pg}
  OS_USER=
fi
DATA=$DIR/data
LOG=$DIR/server.log
NAME=flowcut # role and database

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

pg_bin() { # a PostgreSQL program: on PATH, else the newest /usr/lib/postgresql/*/bin (Debian / Ubuntu packages)
  local found
  if found=$(command -v "$1" 2>/dev/null); then
    echo "$found"
    return
  fi
  found=$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$found" ]; then
    echo "postgres.sh: $1 not found on PATH or in /usr/lib/postgresql/*/bin (install PostgreSQL's server package)" >&2
    exit 3 # distinct: tests skip on it
  fi
  echo "$found"
}

as_server() { # run a server program as the server's account, from a directory that account can read
  if [ -n "$OS_USER" ]; then
    (cd "$DIR" && runuser -u "$OS_USER" -- env LC_ALL=C HOME="$DIR" "$@")
  else
    (cd "$DIR" && LC_ALL=C "$@")
  fi
}

port() { # the port the server was last started on (a later `url` needs no settings), else the setting
  if [ -z "${FLOWCUT_PG_PORT:-}" ] && [ -s "$DIR/port" ]; then cat "$DIR/port"; else echo "${FLOWCUT_PG_PORT:-5432}"; fi
}

url() {
  echo "postgresql+psycopg://$NAME@127.0.0.1:$(port)/$NAME"
}

running() {
  [ -f "$DATA/PG_VERSION" ] && as_server "$(pg_bin pg_ctl)" -D "$DATA" status >/dev/null 2>&1
}

psql_admin() { # one statement as the superuser "postgres", unaligned and tuples only
  PGCONNECT_TIMEOUT=10 "$(pg_bin psql)" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(port)" -U postgres \
    -d postgres -c "$1"
}

start() {
  local initdb pg_ctl p
  initdb=$(pg_bin initdb)
  pg_ctl=$(pg_bin pg_ctl)
  p=$(port)
  mkdir -p "$DIR"
  if [ -n "$OS_USER" ]; then
    chown "$OS_USER": "$DIR"
    runuser -u "$OS_USER" -- test -w "$DIR" || die "$OS_USER cannot write $DIR (a parent is private?): set FLOWCUT_PG_DIR"
  fi
  chmod 700 "$DIR"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_server "$initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 ||
      die "initdb failed: $(tail -n 20 "$DIR/initdb.log")"
  fi
  if ! running; then
    # the socket lives in DIR (no /var/run/postgresql needed); no listener beyond 127.0.0.1
    as_server "$pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
      -o "-k $DIR -c listen_addresses=127.0.0.1 -p $p -c max_connections=200 ${FLOWCUT_PG_OPTS:-}" \
      start >/dev/null || die "the server did not start: $(tail -n 20 "$LOG" 2>/dev/null)"
    echo "$p" >"$DIR/port"
  fi
  if [ -z "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$NAME'")" ]; then
    psql_admin "CREATE ROLE $NAME LOGIN" >/dev/null
  fi
  if [ -z "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$NAME'")" ]; then
    psql_admin "CREATE DATABASE $NAME OWNER $NAME" >/dev/null # the store creates its tables on first open
  fi
  url
}

stop() {
  if running; then
    as_server "$(pg_bin pg_ctl)" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
url) url ;;
status)
  if running; then echo "running on 127.0.0.1:$(port), data in $DATA: $(url)"; else echo "stopped (data in $DATA)"; exit 1; fi
  ;;
*)
  echo "usage: $0 start|stop|status|url" >&2
  exit 2
  ;;
esac
