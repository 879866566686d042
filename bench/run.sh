#!/usr/bin/env bash
# End-to-end benchmark of a real `resonance server` on loopback.
#
#   bench/run.sh [--runs N] [--tasks N] [--fill N] [--seconds S] [--rate R]
#                [--no-build] [--keep] [-- extra resonance-load flags]
#
# 1. Builds build/resonance and build/resonance-load (RelWithDebInfo) unless --no-build.
# 2. N times (default 3): starts the server on a fresh data dir with --listen
#    127.0.0.1:0, waits for /readyz, runs the four phases of resonance-load
#    (enqueue_single, enqueue_batch, drain, mixed), stops the server. Then prints the
#    median of every figure over the runs (`median <phase> runs=N key=value ...`).
# 3. Memory and recovery: fills one data dir with --fill tasks (default 1,000,000),
#    reads the server's VmRSS/VmHWM, SIGTERMs it (timing the shutdown), restarts it
#    over the same dir and times process start → /readyz 200, then reads RSS again and
#    checks the filled queue still holds every task.
#
# Every line printed on stdout is `<name> key=value ...`. Data dirs live under
# $BENCH_TMP (default build/, i.e. the project's disk, since fsync cost is part of
# the figures) and are removed at exit unless --keep. The server is always stopped by
# its PID at exit. Exit status: non-zero if a phase was not clean or a step failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
RUNS=3 TASKS=20000 FILL=1000000 MIXED_SECONDS=10 RATE=1000 DO_BUILD=1 KEEP=0
EXTRA=()
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --fill) FILL=$2; shift 2 ;;
    --seconds) MIXED_SECONDS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if ((DO_BUILD)); then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
  cmake --build "$BUILD" --target resonance resonance-load >&2
fi
SERVER_BIN=$BUILD/resonance
LOAD_BIN=$BUILD/resonance-load

mkdir -p "${BENCH_TMP:-$BUILD}"
WORK=$(mktemp -d "${BENCH_TMP:-$BUILD}/bench.XXXXXX")
SERVER_PID=""
ADDR=""
STATUS=0

stop_server() {  # SIGTERM, wait up to 60 s, then SIGKILL. Sets SHUTDOWN_S, SHUTDOWN_RC.
  SHUTDOWN_S="" SHUTDOWN_RC=""
  [[ -n $SERVER_PID ]] || return 0
  local t0 t1
  t0=$(date +%s%N)
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 6000); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.01
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run.sh: server $SERVER_PID ignored SIGTERM for 60 s; killing it" >&2
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  SHUTDOWN_RC=0
  wait "$SERVER_PID" 2>/dev/null || SHUTDOWN_RC=$?
  t1=$(date +%s%N)
  SHUTDOWN_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  SERVER_PID=""
}

