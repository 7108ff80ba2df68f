#!/usr/bin/env bash
# End-to-end benchmark: iperf3 TCP (both directions), iperf3 UDP with small
# packets (throughput and packets/s) and ping latency between an "onprem" host
# and a "vpc" host through four kinds of site-to-site path, side by side, in one
# run and in one topology (four network namespaces whose names are unique to
# the run):
#
#   onprem ------------ cgw ================ vgw ------------ vpc
#   10.10.1.10   lan0 10.10.1.1   wan0 192.0.2.1   192.0.2.2 wan0   lan0 172.31.1.1   172.31.1.10
#
#   plain      the veths routed in clear, no encryption (the ceiling)
#   libipsec   strongSwan charon + kernel-libipsec (userspace ESP-in-UDP, tunnel
#              mode), IKEv1 main mode PSK, ESP aes128gcm16 and aes128-sha256
#   wireguard  wireguard-go (current module via `go install`) + wg(8)
#   vpnlab     this repository's cgw/vgw (IKEv1 main mode PSK), esp-aes128gcm16
#              and esp-aes128-sha256 in UDP (force_encap), the same two as raw
#              ESP (IP protocol 50, variants *-raw), and AH (ah-sha256-raw, IP
#              protocol 51; the vgw refuses AH as AWS does, so the cgw binary
#              plays the AWS side for that variant); *-w2: the gateways with
#              VPNLAB_CRYPTO_WORKERS=2 (the AES-CBC/HMAC crypto of a batch on the
#              batch's goroutine and one helper; off by default), side by side;
#              --variants also accepts -w1 .. -w9 of the two UDP variants
#
# Tests (--tests), each per path and variant:
#   tcp        iperf3 TCP onprem -> vpc, -P N streams (the main table)
#   tcp-rev    the same, vpc -> onprem (iperf3 -R)
#   udp64      iperf3 UDP onprem -> vpc, 64-byte payloads, unlimited rate (-b 0),
#              1 stream: received Mbit/s, packets/s and loss
#   udp512     the same with 512-byte payloads
#   pps64      small packets with this repository's generator (internal/pktgen,
#              built from the working tree into DIR/bin; iperf3 -u stops near
#              30,000 packets/s, below what a tunnel carries): `pktgen recv` in
#              vpc, `pktgen send` in onprem to it, 64-byte UDP payloads with
#              sendmmsg for --time seconds (at most 2,000,000 packets/s x
#              --time), as fast as the sender can (one socket unless
#              --pps-streams); then a second run at a fixed offered rate of
#              --pps-rate packets/s (default 140000, AWS's packets/s limit of one
#              tunnel; row "pps64@RATE"): offered and received packets/s (the
#              receiver's from its first to its last packet), loss % ((sent -
#              received) / sent), the receiver socket's kernel drops (its
#              /proc/net/udp "drops"), gateway CPU; table "small packets", pps.tsv
#   pps512     the same with 512-byte payloads
#   ping       ping onprem -> vpc through the idle path: RTT min/avg/max/mdev
#
# Usage (root):
#   scripts/bench-e2e.sh [--time S] [--repeat N] [--only LIST] [-P N] [--out DIR]
#                        [--wireguard-go PATH] [--vpnlab-rev REV]
#                        [--quiet-wait S] [--max-foreign P] [--retries N]
#                        [--tests LIST] [--variants LIST] [--quick] [--profile]
#                        [--baseline-rev REV] [--pps-rate PPS] [--pps-streams N]
#
#   --time S         iperf3 duration per run (default 10)
#   --repeat N       runs per path and cipher (default 3); medians are reported
#   --only LIST      comma-separated subset of plain,libipsec,wireguard,vpnlab
#   -P N             parallel TCP streams (iperf3 -P, default 1; UDP tests use 1)
#   --tests LIST     comma-separated subset of tcp,tcp-rev,udp64,udp512,pps64,
#                    pps512,ping (default: all)
#   --pps-rate PPS   the fixed offered rate of the second pps64/pps512 run
#                    (default 140000; 0: only the as-fast-as-possible run)
#   --pps-streams N  pktgen sender sockets (distinct source ports, one goroutine
#                    each; default 1): one socket's sendmmsg loop is bound by one
#                    core (on loopback, 2 sockets sent about twice as many)
#   --variants LIST  only these variants (e.g. esp-aes128gcm16,ah-sha256-raw);
#                    paths with none of them are skipped
#   --quick          a check that everything works, not a measurement:
#                    --repeat 1 --time 3 --quiet-wait 0 --retries 0, 20 pings
#   --profile        run the vpnlab gateways with VPNLAB_CPUPROFILE: one Go CPU
#                    profile per gateway and variant in work/vpnlab-VARIANT/
#                    (go tool pprof -top bin/cgw work/vpnlab-VARIANT/cgw.pprof)
#   --out DIR        output directory (default /tmp/vpnlab-bench-<timestamp>)
#   --wireguard-go PATH  use this wireguard-go binary instead of installing the
#                    current one with `go install golang.zx2c4.com/wireguard@latest`
#                    (e.g. /usr/bin/wireguard-go, Debian's 2022 build)
#   --baseline-rev REV  also build cgw/vgw from commit REV (git archive) and add the
#                    variants esp-aes128gcm16-base and esp-aes128-sha256-base run with
#                    them: the code before a change, side by side in the same run
#   --vpnlab-rev REV build cgw/vgw/vpnlab from commit REV (exported with `git archive`
#                    into DIR/work, the working tree is not touched) instead of
#                    from the working tree as it is (uncommitted edits included)
#   --quiet-wait S   before each iperf3 run wait up to S seconds (default 60, 0: no
#                    wait) until the machine is < 20 % busy: on a shared machine
#                    other work skews the numbers. The CPU used during a run by
#                    processes outside this run's namespaces is reported as
#                    "foreign" CPU (approximate: from /proc/PID/stat).
#   --max-foreign P  a run during which processes outside this run used more than
#                    P % of one core (default 20) is repeated, at most --retries
#                    times (default 2); all attempts stay in runs.tsv ("kept")
#
# Output: a table on stdout; in DIR: summary.tsv (one row per path/cipher),
# runs.tsv (one row per iperf3 or pktgen run), iperf3-*.json, pktgen-*.json
# (sender and receiver of each pps run), meta.txt (machine and tool
# versions), work/ (generated configs and daemon logs), bin/ (built binaries).
#
# A missing tool makes its path "skipped: <reason>" and the run goes on; a path
# that was set up but did not work is "failed: <reason>" (exit status 1).
# Everything the script creates (namespaces, processes, sockets) is removed on
# exit, error or Ctrl-C. Every wait is bounded.
set -u -o pipefail
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DUR=10
REPEAT=3
ONLY=plain,libipsec,wireguard,vpnlab
STREAMS=1
OUT=
WG_GO=
QUIET_WAIT=60
QUIET_MAX=20
VPNLAB_REV=
BASELINE_REV=
QUICK_TIME=
MAX_FOREIGN=20
RETRIES=2
TESTS=tcp,tcp-rev,udp64,udp512,pps64,pps512,ping
PPS_RATE=140000
PPS_STREAMS=1
VARIANTS=
QUICK=
PROFILE=
PINGS=200

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --time) DUR=${2:-}; QUICK_TIME=$DUR; shift ;;
    --time=*) DUR=${1#*=}; QUICK_TIME=$DUR ;;
    --repeat) REPEAT=${2:-}; shift ;;
    --repeat=*) REPEAT=${1#*=} ;;
    --only) ONLY=${2:-}; shift ;;
    --only=*) ONLY=${1#*=} ;;
    -P|--parallel) STREAMS=${2:-}; shift ;;
    -P*) STREAMS=${1#-P} ;;
    --out) OUT=${2:-}; shift ;;
    --out=*) OUT=${1#*=} ;;
    --wireguard-go) WG_GO=${2:-}; shift ;;
    --wireguard-go=*) WG_GO=${1#*=} ;;
    --max-foreign) MAX_FOREIGN=${2:-}; shift ;;
    --max-foreign=*) MAX_FOREIGN=${1#*=} ;;
    --retries) RETRIES=${2:-}; shift ;;
    --retries=*) RETRIES=${1#*=} ;;
    --baseline-rev) BASELINE_REV=${2:-}; shift ;;
    --baseline-rev=*) BASELINE_REV=${1#*=} ;;
    --vpnlab-rev) VPNLAB_REV=${2:-}; shift ;;
    --vpnlab-rev=*) VPNLAB_REV=${1#*=} ;;
    --quiet-wait) QUIET_WAIT=${2:-}; shift ;;
    --quiet-wait=*) QUIET_WAIT=${1#*=} ;;
    --tests) TESTS=${2:-}; shift ;;
    --tests=*) TESTS=${1#*=} ;;
    --pps-rate) PPS_RATE=${2:-}; shift ;;
    --pps-rate=*) PPS_RATE=${1#*=} ;;
    --pps-streams) PPS_STREAMS=${2:-}; shift ;;
    --pps-streams=*) PPS_STREAMS=${1#*=} ;;
    --variants) VARIANTS=${2:-}; shift ;;
    --variants=*) VARIANTS=${1#*=} ;;
    --quick) QUICK=1 ;;
    --profile) PROFILE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-e2e: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -n "$QUICK" ]; then REPEAT=1; DUR=3; QUIET_WAIT=0; RETRIES=0; PINGS=20; fi
