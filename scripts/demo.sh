#!/usr/bin/env bash
# The failover demo (README's first command): installs iproute2 and nftables
# if missing (as root, apt-get), builds bin/vpnlab and runs
# scenarios/failover.yaml: two tunnels with BGP behind NAT, tunnel1's path
# dies under traffic, DPD and BGP move the traffic to tunnel2 and back.
# Extra arguments go to `vpnlab run` (e.g. --profile aws for AWS's timers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it builds network namespaces, veth links, TUN devices, nftables rules)" >&2
  exit 3
fi
command -v go >/dev/null || { echo "demo: Go is not installed (https://go.dev/doc/install)" >&2; exit 3; }

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || missing+=(nftables)
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    echo "== installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "demo: please install ${missing[*]}" >&2
    exit 3
  fi
fi

echo "== building bin/vpnlab"
mkdir -p bin
go build -o bin/vpnlab ./cmd/vpnlab

status=0
bin/vpnlab run --out vpnlab-out "$@" scenarios/failover.yaml || status=$?
echo
echo "== the failover picture: $(pwd)/vpnlab-out/failover/failover.html (open it in a browser)"
exit "$status"
