#!/usr/bin/env bash
# Quick start: build the binaries, run a vgw and a cgw as separate processes on
# loopback, wait until phase 1 and phase 2 are established, show both sides'
# view, then stop them. Needs root (UDP 500/4500 and /run/vpnlab).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: run as root (the gateways bind UDP 500/4500 and /run/vpnlab)" >&2
  exit 1
fi
command -v go >/dev/null || { echo "quickstart: Go is not installed (https://go.dev/doc/install)" >&2; exit 1; }

echo "== building bin/cgw bin/vgw bin/vpnlab"
mkdir -p bin
go build -o bin/ ./cmd/cgw ./cmd/vgw ./cmd/vpnlab

logs=$(mktemp -d /tmp/vpnlab-quickstart.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== starting vgw (127.0.0.1, AWS defaults) and cgw (127.0.0.2, initiates)"
bin/vgw --config examples/loopback/vgw.yaml >"$logs/vgw.log" 2>&1 & pids+=($!)
sleep 0.2
start=$(date +%s.%N)
bin/cgw --config examples/loopback/cgw.yaml >"$logs/cgw.log" 2>&1 & pids+=($!)

echo "== waiting for phase 1 and phase 2 (cgw view)"
if ! bin/vpnlab status --control unix:/run/vpnlab/quickstart-cgw.sock --wait-established 5s; then
  echo "== tunnel did not come up; logs:" >&2
  tail -n 30 "$logs/vgw.log" "$logs/cgw.log" >&2
  exit 1
fi
end=$(date +%s.%N)
echo "== vgw view"
bin/vpnlab status --control unix:/run/vpnlab/quickstart-vgw.sock
awk -v a="$start" -v b="$end" 'BEGIN { printf "== up %.3f s after the cgw started (includes process start-up)\n", b - a }'
echo "== the vgw's log of the exchange:"
grep -E 'main mode|quick mode|phase 1|phase 2' "$logs/vgw.log" | cut -c1-220
echo "== logs kept in $logs"
