#!/usr/bin/env bash
# A/B of two server binaries (or one binary with two configs) on one resonance-load
# phase, runs interleaved A B A B ... so drift on the machine hits both alike.
#
#   bench/ab.sh --a BIN [--b BIN] [--config-a FILE] [--config-b FILE]
#               [--runs N] [--tasks N] [--phase drain|enqueue_single|enqueue_batch]
#               [-- extra resonance-load flags]
#
# Every run starts the server on a fresh data dir (--listen 127.0.0.1:0), runs the phase
# with build/resonance-load (or $LOAD_BIN) and stops the server by its PID. Prints one
# line per run (`run side=A n=1 rate=...`) and then `median side=A rate=... runs=...`
# for each side (tasks/s of the phase). --b defaults to --a (then give two configs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOAD_BIN=${LOAD_BIN:-$ROOT/build/resonance-load}
A="" B="" CONFIG_A="" CONFIG_B="" RUNS=7 TASKS=50000 PHASE=drain
EXTRA=()
while (($#)); do
  case $1 in
    --a) A=$2; shift 2 ;;
    --b) B=$2; shift 2 ;;
    --config-a) CONFIG_A=$2; shift 2 ;;
    --config-b) CONFIG_B=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --phase) PHASE=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "ab.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n $A ]] || { echo "ab.sh: --a BIN is required" >&2; exit 2; }
B=${B:-$A}
for bin in "$A" "$B" "$LOAD_BIN"; do
  [[ -x $bin ]] || { echo "ab.sh: $bin is not executable" >&2; exit 2; }
done

mkdir -p "${BENCH_TMP:-$ROOT/build}"
WORK=$(mktemp -d "${BENCH_TMP:-$ROOT/build}/ab.XXXXXX")
SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# run_one SIDE N BIN CONFIG: prints the phase's rate (tasks/s).
run_one() {
  local side=$1 n=$2 bin=$3 config=$4 dir=$WORK/$1-$2 args=()
  mkdir -p "$dir"
  [[ -n $config ]] && args=(--config "$config")
  "$bin" server "${args[@]}" --data-dir "$dir/data" --listen 127.0.0.1:0 >"$dir/log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 6000); do
    [[ -s $dir/data/listen.addr ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "ab.sh: server $side exited; log:" >&2; tail "$dir/log" >&2; exit 1; }
    sleep 0.01
  done
  local addr out rate
  addr=$(head -n1 "$dir/data/listen.addr" | tr -d '[:space:]')
  "$LOAD_BIN" --server "$addr" --phase wait_ready --seconds 60 >/dev/null
  out=$("$LOAD_BIN" --server "$addr" --phase "$PHASE" --tasks "$TASKS" "${EXTRA[@]}")
  kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
  rate=$(grep "^$PHASE " <<<"$out" | sed -n 's/.* rate=\([0-9.]*\)\/s.*/\1/p')
  grep -q "errors=0" <<<"$(grep "^$PHASE " <<<"$out")" || { echo "ab.sh: errors in run: $out" >&2; exit 1; }
  rm -rf "$dir"
  echo "$rate"
}

echo "host nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) phase=$PHASE tasks=$TASKS"
declare -a RA RB
for n in $(seq "$RUNS"); do
  r=$(run_one A "$n" "$A" "$CONFIG_A"); RA+=("$r"); echo "run side=A n=$n rate=$r"
  r=$(run_one B "$n" "$B" "$CONFIG_B"); RB+=("$r"); echo "run side=B n=$n rate=$r"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "median side=A rate=$(median "${RA[@]}") runs=$(printf '%s,' "${RA[@]}" | sed 's/,$//')"
echo "median side=B rate=$(median "${RB[@]}") runs=$(printf '%s,' "${RB[@]}" | sed 's/,$//')"
