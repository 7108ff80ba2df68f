// Command pktgen sends and counts small UDP packets for scripts/bench-e2e.sh
// (package github.com/vpnlab/vpnlab/internal/pktgen).
//
//	pktgen send -dst HOST:PORT -size N -count N -duration D [-rate PPS] [-streams N]
//	pktgen recv -listen HOST:PORT -duration D [-idle D] [-rcvbuf BYTES]
//
// Each prints one JSON object on stdout. Exit status: 0 done, 1 the run
// failed (a socket could not be opened), 2 usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vpnlab/vpnlab/internal/pktgen"
)

const usage = `usage:
  pktgen send -dst HOST:PORT -size BYTES -count N -duration D [-rate PPS] [-streams N] [-batch N]
  pktgen recv -listen HOST:PORT -duration D [-idle D] [-rcvbuf BYTES] [-batch N]
one JSON object on stdout; exit 0 done, 1 failed, 2 usage error`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var (
		res any
		err error
	)
	switch args[0] {
	case "send":
		res, err = send(ctx, args[1:])
	case "recv":
		res, err = recv(ctx, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "pktgen: unknown subcommand %q\n%s\n", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%v\n%s\n", err, usage)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(stderr, "pktgen:", err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // the error is printed once, with the usage
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("pktgen: %s: %w", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("pktgen: %s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func send(ctx context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	var c pktgen.SendConfig
	fs.StringVar(&c.Dst, "dst", "", "destination HOST:PORT")
	fs.IntVar(&c.Size, "size", 64, "UDP payload bytes (>= 16)")
	fs.Uint64Var(&c.Count, "count", 0, "stop after this many packets (required)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (required)")
	fs.Float64Var(&c.Rate, "rate", 0, "packets/s of all streams together (0: as fast as possible)")
	fs.IntVar(&c.Streams, "streams", 1, "sockets (distinct source ports), one goroutine each")
	fs.IntVar(&c.Batch, "batch", 64, "datagrams per sendmmsg")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	res, err := pktgen.Send(ctx, c)
	if err != nil && pktgen.IsConfigError(err) {
		return nil, usageError{err}
	}
	return res, err
}

func recv(ctx context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("recv", flag.ContinueOnError)
	var c pktgen.RecvConfig
	fs.StringVar(&c.Addr, "listen", "", "HOST:PORT to bind")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (required)")
	fs.DurationVar(&c.Idle, "idle", 2*time.Second, "stop this long after the last packet")
	fs.IntVar(&c.RcvBuf, "rcvbuf", 64<<20, "receive buffer bytes")
	fs.IntVar(&c.Batch, "batch", 256, "datagrams per recvmmsg")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if c.Addr == "" {
		return nil, usageError{errors.New("pktgen: recv: -listen is required")}
	}
	r, err := pktgen.Listen(c)
	if err != nil {
		if pktgen.IsConfigError(err) {
			return nil, usageError{err}
		}
		return nil, err
	}
	return r.Run(ctx)
}
