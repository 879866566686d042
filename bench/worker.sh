#!/usr/bin/env bash
# Drain through `resonance worker` (issue 3's benchmark):
#   bench/worker.sh [--runs N] [--tasks N] [--concurrency N] [--exec-tasks N]
#
# For each run, on a fresh data dir and server (127.0.0.1:0):
# 1. persistent: enqueues --tasks tasks of action "pnoop" (batches of 1,000), starts one
#    `resonance worker --concurrency C` whose handler is bench/handlers/persistent_noop.py
#    (one process per slot, JSON lines), and times worker start -> queue drained
#    (polled every 10 ms on GET /api/queues). Prints `worker_persistent ... rate=N/s`.
# 2. exec: the same with --exec-tasks tasks of action "enoop", an exec handler running
#    /bin/true (a process per task) at concurrency 1, and prints the per-task time
#    `worker_exec ... ms_per_task=X`.
# Then the medians. Server and worker are stopped by PID at exit. Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/build/resonance}
RUNS=3 TASKS=20000 CONC=64 EXEC_TASKS=500
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --exec-tasks) EXEC_TASKS=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "worker.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "worker.sh: build $BIN first (make build)" >&2; exit 2; }

WORK=$(mktemp -d "${BENCH_TMP:-$ROOT/build}/worker-bench.XXXXXX")
SERVER_PID="" WORKER_PID=""
cleanup() {
  [ -n "$WORKER_PID" ] && kill -TERM "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/bench.toml" <<TOML
[handlers."pnoop"]
type = "persistent"
argv = ["$ROOT/bench/handlers/persistent_noop.py"]

[handlers."enoop"]
type = "exec"
argv = ["/bin/true"]
TOML

# Enqueues N tasks of ACTION into queue Q, 1,000 per request.
enqueue() {
  /usr/bin/python3 - "$1" "$2" "$3" "$4" <<'PY'
import http.client, json, sys
addr, action, queue, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port))
left = n
while left:
    k = min(1000, left)
    body = json.dumps({"tasks": [{"action": action, "queue": queue, "payload": {"i": i}} for i in range(k)]})
    c.request("POST", "/api/tasks/batch", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
    left -= k
PY
}

# Seconds from worker start until queue Q has no ready or running task.
drain_seconds() {
  local addr=$1 queue=$2 conc=$3
  local t0
  t0=$(date +%s.%N)
  "$BIN" worker --server "http://$addr" --config "$WORK/bench.toml" --queues "$queue" \
    --concurrency "$conc" --id "bench-$RANDOM" >"$WORK/worker.log" 2>&1 &
  WORKER_PID=$!
  /usr/bin/python3 - "$addr" "$queue" <<'PY'
import http.client, json, sys, time
addr, queue = sys.argv[1], sys.argv[2]
host, port = addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port))
deadline = time.time() + 600
while time.time() < deadline:
    c.request("GET", "/api/queues"); q = json.loads(c.getresponse().read())
    mine = [x for x in q["queues"] if x["name"] == queue]
    if not mine or (mine[0]["ready"] == 0 and mine[0]["running"] == 0 and mine[0]["scheduled"] == 0):
        sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
PY
  local t1
  t1=$(date +%s.%N)
  kill -TERM "$WORKER_PID"; wait "$WORKER_PID" || true; WORKER_PID=""
  awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}

start_server() {
  rm -rf "$WORK/data"; mkdir -p "$WORK/data"
  "$BIN" server --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do [ -s "$WORK/data/listen.addr" ] && break; sleep 0.05; done
  ADDR=$(tr -d '\n' < "$WORK/data/listen.addr")
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""; }

echo "host nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
rates=() per_task=()
for run in $(seq "$RUNS"); do
  start_server
  enqueue "$ADDR" pnoop wbench-p "$TASKS"
  s=$(drain_seconds "$ADDR" wbench-p "$CONC")
  rate=$(awk -v n="$TASKS" -v s="$s" 'BEGIN {print n / s}')
  printf 'worker_persistent run=%d tasks=%d concurrency=%d seconds=%.2f rate=%.0f/s\n' "$run" "$TASKS" "$CONC" "$s" "$rate"
  rates+=("$rate")
  enqueue "$ADDR" enoop wbench-e "$EXEC_TASKS"
  s=$(drain_seconds "$ADDR" wbench-e 1)
  ms=$(awk -v n="$EXEC_TASKS" -v s="$s" 'BEGIN {print s * 1000 / n}')
  printf 'worker_exec run=%d tasks=%d concurrency=1 seconds=%.2f ms_per_task=%.2f\n' "$run" "$EXEC_TASKS" "$s" "$ms"
  per_task+=("$ms")
  stop_server
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf 'median worker_persistent runs=%d tasks=%d concurrency=%d rate=%.0f/s\n' "$RUNS" "$TASKS" "$CONC" "$(median "${rates[@]}")"
printf 'median worker_exec runs=%d tasks=%d concurrency=1 ms_per_task=%.2f\n' "$RUNS" "$EXEC_TASKS" "$(median "${per_task[@]}")"
