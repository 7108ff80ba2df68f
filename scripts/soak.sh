#!/bin/sh
# Bounded soak (not run in CI): two tunnels with BGP, phase 2 of both
# tunnels rekeyed every 30 s and phase 1 every 2 min, alternately from the
# customer and the AWS side, under UDP both ways (RATE packets/s in total)
# for DURATION seconds. The scenario (generated into OUT) asserts zero loss,
# one SA pair per tunnel at the end, no half-open SA and BGP up.
#
# Flatness: every SAMPLE_S seconds (default 10) this script scrapes both
# gateways over their control sockets: GET /metrics (go_goroutines,
# go_memstats_heap_alloc_bytes, go_memstats_next_gc_bytes: the heap goal,
# twice the live heap of the last GC, process_resident_memory_bytes,
# go_threads, process_open_fds) and GET /v1/status (IPsec SA pairs
# installed, their distinct SPIs, half-open ISAKMP SAs), into
# OUT/samples.csv. It prints per gateway the first, last and largest value
# of each, and compares a window of WINDOW samples (default 6) at the
# start with the last WINDOW samples. The start window begins WARMUP_S
# seconds (default 60) after the first sample with both tunnels' pairs
# installed: by then the flows run and the heap has reached its GC cycle.
# A leak stays, a rekey's overlap or a GC cycle passes, so each bound
# compares the smallest value of the last window with the largest of the
# first:
#   goroutines   at most GOROUTINE_SLACK (default 5) more
#   heap goal    at most 1.25 x + 4 MiB (heap_alloc is printed, not judged:
#                it is a sawtooth between GCs)
#   RSS          at most 1.25 x + 16 MiB of the larger of the start's RSS
#                and heap goal (RSS climbs towards the heap goal, the
#                highest the heap reaches between GCs, for a while after
#                the start without any leak)
#   SA pairs, SPIs  no more (a leaked pair or SPI stays in every sample)
#   half-open    0 at the end
# Growth beyond a bound fails the script (exit 3) even if the scenario
# passed; a failed scenario keeps its own exit status. Not measured: the
# engine's ISAKMP SAs and timers (no metric counts them; the in-process
# hostile-peer battery checks them).
#
#   sudo scripts/soak.sh [DURATION_S=600] [OUT=vpnlab-soak] [RATE=1000]
#   scripts/soak.sh --verdict OUT/samples.csv   (judge a run's samples again)
#
# Needs root, curl, jq and bin/vpnlab (go build -o bin/vpnlab ./cmd/vpnlab).
set -eu
SAMPLE_S=${SAMPLE_S:-10}
WINDOW=${WINDOW:-6}
GOROUTINE_SLACK=${GOROUTINE_SLACK:-5}
WARMUP_S=${WARMUP_S:-60}