cleanup() {
  local rc=$?
  stop_server
  if ((KEEP)); then
    echo "run.sh: kept $WORK" >&2
  else
    if ((rc != 0 || STATUS != 0)); then  # keep what explains the failure, not the data dirs
      mkdir -p "$WORK.logs" && mv "$WORK"/*.log "$WORK"/results.txt "$WORK.logs/" 2>/dev/null
      echo "run.sh: server logs and results kept in $WORK.logs" >&2
    fi
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'STATUS=130; exit 130' INT TERM

# start_server DATA_DIR LOG: launches the server, waits for listen.addr and /readyz.
# Sets SERVER_PID, ADDR, READY_S (process start → /readyz 200, seconds).
start_server() {
  local dir=$1 log=$2 t0 t1
  mkdir -p "$dir"
  rm -f "$dir/listen.addr"
  t0=$(date +%s%N)
  "$SERVER_BIN" server --data-dir "$dir" --listen 127.0.0.1:0 >>"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 24000); do  # up to ~120 s for the address file
    [[ -s $dir/listen.addr ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run.sh: server exited during start; log:" >&2; tail -20 "$log" >&2; SERVER_PID=""
      return 1
    fi
    sleep 0.005
  done
  ADDR=$(head -n1 "$dir/listen.addr" | tr -d '[:space:]')
  [[ -n $ADDR ]] || { echo "run.sh: no listen.addr in $dir" >&2; return 1; }
  if ! "$LOAD_BIN" --server "$ADDR" --phase wait_ready --seconds 300 >/dev/null; then
    echo "run.sh: $ADDR never answered /readyz 200; log:" >&2; tail -20 "$log" >&2
    return 1
  fi
  t1=$(date +%s%N)
  READY_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
}

# check_alive WHAT LOG: the server must still be running after WHAT; else say how it
# ended (an exit status 0 here means someone else sent it SIGTERM/SIGINT).
check_alive() {
  kill -0 "$SERVER_PID" 2>/dev/null && return 0
  local rc=0
  wait "$SERVER_PID" 2>/dev/null || rc=$?
  echo "run.sh: server $SERVER_PID died during $1 (exit status $rc); log tail:" >&2
  tail -5 "$2" >&2
  SERVER_PID="" STATUS=1
  return 1
}

rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

# --- phases, RUNS times, medians ------------------------------------------------------
# Context for the figures: other load on the machine skews them (2 cores here).
echo "host nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)" \
  "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
RESULTS=$WORK/results.txt
: >"$RESULTS"
for run in $(seq "$RUNS"); do
  dir=$WORK/run$run
  log=$WORK/server-run$run.log
  start_server "$dir/data" "$log"
  echo "run $run server=$ADDR pid=$SERVER_PID ready_s=$READY_S"
  if ! "$LOAD_BIN" --server "$ADDR" --tasks "$TASKS" --rate "$RATE" --seconds "$MIXED_SECONDS" \
      "${EXTRA[@]}" | tee -a "$RESULTS"; then
    STATUS=1
  fi
  check_alive "run $run" "$log" || continue
  stop_server
  [[ $SHUTDOWN_RC == 0 ]] || { echo "run.sh: server exit status $SHUTDOWN_RC" >&2; STATUS=1; }
  ((KEEP)) || rm -rf "$dir"
done

# Median per (line name, key) over the runs; numbers keep a "/s" suffix if they had one.
awk -v runs="$RUNS" '
  {
    name = $1
    if (!(name in seen)) { seen[name] = 1; names[++n] = name }
    count[name]++
    for (i = 2; i <= NF; i++) {
      split($i, kv, "="); key = kv[1]; val = kv[2]
      if (!((name, key) in known)) { known[name, key] = 1; keys[name, ++nk[name]] = key }
      suffix[name, key] = (val ~ /\/s$/) ? "/s" : ""
      sub(/\/s$/, "", val)
      vals[name, key, count[name]] = val
    }
  }
  function median(name, key, c,   i, j, t, a, m) {
    for (i = 1; i <= c; i++) a[i] = vals[name, key, i]
    for (i = 2; i <= c; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) {
      t = a[j]; a[j] = a[j-1]; a[j-1] = t
    }
    m = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
    return m
  }
  END {
    for (x = 1; x <= n; x++) {
      name = names[x]; line = "median " name " runs=" count[name]
      for (y = 1; y <= nk[name]; y++) {
        key = keys[name, y]; v = vals[name, key, 1]
        if (v ~ /^-?[0-9.]+$/) {
          v = median(name, key, count[name])
          v = (v == int(v)) ? sprintf("%d", v) : sprintf("%.2f", v)
        }
        line = line " " key "=" v suffix[name, key]
      }
      print line
    }
  }' "$RESULTS"

# --- memory and recovery ----------------------------------------------------------------
dir=$WORK/fill/data
log=$WORK/server-fill.log
start_server "$dir" "$log"
idle_kb=$(rss_kb "$SERVER_PID" VmRSS)
fill_line=$("$LOAD_BIN" --server "$ADDR" --phase fill --tasks "$FILL" "${EXTRA[@]}") || STATUS=1
echo "$fill_line"
check_alive fill "$log" || exit 1
queue=$(sed -n 's/.* queue=\([^ ]*\).*/\1/p' <<<"$fill_line")
sleep 1  # let the writer settle before reading memory
echo "memory tasks=$FILL rss_mb=$(mb "$(rss_kb "$SERVER_PID" VmRSS)")" \
  "hwm_mb=$(mb "$(rss_kb "$SERVER_PID" VmHWM)") idle_rss_mb=$(mb "$idle_kb")" \
  "data_dir_mb=$(du -sm "$dir" | cut -f1)"
stop_server
echo "shutdown tasks=$FILL seconds=$SHUTDOWN_S exit=$SHUTDOWN_RC"
[[ $SHUTDOWN_RC == 0 ]] || STATUS=1

start_server "$dir" "$log"
ready_count=$(curl -s "http://$ADDR/api/queues" |
  grep -o "{[^{}]*\"$queue\"[^{}]*}" | grep -o '"ready":[0-9]*' | cut -d: -f2 || true)
echo "recovery tasks=$FILL seconds=$READY_S rss_mb=$(mb "$(rss_kb "$SERVER_PID" VmRSS)")" \
  "hwm_mb=$(mb "$(rss_kb "$SERVER_PID" VmHWM)") ready_after=${ready_count:-unknown}"
[[ ${ready_count:-0} == "$FILL" ]] || {
  echo "run.sh: queue $queue holds ${ready_count:-?} ready tasks after restart, want $FILL" >&2
  STATUS=1
}
stop_server
exit $STATUS
