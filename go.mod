module github.com/vpnlab/vpnlab

go 1.26
