#!/usr/bin/env bash
# A local multi-node stand-in for a Ray cluster, on this one machine: a head and two worker nodes, each
# its own `ray start` (own raylet, object store, temp dir and resources), the workers joined with --address.
#
#   cluster/local.sh start           # head + worker_a + worker_b; prints RAY_ADDRESS and the dashboard URL
#   cluster/local.sh status          # the cluster as Ray sees it, and this stand-in's processes per node
#   cluster/local.sh kill worker_b   # SIGKILL one node's processes: a machine lost mid-sweep
#   cluster/local.sh stop            # end every process of the stand-in, and only those
#
#   RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
#       python -m jobs run jobs/specs/fake.yaml
#
# Nodes: head {CPU: 1, head: 1} with the dashboard; worker_a and worker_b {CPU: 1, worker: 1, worker_<x>: 1}.
# "worker" plays a node type (a spec's `resources.node_type: worker` pins actors to the workers, as
# `gpu_8x` does on ray_cluster.yaml) and worker_<x> names the node.
#
# Settings (environment):
#   FLOWCUT_LOCAL_DIR             per-node temp dirs, logs and state (default /tmp/flowcut-local; keep it
#                                 short: Ray's socket paths below it must fit in 107 bytes)
#   FLOWCUT_LOCAL_PORT            the head's GCS port (6390)
#   FLOWCUT_LOCAL_DASHBOARD_PORT  8265, what the specs' `ray job submit` lines use
#   FLOWCUT_LOCAL_WORKER_CPUS     logical CPUs per worker node (1)
#
# Every process of a node carries FLOWCUT_LOCAL_NODE=<dir>/<node> in its environment (Ray's processes
# inherit it from `ray start`; process titles do not survive, `ray::IDLE` workers rename themselves), so
# kill and stop end exactly this stand-in's processes by pid. `ray stop` would end every Ray on the machine.
set -euo pipefail
DIR=$(realpath -m "${FLOWCUT_LOCAL_DIR:-/tmp/flowcut-local}")
cd "$(dirname "$0")/.."

PORT=${FLOWCUT_LOCAL_PORT:-6390}
DASH_PORT=${FLOWCUT_LOCAL_DASHBOARD_PORT:-8265}
WORKER_CPUS=${FLOWCUT_LOCAL_WORKER_CPUS:-1}
OBJECT_STORE=200000000 # bytes per node; Ray's default (30% of RAM per node) is far more than a stand-in needs
WORKERS=(worker_a worker_b)
if [ -x .venv/bin/ray ]; then RAY=.venv/bin/ray; else RAY=$(command -v ray); fi
PY=$(dirname "$RAY")/python

unset RAY_ADDRESS                # a caller's cluster is not ours to join
export RAY_AUTH_MODE=token       # workers and clients need it said; the head turns it on itself when a token exists
export RAY_USAGE_STATS_ENABLED=0 # no usage reports from test clusters
# A lost node is declared dead after 5 missed 1 s health checks (Ray's default: 5 x 3 s); a killed raylet
# fails its checks at once, while a slow but live one still gets the default 10 s per check.
export RAY_health_check_period_ms=1000

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