[ -n "$QUICK_TIME" ] && DUR=$QUICK_TIME
is_uint() { case $1 in ''|*[!0-9]*) return 1 ;; *) [ "$1" -gt 0 ] ;; esac; }
is_uint "$DUR" || { echo "bench-e2e: --time needs a positive integer" >&2; exit 2; }
is_uint "$REPEAT" || { echo "bench-e2e: --repeat needs a positive integer" >&2; exit 2; }
is_uint "$STREAMS" || { echo "bench-e2e: -P needs a positive integer" >&2; exit 2; }
{ is_uint "$PPS_STREAMS" && [ "$PPS_STREAMS" -le 64 ]; } || { echo "bench-e2e: --pps-streams needs an integer 1..64" >&2; exit 2; }
for _v in "--quiet-wait:$QUIET_WAIT" "--max-foreign:$MAX_FOREIGN" "--retries:$RETRIES" "--pps-rate:$PPS_RATE"; do
  case ${_v#*:} in ''|*[!0-9]*) echo "bench-e2e: ${_v%%:*} needs an integer >= 0" >&2; exit 2 ;; esac
done
ALL_PATHS="plain libipsec wireguard vpnlab"
PATHS=()
IFS=',' read -ra _only <<< "$ONLY"
for p in "${_only[@]}"; do
  case " $ALL_PATHS " in
    *" $p "*) PATHS+=("$p") ;;
    *) echo "bench-e2e: --only: unknown path '$p' (known: ${ALL_PATHS// /,})" >&2; exit 2 ;;
  esac
done
[ ${#PATHS[@]} -gt 0 ] || { echo "bench-e2e: --only selects nothing" >&2; exit 2; }
want() { case " ${PATHS[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
ALL_TESTS="tcp tcp-rev udp64 udp512 pps64 pps512 ping"
TEST_LIST=()
IFS=',' read -ra _tests <<< "$TESTS"
for t in "${_tests[@]}"; do
  case " $ALL_TESTS " in
    *" $t "*) TEST_LIST+=("$t") ;;
    *) echo "bench-e2e: --tests: unknown test '$t' (known: ${ALL_TESTS// /,})" >&2; exit 2 ;;
  esac
done
[ ${#TEST_LIST[@]} -gt 0 ] || { echo "bench-e2e: --tests selects nothing" >&2; exit 2; }
want_test() { case " ${TEST_LIST[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-e2e: needs root (network namespaces, TUN devices, UDP 500/4500)" >&2
  exit 1
fi

# ---- run identity, addresses --------------------------------------------------
RUN_ID=vb$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
NS_ONPREM=$RUN_ID-onprem
NS_CGW=$RUN_ID-cgw
NS_VGW=$RUN_ID-vgw
NS_VPC=$RUN_ID-vpc
ONPREM_IP=10.10.1.10; CGW_LAN=10.10.1.1; ONPREM_NET=10.10.0.0/16
VPC_IP=172.31.1.10;   VGW_LAN=172.31.1.1; VPC_NET=172.31.0.0/16
CGW_OUT=192.0.2.1;    VGW_OUT=192.0.2.2
CGW_IN=169.254.10.2;  VGW_IN=169.254.10.1
IKE_PROPOSAL=aes256-sha256-modp2048
# pre-shared key within AWS's rules (8-64 of A-Z a-z 0-9 . _, not starting with 0)
PSK=vpnlab_bench_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

[ -n "$OUT" ] || OUT=/tmp/vpnlab-bench-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
WORK=$OUT/work
BIN=$OUT/bin
mkdir -p "$WORK" "$BIN"
RUNS=$OUT/runs.tsv
SUMMARY=$OUT/summary.tsv
TCK=$(getconf CLK_TCK)

# log lines go to fd 3, a copy of the original stderr: a trap may run while a
# function's stderr is redirected into a file (e.g. an iperf3 JSON file)
exec 3>&2
log()  { printf '[%s] %s\n' "$(date +%T)" "$*" >&3; }
warn() { log "WARNING: $*"; }
nsx()  { local ns=$1; shift; ip netns exec "$ns" "$@"; }
now_ns() { date +%s%N; }

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds or time is up
wait_for() {
  local end=$(( $(now_ns) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(now_ns)" -ge "$end" ] && return 1
    sleep 0.2
  done
}

# run_bounded SECONDS CMD...: run CMD with a time limit. It runs as a background
# job so that a signal to this script is handled at once (bash defers traps
# while a foreground command runs); the trap then ends it via $CUR_PID.
CUR_PID=
run_bounded() {
  local t=$1 rc; shift
  timeout -k 5 "$t" "$@" 3>&- &
  CUR_PID=$!
  wait "$CUR_PID"; rc=$?
  CUR_PID=
  return $rc
}

# ---- process and namespace bookkeeping -------------------------------------------
declare -A PIDS=()          # name -> pid of a daemon we started (our child)
CREATED_NS=()               # namespaces we created (names unique to this run)
WG_IFS=()                   # wireguard-go interface names (UAPI sockets are global)

# start_bg NAME NS LOG CMD...: start a daemon inside NS (ip netns exec execs CMD,
# so the pid is the daemon's own)
start_bg() {
  local name=$1 ns=$2 logf=$3; shift 3
  ip netns exec "$ns" "$@" > "$logf" 2>&1 3>&- &
  PIDS[$name]=$!
}

alive() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]; }

stop_bg() {
  local name=$1 pid
  pid=${PIDS[$name]:-}
  [ -n "$pid" ] || return 0
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
  fi
  wait "$pid" 2>/dev/null
  unset "PIDS[$name]"
}

# shellcheck disable=SC2317  # only reached through the EXIT trap
cleanup() {
  local rc=$? name ns pids p
  trap - EXIT INT TERM
  [ -n "$CUR_PID" ] && kill -TERM "$CUR_PID" 2>/dev/null
  for name in "${!PIDS[@]}"; do stop_bg "$name"; done
  for ns in "${CREATED_NS[@]}"; do
    [ -e "/run/netns/$ns" ] || continue
    # the names are unique to this run: whatever still runs in them is ours
    pids=$(ip netns pids "$ns" 2>/dev/null)
    if [ -n "$pids" ]; then
      for p in $pids; do kill -TERM "$p" 2>/dev/null; done
      for _ in $(seq 1 25); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.2; done
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    fi
    ip netns del "$ns" 2>/dev/null || warn "could not delete namespace $ns"
  done
  for name in "${WG_IFS[@]}"; do rm -f "/var/run/wireguard/$name.sock"; done
  rm -f "/run/vpnlab/$RUN_ID-cgw.sock" "/run/vpnlab/$RUN_ID-vgw.sock"
  [ ${#CREATED_NS[@]} -gt 0 ] && log "cleaned up (namespaces $RUN_ID-*, processes)"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- results bookkeeping ---------------------------------------------------------
declare -A STATUS=()        # "path variant" -> ok | skipped: ... | failed: ...
declare -A WIRE=()          # "path variant" -> what the cgw sent on its outside link
declare -A GWNAME=()        # "path variant" -> names of the measured gateway processes
declare -A XSTATUS=()       # "path variant test" -> status of the tests other than tcp
ORDER=()
add_row() { ORDER+=("$1 $2"); STATUS["$1 $2"]=$3; }
skip_path() {   # skip_path PATH "VARIANTS" REASON
  local v
  for v in $2; do add_row "$1" "$v" "skipped: $3"; done
  log "$1: skipped: $3"
}
all_variants_of() {
  case $1 in
    plain) echo "-" ;;
    libipsec) echo "aes128gcm16 aes128-sha256" ;;
    wireguard) echo "chacha20poly1305" ;;
    vpnlab) echo "esp-aes128gcm16 esp-aes128-sha256 esp-aes128gcm16-w2 esp-aes128-sha256-w2${BASELINE_REV:+ esp-aes128gcm16-base esp-aes128-sha256-base} esp-aes128gcm16-raw esp-aes128-sha256-raw ah-sha256-raw" ;;
  esac
}
variants_of() {   # all_variants_of, filtered by --variants (plain's "-" always stays)
  local v out=()
  for v in $(all_variants_of "$1"); do
    if [ -z "$VARIANTS" ] || [ "$v" = - ] || [[ ",$VARIANTS," == *",$v,"* ]]; then out+=("$v"); fi
  done
  # vpnlab UDP variants with any helper count, e.g. esp-aes128-sha256-w1 (VPNLAB_CRYPTO_WORKERS=1)
  if [ "$1" = vpnlab ] && [ -n "$VARIANTS" ]; then
    IFS=',' read -ra _req <<< "$VARIANTS"
    for v in "${_req[@]}"; do
      case $v in esp-aes128gcm16-w[0-9]|esp-aes128-sha256-w[0-9])
        [[ " ${out[*]} " == *" $v "* ]] || out+=("$v") ;;
      esac
    done
  fi
  echo "${out[*]}"
}
printf 'path\tvariant\tstreams\trep\tseconds\tmbit_s\tretransmits\tcgw_gw_cpu_pct\tvgw_gw_cpu_pct\tmachine_cpu_pct\tiperf3_sender_cpu_pct\tiperf3_receiver_cpu_pct\tbytes_sent\terror\tjson\tbusy_before_pct\tforeign_cpu_pct\tattempt\tkept\ttest\tpackets_per_s\tudp_loss_pct\toffered_packets_per_s\tkernel_drops\n' > "$RUNS"

# ---- dependencies --------------------------------------------------------------
CHARON=/usr/lib/ipsec/charon
PLUGDIR=/usr/lib/ipsec/plugins
# plugin order as Debian's default (aesni first; openssl before gmp and hmac)
CHARON_PLUGINS="aesni aes sha2 sha1 random nonce x509 pubkey pkcs1 pem openssl gmp hmac kdf gcm kernel-libipsec kernel-netlink socket-default vici"

missing_pkgs() {
  local m=()
  command -v iperf3 >/dev/null || m+=(iperf3)
  command -v jq >/dev/null || m+=(jq)
  if want wireguard; then command -v wg >/dev/null || m+=(wireguard-tools); fi
  if want libipsec; then
    [ -x "$CHARON" ] || m+=(strongswan-charon)
    command -v swanctl >/dev/null || m+=(strongswan-swanctl)
    [ -e "$PLUGDIR/libstrongswan-kernel-libipsec.so" ] || m+=(libcharon-extra-plugins)
    [ -e "$PLUGDIR/libstrongswan-aesni.so" ] && [ -e "$PLUGDIR/libstrongswan-gcm.so" ] || m+=(libstrongswan-standard-plugins)
    [ -e "$PLUGDIR/libstrongswan-kernel-libipsec.so" ] || m+=(libstrongswan-extra-plugins)
  fi
  echo "${m[*]}"
}
MISSING=$(missing_pkgs)
if [ -n "$MISSING" ]; then
  log "installing missing Debian packages: $MISSING (apt-get install -y --no-install-recommends; log in $WORK/apt.log)"
  # shellcheck disable=SC2086  # word splitting of the package list is wanted
  if ! DEBIAN_FRONTEND=noninteractive run_bounded 600 apt-get install -y --no-install-recommends $MISSING > "$WORK/apt.log" 2>&1; then
    log "apt-get install failed; trying apt-get update first"
    # shellcheck disable=SC2086
    { DEBIAN_FRONTEND=noninteractive run_bounded 300 apt-get update \
        && DEBIAN_FRONTEND=noninteractive run_bounded 600 apt-get install -y --no-install-recommends $MISSING; } >> "$WORK/apt.log" 2>&1 \
      || warn "could not install all of: $MISSING (see $WORK/apt.log); the paths that need them are skipped"
  fi
fi
command -v iperf3 >/dev/null || { log "ERROR: iperf3 is missing and could not be installed"; exit 1; }
command -v jq >/dev/null || { log "ERROR: jq is missing and could not be installed"; exit 1; }

# ---- topology ----------------------------------------------------------------
topo_up() {
  local ns dev
  for ns in "$NS_ONPREM" "$NS_CGW" "$NS_VGW" "$NS_VPC"; do
    [ -e "/run/netns/$ns" ] && { log "ERROR: namespace $ns already exists"; return 1; }
    ip netns add "$ns" || return 1
    CREATED_NS+=("$ns")
    OUR_NETNS+="net:[$(stat -L -c %i "/run/netns/$ns")] "
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  # the veths are born inside the namespaces: nothing appears in the root namespace
  ip -n "$NS_ONPREM" link add eth0 type veth peer name lan0 netns "$NS_CGW" || return 1
  ip -n "$NS_CGW" link add wan0 type veth peer name wan0 netns "$NS_VGW" || return 1
  ip -n "$NS_VGW" link add lan0 type veth peer name eth0 netns "$NS_VPC" || return 1
  ip -n "$NS_ONPREM" addr add "$ONPREM_IP/24" dev eth0
  ip -n "$NS_CGW" addr add "$CGW_LAN/24" dev lan0
  ip -n "$NS_CGW" addr add "$CGW_OUT/24" dev wan0
  ip -n "$NS_VGW" addr add "$VGW_OUT/24" dev wan0
  ip -n "$NS_VGW" addr add "$VGW_LAN/24" dev lan0
  ip -n "$NS_VPC" addr add "$VPC_IP/24" dev eth0
  for ns in "$NS_ONPREM" "$NS_CGW" "$NS_VGW" "$NS_VPC"; do
    for dev in eth0 lan0 wan0; do ip -n "$ns" link set "$dev" up 2>/dev/null; done
  done
  for ns in "$NS_CGW" "$NS_VGW"; do
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  done
  ip -n "$NS_ONPREM" route add default via "$CGW_LAN"
  ip -n "$NS_VPC" route add default via "$VGW_LAN"
  # safety nets: the protected prefixes never leave a gateway in clear text
  # unless a path adds a more specific (lower metric) route on purpose
  ip -n "$NS_CGW" route add blackhole "$VPC_NET" metric 4000
  ip -n "$NS_VGW" route add blackhole "$ONPREM_NET" metric 4000
  nsx "$NS_ONPREM" ping -c1 -W2 "$CGW_LAN" >/dev/null || { log "ERROR: onprem -> cgw ping failed"; return 1; }
  nsx "$NS_CGW" ping -c1 -W2 "$VGW_OUT" >/dev/null || { log "ERROR: cgw -> vgw ping failed"; return 1; }
  nsx "$NS_VPC" ping -c1 -W2 "$VGW_LAN" >/dev/null || { log "ERROR: vpc -> vgw ping failed"; return 1; }
  log "topology up: namespaces $RUN_ID-{onprem,cgw,vgw,vpc}"
}

iperf_server_up() {
  stop_bg iperf3-server
  start_bg iperf3-server "$NS_VPC" "$WORK/iperf3-server-$1.log" iperf3 -s -B "$VPC_IP"
  wait_for 5 sh -c "ip netns exec '$NS_VPC' ss -ltnH 'sport = :5201' | grep -q ." \
    || { log "iperf3 server did not start (see $WORK/iperf3-server-$1.log)"; return 1; }
}

reach() { wait_for "$1" nsx "$NS_ONPREM" ping -c1 -W1 "$VPC_IP"; }

# counters of what the cgw itself sends out of its outside link (the tunnel
# packets of every VPN path: ESP-in-UDP 4500, WireGuard 51820, raw ESP)
# UDP "InDatagrams RcvbufErrors" of a namespace (/proc/net/snmp is per netns)
udp_snmp() {
  nsx "$1" cat /proc/net/snmp 2>/dev/null | awk '/^Udp:/ { if (!h) { for (i = 2; i <= NF; i++) k[i] = $i; h = 1 }
    else { for (i = 2; i <= NF; i++) v[k[i]] = $i } } END { print v["InDatagrams"] + 0, v["RcvbufErrors"] + 0 }'
}
UDP0_CGW=; UDP0_VGW=
wire_on() {
  UDP0_CGW=$(udp_snmp "$NS_CGW"); UDP0_VGW=$(udp_snmp "$NS_VGW")
  nsx "$NS_CGW" nft delete table ip vbench 2>/dev/null
  nsx "$NS_CGW" nft -f - <<EOF
table ip vbench {
  counter udp4500 { }
  counter udp51820 { }
  counter espraw { }
  counter ahraw { }
  counter other { }
  chain out {
    type filter hook output priority 0; policy accept;
    oifname != "wan0" accept
    udp dport 4500 counter name "udp4500" accept
    udp dport 51820 counter name "udp51820" accept
    meta l4proto esp counter name "espraw" accept
    meta l4proto ah counter name "ahraw" accept
    counter name "other"
  }
}
EOF
}
wire_read() {   # -> "udp4500 N pkts M MB; UDP rcvbuf drops ..." for this variant
  local c v
  printf '%s' "$(nsx "$NS_CGW" nft -j list counters table ip vbench 2>/dev/null \
    | jq -r '[.nftables[] | select(.counter) | .counter | select(.bytes > 0)
              | "\(.name) \(.packets) pkts \(.bytes / 1e6 | floor) MB"] | join(", ")')"
  nsx "$NS_CGW" nft delete table ip vbench 2>/dev/null
  c=$(udp_snmp "$NS_CGW"); v=$(udp_snmp "$NS_VGW")
  echo "$UDP0_CGW $c $UDP0_VGW $v" | awk '{ printf "; UDP socket drops (RcvbufErrors) vgw %d of %d datagrams in, cgw %d of %d\n", $8-$6, $7-$5, $4-$2, $3-$1 }'
}

