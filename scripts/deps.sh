#!/usr/bin/env bash
# Installs the Debian 12 packages Resonance needs to build, test and run.
# Only installs what is missing, so a second run is quick and needs no network.
set -euo pipefail
pkgs=(
  g++ cmake ninja-build ccache make pkg-config curl
  libboost1.74-dev libboost-system1.74-dev
  libsqlite3-dev libssl-dev libsimdjson-dev
  libcli11-dev libtoml11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-pytest sqlite3
  tzdata  # core/time_zone.cc reads /usr/share/zoneinfo (cron schedules in a zone)
  prometheus prometheus-alertmanager
  chromium  # tests/integration/test_report.py opens the HTML report headless
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