node_pids() { # pids whose environment has FLOWCUT_LOCAL_NODE=$1 (exactly) or, with $2 = prefix, under $1
  local want=$1 mode=${2:-exact} p kv val
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    val=
    # bash builtins only: a fork per process would make this take seconds on a busy machine
    while IFS= read -r -d '' kv; do
      if [[ $kv == FLOWCUT_LOCAL_NODE=* ]]; then
        val=${kv#FLOWCUT_LOCAL_NODE=}
        break
      fi
    done 2>/dev/null <"$p/environ" || true
    [ -n "$val" ] || continue
    if [ "$val" = "$want" ] || { [ "$mode" = prefix ] && [[ $val == "$want"/* ]]; }; then echo "${p#/proc/}"; fi
  done
}

alive() { # those of the given pids still running (a zombie has exited: its state is Z)
  local p stat state
  for p in "$@"; do
    IFS= read -r stat 2>/dev/null <"/proc/$p/stat" || continue
    state=${stat##*) } # after the command name, which may hold spaces and parentheses
    state=${state%% *}
    [ "$state" != Z ] && echo "$p"
  done
  return 0
}

end_pids() { # SIGTERM, up to 10 s to exit, then SIGKILL and up to 5 s for the kernel to reap them
  local pids=("$@") left i
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for i in $(seq 1 20); do
    mapfile -t left < <(alive "${pids[@]}")
    [ ${#left[@]} -gt 0 ] || return 0
    sleep 0.5
  done
  kill -KILL "${left[@]}" 2>/dev/null || true
  for i in $(seq 1 10); do
    mapfile -t left < <(alive "${left[@]}")
    [ ${#left[@]} -gt 0 ] || return 0
    sleep 0.5
  done
}

start_node() { # name, then ray start arguments; output in $DIR/<name>.log
  local name=$1
  shift
  FLOWCUT_LOCAL_NODE="$DIR/$name" "$RAY" start --node-ip-address 127.0.0.1 --temp-dir "$DIR/$name" \
    --object-store-memory "$OBJECT_STORE" --min-worker-port 0 --max-worker-port 0 --num-gpus 0 \
    --dashboard-agent-listen-port "$(free_port)" --disable-usage-stats "$@" >"$DIR/$name.log" 2>&1
}

start() {
  if [ -n "$(node_pids "$DIR" prefix)" ]; then
    echo "local.sh: a stand-in is already running under $DIR (cluster/local.sh stop first)" >&2
    exit 1
  fi
  mkdir -p "$DIR"
  "$RAY" get-auth-token --generate >/dev/null # ~/.ray/auth_token: token auth needs one before the head starts
  if ! start_node head --head --port "$PORT" --num-cpus 1 --resources '{"head": 1}' \
    --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$DASH_PORT" \
    --ray-client-server-port "$(free_port)"; then
    echo "local.sh: the head did not start:" >&2
    tail -n 30 "$DIR/head.log" >&2
    stop >/dev/null
    exit 1
  fi
  local pids=() w failed=0 i
  for w in "${WORKERS[@]}"; do # both at once: each `ray start` takes seconds on a busy machine
    start_node "$w" --address "127.0.0.1:$PORT" --num-cpus "$WORKER_CPUS" \
      --resources "{\"worker\": 1, \"$w\": 1}" --include-log-monitor false &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "local.sh: ${WORKERS[$i]} did not start:" >&2
      tail -n 30 "$DIR/${WORKERS[$i]}.log" >&2
      failed=1
    fi
  done
  if [ "$failed" = 1 ]; then
    stop >/dev/null
    exit 1
  fi
  printf 'RAY_ADDRESS=127.0.0.1:%s\nDASHBOARD_URL=http://127.0.0.1:%s\n' "$PORT" "$DASH_PORT" | tee "$DIR/address"
}

status() {
  local n
  for n in head "${WORKERS[@]}"; do
    echo "$n: $(node_pids "$DIR/$n" | wc -l) processes"
  done
  if [ -s "$DIR/address" ]; then
    "$RAY" status --address "127.0.0.1:$PORT"
  else
    echo "not started under $DIR"
  fi
}

kill_node() {
  local name=${1:-} pids
  [[ " ${WORKERS[*]} head " == *" $name "* ]] || {
    echo "usage: $0 kill worker_a|worker_b|head" >&2
    exit 2
  }
  mapfile -t pids < <(node_pids "$DIR/$name")
  [ ${#pids[@]} -gt 0 ] || {
    echo "local.sh: $name has no processes" >&2
    exit 1
  }
  kill -KILL "${pids[@]}"
  echo "killed $name (${#pids[@]} processes)"
}

stop() {
  local pids round p
  # Rounds, because a raylet or a driver may start a process (a worker, a restarted actor) after the
  # first look and before its own SIGTERM: the CI once saw one such straggler outlive a single pass.
  for round in 1 2 3; do
    mapfile -t pids < <(alive $(node_pids "$DIR" prefix))
    [ ${#pids[@]} -gt 0 ] || break
    end_pids "${pids[@]}"
  done
  rm -f "$DIR/address"
  mapfile -t pids < <(alive $(node_pids "$DIR" prefix))
  if [ ${#pids[@]} -gt 0 ]; then
    for p in "${pids[@]}"; do
      echo "local.sh: still running: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-200)" >&2
    done
    exit 1
  fi
  echo "stopped"
}

case "${1:-}" in
start) start ;;
status) status ;;
kill) kill_node "${2:-}" ;;
stop) stop ;;
*)
  echo "usage: $0 start|status|kill NODE|stop" >&2
  exit 2
  ;;
esac