# ---- CPU accounting ----------------------------------------------------------------
proc_ticks() {   # utime+stime of all threads of PID (empty if no such process)
  local line rest f
  [ -n "${1:-}" ] && read -r line < "/proc/$1/stat" 2>/dev/null || return 0
  rest=${line##*) }             # the command name may contain spaces and ')'
  read -ra f <<< "$rest"        # f[0] is field 3 (state): utime = f[11], stime = f[12]
  echo $(( f[11] + f[12] ))
}
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
pct() {   # pct T0 T1 SECONDS -> % of one core (empty in, "-" out)
  if [ -z "$1" ] || [ -z "$2" ]; then echo -; return; fi
  awk -v a="$1" -v b="$2" -v t="$TCK" -v s="$3" 'BEGIN{printf "%.0f", (b-a)/t/s*100}'
}

# busy share of all cores over one second
busy_1s() {
  local a b
  a=$(machine_ticks); sleep 1; b=$(machine_ticks)
  echo "$a $b" | awk '{ if ($4 > $2) printf "%.0f", ($3-$1)/($4-$2)*100; else print 0 }'
}
# wait (bounded) until the machine is quiet; prints the last busy share
quiet() {
  local end=$(( $(now_ns) + QUIET_WAIT * 1000000000 )) b
  b=$(busy_1s)
  while [ "$b" -ge "$QUIET_MAX" ] && [ "$(now_ns)" -lt "$end" ]; do b=$(busy_1s); done
  echo "$b"
}
# "pid ticks" for every user process outside this run's namespaces, except this
# script and its direct children (ticks = utime+stime+cutime+cstime: what a
# process and its reaped children used)
OUR_NETNS=
foreign_sample() {
  find /proc/[0-9]*/ns/net -maxdepth 0 -printf '%h %l\n' 2>/dev/null \
    | awk -v self="$$" -v ours="$OUR_NETNS" '
      BEGIN { n = split(ours, o, " "); for (i = 1; i <= n; i++) skip[o[i]] = 1 }
      { split($1, a, "/"); pid = a[3]
        if (pid == self || ($2 in skip)) next
        f = "/proc/" pid "/stat"; line = ""
        if ((getline line < f) <= 0) { close(f); next }
        close(f)
        sub(/^.*\) /, "", line); split(line, s, " ")
        # s[2] ppid, s[7] flags, s[12..15] utime stime cutime cstime
        if (s[2] == self) next
        if (int(s[7] / 2097152) % 2) next          # PF_KTHREAD: kernel thread
        print pid, s[12] + s[13] + s[14] + s[15] }'
}
# foreign_pct FILE0 FILE1 SECONDS CAP_PCT: CPU of those processes during the
# window, % of one core. A process that ends is added to its parent's cutime
# with its whole life, so the start ticks of processes that are gone are taken
# off again; the result is kept within 0..CAP (what the machine did in total).
foreign_pct() {
  awk -v t="$TCK" -v s="$3" -v cap="$4" 'NR == FNR { a[$1] = $2; next }
    { seen[$1] = 1; sum += ($1 in a) ? $2 - a[$1] : $2 }
    END { for (p in a) if (!(p in seen)) sum -= a[p]
          v = sum / t / s * 100; if (v < 0) v = 0; if (cap != "" && cap != "-" && v > cap) v = cap
          printf "%.0f", v }' "$1" "$2"
}

