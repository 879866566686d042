#!/usr/bin/env bash
# Runs a throwaway Prometheus that scrapes one Resonance server (for tests and demos).
#
#   scripts/prometheus.sh start DIR TARGET_HOSTPORT [PORT]
#       Writes DIR/prometheus.yml (scrape and evaluation interval 1s, job "resonance",
#       static target TARGET_HOSTPORT, e.g. 127.0.0.1:8091) and starts
#         prometheus --config.file DIR/prometheus.yml --storage.tsdb.path DIR/data
#                    --web.listen-address 127.0.0.1:PORT
#       in the background, its output in DIR/prometheus.log. PORT is the optional third
#       argument; without it a free loopback port is picked (bound and released by
#       python3, retried up to 3 times should another process take it first). Writes
#       DIR/prometheus.pid and DIR/prometheus.port, then waits until
#       http://127.0.0.1:PORT/-/ready answers 200 (PROMETHEUS_READY_TIMEOUT_S, default
#       30 s). On failure it stops what it started and exits 1 with the log's tail.
#       On success it prints the base URL (http://127.0.0.1:PORT) on stdout.
#
#   scripts/prometheus.sh stop DIR
#       Sends TERM to the PID in DIR/prometheus.pid (only when that process is a
#       prometheus using DIR), waits up to 5 s, then KILL, and waits until it is gone.
#       Removes DIR/prometheus.pid. A missing pid file or a dead process is not an error.
#
# Prometheus only ever listens on 127.0.0.1. Needs /usr/bin/prometheus (Debian package
# prometheus; run scripts/deps.sh), curl and python3. PROMETHEUS=/path overrides the
# binary (tests of the script only).
set -euo pipefail

PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
READY_TIMEOUT_S=${PROMETHEUS_READY_TIMEOUT_S:-30}

fail() {
  echo "prometheus.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start DIR TARGET_HOSTPORT [PORT] | $0 stop DIR" >&2
  exit 2
}

pick_python() {
  if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3 || true; fi
}

free_port() {
  local py
  py=$(pick_python)
  [ -n "$py" ] || fail "python3 not found (needed to pick a free port; or pass PORT)"
  "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# True while PID is a live (not zombie) process.
alive() {
  local pid=$1 state
  [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != "Z" ] && [ "$state" != "X" ]
}

# True when PID is a prometheus started over DIR (guards against a reused PID).
ours() {
  local pid=$1 dir=$2 cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *prometheus* && $cmdline == *"$dir/prometheus.yml"* ]]
}

# TERM, up to 5 s, then KILL; waits until the process is gone (or a zombie).
stop_pid() {
  local pid=$1 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  echo "prometheus.sh: pid $pid ignored TERM for 5 s, sending KILL" >&2
  kill -KILL "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  fail "pid $pid still alive after KILL"
}

log_tail() {
  echo "----- $1 (tail) -----" >&2
  tail -n 30 "$1" >&2 2>/dev/null || echo "(no log)" >&2
}

cmd_start() {
  if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
  local dir=$1 target=$2 port=${3:-}
  [ -x "$PROMETHEUS" ] || fail "$PROMETHEUS not found: run scripts/deps.sh (Debian package prometheus)"
  command -v curl >/dev/null 2>&1 || fail "curl not found: run scripts/deps.sh"
  [[ $target =~ ^[A-Za-z0-9._-]+:[0-9]+$ || $target =~ ^\[[0-9A-Fa-f:.]+\]:[0-9]+$ ]] ||
    fail "TARGET_HOSTPORT must be HOST:PORT, got '$target'"
  if [ -n "$port" ]; then
    if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
      fail "PORT must be a number from 1 to 65535, got '$port'"
    fi
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/prometheus.pid" ]; then
    local old
    old=$(cat "$dir/prometheus.pid")
    if [[ $old =~ ^[0-9]+$ ]] && alive "$old" && ours "$old" "$dir"; then
      fail "a prometheus (pid $old) already runs over $dir: stop it first"
    fi
  fi

  cat >"$dir/prometheus.yml" <<EOF
# Written by scripts/prometheus.sh.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s

scrape_configs:
  - job_name: resonance
    metrics_path: /metrics
    scheme: http
    static_configs:
      - targets: ["$target"]
EOF

  local tries=1 attempt
  [ -n "$port" ] || tries=3
  for ((attempt = 1; attempt <= tries; attempt++)); do
    local p=$port
    [ -n "$p" ] || p=$(free_port)
    : >"$dir/prometheus.log"
    # setsid: its own process group, so the caller's terminal signals do not reach it.
    setsid "$PROMETHEUS" \
      --config.file "$dir/prometheus.yml" \
      --storage.tsdb.path "$dir/data" \
      --web.listen-address "127.0.0.1:$p" \
      </dev/null >>"$dir/prometheus.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/prometheus.pid"
    echo "$p" >"$dir/prometheus.port"

    local deadline=$((SECONDS + READY_TIMEOUT_S))
    while :; do
      if ! alive "$pid"; then
        if [ -z "$port" ] && [ "$attempt" -lt "$tries" ] &&
          grep -q "address already in use" "$dir/prometheus.log"; then
          echo "prometheus.sh: port $p was taken, retrying on another" >&2
          break
        fi
        rm -f "$dir/prometheus.pid"
        log_tail "$dir/prometheus.log"
        fail "prometheus exited during startup (see $dir/prometheus.log)"
      fi
      if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$p/-/ready" 2>/dev/null; then
        echo "http://127.0.0.1:$p"
        return 0
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        stop_pid "$pid"
        rm -f "$dir/prometheus.pid"
        log_tail "$dir/prometheus.log"
        fail "prometheus not ready on 127.0.0.1:$p within ${READY_TIMEOUT_S}s"
      fi
      sleep 0.2
    done
  done
  fail "could not start prometheus (no free port after $tries tries)"
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  local dir=$1 pid
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/prometheus.pid" ] || return 0
  pid=$(cat "$dir/prometheus.pid")
  [[ $pid =~ ^[0-9]+$ ]] || fail "$dir/prometheus.pid holds no pid: '$pid'"
  if alive "$pid"; then
    ours "$pid" "$dir" || fail "pid $pid is not the prometheus started over $dir; not killing it"
    stop_pid "$pid"
  fi
  rm -f "$dir/prometheus.pid"
}

[ $# -ge 1 ] || usage
case "$1" in
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) usage ;;
esac
