#!/usr/bin/env bash
# What observability costs: the core drain (and single enqueue) with metrics, logging at
# info (an access line per request, to a file) and tracing with OTLP export on, versus
# all three off. Issue 4's bar: "on" costs at most 5 % of drain throughput.
#
#   bench/observability.sh [--runs N] [--tasks N] [--phases P,P] [--no-build]
#   (default: 5 runs, 20000 tasks, phases enqueue_single,drain)
#
# Runs are interleaved (off, on, down, off, on, down, ...) so drift on a shared machine
# hits every side alike; each run is a fresh server and data dir. Prints every run's
# figures, then `median <config> <phase> ...` and `overhead <phase> pct=...`.
#   off:  [metrics] enabled = false, [logging] level = "warn", access_log = false,
#         no [tracing]
#   on:   [metrics] enabled = true (scraped once a second, as Prometheus would, but
#         faster), [logging] level = "info" to a file, [tracing] to bench/otlp_sink.py
#   down: as on, but the OTLP endpoint is a closed port (the collector is down)
# The "on" runs also check that spans reached the sink and none were dropped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
RUNS=5 TASKS=20000 PHASES=enqueue_single,drain DO_BUILD=1
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --phases) PHASES=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "observability.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if ((DO_BUILD)); then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  cmake --build "$BUILD" --target resonance resonance-load >&2
fi
SERVER_BIN=$BUILD/resonance
LOAD_BIN=$BUILD/resonance-load

WORK=$(mktemp -d "$BUILD/obsbench.XXXXXX")
SERVER_PID="" SINK_PID="" SCRAPER_PID=""
cleanup() {
  for pid in $SCRAPER_PID $SERVER_PID $SINK_PID; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $SCRAPER_PID $SERVER_PID $SINK_PID; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

/usr/bin/python3 "$ROOT/bench/otlp_sink.py" "$WORK/sink.port" >"$WORK/sink.out" &
SINK_PID=$!
for _ in $(seq 500); do [[ -s $WORK/sink.port ]] && break; sleep 0.01; done
SINK_PORT=$(cat "$WORK/sink.port")
# A port nobody listens on: bound and closed again at once.
CLOSED_PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

write_config() {  # CONFIG_FILE MODE DATA_DIR
  local endpoint="http://127.0.0.1:$SINK_PORT/v1/traces"
  # on: the whole run fits the queue, so every span is exported and none dropped.
  # down: the default queue; what does not fit is dropped, as in production.
  local queue_size=200000
  if [[ $2 == down ]]; then
    endpoint="http://127.0.0.1:$CLOSED_PORT/v1/traces"
    queue_size=8192
  fi
  if [[ $2 == off ]]; then
    cat >"$1" <<TOML
[metrics]
enabled = false
[logging]
level = "warn"
access_log = false
file = "$3/server.log"
TOML
  else
    cat >"$1" <<TOML
[metrics]
enabled = true
[logging]
level = "info"
file = "$3/server.log"
[tracing]
otlp_endpoint = "$endpoint"
queue_size = $queue_size
TOML
  fi
}

metric() {  # ADDR NAME_WITH_LABELS: prints the value or nothing
  curl -s "http://$1/metrics" | awk -v k="$2" '$1 == k { print $2 }'
}

RESULTS=$WORK/results.txt
: >"$RESULTS"
echo "host nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)" \
  "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none) tasks=$TASKS runs=$RUNS"
for run in $(seq "$RUNS"); do
  for mode in off on down; do
    dir=$WORK/$mode-$run
    mkdir -p "$dir"
    write_config "$dir/resonance.toml" "$mode" "$dir"
    "$SERVER_BIN" server --config "$dir/resonance.toml" --data-dir "$dir/data" \
      --listen 127.0.0.1:0 2>>"$dir/stderr.log" &
    SERVER_PID=$!
    for _ in $(seq 2000); do [[ -s $dir/data/listen.addr ]] && break; sleep 0.01; done
    ADDR=$(head -n1 "$dir/data/listen.addr" | tr -d '[:space:]')
    "$LOAD_BIN" --server "$ADDR" --phase wait_ready --seconds 60 >/dev/null
    if [[ $mode != off ]]; then
      (while true; do curl -s -o /dev/null "http://$ADDR/metrics"; sleep 1; done) &
      SCRAPER_PID=$!
    fi
    "$LOAD_BIN" --server "$ADDR" --phase "$PHASES" --tasks "$TASKS" |
      sed "s/^/$mode run=$run /" | tee -a "$RESULTS"
    if [[ $mode != off ]]; then
      kill "$SCRAPER_PID" 2>/dev/null || true
      wait "$SCRAPER_PID" 2>/dev/null || true
      SCRAPER_PID=""
      sleep 1.5  # one flush interval: the last batch of spans goes out
      exported=$(metric "$ADDR" resonance_trace_spans_exported_total)
      dropped_full=$(metric "$ADDR" 'resonance_trace_spans_dropped_total{reason="queue_full"}')
      dropped_failed=$(metric "$ADDR" 'resonance_trace_spans_dropped_total{reason="export_failed"}')
      lines=$(cat "$dir"/server.log* | wc -l)
      echo "$mode run=$run check spans_exported=$exported dropped_queue_full=$dropped_full" \
        "dropped_export_failed=$dropped_failed log_lines=$lines"
    fi
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    rm -rf "$dir/data"
  done
done

median_of() {  # MODE PHASE [KEY]: the median of KEY (default rate) over the runs
  local key=${3:-rate}
  grep "^$1 run=[0-9]* $2 " "$RESULTS" | sed "s/.* $key=\([0-9.]*\).*/\1/" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print 0; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f\n", m }'
}
for phase in ${PHASES//,/ }; do
  off=$(median_of off "$phase")
  for mode in off on down; do
    line="median $mode $phase rate=$(median_of "$mode" "$phase")/s"
    if [[ $phase == enqueue_single ]]; then
      line+=" req_p50_ms=$(median_of "$mode" "$phase" req_p50_ms)"
      line+=" req_p99_ms=$(median_of "$mode" "$phase" req_p99_ms)"
    fi
    echo "$line"
  done
  for mode in on down; do
    awk -v a="$off" -v b="$(median_of "$mode" "$phase")" -v p="$phase" -v m="$mode" \
      'BEGIN { printf "overhead %s %s pct=%.1f (throughput below off)\n", p, m, (a - b) * 100 / a }'
  done
done
kill -TERM "$SINK_PID"
wait "$SINK_PID" || true
SINK_PID=""
cat "$WORK/sink.out"