# ---- small packets: pktgen (internal/pktgen), built once per run ------------------
PKTGEN=; PKTGEN_ERR=
PPS_PORT=5301
build_pktgen() {
  if (cd "$REPO" && run_bounded 300 go build -o "$BIN/pktgen" ./internal/pktgen/cmd/pktgen) > "$WORK/go-build-pktgen.log" 2>&1; then
    PKTGEN=$BIN/pktgen
  else
    PKTGEN_ERR="pktgen did not build (see $WORK/go-build-pktgen.log)"; warn "$PKTGEN_ERR"
  fi
}

# pps_recv_up FILE: a pktgen receiver in vpc (JSON result into FILE), bound
pps_recv_up() {
  stop_bg pktgen-recv
  start_bg pktgen-recv "$NS_VPC" "$1" "$PKTGEN" recv -listen "$VPC_IP:$PPS_PORT" -duration "$((DUR + 30))s" -idle 2s
  wait_for 5 sh -c "ip netns exec '$NS_VPC' ss -lunH 'sport = :$PPS_PORT' | grep -q ."
}

# pps_send TEST FILE: the sender of TEST (ppsSIZE: as fast as possible for DUR s,
# at most 2,000,000 packets/s x DUR; ppsSIZE@RATE: RATE x DUR packets at RATE/s)
pps_send() {
  local size=${1%@*} rate=0 count dur=$DUR
  size=${size#pps}
  case $1 in *@*) rate=${1#*@} ;; esac
  if [ "$rate" -gt 0 ]; then count=$((rate * DUR)); dur=$((DUR + 1)); else count=$((2000000 * DUR)); fi
  [ "$count" -le 100000000 ] || count=100000000
  run_bounded $((DUR + 30)) ip netns exec "$NS_ONPREM" "$PKTGEN" send -dst "$VPC_IP:$PPS_PORT" \
    -size "$size" -count "$count" -duration "${dur}s" -rate "$rate" -streams "$PPS_STREAMS" > "$2" 2> "${2%.json}.err"
  local rc=$?
  [ -s "${2%.json}.err" ] || rm -f "${2%.json}.err"
  return $rc
}

# pps_recv_done: the receiver ends 2 s after the last packet; else it is stopped
# (SIGTERM: it still prints its counts)
pps_recv_done() {
  local pid=${PIDS[pktgen-recv]:-} i
  [ -n "$pid" ] || return 0
  for i in $(seq 1 30); do alive "$pid" || break; sleep 0.2; done
  stop_bg pktgen-recv
}

# pps_vals SEND_JSON RECV_JSON SEND_RC -> the 10 tab-separated values measure
# reads (Mbit/s of received UDP payload, retransmits, two CPU columns, bytes sent,
# error, received packets/s, loss %, offered packets/s, kernel drops)
pps_vals() {
  if [ "$3" -ne 0 ] || ! jq -e . "$1" > /dev/null 2>&1; then
    printf '0\tn/a\t-\t-\t0\tpktgen send exit %s: %s\t-\t-\t-\t-' "$3" "$(head -c 200 "${1%.json}.err" 2>/dev/null | tr '\t\n' '  ')"; return
  fi
  if ! jq -e . "$2" > /dev/null 2>&1; then
    printf '0\tn/a\t-\t-\t0\tpktgen recv: no result: %s\t-\t-\t-\t-' "$(head -c 200 "$2" 2>/dev/null | tr '\t\n' '  ')"; return
  fi
  jq -rs '.[0] as $s | .[1] as $r | [
      (if $r.seconds > 0 then ($r.bytes * 8 / $r.seconds / 1e6 * 10 | round / 10) else 0 end),
      "n/a", "-", "-", $s.bytes,
      (if $r.packets == 0 then "pktgen recv: nothing received" else "" end),
      ($r.packets_per_s | round),
      (if $s.packets > 0 then (($s.packets - $r.packets) / $s.packets * 100 * 100 | round / 100) else "-" end),
      ($s.packets_per_s | round), $r.kernel_drops ] | @tsv' "$1" "$2"
}