# judge SAMPLES: the flatness verdict of a samples file (see the top).
judge() {
  grew=0
  for gw in cgw vgw; do
    awk -F, -v gw=$gw -v w="$WINDOW" -v slack="$GOROUTINE_SLACK" -v warm="$WARMUP_S" '
      $2 != gw || $1 == "t_s" { next }
      # the start: WARMUP_S after the first sample with both tunnels pair installed
      up == "" && $9 >= 2 { up = $1 }
      up == "" || $1 < up + warm { next }
      { n++; for (i = 3; i <= 11; i++) v[n, i] = $i; t[n] = $1 }
      END {
        if (n < 2 * w) { printf "%s: %d samples after the warm-up, need %d: no verdict\n", gw, n, 2 * w; exit 2 }
        split("goroutines heap_kib heap_goal_kib rss_kib threads fds sa_pairs spis half_open", name, " ")
        for (i = 3; i <= 11; i++) {
          mx = v[1, i]; for (k = 1; k <= n; k++) if (v[k, i] + 0 > mx + 0) mx = v[k, i]
          f1 = v[1, i]; for (k = 1; k <= w; k++) if (v[k, i] + 0 > f1 + 0) f1 = v[k, i]
          l1 = v[n, i]; for (k = n - w + 1; k <= n; k++) if (v[k, i] + 0 < l1 + 0) l1 = v[k, i]
          first[i] = f1; last[i] = l1
          printf "%s %-13s first %8d  last %8d  max %8d  (start window max %d, end window min %d)\n", gw, name[i - 2], v[1, i], v[n, i], mx, f1, l1
        }
        bad = ""
        if (last[3] > first[3] + slack) bad = bad sprintf(" goroutines %d -> %d (bound +%d);", first[3], last[3], slack)
        if (last[5] > first[5] * 1.25 + 4096) bad = bad sprintf(" heap goal %d -> %d KiB (bound 1.25x + 4 MiB);", first[5], last[5])
        base = first[6] + 0 > first[5] + 0 ? first[6] : first[5]
      if (last[6] > base * 1.25 + 16384) bad = bad sprintf(" RSS %d -> %d KiB (bound 1.25 x %d KiB + 16 MiB);", first[6], last[6], base)
        if (last[9] > first[9]) bad = bad sprintf(" SA pairs %d -> %d;", first[9], last[9])
        if (last[10] > first[10]) bad = bad sprintf(" SPIs %d -> %d;", first[10], last[10])
        if (v[n, 11] != 0) bad = bad sprintf(" %d half-open SAs at the end;", v[n, 11])
        printf "%s: %d samples from %d s to %d s (both up at %d s): %s\n", gw, n, t[1], t[n], up, bad == "" ? "flat" : "GREW:" bad
        exit bad == "" ? 0 : 3
      }' "$1" || grew=1
  done
  return $grew
}

if [ "${1:-}" = "--verdict" ]; then
  judge "$2" && exit 0 || exit 3
fi

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
echo "t_s,gateway,goroutines,heap_kib,heap_goal_kib,rss_kib,threads,fds,sa_pairs,spis,half_open" > "$SAMPLES"
"$VPNLAB" run --out "$OUT" "$SCEN" > "$OUT/run.log" 2>&1 &
RUN=$!
start=$(date +%s)

# sock GW: the gateway's control socket, from the configuration the runner
# wrote ("listen: unix:PATH" under control), empty until it exists.
sock() {
  f=$(find "$OUT" -name "$1.yaml" 2>/dev/null | head -1)
  [ -n "$f" ] || return 0
  sed -n 's/^ *listen: *"\{0,1\}unix:\([^"]*\)"\{0,1\} *$/\1/p' "$f" | head -1
}

# sample GW T: one line of samples.csv, nothing if the gateway does not
# answer (not started yet, or stopping).
sample() {
  s=$(sock "$1")
  [ -n "$s" ] && [ -S "$s" ] || return 0
  m=$(curl -sf --max-time 5 --unix-socket "$s" http://gw/metrics) || return 0
  st=$(curl -sf --max-time 5 --unix-socket "$s" http://gw/v1/status) || return 0
  v() { echo "$m" | awk -v k="$1" -v div="$2" '$1==k {printf "%d", $2/div; exit}'; }
  sas=$(echo "$st" | jq -r '[.tunnels[]?.sas // [] | length] | add // 0')
  spis=$(echo "$st" | jq -r '[.tunnels[]?.sas // [] | .[] | .inbound_spi, .outbound_spi] | unique | length')
  half=$(echo "$st" | jq -r '.counters.half_open // 0')
  echo "$2,$1,$(v go_goroutines 1),$(v go_memstats_heap_alloc_bytes 1024),$(v go_memstats_next_gc_bytes 1024),$(v process_resident_memory_bytes 1024),$(v go_threads 1),$(v process_open_fds 1),$sas,$spis,$half" >> "$SAMPLES"
}

while kill -0 "$RUN" 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  for gw in cgw vgw; do sample $gw $now; done
  sleep "$SAMPLE_S"
done
wait "$RUN" && rc=0 || rc=$?
tail -25 "$OUT/run.log"
echo "samples: $SAMPLES"
grew=0
judge "$SAMPLES" || grew=1
[ $rc -ne 0 ] && exit $rc
[ $grew -ne 0 ] && exit 3
exit 0
