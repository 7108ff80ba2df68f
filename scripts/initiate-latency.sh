#!/bin/sh
# Time from the customer's initiate to the first protected packet, N runs
# of scenarios/initiate-latency.yaml (docs/PERFORMANCE.md, "Handshakes and
# scale"). Needs root (network namespaces). Usage:
#   scripts/initiate-latency.sh [RUNS] [OUT]      (default 10, /tmp/vpnlab-initiate-latency)
# Prints one line per run: the first answered ping's send time after the
# initiate, and when each gateway had phase 1 and phase 2 up (ms).
set -eu
runs=${1:-10}
out=${2:-/tmp/vpnlab-initiate-latency}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
go build -o "$out/vpnlab" "$here/cmd/vpnlab"
i=1
while [ "$i" -le "$runs" ]; do
	"$out/vpnlab" run --color=false --out "$out/run$i" "$here/scenarios/initiate-latency.yaml" >/dev/null || echo "run $i: the scenario failed (see $out/run$i)"
	jq -r --arg run "$i" '
	  def ts: capture("(?<s>[^.]+)(\\.(?<f>[0-9]+))?Z") | ((.s + "Z") | fromdateiso8601) + ("0." + (.f // "0") | tonumber);
	  ([.steps[] | select(.name == "initiate")][0].start | ts) as $t0
	  | "run \($run): first protected packet \(((.flows[0].max_gap_to | ts) - $t0) * 1000 | floor) ms after the initiate; "
	    + ([.events[] | select(.type == "phase1-up" or .type == "phase2-up")
	        | "\(.source) \(.type) \(((.time | ts) - $t0) * 1000 | floor) ms"] | join(", "))
	' "$out/run$i/initiate-latency/timeline.json"
	i=$((i + 1))
done
