#!/bin/sh
# Bounded soak (not run in CI): two tunnels with BGP, phase 2 of both
# tunnels rekeyed every 30 s and phase 1 every 2 min, alternately from the
# customer and the AWS side, under UDP both ways (RATE packets/s in total)
# for DURATION seconds. The scenario (generated into OUT) asserts zero loss,
# one SA pair per tunnel at the end, no half-open SA and BGP up; this script
# samples both gateway processes' memory (VmRSS), threads and open file
# descriptors every 10 s from /proc and prints the first and last minute.
#
#   sudo scripts/soak.sh [DURATION_S=600] [OUT=vpnlab-soak] [RATE=1000]
#
# Needs root and bin/vpnlab (go build -o bin/vpnlab ./cmd/vpnlab).
set -eu
DURATION=${1:-600}
OUT=$(realpath -m "${2:-vpnlab-soak}")
RATE=${3:-1000}
VPNLAB=${VPNLAB:-bin/vpnlab}
mkdir -p "$OUT"
SCEN="$OUT/soak.yaml"
HALF=$((RATE / 2))

{
cat <<YAML
name: soak
description: >-
  Soak: phase 2 rekeys every 30 s, phase 1 every 120 s, from both sides,
  under ${RATE} UDP packets/s for ${DURATION} s, two tunnels with BGP.
timeout: $((DURATION + 300))s
topology:
  wan:
    nat: none
  customer:
    gateway:
      config:
        bgp: {asn: 65000, hold_time: 9s, keepalive: 1s, connect_retry: 1s}
    hosts:
      - {name: onprem, address: 10.10.1.10/24}
  aws:
    gateway:
      config:
        bgp: {asn: 64512, hold_time: 9s, keepalive: 1s, connect_retry: 1s}
    hosts:
      - {name: vpc, address: 172.31.1.10/24}
steps:
  - wait: [tunnel1 bgp Established, tunnel2 bgp Established]
    timeout: 60s
  - wait: vgw route 10.10.1.0/24 via tunnel1
  - flow: {name: up, proto: udp, from: onprem, to: vpc, rate: ${HALF}}
  - flow: {name: down, proto: udp, from: vpc, to: onprem, rate: ${HALF}}
YAML
t=0; i=0
while [ $t -lt "$DURATION" ]; do
  t=$((t + 30)); i=$((i + 1))
  echo "  - sleep: 26s"
  if [ $((i % 2)) -eq 1 ]; then a=cgw; b=vgw; else a=vgw; b=cgw; fi
  # One wait after each rekey: a wait counts the events since the latest
  # action step, so a second rekey before the first one's wait could hide
  # the first one's event.
  ph=2; [ $((t % 120)) -eq 0 ] && ph=1
  echo "  - {name: 'phase $ph rekeys at ${t}s', rekey: {gateway: $a, tunnel: tunnel1, phase: $ph}}"
  echo "  - wait: $a event phase${ph}-up tunnel1"
  echo "    timeout: 20s"
  echo "  - rekey: {gateway: $b, tunnel: tunnel2, phase: $ph}"
  echo "  - wait: $b event phase${ph}-up tunnel2"
  echo "    timeout: 20s"
done
cat <<YAML
  - stop_flow: [up, down]
  - sleep: 5s
  - name: zero loss, no SA left over, BGP up
    assert:
      - flow up lost == 0
      - flow down lost == 0
      - tunnel1 sas == 1
      - tunnel2 sas == 1
      - cgw counter half_open == 0
      - vgw counter half_open == 0
      - tunnel1 bgp Established
      - tunnel2 bgp Established
      - cgw tunnel1 phase2_established >= $((DURATION / 30 / 2))
YAML
} > "$SCEN"

"$VPNLAB" run --check "$SCEN"
SAMPLES="$OUT/samples.csv"
echo "t_s,gateway,rss_kib,threads,fds" > "$SAMPLES"
"$VPNLAB" run --out "$OUT" "$SCEN" > "$OUT/run.log" 2>&1 &
RUN=$!
start=$(date +%s)
while kill -0 "$RUN" 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  for p in /proc/[0-9]*; do
    cmd=$(cat "$p/cmdline" 2>/dev/null | tr '\0' ' ') || continue
    case "$cmd" in
      *" gateway "*"$OUT/soak/"*) ;;
      *) continue ;;
    esac
    gw=vgw; case "$cmd" in *cgw*) gw=cgw ;; esac
    rss=$(awk '/^VmRSS/ {print $2}' "$p/status" 2>/dev/null || echo 0)
    thr=$(awk '/^Threads/ {print $2}' "$p/status" 2>/dev/null || echo 0)
    fds=$(ls "$p/fd" 2>/dev/null | wc -l)
    echo "$now,$gw,$rss,$thr,$fds" >> "$SAMPLES"
  done
  sleep 10
done
wait "$RUN" && rc=0 || rc=$?
tail -25 "$OUT/run.log"
echo "samples: $SAMPLES"
for gw in cgw vgw; do
  awk -F, -v gw=$gw -v d="$DURATION" '$2==gw && $1>=30 && $1<90 {r1+=$3; t1+=$4; f1+=$5; n1++}
    $2==gw && $1>=d-60+30 && $1<d+30 {r2+=$3; t2+=$4; f2+=$5; n2++}
    END { if (n1 && n2) printf "%s: first minute rss %.0f KiB threads %.1f fds %.1f; last minute rss %.0f KiB threads %.1f fds %.1f\n", gw, r1/n1, t1/n1, f1/n1, r2/n2, t2/n2, f2/n2 }' "$SAMPLES"
done
exit $rc
