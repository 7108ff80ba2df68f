# syntax=docker/dockerfile:1
# The vpnlab image of a containerlab lab (vpnlab export --format containerlab,
# docs/multihost.md): every node of the topology runs it. Build it from the
# root of the vpnlab source tree, on every machine of the lab:
#
#   docker build -t vpnlab:latest -f LABDIR/Dockerfile .
#
# Stage 1 builds the vpnlab binary (gateways, CLI) with the Go of go.mod.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/vpnlab ./cmd/vpnlab

# Stage 2: what the lab's commands need: ip (iproute2), nft (nftables),
# conntrack (flush-nat), ping, curl (the gateways' control API over their
# unix sockets), tini as PID 1 so that a killed gateway is reaped.
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables conntrack iputils-ping curl tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/vpnlab /usr/local/bin/vpnlab
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sleep", "infinity"]