# measure PATH VARIANT CGW_PID VGW_PID [TEST]: REPEAT runs of TEST (iperf3: tcp,
# tcp-rev, udp64, udp512; pktgen: pps64, pps512, pps64@RATE, pps512@RATE; default
# tcp) -> rows in runs.tsv.
# A run during which processes outside this run used more than MAX_FOREIGN % of
# a core is repeated (at most RETRIES times); every attempt is kept in runs.tsv,
# column "kept" says which ones the medians use (the last attempt always is).
measure() {
  local path=$1 var=$2 pc=$3 pv=$4 test=${5:-tcp} rep attempt json c0 v0 c1 v1 m0 m1 t0 t1 secs rc vals ok=0 err busy fpct kept
  local f0=$WORK/foreign.0 f1=$WORK/foreign.1 streams=$STREAMS args=() key=$1\ $2 tool=iperf3 base
  case $test in
    tcp-rev) args=(-R) ;;
    udp64) args=(-u -b 0 -l 64); streams=1 ;;
    udp512) args=(-u -b 0 -l 512); streams=1 ;;
    pps*) tool=pktgen; streams=$PPS_STREAMS ;;
  esac
  [ "$test" = tcp ] || key+=" $test"
  if [ "$tool" = pktgen ] && [ -z "$PKTGEN" ]; then XSTATUS["$key"]="failed: $PKTGEN_ERR"; return 1; fi
  for rep in $(seq 1 "$REPEAT"); do
    for attempt in $(seq 0 "$RETRIES"); do
      busy=-
      if [ "$QUIET_WAIT" -gt 0 ]; then
        busy=$(quiet)
        [ "$busy" -ge "$QUIET_MAX" ] && warn "machine still ${busy}% busy after waiting ${QUIET_WAIT}s for quiet"
      fi
      foreign_sample > "$f0"
      base=$OUT/$tool-$path
      [ "$var" = - ] || base+=-${var//[^A-Za-z0-9_.-]/_}
      [ "$test" = tcp ] || base+=-${test//@/-at}
      base+=-P$streams-r$rep
      [ "$attempt" -gt 0 ] && base+=-a$attempt
      json=$base.json
      [ "$tool" = pktgen ] && { json=$base-send.json; pps_recv_up "$base-recv.json" || warn "pktgen receiver not listening (see $base-recv.json)"; }
      c0=$(proc_ticks "$pc"); v0=$(proc_ticks "$pv"); m0=$(machine_ticks); t0=$(now_ns)
      if [ "$tool" = pktgen ]; then
        pps_send "$test" "$json"
      else
        run_bounded $((DUR + 30)) ip netns exec "$NS_ONPREM" \
          iperf3 -c "$VPC_IP" -t "$DUR" -P "$streams" "${args[@]}" -J --connect-timeout 5000 > "$json" 2>&1
      fi
      rc=$?
      t1=$(now_ns); c1=$(proc_ticks "$pc"); v1=$(proc_ticks "$pv"); m1=$(machine_ticks)
      foreign_sample > "$f1"
      secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", (b-a)/1e9}')
      fpct=$(foreign_pct "$f0" "$f1" "$secs" "$(echo "$m0 $m1" | awk -v n="$(nproc)" '{ if ($4 > $2) printf "%.0f", ($3-$1)/($4-$2)*100*n; else print "-" }')")
      if [ "$tool" = pktgen ]; then pps_recv_done; vals=$(pps_vals "$json" "$base-recv.json" "$rc")
      else vals=$(jq -r '[ ((.end.sum_received.bits_per_second // 0) / 1e6 * 10 | round / 10),
                      (.end.sum_sent.retransmits // "n/a"),
                      ((.end.cpu_utilization_percent.host_total // 0) | round),
                      ((.end.cpu_utilization_percent.remote_total // 0) | round),
                      (.end.sum_sent.bytes // 0),
                      (.error // ""),
                      (if .end.sum_received.lost_packets == null then "-" else
                         ((.end.sum_received.packets - .end.sum_received.lost_packets) / (.end.sum_received.seconds // 1) | round) end),
                      (.end.sum_received.lost_percent // "-" | if type == "number" then (. * 100 | round / 100) else . end), "-", "-" ] | @tsv' "$json" 2>/dev/null) \
        || vals=$(printf '0\tn/a\t0\t0\t0\tiperf3 exit %s, no JSON\t-\t-\t-\t-' "$rc"); fi
      err=$(cut -f6 <<< "$vals")
      if [ -n "$err" ] || [ "$(cut -f1 <<< "$vals")" = 0 ]; then
        [ -n "$err" ] || err="$tool exit $rc"
        vals=$(awk -F'\t' -v OFS='\t' -v e="$err" '{$1="n/a"; $6=e; print}' <<< "$vals")
      fi
      kept=yes
      if [ "$attempt" -lt "$RETRIES" ] && [ "$fpct" -gt "$MAX_FOREIGN" ]; then kept=no; fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$var" "$streams" "$rep" "$secs" \
        "$(cut -f1 <<< "$vals")" "$(cut -f2 <<< "$vals")" \
        "$(pct "$c0" "$c1" "$secs")" "$(pct "$v0" "$v1" "$secs")" \
        "$(echo "$m0 $m1" | awk '{ if ($4 > $2) printf "%.0f", ($3-$1)/($4-$2)*100; else print "-" }')" \
        "$(cut -f3 <<< "$vals")" "$(cut -f4 <<< "$vals")" "$(cut -f5 <<< "$vals")" "$(cut -f6 <<< "$vals")" \
        "$(basename "$json")" "$busy" "$fpct" "$attempt" "$kept" "$test" "$(cut -f7 <<< "$vals")" "$(cut -f8 <<< "$vals")" \
        "$(cut -f9 <<< "$vals")" "$(cut -f10 <<< "$vals")" >> "$RUNS"
      log "  $path $var $test run $rep/$REPEAT$([ "$attempt" -gt 0 ] && echo " (retry $attempt)"): $(tail -1 "$RUNS" | awk -F'\t' '{printf "%s Mbit/s%s, retr %s, gw CPU cgw %s%% vgw %s%%, machine %s%%, foreign %s%% (busy before %s%%)%s", $6, ($23 != "-" ? ", offered " $23 " packets/s" : "") ($21 != "-" ? ", " $21 " packets/s, loss " $22 "%" : "") ($24 != "-" ? ", kernel drops " $24 : ""), $7, $8, $9, $10, $17, $16, ($14 != "" ? ", error: " $14 : "")}')$([ "$kept" = no ] && echo " -> disturbed (foreign > $MAX_FOREIGN%), again")"
      if [ -n "$pc" ] && ! alive "$pc"; then STATUS["$path $var"]="failed: cgw-side process exited during the run ($test)"; rm -f "$f0" "$f1"; return 1; fi
      if [ -n "$pv" ] && ! alive "$pv"; then STATUS["$path $var"]="failed: vgw-side process exited during the run ($test)"; rm -f "$f0" "$f1"; return 1; fi
      [ "$kept" = yes ] && break
    done
    [ -z "$err" ] && ok=$((ok + 1))
  done
  rm -f "$f0" "$f1"
  if [ "$ok" -eq 0 ]; then XSTATUS["$key"]="failed: every $tool run failed ($err)"; [ "$test" = tcp ] && STATUS["$path $var"]=${XSTATUS["$key"]}; return 1; fi
  [ "$ok" -lt "$REPEAT" ] && XSTATUS["$key"]="ok ($ok of $REPEAT runs)" && [ "$test" = tcp ] && STATUS["$path $var"]=${XSTATUS["$key"]}
  return 0
}

# ping_rtt PATH VARIANT: PINGS pings onprem -> vpc, 10 ms apart, through the
# idle path -> PING["PATH VARIANT"] = "min/avg/max/mdev ms, loss"
declare -A PING=()
ping_rtt() {
  local out=$WORK/ping-$1-${2//[^A-Za-z0-9_.-]/_}.txt
  run_bounded $((PINGS / 50 + 15)) ip netns exec "$NS_ONPREM" ping -q -n -c "$PINGS" -i 0.01 -W 1 "$VPC_IP" > "$out" 2>&1
  PING["$1 $2"]=$(awk '/packet loss/ { for (i = 1; i <= NF; i++) if ($i ~ /%$/) l = $i }
    /^rtt|^round-trip/ { split($4, r, "/"); printf "%.3f/%.3f/%.3f/%.3f ms, ", r[1], r[2], r[3], r[4] }
    END { printf "loss %s", (l == "" ? "?" : l) }' "$out")
  log "  $1 $2 ping: ${PING["$1 $2"]} ($PINGS pings)"
}

# measure_all PATH VARIANT CGW_PID VGW_PID: every test of --tests; the ping
# first, while the path is idle
measure_all() {
  local t
  want_test ping && ping_rtt "$1" "$2"
  for t in tcp tcp-rev udp64 udp512 pps64 pps512; do
    want_test "$t" || continue
    measure "$1" "$2" "$3" "$4" "$t" || [ "$t" != tcp ] || return 1
    case $t in pps*) [ "$PPS_RATE" -eq 0 ] || measure "$1" "$2" "$3" "$4" "$t@$PPS_RATE" ;; esac
  done
}

# ---- path 1: plain veth routing ----------------------------------------------------
path_plain() {
  add_row plain - ok
  GWNAME["plain -"]="-"
  ip -n "$NS_CGW" route add "$VPC_NET" via "$VGW_OUT" metric 10
  ip -n "$NS_VGW" route add "$ONPREM_NET" via "$CGW_OUT" metric 10
  if ! reach 5; then STATUS["plain -"]="failed: no ping onprem -> vpc over plain routing"
  elif iperf_server_up plain; then measure_all plain - "" ""
  else STATUS["plain -"]="failed: iperf3 server did not start"; fi
  stop_bg iperf3-server
  ip -n "$NS_CGW" route del "$VPC_NET" via "$VGW_OUT" metric 10 2>/dev/null
  ip -n "$NS_VGW" route del "$ONPREM_NET" via "$CGW_OUT" metric 10 2>/dev/null
}

# ---- path 2: strongSwan charon + kernel-libipsec --------------------------------
write_strongswan_conf() {   # DIR
  local plugins="" p
  for p in $CHARON_PLUGINS; do [ -e "$PLUGDIR/libstrongswan-$p.so" ] && plugins+="$p "; done
  cat > "$1/strongswan.conf" <<EOF
# generated by scripts/bench-e2e.sh
charon {
  # kernel-libipsec before kernel-netlink: the first kernel-ipsec backend wins,
  # kernel-netlink then only handles addresses and routes
  load = ${plugins% }
  port = 500
  port_nat_t = 4500
  install_routes = yes
  routing_table = 220
  routing_table_prio = 220
  install_virtual_ip = no
  plugins {
    vici {
      socket = unix://$1/run/charon.vici
    }
  }
  filelog {
    bench {
      path = $1/charon.log
      time_format = %H:%M:%S
      time_add_ms = yes
      ike_name = yes
      flush_line = yes
      default = 1
      ike = 2
      knl = 2
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
}
EOF
}

write_swanctl_conf() {   # DIR SIDE ESP
  local dir=$1 side=$2 esp=$3 la ra lts rts
  if [ "$side" = cgw ]; then la=$CGW_OUT; ra=$VGW_OUT; lts=$ONPREM_NET; rts=$VPC_NET
  else la=$VGW_OUT; ra=$CGW_OUT; lts=$VPC_NET; rts=$ONPREM_NET; fi
  cat > "$dir/swanctl.conf" <<EOF
# generated by scripts/bench-e2e.sh ($side)
connections {
  bench {
    version = 1
    aggressive = no
    local_addrs = $la
    remote_addrs = $ra
    proposals = $IKE_PROPOSAL
    encap = yes
    rekey_time = 0s
    local {
      auth = psk
      id = $la
    }
    remote {
      auth = psk
      id = $ra
    }
    children {
      net {
        mode = tunnel
        local_ts = $lts
        remote_ts = $rts
        esp_proposals = $esp
        rekey_time = 0s
        life_time = 3600s
      }
    }
  }
}
secrets {
  ike-bench {
    id-cgw = $CGW_OUT
    id-vgw = $VGW_OUT
    secret = "$PSK"
  }
}
EOF
}

# swanctl against one charon's vici socket (the command must come before --uri)
vici() { echo "unix://$1/run/charon.vici"; }

start_charon() {   # SIDE NS DIR ESP
  local side=$1 ns=$2 dir=$3 esp=$4
  mkdir -p "$dir/run"
  write_strongswan_conf "$dir"
  write_swanctl_conf "$dir" "$side" "$esp"
  # charon's pid file and stroke socket are compiled-in paths under /run: give
  # each charon its own /run (ip netns exec runs it in a private mount namespace)
  # shellcheck disable=SC2016  # $1/$2 are expanded by that sh, not here
  STRONGSWAN_CONF=$dir/strongswan.conf start_bg "charon-$side" "$ns" "$dir/charon.stdout" \
    /bin/sh -c 'mount --bind "$1" /run && exec "$2" --use-syslog' sh "$dir/run" "$CHARON"
  wait_for 10 test -S "$dir/run/charon.vici" || { log "charon ($side) did not come up: $(tail -3 "$dir/charon.log" "$dir/charon.stdout" 2>/dev/null | tr '\n' ' ')"; return 1; }
  wait_for 5 ip -n "$ns" link show ipsec0 || { log "charon ($side) created no TUN device"; return 1; }
  run_bounded 20 swanctl --load-all --uri "$(vici "$dir")" --file "$dir/swanctl.conf" > "$dir/swanctl-load.txt" 2>&1 \
    || { log "swanctl --load-all failed ($side): $(tail -2 "$dir/swanctl-load.txt" | tr '\n' ' ')"; return 1; }
}

stop_charons() {
  stop_bg charon-cgw; stop_bg charon-vgw
  wait_for 5 sh -c "! ip -n '$NS_CGW' link show ipsec0 && ! ip -n '$NS_VGW' link show ipsec0" \
    || warn "an ipsec0 TUN device outlived its charon"
}

path_libipsec() {
  local esp var dir reason=
  [ -x "$CHARON" ] || reason="$CHARON missing (apt-get install strongswan-charon)"
  [ -n "$reason" ] || command -v swanctl >/dev/null || reason="swanctl missing (apt-get install strongswan-swanctl)"
  [ -n "$reason" ] || [ -e "$PLUGDIR/libstrongswan-kernel-libipsec.so" ] || reason="kernel-libipsec plugin missing (apt-get install libcharon-extra-plugins)"
  [ -n "$reason" ] || [ -c /dev/net/tun ] || reason="/dev/net/tun missing"
  if [ -n "$reason" ]; then skip_path libipsec "$(variants_of libipsec)" "$reason"; return; fi
  for var in $(variants_of libipsec); do
    esp=$var-modp2048
    add_row libipsec "$var" ok
    GWNAME["libipsec $var"]="charon / charon"
    dir=$WORK/libipsec-$var
    mkdir -p "$dir"
    log "libipsec $var: IKEv1 main mode PSK $IKE_PROPOSAL, ESP $esp (ESP-in-UDP)"
    if ! start_charon vgw "$NS_VGW" "$dir/vgw" "$esp" || ! start_charon cgw "$NS_CGW" "$dir/cgw" "$esp"; then
      STATUS["libipsec $var"]="failed: charon did not start (logs in $dir)"
    elif ! run_bounded 40 swanctl --initiate --uri "$(vici "$dir/cgw")" --child net --timeout 30 > "$dir/initiate.txt" 2>&1; then
      STATUS["libipsec $var"]="failed: swanctl --initiate: $(grep -v '^\[' "$dir/initiate.txt" | tail -1)"
    elif ! reach 10; then
      STATUS["libipsec $var"]="failed: tunnel up but no ping onprem -> vpc"
    elif ! iperf_server_up "libipsec-$var"; then
      STATUS["libipsec $var"]="failed: iperf3 server did not start"
    else
      wire_on
      measure_all libipsec "$var" "${PIDS[charon-cgw]}" "${PIDS[charon-vgw]}"
      WIRE["libipsec $var"]=$(wire_read)
      { run_bounded 10 swanctl --list-sas --uri "$(vici "$dir/cgw")"
        ip -n "$NS_CGW" -s link show ipsec0; ip -n "$NS_VGW" -s link show ipsec0
        echo "== UDP counters cgw"; nsx "$NS_CGW" nstat -asz 2>/dev/null | grep -E '^Udp(In|Out|Rcvbuf|Sndbuf)'
        echo "== UDP counters vgw"; nsx "$NS_VGW" nstat -asz 2>/dev/null | grep -E '^Udp(In|Out|Rcvbuf|Sndbuf)'
      } > "$dir/after.txt" 2>&1
    fi
    stop_bg iperf3-server
    stop_charons
  done
}

# ---- path 3: wireguard-go ---------------------------------------------------------
WG_DESC=
WG_REASON=
find_wireguard_go() {   # sets WG_GO and WG_DESC, or WG_REASON and returns 1
  local modv
  if [ -n "$WG_GO" ]; then
    [ -x "$WG_GO" ] || { WG_REASON="--wireguard-go $WG_GO is not executable"; return 1; }
  elif command -v go >/dev/null; then
    log "wireguard: GOBIN=$BIN go install golang.zx2c4.com/wireguard@latest (log in $WORK/go-install-wireguard.log)"
    if (cd / && GOBIN=$BIN run_bounded 300 go install golang.zx2c4.com/wireguard@latest) > "$WORK/go-install-wireguard.log" 2>&1 \
        && [ -x "$BIN/wireguard" ]; then
      WG_GO=$BIN/wireguard
    else
      warn "go install golang.zx2c4.com/wireguard@latest failed: $(tail -1 "$WORK/go-install-wireguard.log")"
    fi
  fi
  if [ -z "$WG_GO" ] && command -v wireguard-go >/dev/null; then
    WG_GO=$(command -v wireguard-go)
    warn "falling back to $WG_GO (Debian's build: old, without the 2023 offload/batching work)"
  fi
  [ -n "$WG_GO" ] || { WG_REASON="no wireguard-go: go install failed and Debian's wireguard-go is not installed"; return 1; }
  WG_DESC="$("$WG_GO" --version 2>&1 | head -1)"
  modv=$(go version -m "$WG_GO" 2>/dev/null | awk '$1 == "mod" {print $3}')
  [ -n "$modv" ] && WG_DESC+=" (module $modv, built with $(go version "$WG_GO" 2>/dev/null | awk '{print $2}'))"
  case $WG_GO in
    "$BIN"/*) WG_DESC+=", via go install @latest" ;;
    /usr/*) WG_DESC+=", Debian package $(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null)" ;;
  esac
  return 0
}

path_wireguard() {
  local dir ifc ifv var=chacha20poly1305
  if ! command -v wg >/dev/null; then skip_path wireguard "$var" "wg missing (apt-get install wireguard-tools)"; return; fi
  if [ ! -c /dev/net/tun ]; then skip_path wireguard "$var" "/dev/net/tun missing"; return; fi
  if ! find_wireguard_go; then skip_path wireguard "$var" "$WG_REASON"; return; fi
  add_row wireguard "$var" ok
  GWNAME["wireguard $var"]="wireguard-go / wireguard-go"
  log "wireguard: $WG_GO: $WG_DESC"
  dir=$WORK/wireguard; mkdir -p "$dir"
  # the UAPI socket is /var/run/wireguard/<ifname>.sock for every namespace:
  # interface names unique to the run (<= 15 chars)
  ifc=wc${RUN_ID#vb}; ifv=wv${RUN_ID#vb}
  WG_IFS+=("$ifc" "$ifv")
  (umask 077; wg genkey > "$dir/cgw.key"; wg genkey > "$dir/vgw.key")
  wg pubkey < "$dir/cgw.key" > "$dir/cgw.pub"; wg pubkey < "$dir/vgw.key" > "$dir/vgw.pub"
  # WG_PROCESS_FOREGROUND: no daemonizing, the pid we get is the daemon's
  WG_PROCESS_FOREGROUND=1 start_bg wg-cgw "$NS_CGW" "$dir/wireguard-go-cgw.log" "$WG_GO" "$ifc"
  WG_PROCESS_FOREGROUND=1 start_bg wg-vgw "$NS_VGW" "$dir/wireguard-go-vgw.log" "$WG_GO" "$ifv"
  if ! wait_for 10 sh -c "ip -n '$NS_CGW' link show '$ifc' && ip -n '$NS_VGW' link show '$ifv'"; then
    STATUS["wireguard $var"]="failed: wireguard-go created no interface (logs in $dir)"
  elif ! { nsx "$NS_VGW" wg set "$ifv" listen-port 51820 private-key "$dir/vgw.key" \
             peer "$(cat "$dir/cgw.pub")" allowed-ips "$ONPREM_NET,$CGW_IN/32" \
        && nsx "$NS_CGW" wg set "$ifc" listen-port 51820 private-key "$dir/cgw.key" \
             peer "$(cat "$dir/vgw.pub")" allowed-ips "$VPC_NET,$VGW_IN/32" endpoint "$VGW_OUT:51820" \
        && ip -n "$NS_VGW" addr add "$VGW_IN/30" dev "$ifv" && ip -n "$NS_CGW" addr add "$CGW_IN/30" dev "$ifc" \
        && ip -n "$NS_VGW" link set "$ifv" mtu 1420 up && ip -n "$NS_CGW" link set "$ifc" mtu 1420 up \
        && ip -n "$NS_CGW" route add "$VPC_NET" dev "$ifc" metric 10 \
        && ip -n "$NS_VGW" route add "$ONPREM_NET" dev "$ifv" metric 10; } > "$dir/setup.txt" 2>&1; then
    STATUS["wireguard $var"]="failed: wg/ip setup: $(tail -1 "$dir/setup.txt")"
  elif ! reach 10; then
    STATUS["wireguard $var"]="failed: no ping onprem -> vpc through wireguard"
  elif ! iperf_server_up wireguard; then
    STATUS["wireguard $var"]="failed: iperf3 server did not start"
  else
    wire_on
    measure_all wireguard "$var" "${PIDS[wg-cgw]}" "${PIDS[wg-vgw]}"
    WIRE["wireguard $var"]=$(wire_read)
    { nsx "$NS_CGW" wg show "$ifc"; ip -n "$NS_CGW" -s link show "$ifc"; ip -n "$NS_VGW" -s link show "$ifv"; } > "$dir/after.txt" 2>&1
  fi
  stop_bg iperf3-server
  stop_bg wg-cgw; stop_bg wg-vgw
  wait_for 5 sh -c "! ip -n '$NS_CGW' link show '$ifc' && ! ip -n '$NS_VGW' link show '$ifv'" \
    || warn "a wireguard interface outlived wireguard-go"
}

# ---- path 4: vpnlab cgw/vgw -------------------------------------------------------
write_vpnlab_conf() {   # DIR SIDE PHASE2 [ENCAP]  (ENCAP: true = force_encap, false = raw ESP/AH)
  local dir=$1 side=$2 p2=$3 encap=${4:-true}
  local la ra lts rts inside extra
  if [ "$side" = cgw ]; then
    la=$CGW_OUT; ra=$VGW_OUT; lts=$ONPREM_NET; rts=$VPC_NET; inside=$CGW_IN/30
    extra="    startup_action: start"
  else
    la=$VGW_OUT; ra=$CGW_OUT; lts=$VPC_NET; rts=$ONPREM_NET; inside=$VGW_IN/30
    extra="    # startup_action: add (vgw default: wait for the cgw)"
  fi
  printf '%s\n' "$PSK" > "$dir/bench.psk"; chmod 600 "$dir/bench.psk"
  cat > "$dir/$side.yaml" <<EOF
# generated by scripts/bench-e2e.sh ($side, run $RUN_ID)
log: {format: text, level: info}
control: {listen: "unix:/run/vpnlab/$RUN_ID-$side.sock"}
$( [ "$side" = vgw ] && echo "lab_timers: true" )
data_path:
  tun: vpnlab0
  mtu: 1400
  addresses: [$inside]
  routes: true
tunnels:
  - name: tunnel1
    local_address: $la
    remote_address: $ra
    psk_file: bench.psk
$extra
    local_ts: $lts
    remote_ts: $rts
    force_encap: $encap
    phase1: {proposals: [$IKE_PROPOSAL]}
    phase2: {proposals: [$p2]}
EOF
}

VPNLAB_DESC=
path_vpnlab() {
  local var dir side p2 chk reason=
  command -v go >/dev/null || reason="go not installed"
  [ -n "$reason" ] || [ -c /dev/net/tun ] || reason="/dev/net/tun missing"
  if [ -n "$reason" ]; then skip_path vpnlab "$(variants_of vpnlab)" "$reason"; return; fi
  local src=$REPO dirty
  if [ -n "$VPNLAB_REV" ]; then
    src=$WORK/vpnlab-src
    rm -rf "$src"; mkdir -p "$src"
    if ! VPNLAB_DESC=$(git -C "$REPO" rev-parse --short "$VPNLAB_REV^{commit}" 2>/dev/null) \
        || ! git -C "$REPO" archive "$VPNLAB_REV" | tar -x -C "$src"; then
      skip_path vpnlab "$(variants_of vpnlab)" "--vpnlab-rev $VPNLAB_REV: no such commit in $REPO"
      return
    fi
    VPNLAB_DESC+=" (git archive of $VPNLAB_REV)"
  else
    VPNLAB_DESC="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    dirty=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | wc -l)
    if [ "$dirty" -gt 0 ]; then VPNLAB_DESC+=" + working tree ($dirty modified tracked files)"; else VPNLAB_DESC+=" (clean working tree)"; fi
  fi
  log "vpnlab: go build -o $BIN/ ./cmd/cgw ./cmd/vgw ./cmd/vpnlab in $src ($VPNLAB_DESC)"
  if ! (cd "$src" && run_bounded 300 go build -o "$BIN/" ./cmd/cgw ./cmd/vgw ./cmd/vpnlab) > "$WORK/go-build-vpnlab.log" 2>&1; then
    skip_path vpnlab "$(variants_of vpnlab)" "go build failed: $(grep -m1 -v '^#' "$WORK/go-build-vpnlab.log")"
    return
  fi
  BASE_DESC=
  if [ -n "$BASELINE_REV" ]; then
    local bsrc=$WORK/vpnlab-base-src
    rm -rf "$bsrc"; mkdir -p "$bsrc" "$BIN/base"
    if BASE_DESC=$(git -C "$REPO" rev-parse --short "$BASELINE_REV^{commit}" 2>/dev/null) \
        && git -C "$REPO" archive "$BASELINE_REV" | tar -x -C "$bsrc" \
        && (cd "$bsrc" && run_bounded 300 go build -o "$BIN/base/" ./cmd/cgw ./cmd/vgw) > "$WORK/go-build-vpnlab-base.log" 2>&1; then
      log "vpnlab: baseline $BASE_DESC built into $BIN/base/"
    else
      warn "--baseline-rev $BASELINE_REV: export or build failed (see $WORK/go-build-vpnlab-base.log); the -base variants are skipped"
      BASE_DESC=
    fi
  fi
  # does this build know the data path? (--check refuses unknown keys)
  dir=$WORK/vpnlab-check; mkdir -p "$dir"
  for side in vgw cgw; do
    write_vpnlab_conf "$dir" "$side" esp-aes128gcm16-modp2048
    if ! chk=$(cd "$dir" && run_bounded 20 "$BIN/$side" --config "$side.yaml" --check 2>&1); then
      printf '%s\n' "$chk" > "$dir/$side-check.txt"
      if grep -q 'data_path' <<< "$chk"; then
        skip_path vpnlab "$(variants_of vpnlab)" "data path not in this build ($side --check: $(grep -m1 'data_path' <<< "$chk"))"
      else
        skip_path vpnlab "$(variants_of vpnlab)" "$side --check refused the generated config: $(grep -m1 -i 'error\|:' <<< "$chk")"
      fi
      return
    fi
    printf '%s\n' "$chk" > "$dir/$side-check.txt"
  done
  mkdir -p /run/vpnlab
  local encap vbin cbin how penv wenv
  for var in $(variants_of vpnlab); do
    p2=${var%-raw}; p2=${p2%-w[0-9]}; p2=${p2%-base}-modp2048
    cbin=$BIN/cgw; vbin=$BIN/vgw
    case $var in *-base)
      if [ -z "$BASE_DESC" ]; then skip_path vpnlab "$var" "baseline build failed"; continue; fi
      cbin=$BIN/base/cgw; vbin=$BIN/base/vgw ;;
    esac
    wenv=()
    case $var in *-w[0-9]) wenv=("VPNLAB_CRYPTO_WORKERS=${var##*-w}") ;; esac
    encap=true; how="force_encap (ESP-in-UDP)"
    case $var in *-raw) encap=false; how="raw IP (protocol $([ "${var#ah}" != "$var" ] && echo 51 || echo 50))" ;; esac
    # the vgw refuses AH (as AWS does): for AH the cgw binary answers on the AWS side
    case $var in ah-*) vbin=$cbin ;; esac
    add_row vpnlab "$var" ok
    GWNAME["vpnlab $var"]="cgw / $(basename "$vbin")"
    dir=$WORK/vpnlab-$var; mkdir -p "$dir"
    write_vpnlab_conf "$dir" vgw "$p2" "$encap"; write_vpnlab_conf "$dir" cgw "$p2" "$encap"
    log "vpnlab $var: IKEv1 main mode PSK $IKE_PROPOSAL, phase 2 $p2, $how, AWS side $(basename "$vbin")${wenv[*]:+, ${wenv[*]}}"
    penv=(env "${wenv[@]}")
    [ -n "$PROFILE" ] && penv+=("VPNLAB_CPUPROFILE=$dir/vgw.pprof")
    start_bg vpnlab-vgw "$NS_VGW" "$dir/vgw.log" "${penv[@]}" "$vbin" --config "$dir/vgw.yaml"
    wait_for 10 test -S "/run/vpnlab/$RUN_ID-vgw.sock" || warn "vgw control socket did not appear"
    penv=(env "${wenv[@]}")
    [ -n "$PROFILE" ] && penv+=("VPNLAB_CPUPROFILE=$dir/cgw.pprof")
    start_bg vpnlab-cgw "$NS_CGW" "$dir/cgw.log" "${penv[@]}" "$cbin" --config "$dir/cgw.yaml"
    wait_for 10 test -S "/run/vpnlab/$RUN_ID-cgw.sock" || warn "cgw control socket did not appear"
    if ! run_bounded 20 "$BIN/vpnlab" status --control "unix:/run/vpnlab/$RUN_ID-cgw.sock" --wait-established 10s > "$dir/status-cgw.txt" 2>&1; then
      STATUS["vpnlab $var"]="failed: tunnel not established in 10 s (see $dir/{cgw,vgw}.log, status-cgw.txt)"
    elif ! wait_for 5 sh -c "ip -n '$NS_CGW' link show vpnlab0 && ip -n '$NS_VGW' link show vpnlab0"; then
      STATUS["vpnlab $var"]="failed: established, but no vpnlab0 TUN device in both gateways"
    elif ! reach 10; then
      STATUS["vpnlab $var"]="failed: established, but no ping onprem -> vpc through the tunnel"
    elif ! iperf_server_up "vpnlab-$var"; then
      STATUS["vpnlab $var"]="failed: iperf3 server did not start"
    else
      wire_on
      measure_all vpnlab "$var" "${PIDS[vpnlab-cgw]}" "${PIDS[vpnlab-vgw]}"
      WIRE["vpnlab $var"]=$(wire_read)
    fi
    { run_bounded 10 "$BIN/vpnlab" status --control "unix:/run/vpnlab/$RUN_ID-cgw.sock"
      run_bounded 10 "$BIN/vpnlab" status --control "unix:/run/vpnlab/$RUN_ID-vgw.sock"
      ip -n "$NS_CGW" -s link show vpnlab0; ip -n "$NS_VGW" -s link show vpnlab0
      ip -n "$NS_CGW" route; ip -n "$NS_VGW" route
      echo "== UDP counters cgw"; nsx "$NS_CGW" nstat -asz 2>/dev/null | grep -E '^Udp(In|Out|Rcvbuf|Sndbuf)'
      echo "== UDP counters vgw"; nsx "$NS_VGW" nstat -asz 2>/dev/null | grep -E '^Udp(In|Out|Rcvbuf|Sndbuf)'
    } > "$dir/after.txt" 2>&1
    case ${STATUS["vpnlab $var"]} in failed*) log "vpnlab $var: ${STATUS["vpnlab $var"]}"; tail -n 15 "$dir/cgw.log" "$dir/vgw.log" >&2 ;; esac
    stop_bg iperf3-server
    stop_bg vpnlab-cgw; stop_bg vpnlab-vgw
    wait_for 5 sh -c "! ip -n '$NS_CGW' link show vpnlab0 && ! ip -n '$NS_VGW' link show vpnlab0" \
      || warn "a vpnlab0 TUN device outlived its gateway"
  done
}

# ---- meta --------------------------------------------------------------------
write_meta() {
  {
    echo "date: $(date -Is)"
    echo "run: $RUN_ID (namespaces $NS_ONPREM $NS_CGW $NS_VGW $NS_VPC)"
    echo "load average at the start: $LOAD_START"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "options: --tests $TESTS${VARIANTS:+ --variants $VARIANTS}${QUICK:+ --quick}${PROFILE:+ --profile} --time $DUR --repeat $REPEAT -P $STREAMS --only $(IFS=,; echo "${PATHS[*]}") --quiet-wait $QUIET_WAIT --max-foreign $MAX_FOREIGN --retries $RETRIES${VPNLAB_REV:+ --vpnlab-rev $VPNLAB_REV}"
    echo "cpu: $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), $(nproc) cores online"
    echo "kernel: $(uname -sr)"
    echo "go: $(go version 2>/dev/null || echo none)"
    echo "iperf3: $(iperf3 --version 2>/dev/null | head -1)"
    echo "strongSwan: $(dpkg-query -W -f '${Version}' strongswan-charon 2>/dev/null || echo none) (charon plugins: $CHARON_PLUGINS)"
    echo "wireguard-go: ${WG_DESC:-not used}${WG_GO:+ [$WG_GO]}"
    echo "wireguard-tools: $(wg --version 2>/dev/null | awk '{print $2}')"
    echo "vpnlab: ${VPNLAB_DESC:-not built}"
    [ -n "$BASELINE_REV" ] && echo "vpnlab baseline (-base variants): ${BASE_DESC:-build failed} (--baseline-rev $BASELINE_REV)"
  } > "$OUT/meta.txt"
}

# ---- summary -------------------------------------------------------------------
stats() {   # stats COLUMN PATH VARIANT [TEST] -> "median min max" over numeric values
  awk -F'\t' -v c="$1" -v p="$2" -v v="$3" -v t="${4:-tcp}" '$1==p && $2==v && $19=="yes" && $20==t && $c ~ /^[0-9.]+$/ {print $c}' "$RUNS" | sort -g \
    | awk '{a[NR]=$1} END { if (NR == 0) { print "- - -"; exit }
             m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
             printf "%s %s %s\n", m, a[1], a[NR] }'
}

summarize() {
  local key path var st n mb retr cc vc mc mbm mbmin mbmax fc fmax
  printf 'path\tvariant\tstreams\truns_ok\tmbit_s_median\tmbit_s_min\tmbit_s_max\tretransmits_median\tgw_processes\tcgw_gw_cpu_pct_median\tvgw_gw_cpu_pct_median\tmachine_cpu_pct_median\tforeign_cpu_pct_median\tforeign_cpu_pct_max\tcgw_wire_out\tstatus\n' > "$SUMMARY"
  for key in "${ORDER[@]}"; do
    path=${key%% *}; var=${key#* }; st=${STATUS[$key]}
    n=$(awk -F'\t' -v p="$path" -v v="$var" '$1==p && $2==v && $19=="yes" && $20=="tcp" && $6 ~ /^[0-9.]+$/' "$RUNS" | wc -l)
    read -r mbm mbmin mbmax <<< "$(stats 6 "$path" "$var")"
    read -r retr _ _ <<< "$(stats 7 "$path" "$var")"
    read -r cc _ _ <<< "$(stats 8 "$path" "$var")"
    read -r vc _ _ <<< "$(stats 9 "$path" "$var")"
    read -r mc _ _ <<< "$(stats 10 "$path" "$var")"
    read -r fc _ fmax <<< "$(stats 17 "$path" "$var")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$var" "$STREAMS" "$n/$REPEAT" \
      "$mbm" "$mbmin" "$mbmax" "$retr" "${GWNAME[$key]:--}" "$cc" "$vc" "$mc" "$fc" "$fmax" "${WIRE[$key]:--}" "$st" >> "$SUMMARY"
  done
  echo
  echo "iperf3 TCP $ONPREM_IP -> $VPC_IP, ${DUR}s, -P $STREAMS, $REPEAT run(s) per row, medians; $(nproc) cores"
  echo "gw CPU: utime+stime of each gateway process over the run, % of one core (cgw / vgw); machine: all cores busy;"
  echo "foreign: CPU of processes outside this run's namespaces during the run, % of one core (median/max of the kept runs;"
  echo "         runs above $MAX_FOREIGN were repeated up to $RETRIES times, see runs.tsv)"
  printf '%-10s %-18s %-22s %6s %-30s %7s %7s  %s\n' path variant "Mbit/s median (range)" retr "gw CPU % cgw / vgw" machine foreign status
  tail -n +2 "$SUMMARY" | while IFS=$'\t' read -r path var _ n mbm mbmin mbmax retr gwn cc vc mc fc fmax _ st; do
    if [ "$mbm" = - ]; then mb=-; else
      mb=$(awk -v a="$mbm" -v b="$mbmin" -v c="$mbmax" 'BEGIN{printf "%.0f (%.0f-%.0f)", a, b, c}'); fi
    [ "$retr" = - ] || retr=$(awk -v a="$retr" 'BEGIN{printf "%.0f", a}')
    if [ "$gwn" = - ] || [ "$cc" = - ]; then gwn=-; else gwn="$cc / $vc ($gwn)"; fi
    [ "$mc" = - ] || mc="$mc %"
    [ "$fc" = - ] || fc="$fc/$fmax"
    case $st in skipped*) ;; *) st+=" [$n runs]" ;; esac
    printf '%-10s %-18s %-22s %6s %-30s %7s %7s  %s\n' "$path" "$var" "$mb" "$retr" "$gwn" "$mc" "$fc" "$st"
  done
  summarize_extras
  summarize_pps
  echo
  echo "tunnel packets the cgw sent on its outside link (nft counters: proof the traffic was tunnelled) and UDP socket drops:"
  local any=
  for key in "${ORDER[@]}"; do [ -n "${WIRE[$key]:-}" ] && { echo "  $key: ${WIRE[$key]}"; any=1; }; done
  [ -n "$any" ] || echo "  (no tunnel path measured)"
  echo
  echo "results: $OUT (summary.tsv, runs.tsv, extras.tsv, pps.tsv, iperf3-*.json, pktgen-*.json, meta.txt, work/)"
}

# the other tests: one line per path, variant and test
summarize_extras() {
  local key path var t m mn mx pps loss cc vc mc st n any=
  for t in tcp-rev udp64 udp512; do want_test "$t" && any=1; done
  if [ -n "$any" ]; then
    echo
    echo "other directions and packet sizes (medians of the kept runs; UDP: iperf3 -u -b 0 -l SIZE, 1 stream, received rate):"
    printf '%-10s %-22s %-8s %-22s %12s %9s %-16s %7s  %s\n' path variant test "Mbit/s median (range)" "packets/s" "UDP loss" "gw CPU cgw/vgw" machine status
    for key in "${ORDER[@]}"; do
      path=${key%% *}; var=${key#* }
      for t in tcp-rev udp64 udp512; do
        want_test "$t" || continue
        case ${STATUS[$key]} in skipped*|failed*) continue ;; esac
        read -r m mn mx <<< "$(stats 6 "$path" "$var" "$t")"
        read -r pps _ _ <<< "$(stats 21 "$path" "$var" "$t")"
        read -r loss _ _ <<< "$(stats 22 "$path" "$var" "$t")"
        read -r cc _ _ <<< "$(stats 8 "$path" "$var" "$t")"
        read -r vc _ _ <<< "$(stats 9 "$path" "$var" "$t")"
        read -r mc _ _ <<< "$(stats 10 "$path" "$var" "$t")"
        n=$(awk -F'\t' -v p="$path" -v v="$var" -v t="$t" '$1==p && $2==v && $19=="yes" && $20==t && $6 ~ /^[0-9.]+$/' "$RUNS" | wc -l)
        st=${XSTATUS["$key $t"]:-ok}
        [ "$m" = - ] || m=$(awk -v a="$m" -v b="$mn" -v c="$mx" 'BEGIN{printf "%.0f (%.0f-%.0f)", a, b, c}')
        [ "$pps" = - ] || pps=$(awk -v a="$pps" 'BEGIN{printf "%.0f", a}')
        [ "$loss" = - ] || loss="$loss %"
        printf '%-10s %-22s %-8s %-22s %12s %9s %-16s %7s  %s [%s runs]\n' "$path" "$var" "$t" "$m" "$pps" "$loss" "$cc / $vc" "$mc %" "$st" "$n"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$var" "$t" "$m" "$pps" "$loss" "$cc" "$vc" "$mc" "$st" "$n" >> "$OUT/extras.tsv"
      done
    done
  fi
  if want_test ping; then
    echo
    echo "ping onprem -> vpc through the idle path ($PINGS pings, 10 ms apart): RTT min/avg/max/mdev"
    for key in "${ORDER[@]}"; do
      [ -n "${PING[$key]:-}" ] && printf '  %-10s %-22s %s\n' "${key%% *}" "${key#* }" "${PING[$key]}"
    done
  fi
}

# the pktgen tests: one line per path, variant and test (and pps.tsv)
summarize_pps() {
  local key path var t tl=() off rx rmn rmx loss drops cc vc mc st n
  for t in pps64 pps512; do
    want_test "$t" || continue
    tl+=("$t"); [ "$PPS_RATE" -eq 0 ] || tl+=("$t@$PPS_RATE")
  done
  [ ${#tl[@]} -gt 0 ] || return 0
  echo
  echo "small packets (pktgen, sendmmsg, $PPS_STREAMS sender socket(s); ppsSIZE: as fast as possible, ppsSIZE@RATE: offered at RATE/s;"
  echo "received packets/s from the first to the last packet; loss: (sent - received) / sent; medians of the kept runs):"
  printf '%-10s %-22s %-13s %12s %-26s %8s %12s %-16s %7s  %s\n' path variant test "offered/s" "received/s median (range)" loss "kernel drops" "gw CPU cgw/vgw" machine status
  printf 'path\tvariant\ttest\toffered_packets_per_s\treceived_packets_per_s_median\treceived_min\treceived_max\tloss_pct\tkernel_drops\tcgw_cpu\tvgw_cpu\tmachine_cpu\tstatus\truns\n' > "$OUT/pps.tsv"
  for key in "${ORDER[@]}"; do
    path=${key%% *}; var=${key#* }
    case ${STATUS[$key]} in skipped*|failed*) continue ;; esac
    for t in "${tl[@]}"; do
      read -r off _ _ <<< "$(stats 23 "$path" "$var" "$t")"
      read -r rx rmn rmx <<< "$(stats 21 "$path" "$var" "$t")"
      read -r loss _ _ <<< "$(stats 22 "$path" "$var" "$t")"
      read -r drops _ _ <<< "$(stats 24 "$path" "$var" "$t")"
      read -r cc _ _ <<< "$(stats 8 "$path" "$var" "$t")"
      read -r vc _ _ <<< "$(stats 9 "$path" "$var" "$t")"
      read -r mc _ _ <<< "$(stats 10 "$path" "$var" "$t")"
      n=$(awk -F'\t' -v p="$path" -v v="$var" -v t="$t" '$1==p && $2==v && $19=="yes" && $20==t && $21 ~ /^[0-9.]+$/' "$RUNS" | wc -l)
      st=${XSTATUS["$key $t"]:-ok}
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$var" "$t" "$off" "$rx" "$rmn" "$rmx" "$loss" "$drops" "$cc" "$vc" "$mc" "$st" "$n" >> "$OUT/pps.tsv"
      [ "$off" = - ] || off=$(awk -v a="$off" 'BEGIN{printf "%.0f", a}')
      [ "$rx" = - ] || rx=$(awk -v a="$rx" -v b="$rmn" -v c="$rmx" 'BEGIN{printf "%.0f (%.0f-%.0f)", a, b, c}')
      [ "$loss" = - ] || loss="$loss %"
      [ "$drops" = - ] || drops=$(awk -v a="$drops" 'BEGIN{printf "%.0f", a}')
      printf '%-10s %-22s %-13s %12s %-26s %8s %12s %-16s %7s  %s [%s runs]\n' "$path" "$var" "$t" "$off" "$rx" "$loss" "$drops" "$cc / $vc" "$mc %" "$st" "$n"
    done
  done
}

# ---- main ---------------------------------------------------------------------
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "bench-e2e: run $RUN_ID, load average $LOAD_START, paths: ${PATHS[*]}, iperf3 ${DUR}s x $REPEAT, -P $STREAMS, output $OUT"
if want_test pps64 || want_test pps512; then build_pktgen; fi
topo_up || exit 1
for p in "${PATHS[@]}"; do
  case $p in
    plain) path_plain ;;
    libipsec) path_libipsec ;;
    wireguard) path_wireguard ;;
    vpnlab) path_vpnlab ;;
  esac
done
write_meta
printf 'path\tvariant\ttest\tmbit_s\tpackets_per_s\tudp_loss\tcgw_cpu\tvgw_cpu\tmachine_cpu\tstatus\truns\n' > "$OUT/extras.tsv"
summarize | tee "$OUT/table.txt"
rc=0
for key in "${ORDER[@]}"; do case ${STATUS[$key]} in failed*) rc=1 ;; esac; done
exit "$rc"
